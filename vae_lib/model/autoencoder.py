"""A plain, deterministic autoencoder with the VAE's networks: the baseline that shows what the KL term and
the noise of q(z|x) buy (chapter 6).

The encoder maps x to one point z = f(x) (no variance, no noise); the decoder is the VAE's Bernoulli decoder;
the loss is the reconstruction term alone, −log p(x | z = f(x)), summed over pixels. Nothing ties the codes
to a prior, so a Gaussian fitted to them afterwards may put mass where no code lies.
"""

from __future__ import annotations

import torch
from torch import nn

from vae_lib.model.vae import BernoulliDecoder, VAEConfig, init_normal, mlp


class Autoencoder(nn.Module):
    """x → z = f(x) → logits: the VAE's layer sizes (``config``), a J-dimensional code instead of (μ, log σ²)."""

    def __init__(self, config: VAEConfig):
        super().__init__()
        if config.likelihood != "bernoulli":
            raise ValueError(f"Autoencoder has a Bernoulli decoder; got likelihood={config.likelihood!r}")
        self.config = config
        self.encoder = mlp([config.data_dim, *config.hidden_sizes, config.latent_dim], config.activation)
        self.decoder = BernoulliDecoder(config)
        init_normal(self, config.init_std)

    @property
    def latent_dim(self) -> int:
        return self.config.latent_dim

    def encode(self, x: torch.Tensor) -> torch.Tensor:
        """The code z = f(x): (..., D) → (..., J), one point per image."""
        return self.encoder(x)

    def log_likelihood(self, x: torch.Tensor) -> torch.Tensor:
        """log p(x | z = f(x)) summed over pixels: (..., D) → (...). Its negative mean is the training loss."""
        return self.decoder.log_prob(x, self.encode(x))

    @torch.no_grad()
    def decode(self, z: torch.Tensor) -> torch.Tensor:
        """Mean images sigmoid(logits): (..., J) → (..., D) in (0, 1)."""
        return self.decoder.mean(z)

    @torch.no_grad()
    def reconstruct(self, x: torch.Tensor) -> torch.Tensor:
        """E[x | z = f(x)]: (N, D) → (N, D)."""
        return self.decode(self.encode(x))


def fit_gaussian(z: torch.Tensor) -> torch.distributions.MultivariateNormal:
    """The Gaussian with the sample mean and covariance of the codes ``z`` (N, J): the usual way to sample from a
    plain autoencoder after the fact."""
    if z.dim() != 2 or len(z) < z.shape[1] + 1:
        raise ValueError(f"fit_gaussian needs codes of shape (N, J) with N > J, got {tuple(z.shape)}")
    mean = z.mean(0)
    centred = z - mean
    cov = centred.T @ centred / (len(z) - 1)
    return torch.distributions.MultivariateNormal(mean, covariance_matrix=cov)


def far_from_codes(draws: torch.Tensor, codes: torch.Tensor, quantile: float = 0.99) -> torch.Tensor:
    """Which ``draws`` (S, J) lie farther from every one of ``codes`` (N, J) than almost any code lies from its
    nearest other code: the ``quantile`` of the codes' nearest-neighbour distances is the yardstick, so the
    verdict does not depend on the scale of the latent space. Returns a boolean (S,)."""
    if not 0 < quantile < 1:
        raise ValueError(f"quantile must be in (0, 1), got {quantile}")
    between = torch.cdist(codes, codes)
    between.fill_diagonal_(float("inf"))
    yardstick = between.min(1).values.quantile(quantile)
    return torch.cdist(draws, codes).min(1).values > yardstick

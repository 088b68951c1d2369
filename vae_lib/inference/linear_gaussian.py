"""A linear-Gaussian latent-variable model (probabilistic PCA / factor analysis), where log p(x)
and the posterior p(z|x) have closed forms — the book's ground truth for checking bounds and
estimators.

    p(z) = N(0, I_J),   p(x|z) = N(W z + b, σ² I_D)
    ⇒ p(x) = N(b, W Wᵀ + σ² I),   p(z|x) = N(Σ Wᵀ (x − b) / σ², Σ),   Σ = (I + Wᵀ W / σ²)⁻¹.

It also carries a linear diagonal-Gaussian encoder q(z|x) = N(A x + c, diag(exp(log_var))), so it
speaks the same interface as :class:`vae_lib.model.vae.VAE` (``encode``, ``log_likelihood``).
"""

from __future__ import annotations

import math

import torch
from torch import nn
from torch.distributions import MultivariateNormal

from vae_lib.model.objectives import LOG_2PI


class LinearGaussian(nn.Module):
    """p(z) = N(0, I), p(x|z) = N(Wz + b, σ²I), with an amortized linear diagonal q(z|x)."""

    def __init__(self, weight: torch.Tensor, bias: torch.Tensor, noise_var: float):
        super().__init__()
        d, j = weight.shape
        if bias.shape != (d,):
            raise ValueError(f"bias must have shape ({d},), got {tuple(bias.shape)}")
        if noise_var <= 0:
            raise ValueError(f"noise_var must be positive, got {noise_var}")
        self.weight = nn.Parameter(weight.clone())              # W: (D, J)
        self.bias = nn.Parameter(bias.clone())                  # b: (D,)
        self.log_noise_var = nn.Parameter(torch.tensor(math.log(noise_var), dtype=weight.dtype))
        self.enc_weight = nn.Parameter(torch.zeros(j, d, dtype=weight.dtype))   # A: (J, D)
        self.enc_bias = nn.Parameter(torch.zeros(j, dtype=weight.dtype))        # c: (J,)
        self.enc_log_var = nn.Parameter(torch.zeros(j, dtype=weight.dtype))     # log σ_q²: (J,)

    @property
    def latent_dim(self) -> int:
        return self.weight.shape[1]

    @property
    def data_dim(self) -> int:
        return self.weight.shape[0]

    def encode(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """q(z|x): x (B, D) → mu (B, J) = A x + c, log_var (B, J), the same for every x."""
        mu = x @ self.enc_weight.T + self.enc_bias
        return mu, self.enc_log_var.expand_as(mu)

    def log_likelihood(self, x: torch.Tensor, z: torch.Tensor) -> torch.Tensor:
        """log N(x; W z + b, σ² I) summed over dimensions: x (B, D), z (..., B, J) → (..., B)."""
        mean = z @ self.weight.T + self.bias
        return -0.5 * (LOG_2PI + self.log_noise_var + (x - mean) ** 2 / self.log_noise_var.exp()).sum(-1)

    observation_noise = "normal"

    def sample_observation(self, z: torch.Tensor, noise: torch.Tensor) -> torch.Tensor:
        """A draw x ~ p(x|z) = N(Wz + b, σ²I) from standard normals ``noise`` (..., D)."""
        return z @ self.weight.T + self.bias + torch.exp(0.5 * self.log_noise_var) * noise

    def marginal(self) -> MultivariateNormal:
        """p(x) = N(b, W Wᵀ + σ² I)."""
        d = self.bias.shape[0]
        cov = self.weight @ self.weight.T + self.log_noise_var.exp() * torch.eye(d, dtype=self.weight.dtype)
        return MultivariateNormal(self.bias, covariance_matrix=cov)

    def log_marginal(self, x: torch.Tensor) -> torch.Tensor:
        """Exact log p(x): (B, D) → (B,)."""
        return self.marginal().log_prob(x)

    def posterior(self, x: torch.Tensor) -> MultivariateNormal:
        """Exact p(z|x) = N(Σ Wᵀ (x − b) / σ², Σ) with Σ = (I + WᵀW/σ²)⁻¹, batched over x (B, D)."""
        noise_var = self.log_noise_var.exp()
        j = self.latent_dim
        cov = torch.linalg.inv(torch.eye(j, dtype=self.weight.dtype) + self.weight.T @ self.weight / noise_var)
        mean = (x - self.bias) @ self.weight @ cov.T / noise_var
        return MultivariateNormal(mean, covariance_matrix=cov.expand(len(x), j, j))

    @torch.no_grad()
    def set_encoder_to_posterior(self) -> None:
        """Make q(z|x) the exact posterior's mean map and its marginal variances; q equals p(z|x)
        exactly when WᵀW is diagonal (the posterior covariance is then diagonal too)."""
        noise_var = self.log_noise_var.exp()
        j = self.latent_dim
        cov = torch.linalg.inv(torch.eye(j, dtype=self.weight.dtype) + self.weight.T @ self.weight / noise_var)
        self.enc_weight.copy_(cov @ self.weight.T / noise_var)
        self.enc_bias.copy_(-self.enc_weight @ self.bias)
        self.enc_log_var.copy_(torch.diagonal(cov).log())

    def kl_to_posterior(self, x: torch.Tensor) -> torch.Tensor:
        """KL(q(z|x) ‖ p(z|x)) per example, through torch.distributions: (B,)."""
        mu, log_var = self.encode(x)
        q = MultivariateNormal(mu, covariance_matrix=torch.diag_embed(log_var.exp()))
        return torch.distributions.kl_divergence(q, self.posterior(x))

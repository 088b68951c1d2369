"""The two-stochastic-layer model of Burda, Grosse & Salakhutdinov (2015), Section 5 and Appendix A:

    recognition  q(z1, z2 | x) = q(z1 | x) q(z2 | z1)      x → h1 → z1 → h2 → z2
    generative   p(x, z1, z2) = p(z2) p(z1 | z2) p(x | z1)  with p(z2) = N(0, I)

with every q and p(z1|z2) a diagonal Gaussian whose mean and log-variance an MLP gives, and p(x|z1)
Bernoulli. Their MNIST sizes (the defaults; Section 5.1: "two stochastic layers h1 and h2, with 100 and 50
units … In between x and h1 were two deterministic layers with 200 units each. In between h1 and h2 were two
deterministic layers with 100 units each", tanh): 784–200–200–100 (z1)–100–100–50 (z2); the generative
networks mirror them. With draws z1 = μ1(x) + σ1(x) ⊙ ε1 and
z2 = μ2(z1) + σ2(z1) ⊙ ε2, the log-weight is

    log w = log p(x|z1) + log p(z1|z2) + log p(z2) − log q(z1|x) − log q(z2|z1),

the ELBO is E[log w] and the k-sample bound L_k = E[log (1/k) Σ_i w_i] (Burda et al., Eq. 8). No term has a
closed form here (p(z1|z2) is not N(0, I)), so both are Monte Carlo estimates.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import NamedTuple

import torch
from torch import nn

from vae_lib.base.params import check_int
from vae_lib.model.objectives import log_normal_diag, log_standard_normal
from vae_lib.model.vae import ACTIVATIONS, BernoulliDecoder, GaussianEncoder, VAEConfig


@dataclass(frozen=True)
class TwoLayerConfig:
    """The sizes of the two-stochastic-layer model (Burda et al. 2015, Section 5.1 and Appendix C, for MNIST by default)."""

    data_dim: int = 784                       # D: pixels per image
    hidden1: tuple[int, ...] = (200, 200)     # deterministic layers between x and z1 (mirrored in p(x|z1))
    latent1: int = 100                        # J1: size of z1
    hidden2: tuple[int, ...] = (100, 100)     # deterministic layers between z1 and z2 (mirrored in p(z1|z2))
    latent2: int = 50                         # J2: size of z2
    activation: str = "tanh"                  # "tanh" as in the paper, or "relu"

    def __post_init__(self) -> None:
        for name in ("data_dim", "latent1", "latent2"):
            check_int(name, getattr(self, name))
        for name in ("hidden1", "hidden2"):
            sizes = getattr(self, name)
            if isinstance(sizes, (str, bytes)) or not hasattr(sizes, "__iter__") or len(tuple(sizes)) == 0:
                raise ValueError(f"{name} must be a non-empty tuple of widths ≥ 1, got {sizes!r}")
            for i, h in enumerate(sizes):
                check_int(f"{name}[{i}]", h)
            object.__setattr__(self, name, tuple(int(h) for h in sizes))
        if self.activation not in ACTIVATIONS:
            raise ValueError(f"unknown activation {self.activation!r}; choose one of {tuple(ACTIVATIONS)}")

    @property
    def likelihood(self) -> str:
        """p(x|z1) is Bernoulli: pixels in [0, 1] (what :func:`vae_lib.model.objectives.check_observations` checks)."""
        return "bernoulli"


def _gaussian_net(n_in: int, hidden: tuple[int, ...], n_out: int, activation: str) -> GaussianEncoder:
    """An MLP n_in → hidden → (mu, log_var) of size n_out: the VAE's encoder, reused for every Gaussian layer."""
    return GaussianEncoder(VAEConfig(data_dim=n_in, latent_dim=n_out, hidden_sizes=hidden, activation=activation))


class TwoLayerNoise(NamedTuple):
    """The noise of one minibatch's draws for the training driver, minibatch first: ε1 (B, k, J1), ε2 (B, k, J2)."""

    eps1: torch.Tensor
    eps2: torch.Tensor


class TwoLayerVAE(nn.Module):
    """q(z1|x) q(z2|z1) and p(z2) p(z1|z2) p(x|z1); see the module's docstring."""

    #: p(z1) = ∫ p(z1|z2) p(z2) dz2 is not N(0, I): no closed-form KL (estimator B), the bound is Monte Carlo only
    prior_is_standard_normal = False

    def __init__(self, config: TwoLayerConfig):
        super().__init__()
        self.config = c = config
        self.q_z1 = _gaussian_net(c.data_dim, c.hidden1, c.latent1, c.activation)        # q(z1|x)
        self.q_z2 = _gaussian_net(c.latent1, c.hidden2, c.latent2, c.activation)         # q(z2|z1)
        self.p_z1 = _gaussian_net(c.latent2, c.hidden2[::-1], c.latent1, c.activation)   # p(z1|z2)
        self.p_x = BernoulliDecoder(VAEConfig(data_dim=c.data_dim, latent_dim=c.latent1,
                                              hidden_sizes=c.hidden1, activation=c.activation))   # p(x|z1)

    @property
    def data_dim(self) -> int:
        return self.config.data_dim

    def draw_noise(self, k: int, batch: int, generator: torch.Generator | None = None,
                   ) -> tuple[torch.Tensor, torch.Tensor]:
        """ε1 (k, batch, J1) and ε2 (k, batch, J2), standard normal, on the model's device and dtype."""
        p = next(self.parameters())
        shape = (check_int("k", k), check_int("batch", batch))
        return (torch.randn(*shape, self.config.latent1, generator=generator, device=p.device, dtype=p.dtype),
                torch.randn(*shape, self.config.latent2, generator=generator, device=p.device, dtype=p.dtype))

    def log_weights(self, x: torch.Tensor, eps: tuple[torch.Tensor, torch.Tensor]) -> torch.Tensor:
        """log w_i = log p(x|z1) + log p(z1|z2) + log p(z2) − log q(z1|x) − log q(z2|z1) for the draws the
        noise eps = (ε1 (k, B, J1), ε2 (k, B, J2)) gives: x (B, D) → (k, B)."""
        return self.log_weight_terms(x, eps)[0]

    def log_weight_terms(self, x: torch.Tensor, eps: tuple[torch.Tensor, torch.Tensor],
                         ) -> tuple[torch.Tensor, torch.Tensor]:
        """(log w_i, log p(x|z1_i)) of :meth:`log_weights`' draws, (k, B) each: the second is the reconstruction
        term, so a training report can split the ELBO into distortion and rate (the rate: log p(x|z1) − log w)."""
        eps1, eps2 = eps
        if x.dim() != 2 or x.shape[1] != self.config.data_dim:
            raise ValueError(f"x must have shape (batch, D) with D = {self.config.data_dim}, got {tuple(x.shape)}")
        expected = ((eps1.shape[0], x.shape[0], self.config.latent1), (eps1.shape[0], x.shape[0], self.config.latent2))
        if (tuple(eps1.shape), tuple(eps2.shape)) != expected:
            raise ValueError(f"eps must be (ε1, ε2) of shapes {expected}, got {tuple(eps1.shape)} and {tuple(eps2.shape)}")
        mu1, log_var1 = self.q_z1(x)                                      # (B, J1)
        z1 = mu1 + torch.exp(0.5 * log_var1) * eps1                       # (k, B, J1)
        mu2, log_var2 = self.q_z2(z1)                                     # (k, B, J2)
        z2 = mu2 + torch.exp(0.5 * log_var2) * eps2                       # (k, B, J2)
        prior_mu1, prior_log_var1 = self.p_z1(z2)                         # (k, B, J1)
        log_px_z1 = self.p_x.log_prob(x, z1)                              # (k, B)
        log_p = log_px_z1 + log_normal_diag(z1, prior_mu1, prior_log_var1) + log_standard_normal(z2)
        log_q = log_normal_diag(z1, mu1, log_var1) + log_normal_diag(z2, mu2, log_var2)
        return log_p - log_q, log_px_z1                                   # (k, B) each

    def driver_noise(self, k: int, batch: int, generator: torch.Generator | None = None) -> TwoLayerNoise:
        """:meth:`draw_noise` for the training driver, minibatch first: ε1 (batch, k, J1), ε2 (batch, k, J2)."""
        eps1, eps2 = self.draw_noise(k, batch, generator)
        return TwoLayerNoise(eps1.transpose(0, 1), eps2.transpose(0, 1))

    def rate_per_unit(self, x: torch.Tensor, eps: tuple[torch.Tensor, torch.Tensor]) -> torch.Tensor:
        """The rate's terms unit by unit for :meth:`log_weights`' draws: log q(z1_j|x) − log p(z1_j|z2) for the J1
        units of z1, then log q(z2_j|z1) − log N(z2_j; 0, 1) for the J2 units of z2: (k, B, J1 + J2). Their sum
        over units is log p(x|z1) − log w, the Monte Carlo rate of both layers."""
        eps1, eps2 = eps
        mu1, log_var1 = self.q_z1(x)
        z1 = mu1 + torch.exp(0.5 * log_var1) * eps1
        mu2, log_var2 = self.q_z2(z1)
        z2 = mu2 + torch.exp(0.5 * log_var2) * eps2
        prior_mu1, prior_log_var1 = self.p_z1(z2)

        def log_normal(z, mu, log_var):   # per unit, not summed
            return -0.5 * (math.log(2 * math.pi) + log_var + (z - mu) ** 2 * torch.exp(-log_var))

        layer1 = log_normal(z1, mu1, log_var1) - log_normal(z1, prior_mu1, prior_log_var1)
        layer2 = log_normal(z2, mu2, log_var2) + 0.5 * (math.log(2 * math.pi) + z2 ** 2)
        return torch.cat([layer1, layer2], -1)

    def posterior_means(self, x: torch.Tensor, draws: int = 10, generator: torch.Generator | None = None,
                        ) -> torch.Tensor:
        """E_q[z1|x] = μ1(x) and E_q[z2|x] = E_{z1 ~ q(z1|x)} μ2(z1) (by ``draws`` draws of z1), side by side:
        x (B, D) → (B, J1 + J2) — whose variance over x is each unit's activity (Burda et al. 2015, Section 5.2)."""
        mu1, log_var1 = self.q_z1(x)
        eps1 = self.draw_noise(draws, x.shape[0], generator)[0]
        mu2 = self.q_z2(mu1 + torch.exp(0.5 * log_var1) * eps1)[0].mean(0)
        return torch.cat([mu1, mu2], -1)

    @torch.no_grad()
    def sample(self, n: int, generator: torch.Generator | None = None) -> torch.Tensor:
        """Mean images of n draws from the model's prior, z2 ~ N(0, I) then z1 ~ p(z1|z2): the decoder's
        E[x|z1], (n, D) — as :meth:`vae_lib.model.vae.VAE.sample` for one layer."""
        eps1, eps2 = self.draw_noise(1, check_int("n", n), generator)
        mu1, log_var1 = self.p_z1(eps2[0])                                # z2 = ε2: the standard normal prior
        return torch.sigmoid(self.p_x(mu1 + torch.exp(0.5 * log_var1) * eps1[0]))

    def elbo(self, x: torch.Tensor, eps: tuple[torch.Tensor, torch.Tensor]) -> torch.Tensor:
        """The ELBO's Monte Carlo estimate per example, (1/L) Σ_l log w_l over the L draws of eps: (B,)."""
        return self.log_weights(x, eps).mean(0)

    def iwae_bound(self, x: torch.Tensor, k: int, generator: torch.Generator | None = None,
                   eps: tuple[torch.Tensor, torch.Tensor] | None = None) -> torch.Tensor:
        """The k-sample bound's estimate per example, log (1/k) Σ_i w_i (Burda et al., Eq. 8): (B,).
        The noise is drawn from ``generator`` unless ``eps`` (k draws) is given."""
        if eps is None:
            eps = self.draw_noise(k, x.shape[0], generator)
        elif eps[0].shape[0] != k:
            raise ValueError(f"eps holds {eps[0].shape[0]} draws, not k = {k}")
        return torch.logsumexp(self.log_weights(x, eps), 0) - math.log(k)

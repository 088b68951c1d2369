"""The evidence lower bound and its SGVB estimators — Kingma & Welling (2013), Section 2.3.

Every function returns one value per example; the caller reduces (``.mean()`` over the batch).
Reconstruction terms are summed over pixels and KL terms over latent dimensions.
"""

from __future__ import annotations

import math
from typing import NamedTuple, Protocol

import torch

LOG_2PI = math.log(2 * math.pi)
ESTIMATORS = ("A", "B")


class LatentVariableModel(Protocol):
    """What the objectives need from a model: an amortized diagonal-Gaussian q(z|x) and log p(x|z)."""

    latent_dim: int

    def encode(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]: ...

    def log_likelihood(self, x: torch.Tensor, z: torch.Tensor) -> torch.Tensor: ...


class ELBOTerms(NamedTuple):
    """Per-example terms of the bound L(x) = reconstruction − kl (the paper's Eq. 7).

    reconstruction: E_q[log p(x|z)], the negative distortion, (batch,);
    kl: KL(q(z|x) ‖ p(z)), the rate, (batch,).
    """

    reconstruction: torch.Tensor
    kl: torch.Tensor

    @property
    def bound(self) -> torch.Tensor:
        """The evidence lower bound per example, (batch,)."""
        return self.reconstruction - self.kl


def kl_to_standard_normal(mu: torch.Tensor, log_var: torch.Tensor) -> torch.Tensor:
    """KL(N(mu, diag(exp(log_var))) ‖ N(0, I)) = −½ Σ_j (1 + log σ_j² − μ_j² − σ_j²) — Kingma & Welling
    (2013), Appendix B. mu, log_var: (..., J) → (...), summed over latent dimensions."""
    return -0.5 * (1 + log_var - mu ** 2 - log_var.exp()).sum(-1)


def log_normal_diag(z: torch.Tensor, mu: torch.Tensor, log_var: torch.Tensor) -> torch.Tensor:
    """log N(z; mu, diag(exp(log_var))) = −½ Σ_j (log 2π + log σ_j² + (z_j − μ_j)²/σ_j²): (...)."""
    return -0.5 * (LOG_2PI + log_var + (z - mu) ** 2 * torch.exp(-log_var)).sum(-1)


def log_standard_normal(z: torch.Tensor) -> torch.Tensor:
    """log N(z; 0, I) = −½ Σ_j (log 2π + z_j²): (..., J) → (...)."""
    return -0.5 * (LOG_2PI + z ** 2).sum(-1)


def reparameterize(mu: torch.Tensor, log_var: torch.Tensor, eps: torch.Tensor | None = None,
                   n_samples: int | None = None, generator: torch.Generator | None = None) -> torch.Tensor:
    """z = μ + σ ⊙ ε with ε ~ N(0, I) — the reparameterization trick, the paper's Eq. (10).

    mu, log_var: (B, J). With ``n_samples=None`` → z (B, J); with ``n_samples=L`` → z (L, B, J).
    ``eps``, when given, is used as is (it fixes the randomness for tests)."""
    if eps is None:
        shape = mu.shape if n_samples is None else (n_samples, *mu.shape)
        eps = torch.randn(shape, generator=generator, device=mu.device, dtype=mu.dtype)
    return mu + torch.exp(0.5 * log_var) * eps


def elbo(model: LatentVariableModel, x: torch.Tensor, n_samples: int = 1, estimator: str = "B",
         eps: torch.Tensor | None = None, generator: torch.Generator | None = None) -> ELBOTerms:
    """The SGVB estimate of the ELBO per example, with L = ``n_samples`` draws per data point.

    Estimator A (Eq. 6): (1/L) Σ_l [log p(x|z_l) + log p(z_l) − log q(z_l|x)], reported as
    reconstruction (1/L) Σ_l log p(x|z_l) and a Monte-Carlo KL (1/L) Σ_l [log q(z_l|x) − log p(z_l)].
    Estimator B (Eq. 7): −KL(q(z|x) ‖ p(z)) in closed form + (1/L) Σ_l log p(x|z_l).
    x: (B, D); eps (optional): (L, B, J) → ELBOTerms of (B,) tensors.
    """
    if estimator not in ESTIMATORS:
        raise ValueError(f"unknown estimator {estimator!r}; choose 'A' (Monte-Carlo KL) or 'B' (analytic KL)")
    if n_samples < 1:
        raise ValueError(f"n_samples must be at least 1, got {n_samples}")
    mu, log_var = model.encode(x)                                       # (B, J) each
    z = reparameterize(mu, log_var, eps=eps, n_samples=n_samples, generator=generator)  # (L, B, J)
    reconstruction = model.log_likelihood(x, z).mean(0)                 # (B,)
    if estimator == "B":
        kl = kl_to_standard_normal(mu, log_var)
    else:
        kl = (log_normal_diag(z, mu, log_var) - log_standard_normal(z)).mean(0)
    return ELBOTerms(reconstruction, kl)

"""Exact inference for small models — the ground truth the book checks bounds and estimators
against: quadrature over a grid of latent points (any model whose latent space is small enough
to tile), and the ELBO of the linear-Gaussian model in closed form.

Quadrature replaces the integral p(x) = ∫ p(x|z) p(z) dz (Kingma & Welling, 2013, Section 2.1)
by a sum over the midpoints z_g of n^J equal cells of volume ΔV:

    p(x) ≈ Σ_g p(x|z_g) p(z_g) ΔV,        p(z_g|x) = p(x|z_g) p(z_g) / p(x).

Its cost, n^J evaluations of the joint per data point, is what rules it out for a real VAE.
"""

from __future__ import annotations

import math
from typing import NamedTuple

import torch

from vae_lib.model.objectives import LOG_2PI, ELBOTerms, kl_to_standard_normal
from vae_lib.inference.linear_gaussian import LinearGaussian


class GridPosterior(NamedTuple):
    """Quadrature results: ``log_px`` the estimate of log p(x), (B,); ``log_posterior`` the
    posterior density log p(z_g|x) at every grid point, (G, B)."""

    log_px: torch.Tensor
    log_posterior: torch.Tensor


def latent_grid(n_per_dim: int, latent_dim: int, limit: float = 6.0,
                dtype: torch.dtype = torch.float64) -> tuple[torch.Tensor, float]:
    """Midpoints of the n^J equal cells tiling the cube [−limit, limit]^J: returns the points
    (n^J, J), the last dimension varying fastest, and the volume ΔV = (2·limit/n)^J of one cell."""
    if n_per_dim < 1 or latent_dim < 1:
        raise ValueError(f"need n_per_dim >= 1 and latent_dim >= 1, got {n_per_dim} and {latent_dim}")
    width = 2 * limit / n_per_dim
    axis = -limit + width * (torch.arange(n_per_dim, dtype=dtype) + 0.5)          # (n,)
    points = torch.cartesian_prod(*[axis] * latent_dim).reshape(-1, latent_dim)    # (n^J, J)
    return points, width ** latent_dim


def grid_posterior(log_joint: torch.Tensor, cell_volume: float) -> GridPosterior:
    """log p(x) ≈ log Σ_g exp(log p(x, z_g)) + log ΔV (the midpoint rule for p(x) = ∫ p(x, z) dz)
    and Bayes' rule log p(z_g|x) = log p(x, z_g) − log p(x), in log space with log-sum-exp.
    log_joint: log p(x, z_g) on the grid, (G, B) → GridPosterior of (B,) and (G, B)."""
    log_px = torch.logsumexp(log_joint, dim=0) + math.log(cell_volume)
    return GridPosterior(log_px, log_joint - log_px)


def linear_gaussian_expected_log_likelihood(model: LinearGaussian, x: torch.Tensor, mu: torch.Tensor,
                                            log_var: torch.Tensor) -> torch.Tensor:
    """E_q[log p(x|z)] for q(z) = N(mu, diag(exp(log_var))) and p(x|z) = N(Wz + b, σ²I), in
    closed form: −½ D log(2πσ²) − (‖x − W mu − b‖² + Σ_j ‖W_{:,j}‖² σ_j²) / (2σ²) — the
    reconstruction term of Kingma & Welling (2013), Eq. 3, without sampling.
    x: (B, D); mu, log_var: (B, J) → (B,). Differentiable in every argument."""
    noise_var = model.log_noise_var.exp()
    d = x.shape[-1]
    residual = x - mu @ model.weight.T - model.bias                              # (B, D)
    spread = (log_var.exp() * (model.weight ** 2).sum(0)).sum(-1)                # Σ_j ‖W_j‖² σ_j²: (B,)
    return -0.5 * d * (LOG_2PI + model.log_noise_var) - ((residual ** 2).sum(-1) + spread) / (2 * noise_var)


def linear_gaussian_elbo(model: LinearGaussian, x: torch.Tensor) -> ELBOTerms:
    """The exact ELBO of the linear-Gaussian model under its encoder q(z|x): the closed-form
    reconstruction E_q[log p(x|z)] and KL(q(z|x) ‖ N(0, I)) of Eq. 3. x: (B, D) → ELBOTerms of (B,)."""
    mu, log_var = model.encode(x)
    return ELBOTerms(linear_gaussian_expected_log_likelihood(model, x, mu, log_var),
                     kl_to_standard_normal(mu, log_var))

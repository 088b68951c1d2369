"""The ELBO playground's numbers, in PyTorch: for a binarized image x of a J = 2 Bernoulli VAE and a diagonal
Gaussian q, log p(x) on a grid; the ELBO's two terms, the reconstruction E_q[log p(x|z)] and KL(q ‖ N(0, I)),
and ELBO(q) = reconstruction − KL (Kingma & Welling, 2013, Eq. 3 and Appendix B); and KL(q ‖ p(z|x)) computed on
its own, on the posterior's grid — so that log p(x) = ELBO(q) + KL(q ‖ p(z|x)) (Eq. 1) is a check the numbers
pass, not the definition of one of them. The page of :mod:`vae_lib.figures.playground` computes them by these
rules in JavaScript, from the same float16 weights (:func:`playground_readout`).

The page's two quadratures (the rules are :class:`PlaygroundGrids`):

- log p(x), once per image: the midpoint rule on n × n cells of a square box (n = ``grid_size``),
  log p(x) ≈ logsumexp_g log p(x, z_g) + log ΔA (as :mod:`vae_lib.inference.quadrature`). The box is placed in Python
  (:func:`vae_lib.figures.playground.playground_setup`): it holds the posterior's mean ± 6 posterior standard deviations (from a
  converged :func:`vae_lib.inference.quadrature.quadrature_log_marginal` box) and the encoder's and the best q's
  5σ ellipses. With the model's own weights it agrees with converged quadrature to 3e-4 nats on four test
  images of latent2_h400: the midpoint rule's O(h²) error at the ReLU decoder's kinks, not the box.
- E_q[log p(x|z)], at every slider move: a fixed rule mapped through q, z = μ + σ ⊙ u, so it is as accurate
  for a narrow q as for a wide one. The rule is the midpoint rule in q's own coordinates: P × P cells
  (P = ``q_points``) on [−k, k]² (k = ``q_half_width``), weights φ(u_a) φ(u_b) renormalized to sum to 1. It beats
  Gauss–Hermite at equal cost here: a ReLU decoder makes log p(x|z) kinked, which costs Gauss–Hermite
  its spectral accuracy. Against a 120² rule on ±8, over the four measured test images of latent2_h400:
  24² on ±5 errs by at most 0.0015 nats at the encoder's and the best q, 0.006 for q five times wider,
  0.15 at q = N(0, I); Gauss–Hermite 20² errs by 0.0055, 0.12 and 0.64.

KL(q ‖ p(z|x)) = ∫ q(z) [log q(z) − log p(z|x)] dz, on the posterior's grid: the midpoint rule on the same n × n
cells, with log p(z_g|x) = log p(x, z_g) − log p(x) from the grid and q's weights q(z_g) ΔA renormalized to sum
to 1 (the share they summed to before is ``q_mass``). It needs q to lie inside the box and to be wider than a
cell (:func:`grid_resolves`); then it agrees with log p(x) − ELBO(q) to a few thousandths of a nat
(tests/test_playground.py).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import NamedTuple

import torch

from vae_lib.base.params import check_float, check_int
from vae_lib.model.objectives import kl_to_standard_normal, log_standard_normal
from vae_lib.model.vae import VAE
from vae_lib.figures.web_explorer import decoder_mean_layers


@dataclass(frozen=True)
class PlaygroundGrids:
    """The page's quadrature rules (see the module docstring)."""

    grid_size: int = 64         # cells per axis of the posterior's box: log p(x) and the heat map
    q_points: int = 24          # points per axis of the rule for E_q[log p(x|z)], in q's own coordinates
    q_half_width: float = 5.0   # that rule spans μ ± q_half_width · σ on each axis
    box_sds: float = 6.0        # the box holds the posterior mean ± box_sds posterior standard deviations

    def __post_init__(self) -> None:
        check_int("grid_size", self.grid_size, 2)
        check_int("q_points", self.q_points, 1)
        check_float("q_half_width", self.q_half_width, 0, low_open=True)
        check_float("box_sds", self.box_sds, 0, low_open=True)


class Readout(NamedTuple):
    """The page's numbers per image, (B,) each, in nats: ``log_px`` (grid); ``elbo`` of the q asked for,
    = ``reconstruction`` (E_q[log p(x|z)]) − ``kl_prior`` (KL(q ‖ N(0, I)), closed form); ``kl``, KL(q ‖ p(z|x))
    on the posterior's grid, computed without the ELBO; and ``q_mass``, the share of q the grid's midpoint
    rule sees before renormalizing (near 1 where the grid resolves q)."""

    log_px: torch.Tensor
    elbo: torch.Tensor
    kl: torch.Tensor
    reconstruction: torch.Tensor
    kl_prior: torch.Tensor
    q_mass: torch.Tensor


def q_axis(grids: PlaygroundGrids) -> tuple[torch.Tensor, torch.Tensor]:
    """One axis of the E_q rule: the midpoints u (P,) of P equal cells on ±q_half_width and weights
    φ(u) renormalized to sum to 1 (P,), float64. The page ships these two lists."""
    n, k = grids.q_points, grids.q_half_width
    u = -k + (2 * k / n) * (torch.arange(n, dtype=torch.float64) + 0.5)
    w = torch.exp(-0.5 * u ** 2)
    return u, w / w.sum()


def q_rule(grids: PlaygroundGrids, dtype: torch.dtype = torch.float64) -> tuple[torch.Tensor, torch.Tensor]:
    """The E_q rule in the plane: points u (P², 2), the last axis varying fastest, and weights
    w_a w_b (P²,) summing to 1, so E_q[f] ≈ Σ_g w_g f(μ + σ ⊙ u_g)."""
    u, w = q_axis(grids)
    return torch.cartesian_prod(u, u).to(dtype), torch.outer(w, w).reshape(-1).to(dtype)


def decoder_logits(model: VAE, z: torch.Tensor, float16: bool = True) -> torch.Tensor:
    """The Bernoulli decoder's logits a(z) in float64 arithmetic — with every weight rounded to float16
    (``float16=True``, what the page computes) or as the model holds them. z (..., 2) → (..., D)."""
    linears, activation = decoder_mean_layers(model)
    h = z.double()
    for k, lin in enumerate(linears):
        w, b = lin.weight.detach(), lin.bias.detach()
        if float16:
            w, b = w.half(), b.half()
        h = h @ w.double().to(h.device).T + b.double().to(h.device)
        if k < len(linears) - 1:
            h = torch.tanh(h) if activation == "tanh" else torch.relu(h)
    return h


def bernoulli_log_likelihood(x: torch.Tensor, logits: torch.Tensor) -> torch.Tensor:
    """log p(x|z) = Σ_d x_d log σ(a_d) + (1 − x_d) log(1 − σ(a_d)) = Σ_d x_d a_d − softplus(a_d), with
    softplus(a) = max(a, 0) + log1p(exp(−|a|)) (stable for any a). x (D,) or broadcastable; logits (..., D) → (...)."""
    softplus = logits.clamp(min=0) + torch.log1p(torch.exp(-logits.abs()))
    return (x * logits - softplus).sum(-1)


def grid_kl(log_joint: torch.Tensor, log_px: torch.Tensor, z: torch.Tensor, mu: torch.Tensor,
            log_var: torch.Tensor, cell_area: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """KL(q ‖ p(z|x)) by the midpoint rule on the posterior's grid: log_joint (G,) = log p(x, z_g) at the
    cell midpoints z (G, 2), log_px the grid's log p(x), q = N(mu, diag(exp(log_var))) with mu, log_var (2,).
    Returns (KL, q_mass): Σ_g w_g [log q(z_g) − log p(z_g|x)] with w_g = q(z_g) ΔA / q_mass, and
    q_mass = Σ_g q(z_g) ΔA."""
    log_q = (-0.5 * ((z - mu) ** 2 / log_var.exp() + log_var + math.log(2 * math.pi))).sum(-1)   # (G,)
    log_w = log_q + torch.log(cell_area)
    q_mass = torch.logsumexp(log_w, 0)
    w = torch.exp(log_w - q_mass)                                                                # sums to 1
    return w @ (log_q - (log_joint - log_px)), q_mass.exp()


def grid_resolves(readout: Readout, log_var: torch.Tensor, half_width: torch.Tensor,
                  grids: PlaygroundGrids = PlaygroundGrids(), mass_tol: float = 1e-3) -> torch.Tensor:
    """Where the grid's KL can be trusted, (B,) bool: q's midpoint weights sum to 1 within ``mass_tol`` and
    both of q's σ are at least two cells wide. log_var (B, 2), half_width (B,)."""
    cell = 2 * half_width.double() / grids.grid_size                                             # (B,)
    wide = (torch.exp(0.5 * log_var.double()) >= 2 * cell[:, None]).all(-1)
    return wide & ((readout.q_mass.double() - 1).abs() <= mass_tol)


@torch.no_grad()
def playground_readout(model: VAE, x: torch.Tensor, mu: torch.Tensor, log_var: torch.Tensor, centre: torch.Tensor,
                       half_width: torch.Tensor, grids: PlaygroundGrids = PlaygroundGrids(),
                       float16: bool = True) -> Readout:
    """The page's numbers for q = N(mu, diag(exp(log_var))), computed in PyTorch (float64 arithmetic):
    log p(x) by the midpoint rule on the box centre ± half_width; the reconstruction E_q[log p(x|z)] by the
    rule :func:`q_rule`, the closed-form KL(q ‖ N(0, I)) and ELBO(q), their difference; KL(q ‖ p(z|x)) by
    :func:`grid_kl` on the same box. x (B, D) binary; mu, log_var, centre (B, 2); half_width (B,) →
    Readout of (B,). ``float16=False`` uses the model's own weights."""
    u, w = q_rule(grids)
    u, w = u.to(x.device), w.to(x.device)
    n = grids.grid_size
    log_px, expected, kl, q_mass = [], [], [], []
    for xi, mi, lvi, ci, ri in zip(x.double(), mu.double(), log_var.double(), centre.double(), half_width.double()):
        h = 2 * ri / n
        axis = torch.arange(n, dtype=torch.float64, device=x.device) + 0.5
        z = torch.cartesian_prod(ci[0] - ri + h * axis, ci[1] - ri + h * axis)                      # (n², 2)
        log_joint = bernoulli_log_likelihood(xi, decoder_logits(model, z, float16)) + log_standard_normal(z)
        log_px.append(torch.logsumexp(log_joint, 0) + 2 * torch.log(h))
        kl_i, mass_i = grid_kl(log_joint, log_px[-1], z, mi, lvi, h ** 2)
        kl.append(kl_i)
        q_mass.append(mass_i)
        z_q = mi + torch.exp(0.5 * lvi) * u                                                         # (P², 2)
        expected.append(w @ bernoulli_log_likelihood(xi, decoder_logits(model, z_q, float16)))
    reconstruction = torch.stack(expected)
    kl_prior = kl_to_standard_normal(mu.double(), log_var.double())
    return Readout(torch.stack(log_px), reconstruction - kl_prior, torch.stack(kl), reconstruction, kl_prior,
                   torch.stack(q_mass))

"""Exact log p(x) for small latent spaces (J ≤ 3) by numerical integration over z, on a grid placed
per image around the posterior, refined until it stops moving.

The midpoint rule on n cells per axis of the box c ± k·s (c, s: (J,) per image):

    log p(x) ≈ logsumexp_g [log p(x|z_g) + log p(z_g)] + log ΔV,   ΔV = Π_j (2 k s_j / n),

the midpoints z_g = c + s ⊙ u_g, u_g on :func:`vae_lib.inference.exact_inference.latent_grid`, and p(z) the
model's prior (:func:`vae_lib.model.objectives.log_prior`: N(0, I), or a learned one). For a smooth,
Gaussian-like posterior its error falls exponentially with n, and the truncation error with k.

Convergence: level i uses n = n_start · 2^i cells per axis and half-width k = half_width + i.
Level 0's box is the encoder's μ ± k σ; every later box is re-placed at the previous grid's own
posterior mean ± k posterior standard deviations (at least one of its cells wide), so an encoder
that is off-centre or too narrow — encoders underestimate posterior variance — costs a level, not
the answer. An image stops when its value moves by less than ``tol`` from the previous level.

The guard: a grid around the encoder's mean sees only the mode the encoder points at. Before the
local pass, a coarse grid over the wide prior box [−6, 6]^J measures how much of the posterior
lies outside the local box (by more than one coarse cell); if that share exceeds ``guard_tol``,
the box is re-placed at the mean ± k standard deviations of the coarse grid's posterior, which
spans every mode the coarse grid resolves. A mode narrower than a coarse cell (12/n_wide) can
still slip between the coarse points; ``outside_share`` reports what the coarse grid saw. The wide box suits
N(0, I); a learned prior whose mass lies beyond it (a mixture's means far out) needs a larger ``wide_limit``.
"""

from __future__ import annotations

import math
from typing import NamedTuple

import torch

from vae_lib.base.params import check_float, check_int
from vae_lib.model.objectives import LatentVariableModel, check_observations, log_prior
from vae_lib.inference.exact_inference import grid_posterior, latent_grid

MAX_LATENT_DIM = 3   # n^J joint evaluations per image: beyond 3 dimensions a grid is out of reach


class Quadrature(NamedTuple):
    """Per-image results, (B,) each: ``log_px`` the converged log p(x); ``change`` the absolute
    difference of the last two levels' values, the convergence record; ``converged`` change < tol;
    ``n_per_dim`` and ``half_width`` of the last level, whose box is ``centre`` ± half_width ·
    ``scale`` ((B, J) each); ``log_px_wide`` the coarse wide-box value; ``outside_share`` the coarse
    grid's share of the posterior outside the final box; ``recentred`` whether the guard moved the
    first box."""

    log_px: torch.Tensor
    change: torch.Tensor
    converged: torch.Tensor
    n_per_dim: torch.Tensor
    half_width: torch.Tensor
    log_px_wide: torch.Tensor
    outside_share: torch.Tensor
    recentred: torch.Tensor
    centre: torch.Tensor
    scale: torch.Tensor


class BoxIntegral(NamedTuple):
    """``log_px`` log ∫_box p(x, z) dz, (B,); ``mean`` and ``std`` of the posterior restricted to
    the box, from the same grid, (B, J)."""

    log_px: torch.Tensor
    mean: torch.Tensor
    std: torch.Tensor


def box_log_marginal(model: LatentVariableModel, x: torch.Tensor, centre: torch.Tensor, scale: torch.Tensor,
                     n_per_dim: int, half_width: float, chunk_size: int = 2 ** 15) -> BoxIntegral:
    """log ∫_box p(x|z) p(z) dz over the box centre ± half_width · scale by the midpoint rule with
    ``n_per_dim`` cells per axis, and the grid posterior's mean and standard deviation. x (B, D);
    centre, scale (B, J) → BoxIntegral. The grid is visited ``chunk_size`` (points × images) at a
    time; each chunk's log-sum-exp and moments are folded into running ones."""
    u, unit_volume = latent_grid(n_per_dim, scale.shape[-1], half_width, x.dtype)
    u = u.to(x.device)
    log_volume = math.log(unit_volume) + scale.log().sum(-1)               # log ΔV per image: (B,)
    total = torch.full((len(x),), -math.inf, dtype=x.dtype, device=x.device)
    m1, m2 = torch.zeros_like(centre), torch.zeros_like(centre)            # E[u], E[u²] on the grid: (B, J)
    for u_chunk in u.split(max(1, chunk_size // len(x))):
        z = centre + scale * u_chunk[:, None, :]                          # (G, B, J)
        log_joint = model.log_likelihood(x, z) + log_prior(model, z)      # (G, B)
        chunk_total = torch.logsumexp(log_joint, 0)
        new_total = torch.logaddexp(total, chunk_total)
        prob = torch.nan_to_num(torch.exp(log_joint - chunk_total))       # the chunk's own posterior: (G, B)
        old_w, new_w = (torch.nan_to_num(torch.exp(t - new_total)).unsqueeze(-1) for t in (total, chunk_total))
        m1 = old_w * m1 + new_w * (prob.T @ u_chunk)
        m2 = old_w * m2 + new_w * (prob.T @ u_chunk ** 2)
        total = new_total
    std_u = (m2 - m1 ** 2).clamp(min=0).sqrt()
    return BoxIntegral(total + log_volume, centre + scale * m1, scale * std_u)


def _wide_pass(model: LatentVariableModel, x: torch.Tensor, limit: float, n_per_dim: int, chunk_size: int):
    """The coarse grid over [−limit, limit]^J: its log p(x) (B,), points (G, J), posterior cell
    probabilities (G, B), posterior mean and standard deviation (B, J) (at least one cell wide)."""
    points, volume = latent_grid(n_per_dim, model.latent_dim, limit, x.dtype)
    points = points.to(x.device)
    log_joint = torch.cat([model.log_likelihood(x, z[:, None, :].expand(-1, len(x), -1))
                           + log_prior(model, z)[:, None]
                           for z in points.split(max(1, chunk_size // len(x)))])          # (G, B)
    grid = grid_posterior(log_joint, volume)
    prob = (grid.log_posterior + math.log(volume)).exp()                   # (G, B), sums to 1 over G
    mean = prob.T @ points                                                 # (B, J)
    std = (prob.T @ points ** 2 - mean ** 2).clamp(min=0).sqrt().clamp(min=2 * limit / n_per_dim)
    return grid.log_px, points, prob, mean, std


def _outside_share(points, prob, centre, scale, half_width, cell):
    """The coarse posterior mass at points more than one coarse cell outside the box: (B,)."""
    outside = ((points[:, None, :] - centre).abs() > half_width * scale + cell).any(-1)   # (G, B)
    return (prob * outside).sum(0)


def laplace_box(model: LatentVariableModel, x: torch.Tensor, start: torch.Tensor, steps: int = 50,
                min_scale: float = 1e-3) -> tuple[torch.Tensor, torch.Tensor]:
    """The posterior mode of every image and the Laplace approximation's standard deviations there:
    (centre, scale), both (B, J). The mode maximizes log p(x|z) + log p(z) from ``start`` (B, J) by
    L-BFGS (the images are independent, so the sum over the batch is maximized image by image); the
    scale is sqrt of the diagonal of the inverse Hessian of −log p(x, z) at the mode (the posterior's
    marginal standard deviations if it were Gaussian), floored at ``min_scale``. For a model without a
    trained encoder (Monte Carlo EM's decoder), whose posteriors can be far narrower than a coarse
    grid's cells."""
    with torch.enable_grad():
        z = start.detach().clone().requires_grad_(True)
        neg_joint = lambda: -(model.log_likelihood(x, z) + log_prior(model, z)).sum()
        opt = torch.optim.LBFGS([z], lr=1.0, max_iter=steps, line_search_fn="strong_wolfe")

        def closure():
            opt.zero_grad()
            loss = neg_joint()
            loss.backward()
            return loss

        opt.step(closure)
        z = z.detach().requires_grad_(True)
        grad = torch.autograd.grad(neg_joint(), z, create_graph=True)[0]                      # (B, J)
        hessian = torch.stack([torch.autograd.grad(grad[:, i].sum(), z, retain_graph=True)[0]
                               for i in range(z.shape[1])], dim=1)                            # (B, J, J)
    eye = torch.eye(z.shape[1], dtype=z.dtype, device=z.device)
    hessian = 0.5 * (hessian + hessian.transpose(1, 2)).detach() + 1e-6 * eye
    cov = torch.linalg.inv(hessian)
    scale = torch.diagonal(cov, dim1=1, dim2=2).clamp(min=min_scale ** 2).sqrt()
    bad = ~torch.isfinite(scale).all(-1) | (torch.linalg.eigvalsh(hessian)[:, 0] <= 0)      # not a maximum
    return z.detach(), torch.where(bad[:, None], torch.ones_like(scale), scale)


def _start_box(model: LatentVariableModel, x: torch.Tensor, centre: str, points: torch.Tensor, prob: torch.Tensor,
               wide_mean: torch.Tensor, wide_std: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Level 0's box centre and scale (B, J) as ``centre`` asks, before the guard (:func:`quadrature_log_marginal`)."""
    if centre == "encoder":
        mu, log_var = (t.detach() for t in model.encode(x))
        return mu, torch.exp(0.5 * log_var)
    if centre == "mode":
        return laplace_box(model, x, points[prob.argmax(0)])
    return wide_mean, wide_std


@torch.no_grad()
def quadrature_log_marginal(model: LatentVariableModel, x: torch.Tensor, tol: float = 1e-4, n_start: int = 16,
                            half_width: float = 4.0, max_levels: int = 5, max_points: int = 2 ** 21,
                            centre: str = "encoder", guard: bool = True, guard_tol: float = 1e-3, wide_limit: float = 6.0,
                            n_wide: int | None = None, chunk_size: int = 2 ** 15) -> Quadrature:
    """log p(x) = log ∫ p(x|z) p(z) dz by quadrature for every image of x (B, D), J ≤ 3 → Quadrature.

    The box starts at the encoder's μ ± ``half_width`` σ (``centre="encoder"``), at the coarse
    wide grid's posterior mean ± ``half_width`` standard deviations (``centre="wide"``), or at the
    posterior mode found from the coarse grid's most probable point ± ``half_width`` Laplace standard
    deviations (``centre="mode"``, :func:`laplace_box`: for posteriors narrower than a coarse cell); the guard
    (``guard``, see the module docstring) may move it there. Levels refine and widen it (``n_start``
    · 2^i cells per axis, half-width + i) until the value moves by less than ``tol``, or
    ``max_levels`` levels have run, or the next level would exceed ``max_points`` grid points per
    image (2^21: 128³ for J = 3); ``n_wide`` cells per axis of the coarse grid (default 96, 48, 32
    for J = 1, 2, 3). Use a float64 model and data (``model.double()``) for ``tol`` near 1e-4: in
    float32 the rounding of log p(x|z) itself (about 1e-7 of its size) approaches it."""
    j = model.latent_dim
    if j > MAX_LATENT_DIM:
        raise ValueError(f"quadrature needs latent_dim <= {MAX_LATENT_DIM}, got {j}: use importance sampling")
    check_observations(model, x)   # (B, D), finite, pixels in [0, 1]: 0–255 grey levels would give log p(x) > 0
    check_float("tol", tol, 0, low_open=True)
    check_int("n_start", n_start, 1)
    check_float("half_width", half_width, 0, low_open=True)
    check_int("max_levels", max_levels, 0)   # 0: the wide grid only (chapter 7b screens with it)
    check_int("max_points", max_points, 1)
    check_float("guard_tol", guard_tol, 0, 1, low_open=True)
    check_float("wide_limit", wide_limit, 0, low_open=True)
    if n_wide is not None:
        check_int("n_wide", n_wide, 2)
    check_int("chunk_size", chunk_size, 1)
    if centre not in ("encoder", "wide", "mode"):
        raise ValueError(f"centre must be 'encoder', 'wide' or 'mode', got {centre!r}")
    n_wide = n_wide or {1: 96, 2: 48, 3: 32}[j]
    log_px_wide, points, prob, wide_mean, wide_std = _wide_pass(model, x, wide_limit, n_wide, chunk_size)
    cell = 2 * wide_limit / n_wide
    box_centre, box_scale = _start_box(model, x, centre, points, prob, wide_mean, wide_std)
    recentred = torch.zeros(len(x), dtype=torch.bool, device=x.device)
    if guard and centre == "encoder":
        recentred = _outside_share(points, prob, box_centre, box_scale, half_width, cell) > guard_tol
        box_centre = torch.where(recentred[:, None], wide_mean, box_centre)
        box_scale = torch.where(recentred[:, None], wide_std, box_scale)

    value = torch.full((len(x),), math.nan, dtype=x.dtype, device=x.device)
    change = torch.full_like(value, math.inf)
    n_per_dim = torch.zeros(len(x), dtype=torch.long, device=x.device)
    widths = torch.zeros_like(value)
    box_centre, box_scale = box_centre.clone(), box_scale.clone()   # updated in place below
    final_centre, final_scale = box_centre.clone(), box_scale.clone()
    active = torch.ones(len(x), dtype=torch.bool, device=x.device)
    for level in range(max_levels):
        n, k = n_start * 2 ** level, half_width + level
        if level > 0 and n ** j > max_points:
            break
        idx = active.nonzero().squeeze(-1)
        box = box_log_marginal(model, x[idx], box_centre[idx], box_scale[idx], n, k, chunk_size)
        if level > 0:
            change[idx] = (box.log_px - value[idx]).abs()
        value[idx], n_per_dim[idx], widths[idx] = box.log_px, n, k
        final_centre[idx], final_scale[idx] = box_centre[idx], box_scale[idx]
        # the next box: this grid's posterior mean ± k standard deviations, at least one cell wide
        box_centre[idx], box_scale[idx] = box.mean, torch.maximum(box.std, 2 * k * box_scale[idx] / n)
        active = change >= tol
        if not active.any():
            break
    share = _outside_share(points, prob, final_centre, final_scale, widths[:, None], cell)
    return Quadrature(value, change, change < tol, n_per_dim, widths, log_px_wide, share, recentred,
                      final_centre, final_scale)


class CrossChecked(NamedTuple):
    """Per-image results, (B,) each: ``log_px`` the chosen value; ``converged`` whether it converged;
    ``second_box`` whether the wide-centred box was computed; ``disagree`` whether both boxes
    converged to values more than ``agree`` apart (the larger was kept)."""

    log_px: torch.Tensor
    converged: torch.Tensor
    second_box: torch.Tensor
    disagree: torch.Tensor


def cross_checked_log_marginal(model: LatentVariableModel, x: torch.Tensor, check: torch.Tensor | None = None,
                               agree: float = 0.05, both: bool = False, **settings) -> CrossChecked:
    """log p(x) by two differently placed quadrature boxes, for images whose posterior may have
    several modes: first a box at the posterior mode (``centre="mode"``), then, for the images where
    it did not converge or lies more than ``agree`` nats from ``check`` (say another protocol's values,
    (B,)), a box at the coarse wide grid's posterior mean ± its standard deviations
    (``centre="wide"``), which spans every mode the wide grid sees. A converged box integral is the
    integral over its box up to the tolerance, so it falls short of log p(x) by the mass outside the
    box: of two converged values the larger is kept; a converged value is preferred to one that did
    not converge. ``both`` computes the second box for every image (a second mode that the mode box and
    ``check`` both miss is found only so). ``settings`` go to :func:`quadrature_log_marginal`."""
    check_float("agree", agree, 0, low_open=True)
    first = quadrature_log_marginal(model, x, centre="mode", **settings)
    value, converged = first.log_px.clone(), first.converged.clone()
    redo = torch.ones_like(first.converged) if both else ~first.converged
    if check is not None:
        redo |= (first.log_px - check.to(first.log_px)).abs() > agree
    disagree = torch.zeros_like(redo)
    if redo.any():
        idx = redo.nonzero().squeeze(-1)
        second = quadrature_log_marginal(model, x[idx], centre="wide", **settings)
        a, ca, b, cb = first.log_px[idx], first.converged[idx], second.log_px, second.converged
        take_b = (cb & ~ca) | ((cb == ca) & (b > a))
        value[idx] = torch.where(take_b, b, a)
        converged[idx] = ca | cb
        disagree[idx] = ca & cb & ((a - b).abs() > agree)
    return CrossChecked(value, converged, redo, disagree)

"""Figures of chapters 7 and 7b: how the log-likelihood estimators err, what the posterior of one image
looks like beside the distributions that try to describe it, and paired shifts drawn as dots with
error bars (pictures of what would otherwise be tables).
"""

from __future__ import annotations

import math

import matplotlib.pyplot as plt
import torch
from matplotlib.axes import Axes
from matplotlib.patches import Ellipse

from vae_lib.model.objectives import log_standard_normal
from vae_lib.model.vae import VAE
from vae_lib.inference.exact_inference import grid_posterior, latent_grid
from vae_lib.inference.likelihood import mean_and_stderr


def plot_estimator_errors(errors: dict[str, dict[str, torch.Tensor]], seconds: dict[str, dict[str, float]],
                          ax: Axes | None = None) -> Axes:
    """Each estimator's mean error against the exact value (per-image ``estimate − exact``, nats), with
    ±2 standard errors, against its cost per image. ``errors[model][estimator]`` (B,) tensors,
    ``seconds[model][estimator]`` seconds per image. A symmetric-log y axis keeps errors of 0.01 and
    of 5 nats readable on one plot. Colours mean models, markers estimators; the key sits below the axes."""
    if ax is None:
        _, ax = plt.subplots(figsize=(7, 4.2))
    markers = "osD^v<>"
    estimators = list(dict.fromkeys(e for per_model in errors.values() for e in per_model))
    for m, (model, per_model) in enumerate(errors.items()):
        for e, estimator in enumerate(estimators):
            if estimator not in per_model:
                continue
            mean, se = mean_and_stderr(per_model[estimator].double())
            ax.errorbar(seconds[model][estimator], mean, yerr=2 * se, fmt=markers[e % len(markers)], color=f"C{m}",
                        capsize=3, ms=6, label=estimator if m == 0 else None)
        ax.plot([], [], color=f"C{m}", lw=6, label=model)
    ax.axhline(0, color="k", lw=0.6)
    ax.set_xscale("log")
    ax.set_yscale("symlog", linthresh=0.01)
    ax.set_xlabel("seconds per image (log scale)")
    ax.set_ylabel("mean error: estimate − exact (nats)")
    ax.legend(fontsize=8, ncol=4, loc="upper center", bbox_to_anchor=(0.5, -0.17))   # below: covers no marker
    return ax


def gaussian_ellipse(mu: torch.Tensor, log_var: torch.Tensor, n_sigma: float, **style) -> Ellipse:
    """The n-σ ellipse of a diagonal 2-D Gaussian N(mu, diag(exp(log_var)))."""
    sd = torch.exp(0.5 * log_var).tolist()
    return Ellipse(tuple(mu.tolist()), 2 * n_sigma * sd[0], 2 * n_sigma * sd[1], fill=False, **style)


@torch.no_grad()
def posterior_on_grid(model: VAE, x: torch.Tensor, centre: torch.Tensor, half_width: float,
                      n_grid: int = 120) -> tuple[torch.Tensor, tuple[float, float, float, float]]:
    """p(z|x) of one image x (1, D) of a J = 2 model on an n×n midpoint grid over the square of
    half-width ``half_width`` around ``centre`` (2,): the normalized density (n, n), indexed [z1, z2],
    and its extent (left, right, bottom, top) for ``imshow``."""
    if model.latent_dim != 2:
        raise ValueError(f"a picture of the posterior needs J = 2, not {model.latent_dim}")
    unit, volume = latent_grid(n_grid, 2, half_width, x.dtype)
    points = unit.to(x.device) + centre.to(x.device)
    log_joint = model.log_likelihood(x, points[:, None, :]) + log_standard_normal(points)[:, None]
    density = grid_posterior(log_joint, volume).log_posterior[:, 0].exp().reshape(n_grid, n_grid).cpu()
    c = centre.tolist()
    return density, (c[0] - half_width, c[0] + half_width, c[1] - half_width, c[1] + half_width)


#: the playground's colours (vae_lib/figures/playground.js): the encoder's q orange and dashed, the moved q red
ENCODER_COLOR, BEST_COLOR = "#e6550d", "#d62728"


def plot_posterior_and_approximations(ax: Axes, density: torch.Tensor, extent: tuple[float, float, float, float],
                                      encoder: tuple[torch.Tensor, torch.Tensor],
                                      best: tuple[torch.Tensor, torch.Tensor] | None = None,
                                      hmc_z: torch.Tensor | None = None, is_z: torch.Tensor | None = None,
                                      is_log_w: torch.Tensor | None = None) -> Axes:
    """The true posterior (blue shading), the encoder's q(z|x) (orange, dashed) and the best diagonal q* (red)
    as 1- and 2-σ ellipses — the colours of chapter 7b's playground (:mod:`vae_lib.figures.playground`),
    where red is the q the reader moves — HMC draws (green dots) and importance-sampling proposals from q
    (purple circles), each drawn with an area of 4 + 400 × its normalized weight (a floor keeps the
    lightest visible), so the reader sees
    which proposals carry the estimate."""
    ax.imshow(density.T, origin="lower", extent=extent, cmap="Blues", aspect="auto")
    if hmc_z is not None:
        ax.plot(hmc_z[:, 0].cpu(), hmc_z[:, 1].cpu(), ".", color="C2", ms=2, alpha=0.6, label="HMC draws from p(z|x)")
    if is_z is not None:
        w = torch.softmax(is_log_w.double(), 0).cpu() if is_log_w is not None else torch.full((len(is_z),), 1 / len(is_z))
        ax.scatter(is_z[:, 0].cpu(), is_z[:, 1].cpu(), s=4 + 400 * w, facecolors="none", edgecolors="C4", lw=0.8,
                   label="proposals from q (area grows with weight)")
    for n_sigma in (1, 2):
        ax.add_patch(gaussian_ellipse(*encoder, n_sigma, color=ENCODER_COLOR, lw=1.6, ls="--",
                                      label="encoder's q(z|x), 1 and 2 σ" if n_sigma == 1 else None))
        if best is not None:
            ax.add_patch(gaussian_ellipse(*best, n_sigma, color=BEST_COLOR, lw=1.4,
                                          label="best diagonal q*" if n_sigma == 1 else None))
    ax.set_xlim(extent[:2])
    ax.set_ylim(extent[2:])
    ax.set_xlabel("z₁")
    ax.set_ylabel("z₂")
    return ax


def plot_paired_shifts(shifts: dict[str, dict[str, tuple[float, float]]], xlabel: str, ax: Axes | None = None) -> Axes:
    """Paired per-image differences as dots with ±2 standard-error bars: ``shifts[group][label] =
    (mean, s.e.)``, one row per label, groups (e.g. models) in colours."""
    labels = list(dict.fromkeys(lab for per in shifts.values() for lab in per))
    if ax is None:
        _, ax = plt.subplots(figsize=(7, 0.9 + 0.45 * len(labels) * max(1, math.ceil(len(shifts) / 3))))
    n = len(shifts)
    for g, (group, per) in enumerate(shifts.items()):
        for i, lab in enumerate(labels):
            if lab in per:
                mean, se = per[lab]
                y = i + (g - (n - 1) / 2) * 0.8 / max(n, 1)
                ax.errorbar(mean, y, xerr=2 * se, fmt="o", color=f"C{g}", capsize=3, ms=5,
                            label=group if i == 0 else None)
    ax.axvline(0, color="k", lw=0.6)
    ax.set_yticks(range(len(labels)), labels)
    ax.invert_yaxis()
    ax.set_xlabel(xlabel)
    ax.legend(fontsize=8, loc="best")
    return ax

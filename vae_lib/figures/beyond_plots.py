"""Figures of the part *Beyond the paper*: the KL per latent unit, paired differences as a dot plot,
the rate–distortion plane with its lines of equal ELBO, and gradient signal-to-noise. Each takes data
and returns the figure; none writes files."""

from __future__ import annotations

from typing import Sequence

import matplotlib.pyplot as plt
import numpy as np
from matplotlib.figure import Figure

from vae_lib.base.statistics import Estimate


def plot_units(kl_per_unit: dict[str, Sequence[float]], activity: dict[str, Sequence[float]],
               threshold: float = 0.01) -> Figure:
    """Left: each run's KL per latent unit, sorted from largest, in nats. Right: each unit's activity
    Cov_x(E_q[z_u]) on a log axis, sorted the same way, with the active-unit threshold (Burda et al.)."""
    fig, (left, right) = plt.subplots(1, 2, figsize=(9, 3.6))
    for i, (label, kl) in enumerate(kl_per_unit.items()):
        order = np.argsort(-np.asarray(kl))
        left.plot(np.arange(1, len(kl) + 1), np.asarray(kl)[order], marker=".", color=f"C{i}", label=label)
        right.plot(np.arange(1, len(kl) + 1), np.maximum(np.asarray(activity[label])[order], 1e-8), marker=".",
                   color=f"C{i}", label=label)
    left.set(xlabel="latent unit (sorted by its KL)", ylabel="mean KL of the unit (nats)", title="KL per unit")
    right.axhline(threshold, color="k", linestyle="--", linewidth=1)
    right.text(len(kl) * 0.98, threshold * 1.6, "active above", ha="right", fontsize=8)
    right.set(xlabel="latent unit (same order)", ylabel="Cov_x(E_q[z_u])", yscale="log", title="activity per unit")
    left.legend(fontsize=8, frameon=False)
    fig.tight_layout()
    return fig


def plot_paired(differences: dict[str, Estimate], xlabel: str, title: str) -> Figure:
    """A dot plot of paired differences with ±2 standard-error bars, one row per comparison, and the
    line of no difference."""
    labels = list(differences)
    fig, ax = plt.subplots(figsize=(7, 0.45 * len(labels) + 1.2))
    for row, label in enumerate(labels):
        d = differences[label]
        ax.errorbar(d.mean, row, xerr=2 * d.stderr, fmt="o", color="C0", capsize=3)
    ax.axvline(0, color="k", linewidth=1)
    ax.set_yticks(range(len(labels)), labels)
    ax.invert_yaxis()
    ax.set(xlabel=xlabel, title=title)
    fig.tight_layout()
    return fig


def plot_rate_distortion(points: dict[str, tuple[float, float]], elbo_levels: Sequence[float] = (),
                         highlight: Sequence[str] = ()) -> Figure:
    """The rate–distortion plane (Alemi et al. 2018): rate R = E KL on the x axis, distortion
    D = −E log p(x|z) on the y axis, one labelled point per model, and dashed lines R + D = const — the
    models on one line have the same ELBO = −(R + D)."""
    fig, ax = plt.subplots(figsize=(7, 4.6))
    rates = np.array([r for r, _ in points.values()])
    distortions = np.array([d for _, d in points.values()])
    span = np.linspace(0, rates.max() * 1.1 + 1, 50)
    low = max(0, distortions.min() - 15)
    for level in elbo_levels:
        ax.plot(span, -level - span, color="0.7", linestyle="--", linewidth=1)
        x = min(span[-1] * 0.98, -level - low - 3)          # the label where the line leaves the axes
        ax.text(x, -level - x + 1.5, f"ELBO {level:.0f}", fontsize=7, color="0.4", ha="right", va="bottom")
    ax.plot(rates, distortions, color="0.8", zorder=1)
    for label, (r, d) in points.items():
        ax.scatter(r, d, s=40 if label in highlight else 22, color="C3" if label in highlight else "C0", zorder=2)
        ax.annotate(label, (r, d), textcoords="offset points", xytext=(5, 4), fontsize=8)
    ax.set(xlabel="rate R = E KL(q(z|x) ‖ p(z))  (nats)", ylabel="distortion D = −E log p(x|z)  (nats)",
           title="rate and distortion on the same test images", xlim=(0, span[-1]),
           ylim=(low, distortions.max() + 15))
    fig.tight_layout()
    return fig


def plot_snr(snr: dict[str, dict[int, float]], title: str) -> Figure:
    """Gradient signal-to-noise against k on log–log axes, one line per estimator and parameter group."""
    fig, ax = plt.subplots(figsize=(6, 3.8))
    for i, (label, by_k) in enumerate(snr.items()):
        ks = sorted(by_k)
        ax.plot(ks, [by_k[k] for k in ks], marker="o", color=f"C{i}", label=label)
    ax.set(xscale="log", yscale="log", xlabel="k (importance samples per example)", ylabel="mean |E g| / std(g)",
           title=title)
    ax.legend(fontsize=8, frameon=False)
    fig.tight_layout()
    return fig

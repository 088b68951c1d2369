"""Figures of the part *Beyond the paper*: the KL per latent unit, paired differences as a dot plot,
the rate–distortion plane with its lines of equal ELBO, and gradient signal-to-noise. Each takes data
and returns the figure; none writes files."""

from __future__ import annotations

import math
from typing import Iterable, Sequence

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
                         highlight: Sequence[str] = (), entropy_bound: float | None = None) -> Figure:
    """The rate–distortion plane (Alemi et al. 2018): rate R = E KL on the x axis, distortion
    D = −E log p(x|z) on the y axis, one labelled point per model, and dashed lines R + D = const — the
    models on one line have the same ELBO = −(R + D). With ``entropy_bound`` (an upper bound on the data's
    entropy H), the solid line R + D = ``entropy_bound``: the feasible region's edge D = H − R lies on or
    under that line (it is not shaded: only the region under the true edge is infeasible)."""
    fig, ax = plt.subplots(figsize=(7, 4.6))
    rates = np.array([r for r, _ in points.values()])
    distortions = np.array([d for _, d in points.values()])
    span = np.linspace(0, rates.max() * 1.1 + 1, 50)
    low = max(0, distortions.min() - 15)
    for level in elbo_levels:
        ax.plot(span, -level - span, color="0.7", linestyle="--", linewidth=1)
        x = min(span[-1] * 0.98, -level - low - 3)          # the label where the line leaves the axes
        ax.text(x, -level - x + 1.5, f"ELBO {level:.0f}", fontsize=7, color="0.4", ha="right", va="bottom")
    if entropy_bound is not None:
        ax.plot(span, entropy_bound - span, color="C2", linewidth=1.5)
        ax.text(span[-1] * 0.02, low + 2, rf"$R + \mathcal{{D}}$ = {entropy_bound:.1f}: the line $\mathcal{{D}} = H - R$ is on or under it",
                fontsize=7, color="C2", va="bottom")
    ax.plot(rates, distortions, color="0.8", zorder=1)
    for label, (r, d) in points.items():
        ax.scatter(r, d, s=40 if label in highlight else 22, color="C3" if label in highlight else "C0", zorder=2)
        ax.annotate(label, (r, d), textcoords="offset points", xytext=(5, 4), fontsize=8)
    ax.set(xlabel="rate R = E KL(q(z|x) ‖ p(z))  (nats)", ylabel=r"distortion $\mathcal{D}$ = −E log p(x|z)  (nats)",
           title="rate and distortion on the same test images", xlim=(0, span[-1]),
           ylim=(low, distortions.max() + 15))
    fig.tight_layout()
    return fig


def plot_snr(snr: dict[str, dict[int, float]], title: str) -> Figure:
    """Gradient signal-to-noise against k on log–log axes, one line per estimator and parameter group. A line
    that coincides with an earlier one (within 1 % at every k) would hide under it: it is drawn dashed with
    hollow markers, and its label says which line it equals."""
    fig, ax = plt.subplots(figsize=(6, 3.8))
    drawn: dict[str, dict[int, float]] = {}
    for i, (label, by_k) in enumerate(snr.items()):
        ks = sorted(by_k)
        same = next((other for other, o in drawn.items() if sorted(o) == ks
                     and all(abs(o[k] - by_k[k]) <= 0.01 * abs(o[k]) for k in ks)), None)
        style = dict(ls="--", mfc="none", ms=9, label=f"{label} (= {same})") if same else dict(label=label)
        ax.plot(ks, [by_k[k] for k in ks], marker="o", color=f"C{i}", **style)
        drawn[label] = by_k
    ax.set(xscale="log", yscale="log", xlabel="k (importance samples per example)", ylabel="mean |E g| / std(g)",
           title=title)
    ax.legend(fontsize=8, frameon=False)
    fig.tight_layout()
    return fig


def late_floor(curves: Iterable[Sequence[float]], start: int = 10, margin: float = 2.0) -> float | None:
    """A y-axis floor for :func:`plot_learning_curves` that keeps every curve in view from its ``start``-th value on
    (the first epochs, far lower, fall below it): the lowest of those values less ``margin``, rounded down to a whole
    number; None when no curve is that long."""
    late = [v for y in curves for v in list(y)[start - 1:]]
    return math.floor(min(late) - margin) if late else None


def plot_learning_curves(by_epoch: dict[str, tuple[Sequence[float], Sequence[float]]],
                         by_seconds: dict[str, tuple[Sequence[float], Sequence[float]]], ylabel: str,
                         floor: float | None = None) -> Figure:
    """Learning curves: left, each run's test bound against epochs; right, against minutes of training
    (the equal-compute view). Each entry is (x values, test bounds); a run drawn on both sides keeps its
    colour. ``floor``, when given, is the y-axis's lower end: the first epochs' far lower values fall below
    it, so the late epochs, where runs are told apart, fill the panel."""
    fig, (left, right) = plt.subplots(1, 2, figsize=(9.5, 3.6), sharey=True)
    colours = {label: f"C{i}" for i, label in enumerate(dict.fromkeys([*by_epoch, *by_seconds]))}
    for ax, curves, xlabel in ((left, by_epoch, "epochs"), (right, by_seconds, "minutes of training")):
        for label, (x, y) in curves.items():
            ax.plot(x, y, color=colours[label], label=label, linewidth=1.2)
        ax.set(xlabel=xlabel)
        ax.legend(fontsize=8, frameon=False)
    left.set(ylabel=ylabel, title="against epochs")
    right.set(title="against training time")
    if floor is not None:
        top = max(max(y) for _, y in [*by_epoch.values(), *by_seconds.values()])
        if not floor < top:
            raise ValueError(f"floor {floor} must lie below the highest value drawn, {top}")
        left.set_ylim(floor, top + 0.05 * (top - floor))   # shared with the right panel
    fig.tight_layout()
    return fig


def plot_bound_and_gap(elbo: dict[str, Estimate], gap: dict[str, Estimate]) -> Figure:
    """Two dot plots side by side, one row per model (±2 s.e. bars): left the encoder's ELBO, right the gap
    log p(x) − ELBO = E KL(q(z|x) ‖ p(z|x)) — how well the encoder fits each model's own posterior."""
    labels = list(elbo)
    fig, axes = plt.subplots(1, 2, figsize=(9, 0.45 * len(labels) + 1.4), sharey=True)
    for ax, values, xlabel in ((axes[0], elbo, "ELBO (nats per image)"),
                               (axes[1], gap, "log p(x) − ELBO (nats per image)")):
        for row, label in enumerate(labels):
            ax.errorbar(values[label].mean, row, xerr=2 * values[label].stderr, fmt="o", color="C0", capsize=3)
        ax.set(xlabel=xlabel)
    axes[0].set_yticks(range(len(labels)), labels)
    axes[0].invert_yaxis()
    fig.suptitle("bars: ±2 s.e. over the test images, each model alone (paired differences are tighter)",
                 fontsize=9)
    fig.tight_layout()
    return fig


def plot_collapse(trace: dict, names: Sequence[str] | None = None, yscale: str = "log", used: float = 0.1,
                  floor: float = 1e-4) -> Figure:
    """Posterior collapse as it happens: one small panel per run of a collapse trace
    (:func:`vae_lib.runs.collapse_trace.read_trace`; ``names`` picks and orders them), the KL of each latent unit
    (nats, ``yscale`` "log" — values under ``floor`` drawn at it — or "linear") against the epoch, one line per
    unit: in colour the units that end above ``used`` nats, the rest in grey. On a twin axis, dashed, the run's
    KL weight β_t (``TrainConfig.kl_weight_at``) over the traced epochs; free bits' λ as a dotted line."""
    from vae_lib.training.train_config import TrainConfig

    if yscale not in ("log", "linear"):
        raise ValueError(f"yscale must be 'log' or 'linear', got {yscale!r}")
    names = list(trace["traces"] if names is None else names)
    cols = min(2, len(names))                     # two panels a row: the page's column fits about 8 inches
    rows = -(-len(names) // cols)
    fig, axes = plt.subplots(rows, cols, figsize=(3.7 * cols + 0.6, 2.9 * rows), sharey=True, squeeze=False)
    for ax in axes.flat[len(names):]:
        ax.set_visible(False)
    for k, (ax, name) in enumerate(zip(axes.flat, names)):
        record = trace["traces"][name]
        epochs = np.array([e["epoch"] for e in record["trace"]])
        kl = np.array([e["kl_per_unit"] for e in record["trace"]]).reshape(len(epochs), -1)   # (epochs, units)
        shown = np.maximum(kl, floor) if yscale == "log" else kl
        final = kl[-1] if len(kl) else np.zeros(kl.shape[1])
        order = np.argsort(-final)
        colours = plt.cm.viridis(np.linspace(0, 0.9, max(1, int((final > used).sum()))))
        for rank, unit in enumerate(order[::-1]):   # grey first, so the coloured lines lie on top
            on = final[unit] > used
            ax.plot(epochs, shown[:, unit], color=colours[len(order) - 1 - rank] if on else "0.75",
                    linewidth=1.1 if on else 0.7, zorder=2 if on else 1)
        ax.axhline(used, color="k", linestyle=":", linewidth=0.6, alpha=0.4)
        config = TrainConfig.from_dict(dict(record["train_config"]))
        if config.free_bits > 0:
            ax.axhline(config.free_bits, color="C3", linestyle=":", linewidth=1)
        twin = ax.twinx()
        t = np.linspace(0, epochs[-1] if len(epochs) else 1, 400)
        twin.plot(t, [config.kl_weight_at(float(e)) for e in t], color="k", linestyle="--", linewidth=1, alpha=0.6)
        twin.set_ylim(0, max(1.0, config.beta) * 1.05)
        if k % cols == cols - 1 or name == names[-1]:
            twin.set_ylabel("KL weight β_t (dashed)")
        else:
            twin.tick_params(labelright=False)
        ax.set(yscale=yscale, xlabel="epoch" if k >= len(names) - cols else "", title=record.get("label", name))
        ax.text(0.98, 0.02, f"{int((final > used).sum())} of {kl.shape[1]} units > {used:g} nats", transform=ax.transAxes,
                ha="right", va="bottom", fontsize=7)
    for row in axes:
        row[0].set_ylabel("mean KL of the unit (nats)")
    fig.tight_layout()
    return fig

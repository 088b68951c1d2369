"""Figure 3's figures (Kingma & Welling (2013), Figure 3, and what the book adds to it): the panels of
log p(x) by quadrature against training samples, the overfitting gaps, the same curves against measured
CPU cost, the runs retrained at the paper's step-size rule beside the book's, and the paper protocol's
per-image error. Data in, figure out
(vae_lib.figures.plots' convention); AEVB blue, wake-sleep red, MCEM green (``ALGORITHM_STYLE``)."""

from __future__ import annotations

import math

import matplotlib.pyplot as plt
import numpy as np
from matplotlib.figure import Figure

from vae_lib.runs.figure3_cost import cost_of, cpu_seconds_per_sample
from vae_lib.figures.plots import ALGORITHM_STYLE


def plot_figure3_panels(curves: list[dict], reference: dict, title: str) -> Figure:
    """Figure 3 of Kingma & Welling (2013), one panel per training-set size: the exact marginal
    log-likelihood of train (dashed) and test (solid) images of every curve in ``curves`` (dicts of
    :func:`vae_lib.runs.figure3_curves.read_curve`) against training samples (log axis), AEVB blue, wake-sleep
    red, MCEM green; the paper's read-off values at the end of its runs (``reference``,
    :func:`vae_lib.runs.paper_runs.paper_reference`) as horizontal dotted lines, in the 50000-image panel."""
    sizes = sorted({c["n_train"] for c in curves})
    if not sizes:
        raise ValueError("no Figure 3 curve to plot")
    fig, axes = plt.subplots(1, len(sizes), figsize=(3.4 * len(sizes), 3.6), squeeze=False, sharey=True)
    ref = reference.get("figure3", {})
    for ax, n in zip(axes.flat, sizes):
        for c in (c for c in curves if c["n_train"] == n and c["points"]):
            colour, label = ALGORITHM_STYLE[c["algorithm"]]
            xs = [p["samples"] for p in c["points"]]
            ax.plot(xs, [p["train"]["mean"] for p in c["points"]], "--", color=colour, alpha=0.8, label=f"{label}, train")
            ax.plot(xs, [p["test"]["mean"] for p in c["points"]], "-", color=colour, label=f"{label}, test")
        if n == 50000:
            for algorithm, values in ref.items():
                if algorithm not in ALGORITHM_STYLE:
                    continue
                colour, label = ALGORITHM_STYLE[algorithm]
                for key, style in (("train_end", (0, (1, 3))), ("test_end", (0, (1, 1)))):
                    if key in values:
                        ax.axhline(values[key], color=colour, ls=style, lw=1.5,
                                   label=f"paper, {label} {key.split('_')[0]} (end)")
        ax.set_xscale("log")
        ax.set_title(f"{n} training images")
        ax.set_xlabel("training samples evaluated")
        ax.grid(alpha=0.3)
    axes[0, 0].set_ylabel("exact log p(x) (nats / example)")
    handles, labels = [], []
    for ax in axes.flat:
        for h, l in zip(*ax.get_legend_handles_labels()):
            if l not in labels:
                handles.append(h)
                labels.append(l)
    fig.legend(handles, labels, loc="lower center", ncol=2, fontsize=8, bbox_to_anchor=(0.5, -0.22))
    fig.suptitle(title)
    fig.tight_layout()
    return fig


def plot_figure3_gaps(curves: list[dict], title: str) -> Figure:
    """The overfitting of Figure 3's runs: the exact log p(x) of training images minus that of test
    images (train − test, nats) against training samples, one panel per training-set size, with a band
    of ± 2 standard errors (the two image sets taken as independent); AEVB blue, wake-sleep red, MCEM
    green."""
    sizes = sorted({c["n_train"] for c in curves if c["points"]})
    if not sizes:
        raise ValueError("no Figure 3 curve to plot")
    fig, axes = plt.subplots(1, len(sizes), figsize=(3.4 * len(sizes), 3.2), squeeze=False, sharey=True)
    for ax, n in zip(axes.flat, sizes):
        for c in (c for c in curves if c["n_train"] == n and c["points"]):
            colour, label = ALGORITHM_STYLE[c["algorithm"]]
            xs = np.array([p["samples"] for p in c["points"]], dtype=float)
            gap = np.array([p["train"]["mean"] - p["test"]["mean"] for p in c["points"]])
            se = np.array([math.hypot(p["train"]["se"], p["test"]["se"]) for p in c["points"]])
            ax.plot(xs, gap, "-", color=colour, label=label)
            ax.fill_between(xs, gap - 2 * se, gap + 2 * se, color=colour, alpha=0.15, lw=0)
        ax.axhline(0.0, color="0.3", lw=0.8)
        ax.set_xscale("log")
        ax.set_title(f"{n} training images")
        ax.set_xlabel("training samples evaluated")
        ax.grid(alpha=0.3)
    axes[0, 0].set_ylabel("train − test log p(x) (nats)")
    axes[0, 0].legend(fontsize=8, loc="upper left")
    fig.suptitle(title)
    fig.tight_layout()
    return fig


def plot_against_cost(curves: list[dict], title: str):
    """Test (solid) and train (dashed) exact log p(x) against CPU-core seconds, one panel per training-set
    size, in Figure 3's colours (vae_lib.figures.plots.ALGORITHM_STYLE)."""
    sizes = sorted({c["n_train"] for c in curves})
    fig, axes = plt.subplots(1, len(sizes), figsize=(4.6 * len(sizes), 3.8), sharey=True, squeeze=False)
    for ax, n in zip(axes[0], sizes):
        for c in (c for c in curves if c["n_train"] == n and cpu_seconds_per_sample(c) is not None):
            x = [cost_of(c, p) for p in c["points"]]
            for part, style in (("test", "-"), ("train", "--")):
                colour, name = ALGORITHM_STYLE[c["algorithm"]]
                ax.plot(x, [p[part]["mean"] for p in c["points"]], style, color=colour, label=f"{name}, {part}")
        ax.set(xscale="log", xlabel="CPU-core seconds", title=f"{n} training images")
        ax.grid(alpha=0.3)
    axes[0][0].set_ylabel("exact log p(x), nats")
    handles, names = axes[0][0].get_legend_handles_labels()
    fig.suptitle(title)
    fig.tight_layout()
    fig.legend(handles, names, loc="upper center", ncol=3, frameon=False, bbox_to_anchor=(0.5, 0.0))
    return fig


def plot_step_size_runs(book: list[dict], rule: list[dict], title: str):
    """Test exact log p(x) against training samples: the runs retrained at the rule's step size (dotted,
    circles) beside the book's runs (solid, its step size), one panel per training-set size that has a
    retrained run, every algorithm of that size in Figure 3's colours."""
    sizes = sorted({c["n_train"] for c in rule})
    fig, axes = plt.subplots(1, len(sizes), figsize=(4.6 * len(sizes), 3.8), sharey=True, squeeze=False)
    for ax, n in zip(axes[0], sizes):
        for curves, style in ((book, "-"), (rule, ":o")):
            for c in (c for c in curves if c["n_train"] == n):
                colour, name = ALGORITHM_STYLE[c["algorithm"]]
                ax.plot([p["samples"] for p in c["points"]], [p["test"]["mean"] for p in c["points"]], style, color=colour,
                        markersize=4, label=f"{name}, step size {c['step_size']:g}")
        ax.set(xscale="log", xlabel="training samples", title=f"{n} training images")
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8, frameon=False, loc="lower right")
    axes[0][0].set_ylabel("test exact log p(x), nats")
    fig.suptitle(title)
    fig.tight_layout()
    return fig


def plot_protocol_errors(errors: dict[str, tuple[str, int, list[float]]], title: str, ax=None) -> Figure:
    """The empirical distribution function (ECDF) of per-image errors, one line per run: ``errors``
    maps a label to (algorithm, training-set size, errors in nats); Figure 3's colours by algorithm,
    solid for 1000 and dashed for 50000 training images. The x-axis is symmetric-logarithmic (linear
    within ±1 nat), so the bulk near zero and tails of a hundred nats are both visible."""
    if not errors:
        raise ValueError("no errors to draw")
    fig, ax = (plt.subplots(figsize=(8, 3.8)) if ax is None else (ax.figure, ax))
    for name, (algorithm, n_train, values) in errors.items():
        v = np.sort(np.asarray(values, dtype=float))
        if v.size == 0:
            raise ValueError(f"{name}: no errors to draw")
        colour, _ = ALGORITHM_STYLE[algorithm]
        ax.step(v, np.arange(1, v.size + 1) / v.size, where="post", color=colour,
                linestyle="-" if n_train == 1000 else "--", label=f"{name} ({v.size} images)")
    ax.axvline(0.0, color="0.4", linewidth=0.8)
    ax.set(ylim=(0, 1), ylabel="fraction of images with error ≤ x", title=title,
           xlabel="error x, nats (symmetric-log axis: linear within ±1)")
    ax.set_xscale("symlog", linthresh=1.0)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8, frameon=False, loc="upper left")
    fig.tight_layout()
    return fig

"""Figures. Every function takes data (and optionally an axis) and returns the figure; none
switches backends, shows, or writes files."""

from __future__ import annotations

import math
from typing import Sequence

import matplotlib.pyplot as plt
import numpy as np
import torch
from matplotlib.figure import Figure

from vae_lib.training.train import History


def tile_images(images: torch.Tensor, image_shape: tuple[int, int], n_cols: int | None = None,
                pad: int = 1, pad_value: float = 0.15) -> np.ndarray:
    """Tile ``images`` (N, rows*cols) into one 2-D array with ``pad`` pixels of ``pad_value`` between
    them (0.15: a faint grey line in the book's black-on-white colour map)."""
    images = images.detach().float().cpu().reshape(-1, *image_shape).numpy()
    n = len(images)
    n_cols = n_cols or math.ceil(math.sqrt(n))
    n_rows = math.ceil(n / n_cols)
    r, c = image_shape
    canvas = np.full((n_rows * (r + pad) - pad, n_cols * (c + pad) - pad), pad_value)
    for i, img in enumerate(images):
        row, col = divmod(i, n_cols)
        canvas[row * (r + pad): row * (r + pad) + r, col * (c + pad): col * (c + pad) + c] = img
    return canvas


def plot_image_grid(images: torch.Tensor, image_shape: tuple[int, int], n_cols: int | None = None,
                    title: str | None = None, ax: plt.Axes | None = None, cmap: str = "gray_r",
                    row_labels: list[str] | None = None) -> Figure:
    """A grid of grey-level images (N, rows*cols): black on white by default, as in the paper's
    MNIST figures; ``cmap="gray"`` shows photographs (Frey Face) the right way round. ``row_labels``
    (one per row of the grid) are written left of the rows."""
    if ax is None:
        _, ax = plt.subplots(figsize=(6, 6))
    pad_value = 0.15 if cmap.endswith("_r") else 0.85  # a faint line either way
    grid = tile_images(images, image_shape, n_cols, pad_value=pad_value)
    ax.imshow(grid, cmap=cmap, vmin=0, vmax=1)
    ax.set_axis_off()
    if row_labels is not None:
        n_rows = math.ceil(len(images) / (n_cols or math.ceil(math.sqrt(len(images)))))
        if len(row_labels) != n_rows:
            raise ValueError(f"{len(row_labels)} row labels for a grid of {n_rows} rows")
        for r, text in enumerate(row_labels):   # tile_images' rows: image_shape[0] pixels and 1 of padding
            ax.text(-0.02 * grid.shape[1], r * (image_shape[0] + 1) + image_shape[0] / 2, text,
                    ha="right", va="center", fontsize=9)
    if title:
        ax.set_title(title)
    return ax.figure


def plot_reconstructions(originals: torch.Tensor, reconstructions: torch.Tensor,
                         image_shape: tuple[int, int], title: str | None = None) -> Figure:
    """Originals (top row of each pair) above their reconstructions: two (N, D) tensors."""
    n = len(originals)
    n_cols = min(n, 10)
    pairs = []
    for start in range(0, n, n_cols):
        pairs += [originals[start:start + n_cols], reconstructions[start:start + n_cols]]
    fig, ax = plt.subplots(figsize=(n_cols * 0.7, len(pairs) * 0.75))
    plot_image_grid(torch.cat(pairs), image_shape, n_cols=n_cols, ax=ax,
                    title=title or "originals (odd rows) and their reconstructions (even rows)")
    return fig


def plot_learning_curves(histories: dict[str, History], title: str = "Learning curves") -> Figure:
    """Bound, rate (KL) and distortion per image against training samples seen (images × epochs, log axis),
    train (dashed: averaged over each epoch while the model changes) and test (solid), one colour per run: three panels and the legend in a 2 × 2 grid
    that fits a book's text column (6.9 inches wide)."""
    fig, axes = plt.subplots(2, 2, figsize=(6.9, 6.4))
    panels = [("bound", "ELBO (nats / image)"), ("rate", "rate: KL(q‖p) (nats)"),
              ("distortion", "distortion: −E_q log p(x|z) (nats)")]
    for (key, label), ax in zip(panels, axes.flat):
        for i, (name, h) in enumerate(histories.items()):
            colour = f"C{i}"
            ax.plot(h.samples_seen, getattr(h, f"train_{key}"), "--", color=colour, alpha=0.7, label=f"{name} (train)")
            if getattr(h, f"test_{key}"):
                ax.plot(h.samples_seen, getattr(h, f"test_{key}"), "-", color=colour, label=f"{name} (test)")
        ax.set_xscale("log")
        ax.set_xlabel("training samples seen (images × epochs)")
        ax.set_ylabel(label)
        ax.grid(alpha=0.3)
    legend_ax = axes.flat[3]
    legend_ax.set_axis_off()
    legend_ax.legend(*axes.flat[0].get_legend_handles_labels(), loc="center", fontsize=9)
    fig.suptitle(title)
    fig.tight_layout()
    return fig


def plot_latent_scatter(z: torch.Tensor, labels: torch.Tensor | None, dims: tuple[int, int] = (0, 1),
                        title: str = "Latent means μ(x) of test images", ax: plt.Axes | None = None) -> Figure:
    """Scatter two latent dimensions of ``z`` (N, J), coloured by ``labels`` (N,) when given."""
    if ax is None:
        _, ax = plt.subplots(figsize=(6.5, 5.5))
    z = z.detach().cpu()
    colour = {} if labels is None else {"c": labels.detach().cpu(), "cmap": "tab10"}  # a cmap without c warns
    pts = ax.scatter(z[:, dims[0]], z[:, dims[1]], s=3, alpha=0.6, **colour)
    if labels is not None:
        ax.figure.colorbar(pts, ax=ax, label="digit")
    ax.set_xlabel(f"z[{dims[0]}]")
    ax.set_ylabel(f"z[{dims[1]}]")
    ax.set_title(title)
    return ax.figure


def plot_lines(x: Sequence[float], series: dict[str, Sequence[float]], xlabel: str, ylabel: str,
               title: str, logx: bool = False, logy: bool = False, errors: dict[str, Sequence[float]] | None = None,
               ax: plt.Axes | None = None) -> Figure:
    """Several named series against one x, with optional error bars — the book's generic line plot."""
    if ax is None:
        _, ax = plt.subplots(figsize=(6.5, 4))
    for name, ys in series.items():
        err = None if errors is None else errors.get(name)
        ax.errorbar(x, ys, yerr=err, marker="o", ms=3, capsize=3, label=name)
    ax.set_xscale("log" if logx else "linear")
    ax.set_yscale("log" if logy else "linear")
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    ax.set_title(title)
    ax.grid(alpha=0.3)
    ax.legend()
    return ax.figure


ALGORITHM_STYLE = {"aevb": ("C0", "AEVB"), "wake_sleep": ("C3", "wake-sleep"), "mcem": ("C2", "MCEM")}


def plot_paper_panels(curves: list[dict], reference: dict, dataset: str, title: str,
                      n_cols: int = 2, other_curves: list[dict] | None = None, other_label: str = "GPU") -> Figure:
    """Figure 2 of Kingma & Welling (2013), one panel per latent size: the variational lower bound of
    every curve in ``curves`` (dicts of :func:`vae_lib.runs.paper_runs.read_curve`) against training samples
    (log axis), train dashed and test solid, AEVB blue and wake-sleep red; the paper's read-off AEVB
    test values (``reference``, :func:`vae_lib.runs.paper_runs.paper_reference`) as black markers with
    their reading error, at 10^7 samples and at the end of its training. ``other_curves`` (runs made
    elsewhere, say on a GPU) are drawn as dotted test curves labelled with ``other_label``."""
    other_curves = other_curves or []
    latents = sorted({c["latent_dim"] for c in curves + other_curves if c["dataset"] == dataset})
    if not latents:
        raise ValueError(f"no curve of data set {dataset!r} to plot")
    n_rows = math.ceil(len(latents) / n_cols)
    fig, axes = plt.subplots(n_rows, n_cols, figsize=(4.6 * n_cols, 3.5 * n_rows), squeeze=False)
    ref = reference["figure2"]
    err = reference["read_error"][dataset]
    for ax, j in zip(axes.flat, latents):
        for c in (c for c in curves if c["dataset"] == dataset and c["latent_dim"] == j):
            colour, label = ALGORITHM_STYLE[c["algorithm"]]
            ax.plot(c["samples_seen"], c["train_bound"], "--", color=colour, alpha=0.8, label=f"{label}, train")
            ax.plot(c["samples_seen"], c["test_bound"], "-", color=colour, label=f"{label}, test")
        for c in (c for c in other_curves if c["dataset"] == dataset and c["latent_dim"] == j):
            colour, label = ALGORITHM_STYLE[c["algorithm"]]
            ax.plot(c["samples_seen"], c["test_bound"], ":", color=colour, lw=2, label=f"{label}, test ({other_label})")
        paper = ref["aevb"][dataset].get(str(j), {})
        xs = [x for x, key in ((1e7, "test_1e7"), (ref["end_samples"][dataset], "test_end")) if key in paper]
        ys = [paper[key] for key in ("test_1e7", "test_end") if key in paper]
        ax.errorbar(xs, ys, yerr=err, fmt="ks", ms=5, capsize=3, label="paper, AEVB test (read off)")
        ws = ref["wake_sleep"][dataset].get(str(j), {})
        if "test_end" in ws:
            ax.errorbar([ref["end_samples"][dataset]], [ws["test_end"]], yerr=err, fmt="kv", ms=5, capsize=3,
                        label="paper, wake-sleep test")
        ax.set_xscale("log")
        ax.set_title(f"{'MNIST' if dataset == 'mnist' else 'Frey Face'}, $N_z$ = {j}")
        ax.set_xlabel("training samples evaluated")
        ax.set_ylabel("lower bound (nats / example)")
        ax.grid(alpha=0.3)
    for ax in list(axes.flat)[len(latents):]:
        ax.set_axis_off()
    handles, labels = [], []
    for ax in axes.flat:   # every kind of line that appears in any panel, once
        for h, l in zip(*ax.get_legend_handles_labels()):
            if l not in labels:
                handles.append(h)
                labels.append(l)
    spare = list(axes.flat)[len(latents):]
    if spare:
        spare[0].legend(handles, labels, loc="center", fontsize=10)
    fig.suptitle(title)
    fig.tight_layout()
    if not spare:   # below the panels, clear of every axis (the saved figure's tight box takes it in)
        fig.legend(handles, labels, loc="upper center", ncol=3, fontsize=10, bbox_to_anchor=(0.5, 0.0))
    return fig

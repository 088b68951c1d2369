"""Figures of a trained model's latent space (chapter 8): the learned manifold on a grid of the prior's
quantiles (the paper's Figure 4), interpolation strips between two encoded images, the images one
slider shows when it alone moves, and each latent dimension's KL with its activity. The chapter
computes what they show (encode, walk the grid, decode); these functions only lay it out. Each takes
data and returns the figure; none shows it or writes files."""

from __future__ import annotations

import math
from typing import Sequence

import matplotlib.pyplot as plt
import torch
from matplotlib.figure import Figure

from vae_lib.figures.plots import plot_image_grid

PAGE_WIDTH = 6.9  # inches: the book's text column


def plot_manifold(images: torch.Tensor, image_shape: tuple[int, int], label: str,
                  cmap: str = "gray_r") -> Figure:
    """The learned manifold as the paper's Figure 4 draws it: ``images`` (n*n, D), the decoded means
    E[x|z] of an n×n grid of latent points (:func:`vae_lib.figures.explore.manifold_grid_latents`), in
    one square grid a column wide; ``cmap="gray"`` for photographs (Frey Face)."""
    n = math.isqrt(len(images))
    if n * n != len(images):
        raise ValueError(f"a manifold grid is square: {len(images)} images is not n*n")
    rows, cols = image_shape
    fig, ax = plt.subplots(figsize=(PAGE_WIDTH, 0.9 * PAGE_WIDTH * rows / cols + 0.9))
    plot_image_grid(images, image_shape, n_cols=n, ax=ax, cmap=cmap,
                    title=f"{label}: decoded means on a {n}×{n}\ngrid of Φ⁻¹ quantiles")
    return fig


def plot_interpolations(ends: torch.Tensor, paths: dict[str, torch.Tensor], image_shape: tuple[int, int],
                        end_names: tuple[str, str] = ("the first image", "the second")) -> Figure:
    """One row per model: the image ``ends[0]``, the decoded points of the path between its encoding
    and that of ``ends[1]`` (``paths[name]``, (T, D)), then ``ends[1]``. ``ends``: (2, D)."""
    if len(ends) != 2:
        raise ValueError(f"ends holds the two images, (2, D); got {len(ends)} rows")
    n_cols = max(len(p) for p in paths.values()) + 2
    fig, axes = plt.subplots(len(paths), 1, figsize=(PAGE_WIDTH, 1.5 * len(paths)), squeeze=False)
    for ax, (name, images) in zip(axes[:, 0], paths.items()):
        strip = torch.cat([ends[:1].to(images), images, ends[1:].to(images)])
        plot_image_grid(strip, image_shape, n_cols=n_cols, ax=ax,
                        title=f"{name}: {end_names[0]}, the path between the encodings, {end_names[1]}")
        ax.title.set_fontsize(9)
    return fig


def plot_slider_rows(rows: torch.Tensor, image_shape: tuple[int, int], label: str,
                     limits: tuple[float, float] = (-3.0, 3.0)) -> Figure:
    """What each slider shows when it alone moves: ``rows`` (J, S, D), row j the decoded means as z[j]
    runs over S values from ``limits[0]`` to ``limits[1]`` with the other dimensions at 0."""
    if rows.dim() != 3:
        raise ValueError(f"rows must be (J, steps, D), got shape {tuple(rows.shape)}")
    n_dims, n_steps, _ = rows.shape
    low, high = (f"{v:g}".replace("-", "−") for v in limits)  # a typographic minus, as in the text
    fig, ax = plt.subplots(figsize=(PAGE_WIDTH, 0.68 * n_dims + 0.6))
    plot_image_grid(rows.reshape(n_dims * n_steps, -1), image_shape, n_cols=n_steps, ax=ax,
                    title=f"{label}: row j moves z[j] from {low} to {high}, "
                          "the other dimensions at 0",
                    row_labels=[f"z[{j}]" for j in range(n_dims)])
    return fig


def plot_dimension_kl(kl_dims: dict[str, Sequence[float]], activity: dict[str, Sequence[float]],
                      threshold: float = 1e-2) -> Figure:
    """One panel per model, in the order of ``kl_dims``: each latent dimension's KL to the prior in nats
    (averaged over the data), a bar per dimension, red and labelled "inactive" where its activity
    A_j = Cov_x(E_q[z_j]) (``activity``) is at most ``threshold`` (Burda et al. 2015)."""
    sizes = [len(kl) for kl in kl_dims.values()]
    fig, axes = plt.subplots(1, len(kl_dims), figsize=(10, 3.2), squeeze=False,
                             gridspec_kw={"width_ratios": [max(s, 4) for s in sizes]})
    for ax, (name, kl) in zip(axes[0], kl_dims.items()):
        kl = torch.as_tensor(kl, dtype=torch.float32).cpu()
        active = torch.as_tensor(activity[name]).cpu() > threshold
        if len(active) != len(kl):
            raise ValueError(f"{name}: {len(kl)} KL values but {len(active)} activities")
        ax.bar(range(len(kl)), kl.tolist(), color=["C0" if a else "C3" for a in active.tolist()])
        ax.set_xticks(range(len(kl)))
        for j in (~active).nonzero().flatten().tolist():  # its bar has height ≈ 0: say what it is
            ax.get_xticklabels()[j].set_color("C3")
            ax.text(j, 0, "inactive", rotation=90, ha="center", va="bottom", color="C3", fontsize=8)
        ax.set_xlabel("latent dimension j")
        ax.set_ylabel("KL per dimension (nats)")
        ax.set_title(f"{name}: red = inactive (A_j ≤ {threshold:g})", fontsize=9)
    fig.tight_layout()
    return fig

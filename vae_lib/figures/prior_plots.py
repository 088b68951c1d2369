"""Figures of chapter 15 (the prior): the aggregate posterior drawn against the prior in two dimensions, and the
first training steps of a model with a learned prior (:func:`plot_start_trace`)."""

from __future__ import annotations

import math

import matplotlib.pyplot as plt
import torch
from matplotlib.figure import Figure

#: nats of log q(z) the left panel spans below its peak (lower values are drawn white)
LOG_RANGE = 12.0


def plot_aggregate_posterior(axis: torch.Tensor, log_q: torch.Tensor, log_p: torch.Tensor, ratio: float = 0.1,
                             title: str = "") -> Figure:
    """Two panels on the grid of :func:`~vae_lib.inference.aggregate_posterior.grid_log_densities`: the
    aggregate posterior's log-density log q(z), over its top :data:`LOG_RANGE` nats, with the prior's 1, 2 and 3 σ circles (left), and the holes,
    where q(z) < ``ratio`` · p(z), shaded over the prior's density (right)."""
    limit = float(axis[-1])
    extent = (-limit, limit, -limit, limit)
    fig, (left, right) = plt.subplots(1, 2, figsize=(10, 4.2))
    floor = float(log_q.max()) - LOG_RANGE                          # a log scale shows the lanes between clusters
    shade = left.imshow(log_q.clamp(min=floor).numpy(), origin="lower", extent=extent, cmap="Greys")
    fig.colorbar(shade, ax=left, shrink=0.8, label="log q(z) (nats)")
    angle = torch.linspace(0, 2 * math.pi, 200)
    for radius in (1, 2, 3):
        left.plot(radius * angle.cos(), radius * angle.sin(), color="tab:red", lw=0.8, ls="--")
    left.set_title("log q(z) (dark: many codes); prior's 1–3 σ circles", fontsize=10)
    density = right.imshow(log_p.exp().numpy(), origin="lower", extent=extent, cmap="Blues")
    fig.colorbar(density, ax=right, shrink=0.8, label="p(z)")
    holes = (log_q < log_p + math.log(ratio)).to(torch.float32)
    right.contourf(axis.numpy(), axis.numpy(), holes.numpy(), levels=[0.5, 1.5], colors=["tab:orange"], alpha=0.55)
    right.set_title(f"prior p(z); orange: holes, q(z) < {ratio:g} · p(z)", fontsize=10)
    for ax in (left, right):
        ax.set_xlabel("z₁")
        ax.set_ylabel("z₂")
        ax.set_aspect("equal")
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    return fig


#: what each panel of :func:`plot_start_trace` shows: the trace's key and the panel's axis label
START_PANELS = (("rate", "rate R (nats)"), ("active_units", "active units"),
                ("shift", "common shift ‖mean code‖"), ("saturated", "saturated tanh units (fraction)"))


def plot_start_trace(traces: dict[str, dict[str, list]], title: str = "") -> Figure:
    """One line per model (``traces``: label → a trace of :func:`vae_lib.runs.prior_start.trace_start`) in four
    panels against the training step: the rate, the active units, the codes' common shift and the encoder's
    saturated fraction."""
    if not traces:
        raise ValueError("plot_start_trace needs at least one trace")
    fig, grid = plt.subplots(2, 2, figsize=(8.5, 5.6), sharex=True)
    axes = grid.ravel()
    for ax, (key, name) in zip(axes, START_PANELS):
        for label, trace in traces.items():
            ax.plot(trace["step"], trace[key], marker=".", label=label)
        ax.set_ylabel(name, fontsize=9)
    for ax in grid[-1]:
        ax.set_xlabel("training step")
    axes[0].legend(fontsize=8)
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    return fig

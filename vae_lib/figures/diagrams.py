"""Drawn diagrams: the graphical model with its plate, the encoder–decoder with its tensor shapes, the
reparameterization trick as a computation graph, importance sampling as weighted draws. Each function
returns a matplotlib figure; none writes files. One style, ``STYLE``, restyles all of them: observed nodes
shaded, latent nodes white circles, deterministic nodes squares, parameters diamonds, random inputs orange."""

from __future__ import annotations

import math
from typing import NamedTuple, Sequence

import matplotlib.pyplot as plt
import numpy as np
from matplotlib.axes import Axes
from matplotlib.figure import Figure
from matplotlib.lines import Line2D
from matplotlib.patches import Circle, FancyArrowPatch, FancyBboxPatch, RegularPolygon

#: The diagrams' conventions, in one place: change a colour here and every diagram follows.
STYLE = {
    "observed": "#cfcfcf",      # shaded: a node we see (x)
    "latent": "white",          # white circle: a random node we do not see (z)
    "random": "#f6c27a",        # orange: where randomness enters the graph (ε, or z drawn directly)
    "forward": "black",         # forward computation, generative arrows
    "backward": "#c0392b",      # gradients flowing back
    "encoder": "#e6eef8",       # the encoder's background
    "decoder": "#e8f4e6",       # the decoder's background
    "fontsize": 12,
}


class _Node(NamedTuple):
    """A drawn node: its outline (arrows stop there) and its centre, in inches."""
    patch: object
    xy: tuple[float, float]


def _canvas(width: float, height: float) -> tuple[Figure, Axes]:
    """A figure whose data coordinates are inches, so shapes keep their proportions at any size."""
    fig = plt.figure(figsize=(width, height))
    ax = fig.add_axes((0, 0, 1, 1))
    ax.set_xlim(0, width)
    ax.set_ylim(0, height)
    ax.set_axis_off()
    return fig, ax


def _node(ax: Axes, xy, label: str, kind: str, size: float = 0.56, width: float | None = None,
          fontsize: float | None = None, rotation: float = 0) -> _Node:
    """A node centred at ``xy`` (inches). ``kind`` sets the fill — observed (shaded), latent (white), random
    (orange), deterministic (white) — and the shape: circles of diameter ``size``, but a box ``width`` ×
    ``size`` for a deterministic node or whenever ``width`` is given (a tensor), a diamond for a parameter."""
    x, y = xy
    if kind == "parameter":
        patch = RegularPolygon(xy, 4, radius=size / 2, fc="white", ec="black", lw=1.2)
    elif kind == "deterministic" or width is not None:
        w = width or size
        patch = FancyBboxPatch((x - w / 2, y - size / 2), w, size, boxstyle="round,pad=0,rounding_size=0.05",
                               fc=STYLE.get(kind, "white"), ec="black", lw=1.2)
    elif kind in ("observed", "latent", "random"):
        patch = Circle(xy, size / 2, fc=STYLE[kind], ec="black", lw=1.2)
    else:
        raise ValueError(f"unknown node kind {kind!r}")
    ax.add_patch(patch)
    ax.text(x, y, label, ha="center", va="center", fontsize=fontsize or STYLE["fontsize"], rotation=rotation, zorder=3)
    return _Node(patch, (x, y))


def _arrow(ax: Axes, start, end, colour: str | None = None, dashed: bool = False, rad: float = 0.0,
           head: bool = True) -> FancyArrowPatch:
    """An arrow from ``start`` to ``end`` (Nodes, clipped at their outlines, or points), bent by ``rad``."""
    a, b = (start.xy if isinstance(start, _Node) else start), (end.xy if isinstance(end, _Node) else end)
    arrow = FancyArrowPatch(a, b, patchA=getattr(start, "patch", None), patchB=getattr(end, "patch", None),
                            arrowstyle="-|>" if head else "-", mutation_scale=13, shrinkA=2, shrinkB=2,
                            connectionstyle=f"arc3,rad={rad}", color=colour or STYLE["forward"], lw=1.3,
                            linestyle=(0, (4, 2.5)) if dashed else "-", zorder=2)
    ax.add_patch(arrow)
    return arrow


def _legend(ax: Axes, entries: Sequence[tuple[str, str]], **kwargs) -> None:
    """A legend of the diagram's conventions, each entry (what, label) with what one of the STYLE keys
    or 'dashed' / 'deterministic' / 'parameter'."""
    handles = []
    for what, label in entries:
        if what in ("forward", "backward", "dashed"):
            handles.append(Line2D([], [], color=STYLE["forward" if what == "dashed" else what], lw=1.5,
                                  ls="--" if what == "dashed" else "-", label=label))
        else:
            marker = {"deterministic": "s", "parameter": "D"}.get(what, "o")
            handles.append(Line2D([], [], ls="", marker=marker, ms=10, mec="black",
                                  mfc=STYLE.get(what, "white"), label=label))
    ax.legend(handles=handles, frameon=False, fontsize=9.5, handlelength=2.2, **kwargs)


def graphical_model(recognition: bool = True) -> Figure:
    """The model as a directed graphical model, after Kingma & Welling (2013), Figure 1: z → x inside a
    plate over the N data points, θ outside it (solid arrows: the generative model p(z) p_θ(x|z), with
    the book's parameter-free prior p(z) = N(0, I)). With ``recognition``, φ and the dashed arrows of the
    recognition model q_φ(z|x), which approximates the intractable posterior p_θ(z|x)."""
    fig, ax = _canvas(5.0, 3.2)
    plate = FancyBboxPatch((1.65, 0.75), 1.7, 2.3, boxstyle="round,pad=0,rounding_size=0.08", fc="none",
                           ec="black", lw=1.0)
    ax.add_patch(plate)
    ax.text(3.22, 0.85, "$N$", ha="right", va="bottom", fontsize=STYLE["fontsize"])
    z = _node(ax, (2.5, 2.5), "$z$", "latent", size=0.62)
    x = _node(ax, (2.5, 1.35), "$x$", "observed", size=0.62)
    theta = _node(ax, (4.15, 1.95), r"$\theta$", "parameter", size=0.46)
    _arrow(ax, z, x)
    _arrow(ax, theta, x)
    entries = [("forward", r"generative model $p(z)\,p_\theta(x \mid z)$")]
    if recognition:
        phi = _node(ax, (0.85, 2.5), r"$\phi$", "parameter", size=0.46)
        _arrow(ax, x, z, dashed=True, rad=-0.55)
        _arrow(ax, phi, z, dashed=True)
        entries.append(("dashed", r"recognition model $q_\phi(z \mid x)$"))
    _legend(ax, entries + [("observed", "observed"), ("latent", "latent")], loc="lower center",
            bbox_to_anchor=(0.5, 0.0), ncol=2 if recognition else 3,
            columnspacing=1.0)
    return fig


def _check_sizes(**sizes) -> None:
    for name, value in sizes.items():
        for v in (value if isinstance(value, (tuple, list)) else (value,)):
            if isinstance(v, bool) or not isinstance(v, (int, np.integer)) or v < 1:
                raise ValueError(f"{name} must be positive integers (layer widths), got {value!r}")


def encoder_decoder(data_dim: int = 784, hidden: Sequence[int] = (500,), latent_dim: int = 20,
                    batch: str = "B") -> Figure:
    """The VAE's tensors for a batch, left to right: x (B, D) → the encoder's hidden layers →
    (μ, log σ²) (B, J) each → z = μ + σ ⊙ ε (B, J), with ε ~ N(0, I) entering from below → the decoder's
    hidden layers (the encoder's, mirrored) → logits (B, D). Every box carries its shape; a box's height
    grows with the log of its width. ``batch`` names the batch dimension (chapter 5 calls it M)."""
    hidden = tuple(hidden)
    _check_sizes(data_dim=data_dim, hidden=hidden, latent_dim=latent_dim)
    J, b = latent_dim, batch
    n_cols = 4 + 2 * len(hidden)
    width, margin = 7.0, 0.55
    step = (width - 2 * margin) / (n_cols - 1)
    box_w = min(0.62, 0.62 * step)
    font = 11 if step > 0.8 else 9
    shape_font = 9 if step > 0.8 else 7.5

    def height(size):
        return 0.45 + 0.32 * math.log10(size)

    pair_gap = 0.5                                     # between μ and log σ², room for μ's shape
    middle = max(height(data_dim), *(height(h) for h in hidden), 2 * height(J) + pair_gap)
    eps_drop = middle / 2 + 0.62                       # ε enters from below the network, under its shapes
    y0 = eps_drop + 0.66                               # the row's centre line: room below for ε and its label
    fig, ax = _canvas(width, y0 + middle / 2 + 0.8)
    xs = [margin + i * step for i in range(n_cols)]
    i_mu, i_z = 1 + len(hidden), 2 + len(hidden)

    def box(i, label, size, y=y0, kind="deterministic", shape_above=False):
        turn = 90 if box_w < 0.5 and label in ("logits", r"$\log\sigma^2$") else 0   # too wide for a narrow box
        node = _node(ax, (xs[i], y), label, kind, size=height(size), width=box_w, fontsize=font, rotation=turn)
        edge = y + (1 if shape_above else -1) * (height(size) / 2 + 0.07)
        ax.text(xs[i], edge, f"({b}, {size})", ha="center", va="bottom" if shape_above else "top", fontsize=shape_font)
        return node

    for i0, i1, colour, label in ((1, i_mu, "encoder", r"encoder $q_\phi(z \mid x)$"),
                                  (i_z + 1, n_cols - 1, "decoder", r"decoder $p_\theta(x \mid z)$")):
        left, right = xs[i0] - box_w / 2 - 0.1, xs[i1] + box_w / 2 + 0.1
        top, bottom = y0 + middle / 2 + 0.12, y0 - middle / 2 - 0.32
        ax.add_patch(FancyBboxPatch((left, bottom), right - left, top - bottom, fc=STYLE[colour], ec="none",
                                    boxstyle="round,pad=0,rounding_size=0.1", zorder=0))
        narrow = right - left < 1.6                    # a label wider than its region: keep it inside the figure
        anchor = ({"encoder": ("left", left), "decoder": ("right", right)}[colour] if narrow
                  else ("center", (left + right) / 2))
        ax.text(anchor[1], top + 0.08, label, ha=anchor[0], va="bottom", fontsize=font)

    chain = [box(0, "$x$", data_dim, kind="observed")]
    chain += [box(1 + k, f"$h_{k + 1}$", h) for k, h in enumerate(hidden)]
    offset = height(J) / 2 + pair_gap / 2
    mu = box(i_mu, r"$\mu$", J, y=y0 + offset)
    log_var = box(i_mu, r"$\log\sigma^2$", J, y=y0 - offset)
    z = box(i_z, "$z$", J, shape_above=True)           # below it, ε enters
    decoder = [box(i_z + 1 + k, f"$h'_{k + 1}$", h) for k, h in enumerate(hidden[::-1])]
    decoder.append(box(n_cols - 1, "logits", data_dim))
    for a, c in zip(chain, chain[1:]):
        _arrow(ax, a, c)
    for a in (mu, log_var):
        _arrow(ax, chain[-1], a)
        _arrow(ax, a, z)
    for a, c in zip([z] + decoder, decoder):
        _arrow(ax, a, c)
    eps = _node(ax, (xs[i_z], y0 - eps_drop), r"$\epsilon$", "random", size=0.42, fontsize=font)
    _arrow(ax, eps, z)
    ax.text(xs[i_z], y0 - eps_drop - 0.29, rf"$\epsilon \sim \mathcal{{N}}(0, I)$: ({b}, {J})", ha="center", va="top",
            fontsize=shape_font)
    ax.text(xs[i_z], y0 + height(J) / 2 + 0.3, r"$z = \mu + \sigma \odot \epsilon$", ha="center", va="bottom",
            fontsize=shape_font + 0.5)
    return fig


def reparameterization_graph() -> Figure:
    """The reparameterization trick as a computation graph, in two panels. Left: z ~ N(μ, σ²) drawn
    directly — z is a random node, and the gradient of f(z) stops there. Right: z = μ + σ ⊙ ε with
    ε ~ N(0, I) entering from below, the only randomness; z is a deterministic, differentiable function of
    μ and log σ² (the encoder's outputs, as in the code; σ = exp(½ log σ²)), so gradients (coloured arcs)
    flow back through it to μ, log σ² and on to the encoder's weights φ (Kingma & Welling 2013, Section 2.4)."""
    fig, ax = _canvas(7.0, 4.0)
    ax.plot([3.5, 3.5], [0.55, 3.9], color="0.75", lw=0.8)
    red = STYLE["backward"]
    small = STYLE["fontsize"] - 2.5
    for ox, direct in ((0.0, True), (3.55, False)):
        title = (r"sampled directly: $z \sim \mathcal{N}(\mu, \sigma^2)$" if direct
                 else r"reparameterized: $z = \mu + \sigma \odot \epsilon$")
        ax.text(ox + 1.72, 3.9, title, ha="center", va="top", fontsize=STYLE["fontsize"] - 1)
        phi = _node(ax, (ox + 0.35, 2.35), r"$\phi$", "parameter", size=0.5)
        mu = _node(ax, (ox + 1.15, 2.95), r"$\mu$", "deterministic", size=0.46)
        sigma = _node(ax, (ox + 1.15, 1.75), r"$\log\sigma^2$", "deterministic", size=0.46, width=0.78)
        z = _node(ax, (ox + 2.1, 2.35), "$z$", "random" if direct else "deterministic", size=0.5)
        f = _node(ax, (ox + 3.0, 2.35), "$f$", "deterministic", size=0.46)
        for a, c in ((phi, mu), (phi, sigma), (mu, z), (sigma, z), (z, f)):
            _arrow(ax, a, c)
        _arrow(ax, f, z, red, rad=0.45)                                  # ∂f/∂z exists either way
        ax.text(ox + 2.55, 2.77, r"$\partial f/\partial z$", color=red, ha="center", va="bottom", fontsize=small)
        if direct:
            for target, up in ((mu, 1), (sigma, -1)):
                mid = ((z.xy[0] + target.xy[0]) / 2 + 0.05, (z.xy[1] + target.xy[1]) / 2 + 0.22 * up)
                _arrow(ax, z, mid, red, rad=0.2 * up, head=False)
                ax.plot(*mid, marker="x", color=red, ms=11, mew=2.2)
            ax.text(ox + 1.72, 0.95, "a draw has no derivative: no\npathwise gradient reaches $\\mu$, $\\log\\sigma^2$, $\\phi$",
                    ha="center", va="center", fontsize=small, color=red)
        else:
            _arrow(ax, z, mu, red, rad=0.35)
            _arrow(ax, z, sigma, red, rad=-0.35)
            _arrow(ax, mu, phi, red, rad=0.35)
            _arrow(ax, sigma, phi, red, rad=-0.35)
            ax.text(ox + 1.72, 3.3, r"$\partial z/\partial\mu = 1$", color=red, ha="center", va="bottom",
                    fontsize=small)
            ax.text(ox + 1.3, 1.4, r"$\partial z/\partial\log\sigma^2 = \sigma\epsilon/2$", color=red, ha="center", va="top",
                    fontsize=small)
            eps = _node(ax, (ox + 2.1, 1.1), r"$\epsilon$", "random", size=0.46)
            _arrow(ax, eps, z)
            ax.text(ox + 2.1, 0.78, r"$\epsilon \sim \mathcal{N}(0, I)$: the only randomness", ha="center",
                    va="top", fontsize=small)
    _legend(ax, [("forward", "forward"), ("backward", "gradient"), ("random", "random"),
                 ("deterministic", "deterministic"), ("parameter", "parameter")],
            loc="lower center", bbox_to_anchor=(0.5, -0.02), ncol=5, columnspacing=1.2)
    return fig


class ImportanceExample(NamedTuple):
    """A 1-D importance-sampling example: draws ``z`` (K,) from q and their log-weights ``log_w`` (K,);
    on ``grid`` (G,), the log-densities ``log_q`` of the proposal and ``log_joint`` = log p(x, z)."""
    z: np.ndarray
    log_w: np.ndarray
    grid: np.ndarray
    log_q: np.ndarray
    log_joint: np.ndarray


def _log_normal(z, mean, std):
    return -0.5 * ((z - mean) / std) ** 2 - math.log(std * math.sqrt(2 * math.pi))


def importance_example(n_draws: int = 20, x: float = 1.5, noise_std: float = 0.4, q_mean: float = 0.3,
                       q_std: float = 1.0, seed: int = 0) -> ImportanceExample:
    """p(z) = N(0, 1), p(x|z) = N(x; z, noise_std²) observed at ``x``, and a proposal q = N(q_mean, q_std²)
    wider than the posterior and off its centre — an imperfect encoder. Weights w_k = p(x, z_k)/q(z_k)."""
    z = np.random.default_rng(seed).normal(q_mean, q_std, n_draws)
    grid = np.linspace(-3.0, 3.5, 400)

    def log_joint(v):
        return _log_normal(v, 0.0, 1.0) + _log_normal(x, v, noise_std)

    return ImportanceExample(z, log_joint(z) - _log_normal(z, q_mean, q_std), grid,
                             _log_normal(grid, q_mean, q_std), log_joint(grid))


def importance_weights(log_w: Sequence[float] | None = None, z: Sequence[float] | None = None,
                       grid: Sequence[float] | None = None, log_q: Sequence[float] | None = None,
                       log_joint: Sequence[float] | None = None) -> Figure:
    """Importance sampling as weighted draws. Bottom: one stem per draw z_k from q, as tall as its
    normalized weight w̃_k = w_k / Σ_j w_j (they sum to one), with the effective sample size
    (Σ w)² / Σ w². Top, when ``grid``, ``log_q`` and ``log_joint`` are given: the proposal q and the
    posterior p(z|x) ∝ p(x, z), normalized on the grid — the weight concentrates where the posterior is.
    Without arguments: ``importance_example()``."""
    if log_w is None:
        example = importance_example()
        log_w, z, grid, log_q, log_joint = (example.log_w, example.z, example.grid, example.log_q,
                                             example.log_joint)
    log_w, z = np.asarray(log_w, dtype=float), np.asarray(z, dtype=float)
    if z.shape != log_w.shape or log_w.ndim != 1 or len(log_w) == 0:
        raise ValueError(f"log_w and z must be two 1-D arrays of the same length, got {log_w.shape} and {z.shape}")
    w = np.exp(log_w - log_w.max())
    w_norm = w / w.sum()
    ess = w.sum() ** 2 / (w ** 2).sum()
    curves = grid is not None and log_q is not None and log_joint is not None
    if curves:
        fig, (top, bottom) = plt.subplots(2, 1, figsize=(6.5, 4.6), sharex=True, height_ratios=(1, 1.2))
        grid = np.asarray(grid, dtype=float)
        posterior = np.exp(np.asarray(log_joint, dtype=float) - np.max(log_joint))
        posterior /= np.sum((posterior[1:] + posterior[:-1]) / 2 * np.diff(grid))   # the trapezoid rule
        top.fill_between(grid, posterior, color="0.8", label=r"posterior $p(z \mid x) \propto p(x, z)$")
        top.plot(grid, posterior, color="0.35", lw=1.2)
        top.plot(grid, np.exp(log_q), "--", color="C0", lw=1.6, label=r"proposal $q(z \mid x)$")
        top.plot(z, np.zeros_like(z), "|", color="C1", ms=12, mew=1.5, label=r"draws $z_k \sim q$")
        top.set_ylabel("density")
        top.legend(frameon=False, fontsize=9, loc="upper left")
        top.spines[["top", "right"]].set_visible(False)
    else:
        fig, bottom = plt.subplots(figsize=(6.5, 2.8))
    stems = bottom.vlines(z, 0, w_norm, color="C1", lw=1.8)
    stems.set_gid("normalized weights")
    bottom.plot(z, w_norm, "o", color="C1", ms=4)
    bottom.axhline(0, color="black", lw=0.8)
    bottom.axhline(1 / len(w), color="0.5", lw=0.8, ls=":")
    bottom.text(1.0, 1 / len(w), r"  $1/K$: equal weights", transform=bottom.get_yaxis_transform(), ha="left",
                va="center", fontsize=8.5, color="0.4", clip_on=False)
    bottom.set_ylim(0, max(w_norm.max() * 1.15, 1.5 / len(w)))
    bottom.set(xlabel="$z$", ylabel=r"$\tilde w_k = w_k\,/\,\Sigma_j\, w_j$")
    bottom.set_title(rf"$K = {len(w)}$ draws from $q$, weights $w_k = p(x, z_k)/q(z_k \mid x)$; "
                     rf"ESS $= {ess:.1f}$", fontsize=10)
    bottom.spines[["top", "right"]].set_visible(False)
    fig.tight_layout()
    return fig

"""Figures of the core path's log-likelihood chapters (7 and 7b), each drawn by one call: how the
importance-sampled estimate climbs with K, one image's posterior beside the Gaussians that try to
describe it, a posterior over a wide box (a mode the encoder never sees), and the ELBO's gap split in
two. Each takes data (and the model, where it must evaluate p(x, z) on a grid) and returns the figure;
none shows or saves it.
"""

from __future__ import annotations

import itertools

import matplotlib.pyplot as plt
import torch
from matplotlib.figure import Figure

from vae_lib.base.statistics import estimate
from vae_lib.figures.inference_plots import plot_posterior_and_approximations, posterior_on_grid
from vae_lib.figures.plots import plot_lines
from vae_lib.inference.exact_inference import grid_posterior, latent_grid
from vae_lib.inference.likelihood import LogLikelihood, mean_and_stderr
from vae_lib.model.objectives import log_standard_normal
from vae_lib.model.vae import VAE


def plot_k_curve(curves: dict[str, dict[int, LogLikelihood]]) -> Figure:
    """What importance sampling adds to the ELBO, model by model (chapter 7): left, L_K − L_1, the mean
    over images of the paired per-image difference log p̂_K − log p̂_1 (± 1 s.e.); right, the mean
    effective sample size of the K weights beside ESS = K. ``curves[model]`` is
    :func:`vae_lib.inference.likelihood.iw_bound_curve`'s {K: LogLikelihood}, with K = 1 among them."""
    ks = sorted(next(iter(curves.values())))
    n_images = len(next(iter(curves.values()))[ks[0]].log_px)
    rise = {name: [mean_and_stderr(c[k].log_px - c[1].log_px) for k in ks] for name, c in curves.items()}
    fig, axes = plt.subplots(1, 2, figsize=(13, 4.2))
    plot_lines(ks, {n: [r[0] for r in v] for n, v in rise.items()}, "K (importance samples)",
               "L_K − L_1 (nats, paired)", f"What importance sampling adds to the ELBO ({n_images} images)",
               logx=True, errors={n: [r[1] for r in v] for n, v in rise.items()}, ax=axes[0])
    plot_lines(ks, {n: [c[k].ess.mean().item() for k in ks] for n, c in curves.items()},
               "K (importance samples)", "mean effective sample size", "Effective sample size of the K weights",
               logx=True, logy=True, ax=axes[1])
    axes[1].plot(ks, ks, "k:", label="ESS = K (perfect proposal)")
    axes[1].legend()
    return fig


def plot_posterior_beside_q(model: VAE, x: torch.Tensor, encoder: tuple[torch.Tensor, torch.Tensor],
                            best: tuple[torch.Tensor, torch.Tensor], hmc_z: torch.Tensor, is_z: torch.Tensor,
                            is_log_w: torch.Tensor, image_title: str, title: str, n_grid: int = 150,
                            image_shape: tuple[int, int] = (28, 28)) -> Figure:
    """One image x (1, D) of a J = 2 model (left) and its posterior p(z|x) on an ``n_grid``² grid (blue,
    right) around the encoder's mean, 4 standard deviations of the wider of the encoder's q and the HMC
    draws ``hmc_z`` (S, 2) in each direction; over it the encoder's q (``encoder`` = (mu, log_var), (2,)
    each) and the best diagonal q* (``best``) as 1- and 2-σ ellipses, the HMC draws, and importance
    proposals ``is_z`` (K, 2) with areas that grow with their weights ``exp(is_log_w)`` (K,). The image is
    drawn as ``image_shape`` pixels."""
    mu, log_var = encoder
    half = 4 * max(torch.exp(0.5 * log_var).max().item(), hmc_z.std(0).max().item())
    density, extent = posterior_on_grid(model, x, mu, half, n_grid=n_grid)
    fig = plt.figure(figsize=(10, 4.4))
    ax_img, ax = fig.add_axes([0.0, 0.15, 0.2, 0.7]), fig.add_axes([0.27, 0.12, 0.4, 0.8])
    ax_img.imshow(x.reshape(image_shape).cpu(), cmap="Greys")
    ax_img.set_title(image_title)
    ax_img.axis("off")
    plot_posterior_and_approximations(ax, density, extent, encoder, best, hmc_z, is_z, is_log_w)
    ax.legend(fontsize=8, loc="upper left", bbox_to_anchor=(1.03, 1.0))   # beside the plot, over no data
    ax.set_title(title, fontsize=10)
    return fig


@torch.no_grad()
def posterior_on_wide_grid(model: VAE, x: torch.Tensor, n_grid: int, limit: float = 6.0,
                           chunk: int = 2 ** 14, centre: torch.Tensor | None = None) -> torch.Tensor:
    """The density p(z|x) of one image x (1, D) at the n^J midpoints of the grid over [−limit, limit]^J
    (shifted by ``centre`` (J,) when one is given), normalized on the grid (its sum times the cell volume
    is 1): shape (n,) * J, indexed [z1, z2, …]."""
    points, volume = latent_grid(n_grid, model.latent_dim, limit, x.dtype)
    points = points.to(x.device)
    if centre is not None:
        points = points + centre.to(points)
    log_joint = torch.cat([model.log_likelihood(x, z[:, None, :]) + log_standard_normal(z)[:, None]
                           for z in points.split(chunk)])                                  # (G, 1)
    post = grid_posterior(log_joint, volume).log_posterior[:, 0].exp()
    return post.reshape([n_grid] * model.latent_dim).cpu()


def zoom_box(post: torch.Tensor, limit: float, depth: float) -> tuple[torch.Tensor, float]:
    """Where the mass of a density on the wide grid (``post``, (n,) * J over [−limit, limit]^J) lies: the
    peak cell's midpoint (J,) and a half-width that holds, with room to spare, every cell within ``depth``
    nats of the peak (at least three cells, at most ``limit``)."""
    n, j = post.shape[0], post.dim()
    width = 2 * limit / n
    axis = -limit + width * (torch.arange(n, dtype=torch.float64) + 0.5)
    log_post = post.double().log()
    peak = torch.stack([axis[i] for i in torch.unravel_index(log_post.argmax(), post.shape)])   # (J,)
    near = torch.nonzero(log_post > log_post.max() - depth)                                      # (cells, J)
    reach = (axis[near] - peak).abs().max().item() + width
    return peak, min(max(1.5 * reach, 3 * width), limit)


def plot_wide_posterior(model: VAE, x: torch.Tensor, marks: dict[str, torch.Tensor], title: str,
                        n_grid: int, limit: float = 6.0, depth: float = 30.0) -> Figure:
    """log p(z|x) of one image x (1, D) over the wide box [−limit, limit]^J (J = 2: one panel; J = 3: its
    three two-dimensional marginals), shaded down to ``depth`` nats below the peak so that minor modes show
    (a colour bar in nats below the peak); beside it (J = 2) or below (J = 3), the same on an ``n_grid``
    grid zoomed on the peak (:func:`zoom_box`), whose box the wide panels outline. ``marks`` names points
    (J,) to mark with hollow markers, so the mass under them shows (e.g. the encoder's mean, a quadrature
    box's centre); the zoomed panels show those inside their box."""
    post = posterior_on_wide_grid(model, x, n_grid, limit)
    peak, half = zoom_box(post, limit, depth)
    zoomed = posterior_on_wide_grid(model, x, n_grid, half, centre=peak.to(x.dtype))
    j = model.latent_dim
    pairs = list(itertools.combinations(range(j), 2))
    if len(pairs) == 1:
        fig, grid = plt.subplots(1, 2, figsize=(9.6, 3.9), squeeze=False, layout="constrained")
        rows = [[grid[0][0]], [grid[0][1]]]
    else:
        fig, grid = plt.subplots(2, len(pairs), figsize=(4.2 * len(pairs) + 1.2, 7.6), squeeze=False,
                                 layout="constrained")
        rows = [list(grid[0]), list(grid[1])]
    for density, axes, centre, size in ((post, rows[0], torch.zeros(j), limit), (zoomed, rows[1], peak, half)):
        for ax, (a, b) in zip(axes, pairs):
            other = [d for d in range(j) if d not in (a, b)]
            log_marginal = (density.sum(dim=other) if other else density).log()
            box = (centre[a].item() - size, centre[a].item() + size, centre[b].item() - size, centre[b].item() + size)
            image = ax.imshow(log_marginal.T - log_marginal.max(), origin="lower", extent=box, cmap="Greys",
                              vmin=-depth, vmax=0)
            for i, (label, point) in enumerate(marks.items()):
                if all(abs(point[d].item() - centre[d].item()) <= size for d in (a, b)):
                    ax.plot(point[a].item(), point[b].item(), "os"[i % 2], mfc="none", mew=1.5,
                            color=f"C{3 * i}", ms=8 + 4 * i, label=label)
            ax.set_xlim(box[:2])
            ax.set_ylim(box[2:])
            ax.set_xlabel(f"z{a + 1}")
            ax.set_ylabel(f"z{b + 1}")
    for ax, (a, b) in zip(rows[0], pairs):
        ax.add_patch(plt.Rectangle((peak[a].item() - half, peak[b].item() - half), 2 * half, 2 * half,
                                   fill=False, ls="--", lw=0.8, color="C2", label="zoomed box"))
    rows[0][0].legend(fontsize=8)
    rows[1][0].set_title("zoomed on the peak", fontsize=9)
    fig.colorbar(image, ax=[ax for row in rows for ax in row], label="log p(z|x) − its peak (nats)")
    fig.suptitle(title)
    return fig


def plot_gap_split(approximation: dict[str, torch.Tensor], amortization: dict[str, torch.Tensor]) -> Figure:
    """The ELBO's gap log p(x) − ELBO split in two, one bar per model: the approximation gap (no diagonal
    Gaussian closes it) and, stacked on it, the amortization gap (what the encoder leaves open), each the
    mean over images of per-image values (B,), with ±2 s.e. of the amortization gap."""
    names = list(approximation)
    a_means = [approximation[n].mean().item() for n in names]
    m_means = [amortization[n].mean().item() for n in names]
    n_images = len(next(iter(approximation.values())))
    fig, ax = plt.subplots(figsize=(8, 0.9 + 0.55 * len(names)))
    ax.barh(names, a_means, color="C1", label="approximation gap: no diagonal Gaussian closes it")
    ax.barh(names, m_means, left=a_means, color="C0", label="amortization gap: what the encoder leaves open",
            xerr=[2 * estimate(amortization[n]).stderr for n in names], capsize=3)
    ax.set_xlabel(f"log p(x) − ELBO, nats (mean over {n_images} images; bar: ±2 s.e. of the amortization gap)")
    ax.legend(fontsize=8, loc="lower right")
    return fig

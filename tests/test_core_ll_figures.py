"""vae_lib.figures.core_ll_figures: each figure of chapters 7 and 7b draws what it is given — one curve per
model, the posterior normalized on its grid, one bar per model stacked from the two gaps — and returns it."""

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt
import torch

from vae_lib.figures.core_ll_figures import (plot_gap_split, plot_k_curve, plot_posterior_beside_q,
                                             plot_wide_posterior, posterior_on_wide_grid, zoom_box)
from vae_lib.inference.likelihood import iw_bound_curve
from vae_lib.model.vae import VAE, VAEConfig


def _model(latent_dim=2):
    torch.manual_seed(0)
    return VAE(VAEConfig(data_dim=12, latent_dim=latent_dim, hidden_sizes=(8,))).eval()


def _x(n=1):
    return torch.bernoulli(torch.full((n, 12), 0.5), generator=torch.Generator().manual_seed(1))


def test_the_k_curve_draws_one_line_per_model_from_zero():
    curves = {name: iw_bound_curve(_model(j), _x(5), [1, 2, 10]) for name, j in (("a", 2), ("b", 3))}
    fig = plot_k_curve(curves)
    left, right = fig.axes
    assert len(left.containers) == 2                                   # an error-bar line per model
    assert all(c.lines[0].get_ydata()[0] == 0 for c in left.containers)   # L_1 − L_1 = 0
    assert "ESS = K (perfect proposal)" in [t.get_text() for t in right.get_legend().get_texts()]
    plt.close(fig)


def test_the_wide_posterior_is_normalized_and_drawn_per_pair_with_a_zoom_and_a_colour_bar():
    for j, panels in ((2, 1), (3, 3)):
        model, x = _model(j), _x()
        post = posterior_on_wide_grid(model, x, 10)
        assert post.shape == (10,) * j and abs(post.sum().item() * 1.2 ** j - 1) < 1e-5
        shifted = posterior_on_wide_grid(model, x, 10, limit=0.5, centre=torch.full((j,), 0.25))
        assert abs(shifted.sum().item() * 0.1 ** j - 1) < 1e-5          # normalized on its own box
        fig = plot_wide_posterior(model, x, {"encoder's mean": torch.zeros(j), "box centre": torch.ones(j)},
                                  "t", n_grid=10)
        wide, zoomed, bar = fig.axes[:panels], fig.axes[panels:2 * panels], fig.axes[2 * panels:]
        assert len(zoomed) == panels and len(bar) == 1 and bar[0].get_ylabel() == "log p(z|x) − its peak (nats)"
        assert len(wide[0].lines) == 2 and all(m.get_markerfacecolor() == "none" for m in wide[0].lines)  # hollow
        assert len(wide[0].patches) == 1                                          # the zoomed box, outlined
        image = wide[0].images[0].get_array()
        assert abs(image.max()) < 1e-6 and wide[0].images[0].get_clim() == (-30.0, 0.0)  # nats below the peak
        plt.close(fig)


def test_the_zoom_box_holds_the_mass_near_the_peak():
    axis = -6 + 0.1 * (torch.arange(120, dtype=torch.float64) + 0.5)      # 120 cells over [-6, 6]
    z1, z2 = torch.meshgrid(axis, axis, indexing="ij")
    log_post = -0.5 * ((z1 - 2.05) ** 2 + (z2 + 0.95) ** 2) / 0.05 ** 2   # a narrow bump on a cell
    peak, half = zoom_box(log_post.exp(), 6.0, 30.0)
    torch.testing.assert_close(peak, torch.tensor([2.05, -0.95], dtype=torch.float64))
    reach = 0.05 * (2 * 30) ** 0.5                                          # 30 nats below the peak
    assert reach < half < 3 * reach + 0.3 and half < 6.0
    flat = zoom_box(torch.ones(12, 12), 6.0, 30.0)[1]                     # mass everywhere: the whole box
    assert flat == 6.0


def test_the_posterior_beside_q_and_the_gap_split():
    model, x = _model(), _x()
    mu, log_var = torch.zeros(2), torch.zeros(2)
    z = torch.randn(50, 2, generator=torch.Generator().manual_seed(0))
    fig = plot_posterior_beside_q(model, x, (mu, log_var), (mu + 0.1, log_var - 0.2), z, z[:10],
                                  torch.zeros(10), "image", "title", n_grid=20, image_shape=(3, 4))
    assert len(fig.axes) == 2 and len(fig.axes[1].patches) == 4      # two ellipses each for q and q*
    plt.close(fig)
    approx = {"a": torch.full((4,), 0.2), "b": torch.full((4,), 0.5)}
    amort = {"a": torch.tensor([1.0, 2.0, 3.0, 2.0]), "b": torch.full((4,), 1.0)}
    fig = plot_gap_split(approx, amort)
    bars = fig.axes[0].patches
    assert len(bars) == 4 and abs(bars[2].get_x() - 0.2) < 1e-6 and abs(bars[2].get_width() - 2.0) < 1e-6
    plt.close(fig)

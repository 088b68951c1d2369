"""vae_lib.figures.inference_plots: the posterior of a J = 2 model on a grid is a normalized density around the
centre asked for; the figures draw what they are given (one marker per estimator and model, one dot per
paired shift) and refuse a model whose posterior cannot be drawn in the plane."""

import matplotlib

matplotlib.use("Agg")

import pytest
import torch

from vae_lib.figures.inference_plots import (plot_estimator_errors, plot_paired_shifts,
                                             plot_posterior_and_approximations, posterior_on_grid)
from vae_lib.model.vae import VAE, VAEConfig


def _model(latent_dim=2):
    torch.manual_seed(0)
    return VAE(VAEConfig(data_dim=12, latent_dim=latent_dim, hidden_sizes=(8,))).eval()


def test_the_grid_posterior_is_a_density_on_the_square_asked_for():
    model, x = _model(), torch.bernoulli(torch.full((1, 12), 0.5))
    density, extent = posterior_on_grid(model, x, torch.tensor([1.0, -0.5]), 4.0, n_grid=60)
    cell = (8.0 / 60) ** 2
    assert density.shape == (60, 60) and abs(density.sum().item() * cell - 1) < 1e-6
    assert extent == (-3.0, 5.0, -4.5, 3.5)
    with pytest.raises(ValueError, match="needs J = 2"):
        posterior_on_grid(_model(3), x, torch.zeros(3), 4.0)


def test_the_figures_draw_one_mark_per_item():
    import matplotlib.pyplot as plt

    errors = {"a": {"IS": torch.randn(10), "App. D": torch.randn(10)}, "b": {"IS": torch.randn(10)}}
    ax = plot_estimator_errors(errors, {"a": {"IS": 0.1, "App. D": 1.0}, "b": {"IS": 0.2}})
    assert len(ax.containers) == 3                                   # one error bar per (model, estimator)
    ax = plot_paired_shifts({"a": {"p": (1.0, 0.1), "q": (2.0, 0.2)}, "b": {"p": (0.5, 0.1)}}, "nats")
    assert len(ax.containers) == 3 and [t.get_text() for t in ax.get_yticklabels()] == ["p", "q"]
    model, x = _model(), torch.bernoulli(torch.full((1, 12), 0.5))
    density, extent = posterior_on_grid(model, x, torch.zeros(2), 3.0, n_grid=20)
    _, ax = plt.subplots()
    enc = (torch.zeros(2), torch.zeros(2))
    plot_posterior_and_approximations(ax, density, extent, enc, best=enc, hmc_z=torch.randn(50, 2),
                                      is_z=torch.randn(30, 2), is_log_w=torch.randn(30))
    assert len(ax.patches) == 4 and ax.get_xlim() == (-3.0, 3.0)     # 2 ellipses each for q and q*
    plt.close("all")

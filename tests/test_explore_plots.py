"""vae_lib.figures.explore and vae_lib.figures.plots: the manifold grid's Φ⁻¹ spacing, decoding, and figures that draw."""

import warnings

import matplotlib
import matplotlib.pyplot as plt
import pytest
import torch
from matplotlib.figure import Figure
from scipy.stats import norm

from vae_lib.model.vae import VAE, VAEConfig
from vae_lib.figures.explore import decode_latents, interpolate_latents, latent_explorer, manifold_grid_latents
from vae_lib.figures.plots import (plot_image_grid, plot_latent_scatter, plot_learning_curves, plot_lines,
                                   plot_reconstructions, tile_images)
from vae_lib.training.train import History


@pytest.fixture
def model_2d():
    torch.manual_seed(0)
    return VAE(VAEConfig(data_dim=28 * 20, latent_dim=2, hidden_sizes=(8,), likelihood="gaussian"))


@pytest.fixture(autouse=True)
def close_figures():
    yield
    plt.close("all")


def test_manifold_grid_is_inverse_cdf_spaced():
    """The n×n grid is Φ⁻¹ of n evenly spaced quantiles in [eps, 1−eps] — symmetric about 0 — with z[0]
    rising left to right and z[1] falling top to bottom, as in the paper's Figure 4."""
    n, eps = 5, 0.05
    grid = manifold_grid_latents(n, eps)
    assert grid.shape == (n * n, 2)
    values = torch.tensor(norm.ppf(torch.linspace(eps, 1 - eps, n, dtype=torch.float64).numpy()), dtype=torch.float32)
    torch.testing.assert_close(values, -values.flip(0))                          # symmetric
    rows = grid.reshape(n, n, 2)                                                 # (row, column, z)
    torch.testing.assert_close(rows[0, :, 0], values)                            # columns: z[0] ascending
    torch.testing.assert_close(rows[:, 0, 1], values.flip(0))                    # rows: z[1] descending
    assert torch.all(rows[:, :, 0] == rows[0, :, 0]) and torch.all(rows[:, :, 1] == rows[:, :1, 1])
    torch.testing.assert_close(grid[n * n // 2], torch.zeros(2))                # odd n: the centre is z = 0
    with pytest.raises(ValueError, match="n must be at least 1"):
        manifold_grid_latents(0)


def test_decode_latents_gives_mean_images(model_2d):
    """decode_latents maps z (N, J) to the decoder's mean images (N, D) in (0, 1), whatever z's dtype."""
    z = manifold_grid_latents(4).double()
    images = decode_latents(model_2d, z)
    assert images.shape == (16, 560) and images.dtype == torch.float32
    assert torch.all((images > 0) & (images < 1))
    torch.testing.assert_close(images, model_2d.decode(z.float()))


def test_interpolation_includes_both_ends():
    """interpolate_latents runs a straight line from z_start to z_end in `steps` points, ends included."""
    a, b = torch.tensor([0.0, -1.0, 2.0]), torch.tensor([1.0, 1.0, -2.0])
    path = interpolate_latents(a, b, steps=5)
    assert path.shape == (5, 3)
    torch.testing.assert_close(path[0], a)
    torch.testing.assert_close(path[-1], b)
    torch.testing.assert_close(path[2], (a + b) / 2)


def test_tile_images_layout():
    """tile_images puts N images on a grid with `pad` pixels of `pad_value` between them, in reading order."""
    images = torch.arange(5.0).repeat_interleave(6).reshape(5, 6) / 10              # five 2×3 images, constant
    canvas = tile_images(images, (2, 3), n_cols=3, pad=1, pad_value=0.9)
    assert canvas.shape == (2 * 3 - 1, 3 * 4 - 1)
    assert canvas[0, 0] == 0.0 and canvas[2, 0] == 0.9                                 # image 0, then padding
    assert canvas[0, 4] == pytest.approx(0.1) and canvas[3, 4] == pytest.approx(0.4)   # images 1 and 4
    assert canvas[3:, 8:].min() == 0.9                                                # the empty slot is padding


def test_plots_return_figures_without_switching_backend(model_2d):
    """Every plot function returns a matplotlib Figure and leaves the backend alone."""
    backend = matplotlib.get_backend()
    images = torch.rand(12, 560)
    history = History(epoch=[1, 2], samples_seen=[100, 200], seconds=[1.0, 2.0], train_bound=[-200.0, -150.0],
                      train_rate=[5.0, 6.0], train_distortion=[195.0, 144.0], test_bound=[-190.0, -160.0],
                      test_rate=[5.0, 6.0], test_distortion=[185.0, 154.0])
    no_test = History(epoch=[1], samples_seen=[100], seconds=[1.0], train_bound=[-300.0], train_rate=[1.0],
                      train_distortion=[299.0])
    _, ax = plt.subplots()
    figures = [
        plot_image_grid(images, (28, 20), title="grid"),
        plot_image_grid(images, (28, 20), ax=ax),
        plot_reconstructions(images, model_2d.reconstruct(images), (28, 20)),
        plot_learning_curves({"a": history, "b": no_test}),
        plot_latent_scatter(torch.randn(50, 3), torch.randint(0, 10, (50,)), dims=(0, 2)),
        plot_latent_scatter(torch.randn(50, 2), None),
        plot_lines([1, 10, 100], {"L_K": [-100.0, -99.0, -98.5]}, "K", "nats", "bound", logx=True,
                   errors={"L_K": [0.1, 0.1, 0.1]}),
    ]
    assert all(isinstance(f, Figure) for f in figures)
    assert figures[1] is ax.figure
    assert matplotlib.get_backend() == backend


def test_unlabelled_scatter_draws_without_warnings():
    """Frey Face has no labels: its latent scatter must not print a colormap warning on the page."""
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert isinstance(plot_latent_scatter(torch.randn(50, 2), None), Figure)


def test_latent_explorer_has_one_slider_per_latent_dimension():
    """latent_explorer builds a widget with one slider per latent dimension, each spanning ±limit."""
    widgets = pytest.importorskip("ipywidgets")
    torch.manual_seed(0)
    model = VAE(VAEConfig(data_dim=28 * 28, latent_dim=3, hidden_sizes=(8,)))
    with warnings.catch_warnings():
        warnings.simplefilter("error", DeprecationWarning)  # imshow of a torch tensor warns under NumPy 2
        explorer = latent_explorer(model, (28, 28), limit=2.5)
    sliders = explorer.children[0].children
    assert len(sliders) == 3 and all(isinstance(s, widgets.FloatSlider) for s in sliders)
    assert [s.description for s in sliders] == ["z[0]", "z[1]", "z[2]"]
    assert all(s.min == -2.5 and s.max == 2.5 and s.value == 0.0 for s in sliders)
    sliders[1].value = 1.5  # moving a slider redraws through decode_latents without error



def test_plot_image_grid_labels_its_rows():
    import matplotlib.pyplot as plt
    import pytest
    import torch

    from vae_lib.figures.plots import plot_image_grid

    fig, ax = plt.subplots()
    plot_image_grid(torch.rand(6, 4), (2, 2), n_cols=3, ax=ax, row_labels=["z[0]", "z[1]"])
    texts = {t.get_text(): t.get_position() for t in ax.texts}
    assert set(texts) == {"z[0]", "z[1]"} and texts["z[0]"][1] == 1.0 and texts["z[1]"][1] == 4.0
    with pytest.raises(ValueError, match="3 row labels for a grid of 2 rows"):
        plot_image_grid(torch.rand(6, 4), (2, 2), n_cols=3, ax=ax, row_labels=["a", "b", "c"])
    plt.close(fig)

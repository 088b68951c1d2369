"""vae_lib.figures.latent_plots: chapter 8's latent-space figures lay out the images and numbers they are
given — grids of the right size, the two ends beside each path, inactive dimensions marked — and return
figures without showing them."""

import matplotlib
import matplotlib.pyplot as plt
import numpy as np
import pytest
import torch
from matplotlib.figure import Figure

from vae_lib.figures.latent_plots import plot_dimension_kl, plot_interpolations, plot_manifold, plot_slider_rows
from vae_lib.figures.plots import tile_images


@pytest.fixture(autouse=True)
def close_figures():
    yield
    plt.close("all")


def _shown(fig: Figure) -> np.ndarray:
    """The array the figure's first axis shows (the tiled grid)."""
    return fig.axes[0].images[0].get_array()


def test_manifold_is_one_square_grid_with_the_grid_size_in_its_title():
    images = torch.rand(16, 28 * 20)
    backend = matplotlib.get_backend()
    fig = plot_manifold(images, (28, 20), "frey", cmap="gray")
    assert isinstance(fig, Figure) and matplotlib.get_backend() == backend
    np.testing.assert_allclose(_shown(fig), tile_images(images, (28, 20), n_cols=4, pad_value=0.85))
    assert "4×4" in fig.axes[0].get_title() and fig.axes[0].get_title().startswith("frey:")
    width, height = fig.get_size_inches()
    assert height > width                                        # faces are taller than wide
    with pytest.raises(ValueError, match="square"):
        plot_manifold(torch.rand(15, 784), (28, 28), "mnist")


def test_interpolation_rows_put_the_two_images_at_the_ends_of_each_path():
    ends = torch.stack([torch.zeros(6), torch.ones(6)])          # two 2×3 images: black and white
    paths = {"a": torch.full((4, 6), 0.5), "b": torch.full((4, 6), 0.25)}
    fig = plot_interpolations(ends, paths, (2, 3), end_names=("a '1'", "a '7'"))
    assert len(fig.axes) == 2
    for ax, (name, path) in zip(fig.axes, paths.items()):
        expected = tile_images(torch.cat([ends[:1], path, ends[1:]]), (2, 3), n_cols=6)
        np.testing.assert_allclose(ax.images[0].get_array(), expected)
        assert ax.get_title() == f"{name}: a '1', the path between the encodings, a '7'"
    with pytest.raises(ValueError, match="two images"):
        plot_interpolations(torch.zeros(3, 6), paths, (2, 3))


def test_slider_rows_show_one_labelled_row_per_dimension():
    rows = torch.arange(3 * 5, dtype=torch.float32).repeat_interleave(4).reshape(3, 5, 4) / 15
    fig = plot_slider_rows(rows, (2, 2), "z3")
    ax = fig.axes[0]
    np.testing.assert_allclose(_shown(fig), tile_images(rows.reshape(15, 4), (2, 2), n_cols=5))
    assert [t.get_text() for t in ax.texts] == ["z[0]", "z[1]", "z[2]"]
    assert "from −3 to 3" in ax.get_title()
    with pytest.raises(ValueError, match=r"\(J, steps, D\)"):
        plot_slider_rows(rows.reshape(15, 4), (2, 2), "z3")


def test_dimension_kl_marks_exactly_the_inactive_dimensions():
    kl = {"small": [1.5, 2.0, 0.7], "large": [0.0, 3.1, 2.2, 0.001]}
    activity = {"small": torch.tensor([0.9, 1.1, 0.5]), "large": torch.tensor([1e-4, 0.8, 0.6, 0.005])}
    fig = plot_dimension_kl(kl, activity, threshold=1e-2)
    small, large = fig.axes
    assert [b.get_height() for b in small.patches] == pytest.approx(kl["small"])
    assert [b.get_height() for b in large.patches] == pytest.approx(kl["large"])
    assert len(small.texts) == 0 and [t.get_position()[0] for t in large.texts] == [0, 3]
    red = matplotlib.colors.to_rgba("C3")
    assert [b.get_facecolor() == red for b in large.patches] == [True, False, False, True]
    with pytest.raises(ValueError, match="2 KL values but 3"):
        plot_dimension_kl({"x": [1.0, 2.0]}, {"x": [1.0, 1.0, 1.0]})

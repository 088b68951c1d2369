"""vae_lib.figures.diagrams: each diagram returns a figure that draws what its docstring says — its symbols,
shapes, arrows and weights — with every label inside the figure and no two labels on top of each other."""

import itertools

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402
from matplotlib.colors import to_hex  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402
from matplotlib.patches import FancyArrowPatch  # noqa: E402
from matplotlib.text import Text  # noqa: E402

from vae_lib.figures.diagrams import (STYLE, encoder_decoder, graphical_model, importance_example,  # noqa: E402
                                      importance_weights, reparameterization_graph)


@pytest.fixture(autouse=True)
def close_figures():
    yield
    plt.close("all")


def texts(fig: Figure) -> list[Text]:
    """The figure's labels, less the axes' tick labels (matplotlib places those, drawn or not)."""
    ticks = {id(label) for ax in fig.axes for axis in (ax.xaxis, ax.yaxis)
             for tick in axis.get_major_ticks() + axis.get_minor_ticks() for label in (tick.label1, tick.label2)}
    return [t for t in fig.findobj(Text) if t.get_visible() and t.get_text().strip() and id(t) not in ticks]


def all_text(fig: Figure) -> str:
    return " ".join(t.get_text() for t in texts(fig))


def arrow_colours(fig: Figure) -> set[str]:
    return {to_hex(p.get_edgecolor()) for ax in fig.axes for p in ax.patches if isinstance(p, FancyArrowPatch)}


def assert_legible(fig: Figure) -> None:
    """Every label lies inside the figure, and no two labels overlap (a pixel of slack)."""
    fig.canvas.draw()
    renderer = fig.canvas.get_renderer()
    boxes = [(t.get_text(), t.get_window_extent(renderer)) for t in texts(fig)]
    frame = fig.bbox
    for text, box in boxes:
        assert frame.x0 - 1 <= box.x0 and box.x1 <= frame.x1 + 1, text
        assert frame.y0 - 1 <= box.y0 and box.y1 <= frame.y1 + 1, text
    for (a, box_a), (b, box_b) in itertools.combinations(boxes, 2):
        overlap_x = min(box_a.x1, box_b.x1) - max(box_a.x0, box_b.x0)
        overlap_y = min(box_a.y1, box_b.y1) - max(box_a.y0, box_b.y0)
        assert overlap_x <= 1 or overlap_y <= 1, (a, b)


def test_every_diagram_is_a_figure_at_the_books_column_width_and_legible():
    figures = [graphical_model(), graphical_model(recognition=False), encoder_decoder(),
               encoder_decoder(hidden=(400,), latent_dim=20, batch="M"), encoder_decoder(hidden=(), latent_dim=2),
               encoder_decoder(hidden=(1024, 512, 256), latent_dim=200), reparameterization_graph(),
               importance_weights()]
    for fig in figures:
        assert isinstance(fig, Figure)
        assert fig.get_figwidth() <= 7.0
        assert_legible(fig)


def test_graphical_model_has_the_plate_its_nodes_and_both_kinds_of_arrow():
    full = all_text(graphical_model())
    for symbol in ("$N$", "$x$", "$z$", r"$\theta$", r"$\phi$"):
        assert symbol in full
    generative = graphical_model(recognition=False)
    assert r"$\phi$" not in all_text(generative)
    arrows = lambda fig: [p for p in fig.axes[0].patches if isinstance(p, FancyArrowPatch)]  # noqa: E731
    assert len(arrows(generative)) == 2                                   # z → x, θ → x
    assert len(arrows(graphical_model())) == 4                            # and x ⇢ z, φ ⇢ z, dashed
    assert sum(a.get_linestyle() != "-" for a in arrows(graphical_model())) == 2


def test_encoder_decoder_writes_the_shapes_of_the_sizes_given():
    text = all_text(encoder_decoder(data_dim=784, hidden=(500,), latent_dim=20))
    for shape in ("(B, 784)", "(B, 500)", "(B, 20)"):
        assert shape in text
    text = all_text(encoder_decoder(data_dim=560, hidden=(300, 100), latent_dim=7, batch="M"))
    for shape in ("(M, 560)", "(M, 300)", "(M, 100)", "(M, 7)"):
        assert shape in text
    assert "(B," not in text and "(M, 784)" not in text
    assert "$h_2$" in text and "$h'_2$" in text                          # the decoder mirrors the encoder


@pytest.mark.parametrize("sizes", [dict(data_dim=0), dict(latent_dim=-3), dict(hidden=(500, 0)),
                                   dict(latent_dim=2.5), dict(latent_dim=True), dict(hidden=(-1,))])
def test_encoder_decoder_refuses_sizes_that_are_not_positive_integers(sizes):
    with pytest.raises(ValueError, match="positive integers"):
        encoder_decoder(**sizes)


def test_reparameterization_graph_has_its_symbols_and_forward_and_backward_arrows():
    fig = reparameterization_graph()
    text = all_text(fig)
    for symbol in (r"\epsilon", r"\mu", r"\sigma", r"\phi"):
        assert symbol in text
    assert r"$\log\sigma^2$" in text and r"\partial\log\sigma^2" in text   # the encoder's output, as the code has it
    assert "the only randomness" in text
    assert {to_hex(STYLE["forward"]), to_hex(STYLE["backward"])} <= arrow_colours(fig)
    assert len(arrow_colours(fig)) == 2


def test_importance_weights_stems_are_the_normalized_weights_of_the_log_weights_given():
    log_w = np.array([-100.0, -101.0, -99.5, -130.0, -100.2])               # MNIST-sized: exp would underflow
    z = np.array([-1.0, 0.0, 0.5, 1.0, 2.0])
    fig = importance_weights(log_w, z)
    stems = [c for ax in fig.axes for c in ax.collections if c.get_gid() == "normalized weights"]
    assert len(stems) == 1
    segments = stems[0].get_segments()
    heights = np.array([seg[1, 1] - seg[0, 1] for seg in segments])
    expected = np.exp(log_w - log_w.max()) / np.exp(log_w - log_w.max()).sum()
    np.testing.assert_allclose(heights, expected, rtol=1e-12)
    np.testing.assert_allclose([seg[0, 0] for seg in segments], z)
    assert heights.sum() == pytest.approx(1.0)
    assert len(fig.axes) == 1                                               # no curves given: no density panel


def test_importance_weights_concentrate_where_the_default_posterior_is():
    example = importance_example()
    fig = importance_weights()
    assert len(fig.axes) == 2
    assert "ESS" in all_text(fig)
    w = np.exp(example.log_w - example.log_w.max())
    w /= w.sum()
    posterior_mode = example.grid[np.argmax(example.log_joint)]
    near = np.abs(example.z - posterior_mode) < 0.75
    assert w[near].sum() > 0.8 and near.mean() < 0.5                       # few draws carry most of the weight


def test_importance_weights_refuses_mismatched_draws():
    with pytest.raises(ValueError, match="same length"):
        importance_weights(np.zeros(3), np.zeros(4))

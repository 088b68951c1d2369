"""vae_lib.figures.beyond_plots: each figure draws what its docstring says, from the data it is given."""

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import pytest  # noqa: E402

from vae_lib.base.statistics import Estimate  # noqa: E402
from vae_lib.figures.beyond_plots import (late_floor, plot_bound_and_gap, plot_learning_curves,  # noqa: E402
                                          plot_paired, plot_rate_distortion, plot_snr, plot_units)


def test_rate_distortion_draws_one_point_per_model_and_the_entropy_line():
    points = {"a": (10.0, 90.0), "b": (30.0, 70.0)}
    plain = plot_rate_distortion(points, elbo_levels=[-100.0])
    framed = plot_rate_distortion(points, elbo_levels=[-100.0], entropy_bound=95.0)
    ax = framed.axes[0]
    assert len(ax.collections) == len(plain.axes[0].collections)             # nothing shaded: H is only bounded
    line = [ln for ln in ax.lines if ln.get_color() == "C2"][0]
    assert (line.get_xdata() + line.get_ydata() == pytest.approx(95.0))     # R + D = the bound, everywhere
    plt.close("all")


def test_learning_curves_keep_a_runs_colour_on_both_sides():
    fig = plot_learning_curves({"a": ([1, 2], [-100, -95]), "b": ([1, 2], [-99, -96])},
                               {"b": ([0.5, 1.0], [-99, -96]), "c": ([2.0], [-97])}, "bound")
    left, right = fig.axes
    colour = {ln.get_label(): ln.get_color() for ln in left.lines}
    assert {ln.get_label(): ln.get_color() for ln in right.lines}["b"] == colour["b"]
    assert [ln.get_label() for ln in right.lines] == ["b", "c"]
    plt.close("all")


def test_learning_curves_floor_cuts_the_early_epochs_off_both_panels():
    curves = {"a": ([1, 2, 3], [-200, -100, -95])}
    fig = plot_learning_curves(curves, curves, "bound", floor=-110)
    assert all(ax.get_ylim()[0] == -110 and ax.get_ylim()[1] > -95 for ax in fig.axes)
    with pytest.raises(ValueError, match="below the highest"):
        plot_learning_curves(curves, curves, "bound", floor=-90)
    plt.close("all")


def test_the_late_floor_keeps_every_curve_in_view_from_its_start():
    curves = [[-200, -150, -120, -101.5], [-180, -110, -100, -99]]
    assert late_floor(curves, start=3) == -122            # the third values on: -120 is the lowest, less 2
    assert late_floor(curves, start=4, margin=0.5) == -102
    assert late_floor(curves, start=5) is None             # no curve that long


def test_bound_and_gap_put_one_row_per_model_with_two_se_bars():
    est = {"a": Estimate(-90.0, 0.5, 100), "b": Estimate(-95.0, 0.25, 100)}
    fig = plot_bound_and_gap(est, {"a": Estimate(4.0, 0.1, 100), "b": Estimate(16.0, 0.2, 100)})
    assert [t.get_text() for t in fig.axes[0].get_yticklabels()] == ["a", "b"]
    bars = fig.axes[0].containers[0]
    assert bars.lines[0].get_xdata()[0] == pytest.approx(-90.0)
    plt.close("all")


def test_the_other_beyond_figures_draw_their_data():
    assert len(plot_units({"a": [1.0, 0.0]}, {"a": [1.0, 0.001]}).axes[0].lines) == 1
    assert len(plot_paired({"x": Estimate(1.0, 0.1, 10)}, "d", "t").axes[0].containers) == 1
    assert len(plot_snr({"e": {1: 1.0, 5: 0.5}}, "t").axes[0].lines) == 1
    plt.close("all")


def test_collapse_draws_a_panel_per_run_its_units_and_its_kl_weight():
    from dataclasses import asdict

    from vae_lib.figures.beyond_plots import plot_collapse
    from vae_lib.training.train_config import TrainConfig

    warm = TrainConfig(epochs=4, kl_schedule="warmup", kl_anneal_epochs=2)
    trace = {"traces": {name: {"label": name, "train_config": asdict(config),
                               "trace": [{"epoch": e, "kl_per_unit": [2.0 * e, 0.05 / e, 0.0]} for e in (1, 2, 3)]}
                        for name, config in (("plain", TrainConfig(epochs=4)), ("warm", warm))}}
    fig = plot_collapse(trace)
    panels = [ax for ax in fig.axes if ax.get_ylabel() != "KL weight β_t (dashed)" and ax.get_title()]
    assert [ax.get_title() for ax in panels] == ["plain", "warm"]
    units = [ln for ln in panels[1].lines if len(ln.get_xdata()) == 3]
    assert len(units) == 3 and sum(isinstance(ln.get_color(), str) and ln.get_color() == "0.75" for ln in units) == 2   # one unit ends above 0.1 nats
    assert min(min(ln.get_ydata()) for ln in units) == pytest.approx(1e-4)           # zero drawn at the log floor
    weight = [ln for ax in fig.axes if ax not in panels for ln in ax.lines][-1]
    assert list(weight.get_ydata()[[0, -1]]) == [0.0, 1.0]                            # the warm-up: 0 → 1 by epoch 2
    assert len(plot_collapse(trace, ["warm"], yscale="linear").axes) == 2
    with pytest.raises(ValueError, match="yscale"):
        plot_collapse(trace, yscale="symlog")
    plt.close("all")


def test_a_line_that_coincides_with_an_earlier_one_says_so():
    fig = plot_snr({"IWAE decoder": {1: 1.0, 5: 2.0}, "DReG decoder": {1: 1.001, 5: 2.0},
                    "DReG encoder": {1: 0.5, 5: 0.4}}, "t")
    lines = fig.axes[0].lines
    assert [ln.get_label() for ln in lines] == ["IWAE decoder", "DReG decoder (= IWAE decoder)", "DReG encoder"]
    assert lines[1].get_linestyle() == "--" and lines[2].get_linestyle() == "-"
    plt.close(fig)

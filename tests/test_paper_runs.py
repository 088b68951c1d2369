"""vae_lib.runs.paper_runs: the Figure 2 runs' setup, resumable training with its curve file, the read-off
reference values and interpolation on the log axis (verdicts: tests/test_statistics.py)."""

import math

import pytest
import torch

from vae_lib.runs.paper_runs import figure2_table, finalize_curve, paper_reference, read_curve, train_paper_run
from vae_lib.runs.figure2_setup import FIGURE2_LATENTS, PaperRun, figure2_runs
from vae_lib.base.statistics import value_at
from vae_lib.figures.plots import plot_paper_panels


def test_the_paper_setup():
    mnist, frey = PaperRun("mnist", "aevb", 3), PaperRun("frey", "wake_sleep", 2)
    m = mnist.model_config()
    assert (m.hidden_sizes, m.activation, m.likelihood, m.data_dim, m.init_std) == ((500,), "tanh", "bernoulli", 784, 0.1)
    f = frey.model_config()
    assert (f.hidden_sizes, f.likelihood, f.data_dim) == ((200,), "gaussian", 560)
    t = mnist.train_config(60000, 10 ** 7, 0.02)
    assert (t.optimizer, t.batch_size, t.n_samples, t.estimator, t.epochs) == ("adagrad", 100, 1, "B", 167)
    assert t.weight_decay == pytest.approx(1 / 60000) and t.algorithm == "aevb"
    assert frey.train_config(1765, 10 ** 7, 0.01).protocol == "grey"
    assert len(figure2_runs()) == 2 * (len(FIGURE2_LATENTS["mnist"]) + len(FIGURE2_LATENTS["frey"])) == 18
    with pytest.raises(ValueError, match="unknown algorithm 'mcem'"):
        PaperRun("mnist", "mcem", 3)


def test_reference_values_are_the_papers():
    ref = paper_reference()
    assert "1312.6114" in ref["citation"]
    assert ref["figure2"]["aevb"]["mnist"]["3"]["test_1e7"] == -139
    assert [ref["figure2"]["aevb"]["mnist"][str(j)]["test_1e7"] for j in (3, 5, 10, 20, 200)] == [-139, -126, -111, -107, -106]


def test_value_at_interpolates_on_the_log_axis():
    assert value_at([10, 1000], [0.0, 2.0], 100) == pytest.approx(1.0)   # halfway in log10
    assert math.isnan(value_at([10, 1000], [0.0, 2.0], 5)) and math.isnan(value_at([10, 1000], [0.0, 2.0], 2000))
    assert value_at([10, 1000], [0.0, 2.0], 1000) == 2.0


def test_a_run_writes_its_curve_resumes_and_lengthens(tmp_path):
    run = PaperRun("frey", "aevb", 2)
    first = train_paper_run(run, 600, tmp_path, tmp_path, limit_train=200, sweep_samples=100)
    assert first["samples_seen"][-1] >= 600 and first["step_size"] in (0.01, 0.02, 0.1)
    assert read_curve(tmp_path / f"{run.name}.json")["step_size_sweep"] == first["step_size_sweep"]
    longer = train_paper_run(run, 1200, tmp_path, tmp_path, limit_train=200, sweep_samples=100)
    assert longer["samples_seen"][:len(first["samples_seen"])] == first["samples_seen"]
    assert longer["samples_seen"][-1] >= 1200 and longer["step_size"] == first["step_size"]
    done = finalize_curve(run, tmp_path, tmp_path)
    assert done["finished"] and 0 < done["test_bound_se"] < 50 and done["test_bound"] == longer["test_bound"]


def test_table_and_panels_from_curves():
    curve = lambda a, j, shift: {"format": "vae_lib.curve/1", "dataset": "mnist", "algorithm": a, "latent_dim": j,
                                 "name": PaperRun("mnist", a, j).name, "samples_seen": [10 ** 5, 10 ** 6, 10 ** 7],
                                 "train_bound": [-170 + shift, -150 + shift, -140 + shift],
                                 "test_bound": [-171 + shift, -151 + shift, -141 + shift], "seconds": [1, 10, 100],
                                 "devices": [{"device": "cpu", "from_samples": 0}], "test_bound_se": 0.4}
    curves = [curve("aevb", 3, 0), curve("wake_sleep", 3, -5), curve("aevb", 5, 10)]
    rows = figure2_table(curves, paper_reference())
    aevb3 = next(r for r in rows if r["algorithm"] == "aevb" and r["latent_dim"] == 3)
    assert aevb3["test_1e6"] == -151 and aevb3["test_1e7"] == -141 and aevb3["paper_test_1e7"] == -139
    fig = plot_paper_panels(curves, paper_reference(), "mnist", "test")
    assert sum(ax.get_visible() and ax.axison for ax in fig.axes) == 2
    with pytest.raises(ValueError, match="no curve of data set 'frey'"):
        plot_paper_panels(curves, paper_reference(), "frey", "test")


def test_a_run_stopped_before_its_curve_was_written_resumes_after_finalize(tmp_path):
    """finalize_curve rebuilds a stopped run's curve from its checkpoint without the step-size sweep; training
    it further must keep the checkpoint's step size (a session's resumed runs once failed here)."""
    run = PaperRun("frey", "aevb", 2)
    first = train_paper_run(run, 600, tmp_path, tmp_path, limit_train=200, sweep_samples=100)
    (tmp_path / f"{run.name}.json").unlink()
    rebuilt = finalize_curve(run, tmp_path, tmp_path, trained_on="cpu (test)")
    assert rebuilt["step_size_sweep"] == {} and rebuilt["step_size"] == first["step_size"]
    longer = train_paper_run(run, 1200, tmp_path, tmp_path, limit_train=200, sweep_samples=100)
    assert longer["step_size"] == first["step_size"] and longer["samples_seen"][-1] >= 1200
    assert longer["devices"][0]["device"] == "cpu (test)"


def test_plateau_finds_the_longest_flat_stretch_in_log_samples():
    from vae_lib.base.statistics import plateau

    samples = [1e3, 1e4, 1e5, 1e6, 2e6, 1e7]
    values = [400.0, 570.0, 575.0, 568.0, 700.0, 850.0]
    assert plateau(samples, values, width=10.0) == (1e4, 1e6, 570.0)
    assert plateau(samples, [1.0, 50.0, 100.0, 150.0, 200.0, 250.0], width=5.0)[:2] == (1e3, 1e3)   # no plateau: one point
    with pytest.raises(ValueError, match="as many values"):
        plateau([1.0], [], 1.0)


def test_a_contiguous_frey_face_holdout_is_its_own_run_on_the_videos_last_frames():
    from vae_lib.runs.figure2_setup import paper_data

    run = PaperRun("frey", "aevb", 2, "contiguous")
    assert run.name == "fig2_frey_aevb_z2_contiguous" and PaperRun("frey", "aevb", 2).name == "fig2_frey_aevb_z2"
    train, test, train_eval = paper_data("frey", holdout="contiguous")
    frames = paper_data("frey")[0].x
    assert (len(train), len(test)) == (1765, 200) and torch.equal(train_eval, train.x)
    assert not torch.equal(test.x, paper_data("frey")[1].x)
    assert len(frames) == 1765
    with pytest.raises(ValueError, match="contiguous for Frey Face only"):
        PaperRun("mnist", "aevb", 3, "contiguous")
    with pytest.raises(ValueError, match="holdout must be one of"):
        PaperRun("frey", "aevb", 2, "last")

"""The Figure 3 runs (vae_lib.runs.figure3): a resumed run is the uninterrupted run, and the curve's exact
log p(x) sits above the importance-sampled estimate (a stochastic lower bound) on the same images."""

import json
import math

import pytest
import torch

from vae_lib.runs.figure3 import Figure3Run, train_figure3_run
from vae_lib.runs.figure3_curves import figure3_table

torch.set_num_threads(1)


@pytest.mark.parametrize("algorithm", ["mcem"])
def test_resume_is_the_uninterrupted_run(tmp_path, algorithm):
    run = Figure3Run(algorithm, 1000)
    kw = dict(n_eval=2, first_eval=300, is_k=0)
    whole = train_figure3_run(run, 700, tmp_path / "a", tmp_path / "a", **kw)
    train_figure3_run(run, 400, tmp_path / "b", tmp_path / "b", **kw)      # stops at 400 ...
    resumed = train_figure3_run(run, 700, tmp_path / "b", tmp_path / "b", **kw)   # ... and goes on to 700
    a = torch.load(tmp_path / "a" / f"{run.name}.pt", weights_only=True)
    b = torch.load(tmp_path / "b" / f"{run.name}.pt", weights_only=True)
    assert a["samples_done"] == b["samples_done"] == 700
    for key in a["model_state"]:
        assert torch.equal(a["model_state"][key], b["model_state"][key]), key
    if algorithm == "mcem":
        assert torch.equal(a["mcem_state"]["z"], b["mcem_state"]["z"])
        assert torch.equal(a["mcem_state"]["log_step"], b["mcem_state"]["log_step"])
    assert whole["points"][-1]["test"]["mean"] == resumed["points"][-1]["test"]["mean"]


def test_exact_log_likelihood_is_above_the_importance_estimate(tmp_path):
    run = Figure3Run("aevb", 1000)
    curve = train_figure3_run(run, 2000, tmp_path, tmp_path, n_eval=4, first_eval=2000, is_k=1000)
    last = curve["points"][-1]
    assert last["test"]["converged"] == 4 and last["train"]["converged"] == 4
    for part in ("train", "test"):
        exact, estimate = last[part]["mean"], last[f"{part}_is"]["mean"]
        assert estimate <= exact + 0.1 and exact - estimate < 0.5, (part, exact, estimate)
    rows = figure3_table([json.loads((tmp_path / f"{run.name}.json").read_text())])
    assert rows[0]["gap"] == pytest.approx(last["train"]["mean"] - last["test"]["mean"])


def test_figure3_panels_one_per_training_set_size():
    from vae_lib.runs.paper_runs import paper_reference
    from vae_lib.figures.figure3_plots import plot_figure3_panels

    point = lambda s, v: {"samples": s, "train": {"mean": v + 5, "se": 1.0}, "test": {"mean": v, "se": 1.0}}
    curve = lambda a, n: {"algorithm": a, "n_train": n, "points": [point(1e4, -190.0), point(1e6, -150.0)]}
    fig = plot_figure3_panels([curve("aevb", 1000), curve("mcem", 1000), curve("aevb", 50000)], paper_reference(), "t")
    assert len(fig.axes) == 2 and [ax.get_title() for ax in fig.axes] == ["1000 training images", "50000 training images"]
    assert len(fig.axes[0].lines) == 4 and len(fig.axes[1].lines) == 2 + 3   # + the paper's three read-off values
    with pytest.raises(ValueError, match="no Figure 3 curve"):
        plot_figure3_panels([], paper_reference(), "t")


def test_evaluation_points_lie_on_the_grid():
    from vae_lib.runs.figure3_monitor import next_grid_point

    assert next_grid_point(0) == 10_000 and next_grid_point(9_999) == 10_000
    assert next_grid_point(10_000) == 17_800                        # 10^4.25, a whole minibatch
    assert next_grid_point(659_300) == 1_000_000                   # a run stopped off the grid falls back on it
    assert next_grid_point(999_999) == 1_000_000 and next_grid_point(1_000_000) == 1_778_300
    assert next_grid_point(5_008_600, per_decade=2) == 10_000_000
    assert next_grid_point(1_078_500, per_decade=1) == 10_000_000
    with pytest.raises(ValueError, match="per_decade"):
        next_grid_point(10, per_decade=0)


def test_a_resumed_curve_keeps_its_evaluation_images_and_records_each_point(tmp_path):
    run = Figure3Run("aevb", 1000)
    curve = train_figure3_run(run, 400, tmp_path, tmp_path, n_eval=3, first_eval=200, is_k=0)
    last = curve["points"][-1]
    assert curve["devices"][0]["device"].startswith("cpu") and last["device"] == curve["devices"][0]["device"]
    assert last["quadrature"]["max_points"] > 0
    assert len(last["test"]["values"]) == 3
    assert sum(last["test"]["values"]) / 3 == pytest.approx(last["test"]["mean"], abs=2e-3)
    with pytest.raises(ValueError, match="n_eval = 3"):
        train_figure3_run(run, 600, tmp_path, tmp_path, n_eval=4, first_eval=200, is_k=0)


def test_a_checkpoint_from_another_kind_of_device_resumes_with_a_reseeded_generator(tmp_path):
    """A CUDA generator's state (16 bytes) does not fit a CPU generator: the resumed run reseeds it
    from the sample count and says so in its device history."""
    run = Figure3Run("aevb", 1000)
    kw = dict(n_eval=2, first_eval=10 ** 9, is_k=0)
    train_figure3_run(run, 300, tmp_path, tmp_path, **kw)
    ckpt = tmp_path / f"{run.name}.pt"
    payload = torch.load(ckpt, weights_only=True)
    payload["generator_state"] = torch.zeros(16, dtype=torch.uint8)      # the shape of a CUDA generator's state
    torch.save(payload, ckpt)
    curve = json.loads((tmp_path / f"{run.name}.json").read_text())
    curve["devices"] = [{"device": "cuda (some GPU)", "from_samples": 0}]
    (tmp_path / f"{run.name}.json").write_text(json.dumps(curve))
    resumed = train_figure3_run(run, 500, tmp_path, tmp_path, **kw)
    assert resumed["samples_seen"] == 500
    assert resumed["devices"][-1]["from_samples"] == 300 and "reseeded" in resumed["devices"][-1]["generator"]


def _point(samples, train, test, device=None, seconds=0.0):
    p = {"samples": samples, "train_seconds": seconds, "eval_seconds": 6.0,
         "train": {"mean": sum(train) / len(train), "se": 1.0, "values": train},
         "test": {"mean": sum(test) / len(test), "se": 2.0, "values": test}}
    if device:
        p["device"] = device
    return p


def _two_device_curve():
    return {"algorithm": "aevb", "n_train": 50000, "samples_seen": 10_000_000, "train_seconds": 900.0,
            "devices": [{"device": "cuda (H200)", "from_samples": 0},
                        {"device": "cpu (1 threads)", "from_samples": 5_000_000, "from_train_seconds": 300.0}],
            "points": [_point(1_003_500, [-150.0, -152.0], [-151.0, -155.0], seconds=60.0),
                       _point(5_000_000, [-140.0, -142.0], [-141.0, -143.0], seconds=300.0),
                       _point(10_000_000, [-130.0, -134.0], [-137.0, -139.0], "cpu (1 threads)", 900.0)]}


def test_device_segments_and_point_devices_follow_the_history():
    from vae_lib.runs.figure3_curves import device_segments, point_device

    c = _two_device_curve()
    assert [point_device(c, p) for p in c["points"]] == ["cuda (H200)", "cuda (H200)", "cpu (1 threads)"]
    gpu, cpu = device_segments(c)
    assert (gpu["from_samples"], gpu["to_samples"], gpu["points"]) == (0, 5_000_000, 2)
    assert (cpu["from_samples"], cpu["to_samples"], cpu["points"]) == (5_000_000, 10_000_000, 1)
    assert gpu["train_minutes"] == pytest.approx(5.0) and cpu["train_minutes"] == pytest.approx(10.0)
    assert cpu["eval_minutes"] == pytest.approx(0.1)


def test_table_rows_at_the_decades_and_the_end_with_the_paper_beside_the_end():
    from vae_lib.runs.paper_runs import paper_reference

    rows = figure3_table([_two_device_curve()], paper_reference())
    assert [r["at"] for r in rows] == ["10^6", "end"]            # 10^7 is the last point: one row, "end"
    assert rows[0]["samples"] == 1_003_500 and rows[0]["device"] == "cuda (H200)"
    assert rows[1]["gap"] == pytest.approx(-132.0 - -138.0) and rows[1]["device"] == "cpu (1 threads)"
    assert rows[1]["paper_test_end"] == -138 and math.isnan(rows[0]["paper_test_end"])
    from vae_lib.runs.figure3_scoring import QUADRATURE, QUADRATURE_GPU
    assert rows[0]["quadrature"] == QUADRATURE_GPU and rows[1]["quadrature"] == QUADRATURE


def test_paired_difference_uses_the_per_image_values():
    from vae_lib.runs.figure3_curves import paired_difference

    a = {"values": [-100.0, -200.0, -150.0]}
    b = {"values": [-101.0, -201.0, -152.0]}
    mean, se = paired_difference(a, b)
    assert mean == pytest.approx(4 / 3) and se == pytest.approx(torch.tensor([1.0, 1.0, 2.0]).std().item() / 3 ** 0.5)
    with pytest.raises(ValueError, match="same images"):
        paired_difference(a, {"values": [1.0]})


def test_load_figure3_model_gives_the_checkpoints_weights(tmp_path):
    from vae_lib.runs.figure3 import load_figure3_model

    run = Figure3Run("mcem", 1000)
    train_figure3_run(run, 200, tmp_path, tmp_path, n_eval=2, first_eval=10 ** 9, is_k=0)
    model, samples = load_figure3_model(run, tmp_path)
    saved = torch.load(tmp_path / f"{run.name}.pt", weights_only=True)["model_state"]
    assert samples == 200 and all(torch.equal(v, model.state_dict()[k]) for k, v in saved.items())
    with pytest.raises(FileNotFoundError, match="scripts/figure3.py"):
        load_figure3_model(Figure3Run("aevb", 50000), tmp_path)
    (tmp_path / "fig3_aevb_n1000.pt").write_bytes((tmp_path / f"{run.name}.pt").read_bytes())
    with pytest.raises(ValueError, match="another run"):      # MCEM's checkpoint under AEVB's name
        load_figure3_model(Figure3Run("aevb", 1000), tmp_path)


def test_gap_panels_draw_train_minus_test():
    from vae_lib.figures.figure3_plots import plot_figure3_gaps

    c = _two_device_curve()
    fig = plot_figure3_gaps([c, {**c, "algorithm": "mcem", "n_train": 1000}], "t")
    assert [ax.get_title() for ax in fig.axes] == ["1000 training images", "50000 training images"]
    line = fig.axes[1].lines[0]
    assert list(line.get_ydata()) == pytest.approx([p["train"]["mean"] - p["test"]["mean"] for p in c["points"]])
    with pytest.raises(ValueError, match="no Figure 3 curve"):
        plot_figure3_gaps([], "t")


def tiny_trained_run(folder):
    """An AEVB run of 400 samples evaluated once on 3 images: (run, curve, its model, the 3 test images)."""
    from vae_lib.runs.figure3 import figure3_data, load_figure3_model

    run = Figure3Run("aevb", 1000)
    curve = train_figure3_run(run, 400, folder, folder, n_eval=3, first_eval=400, is_k=0)
    model, _ = load_figure3_model(run, folder)
    return run, curve, model, figure3_data(1000, 3)[2]


def test_the_audit_agrees_with_the_curve_on_a_unimodal_model(tmp_path):
    from vae_lib.runs.figure3_scoring import reference_log_likelihood

    _, curve, model, test_eval = tiny_trained_run(tmp_path)
    values = curve["points"][-1]["test"]["values"]
    ref = reference_log_likelihood(model, test_eval)
    assert ref["n"] == 3 and ref["converged"] == 3 and ref["disagree"] == 0
    assert max(abs(a - b) for a, b in zip(ref["values"], values)) < 0.05

"""Figure 3 at equal cost and its step-size rule (vae_lib.runs.figure3_cost), and the re-scoring of its
last points on finer grids (vae_lib.runs.figure3_rescore)."""

import json
import math

import pytest
import torch

from test_figure3 import _point, _two_device_curve, tiny_trained_run
from vae_lib.runs.figure3 import Figure3Run

torch.set_num_threads(1)


def test_the_cost_rate_comes_from_the_cpu_segment_only():
    from vae_lib.runs.figure3_cost import cost_of, cpu_seconds_per_sample

    c = _two_device_curve()   # the CPU took 600 s for 5e6 samples; the GPU's 300 s for the first 5e6 do not count
    assert cpu_seconds_per_sample(c) == pytest.approx(600 / 5e6)
    assert cost_of(c, c["points"][0]) == pytest.approx(1_003_500 * 600 / 5e6)
    gpu_only = {**c, "devices": c["devices"][:1], "name": "gpu_only"}
    assert cpu_seconds_per_sample(gpu_only) is None
    with pytest.raises(ValueError, match="gpu_only: no CPU segment"):
        cost_of(gpu_only, c["points"][0])


def test_equal_cost_pairs_the_cheap_runs_end_with_the_dear_runs_point_of_equal_cost():
    from vae_lib.runs.figure3_cost import equal_cost_difference

    cheap = _two_device_curve()                                     # 1.2e-4 s per sample: its end costs 1200 s
    dear = {**_two_device_curve(), "algorithm": "mcem", "train_seconds": 6300.0,   # 1.2e-3 s per sample
            "devices": [{"device": "cpu (1 threads)", "from_samples": 0}],
            "points": [_point(1_000_000, [-1.0], [-150.0, -152.0]), _point(10_000_000, [-1.0], [-120.0, -122.0])]}
    dear["points"][-1]["train_seconds"] = 12000.0
    dear["train_seconds"] = 12000.0
    a, b, d = equal_cost_difference(cheap, dear)
    assert a["samples"] == 10_000_000 and b["samples"] == 1_000_000     # 1200 s of MCEM: its 1e6-sample point
    assert d.mean == pytest.approx(((-137 + 150) + (-139 + 152)) / 2) and d.n == 2


def test_the_step_size_rule_scores_each_candidate_on_training_images():
    from vae_lib.runs.figure3_cost import step_size_sweep

    train_x = torch.bernoulli(torch.full((200, 784), 0.2), generator=torch.Generator().manual_seed(0))
    scores = step_size_sweep(Figure3Run("aevb", 1000), step_sizes=(0.01, 0.02, 0.1), samples=400, n_eval=2,
                             train_x=train_x)
    assert set(scores) == {0.01, 0.02, 0.1} and math.isfinite(scores[0.01]) and math.isfinite(scores[0.02])
    assert scores[0.01] != scores[0.02]
    # on these noise images the KL explodes at 0.1: the driver's guard stops the run, and the rule scores it −inf
    assert scores[0.1] == -math.inf


def test_rescoring_checks_the_checkpoint_against_the_curve_and_keeps_converged_values(tmp_path):
    from vae_lib.runs.figure3_rescore import merge_rescores, read_rescore, rescore_all, rescore_set

    run, curve, model, test_eval = tiny_trained_run(tmp_path)
    stored = curve["points"][-1]["test"]["values"]
    r = rescore_set(model, test_eval, "aevb", stored)
    assert r["coarse_converged"] == curve["points"][-1]["test"]["converged"]
    assert r["converged"] >= r["coarse_converged"] and len(r["values"]) == 3
    assert max(abs(a - b) for a, b in zip(r["coarse_values"], stored)) <= 0.01
    assert sum(v != c for v, c in zip(r["values"], r["coarse_values"])) <= r["finer_rescored"]   # only re-scored images change
    with pytest.raises(ValueError, match="does not give the curve's last point"):
        rescore_set(model, test_eval, "aevb", [v + 1.0 for v in stored])
    out = rescore_all([run], {run.name: curve}, tmp_path, tmp_path / "rescored.json", limit=2)
    assert read_rescore(tmp_path / "rescored.json")["runs"][run.name]["test"]["n"] == 2 == out["runs"][run.name]["train"]["n"]
    # two processes share the work, one set each, and their files are merged
    a = rescore_all([run], {run.name: curve}, tmp_path, tmp_path / "a.json", limit=2, sets=[(run.name, "test")])
    b = rescore_all([run], {run.name: curve}, tmp_path, tmp_path / "b.json", limit=2, sets=[(run.name, "train")])
    assert list(a["runs"][run.name]) == ["test"] and list(b["runs"][run.name]) == ["train"]
    merged = merge_rescores(tmp_path / "a.json", [tmp_path / "b.json"])
    assert sorted(merged["runs"][run.name]) == ["test", "train"]
    assert merged["runs"][run.name]["train"]["values"] == out["runs"][run.name]["train"]["values"]
    (tmp_path / "bad.json").write_text("{")
    with pytest.raises(ValueError, match="bad.json is not JSON"):
        read_rescore(tmp_path / "bad.json")
    (tmp_path / "other.json").write_text(json.dumps({"format": "other"}))
    with pytest.raises(ValueError, match="not a Figure 3 re-scoring"):
        read_rescore(tmp_path / "other.json")


def test_the_rule_picks_the_best_finite_score_and_says_when_it_has_none():
    """vae_lib.runs.figure3_cost.rule_step_size: the argmax over finite scores (a diverged step size scores -inf)."""
    from vae_lib.runs.figure3 import Figure3Run
    from vae_lib.runs.figure3_cost import rule_step_size

    run = Figure3Run("aevb", 1000)
    sweep = {"runs": {run.name: {"0.01": -170.0, "0.02": -165.0, "0.1": -math.inf}}}
    assert rule_step_size(sweep, run) == 0.02
    with pytest.raises(ValueError, match="no finite score for fig3_mcem_n1000: python scripts/figure3.py --step-size-sweep"):
        rule_step_size(sweep, Figure3Run("mcem", 1000))
    with pytest.raises(ValueError, match="no finite score"):
        rule_step_size({"runs": {run.name: {"0.1": -math.inf}}}, run)


def _curve(name, algorithm, n, step, points, n_eval=2):
    return {"name": name, "algorithm": algorithm, "n_train": n, "step_size": step, "n_eval": n_eval, "points": points}


def test_a_run_at_the_rules_step_size_is_compared_with_the_books_at_their_last_shared_point():
    """figure3_curves.last_shared_point, figure3_cost.at_rule_step / step_size_shift / plot_step_size_runs."""
    from vae_lib.runs.figure3_cost import at_rule_step, step_size_shift
    from vae_lib.figures.figure3_plots import plot_step_size_runs
    from vae_lib.runs.figure3_curves import last_shared_point

    book = _curve("fig3_aevb_n1000", "aevb", 1000, 0.02, [_point(10_000, [-150.0, -152.0], [-151.0, -155.0]),
                                                        _point(100_000, [-140.0, -142.0], [-141.0, -145.0]),
                                                        _point(200_000, [-139.0, -141.0], [-140.0, -144.0])])
    rule = _curve("fig3_aevb_n1000", "aevb", 1000, 0.1, [_point(10_000, [-149.0, -150.0], [-150.0, -153.0]),
                                                       _point(100_000, [-135.0, -137.0], [-137.0, -139.0])])
    ws = _curve("fig3_wake_sleep_n1000", "wake_sleep", 1000, 0.02, [_point(100_000, [-145.0, -146.0], [-146.0, -147.0])])
    pa, pb = last_shared_point(rule, book)
    assert pa["samples"] == pb["samples"] == 100_000                       # not the book's later 200000
    assert last_shared_point(rule, {**book, "n_eval": 3}) is None          # other images: nothing to pair
    assert last_shared_point(rule, _curve("x", "aevb", 1000, 0.02, [_point(50_000, [0.0, 0.0], [0.0, 0.0])])) is None
    point, d = step_size_shift(book, rule)
    assert point["samples"] == 100_000 and d.mean == pytest.approx(5.0) and d.stderr == pytest.approx(1.0)
    picks = {"fig3_aevb_n1000": 0.1, "fig3_wake_sleep_n1000": 0.02, "fig3_mcem_n1000": 0.1}
    chosen = at_rule_step({"fig3_aevb_n1000": book, "fig3_wake_sleep_n1000": ws}, {"fig3_aevb_n1000": rule}, picks, 0.02)
    assert chosen == {"fig3_aevb_n1000": rule, "fig3_wake_sleep_n1000": ws, "fig3_mcem_n1000": None}
    fig = plot_step_size_runs([book, ws], [rule], "t")
    (ax,) = fig.axes
    assert [line.get_label() for line in ax.lines] == ["AEVB, step size 0.02", "wake-sleep, step size 0.02", "AEVB, step size 0.1"]
    assert list(ax.lines[2].get_ydata()) == [-151.5, -138.0]


def test_the_step_size_sweep_file_is_read_checked(tmp_path):
    from vae_lib.runs.figure3_cost import SWEEP_FORMAT, read_step_size_sweep, rule_step_size
    from vae_lib.base.run_files import write_json

    path = tmp_path / "step_size_sweep.json"
    write_json(path, {"format": SWEEP_FORMAT, "used": 0.02, "runs": {"fig3_aevb_n1000": {"0.01": -180.0, "0.1": -math.inf}}})
    assert rule_step_size(read_step_size_sweep(path), Figure3Run("aevb", 1000)) == 0.01    # −inf: diverged, never picked
    write_json(path, {"used": 0.02, "runs": {}})
    with pytest.raises(ValueError, match="step-size sweep.*format None"):
        read_step_size_sweep(path)
    write_json(path, {"format": SWEEP_FORMAT, "used": 0.02, "runs": {"fig3_aevb_n1000": {"0.01": math.nan}}})
    with pytest.raises(ValueError, match="fig3_aevb_n1000 has no score for step size 0.01"):
        read_step_size_sweep(path)
    path.write_text('{"format": "vae_lib.figure3_step')
    with pytest.raises(ValueError, match="not JSON"):
        read_step_size_sweep(path)

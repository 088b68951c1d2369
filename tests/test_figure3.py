"""The Figure 3 runs (vae_lib.figure3): a resumed run is the uninterrupted run, and the curve's exact
log p(x) sits above the importance-sampled estimate (a stochastic lower bound) on the same images."""

import json

import pytest
import torch

from vae_lib.figure3 import Figure3Run, figure3_table, train_figure3_run

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
    assert a["samples"] == b["samples"] == 700
    for key in a["model"]:
        assert torch.equal(a["model"][key], b["model"][key]), key
    if algorithm == "mcem":
        assert torch.equal(a["mc"]["z"], b["mc"]["z"]) and torch.equal(a["mc"]["log_step"], b["mc"]["log_step"])
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
    from vae_lib.paper_runs import paper_reference
    from vae_lib.plots import plot_figure3_panels

    point = lambda s, v: {"samples": s, "train": {"mean": v + 5, "se": 1.0}, "test": {"mean": v, "se": 1.0}}
    curve = lambda a, n: {"algorithm": a, "n_train": n, "points": [point(1e4, -190.0), point(1e6, -150.0)]}
    fig = plot_figure3_panels([curve("aevb", 1000), curve("mcem", 1000), curve("aevb", 50000)], paper_reference(), "t")
    assert len(fig.axes) == 2 and [ax.get_title() for ax in fig.axes] == ["1000 training images", "50000 training images"]
    assert len(fig.axes[0].lines) == 4 and len(fig.axes[1].lines) == 2 + 3   # + the paper's three read-off values
    with pytest.raises(ValueError, match="no Figure 3 curve"):
        plot_figure3_panels([], paper_reference(), "t")

"""vae_lib.runs.collapse_trace: training is deterministic given the seed (so a re-trained prefix is the committed
run's), the trace holds one entry per epoch with one KL per unit that sums to the rate, a trace of the whole
budget meets the run's checkpoint exactly, and scripts/collapse_trace.py refuses bad arguments."""

import importlib.util
import json
import time
from dataclasses import replace
from pathlib import Path

import pytest
import torch

from vae_lib.model.kl_control import mean_kl_per_dimension
from vae_lib.model.objectives import kl_to_standard_normal
from vae_lib.model.vae import VAEConfig
from vae_lib.runs import collapse_trace
from vae_lib.runs.beyond import BeyondRun, get_run
from vae_lib.runs.collapse_trace import (TRACE_FORMAT, compare_with_checkpoint, read_trace, trace_images, trace_payload,
                                         trace_run)
from vae_lib.training.train import load_checkpoint, train_model

ROOT = Path(__file__).resolve().parents[1]
TINY = VAEConfig(latent_dim=4, hidden_sizes=(16,), activation="tanh")


def _tiny_run(name="warmup", epochs=3):
    """A run of the part on a tiny model: its objective as at a budget of ``epochs`` epochs."""
    run = get_run(name, epochs)
    return replace(run, model=TINY, train=replace(run.train, batch_size=50))


@pytest.fixture(scope="module")
def tiny_data(mnist_train, mnist_test):
    return mnist_train.x[:200], mnist_test.x[:300]


def test_training_is_deterministic_given_the_seed_with_or_without_the_trace(tiny_data):
    train_x, test_x = tiny_data
    run = _tiny_run("cyclical")
    first, h1 = train_model(run.model, run.train, train_x, test_x, show_progress=False)
    second, h2 = train_model(run.model, run.train, train_x, test_x, show_progress=False)
    traced, record = trace_run(run, run.train.epochs, train_x, test_x, eval_images=100, log=None)
    for model in (second, traced):
        for (name, a), b in zip(first.state_dict().items(), model.state_dict().values()):
            assert torch.equal(a, b), name
    assert h1.test_bound == h2.test_bound == [e["test_bound"] for e in record["trace"]]


def test_the_trace_has_one_entry_per_epoch_whose_unit_kls_sum_to_the_rate(tiny_data):
    train_x, test_x = tiny_data
    run = _tiny_run("free_bits", epochs=4)
    t0 = time.perf_counter()
    model, record = trace_run(run, 3, train_x, test_x, eval_images=100, log=None)
    assert time.perf_counter() - t0 < 10
    assert record["finished"] and [e["epoch"] for e in record["trace"]] == [1, 2, 3]
    for entry in record["trace"]:
        assert len(entry["kl_per_unit"]) == len(entry["unit_activity"]) == TINY.latent_dim
        assert min(entry["kl_per_unit"]) >= 0 and min(entry["unit_activity"]) >= 0
    obs = trace_images(test_x, 100)
    with torch.no_grad():
        rate = kl_to_standard_normal(*model.encode(obs)).mean().item()
    assert sum(record["trace"][-1]["kl_per_unit"]) == pytest.approx(rate, rel=1e-5, abs=1e-6)
    # the budget's schedule is kept: 3 of the 4 epochs are the first 3 of the 4-epoch run, not a 3-epoch run
    assert record["train_config"]["epochs"] == 4
    assert torch.equal(obs, trace_images(test_x, 100)), "the same seeded images every time"


def test_a_trace_of_the_whole_budget_meets_the_runs_checkpoint(tiny_data, tmp_path):
    train_x, test_x = tiny_data
    run = _tiny_run("beta_1")
    path = tmp_path / "beta_1.pt"
    train_model(run.model, run.train, train_x, test_x, checkpoint=path, checkpoint_every=1, show_progress=False)
    _, full = trace_run(run, run.train.epochs, train_x, test_x, eval_images=100, log=None)
    out = compare_with_checkpoint(full, path, test_x, eval_images=100)
    assert out == {"epochs_compared": 3, "max_test_bound_difference": 0.0, "max_kl_difference": 0.0}
    _, part = trace_run(run, 2, train_x, test_x, eval_images=100, log=None)
    assert compare_with_checkpoint(part, path, test_x, eval_images=100) == {
        "epochs_compared": 2, "max_test_bound_difference": 0.0, "max_kl_difference": None}
    with pytest.raises(ValueError, match="does not hold the traced run"):
        compare_with_checkpoint({**part, "train_config": {**part["train_config"], "beta": 2.0}}, path)


def test_a_deadline_keeps_the_whole_epochs_done(tiny_data):
    train_x, test_x = tiny_data
    _, record = trace_run(_tiny_run(), 3, train_x, test_x, eval_images=50, deadline=time.time() - 1, log=None)
    assert not record["finished"] and record["trace"] == []


def test_the_trace_file_is_written_and_read_back_checked(tiny_data, tmp_path, monkeypatch):
    train_x, test_x = tiny_data

    class Split:
        def __init__(self, x):
            self.x = x

    monkeypatch.setattr(collapse_trace, "load_mnist", lambda split, *a, **k: Split(train_x if split == "train" else test_x))
    monkeypatch.setattr(collapse_trace, "get_run", lambda name, budget: replace(_tiny_run(name, budget), name=name))
    lines = []
    path = collapse_trace.write_trace(tmp_path / "trace.json", ["beta_1", "warmup"], 2, budget=3, eval_images=50,
                                      log=lines.append)
    data = read_trace(path)
    assert data["format"] == TRACE_FORMAT and data["names"] == ["beta_1", "warmup"] and data["epochs"] == 2
    assert [len(data["traces"][n]["trace"]) for n in data["names"]] == [2, 2]
    assert sum("epoch" in line for line in lines) >= 4, "a line per epoch"
    bad = json.loads(path.read_text())
    bad["traces"]["warmup"]["trace"][1]["kl_per_unit"][0] = -1.0
    path.write_text(json.dumps(bad))
    with pytest.raises(ValueError, match="warmup"):
        read_trace(path)
    assert trace_payload([], 100, 30, 1000)["names"] == []


def _script():
    spec = importlib.util.spec_from_file_location("collapse_trace_script", ROOT / "scripts" / "collapse_trace.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.mark.parametrize("argv, message", [
    (["--epochs", "0"], "--epochs: must be an integer ≥ 1"),
    (["--epochs", "x"], "--epochs: must be an integer ≥ 1"),
    (["--epochs", "30", "beta_7"], "unknown run 'beta_7'"),
    (["--epochs", "101"], "at most the budget"),
    (["--epochs", "3", "--eval-images", "20000"], "--eval-images"),
    (["--epochs", "3", "--threads", "0"], "--threads: must be an integer ≥ 1"),
    (["--epochs", "3", "--data-dir", "/no/such/folder"], "--data-dir: must be an existing folder"),
    (["--epochs", "3", "--until", "25:00"], "--until: must be a time of day"),
])
def test_the_script_refuses_bad_arguments(argv, message, capsys):
    with pytest.raises(SystemExit) as err:
        _script().main(argv)
    assert err.value.code == 2
    assert message in capsys.readouterr().err


def test_the_script_defaults_to_the_four_runs_in_the_budgets_folder():
    script = _script()
    args = script.parse_args(["--epochs", "30"])
    assert args.runs == ["beta_1", "warmup", "free_bits", "cyclical"] and args.threads == 1
    assert script.output_path(args) == ROOT / "results" / "beyond_e100" / "collapse_trace.json"
    assert script.output_path(script.parse_args(["--epochs", "3", "--out", "x.json"])) == Path("x.json")

"""vae_lib.runs.beyond: the part's runs, their scores files (which cannot lie), and a run end to end on
a few images."""

import json

import pytest
import torch

from vae_lib.runs.beyond import (BETAS, COLLAPSE_RUNS, DREG_RUNS, IWAE_RUNS, RUNS, eval_indices, get_run, load_run,
                                 read_scores, run_paths, score_model, slim_checkpoint)
from vae_lib.model.vae import VAE, VAEConfig
from vae_lib.training.train import TrainConfig, fit, load_checkpoint, save_checkpoint


def test_the_runs_differ_only_in_their_objective():
    for name in [*COLLAPSE_RUNS, *(f"beta_{b:g}" for b in BETAS), *IWAE_RUNS, *DREG_RUNS]:
        run = get_run(name)
        assert run.model == RUNS["beta_1"].model
        assert (run.train.optimizer, run.train.lr, run.train.batch_size, run.train.protocol) == ("adam", 1e-3, 100, "dynamic")
    assert len({RUNS[n].train.epochs for n in IWAE_RUNS + DREG_RUNS}) == 1, "the IWAE comparison is at one budget"
    assert len({RUNS[n].train.epochs for n in COLLAPSE_RUNS}) == 1
    with pytest.raises(ValueError, match="unknown run"):
        get_run("beta_7")


def test_eval_images_are_a_seeded_random_draw():
    idx = eval_indices(10000, 2000)
    assert len(set(idx.tolist())) == 2000 and torch.equal(idx, eval_indices(10000, 2000))
    assert not torch.equal(idx[:100].sort().values, torch.arange(100)), "never the first N of an ordered set"


def _scores(tmp_path, name="beta_1", **change):
    data = {"format": "vae_lib.beyond/1", "name": name, "k_eval": 10, "eval_images": 2, "eval_seed": 1234,
            "log_px": [-90.0, -100.0], "kl": [20.0, 25.0], "distortion": [75.0, 80.0],
            "unit_activity": [1.0, 0.0], "active_units": 1, "kl_per_unit": [20.0, 0.0], **change}
    path = tmp_path / f"{name}.json"
    path.write_text(json.dumps(data))
    return path


@pytest.mark.parametrize("damage, message", [
    (lambda p: p.write_text('{"format": "vae_lib.beyond/1", "name": "beta_1", "log_px": [1.0,'), "is not JSON"),
    (lambda p: p.write_text('[1, 2]'), "not a scores file"),
    (lambda p: _scores(p.parent, log_px=[float("nan"), 1.0]), "non-finite"),
    (lambda p: _scores(p.parent, kl=None), "'kl' is missing"),
    (lambda p: p.write_text(p.read_text().replace('"name": "beta_1"', '"name": "beta_2"')), "holds the scores of run 'beta_2'"),
])
def test_a_damaged_scores_file_names_itself_and_its_fault(tmp_path, damage, message):
    path = _scores(tmp_path)
    assert read_scores(path, "beta_1")["log_px"] == [-90.0, -100.0]
    damage(path)
    with pytest.raises(ValueError, match=message) as err:
        read_scores(path, "beta_1")
    assert str(path) in str(err.value)
    with pytest.raises(FileNotFoundError, match="scripts/beyond.py"):
        read_scores(tmp_path / "missing.json", "beta_1")


def test_score_model_splits_the_elbo_into_rate_and_distortion():
    torch.manual_seed(0)
    model = VAE(VAEConfig(data_dim=12, latent_dim=3, hidden_sizes=(8,)))
    x = torch.bernoulli(torch.full((5, 12), 0.3), generator=torch.Generator().manual_seed(1))
    s = score_model(model, x, k=200)
    assert all(len(v) == 5 for v in s.values())
    elbo = [-(k + d) for k, d in zip(s["kl"], s["distortion"])]
    assert all(e <= lp + 0.5 for e, lp in zip(elbo, s["log_px"])), "the ELBO is below the K = 200 estimate"


def test_another_runs_checkpoint_is_refused(tmp_path):
    """A checkpoint of β = 2 saved under β = 1's name is not read as β = 1."""
    run = RUNS["beta_2"]
    model = VAE(run.model)
    checkpoint, scores = run_paths("beta_1", tmp_path, tmp_path)
    save_checkpoint(checkpoint, model, run.train)
    _scores(tmp_path)
    with pytest.raises(ValueError, match="does not hold run 'beta_1'"):
        load_run("beta_1", tmp_path, tmp_path)


def test_slim_checkpoint_loads_but_refuses_more_training(tmp_path):
    torch.manual_seed(0)
    model = VAE(VAEConfig(data_dim=12, latent_dim=3, hidden_sizes=(8,)))
    x = torch.rand(100, 12)
    config = TrainConfig(epochs=1, batch_size=50)
    path = tmp_path / "run.pt"
    fit(model, x, None, config, checkpoint=path, show_progress=False)
    before = path.stat().st_size
    assert slim_checkpoint(path) < before
    loaded, history, _ = load_checkpoint(path)
    torch.testing.assert_close(loaded.state_dict(), model.state_dict())
    with pytest.raises(ValueError, match="cannot be trained further"):
        fit(VAE(model.config), x, None, TrainConfig(epochs=2, batch_size=50), checkpoint=path, show_progress=False)


def test_a_job_that_starts_after_its_deadline_trains_nothing(tmp_path):
    import time

    from vae_lib.runs.beyond import train_and_score

    out = train_and_score("beta_1", str(tmp_path), str(tmp_path), stop_at=time.time() - 1)
    assert out["epochs"] == 0 and not out["finished"] and not list(tmp_path.iterdir())


@pytest.mark.parametrize("per_epoch, budget, expected", [
    ([100.0], 1000.0, 10), ([100.0], 1049.0, 10), ([100.0], 1051.0, 11),   # the nearest whole epoch
    ([100.0], 50.0, 0), ([100.0], 0.0, 0),                                   # a tie or nothing: fewer epochs
    ([50.0, 100.0], 260.0, 3)])                                              # the last epoch's cost stands for the rest
def test_the_equal_compute_stop_is_the_epoch_nearest_the_partners_seconds(per_epoch, budget, expected):
    from vae_lib.runs.beyond import stop_epoch

    assert stop_epoch(per_epoch, budget) == expected


def test_equal_compute_needs_a_k50_run_and_its_finished_partner(tmp_path):
    from vae_lib.runs.beyond import EQUAL_COMPUTE, equal_compute_paths, train_equal_compute

    assert all(RUNS[k].train.n_samples == 50 and RUNS[v].train.n_samples == 5 for k, v in EQUAL_COMPUTE.items())
    assert all(RUNS[k].train.algorithm == RUNS[v].train.algorithm for k, v in EQUAL_COMPUTE.items())
    with pytest.raises(ValueError, match="no equal-compute partner"):
        equal_compute_paths("vae_k1", tmp_path, tmp_path)
    with pytest.raises(ValueError, match="iwae_k5.pt has not finished"):
        train_equal_compute("iwae_k50", str(tmp_path), str(tmp_path))


def test_trained_runs_splits_present_from_missing(tmp_path):
    from vae_lib.runs.beyond import run_paths, trained_runs

    for name in ("beta_1", "warmup"):
        for path in run_paths(name, tmp_path, tmp_path):
            if name == "beta_1" or path.suffix == ".pt":
                path.write_text("x")
    assert trained_runs(("warmup", "beta_1", "cyclical"), tmp_path, tmp_path) == (["beta_1"], ["warmup", "cyclical"])


def test_informative_units_count_a_kl_above_a_tenth_of_a_nat_whatever_the_activity():
    from vae_lib.runs.beyond import INFORMATIVE_KL, informative_units

    scores = {"kl_per_unit": [0.0, 0.05, INFORMATIVE_KL, 0.1001, 3.2], "active_units": 5}
    assert INFORMATIVE_KL == 0.1 and informative_units(scores) == 2   # strictly above; activity plays no part

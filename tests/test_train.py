"""vae_lib.training.train: reproducible training, exact checkpoints and resumption, the NaN guard, clear errors,
and a short training on real MNIST that must raise the test bound."""

import math
from dataclasses import replace

import pytest
import torch

import vae_lib.training.train as train_module
import vae_lib.training.training_run as training_run_module
from vae_lib.model.pixels import observe
from vae_lib.model.objectives import elbo
from vae_lib.model.vae import VAE, VAEConfig
from vae_lib.training.train import (CHECKPOINT_FORMAT, TEST_SEED, History, TrainConfig, evaluate, fit, load_checkpoint,
                                    save_checkpoint, train_model)

MODEL = VAEConfig(latent_dim=2, hidden_sizes=(16,))
TRAIN = TrainConfig(epochs=2, batch_size=50, lr=3e-3, seed=3)


@pytest.fixture(scope="module")
def tiny(mnist_train, mnist_test, device):
    """300 training and 100 test images of MNIST (grey levels), on the test device ($VAE_TEST_DEVICE)."""
    return mnist_train.x[:300].to(device), mnist_test.x[:100].to(device)


def same_parameters(a: VAE, b: VAE) -> bool:
    return all(torch.equal(p, q) for p, q in zip(a.state_dict().values(), b.state_dict().values()))


def test_history_records_every_epoch(tiny):
    """fit returns a History with one entry per epoch for every field; rate ≥ 0 and bound = −rate − distortion."""
    model, history = train_model(MODEL, TRAIN, *tiny, show_progress=False)
    assert history.epoch == [1, 2] and history.samples_seen == [300, 600]
    assert all(len(v) == 2 for v in history.as_dict().values())
    for split in ("train", "test"):
        bound, rate, distortion = (getattr(history, f"{split}_{k}") for k in ("bound", "rate", "distortion"))
        assert all(r >= 0 for r in rate)
        assert bound == pytest.approx([-r - d for r, d in zip(rate, distortion)], abs=1e-3)
    assert history.test_bound[-1] == evaluate(model, observe(tiny[1], "fixed", seed=TEST_SEED))["bound"]
    assert History.from_dict(history.as_dict()) == history


def test_same_seed_same_parameters(tiny):
    """Two CPU trainings with one seed give bit-identical parameters and histories; another seed does not."""
    a, ha = train_model(MODEL, TRAIN, *tiny, show_progress=False)
    b, hb = train_model(MODEL, TRAIN, *tiny, show_progress=False)
    c, _ = train_model(MODEL, replace(TRAIN, seed=4), *tiny, show_progress=False)
    assert same_parameters(a, b) and ha.train_bound == hb.train_bound and ha.test_bound == hb.test_bound
    assert not same_parameters(a, c)


def test_checkpoint_round_trip_is_bit_identical(tiny, tmp_path):
    """save_checkpoint → load_checkpoint gives the same parameters, configs and history, bit for bit,
    and the file is readable by torch.load(weights_only=True)."""
    model, history = train_model(MODEL, replace(TRAIN, epochs=1), *tiny, show_progress=False)
    path = tmp_path / "sub" / "model.pt"
    save_checkpoint(path, model, TRAIN, history)
    loaded, loaded_history, payload = load_checkpoint(path)
    assert same_parameters(model, loaded) and loaded.config == MODEL and not loaded.training
    assert loaded_history == history and TrainConfig(**payload["train_config"]) == TRAIN
    raw = torch.load(path, weights_only=True)
    assert raw["format"] == CHECKPOINT_FORMAT and raw["model_config"]["hidden_sizes"] == (16,)
    test_obs = observe(tiny[1], "fixed", seed=TEST_SEED)
    assert evaluate(loaded, test_obs) == evaluate(model, test_obs)
    assert not path.with_name("model.pt.tmp").exists()  # written atomically


def test_resuming_continues_exactly(tiny, tmp_path):
    """Training 2 epochs with a checkpoint, then asking for 4 with the same path, gives the same
    parameters and history as 4 epochs straight: model, optimizer, schedule and generator state are all saved."""
    config = replace(TRAIN, epochs=4)
    straight, h_straight = train_model(MODEL, config, *tiny, show_progress=False)
    path = tmp_path / "run.pt"
    train_model(MODEL, replace(config, epochs=2), *tiny, checkpoint=path, show_progress=False)
    resumed, h_resumed = train_model(MODEL, config, *tiny, checkpoint=path, show_progress=False)
    assert same_parameters(straight, resumed)
    assert h_resumed.train_bound == h_straight.train_bound and h_resumed.test_bound == h_straight.test_bound
    assert len(torch.load(path, weights_only=True)["history"]["epoch"]) == 4


def test_interrupted_cosine_run_resumes_exactly(tiny, tmp_path, monkeypatch):
    """A cosine-schedule run killed after its epoch-2 checkpoint resumes to the same parameters as an
    uninterrupted run (the scheduler's state, T_max included, comes back from the checkpoint)."""
    config = replace(TRAIN, epochs=4, lr_schedule="cosine")
    straight, _ = train_model(MODEL, config, *tiny, show_progress=False)

    class Killed(Exception):
        pass

    real_save = training_run_module.save_checkpoint

    def save_then_die(path, model, train_config, history, extra=None):
        real_save(path, model, train_config, history, extra)
        raise Killed

    path = tmp_path / "run.pt"
    monkeypatch.setattr(training_run_module, "save_checkpoint", save_then_die)
    with pytest.raises(Killed):
        train_model(MODEL, config, *tiny, checkpoint=path, checkpoint_every=2, show_progress=False)
    monkeypatch.undo()
    assert len(torch.load(path, weights_only=True)["history"]["epoch"]) == 2
    resumed, _ = train_model(MODEL, config, *tiny, checkpoint=path, show_progress=False)
    assert same_parameters(straight, resumed)


def test_lengthening_a_cosine_run_is_refused(tiny, tmp_path):
    """A finished 2-epoch cosine run cannot be resumed as a 4-epoch one: its schedule has decayed to lr 0
    (resuming used to train silently on that schedule, an epoch at lr 0 then a cosine restart)."""
    config = replace(TRAIN, epochs=2, lr_schedule="cosine")
    path = tmp_path / "run.pt"
    train_model(MODEL, config, *tiny, checkpoint=path, show_progress=False)
    with pytest.raises(ValueError, match=r"train_config\.epochs: checkpoint 2 vs asked 4 \(a cosine schedule"):
        train_model(MODEL, replace(config, epochs=4), *tiny, checkpoint=path, show_progress=False)


def test_epochs_zero_trains_nothing(tiny, tmp_path):
    """epochs=0 returns the initial model and an empty history, and still writes a checkpoint."""
    path = tmp_path / "zero.pt"
    model, history = train_model(MODEL, replace(TRAIN, epochs=0), *tiny, checkpoint=path, show_progress=False)
    torch.manual_seed(TRAIN.seed)
    assert same_parameters(model, VAE(MODEL)) and history.epoch == [] and path.exists()


def test_short_mnist_training_raises_the_test_bound(mnist_train, mnist_test):
    """Three epochs of Adam on 2000 MNIST images lift the test ELBO of 500 fixed-binarized test images by
    over 250 nats. Measured (seeds 0, 1, 2): −553 → −216, −551 → −218, −552 → −217 nats; for seed 0 the
    bound after each epoch was −292, −231, −216."""
    model_config = VAEConfig(latent_dim=5, hidden_sizes=(32,), activation="relu")
    config = TrainConfig(epochs=3, batch_size=100, lr=3e-3, seed=0)
    test_obs = observe(mnist_test.x[:500], "fixed", seed=TEST_SEED)
    torch.manual_seed(config.seed)
    before = evaluate(VAE(model_config), test_obs)["bound"]
    model, history = train_model(model_config, config, mnist_train.x[:2000], mnist_test.x[:500], show_progress=False)
    after = evaluate(model, test_obs)["bound"]
    assert after == history.test_bound[-1]
    assert before < -500 and after > -260 and after - before > 250, (before, history.test_bound)
    assert history.test_bound[0] < history.test_bound[1] < history.test_bound[2]


def test_one_step_on_tiny_data_raises_the_bound():
    """One full-batch Adam step of gradient ascent on the ELBO (estimator B, fixed ε) increases it."""
    torch.manual_seed(0)
    model = VAE(VAEConfig(data_dim=20, latent_dim=2, hidden_sizes=(8,)))
    x = torch.bernoulli(torch.full((64, 20), 0.2), generator=torch.Generator().manual_seed(1))
    eps = torch.randn(1, 64, 2, generator=torch.Generator().manual_seed(2))
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-2)
    before = elbo(model, x, eps=eps).bound.mean()
    (-before).backward()
    optimizer.step()
    assert elbo(model, x, eps=eps).bound.mean() > before


# ---- errors that name the problem and the fix -------------------------------------------------------

@pytest.mark.parametrize("kwargs, message", [
    ({"epochs": -1}, r"epochs must be 0 or more, got -1"),
    ({"batch_size": 0}, r"batch_size must be at least 1"),
    ({"optimizer": "sgd"}, r"unknown optimizer 'sgd'; choose one of \('adam', 'adagrad'\)"),
    ({"lr_schedule": "step"}, r"unknown lr_schedule 'step'; choose one of \('constant', 'cosine', 'burda'\)"),
    ({"estimator": "C"}, r"unknown estimator 'C'; choose 'A' or 'B'"),
    ({"n_samples": 0}, r"n_samples must be at least 1"),
    ({"protocol": "gray"}, r"unknown pixel protocol 'gray'; choose one of \('dynamic'"),
    ({"eval_protocol": "binary"}, r"unknown pixel protocol 'binary'"),
])
def test_bad_train_config_is_refused(kwargs, message):
    """A TrainConfig that cannot train raises at construction, naming the field and the choices."""
    with pytest.raises(ValueError, match=message):
        TrainConfig(**kwargs)


def test_corrupt_checkpoint(tmp_path, tiny):
    """Garbage bytes in a checkpoint give a ValueError that says so and what to do, when loading and when resuming."""
    path = tmp_path / "broken.pt"
    path.write_bytes(b"\x00garbage, not a checkpoint" * 10)
    with pytest.raises(ValueError, match=r"checkpoint .*broken\.pt is corrupt, truncated or not a vae_lib "
                                         r"checkpoint: delete it and train again"):
        load_checkpoint(path)
    with pytest.raises(ValueError, match="corrupt, truncated"):
        train_model(MODEL, TRAIN, *tiny, checkpoint=path, show_progress=False)


def test_missing_and_foreign_checkpoints(tmp_path):
    """A missing file says to train first; a torch file that is not a vae_lib checkpoint says so."""
    with pytest.raises(FileNotFoundError, match=r"no checkpoint at .*; train a model first"):
        load_checkpoint(tmp_path / "nothing.pt")
    torch.save({"state_dict": {}}, tmp_path / "foreign.pt")
    with pytest.raises(ValueError, match=r"is not a vae_lib checkpoint \(expected format 'vae_lib.checkpoint/1'\)"):
        load_checkpoint(tmp_path / "foreign.pt")


def test_resuming_with_another_config_is_refused(tiny, tmp_path):
    """Resuming a checkpoint with another model or training configuration names every difference and the fix."""
    path = tmp_path / "run.pt"
    train_model(MODEL, replace(TRAIN, epochs=1), *tiny, checkpoint=path, show_progress=False)
    with pytest.raises(ValueError, match=r"(?s)was made with another configuration:.*model_config\.latent_dim: "
                                         r"checkpoint 2 vs asked 3.*train_config\.lr: checkpoint 0\.003 vs asked "
                                         r"0\.001.*Delete it, or pass another checkpoint path"):
        train_model(replace(MODEL, latent_dim=3), replace(TRAIN, lr=1e-3), *tiny, checkpoint=path, show_progress=False)


def test_nan_parameters_stop_training(tiny, tmp_path):
    """A model whose parameters are NaN raises FloatingPointError in epoch 1, naming the fix,
    and the NaN state is never written to the checkpoint."""
    torch.manual_seed(0)
    model = VAE(MODEL)
    with torch.no_grad():
        for p in model.parameters():
            p.fill_(math.nan)
    path = tmp_path / "nan.pt"
    with pytest.raises(FloatingPointError, match=r"training diverged by epoch 1: the bound became nan.*Lower the "
                                                 r"learning rate \(lr=0\.003\)"):
        fit(model, *tiny, TRAIN, checkpoint=path, checkpoint_every=1, show_progress=False)
    assert not path.exists()


def test_absurd_learning_rate_diverges_with_a_message(tiny):
    """Adam with lr = 10⁶ overflows in the first epoch; the error says to lower the learning rate."""
    with pytest.raises(FloatingPointError, match=r"diverged by epoch 1.*Lower the learning rate \(lr=1000000\.0\)"
                                                 r".*pass checkpoint=\.\.\. to keep progress"):
        train_model(MODEL, replace(TRAIN, lr=1e6), *tiny, show_progress=False)


def test_sparse_evaluation_follows_a_geometric_grid(tiny):
    """eval_growth=2 on 300 images: evaluations where the samples seen pass 300, 600, 1200, 2400, and the last epoch."""
    _, history = train_model(MODEL, replace(TRAIN, epochs=6), *tiny, show_progress=False, eval_growth=2.0)
    assert history.epoch == [1, 2, 4, 6] and history.samples_seen == [300, 600, 1200, 1800]
    assert all(len(v) == 4 for v in history.as_dict().values())


def test_train_bound_on_a_fixed_set_is_evaluated(tiny):
    """With train_eval_x, the train bound is the bound of those images observed once (like the test set)."""
    train_x, test_x = tiny
    model, history = train_model(MODEL, TRAIN, train_x, test_x, show_progress=False, train_eval_x=train_x[:100])
    assert history.train_bound[-1] == evaluate(model, observe(train_x[:100], "fixed", seed=TEST_SEED))["bound"]


def test_interrupted_sparse_run_resumes_exactly(tiny, tmp_path):
    """A run stopped between two points of the evaluation grid resumes to the same parameters as a run
    made in one go; the stop adds one evaluation (the end of the shorter call), and the evaluations the
    two runs share agree exactly."""
    config = replace(TRAIN, epochs=5)
    straight, h_straight = train_model(MODEL, config, *tiny, show_progress=False, eval_growth=3.0)
    path = tmp_path / "sparse.pt"
    train_model(MODEL, replace(config, epochs=2), *tiny, checkpoint=path, show_progress=False, eval_growth=3.0)
    resumed, h_resumed = train_model(MODEL, config, *tiny, checkpoint=path, show_progress=False, eval_growth=3.0)
    assert same_parameters(straight, resumed)
    assert h_straight.epoch == [1, 3, 5] and h_resumed.epoch == [1, 2, 3, 5]
    shared = [h_resumed.epoch.index(e) for e in h_straight.epoch]
    assert [h_resumed.test_bound[i] for i in shared] == h_straight.test_bound


def test_a_finished_run_is_not_saved_again(tiny, tmp_path):
    """Asked for a run its checkpoint has already finished, fit trains nothing and leaves the file byte for
    byte as it was (a chapter's full run does not rewrite the committed checkpoints it only reads); asked for
    more, it trains on and saves."""
    path = tmp_path / "done.pt"
    train_model(MODEL, TRAIN, *tiny, checkpoint=path, show_progress=False)
    before = path.read_bytes()
    train_model(MODEL, TRAIN, *tiny, checkpoint=path, show_progress=False)
    assert path.read_bytes() == before
    train_model(MODEL, replace(TRAIN, epochs=3), *tiny, checkpoint=path, show_progress=False)
    assert path.read_bytes() != before


def test_wake_sleep_trains_through_the_same_driver(tiny):
    """fit runs wake-sleep by name: reproducible, and its reported bound rises from the initialization's."""
    config = replace(TRAIN, epochs=4, algorithm="wake_sleep", optimizer="adagrad", lr=0.02)
    a, h = train_model(MODEL, config, *tiny, show_progress=False)
    b, _ = train_model(MODEL, config, *tiny, show_progress=False)
    assert same_parameters(a, b)
    torch.manual_seed(config.seed)
    start = evaluate(VAE(MODEL), observe(tiny[1], "fixed", seed=TEST_SEED))["bound"]
    assert h.test_bound[-1] > start + 20, (start, h.test_bound)


def test_checkpoint_from_before_the_algorithm_field_resumes(tiny, tmp_path):
    """A checkpoint written before TrainConfig had ``algorithm`` reads as AEVB and resumes."""
    path = tmp_path / "old.pt"
    train_model(MODEL, replace(TRAIN, epochs=1), *tiny, checkpoint=path, show_progress=False)
    payload = torch.load(path, weights_only=True)
    del payload["train_config"]["algorithm"]
    torch.save(payload, path)
    _, history = train_model(MODEL, TRAIN, *tiny, checkpoint=path, show_progress=False)
    assert history.epoch == [1, 2]


def test_failed_checkpoint_write_leaves_no_temporary_file(tmp_path, monkeypatch):
    """A write that fails half-way removes its own temporary file and leaves the old checkpoint intact."""
    model = VAE(MODEL)
    path = tmp_path / "ckpt.pt"
    save_checkpoint(path, model)
    before = path.read_bytes()

    def broken_save(obj, f, *args, **kwargs):
        f.write(b"half")
        raise OSError("disk full")

    monkeypatch.setattr(train_module.torch, "save", broken_save)
    with pytest.raises(OSError, match="disk full"):
        save_checkpoint(path, model)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["ckpt.pt"] and path.read_bytes() == before


def test_burdas_schedule_has_eight_stages_of_3_to_the_i_passes():
    """Burda et al. (2015), Section 5: 3^i passes at 10^(-i/7) of the initial step size, i = 0..7: 3280 passes."""
    from vae_lib.training.training_step import burda_lr_factor

    factors = [burda_lr_factor(e) for e in range(3280)]
    stages = [round(-7 * math.log10(f)) for f in factors]
    assert [stages.count(i) for i in range(8)] == [3 ** i for i in range(8)]
    assert stages == sorted(stages) and burda_lr_factor(10 ** 5) == pytest.approx(0.1)
    with pytest.raises(ValueError, match="epoch must be an integer"):
        burda_lr_factor(-1)


def test_the_best_model_run_resumes_and_reports_where_it_stands(tmp_path, monkeypatch):
    from vae_lib.runs import best_model

    small = torch.rand(200, 784)
    monkeypatch.setattr(best_model, "load_mnist", lambda split, *a, **k: type("S", (), {"x": small})())
    assert "not started" in best_model.describe(best_model.status(tmp_path))
    s = best_model.train_best(tmp_path, epochs=1)
    assert s["epochs"] == 1 and not s["finished"] and "no final verdict yet" in best_model.describe(s)
    assert "h of training so far" in best_model.describe(s)
    s = best_model.train_best(tmp_path, epochs=2)
    assert s["epochs"] == 2
    saved = torch.load(best_model.checkpoint_path(tmp_path), weights_only=True)["train_config"]
    assert saved["lr_schedule"] == "burda" and saved["algorithm"] == "iwae_dreg" and saved["n_samples"] == 5


def test_the_best_model_is_scored_on_every_test_image_as_the_target_is(tmp_path, monkeypatch):
    from vae_lib.inference.likelihood import importance_sampled_log_likelihood
    from vae_lib.model.pixels import observe
    from vae_lib.runs import best_model
    from vae_lib.training.train import TEST_SEED, load_checkpoint

    small = torch.rand(60, 784, generator=torch.Generator().manual_seed(3))
    monkeypatch.setattr(best_model, "load_mnist", lambda split, *a, **k: type("S", (), {"x": small})())
    best_model.train_best(tmp_path, epochs=1)
    path = best_model.checkpoint_path(tmp_path)
    scores = best_model.score_all_test_images(path, small, k=7)
    assert (scores["epochs"], scores["of"], scores["k"], scores["n_images"]) == (1, 3280, 7, 60)
    model = load_checkpoint(path)[0]
    direct = importance_sampled_log_likelihood(model, observe(small, "fixed", seed=TEST_SEED), k=7, seed=0)
    assert torch.allclose(torch.tensor(scores["log_px"]), direct.log_px.double().float(), atol=1e-4)
    text = best_model.target_verdict(scores)
    assert "1 of 3280 epochs" in text and "not final" in text and "below by" in text
    assert best_model.score_all_test_images(path, small, k=7, stop_at=0.0) is None


@pytest.mark.parametrize("values, outcome, stretch", [
    ([-86.0, -86.2, -86.1, -86.3], "TARGET MET", "not met"),       # above -86.76 by far more than 2 s.e.
    ([-80.0, -93.0, -84.0, -90.0], "target NOT MET", "not met"),   # mean -86.75: within 2 s.e.
    ([-88.0, -88.2, -88.1, -88.3], "target MISSED", "not met"),    # below by far more than 2 s.e.
    ([-84.0, -84.1, -84.2, -84.3], "TARGET MET", "met"),           # above the stretch -84.78 too
])
def test_a_final_score_says_plainly_whether_the_target_is_met(values, outcome, stretch):
    from vae_lib.runs import best_model

    scores = {"epochs": 3280, "of": 3280, "k": 5000, "n_images": len(values), "log_px": values}
    text = best_model.target_verdict(scores)
    assert f"final, {outcome}" in text and "not final" not in text
    assert text.endswith(f", {stretch}")
    assert "final" not in best_model.target_verdict({**scores, "epochs": 3279}).split(" — ")[0]
    assert "the paper's own IWAE, k = 5 (-85.54; like for like in bound and k, not in gradient estimator" in text


def test_the_targets_are_table_1s_one_layer_values():
    from vae_lib.runs import best_model

    assert (best_model.TARGET, best_model.LIKE_FOR_LIKE, best_model.STRETCH) == (-86.76, -85.54, -84.78)
    done = {"epochs": 3280, "of": 3280, "seconds": 3600.0, "test_bound": -91.0, "finished": True}
    assert "the schedule is complete" in best_model.describe(done) and "--score-all" in best_model.describe(done)
    assert "1.0 h of training;" in best_model.describe(done)   # finished: no "so far"


def test_the_full_score_line_says_which_checkpoint_it_scored(tmp_path):
    import json

    from vae_lib.runs import best_model

    assert "not yet scored" in best_model.describe_full_score(tmp_path, {"epochs": 5})
    assert best_model.read_full_score(tmp_path) is None
    path = best_model.full_score_path(tmp_path)
    path.parent.mkdir(parents=True)
    path.write_text(json.dumps({"format": best_model.SCORE_FORMAT, "epochs": 3, "of": 3280, "k": 5000,
                                "n_images": 4, "log_px": [-80.0, -82.0, -84.0, -86.0]}))
    line = best_model.describe_full_score(tmp_path, {"epochs": 5})
    assert "at 3 of 3280 epochs" in line and "above by" in line and "this score is of its checkpoint at 3" in line
    assert best_model.read_full_score(tmp_path)["log_px"] == [-80.0, -82.0, -84.0, -86.0]
    path.write_text(json.dumps({"format": "other"}))
    with pytest.raises(ValueError, match="best_dreg_k5_all.json.*--score-all"):
        best_model.describe_full_score(tmp_path, {"epochs": 5})
    with pytest.raises(ValueError, match="not the long run's scores"):
        best_model.read_full_score(tmp_path)

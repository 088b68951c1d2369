"""vae_lib.runs.experiments: named runs, where their checkpoints live, and load-instead-of-train."""

import pytest
import torch

import vae_lib.runs.experiments as experiments
from vae_lib.training.train import TrainConfig
from vae_lib.runs.experiments import EXPERIMENTS, checkpoint_dir, checkpoint_path, load_or_train

QUICK = TrainConfig(epochs=1, batch_size=100, lr=1e-3, lr_schedule="cosine")


def test_checkpoint_path_and_unknown_names(tmp_path, monkeypatch):
    """A known experiment's checkpoint is <root>/<name>.pt (root: argument, then $VAE_CHECKPOINT_DIR);
    an unknown name is refused with the list of names."""
    assert checkpoint_path("seed_z3_h400", tmp_path) == tmp_path / "seed_z3_h400.pt"
    monkeypatch.setenv("VAE_CHECKPOINT_DIR", str(tmp_path / "env"))
    assert checkpoint_dir() == tmp_path / "env"
    with pytest.raises(ValueError, match=r"unknown experiment 'z3'; choose one of \('seed_z3_h400', "):
        checkpoint_path("z3", tmp_path)


def test_experiments_are_consistent():
    """Every named run has its own name as key and a model that fits its data (784 or 560 pixels)."""
    for name, exp in EXPERIMENTS.items():
        assert exp.name == name and exp.model.data_dim in (784, 560) and exp.description


def test_load_or_train_trains_once_then_loads(mnist_train, mnist_test, tmp_path, monkeypatch):
    """The first call trains and writes the checkpoint; the second finds the complete run and loads it
    (bit-identical parameters) without training."""
    train_x, test_x = mnist_train.x[:200], mnist_test.x[:100]
    model, history, trained = load_or_train("latent2_h400", train_x, test_x, root=tmp_path, train=QUICK,
                                            show_progress=False)
    assert trained and history.epoch == [1] and checkpoint_path("latent2_h400", tmp_path).exists()

    def no_training(*args, **kwargs):
        raise AssertionError("load_or_train trained although the checkpoint holds the complete run")

    monkeypatch.setattr(experiments, "train_model", no_training)
    loaded, loaded_history, trained = load_or_train("latent2_h400", train_x, test_x, root=tmp_path, train=QUICK)
    assert not trained and loaded_history == history
    assert all(torch.equal(a, b) for a, b in zip(model.state_dict().values(), loaded.state_dict().values()))

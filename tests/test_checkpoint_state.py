"""vae_lib.runs.checkpoint_state: a run's state read from its checkpoint and its lock, never assumed."""

import os
import time
from dataclasses import replace

import pytest
import torch

from vae_lib.base.locks import run_lock
from vae_lib.model.vae import VAEConfig
from vae_lib.runs.checkpoint_state import checkpoint_state, describe_state, held_by
from vae_lib.training.train import TrainConfig, train_model

MODEL = VAEConfig(latent_dim=2, hidden_sizes=(8,))
TRAIN = TrainConfig(epochs=2, batch_size=50, lr=3e-3, seed=3)


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    """A 2-epoch run on 100 random binary images, with its checkpoint."""
    g = torch.Generator().manual_seed(0)
    x = (torch.rand(100, 784, generator=g) > 0.5).float()
    path = tmp_path_factory.mktemp("state") / "run.pt"
    train_model(MODEL, TRAIN, x, x[:50], checkpoint=path, show_progress=False)
    return path


def test_no_checkpoint(tmp_path):
    state = checkpoint_state(tmp_path / "absent.pt")
    assert state == {"epochs": 0, "written": None, "training": None}
    assert describe_state(state, 100) == "not started (0 of 100 epochs)"


def test_stopped_run(run):
    """Epochs from the history; the time from the file; no holder, since nothing trains it."""
    os.utime(run, (0, 3600 * 24 * 365))      # 1971-01-01 00:00 UTC
    state = checkpoint_state(run)
    assert state == {"epochs": 2, "written": "1971-01-01 00:00 UTC", "training": None}
    line = describe_state(state, 100)
    assert line.startswith("stopped at 2 of 100 epochs (checkpoint of 1971-01-01 00:00 UTC)")
    assert "no process is training it" in line
    assert describe_state(state, 2).startswith("done (2 of 2 epochs")


def test_a_held_lock_reads_as_training(run):
    """While a process holds the run's lock (as training does), the state says so and names the holder;
    once released, asking again takes nothing and finds no holder."""
    with run_lock(run):
        assert f"process {os.getpid()}" in held_by(run)
        assert describe_state(checkpoint_state(run), 100).startswith("training now, at 2 of 100 epochs")
    assert held_by(run) is None
    with run_lock(run):      # asking did not leave the lock taken
        pass

"""Checkpoints of Figure 3's former driver, converted once into the one driver's format
(:func:`vae_lib.training.train.fit`, :mod:`vae_lib.training.checkpoints`), so the committed runs resume through it.

The former driver (``vae_lib.figure3_checkpoint/1``) saved the model, Adagrad's state, MCEM's chains,
the generator, the epoch's permutation and position in it, the samples seen, the training seconds and
the curve's points. Each has its place in a :class:`~vae_lib.training.training_run.TrainingRun`'s checkpoint:
nothing is recomputed, so the converted run continues draw for draw where the old one stopped (the
former driver and this one give bitwise the same runs; ``tests/test_figure3_convert.py``). The step
size, which the old checkpoint does not hold, is read from the run's curve file.
"""

from __future__ import annotations

import os
import time
from pathlib import Path

import torch

from vae_lib.model.vae import VAE
from vae_lib.training.mcem import MCEMConfig
from vae_lib.training.train import TrainingRun
from vae_lib.runs.figure3 import OLD_CHECKPOINT_FORMAT, Figure3Run, figure3_runs
from vae_lib.runs.figure3_curves import curve_path, read_curve


class _Points:
    """The old checkpoint's curve points, as the monitor's record a TrainingRun saves."""

    def __init__(self, points_json: str):
        self.points_json = points_json

    def state_dict(self) -> dict:
        return {"points": self.points_json}


def convert_checkpoint(path: str | os.PathLike, run: Figure3Run, step_size: float) -> dict:
    """Rewrite the former driver's checkpoint of ``run`` at ``path`` in the one driver's format (atomically, in
    place); ``step_size`` is the run's Adagrad step size (its curve's ``step_size``). Returns what was
    converted: samples, epochs done, position in the epoch."""
    path = Path(path)
    old = _read_old(path)
    if old is None:
        raise ValueError(f"{path} is not a checkpoint of Figure 3's former driver (format {OLD_CHECKPOINT_FORMAT!r})")
    return _convert(old, path, run, step_size)


def _read_old(path: Path) -> dict | None:
    """The former driver's checkpoint at ``path``, or None where the file holds another format."""
    old = torch.load(path, map_location="cpu", weights_only=True)
    return old if isinstance(old, dict) and old.get("format") == OLD_CHECKPOINT_FORMAT else None


def _convert(old: dict, path: Path, run: Figure3Run, step_size: float) -> dict:
    n, samples = len(old["perm"]), int(old["samples"])
    if n != run.n_train:
        raise ValueError(f"{path} was trained on {n} images, not on {run.name}'s {run.n_train}")
    mcem = MCEMConfig(**old["mc"]["config"]) if old["mc"] is not None else MCEMConfig()
    model = VAE(run.model_config())
    training = TrainingRun(model, torch.zeros(n, model.config.data_dim), None,
                           run.train_config(n, samples, step_size, mcem), None, None, "eager")
    model.load_state_dict(old["model"])
    training.optimizer.load_state_dict(old["optimizer"])
    training.generator.set_state(old["generator"].cpu())
    if training.mcem is not None:
        training.mcem.load_state_dict(old["mc"])
    position = int(old["position"])
    if position < n:                     # saved mid-epoch: the epoch goes on in its own order
        training.order, training.position = old["perm"], position
    else:                                # saved at an epoch's end: the next epoch draws its order
        position = 0
    training.samples, training.epoch = samples, (samples - position) // n
    training.train_seconds = float(old["train_seconds"])
    training.t0 = time.perf_counter() - training.train_seconds
    training.monitor, training.path = _Points(old["points"]), path
    training.train_data = None   # the former driver did not record its images (the placeholder zeros are not them)
    training.save()
    return {"run": run.name, "samples": samples, "epochs_done": training.epoch, "position": position}


def convert_folder(checkpoint_dir: str | os.PathLike, curves_dir: str | os.PathLike) -> list[dict]:
    """Convert every former-driver checkpoint of the Figure 3 runs in ``checkpoint_dir`` (each step size read
    from its curve in ``curves_dir``); the ones already converted are left as they are."""
    done = []
    for run in figure3_runs():
        path = Path(checkpoint_dir) / f"{run.name}.pt"
        if not path.exists():
            continue
        old = _read_old(path)
        if old is None:
            continue
        curve = read_curve(curve_path(run, curves_dir), run)
        done.append(_convert(old, path, run, float(curve["step_size"])))
    return done

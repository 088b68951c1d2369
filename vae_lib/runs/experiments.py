"""The book's named training runs — the seed's two MNIST configurations, the paper's own setup and
a 2-D model for pictures — and where their checkpoints live, shared by chapters 6, 7 and 8."""

from __future__ import annotations

import math
import os
import tempfile
from dataclasses import asdict, dataclass, replace
from pathlib import Path

import torch

from vae_lib.model.vae import PAPER_INIT_STD_ALTERNATIVE, VAE, VAEConfig
from vae_lib.training.train import History, TrainConfig, load_checkpoint, train_model

CHECKPOINT_ENV = "VAE_CHECKPOINT_DIR"
MNIST_TRAIN_SIZE = 60000


@dataclass(frozen=True)
class Experiment:
    """A named run: its model, how it is trained, and a line for the reader."""

    name: str
    model: VAEConfig
    train: TrainConfig
    description: str


EXPERIMENTS: dict[str, Experiment] = {e.name: e for e in [
    Experiment("seed_z3_h400",
               VAEConfig(latent_dim=3, hidden_sizes=(400,), activation="relu"),
               TrainConfig(epochs=200, optimizer="adam", lr=1e-3, lr_schedule="cosine"),
               "the seed's first configuration: z=3, one hidden layer of 400 (ReLU), Adam with cosine decay"),
    Experiment("seed_z12_h256-128",
               VAEConfig(latent_dim=12, hidden_sizes=(256, 128), activation="relu"),
               TrainConfig(epochs=200, optimizer="adam", lr=1e-3, lr_schedule="cosine"),
               "the seed's second configuration: z=12, hidden layers 256-128 (ReLU), Adam with cosine decay"),
    Experiment("paper_z3_h500",
               VAEConfig(latent_dim=3, hidden_sizes=(500,), activation="tanh", init_std=PAPER_INIT_STD_ALTERNATIVE),
               # lr: a placeholder: scripts/train_experiments.py picks it by the paper's rule (sweep_learning_rate,
               # {0.01, 0.02, 0.1}) before training; the committed run's checkpoint records the pick, 0.01
               TrainConfig(epochs=100, optimizer="adagrad", lr=0.02, weight_decay=1.0 / MNIST_TRAIN_SIZE),
               "the paper's setup: z=3, 500 tanh units, init std 0.01 (the paper's \"N(0, 0.01)\" read as a std), "
               "Adagrad, weight decay 1/N, M=100, estimator B"),
    Experiment("latent2_h400",
               VAEConfig(latent_dim=2, hidden_sizes=(400,), activation="relu"),
               TrainConfig(epochs=50, optimizer="adam", lr=1e-3, lr_schedule="cosine"),
               "a 2-D latent space to draw: z=2, one hidden layer of 400 (ReLU)"),
    Experiment("frey_z2_h200",
               VAEConfig(data_dim=560, latent_dim=2, hidden_sizes=(200,), activation="tanh", likelihood="gaussian"),
               TrainConfig(epochs=300, optimizer="adam", lr=1e-3, protocol="grey", eval_protocol="grey"),
               "Frey Face in 2-D as in the paper's Figure 4: 200 tanh units, Gaussian decoder, grey levels"),
]}
FREY_TEST_SIZE = 200   # Frey Face has no official split: 200 random frames (seed 0) are held out


def checkpoint_dir(root: str | os.PathLike | None = None) -> Path:
    """Folder of the book's checkpoints: ``root``, else ``$VAE_CHECKPOINT_DIR``, else ``checkpoints/``
    at the top of the repository."""
    if root is not None:
        return Path(root)
    env = os.environ.get(CHECKPOINT_ENV)
    return Path(env) if env else Path(__file__).resolve().parents[2] / "checkpoints"


def get_experiment(name: str) -> Experiment:
    """The experiment called ``name``; a ValueError listing the names for any other."""
    if not isinstance(name, str) or name not in EXPERIMENTS:
        raise ValueError(f"unknown experiment {name!r}; choose one of {tuple(EXPERIMENTS)}")
    return EXPERIMENTS[name]


def checkpoint_path(name: str, root: str | os.PathLike | None = None) -> Path:
    """Where the checkpoint of experiment ``name`` lives."""
    get_experiment(name)
    return checkpoint_dir(root) / f"{name}.pt"


def check_model_matches(name: str, path: Path, payload: dict) -> None:
    """A ValueError, naming every difference and the fix, unless the checkpoint ``payload`` read from
    ``path`` holds a model of experiment ``name``'s configuration — so a checkpoint of another
    architecture saved under an experiment's name is never reported as that experiment."""
    expected = asdict(get_experiment(name).model)
    saved = asdict(VAEConfig(**payload["model_config"]))
    differences = [f"{k}: checkpoint {saved[k]!r} vs experiment {v!r}" for k, v in expected.items() if saved[k] != v]
    if differences:
        raise ValueError(f"checkpoint {path} does not hold a model of experiment {name!r}:\n  "
                         + "\n  ".join(differences)
                         + f"\nMove or delete it (the experiment is then trained afresh), or point root=... "
                           f"(${CHECKPOINT_ENV}) at the folder of this experiment's checkpoints.")


def load_or_train(name: str, train_x: torch.Tensor, test_x: torch.Tensor | None,
                  root: str | os.PathLike | None = None, train: TrainConfig | None = None,
                  **fit_kwargs) -> tuple[VAE, History, bool]:
    """The trained model of experiment ``name``: loaded from its checkpoint when one holds the
    complete run, else trained (resuming a partial checkpoint). ``train`` overrides the
    experiment's TrainConfig (chapters shrink it in quick mode). Returns (model, history, trained),
    ``trained`` telling whether any training happened in this call."""
    exp = get_experiment(name)
    config = train or exp.train
    path = checkpoint_path(name, root)
    if path.exists():
        model, history, payload = load_checkpoint(path, train_x.device)
        check_model_matches(name, path, payload)

        def same(a: dict) -> dict:
            return {k: v for k, v in asdict(TrainConfig.from_dict(a)).items() if k != "epochs"}
        if (VAEConfig(**payload["model_config"]) == exp.model
                and same(dict(payload["train_config"] or {})) == same(asdict(config))
                and len(history.epoch) >= config.epochs):
            return model, history, False
    model, history = train_model(exp.model, config, train_x, test_x, checkpoint=path, **fit_kwargs)
    return model, history, True


def pretrained_or_train(name: str, train_x: torch.Tensor, test_x: torch.Tensor | None,
                        root: str | os.PathLike | None = None, quick: bool = False,
                        **fit_kwargs) -> tuple[VAE, History, str]:
    """The model of experiment ``name`` for chapters that study trained models: its checkpoint when
    one exists (whatever its epoch count, so a chapter opened alone uses the committed run), else a
    fresh training — the full configuration into ``root``, or in ``quick`` mode 2 epochs into a
    temporary folder (removed before returning), so a quick run never writes over the book's checkpoints.
    A checkpoint of another model configuration is refused (:func:`check_model_matches`).
    Returns (model, history, how) with ``how`` "loaded" or "trained"."""
    path = checkpoint_path(name, root)
    if path.exists():
        model, history, payload = load_checkpoint(path, train_x.device)
        check_model_matches(name, path, payload)
        return model, history, "loaded"
    config = EXPERIMENTS[name].train
    if not quick:
        model, history, _ = load_or_train(name, train_x, test_x, root=root, train=config, **fit_kwargs)
        return model, history, "trained"
    with tempfile.TemporaryDirectory(prefix="vae_quick_") as scratch:
        model, history, _ = load_or_train(name, train_x, test_x, root=scratch, train=replace(config, epochs=2),
                                          **fit_kwargs)
    return model, history, "trained"


def sweep_learning_rate(name: str, train_x: torch.Tensor, lrs: tuple[float, ...] = (0.01, 0.02, 0.1),
                        epochs: int = 1) -> dict[float, float]:
    """The paper's step-size choice: train experiment ``name`` from its seeded initialization for
    ``epochs`` with each learning rate in ``lrs`` and return {lr: training bound after those epochs}.
    Kingma & Welling (2013), Section 5: picked "based on performance on the training set in the
    first few iterations". A step size whose run diverges (:func:`vae_lib.training.train.fit` stops it) scores −inf."""
    exp = get_experiment(name)
    results = {}
    for lr in lrs:
        try:
            _, history = train_model(exp.model, replace(exp.train, lr=lr, epochs=epochs), train_x, None,
                                     show_progress=False)
            results[lr] = history.train_bound[-1]
        except FloatingPointError:
            results[lr] = -math.inf
    return results

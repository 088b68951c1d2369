"""The setup of the paper's Figure 2 runs: which runs there are (:class:`PaperRun`, one per curve: a data
set, an algorithm, a latent size), the model and the training configuration of each, and their data.
Training them, and picking each one's step size, is :mod:`vae_lib.runs.paper_runs`'s (which imports these
names too).

The setup (the paper's, Section 5 and Appendix C): one hidden layer of tanh units (500 for MNIST,
200 for Frey Face) in encoder and decoder, Bernoulli decoder for MNIST and Gaussian with sigmoid
mean for Frey Face, Adagrad with the step size picked from {0.01, 0.02, 0.1} by the training bound
after the first iterations, M = 100, L = 1, estimator B, weight decay 1/N (the N(0, I) prior on θ).
The paper draws the initial parameters from "N(0, 0.01)" without saying whether 0.01 is the variance
or the standard deviation; these runs read it the way N(μ, σ²) is usually written, as the variance
(standard deviation 0.1), which also trained faster in a measurement (4 epochs of the MNIST N_z = 3
model at step size 0.02: test bound −160.6 against −165.9 with standard deviation 0.01). MNIST pixels are binarized dynamically for training and once, with seed 0, for
evaluation (the paper does not say how it binarized). Frey Face: 200 random frames (seed 0) held out.
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass

import torch

from vae_lib.model.data import Split, load_frey_face, load_mnist, random_split
from vae_lib.model.holdout import contiguous_split
from vae_lib.model.vae import PAPER_INIT_STD, VAEConfig
from vae_lib.training.train import TrainConfig

FIGURE2_LATENTS = {"mnist": (3, 5, 10, 20, 200), "frey": (2, 5, 10, 20)}
HIDDEN = {"mnist": 500, "frey": 200}
FREY_TEST_SIZE = 200
HOLDOUTS = ("random", "contiguous")     # Frey Face's hold-out: 200 random frames, or the video's last 200
INIT_STD = PAPER_INIT_STD                # the paper's N(0, 0.01) read as a variance (module docstring)
TRAIN_EVAL_SIZE = 10_000                 # MNIST: the train bound is measured on a seeded random 10000


@dataclass(frozen=True)
class PaperRun:
    """One curve of Figure 2: a data set, an algorithm and a latent size."""

    dataset: str        # "mnist" or "frey"
    algorithm: str      # "aevb" or "wake_sleep"
    latent_dim: int     # N_z
    holdout: str = "random"   # Frey Face: "random" (the paper's reading) or "contiguous" (the video's last frames)

    def __post_init__(self) -> None:
        if self.dataset not in FIGURE2_LATENTS:
            raise ValueError(f"unknown data set {self.dataset!r}; choose one of {tuple(FIGURE2_LATENTS)}")
        if self.algorithm not in ("aevb", "wake_sleep"):
            raise ValueError(f"unknown algorithm {self.algorithm!r}; choose 'aevb' or 'wake_sleep'")
        if self.latent_dim < 1:
            raise ValueError(f"latent_dim must be at least 1, got {self.latent_dim}")
        if self.holdout not in HOLDOUTS or (self.holdout != "random" and self.dataset != "frey"):
            raise ValueError(f"holdout must be one of {HOLDOUTS} (contiguous for Frey Face only), got {self.holdout!r}")

    @property
    def name(self) -> str:
        suffix = "" if self.holdout == "random" else f"_{self.holdout}"
        return f"fig2_{self.dataset}_{self.algorithm}_z{self.latent_dim}{suffix}"

    def model_config(self) -> VAEConfig:
        data_dim, likelihood = (784, "bernoulli") if self.dataset == "mnist" else (560, "gaussian")
        return VAEConfig(data_dim=data_dim, latent_dim=self.latent_dim, hidden_sizes=(HIDDEN[self.dataset],),
                         activation="tanh", likelihood=likelihood, init_std=INIT_STD)

    def train_config(self, n_train: int, samples: int, lr: float) -> TrainConfig:
        """Adagrad at step size ``lr`` for at least ``samples`` training samples (whole epochs)."""
        grey = self.dataset == "frey"
        return TrainConfig(epochs=math.ceil(samples / n_train), batch_size=100, optimizer="adagrad", lr=lr,
                           weight_decay=1.0 / n_train, estimator="B", n_samples=1,
                           protocol="grey" if grey else "dynamic", eval_protocol="grey" if grey else "fixed",
                           algorithm=self.algorithm)


def figure2_runs(datasets: tuple[str, ...] = ("mnist", "frey")) -> list[PaperRun]:
    """Every curve of Figure 2 for ``datasets``, AEVB before wake-sleep."""
    return [PaperRun(d, a, j) for d in datasets for a in ("aevb", "wake_sleep") for j in FIGURE2_LATENTS[d]]


def paper_data(dataset: str, root: str | os.PathLike | None = None,
               device: torch.device | str = "cpu", holdout: str = "random") -> tuple[Split, Split, torch.Tensor]:
    """(train, test, train_eval_x) of the Figure 2 runs: MNIST's 60000 / 10000 split and a seeded random
    10000 of the training images for the train bound; Frey Face's 1765 / 200 split — 200 random frames
    (seed 0), or with ``holdout="contiguous"`` the video's last 200 (vae_lib.model.holdout) — the train bound on
    all 1765."""
    if dataset == "mnist":
        train, test = load_mnist("train", root, device), load_mnist("test", root, device)
        pick = torch.randperm(len(train), generator=torch.Generator().manual_seed(0))[:TRAIN_EVAL_SIZE]
        return train, test, train.x[pick.to(train.x.device)]
    if dataset == "frey":
        frames = load_frey_face(root, device)
        if holdout == "contiguous":
            train_x, test_x = contiguous_split(frames.x, FREY_TEST_SIZE)
            train, test = Split(train_x, None, frames.image_shape), Split(test_x, None, frames.image_shape)
        else:
            train, test = random_split(frames, FREY_TEST_SIZE, seed=0)
        return train, test, train.x
    raise ValueError(f"unknown data set {dataset!r}; choose one of {tuple(FIGURE2_LATENTS)}")

"""The paper's Figure 3 runs — Kingma & Welling (2013), Section 5, Figure 3 and Appendix E — as named,
resumable runs whose curves are small JSON files: AEVB, wake-sleep and Monte Carlo EM
(:mod:`vae_lib.training.mcem`) with N_z = 3 and 100 tanh hidden units, on training sets of 1000 and 50000
MNIST images; the curve is the *marginal* log-likelihood of train and test images against the
training samples evaluated.

The setup, the paper's where it says (Section 5, Appendices C and E), these runs' choices otherwise:

- model: one hidden layer of 100 tanh units in encoder and decoder, Bernoulli decoder, parameters
  initialized N(0, 0.1²) as Figure 2's runs (vae_lib.runs.paper_runs); MCEM uses only the decoder;
- data: a seeded random subset (seed 0) of the 60000 MNIST training images, of size n_train; pixels
  binarized once (seed 0) for training and for evaluation alike, so that a training image is one
  fixed binary image (MCEM's persistent chains need fixed x, and overfitting is measured on the
  images trained on); the test images are the 10000 MNIST test images binarized the same way;
- Adagrad, M = 100, weight decay 1/n_train (the N(0, I) prior on θ), global step size 0.02 for every
  algorithm (one of the paper's candidates; no per-run sweep here); no annealing (the paper's
  schedule is not described); MCEM: 10 leapfrog steps, step size adapted toward 90 % acceptance,
  one HMC transition and 5 weight updates per visit of a minibatch (Appendix E);
- "training samples evaluated": M per minibatch visit for every algorithm (for MCEM one visit is
  one HMC transition of every chain in the minibatch plus the 5 weight updates);
- the curve: the exact log p(x) (vae_lib.inference.quadrature in float32: grids of 8, 16 and at most 32
  cells per axis, stopping when two levels agree to 0.01 nat, a 16³ wide-box guard) averaged over a
  seeded random ``n_eval`` of the training images and of the test images, at log-spaced sample
  counts (first_eval · 10^(i/4): the grid of :func:`vae_lib.runs.figure3_monitor.next_grid_point`); the "change" of the last level
  is kept as the convergence record, and chapter 11 audits the last points (below). Beside it, at
  the first evaluation of every decade and at the end, the
  importance-sampled estimate with the encoder as proposal (K = IS_K; AEVB and wake-sleep only).
  It is a stochastic lower bound, and a loose one once the encoder overfits (chapter 11 tabulates
  exact − IS at every such point).

The runs train through the book's one driver, :func:`vae_lib.training.train.fit` (MCEM as the update rule with
per-example state, :class:`vae_lib.training.mcem.MCEMRule`); what is Figure 3's own is here: its runs and data,
the grid of evaluation points and the monitor that evaluates there and writes the curve
(:mod:`vae_lib.runs.figure3_monitor`).

Cost on this machine's CPU (1 thread, the book's runs with both cores busy; the curves' train_seconds
and eval_seconds): AEVB about 3.6 s and MCEM about 21 s per 10^5 training samples, one evaluation of
2 × 500 images 2.5–5.5 minutes (``scripts/figure3.py --measure`` measures the training costs afresh).
Every run, on either device, evaluates the same n_eval = 500 images of each set.

A box converges on what it integrates: a posterior mode outside it is missed and the value is too
low while looking converged. Chapter 11 audits the last point of every run with
:func:`vae_lib.runs.figure3_scoring.reference_log_likelihood` (two differently placed boxes, ``QUADRATURE_REFERENCE``) and
tabulates, per run, how far the curve's values lie from it.
"""

from __future__ import annotations

import math
import os
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import torch

from vae_lib.base.params import check_int
from vae_lib.model.data import load_mnist
from vae_lib.model.pixels import fixed_binarization
from vae_lib.model.vae import PAPER_INIT_STD, VAE, VAEConfig
from vae_lib.training.checkpoints import load_checkpoint
from vae_lib.training.mcem import MCEMConfig
from vae_lib.training.train import TrainConfig, fit
from vae_lib.runs.figure3_curves import ALGORITHMS, curve_path, read_curve
from vae_lib.runs.figure3_monitor import FIRST_EVAL, Figure3Monitor
from vae_lib.runs.figure3_scoring import IS_K, quadrature_settings

TRAIN_SIZES = (1000, 50000)
LATENT, HIDDEN, BATCH, LR, INIT_STD = 3, 100, 100, 0.02, PAPER_INIT_STD
OLD_CHECKPOINT_FORMAT = "vae_lib.figure3_checkpoint/1"   # the format of Figure 3's former driver (convert_checkpoint)


@dataclass(frozen=True)
class Figure3Run:
    """One panel line of Figure 3: an algorithm and a training-set size."""

    algorithm: str
    n_train: int

    def __post_init__(self) -> None:
        if self.algorithm not in ALGORITHMS:
            raise ValueError(f"unknown algorithm {self.algorithm!r}; choose one of {ALGORITHMS}")
        if isinstance(self.n_train, (bool, float, str)) or not hasattr(self.n_train, "__index__"):
            check_int("n_train", self.n_train, 1, 60000)
        if not 1 <= self.n_train <= 60000:
            raise ValueError(f"n_train must lie in [1, 60000], got {self.n_train}")

    @property
    def name(self) -> str:
        return f"fig3_{self.algorithm}_n{self.n_train}"

    def model_config(self) -> VAEConfig:
        return VAEConfig(data_dim=784, latent_dim=LATENT, hidden_sizes=(HIDDEN,), activation="tanh",
                         likelihood="bernoulli", init_std=INIT_STD)

    def train_config(self, n_train: int, samples: int, lr: float = LR, mcem: MCEMConfig = MCEMConfig()) -> TrainConfig:
        """The driver's configuration: Adagrad at ``lr``, M = 100, weight decay 1/n_train, seed 0, the training
        images as given (already binary: protocol "grey" passes them through), ``samples`` in whole epochs
        rounded up (the run itself stops at ``samples``)."""
        return TrainConfig(epochs=math.ceil(samples / n_train), batch_size=BATCH, optimizer="adagrad", lr=lr,
                           weight_decay=1.0 / n_train, protocol="grey", eval_protocol="grey", seed=0,
                           algorithm=self.algorithm, mcem=mcem if self.algorithm == "mcem" else MCEMConfig())


def figure3_runs() -> list[Figure3Run]:
    """All six runs, the small training set first (MCEM can finish there)."""
    return [Figure3Run(a, n) for n in TRAIN_SIZES for a in ALGORITHMS]


def figure3_data(n_train: int, n_eval: int, root: str | os.PathLike | None = None,
                 device: torch.device | str = "cpu") -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """(train_x, train_eval_x, test_eval_x), binary (fixed binarization, seed 0): the first ``n_train``
    of one seeded permutation of the MNIST training images (so the 1000-image set is the first 1000 of
    the 50000-image set), the first ``n_eval`` of those (a seeded random draw, the same images for
    both training-set sizes while ``n_eval`` ≤ 1000), and the first ``n_eval`` of one seeded
    permutation of the 10000 test images (the same for every run). Every run is thus evaluated on the
    same images, and a smaller ``n_eval`` is a subset of a larger one."""
    train = fixed_binarization(load_mnist("train", root, "cpu").x, seed=0)
    test = fixed_binarization(load_mnist("test", root, "cpu").x, seed=0)
    train_x = train[torch.randperm(len(train), generator=torch.Generator().manual_seed(0))[:n_train]]
    train_eval = train_x[:n_eval]
    test_eval = test[torch.randperm(len(test), generator=torch.Generator().manual_seed(1))[:n_eval]]
    return train_x.to(device), train_eval.to(device), test_eval.to(device)


def train_figure3_run(run: Figure3Run, samples: int, out_dir: str | os.PathLike, checkpoint_dir: str | os.PathLike,
                      root: str | os.PathLike | None = None, device: torch.device | str = "cpu", n_eval: int = 100,
                      time_limit: float | None = None, checkpoint_seconds: float = 120.0,
                      mcem: MCEMConfig = MCEMConfig(), first_eval: int = FIRST_EVAL, is_k: int = IS_K,
                      train_x: torch.Tensor | None = None, evals_per_decade: int = 4, lr: float = LR) -> dict:
    """Train (or resume from ``checkpoint_dir/<name>.pt``) ``run`` to ``samples`` training samples
    through :func:`vae_lib.training.train.fit`, evaluating at the grid first_eval · 10^(i / evals_per_decade)
    samples (the next grid value after the last evaluation, so a resumed run falls back on the grid; 4 per
    decade by default, the GPU's) and at the end (:class:`~vae_lib.runs.figure3_monitor.Figure3Monitor`), and write its curve to
    ``out_dir/<name>.json``. ``time_limit`` seconds stop it early, resumably. ``train_x`` replaces the MNIST
    subset (tests); ``lr`` is Adagrad's global step size (the book's runs: ``LR``;
    :func:`vae_lib.runs.figure3_cost.step_size_sweep` tries the paper's others). Returns the curve."""
    device = torch.device(device)
    if train_x is None:
        train_x, train_eval, test_eval = figure3_data(run.n_train, n_eval, root, device)
    else:
        _, _, test_eval = figure3_data(1, n_eval, root, device)
        train_eval = train_x[:n_eval]
    out = curve_path(run, out_dir)
    previous = read_curve(out, run) if out.exists() else {}
    if previous and previous.get("n_eval") != n_eval:
        raise ValueError(f"{out} was evaluated on n_eval = {previous.get('n_eval')} images per set; resuming it with "
                         f"n_eval = {n_eval} would mix image sets in one curve (pass n_eval = {previous.get('n_eval')})")
    settings = {"latent_dim": LATENT, "hidden": HIDDEN, "step_size": lr, "batch_size": BATCH, "n_eval": n_eval,
                "quadrature": quadrature_settings(device), "mcem": asdict(mcem) if run.algorithm == "mcem" else None,
                "target_samples": samples}
    monitor = Figure3Monitor(run, train_eval, test_eval, out, settings, list(previous.get("devices", [])),
                             first_eval, evals_per_decade, is_k)
    torch.manual_seed(0)
    model = VAE(run.model_config()).to(device)
    fit(model, train_x, None, run.train_config(len(train_x), samples, lr, mcem),
                   checkpoint=Path(checkpoint_dir) / f"{run.name}.pt", checkpoint_every=10 ** 9, show_progress=False,
                   eval_growth=10 ** 0.25, checkpoint_seconds=checkpoint_seconds, time_limit=time_limit,
                   monitor=monitor, samples=samples)
    return monitor.write()


def figure3_job(algorithm: str, n_train: int, samples: int, curves_dir: str, checkpoint_dir: str, threads: int = 1,
                device: str | None = None, n_eval: int = 500, evals_per_decade: int = 4,
                time_limit: float | None = None, **options) -> dict:
    """One Figure 3 run as a sweep job (:mod:`vae_lib.base.sweep`): trains it to ``samples`` from its checkpoint
    (checkpointing every minute) with ``threads`` torch threads, prints and returns a summary of its last point.
    ``options`` go to :func:`train_figure3_run` (a smoke run's ``first_eval``, ``is_k``)."""
    from vae_lib.base.utils import pick_device

    torch.set_num_threads(threads)
    run, start = Figure3Run(algorithm, n_train), time.perf_counter()
    curve = train_figure3_run(run, samples, curves_dir, checkpoint_dir, device=pick_device(device), n_eval=n_eval,
                              time_limit=time_limit, checkpoint_seconds=60, evals_per_decade=evals_per_decade, **options)
    last = curve["points"][-1] if curve["points"] else None
    summary = {"name": run.name, "samples": curve["samples_seen"], "seconds": time.perf_counter() - start,
               "train": last["train"]["mean"] if last else None, "test": last["test"]["mean"] if last else None}
    print(f"{run.name}: {summary['samples']:.3g} samples" + (f", train {summary['train']:.2f}, test {summary['test']:.2f}"
          if last else "") + f", {summary['seconds']:.0f} s in this call", flush=True)
    return summary


def load_figure3_model(run: Figure3Run, checkpoint_dir: str | os.PathLike, device: torch.device | str = "cpu") -> tuple[VAE, int]:
    """The model of ``run``'s checkpoint in ``checkpoint_dir`` and its training samples; checked: the checkpoint
    must be this run's (its model and algorithm), and one of the former driver's names the converter."""
    path = Path(checkpoint_dir) / f"{run.name}.pt"
    if not path.exists():
        raise FileNotFoundError(f"no checkpoint {path}: train the run with python scripts/figure3.py")
    try:
        model, _, payload = load_checkpoint(path, device)
    except ValueError as err:
        if "not a vae_lib checkpoint" in str(err) and _is_old_checkpoint(path):
            raise ValueError(f"{path} was written by Figure 3's former driver: convert it once with "
                             f"python scripts/figure3.py --convert-checkpoints --checkpoints {checkpoint_dir} --curves "
                             "<the folder of its curves>") from err
        raise
    if model.config != run.model_config() or (payload["train_config"] or {}).get("algorithm") != run.algorithm:
        raise ValueError(f"{path} holds another run's model ({(payload['train_config'] or {}).get('algorithm')!r}, "
                         f"{model.config}), not {run.name}'s")
    check_run_configuration(run, path, payload)
    return model, int(payload["samples_done"])


RUN_FIELDS = ("algorithm", "batch_size", "optimizer", "weight_decay", "protocol", "eval_protocol", "seed")


def check_run_configuration(run: Figure3Run, path: str | os.PathLike, payload: dict) -> None:
    """A ValueError listing what differs when the training configuration recorded in the checkpoint ``payload``
    (read from ``path``) is not ``run``'s — its algorithm, minibatch, optimizer, weight decay 1/n_train (which
    tells the training-set sizes apart: a checkpoint of fig3_aevb_n1000 copied to fig3_aevb_n50000.pt), pixels and
    seed; the step size and the length may differ (the paper's rule, a longer run)."""
    saved = payload.get("train_config") or {}
    expected = asdict(run.train_config(run.n_train, 1))
    differ = [f"{k}: checkpoint {saved.get(k)!r} vs {run.name} {expected[k]!r}" for k in RUN_FIELDS
              if saved.get(k) != expected[k]]
    if differ:
        n_train = round(1 / saved["weight_decay"]) if isinstance(saved.get("weight_decay"), float) and saved["weight_decay"] > 0 else None
        hint = f" (it was trained on n_train = {n_train} images)" if n_train and n_train != run.n_train else ""
        raise ValueError(f"{path} is not a checkpoint of {run.name}{hint}: its recorded run configuration "
                         "differs:\n  " + "\n  ".join(differ) + f"\nPut {run.name}'s own checkpoint there, or train it "
                         "with python scripts/figure3.py")


def _is_old_checkpoint(path: Path) -> bool:
    return torch.load(path, map_location="cpu", weights_only=True).get("format") == OLD_CHECKPOINT_FORMAT

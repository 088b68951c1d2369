"""The paper's Figure 3 runs — Kingma & Welling (2013), Section 5, Figure 3 and Appendix E — as named,
resumable runs whose curves are small JSON files: AEVB, wake-sleep and Monte Carlo EM
(:mod:`vae_lib.mcem`) with N_z = 3 and 100 tanh hidden units, on training sets of 1000 and 50000
MNIST images; the curve is the *marginal* log-likelihood of train and test images against the
training samples evaluated.

The setup, the paper's where it says (Section 5, Appendices C and E), these runs' choices otherwise:

- model: one hidden layer of 100 tanh units in encoder and decoder, Bernoulli decoder, parameters
  initialized N(0, 0.1²) as Figure 2's runs (vae_lib.paper_runs); MCEM uses only the decoder;
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
- the curve: the exact log p(x) (vae_lib.quadrature in float32: grids of 8, 16 and at most 32
  cells per axis, stopping when two levels agree to 0.01 nat, a 16³ wide-box guard) averaged over a
  seeded random ``n_eval`` of the training images and of the test images, at log-spaced sample
  counts (first_eval · 10^(i/4): the grid of :func:`next_grid_point`); the "change" of the last level
  is kept as the convergence record, and chapter 11 audits the last points (below). Beside it, at
  the first evaluation of every decade and at the end, the
  importance-sampled estimate with the encoder as proposal (K = IS_K; AEVB and wake-sleep only).
  It is a stochastic lower bound, and a loose one once the encoder overfits (chapter 11 tabulates
  exact − IS at every such point).

Cost on this machine's CPU (1 thread, the book's runs with both cores busy; the curves' train_seconds
and eval_seconds): AEVB about 3.6 s and MCEM about 21 s per 10^5 training samples, one evaluation of
2 × 500 images 2.5–5.5 minutes (``scripts/figure3.py --measure`` measures the training costs afresh).
Every run, on either device, evaluates the same n_eval = 500 images of each set.

A box converges on what it integrates: a posterior mode outside it is missed and the value is too
low while looking converged. Chapter 11 audits the last point of every run with
:func:`vae_lib.figure3_scoring.reference_log_likelihood` (two differently placed boxes, ``QUADRATURE_REFERENCE``) and
tabulates, per run, how far the curve's values lie from it.
"""

from __future__ import annotations

import json
import math
import os
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import torch

from .algorithms import update_rule
from .data import fixed_binarization, load_mnist
from .mcem import MCEMConfig, MonteCarloEM, decoder_parameters, mcem_optimizer
from .model import PAPER_INIT_STD, VAE, VAEConfig
from .figure3_curves import ALGORITHMS, CURVE_FORMAT, curve_path, read_curve
from .figure3_scoring import IS_K, exact_log_likelihood, importance_estimate, quadrature_settings
from .run_files import write_json
from .utils import describe_device

TRAIN_SIZES = (1000, 50000)
LATENT, HIDDEN, BATCH, LR, INIT_STD = 3, 100, 100, 0.02, PAPER_INIT_STD
FIRST_EVAL = 10 ** 4
CHECKPOINT_FORMAT = "vae_lib.figure3_checkpoint/1"


@dataclass(frozen=True)
class Figure3Run:
    """One panel line of Figure 3: an algorithm and a training-set size."""

    algorithm: str
    n_train: int

    def __post_init__(self) -> None:
        if self.algorithm not in ALGORITHMS:
            raise ValueError(f"unknown algorithm {self.algorithm!r}; choose one of {ALGORITHMS}")
        if not 1 <= self.n_train <= 60000:
            raise ValueError(f"n_train must lie in [1, 60000], got {self.n_train}")

    @property
    def name(self) -> str:
        return f"fig3_{self.algorithm}_n{self.n_train}"

    def model_config(self) -> VAEConfig:
        return VAEConfig(data_dim=784, latent_dim=LATENT, hidden_sizes=(HIDDEN,), activation="tanh",
                         likelihood="bernoulli", init_std=INIT_STD)


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


def next_grid_point(samples: int, first_eval: int = FIRST_EVAL, per_decade: int = 4) -> int:
    """The smallest evaluation point first_eval · 10^(i / per_decade), i = 0, 1, …, above ``samples``
    (rounded to a whole minibatch)."""
    if per_decade < 1:
        raise ValueError(f"per_decade must be at least 1, got {per_decade}")
    i = max(0, math.floor(per_decade * math.log10(max(samples, 1) / first_eval) + 1e-9) + 1)
    while (point := round(first_eval * 10 ** (i / per_decade) / BATCH) * BATCH) <= samples:
        i += 1
    return point


class _State:
    """Everything a run carries between minibatches: model, optimizer, MCEM chains, generator, the
    epoch's permutation and position, samples seen, and the curve so far."""

    def __init__(self, run: Figure3Run, train_x: torch.Tensor, device: torch.device, mcem: MCEMConfig, lr: float = LR):
        torch.manual_seed(0)
        self.model = VAE(run.model_config()).to(device)
        params = decoder_parameters(self.model) if run.algorithm == "mcem" else self.model.parameters()
        self.optimizer = mcem_optimizer(params, lr, 1.0 / len(train_x))
        self.generator = torch.Generator(device=device).manual_seed(0)
        self.mc = (MonteCarloEM(len(train_x), LATENT, mcem, generator=self.generator, device=device)
                   if run.algorithm == "mcem" else None)
        self.perm = torch.randperm(len(train_x), generator=self.generator, device=device)
        self.position, self.samples, self.train_seconds = 0, 0, 0.0
        self.points: list[dict] = []
        self.reseeded = False

    def save(self, path: Path) -> None:
        payload = {"format": CHECKPOINT_FORMAT, "model": self.model.state_dict(), "optimizer": self.optimizer.state_dict(),
                   "mc": self.mc.state_dict() if self.mc else None, "generator": self.generator.get_state(),
                   "perm": self.perm, "position": self.position, "samples": self.samples,
                   "train_seconds": self.train_seconds, "points": json.dumps(self.points)}
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(".tmp")
        torch.save(payload, tmp)
        os.replace(tmp, path)

    def load(self, path: Path, device: torch.device) -> None:
        p = torch.load(path, map_location=device, weights_only=True)
        if p.get("format") != CHECKPOINT_FORMAT:
            raise ValueError(f"{path} is not a Figure 3 checkpoint")
        self.model.load_state_dict(p["model"])
        self.optimizer.load_state_dict(p["optimizer"])
        if self.mc:
            self.mc.load_state_dict(p["mc"])
        state = p["generator"].cpu()
        if state.numel() == self.generator.get_state().numel():
            self.generator.set_state(state)
        else:   # saved on another kind of device (a CUDA generator's state is not a CPU generator's)
            self.generator.manual_seed(int(p["samples"]))
            self.reseeded = True
        self.perm, self.position, self.samples = p["perm"].to(device), int(p["position"]), int(p["samples"])
        self.train_seconds, self.points = float(p["train_seconds"]), json.loads(p["points"])


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize()


def train_figure3_run(run: Figure3Run, samples: int, out_dir: str | os.PathLike, checkpoint_dir: str | os.PathLike,
                      root: str | os.PathLike | None = None, device: torch.device | str = "cpu", n_eval: int = 100,
                      time_limit: float | None = None, checkpoint_seconds: float = 120.0,
                      mcem: MCEMConfig = MCEMConfig(), first_eval: int = FIRST_EVAL, is_k: int = IS_K,
                      train_x: torch.Tensor | None = None, evals_per_decade: int = 4, lr: float = LR) -> dict:
    """Train (or resume from ``checkpoint_dir/<name>.pt``) ``run`` to at least ``samples`` training
    samples, evaluating at the grid first_eval · 10^(i / evals_per_decade) samples (the next grid value
    after the last evaluation, so a resumed run falls back on the grid; 4 per decade by default, the
    GPU's) and at the end, and write its curve to ``out_dir/<name>.json`` (rewritten after every
    evaluation; each point records its device, quadrature settings and the per-image values). ``time_limit`` seconds stop it early,
    resumably. ``train_x`` replaces the MNIST subset (tests); ``lr`` is Adagrad's global step size (the
    book's runs: ``LR``; :func:`vae_lib.figure3_cost.step_size_sweep` tries the paper's others). Returns the curve."""
    device = torch.device(device)
    start = time.perf_counter()
    if train_x is None:
        train_x, train_eval, test_eval = figure3_data(run.n_train, n_eval, root, device)
    else:
        _, _, test_eval = figure3_data(1, n_eval, root, device)
        train_eval = train_x[:n_eval]
    state = _State(run, train_x, device, mcem, lr)
    ckpt = Path(checkpoint_dir) / f"{run.name}.pt"
    out = curve_path(run, out_dir)
    if ckpt.exists():
        state.load(ckpt, device)
    previous = read_curve(out) if out.exists() else {}
    if previous and previous.get("n_eval") != n_eval:
        raise ValueError(f"{out} was evaluated on n_eval = {previous.get('n_eval')} images per set; resuming it with "
                         f"n_eval = {n_eval} would mix image sets in one curve (pass n_eval = {previous.get('n_eval')})")
    devices = list(previous.get("devices", []))
    here = describe_device(device)
    if not devices or devices[-1]["device"] != here:
        devices.append({"device": here, "from_samples": state.samples, "from_train_seconds": round(state.train_seconds, 2),
                        **({"generator": "reseeded with the sample count (state saved on another device)"}
                           if state.reseeded else {})})
    rule = None if run.algorithm == "mcem" else update_rule(run.algorithm)

    def write_curve() -> dict:
        curve = {"format": CURVE_FORMAT, **asdict(run), "name": run.name, "latent_dim": LATENT, "hidden": HIDDEN,
                 "step_size": lr, "batch_size": BATCH, "n_eval": n_eval, "quadrature": quadrature_settings(device),
                 "mcem": asdict(mcem) if run.algorithm == "mcem" else None, "devices": devices,
                 "target_samples": samples, "samples_seen": state.samples, "finished": state.samples >= samples,
                 "train_seconds": state.train_seconds, "points": state.points,
                 "written": time.strftime("%Y-%m-%d %H:%M:%S")}
        write_json(out, curve)
        return curve

    def evaluate(final: bool) -> None:
        state.model.eval()
        t0 = time.perf_counter()
        point = {"samples": state.samples, "train_seconds": round(state.train_seconds, 2), "device": here,
                 "quadrature": quadrature_settings(device),
                 "train": exact_log_likelihood(state.model, train_eval, run.algorithm),
                 "test": exact_log_likelihood(state.model, test_eval, run.algorithm)}
        decade = math.floor(math.log10(max(state.samples, 1)))
        first_of_decade = not any(math.floor(math.log10(max(p["samples"], 1))) == decade for p in state.points)
        if rule is not None and is_k and (final or first_of_decade):
            point["train_is"] = importance_estimate(state.model, train_eval, is_k)
            point["test_is"] = importance_estimate(state.model, test_eval, is_k)
        _sync(device)
        point["eval_seconds"] = round(time.perf_counter() - t0, 2)
        state.points = [p for p in state.points if p["samples"] != state.samples] + [point]
        state.model.train()

    def next_eval() -> float:
        if not state.points:
            return first_eval
        return next_grid_point(state.points[-1]["samples"], first_eval, evals_per_decade)

    last_save = time.perf_counter()
    stopped = False
    while state.samples < samples:
        if time_limit is not None and time.perf_counter() - start > time_limit:
            stopped = True
            break
        _sync(device)
        t0 = time.perf_counter()
        steps_until_eval = max(1, math.ceil((min(next_eval(), samples) - state.samples) / BATCH))
        for _ in range(min(steps_until_eval, 50)):
            if state.position >= len(state.perm):
                state.perm = torch.randperm(len(train_x), generator=state.generator, device=device)
                state.position = 0
            index = state.perm[state.position:state.position + BATCH]
            state.position += BATCH
            x = train_x[index]
            if state.mc is not None:
                state.mc.visit(state.model, state.optimizer, x, index, state.generator)
            else:
                loss, _ = rule.loss(state.model, x, rule.draw_noise(state.model, x, state.generator))
                state.optimizer.zero_grad(set_to_none=True)
                loss.backward()
                state.optimizer.step()
            state.samples += len(index)
        _sync(device)
        state.train_seconds += time.perf_counter() - t0
        if not all(torch.isfinite(p).all() for p in state.model.parameters()):
            raise FloatingPointError(f"{run.name}: non-finite weights at {state.samples} samples")
        if state.samples >= next_eval() or state.samples >= samples:
            evaluate(final=state.samples >= samples)
            write_curve()
        if time.perf_counter() - last_save > checkpoint_seconds:
            state.save(ckpt)
            last_save = time.perf_counter()
    if stopped and (not state.points or state.points[-1]["samples"] != state.samples):
        evaluate(final=True)
    state.save(ckpt)
    return write_curve()


def figure3_job(algorithm: str, n_train: int, samples: int, curves_dir: str, checkpoint_dir: str, threads: int = 1,
                device: str | None = None, n_eval: int = 500, evals_per_decade: int = 4,
                time_limit: float | None = None, **options) -> dict:
    """One Figure 3 run as a sweep job (:mod:`vae_lib.sweep`): trains it to ``samples`` from its checkpoint
    (checkpointing every minute) with ``threads`` torch threads, prints and returns a summary of its last point.
    ``options`` go to :func:`train_figure3_run` (a smoke run's ``first_eval``, ``is_k``)."""
    from .utils import pick_device

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
    """The model of ``run``'s checkpoint in ``checkpoint_dir`` and its training samples."""
    path = Path(checkpoint_dir) / f"{run.name}.pt"
    if not path.exists():
        raise FileNotFoundError(f"no checkpoint {path}: train the run with python scripts/figure3.py")
    p = torch.load(path, map_location=device, weights_only=True)
    if p.get("format") != CHECKPOINT_FORMAT:
        raise ValueError(f"{path} is not a Figure 3 checkpoint")
    model = VAE(run.model_config()).to(device)
    model.load_state_dict(p["model"])
    return model.eval(), int(p["samples"])



"""Posterior collapse as it happens: the KL each latent unit carries after every epoch of a run of
*Beyond the paper* (:mod:`vae_lib.runs.beyond`), for the plain VAE and the cures of chapter 12.

The committed runs keep only their final KL per unit. Training is deterministic given the run's seed
(:func:`vae_lib.training.train.train_model`: the initialization, the minibatch order and every draw come from
it), so re-training the first E epochs of run ``name`` of ``runs_at(budget)`` — its configuration unchanged,
the budget's schedules included, stopped after E epochs' samples — retraces exactly the first E epochs of the
committed run. :func:`trace_run` does it in one :func:`~vae_lib.training.train.fit` call with a
:class:`~vae_lib.training.training_run.Monitor` that looks at the model at the end of every epoch:

- the mean KL of every latent unit (:func:`~vae_lib.model.kl_control.mean_kl_per_dimension`; their sum is the
  rate R) and its activity Cov_x E_q[z_u] (:func:`~vae_lib.model.kl_control.unit_activity`), on a seeded random
  draw of test images (:func:`~vae_lib.runs.beyond.eval_indices` with :data:`TRACE_SEED`), binarized once as
  :func:`~vae_lib.runs.beyond.score_run` does;
- the epoch's test bound and rate on the whole test set — the numbers the run's history records, so they can
  be compared epoch by epoch with the committed checkpoint's (:func:`compare_with_checkpoint`), and, when E is
  the budget, the last KL per unit with the committed model's on the same images.

``scripts/collapse_trace.py`` traces the runs into ``results/beyond_e<budget>/collapse_trace.json``;
:func:`vae_lib.figures.beyond_plots.plot_collapse` draws it. Not resumable: about 4 s per epoch of the
full-size model on one CPU core, 2–3 minutes per run for 30 epochs.
"""

from __future__ import annotations

import math
import os
import time
from dataclasses import asdict, replace
from pathlib import Path
from typing import Callable, Sequence

import torch

from vae_lib.base.params import check_int
from vae_lib.base.run_files import read_json, write_json
from vae_lib.model.data import load_mnist
from vae_lib.model.kl_control import mean_kl_per_dimension, unit_activity
from vae_lib.model.pixels import observe
from vae_lib.model.vae import VAE
from vae_lib.runs.beyond import BeyondRun, eval_indices, get_run
from vae_lib.training.train import TEST_SEED, TrainConfig, load_checkpoint, read_checkpoint, train_model
from vae_lib.training.training_run import TrainingRun

TRACE_FORMAT = "vae_lib.collapse_trace/1"
#: The seed of the traced test images: a seeded draw of their own (not the scored runs' EVAL_SEED).
TRACE_SEED = 4321
EVAL_IMAGES = 1000          # ... this many of them
DEFAULT_RUNS = ("beta_1", "warmup", "free_bits", "cyclical")
USED_NATS = 0.1             # a unit carrying more than this at the end is drawn in colour (plot_collapse)


class EpochTrace:
    """A :class:`~vae_lib.training.training_run.Monitor` that records, at the end of every epoch, the KL and
    the activity of each latent unit on the observations ``obs`` and the run's test bound and rate (the entry
    :func:`~vae_lib.training.train.fit` has just appended to its History). A stop mid-epoch (a time limit) is
    not recorded. It keeps nothing in a checkpoint: a trace is not resumed."""

    def __init__(self, obs: torch.Tensor, log: Callable[[str], None] | None = None, label: str = "") -> None:
        self.obs, self.log, self.label = obs, log, label
        self.epochs: list[dict] = []
        self.n = 0
        self.t0 = time.perf_counter()

    def begin(self, run: TrainingRun) -> None:
        self.n, self.t0 = run.n, time.perf_counter()

    def next_eval(self) -> int:
        return (len(self.epochs) + 1) * self.n

    @torch.no_grad()
    def evaluate(self, run: TrainingRun, final: bool) -> None:
        if run.samples < self.next_eval() or run.position:   # stopped mid-epoch by the time limit
            return
        model = run.model
        was_training = model.training
        model.eval()
        kl = mean_kl_per_dimension(model, self.obs)
        activity = unit_activity(model, self.obs)
        model.train(was_training)
        history = run.history
        entry = {"epoch": run.epoch, "kl_per_unit": kl.tolist(), "unit_activity": activity.tolist(),
                 "test_bound": history.test_bound[-1] if history.test_bound else math.nan,
                 "test_rate": history.test_rate[-1] if history.test_rate else math.nan}
        self.epochs.append(entry)
        if self.log is not None:
            self.log(f"{self.label}epoch {run.epoch}: test bound {entry['test_bound']:.2f}, rate {sum(entry['kl_per_unit']):.2f} "
                     f"nats, {sum(k > USED_NATS for k in entry['kl_per_unit'])} units above {USED_NATS} nats "
                     f"({time.perf_counter() - self.t0:.0f} s)")

    def state_dict(self) -> dict:
        return {}

    def load_state_dict(self, state: dict) -> None:
        pass


def trace_images(test_x: torch.Tensor, eval_images: int = EVAL_IMAGES) -> torch.Tensor:
    """The traced observations: the test set binarized once as :func:`~vae_lib.runs.beyond.score_run` does
    (fixed, seed TEST_SEED), then a seeded random draw (:data:`TRACE_SEED`) of ``eval_images`` of them."""
    check_int("eval_images", eval_images, 1, len(test_x))
    obs = observe(test_x, "fixed", seed=TEST_SEED)
    return obs[eval_indices(len(test_x), eval_images, seed=TRACE_SEED).to(obs.device)]


def trace_run(run: BeyondRun, epochs: int, train_x: torch.Tensor, test_x: torch.Tensor,
              eval_images: int = EVAL_IMAGES, deadline: float | None = None,
              log: Callable[[str], None] | None = print) -> tuple[VAE, dict]:
    """Re-train ``run`` (its configuration as it is, so its KL schedule is the budget's) for its first
    ``epochs`` epochs on grey levels ``train_x`` and trace it after every epoch (:class:`EpochTrace`) on
    :func:`trace_images` of ``test_x``. ``deadline`` (a ``time.time()`` timestamp) stops training after the
    whole epochs done by then (``finished`` False); ``log`` prints a line per epoch (None: silent).
    Returns the model and the run's record: its name, label, configurations, the epochs asked for and one entry
    per epoch done (epoch, KL and activity per unit, test bound and rate)."""
    check_int("epochs", epochs, 1)
    if epochs > run.train.epochs:
        raise ValueError(f"run {run.name!r} has {run.train.epochs} epochs at this budget; cannot trace {epochs}")
    device = train_x.device
    monitor = EpochTrace(trace_images(test_x.to(device), eval_images), log, f"{run.name}: ")
    left = None if deadline is None else deadline - time.time()
    t0 = time.perf_counter()
    if left is not None and left <= 0:   # the deadline passed before the run started: train nothing
        torch.manual_seed(run.train.seed)
        model = VAE(run.model).to(device)
    else:
        model, _ = train_model(run.model, run.train, train_x, test_x, device=device, show_progress=False,
                               monitor=monitor, samples=epochs * len(train_x), time_limit=left)
    record = {"name": run.name, "label": run.label, "model_config": asdict(run.model),
              "train_config": asdict(run.train), "epochs": epochs, "finished": len(monitor.epochs) == epochs,
              "seconds": time.perf_counter() - t0, "trace": monitor.epochs}
    return model, record


def trace_units(name: str, epochs: int, budget: int = 100, data_dir: str | None = None,
                eval_images: int = EVAL_IMAGES, device: str = "cpu", deadline: float | None = None,
                log: Callable[[str], None] | None = print) -> dict:
    """The record of run ``name`` of ``runs_at(budget)`` traced over its first ``epochs`` epochs on MNIST
    (:func:`trace_run`, read from ``data_dir`` or $VAE_DATA_DIR)."""
    run = get_run(name, budget)
    train = load_mnist("train", data_dir, device=device)
    test = load_mnist("test", data_dir, device=device)
    return trace_run(run, epochs, train.x, test.x, eval_images, deadline, log)[1]


def trace_payload(records: Sequence[dict], budget: int, epochs: int, eval_images: int) -> dict:
    """The results file's content: format, the run names, budget, epochs, the traced images, and each run's
    record (:func:`trace_run`) by name."""
    return {"format": TRACE_FORMAT, "names": [r["name"] for r in records], "budget": budget, "epochs": epochs,
            "eval_images": eval_images, "eval_seed": TRACE_SEED, "binarization": f"fixed, seed {TEST_SEED}",
            "finished": all(r["finished"] for r in records), "traces": {r["name"]: r for r in records}}


def write_trace(path: str | os.PathLike, names: Sequence[str], epochs: int, budget: int = 100,
                data_dir: str | None = None, eval_images: int = EVAL_IMAGES, device: str = "cpu",
                deadline: float | None = None, log: Callable[[str], None] | None = print) -> Path:
    """Trace runs ``names`` one after the other (:func:`trace_units`) and write the file at ``path``
    (:func:`~vae_lib.base.run_files.write_json`, atomic; rewritten after each run, so a deadline leaves the runs
    done so far). Returns the path."""
    names = list(dict.fromkeys(names))
    for name in names:
        get_run(name, budget)   # an unknown name fails before anything trains
    check_int("epochs", epochs, 1, budget)
    records: list[dict] = []
    for name in names:
        records.append(trace_units(name, epochs, budget, data_dir, eval_images, device, deadline, log))
        write_json(path, trace_payload(records, budget, epochs, eval_images), indent=None)
        if log is not None:
            log(f"{name}: {len(records[-1]['trace'])} of {epochs} epochs in {records[-1]['seconds']:.0f} s -> {path}")
    return Path(path)


def read_trace(path: str | os.PathLike) -> dict:
    """The trace file at ``path``, checked: its format, and for every run one entry per epoch done, each with
    as many finite, non-negative KLs as activities. A ValueError (FileNotFoundError) names the file."""
    data = read_json(path, TRACE_FORMAT, "a collapse trace", "run python scripts/collapse_trace.py")
    traces = data.get("traces")
    if not isinstance(traces, dict) or list(traces) != data.get("names"):
        raise ValueError(f"{path}: 'traces' does not hold the runs of 'names'")
    for name, record in traces.items():
        for i, entry in enumerate(record.get("trace") or []):
            kl, act = entry.get("kl_per_unit"), entry.get("unit_activity")
            if (entry.get("epoch") != i + 1 or not isinstance(kl, list) or not isinstance(act, list) or len(kl) != len(act)
                    or not kl or not all(isinstance(v, (int, float)) and math.isfinite(v) and v >= 0 for v in kl + act)):
                raise ValueError(f"{path}: run {name!r}, entry {i} is not epoch {i + 1}'s KL and activity per unit")
    return data


def compare_with_checkpoint(record: dict, checkpoint: str | os.PathLike, test_x: torch.Tensor | None = None,
                            eval_images: int = EVAL_IMAGES) -> dict:
    """How far a traced record lies from the committed run it retraces: the largest difference between its
    test bounds and the checkpoint history's, epoch by epoch (any E ≤ budget); and, when the trace reached the
    checkpoint's last epoch and ``test_x`` is given, the largest difference between its last KL per unit and the
    checkpoint's model's on the same traced images (None otherwise). Both 0 when training is deterministic."""
    payload = read_checkpoint(checkpoint)
    saved = TrainConfig.from_dict(dict(payload["train_config"] or {}))
    traced = TrainConfig.from_dict(record["train_config"])
    if replace(saved, epochs=traced.epochs) != traced:
        raise ValueError(f"checkpoint {checkpoint} does not hold the traced run {record['name']!r}")
    history = payload["history"]
    bounds = dict(zip(history["epoch"], history["test_bound"]))
    pairs = [(e["test_bound"], bounds[e["epoch"]]) for e in record["trace"] if e["epoch"] in bounds]
    out = {"epochs_compared": len(pairs), "max_test_bound_difference": max((abs(a - b) for a, b in pairs), default=None),
           "max_kl_difference": None}
    if test_x is not None and record["trace"] and record["trace"][-1]["epoch"] == history["epoch"][-1]:
        model = load_checkpoint(checkpoint, test_x.device)[0].eval()
        kl = mean_kl_per_dimension(model, trace_images(test_x, eval_images))
        out["max_kl_difference"] = float((kl.cpu() - torch.tensor(record["trace"][-1]["kl_per_unit"])).abs().max())
    return out

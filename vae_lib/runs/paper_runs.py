"""The paper's Figure 2 runs — Kingma & Welling (2013), Section 5 — as named, resumable runs whose
learning curves are small JSON files: AEVB and wake-sleep at every latent size, MNIST and Frey Face.
Their setup (the paper's Section 5 and Appendix C: model, optimizer, initialization, data) is
:mod:`vae_lib.runs.figure2_setup`'s; the step size is picked here
(:func:`pick_step_size`), as the paper did, by the training bound after the first iterations.
"""

from __future__ import annotations

import json
import math
import os
import time
from dataclasses import asdict, replace
from pathlib import Path

import torch

from vae_lib.model.data import Split
from vae_lib.runs.figure2_setup import PaperRun, paper_data
from vae_lib.base.run_files import read_json, write_json
from vae_lib.base.statistics import value_at
from vae_lib.base.utils import describe_device
from vae_lib.model.objectives import bound_standard_error
from vae_lib.training.train import fit, read_checkpoint

__all__ = [
    "STEP_SIZES", "SWEEP_SAMPLES", "EVAL_GROWTH", "CURVE_FORMAT", "REFERENCE_FILE", "pick_step_size", "curve_path",
    "CURVE_LISTS", "read_curve", "train_paper_run", "figure2_job", "paper_reference", "figure2_table",
    "finalize_curve",
]

STEP_SIZES = (0.01, 0.02, 0.1)          # the paper's candidates for Adagrad's global step size
SWEEP_SAMPLES = 60_000                   # "the first iterations": 600 minibatches of 100
EVAL_GROWTH = 10 ** 0.1                  # ten evaluations per decade of training samples
CURVE_FORMAT = "vae_lib.curve/1"
REFERENCE_FILE = Path(__file__).with_name("paper_values.json")


def pick_step_size(run: PaperRun, train_x: torch.Tensor, step_sizes: tuple[float, ...] = STEP_SIZES,
                   sweep_samples: int = SWEEP_SAMPLES) -> dict[float, float]:
    """The paper's step-size choice: from the seeded initialization, train ``sweep_samples`` samples
    with each step size and return {step size: mean bound on that training stream}; a diverged run
    scores −inf."""
    scores = {}
    for lr in step_sizes:
        config = run.train_config(len(train_x), sweep_samples, lr)
        torch.manual_seed(config.seed)
        from vae_lib.model.vae import VAE
        model = VAE(run.model_config()).to(train_x.device)
        try:
            history = fit(model, train_x, None, config, show_progress=False, eval_growth=1e9)
            scores[lr] = history.train_bound[-1]
        except FloatingPointError:
            scores[lr] = -math.inf
    return scores


def curve_path(run: PaperRun, out_dir: str | os.PathLike) -> Path:
    return Path(out_dir) / f"{run.name}.json"


CURVE_LISTS = ("samples_seen", "train_bound", "test_bound", "seconds")


def read_curve(path: str | os.PathLike, run: PaperRun | None = None) -> dict:
    """A Figure 2 learning curve written by :func:`train_paper_run` (a dict of lists and scalars). Checked,
    as Figure 3's are (:func:`vae_lib.runs.figure3_curves.read_curve`): a file that is not JSON (truncated), not
    a curve, whose lists differ in length, or that holds a non-finite bound — or, with ``run``, belongs to
    another run — raises a ValueError that names the file and the fault."""
    path = Path(path)
    curve = read_json(path, CURVE_FORMAT, "a Figure 2 learning curve", "python scripts/figure2.py writes it")
    if run is not None and any(curve.get(k) != v for k, v in (("name", run.name), ("dataset", run.dataset),
                                                               ("algorithm", run.algorithm), ("latent_dim", run.latent_dim))):
        raise ValueError(f"{path} holds the curve of {curve.get('name')!r}, not of {run.name!r}")
    lengths = {k: len(curve.get(k) or []) for k in CURVE_LISTS}
    if len(set(lengths.values())) != 1:
        raise ValueError(f"{path}: its lists differ in length ({lengths}); the file was cut or edited")
    for part in ("train_bound", "test_bound"):
        for samples, value in zip(curve["samples_seen"], curve[part]):
            if not isinstance(value, (int, float)) or not math.isfinite(value):
                raise ValueError(f"{path}: the {part.replace('_', ' ')} at {samples} samples is not finite ({value})")
    return curve


def train_paper_run(run: PaperRun, samples: int, out_dir: str | os.PathLike, checkpoint_dir: str | os.PathLike,
                    root: str | os.PathLike | None = None, device: torch.device | str = "cpu",
                    show_progress: bool = False, step_mode: str = "eager",
                    checkpoint_seconds: float = 120.0, time_limit: float | None = None,
                    limit_train: int | None = None, sweep_samples: int = SWEEP_SAMPLES) -> dict:
    """Train (or resume) ``run`` to at least ``samples`` training samples and write its curve to
    ``out_dir/<name>.json``: samples seen, train and test bound, seconds, device. The step size is
    picked once (:func:`pick_step_size`) and kept in the curve file, so a resumed or lengthened run
    keeps it. ``time_limit`` (seconds) stops the run early, resumably (:func:`vae_lib.training.train.fit`);
    ``limit_train`` trains on a seeded random subset of that many images (smoke runs only).
    Returns the curve."""
    device = torch.device(device)
    train, test, train_eval_x = paper_data(run.dataset, root, device, run.holdout)
    if limit_train is not None:
        pick = torch.randperm(len(train), generator=torch.Generator().manual_seed(1))[:limit_train]
        train = Split(train.x[pick.to(train.x.device)], None, train.image_shape)
        train_eval_x = train.x
    out, path = curve_path(run, out_dir), Path(checkpoint_dir) / f"{run.name}.pt"
    out.parent.mkdir(parents=True, exist_ok=True)
    previous = read_curve(out, run) if out.exists() else None
    if previous is not None:  # a curve rebuilt from a stopped run's checkpoint keeps its step size, not its sweep
        sweep = {float(k): v for k, v in previous["step_size_sweep"].items()}
        lr = max(sweep, key=sweep.get) if sweep else float(previous["step_size"])
    else:
        sweep = pick_step_size(run, train.x, sweep_samples=sweep_samples)
        lr = max(sweep, key=sweep.get)
    config = run.train_config(len(train), samples, lr)
    if path.exists():  # lengthen: the checkpoint's own epochs count may be smaller than asked
        config = replace(config, epochs=max(config.epochs, int(read_checkpoint(path)["epochs_done"])))
    torch.manual_seed(config.seed)
    from vae_lib.model.vae import VAE
    model = VAE(run.model_config()).to(device)
    history = fit(model, train.x, test.x, config, checkpoint=path, checkpoint_every=10 ** 9,
                  checkpoint_seconds=checkpoint_seconds, show_progress=show_progress, desc=run.name,
                  eval_growth=EVAL_GROWTH, train_eval_x=train_eval_x, step_mode=step_mode, time_limit=time_limit)
    devices = list(previous.get("devices", [])) if previous else []
    here = describe_device(device)
    if not devices or devices[-1]["device"] != here:
        devices.append({"device": here, "from_samples": int(previous["samples_seen"][-1]) if previous else 0})
    curve = {"format": CURVE_FORMAT, **asdict(run), "name": run.name, "step_size": lr,
             "step_size_sweep": {str(k): v for k, v in sweep.items()}, "n_train": len(train), "n_test": len(test),
             "train_bound_on": "training stream" if train_eval_x is None else f"{len(train_eval_x)} training images",
             "devices": devices, "step_mode": step_mode, "target_samples": samples,
             "finished": history.samples_seen[-1] >= samples, "samples_seen": history.samples_seen, "train_bound": history.train_bound,
             "test_bound": history.test_bound, "seconds": history.seconds,
             "written": time.strftime("%Y-%m-%d %H:%M:%S")}
    write_json(out, curve)
    return curve


def figure2_job(dataset: str, algorithm: str, latent_dim: int, samples: int, curves_dir: str, checkpoint_dir: str,
                threads: int = 1, device: str | None = None, time_limit: float | None = None,
                holdout: str = "random", show_progress: bool = True, **options) -> dict:
    """One Figure 2 run as a sweep job (:mod:`vae_lib.base.sweep`): trains it to ``samples`` from its checkpoint with
    ``threads`` torch threads, prints and returns a summary of its curve. ``options`` go to
    :func:`train_paper_run` (the GPU's ``step_mode``, a smoke run's ``limit_train``)."""
    from vae_lib.base.utils import pick_device

    torch.set_num_threads(threads)
    run, start = PaperRun(dataset, algorithm, latent_dim, holdout), time.perf_counter()
    curve = train_paper_run(run, samples, curves_dir, checkpoint_dir, device=pick_device(device),
                            show_progress=show_progress, time_limit=time_limit, **options)
    summary = {"name": run.name, "samples": curve["samples_seen"][-1], "step_size": curve["step_size"],
               "train": curve["train_bound"][-1], "test": curve["test_bound"][-1], "seconds": time.perf_counter() - start}
    print(f"{run.name}: {summary['samples']:.3g} samples, step size {summary['step_size']}, train {summary['train']:.2f}, "
          f"test {summary['test']:.2f}, {summary['seconds']:.0f} s in this call", flush=True)
    return summary


def paper_reference() -> dict:
    """The values read off the paper's figures (vae_lib/runs/paper_values.json, with its citation)."""
    return json.loads(REFERENCE_FILE.read_text())


def figure2_table(curves: list[dict], reference: dict) -> list[dict]:
    """One row per curve: the test bound at 10^6 and 10^7 samples (interpolated on log samples) and at
    the end of the run, with the paper's read-off values beside them."""
    rows = []
    for c in sorted(curves, key=lambda c: (c["dataset"], c["algorithm"], c["latent_dim"])):
        paper = reference["figure2"][c["algorithm"]][c["dataset"]].get(str(c["latent_dim"]), {})
        rows.append({"dataset": c["dataset"], "algorithm": c["algorithm"], "latent_dim": c["latent_dim"],
                     "test_1e6": value_at(c["samples_seen"], c["test_bound"], 1e6),
                     "test_1e7": value_at(c["samples_seen"], c["test_bound"], 1e7),
                     "samples_end": c["samples_seen"][-1], "train_end": c["train_bound"][-1],
                     "test_end": c["test_bound"][-1], "test_end_se": c.get("test_bound_se", math.nan),
                     "paper_test_1e7": paper.get("test_1e7", math.nan), "paper_test_end": paper.get("test_end", math.nan),
                     "minutes": c["seconds"][-1] / 60, "device": c["devices"][-1]["device"]})
    return rows


def finalize_curve(run: PaperRun, out_dir: str | os.PathLike, checkpoint_dir: str | os.PathLike,
                   root: str | os.PathLike | None = None, device: torch.device | str = "cpu",
                   trained_on: str | None = None) -> dict:
    """Write ``run``'s curve from its checkpoint (also for a run that was stopped before its end) and add
    the standard error of its last test bound (:func:`vae_lib.model.objectives.bound_standard_error`). ``trained_on`` names the device
    that trained a run whose curve file was never written (a stopped run). Returns the curve."""
    from vae_lib.model.pixels import observe
    from vae_lib.training.train import TEST_SEED, load_checkpoint

    path = Path(checkpoint_dir) / f"{run.name}.pt"
    model, history, payload = load_checkpoint(path, device)
    out = curve_path(run, out_dir)
    curve = read_curve(out, run) if out.exists() else {
        "format": CURVE_FORMAT, **asdict(run), "name": run.name, "step_size": payload["train_config"]["lr"],
        "step_size_sweep": {}, "devices": [{"device": trained_on or "unknown (curve rebuilt from its checkpoint)",
                                             "from_samples": 0}]}
    _, test, _ = paper_data(run.dataset, root, device, run.holdout)
    test_obs = observe(test.x, payload["train_config"]["eval_protocol"], seed=TEST_SEED)
    mean, se = bound_standard_error(model, test_obs, seed=TEST_SEED)
    curve.update({"samples_seen": history.samples_seen, "train_bound": history.train_bound,
                  "test_bound": history.test_bound, "seconds": history.seconds, "test_bound_se": se,
                  "finished": int(payload.get("epochs_done", 0)) >= int(payload["train_config"]["epochs"])})
    out.parent.mkdir(parents=True, exist_ok=True)
    write_json(out, curve)
    return curve

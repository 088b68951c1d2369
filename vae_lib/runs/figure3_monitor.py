"""Figure 3's curve, recorded while a run trains: the grid of evaluation points (log-spaced in training
samples) and :class:`Figure3Monitor`, the :class:`~vae_lib.training.training_run.Monitor` that the driver
(:func:`vae_lib.training.train.fit`) calls there — the exact log p(x) of the evaluation images
(:mod:`vae_lib.runs.figure3_scoring`), the importance-sampled estimate beside it at some points, the curve file
rewritten after every evaluation (:mod:`vae_lib.runs.figure3_curves` reads it back, checked)."""

from __future__ import annotations

import json
import math
import time
from dataclasses import asdict
from pathlib import Path

import torch

from vae_lib.base.run_files import write_json
from vae_lib.base.utils import describe_device
from vae_lib.training.training_run import TrainingRun
from vae_lib.runs.figure3_curves import CURVE_FORMAT, Run
from vae_lib.runs.figure3_scoring import exact_log_likelihood, importance_estimate, quadrature_settings

FIRST_EVAL = 10 ** 4


def next_grid_point(samples: int, first_eval: int = FIRST_EVAL, per_decade: int = 4, batch: int = 100) -> int:
    """The smallest evaluation point first_eval · 10^(i / per_decade), i = 0, 1, …, above ``samples``
    (rounded to a whole minibatch of ``batch``, Figure 3's M = 100)."""
    if per_decade < 1:
        raise ValueError(f"per_decade must be at least 1, got {per_decade}")
    i = max(0, math.floor(per_decade * math.log10(max(samples, 1) / first_eval) + 1e-9) + 1)
    while (point := round(first_eval * 10 ** (i / per_decade) / batch) * batch) <= samples:
        i += 1
    return point


class Figure3Monitor:
    """Figure 3's curve as a :class:`~vae_lib.training.training_run.Monitor` of the driver: the exact log p(x) of the
    evaluation images at the grid's sample counts (:func:`next_grid_point` after the last point), the
    importance-sampled estimate beside it at the first point of every decade and at the end (AEVB and
    wake-sleep), each point with its device and quadrature settings; the curve file rewritten after every
    evaluation, the points kept in the run's checkpoint and the device history in the curve."""

    def __init__(self, run: Run, train_eval: torch.Tensor, test_eval: torch.Tensor, out: Path,
                 settings: dict, devices: list[dict], first_eval: int, per_decade: int, is_k: int):
        self.run, self.train_eval, self.test_eval, self.out = run, train_eval, test_eval, out
        self.settings, self.devices, self.points = settings, devices, []
        self.samples_seen, self.train_seconds = 0, 0.0
        self.first_eval, self.per_decade, self.is_k = first_eval, per_decade, is_k
        self.here = describe_device(train_eval.device)

    def begin(self, run: TrainingRun) -> None:
        """A device's segment starts here (where the last one ran elsewhere)."""
        self.samples_seen, self.train_seconds = run.samples, run.train_seconds
        if not self.devices or self.devices[-1]["device"] != self.here:
            self.devices.append({"device": self.here, "from_samples": run.samples,
                                 "from_train_seconds": round(run.train_seconds, 2),
                                 **({"generator": "reseeded with the sample count (state saved on another device)"}
                                    if run.reseeded else {})})

    def next_eval(self) -> int:
        if not self.points:
            return self.first_eval
        return next_grid_point(self.points[-1]["samples"], self.first_eval, self.per_decade,
                               self.settings["batch_size"])

    def evaluate(self, run: TrainingRun, final: bool) -> None:
        model, device, samples = run.model, run.device, run.samples
        model.eval()
        t0 = time.perf_counter()
        point = {"samples": samples, "train_seconds": round(run.train_seconds, 2), "device": self.here,
                 "quadrature": quadrature_settings(device),
                 "train": exact_log_likelihood(model, self.train_eval, self.run.algorithm),
                 "test": exact_log_likelihood(model, self.test_eval, self.run.algorithm)}
        decade = math.floor(math.log10(max(samples, 1)))
        first_of_decade = not any(math.floor(math.log10(max(p["samples"], 1))) == decade for p in self.points)
        if self.run.algorithm != "mcem" and self.is_k and (final or first_of_decade):
            point["train_is"] = importance_estimate(model, self.train_eval, self.is_k)
            point["test_is"] = importance_estimate(model, self.test_eval, self.is_k)
        if device.type == "cuda":
            torch.cuda.synchronize()
        point["eval_seconds"] = round(time.perf_counter() - t0, 2)
        self.points = [p for p in self.points if p["samples"] != samples] + [point]
        model.train()
        self.samples_seen, self.train_seconds = samples, run.train_seconds
        self.write()

    def write(self) -> dict:
        """Write the curve file; returns the curve."""
        target = self.settings["target_samples"]
        curve = {"format": CURVE_FORMAT, **asdict(self.run), "name": self.run.name, **self.settings,
                 "devices": self.devices, "samples_seen": self.samples_seen, "finished": self.samples_seen >= target,
                 "train_seconds": self.train_seconds, "points": self.points, "written": time.strftime("%Y-%m-%d %H:%M:%S")}
        write_json(self.out, curve)
        return curve

    def state_dict(self) -> dict:
        return {"points": json.dumps(self.points)}

    def load_state_dict(self, state: dict) -> None:
        self.points = json.loads(state["points"])

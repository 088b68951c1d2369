"""One training run's state and the steps that move it — the engine under :func:`vae_lib.training.train.fit`,
built from what its :class:`~vae_lib.training.train_config.TrainConfig` names (:mod:`vae_lib.training.training_step`; for
Monte Carlo EM the rule with per-example state, :class:`~vae_lib.training.mcem.MCEMRule`): the divergence guard,
the :class:`Monitor` a run may carry (what it records
at sample counts of its own choosing: Figure 3's curve), and :class:`TrainingRun`: a run resumed from its
checkpoint — mid-epoch too —, steps up to a sample count, an evaluation into its history, a save that
refuses non-finite weights."""

from __future__ import annotations

import math
import os
import time
from pathlib import Path
from typing import Protocol

import torch

from vae_lib.model.pixels import observe
from vae_lib.model.vae import VAE
from vae_lib.training.algorithms import update_rule
from vae_lib.training.checkpoints import (check_finite_weights, check_resumable, check_same_data, data_fingerprint,
                                          read_checkpoint, save_checkpoint)
from vae_lib.training.mcem import MCEMRule
from vae_lib.training.train_config import TEST_SEED, History, TrainConfig
from vae_lib.training.training_step import evaluate, make_optimizer, make_schedule, make_step

# A finite bound has diverged when it falls below −100 nats per pixel (−78,400 per MNIST image; an untrained
# model scores about −550), or more than 10 × max(|best|, D) nats below the best so far.
DIVERGED_NATS_PER_PIXEL = 100.0
DIVERGED_DROP = 10.0


class Monitor(Protocol):
    """What a run records beside its History, at sample counts of its own choosing — mid-epoch too — and
    keeps in the run's checkpoint (Figure 3's curve of exact log p(x): :class:`vae_lib.runs.figure3_monitor.Figure3Monitor`).
    :func:`vae_lib.training.train.fit` calls ``begin`` once the run is resumed, trains up to ``next_eval()`` samples
    and calls ``evaluate`` there, at the end and where a time limit stops the run."""

    def begin(self, run: "TrainingRun") -> None: ...

    def next_eval(self) -> int: ...

    def evaluate(self, run: "TrainingRun", final: bool) -> None: ...

    def state_dict(self) -> dict: ...

    def load_state_dict(self, state: dict) -> None: ...


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize()


class TrainingRun:
    """One call of :func:`vae_lib.training.train.fit` once its inputs are checked: the run's state — model, optimizer, step-size
    schedule, generator, MCEM's chains where the rule is MCEM, the epoch's order and the position in it, samples
    seen, training seconds, the training stream's sums since the last evaluation, the history, a monitor's record —
    resumed from the checkpoint where there is one, and what a run does with it: steps up to a sample count, an
    evaluation into the history, a save that refuses non-finite weights."""

    def __init__(self, model: VAE, train_x: torch.Tensor, test_x: torch.Tensor | None, config: TrainConfig,
                 checkpoint: str | os.PathLike | None, train_eval_x: torch.Tensor | None, step_mode: str,
                 monitor: Monitor | None = None) -> None:
        self.model, self.config, self.monitor = model, config, monitor
        self.device = device = next(model.parameters()).device
        self.train_x, self.test_obs, self.train_obs = train_x.to(device), None, None
        self.train_data: dict | None = data_fingerprint(self.train_x)   # saved; a resume checks it
        if test_x is not None:
            self.test_obs = observe(test_x.to(device), config.eval_protocol, seed=TEST_SEED)
        if train_eval_x is not None:
            self.train_obs = observe(train_eval_x.to(device), config.eval_protocol, seed=TEST_SEED)
        graph_mode = step_mode == "graphed"
        if graph_mode and (config.lr_schedule != "constant" or not config.is_plain_elbo or config.algorithm == "mcem"):
            raise ValueError("step_mode='graphed' needs a constant step size (lr_schedule='constant') and the plain "
                             "ELBO (beta 1, no KL schedule, no free bits) of a stateless rule (not MCEM): a captured "
                             "update cannot follow a schedule")
        self.optimizer = make_optimizer(model, config, capturable=graph_mode and device.type == "cuda")
        self.generator = torch.Generator(device=device).manual_seed(config.seed)
        self.mcem = (MCEMRule(len(self.train_x), model.latent_dim, config.mcem, self.generator, device)
                     if config.algorithm == "mcem" else None)   # its chains start from the prior, drawn first
        self.schedule = make_schedule(self.optimizer, config)
        self.step, self.draw_noise = (None, None) if self.mcem else make_step(model, self.optimizer, config, step_mode)
        self.history, self.start, elapsed = History(), 0, 0.0
        self.n = len(self.train_x)
        self.order: torch.Tensor | None = None   # this epoch's order of the training images, drawn at its start
        self.position, self.samples, self.train_seconds, self.reseeded = 0, 0, 0.0, False
        self.stream = torch.zeros(4, device=device)  # bound, rate, distortion sums and count since the last evaluation
        self.path = Path(checkpoint) if checkpoint is not None else None
        if self.path is not None and self.path.exists():
            elapsed = self._resume()
        self.epoch = self.start                     # whole epochs done
        self.t0 = time.perf_counter() - elapsed
        self.last_save = time.perf_counter()
        self.saved_samples = self.samples           # the samples the checkpoint on disk has seen
        self.graphed = None
        if graph_mode:
            from vae_lib.training.graphed import GraphedEpoch
            self.graphed = GraphedEpoch(model, self.optimizer, update_rule(config.algorithm, config.n_samples, config.estimator),
                                        config.protocol, self.n, config.batch_size, self.stream)

    def _resume(self) -> float:
        """Load the checkpoint's state into this run; returns its seconds of training so far."""
        path, config = self.path, self.config
        payload = read_checkpoint(path, self.device)
        check_finite_weights(path, payload)
        check_resumable(path, payload, self.model, config)
        check_same_data(path, payload, self.train_data)
        if "optimizer_state" not in payload:
            raise ValueError(f"checkpoint {path} holds a finished run's weights only (no optimizer state): it loads "
                             "(load_checkpoint) but cannot be trained further. Delete it to train the run afresh.")
        self.model.load_state_dict(payload["model_state"])
        self.optimizer.load_state_dict(payload["optimizer_state"])
        self.schedule.load_state_dict(payload["schedule_state"])
        self.history = History.from_dict(payload["history"])
        self.start = int(payload.get("epochs_done", len(self.history.epoch)))
        try:
            self.generator.set_state(payload["generator_state"].cpu())
        except RuntimeError:  # saved on another kind of device: its generator's state does not fit this one's
            self.generator.manual_seed(config.seed + 7919 * (self.start + 1))
            self.reseeded = True
        if "stream" in payload:
            self.stream = payload["stream"].to(self.device)
        if payload.get("order") is not None:    # saved mid-epoch: the epoch goes on in its own order
            self.order, self.position = payload["order"].to(self.device), int(payload["position"])
        self.samples = int(payload.get("samples_done", self.start * self.n + self.position))
        self.train_seconds = float(payload.get("train_seconds", 0.0))
        if self.mcem is not None:
            self.mcem.load_state_dict(payload["mcem_state"])
        if self.monitor is not None and payload.get("monitor") is not None:
            self.monitor.load_state_dict(payload["monitor"])
        return float(payload.get("seconds_done", self.history.seconds[-1] if self.history.seconds else 0.0))

    def check_finite(self, epoch: int) -> list[float]:
        """The training stream's mean bound, rate and distortion; a FloatingPointError where the run diverged
        (see :func:`vae_lib.training.train.fit`)."""
        model, config, history = self.model, self.config, self.history
        bound, rate, distortion = (self.stream[:3] / self.stream[3].clamp(min=1)).tolist()
        finite = all(math.isfinite(v) for v in (bound, rate, distortion)) and all(
            bool(torch.isfinite(p).all()) for p in model.parameters())
        floor, best = -DIVERGED_NATS_PER_PIXEL * model.config.data_dim, max(history.train_bound, default=None)
        dropped = best is not None and bound < best - DIVERGED_DROP * max(abs(best), model.config.data_dim)
        # the bound is not wake-sleep's objective (its recognition model, fitted to fantasies, can score real
        # images terribly early on without its updates diverging), nor MCEM's: only non-finite values stop them
        judged = config.algorithm not in ("wake_sleep", "mcem")
        if not finite or judged and (bound < floor or dropped):
            what = (f"the bound became {bound}" if not finite else
                    f"the bound fell to {bound:.6g} nats per example, below {floor:.6g} ({DIVERGED_NATS_PER_PIXEL:g} nats "
                    "per pixel)" if bound < floor else f"the bound fell to {bound:.6g} nats per example from {best:.6g} at best")
            raise FloatingPointError(
                f"training diverged by epoch {epoch}: {what} (rate {rate:.6g}, distortion "
                f"{distortion:.6g}). Lower the learning rate (lr={config.lr}), or use init_std/ReLU with care; "
                + (f"the last good checkpoint is {self.path}." if self.path else "pass checkpoint=... to keep progress."))
        return [bound, rate, distortion]

    def save(self) -> None:
        """Write the checkpoint (where there is a path), after checking the run has not diverged."""
        if self.path is not None:
            self.check_finite(self.epoch)
            save_checkpoint(self.path, self.model, self.config, self.history, extra={
                "optimizer_state": self.optimizer.state_dict(), "schedule_state": self.schedule.state_dict(),
                "generator_state": self.generator.get_state(), "stream": self.stream.cpu(),
                "epochs_done": self.epoch, "seconds_done": time.perf_counter() - self.t0,
                "train_data": self.train_data,
                "samples_done": self.samples, "train_seconds": self.train_seconds,
                "order": None if self.order is None else self.order.cpu(), "position": self.position,
                "mcem_state": self.mcem.state_dict() if self.mcem else None,
                "monitor": self.monitor.state_dict() if self.monitor else None})
            self.last_save, self.saved_samples = time.perf_counter(), self.samples

    def eager_steps(self, indices: torch.Tensor, epoch: int = 0, first: int = 0) -> None:
        """One update per minibatch of ``indices``, the bound's terms summed into the stream on the device (no
        host synchronisation inside the epoch); MCEM's rule is handed the minibatch's indices too."""
        config, n = self.config, self.n
        for i, idx in enumerate(indices.split(config.batch_size)):
            x = observe(self.train_x[idx], config.protocol, self.generator)
            if self.mcem is not None:
                terms = self.mcem.step(self.model, self.optimizer, x, idx, self.generator)
            else:
                terms = self.step(x, self.draw_noise(self.model, x, self.generator), epoch + (first + i * config.batch_size) / n)
            self.stream += torch.stack([terms.bound.sum(), terms.kl.sum(), -terms.reconstruction.sum(),
                                        torch.tensor(float(len(x)), device=self.device)])

    def advance(self, until: int) -> bool:
        """Minibatches of the current epoch — its order drawn, seeded, when it starts — until ``until`` samples
        have been seen (rounded up to a whole minibatch) or the epoch ends. Returns True when the epoch ended (the
        step-size schedule then moves on). The graphed mode runs whole epochs only."""
        self.model.train()
        _sync(self.device)
        t0 = time.perf_counter()
        if self.order is None:
            self.order = torch.randperm(self.n, generator=self.generator, device=self.device)
        if self.graphed is not None:
            if self.position or until < self.samples + self.n:
                raise ValueError("step_mode='graphed' runs whole epochs: it cannot stop or evaluate mid-epoch")
            self._graphed_epoch()
            take = self.n
        else:
            batch = self.config.batch_size
            take = min(self.n - self.position, max(1, math.ceil((until - self.samples) / batch)) * batch)
            self.eager_steps(self.order[self.position:self.position + take], self.epoch, self.position)
        self.position += take
        self.samples += take
        _sync(self.device)
        self.train_seconds += time.perf_counter() - t0
        if self.position < self.n:
            return False
        if self.graphed is None:
            self.schedule.step()   # the graphed mode has a constant step size and updates outside optimizer.step()
        self.order, self.position, self.epoch = None, 0, self.epoch + 1
        return True

    def _graphed_epoch(self) -> None:
        """The graphed epoch's replays (and eager steps for a last partial minibatch)."""
        graphed, batch, order = self.graphed, self.config.batch_size, self.order
        graphed.begin_epoch(order, self.train_x, self.generator)
        done_steps = 0
        if self.device.type == "cuda" and graphed.graph is None:
            done_steps = min(3, graphed.steps - 1)   # eager warm-up steps, then one captured in the graph
            graphed.capture(warmup=done_steps)
        for _ in range(graphed.steps - done_steps):
            graphed.step()
        if graphed.steps * batch < self.n:
            self.eager_steps(order[graphed.steps * batch:], self.epoch, graphed.steps * batch)

    def record(self) -> None:
        """An evaluation into the history at the run's epochs and samples so far: the training stream's means (or
        the bound on the fixed training images) and the test bound; the stream starts again."""
        history, model = self.history, self.model
        bound, rate, distortion = self.check_finite(self.epoch)
        model.eval()
        if self.train_obs is not None:
            ev = evaluate(model, self.train_obs)
            bound, rate, distortion = ev["bound"], ev["rate"], ev["distortion"]
        self.stream.zero_()
        history.epoch.append(self.epoch)
        history.samples_seen.append(self.samples)
        history.train_bound.append(bound)
        history.train_rate.append(rate)
        history.train_distortion.append(distortion)
        if self.test_obs is not None:
            ev = evaluate(model, self.test_obs)
            history.test_bound.append(ev["bound"])
            history.test_rate.append(ev["rate"])
            history.test_distortion.append(ev["distortion"])
        history.seconds.append(time.perf_counter() - self.t0)
        model.train()

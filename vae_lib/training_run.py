"""One training run's state and the steps that move it — the engine under :func:`vae_lib.train.fit`:
the optimizer and step-size schedule a :class:`~vae_lib.train_config.TrainConfig` names, the training
step of its update rule (Kingma & Welling (2013), Algorithm 1, or another rule of
:mod:`vae_lib.algorithms`), the divergence guard, the evaluation of the bound (estimator B, Eq. 7),
and :class:`TrainingRun`: a run resumed from its checkpoint, an epoch of steps, an evaluation into its
history, a save that refuses non-finite weights."""

from __future__ import annotations

import math
import os
import time
from dataclasses import asdict
from pathlib import Path

import torch

from .algorithms import KLWeight, update_rule
from .checkpoints import check_finite_weights, read_checkpoint, save_checkpoint
from .data import observe
from .model import VAE
from .objectives import elbo
from .train_config import TEST_SEED, History, TrainConfig

# A finite bound has diverged when it falls below −100 nats per pixel (−78,400 per MNIST image; an untrained
# model scores about −550), or more than 10 × max(|best|, D) nats below the best so far.
DIVERGED_NATS_PER_PIXEL = 100.0
DIVERGED_DROP = 10.0


@torch.no_grad()
def evaluate(model: VAE, x: torch.Tensor, batch_size: int = 1000, seed: int = TEST_SEED) -> dict[str, float]:
    """Mean bound, rate and distortion of ``model`` on observations ``x`` (N, D), estimator B with
    L = 1 and a seeded draw of z, so the number is repeatable."""
    g = torch.Generator(device=x.device).manual_seed(seed)
    totals = torch.zeros(3, device=x.device)
    for xb in x.split(batch_size):
        t = elbo(model, xb, generator=g)
        totals += torch.stack([t.bound.sum(), t.kl.sum(), -t.reconstruction.sum()])
    bound, rate, distortion = (totals / len(x)).tolist()
    return {"bound": bound, "rate": rate, "distortion": distortion}


def _make_optimizer(model: VAE, config: TrainConfig, capturable: bool = False) -> torch.optim.Optimizer:
    if config.optimizer == "adam":
        if capturable:  # a CUDA graph replays the update: its step counts must live on the device
            return torch.optim.Adam(model.parameters(), lr=config.lr, weight_decay=config.weight_decay,
                                    capturable=True, foreach=True)
        # fused: one pass over the parameters per step instead of a dozen elementwise ops each — faster
        # training on CPU (benchmarks/README.md); the same update, rounded differently. Only the CPU
        # has been measured so far, so other devices keep PyTorch's default.
        fused = next(model.parameters()).device.type == "cpu"
        return torch.optim.Adam(model.parameters(), lr=config.lr, weight_decay=config.weight_decay, fused=fused)
    return torch.optim.Adagrad(model.parameters(), lr=config.lr, weight_decay=config.weight_decay)


def _make_schedule(optimizer: torch.optim.Optimizer, config: TrainConfig):
    if config.lr_schedule == "cosine":
        return torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=max(config.epochs, 1))
    return torch.optim.lr_scheduler.LambdaLR(optimizer, lambda epoch: 1.0)


def _check_resumable(path: Path, payload: dict, model: VAE, config: TrainConfig) -> None:
    saved_model = payload["model_config"]
    saved_train = asdict(TrainConfig.from_dict(dict(payload["train_config"] or {})))
    mismatched = [f"model_config.{k}: checkpoint {saved_model.get(k)!r} vs asked {v!r}"
                  for k, v in asdict(model.config).items() if saved_model.get(k) != v]
    mismatched += [f"train_config.{k}: checkpoint {saved_train.get(k)!r} vs asked {v!r}"
                   for k, v in asdict(config).items() if k != "epochs" and saved_train.get(k) != v]
    if (config.lr_schedule == "cosine" and saved_train.get("epochs") != config.epochs
            and len(payload["history"]["epoch"]) < config.epochs):
        # the cosine decay spans the whole run; resuming a run made for another length would restore its
        # scheduler (T_max included) and follow that run's curve: past its end, an epoch at lr 0, then a restart
        mismatched.append(f"train_config.epochs: checkpoint {saved_train.get('epochs')!r} vs asked {config.epochs!r} "
                          "(a cosine schedule decays over the whole run, so a run cannot be lengthened)")
    if mismatched:
        raise ValueError(f"checkpoint {path} was made with another configuration:\n  " + "\n  ".join(mismatched)
                         + "\nDelete it, or pass another checkpoint path, to train this configuration.")


STEP_MODES = ("eager", "compile", "graphed")


def make_step(model: VAE, optimizer: torch.optim.Optimizer, config: TrainConfig, mode: str = "eager"):
    """The training step ``step(x, noise) -> ELBOTerms`` of ``config.algorithm`` and the rule's
    ``draw_noise``. ``mode`` "eager" runs the update rule's loss as written (the reference);
    "compile" runs it through ``torch.compile`` (same draws, same update up to rounding); "graphed"
    uses the eager step for the minibatches a :class:`vae_lib.graphed.GraphedEpoch` leaves over."""
    if mode not in STEP_MODES:
        raise ValueError(f"unknown step mode {mode!r}; choose one of {STEP_MODES}")
    kl = None if config.is_plain_elbo else KLWeight(config.beta, config.free_bits)
    rule = update_rule(config.algorithm, config.n_samples, config.estimator, kl)
    loss_fn = torch.compile(rule.loss, dynamic=False) if mode == "compile" else rule.loss

    def step(x: torch.Tensor, noise, epoch: float = 0.0):
        if kl is not None:
            kl.value = config.kl_weight_at(epoch)
        loss, report = loss_fn(model, x, noise)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        return report

    return step, rule.draw_noise


class TrainingRun:
    """One call of :func:`vae_lib.train.fit` once its inputs are checked: the run's state — model, optimizer, step-size
    schedule, generator, the training stream's sums since the last evaluation, the history — resumed from
    the checkpoint where there is one, and what a run does with it: an epoch of steps, an evaluation into
    the history, a save that refuses non-finite weights."""

    def __init__(self, model: VAE, train_x: torch.Tensor, test_x: torch.Tensor | None, config: TrainConfig,
                 checkpoint: str | os.PathLike | None, train_eval_x: torch.Tensor | None, step_mode: str) -> None:
        self.model, self.config = model, config
        self.device = device = next(model.parameters()).device
        self.train_x, self.test_obs, self.train_obs = train_x.to(device), None, None
        if test_x is not None:
            self.test_obs = observe(test_x.to(device), config.eval_protocol, seed=TEST_SEED)
        if train_eval_x is not None:
            self.train_obs = observe(train_eval_x.to(device), config.eval_protocol, seed=TEST_SEED)
        graph_mode = step_mode == "graphed"
        if graph_mode and (config.lr_schedule != "constant" or not config.is_plain_elbo):
            raise ValueError("step_mode='graphed' needs a constant step size (lr_schedule='constant') and the plain "
                             "ELBO (beta 1, no KL schedule, no free bits): a captured update cannot follow a schedule")
        self.optimizer = _make_optimizer(model, config, capturable=graph_mode and device.type == "cuda")
        self.generator = torch.Generator(device=device).manual_seed(config.seed)
        self.schedule = _make_schedule(self.optimizer, config)
        self.step, self.draw_noise = make_step(model, self.optimizer, config, step_mode)
        self.history, self.start, elapsed = History(), 0, 0.0
        self.stream = torch.zeros(4, device=device)  # bound, rate, distortion sums and count since the last evaluation
        self.path = Path(checkpoint) if checkpoint is not None else None
        if self.path is not None and self.path.exists():
            elapsed = self._resume()
        self.n, self.t0 = len(self.train_x), time.perf_counter() - elapsed
        self.last_save = time.perf_counter()
        self.graphed = None
        if graph_mode:
            from .graphed import GraphedEpoch
            self.graphed = GraphedEpoch(model, self.optimizer, update_rule(config.algorithm, config.n_samples, config.estimator),
                                        config.protocol, self.n, config.batch_size, self.stream)

    def _resume(self) -> float:
        """Load the checkpoint's state into this run; returns its seconds of training so far."""
        path, config = self.path, self.config
        payload = read_checkpoint(path, self.device)
        check_finite_weights(path, payload)
        _check_resumable(path, payload, self.model, config)
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
        if "stream" in payload:
            self.stream = payload["stream"].to(self.device)
        return float(payload.get("seconds_done", self.history.seconds[-1] if self.history.seconds else 0.0))

    def check_finite(self, epoch: int) -> list[float]:
        """The training stream's mean bound, rate and distortion; a FloatingPointError where the run diverged
        (see :func:`vae_lib.train.fit`)."""
        model, config, history = self.model, self.config, self.history
        bound, rate, distortion = (self.stream[:3] / self.stream[3].clamp(min=1)).tolist()
        finite = all(math.isfinite(v) for v in (bound, rate, distortion)) and all(
            bool(torch.isfinite(p).all()) for p in model.parameters())
        floor, best = -DIVERGED_NATS_PER_PIXEL * model.config.data_dim, max(history.train_bound, default=None)
        dropped = best is not None and bound < best - DIVERGED_DROP * max(abs(best), model.config.data_dim)
        # the bound is not wake-sleep's objective: its recognition model, fitted to fantasies, can score
        # real images terribly early on without its updates diverging — only non-finite values stop it
        judged = config.algorithm != "wake_sleep"
        if not finite or judged and (bound < floor or dropped):
            what = (f"the bound became {bound}" if not finite else
                    f"the bound fell to {bound:.6g} nats per example, below {floor:.6g} ({DIVERGED_NATS_PER_PIXEL:g} nats "
                    "per pixel)" if bound < floor else f"the bound fell to {bound:.6g} nats per example from {best:.6g} at best")
            raise FloatingPointError(
                f"training diverged by epoch {epoch}: {what} (rate {rate:.6g}, distortion "
                f"{distortion:.6g}). Lower the learning rate (lr={config.lr}), or use init_std/ReLU with care; "
                + (f"the last good checkpoint is {self.path}." if self.path else "pass checkpoint=... to keep progress."))
        return [bound, rate, distortion]

    def save(self, epochs_done: int) -> None:
        """Write the checkpoint (where there is a path), after checking the run has not diverged."""
        if self.path is not None:
            self.check_finite(epochs_done)
            save_checkpoint(self.path, self.model, self.config, self.history, extra={
                "optimizer_state": self.optimizer.state_dict(), "schedule_state": self.schedule.state_dict(),
                "generator_state": self.generator.get_state(), "stream": self.stream.cpu(),
                "epochs_done": epochs_done, "seconds_done": time.perf_counter() - self.t0})
            self.last_save = time.perf_counter()

    def eager_steps(self, indices: torch.Tensor, epoch: int = 0, first: int = 0) -> None:
        """One update per minibatch of ``indices``, the bound's terms summed into the stream on the device (no
        host synchronisation inside the epoch)."""
        config, n = self.config, self.n
        for i, idx in enumerate(indices.split(config.batch_size)):
            x = observe(self.train_x[idx], config.protocol, self.generator)
            terms = self.step(x, self.draw_noise(self.model, x, self.generator), epoch + (first + i * config.batch_size) / n)
            self.stream += torch.stack([terms.bound.sum(), terms.kl.sum(), -terms.reconstruction.sum(),
                                        torch.tensor(float(len(x)), device=self.device)])

    def run_epoch(self, epoch: int) -> None:
        """One pass over the training set in a fresh seeded order: eager steps, or the graphed epoch's replays
        (and eager steps for a last partial minibatch)."""
        self.model.train()
        order = torch.randperm(self.n, generator=self.generator, device=self.device)   # this epoch's minibatches
        graphed, batch = self.graphed, self.config.batch_size
        if graphed is None:
            self.eager_steps(order, epoch)
            self.schedule.step()   # the graphed mode has a constant step size and updates outside optimizer.step()
            return
        graphed.begin_epoch(order, self.train_x, self.generator)
        done_steps = 0
        if self.device.type == "cuda" and graphed.graph is None:
            done_steps = min(3, graphed.steps - 1)   # eager warm-up steps, then one captured in the graph
            graphed.capture(warmup=done_steps)
        for _ in range(graphed.steps - done_steps):
            graphed.step()
        if graphed.steps * batch < self.n:
            self.eager_steps(order[graphed.steps * batch:], epoch, graphed.steps * batch)

    def record(self, done: int, samples: int) -> None:
        """An evaluation into the history after ``done`` epochs: the training stream's means (or the bound on the
        fixed training images) and the test bound; the stream starts again."""
        history, model = self.history, self.model
        bound, rate, distortion = self.check_finite(done)
        model.eval()
        if self.train_obs is not None:
            ev = evaluate(model, self.train_obs)
            bound, rate, distortion = ev["bound"], ev["rate"], ev["distortion"]
        self.stream.zero_()
        history.epoch.append(done)
        history.samples_seen.append(samples)
        history.train_bound.append(bound)
        history.train_rate.append(rate)
        history.train_distortion.append(distortion)
        if self.test_obs is not None:
            ev = evaluate(model, self.test_obs)
            history.test_bound.append(ev["bound"])
            history.test_rate.append(ev["rate"])
            history.test_distortion.append(ev["distortion"])
        history.seconds.append(time.perf_counter() - self.t0)

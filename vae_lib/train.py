"""The training driver: stochastic gradient ascent — Kingma & Welling (2013), Algorithm 1, or any
other update rule of :mod:`vae_lib.algorithms` (wake-sleep) — with a history, a NaN guard, and
atomic, resumable checkpoints. Every algorithm the book compares runs through :func:`fit`, so a
difference between curves can only come from the algorithm."""

from __future__ import annotations

import math
import os
import time
from dataclasses import asdict
from pathlib import Path

import torch

from .algorithms import KLWeight, update_rule
from .checkpoints import (CHECKPOINT_FORMAT, check_finite_weights, check_writable, load_checkpoint, read_checkpoint,
                          save_checkpoint)
from .data import observe
from .model import VAE, VAEConfig
from .objectives import check_observations, elbo, values_checked_by_caller
from .train_config import OPTIMIZERS, SCHEDULES, TEST_SEED, History, TrainConfig
from .utils import progress

# vae_lib.train is the training module's front door: its configuration (vae_lib.train_config) and its
# checkpoints (vae_lib.checkpoints) are imported from here as well as from their own modules
__all__ = ["CHECKPOINT_FORMAT", "OPTIMIZERS", "SCHEDULES", "STEP_MODES", "TEST_SEED", "History", "TrainConfig",
           "check_finite_weights", "check_writable", "evaluate", "fit", "load_checkpoint", "make_step",
           "read_checkpoint", "save_checkpoint", "train_model"]

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


def fit(model: VAE, train_x: torch.Tensor, test_x: torch.Tensor | None, config: TrainConfig,
        checkpoint: str | os.PathLike | None = None, checkpoint_every: int = 10,
        show_progress: bool = True, desc: str = "training", eval_growth: float | None = None,
        train_eval_x: torch.Tensor | None = None, checkpoint_seconds: float | None = None,
        step_mode: str = "eager", time_limit: float | None = None) -> History:
    """Train ``model`` on grey levels ``train_x`` (N, D) with ``config.algorithm`` and return its History.

    Each step draws a minibatch by index, observes it under ``config.protocol``, and takes one step
    of the update rule (for AEVB: ascends the minibatch mean of the SGVB bound, the paper's Eq. 8
    scaled by 1/M). ``test_x`` (grey levels) is observed once under ``config.eval_protocol``.

    Evaluation: after every epoch by default; with ``eval_growth`` (say 10**0.125) only after the
    epochs where the samples seen pass a geometric grid growing by that factor (and after the last),
    so a long run on a small data set keeps a short history for a log axis. The train bound is the
    mean over the training stream since the previous evaluation, or, with ``train_eval_x``, the
    bound on those images observed once under ``config.eval_protocol`` (a fixed set, like the test).

    With a ``checkpoint`` path, training resumes from it when it exists and saves to it every
    ``checkpoint_every`` epochs (or, with ``checkpoint_seconds``, at the first epoch end that many
    seconds after the last save) and at the end; a checkpoint is never written from non-finite
    weights. With ``time_limit`` (seconds), training stops at the end of the first epoch that ends
    after that much time in this call, evaluates and saves there: a later call resumes it.

    ``step_mode``: "eager" (the reference), "compile" (:func:`make_step`), or "graphed": each epoch's
    draws are made up front and its full minibatches run as one replayable step
    (:class:`vae_lib.graphed.GraphedEpoch`; captured as a CUDA graph on CUDA, run eagerly elsewhere).
    The graphed mode draws its pixels as 1[u < grey] from uniforms, so its random stream differs
    from the eager mode's; each mode is reproducible and resumable on its own.

    Before the first step, the data are checked once — (N, D) grey levels in [0, 1] of the model's D
    (:func:`vae_lib.objectives.check_observations`) — and so is the checkpoint's folder
    (:func:`check_writable`). Training stops with a FloatingPointError when it diverges: a non-finite
    bound or weight, or a bound that stays finite but falls below ``-DIVERGED_NATS_PER_PIXEL * D`` nats
    per example, or more than ``DIVERGED_DROP * max(abs(best), D)`` below the best bound so far (AEVB
    only: the bound wake-sleep reports is not its objective, so only non-finite values stop it).
    """
    device = next(model.parameters()).device
    for name, x in (("train_x", train_x), ("test_x", test_x), ("train_eval_x", train_eval_x)):
        if x is not None:
            check_observations(model, x.to(device), name)
    if checkpoint is not None:
        check_writable(checkpoint)
    with values_checked_by_caller():   # every minibatch comes from data checked just now
        return _fit(model, train_x, test_x, config, checkpoint, checkpoint_every, show_progress, desc, eval_growth,
                    train_eval_x, checkpoint_seconds, step_mode, time_limit)


def _fit(model: VAE, train_x: torch.Tensor, test_x: torch.Tensor | None, config: TrainConfig,
         checkpoint: str | os.PathLike | None, checkpoint_every: int, show_progress: bool, desc: str,
         eval_growth: float | None, train_eval_x: torch.Tensor | None, checkpoint_seconds: float | None,
         step_mode: str, time_limit: float | None) -> History:
    """The body of :func:`fit`, once its inputs have been checked."""
    device = next(model.parameters()).device
    train_x, test_obs, train_obs = train_x.to(device), None, None
    if test_x is not None:
        test_obs = observe(test_x.to(device), config.eval_protocol, seed=TEST_SEED)
    if train_eval_x is not None:
        train_obs = observe(train_eval_x.to(device), config.eval_protocol, seed=TEST_SEED)
    if eval_growth is not None and not eval_growth > 1:
        raise ValueError(f"eval_growth must be greater than 1 (a factor between evaluations), got {eval_growth}")
    graph_mode = step_mode == "graphed"
    if graph_mode and (config.lr_schedule != "constant" or not config.is_plain_elbo):
        raise ValueError("step_mode='graphed' needs a constant step size (lr_schedule='constant') and the plain "
                         "ELBO (beta 1, no KL schedule, no free bits): a captured update cannot follow a schedule")
    optimizer = _make_optimizer(model, config, capturable=graph_mode and device.type == "cuda")
    generator = torch.Generator(device=device).manual_seed(config.seed)
    schedule = _make_schedule(optimizer, config)
    step, draw_noise = make_step(model, optimizer, config, step_mode)
    history, start, elapsed = History(), 0, 0.0
    stream = torch.zeros(4, device=device)  # bound, rate, distortion sums and count since the last evaluation

    path = Path(checkpoint) if checkpoint is not None else None
    if path is not None and path.exists():
        payload = read_checkpoint(path, device)
        check_finite_weights(path, payload)
        _check_resumable(path, payload, model, config)
        if "optimizer_state" not in payload:
            raise ValueError(f"checkpoint {path} holds a finished run's weights only (no optimizer state): it loads "
                             "(load_checkpoint) but cannot be trained further. Delete it to train the run afresh.")
        model.load_state_dict(payload["model_state"])
        optimizer.load_state_dict(payload["optimizer_state"])
        schedule.load_state_dict(payload["schedule_state"])
        history = History.from_dict(payload["history"])
        start = int(payload.get("epochs_done", len(history.epoch)))
        try:
            generator.set_state(payload["generator_state"].cpu())
        except RuntimeError:  # saved on another kind of device: its generator's state does not fit this one's
            generator.manual_seed(config.seed + 7919 * (start + 1))
        elapsed = float(payload.get("seconds_done", history.seconds[-1] if history.seconds else 0.0))
        if "stream" in payload:
            stream = payload["stream"].to(device)

    n, t0 = len(train_x), time.perf_counter() - elapsed
    last_save = call_start = time.perf_counter()

    def check_finite(epoch: int) -> list[float]:
        bound, rate, distortion = (stream[:3] / stream[3].clamp(min=1)).tolist()
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
                + (f"the last good checkpoint is {path}." if path else "pass checkpoint=... to keep progress."))
        return [bound, rate, distortion]

    def save(epochs_done: int) -> None:
        nonlocal last_save
        if path is not None:
            check_finite(epochs_done)
            save_checkpoint(path, model, config, history, extra={
                "optimizer_state": optimizer.state_dict(), "schedule_state": schedule.state_dict(),
                "generator_state": generator.get_state(), "stream": stream.cpu(),
                "epochs_done": epochs_done, "seconds_done": time.perf_counter() - t0})
            last_save = time.perf_counter()

    def next_eval_after(samples: int) -> float:
        if eval_growth is None:
            return 0.0
        target = float(n)
        while target <= samples:
            target *= eval_growth
        return target

    graphed = None
    if graph_mode:
        from .graphed import GraphedEpoch
        graphed = GraphedEpoch(model, optimizer, update_rule(config.algorithm, config.n_samples, config.estimator),
                               config.protocol, n, config.batch_size, stream)

    def eager_steps(indices: torch.Tensor, epoch: int = 0, first: int = 0) -> None:
        nonlocal stream
        for i, idx in enumerate(indices.split(config.batch_size)):
            x = observe(train_x[idx], config.protocol, generator)
            terms = step(x, draw_noise(model, x, generator), epoch + (first + i * config.batch_size) / n)
            # summed on the device: no host synchronisation inside the epoch
            stream += torch.stack([terms.bound.sum(), terms.kl.sum(), -terms.reconstruction.sum(),
                                   torch.tensor(float(len(x)), device=device)])

    next_eval = next_eval_after(start * n)
    bar = progress(range(start, config.epochs), desc=desc, initial=start, total=config.epochs,
                   disable=not show_progress, unit="epoch")
    for epoch in bar:
        model.train()
        order = torch.randperm(n, generator=generator, device=device)   # this epoch's minibatches, by index
        if graphed is None:
            eager_steps(order, epoch)
        else:
            graphed.begin_epoch(order, train_x, generator)
            done_steps = 0
            if device.type == "cuda" and graphed.graph is None:
                done_steps = min(3, graphed.steps - 1)   # eager warm-up steps, then one captured in the graph
                graphed.capture(warmup=done_steps)
            for _ in range(graphed.steps - done_steps):
                graphed.step()
            if graphed.steps * config.batch_size < n:
                eager_steps(order[graphed.steps * config.batch_size:], epoch, graphed.steps * config.batch_size)
        if graphed is None:  # the graphed mode has a constant step size and updates outside optimizer.step()
            schedule.step()
        done, samples = epoch + 1, (epoch + 1) * n
        out_of_time = time_limit is not None and time.perf_counter() - call_start >= time_limit
        if done == config.epochs or samples >= next_eval or out_of_time:
            next_eval = next_eval_after(samples)
            bound, rate, distortion = check_finite(done)
            model.eval()
            if train_obs is not None:
                ev = evaluate(model, train_obs)
                bound, rate, distortion = ev["bound"], ev["rate"], ev["distortion"]
            stream.zero_()
            history.epoch.append(done)
            history.samples_seen.append(samples)
            history.train_bound.append(bound)
            history.train_rate.append(rate)
            history.train_distortion.append(distortion)
            if test_obs is not None:
                ev = evaluate(model, test_obs)
                history.test_bound.append(ev["bound"])
                history.test_rate.append(ev["rate"])
                history.test_distortion.append(ev["distortion"])
            history.seconds.append(time.perf_counter() - t0)
            if hasattr(bar, "set_postfix"):
                bar.set_postfix(train=f"{bound:.2f}", **({"test": f"{history.test_bound[-1]:.2f}"} if test_obs is not None else {}))
        if out_of_time:
            save(done)
            model.eval()
            return history
        if done % checkpoint_every == 0 or (checkpoint_seconds is not None
                                            and time.perf_counter() - last_save >= checkpoint_seconds):
            save(done)
    model.eval()
    save(max(start, config.epochs))
    return history


def train_model(model_config: VAEConfig, train_config: TrainConfig, train_x: torch.Tensor,
                test_x: torch.Tensor | None = None, checkpoint: str | os.PathLike | None = None,
                device: torch.device | str | None = None, **fit_kwargs) -> tuple[VAE, History]:
    """Build a VAE seeded by ``train_config.seed`` on ``device`` (default: the data's) and :func:`fit`
    it. With a checkpoint that already holds the full run, this loads it and trains nothing."""
    device = torch.device(device) if device is not None else train_x.device
    torch.manual_seed(train_config.seed)
    model = VAE(model_config).to(device)
    history = fit(model, train_x, test_x, train_config, checkpoint=checkpoint, **fit_kwargs)
    return model, history

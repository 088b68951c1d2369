"""The training driver: stochastic gradient ascent — Kingma & Welling (2013), Algorithm 1, or any
other update rule of :mod:`vae_lib.algorithms` (wake-sleep) — with a history, a NaN guard, and
atomic, resumable checkpoints. Every algorithm the book compares runs through :func:`fit`, so a
difference between curves can only come from the algorithm."""

from __future__ import annotations

import os
import time

import torch

from .checkpoints import (CHECKPOINT_FORMAT, check_finite_weights, check_writable, load_checkpoint, read_checkpoint,
                          save_checkpoint)
from .model import VAE, VAEConfig
from .objectives import check_observations, values_checked_by_caller
from .train_config import OPTIMIZERS, SCHEDULES, TEST_SEED, History, TrainConfig
from .training_run import DIVERGED_DROP, DIVERGED_NATS_PER_PIXEL, STEP_MODES, TrainingRun, evaluate, make_step
from .utils import progress

# vae_lib.train is the training module's front door: its configuration (vae_lib.train_config), its
# checkpoints (vae_lib.checkpoints) and its engine (vae_lib.training_run) are imported from here as well
# as from their own modules
__all__ = ["CHECKPOINT_FORMAT", "DIVERGED_DROP", "DIVERGED_NATS_PER_PIXEL", "OPTIMIZERS", "SCHEDULES", "STEP_MODES",
           "TEST_SEED", "History", "TrainConfig", "TrainingRun", "check_finite_weights", "check_writable", "evaluate",
           "fit", "load_checkpoint", "make_step", "read_checkpoint", "save_checkpoint", "train_model"]

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
    """The body of :func:`fit`, once its inputs have been checked: the epochs of a :class:`~vae_lib.training_run.TrainingRun`, its
    evaluations where the grid of ``eval_growth`` says, its saves, and the stop at ``time_limit``."""
    if eval_growth is not None and not eval_growth > 1:
        raise ValueError(f"eval_growth must be greater than 1 (a factor between evaluations), got {eval_growth}")
    run = TrainingRun(model, train_x, test_x, config, checkpoint, train_eval_x, step_mode)
    n, call_start = run.n, time.perf_counter()

    def next_eval_after(samples: int) -> float:
        if eval_growth is None:
            return 0.0
        target = float(n)
        while target <= samples:
            target *= eval_growth
        return target

    next_eval = next_eval_after(run.start * n)
    bar = progress(range(run.start, config.epochs), desc=desc, initial=run.start, total=config.epochs,
                   disable=not show_progress, unit="epoch")
    for epoch in bar:
        run.run_epoch(epoch)
        done, samples = epoch + 1, (epoch + 1) * n
        out_of_time = time_limit is not None and time.perf_counter() - call_start >= time_limit
        if done == config.epochs or samples >= next_eval or out_of_time:
            next_eval = next_eval_after(samples)
            run.record(done, samples)
            if hasattr(bar, "set_postfix"):
                h = run.history
                bar.set_postfix(train=f"{h.train_bound[-1]:.2f}", **({"test": f"{h.test_bound[-1]:.2f}"} if run.test_obs is not None else {}))
        if out_of_time:
            run.save(done)
            model.eval()
            return run.history
        if done % checkpoint_every == 0 or (checkpoint_seconds is not None
                                            and time.perf_counter() - run.last_save >= checkpoint_seconds):
            run.save(done)
    model.eval()
    run.save(max(run.start, config.epochs))
    return run.history


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

"""The training driver: stochastic gradient ascent — Kingma & Welling (2013), Algorithm 1, or any
other update rule of :mod:`vae_lib.training.algorithms` (wake-sleep) — with a history, a NaN guard, and
atomic, resumable checkpoints. Every algorithm the book compares runs through :func:`fit`, so a
difference between curves can only come from the algorithm."""

from __future__ import annotations

import contextlib
import math
import os
import time
from typing import NamedTuple

import torch

from vae_lib.base.locks import run_lock
from vae_lib.base.params import check_float, check_int
from vae_lib.base.utils import progress
from vae_lib.model.objectives import check_observations, has_standard_normal_prior, values_checked_by_caller
from vae_lib.model.prior_vae import PriorConfig, PriorVAE
from vae_lib.model.two_layer import TwoLayerConfig, TwoLayerVAE
from vae_lib.model.vae import VAE, VAEConfig
from vae_lib.training.checkpoints import (CHECKPOINT_FORMAT, check_finite_weights, check_writable, load_checkpoint,
                                          read_checkpoint, save_checkpoint)
from vae_lib.training.train_config import OPTIMIZERS, SCHEDULES, TEST_SEED, History, TrainConfig
from vae_lib.training.training_run import DIVERGED_DROP, DIVERGED_NATS_PER_PIXEL, Monitor, TrainingRun
from vae_lib.training.training_step import STEP_MODES, evaluate, make_step

# vae_lib.training.train is the training module's front door: its configuration (vae_lib.training.train_config), its
# checkpoints (vae_lib.training.checkpoints), its steps (vae_lib.training.training_step) and its engine (vae_lib.training.training_run) are imported from here as well
# as from their own modules
__all__ = ["CHECKPOINT_FORMAT", "DIVERGED_DROP", "DIVERGED_NATS_PER_PIXEL", "OPTIMIZERS", "SCHEDULES", "STEP_MODES",
           "TEST_SEED", "History", "Monitor", "PriorConfig", "TrainConfig", "TrainingRun", "check_finite_weights",
           "check_prior_fits", "check_writable", "evaluate", "fit", "load_checkpoint", "make_step", "read_checkpoint",
           "save_checkpoint", "train_model"]

def fit(model: VAE, train_x: torch.Tensor, test_x: torch.Tensor | None, config: TrainConfig,
        checkpoint: str | os.PathLike | None = None, checkpoint_every: int = 10,
        show_progress: bool = True, desc: str = "training", eval_growth: float | None = None,
        train_eval_x: torch.Tensor | None = None, checkpoint_seconds: float | None = None,
        step_mode: str = "eager", time_limit: float | None = None, monitor: Monitor | None = None,
        samples: int | None = None) -> History:
    """Train ``model`` on grey levels ``train_x`` (N, D) with ``config.algorithm`` and return its History.

    Each step draws a minibatch by index, observes it under ``config.protocol``, and takes one step
    of the update rule (for AEVB: ascends the minibatch mean of the SGVB bound, the paper's Eq. 8
    scaled by 1/M; for MCEM, one visit of the minibatch's chains, :class:`vae_lib.training.mcem.MCEMRule`).
    ``test_x`` (grey levels) is observed once under ``config.eval_protocol``. The run lasts
    ``config.epochs`` epochs, or, with ``samples``, that many training samples (it may end mid-epoch).

    Evaluation: after every epoch by default; with ``eval_growth`` (say 10**0.125) only after the
    epochs where the samples seen pass a geometric grid growing by that factor (and after the last),
    so a long run on a small data set keeps a short history for a log axis. The train bound is the
    mean over the training stream since the previous evaluation, or, with ``train_eval_x``, the
    bound on those images observed once under ``config.eval_protocol`` (a fixed set, like the test).
    A ``monitor`` (:class:`~vae_lib.training.training_run.Monitor`) records what it chooses at the sample counts it
    chooses — mid-epoch too (Figure 3's exact log p(x), :class:`vae_lib.runs.figure3_monitor.Figure3Monitor`) —, its
    record saved in the checkpoint; the History gets an entry there as well.

    With a ``checkpoint`` path, training resumes from it when it exists — mid-epoch too — and saves to it
    every ``checkpoint_every`` epochs (or, with ``checkpoint_seconds``, at the first epoch end, or with a
    monitor the first 50 minibatches, that many seconds after the last save) and at the end; a checkpoint
    is never written from non-finite weights; while it trains, the run is locked to this process
    (:func:`vae_lib.base.locks.run_lock`). With ``time_limit`` (seconds), training stops at the end of
    the first epoch (with a monitor: of 50 minibatches) that ends after that much time in this call,
    evaluates and saves there: a later call resumes it.

    ``step_mode``: "eager" (the reference), "compile" (:func:`make_step`), or "graphed": each epoch's
    draws are made up front and its full minibatches run as one replayable step
    (:class:`vae_lib.training.graphed.GraphedEpoch`; captured as a CUDA graph on CUDA, run eagerly elsewhere).
    The graphed mode draws its pixels as 1[u < grey] from uniforms, so its random stream differs
    from the eager mode's; each mode is reproducible and resumable on its own.

    Before the first step, the data are checked once — (N, D) grey levels in [0, 1] of the model's D
    (:func:`vae_lib.model.objectives.check_observations`) — and so is the checkpoint's folder
    (:func:`check_writable`). Training stops with a FloatingPointError when it diverges: a non-finite
    bound or weight, or a bound that stays finite but falls below ``-DIVERGED_NATS_PER_PIXEL * D`` nats
    per example, or more than ``DIVERGED_DROP * max(abs(best), D)`` below the best bound so far (AEVB
    and IWAE only: the bound wake-sleep reports is not its objective, nor MCEM's, so only non-finite
    values stop them).
    """
    check_int("checkpoint_every", checkpoint_every, 1)   # epochs between saves
    check_prior_fits(model, config)
    for name, seconds in (("checkpoint_seconds", checkpoint_seconds), ("time_limit", time_limit)):
        if seconds is not None and seconds != math.inf:   # math.inf: never
            check_float(name, seconds, 0, low_open=True)
    if samples is not None:
        check_int("samples", samples, 0)
    device = next(model.parameters()).device
    for name, x in (("train_x", train_x), ("test_x", test_x), ("train_eval_x", train_eval_x)):
        if x is not None:
            check_observations(model, x.to(device), name)
    if checkpoint is not None:
        check_writable(checkpoint)
    if eval_growth is not None and not eval_growth > 1:
        raise ValueError(f"eval_growth must be greater than 1 (a factor between evaluations), got {eval_growth}")
    if samples is not None and samples < 0:
        raise ValueError(f"samples must be 0 or more, got {samples}")
    # one run, one writer: a second process on this checkpoint stops here (vae_lib.base.locks)
    with run_lock(checkpoint) if checkpoint is not None else contextlib.nullcontext(), values_checked_by_caller():
        run = TrainingRun(model, train_x, test_x, config, checkpoint, train_eval_x, step_mode, monitor)
        return _fit(run, samples if samples is not None else config.epochs * run.n,
                    _Saves(checkpoint_every, checkpoint_seconds, time_limit), show_progress, desc, eval_growth)


class _Saves(NamedTuple):
    """When :func:`fit` saves, and when it stops early."""

    every_epochs: int
    seconds: float | None
    time_limit: float | None


MONITOR_CHUNK = 50   # minibatches between a monitored run's looks at the clock and at its monitor's next sample count


def _fit(run: TrainingRun, target: int, saves: _Saves, show_progress: bool, desc: str,
         eval_growth: float | None) -> History:
    """The body of :func:`fit`, once its inputs have been checked: the steps of a
    :class:`~vae_lib.training.training_run.TrainingRun` up to ``target`` samples, its evaluations where the grid of
    ``eval_growth`` or the monitor says, its saves, and the stop at the time limit."""
    n, monitor, call_start = run.n, run.monitor, time.perf_counter()
    if monitor is not None:
        monitor.begin(run)

    def next_record_after(samples: int) -> float:
        if eval_growth is None:
            return 0.0
        mark = float(n)
        while mark <= samples:
            mark *= eval_growth
        return mark

    next_record = next_record_after(run.epoch * n)
    bar = progress(None, desc=desc, initial=run.epoch, total=math.ceil(target / n),
                   disable=not show_progress, unit="epoch")
    while run.samples < target:
        until = target if monitor is None else min(target, monitor.next_eval(),
                                                   run.samples + MONITOR_CHUNK * run.config.batch_size)
        epoch_ended = run.advance(until)
        finished = run.samples >= target
        out_of_time = saves.time_limit is not None and time.perf_counter() - call_start >= saves.time_limit
        out_of_time = out_of_time and (epoch_ended or monitor is not None) and not finished
        monitored = monitor is not None and (finished or out_of_time or run.samples >= monitor.next_eval())
        if epoch_ended:
            bar.update(1)
        if finished or out_of_time or monitored or epoch_ended and run.samples >= next_record:
            next_record = next_record_after(run.samples)
            run.record()
            if hasattr(bar, "set_postfix"):
                h = run.history
                bar.set_postfix(train=f"{h.train_bound[-1]:.2f}", **({"test": f"{h.test_bound[-1]:.2f}"} if run.test_obs is not None else {}))
        if monitored:
            monitor.evaluate(run, final=finished or out_of_time)
        if out_of_time:
            break
        if (epoch_ended and run.epoch % saves.every_epochs == 0 or saves.seconds is not None
                and (epoch_ended or monitor is not None) and time.perf_counter() - run.last_save >= saves.seconds):
            run.save()
    bar.close()
    run.model.eval()
    if run.path is not None and (run.samples > run.saved_samples or not run.path.exists()):
        run.save()   # unless the loop saved this very state (a finished run's file is left as it is)
    return run.history


def check_prior_fits(model: VAE, config: TrainConfig) -> None:
    """A ValueError saying what to change when ``config`` cannot train ``model``'s learned prior: the closed-form
    KL of estimator B (and free bits, built on it) exists for N(0, I) only — a learned prior trains under
    estimator A (the Monte-Carlo rate) or the IWAE/DReG bound —, and wake-sleep and MCEM fit N(0, I) models only.
    The two-stochastic-layer model trains on its Monte Carlo ELBO (estimator A, no KL weight) or the IWAE bound."""
    if isinstance(model, TwoLayerVAE):
        if not (config.algorithm == "iwae" or config.algorithm == "aevb" and config.estimator == "A"):
            raise ValueError(f"the two-layer model trains with algorithm 'aevb' (estimator 'A') or 'iwae', not "
                             f"{config.algorithm!r} with estimator {config.estimator!r}: its bound has no closed-form "
                             "term, and its DReG gradient is not built")
        if not config.is_plain_elbo:
            raise ValueError("beta, kl_schedule and free_bits are not available for the two-layer model")
        return
    if has_standard_normal_prior(model):
        return
    if config.algorithm in ("wake_sleep", "mcem"):
        raise ValueError(f"algorithm {config.algorithm!r} assumes p(z) = N(0, I); a model with a learned prior "
                         "trains with 'aevb' (estimator 'A'), 'iwae' or 'iwae_dreg'")
    if config.algorithm == "aevb" and config.estimator != "A":
        raise ValueError("a model with a learned prior has no closed-form KL: train it with estimator='A' (the "
                         "Monte-Carlo rate log q(z|x) − log p(z)); free bits need estimator 'B' and are not available")


def train_model(model_config: VAEConfig, train_config: TrainConfig, train_x: torch.Tensor,
                test_x: torch.Tensor | None = None, checkpoint: str | os.PathLike | None = None,
                device: torch.device | str | None = None, prior: PriorConfig | None = None,
                **fit_kwargs) -> tuple[VAE, History]:
    """Build a VAE seeded by ``train_config.seed`` on ``device`` (default: the data's) and :func:`fit`
    it. With a checkpoint that already holds the full run, this loads it and trains nothing. With a ``prior``
    (:class:`~vae_lib.model.prior_vae.PriorConfig`) the model is a :class:`~vae_lib.model.prior_vae.PriorVAE`:
    the VAE's weights are drawn first, as for a plain VAE, then the prior's (a VampPrior's pseudo-inputs
    start at seeded rows of ``train_x``). A :class:`~vae_lib.model.two_layer.TwoLayerConfig` builds the
    two-stochastic-layer model instead."""
    device = torch.device(device) if device is not None else train_x.device
    torch.manual_seed(train_config.seed)
    if isinstance(model_config, TwoLayerConfig):
        if prior is not None:
            raise ValueError("the two-layer model has its own prior, p(z2) p(z1|z2): pass prior=None")
        model = TwoLayerVAE(model_config).to(device)
    else:
        model = (VAE(model_config) if prior is None else PriorVAE(model_config, prior, data=train_x)).to(device)
    history = fit(model, train_x, test_x, train_config, checkpoint=checkpoint, **fit_kwargs)
    return model, history

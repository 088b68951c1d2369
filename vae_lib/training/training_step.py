"""What a :class:`~vae_lib.training.train_config.TrainConfig` names, built for a run of the driver
(:mod:`vae_lib.training.training_run`, :func:`vae_lib.training.train.fit`): the optimizer and its step-size schedule, the
training step of the update rule — Kingma & Welling (2013), Algorithm 1, or another rule of
:mod:`vae_lib.training.algorithms` — eager, compiled or graphed, and the evaluation of the bound
(estimator B, Eq. 7) a run's history records."""

from __future__ import annotations

import torch

from vae_lib.model.objectives import elbo, has_standard_normal_prior
from vae_lib.model.two_layer import TwoLayerVAE
from vae_lib.model.vae import VAE
from vae_lib.training.algorithms import KLWeight, two_layer_terms, update_rule
from vae_lib.training.mcem import MCEMRule
from vae_lib.training.train_config import TEST_SEED, TrainConfig


@torch.no_grad()
def evaluate(model: VAE, x: torch.Tensor, batch_size: int = 1000, seed: int = TEST_SEED) -> dict[str, float]:
    """Mean bound, rate and distortion of ``model`` on observations ``x`` (N, D), estimator B with
    L = 1 and a seeded draw of z, so the number is repeatable; for a model with a learned prior (no closed-form
    KL) estimator A with the same draw, its rate log q(z|x) − log p(z) at that z; for the two-layer model its
    log-weight of one seeded draw (:func:`~vae_lib.training.algorithms.two_layer_terms`)."""
    g = torch.Generator(device=x.device).manual_seed(seed)
    estimator = "B" if has_standard_normal_prior(model) else "A"
    totals = torch.zeros(3, device=x.device)
    for xb in x.split(batch_size):
        if isinstance(model, TwoLayerVAE):
            t = two_layer_terms(model, xb, model.driver_noise(1, len(xb), g))[1]
        else:
            t = elbo(model, xb, estimator=estimator, generator=g)
        totals += torch.stack([t.bound.sum(), t.kl.sum(), -t.reconstruction.sum()])
    bound, rate, distortion = (totals / len(x)).tolist()
    return {"bound": bound, "rate": rate, "distortion": distortion}


def make_optimizer(model: VAE, config: TrainConfig, capturable: bool = False) -> torch.optim.Optimizer:
    """The optimizer ``config`` names (Adam, or Adagrad as in the paper) with its step size and weight decay."""
    # MCEM learns the decoder's parameters only (vae_lib.training.mcem); every other rule the whole model's
    params = MCEMRule.parameters(model) if config.algorithm == "mcem" else list(model.parameters())
    if config.optimizer == "adam":
        if capturable:  # a CUDA graph replays the update: its step counts must live on the device
            return torch.optim.Adam(params, lr=config.lr, weight_decay=config.weight_decay,
                                    capturable=True, foreach=True)
        # fused: one pass over the parameters per step instead of a dozen elementwise ops each — faster
        # training on CPU (benchmarks/README.md); the same update, rounded differently. Only the CPU
        # has been measured so far, so other devices keep PyTorch's default.
        fused = params[0].device.type == "cpu"
        return torch.optim.Adam(params, lr=config.lr, weight_decay=config.weight_decay, fused=fused)
    return torch.optim.Adagrad(params, lr=config.lr, weight_decay=config.weight_decay)


BURDA_STAGES = 8   # Burda et al. (2015): stages i = 0..7, 3^i passes each, 3280 passes in all


def burda_lr_factor(epoch: int) -> float:
    """The step-size factor of Burda, Grosse & Salakhutdinov (2015), Section 5, at ``epoch`` (0-based): 3^i
    passes at 10^(−i/7) × the initial step size (0.001 in their runs) for i = 0, …, 7 — 3280 passes in all —
    and 10^(−1) after them."""
    if isinstance(epoch, bool) or not isinstance(epoch, int) or epoch < 0:
        raise ValueError(f"epoch must be an integer ≥ 0, got {epoch!r}")
    stage, end = 0, 1
    while epoch >= end and stage < BURDA_STAGES - 1:
        stage += 1
        end += 3 ** stage
    return 10 ** (-stage / 7)


def make_schedule(optimizer: torch.optim.Optimizer, config: TrainConfig) -> torch.optim.lr_scheduler.LRScheduler:
    """The step-size schedule ``config`` names: constant, cosine decay to 0 over the epochs, or Burda et al.'s
    stages (:func:`burda_lr_factor`: it depends on the epoch alone, so a run can be lengthened)."""
    if config.lr_schedule == "cosine":
        return torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=max(config.epochs, 1))
    if config.lr_schedule == "burda":
        return torch.optim.lr_scheduler.LambdaLR(optimizer, burda_lr_factor)
    return torch.optim.lr_scheduler.LambdaLR(optimizer, lambda epoch: 1.0)


STEP_MODES = ("eager", "compile", "graphed")


def make_step(model: VAE, optimizer: torch.optim.Optimizer, config: TrainConfig, mode: str = "eager"):
    """The training step ``step(x, noise) -> ELBOTerms`` of ``config.algorithm`` and the rule's
    ``draw_noise``. ``mode`` "eager" runs the update rule's loss as written (the reference);
    "compile" runs it through ``torch.compile`` (same draws, same update up to rounding); "graphed"
    uses the eager step for the minibatches a :class:`vae_lib.training.graphed.GraphedEpoch` leaves over."""
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

"""The first training steps of a :class:`~vae_lib.model.prior_vae.PriorVAE`, traced: what chapter 15 shows to
explain why the VampPrior needs the decoder's mean-image start.

:func:`trace_start` trains one model of the part's architecture (784–200–200–50, tanh, Adam 10⁻³, batches of
100, the ELBO with the Monte Carlo rate — estimator A) for a few hundred steps from a seeded start, and every
``every`` steps records on held-out images:

- the rate R = E_x KL(q(z|x) ‖ p(z)) (eq. 10's KL term, by one seeded draw per image for a learned prior);
- the active units, activity Cov_x(E_q[z_u]) > 10⁻² (Burda et al. 2015, §5.2);
- the common shift of the codes, ‖(1/N) Σₙ μ(xₙ)‖, and their spread, the mean over units of the standard
  deviation of μ_u(x) across images;
- the saturated fraction of the encoder's last tanh layer, abs(h) > 0.99 (where almost no gradient passes).

Nothing here is saved: the trace is cheap (seconds per hundred steps on one CPU thread) and recomputed by the
chapter on every run.
"""

from __future__ import annotations

from dataclasses import replace

import torch

from vae_lib.base.params import check_int
from vae_lib.inference.aggregate_posterior import average_rate
from vae_lib.model.kl_control import unit_activity
from vae_lib.model.prior_vae import PriorConfig, PriorVAE
from vae_lib.runs.beyond import ARCHITECTURE, BASE
from vae_lib.training.training_step import make_optimizer, make_step

#: a tanh unit counts as saturated above this absolute value
SATURATED = 0.99   # |tanh| above this passes less than 2 % of the gradient (1 − 0.99² ≈ 0.02)
#: what a trace records, each a list over the recorded steps
TRACE_KEYS = ("step", "rate", "active_units", "shift", "spread", "saturated")


@torch.no_grad()
def start_state(model: PriorVAE, x: torch.Tensor, seed: int = 0) -> dict[str, float]:
    """The quantities :func:`trace_start` records, for ``model`` on the images ``x`` (N, D)."""
    mu, log_var = model.encode(x)
    g = torch.Generator(device=x.device).manual_seed(seed)
    prior = None if model.prior_config.kind == "standard" else model.prior
    rate = average_rate(mu, log_var, prior=prior, generator=g).mean
    enc = model.encoder
    h = enc.act(enc.body(x))
    return {"rate": float(rate),
            "active_units": int((unit_activity(model, x) > 1e-2).sum()),
            "shift": float(mu.mean(0).norm()),
            "spread": float(mu.std(0).mean()),
            "saturated": float((h.abs() > SATURATED).float().mean())}


def trace_start(prior: PriorConfig, train_x: torch.Tensor, eval_x: torch.Tensor, steps: int = 300,
                every: int = 25, seed: int = 0) -> dict[str, list]:
    """Train a PriorVAE with ``prior`` on minibatches of ``train_x`` (N, 784), already binarized, for ``steps``
    Adam steps, recording :func:`start_state` on ``eval_x`` at step 0 and every ``every`` steps: a dict of
    lists keyed by :data:`TRACE_KEYS`. The model, its prior's start (pseudo-inputs drawn from ``train_x``) and
    the minibatch order all come from ``seed``."""
    check_int("steps", steps)
    check_int("every", every)
    if train_x.dim() != 2 or train_x.shape[1] != ARCHITECTURE.data_dim or eval_x.shape[1:] != train_x.shape[1:]:
        raise ValueError(f"train_x and eval_x must be (N, {ARCHITECTURE.data_dim}), got {tuple(train_x.shape)} "
                         f"and {tuple(eval_x.shape)}")
    torch.manual_seed(seed)
    g = torch.Generator(device=train_x.device).manual_seed(seed)
    model = PriorVAE(ARCHITECTURE, prior, data=train_x, generator=g).to(train_x.device)
    config = replace(BASE, estimator="A")
    optimizer = make_optimizer(model, config)
    step, draw_noise = make_step(model, optimizer, config)
    trace = {key: [] for key in TRACE_KEYS}

    def record(n: int) -> None:
        model.eval()
        trace["step"].append(n)
        for key, value in start_state(model, eval_x, seed).items():
            trace[key].append(value)
        model.train()

    record(0)
    order = torch.randperm(len(train_x), generator=g, device=train_x.device)
    for n in range(1, steps + 1):
        start = ((n - 1) * config.batch_size) % len(train_x)
        x = train_x[order[start:start + config.batch_size]]
        step(x, draw_noise(model, x, g))
        if n % every == 0 or n == steps:
            record(n)
    return trace

"""Adagrad's first steps at each candidate step size, as chapter 6 tabulates them: why the paper's largest
step size (0.1) diverges. Kingma & Welling (2013), Section 5, picked Adagrad's global step size from
{0.01, 0.02, 0.1}; Adagrad (Duchi et al. 2011) moves a parameter by lr · g / (√Σg² + 1e-10), so its FIRST
update moves every parameter whose gradient does not vanish by the full step size, whatever the gradient's
size. :func:`adagrad_first_steps` measures that; :func:`first_steps_table` draws the minibatch bound and
rate of the first steps as a Markdown table."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import torch

from vae_lib.model.objectives import elbo
from vae_lib.model.pixels import observe
from vae_lib.model.vae import VAE, VAEConfig


@dataclass
class FirstSteps:
    """What :func:`adagrad_first_steps` measured, per step size ``lr``."""

    terms: dict[float, list[tuple[float, float]]]   # per step: (minibatch bound, its KL) before the update
    share_moved_by_lr: dict[float, float]           # share of the parameters the first update moved by lr ± 1 %
    median_move: dict[float, float]                 # the median |Δθ| of the first update
    n_parameters: int


def adagrad_first_steps(model: VAEConfig, train_x: torch.Tensor, lrs: Sequence[float], weight_decay: float = 0.0,
                        n_steps: int = 20, batch_size: int = 100, seed: int = 0) -> FirstSteps:
    """Trains a fresh ``VAE(model)`` (torch seed ``seed``, the same initialization for every lr) for ``n_steps``
    Adagrad steps at each step size in ``lrs``, on the same minibatches of ``train_x`` (N, D) grey levels,
    binarized afresh, and the same draws of ε (a generator seeded 0, on ``train_x``'s device); the loss is the
    minibatch mean of estimator B. Records each step's bound and KL (nats per image) before its update and the
    size of the first update."""
    device = train_x.device
    terms, share, median, n_parameters = {}, {}, {}, 0
    for lr in lrs:
        torch.manual_seed(seed)
        m = VAE(model).to(device)
        opt = torch.optim.Adagrad(m.parameters(), lr=lr, weight_decay=weight_decay)
        g = torch.Generator(device=device).manual_seed(0)               # the same minibatches and draws for every lr
        terms[lr] = []
        for step in range(n_steps):
            idx = torch.randint(len(train_x), (batch_size,), generator=g, device=device)
            xb = observe(train_x[idx], "dynamic", g)
            before = [p.detach().clone() for p in m.parameters()]
            t = elbo(m, xb, generator=g)
            loss = -t.bound.mean()
            opt.zero_grad()
            loss.backward()
            opt.step()
            terms[lr].append((t.bound.mean().item(), t.kl.mean().item()))
            if step == 0:
                moved = torch.cat([(p - q).abs().flatten() for p, q in zip(m.parameters(), before)])
                share[lr] = ((moved / lr - 1).abs() < 0.01).float().mean().item()
                median[lr] = moved.median().item()
                n_parameters = len(moved)
    return FirstSteps(terms, share, median, n_parameters)


def first_steps_table(first: FirstSteps, shown: Sequence[int] = (1, 2, 3, 5, 10, 20)) -> str:
    """A Markdown table: one row per step number in ``shown`` (1-based, those that were taken), one column per
    step size, each cell the step's minibatch bound before its update with its rate (the KL) in brackets."""
    lrs = list(first.terms)
    n = min(len(rows) for rows in first.terms.values())
    lines = ["| step | " + " | ".join(f"lr = {lr:g}" for lr in lrs) + " |",
             "| ---: |" + " ---: |" * len(lrs)]
    for s in (s for s in shown if 1 <= s <= n):
        cells = (f"{first.terms[lr][s - 1][0]:.3g} ({first.terms[lr][s - 1][1]:.3g})" for lr in lrs)
        lines.append(f"| {s} | " + " | ".join(cells) + " |")
    return "\n".join(lines)

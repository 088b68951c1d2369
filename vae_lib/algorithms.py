"""The learning algorithms the book compares, each one update rule behind the same driver
(:func:`vae_lib.train.fit`): the same minibatch loop, checkpoints, NaN guard, progress and History.

An update rule is two pure functions:

- ``draw_noise(model, x, generator)``: every random draw the step needs, as a tensor or a
  NamedTuple of tensors, each with the minibatch as its first dimension;
- ``loss(model, x, noise) -> (loss, report)``: the scalar the optimizer *minimizes* (minibatch
  mean) and the per-example :class:`~vae_lib.objectives.ELBOTerms` the step reports — for every
  algorithm the variational lower bound with the encoder as q, the number Figure 2 plots.

Because the draws come in as tensors, ``loss`` can be compiled or captured in a CUDA graph and
compared with its eager self draw for draw.
"""

from __future__ import annotations

from typing import Any, Callable, NamedTuple

import torch

from .objectives import ELBOTerms, elbo
from .wake_sleep import draw_wake_sleep_noise, wake_sleep_objectives

ALGORITHMS = ("aevb", "wake_sleep")


class UpdateRule(NamedTuple):
    """One learning algorithm as the training driver sees it (see the module docstring)."""

    name: str
    draw_noise: Callable[[Any, torch.Tensor, torch.Generator | None], Any]
    loss: Callable[[Any, torch.Tensor, Any], tuple[torch.Tensor, ELBOTerms]]


def aevb_rule(n_samples: int = 1, estimator: str = "B") -> UpdateRule:
    """AEVB — Kingma & Welling (2013), Algorithm 1: ascend the SGVB estimate (Eq. 6 for estimator A,
    Eq. 7 for B) of the bound with L = ``n_samples`` draws ε ~ N(0, I), drawn as (B, L, J) so that
    every noise tensor of every rule has the minibatch first (with L = 1 the same numbers as (L, B, J))."""

    def draw_noise(model, x: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
        return torch.randn(x.shape[0], n_samples, model.latent_dim, generator=generator,
                           device=x.device, dtype=x.dtype)

    def loss(model, x: torch.Tensor, eps: torch.Tensor) -> tuple[torch.Tensor, ELBOTerms]:
        terms = elbo(model, x, n_samples, estimator, eps=eps.transpose(0, 1))
        # the sum over pixels and latents happened inside; the mean over the batch is taken here
        return -terms.bound.mean(), ELBOTerms(terms.reconstruction.detach(), terms.kl.detach())

    return UpdateRule("aevb", draw_noise, loss)


def wake_sleep_rule() -> UpdateRule:
    """Wake-sleep (vae_lib.wake_sleep): ascend wake.mean() + sleep.mean(); each reaches one network."""

    def loss(model, x: torch.Tensor, noise) -> tuple[torch.Tensor, ELBOTerms]:
        wake, sleep, report = wake_sleep_objectives(model, x, noise)
        return -(wake.mean() + sleep.mean()), report

    return UpdateRule("wake_sleep", draw_wake_sleep_noise, loss)


def update_rule(algorithm: str, n_samples: int = 1, estimator: str = "B") -> UpdateRule:
    """The update rule of ``algorithm`` (one of ALGORITHMS)."""
    if algorithm == "aevb":
        return aevb_rule(n_samples, estimator)
    if algorithm == "wake_sleep":
        return wake_sleep_rule()
    raise ValueError(f"unknown algorithm {algorithm!r}; choose one of {ALGORITHMS}")

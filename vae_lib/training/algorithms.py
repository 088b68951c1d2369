"""The learning algorithms the book compares, each one update rule behind the same driver
(:func:`vae_lib.training.train.fit`): the same minibatch loop, checkpoints, NaN guard, progress and History.

An update rule is two pure functions:

- ``draw_noise(model, x, generator)``: every random draw the step needs, as a tensor or a
  NamedTuple of tensors, each with the minibatch as its first dimension;
- ``loss(model, x, noise) -> (loss, report)``: the scalar the optimizer *minimizes* (minibatch
  mean) and the per-example :class:`~vae_lib.model.objectives.ELBOTerms` the step reports — for every
  algorithm the variational lower bound with the encoder as q, the number Figure 2 plots.

Because the draws come in as tensors, ``loss`` can be compiled or captured in a CUDA graph and
compared with its eager self draw for draw.
"""

from __future__ import annotations

import math
from typing import Any, Callable, NamedTuple

import torch

from vae_lib.model.iwae import dreg_surrogate, iwae_bound
from vae_lib.model.kl_control import free_bits_kl
from vae_lib.model.objectives import ELBOTerms, elbo, has_standard_normal_prior, kl_to_standard_normal
from vae_lib.model.two_layer import TwoLayerVAE
from vae_lib.training.wake_sleep import draw_wake_sleep_noise, wake_sleep_objectives

ALGORITHMS = ("aevb", "wake_sleep", "iwae", "iwae_dreg")


class KLWeight:
    """The KL term's weight β_t, which the driver sets before each step (a schedule moves it), and
    the free bits λ (nats per latent dimension) — see :mod:`vae_lib.model.kl_control`. β = 1, λ = 0 is
    the ELBO itself."""

    def __init__(self, beta: float = 1.0, free_bits: float = 0.0):
        self.value = float(beta)
        self.free_bits = float(free_bits)

    @property
    def is_elbo(self) -> bool:
        return self.value == 1.0 and self.free_bits == 0.0


def two_layer_terms(model: TwoLayerVAE, x: torch.Tensor, noise) -> tuple[torch.Tensor, ELBOTerms]:
    """The two-stochastic-layer model's log-weights log w_i (k, B) for the driver's ``noise``
    (:class:`~vae_lib.model.two_layer.TwoLayerNoise`, minibatch first), and the ELBO's Monte Carlo split of the
    same draws, detached: reconstruction mean_i log p(x|z1_i) and rate mean_i [log p(x|z1_i) − log w_i]
    (both layers' KL; no closed form here)."""
    log_w, log_px_z1 = model.log_weight_terms(x, (noise[0].transpose(0, 1), noise[1].transpose(0, 1)))   # (k, B)
    reconstruction = log_px_z1.mean(0)
    return log_w, ELBOTerms(reconstruction.detach(), (reconstruction - log_w.mean(0)).detach())


class UpdateRule(NamedTuple):
    """One learning algorithm as the training driver sees it (see the module docstring)."""

    name: str
    draw_noise: Callable[[Any, torch.Tensor, torch.Generator | None], Any]
    loss: Callable[[Any, torch.Tensor, Any], tuple[torch.Tensor, ELBOTerms]]


def aevb_rule(
    n_samples: int = 1, estimator: str = "B", kl: KLWeight | None = None
) -> UpdateRule:
    """AEVB — Kingma & Welling (2013), Algorithm 1: ascend the SGVB
    estimate (Eq. 6 for estimator A, Eq. 7 for B) of the bound with
    L = ``n_samples`` draws ε ~ N(0, I), drawn as (B, L, J) so that every
    noise tensor of every rule has the minibatch first (with L = 1 the
    same numbers as (L, B, J)).

    With a ``kl`` weight other than the ELBO's, the loss is
    −(mean reconstruction − β_t · KL term), the KL term the minibatch mean
    of the KL or, with free bits,
    :func:`~vae_lib.model.kl_control.free_bits_kl` (estimator B). The
    report is the unweighted ELBO either way."""

    def draw_noise(model, x: torch.Tensor, generator=None) -> torch.Tensor:
        shape = (x.shape[0], n_samples, model.latent_dim)
        return torch.randn(
            shape, generator=generator, device=x.device, dtype=x.dtype
        )

    def loss(model, x: torch.Tensor, eps: torch.Tensor):
        eps = eps.transpose(0, 1)  # (L, B, J)
        if kl is not None and kl.free_bits > 0:
            mu, log_var = model.encode(x)
            z = mu + torch.exp(0.5 * log_var) * eps  # (L, B, J)
            reconstruction = model.log_likelihood(x, z).mean(0)  # (B,)
            kl_term = free_bits_kl(mu, log_var, kl.free_bits)
            report = ELBOTerms(
                reconstruction.detach(),
                kl_to_standard_normal(mu, log_var).detach(),
            )
            return -(reconstruction.mean() - kl.value * kl_term), report
        terms = elbo(model, x, n_samples, estimator, eps=eps)
        reconstruction, kl_term = terms.reconstruction, terms.kl
        report = ELBOTerms(reconstruction.detach(), kl_term.detach())
        if kl is not None and not kl.is_elbo:
            weighted = reconstruction.mean() - kl.value * kl_term.mean()
            return -weighted, report
        # the sums over pixels and latents happened inside; the mean over
        # the minibatch is taken here
        return -terms.bound.mean(), report

    return UpdateRule("aevb", draw_noise, loss)


def two_layer_rule(name: str, k: int, importance_weighted: bool) -> UpdateRule:
    """The rule ``name`` for the two-stochastic-layer model (:class:`~vae_lib.model.two_layer.TwoLayerVAE`) on its
    own log-weights (:func:`two_layer_terms`), its noise a :class:`~vae_lib.model.two_layer.TwoLayerNoise`:
    AEVB's estimator A, the bound (1/k) Σ_i log w_i, or with ``importance_weighted`` Burda et al.'s
    log (1/k) Σ_i w_i. The driver refuses a KL weight and DReG for this model."""

    def draw_noise(model, x: torch.Tensor, generator: torch.Generator | None = None):
        return model.driver_noise(k, x.shape[0], generator)

    def loss(model, x: torch.Tensor, noise) -> tuple[torch.Tensor, ELBOTerms]:
        log_w, report = two_layer_terms(model, x, noise)                      # (k, B)
        bound = torch.logsumexp(log_w, 0) - math.log(k) if importance_weighted else log_w.mean(0)
        return -bound.mean(), report

    return UpdateRule(name, draw_noise, loss)


def for_two_layer_too(rule: UpdateRule, two_layer: UpdateRule) -> UpdateRule:
    """``rule`` for the library's one-layer models, ``two_layer`` for a :class:`~vae_lib.model.two_layer.TwoLayerVAE`,
    chosen per call by the model's type — so the rules the chapters show stay the algorithms they teach."""

    def pick(model) -> UpdateRule:
        return two_layer if isinstance(model, TwoLayerVAE) else rule

    return UpdateRule(rule.name, lambda model, x, generator=None: pick(model).draw_noise(model, x, generator),
                      lambda model, x, noise: pick(model).loss(model, x, noise))


def iwae_rule(k: int, dreg: bool = False) -> UpdateRule:
    """IWAE — Burda et al. (2015): ascend the k-sample bound L_k (:func:`vae_lib.model.iwae.iwae_bound`),
    with the gradient of their Eq. 14, or with ``dreg`` the doubly reparameterized one (Tucker et al.
    2018). The noise is (B, k, J); the report is the ELBO of the same draws (reconstruction averaged
    over the k draws, the analytic KL), so History compares with every other rule's. (The two-stochastic-layer
    model trains with :func:`two_layer_rule` in its place, :func:`update_rule` picks it.) For a model with a
    learned prior the KL is the Monte Carlo rate of the same k draws, mean_i [log q(z_i|x) − log p(z_i)]
    = reconstruction − mean_i log w_i, and the prior's parameters train with the bound."""

    def draw_noise(model, x: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
        return torch.randn(x.shape[0], k, model.latent_dim, generator=generator, device=x.device, dtype=x.dtype)

    def loss(model, x: torch.Tensor, eps: torch.Tensor) -> tuple[torch.Tensor, ELBOTerms]:
        eps = eps.transpose(0, 1)                                             # (k, B, J)
        terms = dreg_surrogate(model, x, eps) if dreg else iwae_bound(model, x, eps)
        if not has_standard_normal_prior(model):                              # no closed form: the draws' rate
            rate = terms.reconstruction - terms.log_w.detach().mean(0)
            return -terms.bound.mean(), ELBOTerms(terms.reconstruction, rate)
        with torch.no_grad():
            kl = kl_to_standard_normal(*model.encode(x))                      # the encoder only: cheap
        return -terms.bound.mean(), ELBOTerms(terms.reconstruction, kl)

    return UpdateRule("iwae_dreg" if dreg else "iwae", draw_noise, loss)


def wake_sleep_rule() -> UpdateRule:
    """Wake-sleep (vae_lib.training.wake_sleep): ascend wake.mean() + sleep.mean(); each reaches one network."""

    def loss(model, x: torch.Tensor, noise) -> tuple[torch.Tensor, ELBOTerms]:
        wake, sleep, report = wake_sleep_objectives(model, x, noise)
        return -(wake.mean() + sleep.mean()), report

    return UpdateRule("wake_sleep", draw_wake_sleep_noise, loss)


def update_rule(algorithm: str, n_samples: int = 1, estimator: str = "B", kl: KLWeight | None = None) -> UpdateRule:
    """The update rule of ``algorithm`` (one of ALGORITHMS); for IWAE ``n_samples`` is k."""
    if algorithm == "aevb":
        return for_two_layer_too(aevb_rule(n_samples, estimator, kl), two_layer_rule("aevb", n_samples, False))
    if algorithm in ("iwae", "iwae_dreg"):
        return for_two_layer_too(iwae_rule(n_samples, dreg=algorithm == "iwae_dreg"),
                                 two_layer_rule(algorithm, n_samples, True))
    if algorithm == "wake_sleep":
        return wake_sleep_rule()
    raise ValueError(f"unknown algorithm {algorithm!r}; choose one of {ALGORITHMS}")

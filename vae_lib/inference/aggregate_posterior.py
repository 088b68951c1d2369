"""The aggregate posterior against the prior: "ELBO surgery" (Hoffman & Johnson 2016).

For N images with diagonal-Gaussian posteriors q(z|xₙ) = N(μₙ, diag σₙ²), the aggregate posterior is the
mixture q(z) = (1/N) Σₙ q(z|xₙ), and the average rate splits exactly as

    R = (1/N) Σₙ KL(q(z|xₙ) ‖ p(z)) = I(n; z) + KL(q(z) ‖ p(z)),                (Hoffman & Johnson, Eq. 3)

with I(n; z) = (1/N) Σₙ E_{q(z|xₙ)}[log q(z|xₙ) − log q(z)] the mutual information between the image's
index and its code under the joint q(n, z) = q(z|xₙ)/N, so 0 ≤ I ≤ log N (I = log N needs posteriors that
do not overlap at all). The part of the rate a prior can remove is KL(q(z) ‖ p(z)); I is the part the
code needs to tell images apart.

How the book estimates each term (:func:`rate_split`): z is drawn from every posterior in turn (stratified:
``n_samples`` draws per image, so q(z) is sampled exactly), and per draw

    I:  log q(z|xₙ) − log q(z),   log q(z) = logsumexp_m log q(z|x_m) − log N over all N components
    R:  log q(z|xₙ) − log p(z)   (or, for p(z) = N(0, I), the closed form of Kingma & Welling, Appendix B)
    KL: R − I per image, so the three estimates are paired and R = I + KL holds to rounding.

Estimating I directly (not as R − KL) keeps it ≤ log N draw by draw, since q(z) ≥ q(z|xₙ)/N (it is ≥ 0
only on average), and exact in both limits: identical posteriors give I = 0 and separated ones I = log N with no Monte
Carlo noise; with the closed-form R, identical posteriors then give the marginal KL exactly too.

Each is averaged per image and reported as an :class:`~vae_lib.base.statistics.Estimate` over the N images
(std/√N: the images' spread plus the Monte Carlo noise; with stratified draws this slightly overstates
the Monte Carlo part).

Bias, and the book's choice. For the mixture of *these* N posteriors, log q(z) summed over the same N
components is exact, and the only error is the Monte Carlo one above. As an estimate of the aggregate
posterior of the data distribution (N → ∞), it is biased: KL is jointly convex, so over random sets of N
images E[KL(q_N ‖ p)] ≥ KL(q_∞ ‖ p) — the marginal KL is overstated, I understated, and I can never exceed
log N (each draw's own component alone gives q_N(z) ≥ q(z|xₙ)/N). The bias is small while I ≪ log N and
dominant when I approaches log N. ``leave_one_out=True`` drops each draw's own component (log q_{−n}(z),
over N − 1 components): an unbiased density estimate of q_∞ at z, whose logarithm is biased low, the
opposite side. The book's choice: report the split of the N images it scores (own component included,
Hoffman & Johnson's definition), print log N beside I, and read an I within a few tenths of a nat of
log N as "saturated: this N cannot measure it", not as a property of the model.
"""

from __future__ import annotations

import math
from typing import NamedTuple

import torch

from vae_lib.base.params import check_float, check_int
from vae_lib.base.statistics import Estimate, estimate
from vae_lib.model.objectives import LOG_2PI, LatentVariableModel, kl_to_standard_normal, log_normal_diag
from vae_lib.model.priors import StandardNormalPrior

CHUNK_ELEMENTS = 2 ** 22   # (draws × components) log-densities held at once: 32 MiB in float64


class RateSplit(NamedTuple):
    """The three terms of R = I + KL(q(z) ‖ p(z)), in nats per image, each a mean over the N images with
    its standard error; ``log_n`` = log N, the ceiling on I."""

    rate: Estimate
    marginal_kl: Estimate
    mutual_information: Estimate
    log_n: float


def _check_posteriors(mu: torch.Tensor, log_var: torch.Tensor) -> None:
    if not (isinstance(mu, torch.Tensor) and isinstance(log_var, torch.Tensor)) or mu.dim() != 2 \
            or mu.shape != log_var.shape or mu.shape[0] == 0:
        shapes = [tuple(t.shape) if isinstance(t, torch.Tensor) else type(t).__name__ for t in (mu, log_var)]
        raise ValueError(f"mu and log_var must be tensors of one shape (N, J) with N ≥ 1, got {shapes[0]} and {shapes[1]}")
    if not bool(torch.isfinite(mu).all() & torch.isfinite(log_var).all()):
        raise ValueError("mu and log_var must be finite")


@torch.no_grad()
def posterior_parameters(model: LatentVariableModel, x: torch.Tensor,
                         batch_size: int = 1000) -> tuple[torch.Tensor, torch.Tensor]:
    """mu, log_var of q(z|xₙ) for every row of x (N, D), encoded in batches: (N, J) each."""
    check_int("batch_size", batch_size)
    parts = [model.encode(xb) for xb in x.split(batch_size)]
    return torch.cat([p[0] for p in parts]), torch.cat([p[1] for p in parts])


@torch.no_grad()
def aggregate_log_density(z: torch.Tensor, mu: torch.Tensor, log_var: torch.Tensor,
                          exclude: torch.Tensor | None = None) -> torch.Tensor:
    """log q(z) = logsumexp_n log N(z; μₙ, diag σₙ²) − log N, the aggregate posterior's log-density at
    each row of z (M, J), for components mu, log_var (N, J) → (M,). With ``exclude`` (M,) component
    indices, row m leaves component exclude[m] out (then − log(N − 1)).

    Computed in float64, in chunks of draws: the squared distance Σ_j (z_j − μ_nj)²/σ_nj² is expanded into
    three matrix products, so memory is (chunk, N), not (chunk, N, J) — N = 10000, J = 50 fits easily;
    float64 because the expansion subtracts numbers of size z²/σ², large for tight posteriors."""
    _check_posteriors(mu, log_var)
    if z.dim() != 2 or z.shape[1] != mu.shape[1]:
        raise ValueError(f"z must have shape (M, J) with J = {mu.shape[1]}, got {tuple(z.shape)}")
    n = mu.shape[0]
    if exclude is not None and n < 2:
        raise ValueError("leaving a component out needs N ≥ 2 posteriors")
    mu64, log_var64, z64 = mu.double(), log_var.double(), z.double()
    precision = torch.exp(-log_var64)                                     # (N, J)
    weighted_mu = mu64 * precision                                        # (N, J)
    # log N(z; μₙ, σₙ²) = −½ (J log 2π + Σ log σ² + Σ z²/σ² − 2 Σ z μ/σ² + Σ μ²/σ²)
    constant = LOG_2PI * mu.shape[1] + log_var64.sum(-1)                 # (N,)
    mu_term = (mu64 * weighted_mu).sum(-1)                                # Σ μ²/σ², (N,)
    chunk = max(1, CHUNK_ELEMENTS // n)
    out = []
    for start in range(0, z64.shape[0], chunk):
        zc = z64[start:start + chunk]                                     # (c, J)
        squared = (zc ** 2) @ precision.T - 2 * zc @ weighted_mu.T + mu_term   # (c, N), ≥ 0 up to rounding
        log_q = -0.5 * (constant + squared.clamp(min=0))                  # (c, N)
        if exclude is not None:
            log_q[torch.arange(len(zc)), exclude[start:start + chunk]] = -math.inf
        out.append(torch.logsumexp(log_q, dim=1))
    count = n - 1 if exclude is not None else n
    return (torch.cat(out) - math.log(count)).to(z.dtype)


@torch.no_grad()
def rate_split(mu: torch.Tensor, log_var: torch.Tensor, prior=None, n_samples: int = 1,
               generator: torch.Generator | None = None, closed_form: bool | None = None,
               leave_one_out: bool = False) -> RateSplit:
    """R, KL(q(z) ‖ p(z)) and I = R − KL for the N posteriors mu, log_var (N, J) and a ``prior`` with
    ``log_prob(z) -> (...)`` (None: N(0, I)); the estimators and their bias are in the module's docstring.

    ``n_samples`` draws z ~ q(z|xₙ) per image (from ``generator``). ``closed_form`` (default: whenever the
    prior is the standard normal) takes each image's KL(q(z|xₙ) ‖ N(0, I)) from Appendix B instead of
    the draws. Cost: N · n_samples · N · J multiply-adds; N = 10000, J = 50 is a few seconds on a CPU."""
    _check_posteriors(mu, log_var)
    check_int("n_samples", n_samples)
    n, j = mu.shape
    standard = prior is None or isinstance(prior, StandardNormalPrior)
    if closed_form is None:
        closed_form = standard
    if closed_form and not standard:
        raise ValueError("the closed-form rate needs the standard normal prior (prior=None or StandardNormalPrior)")
    if prior is not None and getattr(prior, "latent_dim", j) != j:
        raise ValueError(f"the prior is over J = {prior.latent_dim} latents, the posteriors over J = {j}")
    log_prior = (lambda z: -0.5 * (LOG_2PI + z ** 2).sum(-1)) if prior is None else prior.log_prob
    eps = torch.randn(n_samples, n, j, generator=generator, device=mu.device, dtype=mu.dtype)
    z = mu + torch.exp(0.5 * log_var) * eps                               # (S, N, J): stratified, S per image
    own = torch.arange(n, device=mu.device).repeat(n_samples) if leave_one_out else None
    log_q_agg = aggregate_log_density(z.reshape(-1, j), mu, log_var, exclude=own).reshape(n_samples, n)
    log_q_own = log_normal_diag(z, mu, log_var)                           # log q(z|xₙ), (S, N)
    information = (log_q_own - log_q_agg).mean(0)                         # (N,) per image
    if closed_form:
        rate = kl_to_standard_normal(mu, log_var)                         # (N,) exact per image
    else:
        rate = (log_q_own - log_prior(z)).mean(0)                         # (N,)
    return RateSplit(rate=estimate(rate, "rate"), marginal_kl=estimate(rate - information, "KL(q(z) ‖ p(z))"),
                     mutual_information=estimate(information, "I(n; z)"), log_n=math.log(n))


def average_rate(mu: torch.Tensor, log_var: torch.Tensor, prior=None, n_samples: int = 1,
                 generator: torch.Generator | None = None, closed_form: bool | None = None) -> Estimate:
    """R = (1/N) Σₙ KL(q(z|xₙ) ‖ p(z)) alone (see :func:`rate_split`), without the O(N²) aggregate term."""
    _check_posteriors(mu, log_var)
    standard = prior is None or isinstance(prior, StandardNormalPrior)
    if closed_form is None:
        closed_form = standard
    if closed_form:
        if not standard:
            raise ValueError("the closed-form rate needs the standard normal prior (prior=None or StandardNormalPrior)")
        return estimate(kl_to_standard_normal(mu, log_var), "rate")
    check_int("n_samples", n_samples)
    z = mu + torch.exp(0.5 * log_var) * torch.randn(n_samples, *mu.shape, generator=generator,
                                                    device=mu.device, dtype=mu.dtype)
    log_p = prior.log_prob(z) if prior is not None else -0.5 * (LOG_2PI + z ** 2).sum(-1)
    return estimate((log_normal_diag(z, mu, log_var) - log_p).mean(0), "rate")


def log_density_ratio(z: torch.Tensor, mu: torch.Tensor, log_var: torch.Tensor, prior=None) -> torch.Tensor:
    """log q(z) − log p(z) at the points ``z`` (M, J): the aggregate posterior of the N posteriors mu, log_var
    (:func:`aggregate_log_density`) against a ``prior`` with ``log_prob`` (None: N(0, I)). Below log ``ratio``
    the point is in a hole (:func:`prior_mass_in_holes`); above 0 codes crowd there more than the prior expects."""
    log_p = -0.5 * (LOG_2PI + z ** 2).sum(-1) if prior is None else prior.log_prob(z)
    return aggregate_log_density(z, mu, log_var) - log_p


@torch.no_grad()
def prior_mass_in_holes(mu: torch.Tensor, log_var: torch.Tensor, prior=None, ratio: float = 0.1,
                        n_draws: int = 20000, generator: torch.Generator | None = None) -> Estimate:
    """The prior's mass in the aggregate posterior's holes, P_{z∼p}[q(z) < ratio · p(z)], for the N posteriors
    mu, log_var (N, J) and a ``prior`` with ``sample`` and ``log_prob`` (None: N(0, I)).

    A hole is where the prior expects codes (it puts mass there) and no image sends one: the aggregate
    posterior q(z) = (1/N) Σₙ q(z|xₙ) is below ``ratio`` times the prior's density. Estimated by
    ``n_draws`` draws from the prior, the indicator averaged: an :class:`~vae_lib.base.statistics.Estimate`
    whose s.e. is the binomial one, √(P(1 − P)/M). It is exact in expectation for the mixture of *these*
    N posteriors; in many dimensions that mixture is a poor estimate of q_∞ far from the codes, so the book
    uses this measure in two dimensions, where N = 10000 posteriors cover the plane."""
    _check_posteriors(mu, log_var)
    check_int("n_draws", n_draws)
    check_float("ratio", ratio, low=0.0, low_open=True)
    j = mu.shape[1]
    if prior is None:
        z = torch.randn(n_draws, j, generator=generator, device=mu.device, dtype=mu.dtype)
    else:
        z = prior.sample(n_draws, generator=generator).to(mu.dtype)
    in_hole = log_density_ratio(z, mu, log_var, prior) < math.log(ratio)
    return estimate(in_hole.to(torch.float64), "prior mass in holes")


@torch.no_grad()
def grid_log_densities(mu: torch.Tensor, log_var: torch.Tensor, limit: float = 4.0,
                       steps: int = 121) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """For a two-dimensional latent space: the grid (steps,) of coordinates from −limit to limit, and on the
    grid (steps, steps) the aggregate posterior's log q(z) (:func:`aggregate_log_density`) and N(0, I)'s
    log p(z), indexed [row = z₂, column = z₁] as matplotlib's ``imshow`` and ``contour`` expect."""
    _check_posteriors(mu, log_var)
    if mu.shape[1] != 2:
        raise ValueError(f"the grid is two-dimensional: the posteriors must have J = 2, got J = {mu.shape[1]}")
    check_int("steps", steps, low=2)
    axis = torch.linspace(-limit, limit, steps, dtype=mu.dtype, device=mu.device)
    z2, z1 = torch.meshgrid(axis, axis, indexing="ij")
    z = torch.stack([z1.reshape(-1), z2.reshape(-1)], dim=1)
    log_q = aggregate_log_density(z, mu, log_var).reshape(steps, steps)
    log_p = (-0.5 * (LOG_2PI + z ** 2).sum(-1)).reshape(steps, steps)
    return axis, log_q, log_p

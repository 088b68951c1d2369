"""The paper's own marginal-likelihood estimator — Kingma & Welling (2013), Appendix D.

It is not importance sampling with the encoder (that is :mod:`vae_lib.inference.likelihood`). For each x:

1. draw L samples z_l ~ p(z|x) with Hamiltonian Monte Carlo (:mod:`vae_lib.inference.hmc`);
2. fit a density q(z) to them;
3. draw L fresh samples z_l ~ p(z|x) and estimate

       p(x) ≈ ( (1/L) Σ_l q(z_l) / (p(z_l) p(x|z_l)) )⁻¹,

   a harmonic-mean-type estimator: E_{p(z|x)}[q(z) / p(x, z)] = ∫ q(z) dz / p(x) = 1 / p(x) for any
   normalized q. Computed in log space: log p̂(x) = −logsumexp_l(log q(z_l) − log p(x, z_l)) + log L.

The density estimator here is a full-covariance Gaussian fitted per image by its sample mean and
covariance. The paper does not say which estimator it used; a Gaussian is cheap, needs no tuning,
and is exact when the posterior is Gaussian (the linear-Gaussian model), where the ratio
q(z)/p(z|x) is then nearly constant and the estimate nearly exact. The estimator's variance is
finite only when q has lighter tails than p(z|x); a Gaussian fitted to a heavy-tailed or
multi-modal posterior can make it unreliable, which ``ratio_ess`` (small values) reveals.
"""

from __future__ import annotations

import math
from typing import NamedTuple

import torch
from torch.distributions import MultivariateNormal

from vae_lib.model.objectives import LatentVariableModel, log_standard_normal
from vae_lib.inference.hmc import effective_sample_size, sample_posterior


class AppendixDEstimate(NamedTuple):
    """Per-image results, for x (B, D): ``log_px`` the estimate log p̂(x), (B,); ``stderr`` its
    Monte-Carlo standard error by the delta method, sd(r) / (mean(r) √ESS(r)), with ESS(r) the
    effective sample size of the chain of ratios r_l = q(z_l) / p(x, z_l) (not of z: HMC can move z
    antithetically, which helps means of z but not of r), (B,); ``q_mean`` (B, J) and ``q_cov``
    (B, J, J) of the fitted Gaussian q(z); ``ratio_ess`` (Σ r)² / Σ r² of the L ratios, between 1 and
    L (L when q ∝ p(z|x)), (B,); ``accept_rate`` and ``ess`` (smallest over J) of the chains, (B,)."""

    log_px: torch.Tensor
    stderr: torch.Tensor
    q_mean: torch.Tensor
    q_cov: torch.Tensor
    ratio_ess: torch.Tensor
    accept_rate: torch.Tensor
    ess: torch.Tensor


def fit_gaussian(z: torch.Tensor, ridge: float = 1e-9) -> MultivariateNormal:
    """The Gaussian N(z̄, S) fitted to samples z (L, B, J) of every image: sample mean z̄ (B, J) and
    covariance S = Σ_l (z_l − z̄)(z_l − z̄)ᵀ / (L − 1), (B, J, J), plus ``ridge`` · mean variance · I
    so a (nearly) singular S stays positive definite."""
    n, _, j = z.shape
    if n <= j:
        raise ValueError(f"fitting a {j}-dimensional covariance needs more than {j} samples, got {n}")
    mean = z.mean(0)                                                       # (B, J)
    centred = z - mean                                                     # (L, B, J)
    cov = torch.einsum("lbi,lbj->bij", centred, centred) / (n - 1)         # (B, J, J)
    scale = cov.diagonal(dim1=-2, dim2=-1).mean(-1)[:, None, None]         # (B, 1, 1)
    cov = cov + ridge * scale * torch.eye(j, dtype=z.dtype, device=z.device)
    return MultivariateNormal(mean, covariance_matrix=cov)


def harmonic_mean_log_marginal(log_q: torch.Tensor, log_joint: torch.Tensor) -> torch.Tensor:
    """log p̂(x) = −log( (1/L) Σ_l exp(log q(z_l) − log p(x, z_l)) ), Appendix D, step 3, with
    log-sum-exp. log_q, log_joint: (L, B) at posterior samples z_l → (B,)."""
    return -(torch.logsumexp(log_q - log_joint, dim=0) - math.log(log_q.shape[0]))


def appendix_d_log_marginal(model: LatentVariableModel, x: torch.Tensor, n_samples: int = 1000,
                            n_leapfrog: int = 10, burn_in: int = 300, target_accept: float = 0.9,
                            init_z: torch.Tensor | None = None, precondition: bool = True,
                            generator: torch.Generator | None = None) -> AppendixDEstimate:
    """Kingma & Welling (2013), Appendix D, for every image of x (B, D) with L = ``n_samples``.

    One HMC chain per image (:func:`vae_lib.inference.hmc.sample_posterior`, ``burn_in`` adaptation steps,
    then 2L draws): the first L fit q(z) (:func:`fit_gaussian`), the last L — not used in the fit —
    enter the estimate (:func:`harmonic_mean_log_marginal`). One chain instead of two keeps a
    single burn-in; the two halves are nearly independent once L is much larger than the
    autocorrelation time (``ess`` reports it). ``init_z`` (B, J) starts the chains there instead of
    at the encoder's mean: a chain that never reaches the posterior's main mode gives an estimate
    too low by the mass it missed, and nothing in the diagnostics shows it. ``precondition=False``
    with an ``init_z`` uses no encoder at all (:func:`vae_lib.inference.hmc.sample_posterior`)."""
    samples = sample_posterior(model, x, 2 * n_samples, n_leapfrog=n_leapfrog, burn_in=burn_in,
                               target_accept=target_accept, init_z=init_z, precondition=precondition,
                               generator=generator)
    q = fit_gaussian(samples.z[:n_samples])
    z = samples.z[n_samples:]                                               # fresh draws: (L, B, J)
    with torch.no_grad():
        log_joint = model.log_likelihood(x, z) + log_standard_normal(z)     # log p(x|z) + log p(z): (L, B)
        log_ratio = q.log_prob(z) - log_joint                               # log r_l: (L, B)
        ratio_ess = torch.exp(2 * torch.logsumexp(log_ratio, 0) - torch.logsumexp(2 * log_ratio, 0))
        log_px = harmonic_mean_log_marginal(q.log_prob(z), log_joint)
        ratio = torch.exp(log_ratio - log_ratio.max(0).values)              # r_l up to a factor per image
        stderr = ratio.std(0) / ratio.mean(0) / effective_sample_size(ratio).sqrt()
    return AppendixDEstimate(log_px, stderr, q.mean, q.covariance_matrix, ratio_ess, samples.accept_rate, samples.ess)

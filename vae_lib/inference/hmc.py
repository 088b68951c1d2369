"""Hamiltonian (Hybrid) Monte Carlo — Duane, Kennedy, Pendleton & Roweth (1987); Neal (2011),
"MCMC using Hamiltonian dynamics" — for posteriors p(z|x) ∝ p(x|z) p(z), batched: one independent
chain per image.

State z (B, J), momentum p (B, J) ~ N(0, I), Hamiltonian H(z, p) = −log p(x, z) + ½‖p‖². One step:
n_leapfrog leapfrog steps of size ε (Neal 2011, Eqs. 5.18–5.20),

    p ← p + (ε/2) ∇_z log p(x, z),   z ← z + ε p,   p ← p + (ε/2) ∇_z log p(x, z),

then the Metropolis correction (Neal 2011, Section 3.2): accept the end point with probability
min(1, exp(H(z, p) − H(z', p'))). The correction leaves the posterior invariant whatever ε is (no
discretization bias; the draws are still correlated, and a chain explores only the modes it reaches); ε only
sets how often proposals are accepted. Gradients come from autograd.
"""

from __future__ import annotations

import math
from typing import Callable, NamedTuple

import torch

from vae_lib.base.params import check_float, check_int
from vae_lib.model.objectives import LatentVariableModel, check_observations, log_standard_normal

LogDensity = Callable[[torch.Tensor], torch.Tensor]   # z (B, J) → log p(x_b, z_b) up to a constant, (B,)


class HMCStep(NamedTuple):
    """One HMC transition per chain: ``z`` the new state (B, J); ``accept_prob`` the Metropolis
    probability min(1, exp(−ΔH)), (B,), 0 where the trajectory diverged; ``accepted`` (B,) bool."""

    z: torch.Tensor
    accept_prob: torch.Tensor
    accepted: torch.Tensor


class PosteriorSamples(NamedTuple):
    """``z`` the draws (n_samples, B, J); per chain (B,): ``accept_rate`` the mean acceptance
    probability while sampling, ``ess`` the smallest effective sample size over the J coordinates,
    ``step_size`` the adapted ε (in the encoder-standardized coordinates when preconditioned)."""

    z: torch.Tensor
    accept_rate: torch.Tensor
    ess: torch.Tensor
    step_size: torch.Tensor


def log_density_and_grad(log_density: LogDensity, z: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """log p(x, z) (B,) and its gradient ∇_z (B, J), through autograd; both detached."""
    with torch.enable_grad():
        z = z.detach().requires_grad_(True)
        log_p = log_density(z)
        (grad,) = torch.autograd.grad(log_p.sum(), z)   # chains are independent: the sum's gradient is per chain
    return log_p.detach(), grad


def leapfrog(log_density: LogDensity, z: torch.Tensor, p: torch.Tensor, step_size: torch.Tensor | float,
             n_leapfrog: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """n_leapfrog leapfrog steps (Neal 2011, Eqs. 5.18–5.20) from (z, p), both (B, J); ``step_size``
    a float or (B,). Returns the end point z', p' and log p(x, z') (B,). Volume-preserving and
    reversible: negating p' and integrating again returns to (z, p)."""
    check_int("n_leapfrog", n_leapfrog, 1)   # 0 steps: the chain never moves, yet reports acceptance
    eps = torch.as_tensor(step_size, dtype=z.dtype, device=z.device).reshape(-1, 1)   # (B, 1) or (1, 1)
    log_p, grad = log_density_and_grad(log_density, z)
    p = p + 0.5 * eps * grad                               # half step for the momentum
    for step in range(n_leapfrog):
        z = z + eps * p                                    # full step for the position
        log_p, grad = log_density_and_grad(log_density, z)
        if step < n_leapfrog - 1:
            p = p + eps * grad                             # two merged half steps
    return z, p + 0.5 * eps * grad, log_p


def hmc_step(log_density: LogDensity, z: torch.Tensor, step_size: torch.Tensor | float, n_leapfrog: int,
             generator: torch.Generator | None = None) -> HMCStep:
    """One HMC transition for every chain: draw p ~ N(0, I), run the leapfrog, accept the end point
    with probability min(1, exp(H(z, p) − H(z', p'))), H = −log p(x, z) + ½‖p‖².
    z: (B, J); step_size: float or (B,) per chain → HMCStep."""
    p = torch.randn(z.shape, generator=generator, dtype=z.dtype, device=z.device)
    with torch.no_grad():
        log_p = log_density(z)
    z_new, p_new, log_p_new = leapfrog(log_density, z, p, step_size, n_leapfrog)
    log_ratio = (log_p_new - 0.5 * (p_new ** 2).sum(-1)) - (log_p - 0.5 * (p ** 2).sum(-1))   # H(z,p) − H(z',p')
    accept_prob = torch.nan_to_num(log_ratio.clamp(max=0.0).exp(), nan=0.0)   # a diverged trajectory: never
    u = torch.rand(accept_prob.shape, generator=generator, dtype=z.dtype, device=z.device)
    accepted = u < accept_prob
    return HMCStep(torch.where(accepted.unsqueeze(-1), z_new, z).detach(), accept_prob, accepted)


def autocorrelation(chain: torch.Tensor) -> torch.Tensor:
    """The sample autocorrelation ρ_t = γ_t / γ_0 of ``chain`` (n, ...) along its first axis, with
    γ_t = (1/n) Σ_i (c_i − c̄)(c_{i+t} − c̄), by FFT: (n, ...) → (n, ...)."""
    n = chain.shape[0]
    centred = chain - chain.mean(0)
    f = torch.fft.rfft(centred, n=2 * n, dim=0)             # zero-padded: no wrap-around
    acov = torch.fft.irfft(f * f.conj(), n=2 * n, dim=0)[:n] / n
    return acov / acov[:1]


def effective_sample_size(chain: torch.Tensor) -> torch.Tensor:
    """ESS = n / τ with τ = −1 + 2 Σ_{k<m} Γ_k, Γ_k = ρ_{2k} + ρ_{2k+1}: Geyer's (1992) initial
    positive sequence, summing pairs of autocorrelations until the first pair that is not positive.
    ``chain`` (n, ...), one chain per trailing index → (...). About n for independent draws,
    n(1 − φ)/(1 + φ) for an AR(1) chain with coefficient φ; capped at n·log10(n) (antithetic chains
    give τ < 1), and 1 for a chain that never moves."""
    n = chain.shape[0]
    rho = autocorrelation(chain)
    m = n // 2
    pairs = rho[0:2 * m:2] + rho[1:2 * m:2]                                  # Γ_k: (m, ...)
    initial = torch.cumprod((pairs > 0).to(chain.dtype), dim=0)             # 1 up to the first Γ_k ≤ 0
    tau = -1.0 + 2.0 * (torch.nan_to_num(pairs) * initial).sum(0)
    ess = n / tau.clamp(min=1.0 / math.log10(max(n, 10)))
    return torch.where(chain.std(0) == 0, torch.ones_like(ess), ess)


def log_joint(model: LatentVariableModel, x: torch.Tensor) -> LogDensity:
    """z ↦ log p(x, z) = log p(x|z) + log N(z; 0, I) for every image of x (B, D): z (B, J) → (B,)."""
    return lambda z: model.log_likelihood(x, z) + log_standard_normal(z)


def sample_posterior(model: LatentVariableModel, x: torch.Tensor, n_samples: int, n_leapfrog: int = 10,
                     burn_in: int = 200, target_accept: float = 0.9, init_step_size: float = 0.5,
                     jitter: float = 0.5, precondition: bool = True, init_z: torch.Tensor | None = None,
                     generator: torch.Generator | None = None) -> PosteriorSamples:
    """Draws from p(z|x) for every image of x (B, D) with one HMC chain each → PosteriorSamples.

    Start: ``init_z`` (B, J) if given, else the encoder's mean. Chains do not cross between
    well-separated modes, so a posterior mode far from the start goes unseen; for J ≤ 3 the
    ``centre`` of :func:`vae_lib.inference.quadrature.quadrature_log_marginal` can seed ``init_z``.
    With ``precondition`` the chains move in the coordinates u = (z − μ)/σ of the encoder's
    q(z|x) = N(μ, σ²) — the same as a diagonal mass matrix diag(σ⁻²), Neal (2011), Section 4.1 —
    so one step size suits every latent dimension.
    Burn-in: ``burn_in`` steps adapting ε per chain toward an acceptance probability of
    ``target_accept`` (the paper's Appendix E tunes for about 90 %) by dual averaging (Hoffman &
    Gelman 2014, Algorithm 5: γ = 0.05, t₀ = 10, κ = 0.75, shrinking toward 10 ε₀); the chain keeps
    the averaged ε̄, whose acceptance while sampling comes out a few points above the target
    (about 0.95 for 0.9: ε̄ averages log ε, and acceptance falls steeply for large ε).
    Sampling: ``n_samples`` steps with ε̄ fixed. Every step, burn-in too, multiplies ε by a uniform
    draw in [1 − jitter, 1 + jitter] (Neal 2011, Section 5.4.2.2), so no trajectory length
    resonates with a period of the posterior (with 10 leapfrog steps, a well-preconditioned
    Gaussian posterior and no jitter, a trajectory is close to one full period and barely moves)."""
    check_observations(model, x)
    check_int("n_samples", n_samples, 1)
    check_int("n_leapfrog", n_leapfrog, 1)
    check_int("burn_in", burn_in, 0)
    check_float("target_accept", target_accept, 0, 1, low_open=True)
    check_float("init_step_size", init_step_size, 0, low_open=True)
    check_float("jitter", jitter, 0, 0.99)
    if init_z is not None and (not isinstance(init_z, torch.Tensor) or init_z.shape != (len(x), model.latent_dim)):
        raise ValueError(f"init_z must be a tensor of shape (batch, latent_dim) = ({len(x)}, {model.latent_dim}), got "
                         f"{tuple(init_z.shape) if isinstance(init_z, torch.Tensor) else type(init_z).__name__}")
    log_p = log_joint(model, x)
    with torch.no_grad():
        mu, log_var = (t.detach() for t in model.encode(x))   # detached: an expanded parameter keeps its grad flag
    centre, scale = (mu, torch.exp(0.5 * log_var)) if precondition else (torch.zeros_like(mu), torch.ones_like(mu))

    def log_density(u: torch.Tensor) -> torch.Tensor:   # the Jacobian Π σ_j is constant per chain: dropped
        return log_p(centre + scale * u)

    u = ((mu if init_z is None else init_z.detach()) - centre) / scale      # (B, J)
    batch = u.shape[0]
    # dual averaging, per chain
    mu_da = torch.full((batch,), math.log(10 * init_step_size), dtype=u.dtype, device=u.device)
    h_bar, log_eps_bar = torch.zeros_like(mu_da), torch.zeros_like(mu_da)
    step_size = torch.full_like(mu_da, init_step_size)
    def jittered(eps: torch.Tensor) -> torch.Tensor:
        noise = torch.rand(batch, generator=generator, dtype=u.dtype, device=u.device)
        return eps * (1 + jitter * (2 * noise - 1))

    for t in range(1, burn_in + 1):
        u, accept_prob, _ = hmc_step(log_density, u, jittered(step_size), n_leapfrog, generator)
        h_bar = (1 - 1 / (t + 10)) * h_bar + (target_accept - accept_prob) / (t + 10)
        log_eps = mu_da - math.sqrt(t) / 0.05 * h_bar
        log_eps_bar = t ** -0.75 * log_eps + (1 - t ** -0.75) * log_eps_bar
        step_size = log_eps.exp()
    if burn_in > 0:
        step_size = log_eps_bar.exp()
    draws, accept = [], torch.zeros_like(mu_da)
    for _ in range(n_samples):
        u, accept_prob, _ = hmc_step(log_density, u, jittered(step_size), n_leapfrog, generator)
        draws.append(u)
        accept += accept_prob
    z = centre + scale * torch.stack(draws)                                  # (n_samples, B, J)
    ess = effective_sample_size(z).min(-1).values if n_samples > 1 else torch.ones_like(mu_da)
    return PosteriorSamples(z, accept / max(n_samples, 1), ess, step_size)

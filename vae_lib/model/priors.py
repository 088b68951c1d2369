"""Priors p(z) over the latent space: the paper's N(0, I), a learned mixture of Gaussians and the VampPrior
(Tomczak & Welling 2018). Each is an ``nn.Module`` with one interface:

    log_prob(z): z (..., J) → log p(z) (...)
    sample(n, generator=None) → z (n, J)

so the ELBO's rate term KL(q(z|x) ‖ p(z)) can be estimated for any of them (:func:`elbo_with_prior`; the
closed form of Kingma & Welling (2013), Appendix B, exists only for the standard normal). Why learn a prior
at all: the rate splits as R = I(x; z) + KL(q(z) ‖ p(z)) (Hoffman & Johnson 2016), and the second term is
what a prior closer to the aggregate posterior q(z) = (1/N) Σₙ q(z|xₙ) removes — the VampPrior takes that
idea literally, a mixture of posteriors at K learned pseudo-inputs.
"""

from __future__ import annotations

import math

import torch
from torch import nn

from vae_lib.base.params import check_int
from vae_lib.model.objectives import (LOG_2PI, ELBOTerms, LatentVariableModel, check_observations, log_normal_diag,
                                      log_standard_normal, reparameterize)


def _check_z(z: torch.Tensor, latent_dim: int) -> None:
    if not isinstance(z, torch.Tensor) or z.dim() < 1 or z.shape[-1] != latent_dim:
        shape = tuple(z.shape) if isinstance(z, torch.Tensor) else type(z).__name__
        raise ValueError(f"z must be a tensor of shape (..., J) with J = {latent_dim}, got {shape}")


def mixture_component_log_probs(z: torch.Tensor, means: torch.Tensor, log_vars: torch.Tensor) -> torch.Tensor:
    """log N(z; μ_c, diag σ_c²) for every component c: z (..., J), means and log_vars (C, J) → (..., C).

    The square is expanded, Σ_j (z_j − μ_cj)²/σ_cj² = z² · a_c − 2 z · (μ_c a_c) + μ_c² · a_c with a_c = 1/σ_c²,
    so that the whole log-density is one matrix product [z², z, 1] @ W and memory is (..., C) — not the
    (..., C, J) of the direct form, which for K = 5000 importance draws against a VampPrior's 500 components
    would not fit (and trains ~10 times slower). The expansion cancels large terms when σ is small, so it runs
    in float64 and the result returns to z's dtype: its rounding then stays far below float32's."""
    dtype = z.dtype
    z, means, log_vars = z.double(), means.double(), log_vars.double()
    a = torch.exp(-log_vars)                                               # 1/σ², (C, J)
    constant = (means ** 2 * a).sum(-1) + LOG_2PI * means.shape[-1] + log_vars.sum(-1)   # (C,)
    weights = -0.5 * torch.cat([a.T, -2 * (means * a).T, constant.unsqueeze(0)])        # (2J + 1, C)
    features = torch.cat([z ** 2, z, torch.ones_like(z[..., :1])], dim=-1)               # (..., 2J + 1)
    return (features @ weights).to(dtype)


def mixture_log_prob(z: torch.Tensor, log_weights: torch.Tensor, means: torch.Tensor,
                     log_vars: torch.Tensor) -> torch.Tensor:
    """log Σ_c π_c N(z; μ_c, diag σ_c²), computed as logsumexp_c [log π_c + log N(z; μ_c, σ_c²)]
    (:func:`mixture_component_log_probs`): z (..., J), log_weights (C,) normalized, means and log_vars (C, J)
    → (...)."""
    per_component = mixture_component_log_probs(z, means, log_vars)       # (..., C)
    return torch.logsumexp(per_component + log_weights, dim=-1)


def mixture_marginal_log_probs(z: torch.Tensor, log_weights: torch.Tensor, means: torch.Tensor,
                               log_vars: torch.Tensor) -> torch.Tensor:
    """log p_j(z_j) of every latent unit j under the mixture's marginal p_j = Σ_c π_c N(μ_cj, σ_cj²):
    z (..., J) → (..., J). Direct form, memory (..., C, J): pass z in chunks."""
    per_unit = log_normal_diag(z[..., None, :, None], means[..., None], log_vars[..., None])   # (..., C, J)
    return torch.logsumexp(per_unit + log_weights.unsqueeze(-1), dim=-2)


def mixture_sample(n: int, log_weights: torch.Tensor, means: torch.Tensor, log_vars: torch.Tensor,
                   generator: torch.Generator | None = None) -> torch.Tensor:
    """n draws from the mixture: a component c ~ Categorical(π), then z = μ_c + σ_c ⊙ ε. → (n, J)."""
    c = torch.multinomial(log_weights.exp(), n, replacement=True, generator=generator)   # (n,)
    eps = torch.randn(n, means.shape[-1], generator=generator, device=means.device, dtype=means.dtype)
    return reparameterize(means[c], log_vars[c], eps=eps)


class StandardNormalPrior(nn.Module):
    """p(z) = N(0, I), the prior of Kingma & Welling (2013), Section 3: nothing to learn."""

    def __init__(self, latent_dim: int):
        super().__init__()
        self.latent_dim = check_int("latent_dim", latent_dim)
        self.register_buffer("_anchor", torch.zeros(0))   # carries the module's device and dtype for sample()

    def log_prob(self, z: torch.Tensor) -> torch.Tensor:
        """log N(z; 0, I): z (..., J) → (...)."""
        _check_z(z, self.latent_dim)
        return log_standard_normal(z)

    def marginal_log_prob(self, z: torch.Tensor) -> torch.Tensor:
        """log N(z_j; 0, 1) per unit: z (..., J) → (..., J)."""
        _check_z(z, self.latent_dim)
        return -0.5 * (LOG_2PI + z ** 2)

    @torch.no_grad()
    def sample(self, n: int, generator: torch.Generator | None = None) -> torch.Tensor:
        """n draws z ~ N(0, I): (n, J)."""
        n = check_int("n", n)
        return torch.randn(n, self.latent_dim, generator=generator, device=self._anchor.device,
                           dtype=self._anchor.dtype)


class MixturePrior(nn.Module):
    """A learned mixture of C diagonal Gaussians, p(z) = Σ_c π_c N(z; μ_c, diag σ_c²) with
    π = softmax(logits) — the "MoG prior" Tomczak & Welling (2018) compare the VampPrior with.

    The means start at N(0, ``init_spread``²) draws (from ``generator``), the variances at 1 and the
    weights equal, so at initialisation p(z) is a blurred standard normal."""

    def __init__(self, latent_dim: int, components: int, init_spread: float = 1.0,
                 generator: torch.Generator | None = None):
        super().__init__()
        self.latent_dim = check_int("latent_dim", latent_dim)
        self.components = check_int("components", components)
        if isinstance(init_spread, bool) or not isinstance(init_spread, (int, float)) or not 0 <= init_spread < math.inf:
            raise ValueError(f"init_spread must be a finite number ≥ 0, got {init_spread!r}")
        self.means = nn.Parameter(init_spread * torch.randn(components, latent_dim, generator=generator))  # (C, J)
        self.log_vars = nn.Parameter(torch.zeros(components, latent_dim))                                # (C, J)
        self.logits = nn.Parameter(torch.zeros(components))                                             # (C,)

    def log_weights(self) -> torch.Tensor:
        """log π_c = log softmax(logits)_c: (C,)."""
        return torch.log_softmax(self.logits, dim=-1)

    def log_prob(self, z: torch.Tensor) -> torch.Tensor:
        """log p(z) = logsumexp_c [log π_c + log N(z; μ_c, diag σ_c²)]: z (..., J) → (...)."""
        _check_z(z, self.latent_dim)
        return mixture_log_prob(z, self.log_weights(), self.means, self.log_vars)

    def marginal_log_prob(self, z: torch.Tensor) -> torch.Tensor:
        """log p_j(z_j) per unit under the mixture's marginals (:func:`mixture_marginal_log_probs`): (..., J)."""
        _check_z(z, self.latent_dim)
        return mixture_marginal_log_probs(z, self.log_weights(), self.means, self.log_vars)

    @torch.no_grad()
    def sample(self, n: int, generator: torch.Generator | None = None) -> torch.Tensor:
        """n draws z ~ p(z): (n, J)."""
        return mixture_sample(check_int("n", n), self.log_weights(), self.means, self.log_vars, generator)


class VampPrior(nn.Module):
    """The variational mixture of posteriors prior (Tomczak & Welling 2018, Eq. 9):

        p_λ(z) = (1/K) Σ_k q_φ(z | u_k),

    the encoder's own posteriors at K learned pseudo-inputs u_k ∈ [0, 1]^D. The ``encoder`` is the
    model's (shared, so its training moves the prior too: the paper's coupling of prior and posterior);
    it maps u (K, D) to mu, log_var (K, J), as :class:`~vae_lib.model.vae.GaussianEncoder` does.

    The pseudo-inputs start at ``K`` rows of ``data`` (drawn with ``generator``) when given, else
    uniform in (0, 1). They are stored unconstrained and clipped to [0, 1] by a hard tanh when used,
    as in the paper's code (hardtanh(0, 1) on the pseudo-input layer), so they stay valid pixels.

    A shift of the encoder's mean output moves every code and every component alike and leaves the rate to
    this prior unchanged, and an encoder that gives every input the same posterior has zero rate wherever that
    posterior sits. From the decoder's zero start such a model collapses in its first few hundred steps (codes
    shifted one way, tanh units saturated, rate 0: traced by :func:`vae_lib.runs.prior_start.trace_start`); a
    :class:`~vae_lib.model.prior_vae.PriorVAE` with a VampPrior therefore starts its decoder at the mean image."""

    def __init__(self, encoder: nn.Module, pseudo_inputs: int, data_dim: int, data: torch.Tensor | None = None,
                 generator: torch.Generator | None = None):
        super().__init__()
        if not callable(encoder):
            raise ValueError(f"encoder must be a module mapping x (K, D) to mu, log_var (K, J), got {encoder!r}")
        k = check_int("pseudo_inputs", pseudo_inputs)
        self.data_dim = check_int("data_dim", data_dim)
        self.encoder = encoder
        if data is not None:
            if not isinstance(data, torch.Tensor) or data.dim() != 2 or data.shape[1] != data_dim:
                shape = tuple(data.shape) if isinstance(data, torch.Tensor) else type(data).__name__
                raise ValueError(f"data must be a tensor (N, D) with D = data_dim = {data_dim}, got {shape}")
            if data.shape[0] < k:
                raise ValueError(f"data has {data.shape[0]} rows, fewer than the {k} pseudo-inputs to start from")
            rows = torch.randperm(data.shape[0], generator=generator)[:k]
            u = data[rows.to(data.device)].detach().clone()
        else:
            u = torch.rand(k, data_dim, generator=generator)
        param = next(iter(encoder.parameters()), None) if isinstance(encoder, nn.Module) else None
        if param is not None:                                             # the encoder's device and dtype
            u = u.to(device=param.device, dtype=param.dtype)
        self.raw_pseudo_inputs = nn.Parameter(u)                          # (K, D)
        with torch.no_grad():
            mu, _ = encoder(self.pseudo_inputs)
        self.latent_dim = int(mu.shape[-1])

    @property
    def components(self) -> int:
        """K, the number of pseudo-inputs."""
        return self.raw_pseudo_inputs.shape[0]

    @property
    def pseudo_inputs(self) -> torch.Tensor:
        """u_k = hardtanh(raw u_k) ∈ [0, 1]^D: (K, D)."""
        return nn.functional.hardtanh(self.raw_pseudo_inputs, 0.0, 1.0)

    def components_parameters(self) -> tuple[torch.Tensor, torch.Tensor]:
        """mu, log_var of q(z | u_k) for every pseudo-input: (K, J) each."""
        return self.encoder(self.pseudo_inputs)

    def log_prob(self, z: torch.Tensor) -> torch.Tensor:
        """log p(z) = logsumexp_k log q(z|u_k) − log K, (..., J) → (...)"""
        _check_z(z, self.latent_dim)
        mu, log_var = self.components_parameters()  # q(z|u_k), k = 1..K
        k = self.components
        log_weights = torch.full((k,), -math.log(k), device=z.device,
                                 dtype=z.dtype)     # each 1/K
        return mixture_log_prob(z, log_weights, mu, log_var)

    def marginal_log_prob(self, z: torch.Tensor) -> torch.Tensor:
        """log p_j(z_j) per unit, p_j = (1/K) Σ_k q(z_j | u_k) (:func:`mixture_marginal_log_probs`): (..., J)."""
        _check_z(z, self.latent_dim)
        mu, log_var = self.components_parameters()
        uniform = torch.full((self.components,), -math.log(self.components), device=z.device, dtype=z.dtype)
        return mixture_marginal_log_probs(z, uniform, mu, log_var)

    @torch.no_grad()
    def sample(self, n: int, generator: torch.Generator | None = None) -> torch.Tensor:
        """n draws: a pseudo-input k uniformly, then z ~ q(z | u_k). → (n, J)."""
        mu, log_var = self.components_parameters()
        uniform = torch.full((self.components,), -math.log(self.components), device=mu.device, dtype=mu.dtype)
        return mixture_sample(check_int("n", n), uniform, mu, log_var, generator)


def elbo_with_prior(model: LatentVariableModel, prior: nn.Module, x: torch.Tensor, n_samples: int = 1,
                    eps: torch.Tensor | None = None, generator: torch.Generator | None = None) -> ELBOTerms:
    """The ELBO per example with any prior: estimator A of Kingma & Welling (2013), Eq. 6, with p(z) the
    ``prior``'s: reconstruction (1/L) Σ_l log p(x|z_l) and the Monte Carlo rate
    (1/L) Σ_l [log q(z_l|x) − log p(z_l)] (no closed form for a mixture). x (B, D), eps (L, B, J) →
    ELBOTerms of (B,) tensors."""
    check_int("n_samples", n_samples)
    check_observations(model, x)
    mu, log_var = model.encode(x)                                        # (B, J) each
    if eps is not None and tuple(eps.shape) != (n_samples, *mu.shape):
        raise ValueError(f"eps must have shape (n_samples, batch, J) = {(n_samples, *mu.shape)}, got {tuple(eps.shape)}")
    z = reparameterize(mu, log_var, eps=eps, n_samples=n_samples, generator=generator)   # (L, B, J)
    reconstruction = model.log_likelihood(x, z).mean(0)                  # (B,)
    kl = (log_normal_diag(z, mu, log_var) - prior.log_prob(z)).mean(0)  # (B,)
    return ELBOTerms(reconstruction, kl)

"""Two unbiased Monte-Carlo estimators of the gradient of E_q[f(z)] with respect to the
parameters (mu, log_var) of a diagonal Gaussian q(z) = N(mu, diag(exp(log_var))):

- the **reparameterized** (pathwise) estimator of Kingma & Welling (2013), Sections 2.3–2.4:
  (1/L) Σ_l ∇ f(mu + σ ⊙ ε_l), which needs ∇_z f;
- the **score-function** estimator (REINFORCE; Williams, 1992), the one the paper's Section 2.2
  says "exhibits very high variance": (1/L) Σ_l f(z_l) ∇ log q(z_l), which needs only values of f.

Both take the same draws ε_l, so they can be compared sample for sample.
"""

from __future__ import annotations

from typing import Callable, NamedTuple

import torch

from vae_lib.model.objectives import reparameterize

Objective = Callable[[torch.Tensor], torch.Tensor]
"""f: z (L, ..., J) → (L, ...), one value per draw."""


class GaussianGradient(NamedTuple):
    """A gradient estimate with respect to q's parameters: ``mu`` and ``log_var``, each (..., J)."""

    mu: torch.Tensor
    log_var: torch.Tensor


def _draw_eps(mu: torch.Tensor, n_samples: int, eps: torch.Tensor | None,
              generator: torch.Generator | None) -> torch.Tensor:
    if eps is not None:
        return eps
    if n_samples < 1:
        raise ValueError(f"n_samples must be at least 1, got {n_samples}")
    return torch.randn((n_samples, *mu.shape), generator=generator, device=mu.device, dtype=mu.dtype)


def reparameterized_gradient(f: Objective, mu: torch.Tensor, log_var: torch.Tensor, n_samples: int = 1,
                             eps: torch.Tensor | None = None,
                             generator: torch.Generator | None = None) -> GaussianGradient:
    """(1/L) Σ_l ∇_{mu, log_var} f(mu + σ ⊙ ε_l) with ε_l ~ N(0, I) — the gradient of the paper's
    Monte-Carlo estimate, Eq. 5, through the reparameterization z = g_φ(ε, x) of Eq. 4.

    f must be differentiable in z. mu, log_var: (..., J); eps (optional): (L, ..., J), used as is.
    Each batch entry of mu gets its own estimate, so a batch of R copies gives R independent
    estimates. Returns GaussianGradient of (..., J) tensors, detached."""
    eps = _draw_eps(mu, n_samples, eps, generator)
    mu = mu.detach().requires_grad_(True)
    log_var = log_var.detach().requires_grad_(True)
    with torch.enable_grad():
        z = reparameterize(mu, log_var, eps=eps)                 # (L, ..., J)
        value = f(z).mean(0).sum()                               # mean over draws; entries are independent
        grad_mu, grad_log_var = torch.autograd.grad(value, (mu, log_var))
    return GaussianGradient(grad_mu, grad_log_var)


@torch.no_grad()
def score_function_gradient(f: Objective, mu: torch.Tensor, log_var: torch.Tensor, n_samples: int = 1,
                            eps: torch.Tensor | None = None,
                            generator: torch.Generator | None = None) -> GaussianGradient:
    """(1/L) Σ_l f(z_l) ∇_{mu, log_var} log q(z_l) with z_l = mu + σ ⊙ ε_l — the score-function
    (REINFORCE) estimator of ∇ E_q[f(z)] (Kingma & Welling, 2013, Section 2.2; Williams, 1992).

    For a diagonal Gaussian the score is ∇_mu log q = ε/σ and ∇_{log σ²} log q = ½(ε² − 1).
    f needs no gradient. Shapes as in :func:`reparameterized_gradient`."""
    eps = _draw_eps(mu, n_samples, eps, generator)
    sigma = torch.exp(0.5 * log_var)
    value = f(mu + sigma * eps).unsqueeze(-1)                    # (L, ..., 1)
    return GaussianGradient((value * eps / sigma).mean(0), (value * 0.5 * (eps ** 2 - 1)).mean(0))

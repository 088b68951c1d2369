"""The two parts of the ELBO's gap to log p(x) — Cremer, Li & Duvenaud (2018), "Inference
suboptimality in variational autoencoders":

    log p(x) − ELBO(q_encoder) = [log p(x) − ELBO*]  +  [ELBO* − ELBO(q_encoder)]
                                  approximation gap      amortization gap

ELBO* is the bound of the best diagonal Gaussian q*(z) = N(mu*, diag(exp(log_var*))) for this one
x, found by optimizing mu and log_var per image, starting from the encoder's output. The
approximation gap is KL(q* ‖ p(z|x)), what no diagonal Gaussian can close; the amortization gap
is what the encoder loses by predicting q from x instead of fitting it to x.

The ELBO of a given q is Kingma & Welling's (2013) estimator B, Eq. (7):
(1/L) Σ_l log p(x | mu + σ ⊙ ε_l) − KL(q ‖ N(0, I)), with L fixed-seed draws ε_l, so the objective
optimized is a deterministic function (sample-average approximation). The reported bounds use L'
fresh draws, shared by the encoder's q and q* so their difference has less noise.
"""

from __future__ import annotations

from typing import Callable, NamedTuple

import torch

from vae_lib.base.params import check_float, check_int
from vae_lib.model.objectives import LatentVariableModel, check_observations, kl_to_standard_normal

# (x, mu, log_var) → E_q[log p(x|z)], (B,): an exact expectation replacing the sampled one (optional)
ExpectedLogLikelihood = Callable[[torch.Tensor, torch.Tensor, torch.Tensor], torch.Tensor]


class ELBOGaps(NamedTuple):
    """Per-image results, for x (B, D): ``elbo_encoder`` ELBO of the encoder's q(z|x), (B,);
    ``elbo_optimized`` ELBO* of the optimized q*, (B,); ``mu``, ``log_var`` of q*, (B, J);
    ``trace`` the objective the optimization climbs (the ELBO on its own fixed draws) before the first
    step and after each, (n_steps + 1, B): how far it still moved over the last steps says whether q*
    had settled (None where no optimization ran)."""

    elbo_encoder: torch.Tensor
    elbo_optimized: torch.Tensor
    mu: torch.Tensor
    log_var: torch.Tensor
    trace: torch.Tensor | None = None

    def last_moves(self, n_last: int) -> torch.Tensor:
        """How much the optimized objective rose over the last ``n_last`` steps, per image, (B,):
        trace[-1] − trace[-1 − n_last] (all the steps if there were fewer)."""
        if self.trace is None:
            raise ValueError("these ELBOGaps carry no trace: they were not made by optimize_gaussian_elbo")
        check_int("n_last", n_last, 1)
        return self.trace[-1] - self.trace[max(len(self.trace) - 1 - n_last, 0)]

    @property
    def amortization_gap(self) -> torch.Tensor:
        """ELBO* − ELBO(encoder), (B,): ≥ 0 up to Monte-Carlo and optimization error."""
        return self.elbo_optimized - self.elbo_encoder

    def approximation_gap(self, log_px: torch.Tensor) -> torch.Tensor:
        """log p(x) − ELBO* = KL(q* ‖ p(z|x)), (B,), given log p(x) (e.g. from quadrature)."""
        return log_px - self.elbo_optimized


def gaussian_elbo(model: LatentVariableModel, x: torch.Tensor, mu: torch.Tensor, log_var: torch.Tensor,
                  eps: torch.Tensor | None = None,
                  expected_log_likelihood: ExpectedLogLikelihood | None = None) -> torch.Tensor:
    """ELBO of q = N(mu, diag(exp(log_var))) for each image, estimator B (Eq. 7):
    mean_l log p(x | mu + exp(log_var / 2) ⊙ eps_l) − KL(q ‖ N(0, I)). x (B, D); mu, log_var (B, J);
    eps (L, B, J) → (B,). With ``expected_log_likelihood`` the reconstruction is that exact
    expectation instead and ``eps`` is not used."""
    if expected_log_likelihood is not None:
        reconstruction = expected_log_likelihood(x, mu, log_var)
    else:
        reconstruction = model.log_likelihood(x, mu + torch.exp(0.5 * log_var) * eps).mean(0)
    return reconstruction - kl_to_standard_normal(mu, log_var)


def _chunked_elbo(model, x, mu, log_var, eps, expected_log_likelihood, chunk: int) -> torch.Tensor:
    """gaussian_elbo averaged over eps (L, B, J) ``chunk`` draws at a time (bounded memory)."""
    if expected_log_likelihood is not None:
        return gaussian_elbo(model, x, mu, log_var, expected_log_likelihood=expected_log_likelihood)
    parts = [gaussian_elbo(model, x, mu, log_var, e) * len(e) for e in eps.split(chunk)]
    return torch.stack(parts).sum(0) / len(eps)


def optimize_gaussian_elbo(model: LatentVariableModel, x: torch.Tensor, n_steps: int = 1000, lr: float = 0.1,
                           n_samples: int = 64, n_eval: int = 1000, seed: int = 0, eval_chunk: int = 100,
                           expected_log_likelihood: ExpectedLogLikelihood | None = None) -> ELBOGaps:
    """ELBO(encoder) and ELBO* of every image of x (B, D) → ELBOGaps.

    q* starts at the encoder's (mu, log_var) and takes ``n_steps`` Adam steps (learning rate ``lr``,
    cosine-decayed to 0 so the last steps settle) on the sum over images of the estimator-B ELBO with
    ``n_samples`` draws ε fixed by ``seed``. Only mu and log_var move; the model's parameters get no
    gradients. Both reported bounds use ``n_eval`` other fixed draws (seed + 1), or the exact
    ``expected_log_likelihood`` when one is given (e.g. the linear-Gaussian closed form,
    :func:`vae_lib.inference.exact_inference.linear_gaussian_expected_log_likelihood`). The result's
    ``trace`` holds the optimized objective per image before the first step and after each step."""
    check_observations(model, x)
    check_int("n_steps", n_steps, 0)
    check_float("lr", lr, 0, low_open=True)
    check_int("n_samples", n_samples, 1)
    check_int("n_eval", n_eval, 1)
    check_int("eval_chunk", eval_chunk, 1)
    with torch.no_grad():
        mu0, log_var0 = (t.detach() for t in model.encode(x))            # (B, J) each
    g = torch.Generator(device=x.device).manual_seed(seed)
    eps = torch.randn((n_samples, *mu0.shape), generator=g, dtype=mu0.dtype, device=mu0.device)
    mu, log_var = mu0.clone().requires_grad_(True), log_var0.clone().requires_grad_(True)
    opt = torch.optim.Adam([mu, log_var], lr=lr)
    schedule = torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=max(n_steps, 1))
    trace = []                  # the objective per image before each step, then after the last: (B,) each
    with torch.enable_grad():   # also when called under torch.no_grad()
        for _ in range(n_steps):
            objective = gaussian_elbo(model, x, mu, log_var, eps, expected_log_likelihood)   # (B,)
            trace.append(objective.detach())
            loss = -objective.sum()                                            # images are independent
            mu.grad, log_var.grad = torch.autograd.grad(loss, [mu, log_var])   # not .backward(): the model gets none
            opt.step()
            schedule.step()
    g.manual_seed(seed + 1)
    eps_eval = torch.randn((n_eval, *mu0.shape), generator=g, dtype=mu0.dtype, device=mu0.device)
    with torch.no_grad():
        mu, log_var = mu.detach(), log_var.detach()
        trace.append(gaussian_elbo(model, x, mu, log_var, eps, expected_log_likelihood))
        elbo_encoder = _chunked_elbo(model, x, mu0, log_var0, eps_eval, expected_log_likelihood, eval_chunk)
        elbo_optimized = _chunked_elbo(model, x, mu, log_var, eps_eval, expected_log_likelihood, eval_chunk)
    return ELBOGaps(elbo_encoder, elbo_optimized, mu, log_var, torch.stack(trace))

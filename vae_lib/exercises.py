"""Checkers for the exercises a reader answers in code: each runs the reader's function and the
library's on the same inputs and says "right", or on which input they differ, by how much, and which
common slip the difference looks like (a sign, a missing ½, a mean where the sum belongs).

    from vae_lib.exercises import check_kl
    check_kl(my_kl)          # prints a verdict; returns True when the function is right
"""

from __future__ import annotations

import math
from typing import Callable

import torch

from .kl_control import free_bits_kl, kl_per_dimension
from .objectives import kl_to_standard_normal

Slip = tuple[str, Callable[[torch.Tensor], torch.Tensor]]   # (a hint, the reference's output under that slip)


def _inputs(seed: int = 0, batch: int = 6, latent: int = 4) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    return torch.randn(batch, latent, generator=g, dtype=torch.float64), torch.randn(batch, latent, generator=g, dtype=torch.float64)


def _compare(name: str, mine, expected: torch.Tensor, slips: list[Slip], args_text: str) -> str | None:
    """None when ``mine`` equals ``expected``; else a message naming the input and the likely slip."""
    if not isinstance(mine, torch.Tensor):
        return f"{name} returned {type(mine).__name__}, not a tensor"
    if mine.shape != expected.shape:
        return (f"{name}{args_text} has shape {tuple(mine.shape)}, expected {tuple(expected.shape)}"
                + (" — sum over the last (latent) dimension" if mine.shape == expected.shape + (mine.shape[-1],) else ""))
    mine = mine.to(expected.dtype)
    if torch.allclose(mine, expected, rtol=1e-6, atol=1e-8):
        return None
    worst = int((mine - expected).abs().flatten().argmax())
    message = (f"{name}{args_text} differs: at entry {worst} you return {mine.flatten()[worst].item():.6g}, "
               f"the answer is {expected.flatten()[worst].item():.6g} "
               f"(largest difference {(mine - expected).abs().max().item():.3g})")
    for hint, slipped in slips:
        if torch.allclose(mine, slipped, rtol=1e-6, atol=1e-8):
            return f"{message}. It looks like {hint}."
    return message


def _report(failure: str | None, what: str) -> bool:
    print(f"right: {what}" if failure is None else f"not yet: {failure}")
    return failure is None


def check_kl(my_kl: Callable[[torch.Tensor, torch.Tensor], torch.Tensor]) -> bool:
    """Checks ``my_kl(mu, log_var)`` against KL(N(μ, σ²) ‖ N(0, I)) = −½ Σ_j (1 + log σ² − μ² − σ²)
    (Appendix B), summed over latent dimensions: (B, J) → (B,). Prints the verdict; returns it."""
    for seed in range(3):
        mu, log_var = _inputs(seed)
        expected = kl_to_standard_normal(mu, log_var)
        per_dim = kl_per_dimension(mu, log_var)
        slips = [("a sign error: the KL is never negative", -expected),
                 ("a missing ½", 2 * expected),
                 ("the mean over latent dimensions where the sum belongs", per_dim.mean(-1)),
                 ("σ where σ² belongs (exp(log_var / 2) instead of exp(log_var))",
                  -0.5 * (1 + log_var - mu ** 2 - (0.5 * log_var).exp()).sum(-1)),
                 ("log σ where log σ² belongs", -0.5 * (1 + 0.5 * log_var - mu ** 2 - log_var.exp()).sum(-1))]
        failure = _compare("my_kl", my_kl(mu.clone(), log_var.clone()), expected, slips,
                           f"(mu, log_var) of shape {tuple(mu.shape)} (seed {seed})")
        if failure:
            return _report(failure, "")
    return _report(None, "your KL equals Appendix B's on three random batches")


def check_free_bits(my_free_bits: Callable[[torch.Tensor, torch.Tensor, float], torch.Tensor]) -> bool:
    """Checks ``my_free_bits(mu, log_var, lam)`` against Σ_j max(λ, mean_batch KL_j) (Kingma et al.
    2016): a scalar for the minibatch. Prints the verdict; returns it."""
    for seed, lam in ((0, 0.0), (1, 0.5), (2, 2.0)):
        mu, log_var = _inputs(seed)
        expected = free_bits_kl(mu, log_var, lam)
        per_dim = kl_per_dimension(mu, log_var)
        slips = [("the clamp applied per example before the batch mean (λ applies to the batch mean of each dimension)",
                  per_dim.clamp(min=lam).sum(-1).mean()),
                 ("the clamp applied to the total KL instead of each dimension", per_dim.sum(-1).mean().clamp(min=lam)),
                 ("max where it should be min? free bits is max(λ, KL_j)", per_dim.mean(0).clamp(max=lam).sum())]
        failure = _compare("my_free_bits", my_free_bits(mu.clone(), log_var.clone(), lam), expected, slips,
                           f"(mu, log_var, lam={lam}) (seed {seed})")
        if failure:
            return _report(failure, "")
    return _report(None, "your free-bits term equals Kingma et al.'s for λ = 0, 0.5 and 2")


def check_iwae_bound(my_bound: Callable[[torch.Tensor], torch.Tensor]) -> bool:
    """Checks ``my_bound(log_w)`` — log-weights (k, B) in, the k-sample bound log (1/k) Σ_i w_i (B,) out
    (Burda et al. 2015, Eq. 8) — on weights whose exponentials would overflow. Prints; returns the verdict."""
    g = torch.Generator().manual_seed(0)
    for k in (1, 5, 50):
        log_w = -1000 + 30 * torch.randn(k, 6, generator=g, dtype=torch.float64)   # like MNIST: far below exp's range
        expected = torch.logsumexp(log_w, 0) - math.log(k)
        slips = [("the mean of the log-weights (that is the ELBO, not the k-sample bound)", log_w.mean(0)),
                 ("a missing − log k", torch.logsumexp(log_w, 0)),
                 ("log Σ exp computed directly: it underflows — use torch.logsumexp", torch.log(log_w.exp().mean(0)))]
        failure = _compare("my_bound", my_bound(log_w.clone()), expected, slips, f"(log_w of shape {tuple(log_w.shape)})")
        if failure:
            return _report(failure, "")
    return _report(None, "your bound equals log (1/k) Σ w_i for k = 1, 5 and 50, without overflow")


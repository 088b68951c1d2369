"""Checkers for the exercises on log-probabilities: the decoder's log p(x|z) (Bernoulli, chapter 5; Gaussian,
Appendix C.2, chapter 9), log p(x) by the midpoint rule on a grid (chapter 2) and the k-sample importance
weighted bound (Burda et al. 2015, Eq. 8; chapters 7 and 14) — each on numbers far below exp's range, where
the naive formula under- or overflows. Import them from :mod:`vae_lib.exercises.checkers`, with the other checkers.
"""

from __future__ import annotations

import math
from typing import Callable

import torch
from torch.nn import functional as F

from vae_lib.model.objectives import LOG_2PI, log_normal_diag
from vae_lib.exercises.verdicts import takes_a_function, _compare, _report


@takes_a_function
def check_grid_log_marginal(my_log_marginal: Callable[[torch.Tensor, float], torch.Tensor]) -> bool:
    """Checks ``my_log_marginal(log_joint, cell_volume)`` — log p(x, z_g) on a grid of G points for B
    observations (G, B) and the cells' volume ΔV in, log p(x) ≈ log Σ_g p(x, z_g) ΔV (B,) out: the midpoint
    rule of chapter 2 — first on moderate numbers, then on log-densities far below exp's range, like an
    image's. Prints the verdict; returns it."""
    g = torch.Generator().manual_seed(0)
    for n_grid, volume, offset in ((50, 0.01, -3.0), (400, 0.0036, -800.0), (1000, 0.25, -1200.0)):
        log_joint = offset + 5 * torch.randn(n_grid, 4, generator=g, dtype=torch.float64)
        expected = torch.logsumexp(log_joint, 0) + math.log(volume)
        slips = [("log Σ exp computed directly: exp underflows to 0 far below −700 — use torch.logsumexp",
                  torch.log((log_joint.exp() * volume).sum(0))),
                 ("the cell volume ΔV left out: add log ΔV", torch.logsumexp(log_joint, 0)),
                 ("log ΔV subtracted where it is added", torch.logsumexp(log_joint, 0) - math.log(volume)),
                 ("the mean over grid points where the sum times ΔV belongs", torch.logsumexp(log_joint, 0) - math.log(n_grid))]
        failure = _compare("my_log_marginal", my_log_marginal(log_joint.clone(), volume), expected, slips,
                           f"(log_joint of shape {tuple(log_joint.shape)}, cell_volume={volume})",
                           shape_hints={(n_grid,): "reduce over the grid points, dim 0", (): "one value per observation"},
                           nonfinite_hint="Exp of such numbers underflows to 0: torch.logsumexp subtracts the largest term first")
        if failure:
            return _report(failure, "")
    return _report(None, "your log p(x) equals the midpoint rule's, also where exp underflows")


@takes_a_function
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


@takes_a_function
def check_bernoulli_log_likelihood(my_log_likelihood: Callable[[torch.Tensor, torch.Tensor], torch.Tensor]) -> bool:
    """Checks ``my_log_likelihood(logits, x)`` against log p(x|z) = Σ_d [x_d log λ_d + (1 − x_d) log(1 − λ_d)],
    λ = sigmoid(logits), summed over pixels: logits (L, B, D) and binary x (B, D) in, (L, B) out — last on a
    confident decoder (logits of ±800) where log(sigmoid(·)) rounds to log 0. Prints the verdict; returns it."""
    g = torch.Generator().manual_seed(2)
    for n_draws, confident in ((2, False), (1, False), (3, True)):
        logits = 3 * torch.randn(n_draws, 5, 20, generator=g, dtype=torch.float64)
        if confident:
            logits[..., :4] = 800.0 * logits[..., :4].sign()
        x = torch.rand(5, 20, generator=g, dtype=torch.float64).lt(0.3).double()
        bce = F.binary_cross_entropy_with_logits(logits, x.expand_as(logits), reduction="none")   # (L, B, D)
        expected = -bce.sum(-1)
        slips = [("the mean over pixels where the sum belongs: an image's log-probability sums its pixels' "
                  "(chapter 5's reduction rule)", -bce.mean(-1)),
                 ("the binary cross-entropy itself: log p(x|z) is its negative", bce.sum(-1)),
                 ("a sigmoid applied twice: binary_cross_entropy_with_logits applies it itself", -F.binary_cross_entropy_with_logits(
                     torch.sigmoid(logits), x.expand_as(logits), reduction="none").sum(-1)),
                 ("x and 1 − x swapped", -F.binary_cross_entropy_with_logits(-logits, x.expand_as(logits), reduction="none").sum(-1))]
        failure = _compare("my_log_likelihood", my_log_likelihood(logits.clone(), x.clone()), expected, slips,
                           f"(logits of shape {tuple(logits.shape)}, x of shape {tuple(x.shape)})"
                           + (" with some logits at ±800" if confident else ""),
                           shape_hints={tuple(logits.shape): "sum over the pixels, the last dimension",
                                        (len(x),): "keep one value per draw of z: (L, B)", (): "one value per draw and image: (L, B)"},
                           nonfinite_hint="Logits are real numbers, not probabilities, and log(sigmoid(·)) rounds to log 0 "
                                          "for large ones: use F.logsigmoid or F.binary_cross_entropy_with_logits")
        if failure:
            return _report(failure, "")
    return _report(None, "your log p(x|z) equals the Bernoulli decoder's, also for logits of ±800")


@takes_a_function
def check_gaussian_log_likelihood(my_log_likelihood: Callable[[torch.Tensor, torch.Tensor, torch.Tensor], torch.Tensor]) -> bool:
    """Checks ``my_log_likelihood(x, mean, log_var)`` against log N(x; mean, diag(exp(log_var))) summed over pixels,
    −½ Σ_d (log 2π + log σ_d² + (x_d − μ_d)²/σ_d²) (Appendix C.2): x (B, D), mean and log_var (L, B, D) in, (L, B) out,
    on pixels in [0, 1] with σ of a few hundredths, like chapter 9's decoder. Prints the verdict; returns it."""
    g = torch.Generator().manual_seed(5)
    for n_draws in (2, 1, 3):
        x = torch.rand(4, 30, generator=g, dtype=torch.float64)
        mean = (x + 0.04 * torch.randn(n_draws, 4, 30, generator=g, dtype=torch.float64)).clamp(0.01, 0.99)
        log_var = 2 * math.log(0.05) + 0.5 * torch.randn(n_draws, 4, 30, generator=g, dtype=torch.float64)
        expected = log_normal_diag(x, mean, log_var)
        sigma = (0.5 * log_var).exp()
        per_pixel = -0.5 * (LOG_2PI + log_var + (x - mean) ** 2 / log_var.exp())
        slips = [(f"the −½ log 2π of every pixel left out ({30 / 2 * LOG_2PI:.2f} nats for 30 pixels)", expected + 30 / 2 * LOG_2PI),
                 ("(x − μ)²/σ where (x − μ)²/σ² belongs", -0.5 * (LOG_2PI + log_var + (x - mean) ** 2 / sigma).sum(-1)),
                 ("log σ where log σ² belongs: log σ² is log_var itself", -0.5 * (LOG_2PI + 0.5 * log_var + (x - mean) ** 2 / log_var.exp()).sum(-1)),
                 ("the mean over pixels where the sum belongs", per_pixel.mean(-1)),
                 ("the negative log-density (a loss) where the log-density belongs", -expected)]
        failure = _compare("my_log_likelihood", my_log_likelihood(x.clone(), mean.clone(), log_var.clone()), expected, slips,
                           f"(x of shape {tuple(x.shape)}, mean and log_var of shape {tuple(mean.shape)})",
                           shape_hints={tuple(mean.shape): "sum over the pixels, the last dimension",
                                        (4,): "keep one value per draw of z: (L, B)"},
                           nonfinite_hint="The argument log_var is log σ², any real number: σ² = exp(log_var)")
        if failure:
            return _report(failure, "")
    return _report(None, "your log-density equals log N(x; μ, σ²) summed over pixels")

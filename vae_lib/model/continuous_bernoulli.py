"""The continuous Bernoulli distribution of Loaiza-Ganem & Cunningham (2019): a proper density on
[0, 1] for grey-level pixels,

    p(x | λ) = C(λ) λ^x (1 − λ)^(1 − x),   C(λ) = 2 artanh(1 − 2λ) / (1 − 2λ)   (C(½) = 2),

whose unnormalized part is exactly the Bernoulli likelihood that "binary cross-entropy on grey
levels" uses. Written with logits η = log λ/(1 − λ), C simplifies to η / tanh(η/2).
"""

from __future__ import annotations

import math

import torch
from torch.nn import functional as F

LOG_2 = math.log(2.0)
_SMALL = 1e-3  # below this |η|, the Taylor series log 2 + η²/12 is exact to ~1e-14


def continuous_bernoulli_log_norm(logits: torch.Tensor) -> torch.Tensor:
    """log C(λ) with λ = sigmoid(logits), elementwise: log(η / tanh(η/2)), and its Taylor series
    log 2 + η²/12 near η = 0 where the ratio is 0/0. Always ≥ log 2; grows like log|η|."""
    small = logits.abs() < _SMALL
    safe = torch.where(small, torch.ones_like(logits), logits)
    exact = torch.log(safe / torch.tanh(safe / 2))
    return torch.where(small, LOG_2 + logits ** 2 / 12, exact)


def continuous_bernoulli_log_prob(x: torch.Tensor, logits: torch.Tensor) -> torch.Tensor:
    """log p(x | λ) = x log λ + (1 − x) log(1 − λ) + log C(λ), summed over the last (pixel)
    dimension: the Bernoulli log-likelihood of grey levels plus the missing log-normalizer.
    x in [0, 1] and logits broadcast to (..., D) → (...)."""
    logits, x = torch.broadcast_tensors(logits, x)
    bernoulli = -F.binary_cross_entropy_with_logits(logits, x, reduction="none")
    return (bernoulli + continuous_bernoulli_log_norm(logits)).sum(-1)

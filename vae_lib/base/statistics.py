"""The statistics behind the book's comparisons: means with standard errors, paired per-image
differences, two-sided verdicts — and what the chapters read off a learning curve: its value at a
sample count (:func:`value_at`) and its longest plateau (:func:`plateau`).

A verdict is always two-sided and in the quantity's own units: "within 2 s.e., not distinguishable",
"above by …" or "below by …" — never "or better", never a
percentage of a log-density (whose zero is arbitrary). Where two models scored the same images, the
difference is taken per image (:func:`paired_difference`): the images' own spread of log p(x), tens
of nats, cancels, and the standard error is that of the difference alone.
"""

from __future__ import annotations

import math
from typing import NamedTuple, Sequence

import torch


class Estimate(NamedTuple):
    """A mean and its standard error, std(ddof=1)/√n, from ``n`` values."""

    mean: float
    stderr: float
    n: int

    def __str__(self) -> str:
        return self.format()

    def format(self, digits: int = 2) -> str:
        """'mean ± s.e.' with ``digits`` decimals."""
        return f"{self.mean:.{digits}f} ± {self.stderr:.{digits}f}"


def _values(values: Sequence[float] | torch.Tensor, name: str) -> torch.Tensor:
    t = torch.as_tensor(values, dtype=torch.float64).flatten()
    if t.numel() == 0:
        raise ValueError(f"{name} is empty: a mean needs at least one value")
    if not bool(torch.isfinite(t).all()):
        raise ValueError(f"{name} holds {int((~torch.isfinite(t)).sum())} non-finite values: "
                         "a mean of them would be meaningless")
    return t


def estimate(values: Sequence[float] | torch.Tensor, name: str = "values") -> Estimate:
    """The mean of ``values`` and its standard error (nan for a single value); non-finite values are
    refused, so a NaN never becomes a verdict."""
    t = _values(values, name)
    se = t.std().item() / math.sqrt(t.numel()) if t.numel() > 1 else math.nan
    return Estimate(t.mean().item(), se, t.numel())


def paired_difference(a: Sequence[float] | torch.Tensor, b: Sequence[float] | torch.Tensor) -> Estimate:
    """The mean per-image difference a − b of two scores of the same images, in the same order, with
    the standard error of that mean."""
    ta, tb = _values(a, "a"), _values(b, "b")
    if ta.shape != tb.shape:
        raise ValueError(f"a paired difference needs scores of the same images: got {ta.numel()} and {tb.numel()} values")
    return estimate(ta - tb, "a − b")


def verdict(difference: float, stderr: float, unit: str = "", within: float = 2.0) -> str:
    """Two-sided: "within 2 s.e., not distinguishable (d ± s.e.)" when abs(difference) ≤ ``within``
    standard errors, else "above by d ± s.e." or "below by d ± s.e." (the first quantity against the
    second), followed by ``unit`` when one is given."""
    if not (math.isfinite(difference) and math.isfinite(stderr) and stderr >= 0):
        raise ValueError(f"a verdict needs a finite difference and standard error, got {difference} ± {stderr}")
    tail = f" {unit}" if unit else ""
    if abs(difference) <= within * stderr:
        return f"within {within:g} s.e., not distinguishable ({difference:+.2f} ± {stderr:.2f}{tail})"
    side = "above" if difference > 0 else "below"
    return f"{side} by {abs(difference):.2f} ± {stderr:.2f}{tail}"


def value_at(samples: list[int], values: list[float], at: float) -> float:
    """``values`` interpolated linearly in log(samples) at ``at`` samples; NaN outside the curve."""
    if not samples or at < samples[0] or at > samples[-1]:
        return math.nan
    logs = [math.log(s) for s in samples]
    la = math.log(at)
    for i in range(1, len(samples)):
        if la <= logs[i]:
            w = (la - logs[i - 1]) / (logs[i] - logs[i - 1]) if logs[i] > logs[i - 1] else 1.0
            return values[i - 1] + w * (values[i] - values[i - 1])
    return values[-1]


def plateau(samples: list[float], values: list[float], width: float) -> tuple[float, float, float]:
    """The longest stretch of a learning curve (longest in log samples) whose values all lie within
    ``width`` of the stretch's median: (first samples, last samples, median level). A curve that sits
    on a level for decades of samples before it rises shows here as a long stretch."""
    if len(samples) != len(values) or not samples:
        raise ValueError(f"a curve needs as many values as sample counts, got {len(values)} and {len(samples)}")
    best = (samples[0], samples[0], values[0])
    for i in range(len(values)):
        for j in range(i + 1, len(values)):
            stretch = sorted(values[i:j + 1])
            level = stretch[len(stretch) // 2]
            if stretch[-1] - level > width or level - stretch[0] > width:
                break
            if math.log(samples[j] / samples[i]) > math.log(best[1] / best[0]):
                best = (samples[i], samples[j], level)
    return best


def late_gain(curve: Sequence[float], window: int = 10, lag: int = 30) -> float:
    """How much a learning curve still rose at its end: the mean of its last ``window`` points minus the
    mean of the ``window`` points ``lag`` points earlier (a smoothed difference, so one noisy evaluation
    does not decide whether a run had converged)."""
    if window < 1 or lag < 1 or len(curve) < window + lag:
        raise ValueError(f"a curve of {len(curve)} points is too short for window {window} and lag {lag}")
    end = sum(curve[-window:]) / window
    earlier = sum(curve[-window - lag:len(curve) - lag]) / window
    return end - earlier

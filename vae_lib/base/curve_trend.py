"""Is a learning curve still moving at its end? :func:`late_gain_estimate` gives
:func:`vae_lib.base.statistics.late_gain` — the mean of the last ``window`` points minus the mean of the
``window`` points ``lag`` points earlier — with a standard error, so "still rising" can be a two-sided verdict
(:func:`vae_lib.base.statistics.verdict`) instead of a bare sign.

The standard error treats the epoch-to-epoch scatter as independent noise around a smooth trend: within each of
the two windows the first differences y[i+1] − y[i] remove the trend (their spread is √2 σ for noise of standard
deviation σ), so σ ≈ std(differences) / √2, and the difference of two means of ``window`` points has standard
error σ √(2 / window). A curve whose noise is correlated from one point to the next makes this too small; a
verdict from it is a guide to whether the run had converged, not a test of a model.
"""

from __future__ import annotations

import math
from typing import Sequence

from vae_lib.base.statistics import Estimate, late_gain


def late_gain_estimate(curve: Sequence[float], window: int = 10, lag: int = 30) -> Estimate:
    """:func:`~vae_lib.base.statistics.late_gain` of ``curve`` with its standard error from the scatter of the
    two windows' first differences (the module's docstring says how); ``n`` is ``window``. A ValueError when
    ``window`` < 2 (no difference inside a window) or the curve is too short."""
    if window < 2:
        raise ValueError(f"a window of {window} point(s) holds no first difference: the noise needs window >= 2")
    gain = late_gain(curve, window, lag)   # checks the length
    values = [float(v) for v in curve]
    end = values[-window:]
    earlier = values[len(values) - window - lag:len(values) - lag]
    diffs = [b - a for part in (end, earlier) for a, b in zip(part, part[1:])]
    mean = sum(diffs) / len(diffs)
    spread = math.sqrt(sum((d - mean) ** 2 for d in diffs) / (len(diffs) - 1)) if len(diffs) > 1 else math.nan
    if not all(math.isfinite(v) for v in end + earlier):
        raise ValueError("the curve holds non-finite values in the windows: no gain can be estimated")
    sigma = spread / math.sqrt(2)
    return Estimate(gain, sigma * math.sqrt(2 / window), window)

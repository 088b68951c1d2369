"""vae_lib.base.curve_trend: a learning curve's late gain with a standard error."""

import math
import random

import pytest

from vae_lib.base.curve_trend import late_gain_estimate
from vae_lib.base.statistics import late_gain


def _curve(slope, noise, n=100, seed=0):
    rng = random.Random(seed)
    return [slope * i + noise * rng.gauss(0, 1) for i in range(n)]


def test_the_gain_is_late_gain_and_a_flat_curve_is_not_rising():
    curve = _curve(0.0, 1.0)
    e = late_gain_estimate(curve)
    assert e.mean == pytest.approx(late_gain(curve)) and e.n == 10
    assert abs(e.mean) < 3 * e.stderr


def test_the_standard_error_matches_the_noise():
    """For white noise of s.d. σ the difference of two 10-point means has s.e. σ √(2/10); averaged over many
    curves the estimate comes close, whatever the trend (the differences remove it)."""
    sigma = 0.5
    ses = [late_gain_estimate(_curve(0.3, sigma, seed=s)).stderr for s in range(200)]
    assert sum(ses) / len(ses) == pytest.approx(sigma * math.sqrt(2 / 10), rel=0.1)


def test_a_rising_curve_is_rising_beyond_two_standard_errors():
    e = late_gain_estimate(_curve(0.05, 0.1))
    assert e.mean == pytest.approx(0.05 * 30, abs=0.2) and e.mean > 2 * e.stderr


def test_bad_inputs_are_refused():
    with pytest.raises(ValueError, match="too short"):
        late_gain_estimate([1.0] * 20)
    with pytest.raises(ValueError, match="window"):
        late_gain_estimate([1.0] * 100, window=1)
    with pytest.raises(ValueError, match="non-finite"):
        late_gain_estimate([1.0] * 99 + [float("nan")])

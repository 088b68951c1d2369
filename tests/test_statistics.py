"""vae_lib.base.statistics: estimates, paired differences and two-sided verdicts."""

import math

import pytest
import torch

from vae_lib.base.statistics import estimate, paired_difference, verdict


def test_estimate_is_mean_and_standard_error():
    e = estimate([1.0, 2.0, 3.0, 6.0])
    assert e.mean == 3.0 and e.n == 4
    assert e.stderr == pytest.approx(torch.tensor([1.0, 2.0, 3.0, 6.0]).std().item() / 2)
    assert math.isnan(estimate([5.0]).stderr)


def test_non_finite_values_never_become_a_verdict():
    with pytest.raises(ValueError, match="non-finite"):
        estimate([1.0, float("nan")])
    with pytest.raises(ValueError, match="empty"):
        estimate([])
    with pytest.raises(ValueError, match="finite"):
        verdict(float("nan"), 1.0)


def test_pairing_removes_the_images_own_spread():
    """Two models whose scores differ by 0.5 ± a little on images spread over tens of nats: the paired
    standard error is that of the difference, far below the unpaired one."""
    g = torch.Generator().manual_seed(0)
    images = -100 + 20 * torch.randn(1000, generator=g, dtype=torch.float64)
    a, b = images + 0.5 + 0.1 * torch.randn(1000, generator=g, dtype=torch.float64), images
    d = paired_difference(a, b)
    assert d.mean == pytest.approx(0.5, abs=0.02)
    unpaired = math.hypot(estimate(a).stderr, estimate(b).stderr)
    assert d.stderr < unpaired / 50
    with pytest.raises(ValueError, match="same images"):
        paired_difference(a, b[:-1])


@pytest.mark.parametrize("difference, stderr, starts", [
    (0.3, 0.2, "within 2 s.e., not distinguishable"), (-0.39, 0.2, "within 2 s.e., not distinguishable"),
    (0.5, 0.2, "above by 0.50"), (-3.7, 1.0, "below by 3.70"),
])
def test_verdict_is_two_sided(difference, stderr, starts):
    assert verdict(difference, stderr).startswith(starts)


def test_late_gain_compares_the_last_window_with_one_lag_earlier():
    from vae_lib.base.statistics import late_gain

    curve = [float(i) for i in range(50)]           # rises by 1 a point
    assert late_gain(curve) == pytest.approx(30.0)
    assert late_gain([5.0] * 40) == 0.0
    assert late_gain(curve, window=5, lag=10) == pytest.approx(10.0)
    with pytest.raises(ValueError, match="too short"):
        late_gain([1.0] * 39)

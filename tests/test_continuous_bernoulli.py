"""Tests of vae_lib.model.continuous_bernoulli against torch.distributions and by quadrature."""

import math

import pytest
import torch

from vae_lib.model.continuous_bernoulli import continuous_bernoulli_log_norm, continuous_bernoulli_log_prob


def test_log_norm_at_one_half_is_log_2_and_symmetric():
    eta = torch.tensor([0.0, 1e-5, -1e-5, 2.0, -2.0], dtype=torch.float64)
    c = continuous_bernoulli_log_norm(eta)
    assert c[0].item() == pytest.approx(math.log(2), abs=1e-15)
    torch.testing.assert_close(c[1], c[2])
    torch.testing.assert_close(c[3], c[4])


def test_log_norm_matches_the_artanh_formula_and_is_continuous_at_the_switch():
    eta = torch.tensor([-10.0, -3.0, -0.5, 0.5, 3.0, 10.0], dtype=torch.float64)  # artanh loses digits beyond
    lam = torch.sigmoid(eta)
    torch.testing.assert_close(continuous_bernoulli_log_norm(eta),
                               torch.log(2 * torch.atanh(1 - 2 * lam) / (1 - 2 * lam)))
    edge = torch.tensor([0.999e-3, 1.001e-3], dtype=torch.float64)
    a, b = continuous_bernoulli_log_norm(edge)
    assert abs((b - a).item()) < 1e-9


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_log_prob_matches_torch_distributions(dtype):
    g = torch.Generator().manual_seed(0)
    logits = torch.randn(4, 10, generator=g, dtype=dtype) * 4
    x = torch.rand(4, 10, generator=g, dtype=dtype)
    reference = torch.distributions.ContinuousBernoulli(logits=logits).log_prob(x).sum(-1)
    torch.testing.assert_close(continuous_bernoulli_log_prob(x, logits), reference, atol=1e-4, rtol=1e-5)


def test_density_integrates_to_one():
    x = (torch.arange(20_000, dtype=torch.float64) + 0.5) / 20_000                 # midpoints of [0, 1]
    for eta in (-8.0, -1.0, 0.0, 0.3, 5.0):
        logits = torch.full((len(x), 1), eta, dtype=torch.float64)
        density = continuous_bernoulli_log_prob(x.unsqueeze(1), logits).exp()
        assert density.mean().item() == pytest.approx(1.0, abs=1e-6)


def test_gradients_are_finite_at_zero_logits():
    logits = torch.zeros(3, requires_grad=True)
    continuous_bernoulli_log_norm(logits).sum().backward()
    assert torch.isfinite(logits.grad).all()

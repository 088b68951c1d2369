"""Tests of vae_lib.inference.gaps on the linear-Gaussian model, where log p(x), the posterior and the best
diagonal Gaussian are known: q* = N(m, diag(1 / Λ_jj)) with m the posterior mean and Λ = Σ⁻¹ its
precision, and KL(q* ‖ p(z|x)) = ½ (Σ_j log Λ_jj − log det Λ)."""

import functools

import torch

from vae_lib.model.objectives import elbo
from vae_lib.inference.exact_inference import linear_gaussian_expected_log_likelihood
from vae_lib.inference.gaps import gaussian_elbo, optimize_gaussian_elbo
from vae_lib.inference.linear_gaussian import LinearGaussian

F64 = torch.float64


def correlated_linear_gaussian(seed=0):
    """W with strongly correlated columns: the posterior correlation is about −0.9."""
    g = torch.Generator().manual_seed(seed)
    w1, w2, bias = (torch.randn(5, generator=g, dtype=F64) for _ in range(3))
    return LinearGaussian(torch.stack([w1, 0.9 * w1 + 0.45 * w2], 1), bias, noise_var=0.5)


def exact_reconstruction(model):
    return functools.partial(linear_gaussian_expected_log_likelihood, model)


def test_gaussian_elbo_is_the_estimator_b_elbo(linear_gaussian, sample_x):
    model = linear_gaussian(orthogonal=False)
    x = sample_x(model, 6)
    eps = torch.randn(7, 6, 2, generator=torch.Generator().manual_seed(0), dtype=F64)
    with torch.no_grad():
        mu, log_var = model.encode(x)
        torch.testing.assert_close(gaussian_elbo(model, x, mu, log_var, eps),
                                   elbo(model, x, n_samples=7, estimator="B", eps=eps).bound)


def test_orthogonal_w_closes_both_gaps_exactly(linear_gaussian, sample_x):
    """WᵀW diagonal: the posterior is a diagonal Gaussian, so q* reaches log p(x); the default encoder
    (N(0, I) for every x) is wrong, so the amortization gap is large, and the optimization closes it."""
    model = linear_gaussian(orthogonal=True)
    x = sample_x(model, 8)
    gaps = optimize_gaussian_elbo(model, x, expected_log_likelihood=exact_reconstruction(model))
    with torch.no_grad():
        log_px, posterior = model.log_marginal(x), model.posterior(x)
        kl_encoder = model.kl_to_posterior(x)
    torch.testing.assert_close(gaps.approximation_gap(log_px), torch.zeros(8, dtype=F64), atol=1e-6, rtol=0)
    torch.testing.assert_close(gaps.amortization_gap, kl_encoder, atol=1e-6, rtol=0)   # ELBO = log p − KL(q ‖ p)
    assert (gaps.amortization_gap > 0.5).all()
    torch.testing.assert_close(gaps.mu, posterior.mean, atol=1e-5, rtol=0)
    model.set_encoder_to_posterior()   # now the encoder is already the best: nothing to gain
    tuned = optimize_gaussian_elbo(model, x, expected_log_likelihood=exact_reconstruction(model))
    torch.testing.assert_close(tuned.amortization_gap, torch.zeros(8, dtype=F64), atol=1e-8, rtol=0)


def test_orthogonal_w_with_sampled_elbos(linear_gaussian, sample_x):
    """The same with Monte-Carlo ELBOs (no closed form): gaps within Monte-Carlo error — with 4000
    draws about 0.02 for q* and up to 0.05 for the too-wide encoder (whose log p(x|z) varies more)."""
    model = linear_gaussian(orthogonal=True)
    x = sample_x(model, 8)
    gaps = optimize_gaussian_elbo(model, x, n_steps=500, lr=0.2, n_samples=256, n_eval=4000)
    with torch.no_grad():
        log_px, kl_encoder = model.log_marginal(x), model.kl_to_posterior(x)
    approximation_gap = gaps.approximation_gap(log_px)
    assert approximation_gap.abs().max() < 0.1 and approximation_gap.mean().abs() < 0.04, approximation_gap
    assert ((gaps.amortization_gap - kl_encoder).abs() < 0.25).all()
    assert (gaps.amortization_gap - kl_encoder).mean().abs() < 0.08
    assert (gaps.amortization_gap > 0.5).all()


def test_correlated_posterior_leaves_the_kl_of_the_best_diagonal_gaussian(sample_x):
    model = correlated_linear_gaussian()
    x = sample_x(model, 8)
    gaps = optimize_gaussian_elbo(model, x, expected_log_likelihood=exact_reconstruction(model))
    with torch.no_grad():
        log_px, posterior = model.log_marginal(x), model.posterior(x)
    precision = torch.linalg.inv(posterior.covariance_matrix[0])
    best_kl = 0.5 * (precision.diagonal().log().sum() - torch.logdet(precision))
    assert best_kl > 0.5
    torch.testing.assert_close(gaps.approximation_gap(log_px), best_kl.expand(8), atol=1e-5, rtol=0)
    torch.testing.assert_close(gaps.mu, posterior.mean, atol=1e-5, rtol=0)
    torch.testing.assert_close(gaps.log_var.exp(), (1 / precision.diagonal()).expand(8, 2), atol=1e-5, rtol=0)
    assert (gaps.amortization_gap > 0).all()


def test_model_parameters_get_no_gradients(linear_gaussian, sample_x):
    model = linear_gaussian()
    x = sample_x(model, 3)
    optimize_gaussian_elbo(model, x, n_steps=5, n_samples=4, n_eval=10)
    assert all(p.grad is None for p in model.parameters())


def test_the_trace_records_the_climb_and_how_much_the_last_steps_moved(linear_gaussian, sample_x):
    """trace: the optimized objective before the first step and after each; with the exact
    reconstruction it starts at ELBO(encoder), ends at ELBO*, and a converged run's last steps move it
    by almost nothing."""
    model = linear_gaussian(orthogonal=True)
    x = sample_x(model, 8)
    gaps = optimize_gaussian_elbo(model, x, n_steps=300, expected_log_likelihood=exact_reconstruction(model))
    assert gaps.trace.shape == (301, 8)
    torch.testing.assert_close(gaps.trace[0], gaps.elbo_encoder)
    torch.testing.assert_close(gaps.trace[-1], gaps.elbo_optimized)
    torch.testing.assert_close(gaps.last_moves(100), gaps.trace[-1] - gaps.trace[-101])
    torch.testing.assert_close(gaps.last_moves(10 ** 6), gaps.amortization_gap)   # more than ran: all steps
    assert (gaps.last_moves(100).abs() < 1e-6).all() and (gaps.amortization_gap > 0.5).all()
    # sampled: the trace is the objective on the optimization's own draws (seed 0), not the reported bound
    sampled = optimize_gaussian_elbo(model, x, n_steps=20, n_samples=4, n_eval=10)
    eps = torch.randn((4, 8, 2), generator=torch.Generator().manual_seed(0), dtype=F64)
    with torch.no_grad():
        torch.testing.assert_close(sampled.trace[-1], gaussian_elbo(model, x, sampled.mu, sampled.log_var, eps))
    assert sampled.trace.shape == (21, 8) and (sampled.trace[-1] > sampled.trace[0]).all()
    no_steps = optimize_gaussian_elbo(model, x, n_steps=0, n_samples=4, n_eval=10)
    assert no_steps.trace.shape == (1, 8) and (no_steps.last_moves(100) == 0).all()

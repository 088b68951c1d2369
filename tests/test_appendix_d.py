"""Tests of vae_lib.inference.appendix_d, the paper's own marginal-likelihood estimator, on the linear-Gaussian
model (a Gaussian posterior: the fitted q is nearly exact, so is the estimate) and a tiny VAE."""

import torch

from vae_lib.model.objectives import log_standard_normal
from vae_lib.inference.appendix_d import appendix_d_log_marginal, fit_gaussian, harmonic_mean_log_marginal
from vae_lib.inference.quadrature import quadrature_log_marginal

F64 = torch.float64


def test_exact_posterior_and_exact_q_give_log_px_exactly(linear_gaussian, sample_x):
    """With z_l ~ p(z|x) and q = p(z|x), every ratio q(z_l) / p(x, z_l) is 1 / p(x)."""
    model = linear_gaussian(orthogonal=False)
    x = sample_x(model, 5)
    with torch.no_grad():
        posterior = model.posterior(x)
        z = posterior.sample((50,))                                         # (L, B, J)
        log_joint = model.log_likelihood(x, z) + log_standard_normal(z)
        estimate = harmonic_mean_log_marginal(posterior.log_prob(z), log_joint)
        torch.testing.assert_close(estimate, model.log_marginal(x), atol=1e-10, rtol=0)


def test_fit_gaussian_is_the_sample_mean_and_covariance():
    z = torch.randn(200, 3, 2, generator=torch.Generator().manual_seed(0), dtype=F64) @ torch.tensor(
        [[1.0, 0.5], [0.0, 0.3]], dtype=F64)
    q = fit_gaussian(z)
    for b in range(3):
        torch.testing.assert_close(q.mean[b], z[:, b].mean(0))
        torch.testing.assert_close(q.covariance_matrix[b], torch.cov(z[:, b].T), rtol=1e-6, atol=0)


def test_nearly_exact_on_the_linear_gaussian_model(linear_gaussian, sample_x):
    """The posterior is Gaussian, so the fitted q is close to it and the ratios nearly constant:
    with L = 400 the reported standard error is about 0.01 nat and the errors stay within a few of it."""
    model = linear_gaussian(orthogonal=False)   # default encoder N(0, I): HMC starts away from the posterior
    x = sample_x(model, 8)
    result = appendix_d_log_marginal(model, x, n_samples=400, burn_in=150, generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        error = result.log_px - model.log_marginal(x)
        posterior = model.posterior(x)
    assert (result.ratio_ess > 320).all() and (result.stderr < 0.03).all()
    assert (error.abs() < 5 * result.stderr + 0.005).all(), (error, result.stderr)
    assert error.abs().mean() < 0.02
    # every image has the same posterior covariance: its average fit is within a few per cent
    torch.testing.assert_close(result.q_cov.mean(0), posterior.covariance_matrix[0], atol=0.01, rtol=0)
    assert ((result.accept_rate > 0.8) & (result.accept_rate < 0.99)).all()


def test_runs_on_a_tiny_vae_and_agrees_with_quadrature(small_vae):
    model = small_vae(latent_dim=2)
    x = (torch.rand(3, 12, generator=torch.Generator().manual_seed(2)) < 0.5).to(F64)
    result = appendix_d_log_marginal(model, x, n_samples=300, burn_in=100, generator=torch.Generator().manual_seed(3))
    assert result.log_px.shape == (3,) and torch.isfinite(result.log_px).all()
    assert result.q_cov.shape == (3, 2, 2)
    exact = quadrature_log_marginal(model, x).log_px
    assert ((result.log_px - exact).abs() < 0.06).all(), (result.log_px, exact)

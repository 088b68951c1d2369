"""Tests of vae_lib.inference.exact_inference against closed forms and torch.distributions."""

import math

import torch

from vae_lib.inference.exact_inference import (grid_posterior, latent_grid, linear_gaussian_elbo,
                                               linear_gaussian_expected_log_likelihood)
from vae_lib.model.objectives import elbo, log_standard_normal
from vae_lib.inference.linear_gaussian import LinearGaussian


def make_model(d=3, j=2, seed=0) -> LinearGaussian:
    g = torch.Generator().manual_seed(seed)
    w = torch.randn(d, j, generator=g, dtype=torch.float64)
    b = torch.randn(d, generator=g, dtype=torch.float64)
    return LinearGaussian(w, b, noise_var=0.8)


def test_latent_grid_shape_order_and_volume():
    points, volume = latent_grid(4, 2, limit=2.0)
    assert points.shape == (16, 2)
    torch.testing.assert_close(points[:4, 0], torch.full((4,), -1.5, dtype=torch.float64))  # last dim fastest
    torch.testing.assert_close(points[:4, 1], torch.tensor([-1.5, -0.5, 0.5, 1.5], dtype=torch.float64))
    assert volume == 1.0


def test_grid_posterior_matches_closed_form_linear_gaussian():
    model = make_model()
    x = torch.randn(5, 3, generator=torch.Generator().manual_seed(1), dtype=torch.float64)
    z, volume = latent_grid(200, 2, limit=7.0)
    with torch.no_grad():
        log_joint = model.log_likelihood(x, z.unsqueeze(1)) + log_standard_normal(z).unsqueeze(1)  # (G, B)
        grid = grid_posterior(log_joint, volume)
        torch.testing.assert_close(grid.log_px, model.log_marginal(x), atol=1e-8, rtol=0)
        post = grid.log_posterior.exp() * volume                        # probabilities of the cells
        torch.testing.assert_close(post.sum(0), torch.ones(5, dtype=torch.float64), atol=1e-10, rtol=0)
        mean = post.T @ z                                               # (B, J)
        torch.testing.assert_close(mean, model.posterior(x).mean, atol=1e-8, rtol=0)


def test_expected_log_likelihood_matches_monte_carlo():
    model = make_model()
    x = torch.randn(4, 3, generator=torch.Generator().manual_seed(2), dtype=torch.float64)
    mu = torch.randn(4, 2, dtype=torch.float64)
    log_var = torch.randn(4, 2, dtype=torch.float64) * 0.3
    exact = linear_gaussian_expected_log_likelihood(model, x, mu, log_var)
    g = torch.Generator().manual_seed(3)
    z = mu + (0.5 * log_var).exp() * torch.randn(200_000, 4, 2, generator=g, dtype=torch.float64)
    with torch.no_grad():
        samples = model.log_likelihood(x, z)                            # (S, B)
    se = samples.std(0) / math.sqrt(len(samples))
    assert ((samples.mean(0) - exact).abs() < 5 * se).all()


def test_linear_gaussian_elbo_plus_kl_is_log_marginal():
    model = make_model()
    with torch.no_grad():
        model.enc_weight.normal_(generator=torch.Generator().manual_seed(4))
        model.enc_log_var.fill_(-0.7)
    x = torch.randn(6, 3, generator=torch.Generator().manual_seed(5), dtype=torch.float64)
    with torch.no_grad():
        bound = linear_gaussian_elbo(model, x).bound
        torch.testing.assert_close(bound + model.kl_to_posterior(x), model.log_marginal(x), atol=1e-10, rtol=0)


def test_linear_gaussian_elbo_is_the_mean_of_the_sgvb_estimator():
    model = make_model()
    model.set_encoder_to_posterior()
    x = torch.randn(3, 3, generator=torch.Generator().manual_seed(6), dtype=torch.float64)
    with torch.no_grad():
        exact = linear_gaussian_elbo(model, x)
        mc = elbo(model, x, n_samples=100_000, estimator="B", generator=torch.Generator().manual_seed(7))
    torch.testing.assert_close(mc.kl, exact.kl)                         # analytic in both
    torch.testing.assert_close(mc.reconstruction, exact.reconstruction, atol=0.015, rtol=0)  # ~5 standard errors

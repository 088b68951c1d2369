"""vae_lib.model.objectives against torch.distributions, Monte Carlo and closed forms."""

import math

import pytest
import torch
from torch.distributions import Independent, Normal, kl_divergence

from vae_lib.model.objectives import (ELBOTerms, elbo, kl_to_standard_normal, log_normal_diag,
                                      log_standard_normal, reparameterize)

F64 = torch.float64


def _gaussian_params(seed=0, shape=(4, 3)):
    g = torch.Generator().manual_seed(seed)
    mu = torch.randn(shape, generator=g, dtype=F64)
    log_var = torch.randn(shape, generator=g, dtype=F64)  # σ² from about 0.1 to 10
    return mu, log_var


def test_kl_matches_torch_distributions():
    """Appendix B's KL(N(μ, σ²) ‖ N(0, I)) equals torch.distributions.kl_divergence, to precision."""
    mu, log_var = _gaussian_params()
    reference = kl_divergence(Normal(mu, (0.5 * log_var).exp()), Normal(0.0, 1.0)).sum(-1)
    torch.testing.assert_close(kl_to_standard_normal(mu, log_var), reference, rtol=1e-12, atol=1e-12)


def test_kl_matches_monte_carlo():
    """Analytic KL = E_q[log q(z) − log p(z)], within 4 standard errors of a 200000-draw estimate."""
    mu, log_var = _gaussian_params(seed=1)
    z = reparameterize(mu, log_var, n_samples=200_000, generator=torch.Generator().manual_seed(2))
    log_ratio = log_normal_diag(z, mu, log_var) - log_standard_normal(z)          # (S, B)
    mc, stderr = log_ratio.mean(0), log_ratio.std(0) / math.sqrt(len(log_ratio))
    analytic = kl_to_standard_normal(mu, log_var)
    assert torch.all((mc - analytic).abs() < 4 * stderr), (mc, analytic, stderr)
    assert torch.all(stderr < 0.02 * analytic)  # the check has teeth: 4 standard errors are under 8% of each KL


def test_kl_is_zero_only_at_the_prior():
    """KL(q ‖ p) = 0 when q = N(0, I) and is positive otherwise."""
    zeros = torch.zeros(2, 3, dtype=F64)
    torch.testing.assert_close(kl_to_standard_normal(zeros, zeros), torch.zeros(2, dtype=F64))
    mu, log_var = _gaussian_params(seed=3)
    assert torch.all(kl_to_standard_normal(mu, log_var) > 0)


def test_log_normal_diag_matches_torch_distributions():
    """log N(z; μ, diag σ²) equals Independent(Normal) log_prob, broadcasting samples (S, B, J) against (B, J)."""
    mu, log_var = _gaussian_params()
    z = torch.randn(7, *mu.shape, generator=torch.Generator().manual_seed(4), dtype=F64) * 2
    reference = Independent(Normal(mu, (0.5 * log_var).exp()), 1).log_prob(z)
    out = log_normal_diag(z, mu, log_var)
    assert out.shape == (7, 4)
    torch.testing.assert_close(out, reference, rtol=1e-12, atol=1e-12)


def test_log_standard_normal_matches_torch_distributions():
    """log N(z; 0, I) equals Normal(0, 1).log_prob summed over the last dimension."""
    z = torch.randn(5, 4, 3, generator=torch.Generator().manual_seed(5), dtype=F64) * 3
    reference = Normal(torch.zeros((), dtype=F64), 1.0).log_prob(z).sum(-1)
    torch.testing.assert_close(log_standard_normal(z), reference, rtol=1e-12, atol=1e-12)


def test_reparameterize_with_fixed_eps_and_shapes():
    """z = μ + exp(½ log σ²) ε exactly for a given ε; shapes (B, J) and (L, B, J) without one."""
    mu, log_var = _gaussian_params()
    eps = torch.randn(2, *mu.shape, generator=torch.Generator().manual_seed(6), dtype=F64)
    torch.testing.assert_close(reparameterize(mu, log_var, eps=eps), mu + log_var.exp().sqrt() * eps)
    assert reparameterize(mu, log_var).shape == mu.shape
    assert reparameterize(mu, log_var, n_samples=5).shape == (5, *mu.shape)
    g1, g2 = torch.Generator().manual_seed(7), torch.Generator().manual_seed(7)
    assert torch.equal(reparameterize(mu, log_var, n_samples=3, generator=g1),
                       reparameterize(mu, log_var, n_samples=3, generator=g2))


def test_reparameterize_draws_from_q():
    """Draws of z have mean μ and variance σ² (within 5 standard errors of 100000 draws)."""
    mu, log_var = _gaussian_params(shape=(2, 3))
    z = reparameterize(mu, log_var, n_samples=100_000, generator=torch.Generator().manual_seed(8))
    sigma = (0.5 * log_var).exp()
    assert torch.all((z.mean(0) - mu).abs() < 5 * sigma / math.sqrt(len(z)))
    # the variance of a sample variance of Gaussians is 2σ⁴/(n−1)
    assert torch.all((z.var(0) - sigma ** 2).abs() < 5 * sigma ** 2 * math.sqrt(2 / len(z)))


@pytest.mark.parametrize("f, exact_grads", [
    # E[z²] = μ² + σ²:  d/dμ = 2μ,  d/dlog σ² = σ²
    (lambda z: z ** 2, lambda mu, v: (2 * mu, v)),
    # E[exp z] = exp(μ + σ²/2):  d/dμ = exp(μ + σ²/2),  d/dlog σ² = exp(μ + σ²/2) σ²/2
    (lambda z: z.exp(), lambda mu, v: ((mu + v / 2).exp(), (mu + v / 2).exp() * v / 2)),
], ids=["square", "exp"])
def test_reparameterized_gradients_match_closed_form(f, exact_grads):
    """Autograd through z = μ + σε gives unbiased gradients of E_q[f(z)]: within 5 standard errors of the
    closed form."""
    mu = torch.tensor([-0.8, 0.3, 1.1], dtype=F64, requires_grad=True)
    log_var = torch.tensor([-1.0, 0.0, 0.5], dtype=F64, requires_grad=True)
    n = 200_000
    z = reparameterize(mu, log_var, n_samples=n, generator=torch.Generator().manual_seed(9))   # (n, 3)
    values = f(z)                                                                             # (n, 3)
    # per-draw gradients, for the standard errors: each coordinate of z depends on its own μ, log σ²
    per_mu = torch.autograd.grad(values.sum(), z, retain_graph=True)[0]   # ∂f/∂z = ∂f/∂μ, per draw
    per_lv = per_mu * (z - mu) / 2                                          # ∂z/∂log σ² = σε/2 = (z − μ)/2
    grad_mu, grad_lv = torch.autograd.grad(values.mean(0).sum(), [mu, log_var])
    want_mu, want_lv = exact_grads(mu.detach(), log_var.detach().exp())
    se_mu, se_lv = per_mu.std(0) / math.sqrt(n), per_lv.std(0) / math.sqrt(n)
    assert torch.all((grad_mu - want_mu).abs() < 5 * se_mu), (grad_mu, want_mu, se_mu)
    assert torch.all((grad_lv - want_lv).abs() < 5 * se_lv), (grad_lv, want_lv, se_lv)
    assert torch.all(se_mu < 0.02 * want_mu.abs().clamp(min=1)) and torch.all(se_lv < 0.02 * want_lv.abs().clamp(min=1))


def test_elbo_terms_bound_and_shapes(small_vae):
    """ELBOTerms.bound = reconstruction − kl, one value per example for both estimators."""
    model = small_vae()
    x = torch.bernoulli(torch.full((6, 12), 0.3, dtype=F64), generator=torch.Generator().manual_seed(0))
    for estimator in ("A", "B"):
        terms = elbo(model, x, n_samples=4, estimator=estimator)
        assert isinstance(terms, ELBOTerms)
        assert terms.reconstruction.shape == terms.kl.shape == (6,)
        torch.testing.assert_close(terms.bound, terms.reconstruction - terms.kl)


def test_elbo_with_fixed_eps_matches_hand_computation(small_vae):
    """With fixed ε, estimators A and B equal Eq. (6) and Eq. (7) computed by hand."""
    model = small_vae()
    x = torch.bernoulli(torch.full((5, 12), 0.4, dtype=F64), generator=torch.Generator().manual_seed(1))
    eps = torch.randn(3, 5, 3, generator=torch.Generator().manual_seed(2), dtype=F64)
    mu, log_var = model.encode(x)
    z = mu + (0.5 * log_var).exp() * eps
    log_px_z = model.log_likelihood(x, z)                                          # (L, B)
    a = elbo(model, x, n_samples=3, estimator="A", eps=eps)
    b = elbo(model, x, n_samples=3, estimator="B", eps=eps)
    eq6 = (log_px_z + log_standard_normal(z) - log_normal_diag(z, mu, log_var)).mean(0)
    eq7 = log_px_z.mean(0) - kl_to_standard_normal(mu, log_var)
    torch.testing.assert_close(a.bound, eq6)
    torch.testing.assert_close(b.bound, eq7)
    torch.testing.assert_close(a.reconstruction, b.reconstruction)


@pytest.mark.parametrize("likelihood", ["bernoulli", "gaussian"])
def test_estimators_a_and_b_agree_in_expectation(small_vae, likelihood):
    """Estimators A (Monte-Carlo KL) and B (analytic KL) have the same expectation: with L = 40000
    independent draws each, their bounds agree within 5 standard errors."""
    model = small_vae(likelihood)
    x = torch.rand(4, 12, generator=torch.Generator().manual_seed(3), dtype=F64)
    if likelihood == "bernoulli":
        x = torch.bernoulli(x, generator=torch.Generator().manual_seed(4))
    n = 40_000
    with torch.no_grad():
        a = elbo(model, x, n_samples=n, estimator="A", generator=torch.Generator().manual_seed(5))
        b = elbo(model, x, n_samples=n, estimator="B", generator=torch.Generator().manual_seed(6))
        # the spread of a single-draw A estimate bounds the spread of both
        mu, log_var = model.encode(x)
        z = reparameterize(mu, log_var, n_samples=n, generator=torch.Generator().manual_seed(7))
        one_draw = model.log_likelihood(x, z) + log_standard_normal(z) - log_normal_diag(z, mu, log_var)
    stderr = one_draw.std(0) / math.sqrt(n)
    assert torch.all((a.bound - b.bound).abs() < 5 * math.sqrt(2) * stderr), (a.bound, b.bound, stderr)
    assert torch.all(b.kl > 0.5)  # the KL terms are big enough for a wrong one to show


def test_elbo_rejects_bad_arguments(small_vae):
    """An unknown estimator or L < 1 is refused with a message that names the choices."""
    model, x = small_vae(), torch.zeros(2, 12, dtype=F64)
    with pytest.raises(ValueError, match=r"unknown estimator 'C'.*'A'.*'B'"):
        elbo(model, x, estimator="C")
    with pytest.raises(ValueError, match="n_samples must be at least 1"):
        elbo(model, x, n_samples=0)


def test_bound_standard_error_is_the_mean_and_standard_error_of_the_per_image_bound():
    """vae_lib.model.objectives.bound_standard_error: the mean and std/√N of elbo()'s bound with the same seeded draws."""
    from vae_lib.model.vae import VAE, VAEConfig
    from vae_lib.model.objectives import bound_standard_error, elbo

    torch.manual_seed(0)
    model = VAE(VAEConfig(data_dim=12, latent_dim=2, hidden_sizes=(8,)))
    x = (torch.rand(30, 12) > 0.5).float()
    values = elbo(model, x, generator=torch.Generator().manual_seed(3)).bound.detach()
    mean, se = bound_standard_error(model, x, batch_size=1000, seed=3)
    assert mean == pytest.approx(values.mean().item(), abs=1e-5)
    assert se == pytest.approx(values.std().item() / 30 ** 0.5, rel=1e-5)


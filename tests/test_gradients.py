"""Tests of vae_lib.model.gradients: fixed-eps values by hand, and unbiasedness against closed forms."""

import torch

from vae_lib.model.gradients import reparameterized_gradient, score_function_gradient


def quadratic(z: torch.Tensor) -> torch.Tensor:
    """f(z) = Σ_j (z_j − 1)²; E_q f = Σ (mu − 1)² + σ², so ∇_mu = 2(mu − 1), ∇_{log σ²} = σ²."""
    return ((z - 1) ** 2).sum(-1)


def test_reparameterized_gradient_with_fixed_eps_is_the_chain_rule():
    mu = torch.tensor([[0.3, -0.2]], dtype=torch.float64)
    log_var = torch.tensor([[0.1, -0.5]], dtype=torch.float64)
    eps = torch.tensor([[[1.0, -2.0]], [[0.5, 0.0]]], dtype=torch.float64)      # (L=2, 1, 2)
    sigma = (0.5 * log_var).exp()
    z = mu + sigma * eps
    g = reparameterized_gradient(quadratic, mu, log_var, eps=eps)
    torch.testing.assert_close(g.mu, (2 * (z - 1)).mean(0))
    torch.testing.assert_close(g.log_var, (2 * (z - 1) * 0.5 * sigma * eps).mean(0))


def test_score_function_with_fixed_eps_matches_autograd_of_log_q():
    mu = torch.tensor([0.3, -0.2], dtype=torch.float64)
    log_var = torch.tensor([0.1, -0.5], dtype=torch.float64)
    eps = torch.tensor([[1.0, -2.0], [0.5, 0.3]], dtype=torch.float64)
    g = score_function_gradient(quadratic, mu, log_var, eps=eps)
    m, lv = mu.clone().requires_grad_(), log_var.clone().requires_grad_()
    z = (mu + (0.5 * log_var).exp() * eps)                                      # fixed points
    q = torch.distributions.Normal(m, (0.5 * lv).exp())
    surrogate = (quadratic(z) * q.log_prob(z).sum(-1)).mean()
    gm, glv = torch.autograd.grad(surrogate, (m, lv))
    torch.testing.assert_close(g.mu, gm)
    torch.testing.assert_close(g.log_var, glv)


def test_both_estimators_are_unbiased_and_reparameterized_has_lower_variance():
    mu = torch.tensor([0.3, -0.2], dtype=torch.float64).expand(20_000, 2)       # 20000 replicates
    log_var = torch.tensor([0.1, -0.5], dtype=torch.float64).expand(20_000, 2)
    exact_mu, exact_log_var = 2 * (mu[0] - 1), log_var[0].exp()
    for estimator in (reparameterized_gradient, score_function_gradient):
        g = estimator(quadratic, mu, log_var, n_samples=4, generator=torch.Generator().manual_seed(0))
        for est, exact in ((g.mu, exact_mu), (g.log_var, exact_log_var)):
            se = est.std(0) / est.shape[0] ** 0.5
            assert ((est.mean(0) - exact).abs() < 5 * se).all(), estimator.__name__
    rep = reparameterized_gradient(quadratic, mu, log_var, n_samples=4, generator=torch.Generator().manual_seed(1))
    sf = score_function_gradient(quadratic, mu, log_var, n_samples=4, generator=torch.Generator().manual_seed(1))
    assert (rep.mu.var(0) < sf.mu.var(0)).all() and (rep.log_var.var(0) < sf.log_var.var(0)).all()


def test_inputs_are_not_modified_and_results_are_detached():
    mu = torch.zeros(3, 2, requires_grad=True)
    log_var = torch.zeros(3, 2, requires_grad=True)
    g = reparameterized_gradient(quadratic, mu, log_var, n_samples=2)
    assert g.mu.shape == (3, 2) and not g.mu.requires_grad and mu.grad is None
    g = score_function_gradient(quadratic, mu, log_var, n_samples=2)
    assert g.log_var.shape == (3, 2) and not g.log_var.requires_grad

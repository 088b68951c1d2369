"""vae_lib.model.priors: the standard normal, mixture-of-Gaussians and VampPrior log-densities against a direct
computation with torch.distributions, their samples' moments, and the ELBO with any prior."""

import math

import pytest
import torch
from torch.distributions import Independent, Normal

from vae_lib.model.objectives import elbo
from vae_lib.model.priors import MixturePrior, StandardNormalPrior, VampPrior, elbo_with_prior
from vae_lib.model.vae import VAE, GaussianEncoder, VAEConfig


def _mixture(seed=0, latent_dim=3, components=4):
    g = torch.Generator().manual_seed(seed)
    prior = MixturePrior(latent_dim, components, generator=g).double()
    with torch.no_grad():   # unequal weights and variances, so a wrong weighting or variance shows
        prior.logits.copy_(torch.randn(components, generator=g, dtype=torch.float64))
        prior.log_vars.copy_(0.5 * torch.randn(components, latent_dim, generator=g, dtype=torch.float64))
        prior.means.mul_(2.0)
    return prior


def _direct_log_density(z, weights, means, stds):
    """log Σ_c π_c N(z; μ_c, σ_c²), one component at a time, probabilities summed (not a logsumexp)."""
    total = torch.zeros(z.shape[:-1], dtype=torch.float64)
    for w, m, s in zip(weights, means, stds):
        total = total + w * Independent(Normal(m, s), 1).log_prob(z).exp()
    return total.log()


def test_standard_normal_log_prob_and_moments():
    prior = StandardNormalPrior(4).double()
    z = torch.randn(6, 2, 4, dtype=torch.float64)
    torch.testing.assert_close(prior.log_prob(z), Normal(0.0, 1.0).log_prob(z).sum(-1))
    draws = prior.sample(100_000, generator=torch.Generator().manual_seed(1))
    assert draws.shape == (100_000, 4) and draws.dtype == torch.float64
    assert draws.mean(0).abs().max() < 0.02 and (draws.var(0) - 1).abs().max() < 0.03


def test_mixture_log_prob_matches_a_loop_over_components():
    prior = _mixture()
    z = 2 * torch.randn(10, 3, generator=torch.Generator().manual_seed(5), dtype=torch.float64)
    with torch.no_grad():
        reference = _direct_log_density(z, torch.softmax(prior.logits, 0), prior.means, (0.5 * prior.log_vars).exp())
        torch.testing.assert_close(prior.log_prob(z), reference, rtol=1e-10, atol=1e-10)
    assert prior.log_prob(z.reshape(5, 2, 3)).shape == (5, 2)


def test_mixture_integrates_to_one_in_one_dimension():
    prior = _mixture(seed=2, latent_dim=1, components=3)
    grid = torch.linspace(-30, 30, 60001, dtype=torch.float64).unsqueeze(-1)
    with torch.no_grad():
        mass = torch.trapezoid(prior.log_prob(grid).exp(), grid.squeeze(-1))
    assert mass.item() == pytest.approx(1.0, abs=1e-8)


def test_mixture_samples_have_the_mixture_moments():
    prior = _mixture(seed=3)
    n = 200_000
    draws = prior.sample(n, generator=torch.Generator().manual_seed(4))
    with torch.no_grad():
        pi = torch.softmax(prior.logits, 0).unsqueeze(-1)
        mean = (pi * prior.means).sum(0)
        var = (pi * (prior.log_vars.exp() + prior.means ** 2)).sum(0) - mean ** 2
    assert ((draws.mean(0) - mean).abs() < 5 * (var / n).sqrt()).all()
    torch.testing.assert_close(draws.var(0), var, rtol=0.03, atol=0.0)


def test_mixture_parameters_are_learnable():
    prior = _mixture()
    prior.log_prob(torch.zeros(2, 3, dtype=torch.float64)).sum().backward()
    assert all(p.grad is not None and p.grad.abs().sum() > 0 for p in (prior.means, prior.log_vars, prior.logits))


def _encoder(data_dim=6, latent_dim=2, seed=0):
    torch.manual_seed(seed)
    return GaussianEncoder(VAEConfig(data_dim=data_dim, latent_dim=latent_dim, hidden_sizes=(5,))).double()


def test_vamp_prior_log_prob_matches_the_mean_of_the_encoders_posteriors():
    encoder = _encoder()
    prior = VampPrior(encoder, pseudo_inputs=5, data_dim=6, generator=torch.Generator().manual_seed(1))
    z = torch.randn(7, 2, generator=torch.Generator().manual_seed(2), dtype=torch.float64)
    with torch.no_grad():
        total = torch.zeros(7, dtype=torch.float64)
        for u in prior.pseudo_inputs:                                   # q(z|u_k), one pseudo-input at a time
            mu, log_var = encoder(u.unsqueeze(0))
            total = total + Independent(Normal(mu[0], (0.5 * log_var[0]).exp()), 1).log_prob(z).exp() / 5
        torch.testing.assert_close(prior.log_prob(z), total.log(), rtol=1e-10, atol=1e-10)


def test_vamp_prior_samples_have_the_mixture_mean():
    prior = VampPrior(_encoder(seed=3), pseudo_inputs=4, data_dim=6, generator=torch.Generator().manual_seed(0))
    draws = prior.sample(200_000, generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        mu, log_var = prior.components_parameters()
    mean = mu.mean(0)
    var = (log_var.exp() + mu ** 2).mean(0) - mean ** 2
    assert ((draws.mean(0) - mean).abs() < 5 * (var / 200_000).sqrt()).all()
    torch.testing.assert_close(draws.var(0), var, rtol=0.03, atol=0.0)


def test_vamp_pseudo_inputs_start_from_data_or_uniform_and_stay_in_the_unit_interval():
    data = torch.rand(20, 6, dtype=torch.float64)
    prior = VampPrior(_encoder(), 3, 6, data=data, generator=torch.Generator().manual_seed(0))
    rows = {tuple(r.tolist()) for r in data}
    assert all(tuple(u.tolist()) in rows for u in prior.pseudo_inputs.detach())
    random = VampPrior(_encoder(), 3, 6)
    assert random.pseudo_inputs.dtype == torch.float64
    assert bool(((random.pseudo_inputs > 0) & (random.pseudo_inputs < 1)).all())
    with torch.no_grad():
        random.raw_pseudo_inputs.add_(5.0)
    assert bool((random.pseudo_inputs == 1).all())


def test_vamp_prior_trains_the_pseudo_inputs_and_the_shared_encoder():
    encoder = _encoder()
    prior = VampPrior(encoder, 3, 6, generator=torch.Generator().manual_seed(0))
    prior.log_prob(torch.zeros(4, 2, dtype=torch.float64)).sum().backward()
    assert prior.raw_pseudo_inputs.grad.abs().sum() > 0
    assert all(p.grad is not None for p in encoder.parameters())


def test_bad_arguments_are_refused():
    with pytest.raises(ValueError, match="components"):
        MixturePrior(2, 0)
    with pytest.raises(ValueError, match="latent_dim"):
        StandardNormalPrior(2.5)
    with pytest.raises(ValueError, match=r"shape \(\.\.\., J\) with J = 3"):
        _mixture().log_prob(torch.zeros(4, 2, dtype=torch.float64))
    with pytest.raises(ValueError, match="fewer than the 5 pseudo-inputs"):
        VampPrior(_encoder(), 5, 6, data=torch.rand(3, 6))
    with pytest.raises(ValueError, match="D = data_dim = 6"):
        VampPrior(_encoder(), 2, 6, data=torch.rand(3, 7))
    with pytest.raises(ValueError, match="pseudo_inputs"):
        VampPrior(_encoder(), 0, 6)


def test_elbo_with_the_standard_normal_prior_is_estimator_a():
    torch.manual_seed(0)
    model = VAE(VAEConfig(data_dim=6, latent_dim=2, hidden_sizes=(5,))).double()
    x = torch.rand(4, 6, dtype=torch.float64).round()
    eps = torch.randn(3, 4, 2, dtype=torch.float64)
    ours = elbo_with_prior(model, StandardNormalPrior(2).double(), x, n_samples=3, eps=eps)
    reference = elbo(model, x, n_samples=3, estimator="A", eps=eps)
    torch.testing.assert_close(ours.bound, reference.bound)
    torch.testing.assert_close(ours.kl, reference.kl)
    # a different prior changes the rate term and nothing else
    other = elbo_with_prior(model, _mixture(latent_dim=2), x, n_samples=3, eps=eps)
    torch.testing.assert_close(other.reconstruction, reference.reconstruction)
    assert not torch.allclose(other.kl, reference.kl)
    assert math.isfinite(other.bound.sum().item())


def test_the_expanded_component_log_densities_match_the_direct_form_in_float32_at_small_variances():
    """mixture_component_log_probs expands the square (memory (..., C), not (..., C, J)); it computes in float64,
    so even posteriors as narrow as σ = 0.003 (a VampPrior's components late in training) lose nothing."""
    from vae_lib.model.objectives import log_normal_diag
    from vae_lib.model.priors import mixture_component_log_probs
    g = torch.Generator().manual_seed(0)
    means = torch.randn(7, 50, generator=g)
    log_vars = torch.empty(7, 50).uniform_(2 * math.log(0.003), 0.5, generator=g)
    z = means[torch.arange(30) % 7] + 0.01 * torch.randn(30, 50, generator=g)        # near the components
    direct = log_normal_diag(z.double().unsqueeze(-2), means.double(), log_vars.double())   # (30, 7)
    ours = mixture_component_log_probs(z, means, log_vars)
    assert ours.dtype == torch.float32 and ours.shape == (30, 7)
    torch.testing.assert_close(ours.double(), direct, rtol=1e-6, atol=1e-4)


def test_marginal_log_densities_match_a_loop_over_components_and_units():
    prior = _mixture()
    z = torch.randn(6, 3, generator=torch.Generator().manual_seed(7), dtype=torch.float64)
    with torch.no_grad():
        pi = torch.softmax(prior.logits, 0)
        reference = torch.stack([sum(pi[c] * Normal(prior.means[c, j], (0.5 * prior.log_vars[c, j]).exp()).log_prob(
            z[:, j]).exp() for c in range(4)).log() for j in range(3)], -1)
        torch.testing.assert_close(prior.marginal_log_prob(z), reference, rtol=1e-10, atol=1e-10)
    standard = StandardNormalPrior(3).double()
    torch.testing.assert_close(standard.marginal_log_prob(z), Normal(0.0, 1.0).log_prob(z))
    vamp = VampPrior(_encoder(latent_dim=3), 5, 6, generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        mu, log_var = vamp.components_parameters()
        reference = torch.stack([sum(Normal(mu[k, j], (0.5 * log_var[k, j]).exp()).log_prob(z[:, j]).exp() / 5
                                     for k in range(5)).log() for j in range(3)], -1)
        torch.testing.assert_close(vamp.marginal_log_prob(z), reference, rtol=1e-10, atol=1e-10)

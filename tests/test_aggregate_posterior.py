"""vae_lib.inference.aggregate_posterior: the ELBO-surgery split R = I + KL(q(z) ‖ p(z)) on cases with a closed
form, the aggregate log-density against a direct computation, and the closed-form rate against its Monte Carlo."""

import math

import pytest
import torch
from torch.distributions import Independent, Normal, kl_divergence

from vae_lib.inference.aggregate_posterior import (aggregate_log_density, average_rate, posterior_parameters,
                                                   rate_split)
from vae_lib.model.priors import MixturePrior, StandardNormalPrior
from vae_lib.model.vae import VAE, VAEConfig


def _posteriors(n=50, j=4, seed=0, spread=1.0, log_var_shift=-1.0):
    g = torch.Generator().manual_seed(seed)
    mu = spread * torch.randn(n, j, generator=g, dtype=torch.float64)
    log_var = 0.3 * torch.randn(n, j, generator=g, dtype=torch.float64) + log_var_shift
    return mu, log_var


def test_aggregate_log_density_matches_a_loop_over_components():
    mu, log_var = _posteriors(n=7, j=3, log_var_shift=-6.0)      # tight posteriors: the expansion's hard case
    z = mu[[0, 3, 3, 6]] + 0.01 * torch.randn(4, 3, dtype=torch.float64)
    components = [Independent(Normal(m, (0.5 * lv).exp()), 1) for m, lv in zip(mu, log_var)]
    per = torch.stack([c.log_prob(z) for c in components], 1)                 # (4, 7)
    torch.testing.assert_close(aggregate_log_density(z, mu, log_var),
                               torch.logsumexp(per, 1) - math.log(7), rtol=1e-9, atol=1e-9)
    own = torch.tensor([0, 3, 3, 6])
    per_loo = per.clone()
    per_loo[torch.arange(4), own] = -math.inf
    torch.testing.assert_close(aggregate_log_density(z, mu, log_var, exclude=own),
                               torch.logsumexp(per_loo, 1) - math.log(6), rtol=1e-9, atol=1e-9)


def test_chunks_give_the_same_density(monkeypatch):
    import vae_lib.inference.aggregate_posterior as module

    mu, log_var = _posteriors(n=30)
    z = torch.randn(25, 4, dtype=torch.float64)
    whole = aggregate_log_density(z, mu, log_var)
    monkeypatch.setattr(module, "CHUNK_ELEMENTS", 30 * 4)                     # four draws per chunk
    torch.testing.assert_close(aggregate_log_density(z, mu, log_var), whole)


def test_identical_posteriors_carry_no_information():
    """All N posteriors equal: q(z) is that posterior, I = 0 and KL(q(z) ‖ p(z)) = its KL to the prior."""
    mu, log_var = _posteriors(n=1, j=3)
    mu, log_var = mu.expand(40, 3).clone(), log_var.expand(40, 3).clone()
    single = kl_divergence(Independent(Normal(mu[0], (0.5 * log_var[0]).exp()), 1),
                           Independent(Normal(torch.zeros(3, dtype=torch.float64), 1.0), 1)).item()
    mc = rate_split(mu, log_var, n_samples=20, generator=torch.Generator().manual_seed(0), closed_form=False)
    assert mc.mutual_information.mean == pytest.approx(0.0, abs=1e-9)     # draw by draw: log q(z|x) = log q(z)
    assert abs(mc.marginal_kl.mean - single) < 4 * mc.marginal_kl.stderr
    exact = rate_split(mu, log_var, n_samples=20, generator=torch.Generator().manual_seed(0))
    assert exact.rate.mean == pytest.approx(single, rel=1e-10)
    assert exact.mutual_information.mean == pytest.approx(0.0, abs=1e-9)
    assert exact.marginal_kl.mean == pytest.approx(single, rel=1e-9)        # no Monte Carlo noise left
    loo = rate_split(mu, log_var, generator=torch.Generator().manual_seed(0), closed_form=False, leave_one_out=True)
    assert loo.mutual_information.mean == pytest.approx(0.0, abs=1e-9)


def test_separated_tight_posteriors_reach_log_n():
    """N posteriors with σ = 1e-3 at means far apart: q(z) near each draw is its own component over N, so
    I = log N and KL(q(z) ‖ p(z)) = R − log N."""
    n = 64
    mu = 3.0 * torch.randn(n, 2, generator=torch.Generator().manual_seed(1), dtype=torch.float64)
    log_var = torch.full((n, 2), 2 * math.log(1e-3), dtype=torch.float64)
    split = rate_split(mu, log_var, n_samples=4, generator=torch.Generator().manual_seed(2), closed_form=False)
    assert split.log_n == pytest.approx(math.log(n))
    assert split.mutual_information.mean == pytest.approx(math.log(n), abs=1e-9)   # draw by draw
    assert split.marginal_kl.mean == pytest.approx(split.rate.mean - math.log(n), abs=1e-9)
    # the closed-form rate: the same I, and a marginal KL within Monte Carlo noise of the other
    exact = rate_split(mu, log_var, n_samples=4, generator=torch.Generator().manual_seed(2))
    assert exact.mutual_information.mean == pytest.approx(math.log(n), abs=1e-9)
    assert abs(exact.marginal_kl.mean - split.marginal_kl.mean) < 4 * split.marginal_kl.stderr
    # leaving each draw's own component out, nothing else is near it: log q(z) collapses (biased low)
    loo = rate_split(mu, log_var, generator=torch.Generator().manual_seed(2), closed_form=False, leave_one_out=True)
    assert loo.mutual_information.mean > 100


def test_the_split_adds_up_and_respects_its_bounds():
    mu, log_var = _posteriors(n=200, j=3, spread=1.5)
    split = rate_split(mu, log_var, n_samples=2, generator=torch.Generator().manual_seed(3), closed_form=False)
    assert split.rate.mean == pytest.approx(split.mutual_information.mean + split.marginal_kl.mean, abs=1e-9)
    assert 0 < split.mutual_information.mean <= split.log_n
    exact = rate_split(mu, log_var, n_samples=2, generator=torch.Generator().manual_seed(3))
    assert exact.mutual_information == split.mutual_information          # the same draws give the same I
    assert abs(exact.marginal_kl.mean - split.marginal_kl.mean) < 4 * split.marginal_kl.stderr
    assert split.marginal_kl.mean > 0
    assert split.rate.n == split.marginal_kl.n == 200


def test_closed_form_rate_agrees_with_its_monte_carlo():
    mu, log_var = _posteriors(n=300, j=5, spread=0.7)
    exact = average_rate(mu, log_var)
    mc = average_rate(mu, log_var, prior=StandardNormalPrior(5), closed_form=False, n_samples=400,
                      generator=torch.Generator().manual_seed(4))
    # the same images: compare the Monte Carlo's per-image noise, not the images' spread
    assert exact.mean != mc.mean
    assert abs(exact.mean - mc.mean) < 4 * mc.stderr
    assert abs(exact.mean - mc.mean) < 0.05
    with_split = rate_split(mu, log_var, generator=torch.Generator().manual_seed(5))
    assert with_split.rate == exact


def test_a_one_component_standard_mixture_is_the_standard_normal():
    mu, log_var = _posteriors(n=40, j=2)
    mixture = MixturePrior(2, 1, init_spread=0.0).double()
    a = rate_split(mu, log_var, prior=mixture, generator=torch.Generator().manual_seed(6))
    b = rate_split(mu, log_var, closed_form=False, generator=torch.Generator().manual_seed(6))
    for x, y in zip(a[:3], b[:3]):
        assert x.mean == pytest.approx(y.mean, rel=1e-12)
    shifted = MixturePrior(2, 1, init_spread=0.0).double()
    with torch.no_grad():
        shifted.means.fill_(2.0)
    c = rate_split(mu, log_var, prior=shifted, generator=torch.Generator().manual_seed(6))
    assert c.rate.mean > a.rate.mean + 1 and c.mutual_information.mean == pytest.approx(a.mutual_information.mean)


def test_posterior_parameters_encode_in_batches():
    torch.manual_seed(0)
    model = VAE(VAEConfig(data_dim=6, latent_dim=2, hidden_sizes=(5,))).double()
    x = torch.rand(11, 6, dtype=torch.float64)
    mu, log_var = posterior_parameters(model, x, batch_size=4)
    with torch.no_grad():
        ref_mu, ref_log_var = model.encode(x)
    torch.testing.assert_close(mu, ref_mu)
    torch.testing.assert_close(log_var, ref_log_var)


def test_bad_arguments_are_refused():
    mu, log_var = _posteriors(n=5, j=2)
    with pytest.raises(ValueError, match="one shape"):
        rate_split(mu, log_var[:, :1])
    with pytest.raises(ValueError, match="closed-form"):
        rate_split(mu, log_var, prior=MixturePrior(2, 3).double(), closed_form=True)
    with pytest.raises(ValueError, match="J = 3 latents"):
        rate_split(mu, log_var, prior=StandardNormalPrior(3))
    with pytest.raises(ValueError, match="N ≥ 2"):
        rate_split(mu[:1], log_var[:1], leave_one_out=True)
    with pytest.raises(ValueError, match="finite"):
        rate_split(mu * math.nan, log_var)


def test_prior_mass_in_holes_matches_the_chi_square_tail():
    """One posterior N(0, s²I) against N(0, I) in two dimensions: q < r·p exactly where |z|² > t, with
    t = 2(−2 log s − log r)/(1/s² − 1), and under the prior |z|² ~ χ²₂, so the mass is exp(−t/2)."""
    from vae_lib.inference.aggregate_posterior import prior_mass_in_holes

    s, r = 0.5, 0.1
    mu, log_var = torch.zeros(1, 2, dtype=torch.float64), torch.full((1, 2), 2 * math.log(s), dtype=torch.float64)
    t = 2 * (-2 * math.log(s) - math.log(r)) / (1 / s ** 2 - 1)
    exact = math.exp(-t / 2)
    got = prior_mass_in_holes(mu, log_var, ratio=r, n_draws=40000, generator=torch.Generator().manual_seed(0))
    assert abs(got.mean - exact) < 4 * got.stderr, (got, exact)
    assert abs(got.stderr - math.sqrt(exact * (1 - exact) / 40000)) < 2e-4


def test_prior_mass_in_holes_is_zero_when_q_is_the_prior_and_uses_a_given_prior():
    from vae_lib.inference.aggregate_posterior import prior_mass_in_holes
    from vae_lib.model.priors import StandardNormalPrior

    mu, log_var = torch.zeros(1, 3), torch.zeros(1, 3)
    g = torch.Generator().manual_seed(1)
    assert prior_mass_in_holes(mu, log_var, n_draws=2000, generator=g).mean == 0.0
    far = prior_mass_in_holes(mu + 10, log_var, prior=StandardNormalPrior(3), n_draws=2000, generator=g)
    assert far.mean == 1.0
    with pytest.raises(ValueError, match="ratio"):
        prior_mass_in_holes(mu, log_var, ratio=0)


def test_grid_log_densities_index_rows_by_z2_and_columns_by_z1():
    from vae_lib.inference.aggregate_posterior import grid_log_densities

    axis, log_q, log_p = grid_log_densities(torch.zeros(1, 2), torch.zeros(1, 2), limit=3.0, steps=31)
    assert axis.shape == (31,) and log_q.shape == log_p.shape == (31, 31)
    assert torch.allclose(log_q, log_p, atol=1e-5)          # one N(0, I) component: q = p
    axis, log_q, _ = grid_log_densities(torch.tensor([[2.0, 0.0]]), torch.full((1, 2), -2.0), limit=3.0, steps=31)
    row, col = divmod(int(log_q.argmax()), 31)
    assert axis[col] == pytest.approx(2.0, abs=0.1) and axis[row] == pytest.approx(0.0, abs=0.1)
    with pytest.raises(ValueError, match="J = 2"):
        grid_log_densities(torch.zeros(1, 3), torch.zeros(1, 3))


def test_log_density_ratio_is_log_q_minus_log_p():
    """One posterior N(m, s²I): log q(z) − log p(z) against torch's own densities, for N(0, I) and a mixture prior."""
    from vae_lib.inference.aggregate_posterior import log_density_ratio

    mu, log_var = torch.tensor([[0.5, -1.0]]), torch.tensor([[-0.5, 0.3]])
    z = torch.randn(7, 2, generator=torch.Generator().manual_seed(2))
    q = Independent(Normal(mu[0], (0.5 * log_var[0]).exp()), 1).log_prob(z)
    p = Independent(Normal(torch.zeros(2), torch.ones(2)), 1).log_prob(z)
    assert torch.allclose(log_density_ratio(z, mu, log_var), q - p, atol=1e-5)
    prior = MixturePrior(2, 3)
    assert torch.allclose(log_density_ratio(z, mu, log_var, prior), q - prior.log_prob(z), atol=1e-5)

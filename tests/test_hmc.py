"""Tests of vae_lib.inference.hmc against distributions whose moments are known: a standard normal, a
correlated 2-D Gaussian and the exact posterior of the linear-Gaussian model.

Monte-Carlo errors are judged with effective sample sizes, so the tolerances are a few standard
errors. The step sizes of the fixed-step tests are large on purpose: there the leapfrog's energy
error is big enough that leaving out the Metropolis correction inflates the variances by many
standard errors (about 14 for the correlated Gaussian)."""

import math

import torch

from vae_lib.inference.hmc import effective_sample_size, hmc_step, leapfrog, sample_posterior

F64 = torch.float64


def run_chains(log_density, z0, step_size, n_leapfrog, n_steps, seed=0):
    """n_steps HMC transitions of the chains z0 (B, J) → draws (n_steps, B, J), acceptance probs (n_steps, B)."""
    g = torch.Generator().manual_seed(seed)
    z, draws, accept = z0, [], []
    for _ in range(n_steps):
        z, accept_prob, _ = hmc_step(log_density, z, step_size, n_leapfrog, g)
        draws.append(z)
        accept.append(accept_prob)
    return torch.stack(draws), torch.stack(accept)


def pooled_mean_and_se(values):
    """Mean of ``values`` (T, B) over T draws of B chains, and its standard error from per-chain ESS."""
    return values.mean(), values.std() / effective_sample_size(values).sum().sqrt()


def assert_moments(draws, mean, cov, n_se=5.0):
    """Each mean and covariance entry of the pooled draws (T, B, J) within n_se standard errors."""
    j = mean.shape[0]
    for a in range(j):
        m, se = pooled_mean_and_se(draws[..., a])
        assert abs(m - mean[a]) < n_se * se, (a, m, mean[a], se)
        for b in range(a, j):
            product = (draws[..., a] - mean[a]) * (draws[..., b] - mean[b])   # E = cov[a, b]
            m, se = pooled_mean_and_se(product)
            assert abs(m - cov[a, b]) < n_se * se, (a, b, m, cov[a, b], se)


def test_hmc_step_keeps_a_standard_normal():
    target = torch.distributions.MultivariateNormal(torch.zeros(3, dtype=F64), torch.eye(3, dtype=F64))
    z0 = target.sample((200,))  # stationary start: any bias the kernel has shows as drift
    draws, accept = run_chains(target.log_prob, z0, 1.6, 3, 200)
    assert 0.3 < accept.mean() < 0.95
    assert_moments(draws, target.mean, target.covariance_matrix)


def test_hmc_step_samples_a_correlated_gaussian_from_a_bad_start():
    cov = torch.tensor([[1.0, 0.9], [0.9, 1.0]], dtype=F64)   # std 0.32 along the narrow axis
    target = torch.distributions.MultivariateNormal(torch.tensor([1.0, -0.5], dtype=F64), cov)
    z0 = torch.full((200, 2), 3.0, dtype=F64)
    draws, accept = run_chains(target.log_prob, z0, 0.45, 5, 330)
    assert 0.6 < accept.mean() < 0.95
    assert_moments(draws[30:], target.mean, cov)   # 30 steps of burn-in


def test_leapfrog_is_reversible_and_nearly_conserves_energy():
    cov = torch.tensor([[1.0, 0.5], [0.5, 2.0]], dtype=F64)
    target = torch.distributions.MultivariateNormal(torch.zeros(2, dtype=F64), cov)
    g = torch.Generator().manual_seed(1)
    z = torch.randn(10, 2, generator=g, dtype=F64)
    p = torch.randn(10, 2, generator=g, dtype=F64)
    step_size = torch.linspace(0.01, 0.1, 10, dtype=F64)   # one step size per chain
    z1, p1, log_p1 = leapfrog(target.log_prob, z, p, step_size, 20)
    torch.testing.assert_close(log_p1, target.log_prob(z1))
    z2, p2, _ = leapfrog(target.log_prob, z1, -p1, step_size, 20)
    torch.testing.assert_close(z2, z, atol=1e-10, rtol=0)
    torch.testing.assert_close(-p2, p, atol=1e-10, rtol=0)
    energy_change = (log_p1 - 0.5 * (p1 ** 2).sum(-1)) - (target.log_prob(z) - 0.5 * (p ** 2).sum(-1))
    assert (energy_change.abs() < step_size ** 2).all()   # leapfrog error is O(ε²)
    assert energy_change[0].abs() < energy_change[-1].abs()


def test_acceptance_is_a_probability_and_divergence_is_rejected():
    target = torch.distributions.MultivariateNormal(torch.zeros(2, dtype=F64), torch.eye(2, dtype=F64))
    z = torch.randn(50, 2, generator=torch.Generator().manual_seed(2), dtype=F64)
    step = hmc_step(target.log_prob, z, 0.3, 10, torch.Generator().manual_seed(3))
    assert ((step.accept_prob > 0) & (step.accept_prob <= 1)).all()
    assert step.accept_prob.mean() > 0.9
    moved = (step.z != z).any(-1)
    assert torch.equal(moved, step.accepted)
    wild = hmc_step(target.log_prob, z, 50.0, 10, torch.Generator().manual_seed(3))   # unstable leapfrog
    assert (wild.accept_prob < 1e-6).all()
    torch.testing.assert_close(wild.z[~wild.accepted], z[~wild.accepted])


def test_effective_sample_size_of_iid_and_ar1_chains():
    g = torch.Generator().manual_seed(4)
    n = 4000
    noise = torch.randn(n, 40, generator=g, dtype=F64)
    iid = effective_sample_size(noise)
    assert iid.shape == (40,)
    assert 0.9 < (iid / n).mean() < 1.1
    phi = 0.9
    chain = torch.zeros_like(noise)
    for t in range(1, n):
        chain[t] = phi * chain[t - 1] + math.sqrt(1 - phi ** 2) * noise[t]
    ess = effective_sample_size(chain)
    expected = n * (1 - phi) / (1 + phi)   # n / τ with τ = (1 + φ) / (1 − φ)
    assert 0.75 * expected < ess.mean() < 1.25 * expected
    assert (ess < n / 8).all()
    assert effective_sample_size(torch.ones(100, 3, dtype=F64)).tolist() == [1.0, 1.0, 1.0]


def test_sample_posterior_matches_the_linear_gaussian_posterior(linear_gaussian, sample_x):
    model = linear_gaussian(orthogonal=False)   # correlated posterior; the encoder is the default N(0, I)
    x = sample_x(model, 20)
    samples = sample_posterior(model, x, n_samples=300, burn_in=150, generator=torch.Generator().manual_seed(5))
    assert samples.z.shape == (300, 20, 2)
    assert (samples.accept_rate > 0.8).all() and (samples.accept_rate < 0.99).all()
    assert (samples.ess > 30).all()
    with torch.no_grad():
        posterior = model.posterior(x)
    sd = posterior.covariance_matrix.diagonal(dim1=-2, dim2=-1).sqrt()          # (B, J)
    z_scores = (samples.z.mean(0) - posterior.mean) / (sd / samples.ess.sqrt().unsqueeze(-1))
    assert z_scores.abs().max() < 4.5
    assert (z_scores ** 2).mean() < 2.0    # ≈ 1 when the ESS is right; min-over-J ESS makes it smaller
    centred = samples.z - posterior.mean                                        # the covariance is shared
    assert_moments(centred, torch.zeros(2, dtype=F64), posterior.covariance_matrix[0])


def test_step_size_adapts_toward_the_target_acceptance(linear_gaussian, sample_x):
    """From a step size 500 times too small or 10 times too large, 150 burn-in steps reach the same
    ε and an acceptance near the target; dual averaging's averaged step lands a few points above it
    (0.60–0.70 for 0.6, about 0.95 for 0.9, over seeds), and a lower target gives a larger step."""
    model = linear_gaussian(orthogonal=True)
    x = sample_x(model, 8)
    rates, steps = {}, {}
    for target in (0.6, 0.9):
        for init in (0.01, 5.0):
            s = sample_posterior(model, x, n_samples=100, burn_in=150, target_accept=target, init_step_size=init,
                                 generator=torch.Generator().manual_seed(6))
            rates[target, init], steps[target, init] = s.accept_rate.mean(), s.step_size.mean()
            assert target - 0.03 < rates[target, init] < target + 0.12, (target, init, rates[target, init])
        assert abs(steps[target, 0.01] / steps[target, 5.0] - 1) < 0.25
    assert steps[0.6, 0.01] > 1.3 * steps[0.9, 0.01]
    assert steps[0.6, 5.0] > 1.3 * steps[0.9, 5.0]


def test_chains_start_at_init_z_and_still_reach_the_posterior(linear_gaussian, sample_x):
    model = linear_gaussian(orthogonal=True)
    model.set_encoder_to_posterior()
    x = sample_x(model, 10)
    start = torch.full((10, 2), 4.0, dtype=F64)   # far in the posterior's tail
    first = sample_posterior(model, x, n_samples=1, n_leapfrog=1, burn_in=0, init_step_size=0.01, init_z=start,
                             generator=torch.Generator().manual_seed(7))
    assert ((first.z[0] - start).abs() < 0.1).all()   # one tiny step from the start, not from the encoder's mean
    samples = sample_posterior(model, x, n_samples=200, burn_in=100, init_z=start,
                               generator=torch.Generator().manual_seed(7))
    with torch.no_grad():
        posterior = model.posterior(x)
    sd = posterior.covariance_matrix.diagonal(dim1=-2, dim2=-1).sqrt()
    z_scores = (samples.z.mean(0) - posterior.mean) / (sd / samples.ess.sqrt().unsqueeze(-1))
    assert z_scores.abs().max() < 4.5

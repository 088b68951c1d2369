"""Tests of vae_lib.inference.quadrature: closed-form log p(x) of linear-Gaussian models with J = 1, 2, 3,
importance sampling on a tiny VAE, and a two-mode posterior whose encoder sees one mode."""

import math

import pytest
import torch

from vae_lib.model.objectives import LOG_2PI, elbo
from vae_lib.inference.likelihood import importance_sampled_log_likelihood
from vae_lib.inference.linear_gaussian import LinearGaussian
from vae_lib.inference.quadrature import box_log_marginal, quadrature_log_marginal

F64 = torch.float64


def random_linear_gaussian(d, j, seed=0):
    g = torch.Generator().manual_seed(seed)
    return LinearGaussian(torch.randn(d, j, generator=g, dtype=F64), torch.randn(d, generator=g, dtype=F64), 0.5)


class TwoModes:
    """A toy model with a two-mode posterior: z = (z1, z2) ~ N(0, I), x = (x1, x2) with
    p(x1|z) = N(x1; a|z1|, s²) and p(x2|z) = N(x2; z2, 1). Given x1 > 0 the posterior of z1 has
    modes at ±a x1 / (a² + s²), each of variance s² / (a² + s²); its encoder points at + only.
    log p(x) = log 2 + log N(x1; 0, a² + s²) + log Φ(m / √v) + log N(x2; 0, 2), m and v the mean
    and variance of z1 | x1 under x1 = a z1 + noise (the two halves z1 > 0 and z1 < 0 mirror)."""

    latent_dim = 2
    a, s = 2.0, 0.5

    def encode(self, x):
        var = self.a ** 2 + self.s ** 2
        mu = torch.stack([self.a * x[:, 0] / var, x[:, 1] / 2], -1)
        log_var = torch.tensor([math.log(self.s ** 2 / var), math.log(0.5)], dtype=x.dtype).expand_as(mu)
        return mu, log_var

    def log_likelihood(self, x, z):
        mean = torch.stack([self.a * z[..., 0].abs(), z[..., 1]], -1)
        sd = torch.tensor([self.s, 1.0], dtype=x.dtype)
        return (-0.5 * (LOG_2PI + 2 * sd.log() + ((x - mean) / sd) ** 2)).sum(-1)

    def log_marginal(self, x):
        var = self.a ** 2 + self.s ** 2
        m, v = self.a * x[:, 0] / var, self.s ** 2 / var
        log_x1 = (math.log(2) - 0.5 * (LOG_2PI + math.log(var) + x[:, 0] ** 2 / var)
                  + torch.special.log_ndtr(m / math.sqrt(v)))
        return log_x1 - 0.5 * (LOG_2PI + math.log(2) + x[:, 1] ** 2 / 2)


@pytest.mark.parametrize("orthogonal", [True, False])
@pytest.mark.parametrize("posterior_encoder", [True, False])
def test_matches_the_linear_gaussian_marginal_j2(linear_gaussian, sample_x, orthogonal, posterior_encoder):
    model = linear_gaussian(orthogonal=orthogonal)
    if posterior_encoder:
        model.set_encoder_to_posterior()   # else the encoder is N(0, I) for every x: a box in the wrong place
    x = sample_x(model, 10)
    result = quadrature_log_marginal(model, x)
    assert result.converged.all() and (result.change < 1e-4).all()
    with torch.no_grad():
        torch.testing.assert_close(result.log_px, model.log_marginal(x), atol=1e-4, rtol=0)


@pytest.mark.parametrize("d, j", [(4, 1), (6, 3)])
def test_matches_the_linear_gaussian_marginal_j1_j3(sample_x, d, j):
    model = random_linear_gaussian(d, j)
    model.set_encoder_to_posterior()
    with torch.no_grad():
        model.enc_weight.mul_(0.9)   # a slightly wrong encoder: the box is not centred on the posterior
    x = sample_x(model, 6)
    result = quadrature_log_marginal(model, x)
    assert result.converged.all()
    with torch.no_grad():
        torch.testing.assert_close(result.log_px, model.log_marginal(x), atol=1e-4, rtol=0)


def test_boxes_follow_the_grid_posterior_when_the_encoder_is_too_narrow(linear_gaussian, sample_x):
    """An encoder 8 times too narrow and off-centre: the first box covers a sliver of the posterior.
    Without the guard, only the re-placing of each box at the last grid's posterior moments brings
    the value to log p(x)."""
    model = linear_gaussian(orthogonal=False)
    model.set_encoder_to_posterior()
    with torch.no_grad():
        model.enc_log_var.sub_(2 * math.log(8.0))
        model.enc_bias.add_(0.3)
    x = sample_x(model, 6)
    result = quadrature_log_marginal(model, x, guard=False)
    assert result.converged.all()
    with torch.no_grad():
        torch.testing.assert_close(result.log_px, model.log_marginal(x), atol=1e-4, rtol=0)
        posterior = model.posterior(x)
        torch.testing.assert_close(result.centre, posterior.mean, atol=1e-3, rtol=0)


def test_box_integral_scales_with_the_box(linear_gaussian, sample_x):
    """The same integral over boxes of different sizes and cell counts: the cell volume carries the
    scale σ of every axis, so forgetting it (or the n) would move the value by orders of magnitude."""
    model = linear_gaussian(orthogonal=False)
    x = sample_x(model, 4)
    with torch.no_grad():
        truth = model.log_marginal(x)
        post = model.posterior(x)
        centre, sd = post.mean, post.covariance_matrix.diagonal(dim1=-2, dim2=-1).sqrt()
        for scale, n, k in [(sd, 40, 7.0), (2 * sd, 80, 3.5), (0.5 * sd, 24, 14.0)]:
            value = box_log_marginal(model, x, centre, scale, n, k).log_px
            torch.testing.assert_close(value, truth, atol=1e-6, rtol=0)


def test_agrees_with_importance_sampling_on_a_tiny_vae(small_vae):
    """J = 3. The tiny VAE's encoder is random, a poor proposal; a few hundred Adam steps on the
    test images' ELBO (encoder only) make importance sampling with K = 20000 accurate to ~0.01."""
    model = small_vae(latent_dim=3)
    x = (torch.rand(4, 12, generator=torch.Generator().manual_seed(0)) < 0.5).to(F64)
    opt = torch.optim.Adam(model.encoder.parameters(), lr=0.02)
    g = torch.Generator().manual_seed(1)
    for _ in range(300):
        opt.zero_grad()
        (-elbo(model, x, n_samples=8, generator=g).bound.sum()).backward()
        opt.step()
    result = quadrature_log_marginal(model, x)
    assert result.converged.all()
    iw = importance_sampled_log_likelihood(model, x, k=20000, seed=2)
    stderr = 1 / iw.ess.sqrt()   # the delta-method standard error of log p̂_K, √(Var w / K) / E w
    assert (iw.ess > 200).all()
    assert ((result.log_px - iw.log_px).abs() < 4 * stderr + 1e-3).all(), (result.log_px, iw.log_px, stderr)


def test_wide_box_guard_finds_the_second_mode():
    model = TwoModes()
    x = torch.tensor([[3.0, 0.5], [2.5, -1.0], [4.0, 0.0]], dtype=F64)
    truth = model.log_marginal(x)
    result = quadrature_log_marginal(model, x)
    assert result.recentred.all()
    assert (result.outside_share < 1e-6).all()
    torch.testing.assert_close(result.log_px, truth, atol=1e-4, rtol=0)
    unguarded = quadrature_log_marginal(model, x, guard=False)
    assert not unguarded.recentred.any()
    assert (unguarded.outside_share > 0.1).all()    # the record shows what the local box missed
    assert ((truth - unguarded.log_px) > 0.3).all()  # up to log 2: one mode of two


def test_rejects_large_latent_spaces(small_vae):
    model = small_vae(latent_dim=4)
    with pytest.raises(ValueError, match="latent_dim"):
        quadrature_log_marginal(model, torch.zeros(2, 12, dtype=F64))


def test_mode_centre_finds_narrow_posteriors_a_coarse_grid_cannot_place():
    """Noise variance 1e-4: posterior standard deviations ~0.005, far below the coarse grid's 0.375-wide cells
    (a decoder without an encoder, as Monte Carlo EM's, is like this). laplace_box lands on the exact
    posterior mean and marginal standard deviations, and the quadrature centred there converges to the
    closed form; centred on the coarse grid's moments, within the same grid budget, it does not."""
    from vae_lib.inference.quadrature import laplace_box

    g = torch.Generator().manual_seed(3)
    model = LinearGaussian(torch.randn(8, 3, generator=g, dtype=F64), torch.randn(8, generator=g, dtype=F64), 1e-4)
    with torch.no_grad():
        x = model.marginal().sample((5,))
        post = model.posterior(x)
    centre, scale = laplace_box(model, x, torch.zeros(5, 3, dtype=F64))
    torch.testing.assert_close(centre, post.mean, atol=1e-6, rtol=0)
    torch.testing.assert_close(scale, torch.diagonal(post.covariance_matrix, dim1=1, dim2=2).sqrt(), rtol=1e-3, atol=0)
    budget = dict(tol=1e-3, n_start=8, n_wide=16, max_points=32 ** 3)
    mode = quadrature_log_marginal(model, x, centre="mode", **budget)
    wide = quadrature_log_marginal(model, x, centre="wide", **budget)
    assert mode.converged.all()
    with torch.no_grad():
        truth = model.log_marginal(x)
    torch.testing.assert_close(mode.log_px, truth, atol=1e-3, rtol=0)
    assert not wide.converged.all() or (wide.log_px - truth).abs().max() > 1e-2


def test_cross_checked_quadrature_recovers_the_mode_a_mode_centred_box_misses():
    """Two symmetric modes: the box at one mode converges to log p(x) − log 2; told the guarded
    encoder box's value, the cross-check computes the wide-centred box, which spans both, and keeps it."""
    from vae_lib.inference.quadrature import cross_checked_log_marginal

    model = TwoModes()
    x = torch.tensor([[3.0, 0.5], [2.5, -1.0], [4.0, 0.0]], dtype=F64)
    truth = model.log_marginal(x)
    alone = cross_checked_log_marginal(model, x, tol=1e-3)
    assert alone.converged.all() and not alone.second_box.any()
    assert ((truth - alone.log_px - math.log(2)).abs() < 1e-3).all()      # one mode of two
    checked = cross_checked_log_marginal(model, x, check=quadrature_log_marginal(model, x).log_px, tol=1e-3)
    assert checked.second_box.all() and checked.converged.all()
    torch.testing.assert_close(checked.log_px, truth, atol=1e-3, rtol=0)
    same = cross_checked_log_marginal(model, x, check=alone.log_px, tol=1e-3)   # agreeing check: one box only
    assert not same.second_box.any()
    forced = cross_checked_log_marginal(model, x, check=alone.log_px, both=True, tol=1e-3)   # the audit's way
    assert forced.second_box.all() and (forced.disagree).all()
    torch.testing.assert_close(forced.log_px, truth, atol=1e-3, rtol=0)

"""vae_lib.model.iwae: the importance-weighted bound and its gradients, checked where they have closed forms
(the linear-Gaussian model of tests/conftest.py) and against each other."""

import math

import pytest
import torch

from conftest import _sample_x
from vae_lib.model.iwae import dreg_objective, gradient_snr, iwae_bound, iwae_surrogate, stl_objective
from vae_lib.model.objectives import elbo
from vae_lib.model.vae import VAE, VAEConfig
from vae_lib.training.train import TrainConfig, fit

F64 = torch.float64


def _eps(k, b, j, seed=0):
    return torch.randn(k, b, j, generator=torch.Generator().manual_seed(seed), dtype=F64)


def test_k1_is_the_elbo(linear_gaussian):
    """L_1 with one draw is estimator A's ELBO with the same draw (Burda et al.: L_1 = L)."""
    model = linear_gaussian()
    x = _sample_x(model, 6)
    eps = _eps(1, 6, 2)
    torch.testing.assert_close(iwae_bound(model, x, eps).bound, elbo(model, x, 1, "A", eps=eps).bound)


def test_bound_rises_with_k_towards_log_px(linear_gaussian):
    """E L_1 ≤ E L_5 ≤ E L_50 ≤ log p(x) (Burda et al., Theorem 1), each mean over 4000 draws within
    4 standard errors of that order, and L_50 closer to the exact log p(x) than L_1."""
    model = linear_gaussian(orthogonal=False)          # q (zero encoder) is far from the posterior
    x = _sample_x(model, 4)
    exact = model.log_marginal(x).detach()
    means, ses = {}, {}
    with torch.no_grad():
        for k in (1, 5, 50):
            draws = torch.stack([iwae_bound(model, x, _eps(k, 4, 2, seed=s)).bound for s in range(400)])
            means[k], ses[k] = draws.mean(0), draws.std(0) / math.sqrt(len(draws))
    for a, b in ((1, 5), (5, 50)):
        assert torch.all(means[a] <= means[b] + 4 * torch.hypot(ses[a], ses[b])), (a, b, means)
    assert torch.all(means[50] <= exact + 4 * ses[50])
    assert torch.all((exact - means[50]) < 0.5 * (exact - means[1]))     # the tighter bound is much closer


def test_exact_posterior_makes_every_weight_equal(linear_gaussian):
    """With q = p(z|x), w_i = p(x) for every draw: the bound is log p(x) exactly, for any k."""
    model = linear_gaussian(orthogonal=True)
    model.set_encoder_to_posterior()
    x = _sample_x(model, 5)
    with torch.no_grad():
        out = iwae_bound(model, x, _eps(7, 5, 2))
    torch.testing.assert_close(out.bound, model.log_marginal(x))
    torch.testing.assert_close(out.weights, torch.full_like(out.weights, 1 / 7))


def _grads(model, surrogate, x, eps):
    model.zero_grad()
    surrogate(model, x, eps).sum().backward()
    return {n: p.grad.clone() for n, p in model.named_parameters() if p.grad is not None}


DECODER = ("weight", "bias", "log_noise_var")
ENCODER = ("enc_weight", "enc_bias", "enc_log_var")


def test_dreg_and_stl_decoder_gradient_is_iwae_s(linear_gaussian):
    """For the decoder all three estimators are Σ_i w̃_i ∇θ log w_i: equal draw for draw."""
    model = linear_gaussian(orthogonal=False)
    x = _sample_x(model, 3)
    for seed in range(3):
        eps = _eps(5, 3, 2, seed=seed)
        iwae = _grads(model, iwae_surrogate, x, eps)
        for other in (dreg_objective, stl_objective):
            g = _grads(model, other, x, eps)
            for name in DECODER:
                torch.testing.assert_close(g[name], iwae[name])


def test_dreg_and_stl_encoder_gradients_vanish_at_the_posterior(linear_gaussian):
    """At q = p(z|x) every log w_i is constant in z, so DReG's and STL's encoder gradients (path terms
    only) are exactly zero for every draw (zero variance), while IWAE's reparameterized gradient is
    not (its score term)."""
    model = linear_gaussian(orthogonal=True)
    model.set_encoder_to_posterior()
    x, eps = _sample_x(model, 3), _eps(5, 3, 2, seed=3)
    dreg, stl = _grads(model, dreg_objective, x, eps), _grads(model, stl_objective, x, eps)
    iwae = _grads(model, iwae_surrogate, x, eps)
    for name in ENCODER:
        torch.testing.assert_close(dreg[name], torch.zeros_like(dreg[name]), atol=1e-10, rtol=0)
        torch.testing.assert_close(stl[name], torch.zeros_like(stl[name]), atol=1e-10, rtol=0)
    assert max(iwae[name].abs().max().item() for name in ENCODER) > 1e-3


def test_dreg_and_iwae_have_the_same_expected_encoder_gradient(linear_gaussian):
    """Both are unbiased for ∇φ L_k (Tucker et al. 2018): over 3000 draws their means agree within
    4 standard errors, and DReG's spread is the smaller."""
    model = linear_gaussian(orthogonal=False)
    with torch.no_grad():
        model.enc_weight.normal_(0, 0.3, generator=torch.Generator().manual_seed(5))
    x = _sample_x(model, 2)
    rows = {"iwae": [], "dreg": []}
    for s in range(3000):
        eps = _eps(10, 2, 2, seed=100 + s)
        for name, fn in (("iwae", iwae_surrogate), ("dreg", dreg_objective)):
            g = _grads(model, fn, x, eps)
            rows[name].append(torch.cat([g[n].flatten() for n in ENCODER]))
    iwae, dreg = torch.stack(rows["iwae"]), torch.stack(rows["dreg"])
    se = torch.hypot(iwae.std(0), dreg.std(0)) / math.sqrt(len(iwae))
    assert torch.all((iwae.mean(0) - dreg.mean(0)).abs() < 4 * se + 1e-9)
    assert dreg.std(0).mean() < iwae.std(0).mean()
    assert (iwae.mean(0).abs() > 4 * se).any()       # the check has teeth: the gradient is not zero


def _paired_encoder_means(model, x, k, n_batches=100, per_batch=200, seed=0):
    """Encoder gradients of IWAE, DReG and STL on the same draws: ``per_batch`` draws per batch (x
    repeated, so one backward pass sums them), ``n_batches`` batches. Returns, per estimator, the
    (n_batches, P) batch means; the s.e. of a mean over all draws is their std / √n_batches."""
    params = [dict(model.named_parameters())[n] for n in ENCODER]
    xr = x.repeat(per_batch, 1)
    g = torch.Generator().manual_seed(seed)
    rows = {"iwae": [], "dreg": [], "stl": []}
    for _ in range(n_batches):
        eps = torch.randn(k, len(xr), model.latent_dim, generator=g, dtype=F64)
        for name, fn in (("iwae", iwae_surrogate), ("dreg", dreg_objective), ("stl", stl_objective)):
            grads = torch.autograd.grad(fn(model, xr, eps).sum(), params)
            rows[name].append(torch.cat([gr.flatten() for gr in grads]) / per_batch)
    return {name: torch.stack(r) for name, r in rows.items()}


def _z_scores(a, b):
    """The paired difference of two estimators' means over the same draws, in standard errors."""
    d = a - b
    return d.mean(0) / (d.std(0) / math.sqrt(len(d))).clamp(min=1e-300)


def _offset_encoder_model(linear_gaussian):
    model = linear_gaussian(orthogonal=False)          # q is not the posterior: the encoder gradient is not zero
    with torch.no_grad():
        model.enc_weight.normal_(0, 0.3, generator=torch.Generator().manual_seed(5))
    return model


def test_stl_is_biased_for_k_above_one_and_dreg_is_not(linear_gaussian):
    """Tucker et al. (2018): at k = 5, over 20000 shared draws, DReG's mean encoder gradient equals
    IWAE's (every one of the 14 entries within 4.5 paired standard errors, two-sided), while STL's
    differs (Roeder et al.'s estimator drops the score term, whose weighted sum has non-zero mean
    for k > 1). Measured when written: DReG max |z| = 1.85; STL max |z| = 605 (first entry of
    log σ_q²: STL's mean −4.257 against IWAE's −3.467, a bias of −0.790), 13 of 14 entries beyond 3 s.e.
    (At k = 1, the next test: max |z| = 1.0 for both.)"""
    model = _offset_encoder_model(linear_gaussian)
    x = _sample_x(model, 2)
    g = _paired_encoder_means(model, x, k=5, seed=5)
    z_dreg, z_stl = _z_scores(g["dreg"], g["iwae"]), _z_scores(g["stl"], g["iwae"])
    assert z_dreg.abs().max() < 4.5, z_dreg
    assert z_stl.abs().max() > 5 * 4.5, z_stl           # biased: far beyond what DReG's check allows
    se_iwae = g["iwae"].std(0) / math.sqrt(len(g["iwae"]))
    assert (g["iwae"].mean(0).abs() > 5 * se_iwae).any()   # teeth: the expected gradient is not zero


def test_stl_is_unbiased_at_k1(linear_gaussian):
    """At k = 1 (the ELBO) the score term has mean zero: STL's mean equals IWAE's within 4.5 paired
    s.e. although the two differ draw for draw; DReG is STL there (w̃ = 1), draw for draw."""
    model = _offset_encoder_model(linear_gaussian)
    x = _sample_x(model, 2)
    g = _paired_encoder_means(model, x, k=1, seed=1)
    z_stl = _z_scores(g["stl"], g["iwae"])
    assert z_stl.abs().max() < 4.5, z_stl
    assert (g["stl"] - g["iwae"]).std(0).max() > 1e-3      # not the same estimator, only the same mean
    torch.testing.assert_close(g["dreg"], g["stl"])


def test_encoder_snr_falls_with_k_for_iwae_not_for_dreg():
    """Rainforth et al. (2018): the encoder's SNR under IWAE falls as k grows; DReG's does not fall as much."""
    torch.manual_seed(0)
    model = VAE(VAEConfig(data_dim=20, latent_dim=4, hidden_sizes=(16,))).double()
    x = torch.bernoulli(torch.full((8, 20), 0.3, dtype=F64), generator=torch.Generator().manual_seed(1))
    iwae = {k: gradient_snr(model, x, k, "iwae", n_draws=150) for k in (1, 100)}
    dreg = {k: gradient_snr(model, x, k, "dreg", n_draws=150) for k in (1, 100)}
    assert iwae[100].encoder < iwae[1].encoder
    assert dreg[100].encoder > iwae[100].encoder
    assert iwae[100].decoder > iwae[1].decoder           # the decoder's SNR rises with k
    stl1 = gradient_snr(model, x, 1, "stl", n_draws=150)
    assert stl1 == dreg[1]                               # at k = 1 DReG is STL (w̃ = 1), draw for draw
    with pytest.raises(ValueError, match="estimator"):
        gradient_snr(model, x, 2, "vimco")


def test_fit_trains_iwae_and_dreg():
    torch.manual_seed(0)
    x = torch.rand(200, 12)
    for algorithm in ("iwae", "iwae_dreg"):
        model = VAE(VAEConfig(data_dim=12, latent_dim=3, hidden_sizes=(8,)))
        history = fit(model, x, x, TrainConfig(epochs=3, batch_size=50, algorithm=algorithm, n_samples=5),
                      show_progress=False)
        assert history.test_bound[-1] > history.test_bound[0], algorithm


def test_snr_by_unit_sets_the_collapsed_units_apart():
    """A unit the decoder ignores and the encoder pins to the prior carries no signal: its encoder rows' SNR is
    far below the used units'; an empty group is nan; a wrong mask is refused."""
    from vae_lib.model.iwae import gradient_snr_by_unit
    from vae_lib.model.vae import VAE, VAEConfig

    torch.manual_seed(0)
    model = VAE(VAEConfig(data_dim=12, latent_dim=3, hidden_sizes=(6,)))
    with torch.no_grad():   # unit 2: q = p(z) for every x, and the decoder never reads it
        model.encoder.head.weight[[2, 5]] = 0.0
        model.encoder.head.bias[[2, 5]] = 0.0
        model.decoder.net[0].weight[:, 2] = 0.0
    x = (torch.rand(8, 12, generator=torch.Generator().manual_seed(1)) > 0.5).float()
    snr = gradient_snr_by_unit(model, x, 5, torch.tensor([True, True, False]), n_draws=200)
    assert snr["encoder collapsed"] < 0.5 * snr["encoder active"], snr
    assert snr["decoder collapsed"] < 0.5 * snr["decoder active"], snr
    every = gradient_snr_by_unit(model, x, 5, torch.ones(3, dtype=torch.bool), n_draws=3)
    assert math.isnan(every["encoder collapsed"]) and math.isnan(every["decoder collapsed"])
    with pytest.raises(ValueError, match="one flag per latent unit"):
        gradient_snr_by_unit(model, x, 5, torch.ones(4, dtype=torch.bool), n_draws=3)


def test_snr_by_unit_holds_the_two_groups_of_gradient_snr():
    from vae_lib.model.iwae import gradient_snr_by_unit
    from vae_lib.model.vae import VAE, VAEConfig

    torch.manual_seed(0)
    model = VAE(VAEConfig(data_dim=12, latent_dim=3, hidden_sizes=(6,)))
    x = (torch.rand(8, 12, generator=torch.Generator().manual_seed(1)) > 0.5).float()
    whole = gradient_snr(model, x, 5, "dreg", n_draws=10, seed=3)
    split = gradient_snr_by_unit(model, x, 5, torch.tensor([True, False, True]), "dreg", n_draws=10, seed=3)
    assert split["encoder"] == pytest.approx(whole.encoder) and split["decoder"] == pytest.approx(whole.decoder)

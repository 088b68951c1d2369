"""vae_lib.model.kl_control: the KL weight's schedules, free bits, conventions as β, active units — and the
training driver running them."""

import math

import pytest
import torch
from torch.distributions import Normal, kl_divergence

from vae_lib.model.kl_control import (active_units, effective_beta, free_bits_kl, kl_per_dimension, kl_weight,
                                      mean_kl_per_dimension, unit_activity)
from vae_lib.model.pixels import observe
from vae_lib.model.objectives import kl_to_standard_normal
from vae_lib.model.vae import VAE, VAEConfig
from vae_lib.training.train import TEST_SEED, TrainConfig, fit, make_step


def _gaussians(seed=0, shape=(8, 5)):
    g = torch.Generator().manual_seed(seed)
    return torch.randn(shape, generator=g, dtype=torch.float64), torch.randn(shape, generator=g, dtype=torch.float64)


def test_kl_per_dimension_matches_torch_and_sums_to_the_kl():
    mu, log_var = _gaussians()
    per_dim = kl_per_dimension(mu, log_var)
    reference = kl_divergence(Normal(mu, (0.5 * log_var).exp()), Normal(0.0, 1.0))
    torch.testing.assert_close(per_dim, reference, rtol=1e-12, atol=1e-12)
    torch.testing.assert_close(per_dim.sum(-1), kl_to_standard_normal(mu, log_var))


def test_free_bits_is_the_mean_kl_at_zero_and_free_below_lambda():
    mu, log_var = _gaussians(1)
    torch.testing.assert_close(free_bits_kl(mu, log_var, 0.0), kl_to_standard_normal(mu, log_var).mean())
    # with λ above every dimension's mean KL the term is J·λ and gives no gradient at all
    mu.requires_grad_(True)
    big = 1.0 + kl_per_dimension(mu, log_var).mean(0).max().item()
    term = free_bits_kl(mu, log_var, big)
    assert term.item() == pytest.approx(5 * big)
    term.backward()
    assert torch.count_nonzero(mu.grad) == 0
    # one dimension above λ, the others below: only that dimension is penalized
    per_dim = kl_per_dimension(mu.detach(), log_var).mean(0)
    lam = per_dim.sort().values[-2].item() + 1e-9
    expected = per_dim.max().item() + 4 * lam
    assert free_bits_kl(mu.detach(), log_var, lam).item() == pytest.approx(expected)
    with pytest.raises(ValueError, match="free_bits"):
        free_bits_kl(mu, log_var, -0.1)


@pytest.mark.parametrize("schedule, epoch, expected", [
    ("constant", 0.0, 2.0), ("constant", 7.3, 2.0),
    ("warmup", 0.0, 0.0), ("warmup", 2.5, 1.0), ("warmup", 5.0, 2.0), ("warmup", 50.0, 2.0),
    ("cyclical", 0.0, 0.0), ("cyclical", 1.25, 1.0), ("cyclical", 2.5, 2.0), ("cyclical", 4.9, 2.0),
    ("cyclical", 5.0, 0.0), ("cyclical", 6.25, 1.0),
])
def test_kl_weight_schedules(schedule, epoch, expected):
    assert kl_weight(2.0, schedule, epoch, 5.0) == pytest.approx(expected)


def test_kl_weight_refuses_bad_schedules():
    with pytest.raises(ValueError, match="unknown KL schedule"):
        kl_weight(1.0, "linear", 0.0, 5.0)
    with pytest.raises(ValueError, match="anneal_epochs"):
        kl_weight(1.0, "warmup", 0.0, 0.0)


def test_effective_beta_of_the_common_conventions():
    assert effective_beta() == 1.0                                          # the ELBO
    assert effective_beta("mean", "sum") == 784.0                           # per-pixel mean, KL summed
    assert effective_beta("mean", "sum", kld_weight=100 / 60000) == pytest.approx(784 * 100 / 60000)
    assert effective_beta("sum", "mean", latent_dim=50) == pytest.approx(1 / 50)
    with pytest.raises(ValueError, match="latent_dim"):
        effective_beta("sum", "mean")
    with pytest.raises(ValueError, match="'sum' or 'mean'"):
        effective_beta("avg", "sum")


def test_active_units_finds_the_collapsed_ones():
    """Units whose encoder mean ignores x have zero activity; the others are counted as active."""
    torch.manual_seed(0)
    model = VAE(VAEConfig(data_dim=20, latent_dim=6, hidden_sizes=(16,)))
    with torch.no_grad():
        model.encoder.head.weight[[1, 4]] = 0.0     # the means of units 1 and 4 no longer depend on x
    x = torch.rand(500, 20)
    activity = unit_activity(model, x)
    assert activity[[1, 4]].max().item() < 1e-12
    assert active_units(model, x, threshold=1e-8) == 4
    assert active_units(model, x, threshold=1e6) == 0
    kl = mean_kl_per_dimension(model, x, batch_size=128)
    with torch.no_grad():
        torch.testing.assert_close(kl.sum(), kl_to_standard_normal(*model.encode(x)).mean())


def test_train_config_validates_the_kl_fields():
    with pytest.raises(ValueError, match="beta"):
        TrainConfig(beta=-1.0)
    with pytest.raises(ValueError, match="kl_schedule"):
        TrainConfig(kl_schedule="sigmoid")
    with pytest.raises(ValueError, match="kl_anneal_epochs"):
        TrainConfig(kl_schedule="warmup")
    with pytest.raises(ValueError, match="estimator B"):
        TrainConfig(free_bits=0.5, estimator="A")
    with pytest.raises(ValueError, match="wake_sleep"):
        TrainConfig(algorithm="wake_sleep", beta=2.0)
    assert TrainConfig().is_plain_elbo and not TrainConfig(beta=2.0).is_plain_elbo
    assert TrainConfig(kl_schedule="warmup", kl_anneal_epochs=4).kl_weight_at(1.0) == 0.25


def _one_step_grads(config, seed=0):
    torch.manual_seed(seed)
    model = VAE(VAEConfig(data_dim=12, latent_dim=3, hidden_sizes=(8,))).double()
    opt = torch.optim.SGD(model.parameters(), lr=0.0)
    step, draw = make_step(model, opt, config)
    x = torch.bernoulli(torch.full((10, 12), 0.4, dtype=torch.float64), generator=torch.Generator().manual_seed(1))
    noise = draw(model, x, torch.Generator().manual_seed(2))
    step(x, noise, 0.0)
    return {n: p.grad.clone() for n, p in model.named_parameters()}, model, x, noise


def test_beta_scales_only_the_kl_gradient():
    """∇(recon − β KL) = ∇recon − β ∇KL: the gradients at β = 0, 1, 3 lie on one line in β."""
    g0, _, _, _ = _one_step_grads(TrainConfig(beta=0.0))
    g1, _, _, _ = _one_step_grads(TrainConfig())
    g3, _, _, _ = _one_step_grads(TrainConfig(beta=3.0))
    for name in g0:
        torch.testing.assert_close(g3[name] - g0[name], 3 * (g1[name] - g0[name]), rtol=1e-9, atol=1e-12)
    # the decoder's gradient does not depend on β (the KL term does not reach it)
    torch.testing.assert_close(g0["decoder.net.0.weight"], g3["decoder.net.0.weight"])


def test_warmup_starts_at_zero_weight():
    """At epoch 0 a warm-up step is a β = 0 step."""
    warm, _, _, _ = _one_step_grads(TrainConfig(kl_schedule="warmup", kl_anneal_epochs=3))
    zero, _, _, _ = _one_step_grads(TrainConfig(beta=0.0))
    for name in warm:
        torch.testing.assert_close(warm[name], zero[name])


def test_fit_with_free_bits_records_the_unweighted_elbo():
    """A free-bits run trains, and its History reports the ELBO (rate = the full KL), not its objective."""
    torch.manual_seed(0)
    model = VAE(VAEConfig(data_dim=12, latent_dim=3, hidden_sizes=(8,)))
    x = torch.rand(200, 12)
    config = TrainConfig(epochs=2, batch_size=50, free_bits=0.5)
    history = fit(model, x, x, config, show_progress=False)
    assert len(history.epoch) == 2 and all(math.isfinite(v) for v in history.test_bound)
    with torch.no_grad():
        full_kl = kl_to_standard_normal(*model.encode(observe(x, "fixed", seed=TEST_SEED))).mean().item()
    assert history.test_rate[-1] == pytest.approx(full_kl, rel=1e-5)

"""vae_lib.model.unit_gradients: the per-unit gradient's SNR is gradient_snr_by_unit's, on the same draws,
and its signal and noise are the sizes that ratio divides."""

import math

import pytest
import torch

from vae_lib.model.iwae import _gradient_draws, gradient_snr_by_unit
from vae_lib.model.unit_gradients import GROUPS, unit_gradient_stats
from vae_lib.model.vae import VAE, VAEConfig


@pytest.fixture(scope="module")
def setting():
    torch.manual_seed(0)
    model = VAE(VAEConfig(latent_dim=4, hidden_sizes=(8,)))
    x = (torch.rand(6, 784, generator=torch.Generator().manual_seed(1)) > 0.5).float()
    active = torch.tensor([True, False, True, False])
    return model, x, active


@pytest.mark.parametrize("estimator", ["iwae", "dreg"])
def test_snr_is_gradient_snr_by_units(setting, estimator):
    model, x, active = setting
    stats = unit_gradient_stats(model, x, 3, active, estimator, n_draws=5, seed=2)
    snr = gradient_snr_by_unit(model, x, 3, active, estimator, n_draws=5, seed=2)
    assert set(stats) == set(GROUPS)
    for group in GROUPS:
        assert stats[group]["snr"] == pytest.approx(snr[group], rel=1e-6), group
        assert stats[group]["signal"] >= 0 and stats[group]["noise"] > 0


def test_signal_and_noise_by_hand(setting):
    """The collapsed units' encoder rows: mean |mean| and mean std of their gradient, computed by hand."""
    model, x, active = setting
    draws = _gradient_draws(model, x, 3, "iwae", 5, 2)
    j = model.latent_dim
    head = torch.cat([draws["encoder.head.weight"], draws["encoder.head.bias"].unsqueeze(-1)], -1)
    rows = torch.cat([head[:, :j][:, ~active], head[:, j:][:, ~active]], 1).reshape(5, -1)
    stats = unit_gradient_stats(model, x, 3, active, "iwae", n_draws=5, seed=2)["encoder collapsed"]
    corrected = (rows.mean(0).square() - rows.var(0) / 5).mean().clamp(min=0).sqrt()   # the noise's share out
    assert stats["signal"] == pytest.approx(corrected.item(), rel=1e-6)
    assert stats["noise"] == pytest.approx(rows.std(0).mean().item(), rel=1e-6)


def test_scalars_that_no_draw_moves_are_left_out(setting):
    """An input pixel off in every image of the minibatch gives its first-layer weights a zero gradient in
    every draw: no signal, no noise, no ratio. They are counted apart and kept out of every mean."""
    from vae_lib.model.iwae import _snr

    model, x, active = setting
    off = int((x == 0).all(0).sum())
    assert off > 0                                         # the fixture has such pixels (6 random images)
    stats = unit_gradient_stats(model, x, 3, active, "iwae", n_draws=5, seed=2)
    hidden_units = model.encoder.body[0].out_features
    assert stats["encoder hidden"]["n_zero"] == stats["encoder"]["n_zero"] == off * hidden_units
    draws = _gradient_draws(model, x, 3, "iwae", 5, 2)
    first = draws["encoder.body.0.weight"].reshape(5, -1)
    assert (first[:, first.ne(0).any(0).logical_not()] == 0).all()
    with_zeros = torch.cat([first, torch.zeros(5, 3)], 1)
    assert _snr(with_zeros) == pytest.approx(_snr(first[:, first.ne(0).any(0)]), rel=1e-6)


def test_pure_noise_reads_the_floor_and_a_large_mean_its_size():
    """SNR estimated from n draws of mean-zero noise reads about sqrt(2 / (π n)), however small the truth;
    the signal (root-mean-square E g, the noise's share taken out) reads about zero there, about the truth where
    the mean is as small as the noise of the average (where a root per scalar would read 3/4 of it), and leaves a
    large mean alone."""
    from vae_lib.model.unit_gradients import _stats, snr_floor

    noise = torch.randn(200, 20000, generator=torch.Generator().manual_seed(5), dtype=torch.float64)
    stats = _stats(noise, seed=0, n_boot=2)
    assert stats["floor"] == snr_floor(200) == pytest.approx(0.0564, abs=1e-4)
    assert stats["snr"] == pytest.approx(stats["floor"], rel=0.05)
    raw = noise.mean(0).abs().mean().item()
    assert stats["signal"] < 0.2 * raw
    small = _stats(noise + 1 / math.sqrt(200), seed=0, n_boot=2)   # E g = the noise of the average
    assert small["signal"] == pytest.approx(1 / math.sqrt(200), rel=0.1)
    shifted_small = noise + 1 / math.sqrt(200)
    per_scalar = (shifted_small.mean(0).square() - shifted_small.var(0) / 200).clamp(min=0).sqrt().mean().item()
    assert per_scalar < 0.85 / math.sqrt(200)                       # the per-scalar root: biased low there
    shifted = _stats(noise + 3.0, seed=0, n_boot=2)
    assert shifted["signal"] == pytest.approx(3.0, rel=0.01) and shifted["noise"] == pytest.approx(1.0, rel=0.01)


def test_an_empty_group_is_nan(setting):
    model, x, _ = setting
    stats = unit_gradient_stats(model, x, 2, torch.ones(4, dtype=torch.bool), n_draws=3)
    empty = stats["encoder collapsed"]
    assert empty["n"] == 0 and empty["snr_boot"] == []
    assert empty["n_zero"] == 0 and empty["floor"] == pytest.approx(math.sqrt(2 / (math.pi * 3)))
    assert all(math.isnan(v) for key, v in empty.items() if key not in ("n", "n_zero", "floor", "snr_boot"))
    with pytest.raises(ValueError, match="one flag per latent unit"):
        unit_gradient_stats(model, x, 2, torch.ones(3, dtype=torch.bool), n_draws=3)


def test_the_encoder_is_its_hidden_layers_and_its_unit_rows(setting):
    """The encoder's scalars are those of its three groups, and its SNR their scalar-weighted mean."""
    model, x, active = setting
    stats = unit_gradient_stats(model, x, 3, active, "iwae", n_draws=5, seed=2)
    parts = ("encoder hidden", "encoder active", "encoder collapsed")
    assert sum(stats[p]["n"] for p in parts) == stats["encoder"]["n"]
    assert sum(stats[p]["n"] + stats[p]["n_zero"] for p in parts) == sum(p.numel() for p in model.encoder.parameters())
    weighted = sum(stats[p]["n"] * stats[p]["snr"] for p in parts) / stats["encoder"]["n"]
    assert weighted == pytest.approx(stats["encoder"]["snr"], rel=1e-5)


def test_shares_of_a_change_sum_to_one_and_name_the_group_that_moved(setting):
    from vae_lib.model.unit_gradients import share_of_change

    model, x, active = setting
    a = unit_gradient_stats(model, x, 1, active, "iwae", n_draws=6, seed=2)
    b = unit_gradient_stats(model, x, 20, active, "iwae", n_draws=6, seed=2)
    shares = share_of_change(a, b)
    assert sum(shares.values()) == pytest.approx(1.0, abs=1e-4)
    moved = {**b, "encoder hidden": {**a["encoder hidden"]}}     # only the hidden layers keep a's SNR
    moved["encoder"] = {**a["encoder"], "snr": sum(moved[p]["n"] * moved[p]["snr"] for p in shares) / a["encoder"]["n"]}
    assert share_of_change(a, moved)["encoder hidden"] == pytest.approx(0.0, abs=1e-6)
    with pytest.raises(ValueError, match="did not change"):
        share_of_change(a, a)


def test_the_bootstrap_error_shrinks_with_more_draws(setting):
    """More draws, a better-known ratio: the bootstrap s.e. over 40 draws is below that over 5 (same model)."""
    model, x, active = setting
    few = unit_gradient_stats(model, x, 3, active, "iwae", n_draws=5, seed=2)["encoder"]["snr_se"]
    many = unit_gradient_stats(model, x, 3, active, "iwae", n_draws=40, seed=2)["encoder"]["snr_se"]
    assert 0 < many < few


def test_a_bootstrap_resample_is_the_snr_of_the_resampled_draws():
    """_bootstrap_snr's count trick gives, resample by resample, _snr of the draws indexed directly."""
    from vae_lib.model.iwae import _snr
    from vae_lib.model.unit_gradients import _bootstrap_snr

    flat = torch.randn(30, 7, generator=torch.Generator().manual_seed(4)) + torch.arange(7.0)
    fast = _bootstrap_snr(flat.double(), torch.Generator().manual_seed(9), 3)
    g = torch.Generator().manual_seed(9)
    for b in range(3):
        picks = torch.randint(30, (30,), generator=g)
        assert fast[b].item() == pytest.approx(_snr(flat.double()[picks]), rel=1e-9)


def test_snr_change_is_the_difference_with_both_errors():
    from vae_lib.model.unit_gradients import snr_change

    d, se = snr_change({"snr": 0.5, "snr_se": 0.03}, {"snr": 0.2, "snr_se": 0.04})   # no resamples: unpaired
    assert d == pytest.approx(-0.3) and se == pytest.approx(0.05)
    a = {"snr": 0.5, "snr_se": 0.1, "snr_boot": [0.4, 0.5, 0.6]}
    b = {"snr": 0.7, "snr_se": 0.1, "snr_boot": [0.6, 0.7, 0.8]}                     # moves with a, resample by resample
    assert snr_change(a, b) == (pytest.approx(0.2), pytest.approx(0.0, abs=1e-12))


def test_two_estimators_on_shared_draws_pair_their_resamples(setting):
    """IWAE and DReG at one k share their noise draws: their decoder gradients are one gradient, so the paired
    s.e. of the decoder's SNR difference is (float32 rounding apart) zero where the unpaired one is not."""
    import math

    from vae_lib.model.unit_gradients import snr_change

    model, x, active = setting
    iwae = unit_gradient_stats(model, x, 3, active, "iwae", n_draws=8, seed=2)["decoder"]
    dreg = unit_gradient_stats(model, x, 3, active, "dreg", n_draws=8, seed=2)["decoder"]
    d, se = snr_change(iwae, dreg)
    assert abs(d) < 1e-3 and se < 0.05 * math.hypot(iwae["snr_se"], dreg["snr_se"])   # float32 rounding apart

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
    assert stats["signal"] == pytest.approx(rows.mean(0).abs().mean().item(), rel=1e-6)
    assert stats["noise"] == pytest.approx(rows.std(0).mean().item(), rel=1e-6)


def test_an_empty_group_is_nan(setting):
    model, x, _ = setting
    stats = unit_gradient_stats(model, x, 2, torch.ones(4, dtype=torch.bool), n_draws=3)
    assert all(math.isnan(v) for v in stats["encoder collapsed"].values())
    with pytest.raises(ValueError, match="one flag per latent unit"):
        unit_gradient_stats(model, x, 2, torch.ones(3, dtype=torch.bool), n_draws=3)

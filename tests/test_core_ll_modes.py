"""vae_lib.inference.core_ll_modes: the screen flags an image whose posterior's mass lies far from the
encoder's mean, and its five estimates agree where they should — the guarded quadrature holds the far
mode, the chain started in the guarded box finds it, the unguarded box (around the encoder's mean) does not."""

import torch

from vae_lib.inference.core_ll_modes import screen_for_missed_modes
from vae_lib.model.vae import VAE, VAEConfig


def _misled_model():
    """A J = 2 model whose encoder points at z = (0, 0) while the decoder explains the images only near
    z = (3, 3): the posterior's mass sits where the encoder never looks."""
    torch.manual_seed(0)
    model = VAE(VAEConfig(data_dim=6, latent_dim=2, hidden_sizes=(4,))).double().eval()
    with torch.no_grad():
        for p in model.encoder.parameters():
            p.zero_()
        enc_out = list(model.encoder.parameters())[-1]
        enc_out[2:] = -4.0                                     # log σ² = −4: a narrow q at the origin
    target = torch.tensor([3.0, 3.0], dtype=torch.float64)

    def log_likelihood(x, z):                                  # sharp around `target`, whatever x is
        return -8.0 * ((z - target) ** 2).sum(-1) + 0.0 * x.sum(-1)

    model.log_likelihood = log_likelihood
    return model


def test_a_far_mode_is_flagged_and_only_the_guarded_estimates_find_it():
    model = _misled_model()
    x = torch.ones(2, 6, dtype=torch.float64)
    found, n_flagged = screen_for_missed_modes(model, x, tol=1e-2, n_start=12, max_points=64 ** 2, k=200,
                                               hmc_samples=50, hmc_burn_in=50)
    assert n_flagged == 2 and [r.position for r in sorted(found, key=lambda r: r.position)] == [0, 1]
    r = found[0]
    assert r.guard_gain > 1.0                                  # the unguarded box misses the mode
    assert (r.centre - 3.0).abs().max() < 0.5                  # the guarded box sits on it
    assert abs(r.chain_from_box - r.guarded) < 0.2             # a chain started there agrees
    assert r.importance_sampled < r.guarded - 1.0              # the encoder's draws miss it
    assert found == sorted(found, key=lambda f: -f.guard_gain)

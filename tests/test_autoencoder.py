"""vae_lib.model.autoencoder: shapes, the loss is the VAE decoder's log p(x|z) at z = f(x), a few steps
lower it, the fitted Gaussian has the codes' moments, and far_from_codes finds draws in a hole."""

import torch

from vae_lib.model.autoencoder import Autoencoder, far_from_codes, fit_gaussian
from vae_lib.model.vae import VAEConfig


def _model(seed=0):
    torch.manual_seed(seed)
    return Autoencoder(VAEConfig(data_dim=12, latent_dim=2, hidden_sizes=(8,), activation="relu"))


def test_shapes_and_loss_is_the_decoders_log_likelihood():
    model = _model()
    x = torch.bernoulli(torch.full((5, 12), 0.3), generator=torch.Generator().manual_seed(1))
    z = model.encode(x)
    assert z.shape == (5, 2) and model.reconstruct(x).shape == (5, 12)
    torch.testing.assert_close(model.log_likelihood(x), model.decoder.log_prob(x, z))
    assert (model.log_likelihood(x) <= 0).all()


def test_a_few_steps_lower_the_loss():
    model = _model()
    g = torch.Generator().manual_seed(0)
    x = torch.bernoulli(torch.rand(64, 12, generator=g), generator=g)
    opt = torch.optim.Adam(model.parameters(), lr=1e-2)
    before = -model.log_likelihood(x).mean().item()
    for _ in range(100):
        loss = -model.log_likelihood(x).mean()
        opt.zero_grad()
        loss.backward()
        opt.step()
    assert -model.log_likelihood(x).mean().item() < before - 0.5


def test_fit_gaussian_has_the_codes_moments():
    z = torch.randn(2000, 2, generator=torch.Generator().manual_seed(0), dtype=torch.float64) * 3 + 1
    fitted = fit_gaussian(z)
    torch.testing.assert_close(fitted.mean, z.mean(0))
    torch.testing.assert_close(fitted.covariance_matrix, torch.cov(z.T))


def test_far_from_codes_finds_the_hole():
    g = torch.Generator().manual_seed(0)
    ring = torch.randn(2000, 2, generator=g)
    ring = 3 * ring / ring.norm(dim=1, keepdim=True)          # codes on a circle of radius 3: a hole inside
    inside = 0.1 * torch.randn(100, 2, generator=g)            # draws at the centre
    on_ring = ring[:100] + 0.001 * torch.randn(100, 2, generator=g)
    assert far_from_codes(inside, ring).all()
    assert not far_from_codes(on_ring, ring).any()

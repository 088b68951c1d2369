"""vae_lib.model.vae: the decoders' log-densities against torch.distributions, shapes, configuration errors."""

import pytest
import torch
from torch.distributions import Bernoulli, Independent, Normal

from vae_lib.model.vae import VAE, BernoulliDecoder, GaussianDecoder, VAEConfig, count_parameters

F64 = torch.float64


def _z_and_x(data_dim=12, latent_dim=3, binary=True):
    g = torch.Generator().manual_seed(0)
    z = torch.randn(5, 4, latent_dim, generator=g, dtype=F64)        # (S, B, J)
    x = torch.rand(4, data_dim, generator=g, dtype=F64)               # (B, D)
    return z, (torch.bernoulli(x, generator=g) if binary else x)


def test_bernoulli_decoder_log_prob_matches_torch_distributions(small_vae):
    """log p(x|z) = Σ_d log Bernoulli(x_d; sigmoid(logits_d)), x (B, D) broadcast against z (S, B, J)."""
    decoder = small_vae("bernoulli").decoder
    assert isinstance(decoder, BernoulliDecoder)
    z, x = _z_and_x()
    with torch.no_grad():
        # large logits too: the log-density must stay finite and exact where probabilities round to 0 or 1
        decoder.net[-1].bias.copy_(torch.linspace(-40, 40, 12, dtype=F64))
        reference = Independent(Bernoulli(logits=decoder(z)), 1).log_prob(x.expand(5, 4, 12))
        out = decoder.log_prob(x, z)
    assert out.shape == (5, 4)
    torch.testing.assert_close(out, reference, rtol=1e-12, atol=1e-12)


def test_gaussian_decoder_log_prob_matches_torch_distributions(small_vae):
    """log p(x|z) = Σ_d log N(x_d; mean_d, exp(log_var_d)) with the mean in (0, 1)."""
    decoder = small_vae("gaussian").decoder
    assert isinstance(decoder, GaussianDecoder)
    z, x = _z_and_x(binary=False)
    with torch.no_grad():
        mean, log_var = decoder(z)
        reference = Independent(Normal(mean, (0.5 * log_var).exp()), 1).log_prob(x.expand(5, 4, 12))
        out = decoder.log_prob(x, z)
    assert out.shape == (5, 4)
    assert torch.all((mean > 0) & (mean < 1))
    torch.testing.assert_close(out, reference, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("likelihood", ["bernoulli", "gaussian"])
def test_vae_interface_shapes(small_vae, likelihood):
    """encode: (B, D) → μ, log σ² (B, J); log_likelihood: (S, B); decode, sample, reconstruct: (N, D) in (0, 1)."""
    model = small_vae(likelihood)
    z, x = _z_and_x(binary=likelihood == "bernoulli")
    mu, log_var = model.encode(x)
    assert mu.shape == log_var.shape == (4, 3)
    assert model.log_likelihood(x, z).shape == (5, 4)
    torch.testing.assert_close(model.log_likelihood(x, z), model.decoder.log_prob(x, z))
    for images in (model.decode(z[0]), model.sample(6), model.reconstruct(x)):
        assert images.shape[-1] == 12 and torch.all((images > 0) & (images < 1))
    assert model.sample(6).shape == (6, 12)


def test_sample_is_reproducible_with_a_generator(small_vae):
    """sample(n, generator) draws z ~ N(0, I) from the given generator: same seed, same images."""
    model = small_vae()
    a = model.sample(4, generator=torch.Generator().manual_seed(1))
    b = model.sample(4, generator=torch.Generator().manual_seed(1))
    c = model.sample(4, generator=torch.Generator().manual_seed(2))
    assert torch.equal(a, b) and not torch.equal(a, c)


def test_count_parameters_and_architecture():
    """An MLP VAE 784-16-2 has (784·16+16 + 16·4+4) encoder and (2·16+16 + 16·784+784) decoder parameters."""
    model = VAE(VAEConfig(data_dim=784, latent_dim=2, hidden_sizes=(16,)))
    assert count_parameters(model) == (784 * 16 + 16 + 16 * 4 + 4) + (2 * 16 + 16 + 16 * 784 + 784)
    gaussian = VAE(VAEConfig(data_dim=560, latent_dim=2, hidden_sizes=(8, 4), likelihood="gaussian"))
    # encoder 560-8-4-(2·2), decoder 2-4-8-(2·560)
    encoder = 560 * 8 + 8 + 8 * 4 + 4 + 4 * 4 + 4
    decoder = 2 * 4 + 4 + 4 * 8 + 8 + 8 * 1120 + 1120
    assert count_parameters(gaussian) == encoder + decoder


def test_no_hidden_layers_gives_linear_maps():
    """hidden_sizes=() builds linear encoder and decoders that still speak the interface."""
    for likelihood in ("bernoulli", "gaussian"):
        model = VAE(VAEConfig(data_dim=6, latent_dim=2, hidden_sizes=(), likelihood=likelihood))
        mu, _ = model.encode(torch.rand(3, 6))
        assert mu.shape == (3, 2) and model.decode(mu).shape == (3, 6)


def test_init_std_sets_every_parameter():
    """init_std=s draws every weight and bias from N(0, s²) (the paper writes N(0, 0.01) without saying whether 0.01 is the variance or the standard deviation)."""
    model = VAE(VAEConfig(data_dim=784, latent_dim=3, hidden_sizes=(100,), init_std=0.01))
    values = torch.cat([p.detach().flatten() for p in model.parameters()])
    assert abs(values.std().item() - 0.01) < 0.0005 and abs(values.mean().item()) < 0.0005


@pytest.mark.parametrize("kwargs, message", [
    ({"latent_dim": 0}, r"latent_dim must be at least 1, got 0; a VAE needs a latent z"),
    ({"data_dim": 0}, r"data_dim must be at least 1"),
    ({"hidden_sizes": (16, 0)}, r"hidden sizes must be positive"),
    ({"activation": "gelu"}, r"unknown activation 'gelu'; choose one of \('tanh', 'relu'\)"),
    ({"likelihood": "poisson"}, r"unknown likelihood 'poisson'; choose one of \('bernoulli', 'gaussian'\)"),
])
def test_bad_config_is_refused_with_the_fix(kwargs, message):
    """A VAEConfig that cannot build a model raises at construction, naming the field and the choices."""
    with pytest.raises(ValueError, match=message):
        VAEConfig(**kwargs)


def test_decoder_std_floor_holds_and_caps_the_bound():
    """min_decoder_std = s: every σ is at least s (log σ² ≥ log s²) however negative the raw output, so log p(x|z)
    never exceeds the cap −D/2 · log(2π s²); without it the network's log σ² passes through unchanged."""
    import math

    torch.manual_seed(0)
    floored = VAE(VAEConfig(data_dim=6, latent_dim=2, hidden_sizes=(4,), likelihood="gaussian", min_decoder_std=0.1))
    with torch.no_grad():
        floored.decoder.head.bias[6:] = -50.0   # the raw log σ² outputs: σ would be e^-25 without the floor
    z = torch.randn(5, 2)
    mean, log_var = floored.decoder(z)
    assert (log_var >= 2 * math.log(0.1)).all() and (log_var < 2 * math.log(0.1) + 1e-6).all()
    cap = -6 / 2 * math.log(2 * math.pi * 0.01)
    assert (floored.log_likelihood(mean, z) <= cap + 1e-4).all()
    with pytest.raises(ValueError, match="min_decoder_std must be positive or None, got 0"):
        VAEConfig(likelihood="gaussian", min_decoder_std=0)


def test_the_papers_initialization_has_one_reading_and_one_named_alternative():
    """The paper's "N(0, 0.01)": the book reads 0.01 as the variance everywhere the paper's runs are built
    (Figures 2 and 3), and names the other reading where a model uses it."""
    from vae_lib.runs.experiments import EXPERIMENTS
    from vae_lib.runs.figure3 import Figure3Run
    from vae_lib.model.vae import PAPER_INIT_STD, PAPER_INIT_STD_ALTERNATIVE
    from vae_lib.runs.figure2_setup import PaperRun

    assert PAPER_INIT_STD ** 2 == pytest.approx(0.01) and PAPER_INIT_STD_ALTERNATIVE == 0.01
    assert PaperRun("mnist", "aevb", 3).model_config().init_std == PAPER_INIT_STD
    assert Figure3Run("mcem", 1000).model_config().init_std == PAPER_INIT_STD
    assert EXPERIMENTS["paper_z3_h500"].model.init_std == PAPER_INIT_STD_ALTERNATIVE

"""vae_lib.runs.paper_protocol: the paper's Figure 3 estimator (Appendix D, L = 50, 4 leapfrog steps) runs
without an encoder — its chains start at the best prior draw and ignore the encoder entirely — and lands
near the exact value (quadrature) on a small model, whose posterior the chains find (with exact
posterior draws its log is biased upward; a chain stuck in a minor mode would fall short, without limit)."""

import torch

from vae_lib.model.vae import VAE, VAEConfig
from vae_lib.inference.quadrature import quadrature_log_marginal
from vae_lib.runs.paper_protocol import encoder_free_start, paper_protocol_log_marginal


def _model():
    torch.manual_seed(0)
    model = VAE(VAEConfig(data_dim=20, latent_dim=2, hidden_sizes=(16,), activation="tanh")).double().eval()
    with torch.no_grad():
        for p in model.decoder.parameters():
            p.mul_(2.0)
    return model


def test_the_start_is_the_best_prior_draw():
    model, x = _model(), torch.bernoulli(torch.full((5, 20), 0.5, dtype=torch.float64))
    start = encoder_free_start(model, x, n_draws=64, generator=torch.Generator().manual_seed(0))
    draws = torch.randn(64, 2, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    with torch.no_grad():
        scores = torch.stack([model.log_likelihood(x, d.expand(5, -1)) - 0.5 * (d ** 2).sum() for d in draws])   # (64, 5)
    assert torch.equal(start, draws[scores.argmax(0)])


def test_the_estimate_uses_no_encoder_and_lands_on_the_exact_value():
    model, x = _model(), torch.bernoulli(torch.full((6, 20), 0.5, dtype=torch.float64))
    exact = quadrature_log_marginal(model, x, tol=1e-5).log_px
    est = paper_protocol_log_marginal(model, x, burn_in=100)
    with torch.no_grad():                              # an encoder that points nowhere changes nothing
        for p in model.encoder.parameters():
            p.fill_(7.0)
    again = paper_protocol_log_marginal(model, x, burn_in=100)
    assert torch.allclose(est, again)
    assert (est - exact).abs().max() < 0.3, (est - exact)

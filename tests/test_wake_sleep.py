"""Wake-sleep (vae_lib.training.wake_sleep) and the update rules (vae_lib.training.algorithms): each phase reaches one
network, the sleep phase's optimum is the true posterior, the wake phase raises E_q[log p(x, z)]."""

import pytest
import torch

from vae_lib.model.objectives import elbo, log_standard_normal, reparameterize
from vae_lib.training.algorithms import update_rule
from vae_lib.training.wake_sleep import draw_wake_sleep_noise, wake_sleep_objectives


def _grad_norms(model, loss):
    model.zero_grad(set_to_none=True)
    loss.backward()
    norm = lambda ps: sum(float(p.grad.abs().sum()) for p in ps if p.grad is not None)
    return norm(model.encoder.parameters()), norm(model.decoder.parameters())


@pytest.mark.parametrize("likelihood", ["bernoulli", "gaussian"])
def test_wake_reaches_only_the_decoder_and_sleep_only_the_encoder(small_vae, likelihood):
    model = small_vae(likelihood)
    g = torch.Generator().manual_seed(0)
    x = torch.rand(16, 12, generator=g, dtype=torch.float64)
    noise = draw_wake_sleep_noise(model, x, g)
    wake, sleep, _ = wake_sleep_objectives(model, x, noise)
    enc, dec = _grad_norms(model, -wake.mean())
    assert enc == 0 and dec > 0
    wake, sleep, _ = wake_sleep_objectives(model, x, noise)
    enc, dec = _grad_norms(model, -sleep.mean())
    assert enc > 0 and dec == 0


def test_reported_bound_is_estimator_b_with_the_same_draw(small_vae):
    """The number wake-sleep reports is the ELBO (estimator B) with the recognition model as q."""
    model = small_vae()
    g = torch.Generator().manual_seed(1)
    x = torch.bernoulli(torch.full((10, 12), 0.3, dtype=torch.float64), generator=g)
    noise = draw_wake_sleep_noise(model, x, g)
    _, _, report = wake_sleep_objectives(model, x, noise)
    expected = elbo(model, x, eps=noise.eps.unsqueeze(0))
    torch.testing.assert_close(report.bound, expected.bound)


def test_bernoulli_fantasies_have_the_decoder_probabilities(small_vae):
    model = small_vae()
    z = torch.zeros(20000, 3, dtype=torch.float64)
    u = torch.rand(20000, 12, generator=torch.Generator().manual_seed(2), dtype=torch.float64)
    x = model.sample_observation(z, u)
    assert set(x.unique().tolist()) <= {0.0, 1.0}
    torch.testing.assert_close(x.mean(0), model.decode(z[:1])[0], atol=0.015, rtol=0)


def test_sleep_phase_converges_to_the_true_posterior(linear_gaussian):
    """On the linear-Gaussian model with orthogonal W the posterior is diagonal and linear in x, so the
    sleep phase's optimum, max over q of E_p(x,z)[log q(z|x)], is q = p(z|x): KL(q ‖ p(z|x)) → 0."""
    model = linear_gaussian(orthogonal=True)
    for p in (model.weight, model.bias, model.log_noise_var):
        p.requires_grad_(False)
    g = torch.Generator().manual_seed(3)
    x_eval = model.sample_observation(torch.randn(500, 2, generator=g, dtype=torch.float64),
                                      torch.randn(500, 5, generator=g, dtype=torch.float64))
    kl_before = model.kl_to_posterior(x_eval).mean().item()
    rule = update_rule("wake_sleep")
    opt = torch.optim.Adam([model.enc_weight, model.enc_bias, model.enc_log_var], lr=0.02)
    for _ in range(1500):
        x = torch.zeros(200, 5, dtype=torch.float64)   # the wake phase's data play no part here
        loss, _ = rule.loss(model, x, draw_wake_sleep_noise(model, x, g))
        opt.zero_grad()
        loss.backward()
        opt.step()
    kl_after = model.kl_to_posterior(x_eval).mean().item()
    assert kl_before > 0.5
    assert kl_after < 0.01, (kl_before, kl_after)


def test_a_wake_step_raises_the_expected_complete_data_log_likelihood(small_vae):
    """One small wake step on the decoder raises E_q[log p(x, z)], measured with 2000 fixed draws."""
    model = small_vae()
    g = torch.Generator().manual_seed(4)
    x = torch.bernoulli(torch.full((32, 12), 0.4, dtype=torch.float64), generator=g)
    eps = torch.randn(2000, 32, 3, generator=g, dtype=torch.float64)

    def expected_complete(m):
        with torch.no_grad():
            mu, log_var = m.encode(x)
            z = reparameterize(mu, log_var, eps=eps)
            return (m.log_likelihood(x, z) + log_standard_normal(z)).mean().item()

    before = expected_complete(model)
    wake, _, _ = wake_sleep_objectives(model, x, draw_wake_sleep_noise(model, x, g))
    model.zero_grad()
    (-wake.mean()).backward()
    with torch.no_grad():
        for p in model.decoder.parameters():
            p -= 0.05 * p.grad
    assert expected_complete(model) > before + 1e-3


def test_unknown_algorithm_is_refused():
    with pytest.raises(ValueError, match="unknown algorithm 'mcem'; choose one of"):
        update_rule("mcem")

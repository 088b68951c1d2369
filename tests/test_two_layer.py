"""vae_lib.model.two_layer: the two-stochastic-layer model's log-weights term by term against torch.distributions,
and its ELBO and k-sample bound against log p(x) computed by quadrature on a tiny model (J1 = J2 = 1)."""

import math

import numpy as np
import pytest
import torch
from torch.distributions import Bernoulli, Independent, Normal

from vae_lib.model.two_layer import TwoLayerConfig, TwoLayerVAE

TINY = TwoLayerConfig(data_dim=3, hidden1=(4,), latent1=1, hidden2=(3,), latent2=1)


def _model(config=TINY, seed=0):
    torch.manual_seed(seed)
    return TwoLayerVAE(config).double()    # at this seed log p(x) − ELBO ≈ 0.35 nats: a gap the tests can see


X = torch.tensor([[1.0, 0.0, 1.0], [0.0, 0.0, 1.0]], dtype=torch.float64)


def _gauss_hermite(n):
    """Nodes and weights for E[f(ε)], ε ~ N(0, 1): Σ_i w_i f(e_i)."""
    nodes, weights = np.polynomial.hermite_e.hermegauss(n)
    return torch.tensor(nodes), torch.tensor(weights / math.sqrt(2 * math.pi))


@torch.no_grad()
def _log_px_by_quadrature(model, x, n=80):
    """log p(x) = log E_{z2 ~ N(0,1)} E_{z1 ~ p(z1|z2)} p(x|z1), both by Gauss–Hermite: only the generative
    networks, no encoder."""
    e, w = _gauss_hermite(n)
    z2 = e.view(n, 1, 1).expand(n, len(x), 1)                                # (n, B, 1)
    m, log_var = model.p_z1(z2)                                              # (n, B, 1)
    z1 = m.unsqueeze(0) + (0.5 * log_var).exp().unsqueeze(0) * e.view(n, 1, 1, 1)   # (n1, n2, B, 1)
    log_px_z1 = model.p_x.log_prob(x, z1)                                    # (n1, n2, B)
    log_w = w.log().view(n, 1, 1) + w.log().view(1, n, 1)
    return torch.logsumexp(log_px_z1 + log_w, dim=(0, 1))                    # (B,)


@torch.no_grad()
def _elbo_by_quadrature(model, x, n=60):
    """E_{ε1, ε2}[log w] by Gauss–Hermite over the two standard-normal noises (J1 = J2 = 1)."""
    e, w = _gauss_hermite(n)
    eps1 = e.view(n, 1, 1, 1).expand(n, n, len(x), 1).reshape(n * n, len(x), 1)
    eps2 = e.view(1, n, 1, 1).expand(n, n, len(x), 1).reshape(n * n, len(x), 1)
    weights = (w.view(n, 1) * w.view(1, n)).reshape(n * n, 1)
    return (weights * model.log_weights(x, (eps1, eps2))).sum(0)


def test_log_weights_match_a_term_by_term_computation():
    model = _model(TwoLayerConfig(data_dim=5, hidden1=(4, 3), latent1=3, hidden2=(3,), latent2=2))
    x = torch.tensor([[1.0, 0, 1, 1, 0], [0, 0, 1, 0, 1]], dtype=torch.float64)
    eps = model.draw_noise(6, 2, generator=torch.Generator().manual_seed(1))
    ours = model.log_weights(x, eps)
    with torch.no_grad():
        for i in range(6):
            for b in range(2):
                mu1, lv1 = (t[0] for t in model.q_z1(x[b:b + 1]))
                z1 = mu1 + (0.5 * lv1).exp() * eps[0][i, b]
                mu2, lv2 = (t[0] for t in model.q_z2(z1.unsqueeze(0)))
                z2 = mu2 + (0.5 * lv2).exp() * eps[1][i, b]
                pm, plv = (t[0] for t in model.p_z1(z2.unsqueeze(0)))
                logits = model.p_x(z1.unsqueeze(0))[0]
                log_w = (Independent(Bernoulli(logits=logits), 1).log_prob(x[b])
                         + Independent(Normal(pm, (0.5 * plv).exp()), 1).log_prob(z1)
                         + Independent(Normal(torch.zeros(2, dtype=torch.float64), 1.0), 1).log_prob(z2)
                         - Independent(Normal(mu1, (0.5 * lv1).exp()), 1).log_prob(z1)
                         - Independent(Normal(mu2, (0.5 * lv2).exp()), 1).log_prob(z2))
                assert ours[i, b].item() == pytest.approx(log_w.item(), rel=1e-10, abs=1e-10)
    torch.testing.assert_close(model.elbo(x, eps), ours.mean(0))


@torch.no_grad()
def test_importance_weights_average_to_p_x():
    """E_q[w] = p(x): the mean of w over many draws against log p(x) by quadrature — a check on every term of
    log w, since a term missing or wrong would move the mean."""
    model = _model()
    log_px = _log_px_by_quadrature(model, X)
    log_w = model.log_weights(X, model.draw_noise(200_000, 2, generator=torch.Generator().manual_seed(2)))
    w = (log_w - log_px).exp()                                               # w / p(x), mean 1
    mean, se = w.mean(0), w.std(0) / math.sqrt(w.shape[0])
    assert ((mean - 1).abs() < 4 * se).all(), (mean, se)
    assert (se < 0.02).all()


@torch.no_grad()
def test_elbo_monte_carlo_matches_quadrature_and_the_bounds_are_ordered():
    model = _model()
    log_px = _log_px_by_quadrature(model, X)
    exact_elbo = _elbo_by_quadrature(model, X)
    log_w = model.log_weights(X, model.draw_noise(20_000, 2, generator=torch.Generator().manual_seed(3)))
    mc = log_w.mean(0)
    assert ((mc - exact_elbo).abs() < 4 * log_w.std(0) / math.sqrt(20_000)).all()
    assert (exact_elbo < log_px - 0.2).all()                                 # a real gap on this model
    g = torch.Generator().manual_seed(4)
    draws = {k: torch.stack([model.iwae_bound(X, k, generator=g) for _ in range(200)]) for k in (1, 10, 1000)}
    iwae_k = {k: d.mean(0) for k, d in draws.items()}
    assert ((iwae_k[1] - exact_elbo).abs() < 4 * draws[1].std(0) / math.sqrt(200)).all()   # L_1 is the ELBO
    assert (iwae_k[1] < iwae_k[10] - 0.2).all()                            # most of the gap closed at k = 10
    assert ((log_px - iwae_k[1000]).abs() < 0.01).all()                     # and all of it, to 0.01, at k = 1000


def test_bad_arguments_are_refused():
    with pytest.raises(ValueError, match="hidden1"):
        TwoLayerConfig(hidden1=())
    with pytest.raises(ValueError, match="latent2"):
        TwoLayerConfig(latent2=0)
    model = _model()
    with pytest.raises(ValueError, match="D = 3"):
        model.elbo(torch.zeros(2, 4, dtype=torch.float64), model.draw_noise(1, 2))
    with pytest.raises(ValueError, match="eps must be"):
        model.elbo(X, model.draw_noise(1, 3))
    with pytest.raises(ValueError, match="not k = 5"):
        model.iwae_bound(X, 5, eps=model.draw_noise(4, 2))


def test_sample_decodes_prior_draws_through_both_layers():
    model = TwoLayerVAE(TwoLayerConfig(data_dim=6, hidden1=(5,), latent1=3, hidden2=(4,), latent2=2))
    a = model.sample(7, generator=torch.Generator().manual_seed(3))
    b = model.sample(7, generator=torch.Generator().manual_seed(3))
    assert a.shape == (7, 6) and torch.equal(a, b) and bool(((a > 0) & (a < 1)).all())
    # by hand: z2 = ε2, z1 = μ1(z2) + σ1(z2) ε1, image = sigmoid(decoder logits)
    eps1, eps2 = model.draw_noise(1, 7, torch.Generator().manual_seed(3))
    mu1, log_var1 = model.p_z1(eps2[0])
    expected = torch.sigmoid(model.p_x(mu1 + torch.exp(0.5 * log_var1) * eps1[0]))
    assert torch.allclose(a, expected)


def test_defaults_are_burda_et_al_mnist_sizes():
    """Section 5.1: z1 of 100 and z2 of 50 units, two layers of 200 between x and z1, two of 100 between z1 and z2."""
    c = TwoLayerConfig()
    assert (c.data_dim, c.hidden1, c.latent1, c.hidden2, c.latent2, c.activation) == \
        (784, (200, 200), 100, (100, 100), 50, "tanh")

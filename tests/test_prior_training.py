"""Training and scoring a VAE with a learned prior (vae_lib.model.prior_vae): the objectives read p(z) from the
model, bit-identically N(0, I) for every model without a prior of its own; log p(x) by importance sampling
against quadrature with a mixture prior; a few steps under each objective raise the bound, and the model
round-trips through a checkpoint (the same log p(x)) and resumes exactly; old checkpoints load as before. The
two-stochastic-layer model goes through the same driver, checkpoints and log p(x)."""

import itertools
import math
import time
from dataclasses import replace
from pathlib import Path

import pytest
import torch

from vae_lib.inference.likelihood import importance_sampled_log_likelihood, log_importance_weights
from vae_lib.inference.quadrature import quadrature_log_marginal
from vae_lib.model.iwae import dreg_surrogate, iwae_bound
from vae_lib.model.kl_control import mean_kl_per_dimension
from vae_lib.model.objectives import (elbo, has_standard_normal_prior, log_normal_diag, log_prior,
                                      log_standard_normal)
from vae_lib.model.pixels import observe
from vae_lib.model.prior_vae import PriorConfig, PriorVAE, kl_per_unit
from vae_lib.model.two_layer import TwoLayerConfig, TwoLayerVAE
from vae_lib.model.vae import VAE, VAEConfig
from vae_lib.training.train import TEST_SEED, TrainConfig, evaluate, load_checkpoint, save_checkpoint, train_model

F64 = torch.float64
ROOT = Path(__file__).resolve().parents[1]
SMALL = VAEConfig(data_dim=12, latent_dim=2, hidden_sizes=(10,))
PRIORS = {"standard": PriorConfig(), "mog": PriorConfig("mog", 3), "vamp": PriorConfig("vamp", 4)}


def small_data(n=200, seed=0):
    """Grey levels (n, 12) with structure: four binary prototypes, pixels near 0 or 1 (a little noise)."""
    g = torch.Generator().manual_seed(seed)
    protos = (torch.rand(4, 12, generator=torch.Generator().manual_seed(123)) < 0.5).float()
    which = torch.randint(0, 4, (n,), generator=g)
    return (protos[which] * 0.9 + 0.05 + 0.04 * torch.randn(n, 12, generator=g)).clamp(0, 1)


def prior_model(kind, seed=0, dtype=torch.float32):
    torch.manual_seed(seed)
    model = PriorVAE(SMALL, PRIORS[kind], data=small_data(50, seed=seed + 1)).to(dtype)
    if kind == "mog":   # unequal weights and spreads, so a prior read wrongly shows
        with torch.no_grad():
            model.prior.logits.copy_(torch.tensor([0.5, -0.3, 0.0]))
            model.prior.log_vars.add_(torch.tensor([[-0.5], [0.3], [0.0]], dtype=dtype))
    return model


# --- N(0, I): bit-identical ---------------------------------------------------------------------------------

def test_a_model_without_a_prior_scores_exactly_as_the_standard_normal_formula():
    torch.manual_seed(0)
    model = VAE(SMALL)
    x = observe(small_data(8), "fixed", seed=0)
    eps = torch.randn(5, 8, 2)
    mu, log_var = model.encode(x)
    z = mu + torch.exp(0.5 * log_var) * eps
    log_w = model.log_likelihood(x, z) + log_standard_normal(z) - log_normal_diag(z, mu, log_var)   # the formula
    assert torch.equal(log_prior(model, z), log_standard_normal(z)) and has_standard_normal_prior(model)
    assert torch.equal(iwae_bound(model, x, eps).log_w, log_w)
    assert torch.equal(dreg_surrogate(model, x, eps).log_w, log_w)
    a = elbo(model, x, n_samples=5, estimator="A", eps=eps)
    assert torch.equal(a.kl, (log_normal_diag(z, mu, log_var) - log_standard_normal(z)).mean(0))


def test_a_prior_vae_with_the_standard_normal_equals_the_plain_vae_draw_for_draw():
    torch.manual_seed(0)
    plain = VAE(SMALL)
    with_prior = PriorVAE(SMALL, PriorConfig())
    with_prior.load_state_dict(plain.state_dict(), strict=False)   # the prior has no parameters
    x = observe(small_data(20), "fixed", seed=0)
    eps = torch.randn(4, 20, 2)
    for fn in (lambda m: elbo(m, x, eps=eps[:1]).bound, lambda m: elbo(m, x, 4, "A", eps=eps).bound,
               lambda m: iwae_bound(m, x, eps).bound,
               lambda m: importance_sampled_log_likelihood(m, x, k=30, k_chunk=7, seed=2).log_px):
        assert torch.equal(fn(plain), fn(with_prior))
    assert evaluate(plain, x) == evaluate(with_prior, x)


# --- log p(x): importance sampling against quadrature, with a mixture prior ----------------------------------

def test_importance_sampling_with_a_mixture_prior_matches_quadrature():
    model = prior_model("mog", dtype=F64)
    x = observe(small_data(6, seed=3), "fixed", seed=0).to(F64)
    exact = quadrature_log_marginal(model, x, tol=1e-6)
    assert bool(exact.converged.all())
    k = 200_000
    iw = importance_sampled_log_likelihood(model, x, k=k, k_chunk=20_000, seed=1)
    stderr = ((k / iw.ess - 1) / k).sqrt()       # delta method: var(w)/E[w]² ≈ K/ESS − 1
    assert bool(((iw.log_px - exact.log_px).abs() < 4 * stderr).all()), (iw.log_px - exact.log_px, stderr)
    torch.testing.assert_close(iw.log_px, exact.log_px, atol=0.01, rtol=0)
    # the prior matters: the same weights under N(0, I) give another log p(x)
    plain = VAE(SMALL).to(F64)
    plain.load_state_dict({k: v for k, v in model.state_dict().items() if not k.startswith("prior.")})
    assert (quadrature_log_marginal(plain, x, tol=1e-6).log_px - exact.log_px).abs().max() > 0.05


def test_quadrature_with_a_mixture_prior_matches_a_brute_force_grid():
    model = prior_model("mog", dtype=F64)
    x = observe(small_data(3, seed=4), "fixed", seed=0).to(F64)
    u = torch.linspace(-9, 9, 601, dtype=F64)
    grid = torch.stack(torch.meshgrid(u, u, indexing="ij"), -1).reshape(-1, 2)            # (G, 2)
    with torch.no_grad():
        log_prior_grid = model.log_prior(grid)                                              # (G,)
        brute = torch.stack([torch.logsumexp(model.log_likelihood(xi, grid) + log_prior_grid, 0)
                             for xi in x.unsqueeze(1)]) + 2 * math.log(u[1] - u[0])
    torch.testing.assert_close(quadrature_log_marginal(model, x, tol=1e-6).log_px, brute, atol=1e-4, rtol=0)


def test_the_score_stops_at_a_deadline_and_is_unchanged_before_it():
    model = prior_model("vamp")
    x = observe(small_data(30), "fixed", seed=0)
    full = importance_sampled_log_likelihood(model, x, k=40, batch_size=10, seed=3)
    later = importance_sampled_log_likelihood(model, x, k=40, batch_size=10, seed=3, stop_at=time.time() + 3600)
    assert torch.equal(full.log_px, later.log_px)
    assert importance_sampled_log_likelihood(model, x, k=40, batch_size=10, stop_at=time.time() - 1) is None


# --- training ------------------------------------------------------------------------------------------------

OBJECTIVES = {"elbo": dict(algorithm="aevb", estimator="A"), "iwae_k3": dict(algorithm="iwae", n_samples=3),
              "dreg_k3": dict(algorithm="iwae_dreg", n_samples=3)}


@pytest.mark.parametrize("objective", OBJECTIVES)
@pytest.mark.parametrize("kind", ["mog", "vamp"])
def test_training_raises_the_bound_and_the_model_round_trips_through_its_checkpoint(kind, objective, tmp_path):
    train_x, test_x = small_data(200), small_data(60, seed=9)
    config = TrainConfig(epochs=6, batch_size=20, lr=1e-2, seed=1, **OBJECTIVES[objective])
    torch.manual_seed(config.seed)
    start = PriorVAE(SMALL, PRIORS[kind], data=train_x)
    before = evaluate(start, observe(test_x, "fixed", seed=TEST_SEED))["bound"]
    prior_before = [p.detach().clone() for p in start.prior.parameters()]
    path = tmp_path / "run.pt"
    model, history = train_model(SMALL, config, train_x, test_x, checkpoint=path, prior=PRIORS[kind],
                                 show_progress=False)
    assert history.test_bound[-1] > before + 0.1, (before, history.test_bound)
    assert all(not torch.equal(a, b) for a, b in zip(prior_before, model.prior.parameters())), "the prior did not train"
    assert math.isfinite(history.train_rate[-1]) and history.test_rate[-1] > 0
    loaded, _, payload = load_checkpoint(path)
    assert isinstance(loaded, PriorVAE)
    assert payload["prior_config"] == {"kind": kind, "components": PRIORS[kind].components, "decoder_start": "zero"}
    x = observe(test_x[:20], "fixed", seed=0)
    assert torch.equal(importance_sampled_log_likelihood(model, x, k=50, seed=4).log_px,
                       importance_sampled_log_likelihood(loaded, x, k=50, seed=4).log_px)


@pytest.mark.parametrize("kind", ["mog", "vamp"])
def test_the_training_gradient_is_the_bounds_own_by_finite_differences(kind):
    """Every parameter's gradient of the estimator-A loss — encoder, decoder and the prior's own (a VampPrior
    reaches the encoder a second time, through its pseudo-inputs) — against central differences, in float64."""
    model = prior_model(kind, dtype=F64)
    x = observe(small_data(6), "fixed", seed=0).to(F64)
    eps = torch.randn(2, 6, 2, dtype=F64, generator=torch.Generator().manual_seed(0))

    def loss():
        return -elbo(model, x, 2, "A", eps=eps).bound.mean()

    named = list(model.named_parameters())
    grads = torch.autograd.grad(loss(), [p for _, p in named])
    with torch.no_grad():
        for (name, p), g in zip(named, grads):
            for i in list(itertools.product(*map(range, p.shape)))[::3]:
                old = p[i].item()
                if name == "prior.raw_pseudo_inputs" and not 1e-4 < old < 1 - 1e-4:
                    continue   # hardtanh's kinks at 0 and 1: no derivative there
                p[i] = old + 1e-6
                up = loss().item()
                p[i] = old - 1e-6
                down = loss().item()
                p[i] = old
                assert (up - down) / 2e-6 == pytest.approx(g[i].item(), abs=1e-7), (name, i)


def test_a_run_with_a_learned_prior_resumes_exactly(tmp_path):
    train_x = small_data(100)
    config = TrainConfig(epochs=4, batch_size=20, lr=1e-2, seed=2, estimator="A")
    straight, _ = train_model(SMALL, config, train_x, checkpoint=tmp_path / "a.pt", prior=PRIORS["vamp"],
                              show_progress=False)
    train_model(SMALL, replace(config, epochs=2), train_x, checkpoint=tmp_path / "b.pt", prior=PRIORS["vamp"],
                show_progress=False)
    resumed, history = train_model(SMALL, config, train_x, checkpoint=tmp_path / "b.pt", prior=PRIORS["vamp"],
                                   show_progress=False)
    assert history.epoch[-1] == 4
    assert all(torch.equal(a, b) for a, b in zip(straight.state_dict().values(), resumed.state_dict().values()))


BOOK = VAEConfig(latent_dim=50, hidden_sizes=(200, 200), activation="tanh")   # beyond.ARCHITECTURE


def test_decoder_start_mean_starts_the_decoder_at_the_mean_image():
    """With decoder_start="mean" the Bernoulli decoder starts at the log-odds of the mean training image (Burda
    et al.'s start), for any prior; the default ("zero") keeps PyTorch's start, so a "standard" PriorVAE stays
    the plain VAE."""
    x = small_data(50)
    torch.manual_seed(0)
    vamp = PriorVAE(SMALL, PriorConfig("vamp", 4, decoder_start="mean"), data=x)
    m = x.double().mean(0).clamp(1e-3, 1 - 1e-3)
    assert torch.allclose(vamp.decoder.net[-1].bias.double(), torch.log(m / (1 - m)), atol=1e-6)
    torch.manual_seed(0)
    plain = VAE(SMALL)
    for kind in ("standard", "mog", "vamp"):
        torch.manual_seed(0)
        assert torch.equal(PriorVAE(SMALL, PRIORS[kind], data=x).decoder.net[-1].bias, plain.decoder.net[-1].bias)
    standard = PriorVAE(SMALL, PriorConfig("standard", decoder_start="mean"), data=x)
    assert torch.allclose(standard.decoder.net[-1].bias.double(), torch.log(m / (1 - m)), atol=1e-6)
    with pytest.raises(ValueError, match="decoder_start"):
        PriorConfig(decoder_start="data")


def test_a_checkpoint_without_decoder_start_reads_as_the_zero_start():
    from vae_lib.model.prior_vae import saved_prior_config
    assert saved_prior_config({"kind": "mog", "components": 500}) == PriorConfig("mog", 500, "zero")
    assert saved_prior_config(None) is None


def test_a_vampprior_vae_on_mnist_codes_information_instead_of_collapsing(mnist_train, mnist_test):
    """Issue 32: the book's architecture and recipe (Adam 1e-3, batch 100, estimator A) with a VampPrior
    collapsed within 100 steps — every code shifted together until the tanh units saturated: rate 0, no active
    unit, the bound of the mean image. 200 steps on 2000 images must keep a rate well above 0, active units,
    and a bound far above that of any rate-0 model with a constant decoder (the mean image's own)."""
    train_x, test_x = mnist_train.x[:2000], mnist_test.x[:500]
    config = TrainConfig(epochs=10, optimizer="adam", lr=1e-3, batch_size=100, estimator="A")
    model, history = train_model(BOOK, config, train_x, test_x, prior=PriorConfig("vamp", 50, decoder_start="mean"),
                                 show_progress=False)
    x = observe(test_x, "fixed", seed=TEST_SEED)
    m = train_x.mean(0).clamp(1e-3, 1 - 1e-3)
    mean_image = (x * m.log() + (1 - x) * (-m).log1p()).sum(-1).mean().item()   # ≈ −200 nats
    with torch.no_grad():
        mu, _ = model.encode(x)
    active = int((mu.var(0) > 0.01).sum())
    assert history.test_rate[-1] > 3, history.test_rate          # collapsed: 0.00
    assert active >= 20, active                                   # collapsed: 0 of 50
    assert history.test_bound[-1] > mean_image + 25, (history.test_bound, mean_image)   # collapsed: ≈ mean_image


def test_what_cannot_train_a_learned_prior_is_refused(tmp_path):
    train_x = small_data(40)
    for config, match in ((TrainConfig(epochs=1), "estimator='A'"),
                          (TrainConfig(epochs=1, free_bits=0.5), "estimator='A'"),
                          (TrainConfig(epochs=1, algorithm="wake_sleep"), "assumes p\\(z\\) = N\\(0, I\\)")):
        with pytest.raises(ValueError, match=match):
            train_model(SMALL, config, train_x, prior=PRIORS["mog"], show_progress=False)
    with pytest.raises(ValueError, match="learned prior"):
        elbo(prior_model("mog"), observe(train_x[:4], "fixed", seed=0))
    # a checkpoint of one prior does not resume as another
    config = TrainConfig(epochs=1, batch_size=20, estimator="A")
    train_model(SMALL, config, train_x, checkpoint=tmp_path / "c.pt", prior=PRIORS["mog"], show_progress=False)
    with pytest.raises(ValueError, match="prior_config"):
        train_model(SMALL, TrainConfig(epochs=2, batch_size=20, estimator="A"), train_x, checkpoint=tmp_path / "c.pt",
                    prior=PRIORS["vamp"], show_progress=False)
    with pytest.raises(ValueError, match="unknown prior kind"):
        PriorConfig("flow", 3)


def test_a_plain_vae_checkpoint_has_no_prior_and_loads_as_a_vae(tmp_path):
    torch.manual_seed(0)
    model = VAE(SMALL)
    save_checkpoint(tmp_path / "plain.pt", model)
    loaded, _, payload = load_checkpoint(tmp_path / "plain.pt")
    assert type(loaded) is VAE and "prior_config" not in payload


@pytest.mark.parametrize("name", ["beyond_e100/beta_1.pt", "beyond/iwae_k5.pt", "figure3/fig3_mcem_n1000.pt",
                                  "figure2/fig2_frey_aevb_z2.pt"])
def test_committed_checkpoints_still_load_as_plain_vaes(name):
    path = ROOT / "checkpoints" / name
    if not path.exists():
        pytest.skip(f"{path} is not in this checkout")
    model, history, payload = load_checkpoint(path)   # read only
    assert type(model) is VAE and "prior_config" not in payload
    state = payload["model_state"]
    assert all(torch.equal(v, state[k]) for k, v in model.state_dict().items())


# --- the prior's own pieces -------------------------------------------------------------------------------

def test_samples_come_from_the_models_prior():
    model = prior_model("mog")
    with torch.no_grad():
        model.prior.means.copy_(torch.tensor([[8.0, 8.0], [8.0, 8.0], [8.0, 8.0]]))
        model.prior.log_vars.fill_(math.log(1e-4))
        expected = model.decode(torch.full((1, 2), 8.0))
    draws = model.sample(5, generator=torch.Generator().manual_seed(0))
    torch.testing.assert_close(draws, expected.expand(5, -1), atol=1e-3, rtol=0)


def test_kl_per_unit_is_the_closed_form_for_the_standard_normal_and_close_to_it_for_a_standard_mixture():
    torch.manual_seed(0)
    model = PriorVAE(SMALL, PriorConfig("mog", 1)).to(F64)
    with torch.no_grad():
        model.prior.means.zero_()
        model.prior.log_vars.zero_()
    x = observe(small_data(2000), "fixed", seed=0).to(F64)
    closed = mean_kl_per_dimension(model, x)
    mc = kl_per_unit(model, x)
    torch.testing.assert_close(mc, closed, atol=0.05, rtol=0.05)
    standard = PriorVAE(SMALL, PriorConfig()).to(F64)
    assert torch.equal(kl_per_unit(standard, x), mean_kl_per_dimension(standard, x))


# --- the two-stochastic-layer model through the same driver -------------------------------------------------

TWO_LAYER = TwoLayerConfig(data_dim=12, hidden1=(10,), latent1=3, hidden2=(6,), latent2=2)


@pytest.mark.parametrize("objective", ["elbo", "iwae_k3"])
def test_the_two_layer_model_trains_round_trips_and_resumes(objective, tmp_path):
    train_x, test_x = small_data(200), small_data(60, seed=9)
    config = TrainConfig(epochs=6, batch_size=20, lr=1e-2, seed=1, **OBJECTIVES[objective])
    torch.manual_seed(config.seed)
    before = evaluate(TwoLayerVAE(TWO_LAYER), observe(test_x, "fixed", seed=TEST_SEED))["bound"]
    model, history = train_model(TWO_LAYER, config, train_x, test_x, checkpoint=tmp_path / "a.pt", show_progress=False)
    assert history.test_bound[-1] > before + 0.5, (before, history.test_bound)
    assert all(math.isfinite(r) for r in history.test_rate)
    loaded, _, payload = load_checkpoint(tmp_path / "a.pt")
    assert isinstance(loaded, TwoLayerVAE) and payload["model_kind"] == "two_layer"
    x = observe(test_x[:20], "fixed", seed=0)
    assert torch.equal(importance_sampled_log_likelihood(model, x, k=50, seed=4).log_px,
                       importance_sampled_log_likelihood(loaded, x, k=50, seed=4).log_px)
    train_model(TWO_LAYER, replace(config, epochs=3), train_x, test_x, checkpoint=tmp_path / "b.pt",
                show_progress=False)
    resumed, _ = train_model(TWO_LAYER, config, train_x, test_x, checkpoint=tmp_path / "b.pt", show_progress=False)
    assert all(torch.equal(a, b) for a, b in zip(model.state_dict().values(), resumed.state_dict().values()))


def test_the_two_layer_log_likelihood_is_its_own_importance_sampling_and_matches_quadrature():
    from test_two_layer import TINY, X, _log_px_by_quadrature   # the tiny model whose log p(x) is known
    torch.manual_seed(0)
    model = TwoLayerVAE(TINY).double()
    g = torch.Generator().manual_seed(5)
    reference = model.log_weights(X, model.draw_noise(7, len(X), g))
    assert torch.equal(log_importance_weights(model, X, 7, torch.Generator().manual_seed(5)), reference)
    iw = importance_sampled_log_likelihood(model, X, k=100_000, k_chunk=20_000, seed=1)
    torch.testing.assert_close(iw.log_px, _log_px_by_quadrature(model, X), atol=0.01, rtol=0)


def test_what_cannot_train_the_two_layer_model_is_refused():
    train_x = small_data(40)
    for config in (TrainConfig(epochs=1), TrainConfig(epochs=1, algorithm="iwae_dreg", n_samples=2),
                   TrainConfig(epochs=1, estimator="A", beta=0.5)):
        with pytest.raises(ValueError, match="two-layer"):
            train_model(TWO_LAYER, config, train_x, show_progress=False)
    with pytest.raises(ValueError, match="its own prior"):
        train_model(TWO_LAYER, TrainConfig(epochs=1, estimator="A"), train_x, prior=PRIORS["mog"], show_progress=False)


# --- chapter 15's runs ------------------------------------------------------------------------------------------

CHAPTER_15 = ("prior_mog", "prior_vamp", "prior_standard_mean", "two_layer_vae", "two_layer_iwae_k5")


def test_chapter_15_runs_follow_the_parts_conventions():
    from vae_lib.runs.beyond import ARCHITECTURE, IWAE_EPOCHS, get_run
    beta_1 = get_run("beta_1", 100)
    for name in CHAPTER_15:
        run = get_run(name, 100)
        assert run.train.epochs == 100 and run.k_eval == 5000
        assert (run.train.optimizer, run.train.lr, run.train.batch_size, run.train.protocol, run.train.seed) == (
            beta_1.train.optimizer, beta_1.train.lr, beta_1.train.batch_size, beta_1.train.protocol, beta_1.train.seed)
    assert get_run("prior_mog").model == get_run("prior_vamp").model == ARCHITECTURE
    assert get_run("prior_vamp").prior == PriorConfig("vamp", 500, "mean") and get_run("prior_mog").prior.kind == "mog"
    assert get_run("prior_standard_mean").prior == PriorConfig("standard", 1, "mean")   # the VampPrior's control
    assert get_run("two_layer_vae").model == TwoLayerConfig() and get_run("two_layer_iwae_k5").train.n_samples == 5
    assert get_run("two_layer_iwae_k5").train.epochs == IWAE_EPOCHS


@pytest.mark.parametrize("name", CHAPTER_15)
def test_chapter_15_runs_are_scored_like_every_run(name, tmp_path):
    from vae_lib.base.run_files import write_json
    from vae_lib.runs.beyond import get_run, read_scores, score_run
    run = get_run(name)
    torch.manual_seed(0)
    model = TwoLayerVAE(TWO_LAYER) if isinstance(run.model, TwoLayerConfig) else PriorVAE(
        SMALL, PriorConfig(run.prior.kind, 1 if run.prior.kind == "standard" else 5), data=small_data(20))
    test_x = small_data(300, seed=5)
    scores = score_run(run, model, test_x, quick=True)
    write_json(tmp_path / f"{name}.json", scores, indent=None)
    scores = read_scores(tmp_path / f"{name}.json", name)
    n_units = TWO_LAYER.latent1 + TWO_LAYER.latent2 if isinstance(model, TwoLayerVAE) else SMALL.latent_dim
    assert len(scores["log_px"]) == 200 and len(scores["kl_per_unit"]) == len(scores["unit_activity"]) == n_units
    elbo = -(torch.tensor(scores["kl"]) + torch.tensor(scores["distortion"]))
    assert elbo.mean() <= torch.tensor(scores["log_px"]).mean() + 0.05
    if isinstance(model, TwoLayerVAE):   # the units' rate terms sum to the rate
        assert sum(scores["kl_per_unit"]) == pytest.approx(sum(scores["kl"]) / 200, abs=0.3)

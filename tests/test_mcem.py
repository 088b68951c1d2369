"""Monte Carlo EM (vae_lib.training.mcem) against exact EM on the linear-Gaussian model, where the E-step and
the M-step have closed forms (probabilistic PCA with a mean)."""

import torch

from vae_lib.model.vae import VAE, VAEConfig
from vae_lib.inference.linear_gaussian import LinearGaussian
from vae_lib.training.mcem import MCEMConfig, MonteCarloEM, complete_data_loss, decoder_parameters

torch.set_num_threads(1)


def lg_data(n=400, d=4, j=2, seed=0):
    g = torch.Generator().manual_seed(seed)
    truth = LinearGaussian(torch.randn(d, j, generator=g, dtype=torch.float64),
                           torch.randn(d, generator=g, dtype=torch.float64), 0.3)
    with torch.no_grad():
        z = torch.randn(n, j, generator=g, dtype=torch.float64)
        x = truth.sample_observation(z, torch.randn(n, d, generator=g, dtype=torch.float64))
    return x


def start_model(d=4, j=2, seed=1):
    g = torch.Generator().manual_seed(seed)
    return LinearGaussian(0.5 * torch.randn(d, j, generator=g, dtype=torch.float64),
                          torch.zeros(d, dtype=torch.float64), 1.0)


def exact_em(model: LinearGaussian, x: torch.Tensor, iterations: int = 2000) -> torch.Tensor:
    """Exact EM for p(x) = N(b, WWᵀ + σ²I): closed-form E-step (posterior mean and covariance) and
    M-step on the augmented z̃ = [z; 1]. Returns the fixed point's marginal covariance WWᵀ + σ²I."""
    w, b, s2 = model.weight.detach().clone(), model.bias.detach().clone(), model.log_noise_var.exp().item()
    n, d = x.shape
    j = w.shape[1]
    for _ in range(iterations):
        cov = torch.linalg.inv(torch.eye(j, dtype=x.dtype) + w.T @ w / s2)
        m = (x - b) @ w @ cov / s2                                           # (N, J)
        ez = torch.cat([m, torch.ones(n, 1, dtype=x.dtype)], 1)               # E[z̃]
        ezz = ez.T @ ez
        ezz[:j, :j] += n * cov                                                # Σ_n E[z̃ z̃ᵀ]
        wt = (x.T @ ez) @ torch.linalg.inv(ezz)                               # [W b]
        s2 = ((x ** 2).sum() - 2 * (x * (ez @ wt.T)).sum() + torch.trace(wt.T @ wt @ ezz)).item() / (n * d)
        w, b = wt[:, :j], wt[:, j]
    return w @ w.T + s2 * torch.eye(d, dtype=x.dtype), b


def run_mcem(model, x, visits=600, lr=0.05, skip_e_step=False, seed=0):
    g = torch.Generator().manual_seed(seed)
    torch.manual_seed(seed)
    mc = MonteCarloEM(len(x), model.latent_dim, MCEMConfig(weight_updates=3), generator=g, dtype=x.dtype)
    opt = torch.optim.Adagrad(decoder_parameters(model), lr=lr, weight_decay=0.0)
    index = torch.arange(len(x))
    accepts = []
    for _ in range(visits):
        if skip_e_step:   # a planted bug: the M-step on the prior draws the chains started from
            mc.e_step = lambda *a, **k: torch.ones(len(x), dtype=x.dtype)
        accepts.append(mc.visit(model, opt, x, index, g).accept_prob.mean().item())
    return mc, accepts


def test_fisher_identity_m_step_direction_is_the_marginal_gradient():
    """At exact posterior samples, the MCEM M-step's gradient averages to ∇_θ log p_θ(x) — the
    direction of exact EM's M-step at θ_old (Fisher's identity)."""
    x = lg_data(n=50)
    model = start_model()
    params = decoder_parameters(model)
    g = torch.Generator().manual_seed(3)
    s = 4000
    with torch.no_grad():   # the samples carry no gradient: θ_old is held fixed in Q(θ)
        post = model.posterior(x)
        chol = torch.linalg.cholesky(post.covariance_matrix[0])
        z = post.mean + torch.randn(s, len(x), 2, generator=g, dtype=x.dtype) @ chol.T   # (S, N, J) exact draws
    loss = complete_data_loss(model, x.expand(s, -1, -1).reshape(-1, 4), z.reshape(-1, 2))
    mc_grad = torch.autograd.grad(loss, params)
    exact_grad = torch.autograd.grad(-model.log_marginal(x).mean(), params)
    for a, e in zip(mc_grad, exact_grad):
        assert torch.allclose(a, e, atol=0.03 * e.abs().max().item() + 1e-3), (a, e)


def test_mcem_fixed_point_is_exact_em_fixed_point():
    """MCEM from a random start reaches exact EM's fixed point (the maximum-likelihood marginal
    covariance WWᵀ + σ²I and mean b) within Monte Carlo noise; with the E-step skipped it does not."""
    x = lg_data()
    cov_em, b_em = exact_em(start_model(), x)
    model = start_model()
    _, accepts = run_mcem(model, x)
    with torch.no_grad():
        cov_mc = model.marginal().covariance_matrix
    rel = ((cov_mc - cov_em).norm() / cov_em.norm()).item()
    assert rel < 0.08, rel
    assert (model.bias.detach() - b_em).abs().max().item() < 0.1
    assert 0.75 < sum(accepts[-100:]) / 100 < 0.99          # the step size found the target acceptance
    # exact EM's log-likelihood is the maximum; MCEM's is within MC noise of it
    ll_mc = model.log_marginal(x).mean().item()
    ll_em = torch.distributions.MultivariateNormal(b_em, cov_em).log_prob(x).mean().item()
    assert ll_mc <= ll_em + 1e-3 and ll_em - ll_mc < 0.01, (ll_mc, ll_em)
    broken = start_model()
    run_mcem(broken, x, visits=200, skip_e_step=True)
    with torch.no_grad():
        rel_broken = ((broken.marginal().covariance_matrix - cov_em).norm() / cov_em.norm()).item()
    assert rel_broken > 0.2, rel_broken


def small_vae():
    torch.manual_seed(0)
    return VAE(VAEConfig(data_dim=20, latent_dim=2, hidden_sizes=(16,), init_std=0.3))


def test_one_visit_raises_the_complete_data_log_likelihood():
    model = small_vae()
    x = (torch.rand(30, 20, generator=torch.Generator().manual_seed(0)) < 0.3).float()
    g = torch.Generator().manual_seed(0)
    mc = MonteCarloEM(30, 2, MCEMConfig(weight_updates=3), generator=g)
    opt = torch.optim.Adagrad(decoder_parameters(model), lr=0.05, weight_decay=0.0)
    enc_before = [p.detach().clone() for p in model.encoder.parameters()]
    report = mc.visit(model, opt, x, torch.arange(30), g)
    assert report.log_joint_after.mean() > report.log_joint_before.mean() + 0.1
    assert all(torch.equal(a, b) for a, b in zip(enc_before, model.encoder.parameters()))   # no encoder in MCEM


def test_resume_is_exact():
    x = (torch.rand(40, 20, generator=torch.Generator().manual_seed(1)) < 0.3).float()

    def make():
        model = small_vae()
        g = torch.Generator().manual_seed(0)
        mc = MonteCarloEM(40, 2, MCEMConfig(weight_updates=2), generator=g)
        return model, torch.optim.Adagrad(decoder_parameters(model), lr=0.05, weight_decay=1 / 40), mc, g

    def visits(model, opt, mc, g, start, stop):
        for v in range(start, stop):
            idx = torch.arange(10) + 10 * (v % 4)
            mc.visit(model, opt, x[idx], idx, g)

    model, opt, mc, g = make()
    visits(model, opt, mc, g, 0, 6)
    saved = {"model": {k: v.clone() for k, v in model.state_dict().items()}, "opt": opt.state_dict(),
             "mc": mc.state_dict(), "g": g.get_state()}
    import copy
    saved = copy.deepcopy(saved)
    visits(model, opt, mc, g, 6, 12)
    model2, opt2, mc2, g2 = make()
    model2.load_state_dict(saved["model"])
    opt2.load_state_dict(saved["opt"])
    mc2.load_state_dict(saved["mc"])
    g2.set_state(saved["g"])
    visits(model2, opt2, mc2, g2, 6, 12)
    assert torch.equal(mc.z, mc2.z) and torch.equal(mc.log_step, mc2.log_step)
    assert all(torch.equal(a, b) for a, b in zip(model.parameters(), model2.parameters()))

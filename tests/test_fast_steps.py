"""The fast training steps (issue: the GPU, ready): the graphed epoch and the compiled step train the
same model as the eager reference step, draw for draw, on the CPU; the in-place Adagrad is Adagrad."""

from dataclasses import replace

import pytest
import torch

from vae_lib.model.vae import VAE, VAEConfig
from vae_lib.training.algorithms import update_rule
from vae_lib.training.graphed import adagrad_update_
from vae_lib.training.train import TrainConfig, fit, train_model

MODEL = VAEConfig(latent_dim=2, hidden_sizes=(16,), activation="tanh", init_std=0.1)
ADAGRAD = TrainConfig(epochs=2, batch_size=100, optimizer="adagrad", lr=0.05, weight_decay=1e-3, seed=5)


@pytest.fixture(scope="module")
def grey(mnist_train, device):
    """250 MNIST training images: two full minibatches of 100 and a remainder of 50."""
    return mnist_train.x[:250].to(device)


def test_in_place_adagrad_is_torch_adagrad(device):
    torch.manual_seed(0)
    a = torch.nn.Linear(5, 3).to(device)
    b = torch.nn.Linear(5, 3).to(device)
    b.load_state_dict(a.state_dict())
    opt_a = torch.optim.Adagrad(a.parameters(), lr=0.1, weight_decay=0.01)
    opt_b = torch.optim.Adagrad(b.parameters(), lr=0.1, weight_decay=0.01)
    for k in range(5):
        x = torch.randn(8, 5, device=device)
        for m, opt in ((a, opt_a), (b, opt_b)):
            opt.zero_grad()
            (m(x) ** 2).sum().backward()
        opt_a.step()
        adagrad_update_(opt_b)
    for p, q in zip(a.parameters(), b.parameters()):
        torch.testing.assert_close(p, q, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("algorithm", ["aevb", "wake_sleep"])
def test_graphed_epoch_replays_the_reference_step(grey, algorithm, device):
    """One epoch of the graphed body (eager here) against the same draws fed by hand to the reference
    update — the rule's loss, backward, torch.optim.Adagrad — step by step."""
    config = replace(ADAGRAD, epochs=1, algorithm=algorithm)
    torch.manual_seed(config.seed)
    model = VAE(MODEL).to(device)
    reference = VAE(MODEL).to(device)
    reference.load_state_dict(model.state_dict())
    fit(model, grey, None, config, show_progress=False, step_mode="graphed")

    g = torch.Generator(device=device).manual_seed(config.seed)
    rule = update_rule(algorithm)
    opt = torch.optim.Adagrad(reference.parameters(), lr=config.lr, weight_decay=config.weight_decay)
    order = torch.randperm(250, generator=g, device=device)
    u = torch.rand(2, 100, 784, generator=g, device=device)
    noise = rule.draw_noise(reference, grey[:200], g)
    pick = lambda t, i: t[i * 100:(i + 1) * 100]
    for i in range(2):
        x = (u[i] < grey[order[i * 100:(i + 1) * 100]]).float()
        step_noise = noise[i * 100:(i + 1) * 100] if isinstance(noise, torch.Tensor) else type(noise)(*(pick(t, i) for t in noise))
        loss, _ = rule.loss(reference, x, step_noise)
        opt.zero_grad()
        loss.backward()
        opt.step()
    x = torch.bernoulli(grey[order[200:]], generator=g)  # the remainder: the driver's eager step
    loss, _ = rule.loss(reference, x, rule.draw_noise(reference, x, g))
    opt.zero_grad()
    loss.backward()
    opt.step()
    for p, q in zip(model.parameters(), reference.parameters()):
        torch.testing.assert_close(p, q, rtol=1e-4, atol=1e-5)


def test_graphed_runs_are_reproducible_and_resume_exactly(grey, tmp_path, device):
    config = replace(ADAGRAD, epochs=3)
    a, ha = train_model(MODEL, config, grey, grey[:100], show_progress=False, step_mode="graphed", device=device)
    path = tmp_path / "g.pt"
    train_model(MODEL, replace(config, epochs=1), grey, grey[:100], checkpoint=path, show_progress=False,
                step_mode="graphed", device=device)
    b, hb = train_model(MODEL, config, grey, grey[:100], checkpoint=path, show_progress=False,
                        step_mode="graphed", device=device)
    for p, q in zip(a.parameters(), b.parameters()):
        assert torch.equal(p, q)
    assert hb.test_bound == ha.test_bound


def test_graphed_mode_refuses_a_schedule(grey):
    with pytest.raises(ValueError, match="needs a constant step size"):
        train_model(MODEL, replace(ADAGRAD, lr_schedule="cosine"), grey, None, show_progress=False,
                    step_mode="graphed")


def test_compiled_step_matches_the_eager_step(grey, device):
    """torch.compile of the update rule's loss: after 2 epochs (6 steps) the parameters equal the eager
    run's to 1e-4 (the compiled kernels round differently, nothing more)."""
    config = replace(ADAGRAD, epochs=2)
    eager, _ = train_model(MODEL, config, grey, None, show_progress=False, device=device)
    compiled, _ = train_model(MODEL, config, grey, None, show_progress=False, step_mode="compile", device=device)
    for p, q in zip(eager.parameters(), compiled.parameters()):
        torch.testing.assert_close(p, q, rtol=1e-4, atol=1e-4)

"""vae_lib.figures.core_train_steps: Adagrad's first update moves every parameter by the full step size, and the
table shows the steps it names, one column per step size."""

import pytest
import torch

from vae_lib.figures.core_train_steps import adagrad_first_steps, first_steps_table
from vae_lib.model.vae import VAEConfig

SMALL = VAEConfig(data_dim=16, latent_dim=2, hidden_sizes=(8,), activation="tanh")


def grey(n=64, d=16):
    return torch.rand(n, d, generator=torch.Generator().manual_seed(1))


def test_the_first_adagrad_update_moves_each_parameter_by_the_step_size():
    first = adagrad_first_steps(SMALL, grey(), (0.01, 0.1), n_steps=3, batch_size=8)
    n = sum(p.numel() for p in torch.nn.Sequential(torch.nn.Linear(16, 8), torch.nn.Linear(8, 4),
                                                    torch.nn.Linear(2, 8), torch.nn.Linear(8, 16)).parameters())
    assert first.n_parameters == n
    for lr in (0.01, 0.1):
        assert first.median_move[lr] == pytest.approx(lr, rel=1e-4)
        assert first.share_moved_by_lr[lr] > 0.9
        assert len(first.terms[lr]) == 3
    # the same initialization and minibatch for every step size: the first bound does not depend on lr
    assert first.terms[0.01][0] == first.terms[0.1][0]


def test_the_table_has_one_row_per_step_taken_and_one_column_per_step_size():
    first = adagrad_first_steps(SMALL, grey(), (0.01, 0.02, 0.1), n_steps=4, batch_size=8)
    table = first_steps_table(first, shown=(1, 2, 5, 10))
    lines = table.splitlines()
    assert lines[0] == "| step | lr = 0.01 | lr = 0.02 | lr = 0.1 |"
    assert [line.split(" | ")[0] for line in lines[2:]] == ["| 1", "| 2"]      # steps 5 and 10 were not taken
    bound, kl = first.terms[0.02][1]
    assert f"{bound:.3g} ({kl:.3g})" in lines[3]

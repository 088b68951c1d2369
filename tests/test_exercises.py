"""vae_lib.exercises: the reference solutions pass, and typical wrong answers fail with a message
that names the slip."""

import math

import pytest
import torch

from vae_lib.exercises import check_free_bits, check_iwae_bound, check_kl


def right_kl(mu, log_var):
    return -0.5 * (1 + log_var - mu ** 2 - log_var.exp()).sum(-1)


@pytest.mark.parametrize("wrong, hint", [
    (lambda mu, lv: 0.5 * (1 + lv - mu ** 2 - lv.exp()).sum(-1), "sign"),
    (lambda mu, lv: -(1 + lv - mu ** 2 - lv.exp()).sum(-1), "missing ½"),
    (lambda mu, lv: -0.5 * (1 + lv - mu ** 2 - lv.exp()).mean(-1), "mean over latent"),
    (lambda mu, lv: -0.5 * (1 + lv - mu ** 2 - (0.5 * lv).exp()).sum(-1), "σ where σ² belongs"),
    (lambda mu, lv: -0.5 * (1 + lv - mu ** 2 - lv.exp()), "sum over the last"),
    (lambda mu, lv: -0.5 * (lv - mu ** 2 - lv.exp()).sum(-1), "differs"),
])
def test_check_kl(capsys, wrong, hint):
    assert check_kl(right_kl)
    assert "right" in capsys.readouterr().out
    assert not check_kl(wrong)
    out = capsys.readouterr().out
    assert out.startswith("not yet") and hint in out, out


def right_free_bits(mu, log_var, lam):
    return (-0.5 * (1 + log_var - mu ** 2 - log_var.exp())).mean(0).clamp(min=lam).sum()


def test_check_free_bits(capsys):
    assert check_free_bits(right_free_bits)
    per_example = lambda mu, lv, lam: (-0.5 * (1 + lv - mu ** 2 - lv.exp())).clamp(min=lam).sum(-1).mean()
    assert not check_free_bits(per_example)
    assert "per example" in capsys.readouterr().out.splitlines()[-1]


def test_check_iwae_bound(capsys):
    assert check_iwae_bound(lambda log_w: torch.logsumexp(log_w, 0) - math.log(log_w.shape[0]))
    assert not check_iwae_bound(lambda log_w: log_w.mean(0))
    assert "ELBO" in capsys.readouterr().out.splitlines()[-1]
    assert not check_iwae_bound(lambda log_w: torch.log(log_w.exp().mean(0)))
    assert "logsumexp" in capsys.readouterr().out

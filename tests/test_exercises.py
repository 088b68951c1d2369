"""vae_lib.exercises.checkers: the reference solutions pass, and typical wrong answers fail with a message
that names the slip."""

import json
import math
import re
from pathlib import Path

import pytest
import torch
from torch.nn import functional as F

from vae_lib.exercises import checkers as exercises
from vae_lib.exercises.checkers import (check_adagrad, check_bernoulli_log_likelihood, check_elbo, check_free_bits,
                                        check_gaussian_log_likelihood, check_grid_log_marginal, check_iwae_bound,
                                        check_kl, check_posterior_kl, check_reparameterize, check_slerp)
from vae_lib.model.objectives import LOG_2PI, log_normal_diag, reparameterize


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


def _verdict(capsys, check, answer):
    """(passed, the last line the checker printed)."""
    passed = check(answer)
    return passed, capsys.readouterr().out.strip().splitlines()[-1]


def _check_rejects(capsys, check, right, wrong, hint):
    passed, line = _verdict(capsys, check, right)
    assert passed and line.startswith("right"), line
    passed, line = _verdict(capsys, check, wrong)
    assert not passed and line.startswith("not yet") and hint in line, line


def right_log_marginal(log_joint, cell_volume):
    return torch.logsumexp(log_joint, 0) + math.log(cell_volume)


@pytest.mark.parametrize("wrong, hint", [
    (lambda lj, dv: torch.log((lj.exp() * dv).sum(0)), "use torch.logsumexp"),
    (lambda lj, dv: torch.logsumexp(lj, 0), "ΔV left out"),
    (lambda lj, dv: torch.logsumexp(lj, 0) - math.log(dv), "subtracted"),
    (lambda lj, dv: torch.logsumexp(lj, 0) - math.log(len(lj)), "mean over grid points"),
    (lambda lj, dv: torch.logsumexp(lj, 1) + math.log(dv), "reduce over the grid points"),
    (lambda lj, dv: torch.logsumexp(lj.flatten(), 0) + math.log(dv), "one value per observation"),
    (lambda lj, dv: torch.logsumexp(lj, 0), "cell_volume=0.01"),          # the message names the input
])
def test_check_grid_log_marginal(capsys, wrong, hint):
    _check_rejects(capsys, check_grid_log_marginal, right_log_marginal, wrong, hint)


def test_check_grid_log_marginal_explains_an_underflow_it_cannot_name(capsys):
    """A naive sum that underflows in a different way than the listed slip still gets the log-sum-exp hint."""
    naive = lambda lj, dv: torch.log(lj.exp().sum(0)) + math.log(dv)
    passed, line = _verdict(capsys, check_grid_log_marginal, naive)
    assert not passed and "torch.logsumexp" in line, line


def right_posterior_kl(log_q, log_joint, area):
    log_post = log_joint - torch.logsumexp(log_joint, 0) - math.log(area)
    return (log_q.exp() * (log_q - log_post) * area).sum(0)


@pytest.mark.parametrize("wrong, hint", [
    (lambda lq, lj, a: (lq.exp() * (lq - lj) * a).sum(0), "log p(x, z) where log p(z|x) belongs"),
    (lambda lq, lj, a: (lambda lp: (lp.exp() * (lp - lq) * a).sum(0))(lj - torch.logsumexp(lj, 0) - math.log(a)),
     "the other way round"),
    (lambda lq, lj, a: right_posterior_kl(lq, lj, a) / a, "ΔA left out of the sum"),
    (lambda lq, lj, a: (lq.exp() * (lq - lj + torch.logsumexp(lj, 0)) * a).sum(0), "ΔA left out of log p(x)"),
    (lambda lq, lj, a: (lq - lj + torch.logsumexp(lj, 0) + math.log(a)).mean(0), "plain mean"),
    (lambda lq, lj, a: lq.exp() * (lq - lj + torch.logsumexp(lj, 0) + math.log(a)) * a, "sum over the grid points"),
    (lambda lq, lj, a: (lq.exp() * (lq - lj + torch.log((lj.exp() * a).sum(0))) * a).sum(0), "torch.logsumexp"),
])
def test_check_posterior_kl(capsys, wrong, hint):
    _check_rejects(capsys, check_posterior_kl, right_posterior_kl, wrong, hint)


def test_the_posterior_kl_checker_is_the_gaussian_kl():
    """On a fine grid, the checker's reference is KL between Gaussians by torch.distributions: with a Gaussian
    'posterior' (one mode) the grid's KL(q ‖ p(z|x)) matches kl_divergence to a few thousandths of a nat."""
    from vae_lib.exercises.attempts import solution
    from vae_lib.inference.exact_inference import latent_grid

    points, area = latent_grid(200, 2, 6.0, torch.float64)
    q = torch.distributions.Normal(torch.tensor([0.3, -0.2], dtype=torch.float64), torch.tensor([0.6, 0.9], dtype=torch.float64))
    p = torch.distributions.Normal(torch.tensor([-0.4, 0.5], dtype=torch.float64), torch.tensor([0.8, 0.7], dtype=torch.float64))
    log_q = q.log_prob(points).sum(-1)[:, None]
    log_joint = -500.0 + p.log_prob(points).sum(-1)[:, None]            # p(x) = e^-500: the grid must normalize
    expected = torch.distributions.kl_divergence(q, p).sum()
    torch.testing.assert_close(solution("check_posterior_kl")(log_q, log_joint, area)[0], expected, atol=5e-3, rtol=0)


def right_elbo(log_px_given_z, mu, log_var):
    return log_px_given_z.mean(0) - (-0.5 * (1 + log_var - mu ** 2 - log_var.exp()).sum(-1))


def _kl(mu, log_var):
    return -0.5 * (1 + log_var - mu ** 2 - log_var.exp())


@pytest.mark.parametrize("wrong, hint", [
    (lambda lp, mu, lv: lp.mean(0) + _kl(mu, lv).sum(-1), "KL added"),
    (lambda lp, mu, lv: lp.mean(0) - _kl(mu, lv).mean(-1), "averaged over latent dimensions"),
    (lambda lp, mu, lv: lp.sum(0) - _kl(mu, lv).sum(-1), "draws summed"),
    (lambda lp, mu, lv: lp.mean(0) - 2 * _kl(mu, lv).sum(-1), "missing ½"),
    (lambda lp, mu, lv: lp.mean(0), "KL term left out"),
    (lambda lp, mu, lv: (lp.mean(0) - _kl(mu, lv).sum(-1)).mean(), "the caller takes the mean"),
    (lambda lp, mu, lv: lp - _kl(mu, lv).sum(-1), "average over the L draws"),
])
def test_check_elbo(capsys, wrong, hint):
    _check_rejects(capsys, check_elbo, right_elbo, wrong, hint)


def right_reparameterize(mu, log_var, eps):
    return mu + torch.exp(0.5 * log_var) * eps


@pytest.mark.parametrize("wrong, hint", [
    (lambda mu, lv, eps: mu + lv.exp() * eps, "σ = exp(½ log σ²)"),
    (lambda mu, lv, eps: mu + lv * eps, "log_var used as σ"),
    (lambda mu, lv, eps: mu - torch.exp(0.5 * lv) * eps, "μ − σ ε"),
    (lambda mu, lv, eps: torch.exp(0.5 * lv) * eps, "μ left out"),
    (lambda mu, lv, eps: mu + torch.exp(0.5 * lv) * torch.randn_like(eps), "draws its own noise"),
    (lambda mu, lv, eps: (mu + torch.exp(0.5 * lv) * eps).detach(), "carries no gradient"),
    (lambda mu, lv, eps: mu + torch.exp(0.5 * lv) * eps[0], "keep the sample dimension"),
    (lambda mu, lv, eps: mu + lv.sqrt() * eps, "finite and positive"),
])
def test_check_reparameterize(capsys, wrong, hint):
    _check_rejects(capsys, check_reparameterize, right_reparameterize, wrong, hint)


def test_check_reparameterize_accepts_the_library(capsys):
    assert check_reparameterize(lambda mu, log_var, eps: reparameterize(mu, log_var, eps=eps))


def right_bernoulli(logits, x):
    """Against the trusted reference: torch.distributions.Bernoulli."""
    return torch.distributions.Bernoulli(logits=logits).log_prob(x.expand_as(logits)).sum(-1)


def _bce(logits, x):
    return F.binary_cross_entropy_with_logits(logits, x.expand_as(logits), reduction="none")


@pytest.mark.parametrize("wrong, hint", [
    (lambda lg, x: -_bce(lg, x).mean(-1), "reduction rule"),
    (lambda lg, x: _bce(lg, x).sum(-1), "its negative"),
    (lambda lg, x: -_bce(torch.sigmoid(lg), x).sum(-1), "sigmoid applied twice"),
    (lambda lg, x: -_bce(-lg, x).sum(-1), "swapped"),
    (lambda lg, x: (x * torch.log(lg) + (1 - x) * torch.log(1 - lg)).sum(-1), "not probabilities"),
    (lambda lg, x: (x * torch.log(torch.sigmoid(lg)) + (1 - x) * torch.log(1 - torch.sigmoid(lg))).sum(-1), "F.logsigmoid"),
    (lambda lg, x: -_bce(lg, x), "sum over the pixels"),
    (lambda lg, x: -_bce(lg, x).sum(-1).mean(0), "one value per draw"),
])
def test_check_bernoulli_log_likelihood(capsys, wrong, hint):
    _check_rejects(capsys, check_bernoulli_log_likelihood, right_bernoulli, wrong, hint)


def right_adagrad(grads, lr):
    return -lr * grads / ((grads ** 2).cumsum(0).sqrt() + 1e-10)


@pytest.mark.parametrize("wrong, hint", [
    (lambda g, lr: -lr * g / ((g ** 2).cumsum(0) + 1e-10), "without its square root"),
    (lambda g, lr: -lr * g / (((g ** 2).cumsum(0) - g ** 2).sqrt() + 1e-10), "added after the step"),
    (lambda g, lr: lr * g / ((g ** 2).cumsum(0).sqrt() + 1e-10), "ascent"),
    (lambda g, lr: -lr * g / (g.abs() + 1e-10), "only this step's"),
    (lambda g, lr: -lr * g / ((g ** 2).cumsum(0) / torch.arange(1, len(g) + 1)[:, None]).sqrt(), "Adagrad sums"),
    (lambda g, lr: right_adagrad(g, lr).sum(0), "every step's update"),
])
def test_check_adagrad(capsys, wrong, hint):
    _check_rejects(capsys, check_adagrad, right_adagrad, wrong, hint)


def right_slerp(z_start, z_end, t):
    omega = torch.arccos(torch.dot(z_start, z_end) / (z_start.norm() * z_end.norm()))
    t = t[:, None]
    return (torch.sin((1 - t) * omega) * z_start + torch.sin(t * omega) * z_end) / torch.sin(omega)


@pytest.mark.parametrize("wrong, hint", [
    (lambda a, b, t: interpolate_lerp(a, b, t), "straight line"),
    (lambda a, b, t: right_slerp(b, a, t), "ends swapped"),
    (lambda a, b, t: right_slerp(a / a.norm(), b / b.norm(), t), "unit vectors"),
    (lambda a, b, t: right_slerp(a, b, t) * torch.sin(torch.arccos(a @ b / (a.norm() * b.norm()))), "sin Ω left out"),
    (lambda a, b, t: right_slerp(a, b, t).T, "one row per t"),
])
def test_check_slerp(capsys, wrong, hint):
    _check_rejects(capsys, check_slerp, right_slerp, wrong, hint)


def interpolate_lerp(a, b, t):
    return (1 - t[:, None]) * a + t[:, None] * b


def test_check_slerp_explains_an_unnormalized_angle(capsys):
    raw = lambda a, b, t: right_slerp(a, b, t) * 0 + torch.arccos(a @ b)      # acos of an unnormalized dot: nan
    passed, line = _verdict(capsys, check_slerp, raw)
    assert not passed and "‖z_start‖ ‖z_end‖" in line, line


def right_gaussian(x, mean, log_var):
    """Against the trusted reference: torch.distributions.Normal."""
    return torch.distributions.Normal(mean, torch.exp(0.5 * log_var)).log_prob(x).sum(-1)


@pytest.mark.parametrize("wrong, hint", [
    (lambda x, m, lv: (-0.5 * (lv + (x - m) ** 2 / lv.exp())).sum(-1), "log 2π"),
    (lambda x, m, lv: (-0.5 * (LOG_2PI + lv + (x - m) ** 2 / (0.5 * lv).exp())).sum(-1), "where (x − μ)²/σ² belongs"),
    (lambda x, m, lv: (-0.5 * (LOG_2PI + 0.5 * lv + (x - m) ** 2 / lv.exp())).sum(-1), "log σ where log σ²"),
    (lambda x, m, lv: right_gaussian(x, m, lv) / x.shape[-1], "mean over pixels"),
    (lambda x, m, lv: -right_gaussian(x, m, lv), "a loss"),
    (lambda x, m, lv: (-0.5 * (LOG_2PI + torch.log(lv) + (x - m) ** 2 / lv)).sum(-1), "σ² = exp(log_var)"),
    (lambda x, m, lv: torch.distributions.Normal(m, torch.exp(0.5 * lv)).log_prob(x), "sum over the pixels"),
])
def test_check_gaussian_log_likelihood(capsys, wrong, hint):
    _check_rejects(capsys, check_gaussian_log_likelihood, right_gaussian, wrong, hint)


@pytest.mark.parametrize("likelihood", ["bernoulli", "gaussian"])
def test_the_checkers_density_is_the_decoders(small_vae, likelihood):
    """What the two decoder checkers accept is what the models compute: log p(x|z) of a small VAE equals the
    checkers' references applied to its decoder's outputs."""
    model = small_vae(likelihood)
    x = torch.rand(5, 12, dtype=torch.float64)
    z = torch.randn(2, 5, 3, dtype=torch.float64)
    with torch.no_grad():
        if likelihood == "bernoulli":
            x = x.round()
            mine = right_bernoulli(model.decoder(z), x)
        else:
            mine = log_normal_diag(x, *model.decoder(z))
        torch.testing.assert_close(mine, model.log_likelihood(x, z))
    assert check_gaussian_log_likelihood(log_normal_diag)


@pytest.mark.parametrize("check", [check_kl, check_elbo, check_reparameterize, check_bernoulli_log_likelihood,
                                   check_adagrad, check_slerp, check_gaussian_log_likelihood, check_grid_log_marginal,
                                   check_iwae_bound, check_free_bits, check_posterior_kl])
def test_a_checker_says_what_an_answer_of_the_wrong_kind_is(capsys, check):
    assert not check(lambda *args: [0.0])
    assert "returned list, not a tensor" in capsys.readouterr().out


CHAPTERS = Path(__file__).resolve().parents[1] / "chapters"


def _code_exercises():
    """(chapter, label, checker, function name, code) for every exercise answered in code. Two patterns:
    the reader's stub, a visible ``check_…(my_…)`` cell and a folded ``show_solution("check_…")`` cell (the
    exercises pattern; code is None: the solution shown is the reference one, tests/test_attempts.py checks it),
    or an exercise whose text names ``vae_lib.exercises.checkers.check_…(my_…)`` with the code of the chapter's
    solution dropdowns up to this one (solutions may use functions of earlier ones)."""
    for notebook in sorted(CHAPTERS.glob("[0-9][0-9]*_*.ipynb")):
        cells = json.loads(notebook.read_text())["cells"]
        label = None
        for c in cells:
            source = "".join(c["source"])
            if c["cell_type"] == "markdown":
                label = ([label] + re.findall(r"^:::\{exercise\}\n:label: (\S+)", source, re.M))[-1]
            elif named := re.match(r"(check_\w+)\((my_\w+)\);?\s*$", source):
                yield notebook.stem, label, named[1], named[2], None
        text = "\n".join("".join(c["source"]) for c in cells if c["cell_type"] == "markdown")
        exercises = dict(re.findall(r"^:::\{exercise\}\n:label: (\S+)\n(.*?)\n:::$", text, re.S | re.M))
        code = ""
        for label, body in re.findall(r"^:::\{solution\} (\S+)\n(.*?)\n:::$", text, re.S | re.M):
            code += "".join(re.findall(r"```python\n(.*?)```", body, re.S))
            named = re.search(r"vae_lib\.exercises\.checkers\.(check_\w+)\((my_\w+)\)", exercises.get(label, ""))
            if named:
                yield notebook.stem, label, named[1], named[2], code


CODE_EXERCISES = list(_code_exercises())


@pytest.mark.parametrize("chapter, label, checker, function, code", CODE_EXERCISES, ids=[e[1] for e in CODE_EXERCISES])
def test_the_printed_solution_passes_its_checker(capsys, chapter, label, checker, function, code):
    """The code in each solution dropdown, run as printed, passes the checker its exercise names: the page and
    the checker cannot drift apart."""
    if code is None:   # the exercises pattern: its solution is the reference one (tests/test_attempts.py)
        pytest.skip("solution shown by show_solution")
    namespace = {"torch": torch, "math": math, "F": F}
    exec(code, namespace)
    assert function in namespace, f"{chapter}, {label}: the solution does not define {function}"
    assert getattr(exercises, checker)(namespace[function]), capsys.readouterr().out


def test_every_checker_has_an_exercise():
    checkers = {name for name in dir(exercises) if name.startswith("check_")}
    assert checkers == {e[2] for e in CODE_EXERCISES}


PATTERN_EXERCISES = [e for e in CODE_EXERCISES if e[4] is None]


@pytest.mark.parametrize("chapter, label, checker, function, code", PATTERN_EXERCISES,
                         ids=[e[1] or e[3] for e in PATTERN_EXERCISES])
def test_a_code_exercise_follows_the_pattern(chapter, label, checker, function, code):
    """stub → checker → folded solution: a visible stub defining the reader's function with not_written, its
    check, and ``show_solution`` tagged hide-output; no hidden cell redefines the reader's function."""
    cells = [c for c in json.loads((CHAPTERS / f"{chapter}.ipynb").read_text())["cells"] if c["cell_type"] == "code"]
    hidden = {"remove-input", "remove-cell", "hide-input", "hide-cell"}
    defining = [c for c in cells if re.search(rf"^def {function}\(", "".join(c["source"]), re.M)]
    assert label, f"{chapter}: {checker}({function}) follows no exercise"
    assert len(defining) == 1 and f'not_written("{function}")' in "".join(defining[0]["source"]), \
        f"{chapter}, {label}: one visible stub of {function} that calls not_written"
    assert not hidden & set(defining[0]["metadata"].get("tags", [])), f"{chapter}, {label}: the stub is hidden"
    shown = [c for c in cells if f'show_solution("{checker}")' in "".join(c["source"])]
    assert len(shown) == 1 and "hide-output" in shown[0]["metadata"].get("tags", []), \
        f"{chapter}, {label}: show_solution(\"{checker}\") in one cell tagged hide-output"

"""vae_lib.exercises.attempts: every reference solution passes its checker, a stub is "not yet" (never an
error, never "right"), and a prediction is judged by its distance from the measured value."""

import pytest

from vae_lib.exercises import checkers
from vae_lib.exercises.attempts import (SOLUTIONS, NotWritten, check_prediction, not_written, show_solution,
                                        solution)


def test_every_checker_has_a_solution_and_it_passes(capsys):
    names = {n for n in checkers.__all__ if n.startswith("check_")}
    assert set(SOLUTIONS) == names
    for name in sorted(names):
        assert getattr(checkers, name)(solution(name)), name
        assert capsys.readouterr().out.startswith("right"), name


@pytest.mark.parametrize("name", sorted(SOLUTIONS))
def test_a_stub_is_not_yet(capsys, name):
    def stub(*args):
        not_written("my_answer")
    assert getattr(checkers, name)(stub) is False
    out = capsys.readouterr().out
    assert out.startswith("not yet") and "my_answer is not written yet" in out, out


def test_a_bare_not_implemented_is_not_yet(capsys):
    def stub(mu, log_var):
        raise NotImplementedError
    assert checkers.check_kl(stub) is False
    assert "my_kl still raises NotImplementedError" in capsys.readouterr().out


def test_not_written_raises():
    with pytest.raises(NotWritten):
        not_written("f")


def test_show_solution_prints_the_source(capsys):
    show_solution("check_kl")
    out = capsys.readouterr().out
    assert "passes check_kl" in out and "log_var.exp()" in out and "def solution_check_kl" in out
    with pytest.raises(KeyError, match="check_kl"):
        solution("check_nothing")


def test_check_prediction(capsys):
    assert check_prediction("the gap", None, 3.0, 1.0) is False
    assert "not yet: write your prediction" in capsys.readouterr().out
    assert check_prediction("the gap", 3.5, 3.0, 1.0, "nats") is True
    assert "close: you predicted 3.5 nats" in capsys.readouterr().out
    assert check_prediction("the gap", 10, 3.0, 1.0) is False
    assert "off by +7" in capsys.readouterr().out
    assert check_prediction("the gap", "3", 3.0, 1.0) is False
    with pytest.raises(ValueError):
        check_prediction("the gap", 1.0, float("nan"), 1.0)

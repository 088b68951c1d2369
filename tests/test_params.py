"""vae_lib.base.params: a chapter's parameters are refused with a message that names the parameter, what it got
and what it accepts; strings people mean as yes/no are read as such (and "no" never turns quick mode on)."""

import re

import pytest

from vae_lib.base.params import as_flag, check_choice, check_number, check_path
from vae_lib.base.utils import quick_mode


@pytest.mark.parametrize("value, expected", [(True, True), (False, False), (None, None), ("yes", True), ("no", False),
                                             ("True", True), ("0", False), (" off ", False)])
def test_flags_read_as_people_mean_them(value, expected):
    assert as_flag("quick", value) is expected


@pytest.mark.parametrize("value", ["maybe", 2, 1.0, [], "nope"])
def test_other_flags_are_refused(value):
    with pytest.raises(ValueError, match=re.escape(f"parameter 'quick' got {value!r}; it accepts True, False, None or one of")):
        as_flag("quick", value)


def test_quick_no_means_off(monkeypatch):
    monkeypatch.setenv("VAE_QUICK", "1")
    assert quick_mode("no") is False and quick_mode("yes") is True and quick_mode(None) is True


@pytest.mark.parametrize("value, message", [
    (0, "got 0; it accepts an integer from 1 to 10"), (11, "got 11; it accepts an integer from 1 to 10"),
    (2.5, "got 2.5; it accepts an integer from 1"), ("3", "got '3'; it accepts an integer from 1"),
    (True, "got True; it accepts an integer")])
def test_numbers_out_of_range_or_of_the_wrong_type(value, message):
    with pytest.raises(ValueError, match=re.escape("parameter 'n' " + message)):
        check_number("n", value, 1, 10, integer=True)


def test_numbers_choices_and_paths_that_are_right_pass():
    assert check_number("lr", 0.1, 0, 1) == 0.1
    assert check_number("x", None, allow_none=True) is None
    assert check_choice("algorithm", "aevb", ("aevb", "wake_sleep")) == "aevb"
    assert check_path("data_dir", None) is None and check_path("data_dir", "/tmp") == "/tmp"
    with pytest.raises(ValueError, match=r"parameter 'algorithm' got 'mcem'; it accepts one of \('aevb', 'wake_sleep'\)"):
        check_choice("algorithm", "mcem", ("aevb", "wake_sleep"))
    with pytest.raises(ValueError, match=r"parameter 'data_dir' got 3; it accepts a path as a string or None"):
        check_path("data_dir", 3)
    with pytest.raises(ValueError, match="parameter 'lr' got nan"):
        check_number("lr", float("nan"))

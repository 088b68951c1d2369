"""Checks of a chapter's papermill parameters, made in one call right after the parameters cell, before
any data is loaded or any model trained — so a wrong value costs a second, not a training run."""

from __future__ import annotations

import math
from typing import Any

TRUE_WORDS = {"1", "true", "yes", "on"}
FALSE_WORDS = {"0", "false", "no", "off"}


def as_flag(name: str, value: Any, allow_none: bool = True) -> bool | None:
    """A yes/no parameter: True/False (or None when allowed), or a string people mean as one
    ("yes", "no", "true", "0", ...); anything else is refused with a message naming the parameter."""
    if value is None and allow_none:
        return None
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.strip().lower() in TRUE_WORDS | FALSE_WORDS:
        return value.strip().lower() in TRUE_WORDS
    accepted = "True, False" + (", None" if allow_none else "") + " or one of " + ", ".join(sorted(TRUE_WORDS | FALSE_WORDS))
    raise ValueError(f"parameter {name!r} got {value!r}; it accepts {accepted}")


def check_number(name: str, value: Any, low: float | None = None, high: float | None = None,
                 integer: bool = False, allow_none: bool = False) -> float | int | None:
    """A numeric parameter within [low, high] (an int when ``integer``); returns it, or raises a
    ValueError naming the parameter, what it got and what it accepts."""
    if value is None and allow_none:
        return None
    kind = "an integer" if integer else "a number"
    ok_type = isinstance(value, int) if integer else isinstance(value, (int, float))
    if isinstance(value, bool) or not ok_type or (not integer and not math.isfinite(value)):
        raise ValueError(f"parameter {name!r} got {value!r}; it accepts {kind}"
                         + (f" from {low}" if low is not None else "") + (f" to {high}" if high is not None else ""))
    if (low is not None and value < low) or (high is not None and value > high):
        raise ValueError(f"parameter {name!r} got {value!r}; it accepts {kind} from "
                         f"{low if low is not None else '-inf'} to {high if high is not None else 'inf'}")
    return value


def check_choice(name: str, value: Any, choices: tuple, allow_none: bool = False) -> Any:
    """A parameter that must be one of ``choices``."""
    if value is None and allow_none:
        return None
    if value not in choices:
        raise ValueError(f"parameter {name!r} got {value!r}; it accepts one of {choices}"
                         + (" or None" if allow_none else ""))
    return value


def check_path(name: str, value: Any, allow_none: bool = True) -> str | None:
    """A folder or file parameter: a string (or None when allowed)."""
    if value is None and allow_none:
        return None
    if not isinstance(value, str) or not value:
        raise ValueError(f"parameter {name!r} got {value!r}; it accepts a path as a string"
                         + (" or None" if allow_none else ""))
    return value


def check_list(name: str, value: Any, check_item, min_length: int = 1, increasing: bool = False) -> list:
    """A list (or tuple) parameter of at least ``min_length`` items, each checked by
    ``check_item(f"{name}[{i}]", item)`` (say a :func:`check_number`); with ``increasing``, strictly
    increasing. Returns it as a list."""
    if isinstance(value, (str, bytes)) or not isinstance(value, (list, tuple)) or len(value) < min_length:
        raise ValueError(f"parameter {name!r} got {value!r}; it accepts a list of at least {min_length} item"
                         + ("s" if min_length > 1 else ""))
    for i, item in enumerate(value):
        check_item(f"{name}[{i}]", item)
    if increasing and any(a >= b for a, b in zip(value, value[1:])):
        raise ValueError(f"parameter {name!r} got {value!r}; it accepts a strictly increasing list")
    return list(value)

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


# --- one wording for every entry point: "<name> must be <what is allowed>, got <value>" ----------------

def allowed_range(kind: str, low: float | None = None, high: float | None = None, low_open: bool = False) -> str:
    """What a numeric parameter accepts, in words: "an integer ≥ 1", "a finite number > 0",
    "a number from 0 to 1"."""
    if low is not None and high is not None:
        return f"{kind} from {low:g} to {high:g}" if not low_open else f"{kind} > {low:g} and ≤ {high:g}"
    if low is not None:
        return f"{kind} {'>' if low_open else '≥'} {low:g}"
    if high is not None:
        return f"{kind} ≤ {high:g}"
    return kind


def check_int(name: str, value: Any, low: int | None = 1, high: int | None = None) -> int:
    """An integer parameter (Python or NumPy integer, not a bool, not a float) within [low, high]; returns it
    as an int, or raises a ValueError "<name> must be an integer ≥ 1, got 2.5"."""
    import numbers

    if (isinstance(value, bool) or not isinstance(value, numbers.Integral)
            or (low is not None and value < low) or (high is not None and value > high)):
        raise ValueError(f"{name} must be {allowed_range('an integer', low, high)}, got {value!r}")
    return int(value)


def check_float(name: str, value: Any, low: float | None = None, high: float | None = None,
                low_open: bool = False) -> float:
    """A finite real parameter within [low, high] (``low_open``: strictly above low); returns it as a float,
    or raises a ValueError "<name> must be a finite number > 0, got nan"."""
    import numbers

    kind = "a finite number"
    if (isinstance(value, bool) or not isinstance(value, numbers.Real) or not math.isfinite(value)
            or (low is not None and (value <= low if low_open else value < low))
            or (high is not None and value > high)):
        raise ValueError(f"{name} must be {allowed_range(kind, low, high, low_open)}, got {value!r}")
    return float(value)


def check_callable(name: str, value: Any, what: str = "a function") -> Any:
    """A parameter that must be callable (an exercise's answer): a TypeError naming it otherwise."""
    if not callable(value):
        raise TypeError(f"{name} must be {what}, got {value!r} (of type {type(value).__name__}): pass the function "
                        "itself, without calling it")
    return value


# --- argparse types: every script refuses a bad argument the same way (exit 2, no traceback) -----------------
# argparse prints "error: argument --threads: must be an integer ≥ 1, got 0".

def _shown(text: str) -> str:
    return text if text and text == text.strip() and " " not in text else repr(text)


def _int_type(low: int, text: str) -> int:
    import argparse

    try:
        value = int(text.strip())
    except ValueError:
        value = None
    if value is None or value < low:
        raise argparse.ArgumentTypeError(f"must be {allowed_range('an integer', low)}, got {_shown(text)}")
    return value


def positive_int(text: str) -> int:
    """argparse type: an integer ≥ 1 (threads, jobs, images, epochs)."""
    return _int_type(1, text)


def nonnegative_int(text: str) -> int:
    """argparse type: an integer ≥ 0."""
    return _int_type(0, text)


def finite_positive_float(text: str) -> float:
    """argparse type: a finite number > 0 (seconds, step sizes)."""
    import argparse

    try:
        value = float(text)
    except ValueError:
        value = math.nan
    if not (math.isfinite(value) and value > 0):
        raise argparse.ArgumentTypeError(f"must be a finite number > 0, got {_shown(text)}")
    return value


def sample_count(text: str) -> int:
    """argparse type: a whole number of training samples ≥ 1, written as an integer or in exponent form
    ("10000000", "1e7", "2.5e6"); returns it as an int."""
    import argparse

    try:
        value = float(text)
    except ValueError:
        value = math.nan
    if not (math.isfinite(value) and value >= 1 and value == int(value)):
        raise argparse.ArgumentTypeError(f"must be a whole number ≥ 1 of samples, such as 1e7, got {_shown(text)}")
    return int(value)


def device_name(text: str) -> str:
    """argparse type: "cpu", or "cuda" / "cuda:N" when such a GPU is present here."""
    import argparse
    import re

    if text == "cpu":
        return text
    import torch

    n = torch.cuda.device_count() if torch.cuda.is_available() else 0
    match = re.fullmatch(r"cuda(?::(\d+))?", text)
    if match is None or n == 0 or (match.group(1) is not None and int(match.group(1)) >= n):
        present = (f"'cuda' or 'cuda:0' to 'cuda:{n - 1}'" if n else "no GPU: CUDA is not available here")
        raise argparse.ArgumentTypeError(f"must be 'cpu' or a GPU present here ({present}), got {_shown(text)}")
    return text


def cluster_address(text: str) -> str:
    """argparse type: a Dask scheduler's address, tcp://host:port (or tls://host:port), port 1 to 65535."""
    import argparse
    import re

    match = re.fullmatch(r"(tcp|tls)://(\[[0-9a-fA-F:]+\]|[A-Za-z0-9._-]+):(\d{1,5})", text.strip())
    if match is None or not 1 <= int(match.group(3)) <= 65535:
        raise argparse.ArgumentTypeError(f"must be a Dask scheduler's address tcp://host:port (port 1 to 65535), "
                                         f"such as tcp://10.0.0.5:8786, got {_shown(text)}")
    return text.strip()


def comma_list(text: str) -> str:
    """argparse type: a comma-separated list of one or more non-empty names; returns it without spaces."""
    import argparse

    items = [item.strip() for item in text.split(",")]
    if not text.strip() or any(not item for item in items):
        raise argparse.ArgumentTypeError(f"must be a comma-separated list of one or more names, got {_shown(text)}")
    return ",".join(items)


def time_of_day(text: str) -> str:
    """argparse type: a local time of day HH:MM (00:00 to 23:59)."""
    import argparse
    import re

    match = re.fullmatch(r"(\d{1,2}):(\d{2})", text.strip())
    if match is None or int(match.group(1)) > 23 or int(match.group(2)) > 59:
        raise argparse.ArgumentTypeError(f"must be a time of day HH:MM, from 00:00 to 23:59, got {_shown(text)}")
    return text.strip()


def existing_dir(text: str) -> str:
    """argparse type: a folder that exists."""
    import argparse
    from pathlib import Path

    if not text or not Path(text).is_dir():
        raise argparse.ArgumentTypeError(f"must be an existing folder, got {_shown(text)}"
                                         + (" (it is a file)" if text and Path(text).is_file() else " (not found)"))
    return text


def existing_file(text: str) -> str:
    """argparse type: a file that exists."""
    import argparse
    from pathlib import Path

    if not text or not Path(text).is_file():
        raise argparse.ArgumentTypeError(f"must be an existing file, got {_shown(text)}"
                                         + (" (it is a folder)" if text and Path(text).is_dir() else " (not found)"))
    return text


def check_image_shape(value: Any, data_dim: int) -> tuple[int, int]:
    """``image_shape``: two integers ≥ 1 (rows, columns) whose product is the model's ``data_dim``."""
    ok = (isinstance(value, (tuple, list)) and len(value) == 2
          and all(not isinstance(v, (bool, float, str)) and hasattr(v, "__index__") and v >= 1 for v in value))
    if not ok:
        raise ValueError(f"image_shape must be (rows, columns), two integers ≥ 1 whose product is the model's "
                         f"{data_dim} pixels, got {value!r}")
    if value[0] * value[1] != data_dim:
        raise ValueError(f"image_shape {tuple(value)} does not hold the model's {data_dim} pixels: it must be "
                         f"(rows, columns) whose product is {data_dim}")
    return int(value[0]), int(value[1])

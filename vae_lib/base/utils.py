"""Device, seeding, the book's quick switch and progress bars — the small things every chapter needs."""

from __future__ import annotations

import os
import random
import time
from typing import Callable, Iterable, TypeVar

import numpy as np
import torch

T = TypeVar("T")

QUICK_ENV = "VAE_QUICK"
PROGRESS_ENV = "VAE_PROGRESS"
STORING_ENV = "VAE_STORING_RUN"   # set by scripts/run_book.py: the run whose outputs the book stores


def storing_run() -> bool:
    """Whether this kernel is the headless run whose outputs the book stores (``scripts/run_book.py`` sets
    ``VAE_STORING_RUN=1``): there an interactive widget would only store dead state in the page, so a
    chapter shows its static figure instead."""
    return os.environ.get(STORING_ENV, "") == "1"


def pick_device(prefer: str | None = None) -> torch.device:
    """The device to compute on: ``prefer`` if given, else CUDA when present, else the CPU."""
    if prefer is not None:
        device = torch.device(prefer)
        if device.type == "cuda" and not torch.cuda.is_available():
            raise RuntimeError(f"device {prefer!r} was asked for, but CUDA is not available here; "
                               "pass prefer=None to fall back to the CPU")
        return device
    return torch.device("cuda" if torch.cuda.is_available() else "cpu")


def describe_device(device: torch.device) -> str:
    """A one-line, human description of ``device`` (GPU name, or CPU thread count)."""
    if device.type == "cuda":
        return f"cuda ({torch.cuda.get_device_name(device)})"
    return f"cpu ({torch.get_num_threads()} threads)"


def seed_everything(seed: int) -> None:
    """Seed Python's, NumPy's and PyTorch's global generators (all devices)."""
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


def timed(fn: Callable[..., T], *args, **kwargs) -> tuple[T, float]:
    """``fn(*args, **kwargs)`` and its wall time in seconds, waiting for queued GPU work to finish
    before the clock stops (a CUDA call returns before its kernels end)."""
    start = time.perf_counter()
    out = fn(*args, **kwargs)
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        torch.cuda.synchronize()
    return out, time.perf_counter() - start


def quick_mode(flag: bool | None = None) -> bool:
    """The book's quick switch: ``flag`` when given (a papermill parameter), else the
    environment variable ``VAE_QUICK`` ("1", "true", "yes" mean on)."""
    if flag is not None:
        from vae_lib.base.params import as_flag
        return bool(as_flag("quick", flag))
    return os.environ.get(QUICK_ENV, "").strip().lower() in {"1", "true", "yes", "on"}


def progress(iterable: Iterable[T] | None, **kwargs) -> Iterable[T]:
    """A tqdm progress bar: a notebook widget in Jupyter, plain text when ``VAE_PROGRESS=text``
    (headless runs, whose stored outputs must read well on the rendered page) and none when
    ``VAE_PROGRESS=off``."""
    mode = os.environ.get(PROGRESS_ENV, "auto").strip().lower()
    if mode == "off":
        kwargs["disable"] = True
    if mode == "text":
        from tqdm.std import tqdm
        tqdm.monitor_interval = 0  # no monitor thread: it re-prints unchanged bars into stored outputs
        kwargs.setdefault("mininterval", 60.0)
        kwargs.setdefault("ascii", True)
    else:
        from tqdm.auto import tqdm
    return tqdm(iterable, **kwargs)


def clock_deadline(hhmm: str, now: float | None = None) -> float:
    """The next time the local clock reads ``hhmm`` ("HH:MM"), as a ``time.time()`` timestamp: today if
    that is still ahead of ``now`` (default: the current time), else tomorrow. For the run launchers'
    ``--until``."""
    import time

    try:
        hh, mm = (int(v) for v in hhmm.split(":"))
    except ValueError:
        raise ValueError(f"expected a time of day as HH:MM, got {hhmm!r}") from None
    if not (0 <= hh < 24 and 0 <= mm < 60):
        raise ValueError(f"expected a time of day as HH:MM, got {hhmm!r}")
    now = time.time() if now is None else now
    day = time.localtime(now)
    at = time.mktime((day.tm_year, day.tm_mon, day.tm_mday, hh, mm, 0, 0, 0, -1))
    return at + 86400 if at <= now else at

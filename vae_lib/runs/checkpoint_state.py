"""Where a run stands, read from its checkpoint rather than assumed (chapter 14's k = 50 runs).

A run that "continues in the background" may have stopped hours ago. :func:`checkpoint_state` reads what
can be known without training: the epochs the checkpoint reached (its history), when the file was last
written (its modification time, UTC — in a fresh clone, the time of the clone), and whether a process
holds the run's lock now (:mod:`vae_lib.base.locks`: a training process holds it for as long as it
trains). :func:`describe_state` says it in one line.
"""

from __future__ import annotations

import os
import time
from pathlib import Path

from vae_lib.base.locks import lock_path
from vae_lib.training.checkpoints import read_checkpoint

try:
    import fcntl
except ImportError:   # Windows: runs are not locked there, so none can be seen training
    fcntl = None


def held_by(path: str | os.PathLike) -> str | None:
    """The holder's note ("process N (since …)") when a process holds the lock of the run whose checkpoint
    is ``path``, else None. Asks with a shared, non-blocking lock released at once, so it never blocks
    and writes nothing."""
    lock = lock_path(path)
    if fcntl is None or not lock.exists():
        return None
    fd = os.open(lock, os.O_RDONLY)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
        except BlockingIOError:
            return os.pread(fd, 200, 0).decode("utf-8", "replace").strip() or "another process"
        fcntl.flock(fd, fcntl.LOCK_UN)
        return None
    finally:
        os.close(fd)


def checkpoint_state(path: str | os.PathLike) -> dict:
    """The state of the run whose checkpoint is ``path``: ``epochs`` reached (0 when there is no
    checkpoint), ``written`` (the file's modification time, "YYYY-MM-DD HH:MM UTC", or None) and
    ``training`` (the lock holder's note while a process trains it, else None)."""
    path = Path(path)
    if not path.exists():
        return {"epochs": 0, "written": None, "training": None}
    history = read_checkpoint(path)["history"]
    written = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime(path.stat().st_mtime))
    return {"epochs": history["epoch"][-1] if history["epoch"] else 0, "written": written,
            "training": held_by(path)}


def describe_state(state: dict, budget: int) -> str:
    """One line: done, training now, or stopped at its epoch (with the checkpoint's time)."""
    if state["epochs"] >= budget:
        return f"done ({state['epochs']} of {budget} epochs, checkpoint of {state['written']})"
    if state["written"] is None:
        return f"not started (0 of {budget} epochs)"
    if state["training"]:
        return (f"training now, at {state['epochs']} of {budget} epochs (checkpoint of {state['written']}; "
                f"held by {state['training']})")
    return (f"stopped at {state['epochs']} of {budget} epochs (checkpoint of {state['written']}); "
            "no process is training it")

"""One run, one writer: a lock per run, and workers that die with the process that started them.

Two processes training one run (one checkpoint, one curve) would each write their own state over the
other's — the later writer takes the run back to where it was when it started. :func:`run_lock` takes an
exclusive, non-blocking lock on a file beside the run's checkpoint (``.<name>.lock``, ignored by git) for
as long as the run trains: a second process gets :class:`RunLockedError` at once, naming the run, the
process that holds it and what to do. The operating system releases the lock when its holder exits, by
any means (``kill -9`` included), so a stale lock file never blocks a run.

:func:`die_with_parent` is the initializer of the sweeps' worker processes: a worker whose parent has gone
(killed, crashed) stops within a second instead of training on, unseen, under ``init``.
"""

from __future__ import annotations

import contextlib
import os
import threading
import time
from collections.abc import Iterator
from pathlib import Path

try:
    import fcntl
except ImportError:   # Windows: no advisory locks here; runs are not locked there
    fcntl = None


class RunLockedError(RuntimeError):
    """Another process is writing the same run."""


def lock_path(path: str | os.PathLike) -> Path:
    """The lock file of the run whose checkpoint is ``path``: ``.<name>.lock`` in the same folder."""
    path = Path(path)
    return path.with_name(f".{path.name}.lock")


@contextlib.contextmanager
def run_lock(path: str | os.PathLike) -> Iterator[None]:
    """Hold the run at ``path`` (its checkpoint) for this process while the block runs; raise
    :class:`RunLockedError` at once when another process holds it."""
    if fcntl is None:
        yield
        return
    lock = lock_path(path)
    lock.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(lock, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.pread(fd, 200, 0).decode("utf-8", "replace").strip() or "another process"
            raise RunLockedError(f"the run {path} is being written by {holder}: one run has one writer. Wait for "
                                 f"it to finish (or stop it), or write this run elsewhere") from None
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"process {os.getpid()} (since {time.strftime('%Y-%m-%d %H:%M:%S')})".encode(), 0)
        yield
    finally:
        os.close(fd)   # releases the lock


def _watch(parent: int, period: float) -> None:
    while True:
        if os.getppid() != parent:
            os._exit(3)   # the parent is gone: stop now (checkpoints are written atomically, so none is torn)
        time.sleep(period)


def die_with_parent(parent: int | None = None, period: float = 1.0) -> None:
    """Make this process exit within ``period`` seconds of its parent's death (the worker initializer of
    :func:`vae_lib.base.sweep.local_executor`). ``parent``: the pid to watch (default: the current parent)."""
    parent = os.getppid() if parent is None else parent
    threading.Thread(target=_watch, args=(parent, period), daemon=True, name="die-with-parent").start()

"""One sweep on any executor: a list of jobs run on a ``concurrent.futures.Executor`` — local
processes by default, or a cluster engine's executor (Dask's ``distributed.Client.get_executor()``)
when one machine is not enough.

A job is a picklable callable with its arguments; each must be resumable from its own checkpoint,
so a lost worker costs only the minutes since that checkpoint: run the sweep again and every job
continues where it stopped. Results come back in the order the jobs finish, each with its name, and
a failed job is reported with its error instead of stopping the others.
"""

from __future__ import annotations

import concurrent.futures as cf
import os
from typing import Any, Callable, Iterable, Iterator, NamedTuple


class Job(NamedTuple):
    """One unit of a sweep: ``fn(*args)`` under the name ``name``."""

    name: str
    fn: Callable[..., Any]
    args: tuple = ()


class JobResult(NamedTuple):
    """What a job gave: its ``value``, or the ``error`` it raised (then ``value`` is None)."""

    name: str
    value: Any
    error: BaseException | None


def local_executor(max_workers: int | None = None) -> cf.Executor:
    """Local worker processes, at most one per core (spawned: each starts a fresh interpreter, so
    torch's threads are set per worker), each exiting when this process dies (:func:`vae_lib.base.locks.die_with_parent`)."""
    import multiprocessing

    from vae_lib.base.locks import die_with_parent

    workers = max_workers or os.cpu_count() or 1
    # a worker stops within a second of its parent's death (kill -9 included) instead of training on under init
    return cf.ProcessPoolExecutor(max_workers=workers, mp_context=multiprocessing.get_context("spawn"),
                                  initializer=die_with_parent, initargs=(os.getpid(),))


def cluster_executor(address: str, timeout: float = 10.0) -> cf.Executor:
    """The executor of the Dask cluster whose scheduler listens at ``address`` (e.g.
    ``tcp://10.0.0.5:8786``): each job runs on one of its workers. Needs ``pip install distributed``.
    A malformed address is a ValueError naming it; no scheduler answering there within ``timeout``
    seconds (nothing listening, another service on that port, a firewall) an OSError naming it."""
    from vae_lib.base.params import cluster_address

    import argparse

    try:
        address = cluster_address(address) if isinstance(address, str) else cluster_address(repr(address))
    except argparse.ArgumentTypeError as err:
        raise ValueError(f"cluster address {err}") from None
    try:
        from distributed import Client
    except ImportError as err:
        raise ImportError("a cluster sweep needs Dask's distributed package: pip install distributed") from err
    try:
        client = Client(address, timeout=timeout)
    except Exception as err:   # OSError (nothing there), MemoryError/ValueError (another service's bytes read as Dask's)
        why = (f"nothing answered within {timeout:g} s" if isinstance(err, OSError) else
               f"what answered there is not a Dask scheduler (its reply could not be read: {type(err).__name__})")
        raise OSError(f"cannot connect to the Dask scheduler at {address}: {why}. Start one there "
                      "(dask scheduler), or check the host and port") from None
    return client.get_executor()


def run_sweep(jobs: Iterable[Job], executor: cf.Executor | None = None,
              on_result: Callable[[JobResult], None] | None = None) -> Iterator[JobResult]:
    """Run ``jobs`` on ``executor`` (default: :func:`local_executor`, shut down at the end) and yield
    a :class:`JobResult` for each as it finishes; ``on_result`` is called on each too (to print
    progress). Names must be unique: a sweep writes one checkpoint per name."""
    jobs = list(jobs)
    names = [job.name for job in jobs]
    duplicates = sorted({n for n in names if names.count(n) > 1})
    if duplicates:
        raise ValueError(f"job names must be unique (each job owns its checkpoint), repeated: {duplicates}")
    own = executor is None
    executor = executor or local_executor(min(len(jobs), os.cpu_count() or 1) or 1)
    try:
        futures = {executor.submit(job.fn, *job.args): job.name for job in jobs}
        for future in cf.as_completed(futures):
            try:
                result = JobResult(futures[future], future.result(), None)
            except Exception as err:   # one failed job does not stop the sweep
                result = JobResult(futures[future], None, err)
            if on_result is not None:
                on_result(result)
            yield result
    finally:
        if own:
            executor.shutdown(wait=True, cancel_futures=True)


def run_and_report(jobs: Iterable[Job], executor: cf.Executor, describe: Callable[[Any], str]) -> list[str]:
    """:func:`run_sweep` with a line printed as each job ends — ``describe(value)`` for a finished job, the
    reason for one :func:`logged_call` did not start, the error for a failed one — and the executor shut down
    at the end. Returns the names of the failed jobs."""
    failed = []
    try:
        for result in run_sweep(jobs, executor):
            if result.error is not None:
                failed.append(result.name)
                print(f"FAILED {result.name}: {result.error!r}", flush=True)
            elif isinstance(result.value, dict) and "skipped" in result.value:
                print(f"not started {result.name}: {result.value['skipped']}", flush=True)
            else:
                print(f"finished {result.name}: {describe(result.value)}", flush=True)
    finally:
        executor.shutdown()
    return failed


def logged_call(log_path: str, deadline: float | None, fn: Callable[..., Any], kwargs: dict,
                min_seconds: float = 300.0) -> Any:
    """A job's body for long runs on a worker: ``fn(**kwargs, time_limit=…)`` with its printed output
    (and progress, as plain text) appended to the file ``log_path``. ``deadline`` (seconds since the
    epoch, or None) becomes the run's ``time_limit`` when the worker starts it — the run stops
    resumably in time — and a run with less than ``min_seconds`` left is not started:
    ``{"skipped": …}`` comes back instead."""
    import contextlib
    import time
    from pathlib import Path

    left = None if deadline is None else deadline - time.time()
    if left is not None and left < min_seconds:
        return {"skipped": f"{left / 60:.1f} minutes before the deadline, less than {min_seconds / 60:g}"}
    Path(log_path).parent.mkdir(parents=True, exist_ok=True)
    os.environ["VAE_PROGRESS"] = "text"          # progress bars as lines of text: they go to a log file
    with open(log_path, "a") as log, contextlib.redirect_stdout(log), contextlib.redirect_stderr(log):
        return fn(**kwargs, time_limit=left)


def counting_job(path: str, steps: int, seconds_per_step: float = 0.0) -> dict:
    """A toy resumable job, to try an executor or a cluster before spending hours on it: counts to
    ``steps``, writing its count and process id to the JSON file ``path`` after every step (atomically,
    like a checkpoint) and resuming from the count it finds there. Returns {"count", "resumed_from", "pid"}."""
    import json
    import time
    from pathlib import Path

    file = Path(path)
    start = json.loads(file.read_text())["count"] if file.exists() else 0
    for count in range(start + 1, steps + 1):
        time.sleep(seconds_per_step)
        tmp = file.with_suffix(".tmp")
        tmp.write_text(json.dumps({"count": count, "pid": os.getpid()}))
        os.replace(tmp, file)
    return {"count": max(start, steps), "resumed_from": start, "pid": os.getpid()}

"""vae_lib.sweep: jobs on an executor, results as they finish, failures reported not raised."""

import concurrent.futures as cf
import math

import pytest

from vae_lib.sweep import Job, local_executor, run_sweep


def test_local_processes_run_every_job_and_report_failures():
    jobs = [Job("six", math.factorial, (6,)), Job("bad", math.sqrt, (-1.0,)), Job("pow", pow, (2, 10))]
    seen = []
    results = {r.name: r for r in run_sweep(jobs, local_executor(2), on_result=seen.append)}
    assert results["six"].value == 720 and results["six"].error is None
    assert results["pow"].value == 1024
    assert results["bad"].value is None and isinstance(results["bad"].error, ValueError)
    assert sorted(r.name for r in seen) == ["bad", "pow", "six"]


def test_any_executor_works():
    with cf.ThreadPoolExecutor(2) as pool:
        values = {r.name: r.value for r in run_sweep([Job(str(n), math.factorial, (n,)) for n in range(5)], pool)}
    assert values == {str(n): math.factorial(n) for n in range(5)}


def test_names_must_be_unique():
    with pytest.raises(ValueError, match="unique"):
        list(run_sweep([Job("a", abs, (1,)), Job("a", abs, (2,))], cf.ThreadPoolExecutor(1)))


def test_a_dask_cluster_runs_the_sweep_and_a_killed_worker_costs_only_its_last_steps(tmp_path):
    """On a Dask LocalCluster of two worker processes: one worker is killed mid-job; Dask reschedules
    the job, which resumes from its checkpoint instead of starting over."""
    import json
    import os
    import signal
    import threading
    import time

    distributed = pytest.importorskip("distributed")
    from vae_lib.sweep import counting_job

    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None) as cluster, \
            distributed.Client(cluster) as client:
        paths = [tmp_path / "a.json", tmp_path / "b.json"]
        jobs = [Job(p.stem, counting_job, (str(p), 60, 0.05)) for p in paths]
        results = {}
        thread = threading.Thread(target=lambda: results.update({r.name: r for r in run_sweep(jobs, client.get_executor())}))
        thread.start()
        deadline = time.time() + 60
        while not (paths[0].exists() and json.loads(paths[0].read_text())["count"] >= 15) and time.time() < deadline:
            time.sleep(0.05)
        victim = json.loads(paths[0].read_text())["pid"]
        os.kill(victim, signal.SIGKILL)                     # the worker running job "a" dies mid-run
        thread.join(timeout=120)
    assert not thread.is_alive(), "the sweep did not finish after the worker was lost"
    a, b = results["a"], results["b"]
    assert a.error is None and b.error is None, (a.error, b.error)
    assert a.value["count"] == 60 and b.value["count"] == 60
    assert a.value["pid"] != victim and 15 <= a.value["resumed_from"] < 60, a.value   # resumed, not restarted

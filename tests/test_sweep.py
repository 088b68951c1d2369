"""vae_lib.base.sweep: jobs on an executor, results as they finish, failures reported not raised."""

import concurrent.futures as cf
import math

import pytest

from vae_lib.base.sweep import Job, local_executor, run_sweep


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
    from vae_lib.base.sweep import counting_job

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


def _talk(message: str, time_limit=None) -> dict:
    import sys

    print(message)
    print("progress", file=sys.stderr)
    return {"time_limit": time_limit}


def test_a_logged_call_writes_its_output_to_its_log_and_honours_the_deadline(tmp_path):
    import time

    from vae_lib.base.sweep import logged_call

    log = tmp_path / "logs" / "run.log"
    out = logged_call(str(log), time.time() + 3600, _talk, {"message": "hello"})
    assert 3500 < out["time_limit"] <= 3600
    assert log.read_text().splitlines() == ["hello", "progress"]
    assert logged_call(str(log), None, _talk, {"message": "again"})["time_limit"] is None
    skipped = logged_call(str(log), time.time() + 60, _talk, {"message": "late"})   # less than 5 minutes left
    assert "skipped" in skipped and "late" not in log.read_text()


def test_a_figure2_run_is_a_sweep_job_on_a_local_process(tmp_path, frey):
    """scripts/figure2.py's jobs: the run trains in a worker process through vae_lib.base.sweep, its curve and log land
    where asked, and a second sweep resumes it from its checkpoint."""
    from vae_lib.runs.paper_runs import figure2_job
    from vae_lib.base.sweep import logged_call

    kwargs = dict(dataset="frey", algorithm="aevb", latent_dim=2, samples=300, curves_dir=str(tmp_path / "c"),
                  checkpoint_dir=str(tmp_path / "k"), threads=1, device="cpu")
    job = Job("fig2_frey_aevb_z2", logged_call, (str(tmp_path / "run.log"), None, figure2_job, kwargs))
    (first,) = run_sweep([job], local_executor(1))
    assert first.error is None and first.value["samples"] >= 300, first
    (second,) = run_sweep([job._replace(args=(job.args[0], None, figure2_job, {**kwargs, "samples": 600}))], local_executor(1))
    assert second.value["samples"] >= 600 and (tmp_path / "c" / "fig2_frey_aevb_z2.json").exists()
    assert "fig2_frey_aevb_z2" in (tmp_path / "run.log").read_text()


def test_run_and_report_prints_a_line_per_job_and_returns_the_failures(capsys):
    from vae_lib.base.sweep import run_and_report

    jobs = [Job("ok", abs, (-3,)), Job("bad", math.sqrt, (-1.0,)),
            Job("skip", dict, ({"skipped": "2.0 minutes before the deadline"},))]   # what logged_call returns late
    failed = run_and_report(jobs, cf.ThreadPoolExecutor(2), lambda v: f"value {v}")
    out = capsys.readouterr().out
    assert failed == ["bad"]
    assert "finished ok: value 3" in out and "FAILED bad" in out and "not started skip: 2.0 minutes" in out

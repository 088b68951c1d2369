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

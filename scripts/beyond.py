"""Train and score the runs of the part *Beyond the paper* (vae_lib.beyond): the KL weight, its
schedules and free bits, the β sweep, and VAE / IWAE with k = 1, 5, 50 — as one sweep
(vae_lib.sweep) on local processes or, with --cluster, on a Dask cluster.

    python scripts/beyond.py                      # every run, one process per core
    python scripts/beyond.py iwae_k50 vae_k50     # only these
    python scripts/beyond.py --list               # what exists, and how far each run got
    python scripts/beyond.py --cluster tcp://scheduler:8786   # on a Dask cluster's workers

Checkpoints go to checkpoints/beyond/<name>.pt (every epoch: a stopped run resumes where it was),
scores to results/beyond/<name>.json. Each worker uses --threads torch threads.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
CHECKPOINTS = ROOT / "checkpoints" / "beyond"
RESULTS = ROOT / "results" / "beyond"


def list_runs() -> None:
    from vae_lib.beyond import RUNS, read_scores, run_paths
    from vae_lib.train import read_checkpoint

    for name, run in RUNS.items():
        checkpoint, scores = run_paths(name, CHECKPOINTS, RESULTS)
        done = len(read_checkpoint(checkpoint)["history"]["epoch"]) if checkpoint.exists() else 0
        line = f"{name:16s} {done:3d}/{run.train.epochs} epochs"
        if scores.exists():
            s = read_scores(scores, name)
            line += f"  log p(x) {sum(s['log_px']) / len(s['log_px']):8.2f} (K={s['k_eval']})  active units {s['active_units']}"
        print(line)


def main(argv: list[str] | None = None) -> int:
    from vae_lib.beyond import RUNS, train_and_score
    from vae_lib.sweep import Job, cluster_executor, local_executor, run_sweep

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("runs", nargs="*", help=f"run names (default: all): {', '.join(RUNS)}")
    parser.add_argument("--list", action="store_true", help="show how far each run got, and stop")
    parser.add_argument("--jobs", type=int, default=2, help="local worker processes (default 2)")
    parser.add_argument("--threads", type=int, default=1, help="torch threads per worker (default 1)")
    parser.add_argument("--cluster", metavar="ADDRESS", help="a Dask scheduler's address: run the jobs on its workers")
    parser.add_argument("--device", default="cpu", choices=["cpu", "cuda"])
    parser.add_argument("--data-dir", default=None, help="data root (default: $VAE_DATA_DIR)")
    args = parser.parse_args(argv)
    if args.list:
        list_runs()
        return 0
    names = args.runs or list(RUNS)
    unknown = [n for n in names if n not in RUNS]
    if unknown:
        parser.error(f"unknown runs {unknown}; choose from {list(RUNS)}")
    if args.jobs < 1 or args.threads < 1:
        parser.error("--jobs and --threads must be at least 1")
    # the most expensive runs first, so the sweep's end is not one long run on one core
    names.sort(key=lambda n: -RUNS[n].train.n_samples * RUNS[n].train.epochs)
    executor = cluster_executor(args.cluster) if args.cluster else local_executor(args.jobs)
    jobs = [Job(n, train_and_score, (n, str(CHECKPOINTS), str(RESULTS), args.data_dir, args.device, False, args.threads))
            for n in names]
    t0, failed = time.perf_counter(), 0
    for result in run_sweep(jobs, executor):
        if result.error is not None:
            failed += 1
            print(f"[{time.perf_counter() - t0:7.0f} s] {result.name}: FAILED: {result.error!r}", flush=True)
        else:
            v = result.value
            print(f"[{time.perf_counter() - t0:7.0f} s] {v['name']}: {v['epochs']} epochs, test bound "
                  f"{v['test_bound']:.2f}, {v['train_seconds']:.0f} s of training, {v['seconds']:.0f} s in this call",
                  flush=True)
    executor.shutdown()
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())

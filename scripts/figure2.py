"""Train the paper's Figure 2 runs (vae_lib.runs.paper_runs): AEVB and wake-sleep at every latent size,
MNIST and Frey Face, as resumable runs whose curves land in results/figure2/*.json.

    python scripts/figure2.py --samples 1e7                        # every run, 2 at a time
    python scripts/figure2.py --dataset mnist --algorithm aevb --latents 3 5 --samples 1e7
    python scripts/figure2.py --list                               # what exists, and how far each run got
    python scripts/figure2.py --finalize                           # curves from the checkpoints, with standard errors

The runs are one sweep (vae_lib.base.sweep): ``--jobs`` local worker processes with ``--threads`` torch
threads each, or the workers of a Dask cluster (``--cluster ADDRESS``); logs go to
runs/figure2/<name>.log, checkpoints to checkpoints/figure2/<name>.pt. Run it again with a larger
--samples to lengthen every run from where it stopped: same step size, same random stream.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from vae_lib.base.committed import (CommittedResultError, add_replace_option, apply_replace_option,
                                    check_run_goes_further)

ROOT = Path(__file__).resolve().parents[1]
CURVES = ROOT / "results" / "figure2"
CHECKPOINTS = ROOT / "checkpoints" / "figure2"
LOGS = ROOT / "runs" / "figure2"


def list_runs() -> None:
    from vae_lib.runs.paper_runs import read_curve
    from vae_lib.runs.figure2_setup import figure2_runs

    for run in figure2_runs():
        path = CURVES / f"{run.name}.json"
        if path.exists():
            c = read_curve(path, run)
            print(f"{run.name:28s} {c['samples_seen'][-1]:10.3g} samples  test {c['test_bound'][-1]:9.2f}  "
                  f"{c['seconds'][-1] / 60:6.1f} min  {c['devices'][-1]['device']}")
        else:
            print(f"{run.name:28s} not started")


def main(argv: list[str] | None = None) -> int:
    from vae_lib.base.params import cluster_address, device_name, positive_int, sample_count, time_of_day

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dataset", nargs="+", default=["mnist", "frey"], choices=["mnist", "frey"])
    parser.add_argument("--algorithm", nargs="+", default=["aevb", "wake_sleep"], choices=["aevb", "wake_sleep"])
    parser.add_argument("--latents", nargs="+", type=positive_int, default=None, help="latent sizes (default: the paper's)")
    parser.add_argument("--holdout", default="random", choices=["random", "contiguous"],
                        help="Frey Face's held-out frames: 200 random ones (default) or the video's last 200")
    parser.add_argument("--samples", type=sample_count, default=10 ** 7, help="training samples per run (default 1e7)")
    parser.add_argument("--jobs", type=positive_int, default=2, help="local worker processes (default 2: one per core here)")
    parser.add_argument("--cluster", type=cluster_address, metavar="ADDRESS", help="a Dask scheduler's address: run the jobs on its workers")
    parser.add_argument("--threads", type=positive_int, default=1, help="torch threads per run")
    parser.add_argument("--device", type=device_name, default=None, help="cpu or cuda (default: cuda when present)")
    parser.add_argument("--list", action="store_true", help="list the runs and how far each got, then stop")
    parser.add_argument("--finalize", action="store_true",
                        help="rewrite every curve from its checkpoint, with the standard error of its last test bound")
    parser.add_argument("--runs", nargs="+", default=None, metavar="NAME",
                        help="run exactly these runs, in this order (names as --list prints them)")
    parser.add_argument("--out", type=Path, default=None, metavar="DIR",
                        help="write curves to DIR, checkpoints to DIR/checkpoints and logs to DIR/logs "
                             "(default: results/figure2, checkpoints/figure2, runs/figure2)")
    add_replace_option(parser)
    parser.add_argument("--until", type=time_of_day, default=None, metavar="HH:MM",
                        help="stop every run, resumably, at this local time; start none with less than 5 minutes left")
    args = parser.parse_args(argv)
    apply_replace_option(args)
    curves_dir, checkpoints_dir, logs_dir = ((args.out, args.out / "checkpoints", args.out / "logs") if args.out
                                             else (CURVES, CHECKPOINTS, LOGS))
    if args.list:
        list_runs()
        return 0
    if args.finalize:
        import torch

        from vae_lib.runs.paper_runs import finalize_curve
        from vae_lib.runs.figure2_setup import PaperRun, figure2_runs
        torch.set_num_threads(args.threads)
        runs = figure2_runs() if args.holdout == "random" else [
            PaperRun(r.dataset, r.algorithm, r.latent_dim, args.holdout) for r in figure2_runs(("frey",))]
        for run in runs:
            if (checkpoints_dir / f"{run.name}.pt").exists():
                c = finalize_curve(run, curves_dir, checkpoints_dir)
                print(f"{run.name}: {c['samples_seen'][-1]:.3g} samples, test {c['test_bound'][-1]:.2f} "
                      f"± {c['test_bound_se']:.2f}{'' if c['finished'] else ' (stopped before its end)'}")
        return 0
    samples = args.samples
    from vae_lib.runs.paper_runs import figure2_job
    from vae_lib.runs.figure2_setup import FIGURE2_LATENTS, PaperRun, figure2_runs
    from vae_lib.base.sweep import Job, cluster_executor, local_executor, logged_call, run_and_report
    from vae_lib.base.utils import clock_deadline

    if args.holdout != "random" and args.dataset != ["frey"]:
        parser.error("--holdout contiguous is for Frey Face only: add --dataset frey")
    runs = [PaperRun(d, a, j, args.holdout) for d in args.dataset for a in args.algorithm
            for j in (args.latents or FIGURE2_LATENTS[d]) if args.latents is None or j in args.latents]
    if args.runs:
        by_name = {r.name: r for r in figure2_runs()}
        unknown = [n for n in args.runs if n not in by_name]
        if unknown:
            parser.error(f"unknown runs {unknown}; see --list")
        runs = [by_name[n] for n in args.runs]
    stop_at = clock_deadline(args.until) if args.until else None
    if not runs:
        parser.error("no run matches these options")
    for run in runs:   # refuse before training, not after: a run that would end short of its committed curve
        try:
            check_run_goes_further(curves_dir / f"{run.name}.json", samples)
        except CommittedResultError as err:
            parser.error(str(err))
    jobs = [Job(run.name, logged_call, (str(logs_dir / f"{run.name}.log"), stop_at, figure2_job,
                                         dict(dataset=run.dataset, algorithm=run.algorithm, latent_dim=run.latent_dim, holdout=run.holdout,
                                              samples=samples, curves_dir=str(curves_dir), checkpoint_dir=str(checkpoints_dir),
                                              threads=args.threads, device=args.device)))
            for run in runs]
    try:
        executor = cluster_executor(args.cluster) if args.cluster else local_executor(args.jobs)
    except (OSError, ValueError) as err:
        parser.error(str(err))
    print(f"{len(jobs)} runs on {'the cluster at ' + args.cluster if args.cluster else f'{args.jobs} local processes'} "
          f"(logs: {logs_dir}/<name>.log)", flush=True)
    failed = run_and_report(jobs, executor, lambda v: f"{v['samples']:.3g} samples, test {v['test']:.2f}")
    if failed:
        print(f"failed: {failed} (see their logs)", file=sys.stderr)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())

"""Train the paper's Figure 3 runs (vae_lib.runs.figure3): AEVB, wake-sleep and Monte Carlo EM, N_z = 3,
100 hidden units, on 1000 and 50000 MNIST training images, as resumable runs whose curves (exact
log p(x) of train and test images) land in results/figure3/*.json.

    python scripts/figure3.py --measure                            # CPU cost per 10^5 samples and per quadrature
    python scripts/figure3.py --samples 2e7                        # lengthen the book's six runs (committed checkpoints)
    python scripts/figure3.py --samples 1e7 --n-train 1000         # the small-set runs only
    python scripts/figure3.py --algorithm mcem --n-train 50000 --samples 1e6 --until 06:00
    python scripts/figure3.py --list                               # how far every run got
    python scripts/figure3.py --convert-checkpoints                # the former driver's checkpoints, converted once
    python scripts/figure3.py --step-size-sweep                    # the paper's step-size rule on all six runs
    python scripts/figure3.py --step-size rule --algorithm aevb --evals-per-decade 1   # retrain at the rule's pick
    python scripts/figure3.py --step-size rule --algorithm mcem --n-train 50000 --first-eval 1e6 --evals-per-decade 1

The runs are one sweep (vae_lib.base.sweep): ``--jobs`` local worker processes (default 1: this machine
has 2 cores) with ``--threads`` torch threads each, or the workers of a Dask cluster (``--cluster
ADDRESS``); logs go to runs/figure3/<name>.log, checkpoints to checkpoints/figure3/<name>.pt. Run it
again with a larger --samples to lengthen every run from where it stopped. With ``--step-size rule`` a run
trains at the step size the paper's rule picked for it (results/figure3/step_size_sweep.json) instead of
the book's 0.02, into results/figure3_rule and checkpoints/figure3_rule (its logs: runs/figure3_rule).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

from vae_lib.base.committed import (CommittedResultError, add_replace_option, apply_replace_option,
                                    check_run_goes_further)

ROOT = Path(__file__).resolve().parents[1]
CURVES = ROOT / "results" / "figure3"
CHECKPOINTS = ROOT / "checkpoints" / "figure3"
LOGS = ROOT / "runs" / "figure3"
RULE_CURVES, RULE_CHECKPOINTS, RULE_LOGS = (ROOT / "results" / "figure3_rule", ROOT / "checkpoints" / "figure3_rule",
                                            ROOT / "runs" / "figure3_rule")


def step_size_sweep(algorithms: list[str], sizes: list[int], threads: int, out: Path) -> dict:
    """vae_lib.runs.figure3_cost.step_size_sweep on every selected run, written to ``out`` after each (resumable)."""
    import torch

    from vae_lib.runs.figure3 import LR, Figure3Run
    from vae_lib.runs.figure3_cost import SWEEP_FORMAT, read_step_size_sweep
    from vae_lib.runs.figure3_cost import step_size_sweep as sweep
    from vae_lib.base.run_files import write_json

    torch.set_num_threads(threads)
    result = read_step_size_sweep(out) if out.exists() else {"format": SWEEP_FORMAT, "used": LR, "runs": {}}
    for n in sizes:
        for a in algorithms:
            run = Figure3Run(a, n)
            if run.name in result["runs"]:
                continue
            t0 = time.perf_counter()
            scores = sweep(run, n_eval=25)
            result["runs"][run.name] = {str(k): v for k, v in scores.items()}
            result["written"] = time.strftime("%Y-%m-%d %H:%M:%S")
            write_json(out, result)
            best = max(scores, key=scores.get)
            print(f"{run.name}: " + ", ".join(f"{k}: {v:.2f}" for k, v in scores.items())
                  + f" -> the rule picks {best} ({time.perf_counter() - t0:.0f} s)", flush=True)
    return result


def measure(threads: int, out: Path | None) -> dict:
    """Seconds per 10^5 training samples of each algorithm at n_train = 1000 (after 20 warm-up
    minibatches, over 100 minibatches), and seconds per image of the exact log p(x) of 100 test
    images for a model trained 10^5 samples by AEVB and by MCEM."""
    import torch

    from vae_lib.runs.figure3 import Figure3Run, train_figure3_run
    from vae_lib.runs.figure3_scoring import exact_log_likelihood
    from vae_lib.base.run_files import write_json

    torch.set_num_threads(threads)
    import tempfile
    result = {"device": "cpu", "threads": threads}
    with tempfile.TemporaryDirectory() as tmp:
        for algorithm in ("aevb", "wake_sleep", "mcem"):
            run = Figure3Run(algorithm, 1000)
            train_figure3_run(run, 2000, tmp, tmp, n_eval=2, first_eval=10 ** 9, is_k=0)
            c0 = json.loads((Path(tmp) / f"{run.name}.json").read_text())
            curve = train_figure3_run(run, 12000, tmp, tmp, n_eval=2, first_eval=10 ** 9, is_k=0)
            per = (curve["train_seconds"] - c0["train_seconds"]) / 10000 * 1e5
            result[f"{algorithm}_s_per_1e5_samples"] = round(per, 2)
            print(f"{algorithm}: {per:.2f} s per 10^5 samples", flush=True)
            if algorithm in ("aevb", "mcem"):
                from vae_lib.runs.figure3 import figure3_data, load_figure3_model
                _, _, test_eval = figure3_data(1000, 100)
                model, _ = load_figure3_model(run, tmp)
                t0 = time.perf_counter()
                q = exact_log_likelihood(model, test_eval, algorithm)
                sec = (time.perf_counter() - t0) / len(test_eval)
                result[f"quadrature_s_per_image_{algorithm}_model"] = round(sec, 4)
                result[f"quadrature_max_change_{algorithm}_model"] = q["max_change"]
                print(f"quadrature ({algorithm} model after 1.2e4 samples): {sec:.3f} s per image, "
                      f"log p(x) {q['mean']:.2f}, largest last change {q['max_change']:.2g}", flush=True)
    if out is not None:
        write_json(out, result)
    return result


def start_from(runs: list[tuple[str, int]], src_curves: Path, src_checkpoints: Path, curves: Path,
               checkpoints: Path) -> None:
    """Copy each run's curve and checkpoint from the source folders where this run has no curve yet
    (the curve keeps its device history; the resumed run appends the new device)."""
    import shutil

    for algorithm, n in runs:
        name = f"fig3_{algorithm}_n{n}"
        src_c, src_k = src_curves / f"{name}.json", src_checkpoints / f"{name}.pt"
        if (curves / f"{name}.json").exists():
            print(f"{name}: has a curve in {curves}; resuming that one")
            continue
        if not (src_c.exists() and src_k.exists()):
            raise SystemExit(f"--start-from: {src_c} or {src_k} is missing")
        curves.mkdir(parents=True, exist_ok=True)
        checkpoints.mkdir(parents=True, exist_ok=True)
        shutil.copy2(src_c, curves / src_c.name)
        shutil.copy2(src_k, checkpoints / src_k.name)
        print(f"{name}: starts from {src_c} ({json.loads(src_c.read_text())['samples_seen']:.3g} samples)")


def list_runs(curves: Path) -> None:
    from vae_lib.runs.figure3 import figure3_runs
    from vae_lib.runs.figure3_curves import read_curve

    for run in figure3_runs():
        path = curves / f"{run.name}.json"
        if not path.exists():
            print(f"{run.name:24s} not started")
            continue
        c = read_curve(path, run)
        last = c["points"][-1] if c["points"] else None
        print(f"{run.name:24s} {c['samples_seen']:10.3g} samples  " +
              (f"train {last['train']['mean']:8.2f}  test {last['test']['mean']:8.2f}  " if last else "") +
              f"{c['train_seconds'] / 60:6.1f} min  {c['devices'][-1]['device']}")


def main(argv: list[str] | None = None) -> int:
    from vae_lib.base.params import cluster_address, device_name, existing_dir, positive_int, sample_count, time_of_day

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--algorithm", nargs="+", default=["aevb", "wake_sleep", "mcem"],
                        choices=["aevb", "wake_sleep", "mcem"])
    parser.add_argument("--n-train", nargs="+", type=int, default=[1000, 50000], choices=[1000, 50000])
    parser.add_argument("--samples", type=sample_count, default=10 ** 7, help="training samples per run (default 1e7)")
    parser.add_argument("--n-eval", type=positive_int, default=500,
                        help="train and test images in the exact log p(x) (default 500, the book's runs; a run keeps its own)")
    parser.add_argument("--evals-per-decade", type=positive_int, default=4,
                        help="evaluation points per decade of training samples (default 4; each costs 2 x n_eval quadratures)")
    parser.add_argument("--first-eval", type=sample_count, default=10 ** 4,
                        help="training samples at the first evaluation point (default 1e4, the book's runs; later points "
                             "follow the grid first-eval x 10^(i / evals-per-decade))")
    parser.add_argument("--start-from", nargs=2, type=existing_dir, metavar=("CURVES", "CHECKPOINTS"),
                        help="a run with no curve here starts from its curve and checkpoint in these folders "
                             "(e.g. the folders a GPU call returned)")
    parser.add_argument("--jobs", type=positive_int, default=1, help="local worker processes (default 1)")
    parser.add_argument("--cluster", type=cluster_address, metavar="ADDRESS", help="a Dask scheduler's address: run the jobs on its workers")
    parser.add_argument("--threads", type=positive_int, default=1, help="torch threads per run")
    parser.add_argument("--device", type=device_name, default=None, help="cpu or cuda (default: cuda when present)")
    parser.add_argument("--curves", default=str(CURVES), help="curve folder (default results/figure3)")
    parser.add_argument("--checkpoints", default=str(CHECKPOINTS), help="checkpoint folder")
    parser.add_argument("--list", action="store_true", help="list the runs and how far each got, then stop")
    parser.add_argument("--measure", action="store_true", help="measure the CPU costs and stop")
    parser.add_argument("--step-size-sweep", action="store_true",
                        help="apply the paper's step-size rule to the selected runs (results/figure3/step_size_sweep.json) and stop")
    parser.add_argument("--step-size", choices=["book", "rule"], default="book",
                        help="book: Adagrad's step size 0.02 for every run (the book's runs); rule: each run's pick by the "
                             "paper's rule (results/figure3/step_size_sweep.json), into results/figure3_rule and "
                             "checkpoints/figure3_rule unless --curves / --checkpoints say otherwise")
    add_replace_option(parser)
    parser.add_argument("--until", type=time_of_day, default=None, metavar="HH:MM", help="stop every run, resumably, at this local time")
    parser.add_argument("--convert-checkpoints", action="store_true",
                        help="convert the --checkpoints folder's checkpoints written by Figure 3's former driver into the "
                             "one driver's format (each step size read from its curve in --curves), then stop")
    args = parser.parse_args(argv)
    apply_replace_option(args)
    for option in ("curves", "checkpoints"):
        if not str(getattr(args, option)).strip():
            parser.error(f"argument --{option}: must be a folder, got an empty path")
    rule = args.step_size == "rule"
    if rule:   # the rule's runs live beside the book's, never over them
        args.curves = str(RULE_CURVES) if args.curves == str(CURVES) else args.curves
        args.checkpoints = str(RULE_CHECKPOINTS) if args.checkpoints == str(CHECKPOINTS) else args.checkpoints
    curves, checkpoints = Path(args.curves), Path(args.checkpoints)
    if args.measure:
        measure(args.threads, ROOT / "results" / "figure3" / "cost_cpu.json")
        return 0
    if args.list:
        list_runs(curves)
        return 0
    if args.convert_checkpoints:
        from vae_lib.runs.figure3_convert import convert_folder

        converted = convert_folder(checkpoints, curves)
        for c in converted:
            print(f"{c['run']}: converted at {c['samples']:.4g} samples ({c['epochs_done']} epochs done, "
                  f"{c['position']} images into the next)")
        print(f"{len(converted)} checkpoint(s) converted in {checkpoints}")
        return 0
    if args.step_size_sweep:
        step_size_sweep(args.algorithm, args.n_train, args.threads, CURVES / "step_size_sweep.json")
        return 0
    samples = int(args.samples)
    from vae_lib.base.utils import clock_deadline

    stop_at = clock_deadline(args.until) if args.until else None
    if args.first_eval < 100:
        parser.error(f"argument --first-eval: must be a whole number ≥ 100 of samples (one minibatch), got {args.first_eval}")
    runs = [(a, n) for n in args.n_train for a in args.algorithm]
    for a, n in runs:   # refuse before training: a run that would end short of (or equal to) its committed curve
        try:
            check_run_goes_further(curves / f"fig3_{a}_n{n}.json", samples, elsewhere="--curves DIR --checkpoints DIR")
        except CommittedResultError as err:
            parser.error(str(err))
    if args.start_from:
        start_from(runs, Path(args.start_from[0]), Path(args.start_from[1]), curves, checkpoints)
    from vae_lib.runs.figure3 import LR, Figure3Run, figure3_job
    from vae_lib.runs.figure3_cost import read_step_size_sweep, rule_step_size
    from vae_lib.base.sweep import Job, cluster_executor, local_executor, logged_call, run_and_report

    sweep = read_step_size_sweep(CURVES / "step_size_sweep.json") if rule else {}
    step = {(a, n): rule_step_size(sweep, Figure3Run(a, n)) if rule else LR for a, n in runs}
    logs = RULE_LOGS if rule else LOGS
    jobs = [Job(f"fig3_{a}_n{n}", logged_call, (str(logs / f"fig3_{a}_n{n}.log"), stop_at, figure3_job,
                                                 dict(algorithm=a, n_train=n, samples=samples, curves_dir=str(curves),
                                                      checkpoint_dir=str(checkpoints), threads=args.threads,
                                                      device=args.device, n_eval=args.n_eval,
                                                      evals_per_decade=args.evals_per_decade, lr=step[a, n],
                                                      first_eval=int(args.first_eval)), 120.0))
            for a, n in runs]
    if rule:
        print("step sizes by the paper's rule: " + ", ".join(f"fig3_{a}_n{n} {step[a, n]:g}" for a, n in runs), flush=True)
    try:
        executor = cluster_executor(args.cluster) if args.cluster else local_executor(args.jobs)
    except (OSError, ValueError) as err:
        parser.error(str(err))
    failed = run_and_report(jobs, executor, lambda v: f"{v['samples']:.3g} samples")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())

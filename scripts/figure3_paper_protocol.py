"""Score every Figure 3 run's last checkpoint under the paper's own protocol (vae_lib.runs.paper_protocol):
Appendix D with L = 50 and 4 leapfrog steps on the first 1000 training and the first 1000 test images,
and the same estimator on the book's 500 random test images (paired with the curves' quadrature).

    python scripts/figure3_paper_protocol.py            # every run not yet scored, to results/figure3/paper_protocol.json
    python scripts/figure3_paper_protocol.py --force --out /tmp/pp.json   # score all runs again, elsewhere
    python scripts/figure3_paper_protocol.py --force --replace            # ... over the committed file, on purpose
    python scripts/figure3_paper_protocol.py --curves results/figure3_rule --checkpoints checkpoints/figure3_rule \\
        --out results/figure3_rule/paper_protocol.json --runs fig3_aevb_n50000   # a run retrained at the paper's
                                                                                  # step-size rule

``--curves`` and ``--checkpoints`` name the folders of the runs' curves and checkpoints (default
results/figure3 and checkpoints/figure3); ``--out`` defaults to paper_protocol.json in the curves' folder.
Without ``--runs``, every Figure 3 run with a curve in the curves' folder is scored (the others are named
and skipped); a run named with ``--runs`` must have its curve and its checkpoint there. Each entry records
the run's step size (from its curve) beside its samples.

Resumable: each run is written to the file as soon as it is scored. With ``--force`` the runs are scored
afresh and the file is written once, when every run has been scored: a run stopped half-way leaves the file
as it was. About 1.5 to 3 minutes per run on one CPU core.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import torch

from vae_lib.base.committed import add_replace_option, apply_replace_option, is_committed, replace_allowed
from vae_lib.base.run_files import write_json
from vae_lib.model.data import load_mnist
from vae_lib.model.pixels import fixed_binarization
from vae_lib.runs.figure3 import figure3_data, figure3_runs, load_figure3_model
from vae_lib.runs.figure3_curves import curve_path, read_curve
from vae_lib.runs.paper_protocol import score_paper_protocol

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_CURVES = ROOT / "results" / "figure3"
DEFAULT_CHECKPOINTS = ROOT / "checkpoints" / "figure3"
OUT_NAME = "paper_protocol.json"


def parse_args(argv: list[str] | None = None) -> tuple[argparse.Namespace, list]:
    """The options, checked, and the runs to score (Figure 3 runs, in the usual order). Refused with a
    usage error (exit status 2) before anything is scored: a curves or checkpoints folder that does not
    exist, an unknown run, a named run without its curve or checkpoint, a folder without any curve, an
    ``--out`` that is a folder, a file that is not this script's to add to, a held entry scored at another
    step size than the named curve's, and ``--force`` over a committed file without ``--replace``.
    ``args.curves``, ``args.checkpoints`` and ``args.out`` are Paths."""
    from vae_lib.base.params import existing_dir, positive_int

    names = [r.name for r in figure3_runs()]
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--force", action="store_true", help="score runs already in the file again")
    parser.add_argument("--threads", type=positive_int, default=1, help="torch threads (default 1)")
    parser.add_argument("--data-dir", type=existing_dir, default=None)
    parser.add_argument("--curves", type=existing_dir, default=None,
                        help="the folder of the runs' curves (default results/figure3)")
    parser.add_argument("--checkpoints", type=existing_dir, default=None,
                        help="the folder of the runs' checkpoints (default checkpoints/figure3)")
    parser.add_argument("--runs", nargs="+", metavar="RUN", default=None,
                        help="only these runs (default: every run with a curve in --curves); "
                             f"the runs are {' '.join(names)}")
    parser.add_argument("--out", type=Path, default=None,
                        help=f"the result file (default {OUT_NAME} in the curves' folder: results/figure3/{OUT_NAME})")
    add_replace_option(parser)
    args = parser.parse_args(argv)
    apply_replace_option(args)
    args.curves = Path(args.curves) if args.curves else DEFAULT_CURVES
    args.checkpoints = Path(args.checkpoints) if args.checkpoints else DEFAULT_CHECKPOINTS
    if args.out is None:
        args.out = args.curves / OUT_NAME
    out = args.out
    if not str(out).strip() or out.is_dir():
        parser.error(f"argument --out: must be a file, got {str(out)!r}")

    if args.runs is not None:
        unknown = [n for n in args.runs if n not in names]
        if unknown:
            parser.error(f"argument --runs: unknown runs {' '.join(unknown)}; the runs are {' '.join(names)}")
    held = None
    if out.exists() and not args.force:   # resumable: only a file of this script's may be added to
        try:
            held = json.loads(out.read_text())
        except ValueError:
            held = None
        if not (isinstance(held, dict) and set(held) <= set(names) and all(isinstance(v, dict) and "samples" in v
                                                                           for v in held.values())):
            parser.error(f"argument --out: {out} is not a paper-protocol file (one entry per Figure 3 run): "
                         "it is not added to; give another file")
    if args.force and out.exists() and is_committed(out) and not replace_allowed():
        parser.error(f"--force scores every run again over the committed {out}: write elsewhere with --out FILE, "
                     "or replace it on purpose with --force --replace")

    if args.runs is not None:
        runs = [r for r in figure3_runs() if r.name in args.runs]
        missing = [str(curve_path(r, args.curves)) for r in runs if not curve_path(r, args.curves).exists()]
        if missing:
            parser.error(f"argument --runs: no curve {' '.join(missing)} "
                         f"(the curves' folder is --curves {args.curves})")
    else:
        runs = [r for r in figure3_runs() if curve_path(r, args.curves).exists()]
        if not runs:
            parser.error(f"argument --curves: {args.curves} holds no Figure 3 curve (fig3_<algorithm>_n<size>.json)")
        for r in figure3_runs():
            if r not in runs:
                print(f"{r.name}: no curve in {args.curves}: skipped")
    held = held or {}
    missing = [str(args.checkpoints / f"{r.name}.pt") for r in runs
               if r.name not in held and not (args.checkpoints / f"{r.name}.pt").exists()]
    if missing:
        parser.error(f"argument --checkpoints: no checkpoint {' '.join(missing)} (the checkpoints' folder is "
                     f"--checkpoints {args.checkpoints}); name fewer runs with --runs")
    for r in runs:   # a run held from another folder (another step size) is not taken for this one's
        step = held.get(r.name, {}).get("step_size")
        if step is not None:
            mine = read_curve(curve_path(r, args.curves), r).get("step_size")
            if mine is not None and float(mine) != float(step):
                parser.error(f"argument --out: {out} holds {r.name} scored at step size {step:g}, but its curve "
                             f"in {args.curves} ran at {float(mine):g}: give another file, or --force")
    return args, runs


def main(argv: list[str] | None = None) -> int:
    args, runs = parse_args(argv)
    torch.set_num_threads(args.threads)
    out = args.out
    done = json.loads(out.read_text()) if out.exists() and not args.force else {}
    test_file = fixed_binarization(load_mnist("test", args.data_dir, "cpu").x, seed=0)      # file order
    for run in runs:
        if run.name in done:
            print(f"{run.name}: already scored")
            continue
        curve = read_curve(curve_path(run, args.curves), run)
        model, samples = load_figure3_model(run, args.checkpoints)
        last = curve["points"][-1]
        if samples != last["samples"]:
            print(f"{run.name}: the checkpoint ({samples}) is not the curve's last point ({last['samples']}): skipped")
            continue
        train_x, _, test_eval = figure3_data(run.n_train, curve["n_eval"], args.data_dir)
        start = time.perf_counter()
        entry = {"samples": samples}
        if curve.get("step_size") is not None:
            entry["step_size"] = curve["step_size"]
        done[run.name] = {**entry, **score_paper_protocol(model, train_x, test_file, test_eval,
                                                          last["test"].get("values"))}
        done[run.name]["seconds"] = time.perf_counter() - start
        if not args.force:   # resumable: each run joins the file as soon as it is scored
            write_json(out, done, indent=None, replace=True)
        print(f"{run.name}: {done[run.name]['seconds']:.0f} s", flush=True)
    if args.force:   # all or nothing: the file is replaced only by a complete scoring
        write_json(out, done, indent=None, replace=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())

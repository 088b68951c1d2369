"""Re-score the last point of every Figure 3 run where its quadrature did not converge, on finer grids
(vae_lib.runs.figure3_rescore; issue 20, item 2). Chapter 11 reads the result.

    python scripts/figure3_rescore.py            # all six runs, resumable; about an hour on one core
    python scripts/figure3_rescore.py --quick    # one run, 10 images per set, into a temporary file
    python scripts/figure3_rescore.py --curves results/figure3_rule --checkpoints checkpoints/figure3_rule
                                                 # the runs retrained at the paper's step-size rule

Writes results/figure3/rescored.json.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

from vae_lib.base.committed import add_replace_option, apply_replace_option

ROOT = Path(__file__).resolve().parents[1]


def main(argv: list[str] | None = None) -> int:
    from vae_lib.base.params import existing_dir, existing_file, nonnegative_int, positive_int

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="one run, 10 images per set, a temporary file")
    parser.add_argument("--max-finest", type=nonnegative_int, default=0, help="images per set given the finest grids (128³; about 25 s each here)")
    parser.add_argument("--sets", nargs="+", metavar="RUN:PART", help="only these sets, e.g. fig3_mcem_n50000:test")
    parser.add_argument("--out", default=None, help="result file (default results/figure3/rescored.json)")
    parser.add_argument("--merge", nargs="+", type=existing_file, metavar="FILE", help="merge these result files into --out's file and stop")
    parser.add_argument("--curves", type=existing_dir, default=None, help="curve folder (default results/figure3); runs without a curve there are skipped")
    parser.add_argument("--checkpoints", type=existing_dir, default=None, help="checkpoint folder (default checkpoints/figure3)")
    parser.add_argument("--threads", type=positive_int, default=1)
    parser.add_argument("--data-dir", type=existing_dir, default=None)
    add_replace_option(parser)
    args = parser.parse_args(argv)
    apply_replace_option(args)
    bad_sets = [s for s in args.sets or [] if s.count(":") != 1 or s.split(":")[1] not in ("train", "test")
                or not s.split(":")[0]]
    if bad_sets:
        parser.error(f"argument --sets: each set must be RUN:PART with PART train or test, such as "
                     f"fig3_mcem_n50000:test, got {' '.join(bad_sets)}")

    import torch

    from vae_lib.runs.figure3 import figure3_runs
    from vae_lib.runs.figure3_curves import curve_path, read_curve
    from vae_lib.runs.figure3_rescore import merge_rescores, rescore_all

    torch.set_num_threads(args.threads)
    curves_dir = Path(args.curves) if args.curves else ROOT / "results" / "figure3"
    checkpoints = Path(args.checkpoints) if args.checkpoints else ROOT / "checkpoints" / "figure3"
    runs = [r for r in figure3_runs() if curve_path(r, curves_dir).exists()]
    curves = {r.name: read_curve(curve_path(r, curves_dir), r) for r in runs}
    if args.quick:
        with tempfile.TemporaryDirectory() as tmp:
            rescore_all(runs[:1], curves, checkpoints, Path(tmp) / "rescored.json",
                        args.data_dir, max_finest=2, limit=10)
        return 0
    out = Path(args.out) if args.out else curves_dir / "rescored.json"
    unknown = sorted({s.split(":")[0] for s in args.sets or []} - {r.name for r in figure3_runs()})
    if unknown:
        parser.error(f"argument --sets: unknown runs {unknown}; the runs are {[r.name for r in figure3_runs()]}")
    if args.merge:
        try:
            merged = merge_rescores(out, args.merge)
        except (ValueError, KeyError, TypeError) as err:
            parser.error(f"argument --merge: {err}")
        print(f"{out}: " + ", ".join(f"{n} {p}" for n, parts in merged["runs"].items() for p in parts))
        return 0
    sets = [tuple(s.split(":", 1)) for s in args.sets] if args.sets else None
    rescore_all(runs, curves, checkpoints, out, args.data_dir, max_finest=args.max_finest, sets=sets)
    return 0


if __name__ == "__main__":
    sys.exit(main())

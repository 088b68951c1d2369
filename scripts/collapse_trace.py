"""Trace posterior collapse as it happens: re-train the first epochs of runs of *Beyond the paper* and record,
after every epoch, the KL and activity of each latent unit (vae_lib.runs.collapse_trace).

    python scripts/collapse_trace.py --epochs 30                      # beta_1, warmup, free_bits, cyclical
    python scripts/collapse_trace.py --epochs 30 beta_1 free_bits     # only these
    python scripts/collapse_trace.py --epochs 30 --until 23:50        # stop after the whole epochs done by then

Each run is re-trained from its seed with its definition at --budget epochs (default 100: the committed runs of
checkpoints/beyond_e100/), so its first epochs are exactly the committed run's. Writes
results/beyond_e<budget>/collapse_trace.json (--out elsewhere), rewritten after each run. About 4 s per epoch
of each run on one CPU core; one torch thread by default.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from vae_lib.base.committed import add_replace_option, apply_replace_option

ROOT = Path(__file__).resolve().parents[1]
TEST_IMAGES = 10000   # MNIST's test set


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """The command line, checked (argparse exits with status 2 and a message on a bad argument)."""
    from vae_lib.base.params import device_name, existing_dir, positive_int, time_of_day
    from vae_lib.runs.beyond import runs_at
    from vae_lib.runs.collapse_trace import DEFAULT_RUNS, EVAL_IMAGES

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("runs", nargs="*", help=f"run names (default: {' '.join(DEFAULT_RUNS)})")
    parser.add_argument("--epochs", type=positive_int, required=True, help="epochs to trace (at most the budget)")
    parser.add_argument("--budget", type=positive_int, default=100,
                        help="the runs' definition at this budget of epochs (default 100: checkpoints/beyond_e100/)")
    parser.add_argument("--eval-images", type=positive_int, default=EVAL_IMAGES,
                        help=f"seeded random test images the units are measured on (default {EVAL_IMAGES})")
    parser.add_argument("--out", type=Path, default=None,
                        help="the results file (default results/beyond_e<budget>/collapse_trace.json)")
    parser.add_argument("--threads", type=positive_int, default=1, help="torch threads (default 1)")
    parser.add_argument("--device", type=device_name, default="cpu", help="cpu (default), cuda or cuda:N")
    parser.add_argument("--data-dir", type=existing_dir, default=None, help="data root (default: $VAE_DATA_DIR)")
    parser.add_argument("--until", type=time_of_day, default=None, metavar="HH:MM",
                        help="stop at this local time, keeping the whole epochs done (the file says finished: false)")
    add_replace_option(parser)
    args = parser.parse_args(argv)
    args.runs = list(dict.fromkeys(args.runs)) or list(DEFAULT_RUNS)
    known = runs_at(args.budget)
    unknown = [n for n in args.runs if n not in known]
    if unknown:
        parser.error(f"unknown run {unknown[0]!r}; choose from {list(known)}")
    if args.epochs > args.budget:
        parser.error(f"--epochs must be at most the budget ({args.budget}), got {args.epochs}")
    if args.eval_images > TEST_IMAGES:
        parser.error(f"--eval-images must be at most the {TEST_IMAGES} test images, got {args.eval_images}")
    return args


def output_path(args: argparse.Namespace) -> Path:
    """Where the trace is written: --out, else results/beyond_e<budget>/collapse_trace.json."""
    return args.out if args.out is not None else ROOT / "results" / f"beyond_e{args.budget}" / "collapse_trace.json"


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    apply_replace_option(args)
    import torch

    from vae_lib.base.utils import clock_deadline
    from vae_lib.runs.collapse_trace import write_trace

    torch.set_num_threads(args.threads)
    deadline = clock_deadline(args.until) if args.until else None
    path = write_trace(output_path(args), args.runs, args.epochs, args.budget, args.data_dir, args.eval_images,
                       args.device, deadline, log=lambda line: print(line, flush=True))
    print("wrote", path)
    return 0


if __name__ == "__main__":
    sys.exit(main())

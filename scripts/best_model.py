"""Continue the book's best model (vae_lib.runs.best_model): a resumable long run towards the IWAE paper's
one-layer numbers, trained a few hours at a time over many sessions.

    python scripts/best_model.py --until 23:50     # train until then (it stops at an epoch's end), resumably
    python scripts/best_model.py --status          # where it stands: epochs, hours, last test bound
    python scripts/best_model.py --score-all       # its checkpoint scored as the target is: K = 5000, all
                                                   # 10000 test images, to results/best/best_dreg_k5_all.json

The checkpoint is checkpoints/best/best_dreg_k5.pt (every epoch; commit it whenever work stops). One torch
thread by default: the run shares the machine with the rest of the work.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

from vae_lib.base.committed import add_replace_option, apply_replace_option

ROOT = Path(__file__).resolve().parents[1]
CHECKPOINTS = ROOT / "checkpoints" / "best"


def main(argv: list[str] | None = None) -> int:
    from vae_lib.base.params import device_name, existing_dir, positive_int, time_of_day

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--until", type=time_of_day, default=None, metavar="HH:MM",
                        help="stop at this local time (at the end of an epoch), resumably")
    parser.add_argument("--status", action="store_true", help="say where the run stands, and stop")
    parser.add_argument("--score-all", nargs="?", const=ROOT / "results" / "best" / "best_dreg_k5_all.json",
                        default=None, type=Path, metavar="OUT",
                        help="score the checkpoint with K = 5000 on all 10000 test images into OUT (default "
                             "results/best/best_dreg_k5_all.json; a committed file is replaced only with --replace)")
    parser.add_argument("--threads", type=positive_int, default=1, help="torch threads (default 1)")
    parser.add_argument("--device", type=device_name, default="cpu", help="cpu or cuda")
    parser.add_argument("--data-dir", type=existing_dir, default=None, help="data root (default: $VAE_DATA_DIR)")
    parser.add_argument("--checkpoints", type=Path, default=CHECKPOINTS, help="checkpoint folder (default checkpoints/best)")
    add_replace_option(parser)
    args = parser.parse_args(argv)
    apply_replace_option(args)

    from vae_lib.base.utils import clock_deadline
    from vae_lib.runs.best_model import checkpoint_path, describe, status, train_best

    if args.status:
        print(describe(status(args.checkpoints)))
        return 0
    if args.score_all is not None:
        return score_all(args, checkpoint_path(args.checkpoints))
    limit = clock_deadline(args.until) - time.time() if args.until else None
    print(describe(status(args.checkpoints)), flush=True)
    s = train_best(args.checkpoints, args.data_dir, args.device, args.threads, time_limit=limit)
    print(describe(s) + f" ({s['seconds_in_call'] / 60:.0f} min in this call)", flush=True)
    return 0


def score_all(args: argparse.Namespace, checkpoint: Path) -> int:
    """--score-all: the checkpoint scored on all 10000 test images, written to args.score_all, its verdict printed."""
    import torch

    from vae_lib.base.committed import CommittedResultError, replace_allowed
    from vae_lib.base.run_files import write_json
    from vae_lib.base.utils import clock_deadline
    from vae_lib.model.data import load_mnist
    from vae_lib.runs.best_model import score_all_test_images, target_verdict

    if not checkpoint.exists():
        print(f"error: no checkpoint at {checkpoint}: train first (python scripts/best_model.py --until HH:MM)",
              file=sys.stderr)
        return 2
    torch.set_num_threads(args.threads)
    stop_at = clock_deadline(args.until) if args.until else None
    t0 = time.perf_counter()
    print(f"scoring {checkpoint} with K = 5000 on all 10000 test images (100 batches; from a quarter to a "
          "whole hour on one CPU thread, minutes on a GPU)", flush=True)
    scores = score_all_test_images(checkpoint, load_mnist("test", args.data_dir).x, device=args.device,
                                   stop_at=stop_at, show_progress=True)
    if scores is None:
        print(f"stopped at {args.until} before the images were all scored: nothing written", flush=True)
        return 0
    scores["score_seconds"] = round(time.perf_counter() - t0, 1)
    try:
        write_json(args.score_all, scores, replace=replace_allowed())
    except CommittedResultError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    print(target_verdict(scores) + f"\nwritten to {args.score_all} ({scores['score_seconds'] / 60:.0f} min)", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""Continue the book's best model (vae_lib.runs.best_model): a resumable long run towards the IWAE paper's
one-layer numbers, trained a few hours at a time over many sessions.

    python scripts/best_model.py --until 23:50     # train until then (it stops at an epoch's end), resumably
    python scripts/best_model.py --status          # where it stands: epochs, hours, last test bound

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
    parser.add_argument("--threads", type=positive_int, default=1, help="torch threads (default 1)")
    parser.add_argument("--device", type=device_name, default="cpu", help="cpu or cuda")
    parser.add_argument("--data-dir", type=existing_dir, default=None, help="data root (default: $VAE_DATA_DIR)")
    parser.add_argument("--checkpoints", type=Path, default=CHECKPOINTS, help="checkpoint folder (default checkpoints/best)")
    add_replace_option(parser)
    args = parser.parse_args(argv)
    apply_replace_option(args)

    from vae_lib.base.utils import clock_deadline
    from vae_lib.runs.best_model import describe, status, train_best

    if args.status:
        print(describe(status(args.checkpoints)))
        return 0
    limit = clock_deadline(args.until) - time.time() if args.until else None
    print(describe(status(args.checkpoints)), flush=True)
    s = train_best(args.checkpoints, args.data_dir, args.device, args.threads, time_limit=limit)
    print(describe(s) + f" ({s['seconds_in_call'] / 60:.0f} min in this call)", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())

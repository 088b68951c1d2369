"""Which pixel protocol produced the seed's two numbers? Retrain its two configurations under each
protocol a personal implementation would plausibly use, and score each at K = 100 on all 10000 test
images observed the same way (issue 20, item 6; chapter 7b reads the result).

    python scripts/seed_protocols.py               # up to six runs, resumable; 30-100 min on one core
    python scripts/seed_protocols.py --quick       # 1 epoch each into a temporary folder (a smoke run)

The protocols (``vae_lib.runs.seed_protocols.PROTOCOLS``): grey levels into the Bernoulli likelihood,
a threshold at 0.5, one fixed binarization made once (seed 0); the book's own protocol (a fresh draw
per minibatch, the test set binarized once) is the committed checkpoint, scored the same way.
Checkpoints go to runs/seed_protocols/ (resumable), the scores to results/seed_protocols.json.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

from vae_lib.base.committed import add_replace_option, apply_replace_option

ROOT = Path(__file__).resolve().parents[1]


def main(argv: list[str] | None = None) -> int:
    from vae_lib.base.params import existing_dir, positive_int

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="1 epoch per run into a temporary folder")
    parser.add_argument("--threads", type=positive_int, default=1, help="torch threads")
    parser.add_argument("--data-dir", type=existing_dir, default=None)
    add_replace_option(parser)
    args = parser.parse_args(argv)
    apply_replace_option(args)

    import torch

    from vae_lib.runs.seed_protocols import run_all

    torch.set_num_threads(args.threads)
    if args.quick:
        with tempfile.TemporaryDirectory() as tmp:
            run_all(Path(tmp) / "runs", Path(tmp) / "seed_protocols.json", epochs=1, n_test=200, root=args.data_dir,
                    prune=False)
        return 0
    run_all(ROOT / "runs" / "seed_protocols", ROOT / "results" / "seed_protocols.json", root=args.data_dir)
    return 0


if __name__ == "__main__":
    sys.exit(main())

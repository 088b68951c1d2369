"""Which committed MNIST model of the book is best, like for like (vae_lib.runs.leaderboard).

Every committed checkpoint holding an MNIST model is scored under one protocol — log p(x) with K = 5000 on
the 2000 seeded random test images the Beyond runs are scored on — and its per-image scores are cached in
results/leaderboard/scores.json, keyed by the checkpoint's sha256 (a checkpoint that changed is stale, and
scored again). A Beyond scores file made under exactly this protocol is reused.

    python scripts/leaderboard.py --list                  # what is scored, stale or missing, with epochs
    python scripts/leaderboard.py --until 23:50           # score what is missing (resumable, a line per model)
    python scripts/leaderboard.py --best                  # the best model over all, with its verdicts
    python scripts/leaderboard.py --best beyond_e100/     # ... over one chapter's runs only
    python scripts/leaderboard.py --all-images --only best/ beyond_e100/prior_   # all 10000 test images, in order

--all-images scores under the target's protocol instead (every one of the 10000 test images, K = 5000), into
results/leaderboard/all_images.json; the long run's own scores (scripts/best_model.py --score-all) are reused
when they are of the same checkpoint.

A model is called best only when it is above every other by more than 2 standard errors of the paired
per-image difference; otherwise the set it cannot be separated from is printed.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

from vae_lib.base.committed import add_replace_option, apply_replace_option

ROOT = Path(__file__).resolve().parents[1]


def _minutes(seconds: float | None) -> str:
    return "" if seconds is None else f"{seconds / 60:.1f} min"


def list_models(root: Path, out: Path, untracked: bool, protocol_if_new: "Protocol | None" = None) -> None:
    """Print every checkpoint: the candidates with their epochs, training time and state in the scores file ``out``
    (scored with its mean, stale, or missing — and whether a Beyond scores file will be reused), then the skipped
    ones with the reason. A file not made yet is listed under ``protocol_if_new`` (default: the book's)."""
    from vae_lib.base.statistics import estimate
    from vae_lib.runs.leaderboard import PROTOCOL, Protocol, beyond_scores, describe_stale, new_board, read_board, status
    from vae_lib.runs.leaderboard import committed_models

    board = read_board(out) if out.exists() else new_board(protocol_if_new or PROTOCOL)
    protocol = Protocol(**board["protocol"])
    found = committed_models(root, untracked)
    print(f"scores file: {out}{'' if out.exists() else ' (none yet)'}\nprotocol: {protocol.describe()}")
    counts = {"scored": 0, "stale": 0, "missing": 0}
    for c in found:
        if c.skipped:
            continue
        s = status(c, board)
        counts[s.state] += 1
        head = f"{c.name:32s} {str(c.epochs) if c.epochs is not None else '?':>6s} epochs {_minutes(c.seconds):>10s}"
        head += "" if c.tracked else "  (untracked)"
        if s.state == "scored":
            line = f"scored    {estimate(s.entry['log_px'])} nats" + (
                "" if s.entry["source"] == "scored" else f" (from {Path(s.entry['source']).name})")
        else:
            line = describe_stale(c, s.earlier) if s.state == "stale" else "missing"
            reused, why = beyond_scores(c, root / "results", protocol)
            line += f"; will reuse {why}" if reused is not None else ""
        if c.train_protocol not in (None, "dynamic", "fixed", "threshold"):
            line += f"  [trained on {c.train_protocol} pixels]"
        print(f"{head}  {line}")
    skipped = [c for c in found if c.skipped]
    for c in skipped:
        print(f"{c.name:32s} skipped: {c.skipped}")
    print(f"{len(found) - len(skipped)} candidates: {counts['scored']} scored, {counts['stale']} stale, "
          f"{counts['missing']} missing; {len(skipped)} skipped" + ("" if protocol == PROTOCOL else
                                                                    " (this file's protocol is not the book's)"))


def show_best(root: Path, out: Path, prefix: str | None, untracked: bool) -> None:
    """Print the best model (over the names starting with ``prefix``) among those scored for their present
    checkpoint, its verdict against every other, the ranking, and the candidates the verdict leaves out."""
    from vae_lib.runs.leaderboard import Protocol, best_model, candidates, committed_models, current_scores, read_board

    if not out.exists():
        raise FileNotFoundError(f"{out} is missing: nothing is scored yet. Run python scripts/leaderboard.py first")
    board = read_board(out)
    found = committed_models(root, untracked)
    answer = best_model(current_scores(board, found), prefix)
    print(f"protocol: {Protocol(**board['protocol']).describe()}")
    print(answer.describe())
    print("ranking (mean log p(x) ± s.e., nats):")
    for i, r in enumerate(answer.ranking, 1):
        print(f"  {i:2d}. {r.name:32s} {r.score}")
    left_out = [c.name for c in candidates(found, prefix) if c.name not in answer.names]
    if left_out:
        print(f"not in this verdict (stale or not scored: python scripts/leaderboard.py --list): {', '.join(left_out)}")


def main(argv: list[str] | None = None) -> int:
    from vae_lib.base.params import device_name, existing_dir, positive_int, time_of_day

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--list", action="store_true", help="show what is scored, stale or missing, and stop")
    parser.add_argument("--best", nargs="?", const="", default=None, metavar="PREFIX",
                        help="print the best model (over the names starting with PREFIX, e.g. beyond_e100/), and stop")
    parser.add_argument("--out", type=Path, default=None,
                        help="the scores file (default: results/leaderboard/scores.json in the repository, "
                             "all_images.json beside it with --all-images)")
    parser.add_argument("--all-images", action="store_true",
                        help="score on all 10000 test images in order (the target's protocol), not the seeded 2000")
    parser.add_argument("--untracked", action="store_true",
                        help="also take the checkpoints git does not track (nor ignore)")
    parser.add_argument("--only", nargs="+", default=None, metavar="PREFIX",
                        help="score only the models whose names start with one of these prefixes "
                             "(e.g. best/ beyond_e100/prior_); the others are left as they are")
    parser.add_argument("--until", type=time_of_day, default=None, metavar="HH:MM",
                        help="start no model after this local time, and drop one under way (resumable)")
    parser.add_argument("--threads", type=positive_int, default=1, help="torch threads (default 1)")
    parser.add_argument("--device", type=device_name, default="cpu", help="cpu (default), cuda or cuda:N")
    parser.add_argument("--data-dir", type=existing_dir, default=None, help="data root (default: $VAE_DATA_DIR)")
    parser.add_argument("--root", type=existing_dir, default=str(ROOT),
                        help="the repository whose committed checkpoints are compared (default: this checkout)")
    add_replace_option(parser)
    args = parser.parse_args(argv)
    apply_replace_option(args)
    if args.list and args.best is not None:
        parser.error("--list and --best are two actions: pass one")
    root = Path(args.root).resolve()
    default = "all_images.json" if args.all_images else "scores.json"
    out = args.out if args.out is not None else root / "results" / "leaderboard" / default

    from vae_lib.base.committed import CommittedResultError

    try:
        if args.list:
            from vae_lib.runs.leaderboard import ALL_IMAGES, PROTOCOL

            list_models(root, out, args.untracked, ALL_IMAGES if args.all_images else PROTOCOL)
            return 0
        if args.best is not None:
            show_best(root, out, args.best or None, args.untracked)
            return 0
        return score(root, out, args)
    except (ValueError, FileNotFoundError, CommittedResultError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 2


def score(root: Path, out: Path, args: argparse.Namespace) -> int:
    """Score every candidate the scores file ``out`` lacks (the default action); a line per model and a summary."""
    import torch

    from vae_lib.base.utils import clock_deadline
    from vae_lib.model.data import load_mnist
    from vae_lib.runs.leaderboard import ALL_IMAGES, PROTOCOL, committed_models, score_candidates

    torch.set_num_threads(args.threads)
    stop_at = clock_deadline(args.until) if args.until else None
    t0 = time.perf_counter()
    found = committed_models(root, args.untracked)
    if args.only:
        found = [c for c in found if c.name.startswith(tuple(args.only))]
        if not found:
            raise ValueError(f"no committed model's name starts with {' or '.join(args.only)} (--list shows them)")
    print(f"{sum(not c.skipped for c in found)} candidates ({sum(bool(c.skipped) for c in found)} checkpoints skipped: "
          f"--list says why); scores file {out}", flush=True)
    outcomes = score_candidates(found, lambda: load_mnist("test", args.data_dir).x, out, root / "results",
                                protocol=ALL_IMAGES if args.all_images else PROTOCOL, stop_at=stop_at,
                                device=args.device, log=lambda line: print(line, flush=True), show_progress=True)
    done = {a: sum(o.action == a for o in outcomes) for a in ("cached", "reused", "scored", "stopped")}
    print(f"{done['scored']} scored, {done['reused']} reused from Beyond scores files, {done['cached']} already there, "
          f"{done['stopped']} left for the next call; {time.perf_counter() - t0:.0f} s", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""Score every Figure 3 run's last checkpoint under the paper's own protocol (vae_lib.runs.paper_protocol):
Appendix D with L = 50 and 4 leapfrog steps on the first 1000 training and the first 1000 test images,
and the same estimator on the book's 500 random test images (paired with the curves' quadrature).

    python scripts/figure3_paper_protocol.py            # every run not yet scored, to results/figure3/paper_protocol.json
    python scripts/figure3_paper_protocol.py --force --out /tmp/pp.json   # score all runs again, elsewhere
    python scripts/figure3_paper_protocol.py --force --replace            # ... over the committed file, on purpose

Resumable: each run is written to the file as soon as it is scored. With ``--force`` the runs are scored
afresh and the file is written once, when every run has been scored: a run stopped half-way leaves the file
as it was. About 3 minutes per run on one CPU core.
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
from vae_lib.runs.figure3_curves import read_curve
from vae_lib.runs.paper_protocol import score_paper_protocol

ROOT = Path(__file__).resolve().parents[1]


def main(argv: list[str] | None = None) -> int:
    from vae_lib.base.params import existing_dir, positive_int

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--force", action="store_true", help="score runs already in the file again")
    parser.add_argument("--threads", type=positive_int, default=1, help="torch threads (default 1)")
    parser.add_argument("--data-dir", type=existing_dir, default=None)
    parser.add_argument("--out", type=Path, default=ROOT / "results" / "figure3" / "paper_protocol.json",
                        help="the result file (default results/figure3/paper_protocol.json)")
    add_replace_option(parser)
    args = parser.parse_args(argv)
    apply_replace_option(args)
    torch.set_num_threads(args.threads)
    out = args.out
    if not str(out).strip() or out.is_dir():
        parser.error(f"argument --out: must be a file, got {str(out)!r}")
    if out.exists() and not args.force:   # resumable: only a file of this script's may be added to
        try:
            held = json.loads(out.read_text())
        except ValueError:
            held = None
        names = {r.name for r in figure3_runs()}
        if not (isinstance(held, dict) and set(held) <= names and all(isinstance(v, dict) and "samples" in v
                                                                      for v in held.values())):
            parser.error(f"argument --out: {out} is not a paper-protocol file (one entry per Figure 3 run): "
                         "it is not added to; give another file")
    if args.force and out.exists() and is_committed(out) and not replace_allowed():
        parser.error(f"--force scores every run again over the committed {out}: write elsewhere with --out FILE, "
                     "or replace it on purpose with --force --replace")
    done = json.loads(out.read_text()) if out.exists() and not args.force else {}
    test_file = fixed_binarization(load_mnist("test", args.data_dir, "cpu").x, seed=0)      # file order
    for run in figure3_runs():
        if run.name in done:
            print(f"{run.name}: already scored")
            continue
        curve = read_curve(ROOT / "results" / "figure3" / f"{run.name}.json", run)
        model, samples = load_figure3_model(run, ROOT / "checkpoints" / "figure3")
        last = curve["points"][-1]
        if samples != last["samples"]:
            print(f"{run.name}: the checkpoint ({samples}) is not the curve's last point ({last['samples']}): skipped")
            continue
        train_x, _, test_eval = figure3_data(run.n_train, curve["n_eval"], args.data_dir)
        start = time.perf_counter()
        done[run.name] = {"samples": samples, **score_paper_protocol(model, train_x, test_file, test_eval,
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

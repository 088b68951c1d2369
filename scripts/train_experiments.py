"""Train the book's named experiments (vae_lib.experiments.EXPERIMENTS) into checkpoints/, one
process per experiment — useful on a machine with more cores than one training run can use.

    python scripts/train_experiments.py seed_z3_h400 seed_z12_h256-128 --threads 1

Each process runs exactly what chapter 6 (or 8) runs, ``load_or_train``, with the same
configuration (for the paper's setup, the learning rate its one-epoch sweep picks), so the
chapters then load the finished checkpoints and show their histories. Logs go to runs/<name>.log.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
from dataclasses import replace
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def train_one(name: str, threads: int, data_dir: str | None) -> None:
    import torch

    from vae_lib.data import load_frey_face, load_mnist, random_split
    from vae_lib.experiments import EXPERIMENTS, FREY_TEST_SIZE, load_or_train, sweep_learning_rate
    from vae_lib.utils import describe_device, pick_device

    torch.set_num_threads(threads)
    device = pick_device()
    exp = EXPERIMENTS[name]
    if exp.model.likelihood == "gaussian":
        train, test = random_split(load_frey_face(data_dir, device), FREY_TEST_SIZE, seed=0)
    else:
        train, test = load_mnist("train", data_dir, device), load_mnist("test", data_dir, device)
    config = exp.train
    if exp.train.optimizer == "adagrad":
        sweep = sweep_learning_rate(name, train.x)
        print(f"{name}: learning-rate sweep {sweep}", flush=True)
        config = replace(config, lr=max(sweep, key=sweep.get))
    print(f"{name}: training on {describe_device(device)} with {config}", flush=True)
    _, history, trained = load_or_train(name, train.x, test.x, train=config, desc=name)
    print(f"{name}: {'trained' if trained else 'already complete'}; {history.epoch[-1]} epochs, "
          f"{history.seconds[-1] / 60:.1f} min; test bound {history.test_bound[-1]:.2f}", flush=True)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("names", nargs="+", help="experiment names (see vae_lib.experiments.EXPERIMENTS)")
    parser.add_argument("--threads", type=int, default=1, help="torch threads per process")
    parser.add_argument("--data-dir", default=None)
    parser.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.worker:
        train_one(args.names[0], args.threads, args.data_dir)
        return 0
    (ROOT / "runs").mkdir(exist_ok=True)
    procs = []
    for name in args.names:
        log = open(ROOT / "runs" / f"{name}.log", "w")
        cmd = [sys.executable, __file__, name, "--worker", "--threads", str(args.threads)]
        if args.data_dir:
            cmd += ["--data-dir", args.data_dir]
        procs.append((name, subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT)))
        print(f"started {name}: log in runs/{name}.log", flush=True)
    failed = [name for name, p in procs if p.wait() != 0]
    if failed:
        print(f"failed: {failed} (see their logs)", file=sys.stderr)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())

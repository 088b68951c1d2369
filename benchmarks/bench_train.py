"""Training speed of vae_lib against the common tutorial loop, in one process and one run.

    python benchmarks/bench_train.py                 # CPU (or --device cuda), about 3 minutes on 2 cores
    python benchmarks/bench_train.py --quick         # smoke run, seconds

Both ways train the same model — ``vae_lib.model.vae.VAE`` with z = 3 and one hidden layer of 400,
Adam (lr 1e-3), minibatches of 100, dynamic binarization, the same number of steps, on the same
device — so only the training loop differs:

- reference: ``torchvision.datasets.MNIST`` with ``transforms.ToTensor()``, a ``DataLoader``
  (batch 100, shuffle, ``--num-workers``), ``torch.bernoulli`` on each batch, ``loss.item()``
  logged every step, ``optim.Adam(model.parameters())`` with its defaults — the loop of the
  PyTorch examples' VAE, with vae_lib's objective so the bound is the same quantity;
- vae_lib: ``vae_lib.training.train.fit`` on the whole training set held as one tensor, with its eager
  step (the reference), its ``torch.compile``d step, and its graphed epoch (a CUDA graph on CUDA; the
  same body run eagerly on the CPU). Compilation and capture happen in a warm-up call before the
  timed rounds, and their one-off cost is printed apart.

The methods are timed in interleaved rounds (each round trains every method once from a fresh
seed, in rotating order) and medians are reported, so a background load hits them alike. The
final bounds of all rounds give the seed-to-seed noise the two methods are compared within.
"""

from __future__ import annotations

import argparse
import math
import os
import platform
import resource
import statistics
import sys
import time
from pathlib import Path

import torch
from torch import nn

_shared = Path(__file__).resolve().parents[2] / "shared" / "data"
if "VAE_DATA_DIR" not in os.environ and _shared.is_dir():
    os.environ["VAE_DATA_DIR"] = str(_shared)  # the offline copy beside the checkout, as conftest.py does

from vae_lib.model.data import data_root, load_mnist
from vae_lib.model.pixels import observe  # noqa: E402
from vae_lib.inference.likelihood import importance_sampled_log_likelihood  # noqa: E402
from vae_lib.model.vae import VAE, VAEConfig  # noqa: E402
from vae_lib.model.objectives import elbo  # noqa: E402
from vae_lib.training.train import TrainConfig, evaluate, fit  # noqa: E402
import vae_lib.training.training_run  # noqa: E402 (its optimizer factory is swapped for one measurement)

BATCH = 100
STEPS_PER_EPOCH = 60000 // BATCH


def device_name(device: torch.device) -> str:
    """The accelerator's name, or the CPU model and the compute threads in use."""
    if device.type == "cuda":
        return f"cuda: {torch.cuda.get_device_name(device)}"
    model = platform.processor() or "unknown CPU"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return f"cpu: {model}, {os.cpu_count()} cores, {torch.get_num_threads()} torch thread(s)"


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def train_reference(dataset, config: VAEConfig, steps: int, seed: int, num_workers: int,
                    device: torch.device) -> tuple[VAE, float]:
    """The tutorial loop; returns the model and the seconds its `steps` steps took."""
    from torch.utils.data import DataLoader

    torch.manual_seed(seed)
    model = VAE(config).to(device)
    sync(device)
    start = time.perf_counter()
    loader = DataLoader(dataset, batch_size=BATCH, shuffle=True, num_workers=num_workers,
                        pin_memory=device.type == "cuda")
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
    model.train()
    losses, step = [], 0
    while step < steps:
        for data, _ in loader:
            x = torch.bernoulli(data.to(device).view(-1, config.data_dim))  # dynamic binarization
            optimizer.zero_grad()
            loss = -elbo(model, x).bound.mean()
            loss.backward()
            losses.append(loss.item())  # the examples' per-step logging: one host sync per step
            optimizer.step()
            step += 1
            if step == steps:
                break
    sync(device)
    return model, time.perf_counter() - start


def train_vae_lib(train_x: torch.Tensor, config: VAEConfig, steps: int, seed: int,
                  device: torch.device, step_mode: str = "eager") -> tuple[VAE, float]:
    """vae_lib.training.train.fit for `steps` steps: one epoch over the first steps*100 examples when
    steps <= 600, else steps/600 epochs over all 60000."""
    if steps <= STEPS_PER_EPOCH:
        train_x, epochs = train_x[: steps * BATCH], 1
    else:
        train_x, epochs = train_x, steps // STEPS_PER_EPOCH
    torch.manual_seed(seed)
    model = VAE(config).to(device)
    sync(device)
    start = time.perf_counter()
    fit(model, train_x, None, TrainConfig(epochs=epochs, batch_size=BATCH, seed=seed), show_progress=False,
        step_mode=step_mode)
    sync(device)
    return model, time.perf_counter() - start


def train_vae_lib_unfused(train_x: torch.Tensor, config: VAEConfig, steps: int, seed: int,
                          device: torch.device) -> tuple[VAE, float]:
    """vae_lib.training.train.fit with PyTorch's default (unfused) Adam, as fit was before it asked for the
    fused one: measures that change alone."""
    def unfused_adam(model, train_config, capturable=False):
        return torch.optim.Adam(model.parameters(), lr=train_config.lr, weight_decay=train_config.weight_decay)

    fused_adam, vae_lib.training.training_run.make_optimizer = vae_lib.training.training_run.make_optimizer, unfused_adam
    try:
        return train_vae_lib(train_x, config, steps, seed, device)
    finally:
        vae_lib.training.training_run.make_optimizer = fused_adam


def matmul_gflops(n: int, reps: int, device: torch.device) -> float:
    """GFLOP/s of torch.mm on two n x n float32 matrices (2 n^3 FLOPs per product)."""
    a, b = torch.randn(n, n, device=device), torch.randn(n, n, device=device)
    torch.mm(a, b)
    sync(device)
    start = time.perf_counter()
    for _ in range(reps):
        torch.mm(a, b)
    sync(device)
    return 2 * n ** 3 * reps / (time.perf_counter() - start) / 1e9


def flops_per_step(model: VAE, batch: int) -> int:
    """Forward: 2 * M * in * out per Linear layer (M = batch, L = 1); backward ~ 2x forward."""
    forward = sum(2 * batch * m.in_features * m.out_features for m in model.modules() if isinstance(m, nn.Linear))
    return 3 * forward


def max_rss_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # Linux reports KiB


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--device", default="cpu", help="cpu or cuda (default: cpu)")
    p.add_argument("--steps", type=int, default=None,
                   help="training steps per method and round: <= 600 or a multiple of 600 (default: 200 CPU, 1200 GPU)")
    p.add_argument("--rounds", type=int, default=3, help="interleaved rounds; medians are reported (default: 3)")
    p.add_argument("--num-workers", type=int, default=1, help="DataLoader workers of the reference (default: 1)")
    p.add_argument("--no-workers0", action="store_true", help="skip the extra reference with num_workers=0")
    p.add_argument("--no-unfused", action="store_true",
                   help="skip vae_lib with PyTorch's default Adam (measures fit's fused-Adam change)")
    p.add_argument("--threads", type=int, default=None,
                   help="torch CPU threads for both methods (default on CPU: cores minus the reference's workers, "
                        "at least 1, so the loader worker does not oversubscribe the cores)")
    p.add_argument("--hidden", type=int, default=400, help="hidden width (the paper's big run: 500)")
    p.add_argument("--ll-images", type=int, default=None,
                   help="test images for the K=5000 log-likelihood (default: 100 CPU, 10000 GPU)")
    p.add_argument("--k", type=int, default=5000, help="importance samples K (default: 5000)")
    p.add_argument("--modes", nargs="*", default=["compile", "graphed"], choices=["compile", "graphed"],
                   help="fit's fast step modes to time beside its eager step (default: both)")
    p.add_argument("--json", default=None, help="also write the results to this JSON file")
    p.add_argument("--quick", action="store_true", help="tiny numbers: a smoke run of seconds")
    args = p.parse_args(argv)

    device = torch.device(args.device)
    cuda = device.type == "cuda"
    if cuda and not torch.cuda.is_available():
        p.error("--device cuda asked for, but CUDA is not available here")
    if args.threads is not None:
        torch.set_num_threads(args.threads)
    elif not cuda:
        torch.set_num_threads(max(1, (os.cpu_count() or 1) - args.num_workers))
    steps = args.steps or (10 if args.quick else (1200 if cuda else 200))
    if steps > STEPS_PER_EPOCH and steps % STEPS_PER_EPOCH:
        p.error(f"--steps must be at most {STEPS_PER_EPOCH} or a multiple of it, got {steps}")
    rounds = 2 if args.quick and args.rounds == 3 else args.rounds
    ll_images = args.ll_images or (5 if args.quick else (10000 if cuda else 100))
    k = 50 if args.quick and args.k == 5000 else args.k
    mm_n, mm_reps = (256, 5) if args.quick else ((8192, 20) if cuda else (1024, 10))
    config = VAEConfig(latent_dim=3, hidden_sizes=(args.hidden,))

    from torchvision import datasets, transforms
    dataset = datasets.MNIST(str(data_root()), train=True, download=False, transform=transforms.ToTensor())
    train_x = load_mnist("train", device=device).x
    test_obs = observe(load_mnist("test", device=device).x, "fixed", seed=0)
    if args.quick:
        test_obs = test_obs[:500]

    workers = [args.num_workers] + ([0] if args.num_workers != 0 and not args.no_workers0 else [])
    methods = {f"reference (num_workers={w})": (lambda s, w=w: train_reference(dataset, config, steps, s, w, device))
               for w in workers}
    # the label results/gpu/bench.json was written with (fit now lives in vae_lib.training.train)
    methods["vae_lib.train.fit"] = lambda s: train_vae_lib(train_x, config, steps, s, device)
    for mode in args.modes:
        methods[f"vae_lib fit, {mode}"] = lambda s, mode=mode: train_vae_lib(train_x, config, steps, s, device, mode)
    if not cuda and not args.no_unfused:  # fit asks for fused Adam on the CPU only
        methods["vae_lib, unfused Adam"] = lambda s: train_vae_lib_unfused(train_x, config, steps, s, device)
    names = list(methods)
    warmup = {}
    for mode in args.modes:  # compile / capture once before timing: their cost is paid once per process
        start = time.perf_counter()
        train_vae_lib(train_x, config, min(steps, 20), 0, device, mode)
        warmup[mode] = time.perf_counter() - start

    print(f"device      {device_name(device)}")
    print(f"torch       {torch.__version__}; load average at start {os.getloadavg()[0]:.2f} "
          f"(1 min) on {os.cpu_count()} cores")
    print(f"model       VAE z=3, hidden {args.hidden}, batch {BATCH}, Adam lr 1e-3, dynamic binarization")
    print(f"run         {rounds} interleaved rounds x {steps} steps per method (seed = round)")
    for mode, seconds in warmup.items():
        print(f"warm-up     fit step_mode={mode!r}: {seconds:.1f} s for its first 20 steps (compilation/capture)")
    print(flush=True)

    speed = {n: [] for n in names}
    bound = {n: [] for n in names}
    peak = []
    last_lib_model = None
    for r in range(rounds):
        order = names[r % len(names):] + names[: r % len(names)]  # rotate so no method always goes first
        for name in order:
            model, seconds = methods[name](r)
            speed[name].append(steps * BATCH / seconds)
            bound[name].append(evaluate(model, test_obs)["bound"])
            if name == "vae_lib.train.fit":
                last_lib_model = model
        peak.append(matmul_gflops(mm_n, mm_reps, device))
        print(f"round {r + 1}/{rounds}: " + ", ".join(f"{n} {speed[n][-1]:.0f}/s" for n in names)
              + f", mm {peak[-1]:.1f} GFLOP/s", flush=True)

    lib = "vae_lib.train.fit"
    ref = names[0]
    print(f"\n{'method':<30}{'samples/s (median)':>20}{'ratio vae_lib/this':>20}"
          f"{'test bound, nats (mean +- sd over rounds)':>44}")
    for n in names:
        sd = statistics.stdev(bound[n]) if len(bound[n]) > 1 else float("nan")
        ratio = statistics.median(speed[lib]) / statistics.median(speed[n])
        print(f"{n:<30}{statistics.median(speed[n]):>20.0f}{ratio:>20.2f}"
              f"{statistics.mean(bound[n]):>32.2f} +- {sd:.2f}")

    for mode in args.modes:
        name = f"vae_lib fit, {mode}"
        print(f"step_mode={mode!r} against the eager step: {statistics.median(speed[name]) / statistics.median(speed[lib]):.2f}x "
              f"the samples/s (median of {rounds} interleaved rounds)")

    diff = statistics.mean(bound[lib]) - statistics.mean(bound[ref])
    noise = math.sqrt(sum(statistics.variance(bound[n]) / len(bound[n]) for n in (lib, ref))) if rounds > 1 else float("nan")
    print(f"\nfinal bound after {steps} steps: vae_lib - reference = {diff:+.2f} nats; standard error of that "
          f"difference from the seed spread {noise:.2f} -> {'within' if abs(diff) <= 2 * noise else 'OUTSIDE'} "
          "2 standard errors")

    flops = flops_per_step(last_lib_model, BATCH)
    achieved = flops * statistics.median(speed[lib]) / BATCH / 1e9
    mm_peak = statistics.median(peak)
    print(f"\nFLOPs per vae_lib step: 3 x sum over Linear layers of 2*M*in*out (M={BATCH}) = {flops / 1e6:.1f} MFLOP")
    print(f"achieved {achieved:.2f} GFLOP/s = {achieved / mm_peak:.1%} of torch.mm peak "
          f"{mm_peak:.1f} GFLOP/s ({mm_n}x{mm_n} float32, median of rounds)")
    print(f"time for 10^8 training samples at the vae_lib rate: {1e8 / statistics.median(speed[lib]) / 60:.1f} min "
          f"(projected, hidden {args.hidden})")

    x_ll = test_obs[:ll_images]
    rss_before = max_rss_mib()
    if cuda:
        torch.cuda.reset_peak_memory_stats(device)
    sync(device)
    start = time.perf_counter()
    ll = importance_sampled_log_likelihood(last_lib_model, x_ll, k=k)
    sync(device)
    seconds = time.perf_counter() - start
    mean, se = ll.mean_and_stderr()
    memory = (f"peak GPU memory {torch.cuda.max_memory_allocated(device) / 2**20:.0f} MiB" if cuda else
              f"process peak RSS {max_rss_mib():.0f} MiB (before: {rss_before:.0f} MiB)")
    print(f"\nimportance-sampled log p(x), K={k}, first {len(x_ll)} test images: {seconds:.1f} s, {memory}; "
          f"log p(x) = {mean:.2f} +- {se:.2f} (model of the last round, {steps} steps)")
    print(f"load average at end {os.getloadavg()[0]:.2f} (1 min)")
    if args.json:
        import json
        best = max(names, key=lambda n: statistics.median(speed[n]))
        Path(args.json).write_text(json.dumps({
            "device": device_name(device), "torch": torch.__version__, "steps": steps, "rounds": rounds,
            "hidden": args.hidden, "samples_per_s": {n: statistics.median(speed[n]) for n in names},
            "ratio_to_reference": {n: statistics.median(speed[n]) / statistics.median(speed[ref]) for n in names},
            "fastest": best, "warmup_s": warmup, "test_bound_mean": {n: statistics.mean(bound[n]) for n in names},
            "gflops_eager": achieved, "matmul_peak_gflops": mm_peak,
            "gflops_fastest": flops * statistics.median(speed[best]) / BATCH / 1e9,
            "log_likelihood": {"k": k, "images": len(x_ll), "seconds": seconds, "mean": mean, "stderr": se},
        }, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())

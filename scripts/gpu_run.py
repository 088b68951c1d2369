"""The book's GPU command: turns a lent GPU into the book's GPU results in one call of at most
9 minutes, each result a small file written under runs/gpu_run/gpu/ (Figure 2 curves under
runs/gpu_run/figure2_gpu/, Figure 3 curves under runs/gpu_run/figure3/) and bundled as results/gpu/,
results/figure2_gpu/ and results/figure3/: ``--unpack`` brings the bundle into the repository through the
committed-results guard, so no call writes over the committed record by itself.

On this machine, once, before the device call (packs the data sets, which do not travel otherwise):

    python scripts/gpu_run.py --prepare

Then on the lent machine (the device tool's run, with carry [".gpu_data"]):

    PYTHONUNBUFFERED=1 python3 scripts/gpu_run.py --out $OUT

and back here, unpack what came back into the repository and commit it:

    python scripts/gpu_run.py --unpack /work/.device/.../gpu_results.tar.gz
    python scripts/gpu_run.py --unpack /work/.device/.../figure3_checkpoints.tar.gz   # the Figure 3 step's, if it ran
    python scripts/gpu_run.py --unpack /work/.device/.../best_checkpoint.tar.gz      # the best model's, if it ran

Steps, each with its own time budget inside ``--budget`` seconds, each writing its file as soon as
it ends (and the bundle in ``--out`` refreshed after every step, so a cut-off call still returns the
steps that ended):

1. env.json — GPU, driver, torch;
2. tests.txt — the unit tests on CUDA (VAE_TEST_DEVICE=cuda);
3. bench.json / bench.txt — benchmarks/bench_train.py on CUDA: samples/s of the reference
   DataLoader loop and of fit's eager, compiled and graphed steps, GFLOP/s against a matmul peak of
   the same run, K = 5000 importance sampling over the 10000 test images;
4. graph_check.json — the CUDA-graph epoch against the same epoch run eagerly, same draws; the
   steps below use the graph only when they agree;
5. paper_1e8.json — the paper's MNIST run (N_z = 3, 500 tanh units, Adagrad) to 10^8 samples, timed;
6. loglik.json — K = 5000 over all 10000 test images for every committed MNIST model, timed;
6b. best — the book's best model (vae_lib.runs.best_model) continued from checkpoints/best for 120 s (the
   whole ``--budget`` with ``--steps best``); its checkpoint comes back in best_checkpoint.tar.gz;
7. figure2_gpu/*.json — the Figure 2 runs, as far as the remaining time allows;
8. figure3/*.json — the six Figure 3 runs (vae_lib.runs.figure3: AEVB, wake-sleep, MCEM × 1000 and
   50000 training images), all at once on the GPU, each resumed from the committed
   checkpoints/figure3 (the book's runs, whichever device trained them so far) and stopped resumably
   at the step's deadline; their checkpoints come back in figure3_checkpoints.tar.gz (unpack it at the
   repository's root);
   select it alone with ``--steps figure3`` (then it has the whole ``--budget``);
9. beyond/*.json — the IWAE comparison of chapter 14 (vae_lib.runs.beyond.IWAE_RUNS and DREG_RUNS: VAE, IWAE
   and IWAE-DReG with k = 1, 5, 50) trained on the GPU towards the IWAE paper's 3280 passes
   (``--beyond-epochs``), all at once, each stopped resumably at the step's deadline and scored on the
   same test images; their checkpoints come back in beyond_checkpoints.tar.gz (extract it in runs/gpu_run/gpu with tar:
   a later call resumes from runs/gpu_run/gpu/checkpoints_beyond when it is carried).

``--dry-run`` runs every step at toy size on the CPU (seconds, no GPU): ``pytest`` runs it
(tests/test_gpu_run.py), so the command cannot rot between the sessions that are lent a GPU. A dry run
writes only under a temporary folder (or ``--results DIR``), never over the committed GPU record; with
``--results DIR`` every file of the call goes under DIR (its curves in DIR/figure2_gpu and DIR/figure3).

``--unpack`` extracts only regular files and folders, only into results/gpu, results/figure2_gpu,
results/figure3, checkpoints/figure3 and checkpoints/best (checkpoints only there), with no links and no special mode bits; a committed file there is replaced only by a
result that has gone further (vae_lib.base.committed), or with ``--replace``. Every refusal names the bundle.
"""

from __future__ import annotations

import argparse
import json
import os
import posixpath
import subprocess
import sys
import tarfile
import tempfile
import time
import traceback
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
DATA_BUNDLE = ROOT / ".gpu_data" / "data.tar.gz"
BUNDLE_NAME = "gpu_results.tar.gz"


def prepare(data_dir: str | None) -> None:
    """Pack MNIST and Frey Face into .gpu_data/data.tar.gz (ignored by git, carried to the device)."""
    sys.path.insert(0, str(ROOT))
    from vae_lib.model.data import data_root

    src = data_root(data_dir)
    DATA_BUNDLE.parent.mkdir(exist_ok=True)
    with tarfile.open(DATA_BUNDLE, "w:gz") as tar:
        for rel in ("MNIST/raw/train-images-idx3-ubyte", "MNIST/raw/train-labels-idx1-ubyte",
                    "MNIST/raw/t10k-images-idx3-ubyte", "MNIST/raw/t10k-labels-idx1-ubyte",
                    "FreyFace/frey_rawface.mat"):
            tar.add(src / rel, arcname=rel)
    print(f"wrote {DATA_BUNDLE} ({DATA_BUNDLE.stat().st_size / 2**20:.1f} MiB) from {src}")


class Runner:
    """Runs the steps against one deadline and records what each did."""

    def __init__(self, args: argparse.Namespace):
        self.args, self.dry = args, args.dry_run
        self.t0 = time.perf_counter()
        if args.results:   # everything of this call under one folder of the caller's
            self.results = Path(args.results)
            self.curves, self.curves3 = self.results / "figure2_gpu", self.results / "figure3"
        elif self.dry:     # a dry run never writes over the committed GPU record
            self.results = Path(tempfile.mkdtemp(prefix="gpu_run_dry_")) / "gpu"
            self.curves, self.curves3 = self.results.parent / "figure2_gpu", self.results.parent / "figure3"
            print(f"[gpu_run] dry run: results under {self.results.parent}", flush=True)
        else:              # a real call writes beside the repository's results, never over them: the bundle
            # names its files results/gpu/..., and --unpack brings them in through the committed-results guard
            self.results = ROOT / "runs" / "gpu_run" / "gpu"
            self.curves, self.curves3 = self.results.parent / "figure2_gpu", self.results.parent / "figure3"
        self.results.mkdir(parents=True, exist_ok=True)
        self.out = Path(args.out) if args.out else None
        self.summary: dict = {"dry_run": self.dry, "steps": {}}
        self.device = "cpu" if self.dry else "cuda"
        self.step_mode = "graphed"

    def left(self) -> float:
        return self.args.budget - (time.perf_counter() - self.t0)

    def write(self, name: str, payload) -> None:
        """Write one result file, through the committed-results guard (vae_lib.base.committed)."""
        from vae_lib.base.committed import check_replace

        path = self.results / name
        text = payload if isinstance(payload, str) else json.dumps(payload, indent=1) + "\n"
        if check_replace(path, None if isinstance(payload, str) else payload,
                         lambda: json.loads(path.read_text()) if path.suffix == ".json" else None,
                         same=lambda: path.read_text() == text):
            path.write_text(text)

    def bundle(self) -> None:
        self.write("summary.json", self.summary)
        if self.out is None:
            return
        self.out.mkdir(parents=True, exist_ok=True)
        tmp = self.out / (BUNDLE_NAME + ".part")
        with tarfile.open(tmp, "w:gz") as tar:
            nested = ("results/gpu/figure2_gpu", "results/gpu/figure3")   # with --results DIR: added on their own
            for folder, arcname in ((self.results, "results/gpu"), (self.curves, "results/figure2_gpu"),
                                    (self.curves3, "results/figure3")):
                if folder.exists():
                    tar.add(folder, arcname=arcname,
                            filter=lambda m: None if "/checkpoints" in m.name or m.name.startswith(nested) else m)
        os.replace(tmp, self.out / BUNDLE_NAME)

    def step(self, name: str, budget: float, fn) -> None:
        budget = min(budget, self.left() - 5)
        if budget < 5:
            self.summary["steps"][name] = {"status": "skipped: out of time"}
            print(f"[gpu_run] {name}: skipped, {self.left():.0f} s left", flush=True)
            return
        start = time.perf_counter()
        print(f"[gpu_run] {name}: up to {budget:.0f} s ({self.left():.0f} s left in all)", flush=True)
        try:
            status = fn(budget) or "ok"
        except Exception as err:  # one failed step must not cost the others their time
            status = f"failed: {type(err).__name__}: {err}"
            traceback.print_exc()
        self.summary["steps"][name] = {"status": status, "seconds": round(time.perf_counter() - start, 1)}
        print(f"[gpu_run] {name}: {status} in {time.perf_counter() - start:.0f} s", flush=True)
        self.bundle()

    def sub(self, cmd: list[str], budget: float, env: dict | None = None) -> subprocess.CompletedProcess:
        env = {**os.environ, "PYTHONPATH": str(ROOT) + os.pathsep + os.environ.get("PYTHONPATH", ""), **(env or {})}
        try:
            return subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True, timeout=budget)
        except subprocess.TimeoutExpired as err:
            out = (err.stdout or b"").decode() if isinstance(err.stdout, bytes) else (err.stdout or "")
            return subprocess.CompletedProcess(cmd, 124, out + f"\n[timed out after {budget:.0f} s]\n", "")

    def sweep(self, runs: dict[str, tuple], workers: int, seconds: float) -> list[str]:
        """Run ``runs`` ({name: (library function, its keyword arguments)}) as one sweep (vae_lib.base.sweep) on
        ``workers`` local processes at a time. Each run's output goes to <results>/logs/<name>.log and it
        is given what is left of ``seconds`` when its worker starts it (vae_lib.base.sweep.logged_call), so a
        run that waited for a worker still stops, resumably, in time. Returns a line per run."""
        from vae_lib.base.sweep import Job, local_executor, logged_call, run_sweep

        deadline = time.time() + seconds
        at_least = 0.0 if self.dry else 30.0     # a real run with less than this left is not started
        jobs = [Job(name, logged_call, (str(self.results / "logs" / f"{name}.log"), deadline, fn, kwargs, at_least))
                for name, (fn, kwargs) in runs.items()]
        lines = []
        for r in run_sweep(jobs, local_executor(max(1, min(workers, len(jobs))))):
            lines.append(f"{r.name}: " + (f"failed: {type(r.error).__name__}: {r.error}" if r.error is not None
                                          else f"not started ({r.value['skipped']})" if isinstance(r.value, dict)
                                          and "skipped" in r.value else "ok"))
            print(f"[gpu_run] {lines[-1]}" + ("" if r.error is not None else f" {r.value}"), flush=True)
        return lines

    # --- the steps ---------------------------------------------------------------------------

    def env(self, budget: float) -> str:
        import torch

        info = {"torch": torch.__version__, "python": sys.version.split()[0], "cuda_available": torch.cuda.is_available()}
        if torch.cuda.is_available():
            props = torch.cuda.get_device_properties(0)
            info.update(device=torch.cuda.get_device_name(0), memory_gib=round(props.total_memory / 2**30, 1),
                        multiprocessors=props.multi_processor_count, cuda=torch.version.cuda)
            smi = self.sub(["nvidia-smi", "--query-gpu=name,driver_version,clocks.max.sm", "--format=csv"], 20)
            info["nvidia_smi"] = smi.stdout.strip()
        else:
            info["device"] = "cpu (dry run)"
        self.summary["device"] = info["device"]
        self.write("env.json", info)
        return "ok"

    def tests(self, budget: float) -> str:
        files = ["tests/test_wake_sleep.py"] if self.dry else ["tests", "--ignore=tests/test_gpu_run.py"]
        cmd = [sys.executable, "-m", "pytest", *files, "-q", "-o", "addopts=", "-p", "no:cacheprovider",
               "-x" if self.dry else "-rf", "--continue-on-collection-errors"]
        proc = self.sub(cmd, budget, {"VAE_TEST_DEVICE": self.device})
        self.write("tests.txt", f"$ VAE_TEST_DEVICE={self.device} {' '.join(cmd[1:])}\n\n{proc.stdout[-20000:]}\n{proc.stderr[-5000:]}")
        last = [line for line in proc.stdout.strip().splitlines() if "passed" in line or "failed" in line]
        return f"exit {proc.returncode}: {last[-1] if last else 'no summary line'}"

    def bench(self, budget: float) -> str:
        cmd = [sys.executable, "benchmarks/bench_train.py", "--device", self.device, "--json",
               str(self.results / "bench.json")]
        cmd += ["--quick", "--modes", "graphed"] if self.dry else ["--steps", "1200", "--rounds", "3", "--hidden", "500"]
        proc = self.sub(cmd, budget)
        self.write("bench.txt", f"$ {' '.join(cmd[1:])}\n\n{proc.stdout}\n{proc.stderr[-5000:]}")
        return f"exit {proc.returncode}"

    def graph_check(self, budget: float) -> str:
        """Train 40 steps from one state twice with the same draws — replayed CUDA graph and eager body —
        and compare the parameters; the later steps use the graph only if they agree."""
        import torch

        from vae_lib.training.algorithms import update_rule
        from vae_lib.training.graphed import GraphedEpoch
        from vae_lib.model.vae import VAE
        from vae_lib.runs.figure2_setup import PaperRun, paper_data

        report = {}
        for algorithm in ("aevb", "wake_sleep"):
            run = PaperRun("mnist", algorithm, 3)
            train, _, _ = paper_data("mnist", device=self.device)
            grey = train.x[:4000]
            models = []
            for capture in (False, True):
                torch.manual_seed(0)
                model = VAE(run.model_config()).to(self.device)
                opt = torch.optim.Adagrad(model.parameters(), lr=0.02, weight_decay=1 / 60000)
                stream = torch.zeros(4, device=self.device)
                ge = GraphedEpoch(model, opt, update_rule(algorithm), "dynamic", len(grey), 100, stream)
                g = torch.Generator(device=self.device).manual_seed(0)
                ge.begin_epoch(torch.randperm(len(grey), generator=g, device=self.device), grey, g)
                done = 0
                if capture and self.device == "cuda":
                    ge.capture(warmup=3)
                    done = 3
                for _ in range(40 - done):
                    ge.step()
                models.append(model)
            diff = max(float((p - q).abs().max()) for p, q in zip(models[0].parameters(), models[1].parameters()))
            report[algorithm] = {"max_abs_parameter_difference": diff, "agree": diff < 1e-3}
        ok = all(r["agree"] for r in report.values())
        self.step_mode = "graphed" if ok else "compile"
        report["step_mode_used_below"] = self.step_mode
        self.write("graph_check.json", report)
        return "ok" if ok else "graph and eager disagree: the runs below use step_mode='compile'"

    def _paper_run(self, dataset: str, algorithm: str, latent: int, samples: int, budget: float) -> dict:
        from vae_lib.runs.paper_runs import train_paper_run
        from vae_lib.runs.figure2_setup import PaperRun

        kw = dict(limit_train=1000, sweep_samples=500) if self.dry else {}
        return train_paper_run(PaperRun(dataset, algorithm, latent), samples, self.curves, self.results / "checkpoints",
                               device=self.device, step_mode=self.step_mode, checkpoint_seconds=30,
                               time_limit=max(budget - 20, 1), **kw)

    def paper_1e8(self, budget: float) -> str:
        samples = 3000 if self.dry else 10 ** 8
        start = time.perf_counter()
        curve = self._paper_run("mnist", "aevb", 3, samples, budget)
        seconds = time.perf_counter() - start
        reached = curve["samples_seen"][-1]
        if self.out is not None:  # the model itself comes back too (one file of a few MiB)
            import shutil
            self.out.mkdir(parents=True, exist_ok=True)
            shutil.copy(self.results / "checkpoints" / f"{curve['name']}.pt", self.out / "paper_1e8.pt")
        self.write("paper_1e8.json", {"target_samples": samples, "samples_reached": reached, "wall_s": seconds,
                                      "training_s": curve["seconds"][-1], "step_mode": self.step_mode,
                                      "test_bound": curve["test_bound"][-1], "train_bound": curve["train_bound"][-1],
                                      "device": curve["devices"][-1]["device"]})
        return f"{reached:.3g} of {samples:.3g} samples in {seconds:.0f} s, test bound {curve['test_bound'][-1]:.2f}"

    def loglik(self, budget: float) -> str:
        import torch

        from vae_lib.model.data import load_mnist
        from vae_lib.model.pixels import observe
        from vae_lib.inference.likelihood import importance_sampled_log_likelihood
        from vae_lib.training.train import load_checkpoint

        x = observe(load_mnist("test", device=self.device).x, "fixed", seed=0)
        k, n = (50, 20) if self.dry else (5000, len(x))
        rows = {}
        for path in sorted((ROOT / "checkpoints").glob("*.pt")):
            model, _, payload = load_checkpoint(path, self.device)
            if payload["model_config"]["likelihood"] != "bernoulli":
                continue
            if self.device == "cuda":
                torch.cuda.synchronize()
            start = time.perf_counter()
            ll = importance_sampled_log_likelihood(model, x[:n], k=k, batch_size=500, k_chunk=1000)
            if self.device == "cuda":
                torch.cuda.synchronize()
            mean, se = ll.mean_and_stderr()
            rows[path.stem] = {"k": k, "images": n, "log_px": mean, "stderr": se, "seconds": time.perf_counter() - start,
                               "test_images": "all 10000, fixed binarization seed 0" if n == 10000 else f"first {n}"}
            if self.dry:
                break
        self.write("loglik.json", rows)
        return ", ".join(f"{k}: {v['log_px']:.2f} in {v['seconds']:.1f} s" for k, v in rows.items())

    def figure2(self, budget: float) -> str:
        """The remaining time on the Figure 2 runs, ``--jobs`` processes at a time on the one GPU."""
        from vae_lib.runs.figure2_setup import figure2_runs

        runs = [r for r in figure2_runs() if not (r.dataset == "mnist" and r.algorithm == "aevb" and r.latent_dim == 3)]
        if self.args.runs:
            wanted = set(self.args.runs.split(","))
            runs = [r for r in figure2_runs() if r.name.removeprefix("fig2_") in wanted]
        if self.dry:
            runs = runs[:1]
        samples = 2000 if self.dry else int(self.args.samples)
        from vae_lib.runs.paper_runs import figure2_job

        options = dict(limit_train=1000, sweep_samples=500) if self.dry else {}
        jobs = {run.name: (figure2_job, dict(dataset=run.dataset, algorithm=run.algorithm, latent_dim=run.latent_dim,
                                             samples=samples, curves_dir=str(self.curves),
                                             checkpoint_dir=str(self.results / "checkpoints"), device=self.device,
                                             show_progress=False, step_mode=self.step_mode, checkpoint_seconds=30,
                                             **options)) for run in runs}
        done = self.sweep(jobs, self.args.jobs, budget - 25)
        return f"{len(done)} of {len(runs)} runs ended: " + "; ".join(done)

    def figure3(self, budget: float) -> str:
        """The six Figure 3 runs at once, one process each, until ``budget`` seconds; each stops
        resumably (checkpoint, final evaluation, curve) ``FIG3_MARGIN`` seconds before the deadline."""
        from vae_lib.runs.figure3 import figure3_runs

        runs = figure3_runs()
        if self.dry:
            runs = [r for r in runs if r.n_train == 1000 and r.algorithm in ("aevb", "mcem")]
        samples = 1500 if self.dry else int(self.args.fig3_samples)
        limit = max(budget - FIG3_MARGIN, 5)
        saved = ROOT / "checkpoints" / "figure3"   # the book's runs so far (committed): resume from them
        if not self.dry and saved.exists() and not (self.results / "checkpoints3").exists():
            import shutil
            shutil.copytree(saved, self.results / "checkpoints3")
        from vae_lib.runs.figure3 import figure3_job

        options = dict(n_eval=5, first_eval=500, is_k=20) if self.dry else {}
        done = self.sweep({run.name: (figure3_job, dict(algorithm=run.algorithm, n_train=run.n_train, samples=samples,
                                                        curves_dir=str(self.curves3),
                                                        checkpoint_dir=str(self.results / "checkpoints3"),
                                                        device=self.device, **options)) for run in runs},
                          len(runs), limit)
        if self.out is not None and (self.results / "checkpoints3").exists():   # small: they come back to resume
            self.out.mkdir(parents=True, exist_ok=True)
            with tarfile.open(self.out / "figure3_checkpoints.tar.gz", "w:gz") as tar:
                tar.add(self.results / "checkpoints3", arcname="checkpoints/figure3")
        return f"{len(runs)} Figure 3 runs: " + "; ".join(done)

    def beyond(self, budget: float) -> str:
        """Chapter 14's runs continued towards ``--beyond-epochs`` passes, one process each, until
        ``budget`` seconds (each keeps BEYOND_MARGIN for its scoring), then scored (K = 5000)."""
        from vae_lib.runs.beyond import DREG_RUNS, IWAE_RUNS

        # the committed checkpoints are slim (weights only), and the book's CPU budget is seconds on a GPU:
        # the runs start afresh here, from the same seeds, and their checkpoints come back to be resumed
        names = ["vae_k1"] if self.dry else [*IWAE_RUNS, *DREG_RUNS]
        checkpoints, scores = self.results / "checkpoints_beyond", self.results / "beyond"
        checkpoints.mkdir(parents=True, exist_ok=True)
        from vae_lib.runs.beyond import train_and_score

        limit = max(budget - BEYOND_MARGIN, 5)
        done = self.sweep({name: (train_and_score, dict(name=name, checkpoint_dir=str(checkpoints), results_dir=str(scores),
                                                        device=self.device, quick=self.dry,
                                                        epochs=int(self.args.beyond_epochs))) for name in names},
                          len(names), limit)
        if self.out is not None:
            self.out.mkdir(parents=True, exist_ok=True)
            with tarfile.open(self.out / "beyond_checkpoints.tar.gz", "w:gz") as tar:
                tar.add(checkpoints, arcname="checkpoints_beyond")
        return f"{len(names)} runs of chapter 14: " + "; ".join(done)

    def best(self, budget: float) -> str:
        """The book's best model (vae_lib.runs.best_model) continued from the committed checkpoints/best for
        ``budget`` seconds (a dry run: one epoch on the CPU); its checkpoint comes back in best_checkpoint.tar.gz
        (``--unpack`` it here, then commit it)."""
        import shutil

        from vae_lib.runs.best_model import checkpoint_path, describe, train_best

        folder = self.results / "checkpoints_best"
        saved = checkpoint_path(ROOT / "checkpoints" / "best")
        if not self.dry and saved.exists() and not checkpoint_path(folder).exists():
            folder.mkdir(parents=True, exist_ok=True)
            shutil.copy2(saved, checkpoint_path(folder))
        s = train_best(folder, device=self.device, time_limit=max(budget - 30, 5), epochs=1 if self.dry else None)
        if self.out is not None:
            self.out.mkdir(parents=True, exist_ok=True)
            with tarfile.open(self.out / "best_checkpoint.tar.gz", "w:gz") as tar:
                tar.add(checkpoint_path(folder), arcname=f"checkpoints/best/{checkpoint_path(folder).name}")
        return describe(s)


FIG3_MARGIN = 60   # seconds a Figure 3 run keeps for its last evaluation, checkpoint and curve
BEYOND_MARGIN = 90  # seconds a chapter-14 run keeps for scoring 2000 test images with K = 5000


UNPACK_FOLDERS = ("results/gpu", "results/figure2_gpu", "results/figure3", "checkpoints/figure3", "checkpoints/best")


class BundleError(ValueError):
    """A returned bundle that cannot be unpacked safely (its path is in the message)."""


def _payload(name: str, data: bytes):
    """A bundle member's content as the result guard compares it: JSON parsed, a checkpoint loaded (weights only)."""
    import io

    if name.endswith(".json"):
        return json.loads(data)
    if name.endswith(".pt"):
        import torch

        return torch.load(io.BytesIO(data), map_location="cpu", weights_only=True)
    return None


def unpack_plan(bundle: str | os.PathLike, root: Path = ROOT) -> list[tarfile.TarInfo]:
    """The members of ``bundle`` to extract under ``root``: regular files and folders inside UNPACK_FOLDERS,
    none of them a link, a device or a path that leaves its folder; a committed file is replaced only by a
    result that has gone further (or with ``--replace``). A BundleError naming the bundle otherwise; nothing
    is written here."""
    from vae_lib.base.committed import CommittedResultError, check_replace

    try:
        tar = tarfile.open(bundle)
    except (OSError, tarfile.TarError, ValueError) as err:
        raise BundleError(f"{bundle!r}: not a readable .tar.gz bundle ({err})") from None
    with tar:
        members, problems = tar.getmembers(), []
        for m in members:
            name = m.name.rstrip("/")
            if not (m.isfile() or m.isdir()):
                problems.append(f"{m.name}: a link or special file")
            elif name.startswith("/") or posixpath.normpath(name) != name or ".." in name.split("/"):
                problems.append(f"{m.name}: not a plain relative path")
            elif not any(name == f or name.startswith(f + "/") for f in UNPACK_FOLDERS):
                problems.append(f"{m.name}: outside {', '.join(UNPACK_FOLDERS)}")
            elif name.startswith("results/") and "/checkpoints" in name:
                problems.append(f"{m.name}: checkpoints travel in their own archives")
            elif m.isfile() and name.startswith("checkpoints/") and not name.endswith(".pt"):
                problems.append(f"{m.name}: only checkpoints (.pt) belong in a checkpoint archive")
        names = [m.name.rstrip("/") for m in members]
        files = [n for n, m in zip(names, members) if m.isfile()]
        problems += [f"{n}: more than one member of this name" for n in sorted({n for n in names if names.count(n) > 1})]
        problems += [f"{n}: a file where the bundle has a folder's contents" for n in files
                     if any(o.startswith(n + "/") for o in names)]
        for n, m in zip(names, members):
            if any(len(part) > 255 for part in n.split("/")):
                problems.append(f"{n[:60]}...: a name part longer than 255 characters")
                continue
            target = root / n
            if m.isfile() and target.is_dir() or m.isdir() and target.exists() and not target.is_dir():
                problems.append(f"{n}: would replace a {'folder' if target.is_dir() else 'file'} here")
            elif any(parent.exists() and not parent.is_dir() for parent in target.parents if root in parent.parents):
                problems.append(f"{n}: a file here stands where its folder would go")
        if problems:
            raise BundleError(f"{bundle}: refusing to unpack, {len(problems)} member(s) not allowed: "
                              + "; ".join(problems[:8]) + ("; ..." if len(problems) > 8 else ""))
        for m in members:
            target = root / m.name
            if m.isfile() and m.name.endswith(".pt"):
                try:
                    state = _payload(m.name, tar.extractfile(m).read()).get("model_state", {})
                    finite = all(bool(t.isfinite().all()) for t in state.values() if t.is_floating_point())
                except Exception as err:
                    raise BundleError(f"{bundle}: refusing to unpack, {m.name} is not a checkpoint this book wrote "
                                      f"(it does not load as tensors and plain values: {type(err).__name__})") from None
                if not finite:
                    raise BundleError(f"{bundle}: refusing to unpack, {m.name} holds non-finite weights "
                                      "(a diverged run)")
            if not m.isfile() or not target.exists():
                continue
            data = tar.extractfile(m).read()
            try:
                new = _payload(m.name, data)
            except Exception:   # unreadable: it may not replace a committed file (it has no progress to compare)
                new = None
            try:
                check_replace(target, new, lambda t=target: _payload(t.name, t.read_bytes()),
                              same=lambda t=target, d=data: t.read_bytes() == d)
            except CommittedResultError as err:
                raise BundleError(f"{bundle}: {err}") from None
    return members


def unpack(bundle: str) -> None:
    """Unpack a returned bundle into the repository (results/gpu, results/figure2_gpu, results/figure3) after
    :func:`unpack_plan` has checked every member; extracted with tarfile's "data" filter (no special bits)."""
    members = unpack_plan(bundle)
    try:
        with tarfile.open(bundle) as tar:
            tar.extractall(ROOT, members=members, filter="data")
    except (OSError, tarfile.TarError) as err:
        raise BundleError(f"{bundle}: extraction failed after the checks passed ({err}): see git status") from None
    print(f"unpacked {len(members)} entries of {bundle} into {ROOT / 'results'}")


def main(argv: list[str] | None = None) -> int:
    sys.path.insert(0, str(ROOT))   # vae_lib from this checkout (the device machine does not install it)
    from vae_lib.base.params import comma_list, existing_dir, finite_positive_float, positive_int, sample_count

    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--prepare", action="store_true", help="pack the data sets into .gpu_data/ and stop")
    p.add_argument("--unpack", metavar="BUNDLE", help="unpack a returned bundle into results/ and stop")
    p.add_argument("--replace", action="store_true", help="with --unpack: replace committed results on purpose")
    p.add_argument("--data-dir", type=existing_dir, default=None, help="data root to pack with --prepare (default: vae_lib's)")
    p.add_argument("--dry-run", action="store_true", help="every step at toy size on the CPU")
    p.add_argument("--out", default=None, help="folder for the bundle of results (the device tool's $OUT)")
    p.add_argument("--results", default=None, help="where the result files go (default: results/gpu)")
    p.add_argument("--budget", type=finite_positive_float, default=None, help="seconds for all steps (default 510; dry run 450)")
    p.add_argument("--jobs", type=positive_int, default=6, help="Figure 2 runs at a time on the GPU (default 6)")
    p.add_argument("--steps", type=comma_list, default=None,
                   help="comma-separated steps to run (default all: env,tests,bench,graph_check,paper_1e8,loglik,figure2,figure3,beyond)")
    p.add_argument("--runs", type=comma_list, default=None,
                   help="comma-separated Figure 2 runs, e.g. mnist_wake_sleep_z3,frey_aevb_z20 (default: all but mnist_aevb_z3)")
    p.add_argument("--samples", type=sample_count, default=10 ** 8, help="training samples each Figure 2 run aims for (default 1e8)")
    p.add_argument("--fig3-samples", type=sample_count, default=10 ** 8, help="training samples each Figure 3 run aims for (default 1e8)")
    p.add_argument("--beyond-epochs", type=positive_int, default=3280, help="passes chapter 14's runs aim for (default 3280, the IWAE paper's)")
    args = p.parse_args(argv)
    if args.prepare:
        prepare(args.data_dir)
        return 0
    if args.unpack is not None:
        from vae_lib.base.committed import apply_replace_option

        apply_replace_option(args)
        try:
            unpack(args.unpack)
        except BundleError as err:
            p.error(str(err))
        return 0
    args.budget = args.budget or (450.0 if args.dry_run else 510.0)
    if not args.dry_run:
        import torch
        if not torch.cuda.is_available():
            p.error("no CUDA device here: run with --dry-run on a machine without a GPU")
        if DATA_BUNDLE.exists() and "VAE_DATA_DIR" not in os.environ:
            target = Path("/tmp/vae_gpu_data")
            with tarfile.open(DATA_BUNDLE) as tar:
                tar.extractall(target)
            os.environ["VAE_DATA_DIR"] = str(target)
    sys.path.insert(0, str(ROOT))
    os.environ.setdefault("VAE_PROGRESS", "off")
    budgets = {"env": 30, "tests": 100, "bench": 150, "graph_check": 40, "paper_1e8": 150, "loglik": 60, "best": 120,
               "figure2": 1e9, "figure3": 1e9, "beyond": 1e9}
    if args.dry_run:
        budgets = {k: 120 for k in budgets}
    if args.steps:
        unknown = set(args.steps.split(",")) - set(budgets)
        if unknown:
            p.error(f"unknown steps {sorted(unknown)}; the steps are {list(budgets)}")
        budgets = {k: v for k, v in budgets.items() if k in args.steps.split(",")}
    if args.runs:
        from vae_lib.runs.figure2_setup import figure2_runs
        unknown = set(args.runs.split(",")) - {r.name.removeprefix("fig2_") for r in figure2_runs()}
        if unknown:
            p.error(f"unknown Figure 2 runs {sorted(unknown)}; see scripts/figure2.py --list")
    from vae_lib.base.committed import is_committed

    if args.results:   # a call writes into a folder of its own, never where committed results live
        held = [f for f in Path(args.results).rglob("*") if f.is_file() and is_committed(f)]
        if held:
            p.error(f"argument --results: {args.results} holds committed results ({held[0]}, ...): a call writes only "
                    "into a folder of its own (default: runs/gpu_run, a dry run's a temporary folder); --unpack "
                    "its bundle to bring the results in")
    r = Runner(args)
    for name, budget in budgets.items():
        r.step(name, budget, getattr(r, name))
    r.summary["total_s"] = round(time.perf_counter() - r.t0, 1)
    r.bundle()
    print(json.dumps(r.summary, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())

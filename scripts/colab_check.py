"""Every chapter, top to bottom, in a fresh runtime — the headless stand-in for opening each chapter
from its Colab launch button — with per-chapter pass/fail and wall time.

    python scripts/colab_check.py                          # every chapter, as committed (HEAD)
    python scripts/colab_check.py 07 08                    # only chapters whose names start with these
    python scripts/colab_check.py --notebooks worktree     # the working tree's notebooks instead
    python scripts/colab_check.py --output results/colab_check.txt

The fresh runtime (``scripts/fresh_runtime.py``, shared with ``tests/test_colab.py``): a Python in
which ``vae_lib`` is not importable, a Jupyter kernel for it, and the repository's ``HEAD`` served
from a local bare clone through ``$VAE_BOOK_REPOSITORY`` / ``$VAE_BOOK_REF``. Each chapter gets its
own empty working directory outside the repository, so its set-up cell clones the book afresh,
and runs under papermill in quick mode (``quick=True``, ``VAE_QUICK=1``). By default the notebook
executed is the one committed at ``HEAD`` (read from the served clone): what a Colab user's launch
button opens. A chapter passes when papermill finishes without an error, the set-up cell cloned the
book and made ``vae_lib`` importable from the clone, and no checkpoint of the clone was written.
Data come from ``$VAE_DATA_DIR`` (no download where it holds the files).
"""

from __future__ import annotations

import argparse
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import fresh_runtime  # noqa: E402

ROOT = fresh_runtime.ROOT


def first_error(run: fresh_runtime.ChapterRun) -> str:
    """The first error a chapter's run shows: a cell's exception, else papermill's last error line."""
    if run.executed is not None:
        for i, cell in enumerate(run.executed.cells):
            for out in cell.get("outputs", []):
                if out.get("output_type") == "error":
                    return f"cell {i}: {out.get('ename')}: {str(out.get('evalue'))[:200]}"
    lines = [line for line in run.stderr.splitlines() if line.strip()]
    return lines[-1][:300] if lines else f"exit {run.returncode}"


def verdict(run: fresh_runtime.ChapterRun, workdir: Path, url: str, ref: str) -> tuple[bool, str]:
    """(passed, note) for one chapter's run from ``workdir``."""
    if not run.ok:
        return False, first_error(run)
    clone = workdir / "vae-book"
    setup = run.cell_text(0)
    if f"cloning {url} ({ref})" not in setup or f"vae_lib is importable from {clone}" not in setup:
        return False, "the set-up cell did not clone the book / make vae_lib importable: " + setup.strip()[:200]
    changed = subprocess.run(["git", "status", "--porcelain", "--", "checkpoints"], cwd=clone,
                             capture_output=True, text=True).stdout.strip()
    if changed:
        return False, f"the run wrote checkpoints into the clone: {changed[:200]}"
    text = run.all_text()
    loaded, trained = text.count(": loaded"), text.count(": trained")
    models = f"; models loaded {loaded}, trained {trained}" if loaded or trained else ""
    warning = "; the set-up cell warned of another version" if "WARNING" in setup else ""
    return True, "cloned, vae_lib from the clone" + models + warning


def check_chapters(base: Path, only: list[str], notebooks: str, timeout: float) -> list[tuple[str, bool, float, str]]:
    """Build the fresh runtime under ``base`` and run the chosen chapters; a (name, passed, seconds,
    note) row each, printed as it comes."""
    python = fresh_runtime.make_fresh_python(base / "venv")
    if fresh_runtime.imports(python, "vae_lib", base):
        raise SystemExit("vae_lib is importable in the fresh Python: the check would prove nothing")
    kernel = fresh_runtime.install_kernel(python, base / "jupyter")
    served = base / "served.git"
    url, ref = fresh_runtime.serve_repository(served)
    env = fresh_runtime.fresh_environment(url, ref, base / "jupyter")
    names = [n for n in fresh_runtime.committed_chapters(served) if not only or n.startswith(tuple(only))]
    rows = []
    for name in names:
        workdir = base / "runs" / Path(name).stem
        workdir.mkdir(parents=True)
        notebook = workdir / name
        if notebooks == "committed":
            fresh_runtime.committed_notebook(served, name, notebook)
        else:
            shutil.copy(ROOT / "chapters" / name, notebook)
        run = fresh_runtime.run_chapter(notebook, workdir, kernel, env, timeout=timeout)
        passed, note = verdict(run, workdir, url, ref)
        rows.append((name, passed, run.seconds, note))
        print(f"{'PASS' if passed else 'FAIL'}  {name:<34} {run.seconds:7.1f} s  {note}", flush=True)
    return rows


def header(notebooks: str, commit: str, notes: list[str]) -> list[str]:
    """Lines saying what was run, where and when, and the caller's ``notes``."""
    load = " ".join(f"{x:.1f}" for x in os.getloadavg())
    return [f"# scripts/colab_check.py, {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}",
            f"# served commit {commit} (HEAD); notebooks executed: "
            + ("as committed at that commit (what the launch button opens)" if notebooks == "committed"
               else "the working tree's (uncommitted changes included)"),
            f"# quick mode, CPU only; {platform.node() or 'this machine'}: {os.cpu_count()} CPU cores, "
            f"load average at the start {load}",
            f"# VAE_DATA_DIR={os.environ.get('VAE_DATA_DIR', '(unset: the chapters download the data)')}",
            *(f"# note: {n}" for n in notes)]


def main(argv: list[str] | None = None) -> int:
    from vae_lib.base.params import finite_positive_float

    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("only", nargs="*", help="prefixes of the chapters to run (default: all)")
    p.add_argument("--notebooks", choices=("committed", "worktree"), default="committed",
                   help="execute the notebooks committed at HEAD (default) or the working tree's")
    p.add_argument("--timeout", type=finite_positive_float, default=1800, help="seconds per chapter (default 1800)")
    p.add_argument("--output", type=Path, help="also write the report to this file")
    p.add_argument("--keep", type=Path, help="build the runtime in this (new) folder and keep it")
    p.add_argument("--note", action="append", default=[], help="a line for the report's header (repeatable)")
    args = p.parse_args(argv)
    if not fresh_runtime.git_available():
        raise SystemExit("git is not installed: the set-up cell clones the book with it")
    base = args.keep or Path(tempfile.mkdtemp(prefix="colab_check_"))
    base.mkdir(parents=True, exist_ok=True)
    commit = subprocess.run(["git", "rev-parse", "HEAD"], cwd=ROOT, capture_output=True, text=True).stdout.strip()
    lines = header(args.notebooks, commit, args.note)
    print("\n".join(lines), flush=True)
    start = time.perf_counter()
    try:
        rows = check_chapters(base, args.only, args.notebooks, args.timeout)
    finally:
        if args.keep is None:
            shutil.rmtree(base, ignore_errors=True)
    passed = sum(r[1] for r in rows)
    load = " ".join(f"{x:.1f}" for x in os.getloadavg())
    summary = f"{passed}/{len(rows)} chapters passed in {time.perf_counter() - start:.0f} s (load average at the end {load})"
    print(summary)
    if args.output:
        body = [f"{'PASS' if ok else 'FAIL'}  {name:<34} {s:7.1f} s  {note}" for name, ok, s, note in rows]
        args.output.parent.mkdir(parents=True, exist_ok=True)
        args.output.write_text("\n".join([*lines, *body, summary]) + "\n")
    return 0 if passed == len(rows) else 1


if __name__ == "__main__":
    sys.exit(main())

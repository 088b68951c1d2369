"""A fresh runtime, as Colab gives one, built headless: the pieces shared by ``tests/test_colab.py``
and ``scripts/colab_check.py``.

* :func:`serve_repository` — the book's committed state (``HEAD``) served from a local repository, on
  a branch of its own (so a detached ``HEAD``, as in CI, works too); the set-up cell clones it
  through ``$VAE_BOOK_REPOSITORY`` / ``$VAE_BOOK_REF``, as it clones GitHub in Colab.
* :func:`make_fresh_python` — a virtual environment in which ``vae_lib`` is *not* importable but
  PyTorch and the other dependencies are (a ``.pth`` line puts this environment's ``site-packages``
  folder on its path; Python does not read the ``.pth`` files inside a folder added that way, so
  the editable install of ``vae_lib`` is left out), and a Jupyter kernel for it.
* :func:`run_chapter` — one chapter executed by papermill with that kernel, in quick mode, from a
  working directory outside the repository; returns what the checks need.

Nothing here writes into the repository: everything lives under the folder the caller gives.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import sysconfig
import time
from dataclasses import dataclass
from pathlib import Path

import nbformat

ROOT = Path(__file__).resolve().parents[1]
SERVED_BRANCH = "fresh-runtime"
KERNEL_NAME = "vae-fresh-runtime"
PROBE_TAG = "fresh-runtime-probe"
# printed by a cell appended to the executed copy: where the library and the checkpoints came from
PROBE_SOURCE = """import json, os, sys
import vae_lib
from vae_lib.runs.experiments import checkpoint_dir
print("FRESH-RUNTIME-PROBE", json.dumps({"vae_lib": vae_lib.__file__, "checkpoint_dir": str(checkpoint_dir().resolve()),
                                         "cwd": os.getcwd(), "executable": sys.executable}))
"""


def git_available() -> bool:
    """Whether a ``git`` executable is on the PATH (the set-up cell clones with it)."""
    return shutil.which("git") is not None


def _git(*args: str, cwd: Path | None = None) -> str:
    """Run git; its standard output, or a RuntimeError carrying its error output."""
    proc = subprocess.run(["git", *args], cwd=cwd, capture_output=True, text=True)
    if proc.returncode != 0:
        raise RuntimeError(f"git {' '.join(args)} failed: {proc.stderr.strip()}")
    return proc.stdout


def serve_repository(dest: Path, root: Path = ROOT, branch: str = SERVED_BRANCH) -> tuple[str, str]:
    """A bare repository at ``dest`` holding ``root``'s ``HEAD`` commit (only that commit, as a
    shallow fetch) on ``branch``. Returns (``file://`` address, branch) for ``VAE_BOOK_REPOSITORY``
    and ``VAE_BOOK_REF``. Uncommitted changes in ``root`` are not served: this is what a fresh
    runtime clones from GitHub once they are pushed."""
    _git("init", "--quiet", "--bare", str(dest))
    _git("fetch", "--quiet", "--depth", "1", root.resolve().as_uri(), f"HEAD:refs/heads/{branch}", cwd=dest)
    return dest.resolve().as_uri(), branch


def served_commit(served: Path, branch: str = SERVED_BRANCH) -> str:
    """The commit ``branch`` of the served repository points at."""
    return _git("rev-parse", branch, cwd=served).strip()


def committed_notebook(served: Path, name: str, dest: Path, branch: str = SERVED_BRANCH) -> Path:
    """Write the notebook ``chapters/<name>`` as committed in the served repository to ``dest``
    (what Colab's launch button opens) and return ``dest``."""
    dest.write_text(_git("show", f"{branch}:chapters/{name}", cwd=served))
    return dest


def committed_chapters(served: Path, branch: str = SERVED_BRANCH) -> list[str]:
    """The file names of the chapters committed in the served repository, in reading order."""
    names = _git("ls-tree", "--name-only", f"{branch}:chapters", cwd=served).split()
    return sorted(n for n in names if n.endswith(".ipynb"))


def make_fresh_python(venv: Path) -> Path:
    """A virtual environment at ``venv`` without pip and without ``vae_lib``, which imports this
    environment's other packages through a ``.pth`` line. Returns its python executable."""
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True)
    python = venv / "bin" / "python"
    query = "import sysconfig; print(sysconfig.get_paths()['purelib'])"
    own_site = Path(subprocess.run([str(python), "-c", query], capture_output=True, text=True, check=True).stdout.strip())
    folders = dict.fromkeys(sysconfig.get_paths()[k] for k in ("purelib", "platlib"))
    (own_site / "book_dependencies.pth").write_text("".join(f"{f}\n" for f in folders))
    return python


def imports(python: Path, module: str, cwd: Path) -> bool:
    """Whether ``module`` imports in ``python`` started from ``cwd``."""
    return subprocess.run([str(python), "-c", f"import {module}"], cwd=cwd, capture_output=True).returncode == 0


def install_kernel(python: Path, jupyter_path: Path, name: str = KERNEL_NAME) -> str:
    """A Jupyter kernelspec for ``python`` under ``jupyter_path`` (put it in ``$JUPYTER_PATH``);
    returns the kernel's name."""
    folder = jupyter_path / "kernels" / name
    folder.mkdir(parents=True, exist_ok=True)
    spec = {"argv": [str(python), "-m", "ipykernel_launcher", "-f", "{connection_file}"],
            "display_name": "fresh runtime (no vae_lib)", "language": "python"}
    (folder / "kernel.json").write_text(json.dumps(spec, indent=1))
    return name


def fresh_environment(repository: str, ref: str, jupyter_path: Path) -> dict[str, str]:
    """The environment of a chapter run: this process's, less anything that would find the book
    (``PYTHONPATH``, ``$VAE_CHECKPOINT_DIR``), plus the served repository, quick mode and the kernel's
    folder."""
    env = {k: v for k, v in os.environ.items()
           if k not in ("PYTHONPATH", "VAE_CHECKPOINT_DIR", "MPLBACKEND", "VIRTUAL_ENV")}
    env.update(VAE_BOOK_REPOSITORY=repository, VAE_BOOK_REF=ref, VAE_QUICK="1", VAE_PROGRESS="off",
               JUPYTER_PATH=str(jupyter_path), PYDEVD_DISABLE_FILE_VALIDATION="1")
    return env


def add_probe(notebook: Path) -> None:
    """Append the probe cell (:data:`PROBE_SOURCE`) to the notebook at ``notebook``."""
    nb = nbformat.read(notebook, as_version=4)
    nb.cells.append(nbformat.v4.new_code_cell(PROBE_SOURCE, metadata={"tags": [PROBE_TAG]}))
    nbformat.write(nb, notebook)


@dataclass
class ChapterRun:
    """What one chapter's run in the fresh runtime left: exit status, wall time, error output and
    the executed notebook (None when papermill wrote none)."""

    name: str
    returncode: int
    seconds: float
    stderr: str
    executed: nbformat.NotebookNode | None

    @property
    def ok(self) -> bool:
        return self.returncode == 0 and self.executed is not None

    def cell_text(self, index: int) -> str:
        """The text outputs (streams, plain-text results, error messages) of cell ``index``."""
        if self.executed is None:
            return ""
        parts = []
        for out in self.executed.cells[index].get("outputs", []):
            if out.get("output_type") == "stream":
                parts.append(out.get("text", ""))
            elif out.get("output_type") == "error":
                parts.append(f"{out.get('ename')}: {out.get('evalue')}")
            else:
                parts.append(out.get("data", {}).get("text/plain", ""))
        return "".join(parts)

    def all_text(self) -> str:
        """The text outputs of every cell, in order."""
        return "\n".join(self.cell_text(i) for i in range(len(self.executed.cells))) if self.executed else ""

    def probe(self) -> dict | None:
        """What the probe cell printed, or None when it did not run."""
        for line in self.all_text().splitlines():
            if line.startswith("FRESH-RUNTIME-PROBE "):
                return json.loads(line.split(" ", 1)[1])
        return None


def run_chapter(notebook: Path, workdir: Path, kernel: str, env: dict[str, str], timeout: float = 1800) -> ChapterRun:
    """Execute ``notebook`` with papermill and the kernel ``kernel``, the kernel started in
    ``workdir``, with parameter ``quick=True``; the executed copy goes beside ``notebook`` as
    ``<stem>.out.ipynb``."""
    out = notebook.with_name(f"{notebook.stem}.out.ipynb")
    cmd = [sys.executable, "-m", "papermill", str(notebook), str(out), "-k", kernel, "-p", "quick", "True",
           "--cwd", str(workdir), "--no-progress-bar", "--no-log-output"]
    start = time.perf_counter()
    try:
        proc = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=timeout)
        code, err = proc.returncode, proc.stderr
    except subprocess.TimeoutExpired as exc:
        tail = exc.stderr.decode(errors="replace") if isinstance(exc.stderr, bytes) else (exc.stderr or "")
        code, err = -1, f"timed out after {timeout:.0f} s\n{tail}"
    seconds = time.perf_counter() - start
    executed = nbformat.read(out, as_version=4) if out.exists() else None
    return ChapterRun(notebook.stem, code, seconds, err, executed)

"""The first cell of every chapter: makes ``vae_lib`` importable in a fresh runtime (Colab, a new
virtual environment) and does nothing where it already is.

A fresh Colab runtime has PyTorch but not this book. The cell clones the book's repository (so the
committed ``checkpoints/`` and ``results/`` come with it, and ``$VAE_CHECKPOINT_DIR`` points at them — ``pip install git+…`` would install the
library without them, and chapter 7 would retrain its models for hours), installs only the
dependencies the runtime lacks, puts the clone on ``sys.path`` (an editable install is not
importable in the running kernel until a restart) and moves into ``chapters/``, the folder every
chapter runs from; it says whether the runtime has a GPU (every chapter's ``device = None`` picks it). It checks that the clone's library is the version the notebook was written for.

The cell's text is made here, from ``_config.yml`` (the one place the repository's address is
written) and ``pyproject.toml`` (the version), and written into every chapter by
``python scripts/colab_cell.py``; ``tests/test_colab.py`` checks each chapter holds it and runs
chapters with it in a Python where ``vae_lib`` is not installed. The environment variables
``VAE_BOOK_REPOSITORY`` and ``VAE_BOOK_REF`` override the address and branch (the test clones the
local repository that way).
"""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
SETUP_TAG = "colab-setup"
CLONE_DIR = "vae-book"
# what a fresh runtime may lack, as (module, pip name); Colab has torch, numpy and matplotlib
RUNTIME_DEPENDENCIES = (("torch", "torch"), ("torchvision", "torchvision"), ("scipy", "scipy"),
                        ("matplotlib", "matplotlib"), ("tqdm", "tqdm"), ("ipywidgets", "ipywidgets"),
                        ("yaml", "pyyaml"))


def repository_url(root: Path = ROOT) -> str:
    """The repository's address from ``_config.yml`` (``repository: url:``)."""
    text = (root / "_config.yml").read_text()
    match = re.search(r"^repository:\s*\n\s+url:\s*(\S+)", text, flags=re.MULTILINE)
    if match is None:
        raise ValueError(f"{root / '_config.yml'} has no 'repository: url:' entry")
    return match.group(1)


def book_version(root: Path = ROOT) -> str:
    """The library's version from ``pyproject.toml``."""
    match = re.search(r'^version\s*=\s*"([^"]+)"', (root / "pyproject.toml").read_text(), flags=re.MULTILINE)
    if match is None:
        raise ValueError(f"{root / 'pyproject.toml'} has no version")
    return match.group(1)


def setup_cell_source(url: str | None = None, version: str | None = None, ref: str = "main") -> str:
    """The source of the set-up cell for the repository at ``url`` (default: ``_config.yml``'s) and the
    library ``version`` (default: ``pyproject.toml``'s)."""
    url, version = url or repository_url(), version or book_version()
    deps = ", ".join(f"({m!r}, {p!r})" for m, p in RUNTIME_DEPENDENCIES)
    return f'''# Set-up for Colab or any fresh runtime: makes the book's library, vae_lib, importable.
# Where vae_lib is already installed (pip install -r requirements.txt) this cell does nothing.
import importlib.util, os, re, subprocess, sys
if importlib.util.find_spec("vae_lib") is None:
    repo = os.environ.get("VAE_BOOK_REPOSITORY", "{url}")
    ref = os.environ.get("VAE_BOOK_REF", "{ref}")
    if not os.path.isdir("{CLONE_DIR}"):  # the whole book: library, checkpoints and results
        print(f"cloning {{repo}} ({{ref}}) into ./{CLONE_DIR} ...", flush=True)
        subprocess.run(["git", "clone", "--quiet", "--depth", "1", "--branch", ref, repo, "{CLONE_DIR}"], check=True)
    missing = [pip for module, pip in [{deps}] if importlib.util.find_spec(module) is None]
    if missing:
        print("installing", *missing, flush=True)
        subprocess.run([sys.executable, "-m", "pip", "install", "--quiet", *missing], check=True)
    sys.path.insert(0, os.path.abspath("{CLONE_DIR}"))
    os.chdir(os.path.join("{CLONE_DIR}", "chapters"))  # every chapter runs from chapters/
    os.environ["VAE_CHECKPOINT_DIR"] = os.path.abspath("../checkpoints")  # the clone's trained models
    cloned = re.search(r'^version\\s*=\\s*"([^"]+)"', open("../pyproject.toml").read(), re.M).group(1)
    if cloned != "{version}":
        print(f"WARNING: this notebook was written for vae_lib {version}; the clone has {{cloned}}. "
              "Open the notebook from the same branch, or expect differences.")
    import torch
    print("vae_lib is importable from", os.path.abspath(".."), "| device:", "cuda" if torch.cuda.is_available()
          else "cpu (for a GPU: Runtime > Change runtime type; chapters pick it up by themselves)")
'''


def is_setup_cell(cell: dict) -> bool:
    """Whether a notebook cell (nbformat dict) is the set-up cell."""
    return cell.get("cell_type") == "code" and SETUP_TAG in cell.get("metadata", {}).get("tags", [])

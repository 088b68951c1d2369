"""Committed results are the book's record: no command replaces one by accident.

A *committed result* is a file tracked by git in the repository that holds it (``git ls-files``). Every
writer of the book's result files (:func:`vae_lib.base.run_files.write_json`,
:func:`vae_lib.training.checkpoints.save_checkpoint`) asks :func:`check_replace` first, and a committed
file is replaced only

- by the same content (the write is skipped: nothing changes on disk), or
- by a result of the same kind that has gone *further* — more samples, more epochs, more finished runs
  (``progress``): a resumed run lengthening its committed curve and checkpoint, or
- on purpose: the scripts' one flag ``--replace`` (it sets ``VAE_REPLACE=1`` for the run and its
  workers), or ``replace=True`` from a caller whose whole job is to rewrite the file (a chapter's full
  run writing its ledger).

Anything else — a shorter run, a re-score at another K, a quick or dry run, a different protocol, a curve whose
earlier points changed — is refused with :class:`CommittedResultError`, which names the file, says what it
holds and what the new write would have held, and how to write elsewhere or replace on purpose. A replacement
made on purpose is announced on standard error. The path is resolved (links followed) before it is looked up;
where git cannot answer (not installed, a broken index), every existing file of the repository counts as
committed. Outside a git repository (a copy without history) nothing counts as committed."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

REPLACE_ENV = "VAE_REPLACE"
REPLACE_FLAG = "--replace"

_TRACKED: dict[Path, tuple[float, frozenset[str] | None]] = {}
_GIT_ENV = ("GIT_DIR", "GIT_WORK_TREE", "GIT_INDEX_FILE", "GIT_OBJECT_DIRECTORY", "GIT_COMMON_DIR")


class CommittedResultError(RuntimeError):
    """A write that would replace a committed result with a shorter, older, different or failed one."""


def replace_allowed() -> bool:
    """True when this process (or the script that started it) was told to replace committed results."""
    return os.environ.get(REPLACE_ENV, "") == "1"


def allow_replace(on: bool = True) -> None:
    """Let this process and the workers it starts afterwards replace committed results (``--replace``)."""
    if on:
        os.environ[REPLACE_ENV] = "1"
    else:
        os.environ.pop(REPLACE_ENV, None)


def _repositories(path: Path) -> list[Path]:
    """Every git repository that holds ``path``, innermost first (a repository made inside another does not
    hide the outer one's committed files)."""
    return [folder for folder in [path.parent, *path.parent.parents] if (folder / ".git").exists()]


def _tracked(top: Path) -> frozenset[str] | None:
    """The files git tracks in the repository at ``top``; None when git cannot say (then all count as committed)."""
    index = top / ".git" / "index"
    stamp = index.stat().st_mtime if index.exists() else 0.0
    cached = _TRACKED.get(top)
    if cached is None or cached[0] != stamp:
        env = {k: v for k, v in os.environ.items() if k not in _GIT_ENV}   # this repository's own index, always
        try:
            out = subprocess.run(["git", "-C", str(top), "ls-files", "-z"], capture_output=True, check=True,
                                 timeout=60, env=env).stdout
            tracked = frozenset(p for p in out.decode("utf-8", "surrogateescape").split("\0") if p)
        except (OSError, subprocess.SubprocessError):
            tracked = None
        cached = (stamp, tracked)
        _TRACKED[top] = cached
    return cached[1]


def is_committed(path: str | os.PathLike) -> bool:
    """True when ``path`` (links resolved) is a file tracked by git in the repository that holds it — or an
    existing file of a repository whose git cannot answer (the cautious reading)."""
    path = Path(os.path.realpath(path))
    for top in _repositories(path):
        tracked = _tracked(top)
        if tracked is None and path.exists() or tracked is not None and path.relative_to(top).as_posix() in tracked:
            return True
    return False


PROGRESS_KEYS = ("samples_seen", "points", "samples_done", "history", "epochs", "runs")


def result_progress(payload: Any, key: str | None = None) -> float | None:
    """How far the run behind a result file went, read from the book's file formats: a curve's samples
    (``samples_seen``, or its ``points``), a checkpoint's samples or epochs, a scores file's ``epochs``, a
    list of finished ``runs``; None when the payload says nothing comparable. ``key`` reads that counter only
    (one of PROGRESS_KEYS): two files are compared on the counter the committed one has."""
    if not isinstance(payload, dict):
        return None
    if key is not None:
        return result_progress({key: payload[key]}) if key in payload else None
    seen = payload.get("samples_seen")
    if isinstance(seen, list) and seen:
        return float(max(seen))
    if isinstance(seen, (int, float)):
        return float(seen)
    points = payload.get("points")
    if isinstance(points, list) and points and isinstance(points[-1], dict) and "samples" in points[-1]:
        return float(points[-1]["samples"])
    if isinstance(payload.get("samples_done"), (int, float)):
        return float(payload["samples_done"])
    history = payload.get("history")
    if isinstance(history, dict) and isinstance(history.get("epoch"), list) and history["epoch"]:
        return float(history["epoch"][-1])
    if isinstance(payload.get("epochs"), (int, float)):
        return float(payload["epochs"])
    runs = payload.get("runs")
    if isinstance(runs, list):
        return float(len(runs))
    if isinstance(runs, dict) and all(isinstance(v, dict) for v in runs.values()):   # sets re-scored per run and part
        return float(sum(len(v) for v in runs.values()))
    return None


IDENTITY_KEYS = ("format", "name", "dataset", "algorithm", "n_train", "n_test", "latent_dim", "hidden", "step_size",
                 "holdout", "k_eval", "eval_images", "eval_seed", "n_eval")
PREFIX_KEYS = ("samples_seen", "train_bound", "test_bound")   # a lengthened curve keeps its earlier values


def _configs_agree(old: Any, new: Any, skip: tuple[str, ...] = ("epochs",)) -> bool:
    """Two saved configurations (dicts) agree on every field both have, ``skip`` aside: a field added to the
    library after the old file was written is not a difference."""
    if not (isinstance(old, dict) and isinstance(new, dict)):
        return old == new
    return all(old[k] == new[k] for k in old.keys() & new.keys() if k not in skip)


def _same_run(old: Any, new: Any) -> str:
    """Why ``new`` is not the same run as ``old`` gone further ("" when it is): another format, run, protocol or
    configuration, or a record whose earlier values changed."""
    if not (isinstance(old, dict) and isinstance(new, dict)):
        return "" if type(old) is type(new) else "the new result is of another format"
    for k in IDENTITY_KEYS:
        if k in old and k in new and old[k] != new[k]:
            return f"the new result is of another run, protocol or format ({k}: {old[k]!r} → {new[k]!r})"
        if k in old and k not in new:
            return f"the new result is of another run, protocol or format ({k} is missing from it)"
    for k in ("model_config", "train_config"):
        if not _configs_agree(old.get(k), new.get(k)):
            return f"the new result is of another run, protocol or format ({k} differs)"
    for source in (old, old.get("history")):
        if not isinstance(source, dict):
            continue
        target = new if source is old else new.get("history") or {}
        for k in (*PREFIX_KEYS, "epoch"):
            a, b = source.get(k), target.get(k)
            if isinstance(a, list) and (not isinstance(b, list) or b[:len(a)] != a):
                return f"the new result changes the committed one's earlier values ({k})"
    for k in ("points", "runs"):
        a, b = old.get(k), new.get(k)
        if isinstance(a, list) and (not isinstance(b, list) or b[:len(a)] != a):
            return f"the new result changes the committed one's earlier {k}"
        if isinstance(a, dict) and (not isinstance(b, dict) or any(
                not isinstance(b.get(name), dict) or any(b[name].get(part) != v for part, v in parts.items())
                for name, parts in a.items() if isinstance(parts, dict))):
            return f"the new result drops or changes the committed one's {k}"
    return ""


def check_replace(path: str | os.PathLike, new: Any, old: Callable[[], Any] | None, *, replace: bool = False,
                  same: Callable[[], bool] | None = None) -> bool:
    """May ``path`` be written with the payload ``new``? True: write it; False: skip the write (the
    committed file already holds exactly this). Raises :class:`CommittedResultError` for a committed file
    that ``new`` would replace with something that has not gone further (:func:`result_progress`) or is of
    another kind (its format, run or protocol differ), unless ``replace`` or ``--replace`` (:func:`replace_allowed`).
    ``old`` reads the committed payload (called only for a committed file); ``same`` tells whether the
    bytes would not change."""
    path = Path(path)
    if not path.exists() or not is_committed(path):
        return True
    if same is not None and same():
        return False
    if replace or replace_allowed():
        why = "replace=True" if replace else f"{REPLACE_FLAG}, or {REPLACE_ENV}=1 in the environment"
        print(f"replacing the committed result {path} on purpose ({why})", file=sys.stderr, flush=True)
        return True
    try:
        before = old() if old is not None else None
    except Exception as err:   # an unreadable committed file is not replaced by accident either
        before, why = None, f"it could not be read back ({type(err).__name__})"
    else:
        why = ""
    key = next((k for k in PROGRESS_KEYS if isinstance(before, dict) and k in before
                and result_progress({k: before[k]}) is not None), None)
    p_old = result_progress(before, key) if key else None
    p_new = result_progress(new, key) if key else None
    other = _same_run(before, new) if before is not None else ""
    if before is not None and not other and p_old is not None and p_new is not None and p_new > p_old:
        return True
    if not why:
        if other and not (p_old is not None and p_new is not None and p_new <= p_old):
            why = other
        elif p_old is None or p_new is None:
            why = "its progress cannot be compared"
        else:
            why = f"the new result has gone {p_new:g} where the committed one has gone {p_old:g} (samples or epochs)"
    raise CommittedResultError(
        f"refusing to replace the committed result {path}: {why}. Committed results are read-only by default: "
        f"write elsewhere (the script's option for its output folder: --out, --output-dir, --curves, --checkpoints), "
        f"or replace it on purpose "
        f"with {REPLACE_FLAG} (environment {REPLACE_ENV}=1); `git checkout -- {path}` restores it")


def committed_progress(path: str | os.PathLike) -> float | None:
    """How far the committed JSON result at ``path`` went (:func:`result_progress`); None when ``path`` is not a
    committed file or says nothing comparable."""
    import json

    path = Path(path)
    if not (path.exists() and is_committed(path)):
        return None
    try:
        return result_progress(json.loads(path.read_text()))
    except (OSError, ValueError):
        return None


def check_run_goes_further(path: str | os.PathLike, reaches: float, unit: str = "samples",
                           elsewhere: str = "--out DIR") -> None:
    """Before a run starts: :class:`CommittedResultError` when its result ``path`` is committed and the run would
    reach no further (``reaches``, in ``unit``) than the committed one — it could only replace it with a shorter or
    an equal, different one. Nothing is refused with ``--replace``."""
    done = committed_progress(path)
    if done is not None and reaches <= done and not replace_allowed():
        raise CommittedResultError(
            f"the committed result {path} has gone {done:g} {unit}; this run would reach {reaches:g}: it would replace "
            f"it with a shorter or an equal, different run. Ask for more {unit} to lengthen it, write elsewhere "
            f"({elsewhere}), or replace it on purpose with {REPLACE_FLAG}")


def add_replace_option(parser: Any) -> None:
    """The scripts' one flag to replace committed results on purpose (an ``argparse`` parser)."""
    parser.add_argument(REPLACE_FLAG, action="store_true",
                        help="replace committed results on purpose (default: refuse, and say how to write elsewhere)")


_SET_BY_FLAG = False


def apply_replace_option(args: Any) -> None:
    """After parsing: ``--replace`` lets this process and its workers replace committed results; a later call
    without it (a script's ``main`` called again in one Python session) takes that permission back."""
    global _SET_BY_FLAG
    if getattr(args, "replace", False):
        allow_replace()
        _SET_BY_FLAG = True
    elif _SET_BY_FLAG:
        allow_replace(False)
        _SET_BY_FLAG = False

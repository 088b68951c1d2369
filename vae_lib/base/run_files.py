"""Result files that cannot lie: the small JSON files the book's runs write (curves, scores, ledgers,
re-scorings) are written atomically — a temporary file in the same folder, then a rename, so a reader
never sees half a file — and read back checked, every fault naming the file: missing, not JSON
(truncated?), or of another format than the reader expects. A committed result is replaced only by one
that has gone further, or on purpose (:mod:`vae_lib.base.committed`)."""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path
from typing import Any

from vae_lib.base.committed import check_replace


def usual_mode(path: str | os.PathLike) -> None:
    """Give a file made by ``tempfile.mkstemp`` (mode 0600) the mode an ordinary write would: 0666 less the umask."""
    mask = os.umask(0)
    os.umask(mask)
    os.chmod(path, 0o666 & ~mask)


def write_json(path: str | os.PathLike, payload: Any, indent: int | None = 1, *, replace: bool = False) -> Path:
    """Write ``payload`` as JSON to ``path`` atomically (its folder created if needed); returns the path.
    A committed file at ``path`` is guarded (:func:`vae_lib.base.committed.check_replace`; ``replace``:
    this write rewrites it on purpose)."""
    path = Path(path)
    text = json.dumps(payload, indent=indent, ensure_ascii=False) + "\n"
    if not check_replace(path, payload, lambda: json.loads(path.read_text()), replace=replace,
                         same=lambda: path.read_text() == text):
        return path
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w") as f:
            f.write(text)
        usual_mode(tmp)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


def read_json(path: str | os.PathLike, fmt: str, what: str, fix: str = "") -> dict:
    """The JSON object at ``path`` whose ``format`` is ``fmt``; else a FileNotFoundError (missing) or a
    ValueError (not JSON, not an object of that format) that names the file, says it should be ``what``
    (e.g. "a Figure 3 curve") and ends with ``fix`` (what to run to write it again)."""
    path = Path(path)
    tail = f": {fix}" if fix else ""
    if not path.exists():
        raise FileNotFoundError(f"{path} is missing: it should hold {what}{tail}")
    try:
        payload = json.loads(path.read_text())
    except json.JSONDecodeError as err:
        raise ValueError(f"{path} is not JSON ({err.msg} at line {err.lineno}; truncated?){tail}") from None
    got = payload.get("format") if isinstance(payload, dict) else None
    if got != fmt:
        raise ValueError(f"{path} is not {what} (format {got!r}, expected {fmt!r}){tail}")
    return payload

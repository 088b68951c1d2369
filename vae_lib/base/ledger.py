"""The reproduction ledger: the long tables an expert checks, kept out of the chapters' way.

A chapter teaches with a figure and at most one short table; every table behind it — each model's
numbers on the same images, the audits, the verdicts against the paper — goes to the ledger, the
book's appendix. The chapter's own code builds each table from what it just computed and records it
here (:meth:`Ledger.table`); a full run writes the chapter's entries to one JSON file
(``results/ledger/<chapter>.json``), and the appendix reads them all back (:func:`read_ledger`) and
shows them with the run that made them. A quick (smoke) run records nothing to disk, so its numbers
never stand in for a full run's.
"""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

from vae_lib.base.run_files import read_json, write_json

LEDGER_FORMAT = "vae_lib.ledger/1"


@dataclass(frozen=True)
class Entry:
    """One table of the ledger: a title, its Markdown rows, and a note saying what was measured how."""

    title: str
    markdown: str
    note: str = ""


@dataclass
class Ledger:
    """The ledger entries of one chapter (``chapter``: its notebook's name, e.g. ``"07_log_likelihood"``),
    in the order the chapter recorded them; ``run`` describes the run (device, mode, minutes)."""

    chapter: str
    entries: list[Entry] = field(default_factory=list)
    run: str = ""

    def table(self, title: str, header: list[str], rows: list[list[object]], note: str = "") -> str:
        """Record a table (``header`` and ``rows`` of cells, each rendered with ``str``) and return its
        Markdown. A title recorded twice replaces the first (a re-executed cell)."""
        if not header or any(len(r) != len(header) for r in rows):
            raise ValueError(f"ledger table {title!r}: every row needs {len(header)} cells")
        lines = ["| " + " | ".join(header) + " |", "| " + " | ".join("---" for _ in header) + " |"]
        lines += ["| " + " | ".join(str(c) for c in r) + " |" for r in rows]
        markdown = "\n".join(lines)
        self.entries = [e for e in self.entries if e.title != title] + [Entry(title, markdown, note)]
        return markdown

    def save(self, folder: str | Path, run: str) -> Path:
        """Write the entries to ``folder/<chapter>.json`` atomically (temporary file, then rename). Only a
        full run of the chapter saves, and its ledger is that run's to rewrite: the committed file is
        replaced on purpose (``replace=True``)."""
        folder = Path(folder)
        folder.mkdir(parents=True, exist_ok=True)
        path = folder / f"{self.chapter}.json"
        payload = {"format": LEDGER_FORMAT, "chapter": self.chapter, "run": run,
                   "written": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
                   "entries": [asdict(e) for e in self.entries]}
        return write_json(path, payload, replace=True)


def read_ledger_file(path: str | Path) -> tuple[Ledger, str]:
    """One chapter's ledger file: (its Ledger with ``run`` set, the time it was written). Every fault
    names the file: not JSON, another format, a chapter name that is not the file's, malformed entries."""
    path = Path(path)
    payload = read_json(path, LEDGER_FORMAT, "a ledger file", f"run chapter {path.stem} in full to write it again")
    if payload.get("chapter") != path.stem:
        raise ValueError(f"{path}: holds the ledger of chapter {payload.get('chapter')!r}, not {path.stem!r}")
    entries = payload.get("entries")
    if not isinstance(entries, list) or not entries:
        raise ValueError(f"{path}: no entries")
    try:
        ledger = Ledger(payload["chapter"], [Entry(**e) for e in entries], payload.get("run", ""))
    except TypeError as e:
        raise ValueError(f"{path}: a malformed entry ({e})") from None
    if any(not e.markdown.startswith("|") for e in ledger.entries):
        raise ValueError(f"{path}: an entry holds no Markdown table")
    return ledger, payload.get("written", "")


def read_ledger(folder: str | Path) -> list[tuple[Ledger, str]]:
    """Every chapter's ledger in ``folder``, in chapter order (file names sort as the book does)."""
    folder = Path(folder)
    files = sorted(folder.glob("*.json"))
    if not files:
        raise FileNotFoundError(f"{folder}: no ledger files; run the chapters in full (python scripts/run_book.py)")
    return [read_ledger_file(p) for p in files]

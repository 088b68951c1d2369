"""What a reader meets in each chapter, measured on the stored notebooks: prose words, visible code
lines, visible table rows, figures, interactive figures, exercises, and a reading time of 200 words
a minute plus 10 seconds a visible code line.

    python scripts/reading_metrics.py            # a Markdown table, one row per chapter
    python scripts/reading_metrics.py --json     # the same numbers as JSON

"Visible" is what the rendered page shows: cells tagged ``remove-cell`` or ``remove-input`` show no
code, ``hide-input`` code is folded away; ``remove-output`` and ``remove-cell`` hide the outputs.
Targets of the learner's path: every main chapter ≤ 30 minutes, ≤ 150 visible code lines, at least
one figure per 600 words.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
WORDS_PER_MINUTE = 200
SECONDS_PER_CODE_LINE = 10
HIDDEN_CODE = {"remove-cell", "remove-input", "hide-input", "hide-cell"}
HIDDEN_OUTPUT = {"remove-cell", "remove-output", "hide-output", "hide-cell"}


def prose_words(markdown: str) -> int:
    """Words of prose in a markdown cell: code blocks, directive options, math and markup left out."""
    text = re.sub(r"```.*?```", " ", markdown, flags=re.S)          # code blocks and literalincludes
    text = re.sub(r"\$\$.*?\$\$", " ", text, flags=re.S)            # display math
    text = re.sub(r"\$[^$]+\$", " x ", text)                         # inline math reads as one word
    text = re.sub(r"^\s*:::.*$|^\s*:\w+:.*$", " ", text, flags=re.M)  # fences and directive options
    text = re.sub(r"\{\w+\}`[^`]*`", " x ", text)                    # roles: one word each
    return len(re.findall(r"[A-Za-zÀ-ÿ0-9][\w'’.-]*", text))


def table_rows(text: str) -> int:
    """Rows of Markdown tables in ``text`` (header and separator lines not counted)."""
    rows = [line for line in text.splitlines() if line.strip().startswith("|")]
    separators = sum(1 for line in rows if re.fullmatch(r"\|[\s:|-]+\|?", line.strip()))
    return max(0, len(rows) - 2 * separators)


def chapter_metrics(path: Path) -> dict:
    """The metrics of one notebook (see the module docstring)."""
    cells = json.loads(path.read_text())["cells"]
    m = {"chapter": path.stem, "prose_words": 0, "code_lines": 0, "table_rows": 0, "figures": 0,
         "interactive": 0, "exercises": 0}
    for cell in cells:
        source = "".join(cell["source"])
        tags = set(cell.get("metadata", {}).get("tags", []))
        if cell["cell_type"] == "markdown":
            m["prose_words"] += prose_words(source)
            m["table_rows"] += table_rows(re.sub(r"```.*?```", "", source, flags=re.S))
            m["exercises"] += len(re.findall(r"^:::\{exercise\}", source, re.M))
            continue
        if cell["cell_type"] != "code":
            continue
        if not tags & HIDDEN_CODE:
            m["code_lines"] += sum(1 for line in source.splitlines() if line.strip() and not line.strip().startswith("#"))
        if tags & HIDDEN_OUTPUT:
            continue
        for output in cell.get("outputs", []):
            data = output.get("data", {})
            m["figures"] += "image/png" in data or "image/svg+xml" in data
            m["interactive"] += "application/vnd.jupyter.widget-view+json" in data or (
                "text/html" in data and "<script" in "".join(data["text/html"]))
            if "text/markdown" in data:
                m["table_rows"] += table_rows("".join(data["text/markdown"]))
    m["minutes"] = round(m["prose_words"] / WORDS_PER_MINUTE + m["code_lines"] * SECONDS_PER_CODE_LINE / 60, 1)
    return m


INTRO_START, INTRO_END = "<!-- reading-times: written by scripts/reading_metrics.py --intro -->", "<!-- /reading-times -->"


def contents_table(rows: list[dict], toc_text: str) -> str:
    """The intro's table of contents: each chapter of ``_toc.yml`` (its text ``toc_text``) under its part,
    with its reading time and exercises from ``rows`` (the chapters' metrics)."""
    import yaml

    by_name = {r["chapter"]: r for r in rows}
    lines = ["| part | chapter | reading time | exercises |", "| --- | --- | --- | --- |"]

    def entries(items):
        for item in items:
            yield item["file"]
            yield from entries(item.get("sections", []))

    for part in yaml.safe_load(toc_text)["parts"]:
        for i, file in enumerate(entries(part["chapters"])):
            r = by_name.get(Path(file).name)
            if r is None:
                continue
            lines.append(f"| {part['caption'] if i == 0 else ''} | {{doc}}`{file}` | {max(1, round(r['minutes']))} min "
                         f"| {r['exercises'] or '—'} |")
    return "\n".join(lines)


def library_size(lib: Path = ROOT / "vae_lib") -> str:
    """One sentence on the library's real size: its modules, lines of Python and JavaScript, and the layers its
    front page (vae_lib/__init__.py) lists."""
    import re

    modules = [p for p in lib.rglob("*.py") if p.stem != "__init__"]
    python = sum(len(p.read_text().splitlines()) for p in lib.rglob("*.py"))
    script = sum(len(p.read_text().splitlines()) for p in lib.rglob("*.js"))
    front = (lib / "__init__.py").read_text()
    layers = len(re.findall(r"^- ``\w+`` — ", front.split('"""')[1], re.M))
    return (f"The book's library, `vae_lib`, is {len(modules)} modules in {layers} layers: {python:,} lines of Python"
            + (f" and {script:,} of JavaScript" if script else "") + " ({doc}`api`).")


def intro_block(rows: list[dict], toc_text: str) -> str:
    """What ``--intro`` writes between the markers: :func:`contents_table` and :func:`library_size`."""
    return f"{contents_table(rows, toc_text)}\n\n{library_size()}"


def write_intro(rows: list[dict], intro: Path = ROOT / "intro.md", toc: Path = ROOT / "_toc.yml") -> bool:
    """Replace the block between the markers in ``intro`` with :func:`intro_block`; True if it changed."""
    text = intro.read_text()
    if INTRO_START not in text or INTRO_END not in text:
        raise ValueError(f"{intro}: the markers {INTRO_START!r} and {INTRO_END!r} are missing")
    head, rest = text.split(INTRO_START, 1)
    _, tail = rest.split(INTRO_END, 1)
    new = f"{head}{INTRO_START}\n{intro_block(rows, toc.read_text())}\n{INTRO_END}{tail}"
    intro.write_text(new)
    return new != text


def all_chapters() -> list[dict]:
    """The metrics of every chapter notebook, in file-name order."""
    return [chapter_metrics(p) for p in sorted((ROOT / "chapters").glob("[0-9][0-9]*_*.ipynb"))]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--json", action="store_true", help="print JSON instead of a Markdown table")
    parser.add_argument("--intro", action="store_true", help="write each chapter's reading time into intro.md's table of contents")
    args = parser.parse_args(argv)
    rows = all_chapters()
    if args.intro:
        print("intro.md " + ("updated" if write_intro(rows) else "already current"))
        return 0
    if args.json:
        print(json.dumps(rows, indent=1))
        return 0
    keys = ["prose_words", "code_lines", "table_rows", "figures", "interactive", "exercises", "minutes"]
    print("| chapter | " + " | ".join(k.replace("_", " ") for k in keys) + " |")
    print("| --- |" + " --- |" * len(keys))
    for r in rows:
        print(f"| {r['chapter']} | " + " | ".join(str(r[k]) for k in keys) + " |")
    return 0


if __name__ == "__main__":
    sys.exit(main())

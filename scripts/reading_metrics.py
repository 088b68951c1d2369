"""What a reader meets in each chapter, measured on the stored notebooks, and how long a learner takes to read it.

    python scripts/reading_metrics.py              # per chapter: what the page shows, minutes, targets
    python scripts/reading_metrics.py --json       # the same numbers as JSON
    python scripts/reading_metrics.py --calibrate  # the rates fitted to a learner's timings, chapter by chapter
    python scripts/reading_metrics.py --widths     # visible code lines longer than 78 characters
    python scripts/reading_metrics.py --intro      # write the reading times into intro.md's contents table

What is counted is what the rendered page shows (MyST-NB, this book's ``_config.yml``):

- **prose words**: words of Markdown cells and of Markdown outputs (``display(Markdown(...))``), without
  code, math, directive options, link targets or HTML tags; a role (``{doc}`x```) is one word. The text of
  a ``:::{solution}`` with ``:class: dropdown`` is folded on the page and not counted (``folded_words``).
- **formulas**: each inline ``$...$`` is one formula; each display formula (``$$...$$``, ``{math}``,
  an amsmath environment) counts as ``DISPLAY_FORMULA_WEIGHT`` inline ones, because a learner works through
  it. Prose with mathematics is read slower than prose alone: the formulas are timed on their own.
- **code lines**: non-blank lines, comments included (the page shows them, a learner reads them), of code
  cells not tagged ``remove-cell``, ``remove-input``, ``hide-input`` or ``hide-cell``; of fenced code
  blocks in Markdown cells and Markdown outputs (chapter 1 shows its set-up cell so); and of every
  ``{literalinclude}``, resolved as Sphinx does, relative to the notebook (``:pyobject:``, ``:lines:``,
  ``:start-after:``/``:start-at:``, ``:end-before:``/``:end-at:``, ``:dedent:``). A ``hide-input`` cell
  is folded behind a "Show code" button: its lines are counted apart (``folded_code_lines``) at a glance's
  rate, for a learner opens some of them; the timings say so (a fit without them errs by 4.3 minutes on a
  left-out chapter, with them by 3.0: the chapters that fold most, 7 and 7b, were read slowest for their
  visible content; the 2 s prior was picked among 1, 2 and 5 s by that error, a mild selection on nine
  points).
- **output lines**: printed output (streams, ``text/plain``, error tracebacks) of cells not tagged
  ``remove-output``, ``remove-cell``, ``hide-output`` or ``hide-cell``, each non-blank line counted by
  how many rows of ``WRAP`` characters it fills. An output shows its richest kind only (an image before
  its ``text/plain`` ``<Figure ...>``), as MyST-NB renders it.
- **figures** (images), **interactive** figures (widgets, HTML with scripts), **table rows** (Markdown
  tables in cells and outputs, HTML tables in outputs; header and separator rows not counted; a table's
  words are timed by its rows, its formulas as formulas) and **exercises** (``:::{exercise}``). A Markdown
  output renders as prose, tables and code, and is counted as those, not as printed lines.

The reading time is a sum of these at a learner's rates, named here (the constants below):

- ``WORDS_PER_MINUTE``        = 185   prose words (reading to learn, not skimming; formulas timed apart)
- ``SECONDS_PER_FORMULA``     = 4.9   each inline formula; a display formula ``DISPLAY_FORMULA_WEIGHT`` (3)
                                      times that
- ``SECONDS_PER_CODE_LINE``   = 8.1   each visible code line, cells and literalinclude'd library code alike
- ``SECONDS_PER_OUTPUT_LINE`` = 1.6   each wrapped row of printed output and each table row
- ``SECONDS_PER_FIGURE``      = 16.2  each figure or interactive figure
- ``SECONDS_PER_FOLDED_LINE`` = 1.6   each line of folded (``hide-input``) code

Exercises get no rate: the timings do not say whether the learner worked them, and every chapter timed has
two or three, so a rate for them could not be told from a constant (the table shows their count).
Prose with mathematics comes out slow as it should: chapter 3's 1238 words and 106 formula units take
6.7 + 8.7 minutes, about 80 words a minute of mathematical prose.

How the rates were found (``--calibrate`` prints it all): a learner new to the book (Python, PyTorch basics,
undergraduate probability) timed chapters 1-8 and 7b at 22, 35, 32, 40, 45, 50, 40, 25 and 28 minutes
(``LEARNER_MINUTES``) on the notebooks as they stood when issue 31 was filed, commit ``CALIBRATION_COMMIT``
= 0a4c284 (the last chapter commit before the issue; its counts are the issue's: chapter 6 shows 117
literalinclude'd lines and 67 printed lines, chapter 5 87 and chapter 7 66 included lines). Those notebooks
are read from git with the library of that commit (``counts_at``), their counts stored in
``CALIBRATION_FEATURES``. Each rate is a prior guess (``PRIOR_RATES``: 150 words a minute, 6 s a formula,
10 s a code line, 2 s an output row, 20 s a figure, 2 s a folded line) times ONE scale s, fitted by least
squares to the nine timings: s = 0.811, residual rms 2.6 minutes, 3.0 when each chapter is predicted from a
fit to the other eight (the priors alone: 8.8). Six rates fitted freely (non-negative least squares) predict
left-out chapters a little better (2.5) but at rates no reader has (0 s an output row, 7.8 s a figure) that
swing with small changes of the measure (while this measure was built, counting a table's words as prose or
not moved a free fit from 214 to 80 words a minute): nine timings do not pin six rates, so the one-scale
fit is used.
``tests/test_reading_metrics.py`` refits it from the stored counts and checks that the constants are the fit.

Targets of the learner's path (chapters 01-08 with 07b): every core chapter <= ``CHAPTER_TARGET_MINUTES``,
the core path <= ``PATH_TARGET_MINUTES``.
"""

from __future__ import annotations

import argparse
import ast
import json
import math
import re
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

WRAP = 78                         # characters a row of code or output holds on the page
CODE_COLUMN = 75                  # characters of code the page's column shows at 1280 px without a scroll
                                  # (measured in Chromium: a 666 px code block, 8.43 px a character)
DISPLAY_FORMULA_WEIGHT = 3        # a display formula counts as this many inline ones
# The rates: PRIOR_RATES times the fitted scale (0.811, --calibrate), rounded.
WORDS_PER_MINUTE = 185
SECONDS_PER_FORMULA = 4.9
SECONDS_PER_CODE_LINE = 8.1
SECONDS_PER_OUTPUT_LINE = 1.6
SECONDS_PER_FIGURE = 16.2
SECONDS_PER_FOLDED_LINE = 1.6

CHAPTER_TARGET_MINUTES = 25
PATH_TARGET_MINUTES = 180
CORE = ("01_", "02_", "03_", "04_", "05_", "06_", "07_", "07b_", "08_")

# The learner's timings (issue 31, minutes) and the commit whose notebooks they timed.
CALIBRATION_COMMIT = "0a4c284"
LEARNER_MINUTES = {"01_introduction": 22, "02_latent_variable_models": 35, "03_elbo": 32,
                   "04_reparameterization": 40, "05_building_the_vae": 45, "06_training": 50,
                   "07_log_likelihood": 40, "07b_where_the_bound_loses": 25, "08_latent_space": 28}
# Prior guesses, minutes per unit of features(): 150 words a minute (reading to learn), 6 s an inline
# formula, 10 s a code line (the former measure's), 2 s an output row, 20 s a figure, 2 s a folded code line.
PRIOR_RATES = {"words": 1 / 150, "formulas": 6 / 60, "code_lines": 10 / 60, "output_lines": 2 / 60,
               "figures": 20 / 60, "folded_code_lines": 2 / 60}
# features() of those notebooks, as counts_at(CALIBRATION_COMMIT) reads them (checked by --calibrate).
CALIBRATION_FEATURES: dict[str, dict[str, float]] = {
    "01_introduction": {"words": 1019, "formulas": 67, "code_lines": 67, "output_lines": 64, "figures": 3,
                        "folded_code_lines": 35},
    "02_latent_variable_models": {"words": 1101, "formulas": 115, "code_lines": 115, "output_lines": 32,
                                  "figures": 3, "folded_code_lines": 43},
    "03_elbo": {"words": 1238, "formulas": 106, "code_lines": 81, "output_lines": 26, "figures": 3,
                "folded_code_lines": 84},
    "04_reparameterization": {"words": 1359, "formulas": 113, "code_lines": 112, "output_lines": 33, "figures": 3,
                              "folded_code_lines": 73},
    "05_building_the_vae": {"words": 1513, "formulas": 90, "code_lines": 196, "output_lines": 46, "figures": 5,
                            "folded_code_lines": 126},
    "06_training": {"words": 2525, "formulas": 37, "code_lines": 197, "output_lines": 85, "figures": 6,
                    "folded_code_lines": 193},
    "07_log_likelihood": {"words": 1599, "formulas": 90, "code_lines": 98, "output_lines": 109, "figures": 3,
                          "folded_code_lines": 202},
    "07b_where_the_bound_loses": {"words": 1184, "formulas": 48, "code_lines": 20, "output_lines": 50,
                                  "figures": 6, "folded_code_lines": 232},
    "08_latent_space": {"words": 1105, "formulas": 30, "code_lines": 142, "output_lines": 15, "figures": 9,
                        "folded_code_lines": 13},
}

HIDDEN_CODE = {"remove-cell", "remove-input", "hide-input", "hide-cell"}
FOLDED_CODE = {"hide-input", "hide-cell"}
HIDDEN_OUTPUT = {"remove-cell", "remove-output", "hide-output", "hide-cell"}
# MyST-NB's order for HTML pages: an output shows the first of these it holds.
MIME_PRIORITY = ("application/vnd.jupyter.widget-view+json", "application/javascript", "text/html",
                 "image/svg+xml", "image/png", "image/jpeg", "image/gif", "text/markdown", "text/latex",
                 "text/plain")
FENCE = re.compile(r"^(\s*)(`{3,}|~{3,}|:{3,})\s*(.*)$")
OPTION = re.compile(r"^\s*:([\w-]+):\s*(.*?)\s*$")
DISPLAY_ENVS = r"(?:equation|align|gather|multline|flalign|alignat|eqnarray)\*?"


def _zero() -> dict:
    return {"prose_words": 0, "formulas_inline": 0, "formulas_display": 0, "code_lines": 0,
            "included_lines": 0, "folded_code_lines": 0, "output_lines": 0, "table_rows": 0, "figures": 0,
            "interactive": 0, "exercises": 0, "folded_words": 0}


def _add(m: dict, other: dict) -> None:
    for key, value in other.items():
        m[key] = m.get(key, 0) + value


# --- literalinclude, resolved as Sphinx does ------------------------------------------------------------


def _pyobject_lines(source: str, name: str) -> tuple[int, int]:
    """First and last line (1-based) of the class, function or method ``name`` (``Class.method``) in
    ``source``, decorators included and trailing comments not, as Sphinx's ``:pyobject:`` takes them."""
    body = ast.parse(source).body
    node = None
    for part in name.split("."):
        node = next((n for n in body if isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef))
                     and n.name == part), None)
        if node is None:
            raise ValueError(f"no {name!r} to include")
        body = node.body
    start = min([node.lineno] + [d.lineno for d in node.decorator_list])
    return start, node.end_lineno


def _line_numbers(spec: str, total: int) -> list[int]:
    """Sphinx's ``:lines:`` (``1-3,5,8-``) as 0-based indices."""
    out = []
    for part in spec.split(","):
        part = part.strip()
        if "-" in part:
            a, b = part.split("-", 1)
            out += range(int(a or 1) - 1, int(b) if b else total)
        elif part:
            out.append(int(part) - 1)
    return [i for i in out if 0 <= i < total]


def included_lines(target: Path, options: dict[str, str]) -> list[str]:
    """The lines a ``{literalinclude}`` of ``target`` with ``options`` shows (Sphinx's order: pyobject,
    start, end, lines, dedent)."""
    text = target.read_text()
    lines = text.splitlines()
    if "pyobject" in options:
        start, end = _pyobject_lines(text, options["pyobject"])
        lines = lines[start - 1:end]
    for key in ("start-after", "start-at"):
        if key in options:
            i = next(i for i, line in enumerate(lines) if options[key] in line)
            lines = lines[i + (key == "start-after"):]
    for key in ("end-before", "end-at"):
        if key in options:
            i = next(i for i, line in enumerate(lines) if options[key] in line)
            lines = lines[:i + (key == "end-at")]
    if "lines" in options:
        lines = [lines[i] for i in _line_numbers(options["lines"], len(lines))]
    if "dedent" in options:
        n = int(options["dedent"]) if options["dedent"] else min(
            (len(line) - len(line.lstrip()) for line in lines if line.strip()), default=0)
        lines = [line[n:] for line in lines]
    return lines


# --- Markdown -------------------------------------------------------------------------------------------


def _strip_math(text: str, m: dict) -> str:
    """``text`` with its math removed, the formulas counted into ``m``."""
    n = [0]

    def display(match):
        n[0] += 1
        return " "

    text = re.sub(r"\$\$.*?\$\$", display, text, flags=re.S)
    text = re.sub(r"\\begin\{(" + DISPLAY_ENVS + r")\}.*?\\end\{\1\}", display, text, flags=re.S)
    m["formulas_display"] += n[0]
    inline = re.compile(r"(?<![\\$])\$(?=\S)(?:[^$\n]|\n(?!\s*\n))+?(?<=\S)\$")   # within a paragraph
    m["formulas_inline"] += len(inline.findall(text))
    return inline.sub(" ", text)


def prose_words(markdown: str) -> int:
    """Words of prose in Markdown: code blocks, directive options, math and markup left out."""
    return markdown_metrics(markdown)["prose_words"]


def _words(text: str) -> int:
    text = re.sub(r"<[^>]+>", " ", text)                              # HTML tags
    text = re.sub(r"!?\[([^\]]*)\]\([^)]*\)", r"\1", text)            # links and images: their text
    text = re.sub(r"\{[\w:-]+\}`[^`]*`", " x ", text)                 # roles: one word each
    text = re.sub(r"^\s*\|.*$", " ", text, flags=re.M)                # tables: timed by the row
    return len(re.findall(r"[A-Za-zÀ-ÿ0-9][\w'’.-]*", text))


def table_rows(text: str) -> int:
    """Rows of Markdown tables in ``text`` (header and separator lines not counted)."""
    rows = [line for line in text.splitlines() if line.strip().startswith("|")]
    separators = sum(1 for line in rows if re.fullmatch(r"\|[\s:|-]+\|?", line.strip()))
    return max(0, len(rows) - 2 * separators)


def markdown_metrics(markdown: str, base: Path | None = None, widths: list | None = None,
                     limit: int = WRAP) -> dict:
    """What a Markdown cell (or output) shows: prose words, formulas, table rows, exercises, code lines of
    its fences and literalinclude'd lines (``base``: the notebook's folder the includes are relative to;
    None leaves them uncounted). Visible code lines longer than ``limit`` go to ``widths``."""
    m = _zero()
    lines = markdown.splitlines()
    prose: list[str] = []
    i = 0
    while i < len(lines):
        fence = FENCE.match(lines[i])
        if not fence:
            prose.append(lines[i])
            i += 1
            continue
        marker, info = fence.group(2), fence.group(3).strip()
        j = i + 1
        while j < len(lines) and not re.match(r"^\s*" + re.escape(marker[0]) + "{%d,}\\s*$" % len(marker), lines[j]):
            j += 1
        body = lines[i + 1:j]
        i = j + 1
        options = {}
        while body and OPTION.match(body[0]):
            key, value = OPTION.match(body[0]).groups()
            options[key] = value
            body = body[1:]
        name = re.match(r"\{([\w:-]+)\}", info)
        name = name.group(1) if name else None
        if name == "literalinclude":
            if base is not None:
                target = (base / info.split("}", 1)[1].strip()).resolve()
                try:
                    shown = included_lines(target, options)
                except (OSError, ValueError, SyntaxError, StopIteration) as error:
                    raise ValueError(f"literalinclude of {target} with {options}: {error!r}") from error
                m["included_lines"] += sum(1 for line in shown if line.strip())
                if widths is not None:
                    widths += [line for line in shown if len(line) > limit]
        elif name == "math":
            m["formulas_display"] += 1
        elif name in (None, "code", "code-block", "code-cell", "sourcecode") and marker[0] != ":":
            m["code_lines"] += sum(1 for line in body if line.strip())
            if widths is not None:
                widths += [line for line in body if len(line) > limit]
        elif name in ("mermaid", "raw", "bibliography", "toctree", "figure", "image"):
            m["figures"] += name in ("mermaid", "figure", "image")
        else:                                             # a directive holding Markdown: exercise, admonition...
            if name == "solution" and "dropdown" in options.get("class", ""):   # folded: not on the path
                inner = markdown_metrics("\n".join(body), base, None, limit)
                m["folded_words"] += inner["prose_words"] + inner["folded_words"]
                continue
            inner = markdown_metrics("\n".join(body), base, widths, limit)
            m["exercises"] += name == "exercise"
            title = info.split("}", 1)[1] if name else info      # an admonition's title is shown
            m["prose_words"] += _words(_strip_math(title, m))
            _add(m, inner)
    text = _strip_math("\n".join(prose), m)
    m["table_rows"] += table_rows(text)
    m["prose_words"] += _words(text)
    m["figures"] += len(re.findall(r"!\[[^\]]*\]\([^)]*\)|<img\b", text))
    return m


# --- outputs and notebooks ------------------------------------------------------------------------------


def wrapped_rows(text: str, width: int = WRAP) -> int:
    """Rows ``text`` fills on the page: each non-blank line wraps every ``width`` characters."""
    return sum(math.ceil(len(line.rstrip()) / width) for line in text.splitlines() if line.strip())


def _text(value) -> str:
    return "".join(value) if isinstance(value, list) else str(value)


def output_metrics(output: dict) -> dict:
    """What one output shows (its richest kind only)."""
    m = _zero()
    kind = output.get("output_type")
    if kind == "stream":
        m["output_lines"] += wrapped_rows(_text(output.get("text", "")))
        return m
    if kind == "error":
        m["output_lines"] += wrapped_rows(re.sub(r"\x1b\[[0-9;]*m", "", "\n".join(output.get("traceback", []))))
        return m
    data = output.get("data", {})
    mime = next((k for k in MIME_PRIORITY if k in data), None)
    if mime is None:
        return m
    value = _text(data[mime])
    if mime.startswith("image/"):
        m["figures"] += 1
    elif mime in ("application/vnd.jupyter.widget-view+json", "application/javascript") or "<script" in value:
        m["interactive"] += 1
    elif mime == "text/html":
        rows = len(re.findall(r"<tr\b", value))
        m["table_rows"] += max(0, rows - (1 if "<th" in value else 0))
        if not rows:
            m["prose_words"] += _words(value)
    elif mime == "text/markdown":
        _add(m, markdown_metrics(value))
    else:                                                 # text/plain, text/latex
        m["output_lines"] += wrapped_rows(value)
    return m


def _cells(path: Path) -> list[dict]:
    return json.loads(path.read_text())["cells"]


def _code_lines(source: str) -> list[str]:
    return [line for line in source.splitlines() if line.strip()]


def chapter_metrics(path: Path) -> dict:
    """The counts of one notebook (see the module docstring) and its reading time in minutes."""
    m = {"chapter": path.stem, **_zero()}
    for cell in _cells(path):
        source = _text(cell["source"])
        tags = set(cell.get("metadata", {}).get("tags", []))
        if cell["cell_type"] == "markdown":
            _add(m, markdown_metrics(source, path.parent))
            continue
        if cell["cell_type"] != "code" or "remove-cell" in tags:
            continue
        if not tags & HIDDEN_CODE:
            m["code_lines"] += len(_code_lines(source))
        elif tags & FOLDED_CODE:
            m["folded_code_lines"] += len(_code_lines(source))
        if tags & HIDDEN_OUTPUT:
            continue
        for output in cell.get("outputs", []):
            _add(m, output_metrics(output))
    m["minutes"] = round(reading_minutes(m), 1)
    return m


def features(m: dict) -> dict[str, float]:
    """The counts the rates apply to, in the rates' units."""
    return {"words": m["prose_words"],
            "formulas": m["formulas_inline"] + DISPLAY_FORMULA_WEIGHT * m["formulas_display"],
            "code_lines": m["code_lines"] + m["included_lines"],
            "output_lines": m["output_lines"] + m["table_rows"],
            "figures": m["figures"] + m["interactive"],
            "folded_code_lines": m["folded_code_lines"]}


def rates() -> dict[str, float]:
    """The module's rates, in minutes per unit of :func:`features`."""
    return {"words": 1 / WORDS_PER_MINUTE, "formulas": SECONDS_PER_FORMULA / 60,
            "code_lines": SECONDS_PER_CODE_LINE / 60, "output_lines": SECONDS_PER_OUTPUT_LINE / 60,
            "figures": SECONDS_PER_FIGURE / 60, "folded_code_lines": SECONDS_PER_FOLDED_LINE / 60}


def reading_minutes(m: dict, rate: dict[str, float] | None = None) -> float:
    """Minutes a learner takes over a chapter with counts ``m``, at ``rate`` (default: the module's)."""
    rate = rate or rates()
    return sum(rate[k] * v for k, v in features(m).items())


def overlong_code_lines(path: Path, limit: int = CODE_COLUMN) -> list[tuple[int, str]]:
    """Visible code lines of notebook ``path`` longer than ``limit`` characters, as (cell index, line):
    code cells the page shows, fenced code in Markdown cells and outputs, literalinclude'd lines."""
    found = []
    for index, cell in enumerate(_cells(path)):
        source = _text(cell["source"])
        tags = set(cell.get("metadata", {}).get("tags", []))
        widths: list[str] = []
        if cell["cell_type"] == "markdown":
            markdown_metrics(source, path.parent, widths, limit)
        elif cell["cell_type"] == "code" and not tags & HIDDEN_CODE:
            widths += [line for line in source.splitlines() if len(line) > limit]
        if cell["cell_type"] == "code" and not tags & HIDDEN_OUTPUT:
            for output in cell.get("outputs", []):
                data = output.get("data", {})
                if next((k for k in MIME_PRIORITY if k in data), None) == "text/markdown":
                    markdown_metrics(_text(data["text/markdown"]), None, widths, limit)
        found += [(index, line) for line in widths]
    return found


# --- calibration ----------------------------------------------------------------------------------------


def counts_at(commit: str, chapters=tuple(LEARNER_MINUTES)) -> dict[str, dict]:
    """The counts of ``chapters`` as the notebooks stood at ``commit`` (read from git into a temporary folder
    with the library of that commit, so that literalincludes resolve as that page showed them)."""
    with tempfile.TemporaryDirectory() as tmp:
        paths = [p for p in ("chapters", "vae_lib", "examples")
                 if subprocess.run(["git", "-C", str(ROOT), "cat-file", "-e", f"{commit}:{p}"],
                                   capture_output=True).returncode == 0]
        archive = subprocess.run(["git", "-C", str(ROOT), "archive", commit, *paths], capture_output=True,
                                 check=True)
        subprocess.run(["tar", "-x", "-C", tmp], input=archive.stdout, check=True)
        return {c: chapter_metrics(Path(tmp) / "chapters" / f"{c}.ipynb") for c in chapters}


def fit_scale(table: dict[str, dict[str, float]], minutes: dict[str, float] = LEARNER_MINUTES,
              prior: dict[str, float] = PRIOR_RATES) -> float:
    """The one number s that, multiplying every ``prior`` rate, fits ``minutes`` best in least squares;
    ``table``: each chapter's :func:`features`."""
    predicted = [sum(prior[k] * table[c][k] for k in prior) for c in minutes]
    observed = [minutes[c] for c in minutes]
    return sum(p * t for p, t in zip(predicted, observed)) / sum(p * p for p in predicted)


def fit_free(table: dict[str, dict[str, float]], minutes: dict[str, float] = LEARNER_MINUTES,
             keys=tuple(PRIOR_RATES)) -> dict[str, float]:
    """Every rate of ``keys`` fitted on its own (non-negative least squares): shown by ``--calibrate`` beside
    the one-scale fit, not used (nine timings do not pin five rates; see its leave-one-out error)."""
    import numpy as np
    from scipy.optimize import nnls

    a = np.array([[table[c][k] for k in keys] for c in minutes], dtype=float)
    rate, _ = nnls(a, np.array([minutes[c] for c in minutes], dtype=float))
    return dict(zip(keys, rate.tolist()))


def scaled(scale: float, prior: dict[str, float] = PRIOR_RATES) -> dict[str, float]:
    return {k: scale * v for k, v in prior.items()}


def predict(table: dict[str, dict[str, float]], rate: dict[str, float]) -> dict[str, float]:
    return {c: sum(rate[k] * f[k] for k in rate) for c, f in table.items()}


def leave_one_out(table: dict[str, dict[str, float]], fit, minutes: dict[str, float] = LEARNER_MINUTES) -> float:
    """Root-mean-square error of ``fit`` (a table and timings -> rates) on each chapter left out of its fit."""
    errors = []
    for out in minutes:
        rest = {c: t for c, t in minutes.items() if c != out}
        rate = fit(table, rest)
        errors.append(minutes[out] - predict({out: table[out]}, rate)[out])
    return math.sqrt(sum(e * e for e in errors) / len(errors))


def calibration_table(table: dict[str, dict[str, float]], rate: dict[str, float] | None = None) -> str:
    """Per chapter: the learner's minutes, the measure's (at ``rate``, default the module's), the residual."""
    rate = rate or rates()
    mine = predict(table, rate)
    lines = ["| chapter | learner (min) | measure (min) | residual |", "| --- | --- | --- | --- |"]
    for c, t in LEARNER_MINUTES.items():
        lines.append(f"| {c} | {t} | {mine[c]:.1f} | {t - mine[c]:+.1f} |")
    residuals = [LEARNER_MINUTES[c] - mine[c] for c in LEARNER_MINUTES]
    rms = math.sqrt(sum(r * r for r in residuals) / len(residuals))
    lines.append(f"| total | {sum(LEARNER_MINUTES.values())} | {sum(mine[c] for c in LEARNER_MINUTES):.1f} "
                 f"| rms {rms:.1f} |")
    return "\n".join(lines)


def describe_rates(rate: dict[str, float]) -> str:
    return (f"{1 / rate['words']:.0f} words a minute, {60 * rate['formulas']:.1f} s a formula, "
            f"{60 * rate['code_lines']:.1f} s a code line, {60 * rate['output_lines']:.1f} s an output row, "
            f"{60 * rate['figures']:.1f} s a figure, {60 * rate['folded_code_lines']:.1f} s a folded code line"
            ) if rate["words"] > 0 else str(rate)


def calibrate(table: dict[str, dict[str, float]] | None = None) -> str:
    """The calibration as ``--calibrate`` prints it; ``table`` default: read from git at the commit."""
    stored = table is None
    if table is None:
        table = {c: features(m) for c, m in counts_at(CALIBRATION_COMMIT).items()}
    scale = fit_scale(table)
    free = fit_free(table)
    out = [f"The learner's timings (issue 31) against the measure on the notebooks at {CALIBRATION_COMMIT}.",
           "", "Counts at that commit (the rates' units):", "",
           "| chapter | " + " | ".join(PRIOR_RATES) + " |", "| --- |" + " --- |" * len(PRIOR_RATES)]
    out += [f"| {c} | " + " | ".join(f"{f[k]:g}" for k in PRIOR_RATES) + " |" for c, f in table.items()]
    out += ["", f"Prior rates: {describe_rates(PRIOR_RATES)}.",
            f"Fitted scale s = {scale:.3f}: {describe_rates(scaled(scale))}.",
            f"The module's rates (rounded fit): {describe_rates(rates())}.", "",
            calibration_table(table), "",
            f"Leave-one-out rms error: one scale {leave_one_out(table, lambda t, m: scaled(fit_scale(t, m))):.1f} min; "
            f"{len(PRIOR_RATES)} free rates {leave_one_out(table, fit_free):.1f} min; the priors alone "
            f"{leave_one_out(table, lambda t, m: PRIOR_RATES):.1f} min (nothing fitted).",
            f"{len(PRIOR_RATES)} free rates (NNLS, for comparison, not used): {describe_rates(free)}."]
    if stored and table != CALIBRATION_FEATURES:
        out += ["", "NOTE: the counts differ from CALIBRATION_FEATURES stored in the module (the measure changed): "
                    "store the new ones and refit."]
    return "\n".join(out)


# --- the intro's table ----------------------------------------------------------------------------------

INTRO_START = "<!-- reading-times: written by scripts/reading_metrics.py --intro -->"
INTRO_END = "<!-- /reading-times -->"


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
    modules = [p for p in lib.rglob("*.py") if p.stem != "__init__"]
    python = sum(len(p.read_text().splitlines()) for p in lib.rglob("*.py"))
    script = sum(len(p.read_text().splitlines()) for p in lib.rglob("*.js"))
    front = (lib / "__init__.py").read_text()
    layers = len(re.findall(r"^- ``\w+`` — ", front.split('"""')[1], re.M))
    return (f"The book's library, `vae_lib`, is {len(modules)} modules in {layers} layers: {python:,} lines of Python"
            + (f" and {script:,} of JavaScript" if script else "") + " ({doc}`api`).")


def pace_sentence(rows: list[dict]) -> str:
    """One sentence on how the reading times are measured, and the core path's total."""
    core = sum(r["minutes"] for r in rows if is_core(r["chapter"]))
    return (f"Reading times are a learner's pace, fitted to a learner's timings of chapters 1–8: "
            f"{WORDS_PER_MINUTE} words a minute, {SECONDS_PER_FORMULA:g} s a formula, "
            f"{SECONDS_PER_CODE_LINE:g} s a line of code shown (library code included), "
            f"{SECONDS_PER_OUTPUT_LINE:g} s a line of output or a table row, {SECONDS_PER_FIGURE:g} s a "
            f"figure and {SECONDS_PER_FOLDED_LINE:g} s a line of folded code; exercises not included. "
            f"The core path, chapters 1–8 with 7b, takes {core:.0f} minutes.")


def intro_block(rows: list[dict], toc_text: str) -> str:
    """What ``--intro`` writes between the markers: :func:`pace_sentence`, :func:`contents_table` and
    :func:`library_size`."""
    return f"{pace_sentence(rows)}\n\n{contents_table(rows, toc_text)}\n\n{library_size()}"


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


def is_core(chapter: str) -> bool:
    return chapter.startswith(CORE)


def targets_report(rows: list[dict]) -> list[str]:
    """The core path against its targets, one line each; a missed target says so with its number."""
    core = [r for r in rows if is_core(r["chapter"])]
    out = []
    for r in core:
        ok = r["minutes"] <= CHAPTER_TARGET_MINUTES
        out.append(f"{r['chapter']}: {r['minutes']:.1f} min — "
                   + ("met" if ok else f"MISSED (target <= {CHAPTER_TARGET_MINUTES} min, "
                                       f"{r['minutes'] - CHAPTER_TARGET_MINUTES:.1f} over)"))
    total = sum(r["minutes"] for r in core)
    out.append(f"core path ({len(core)} chapters): {total:.1f} min — "
               + ("met" if total <= PATH_TARGET_MINUTES else
                  f"MISSED (target <= {PATH_TARGET_MINUTES} min, {total - PATH_TARGET_MINUTES:.1f} over)"))
    return out


KEYS = ["prose_words", "formulas_inline", "formulas_display", "code_lines", "included_lines", "output_lines",
        "table_rows", "figures", "interactive", "exercises", "folded_code_lines", "minutes"]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--json", action="store_true", help="print JSON instead of a Markdown table")
    parser.add_argument("--intro", action="store_true",
                        help="write each chapter's reading time into intro.md's table of contents")
    parser.add_argument("--calibrate", action="store_true",
                        help="fit the rates to the learner's timings and print the fit")
    parser.add_argument("--widths", action="store_true", help="list visible code lines longer than 78 characters")
    args = parser.parse_args(argv)
    if args.calibrate:
        print(calibrate())
        return 0
    rows = all_chapters()
    if args.intro:
        print("intro.md " + ("updated" if write_intro(rows) else "already current"))
        return 0
    if args.widths:
        for path in sorted((ROOT / "chapters").glob("[0-9][0-9]*_*.ipynb")):
            long = overlong_code_lines(path)
            print(f"{path.stem}: {len(long)} visible code line{'s' * (len(long) != 1)} over {CODE_COLUMN} characters")
            for index, line in long:
                print(f"    cell {index} ({len(line)}): {line.strip()[:110]}")
        return 0
    if args.json:
        print(json.dumps(rows, indent=1))
        return 0
    print(f"Rates: {describe_rates(rates())}.\n")
    print("| chapter | " + " | ".join(k.replace("_", " ") for k in KEYS) + " |")
    print("| --- |" + " --- |" * len(KEYS))
    for r in rows:
        print(f"| {r['chapter']} | " + " | ".join(str(r[k]) for k in KEYS) + " |")
    print()
    print("\n".join(targets_report(rows)))
    return 0


if __name__ == "__main__":
    sys.exit(main())

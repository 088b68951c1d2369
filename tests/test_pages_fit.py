"""Pages that fit (issue 31): no code line the rendered page shows — a shown code cell, fenced code, a
literalinclude'd piece of the library — is wider than the content column (75 characters at 1280 px, measured), and
every literalinclude that picks lines by number still shows a whole piece of Python (an edit to the library
that shifted the lines would cut a statement in half)."""

import ast
import importlib.util
import json
import re
import textwrap
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
CHAPTERS = sorted((ROOT / "chapters").glob("[0-9][0-9]*_*.ipynb"))
spec = importlib.util.spec_from_file_location("reading_metrics", ROOT / "scripts" / "reading_metrics.py")
rm = importlib.util.module_from_spec(spec)
spec.loader.exec_module(rm)
INCLUDE = re.compile(r"```\{literalinclude\}\s+(\S+)\n((?::[\w-]+:.*\n)*)```")


@pytest.mark.parametrize("notebook", CHAPTERS, ids=lambda p: p.stem)
def test_shown_code_fits_the_column(notebook):
    overlong = rm.overlong_code_lines(notebook)
    assert not overlong, (f"{len(overlong)} shown code lines wider than {rm.CODE_COLUMN} characters "
                          f"(python scripts/reading_metrics.py --widths): {overlong[:3]}")


def includes():
    for notebook in CHAPTERS:
        for cell in json.loads(notebook.read_text())["cells"]:
            if cell["cell_type"] == "markdown":
                for target, options in INCLUDE.findall("".join(cell["source"])):
                    opts = dict(re.findall(r":([\w-]+):\s*(.*)", options))
                    yield pytest.param(notebook.parent / target, opts, id=f"{notebook.stem}:{target.split('/')[-1]}")


@pytest.mark.parametrize("target, options", list(includes()))
def test_a_literalinclude_shows_whole_python(target, options):
    assert target.is_file(), target
    lines = rm.included_lines(target, options)
    assert lines, (target, options)
    if target.suffix == ".py":
        ast.parse(textwrap.dedent("\n".join(lines)))   # a shifted :lines: range cuts a statement in half


def test_the_width_check_sees_a_wide_line(tmp_path):
    nb = {"cells": [{"cell_type": "code", "metadata": {}, "outputs": [], "source": ["x = 1  " + "#" * 80]},
                    {"cell_type": "code", "metadata": {"tags": ["remove-input"]}, "outputs": [],
                     "source": ["y = 2  " + "#" * 80]}]}
    path = tmp_path / "99_test.ipynb"
    path.write_text(json.dumps(nb))
    assert [i for i, _ in rm.overlong_code_lines(path)] == [0]


@pytest.mark.parametrize("notebook", CHAPTERS, ids=lambda p: p.stem)
def test_fenced_code_fits_the_column_even_in_a_folded_solution(notebook):
    wide = [(i, line) for i, cell in enumerate(json.loads(notebook.read_text())["cells"])
            if cell["cell_type"] == "markdown"
            for block in re.findall(r"```[^\n]*\n(.*?)```", "".join(cell["source"]), flags=re.S)
            for line in block.splitlines() if len(line) > rm.CODE_COLUMN]
    assert not wide, wide[:3]

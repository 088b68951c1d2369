"""scripts/reading_metrics.py: each count on small synthetic notebooks, and the calibration from stored data."""

import importlib.util
import json
import re
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
spec = importlib.util.spec_from_file_location("reading_metrics", ROOT / "scripts" / "reading_metrics.py")
rm = importlib.util.module_from_spec(spec)
spec.loader.exec_module(rm)

LIBRARY = '''"""A module."""
import torch


def helper(x):
    return x


@torch.no_grad()
def decorated(x, y):
    # a comment the page shows
    z = x + y

    return z
# a trailing comment Sphinx leaves out


class Model:
    """A class."""

    def forward(self, x):
        return helper(x)  # a line that is far too long for the page column, so it is counted by widths.....
'''


def code(source, tags=(), outputs=()):
    return {"cell_type": "code", "metadata": {"tags": list(tags)}, "source": source, "outputs": list(outputs),
            "execution_count": None}


def markdown(source):
    return {"cell_type": "markdown", "metadata": {}, "source": source}


def stream(text):
    return {"output_type": "stream", "name": "stdout", "text": text}


def display(data):
    return {"output_type": "display_data", "data": data, "metadata": {}}


def notebook(tmp_path, cells):
    (tmp_path / "lib").mkdir(exist_ok=True)
    (tmp_path / "lib" / "mod.py").write_text(LIBRARY)
    (tmp_path / "chapters").mkdir(exist_ok=True)
    path = tmp_path / "chapters" / "99_test.ipynb"
    path.write_text(json.dumps({"cells": cells, "metadata": {}, "nbformat": 4, "nbformat_minor": 5}))
    return path


def include(options):
    return "```{literalinclude} ../lib/mod.py\n" + "".join(f":{k}: {v}\n" for k, v in options.items()) + "```\n"


@pytest.mark.parametrize("options, shown", [
    ({"pyobject": "helper"}, ["def helper(x):", "    return x"]),
    ({"pyobject": "decorated"}, ["@torch.no_grad()", "def decorated(x, y):", "    # a comment the page shows",
                                 "    z = x + y", "", "    return z"]),
    ({"pyobject": "Model.forward", "dedent": "4"},
     ["def forward(self, x):", "    return helper(x)  # a line that is far too long for the page column, so "
                               "it is counted by widths....."]),
    ({"lines": "2,5-6"}, ["import torch", "def helper(x):", "    return x"]),
    ({"start-after": "class Model", "end-before": "def forward"}, ['    """A class."""', ""]),
    ({"start-at": "def helper", "end-at": "return x"}, ["def helper(x):", "    return x"]),
])
def test_a_literalinclude_shows_what_sphinx_takes(tmp_path, options, shown):
    notebook(tmp_path, [])
    assert rm.included_lines(tmp_path / "lib" / "mod.py", options) == shown
    m = rm.markdown_metrics("Some words.\n\n" + include(options), tmp_path / "chapters")
    assert m["included_lines"] == sum(1 for line in shown if line.strip())
    assert m["prose_words"] == 2 and m["code_lines"] == 0


def test_prose_formulas_tables_exercises_and_folded_solutions():
    text = ("The bound $\\log p(x)$ rises with $K$.\n\n$$\na + b\n$$\n\n"
            "\\begin{align}\nx &= y\n\\end{align}\n\n"
            "| symbol | meaning of it |\n| --- | --- |\n| $z$ | the latent |\n| $x$ | the image |\n\n"
            ":::{exercise}\n:label: e1\nSay why.\n:::\n\n"
            ":::{solution} e1\n:class: dropdown\nBecause of four words.\n:::\n\n"
            "See {doc}`chapters/01_introduction` and [the paper](https://example.org/x).\n\n"
            "```python\nx = 1\n\ny = 2\n```\n")
    m = rm.markdown_metrics(text)
    # words: The bound rises with. Say why. See <role> and the paper.
    assert m["prose_words"] == 4 + 2 + 5
    assert (m["formulas_inline"], m["formulas_display"]) == (4, 2)
    assert m["table_rows"] == 2 and m["exercises"] == 1 and m["folded_words"] == 4
    assert m["code_lines"] == 2
    assert rm.prose_words("The bound $\\log p(x)$ rises.") == 3
    titled = rm.markdown_metrics(":::{admonition} In this chapter\n:class: tip\nTwo words.\n:::")
    assert (titled["prose_words"], titled["exercises"]) == (3 + 2, 0)


def test_a_broken_literalinclude_is_named(tmp_path):
    notebook(tmp_path, [])
    with pytest.raises(ValueError, match="mod.py"):
        rm.markdown_metrics(include({"pyobject": "missing"}), tmp_path / "chapters")
    with pytest.raises(ValueError, match="mod.py"):
        rm.markdown_metrics(include({"start-after": "no such text"}), tmp_path / "chapters")


def test_outputs_count_wrapped_rows_and_the_richest_kind_only():
    long_line = "x" * 200                       # 3 rows of 78 characters
    assert rm.wrapped_rows(f"short\n\n{long_line}\n" + "y" * 78) == 1 + 3 + 1
    m = rm.output_metrics(stream(["a\n", long_line + "\n", "\n"]))
    assert m["output_lines"] == 4
    m = rm.output_metrics(display({"image/png": "x", "text/plain": ["<Figure size 640x480 with 1 Axes>"]}))
    assert (m["figures"], m["output_lines"]) == (1, 0)
    m = rm.output_metrics(display({"text/markdown": "Two words $x$.\n\n| a | b |\n| - | - |\n| 1 | 2 |\n\n"
                                                    "```python\nimport os\n```", "text/plain": "<Markdown>"}))
    assert (m["prose_words"], m["formulas_inline"], m["table_rows"], m["code_lines"], m["output_lines"]) == \
        (2, 1, 1, 1, 0)
    m = rm.output_metrics(display({"text/html": "<table><tr><th>a</th></tr><tr><td>1</td></tr></table>",
                                   "text/plain": "a\n1"}))
    assert (m["table_rows"], m["output_lines"]) == (1, 0)
    m = rm.output_metrics({"output_type": "execute_result", "data": {"text/plain": "1\n2"}, "metadata": {},
                           "execution_count": 1})
    assert m["output_lines"] == 2


def test_a_notebook_counts_only_what_the_page_shows(tmp_path):
    long_code = "value = " + "1 + " * 25 + "1"        # 109 characters
    path = notebook(tmp_path, [
        code("# set-up\nimport os", ["remove-cell"], [stream("hidden\n")]),
        markdown("# Title\n\nFour words of prose.\n\n" + include({"pyobject": "Model"})),
        code("quick = None  # shown", ["parameters"]),
        code("check(quick)\n", ["remove-input"], [stream("shown output\n")]),
        code("import numpy\nimport torch\n", ["hide-input"], [stream("x" * 100 + "\n")]),
        code(f"# a comment\n\n{long_code}\nprint(value)", [], [stream("26\n"), display({"image/png": "x"})]),
        code("show_solution('e')", ["hide-output"], [stream("def my_kl(): ...\n" * 5)]),
        code("noisy()", ["remove-output"], [stream("a\nb\n")]),
    ])
    m = rm.chapter_metrics(path)
    # Model: 5 lines, 4 non-blank; the visible code: parameters 1, the taught cell 3 (its comment counted, its
    # blank line not), show_solution 1 and noisy() 1 (their outputs hidden, their code shown)
    assert (m["included_lines"], m["code_lines"], m["folded_code_lines"]) == (4, 1 + 3 + 1 + 1, 2)
    assert m["output_lines"] == 1 + 2 + 1          # "shown output", 100 characters wrapped, "26"
    assert (m["figures"], m["prose_words"]) == (1, 4 + 1)   # "Title" is a word too
    assert m["minutes"] == pytest.approx(rm.reading_minutes(m), abs=0.05)
    long = rm.overlong_code_lines(path)
    too_long = [line for line in LIBRARY.splitlines() if len(line) > 78]
    assert long == [(1, too_long[0]), (5, long_code)]
    assert rm.overlong_code_lines(path, limit=200) == []


def test_reading_minutes_are_the_rates_times_the_counts():
    m = {**rm._zero(), "prose_words": 185, "formulas_inline": 2, "formulas_display": 1, "code_lines": 5,
         "included_lines": 5, "output_lines": 9, "table_rows": 1, "figures": 2, "interactive": 1,
         "folded_code_lines": 7}
    expected = 1 + (5 * 4.9 + 10 * 8.1 + 10 * 1.6 + 3 * 16.2 + 7 * 1.6) / 60
    assert rm.reading_minutes(m) == pytest.approx(expected)


def test_the_calibration_reproduces_from_the_stored_counts():
    """The fitted scale from CALIBRATION_FEATURES is positive, the module's rates are that fit rounded, and
    the fit stays within a few minutes of the learner at every chapter."""
    table = rm.CALIBRATION_FEATURES
    assert list(table) == list(rm.LEARNER_MINUTES)
    scale = rm.fit_scale(table)
    assert 0 < scale < 2
    fitted = rm.scaled(scale)
    assert all(v > 0 for v in fitted.values())
    assert rm.WORDS_PER_MINUTE == round(1 / fitted["words"])
    assert rm.SECONDS_PER_FORMULA == round(60 * fitted["formulas"], 1)
    assert rm.SECONDS_PER_CODE_LINE == round(60 * fitted["code_lines"], 1)
    assert rm.SECONDS_PER_OUTPUT_LINE == round(60 * fitted["output_lines"], 1)
    assert rm.SECONDS_PER_FIGURE == round(60 * fitted["figures"], 1)
    assert rm.SECONDS_PER_FOLDED_LINE == round(60 * fitted["folded_code_lines"], 1)
    predicted = rm.predict(table, rm.rates())
    assert sum(predicted.values()) == pytest.approx(sum(rm.LEARNER_MINUTES.values()), rel=0.1)
    assert max(abs(rm.LEARNER_MINUTES[c] - p) for c, p in predicted.items()) < 10
    assert all(v >= 0 for v in rm.fit_free(table).values())
    report = rm.calibrate(table)
    assert "| 03_elbo | 32 |" in report and "Leave-one-out" in report


def test_the_stored_counts_are_the_measure_at_the_calibration_commit():
    """CALIBRATION_FEATURES is what the measure reads from the notebooks of CALIBRATION_COMMIT (skipped where
    the history is not there, e.g. a shallow clone)."""
    here = subprocess.run(["git", "-C", str(ROOT), "cat-file", "-e", f"{rm.CALIBRATION_COMMIT}:chapters"],
                          capture_output=True)
    if here.returncode:
        pytest.skip(f"commit {rm.CALIBRATION_COMMIT} not in this clone")
    counts = rm.counts_at(rm.CALIBRATION_COMMIT)
    assert {c: rm.features(m) for c, m in counts.items()} == rm.CALIBRATION_FEATURES
    # the issue's own counts of what the old measure missed
    assert [counts[c]["included_lines"] for c in ("05_building_the_vae", "06_training", "07_log_likelihood")] \
        == [87, 117, 66]


def test_missed_targets_are_printed_with_their_numbers():
    rows = [{"chapter": "01_a", "minutes": 20.0}, {"chapter": "02_b", "minutes": 31.0},
            {"chapter": "09_c", "minutes": 99.0}]
    lines = rm.targets_report(rows)
    assert lines[0] == "01_a: 20.0 min — met"
    assert lines[1].startswith("02_b: 31.0 min — MISSED (target <= 25 min, 6.0 over)")
    assert lines[-1].startswith("core path (2 chapters): 51.0 min — met")
    lines = rm.targets_report([{"chapter": f"0{i}_x", "minutes": 24.0} for i in range(1, 9)])
    assert lines[-1] == "core path (8 chapters): 192.0 min — MISSED (target <= 180 min, 12.0 over)"


def test_includes_match_sphinx(tmp_path):
    """included_lines takes what Sphinx's own literalinclude reader takes, on the synthetic module and on
    every literalinclude of the chapters."""
    reader = pytest.importorskip("sphinx.directives.code").LiteralIncludeReader

    class Config:
        source_encoding = "utf-8"

    def sphinx_lines(target, options):
        options = {k: int(v) if k == "dedent" else v for k, v in options.items()}
        return reader(str(target), options, Config()).read()[0].splitlines()

    notebook(tmp_path, [])
    cases = [(tmp_path / "lib" / "mod.py", options) for options in (
        {"pyobject": "Model"}, {"pyobject": "decorated"}, {"lines": "-3"}, {"lines": "2,5-6"},
        {"start-after": "class Model", "end-at": "return helper"})]
    for path in sorted((ROOT / "chapters").glob("*.ipynb")):
        for cell in json.loads(path.read_text())["cells"]:
            for match in re.finditer(r"```\{literalinclude\} (\S+)\n((?:\s*:[\w-]+:.*\n)*)", "".join(cell["source"])):
                options = {k: v.strip() for k, v in re.findall(r":([\w-]+):(.*)", match.group(2))
                           if k in ("pyobject", "lines", "start-after", "start-at", "end-before", "end-at", "dedent")}
                cases.append(((path.parent / match.group(1)).resolve(), options))
    assert len(cases) > 10
    for target, options in cases:
        assert rm.included_lines(target, options) == sphinx_lines(target, options), (target, options)

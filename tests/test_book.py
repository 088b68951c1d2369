"""The book's conventions, checked on the committed files: every chapter is in the table of
contents, starts with a tagged papermill parameters cell that holds the quick switch, and stores
the outputs of a run without errors."""

import json
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
CHAPTERS = sorted((ROOT / "chapters").glob("[0-9][0-9]*_*.ipynb"))


def test_every_chapter_is_in_the_table_of_contents():
    """_toc.yml lists each notebook in chapters/ exactly once, in file-name order."""
    toc = (ROOT / "_toc.yml").read_text()
    listed = re.findall(r"file:\s*chapters/(\S+)", toc)
    assert listed == [nb.stem for nb in CHAPTERS]


@pytest.mark.parametrize("notebook", CHAPTERS, ids=lambda p: p.stem)
def test_chapter_conventions(notebook):
    """The first code cell is the Colab set-up cell (tests/test_colab.py checks its text), the next one is
    tagged 'parameters' and defines quick = None; stored outputs, no errors; no model class defined in the
    notebook (it belongs in vae_lib)."""
    cells = json.loads(notebook.read_text())["cells"]
    code = [c for c in cells if c["cell_type"] == "code"]
    assert "colab-setup" in code[0]["metadata"].get("tags", []), "the first code cell must be the set-up cell"
    first = code[1]
    assert "parameters" in first["metadata"].get("tags", []), "the code cell after the set-up cell must be tagged 'parameters'"
    assert re.search(r"^quick = None\b", "".join(first["source"]), re.M), "the parameters cell must hold quick = None"
    assert any(c.get("outputs") for c in code), "committed without outputs: run python scripts/run_book.py"
    for c in code:
        assert not any(o.get("output_type") == "error" for o in c.get("outputs", [])), "a stored output is an error"
        assert not re.search(r"^\s*class\s+\w*(VAE|Encoder|Decoder)\b", "".join(c["source"]), re.M)


@pytest.mark.parametrize("notebook", CHAPTERS, ids=lambda p: p.stem)
def test_the_stored_chapter_keeps_its_figures(notebook):
    """A chapter whose code shows figures (``plt.show()``) stores them: a full run under a non-inline matplotlib
    backend (``MPLBACKEND=Agg`` reaching the kernel) runs without an error and leaves the page without a figure."""
    code = [c for c in json.loads(notebook.read_text())["cells"] if c["cell_type"] == "code"]
    drawing = [c for c in code if "plt.show()" in "".join(c["source"])]
    figures = [o for c in code for o in c.get("outputs", []) if "image/png" in o.get("data", {})]
    assert not drawing or len(figures) >= len(drawing) / 2, \
        f"{len(drawing)} cells show figures, {len(figures)} figures stored: run it again with scripts/run_book.py"


@pytest.mark.parametrize("notebook", CHAPTERS, ids=lambda p: p.stem)
def test_no_stray_object_reprs_on_the_page(notebook):
    """A cell that ends in a call returning an object (torch.manual_seed, a figure, a list of artists) prints
    its repr — "<torch._C.Generator at 0x…>" — on the page; a stored result that is only such a repr is a
    stray (end the line with ';'). Objects that render themselves (HTML, images) are not."""
    for c in json.loads(notebook.read_text())["cells"]:
        for o in c.get("outputs", []):
            data = o.get("data", {})
            if o.get("output_type") == "execute_result" and set(data) == {"text/plain"}:
                text = "".join(data["text/plain"])
                assert not re.search(r"^\[?<[\w.]+ (object )?at 0x[0-9a-f]+>", text), \
                    f"a stray repr on the page: {text[:80]!r} from {''.join(c['source']).splitlines()[-1]!r}"


def test_reading_metrics_count_what_the_page_shows(tmp_path):
    """scripts/reading_metrics.py: prose words without math or code (formulas counted apart), visible code
    lines only (comments are shown, so they count), table rows without header and separator, figures from
    image outputs. tests/test_reading_metrics.py tests the measure in detail."""
    import importlib.util

    spec = importlib.util.spec_from_file_location("reading_metrics", ROOT / "scripts" / "reading_metrics.py")
    rm = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(rm)
    assert rm.prose_words("The bound $\\log p(x)$ rises.\n\n```python\nx = 1\n```\n$$a + b$$") == 3
    assert rm.table_rows("| a | b |\n| --- | --- |\n| 1 | 2 |\n| 3 | 4 |") == 2
    nb = {"cells": [
        {"cell_type": "markdown", "metadata": {}, "source": ["Two words.\n\n:::{exercise}\n:label: e\nDo it.\n:::"]},
        {"cell_type": "code", "metadata": {"tags": ["remove-input"]}, "source": ["a = 1\nb = 2"], "outputs": []},
        {"cell_type": "code", "metadata": {}, "source": ["# a comment\nc = 3"],
         "outputs": [{"output_type": "display_data", "data": {"image/png": "x"}, "metadata": {}}]},
    ]}
    path = tmp_path / "99_test.ipynb"
    path.write_text(json.dumps(nb))
    m = rm.chapter_metrics(path)
    assert (m["prose_words"], m["code_lines"], m["figures"], m["exercises"]) == (4, 2, 1, 1)


@pytest.mark.parametrize("notebook", CHAPTERS, ids=lambda p: p.stem)
def test_plumbing_is_hidden_on_the_page(notebook):
    """The parameter checks run in every executor but show no code on the page (remove-input); the
    imports-and-paths cell after them is folded away (hide-input) or removed."""
    cells = json.loads(notebook.read_text())["cells"]
    code = [c for c in cells if c["cell_type"] == "code"]
    checks = [c for c in code if "check-parameters" in c["metadata"].get("tags", [])]
    assert len(checks) == 1 and "remove-input" in checks[0]["metadata"]["tags"]
    after = code[code.index(checks[0]) + 1]
    assert {"hide-input", "remove-input"} & set(after["metadata"].get("tags", [])), "the imports cell is shown"


def test_the_package_front_page_names_every_module():
    """vae_lib/__init__.py's docstring lists every sub-package (a layer) and every module in it, and api.md
    documents each module."""
    import pkgutil

    import vae_lib

    packages = [m.name for m in pkgutil.iter_modules(vae_lib.__path__)]
    modules = [(p, m.name) for p in packages for m in pkgutil.iter_modules([str(Path(vae_lib.__path__[0]) / p)])]
    api = (ROOT / "api.md").read_text()
    assert len(packages) >= 6 and len(modules) > 40
    assert [p for p in packages if f"- ``{p}`` — " not in vae_lib.__doc__] == []
    assert [m for _, m in modules if f"``{m}``" not in vae_lib.__doc__] == []
    assert [f"{p}.{m}" for p, m in modules if f"automodule:: vae_lib.{p}.{m}\n" not in api] == []


def test_the_intro_shows_each_chapters_current_reading_time():
    """intro.md's table of contents is the one scripts/reading_metrics.py --intro writes from the stored
    notebooks now: every chapter of _toc.yml, under its part, with its measured reading time; and the
    library's size as it is now."""
    import importlib.util

    spec = importlib.util.spec_from_file_location("reading_metrics", ROOT / "scripts" / "reading_metrics.py")
    rm = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(rm)
    table = rm.contents_table(rm.all_chapters(), (ROOT / "_toc.yml").read_text())
    intro = (ROOT / "intro.md").read_text()
    block = rm.intro_block(rm.all_chapters(), (ROOT / "_toc.yml").read_text())
    assert f"{rm.INTRO_START}\n{block}\n{rm.INTRO_END}" in intro, "run python scripts/reading_metrics.py --intro"
    assert re.search(r"`vae_lib`, is \d+ modules in \d+ layers: [\d,]+ lines of Python", block)
    listed = re.findall(r"\{doc\}`chapters/(\S+?)`", table)
    assert listed == [nb.stem for nb in CHAPTERS]

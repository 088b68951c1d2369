"""A prediction exercise is honest on the rendered page: between the reader's guess cell (``my_… = None``) and
the ``check_prediction`` that uses it, no shown output gives the answer away — every code cell in between
with stored outputs folds them (``hide-output``) or removes them."""

import json
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
CHAPTERS = sorted((ROOT / "chapters").glob("[0-9][0-9]*_*.ipynb"))
HIDDEN = {"hide-output", "remove-output", "remove-cell", "hide-cell"}


def predictions(cells):
    """(guess cell index, check cell index, the guess's name) for every prediction exercise."""
    for i, cell in enumerate(cells):
        source = "".join(cell["source"])
        if cell["cell_type"] != "code":
            continue
        for name in re.findall(r"^(my_\w+) = None\b", source, re.M):
            check = next((j for j in range(i + 1, len(cells)) if cells[j]["cell_type"] == "code"
                          and "check_prediction(" in "".join(cells[j]["source"])
                          and re.search(rf"\b{name}\b", "".join(cells[j]["source"]))), None)
            if check is not None:
                yield i, check, name


@pytest.mark.parametrize("notebook", CHAPTERS, ids=lambda p: p.stem)
def test_no_output_answers_a_prediction_before_its_check(notebook):
    cells = json.loads(notebook.read_text())["cells"]
    spoilers = [(name, j) for i, check, name in predictions(cells) for j in range(i + 1, check)
                if cells[j]["cell_type"] == "code" and cells[j].get("outputs")
                and not HIDDEN & set(cells[j]["metadata"].get("tags", []))]
    assert not spoilers, f"outputs shown between a guess and its check (tag them hide-output): {spoilers}"


def test_the_core_path_has_predictions():
    core = [nb for nb in CHAPTERS if re.match(r"0[1-8]", nb.stem)]
    found = {nb.stem: len(list(predictions(json.loads(nb.read_text())["cells"]))) for nb in core}
    assert sum(found.values()) >= 9 and sum(n > 0 for n in found.values()) >= 7, found

"""Write the set-up cell (vae_lib.base.colab) as the first cell of every chapter, or check that each holds it.

    python scripts/colab_cell.py           # insert or refresh the cell in every chapter
    python scripts/colab_cell.py --check   # exit 1 if a chapter lacks the current cell

The cell is tagged ``colab-setup`` and ``remove-cell`` (hidden on the rendered page). Refreshing it
clears its stored outputs only when its source changed; re-run the chapters afterwards
(``python scripts/run_book.py``) so their stored outputs come from a full run with the cell.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import nbformat

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from vae_lib.base.colab import SETUP_TAG, is_setup_cell, setup_cell_source  # noqa: E402


def update(path: Path, source: str) -> bool:
    """Put the set-up cell first in the notebook at ``path``; True when the file changed."""
    nb = nbformat.read(path, as_version=4)
    cells = [c for c in nb.cells if not is_setup_cell(c)]
    old = next((c for c in nb.cells if is_setup_cell(c)), None)
    if old is not None and old.source == source and nb.cells[0] is old and old.get("id") == SETUP_TAG:
        return False
    cell = nbformat.v4.new_code_cell(source, metadata={"tags": [SETUP_TAG, "remove-cell"]})
    cell["id"] = SETUP_TAG  # a fixed id: refreshing the cell does not churn the notebook's diff
    nb.cells = [cell, *cells]
    nbformat.write(nb, path)
    return True


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--check", action="store_true", help="only check; exit 1 if a chapter lacks the current cell")
    args = p.parse_args(argv)
    source = setup_cell_source()
    stale = []
    for path in sorted((ROOT / "chapters").glob("*.ipynb")):
        nb = nbformat.read(path, as_version=4)
        current = bool(nb.cells) and is_setup_cell(nb.cells[0]) and nb.cells[0].source == source
        if args.check:
            if not current:
                stale.append(path.name)
        elif update(path, source):
            print(f"set-up cell written into {path.relative_to(ROOT)}")
    if stale:
        print("chapters without the current set-up cell (run python scripts/colab_cell.py):", *stale)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())

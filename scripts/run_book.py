"""Execute the book's chapters headless, in order, through papermill — the command whose output
the committed notebooks store.

    python scripts/run_book.py            # full run: every chapter, full-size parameters
    python scripts/run_book.py --quick    # the quick switch: minutes on two CPU cores
    python scripts/run_book.py 06 07      # only chapters whose file names start with these

A full run replaces each chapter's stored outputs — only when the chapter ran to its end: it executes into
a temporary file beside the chapter, which replaces the chapter on success and is kept as
``runs/failed/<chapter>`` (the chapter untouched) on failure; one run per chapter at a time (a lock).
A quick run never writes over the chapters: into ``--output-dir``, or a fresh temporary folder it names.
A full run sets VAE_QUICK=0
and injects ``quick = None``, so a stored notebook still follows VAE_QUICK when pytest (nbval)
runs it later; ``--quick`` injects ``quick = True``. Progress bars print as text so the stored
outputs read well on the rendered page. After each run, the cell papermill injects (tagged
``injected-parameters``) is tagged ``remove-cell`` too, so the page shows only the chapter's own
parameters cell, and every PNG output is re-encoded losslessly without matplotlib's opaque alpha channel
(:func:`slim_png`).
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

import nbformat
import papermill

from vae_lib.base.locks import RunLockedError, run_lock
from vae_lib.base.run_files import usual_mode
ROOT = Path(__file__).resolve().parents[1]
CHAPTERS = ROOT / "chapters"


def hide_injected_parameters(path: Path) -> None:
    """Tag papermill's injected-parameters cell of the executed notebook at ``path`` "remove-cell"
    (papermill writes that cell afresh, with its own tag only, on every run)."""
    nb = nbformat.read(path, as_version=4)
    changed = False
    for cell in nb.cells:
        tags = cell.metadata.get("tags", [])
        if "injected-parameters" in tags and "remove-cell" not in tags:
            cell.metadata["tags"] = [*tags, "remove-cell"]
            changed = True
    if changed:
        nbformat.write(nb, path)


def slim_png(data: bytes) -> bytes:
    """The same picture in fewer bytes: matplotlib writes RGBA PNGs whose alpha channel is opaque everywhere;
    drop it (only where every pixel is opaque, so nothing changes on the page) and let PIL optimize."""
    import io

    from PIL import Image

    image = Image.open(io.BytesIO(data))
    if image.mode == "RGBA" and image.getchannel("A").getextrema() == (255, 255):
        image = image.convert("RGB")
    buffer = io.BytesIO()
    image.save(buffer, format="PNG", optimize=True)
    return buffer.getvalue() if buffer.tell() < len(data) else data


def slim_images(path: Path) -> tuple[int, int]:
    """Re-encode every PNG output of the executed notebook at ``path`` with :func:`slim_png` (lossless).
    Returns (bytes before, bytes after) of the decoded images."""
    import base64

    nb = nbformat.read(path, as_version=4)
    before = after = 0
    for cell in nb.cells:
        for output in cell.get("outputs", []):
            png = output.get("data", {}).get("image/png")
            if png is None:
                continue
            raw = base64.b64decode(png)
            slim = slim_png(raw)
            before, after = before + len(raw), after + len(slim)
            output["data"]["image/png"] = base64.b64encode(slim).decode("ascii")
    if after < before:
        nbformat.write(nb, path)
    return before, after


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("only", nargs="*", help="prefixes of the chapters to run (default: all)")
    parser.add_argument("--quick", action="store_true", help="shrink the work (sets the quick parameter)")
    parser.add_argument("--output-dir", type=Path, default=None,
                        help="write executed notebooks here instead of replacing the chapters")
    args = parser.parse_args(argv)

    if any(not o.strip() for o in args.only):
        parser.error(f"a chapter prefix must not be empty, got {args.only}: name chapters like 05 or 12_kl")
    if args.quick and args.output_dir and args.output_dir.resolve() == CHAPTERS.resolve():
        parser.error(f"--output-dir {args.output_dir} is the chapters' folder: a quick run never writes over the "
                     "chapters' full-run outputs; give another folder")
    notebooks = sorted(p for p in CHAPTERS.glob("*.ipynb")
                       if not args.only or any(p.name.startswith(o) for o in args.only))
    if not notebooks:
        parser.error(f"no chapter in {CHAPTERS} matches {args.only}")
    os.environ.setdefault("VAE_PROGRESS", "text")
    os.environ["VAE_STORING_RUN"] = "1"   # chapters show static figures, no widget state (storing_run)
    os.environ["VAE_QUICK"] = "1" if args.quick else "0"
    if os.environ.pop("MPLBACKEND", None) not in (None, "module://matplotlib_inline.backend_inline"):
        # a non-inline backend (Agg, for tests) would reach the kernel and leave the stored chapters without figures
        print("MPLBACKEND is not passed to the chapters: their figures are drawn inline", flush=True)
    if args.quick and not args.output_dir:   # smoke outputs never replace a chapter's full-run outputs
        args.output_dir = Path(tempfile.mkdtemp(prefix="vae_book_quick_"))
        print(f"quick run: the executed chapters go to {args.output_dir} (the chapters are left as they are)", flush=True)
    if args.output_dir:
        args.output_dir.mkdir(parents=True, exist_ok=True)
    mode = "quick" if args.quick else "full"
    failed = []
    for i, nb in enumerate(notebooks, 1):
        print(f"[{i}/{len(notebooks)}] {nb.name} ({mode})", flush=True)
        start = time.perf_counter()
        try:
            run_chapter(nb, (args.output_dir / nb.name) if args.output_dir else nb, args.quick)
        except (papermill.PapermillExecutionError, RunLockedError) as err:
            failed.append(nb.name)
            print(f"    FAILED after {time.perf_counter() - start:.0f} s: {str(err).strip().splitlines()[-1]}", flush=True)
            continue
        print(f"    done in {time.perf_counter() - start:.0f} s", flush=True)
    if failed:
        print(f"{len(failed)} chapter(s) failed, their stored outputs left as they were: {', '.join(failed)}"
              f" (the failed runs: {FAILED})", file=sys.stderr)
    return 1 if failed else 0


FAILED = ROOT / "runs" / "failed"


def run_chapter(nb: Path, out: Path, quick: bool) -> None:
    """Execute chapter ``nb`` into ``out`` through a temporary file in ``out``'s folder, under a lock on ``out``:
    ``out`` is replaced only when the chapter ran to its end; a failed run is kept in runs/failed/ instead."""
    with run_lock(out):
        fd, tmp = tempfile.mkstemp(prefix=f".{out.stem}.", suffix=".ipynb", dir=out.parent)
        os.close(fd)
        try:
            papermill.execute_notebook(str(nb), tmp, parameters={"quick": True if quick else None},
                                       cwd=str(CHAPTERS), progress_bar=True, kernel_name="python3")
        except BaseException:
            FAILED.mkdir(parents=True, exist_ok=True)
            shutil.move(tmp, FAILED / nb.name)
            raise
        hide_injected_parameters(Path(tmp))
        before, after = slim_images(Path(tmp))
        usual_mode(tmp)
        os.replace(tmp, out)
        print(f"    PNG outputs {before / 1024:.0f} KiB -> {after / 1024:.0f} KiB", flush=True)


if __name__ == "__main__":
    sys.exit(main())

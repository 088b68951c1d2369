"""Quadrature that converges or says so: the last point of every Figure 3 run re-scored where its
curve's quadrature (vae_lib.runs.figure3.QUADRATURE, grids of at most 32³ cells on the CPU) did not
converge (issue 20, item 2).

The exact value is log p(x) = log ∫ p(x|z) p(z) dz (the paper's Eq. 1 marginal), integrated on
grids that refine until two levels agree to ``tol`` (vae_lib.inference.quadrature). For each run's committed
checkpoint (the model its curve's last point evaluated) and each of the 500 train and 500 test
images of that point:

1. the curve's own protocol again, per image — its values must equal the curve's stored values
   (on average to 0.01 nat: float32 rounding moves an unconverged image's value by a little), which
   ties the checkpoint to the point;
2. every image that did not converge, again on finer grids (``FINER``: 16, 32, 64³ cells), and what
   still does not converge, on the finest (``FINEST``: up to 128³, a budget of ``max_finest`` images);
3. per image, the finest level's value and whether it converged; an image that never converged is
   counted as such and its value is reported as what it is — the finest grid's value, a lower
   bound only in the sense that refinement has so far only raised it (``rose``).
"""

from __future__ import annotations

import math
import os
import time
from pathlib import Path

import torch

from vae_lib.base.run_files import read_json, write_json
from vae_lib.base.statistics import estimate, paired_difference
from vae_lib.inference.quadrature import quadrature_log_marginal
from vae_lib.runs.figure3 import Figure3Run, figure3_data, load_figure3_model
from vae_lib.runs.figure3_scoring import QUADRATURE

FINER = dict(tol=0.01, n_start=16, n_wide=32, max_points=64 ** 3)
FINEST = dict(tol=0.01, n_start=32, n_wide=32, max_points=128 ** 3)
RESULT_FORMAT = "vae_lib.figure3_rescore/1"


def _quadrature(model, x: torch.Tensor, algorithm: str, settings: dict, batch_size: int = 100):
    """Per-image (value, converged, change) of vae_lib.inference.quadrature on the images x with ``settings``;
    MCEM's grids start at each posterior mode (it has no encoder), as in vae_lib.runs.figure3."""
    centre = "mode" if algorithm == "mcem" else "encoder"
    parts = [quadrature_log_marginal(model, xb, centre=centre, chunk_size=2 ** 15, **settings) for xb in x.split(batch_size)]
    return (torch.cat([p.log_px for p in parts]), torch.cat([p.converged for p in parts]),
            torch.cat([p.change for p in parts]))


def rescore_set(model, x: torch.Tensor, algorithm: str, stored: list[float], max_finest: int = 0) -> dict:
    """One run's one image set: the curve's protocol re-run (checked against ``stored``), then finer
    and finest grids where it did not converge. Per-image values, flags and counts."""
    value, converged, _ = _quadrature(model, x, algorithm, QUADRATURE)   # batches of 100, as the curve's
    mismatch = (value - torch.tensor(stored, dtype=value.dtype)).abs()
    if mismatch.mean().item() > 0.01 or mismatch.max().item() > 1.0:   # float32 rounding moves an unconverged value a little
        raise ValueError(f"the checkpoint does not give the curve's last point: values differ by {mismatch.mean().item():.3f} "
                         f"nats on average, up to {mismatch.max().item():.3f} (is the checkpoint the one the curve's last "
                         "point evaluated?)")
    out = {"n": len(x), "coarse_converged": int(converged.sum()), "coarse_values": [round(v, 3) for v in value.tolist()]}
    rose = torch.zeros_like(converged)
    for level, settings in (("finer", FINER), ("finest", FINEST)):
        idx = (~converged).nonzero().squeeze(-1)
        if level == "finest":
            idx = idx[:max_finest]
        if len(idx):
            v, c, _ = _quadrature(model, x[idx], algorithm, settings)
            rose[idx] |= v > value[idx]
            value[idx], converged[idx] = v, c
        out[f"{level}_rescored"] = len(idx)
        out[f"{level}_converged"] = int(converged.sum())
    e = estimate(value)
    out.update({"values": [round(v, 3) for v in value.tolist()], "converged_flags": converged.tolist(),
                "converged": int(converged.sum()), "rose": int(rose.sum()), "mean": e.mean, "se": e.stderr,
                "shift": paired_difference(value, torch.tensor(out["coarse_values"])).mean})
    return out


def read_rescore(path: str | os.PathLike) -> dict:
    """The file :func:`rescore_all` writes, checked: JSON of this format with finite means."""
    path = Path(path)
    result = read_json(path, RESULT_FORMAT, "a Figure 3 re-scoring", "rerun python scripts/figure3_rescore.py")
    for name, sets in result.get("runs", {}).items():
        for s, r in sets.items():
            if not math.isfinite(r.get("mean", math.nan)):
                raise ValueError(f"{path}: {name} / {s} has no finite mean")
    return result


def rescore_all(runs: list[Figure3Run], curves: dict[str, dict], checkpoint_dir: str | os.PathLike,
                out: str | os.PathLike, root: str | os.PathLike | None = None, max_finest: int = 0,
                limit: int | None = None, sets: list[tuple[str, str]] | None = None) -> dict:
    """Re-score the last point of every run in ``runs`` (``curves`` by run name), the test sets first,
    and write ``out`` after each set (atomic); a set already in ``out`` is kept (resumable). ``limit``: only the first
    that many images of each set (a smoke run); ``sets``: only these (run name, "test" or "train") pairs
    (several processes can share the work, each with its own ``out``, merged by :func:`merge_rescores`)."""
    out = Path(out)
    result = read_rescore(out) if out.exists() else {"format": RESULT_FORMAT, "finer": FINER, "finest": FINEST,
                                                    "coarse": QUADRATURE, "max_finest": max_finest, "runs": {}}
    for part in ("test", "train"):        # the test sets first: every verdict uses them
        for run in runs:
            if part in result["runs"].get(run.name, {}) or (sets is not None and (run.name, part) not in sets):
                continue
            model, samples = load_figure3_model(run, checkpoint_dir)
            point = curves[run.name]["points"][-1]
            if point["samples"] != samples:
                raise ValueError(f"{run.name}: the checkpoint holds {samples} samples, the curve's last point {point['samples']}")
            _, train_eval, test_eval = figure3_data(run.n_train, len(point["test"]["values"]), root)
            x = test_eval if part == "test" else train_eval
            t0 = time.perf_counter()
            with torch.no_grad():
                r = rescore_set(model, x[:limit], run.algorithm, point[part]["values"][:limit], max_finest)
            r.update(samples=samples, seconds=round(time.perf_counter() - t0, 1))
            result["runs"].setdefault(run.name, {})[part] = r
            result["written"] = time.strftime("%Y-%m-%d %H:%M:%S")
            write_json(out, result, indent=None)
            print(f"{run.name} {part}: converged {r['coarse_converged']} → {r['converged']}/{r['n']}, mean {r['mean']:.2f} "
                  f"± {r['se']:.2f} (shift {r['shift']:+.2f}; {r['seconds']:.0f} s)", flush=True)
    return result


def merge_rescores(out: str | os.PathLike, others: list[str | os.PathLike]) -> dict:
    """Merge the sets re-scored in ``others`` (files :func:`rescore_all` wrote with the same settings) into
    ``out``; a set already in ``out`` is kept. Returns the merged result."""
    result = read_rescore(out)
    for other in others:
        extra = read_rescore(other)
        if (extra["finer"], extra["coarse"]) != (result["finer"], result["coarse"]):
            raise ValueError(f"{other} was re-scored with other settings than {out}: not merged")
        for name, parts in extra["runs"].items():
            for part, r in parts.items():
                result["runs"].setdefault(name, {}).setdefault(part, r)
    write_json(out, result, indent=None)
    return result

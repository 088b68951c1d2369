"""The Figure 3 runs' curve files (vae_lib.runs.figure3_monitor writes them): reading one — checked, so a file that
is not a curve, is truncated, holds a non-finite value or belongs to another run says so — and what
the chapters ask of them: which device trained and evaluated each point, the segments per device,
the point nearest a sample count, paired per-image differences, and the table of chapter 11.
"""

from __future__ import annotations

import math
import os
from pathlib import Path

from typing import Protocol

from vae_lib.base.run_files import read_json
from vae_lib.base.statistics import paired_difference as _paired
from vae_lib.runs.figure3_scoring import quadrature_settings

ALGORITHMS = ("aevb", "wake_sleep", "mcem")
CURVE_FORMAT = "vae_lib.figure3_curve/1"


class Run(Protocol):
    """What a curve file is checked against: a run's name, algorithm and training-set size
    (vae_lib.runs.figure3.Figure3Run has them)."""

    name: str
    algorithm: str
    n_train: int


def curve_path(run: Run, out_dir: str | os.PathLike) -> Path:
    """Where ``run``'s curve lives in ``out_dir``."""
    return Path(out_dir) / f"{run.name}.json"


def read_curve(path: str | os.PathLike, run: Run | None = None) -> dict:
    """A Figure 3 curve written by :class:`vae_lib.runs.figure3_monitor.Figure3Monitor`: run settings, devices and a
    list of evaluation points (exact log p(x) of train and test images, IS beside it at some). Checked:
    a file that is not JSON (or is truncated), not a curve, holds a non-finite mean, or — with ``run`` —
    belongs to another run raises a ValueError that names the file and the fault."""
    path = Path(path)
    curve = read_json(path, CURVE_FORMAT, "a Figure 3 curve", "python scripts/figure3.py writes it")
    if run is not None and (curve.get("name") != run.name or curve.get("algorithm") != run.algorithm
                            or curve.get("n_train") != run.n_train):
        raise ValueError(f"{path} holds the curve of {curve.get('name')!r}, not of {run.name!r}")
    for p in curve.get("points", []):
        for part in ("train", "test"):
            mean = p.get(part, {}).get("mean")
            if not isinstance(mean, (int, float)) or not math.isfinite(mean):
                raise ValueError(f"{path}: the point at {p.get('samples')} samples has a non-finite {part} mean ({mean})")
    return curve


def point_device(curve: dict, point: dict) -> str:
    """The device that trained the model evaluated at ``point`` (recorded in newer points; else read
    from the curve's device history: a device's segment starts after its ``from_samples``)."""
    if "device" in point:
        return point["device"]
    if not curve.get("devices"):
        return "unknown"
    return [d for d in curve["devices"] if d["from_samples"] < point["samples"] or d is curve["devices"][0]][-1]["device"]


def point_quadrature(curve: dict, point: dict) -> dict:
    """The quadrature settings of ``point``'s evaluation (recorded in newer points; else those of the
    device that evaluated it, :func:`vae_lib.runs.figure3_scoring.quadrature_settings`)."""
    if "quadrature" in point:
        return point["quadrature"]
    return quadrature_settings("cuda" if point_device(curve, point).startswith("cuda") else "cpu")


def device_segments(curve: dict) -> list[dict]:
    """Which device trained which samples: per device of the curve's history, the samples it took
    the run from and to, its training minutes and its evaluation minutes."""
    devices, out = curve["devices"], []
    for i, d in enumerate(devices):
        end = devices[i + 1]["from_samples"] if i + 1 < len(devices) else curve["samples_seen"]
        t1 = devices[i + 1].get("from_train_seconds") if i + 1 < len(devices) else curve["train_seconds"]
        t0 = d.get("from_train_seconds", 0.0)
        points = [p for p in curve["points"] if point_device(curve, p) == d["device"]
                  and (d["from_samples"] < p["samples"] <= end or (i == 0 and p["samples"] <= end))]
        out.append({"device": d["device"], "from_samples": d["from_samples"], "to_samples": end,
                    "train_minutes": (t1 - t0) / 60 if t1 is not None else math.nan,   # nan: not recorded
                    "eval_minutes": sum(p.get("eval_seconds", 0.0) for p in points) / 60, "points": len(points)})
    return out


def point_near(curve: dict, samples: float, tolerance: float = 0.02) -> dict | None:
    """The evaluation point within ``tolerance`` (relative) of ``samples`` training samples, else None."""
    near = [p for p in curve["points"] if abs(p["samples"] - samples) <= tolerance * samples]
    return min(near, key=lambda p: abs(p["samples"] - samples)) if near else None


def last_shared_point(a: dict, b: dict, part: str = "test") -> tuple[dict, dict] | None:
    """The points of curves ``a`` and ``b`` at the last sample count both evaluated with per-image values of
    ``part`` — where a paired difference can be taken — or None where they share none. Curves evaluated on
    different image sets (``n_eval``) share none."""
    if a.get("n_eval") != b.get("n_eval"):
        return None
    with_values = lambda c: {p["samples"]: p for p in c["points"] if "values" in p.get(part, {})}
    pa, pb = with_values(a), with_values(b)
    common = sorted(set(pa) & set(pb))
    return (pa[common[-1]], pb[common[-1]]) if common else None


def paired_difference(a: dict, b: dict) -> tuple[float, float]:
    """Mean and standard error of the per-image difference a − b of two evaluations on the same
    images (``values`` of :func:`vae_lib.runs.figure3_scoring.exact_log_likelihood`; vae_lib.base.statistics);
    far tighter than the unpaired standard error when the images' log p(x) vary more than the models differ."""
    if "values" not in a or "values" not in b or len(a["values"]) != len(b["values"]):
        raise ValueError("a paired difference needs the per-image values of both, on the same images")
    d = _paired(a["values"], b["values"])
    return d.mean, d.stderr


def figure3_table(curves: list[dict], reference: dict | None = None, at: tuple[float, ...] = (1e6, 1e7)) -> list[dict]:
    """Rows per curve at the evaluation points near ``at`` training samples and at its last point:
    exact train and test log p(x), their gap (the overfitting measure), the device that trained the
    model and its training minutes so far, with the paper's read-off values at the end of its runs
    (vae_lib/runs/paper_values.json, 50000 images) beside the last row."""
    ref = (reference or {}).get("figure3", {})
    rows = []
    for c in sorted(curves, key=lambda c: (c["n_train"], ALGORITHMS.index(c["algorithm"]))):
        if not c["points"]:
            continue
        last = c["points"][-1]
        chosen = [(f"10^{round(math.log10(a))}", point_near(c, a)) for a in at]
        chosen = [(label, p) for label, p in chosen if p is not None and p is not last] + [("end", last)]
        paper = ref.get(c["algorithm"], {}) if c["n_train"] == 50000 else {}
        for label, p in chosen:
            rows.append({"algorithm": c["algorithm"], "n_train": c["n_train"], "at": label, "samples": p["samples"],
                         "train": p["train"]["mean"], "train_se": p["train"]["se"],
                         "test": p["test"]["mean"], "test_se": p["test"]["se"],
                         "gap": p["train"]["mean"] - p["test"]["mean"],
                         "gap_se": math.hypot(p["train"]["se"], p["test"]["se"]),
                         "paper_train_end": paper.get("train_end", math.nan) if label == "end" else math.nan,
                         "paper_test_end": paper.get("test_end", math.nan) if label == "end" else math.nan,
                         "device": point_device(c, p), "quadrature": point_quadrature(c, p),
                         "train_minutes": p["train_seconds"] / 60})
    return rows

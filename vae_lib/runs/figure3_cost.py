"""Figure 3 at equal cost, and its step size by the paper's rule (issue 20, item 3).

The paper draws Figure 3 against training samples evaluated. A training sample does not cost the
same in every algorithm: an MCEM sample is one HMC transition of its chain (10 leapfrog steps, each a
gradient of log p(x, z) through the decoder) plus its share of 5 weight updates (Appendix E), an
AEVB sample one pass through encoder and decoder (Algorithm 1). The cost axis here is the measured
one: each run's seconds of one CPU core per training sample, taken on the CPU segment of its own
curve (the runs began on a GPU, so their early seconds are not CPU seconds), times its samples —
the CPU-core seconds the run would have taken on this machine.

The step size: the paper picked Adagrad's global step size from {0.01, 0.02, 0.1} "based on
performance on the training set in the first few iterations" (Section 5). :func:`step_size_sweep`
applies that rule to a Figure 3 run: from the run's seeded initialization, 60000 training samples
with each candidate, scored by the exact log p(x) (vae_lib.inference.quadrature) of a seeded random
``n_eval`` of its training images — the same criterion for all three algorithms (MCEM has no bound).
"""

from __future__ import annotations

import math
import os
import tempfile

import torch

from vae_lib.base.run_files import read_json
from vae_lib.base.statistics import Estimate, paired_difference
from vae_lib.runs.figure3 import Figure3Run, train_figure3_run
from vae_lib.runs.figure3_curves import device_segments, last_shared_point
from vae_lib.runs.paper_runs import STEP_SIZES, SWEEP_SAMPLES


def cpu_seconds_per_sample(curve: dict) -> float | None:
    """Seconds of one CPU core per training sample, measured on the curve's CPU segments (None: none)."""
    cpu = [s for s in device_segments(curve) if s["device"].startswith("cpu") and s["to_samples"] > s["from_samples"]
           and math.isfinite(s["train_minutes"])]
    if not cpu:
        return None
    return sum(s["train_minutes"] for s in cpu) * 60 / sum(s["to_samples"] - s["from_samples"] for s in cpu)


def cost_of(curve: dict, point: dict) -> float:
    """The CPU-core seconds ``point``'s samples cost at the curve's measured rate."""
    rate = cpu_seconds_per_sample(curve)
    if rate is None:
        raise ValueError(f"{curve['name']}: no CPU segment in its device history, so no measured CPU cost")
    return point["samples"] * rate


def equal_cost_difference(cheap: dict, dear: dict, part: str = "test") -> tuple[dict, dict, Estimate]:
    """``cheap``'s last point with per-image values against the point of ``dear`` whose cost is nearest
    to it (on a log scale), and the paired per-image difference cheap − dear of ``part`` there."""
    with_values = lambda c: [p for p in c["points"] if "values" in p[part]]
    a = with_values(cheap)[-1]
    b = min(with_values(dear), key=lambda p: abs(math.log(cost_of(dear, p) / cost_of(cheap, a))))
    return a, b, paired_difference(a[part]["values"], b[part]["values"])


def step_size_sweep(run: Figure3Run, step_sizes: tuple[float, ...] = STEP_SIZES, samples: int = SWEEP_SAMPLES,
                    n_eval: int = 50, root: str | os.PathLike | None = None,
                    train_x: torch.Tensor | None = None) -> dict[float, float]:
    """The paper's rule on a Figure 3 run: {step size: mean exact log p(x) of ``n_eval`` training images
    after ``samples`` training samples from the seeded initialization}; a run whose weights diverge
    scores −inf. ``train_x`` replaces the MNIST subset (tests)."""
    scores = {}
    for lr in step_sizes:
        with tempfile.TemporaryDirectory() as tmp:
            try:
                curve = train_figure3_run(run, samples, tmp, tmp, root=root, n_eval=n_eval, first_eval=samples,
                                          is_k=0, lr=lr, checkpoint_seconds=math.inf, train_x=train_x)
                scores[lr] = curve["points"][-1]["train"]["mean"]
            except FloatingPointError:
                scores[lr] = -math.inf
    return scores


SWEEP_FORMAT = "vae_lib.figure3_step_size_sweep/1"


def read_step_size_sweep(path: str | os.PathLike) -> dict:
    """The step-size sweep ``scripts/figure3.py --step-size-sweep`` wrote at ``path`` ({"used": the book's step
    size, "runs": {run name: {step size: score}}}), checked: a file that is not JSON, not a sweep, or holds a
    NaN score says so, naming the file (a diverged candidate's −inf is a score)."""
    sweep = read_json(path, SWEEP_FORMAT, "the Figure 3 step-size sweep", "python scripts/figure3.py --step-size-sweep")
    for name, scores in (sweep.get("runs") or {}).items():
        bad = [k for k, v in scores.items() if not isinstance(v, (int, float)) or math.isnan(v)]
        if bad:
            raise ValueError(f"{path}: {name} has no score for step size {', '.join(bad)}")
    return sweep


def rule_step_size(sweep: dict, run: Figure3Run) -> float:
    """The step size the paper's rule picks for ``run``: the candidate of highest score in ``sweep``
    ({"runs": {run name: {step size: score}}}, as ``scripts/figure3.py --step-size-sweep`` writes it);
    a ValueError that says how to make it where the sweep holds no finite score for the run."""
    scores = {float(k): v for k, v in (sweep.get("runs") or {}).get(run.name, {}).items()
              if isinstance(v, (int, float)) and math.isfinite(v)}
    if not scores:
        raise ValueError(f"the step-size sweep holds no finite score for {run.name}: "
                         "python scripts/figure3.py --step-size-sweep")
    return max(scores, key=scores.get)


def at_rule_step(book: dict[str, dict], rule: dict[str, dict], picks: dict[str, float], used: float) -> dict[str, dict | None]:
    """Each run's curve at the step size the paper's rule picks for it (``picks``, run name → step size):
    the book's curve where the pick is the book's step size ``used``, the run retrained at the pick
    (``rule``) where there is one, else None."""
    return {name: book.get(name) if float(pick) == float(used) else rule.get(name) for name, pick in picks.items()}


def step_size_shift(book: dict, rule: dict, part: str = "test") -> tuple[dict, Estimate] | None:
    """A run retrained at the rule's step size against the book's run of the same algorithm and set: the
    rule run's point at the last sample count both evaluated and the paired per-image difference rule − book
    of ``part`` there; None where they share no such point."""
    shared = last_shared_point(rule, book, part)
    if shared is None:
        return None
    return shared[0], paired_difference(shared[0][part]["values"], shared[1][part]["values"])

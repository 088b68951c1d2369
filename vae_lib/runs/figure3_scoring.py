"""How the Figure 3 runs are scored (vae_lib.runs.figure3): the exact log p(x) of their evaluation images by
quadrature (vae_lib.inference.quadrature; the paper's Eq. 1 marginal, integrated over z for J = 3), the audit's
cross-checked reference value, and the importance-sampled estimate beside it (Burda et al. 2015, Eq. 10).

Settings: ``QUADRATURE`` on the CPU (grids of 8, 16 and at most 32 cells per axis, stopping when two levels
agree to 0.01 nat, a 16³ wide-box guard), ``QUADRATURE_GPU`` on a GPU (16, 32, 64³, a 32³ guard), and the
audit's two boxes on the GPU's grids (``QUADRATURE_REFERENCE``).
"""

from __future__ import annotations

import math

import torch

from vae_lib.model.vae import VAE
from vae_lib.inference.likelihood import importance_sampled_log_likelihood
from vae_lib.inference.quadrature import quadrature_log_marginal

QUADRATURE = dict(tol=0.01, n_start=8, n_wide=16, max_points=32 ** 3)   # on the CPU; measured: see vae_lib.runs.figure3
QUADRATURE_GPU = dict(tol=0.01, n_start=16, n_wide=32, max_points=64 ** 3)   # on a GPU: finer, to converge on test images
QUADRATURE_REFERENCE = QUADRATURE_GPU   # the audit's two boxes use the GPU's grids
IS_K = 1000


def quadrature_settings(device: torch.device | str) -> dict:
    """The quadrature's settings on ``device``: ``QUADRATURE`` on the CPU, ``QUADRATURE_GPU`` on a GPU."""
    return QUADRATURE_GPU if torch.device(device).type == "cuda" else QUADRATURE


def exact_log_likelihood(model: VAE, x: torch.Tensor, algorithm: str, batch_size: int = 100) -> dict:
    """Mean, standard error, convergence record and per-image values (3 decimals, for paired
    comparisons) of the exact log p(x) (vae_lib.inference.quadrature) over the images x. MCEM has no trained
    encoder: its grids start at each image's posterior mode with
    the Laplace approximation's widths (vae_lib.inference.quadrature.laplace_box) — its posteriors are far
    narrower than the coarse wide grid's cells, and boxes placed from that grid did not converge."""
    centre = "mode" if algorithm == "mcem" else "encoder"
    values, changes, converged = [], [], 0
    for xb in x.split(batch_size):
        q = quadrature_log_marginal(model, xb, centre=centre, **quadrature_settings(xb.device),
                                    chunk_size=2 ** 19 if xb.is_cuda else 2 ** 15)
        values.append(q.log_px)
        changes.append(q.change)
        converged += int(q.converged.sum())
    v = torch.cat(values)
    return {"mean": v.mean().item(), "se": (v.std() / math.sqrt(len(v))).item() if len(v) > 1 else math.nan,
            "max_change": torch.cat(changes).max().item(), "converged": converged, "n": len(v),
            "values": [round(a, 3) for a in v.tolist()]}


def reference_log_likelihood(model: VAE, x: torch.Tensor, batch_size: int = 50,
                             settings: dict | None = None) -> dict:
    """The audit's log p(x) of the images x: :func:`vae_lib.inference.quadrature.cross_checked_log_marginal` with
    ``settings`` (default ``QUADRATURE_REFERENCE``; a smoke run may pass the coarser ``QUADRATURE``) — for every image a box at its posterior mode and a second box spanning the
    wide grid's posterior, the larger converged value kept; ``disagree`` counts the images whose two
    converged boxes differ by more than 0.05 nat. Per-image values and counts."""
    from vae_lib.inference.quadrature import cross_checked_log_marginal

    parts = [cross_checked_log_marginal(model, xb, both=True, chunk_size=2 ** 19 if xb.is_cuda else 2 ** 15,
                                        **(settings or QUADRATURE_REFERENCE)) for xb in x.split(batch_size)]
    cat = lambda field: torch.cat([getattr(p, field) for p in parts])
    return {"values": cat("log_px").tolist(), "converged": int(cat("converged").sum()),
            "disagree": int(cat("disagree").sum()), "n": len(x)}


def importance_estimate(model: VAE, x: torch.Tensor, k: int = IS_K) -> dict:
    """Mean and standard error of the K-sample importance-sampled log p(x), encoder as proposal."""
    mean, se = importance_sampled_log_likelihood(model, x, k=k, batch_size=100, k_chunk=min(k, 500)).mean_and_stderr()
    return {"mean": mean, "se": se, "k": k}

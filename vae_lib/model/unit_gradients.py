"""The encoder's gradient per latent unit, in signal-to-noise and in size (chapter 14).

:func:`vae_lib.model.iwae.gradient_snr_by_unit` gives each group's signal-to-noise ratio,
abs(E g) / std(g), averaged over the group's scalars (Rainforth et al. 2018, Eq. 3). A ratio is
scale-free: a high SNR on a gradient that is nearly zero moves nothing. :func:`unit_gradient_stats`
gives, from the same draws, the ratio and the two sizes it divides, each averaged over the group's
scalars: ``signal`` = mean abs(E g) and ``noise`` = mean std(g).
"""

from __future__ import annotations

import torch

from vae_lib.model.iwae import _snr, unit_groups

#: the parameter groups :func:`unit_gradient_stats` reports, those of :func:`~vae_lib.model.iwae.gradient_snr_by_unit`
GROUPS = ("encoder", "decoder", "encoder active", "encoder collapsed", "decoder active", "decoder collapsed")


def _stats(rows: torch.Tensor) -> dict[str, float]:
    """SNR (as :func:`vae_lib.model.iwae._snr`), mean abs(mean) and mean std over the draws (dim 0)."""
    flat = rows.reshape(len(rows), -1)
    return {"snr": _snr(flat), "signal": flat.mean(0).abs().mean().item(), "noise": flat.std(0).mean().item()}


def unit_gradient_stats(model, x: torch.Tensor, k: int, active: torch.Tensor, estimator: str = "iwae",
                        n_draws: int = 200, seed: int = 0) -> dict[str, dict[str, float]]:
    """For each of :data:`GROUPS` — the groups of :func:`~vae_lib.model.iwae.gradient_snr_by_unit`, on the
    same draws (same ``seed``): the encoder's and decoder's parameters, and per latent unit (``active``: a
    bool tensor over the J units) the encoder's output rows for the unit's mean and log-variance and the
    decoder's first-layer weights read from it — a dict with ``snr``, ``signal`` (mean abs(E g)) and ``noise``
    (mean std(g)); nan where a group is empty."""
    groups = unit_groups(model, x, k, active, estimator, n_draws, seed)
    nan = {"snr": float("nan"), "signal": float("nan"), "noise": float("nan")}
    return {name: _stats(rows) if rows is not None else dict(nan) for name, rows in groups.items()}

"""The encoder's gradient per latent unit, in signal-to-noise and in size (chapter 14).

:func:`vae_lib.model.iwae.gradient_snr_by_unit` gives each group's signal-to-noise ratio,
abs(E g) / std(g), averaged over the group's scalars (Rainforth et al. 2018, Eq. 3). A ratio is
scale-free: a high SNR on a gradient that is nearly zero moves nothing. :func:`unit_gradient_stats`
gives, from the same draws, the ratio and the two sizes it divides, each averaged over the group's
scalars: ``signal``, the root-mean-square of E g over the group with the noise of the draws' average taken out,
and ``noise`` = mean std(g), with the ratio's bootstrap standard error; :func:`share_of_change` says which group carries a change
of the encoder's average.

Estimated from n draws, abs(mean)/std is pulled up by the noise of the mean: a scalar whose gradient has
mean zero reads about sqrt(2 / (π n)) (:func:`snr_floor`; 0.056 at n = 200), a floor the bootstrap's
standard error does not show. Scalars that no draw moves (:func:`vae_lib.model.iwae.moved`) are left out.
"""

from __future__ import annotations

import math

import torch

from vae_lib.model.iwae import _snr, moved, unit_groups

#: the parameter groups :func:`unit_gradient_stats` reports, those of :func:`~vae_lib.model.iwae.gradient_snr_by_unit`
GROUPS = ("encoder", "decoder", "encoder hidden", "encoder active", "encoder collapsed", "decoder active",
          "decoder collapsed")
#: bootstrap resamples of the draws behind each ratio's standard error
N_BOOT = 50


def snr_floor(n_draws: int) -> float:
    """The SNR that n draws of a pure-noise gradient read: E abs(mean) / sigma = sqrt(2 / (π n)) for Gaussian
    noise of mean zero — the level below which an estimated SNR cannot tell signal from none."""
    return math.sqrt(2 / (math.pi * n_draws))


def _stats(rows: torch.Tensor, seed: int, n_boot: int = N_BOOT) -> dict:
    """Over the draws (dim 0), for the scalars some draw moves (``n`` of them; ``n_zero`` left out, see
    :func:`vae_lib.model.iwae.moved`): the SNR (as :func:`vae_lib.model.iwae._snr`); ``signal``, the
    root-mean-square of E g over the scalars, sqrt(max(0, mean over scalars of (mean² − var / n_draws))) —
    E[mean²] = (E g)² + var(g) / n_draws, so the sum under the root is unbiased for the group's sum of (E g)²,
    and the root of a sum over many scalars is close to unbiased too (a root or clamp per scalar would bias it
    low where E g is near the noise of the average); ``noise``, the mean std; ``floor``, :func:`snr_floor`; ``snr_boot``: the SNR of
    ``n_boot`` resamples of the draws (with replacement, seeded by ``seed``: the same resamples for every group
    of as many draws) and ``snr_se``, their spread — Efron's bootstrap standard error of the ratio."""
    flat = rows.reshape(len(rows), -1)
    keep = moved(flat)
    flat = flat[:, keep]
    boot = _bootstrap_snr(flat, torch.Generator().manual_seed(seed), n_boot)
    mean, var = flat.mean(0), flat.var(0)
    signal = (mean.square() - var / len(flat)).mean().clamp(min=0).sqrt().item()
    return {"snr": _snr(flat), "snr_se": boot.std().item(), "snr_boot": boot.tolist(), "signal": signal,
            "noise": var.sqrt().mean().item(), "n": flat.shape[1], "n_zero": int((~keep).sum()),
            "floor": snr_floor(len(flat))}


def _bootstrap_snr(flat: torch.Tensor, generator: torch.Generator, n_boot: int) -> torch.Tensor:
    """The SNR of ``n_boot`` resamples (with replacement) of the draws (rows of ``flat``), as (n_boot,): each
    resample's per-scalar mean and unbiased variance from its draw counts, c @ x / n and c @ x² / n (one matrix
    product for all resamples; the draws centred first, so no precision is lost to the square)."""
    n = len(flat)
    counts = torch.stack([torch.bincount(torch.randint(n, (n,), generator=generator), minlength=n)
                          for _ in range(n_boot)]).to(device=flat.device, dtype=flat.dtype)     # (n_boot, n)
    centre = flat.mean(0)
    dev = flat - centre
    mean = counts @ dev / n
    var = (counts @ dev.square() / n - mean.square()).clamp(min=0) * n / (n - 1)
    return ((mean + centre).abs() / var.sqrt().clamp(min=1e-12)).mean(1)


def unit_gradient_stats(model, x: torch.Tensor, k: int, active: torch.Tensor, estimator: str = "iwae",
                        n_draws: int = 200, seed: int = 0, n_boot: int = N_BOOT) -> dict[str, dict[str, float]]:
    """For each of :data:`GROUPS` — the groups of :func:`~vae_lib.model.iwae.gradient_snr_by_unit`, on the
    same draws (same ``seed``): the encoder's and decoder's parameters, the encoder's hidden layers, and per
    latent unit (``active``: a bool tensor over the J units) the encoder's output rows for the unit's mean and
    log-variance and the decoder's first-layer weights read from it — a dict with ``snr``, its bootstrap
    standard error ``snr_se`` and the resamples' ratios ``snr_boot`` (``n_boot`` resamples of the draws, seeded:
    the same draw indices for every group and call with as many draws, so two results pair), ``signal``
    (root-mean-square E g, the noise of the average taken out),
    ``noise`` (mean std(g)), ``n`` (the group's scalars that some draw moves: the encoder's SNR is the
    ``n``-weighted mean of its hidden, active and collapsed groups'), ``n_zero`` (those none moves, left out)
    and ``floor`` (:func:`snr_floor`); nan where a group is empty."""
    groups = unit_groups(model, x, k, active, estimator, n_draws, seed)
    nan = {"snr": float("nan"), "snr_se": float("nan"), "snr_boot": [], "signal": float("nan"),
           "noise": float("nan"), "n": 0, "n_zero": 0, "floor": snr_floor(n_draws)}
    return {name: _stats(rows, seed, n_boot) if rows is not None else dict(nan) for name, rows in groups.items()}


def share_of_change(stats_a: dict[str, dict[str, float]], stats_b: dict[str, dict[str, float]],
                    parts: tuple[str, ...] = ("encoder hidden", "encoder active", "encoder collapsed"),
                    whole: str = "encoder") -> dict[str, float]:
    """How much of the change of ``whole``'s SNR from ``stats_a`` to ``stats_b`` (two :func:`unit_gradient_stats`
    results) each of ``parts`` carries: n_g (SNR_g(a) − SNR_g(b)) / (n (SNR(a) − SNR(b))), since the whole's SNR
    is the scalar-weighted mean of its parts'. The shares sum to 1 when the parts cover the whole."""
    n = sum(stats_a[p]["n"] for p in parts)
    if n != stats_a[whole]["n"]:
        raise ValueError(f"the parts {parts} hold {n} scalars, {whole} {stats_a[whole]['n']}")
    total = n * (stats_a[whole]["snr"] - stats_b[whole]["snr"])
    if total == 0:
        raise ValueError(f"{whole}'s SNR did not change: no shares to take")
    return {p: stats_a[p]["n"] * (stats_a[p]["snr"] - stats_b[p]["snr"]) / total for p in parts}


def snr_change(a: dict, b: dict) -> tuple[float, float]:
    """SNR(b) − SNR(a) for two groups of :func:`unit_gradient_stats` (two k, or two estimators), with the
    standard error of the difference: the spread of the paired bootstrap differences, resample by resample
    (both results resample the same draw indices, so draws that share their noise — two estimators at one k —
    are paired, and independent ones cost nothing); sqrt(se_a² + se_b²) when the resamples do not pair. The
    arguments of :func:`vae_lib.base.statistics.verdict`."""
    boot_a, boot_b = a.get("snr_boot") or [], b.get("snr_boot") or []
    if len(boot_a) == len(boot_b) > 1:
        se = torch.tensor(boot_b, dtype=torch.float64).sub(torch.tensor(boot_a, dtype=torch.float64)).std().item()
    else:
        se = math.hypot(a["snr_se"], b["snr_se"])
    return b["snr"] - a["snr"], se

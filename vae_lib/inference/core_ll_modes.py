"""Images whose posterior has a mode the encoder never sees (chapter 7b).

A quadrature box placed around the encoder's mean integrates the mode the encoder points at. Quadrature's
guard (:func:`vae_lib.inference.quadrature.quadrature_log_marginal`) first lays a coarse grid over the wide
box [−6, 6]^J and moves the box where posterior mass lies outside it. :func:`screen_for_missed_modes` runs
that coarse grid alone on many images, and every image it flags is estimated five ways: quadrature with the
guard and without it, importance sampling from the encoder, and the Appendix D estimator from two starts
(the encoder's mean, and the centre of the guarded quadrature's final box). Each box integral is a lower bound
on log p(x) up to its discretization error, so where two converged quadratures differ the larger is the closer.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from vae_lib.inference.appendix_d import appendix_d_log_marginal
from vae_lib.inference.likelihood import importance_sampled_log_likelihood
from vae_lib.inference.quadrature import quadrature_log_marginal
from vae_lib.model.objectives import LatentVariableModel


@dataclass(frozen=True)
class FlaggedImage:
    """One image the coarse screen flagged, log p(x) estimated five ways (nats). ``position``: its row in
    the screened x; ``*_change``: a quadrature's last change between levels (above its tolerance: not
    converged); ``centre``: the guarded quadrature's final box centre, (J,)."""

    position: int
    guarded: float
    unguarded: float
    guarded_change: float
    unguarded_change: float
    importance_sampled: float
    ess: float
    chain_from_encoder: float
    chain_from_box: float
    centre: torch.Tensor

    @property
    def guard_gain(self) -> float:
        """What the guard adds: guarded − unguarded quadrature (nats)."""
        return self.guarded - self.unguarded


def screen_for_missed_modes(model: LatentVariableModel, x: torch.Tensor, tol: float, n_start: int,
                            max_points: int, k: int, hmc_samples: int, hmc_burn_in: int,
                            n_wide: int = 16, seed: int = 0) -> tuple[list[FlaggedImage], int]:
    """Screens every image of x (B, D) (a model with J ≤ 3) with quadrature's coarse wide grid alone
    (``n_wide`` cells per axis, no refinement) and estimates log p(x) of each flagged image five ways:
    quadrature with and without the guard (``tol``, ``n_start``, ``max_points`` as in
    :func:`~vae_lib.inference.quadrature.quadrature_log_marginal`), importance sampling with ``k`` draws,
    and Appendix D (``hmc_samples``, ``hmc_burn_in``; generator seeded ``seed``) from the encoder's mean and
    from the guarded box's centre. Returns the flagged images, largest guard gain first, and how many the
    screen flagged."""
    screen = quadrature_log_marginal(model, x, max_levels=0, n_wide=n_wide)   # the guard's grid only
    hit = screen.recentred.nonzero().squeeze(-1)
    if len(hit) == 0:
        return [], 0
    x_hit = x[hit]
    box = dict(tol=tol, n_start=n_start, max_points=max_points)
    guarded = quadrature_log_marginal(model, x_hit, **box)
    unguarded = quadrature_log_marginal(model, x_hit, guard=False, **box)
    is_hit = importance_sampled_log_likelihood(model, x_hit, k=k)
    chains = {start: appendix_d_log_marginal(model, x_hit, n_samples=hmc_samples, burn_in=hmc_burn_in,
                                             init_z=init,
                                             generator=torch.Generator(device=x.device).manual_seed(seed))
              for start, init in (("encoder", None), ("box", guarded.centre))}
    found = [FlaggedImage(position=i, guarded=guarded.log_px[j].item(), unguarded=unguarded.log_px[j].item(),
                          guarded_change=guarded.change[j].item(), unguarded_change=unguarded.change[j].item(),
                          importance_sampled=is_hit.log_px[j].item(), ess=is_hit.ess[j].item(),
                          chain_from_encoder=chains["encoder"].log_px[j].item(),
                          chain_from_box=chains["box"].log_px[j].item(), centre=guarded.centre[j])
             for j, i in enumerate(hit.tolist())]
    return sorted(found, key=lambda r: -r.guard_gain), len(hit)

"""The paper's Figure 3 protocol (Appendix D, L = 50, 4 leapfrog steps; :mod:`vae_lib.runs.paper_protocol`)
against the book's quadrature, image by image (chapter 11).

Its error on an image, paper protocol − quadrature, counts only where the quadrature converged
(:func:`protocol_errors`); the images where it did not are counted, never used. Why the error has
the sign it has is checked by :func:`restart_check`: the Appendix D estimate with the protocol's own
start (the best of 256 prior draws) and with a start at the best of many more prior draws, the same
chains otherwise. A chain that sits in a minor mode of p(z|x) estimates that mode's mass alone (q
is fitted to it and the fresh draws come from it), so its estimate falls short of log p(x) by minus
the log of that mode's posterior mass; a better start removes that error.
"""

from __future__ import annotations

from typing import Sequence

import torch

from vae_lib.base.statistics import estimate
from vae_lib.inference.appendix_d import appendix_d_log_marginal
from vae_lib.inference.hmc import log_joint
from vae_lib.model.vae import VAE
from vae_lib.runs.paper_protocol import BURN_IN, PAPER_L, PAPER_LEAPFROG, encoder_free_start

TAIL = 1.0          # nats: an image whose |error| exceeds this is in a tail


def protocol_errors(paper: Sequence[float], quadrature: Sequence[float], converged: Sequence[bool],
                    tail: float = TAIL) -> dict:
    """Per-image errors paper − quadrature of the same images, on the images where the quadrature
    converged. Returns ``errors`` (a float64 tensor, in image order), ``index`` (their positions),
    ``left_out`` (images not converged), ``mean`` (an Estimate), ``median``, ``low`` and ``high``
    (the extremes), ``below`` / ``above`` (how many errors lie below −``tail`` / above ``tail``),
    ``within`` (how many within ±``tail``) and ``sum_below`` / ``sum_above`` (the sums of those tails,
    nats: what each tail adds to the total of which the mean is the n-th part)."""
    p, q = (torch.as_tensor(v, dtype=torch.float64) for v in (paper, quadrature))
    ok = torch.as_tensor(converged, dtype=torch.bool)
    if not p.shape == q.shape == ok.shape:
        raise ValueError(f"paper, quadrature and converged must hold the same images: {p.shape}, {q.shape}, {ok.shape}")
    if not ok.any():
        raise ValueError("the quadrature converged on none of the images: no error can be measured")
    e = (p - q)[ok]
    below, above = e < -tail, e > tail
    return {"errors": e, "index": torch.nonzero(ok).flatten(), "left_out": int((~ok).sum()), "n": e.numel(),
            "mean": estimate(e), "median": e.median().item(), "low": e.min().item(), "high": e.max().item(),
            "below": int(below.sum()), "above": int(above.sum()), "within": int((~below & ~above).sum()),
            "sum_below": e[below].sum().item(), "sum_above": e[above].sum().item()}


@torch.no_grad()
def best_prior_start(model: VAE, x: torch.Tensor, n_draws: int, generator: torch.Generator | None = None,
                     chunk: int = 4096) -> torch.Tensor:
    """For every image of x (B, D), the best of ``n_draws`` draws z ~ N(0, I) by log p(x, z), the draws
    scored in chunks (the protocol's :func:`~vae_lib.runs.paper_protocol.encoder_free_start` with many
    more draws). → (B, J)."""
    z = torch.randn(n_draws, model.latent_dim, generator=generator, dtype=x.dtype, device=x.device)
    best = []
    for xi in x:
        scores = torch.cat([log_joint(model, xi.expand(len(zc), -1))(zc) for zc in z.split(chunk)])
        best.append(z[scores.argmax()])
    return torch.stack(best)


def restart_check(model: VAE, x: torch.Tensor, n_draws: int = 20000, seed: int = 0) -> dict:
    """The Appendix D estimate of the paper's protocol (L = 50, 4 leapfrog steps, 200 burn-in
    transitions, no encoder) for every image of x (B, D), twice with the same chain seed: started at
    the best of 256 prior draws (``protocol``, the protocol's own start) and at the best of
    ``n_draws`` (``restarted``); with log p(x, z) at each start (``start_protocol``, ``start_restarted``)
    and the estimates' ``ratio_ess`` (between 1 and L). Lists of B floats each."""
    out = {}
    starts = {"protocol": encoder_free_start(model, x, generator=torch.Generator(x.device).manual_seed(seed)),
              "restarted": best_prior_start(model, x, n_draws, torch.Generator(x.device).manual_seed(seed + 1))}
    for name, start in starts.items():
        est = appendix_d_log_marginal(model, x, n_samples=PAPER_L, n_leapfrog=PAPER_LEAPFROG, burn_in=BURN_IN,
                                      init_z=start, precondition=False,
                                      generator=torch.Generator(x.device).manual_seed(seed + 2))
        with torch.no_grad():
            out[f"start_{name}"] = log_joint(model, x)(start).tolist()
        out[name], out[f"ratio_ess_{name}"] = est.log_px.tolist(), est.ratio_ess.tolist()
    return out


"""An ELBO you can move with your hand: for a few test images of a J = 2 Bernoulli VAE, a page without a
kernel draws the true posterior p(z|x) on a grid (with axes), the encoder's q(z|x) (dashed, on top) and a q of
the reader's own (four sliders: two means, two log σ), and reads out, live, as numbers and as two stacked bars,

    ELBO(q) = E_q[log p(x|z)] − KL(q ‖ N(0, I))          (Kingma & Welling, 2013, Eq. 3 and Appendix B)
    log p(x) = ELBO(q) + KL(q ‖ p(z|x))                   (Eq. 1)

with KL(q ‖ p(z|x)) computed on the posterior's grid, not as log p(x) − ELBO(q): the page prints the residual
of Eq. 1, and flags a q the grid cannot resolve (:func:`~vae_lib.figures.playground_rules.grid_resolves`).

The decoder travels in the page as :mod:`vae_lib.figures.web_explorer` carries it (float16 weights, base64); the
page's JavaScript computes in float64 from those weights, exactly as
:func:`~vae_lib.figures.playground_rules.playground_readout` does with ``float16=True`` — a test drives the page in
Chromium and compares the two. The page's two quadratures, their rules and their errors are
:mod:`vae_lib.figures.playground_rules`'s; the box of log p(x)'s grid is placed
here (:func:`playground_setup`).

The float16 weights cost more than either rule: on four test images of latent2_h400 they move log p(x) and
the ELBO by up to 0.011 nats (:func:`playground_agreement` measures all three shares; the page is 840 KiB).

The "best diagonal q" is :func:`vae_lib.inference.gaps.optimize_gaussian_elbo` with the page's rule for E_q[log p(x|z)]
(:func:`~vae_lib.figures.playground_rules.q_rule`) as its expected log-likelihood, so q* maximizes the ELBO the page
shows.
"""

from __future__ import annotations

import copy
import html
import json
import math
import uuid
from pathlib import Path
from typing import NamedTuple, Sequence

import torch

from vae_lib.base.params import check_image_shape, check_int
from vae_lib.model.vae import VAE
from vae_lib.inference.gaps import optimize_gaussian_elbo
from vae_lib.figures.playground_rules import PlaygroundGrids, Readout, playground_readout, q_axis, q_rule
from vae_lib.inference.quadrature import box_log_marginal, quadrature_log_marginal
from vae_lib.figures.web_explorer import JS_DECODER_WEIGHTS, decoder_layer_specs, page_weight_kib

__all__ = [
    "MAX_IMAGES", "PlaygroundSetup", "playground_setup", "ELBOPlayground", "playground_agreement",
]

MAX_IMAGES = 8


class PlaygroundSetup(NamedTuple):
    """What the page ships per image, B images: the encoder's q (``encoder_mu``, ``encoder_log_var``, (B, 2));
    the best diagonal q (``best_mu``, ``best_log_var``, (B, 2)); the square box ``centre`` (B, 2) ±
    ``half_width`` (B,)."""

    encoder_mu: torch.Tensor
    encoder_log_var: torch.Tensor
    best_mu: torch.Tensor
    best_log_var: torch.Tensor
    centre: torch.Tensor
    half_width: torch.Tensor




def _expected_log_likelihood(model: VAE, grids: PlaygroundGrids):
    """E_q[log p(x|z)] by the page's rule, differentiable in mu and log_var: for optimize_gaussian_elbo."""
    def expected(x: torch.Tensor, mu: torch.Tensor, log_var: torch.Tensor) -> torch.Tensor:
        u, w = q_rule(grids, mu.dtype)
        z = mu + torch.exp(0.5 * log_var) * u.to(mu.device)[:, None, :]                             # (P², B, 2)
        return w.to(mu.device) @ model.log_likelihood(x, z)
    return expected


def playground_setup(model: VAE, x: torch.Tensor, grids: PlaygroundGrids = PlaygroundGrids(),
                     best_steps: int = 150, best_lr: float = 0.05) -> PlaygroundSetup:
    """The encoder's q, the best diagonal q and the box of every image of x (B, D) → PlaygroundSetup.

    The best q takes ``best_steps`` Adam steps (learning rate ``best_lr``, cosine-decayed) from the encoder's
    q on the page's ELBO (:func:`vae_lib.inference.gaps.optimize_gaussian_elbo` with the page's rule). The posterior's
    mean and standard deviation come from a 64² grid on the final box of a converged quadrature (tolerance
    1e-3 nats, float64); the square box holds the mean ± ``grids.box_sds`` standard deviations and both
    q's ellipses at ``grids.q_half_width`` σ (the grid's KL(q ‖ p(z|x)) needs all of q's mass)."""
    model64 = copy.deepcopy(model).double()
    x64 = x.double().to(next(model64.parameters()).device)
    with torch.no_grad():
        encoder_mu, encoder_log_var = model64.encode(x64)
    best = optimize_gaussian_elbo(model, x.to(next(model.parameters())), n_steps=best_steps, lr=best_lr,
                                  n_eval=1, expected_log_likelihood=_expected_log_likelihood(model, grids))
    best_mu, best_log_var = best.mu.double().to(x64.device), best.log_var.double().to(x64.device)
    with torch.no_grad():
        quad = quadrature_log_marginal(model64, x64, tol=1e-3)
        post = box_log_marginal(model64, x64, quad.centre, quad.scale * quad.half_width[:, None], 64, 1.0)
    lows = [post.mean - grids.box_sds * post.std]
    highs = [post.mean + grids.box_sds * post.std]
    for mu, log_var in ((encoder_mu, encoder_log_var), (best_mu, best_log_var)):
        lows.append(mu - grids.q_half_width * torch.exp(0.5 * log_var))   # q's mass, for KL(q ‖ p(z|x))
        highs.append(mu + grids.q_half_width * torch.exp(0.5 * log_var))
    low, high = torch.stack(lows).amin(0), torch.stack(highs).amax(0)                               # (B, 2)
    return PlaygroundSetup(encoder_mu, encoder_log_var, best_mu, best_log_var,
                           (low + high) / 2, ((high - low) / 2).amax(-1))


class ELBOPlayground:
    """Displays as the kernel-free ELBO playground (``_repr_html_``) for a J = 2 Bernoulli VAE and a few
    binarized images (n, D); ``labels`` name them under their pictures. Building it computes the best
    diagonal q of every image (:func:`playground_setup`; about 15 s for four MNIST images of latent2_h400 on
    one CPU thread)."""

    def __init__(self, model: VAE, images: torch.Tensor, labels: Sequence[str] | None = None,
                 image_shape: tuple[int, int] = (28, 28), grids: PlaygroundGrids = PlaygroundGrids(),
                 best_steps: int = 150, invert: bool = True, title: str = ""):
        if model.latent_dim != 2:
            raise ValueError(f"the playground draws q and p(z|x) in the plane: it needs latent_dim = 2, got {model.latent_dim}")
        if model.config.likelihood != "bernoulli":
            raise ValueError(f"the page computes a Bernoulli log p(x|z); this model's likelihood is {model.config.likelihood!r}")
        d = model.config.data_dim
        if not isinstance(images, torch.Tensor):
            raise ValueError(f"images must be a tensor (n, {d}) of binarized pixels, got {type(images).__name__}")
        check_int("best_steps", best_steps, 1)
        if images.ndim != 2 or images.shape[1] != d or not 1 <= len(images) <= MAX_IMAGES:
            raise ValueError(f"images must be (n, {d}) with 1 <= n <= {MAX_IMAGES}, got shape {tuple(images.shape)}")
        if not ((images == 0) | (images == 1)).all():
            raise ValueError("images must be binarized (0 or 1), e.g. observe(x, 'fixed', seed=TEST_SEED)")
        image_shape = check_image_shape(image_shape, d)
        if labels is not None and len(labels) != len(images):
            raise ValueError(f"{len(labels)} labels for {len(images)} images")
        self.model, self.images, self.image_shape, self.grids = model, images.detach().cpu(), image_shape, grids
        self.labels = [str(s) for s in labels] if labels is not None else [f"image {i}" for i in range(len(images))]
        self.invert, self.title = invert, title
        self.setup = PlaygroundSetup(*(t.cpu() for t in playground_setup(model, images, grids, best_steps)))
        self.id = f"vae-playground-{uuid.uuid4().hex[:8]}"

    def readout(self, mu: torch.Tensor, log_var: torch.Tensor, float16: bool = True) -> Readout:
        """:func:`~vae_lib.figures.playground_rules.playground_readout` for these images and boxes: mu, log_var (n, 2) → Readout of (n,)."""
        s = self.setup
        return playground_readout(self.model, self.images, mu, log_var, s.centre, s.half_width, self.grids, float16)

    def spec(self) -> dict:
        """What the page's JavaScript reads: the decoder's layers, the grids, and per image its pixels, box,
        the encoder's and the best q as [μ0, μ1, log σ0, log σ1], and the log σ sliders' range."""
        s, (u, w) = self.setup, q_axis(self.grids)
        images = []
        for i, x in enumerate(self.images):
            q = {name: [*mu[i].tolist(), *(0.5 * log_var[i]).tolist()]
                 for name, mu, log_var in (("encoder", s.encoder_mu, s.encoder_log_var), ("best", s.best_mu, s.best_log_var))}
            r = float(s.half_width[i])
            log_sigmas = q["encoder"][2:] + q["best"][2:]
            images.append({"x": "".join("1" if v else "0" for v in x.tolist()), "label": self.labels[i],
                           "centre": s.centre[i].tolist(), "half_width": r, **q,
                           "log_sigma_range": [min(math.log(2 * r / self.grids.grid_size) - 1, min(log_sigmas) - 0.5),
                                               max(math.log(2 * r), max(log_sigmas) + 0.5)]})
        return {"id": self.id, "layers": decoder_layer_specs(self.model), "activation": self.model.config.activation,
                "shape": list(self.image_shape), "invert": self.invert, "grid_size": self.grids.grid_size,
                "q_u": u.tolist(), "q_w": w.tolist(), "images": images}

    def _repr_html_(self) -> str:
        rows, cols = self.image_shape
        thumbs = "".join(
            f'<button type="button" data-image="{i}" style="border:2px solid #ccc;background:#fff;padding:2px;cursor:pointer">'
            f'<canvas width="{cols}" height="{rows}" style="width:{2 * cols}px;height:{2 * rows}px;image-rendering:pixelated;display:block"></canvas>'
            f'<span style="font-size:11px">{html.escape(label)}</span></button>' for i, label in enumerate(self.labels))
        names = ["μ[0]", "μ[1]", "log σ[0]", "log σ[1]"]
        sliders = "".join(
            f'<div style="display:flex;align-items:center;gap:6px;margin:2px 0"><label style="font-family:monospace;width:5.5em">{n}</label>'
            f'<input type="range" data-q="{j}" min="0" max="1" step="any" value="0" style="width:180px" aria-label="q: {n}">'
            f'<span style="font-family:monospace;width:4.5em"></span></div>' for j, n in enumerate(names))
        title = f"<div style='font-weight:600;margin-bottom:4px'>{html.escape(self.title)}</div>" if self.title else ""
        spec = json.dumps(self.spec()).replace("<", "\\u003c")
        return (f'<div id="{self.id}" class="vae-playground" style="font-family:sans-serif;font-size:13px">{title}'
                f'<div style="display:flex;gap:6px;flex-wrap:wrap;margin-bottom:6px">{thumbs}</div>'
                f'<div style="display:flex;gap:16px;flex-wrap:wrap;align-items:flex-start">'
                f'<div><canvas class="posterior" width="360" height="360"></canvas>'
                f'<div class="box" style="font-family:monospace;font-size:11px"></div>'
                f'<canvas class="bar" width="360" height="126" aria-label="log p(x) = ELBO + KL, as bars"></canvas></div>'
                f'<div>{sliders}<div style="margin:6px 0">snap to: <button type="button" data-snap="encoder">encoder\'s q</button> '
                f'<button type="button" data-snap="best">best diagonal q</button></div>'
                f'<table class="readout" style="font-family:monospace"></table>'
                f'<div class="note" style="font-size:11px;color:#b30000;max-width:330px"></div>'
                f'<div style="font-size:11px;color:#555;max-width:330px">blue: p(z|x) on the grid; red: your q; orange, '
                f'dashed: the encoder\'s q(z|x), drawn on top (ellipses at 1σ and 2σ). The bars: log p(x) (black tick) '
                f'= ELBO (blue) + KL(q ‖ p(z|x)) (red), the KL computed on the grid, not from the ELBO; below, the '
                f'reconstruction E_q[log p(x|z)] (green) less the KL to the prior (orange) is the ELBO.</div>'
                f'</div></div></div><script>{_JS.replace("SPEC", spec)}</script>')


def playground_agreement(playground: ELBOPlayground) -> dict[str, float]:
    """How far the page's numbers lie from full-precision PyTorch, in nats, the maximum over the images:
    ``log_px`` against converged quadrature (:func:`vae_lib.inference.quadrature.quadrature_log_marginal`, float64,
    tolerance 1e-5); ``elbo_encoder`` and ``elbo_best`` against the model's own weights and a 96² rule on
    ±8σ; ``float16_log_px`` and ``float16_elbo``, the share of the float16 weights alone (the page's rules
    with the model's weights against the page), ``rules_log_px`` and ``rules_elbo`` the share of the page's
    rules alone (the model's weights, the page's rules against the references). Also ``html_kib``, the
    page's size. The page's numbers are
    :func:`~vae_lib.figures.playground_rules.playground_readout` with float16 weights, which the browser test matches to 1e-6 nats."""
    s, model = playground.setup, playground.model
    fine = PlaygroundGrids(grid_size=playground.grids.grid_size, q_points=96, q_half_width=8.0)
    x64 = playground.images.double()
    out = {"float16_elbo": 0.0, "rules_elbo": 0.0}
    for name, mu, log_var in (("encoder", s.encoder_mu, s.encoder_log_var), ("best", s.best_mu, s.best_log_var)):
        page = playground.readout(mu, log_var, float16=True)
        same_rules = playground.readout(mu, log_var, float16=False)
        truth = playground_readout(model, x64, mu, log_var, s.centre, s.half_width, fine, float16=False)
        out[f"elbo_{name}"] = (page.elbo - truth.elbo).abs().max().item()
        out["float16_elbo"] = max(out["float16_elbo"], (page.elbo - same_rules.elbo).abs().max().item())
        out["rules_elbo"] = max(out["rules_elbo"], (same_rules.elbo - truth.elbo).abs().max().item())
    quad = quadrature_log_marginal(copy.deepcopy(model).double().cpu(), x64, tol=1e-5)
    out["log_px"] = (page.log_px - quad.log_px).abs().max().item()                  # log p(x) is the same for every q
    out["float16_log_px"] = (page.log_px - same_rules.log_px).abs().max().item()
    out["rules_log_px"] = (same_rules.log_px - quad.log_px).abs().max().item()
    out["html_kib"] = page_weight_kib(playground)
    return out


# the page's code lives beside this module, in playground.js; the decoder's weights are decoded by the
# explorer's shared block (vae_lib.figures.web_explorer.JS_DECODER_WEIGHTS)
_JS = (Path(__file__).with_name("playground.js").read_text()
       .replace("  /* JS_DECODER_WEIGHTS */", JS_DECODER_WEIGHTS))

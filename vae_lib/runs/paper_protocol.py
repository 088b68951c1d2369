"""Figure 3 measured the way the paper measured it (Kingma & Welling 2013, the last paragraph of
Appendix E): the marginal likelihood of **the first 1000 training and the first 1000 test images**,
each from **L = 50 posterior draws of Hybrid Monte Carlo with 4 leapfrog steps**, through the
Appendix D estimator (:func:`vae_lib.inference.appendix_d.appendix_d_log_marginal`).

What the paper leaves open, and what the book chose:

- *How the chains start.* MCEM has no encoder, so the chains use none: each starts at the best of
  256 draws from the prior by log p(x, z) (:func:`encoder_free_start`) and moves in z itself, not in
  an encoder's standardized coordinates (``precondition=False``).
- *How the step size is tuned.* During a burn-in of 200 transitions, per chain, toward 90 %
  acceptance by dual averaging — the setting the paper gives for its MCEM E-step.
- *Which "first 1000 training images".* The first 1000 of the images the run was trained on (for
  the 50000-image runs, the first 1000 of those): the paper's training sets began with the file's
  first images. The test images are the first 1000 of the ordered MNIST test file.

Beside it, :func:`score_paper_protocol` scores the same estimator on the book's own 500 seeded random
test images, so two things can be measured: its error against the curves' quadrature on the same
images (paired), and how far the first-1000 slice sits from a random draw (the same estimator).
"""

from __future__ import annotations

import torch

from vae_lib.model.vae import VAE
from vae_lib.inference.appendix_d import appendix_d_log_marginal
from vae_lib.inference.hmc import log_joint

PAPER_L, PAPER_LEAPFROG, PAPER_IMAGES = 50, 4, 1000
BURN_IN = 200
START_DRAWS = 256


@torch.no_grad()
def encoder_free_start(model: VAE, x: torch.Tensor, n_draws: int = START_DRAWS,
                       generator: torch.Generator | None = None) -> torch.Tensor:
    """For every image of x (B, D), the best of ``n_draws`` draws z ~ N(0, I) by log p(x|z) + log p(z):
    a start near the posterior's main mode that uses no encoder. → (B, J)."""
    z = torch.randn(n_draws, model.latent_dim, generator=generator, dtype=x.dtype, device=x.device)
    scores = torch.stack([log_joint(model, x)(z_i.expand(len(x), -1)) for z_i in z])     # (n_draws, B)
    return z[scores.argmax(0)]


def paper_protocol_log_marginal(model: VAE, x: torch.Tensor, n_samples: int = PAPER_L,
                                n_leapfrog: int = PAPER_LEAPFROG, burn_in: int = BURN_IN, seed: int = 0,
                                batch_size: int = 250) -> torch.Tensor:
    """The paper's Figure 3 estimate of log p(x) for every image of x (B, D): Appendix D with L =
    ``n_samples`` draws from chains of ``n_leapfrog`` leapfrog steps, started without an encoder.
    → (B,). With exact posterior draws it is biased upward, and little (the log of an unbiased estimate
    of 1/p(x), negated). These chains are short and start at the best of a few prior draws, so that holds
    only where a chain finds the posterior's main mode: a chain stuck in a minor mode of p(z|x) fits q to
    that mode and draws from it, so it estimates that mode's mass alone and falls short of log p(x) by minus
    the log of the mode's posterior mass — downward, and without limit. Chapter 11 measures both: the bulk
    of the images within a nat, a long tail below that carries the mean
    (:mod:`vae_lib.runs.figure3_protocol_error`; :func:`~vae_lib.runs.figure3_protocol_error.restart_check`
    removes that error with a better start)."""
    out = []
    for i, xb in enumerate(x.split(batch_size)):
        g = torch.Generator(device=x.device).manual_seed(seed + i)
        start = encoder_free_start(model, xb, generator=g)
        est = appendix_d_log_marginal(model, xb, n_samples=n_samples, n_leapfrog=n_leapfrog, burn_in=burn_in,
                                      init_z=start, precondition=False, generator=g)
        out.append(est.log_px)
    return torch.cat(out)


def score_paper_protocol(model: VAE, train_x: torch.Tensor, test_file_x: torch.Tensor, random_test_x: torch.Tensor,
                         curve_test_values: list[float] | None = None, n_images: int = PAPER_IMAGES) -> dict:
    """One Figure 3 run's model under the paper's protocol: per-image estimates on the first ``n_images``
    of its training images (``train_x`` in training order) and of the test file (``test_file_x``, file
    order), and on the book's random test images (``random_test_x``) — with, where the curve's
    quadrature values of those images are given, the per-image difference (paper protocol − quadrature)."""
    out = {"protocol": {"L": PAPER_L, "leapfrog": PAPER_LEAPFROG, "burn_in": BURN_IN, "start": f"best of {START_DRAWS} prior draws",
                        "images": n_images},
           "train_first": paper_protocol_log_marginal(model, train_x[:n_images]).tolist(),
           "test_first": paper_protocol_log_marginal(model, test_file_x[:n_images], seed=1).tolist(),
           "test_random": paper_protocol_log_marginal(model, random_test_x, seed=2).tolist()}
    if curve_test_values is not None:
        out["test_random_minus_quadrature"] = [a - b for a, b in zip(out["test_random"], curve_test_values)]
    return out

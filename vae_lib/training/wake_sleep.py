"""The wake-sleep algorithm — Hinton, Dayan, Frey & Neal (1995) — the baseline of Kingma & Welling
(2013), Figures 2 and 3.

It trains the same encoder (recognition model) q(z|x) and decoder p(x|z) as AEVB, with the same
prior p(z) = N(0, I), but with two objectives, each reaching one network only:

- **wake** (decoder θ): with z ~ q(z|x) drawn *without* a gradient path to the encoder, ascend
  log p(x, z) = log p(x|z) + log p(z). The prior has no parameters, so only log p(x|z) moves θ.
- **sleep** (encoder φ): draw a fantasy (z, x) from the generative model, z ~ p(z), x ~ p(x|z),
  with no gradient path to the decoder, and ascend log q(z|x) — the recognition model learns to
  invert the generative model (it minimizes KL(p(z|x) ‖ q(z|x)) averaged over p(x), not the
  KL(q ‖ p) that the ELBO penalizes).

Neither objective is a bound; progress is reported as the paper reports it: the variational lower
bound (estimator B) with the recognition model as q. Randomness comes in as tensors
(:class:`WakeSleepNoise`), so the functions are pure and a test can fix every draw.
"""

from __future__ import annotations

from typing import NamedTuple

import torch

from vae_lib.model.objectives import ELBOTerms, kl_to_standard_normal, log_normal_diag, reparameterize


class WakeSleepNoise(NamedTuple):
    """The draws of one wake-sleep step for a minibatch of B images with J latents and D pixels.

    eps: (B, J) standard normals for the wake phase's z = μ + σ ε;
    z_sleep: (S, J) fantasies z ~ N(0, I) for the sleep phase (S = B in the paper's setting);
    x_sleep_noise: (S, D) uniforms (Bernoulli decoder) or standard normals (Gaussian decoder)
    that turn the decoder's output into a fantasy x ~ p(x|z).
    """

    eps: torch.Tensor
    z_sleep: torch.Tensor
    x_sleep_noise: torch.Tensor


def draw_wake_sleep_noise(model, x: torch.Tensor, generator: torch.Generator | None = None) -> WakeSleepNoise:
    """Draw the noise of one step for the minibatch ``x`` (B, D): as many fantasies as images.
    ``model.observation_noise`` says whether a fantasy x is made from uniforms or normals."""
    b, d, j = x.shape[0], x.shape[-1], model.latent_dim
    kw = dict(generator=generator, device=x.device, dtype=x.dtype)
    eps, z_sleep = torch.randn(b, j, **kw), torch.randn(b, j, **kw)
    noise = torch.rand(b, d, **kw) if model.observation_noise == "uniform" else torch.randn(b, d, **kw)
    return WakeSleepNoise(eps, z_sleep, noise)


def wake_sleep_objectives(
    model, x: torch.Tensor, noise: WakeSleepNoise
) -> tuple[torch.Tensor, torch.Tensor, ELBOTerms]:
    """The two per-example objectives of one wake-sleep step and the bound
    it reports.

    Returns (wake, sleep, report): wake = log p(x|z) with z ~ q(z|x)
    detached, (B,), whose gradient reaches the decoder only; sleep =
    log q(z_s|x_s) on fantasies, (S,), whose gradient reaches the encoder
    only; report = ELBOTerms of estimator B (the paper's Eq. 7) with the
    same z, detached — the number Figure 2 plots. Ascend wake.mean() +
    sleep.mean()."""
    with torch.no_grad():
        # the wake phase: no gradient to φ
        mu, log_var = model.encode(x)  # (B, J)
        z = reparameterize(mu, log_var, eps=noise.eps)  # (B, J)
        kl = kl_to_standard_normal(mu, log_var)
    wake = model.log_likelihood(x, z)  # (B,): gradient to θ only
    with torch.no_grad():  # fantasies: no gradient to θ
        x_sleep = model.sample_observation(
            noise.z_sleep, noise.x_sleep_noise
        )  # (S, D)
    mu_s, log_var_s = model.encode(x_sleep)
    # (S,): gradient to φ only
    sleep = log_normal_diag(noise.z_sleep, mu_s, log_var_s)
    return wake, sleep, ELBOTerms(wake.detach(), kl)

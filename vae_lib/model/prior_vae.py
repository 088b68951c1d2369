"""A VAE with a prior p(z) of its own: the book's :class:`~vae_lib.model.vae.VAE` (encoder, decoder) and one of
the priors of :mod:`vae_lib.model.priors` — N(0, I), a learned mixture of Gaussians, or the VampPrior
(Tomczak & Welling 2018) — trained with the rest of the model.

:class:`PriorVAE` keeps the VAE's interface (``encode``, ``log_likelihood``, ``decode``, ``sample``,
``latent_dim``, ``data_dim``, ``config``) and adds ``log_prior(z)``: every objective and estimator of the
library reads p(z) through :func:`vae_lib.model.objectives.log_prior`, which calls it when a model has one and
takes N(0, I) otherwise. A model's :class:`PriorConfig` (the kind and its size) is saved in its checkpoint
beside its :class:`~vae_lib.model.vae.VAEConfig` (:func:`vae_lib.training.checkpoints.save_checkpoint`).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from vae_lib.base.params import check_int
from vae_lib.model.kl_control import mean_kl_per_dimension
from vae_lib.model.objectives import LOG_2PI, has_standard_normal_prior
from vae_lib.model.priors import MixturePrior, StandardNormalPrior, VampPrior
from vae_lib.model.vae import VAE, BernoulliDecoder, VAEConfig

PRIOR_KINDS = ("standard", "mog", "vamp")
DECODER_STARTS = ("zero", "mean")
MEAN_CLIP = 0.001   # Burda et al.'s code clips the training mean to [0.001, 0.999] before taking its log-odds


@dataclass(frozen=True)
class PriorConfig:
    """Which prior p(z) a :class:`~vae_lib.model.prior_vae.PriorVAE` has, and how its decoder starts.

    A checkpoint saved before ``decoder_start`` existed holds no such key:
    :func:`~vae_lib.model.prior_vae.saved_prior_config` reads it as "zero", the start those models had."""

    kind: str = "standard"   # "standard" N(0, I), "mog" a learned mixture of Gaussians, "vamp" the VampPrior
    components: int = 1      # C, the mixture's components ("mog") or the pseudo-inputs ("vamp"); 1 for "standard"
    decoder_start: str = "zero"   # the decoder's output bias at the start: "zero" (PyTorch's, near zero:
                                  # every pixel p ≈ 0.5) or "mean" (the mean training image's log-odds, as Burda et al.'s code)

    def __post_init__(self) -> None:
        if self.decoder_start not in DECODER_STARTS:
            raise ValueError(f"unknown decoder_start {self.decoder_start!r}; choose one of {DECODER_STARTS}")
        if self.kind not in PRIOR_KINDS:
            raise ValueError(f"unknown prior kind {self.kind!r}; choose one of {PRIOR_KINDS}")
        check_int("components", self.components)
        if self.kind == "standard" and self.components != 1:
            raise ValueError(f"the standard normal prior has one component, got components={self.components}")


def saved_prior_config(saved: dict | None) -> "PriorConfig | None":
    """The :class:`PriorConfig` a checkpoint's ``prior_config`` dict describes (None for none); keys it lacks
    take their defaults, so checkpoints written before a field existed compare equal to the configuration they
    were trained with."""
    return None if saved is None else PriorConfig(**saved)


def build_prior(config: PriorConfig, vae: VAE, data: torch.Tensor | None = None,
                generator: torch.Generator | None = None) -> nn.Module:
    """The prior module ``config`` names for the latent space of ``vae``. A mixture's means start at N(0, I)
    draws (:class:`~vae_lib.model.priors.MixturePrior`); a VampPrior shares the VAE's encoder and its
    pseudo-inputs start at ``components`` rows of ``data`` (say the training images) when given, else uniform
    in (0, 1) (:class:`~vae_lib.model.priors.VampPrior`). Draws come from ``generator`` (None: torch's global one)."""
    if config.kind == "standard":
        return StandardNormalPrior(vae.latent_dim)
    if config.kind == "mog":
        return MixturePrior(vae.latent_dim, config.components, generator=generator)
    return VampPrior(vae.encoder, config.components, vae.data_dim, data=data, generator=generator)


class PriorVAE(VAE):
    """Encoder q(z|x), decoder p(x|z) and a prior p(z) chosen by ``prior`` (:class:`PriorConfig`), whose
    parameters (a mixture's weights, means and variances; a VampPrior's pseudo-inputs) are the model's own and
    train with the rest. ``data`` and ``generator`` start the prior (:func:`build_prior`); a model rebuilt
    from a checkpoint needs neither, as its saved state replaces the start.

    With ``decoder_start="mean"`` and ``data``, the Bernoulli decoder's output bias starts at the log-odds of the
    mean training image (:func:`start_output_bias_at_data_mean`), as in Burda et al.'s code. A VampPrior needs
    it: from the zero start its codes all shift one way, the encoder's tanh units saturate and the rate falls
    to zero within a few hundred steps (traced by :func:`vae_lib.runs.prior_start.trace_start`, shown in
    chapter 15). An encoder that gives every input one posterior has zero rate under a VampPrior wherever that
    posterior sits (its components are the same posterior at the pseudo-inputs); under N(0, I) a common shift
    of the codes costs ½‖shift‖² nats per image."""

    def __init__(self, config: VAEConfig, prior: PriorConfig, data: torch.Tensor | None = None,
                 generator: torch.Generator | None = None):
        super().__init__(config)
        if not isinstance(prior, PriorConfig):
            raise ValueError(f"prior must be a PriorConfig, got {prior!r}")
        self.prior_config = prior
        self.prior = build_prior(prior, self, data, generator)
        if prior.decoder_start == "mean" and data is not None and isinstance(self.decoder, BernoulliDecoder):
            start_output_bias_at_data_mean(self.decoder, data)

    @property
    def prior_is_standard_normal(self) -> bool:
        """True for p(z) = N(0, I): then KL(q(z|x) ‖ p(z)) has the closed form of Appendix B (estimator B)."""
        return self.prior_config.kind == "standard"

    def log_prior(self, z: torch.Tensor) -> torch.Tensor:
        """log p(z): z (..., J) → (...)."""
        return self.prior.log_prob(z)

    @torch.no_grad()
    def sample(self, n: int, generator: torch.Generator | None = None) -> torch.Tensor:
        """Mean images of n draws z ~ p(z), the model's prior: (n, D)."""
        return self.decode(self.prior.sample(n, generator))


@torch.no_grad()
def start_output_bias_at_data_mean(decoder: BernoulliDecoder, data: torch.Tensor) -> None:
    """Set the Bernoulli decoder's output bias to log(m / (1 − m)), m the mean of ``data`` (N, D) per pixel
    clipped to [MEAN_CLIP, 1 − MEAN_CLIP]: at the start, p(x|z) is then the mean image for any small z. Burda,
    Grosse & Salakhutdinov's code starts its decoders so (yburda/iwae, ``datasets.py``, ``get_train_bias_np``)."""
    bias = decoder.net[-1].bias
    if not isinstance(data, torch.Tensor) or data.dim() != 2 or data.shape[1] != bias.shape[0]:
        shape = tuple(data.shape) if isinstance(data, torch.Tensor) else type(data).__name__
        raise ValueError(f"data must be a tensor (N, D) with D = {bias.shape[0]}, got {shape}")
    m = data.double().mean(0).clamp(MEAN_CLIP, 1 - MEAN_CLIP)
    bias.copy_((torch.log(m) - torch.log1p(-m)).to(device=bias.device, dtype=bias.dtype))


@torch.no_grad()
def kl_per_unit(model: VAE, x: torch.Tensor, batch_size: int = 100, seed: int = 0) -> torch.Tensor:
    """Each latent unit's rate averaged over the rows of ``x`` (N, D): (J,), in nats. For N(0, I) the closed
    form KL(q(z_j|x) ‖ N(0, 1)) of Appendix B, whose sum is the rate. For a learned prior, whose units are not
    independent, the KL of q(z_j|x) to the prior's marginal p_j(z_j), by one seeded draw z ~ q(z|x) per image:
    E_q[log q(z_j|x) − log p_j(z_j)]. These need not sum to the rate KL(q(z|x) ‖ p(z)) (the prior's dependence
    between units is in neither), but they show, unit by unit, which units carry information (≈ 0: collapsed)."""
    if has_standard_normal_prior(model):
        return mean_kl_per_dimension(model, x)
    g = torch.Generator(device=x.device).manual_seed(seed)
    total = torch.zeros(model.latent_dim, dtype=x.dtype, device=x.device)
    for xb in x.split(batch_size):
        mu, log_var = model.encode(xb)                                     # (B, J)
        eps = torch.randn(mu.shape, generator=g, device=mu.device, dtype=mu.dtype)
        z = mu + torch.exp(0.5 * log_var) * eps
        log_q = -0.5 * (LOG_2PI + log_var + eps ** 2)                      # log q(z_j|x) per unit: (B, J)
        total += (log_q - model.prior.marginal_log_prob(z)).sum(0)
    return total / len(x)

"""The evidence lower bound and its SGVB estimators — Kingma & Welling (2013), Section 2.3.

Equation numbers are those of the paper's arXiv v10 (1312.6114v10), as everywhere in the book.

Every function returns one value per example; the caller reduces (``.mean()`` over the batch).
Reconstruction terms are summed over pixels and KL terms over latent dimensions.
"""

from __future__ import annotations

import contextlib
import math
from typing import Iterator, NamedTuple, Protocol

import torch

LOG_2PI = math.log(2 * math.pi)
ESTIMATORS = ("A", "B")


class LatentVariableModel(Protocol):
    """What the objectives need from a model: an amortized diagonal-Gaussian q(z|x) and log p(x|z)."""

    latent_dim: int

    def encode(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]: ...

    def log_likelihood(self, x: torch.Tensor, z: torch.Tensor) -> torch.Tensor: ...


class ELBOTerms(NamedTuple):
    """Per-example terms of the bound L(x) = reconstruction − kl (the paper's Eq. 3; estimator B, Eq. 7,
    estimates it).

    reconstruction: E_q[log p(x|z)], the negative distortion, (batch,);
    kl: KL(q(z|x) ‖ p(z)), the rate, (batch,).
    """

    reconstruction: torch.Tensor
    kl: torch.Tensor

    @property
    def bound(self) -> torch.Tensor:
        """The evidence lower bound per example, (batch,)."""
        return self.reconstruction - self.kl


def kl_to_standard_normal(mu: torch.Tensor, log_var: torch.Tensor) -> torch.Tensor:
    """KL(N(mu, diag(exp(log_var))) ‖ N(0, I)) = −½ Σ_j (1 + log σ_j² − μ_j² − σ_j²) — Kingma & Welling
    (2013), Appendix B. mu, log_var: (..., J) → (...), summed over latent dimensions."""
    return -0.5 * (1 + log_var - mu ** 2 - log_var.exp()).sum(-1)


def log_normal_diag(z: torch.Tensor, mu: torch.Tensor, log_var: torch.Tensor) -> torch.Tensor:
    """log N(z; mu, diag(exp(log_var))) = −½ Σ_j (log 2π + log σ_j² + (z_j − μ_j)²/σ_j²): (...)."""
    return -0.5 * (LOG_2PI + log_var + (z - mu) ** 2 * torch.exp(-log_var)).sum(-1)


def log_standard_normal(z: torch.Tensor) -> torch.Tensor:
    """log N(z; 0, I) = −½ Σ_j (log 2π + z_j²): (..., J) → (...)."""
    return -0.5 * (LOG_2PI + z ** 2).sum(-1)


def log_prior(model, z: torch.Tensor) -> torch.Tensor:
    """log p(z) under ``model``'s prior: ``model.log_prior(z)`` when the model has a prior of its own (a learned
    one, :class:`vae_lib.model.prior_vae.PriorVAE`), else the paper's N(0, I) (:func:`log_standard_normal`, the
    very same operations, so every model without one scores as before). z (..., J) → (...)."""
    own = getattr(model, "log_prior", None)
    return log_standard_normal(z) if own is None else own(z)


def has_standard_normal_prior(model) -> bool:
    """Whether ``model``'s prior is N(0, I), so that KL(q(z|x) ‖ p(z)) has the closed form of Appendix B: what
    the model says (``prior_is_standard_normal``: a learned prior's model, the two-layer model), else whether it
    has no prior of its own (``log_prior``)."""
    said = getattr(model, "prior_is_standard_normal", None)
    return getattr(model, "log_prior", None) is None if said is None else bool(said)


def reparameterize(mu: torch.Tensor, log_var: torch.Tensor, eps: torch.Tensor | None = None,
                   n_samples: int | None = None, generator: torch.Generator | None = None) -> torch.Tensor:
    """z = μ + σ ⊙ ε with ε ~ N(0, I) — the reparameterization trick: the paper's z = g_φ(ε, x) (Eq. 4)
    for the diagonal Gaussian of its Section 2.4, as used in Eq. 10.

    mu, log_var: (B, J). With ``n_samples=None`` → z (B, J); with ``n_samples=L`` → z (L, B, J).
    ``eps``, when given, is used as is (it fixes the randomness for tests)."""
    if eps is None:
        shape = mu.shape if n_samples is None else (n_samples, *mu.shape)
        eps = torch.randn(shape, generator=generator, device=mu.device, dtype=mu.dtype)
    return mu + torch.exp(0.5 * log_var) * eps


_values_checked_by_caller = 0  # > 0 inside values_checked_by_caller()


@contextlib.contextmanager
def values_checked_by_caller() -> Iterator[None]:
    """Inside this block :func:`check_observations` checks shapes, dtypes and devices but not values.
    For the training driver, which checks its whole data set once before the first step: reading a
    minimum and a maximum back from the device every step would stall a GPU's queue."""
    global _values_checked_by_caller
    _values_checked_by_caller += 1
    try:
        yield
    finally:
        _values_checked_by_caller -= 1


def check_observations(model: LatentVariableModel, x: torch.Tensor, name: str = "x", values: bool = True) -> torch.Tensor:
    """``x`` itself if a model can score it, else a ValueError saying what was expected: a floating
    tensor (batch, D) with at least one row, D the model's ``data_dim``, on the model's device and of
    its dtype; with ``values``, finite, and for a :class:`~vae_lib.model.vae.VAE` in [0, 1] — both of its
    decoders model pixels in [0, 1], and 0–255 grey levels would give a wrong, even positive, log p(x).
    The value check reads two numbers back from the device; it is skipped while the caller vouches for
    the values (:func:`values_checked_by_caller`), under ``torch.compile`` and during CUDA-graph capture."""
    if not isinstance(x, torch.Tensor):
        raise ValueError(f"{name} must be a tensor of shape (batch, D), got {type(x).__name__}")
    if x.dim() != 2:
        hint = ("for one example use x.unsqueeze(0)" if x.dim() == 1 else
                "flatten each example: x.reshape(len(x), -1)" if x.dim() > 2 else "pass a batch of rows")
        raise ValueError(f"{name} must have shape (batch, D), one row per example, but has shape {tuple(x.shape)}: {hint}")
    if x.shape[0] == 0:
        raise ValueError(f"{name} is empty (shape {tuple(x.shape)}): pass at least one example")
    data_dim = getattr(model, "data_dim", None)
    if data_dim is not None and x.shape[1] != data_dim:
        raise ValueError(f"{name} has {x.shape[1]} values per example, but the model expects D = {data_dim}")
    if not x.is_floating_point():
        raise ValueError(f"{name} has dtype {x.dtype}; the model needs floating-point values"
                         + (" (8-bit pixels: x.float() / 255)" if x.dtype == torch.uint8 else ""))
    param = next(iter(model.parameters()), None) if hasattr(model, "parameters") else None
    if param is not None and x.dtype != param.dtype:
        raise ValueError(f"{name} has dtype {x.dtype} but the model's parameters have {param.dtype}: "
                         f"convert one of them (x.to({param.dtype}) or model.to({x.dtype}))")
    if param is not None and x.device != param.device:
        raise ValueError(f"{name} is on {x.device} but the model is on {param.device}: move it with x.to(device)")
    skip = (not values or _values_checked_by_caller > 0 or torch.compiler.is_compiling()
            or (x.is_cuda and torch.cuda.is_current_stream_capturing()))
    if skip:
        return x
    low, high = torch.stack([x.min(), x.max()]).tolist()
    pixels = getattr(getattr(model, "config", None), "likelihood", None) is not None
    if not (math.isfinite(low) and math.isfinite(high)):
        raise ValueError(f"{name} contains non-finite values (from {low} to {high}); the model needs finite data")
    if pixels and not (low >= 0 and high <= 1):
        hint = " — these look like 0–255 grey levels: divide them by 255" if low >= 0 and high <= 255 else ""
        raise ValueError(f"{name} holds values from {low:g} to {high:g}, but this model's "
                         f"{model.config.likelihood} decoder models pixels in [0, 1]{hint}")
    return x


def elbo(model: LatentVariableModel, x: torch.Tensor, n_samples: int = 1, estimator: str = "B",
         eps: torch.Tensor | None = None, generator: torch.Generator | None = None) -> ELBOTerms:
    """The SGVB estimate of the ELBO per example, with L = ``n_samples`` draws per data point.

    Estimator A (Eq. 6): (1/L) Σ_l [log p(x|z_l) + log p(z_l) − log q(z_l|x)], reported as
    reconstruction (1/L) Σ_l log p(x|z_l) and a Monte-Carlo KL (1/L) Σ_l [log q(z_l|x) − log p(z_l)].
    Estimator B (Eq. 7): −KL(q(z|x) ‖ p(z)) in closed form + (1/L) Σ_l log p(x|z_l).
    x: (B, D); eps (optional): (L, B, J) → ELBOTerms of (B,) tensors. ``x`` is checked first
    (:func:`check_observations`), so a wrong shape, dtype or pixel range is an error, not a wrong number.
    p(z) is the model's prior (:func:`log_prior`); the closed form of estimator B exists for N(0, I) only,
    so a model with a learned prior takes estimator A.
    """
    if estimator not in ESTIMATORS:
        raise ValueError(f"unknown estimator {estimator!r}; choose 'A' (Monte-Carlo KL) or 'B' (analytic KL)")
    if estimator == "B" and not has_standard_normal_prior(model):
        raise ValueError("estimator 'B' needs the closed-form KL to N(0, I); this model has a learned prior: "
                         "use estimator='A' (the Monte-Carlo rate)")
    if isinstance(n_samples, bool) or not isinstance(n_samples, int) or n_samples < 1:
        raise ValueError(f"n_samples must be at least 1 (an integer), got {n_samples!r}")
    check_observations(model, x)
    if eps is not None and tuple(eps.shape) != (n_samples, x.shape[0], model.latent_dim):
        raise ValueError(f"eps must have shape (n_samples, batch, latent_dim) = {(n_samples, x.shape[0], model.latent_dim)}, "
                         f"got {tuple(eps.shape)}")
    mu, log_var = model.encode(x)                                       # (B, J) each
    z = reparameterize(mu, log_var, eps=eps, n_samples=n_samples, generator=generator)  # (L, B, J)
    reconstruction = model.log_likelihood(x, z).mean(0)                 # (B,)
    if estimator == "B":
        kl = kl_to_standard_normal(mu, log_var)
    else:
        kl = (log_normal_diag(z, mu, log_var) - log_prior(model, z)).mean(0)
    return ELBOTerms(reconstruction, kl)


@torch.no_grad()
def bound_standard_error(model, x: torch.Tensor, batch_size: int = 1000, seed: int = 0) -> tuple[float, float]:
    """Mean and standard error (std / √N) of the per-example bound (estimator B, one seeded draw each; A for a
    model with a learned prior) of ``model`` on observations ``x`` — the same number
    :func:`vae_lib.training.train.evaluate` reports."""
    g = torch.Generator(device=x.device).manual_seed(seed)
    estimator = "B" if has_standard_normal_prior(model) else "A"
    values = torch.cat([elbo(model, xb, estimator=estimator, generator=g).bound for xb in x.split(batch_size)])
    return values.mean().item(), values.std().item() / math.sqrt(len(values))

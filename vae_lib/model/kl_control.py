"""The KL term at work: its weight β, schedules for it, free bits, and what each does to the latents.

The ELBO is L(x) = E_q[log p(x|z)] − KL(q(z|x) ‖ p(z)) (Kingma & Welling 2013, Eq. 3). Training
objectives in the wild change it in three ways, each covered here:

- a weight β on the KL: L_β(x) = E_q[log p(x|z)] − β KL (the β-VAE, Higgins et al. 2017). It is a
  lower bound on log p(x) only for β ≥ 1 (β = 1: the ELBO itself). Common "conventions" are β in
  disguise (:func:`effective_beta`): a reconstruction averaged over the D pixels with the KL summed
  over latents is β = D; `kld_weight = M/N` on top of that is β = D·M/N.
- a schedule for β: linear warm-up from 0 (Bowman et al. 2016; Sønderby et al. 2016), or cyclical
  annealing, the warm-up repeated (Fu et al. 2019) — :func:`kl_weight`.
- free bits (Kingma et al. 2016, Appendix C.8): each latent dimension's KL, averaged over the
  minibatch, is only penalized above λ nats: Σ_j max(λ, E_batch KL_j) — :func:`free_bits_kl`.

And two measurements of posterior collapse: the KL per latent dimension (:func:`kl_per_dimension`)
and the active units of Burda et al. (2015), Section 5.2 (:func:`active_units`).
"""

from __future__ import annotations

import torch

KL_SCHEDULES = ("constant", "warmup", "cyclical")
CYCLE_RAMP = 0.5   # cyclical annealing: β rises over the first half of each cycle, then holds (Fu et al. 2019)


def kl_weight(beta: float, schedule: str, epoch: float, anneal_epochs: float) -> float:
    """The KL weight at (fractional) ``epoch``: ``beta`` times a factor in [0, 1].

    constant: 1. warmup: min(1, epoch / anneal_epochs) — linear from 0 (Bowman et al. 2016).
    cyclical: the warm-up repeated every ``anneal_epochs``, rising over the first CYCLE_RAMP of each
    cycle and holding at 1 for the rest (Fu et al. 2019)."""
    if schedule not in KL_SCHEDULES:
        raise ValueError(f"unknown KL schedule {schedule!r}; choose one of {KL_SCHEDULES}")
    if schedule == "constant":
        return float(beta)
    if not anneal_epochs > 0:
        raise ValueError(f"the {schedule} schedule needs anneal_epochs > 0, got {anneal_epochs}")
    if schedule == "warmup":
        return float(beta) * min(1.0, epoch / anneal_epochs)
    phase = (epoch % anneal_epochs) / anneal_epochs
    return float(beta) * min(1.0, phase / CYCLE_RAMP)


def kl_per_dimension(mu: torch.Tensor, log_var: torch.Tensor) -> torch.Tensor:
    """KL(N(μ_j, σ_j²) ‖ N(0, 1)) = −½ (1 + log σ_j² − μ_j² − σ_j²) for each latent dimension j
    (the terms Appendix B sums): (B, J) → (B, J)."""
    return -0.5 * (1 + log_var - mu ** 2 - log_var.exp())


def free_bits_kl(
    mu: torch.Tensor, log_var: torch.Tensor, free_bits: float
) -> torch.Tensor:
    """The free-bits KL term of Kingma et al. (2016), Appendix C.8:
    Σ_j max(λ, (1/M) Σ_i KL_ij) with λ = ``free_bits`` nats per latent
    dimension, the mean taken over the minibatch of M rows.

    A scalar for the whole minibatch (it replaces the minibatch mean of the
    KL); with λ = 0 it equals that mean. Below λ a dimension's KL costs
    nothing, so the optimizer has no reason to push it to zero — the cure
    for posterior collapse it was proposed as."""
    if not free_bits >= 0:
        raise ValueError(
            "free_bits must be 0 or more nats per dimension, "
            f"got {free_bits}"
        )
    per_dim = kl_per_dimension(mu, log_var).mean(0)  # (J,)
    return per_dim.clamp(min=free_bits).sum()


def effective_beta(reconstruction: str = "sum", kl: str = "sum", kld_weight: float = 1.0,
                   data_dim: int = 784, latent_dim: int | None = None) -> float:
    """The β that a loss convention really optimizes, relative to the ELBO's sum over pixels and
    latents: loss = recon_term + kld_weight · kl_term, with each term a "sum" or a "mean" over its
    dimensions (both averaged over the minibatch). Dividing the reconstruction by D multiplies the
    relative weight of the KL by D; dividing the KL by J divides it by J.

    A popular tutorial's default:

    >>> effective_beta("mean", "sum", kld_weight=100 / 60000)
    1.3066666666666666
    """
    for name, value in (("reconstruction", reconstruction), ("kl", kl)):
        if value not in ("sum", "mean"):
            raise ValueError(f"{name} must be 'sum' or 'mean', got {value!r}")
    if kl == "mean" and latent_dim is None:
        raise ValueError("a KL averaged over latent dimensions needs latent_dim")
    beta = float(kld_weight)
    if reconstruction == "mean":
        beta *= data_dim
    if kl == "mean":
        beta /= latent_dim
    return beta


@torch.no_grad()
def posterior_means(model, x: torch.Tensor, batch_size: int = 1000) -> torch.Tensor:
    """E_q[z | x] = μ(x) for every row of x: (N, D) → (N, J)."""
    return torch.cat([model.encode(xb)[0] for xb in x.split(batch_size)])


@torch.no_grad()
def unit_activity(
    model, x: torch.Tensor, batch_size: int = 1000
) -> torch.Tensor:
    """A_u = Cov_x(E_{q(z|x)}[z_u]) for each latent unit u — Burda et al.
    (2015), Section 5.2: the variance over the data of the encoder's mean.
    (J,)."""
    return posterior_means(model, x, batch_size).var(0)


@torch.no_grad()
def active_units(model, x: torch.Tensor, threshold: float = 0.01, batch_size: int = 1000) -> int:
    """The number of units whose activity :func:`unit_activity` exceeds ``threshold`` (Burda et al.
    use 10⁻²): a unit below it encodes (almost) nothing about x — it has collapsed to the prior."""
    return int((unit_activity(model, x, batch_size) > threshold).sum())


@torch.no_grad()
def mean_kl_per_dimension(model, x: torch.Tensor, batch_size: int = 1000) -> torch.Tensor:
    """The KL of each latent dimension averaged over the rows of x: (J,), in nats. Their sum is the
    rate R = E_x KL(q(z|x) ‖ p(z))."""
    total = None
    for xb in x.split(batch_size):
        kl = kl_per_dimension(*model.encode(xb)).sum(0)
        total = kl if total is None else total + kl
    return total / len(x)

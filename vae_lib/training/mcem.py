"""Monte Carlo EM for a decoder without an encoder — the baseline of Kingma & Welling (2013),
Figure 3 and Appendix E (Wei & Tanner 1990's Monte Carlo E-step, Hamiltonian Monte Carlo as the
sampler).

EM ascends log p_θ(x) by alternating an E-step, the posterior p_θ(z|x), and an M-step that ascends
the expected complete-data log-likelihood

    Q(θ) = E_{p_θ_old(z|x)} [ log p_θ(x, z) ],   log p_θ(x, z) = log p_θ(x|z) + log p(z).

By Fisher's identity ∇_θ log p_θ(x) = E_{p_θ(z|x)} [∇_θ log p_θ(x, z)], so at θ = θ_old the M-step's
gradient is the marginal likelihood's: EM's fixed points are the stationary points of log p_θ(x),
and so are MCEM's in expectation. Monte Carlo EM replaces the expectation by posterior samples.

Appendix E's version, which this module implements, for minibatches of a training set of N images:

- one persistent HMC chain per training image, state z (N, J), started from the prior N(0, I);
- each visit of a minibatch moves its chains by ``hmc_steps`` HMC transitions
  (:func:`vae_lib.inference.hmc.hmc_step`) of ``n_leapfrog`` = 10 leapfrog steps on log p_θ(x, z), each chain's
  step size adapted toward an acceptance probability of ``target_accept`` (about 90 %, Appendix E)
  by a constant-gain Robbins–Monro update of log ε (the target moves with θ, so the adaptation never
  freezes; the paper does not say how it tuned ε);
- then ``weight_updates`` (5 in Appendix E) Adagrad steps on −mean log p_θ(x, z) over the acquired
  samples, weight decay as the N(0, I) prior on θ as for AEVB.

MCEM is not an on-line algorithm: a chain only moves when its image is visited, so on a large
training set each chain lags behind the changing θ — the paper's reason for running it fully on
the small training set only.

Cost, measured on this machine's CPU (1 thread; Figure 3's model: N_z = 3, 100 tanh units, MNIST,
M = 100): about 34 s per 10^5 training samples with 1 HMC transition and 5 weight updates per visit,
against about 1.5 s for AEVB and 1.9 s for wake-sleep — see vae_lib.runs.figure3 for the measurement.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import NamedTuple

import torch
from torch import nn

from vae_lib.model.objectives import ELBOTerms, LatentVariableModel, log_standard_normal
from vae_lib.inference.hmc import hmc_step, log_joint


@dataclass(frozen=True)
class MCEMConfig:
    """The MCEM update of Appendix E: HMC with ``n_leapfrog`` leapfrog steps and ``hmc_steps``
    transitions per visit, step sizes adapted toward ``target_accept`` with gain ``adapt_gain`` on
    log ε and jittered by ±``jitter`` (Neal 2011, Section 5.4.2.2), then ``weight_updates``
    optimizer steps on the acquired samples."""

    n_leapfrog: int = 10
    hmc_steps: int = 1
    target_accept: float = 0.9
    init_step_size: float = 0.1
    adapt_gain: float = 0.1
    jitter: float = 0.2
    weight_updates: int = 5

    def __post_init__(self) -> None:
        if self.n_leapfrog < 1 or self.hmc_steps < 1 or self.weight_updates < 0:
            raise ValueError(f"n_leapfrog and hmc_steps must be >= 1, weight_updates >= 0: {self}")
        if not 0 < self.target_accept < 1:
            raise ValueError(f"target_accept must lie in (0, 1), got {self.target_accept}")
        if not (self.init_step_size > 0 and 0 <= self.jitter < 1 and self.adapt_gain >= 0):
            raise ValueError(f"need init_step_size > 0, 0 <= jitter < 1, adapt_gain >= 0: {self}")


class MCEMReport(NamedTuple):
    """One visit of a minibatch, per image (B,): ``log_joint_before`` and ``log_joint_after`` the
    complete-data log-likelihood log p_θ(x, z) on the acquired samples before and after the weight
    updates; ``accept_prob`` the last HMC transition's Metropolis probability; ``step_size`` ε."""

    log_joint_before: torch.Tensor
    log_joint_after: torch.Tensor
    accept_prob: torch.Tensor
    step_size: torch.Tensor


def decoder_parameters(model: nn.Module) -> list[nn.Parameter]:
    """The parameters θ of p_θ(x|z) that MCEM learns: the VAE's decoder; for a model without a
    ``decoder`` attribute (the linear-Gaussian model), every parameter not named ``enc_*``."""
    if hasattr(model, "decoder"):
        return list(model.decoder.parameters())
    return [p for name, p in model.named_parameters() if not name.startswith("enc_")]


def complete_data_loss(model: LatentVariableModel, x: torch.Tensor, z: torch.Tensor) -> torch.Tensor:
    """The M-step objective, minimized: −(1/B) Σ_b log p_θ(x_b, z_b) for x (B, D), z (B, J) — a
    one-sample Monte Carlo estimate of −Q(θ) per image (the prior term carries no θ)."""
    return -(model.log_likelihood(x, z) + log_standard_normal(z)).mean()


class MonteCarloEM:
    """The persistent state of MCEM on a training set of ``n_train`` images: one HMC chain (z, log ε)
    per image. ``visit`` runs one E-step-then-M-step on a minibatch; ``state_dict`` /
    ``load_state_dict`` make it resumable (with the model's and optimizer's own state dicts)."""

    def __init__(self, n_train: int, latent_dim: int, config: MCEMConfig = MCEMConfig(),
                 generator: torch.Generator | None = None, device: torch.device | str = "cpu",
                 dtype: torch.dtype = torch.float32):
        self.config = config
        self.z = torch.randn(n_train, latent_dim, generator=generator, device=device, dtype=dtype)   # z ~ p(z)
        self.log_step = torch.full((n_train,), math.log(config.init_step_size), device=device, dtype=dtype)

    def e_step(self, model: LatentVariableModel, x: torch.Tensor, index: torch.Tensor,
               generator: torch.Generator | None = None) -> torch.Tensor:
        """Move the chains of images ``index`` (B,) with ``hmc_steps`` HMC transitions targeting
        p_θ(z|x) ∝ p_θ(x|z) p(z), adapting each chain's log ε by gain · (accept − target).
        x: (B, D) those images. Returns the last transition's acceptance probabilities (B,)."""
        c = self.config
        target = log_joint(model, x)
        z, log_step = self.z[index], self.log_step[index]
        for _ in range(c.hmc_steps):
            noise = torch.rand(log_step.shape, generator=generator, device=z.device, dtype=z.dtype)
            eps = log_step.exp() * (1 + c.jitter * (2 * noise - 1))
            z, accept_prob, _ = hmc_step(target, z, eps, c.n_leapfrog, generator)
            log_step = log_step + c.adapt_gain * (accept_prob - c.target_accept)
        self.z[index], self.log_step[index] = z, log_step
        return accept_prob

    def visit(
        self,
        model: LatentVariableModel,
        optimizer: torch.optim.Optimizer,
        x: torch.Tensor,
        index: torch.Tensor,
        generator: torch.Generator | None = None,
    ) -> MCEMReport:
        """One MCEM update on the minibatch x (B, D) of training images
        ``index`` (B,): the E-step (:meth:`e_step`), then
        ``weight_updates`` optimizer steps on :func:`complete_data_loss` at
        the acquired samples — Appendix E's "a few weight-update steps on
        the acquired samples"."""
        accept = self.e_step(model, x, index, generator)
        z = self.z[index]
        with torch.no_grad():
            before = model.log_likelihood(x, z) + log_standard_normal(z)
        for _ in range(self.config.weight_updates):
            optimizer.zero_grad(set_to_none=True)
            complete_data_loss(model, x, z).backward()
            optimizer.step()
        with torch.no_grad():
            after = model.log_likelihood(x, z) + log_standard_normal(z)
        step_sizes = self.log_step[index].exp()
        return MCEMReport(before, after, accept, step_sizes)

    def state_dict(self) -> dict:
        return {"z": self.z.clone(), "log_step": self.log_step.clone(), "config": asdict(self.config)}

    def load_state_dict(self, state: dict) -> None:
        if MCEMConfig(**state["config"]) != self.config:
            raise ValueError(f"MCEM state was saved with {state['config']}, this run uses {asdict(self.config)}")
        if state["z"].shape != self.z.shape:
            raise ValueError(f"MCEM state holds {tuple(state['z'].shape)} chains, this run needs {tuple(self.z.shape)}")
        self.z = state["z"].to(self.z)
        self.log_step = state["log_step"].to(self.log_step)


class MCEMRule:
    """MCEM as an update rule of the training driver (:func:`vae_lib.training.train.fit`) — the one rule with
    per-example state, so the driver hands it each minibatch's indices: the chains of
    :class:`MonteCarloEM` (drawn from the prior with the run's generator when the run starts), the
    parameters it learns (:func:`decoder_parameters`), one :meth:`MonteCarloEM.visit` per minibatch.

    Its report has no encoder to give a bound: ``step`` reports the complete-data log-likelihood
    log p_θ(x, z) at the chains' states after the weight updates as the "reconstruction" and a KL of 0,
    so the driver's History records the M-step's objective for MCEM runs."""

    name = "mcem"

    def __init__(self, n_train: int, latent_dim: int, config: MCEMConfig, generator: torch.Generator | None,
                 device: torch.device | str = "cpu"):
        self.chains = MonteCarloEM(n_train, latent_dim, config, generator=generator, device=device)

    @staticmethod
    def parameters(model: nn.Module) -> list[nn.Parameter]:
        return decoder_parameters(model)

    def step(self, model: LatentVariableModel, optimizer: torch.optim.Optimizer, x: torch.Tensor,
             index: torch.Tensor, generator: torch.Generator | None) -> ELBOTerms:
        """One visit of the minibatch x (B, D) of training images ``index`` (B,)."""
        report = self.chains.visit(model, optimizer, x, index, generator)
        return ELBOTerms(report.log_joint_after, torch.zeros_like(report.log_joint_after))

    def state_dict(self) -> dict:
        return self.chains.state_dict()

    def load_state_dict(self, state: dict) -> None:
        self.chains.load_state_dict(state)

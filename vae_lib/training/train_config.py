"""What fixes a training run and what it records: :class:`TrainConfig` (optimizer, step size, estimator,
pixel protocol, algorithm, the KL term's weight) and :class:`History` (the bound per evaluation, split into
rate and distortion). The training driver is :mod:`vae_lib.training.train`."""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field, fields

from vae_lib.base.params import check_int
from vae_lib.model.pixels import check_protocol
from vae_lib.model.kl_control import KL_SCHEDULES, kl_weight
from vae_lib.model.objectives import ESTIMATORS
from vae_lib.training.algorithms import ALGORITHMS
from vae_lib.training.mcem import MCEMConfig

OPTIMIZERS = ("adam", "adagrad")
SCHEDULES = ("constant", "cosine", "burda")
TEST_SEED = 0  # every model is evaluated on the same fixed binarization of the test set
# the update rules of vae_lib.training.algorithms, and Monte Carlo EM (vae_lib.training.mcem.MCEMRule: per-example state)
DRIVER_ALGORITHMS = ALGORITHMS + ("mcem",)


@dataclass(frozen=True)
class TrainConfig:
    """Everything that fixes how a model is trained."""

    epochs: int = 200               # passes over the training set
    batch_size: int = 100           # M in the paper
    optimizer: str = "adam"         # "adam", or "adagrad" as in the paper
    lr: float = 1e-3                # global step size
    weight_decay: float = 0.0       # L2 penalty per example; the paper's N(0, I) prior on θ is 1/N
    lr_schedule: str = "constant"   # "constant", "cosine" decay to 0 over the epochs, or "burda" (IWAE paper's stages)
    estimator: str = "B"            # SGVB estimator: "A" (Monte-Carlo KL) or "B" (analytic KL)
    n_samples: int = 1              # L: samples of z per data point
    protocol: str = "dynamic"       # pixel protocol of the training data (vae_lib.model.pixels.PROTOCOLS)
    eval_protocol: str = "fixed"    # pixel protocol of the test data
    seed: int = 0                   # seeds the initialization, the minibatch order and every draw
    algorithm: str = "aevb"         # the update rule (DRIVER_ALGORITHMS); "iwae"/"iwae_dreg": k = n_samples
    beta: float = 1.0               # AEVB only: the weight of the KL term (1: the ELBO; vae_lib.model.kl_control)
    kl_schedule: str = "constant"   # "constant", "warmup" (0 → beta) or "cyclical" (vae_lib.model.kl_control.kl_weight)
    kl_anneal_epochs: float = 0.0   # warm-up length, or cycle length, in epochs
    free_bits: float = 0.0          # λ, nats per latent dimension below which the KL is free (0: none)
    mcem: MCEMConfig = MCEMConfig()  # MCEM only: its HMC and weight updates (Appendix E)

    @classmethod
    def from_dict(cls, d: dict) -> "TrainConfig":
        """The TrainConfig saved as ``asdict(config)``; fields a checkpoint predates take their defaults."""
        names = {f.name for f in fields(cls)}
        return cls(**{k: (tuple(v) if isinstance(v, list) else v) for k, v in d.items() if k in names})

    def __post_init__(self) -> None:
        if isinstance(self.mcem, dict):   # as asdict(config) saved it
            object.__setattr__(self, "mcem", MCEMConfig(**self.mcem))
        if self.algorithm not in DRIVER_ALGORITHMS:
            raise ValueError(f"unknown algorithm {self.algorithm!r}; choose one of {DRIVER_ALGORITHMS}")
        if isinstance(self.epochs, (bool, float, str)) or not hasattr(self.epochs, "__index__"):
            check_int("epochs", self.epochs, 0)
        if isinstance(self.batch_size, (bool, float, str)) or not hasattr(self.batch_size, "__index__"):
            check_int("batch_size", self.batch_size, 1)
        if isinstance(self.n_samples, (bool, float, str)) or not hasattr(self.n_samples, "__index__"):
            check_int("n_samples", self.n_samples, 1)
        if self.epochs < 0:
            raise ValueError(f"epochs must be 0 or more, got {self.epochs}")
        if self.batch_size < 1:
            raise ValueError(f"batch_size must be at least 1, got {self.batch_size}")
        if isinstance(self.lr, bool) or not isinstance(self.lr, (int, float)) or not 0 < self.lr < math.inf:
            raise ValueError(f"lr must be a positive, finite step size, got {self.lr!r}")
        if isinstance(self.weight_decay, bool) or not isinstance(self.weight_decay, (int, float)) or not 0 <= self.weight_decay < math.inf:
            raise ValueError(f"weight_decay must be 0 or more, got {self.weight_decay!r}")
        if self.optimizer not in OPTIMIZERS:
            raise ValueError(f"unknown optimizer {self.optimizer!r}; choose one of {OPTIMIZERS}")
        if self.lr_schedule not in SCHEDULES:
            raise ValueError(f"unknown lr_schedule {self.lr_schedule!r}; choose one of {SCHEDULES}")
        if self.estimator not in ESTIMATORS:
            raise ValueError(f"unknown estimator {self.estimator!r}; choose 'A' or 'B'")
        if self.n_samples < 1:
            raise ValueError(f"n_samples must be at least 1, got {self.n_samples}")
        check_protocol(self.protocol)
        check_protocol(self.eval_protocol)
        if isinstance(self.beta, bool) or not isinstance(self.beta, (int, float)) or not 0 <= self.beta < math.inf:
            raise ValueError(f"beta must be a finite weight of 0 or more, got {self.beta!r}")
        if self.kl_schedule not in KL_SCHEDULES:
            raise ValueError(f"unknown kl_schedule {self.kl_schedule!r}; choose one of {KL_SCHEDULES}")
        if self.kl_schedule != "constant" and not self.kl_anneal_epochs > 0:
            raise ValueError(f"kl_schedule={self.kl_schedule!r} needs kl_anneal_epochs > 0, got {self.kl_anneal_epochs}")
        if not 0 <= self.free_bits < math.inf:
            raise ValueError(f"free_bits must be 0 or more nats per latent dimension, got {self.free_bits!r}")
        if self.free_bits > 0 and self.estimator != "B":
            raise ValueError("free_bits needs the analytic KL of estimator B")
        if self.algorithm != "mcem" and self.mcem != MCEMConfig():
            raise ValueError(f"the mcem settings are Monte Carlo EM's; algorithm {self.algorithm!r} has none")
        if self.algorithm != "aevb" and not self.is_plain_elbo:
            raise ValueError(f"beta, kl_schedule and free_bits change AEVB's objective; {self.algorithm!r} has its own")

    @property
    def is_plain_elbo(self) -> bool:
        """True when the KL term is the ELBO's: weight 1 throughout, no free bits."""
        return self.beta == 1 and self.kl_schedule == "constant" and self.free_bits == 0

    def kl_weight_at(self, epoch: float) -> float:
        """β_t at the fractional ``epoch`` (:func:`vae_lib.model.kl_control.kl_weight`)."""
        return kl_weight(self.beta, self.kl_schedule, epoch, self.kl_anneal_epochs)


@dataclass
class History:
    """Per-epoch record of training: bounds in nats per example, split into rate (KL) and
    distortion (−reconstruction), on the training stream and on the test set."""

    epoch: list[int] = field(default_factory=list)
    samples_seen: list[int] = field(default_factory=list)
    seconds: list[float] = field(default_factory=list)   # wall time since the start of training
    train_bound: list[float] = field(default_factory=list)
    train_rate: list[float] = field(default_factory=list)
    train_distortion: list[float] = field(default_factory=list)
    test_bound: list[float] = field(default_factory=list)
    test_rate: list[float] = field(default_factory=list)
    test_distortion: list[float] = field(default_factory=list)

    def as_dict(self) -> dict[str, list]:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict[str, list]) -> "History":
        return cls(**{f.name: list(d.get(f.name, [])) for f in fields(cls)})

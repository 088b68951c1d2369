"""The VAE's two networks: a diagonal-Gaussian encoder q(z|x) and a decoder p(x|z), both MLPs —
Kingma & Welling (2013), Section 3 and Appendix C."""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch import nn

from vae_lib.base.params import check_float, check_int

ACTIVATIONS = {"tanh": nn.Tanh, "relu": nn.ReLU}
LIKELIHOODS = ("bernoulli", "gaussian")


# The paper draws the initial parameters from "N(0, 0.01)" without saying whether 0.01 is the variance or the
# standard deviation. The book's reading: the variance, as N(μ, σ²) is usually written (it also trained faster in
# a measurement, see vae_lib.runs.figure2_setup). The other reading is kept by name for the model trained with it.
PAPER_INIT_STD = 0.1                 # N(0, 0.01) read as a variance: σ = 0.1 (the book's reading)
PAPER_INIT_STD_ALTERNATIVE = 0.01    # N(0, 0.01) read as a standard deviation


@dataclass(frozen=True)
class VAEConfig:
    """Everything that fixes the model's architecture."""

    data_dim: int = 784                      # D: pixels per image (784 for MNIST, 560 for Frey Face)
    latent_dim: int = 3                      # J in the paper: size of z
    hidden_sizes: tuple[int, ...] = (400,)   # widths of the MLPs' hidden layers (decoder mirrors them)
    activation: str = "tanh"                 # "tanh" as in the paper, or "relu"
    likelihood: str = "bernoulli"            # p(x|z): "bernoulli" (binary pixels) or "gaussian" (grey levels)
    init_std: float | None = None            # weights and biases ~ N(0, init_std²); None: PyTorch default. The paper's
                                             # "N(0, 0.01)": PAPER_INIT_STD (the book's reading) or PAPER_INIT_STD_ALTERNATIVE
    min_decoder_std: float | None = None     # Gaussian decoder only: a soft floor on σ (None: none, as in the paper)

    def __post_init__(self) -> None:
        for name in ("data_dim", "latent_dim"):   # a type first: 2.5 or "784" would fail deep inside torch
            if isinstance(getattr(self, name), (bool, float, str)) or not hasattr(getattr(self, name), "__index__"):
                check_int(name, getattr(self, name))
        if isinstance(self.hidden_sizes, (str, bytes)) or not hasattr(self.hidden_sizes, "__iter__"):
            raise ValueError(f"hidden_sizes must be a tuple of integers ≥ 1 (the hidden layers' widths), such as "
                             f"(400,), got {self.hidden_sizes!r}")
        for i, h in enumerate(self.hidden_sizes):
            if isinstance(h, (bool, float, str)) or not hasattr(h, "__index__"):
                check_int(f"hidden_sizes[{i}]", h)
        if self.init_std is not None:
            check_float("init_std", self.init_std, 0, low_open=True)
        if self.latent_dim < 1:
            raise ValueError(f"latent_dim must be at least 1, got {self.latent_dim}; a VAE needs a latent z")
        if self.data_dim < 1:
            raise ValueError(f"data_dim must be at least 1, got {self.data_dim}")
        if any(h < 1 for h in self.hidden_sizes):
            raise ValueError(f"hidden sizes must be positive, got {self.hidden_sizes}")
        if self.activation not in ACTIVATIONS:
            raise ValueError(f"unknown activation {self.activation!r}; choose one of {tuple(ACTIVATIONS)}")
        if self.likelihood not in LIKELIHOODS:
            raise ValueError(f"unknown likelihood {self.likelihood!r}; choose one of {LIKELIHOODS}")
        if self.min_decoder_std is not None and not self.min_decoder_std > 0:
            raise ValueError(f"min_decoder_std must be positive or None, got {self.min_decoder_std}")
        object.__setattr__(self, "hidden_sizes", tuple(int(h) for h in self.hidden_sizes))


def init_normal(module: nn.Module, std: float | None) -> None:
    """Every parameter of ``module`` drawn from N(0, std²) — the paper's initialization (Section 5) when
    ``std`` is given; None keeps PyTorch's default."""
    if std is not None:
        for p in module.parameters():
            nn.init.normal_(p, mean=0.0, std=std)


def mlp(sizes: list[int], activation: str) -> nn.Sequential:
    """Linear layers of the given sizes with ``activation`` between them (none after the last)."""
    layers: list[nn.Module] = []
    for i, (n_in, n_out) in enumerate(zip(sizes[:-1], sizes[1:])):
        layers.append(nn.Linear(n_in, n_out))
        if i < len(sizes) - 2:
            layers.append(ACTIVATIONS[activation]())
    return nn.Sequential(*layers)


class GaussianEncoder(nn.Module):
    """q(z|x) = N(z; mu(x), diag(exp(log_var(x)))) — the paper's Eq. 9 encoder, Appendix C.2."""

    def __init__(self, config: VAEConfig):
        super().__init__()
        self.body = mlp([config.data_dim, *config.hidden_sizes], config.activation)
        self.act = ACTIVATIONS[config.activation]()
        self.head = nn.Linear(config.hidden_sizes[-1] if config.hidden_sizes else config.data_dim,
                              2 * config.latent_dim)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """x: (..., D) → mu, log_var: (..., J)."""
        h = self.act(self.body(x)) if len(self.body) else x
        mu, log_var = self.head(h).chunk(2, dim=-1)
        return mu, log_var


class BernoulliDecoder(nn.Module):
    """p(x|z) = prod_d Bernoulli(x_d; sigmoid(logits_d(z))) — Appendix C.1."""

    def __init__(self, config: VAEConfig):
        super().__init__()
        self.net = mlp([config.latent_dim, *config.hidden_sizes[::-1], config.data_dim], config.activation)

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        """z: (..., J) → logits (..., D); logits, not probabilities, so log p(x|z) stays finite at 0 and 1."""
        return self.net(z)

    def log_prob(self, x: torch.Tensor, z: torch.Tensor) -> torch.Tensor:
        """log p(x|z) summed over pixels: x (..., D) broadcast against z (..., J) → (...)."""
        logits = self(z)
        x = x.expand_as(logits)
        return -nn.functional.binary_cross_entropy_with_logits(logits, x, reduction="none").sum(-1)

    def mean(self, z: torch.Tensor) -> torch.Tensor:
        """E[x|z] = sigmoid(logits): (..., D) in (0, 1)."""
        return torch.sigmoid(self(z))

    observation_noise = "uniform"

    def sample_from_noise(self, z: torch.Tensor, u: torch.Tensor) -> torch.Tensor:
        """A draw x ~ p(x|z) from uniforms u (..., D): x_d = 1[u_d < sigmoid(logit_d)]."""
        return (u < torch.sigmoid(self(z))).to(z.dtype)


class GaussianDecoder(nn.Module):
    """p(x|z) = N(x; sigmoid(m(z)), diag(exp(log_var(z)))) — Appendix C.2, mean squashed into (0, 1)
    as the paper does for Frey Face.

    With ``config.min_decoder_std`` = s, log σ² = log s² + softplus(h − log s²) for the network's
    output h: a smooth floor σ ≥ s (the book's guard against the variance collapsing onto training
    images, which makes the training bound grow without limit; Chapter 9)."""

    def __init__(self, config: VAEConfig):
        super().__init__()
        self.log_var_floor = None if config.min_decoder_std is None else 2 * math.log(config.min_decoder_std)
        self.body = mlp([config.latent_dim, *config.hidden_sizes[::-1]], config.activation)
        self.act = ACTIVATIONS[config.activation]()
        width = config.hidden_sizes[0] if config.hidden_sizes else config.latent_dim
        self.head = nn.Linear(width, 2 * config.data_dim)

    def forward(self, z: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """z: (..., J) → mean in (0, 1) and log_var, each (..., D)."""
        h = self.act(self.body(z)) if len(self.body) else z
        m, log_var = self.head(h).chunk(2, dim=-1)
        if self.log_var_floor is not None:
            log_var = self.log_var_floor + nn.functional.softplus(log_var - self.log_var_floor)
        return torch.sigmoid(m), log_var

    def log_prob(self, x: torch.Tensor, z: torch.Tensor) -> torch.Tensor:
        """log N(x; mean, diag(exp(log_var))) summed over pixels: (...)."""
        mean, log_var = self(z)
        return -0.5 * (math.log(2 * math.pi) + log_var + (x - mean) ** 2 * torch.exp(-log_var)).sum(-1)

    def mean(self, z: torch.Tensor) -> torch.Tensor:
        """E[x|z]: (..., D) in (0, 1)."""
        return self(z)[0]

    observation_noise = "normal"

    def sample_from_noise(self, z: torch.Tensor, n: torch.Tensor) -> torch.Tensor:
        """A draw x ~ p(x|z) from standard normals n (..., D): x = mean + exp(½ log σ²) ⊙ n."""
        mean, log_var = self(z)
        return mean + torch.exp(0.5 * log_var) * n


class VAE(nn.Module):
    """Encoder q(z|x), decoder p(x|z) and the prior p(z) = N(0, I) of Kingma & Welling (2013).

    The interface every objective in ``vae_lib`` uses: ``encode(x) -> (mu, log_var)`` and
    ``log_likelihood(x, z) -> log p(x|z)``; ``latent_dim`` gives J.
    """

    def __init__(self, config: VAEConfig):
        super().__init__()
        self.config = config
        self.encoder = GaussianEncoder(config)
        self.decoder = BernoulliDecoder(config) if config.likelihood == "bernoulli" else GaussianDecoder(config)
        init_normal(self, config.init_std)

    @property
    def latent_dim(self) -> int:
        return self.config.latent_dim

    @property
    def data_dim(self) -> int:
        return self.config.data_dim

    def encode(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """x: (..., D) → mu, log_var of q(z|x): (..., J)."""
        return self.encoder(x)

    def log_likelihood(self, x: torch.Tensor, z: torch.Tensor) -> torch.Tensor:
        """log p(x|z) summed over pixels; x (..., D) broadcasts against z (S, ..., J) → (S, ...)."""
        return self.decoder.log_prob(x, z)

    @property
    def observation_noise(self) -> str:
        """What :meth:`sample_observation` turns into a draw of x: "uniform" or "normal" noise."""
        return self.decoder.observation_noise

    def sample_observation(self, z: torch.Tensor, noise: torch.Tensor) -> torch.Tensor:
        """A draw x ~ p(x|z) made from given noise (see ``observation_noise``): z (..., J) → (..., D)."""
        return self.decoder.sample_from_noise(z, noise)

    def decode(self, z: torch.Tensor) -> torch.Tensor:
        """The decoder's mean image E[x|z]: z (..., J) → (..., D) in (0, 1)."""
        return self.decoder.mean(z)

    @torch.no_grad()
    def sample(self, n: int, generator: torch.Generator | None = None) -> torch.Tensor:
        """Mean images of n draws z ~ p(z) = N(0, I): (n, D)."""
        param = next(self.parameters())  # z takes the model's device and dtype (float64 models too)
        z = torch.randn(n, self.latent_dim, generator=generator, device=param.device, dtype=param.dtype)
        return self.decode(z)

    @torch.no_grad()
    def reconstruct(self, x: torch.Tensor) -> torch.Tensor:
        """Decode the encoder's mean: x (N, D) → E[x | z = mu(x)] (N, D)."""
        return self.decode(self.encode(x)[0])


def count_parameters(model: nn.Module) -> int:
    """Number of trainable scalars in ``model``."""
    return sum(p.numel() for p in model.parameters() if p.requires_grad)

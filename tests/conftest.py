"""Shared fixtures of the unit tests: small models, and MNIST / Frey Face loaded once per session.

The tests use one CPU thread: these tiny models gain nothing from more, and on a busy two-core
machine two threads made a three-epoch training ten times slower (12 s instead of 1 s).
"""

import shutil

import matplotlib
import pytest
import torch

from vae_lib.model.data import load_frey_face, load_mnist
from vae_lib.model.vae import VAE, VAEConfig
from vae_lib.inference.linear_gaussian import LinearGaussian

matplotlib.use("Agg")
torch.set_num_threads(1)

DEVICE_ENV = "VAE_TEST_DEVICE"


@pytest.fixture(scope="session")
def device():
    """The device of the device-aware tests: $VAE_TEST_DEVICE (say ``cuda``), else the CPU. The GPU
    command (scripts/gpu_run.py) runs the suite with VAE_TEST_DEVICE=cuda."""
    import os

    name = os.environ.get(DEVICE_ENV, "cpu")
    if name.startswith("cuda") and not torch.cuda.is_available():
        pytest.exit(f"{DEVICE_ENV}={name} but CUDA is not available here", returncode=4)
    return torch.device(name)


@pytest.fixture(scope="session")
def mnist_train():
    """The MNIST training split, (60000, 784) grey levels, read from $VAE_DATA_DIR."""
    return load_mnist("train", download=False)


@pytest.fixture(scope="session")
def mnist_test():
    """The MNIST test split, (10000, 784)."""
    return load_mnist("test", download=False)


@pytest.fixture(scope="session")
def frey():
    """All 1965 Frey Face frames, (1965, 560)."""
    return load_frey_face(download=False)


def _small_vae(likelihood: str = "bernoulli", data_dim: int = 12, latent_dim: int = 3, seed: int = 0) -> VAE:
    torch.manual_seed(seed)
    model = VAE(VAEConfig(data_dim=data_dim, latent_dim=latent_dim, hidden_sizes=(8,), likelihood=likelihood))
    with torch.no_grad():  # means of order 1 and variances away from 1: KL terms big enough for bugs to show
        model.encoder.head.bias.normal_(0.0, 1.0)
    return model.double()


@pytest.fixture
def small_vae():
    """A factory of tiny float64 VAEs: small_vae(likelihood="bernoulli", data_dim=12, latent_dim=3, seed=0)."""
    return _small_vae


def _linear_gaussian(orthogonal: bool = True, seed: int = 0) -> LinearGaussian:
    g = torch.Generator().manual_seed(seed)
    d, j = 5, 2
    raw = torch.randn(d, d, generator=g, dtype=torch.float64)
    if orthogonal:
        weight = torch.linalg.qr(raw)[0][:, :j] * torch.tensor([1.5, 0.7], dtype=torch.float64)
    else:
        weight = raw[:, :j]
    bias = torch.randn(d, generator=g, dtype=torch.float64)
    return LinearGaussian(weight, bias, noise_var=0.5)


@pytest.fixture
def linear_gaussian():
    """A factory of float64 linear-Gaussian models, D=5, J=2, σ²=0.5. With ``orthogonal=True`` W has
    orthogonal columns, so WᵀW is diagonal and a diagonal q(z|x) can equal the posterior exactly."""
    return _linear_gaussian


def _sample_x(model: LinearGaussian, n: int, seed: int = 1) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        z = torch.randn(n, model.latent_dim, generator=g, dtype=torch.float64)
        noise = torch.randn(n, model.bias.shape[0], generator=g, dtype=torch.float64)
        return z @ model.weight.T + model.bias + model.log_noise_var.exp().sqrt() * noise


@pytest.fixture
def sample_x():
    """sample_x(model, n, seed=1): n seeded draws x ~ p(x) of a LinearGaussian, (n, D)."""
    return _sample_x


@pytest.fixture(scope="session")
def browser():
    """Headless Debian Chromium driven by Playwright (installed with apt-get by .ci/run; never
    ``playwright install``), shared by the browser tests; skipped, with the reason, where either is missing."""
    playwright = pytest.importorskip("playwright.sync_api", reason="the Playwright package is not installed")
    if not shutil.which("chromium"):
        pytest.skip("Debian's chromium is not installed here (apt-get install chromium)")
    with playwright.sync_playwright() as p:
        b = p.chromium.launch(executable_path=shutil.which("chromium"), args=["--no-sandbox", "--disable-background-networking"])
        yield b
        b.close()

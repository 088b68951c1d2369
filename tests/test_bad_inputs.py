"""Bad inputs, as a sceptical reader makes them: every one gets an error whose MESSAGE says what was
wrong and what to do — asserted here, not only its type — before any work is lost, and nothing wrong
is ever used silently. Valid but unusual inputs give the right results.

The tables are the record of what was tried: library calls, checkpoints, data files, training runs,
and the chapters' papermill parameters (checked by executing each chapter's own parameters cell and
its 'check-parameters' cell, without a kernel).
"""

import gzip
import math
import re
import shutil
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import vae_lib.model.data as data_module
import vae_lib.runs.experiments as experiments
import vae_lib.training.checkpoints as checkpoints_module
import vae_lib.training.train as train_module
from vae_lib.model.data import (MNIST_GZ_MD5, MNIST_MD5, CorruptDataError, file_md5, load_frey_face, load_mnist,
                                verify_mnist)
from vae_lib.base.params import as_flag, check_number
from vae_lib.model.objectives import elbo
from vae_lib.model.vae import VAE, VAEConfig
from vae_lib.inference.likelihood import importance_sampled_log_likelihood, iw_bound_curve, log_importance_weights
from vae_lib.training.train import TrainConfig, evaluate, fit, load_checkpoint, save_checkpoint, train_model
from vae_lib.runs.experiments import check_model_matches, checkpoint_path, load_or_train, pretrained_or_train

ROOT = Path(__file__).resolve().parents[1]
# few examples, no time limit (a busy machine) and no example database (no .hypothesis folder in the checkout)
FAST = settings(max_examples=25, deadline=None, database=None, suppress_health_check=[HealthCheck.function_scoped_fixture])


def tiny_vae(likelihood: str = "bernoulli", data_dim: int = 784, seed: int = 0) -> VAE:
    torch.manual_seed(seed)
    return VAE(VAEConfig(data_dim=data_dim, latent_dim=2, hidden_sizes=(8,), likelihood=likelihood))


MODEL = tiny_vae()
GAUSSIAN = tiny_vae("gaussian")
PIXELS = torch.rand(5, 784, generator=torch.Generator().manual_seed(0))   # grey levels in [0, 1], 0 and 1 included
PIXELS[0, :2] = torch.tensor([0.0, 1.0])


# --- library calls: (id, call, message) ----------------------------------------------------------------

SHAPE = "x must have shape (batch, D), one row per example, but has shape "
CALLS = [
    ("elbo 1-D x", lambda: elbo(MODEL, PIXELS[0]), SHAPE + "(784,): for one example use x.unsqueeze(0)"),
    ("elbo 3-D x", lambda: elbo(MODEL, PIXELS.reshape(5, 28, 28)),
     SHAPE + "(5, 28, 28): flatten each example: x.reshape(len(x), -1)"),
    ("elbo 0-D x", lambda: elbo(MODEL, torch.tensor(0.5)), SHAPE + "(): pass a batch of rows"),
    ("elbo empty x", lambda: elbo(MODEL, torch.zeros(0, 784)), "x is empty (shape (0, 784)): pass at least one example"),
    ("elbo wrong D", lambda: elbo(MODEL, torch.rand(5, 560)), "x has 560 values per example, but the model expects D = 784"),
    ("elbo uint8 pixels", lambda: elbo(MODEL, (PIXELS * 255).to(torch.uint8)),
     "x has dtype torch.uint8; the model needs floating-point values (8-bit pixels: x.float() / 255)"),
    ("elbo float64 x, float32 model", lambda: elbo(MODEL, PIXELS.double()),
     "x has dtype torch.float64 but the model's parameters have torch.float32: convert one of them"),
    ("elbo pixels in [0, 255]", lambda: elbo(MODEL, (PIXELS * 255).round()),
     "x holds values from 0 to 255, but this model's bernoulli decoder models pixels in [0, 1] — these look "
     "like 0–255 grey levels: divide them by 255"),
    ("elbo Gaussian decoder, pixels in [0, 255]", lambda: elbo(GAUSSIAN, (PIXELS * 255).round()),
     "but this model's gaussian decoder models pixels in [0, 1]"),
    ("elbo negative values", lambda: elbo(MODEL, torch.linspace(-0.5, 0.5, 784).expand(3, -1)),
     "x holds values from -0.5 to 0.5, but this model's bernoulli decoder models pixels in [0, 1]"),
    ("elbo NaN pixel", lambda: elbo(MODEL, torch.cat([PIXELS[:, :-1], torch.full((5, 1), math.nan)], 1)),
     "x contains non-finite values"),
    ("elbo a list", lambda: elbo(MODEL, PIXELS.tolist()), "x must be a tensor of shape (batch, D), got list"),
    ("elbo a NumPy array", lambda: elbo(MODEL, PIXELS.numpy()), "x must be a tensor of shape (batch, D), got ndarray"),
    ("elbo eps without the L axis", lambda: elbo(MODEL, PIXELS, eps=torch.randn(5, 2)),
     "eps must have shape (n_samples, batch, latent_dim) = (1, 5, 2), got (5, 2)"),
    ("elbo eps of another L", lambda: elbo(MODEL, PIXELS, n_samples=3, eps=torch.randn(1, 5, 2)),
     "eps must have shape (n_samples, batch, latent_dim) = (3, 5, 2), got (1, 5, 2)"),
    ("elbo n_samples=0", lambda: elbo(MODEL, PIXELS, n_samples=0), "n_samples must be at least 1 (an integer), got 0"),
    ("elbo n_samples=2.5", lambda: elbo(MODEL, PIXELS, n_samples=2.5), "n_samples must be at least 1 (an integer), got 2.5"),
    ("elbo estimator 'C'", lambda: elbo(MODEL, PIXELS, estimator="C"),
     "unknown estimator 'C'; choose 'A' (Monte-Carlo KL) or 'B' (analytic KL)"),
    ("evaluate pixels in [0, 255]", lambda: evaluate(MODEL, PIXELS * 255), "x holds values from 0 to 255"),
    ("log p(x) pixels in [0, 255]", lambda: importance_sampled_log_likelihood(MODEL, (PIXELS * 255).round(), k=10),
     "x holds values from 0 to 255, but this model's bernoulli decoder models pixels in [0, 1]"),
    ("log p(x) 1-D x", lambda: importance_sampled_log_likelihood(MODEL, PIXELS[0], k=10), SHAPE + "(784,)"),
    ("log p(x) 3-D x", lambda: importance_sampled_log_likelihood(MODEL, PIXELS.reshape(5, 28, 28), k=10),
     SHAPE + "(5, 28, 28)"),
    ("log p(x) empty x", lambda: importance_sampled_log_likelihood(MODEL, torch.zeros(0, 784), k=10),
     "x is empty (shape (0, 784))"),
    ("log p(x) wrong D", lambda: importance_sampled_log_likelihood(MODEL, torch.rand(5, 560), k=10),
     "x has 560 values per example, but the model expects D = 784"),
    ("log p(x) k=0", lambda: importance_sampled_log_likelihood(MODEL, PIXELS, k=0),
     "k (the number of importance samples) must be an integer of at least 1, got 0"),
    ("log p(x) k=-5", lambda: importance_sampled_log_likelihood(MODEL, PIXELS, k=-5),
     "k (the number of importance samples) must be an integer of at least 1, got -5"),
    ("log p(x) k=2.5", lambda: importance_sampled_log_likelihood(MODEL, PIXELS, k=2.5),
     "k (the number of importance samples) must be an integer of at least 1, got 2.5"),
    ("log p(x) batch_size=0", lambda: importance_sampled_log_likelihood(MODEL, PIXELS, k=10, batch_size=0),
     "batch_size must be an integer of at least 1, got 0"),
    ("log p(x) k_chunk=0", lambda: importance_sampled_log_likelihood(MODEL, PIXELS, k=10, k_chunk=0),
     "k_chunk must be an integer of at least 1, got 0"),
    ("IW curve ks with a 0", lambda: iw_bound_curve(MODEL, PIXELS, [0, 10]), "ks[0] must be an integer of at least 1, got 0"),
    ("IW curve no ks", lambda: iw_bound_curve(MODEL, PIXELS, []),
     "ks must be a non-empty list of numbers of importance samples, got []"),
    ("IW curve ks a number", lambda: iw_bound_curve(MODEL, PIXELS, 5), "ks must be a non-empty list"),
    ("IW curve pixels in [0, 255]", lambda: iw_bound_curve(MODEL, PIXELS * 255, [1, 10]), "x holds values from 0 to 255"),
    ("log weights 1-D x", lambda: log_importance_weights(MODEL, PIXELS[0], 5), SHAPE + "(784,)"),
    ("TrainConfig lr=0", lambda: TrainConfig(lr=0), "lr must be a positive, finite step size, got 0"),
    ("TrainConfig lr=-1e-3", lambda: TrainConfig(lr=-1e-3), "lr must be a positive, finite step size, got -0.001"),
    ("TrainConfig lr=nan", lambda: TrainConfig(lr=math.nan), "lr must be a positive, finite step size, got nan"),
    ("TrainConfig lr='1e-3'", lambda: TrainConfig(lr="1e-3"), "lr must be a positive, finite step size, got '1e-3'"),
    ("TrainConfig weight_decay=-1", lambda: TrainConfig(weight_decay=-1), "weight_decay must be 0 or more, got -1"),
    ("fit train_x in [0, 255]", lambda: fit(tiny_vae(), PIXELS * 255, None, TrainConfig(epochs=1), show_progress=False),
     "train_x holds values from 0 to 255"),
    ("fit test_x of another D", lambda: fit(tiny_vae(), PIXELS, torch.rand(5, 560), TrainConfig(epochs=1), show_progress=False),
     "test_x has 560 values per example, but the model expects D = 784"),
    ("fit empty train_x", lambda: fit(tiny_vae(), PIXELS[:0], None, TrainConfig(epochs=1), show_progress=False),
     "train_x is empty (shape (0, 784))"),
    ("fit 3-D train_x", lambda: fit(tiny_vae(), PIXELS.reshape(5, 28, 28), None, TrainConfig(epochs=1), show_progress=False),
     "train_x must have shape (batch, D)"),
    ("unknown experiment, pretrained_or_train", lambda: pretrained_or_train("z3", object(), None),
     "unknown experiment 'z3'; choose one of ('seed_z3_h400', "),
    ("unknown experiment, load_or_train", lambda: load_or_train("z3", object(), None), "unknown experiment 'z3'"),
    ("unknown experiment, sweep", lambda: experiments.sweep_learning_rate("z3", object()), "unknown experiment 'z3'"),
    ("unknown experiment, checkpoint_path", lambda: checkpoint_path("z3"), "unknown experiment 'z3'"),
    ("quick='maybe'", lambda: as_flag("quick", "maybe"), "parameter 'quick' got 'maybe'; it accepts True, False, None or one of"),
]


@pytest.mark.parametrize("call, message", [c[1:] for c in CALLS], ids=[c[0] for c in CALLS])
def test_bad_library_call_says_what_was_expected(call, message):
    """Each bad call raises a ValueError whose message names the argument, what it got and what it
    accepts; an unknown experiment fails before any work (its data argument is never touched)."""
    with pytest.raises(ValueError, match=re.escape(message)):
        call()


# --- valid but unusual library calls ------------------------------------------------------------------

def test_unusual_but_valid_calls_give_the_right_numbers():
    """A batch of one, grey levels exactly 0 and 1, chunks bigger than K and batches bigger than N,
    and K as a NumPy integer all work and give the numbers of the plain call."""
    x = torch.bernoulli(PIXELS)
    one = elbo(MODEL, x[:1], eps=torch.zeros(1, 1, 2))
    assert one.bound.shape == (1,)
    torch.testing.assert_close(one.bound, elbo(MODEL, x, eps=torch.zeros(1, 5, 2)).bound[:1])
    plain = importance_sampled_log_likelihood(MODEL, x, k=30, batch_size=5, k_chunk=30, seed=3).log_px
    torch.testing.assert_close(importance_sampled_log_likelihood(MODEL, x, k=np.int64(30), batch_size=100,
                                                                 k_chunk=500, seed=3).log_px, plain)
    assert (plain <= 0).all()   # a Bernoulli likelihood of pixels in [0, 1] is a probability: log ≤ 0
    curve = iw_bound_curve(MODEL, x, [30, 1], seed=3)   # any order
    torch.testing.assert_close(curve[30].log_px, plain)


@FAST
@given(shape=st.lists(st.integers(0, 4), min_size=0, max_size=4), width=st.sampled_from([784, 560, 1]))
def test_any_shape_gives_a_result_of_one_value_per_row_or_a_clear_error(shape, width):
    """Property: for x of any shape, elbo returns (batch,) terms or raises a ValueError about x; never
    a raw error from inside torch, never a result of another shape."""
    x = torch.rand(*shape, width) if shape else torch.rand(width)
    try:
        terms = elbo(MODEL, x)
    except ValueError as err:
        assert re.match(r"x (must have shape|is empty|has \d+ values per example)", str(err)), str(err)
        return
    assert x.dim() == 2 and len(x) > 0 and width == 784 and terms.bound.shape == (len(x),)


@FAST
@given(scale=st.floats(1.01, 1000.0), seed=st.integers(0, 2**16))
def test_pixels_outside_zero_one_are_refused_and_inside_give_a_bound_below_zero(scale, seed):
    """Property: grey levels in [0, 1] give a finite bound ≤ 0 (a Bernoulli likelihood is a probability);
    the same images scaled past 1 are refused — the book never reports a positive log-likelihood of MNIST."""
    x = torch.rand(4, 784, generator=torch.Generator().manual_seed(seed))
    x[0, 0] = 1.0
    bound = elbo(MODEL, x).bound
    assert torch.isfinite(bound).all() and (bound <= 0).all()
    with pytest.raises(ValueError, match=r"x holds values from .* but this model's bernoulli decoder models pixels in \[0, 1\]"):
        elbo(MODEL, x * scale)


@FAST
@given(word=st.sampled_from(["yes", "no", "true", "false", "on", "off", "1", "0"]),
       case=st.sampled_from([str.lower, str.upper, str.title]), pad=st.sampled_from(["", " ", "\t"]))
def test_boolean_words_are_read_as_people_mean_them(word, case, pad):
    """Property: any case and padding of a yes/no word reads as meant — "no" is never quick mode on."""
    assert as_flag("quick", pad + case(word) + pad) is (word in {"yes", "true", "on", "1"})


@FAST
@given(value=st.integers(-10**6, 10**6))
def test_integer_parameters_pass_inside_their_range_and_are_named_outside(value):
    """Property: check_number returns any integer inside [1, 1000] and refuses any other, naming it."""
    if 1 <= value <= 1000:
        assert check_number("n", value, 1, 1000, integer=True) == value
    else:
        with pytest.raises(ValueError, match=re.escape(f"parameter 'n' got {value}; it accepts an integer from 1 to 1000")):
            check_number("n", value, 1, 1000, integer=True)


# --- checkpoints --------------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def tiny_data(mnist_train, mnist_test):
    return mnist_train.x[:200], mnist_test.x[:100]


def test_checkpoint_with_nan_weights_is_refused_on_load_and_on_resume(tmp_path, tiny_data):
    """A checkpoint holding NaN weights is refused with its path, the tensors and the fix — when loaded
    and when a run would resume from it."""
    model = tiny_vae()
    with torch.no_grad():
        model.decoder.net[-1].bias[3] = math.nan
    path = tmp_path / "nan.pt"
    save_checkpoint(path, model, TrainConfig(epochs=1))
    message = (f"checkpoint {path} holds non-finite weights (decoder.net.2.bias): the run that wrote it diverged. "
               "Delete it and train again, with a lower learning rate.")
    with pytest.raises(ValueError, match=re.escape(message)):
        load_checkpoint(path)
    with pytest.raises(ValueError, match=re.escape(message)):
        fit(tiny_vae(), tiny_data[0], None, TrainConfig(epochs=1), checkpoint=path, show_progress=False)


@pytest.mark.parametrize("loader", ["pretrained_or_train", "load_or_train"])
def test_checkpoint_of_another_model_is_not_reported_as_the_experiment(tmp_path, tiny_data, loader):
    """A checkpoint of another architecture saved under an experiment's name is refused, naming every
    difference and the fix, instead of being loaded and reported as that experiment."""
    save_checkpoint(checkpoint_path("latent2_h400", tmp_path), tiny_vae(), TrainConfig(epochs=1))
    message = (r"checkpoint .*latent2_h400\.pt does not hold a model of experiment 'latent2_h400':\n"
               r"  hidden_sizes: checkpoint \(8,\) vs experiment \(400,\)\n  activation: checkpoint 'tanh' vs experiment "
               r"'relu'\nMove or delete it")
    with pytest.raises(ValueError, match=message):
        getattr(experiments, loader)("latent2_h400", *tiny_data, tmp_path)


def test_matching_checkpoint_passes_the_experiment_check(tmp_path):
    """The check passes a checkpoint of the experiment's own configuration."""
    torch.manual_seed(0)
    path = checkpoint_path("latent2_h400", tmp_path)
    save_checkpoint(path, VAE(experiments.EXPERIMENTS["latent2_h400"].model))
    check_model_matches("latent2_h400", path, torch.load(path, weights_only=True))


def test_quick_training_leaves_no_temporary_folder(tmp_path, tiny_data, monkeypatch):
    """pretrained_or_train in quick mode trains into a temporary folder and removes it before returning."""
    scratch = tmp_path / "tmp"
    scratch.mkdir()
    monkeypatch.setattr(experiments.tempfile, "tempdir", str(scratch))
    model, history, how = pretrained_or_train("latent2_h400", *tiny_data, tmp_path / "none", quick=True, show_progress=False)
    assert how == "trained" and history.epoch == [1, 2] and list(scratch.iterdir()) == []


def test_unwritable_checkpoint_folder_fails_before_training(tmp_path, tiny_data, monkeypatch):
    """A checkpoint folder that cannot be written is an error naming the path and the fix, raised before
    the first step (whatever the cause: a file in the way, or no permission — simulated, as tests may run as root)."""
    def no_training(*args, **kwargs):
        raise AssertionError("training started although the checkpoint cannot be written")

    monkeypatch.setattr(train_module, "_fit", no_training)
    (tmp_path / "a_file").write_text("")
    path = tmp_path / "a_file" / "run.pt"
    with pytest.raises(OSError, match=re.escape(f"cannot write the checkpoint {path}: the folder {path.parent} is not "
                                                "writable (a file is in the way). Pass a checkpoint path in a writable folder")):
        fit(tiny_vae(), tiny_data[0], None, TrainConfig(epochs=1), checkpoint=path, show_progress=False)

    def refused(*args, **kwargs):
        raise PermissionError(13, "Permission denied")

    monkeypatch.setattr(checkpoints_module.tempfile, "mkstemp", refused)
    with pytest.raises(OSError, match=re.escape(f"the folder {tmp_path} is not writable (Permission denied)")):
        fit(tiny_vae(), tiny_data[0], None, TrainConfig(epochs=1), checkpoint=tmp_path / "run.pt", show_progress=False)


# --- divergence that stays finite ---------------------------------------------------------------------

def test_finite_divergence_below_the_floor_is_caught(tiny_data):
    """A bound that is finite but absurd (decoder logits of 10⁵: about −10⁷ nats per image, below −100 nats
    per pixel) stops training like a NaN at the first evaluation, with the fix."""
    model = tiny_vae()
    with torch.no_grad():
        model.decoder.net[-1].bias.fill_(1e5)
    with pytest.raises(FloatingPointError, match=r"training diverged by epoch 1: the bound fell to -\d\.\d+e\+07 nats "
                                                 r"per example, below -78400 \(100 nats per pixel\) \(rate .*\)\. "
                                                 r"Lower the learning rate"):
        fit(model, tiny_data[0], None, TrainConfig(epochs=2, batch_size=50), show_progress=False)


def test_finite_divergence_far_below_the_best_is_caught(tiny_data, tmp_path):
    """A bound that falls more than 10 nats per pixel below the best so far (about −560 → −2·10⁴, still
    above the −100 nats per pixel floor) is caught, and the checkpoint keeps the last good state."""
    config = TrainConfig(epochs=2, batch_size=50, lr=1e-3)
    path = tmp_path / "run.pt"
    model_config = VAEConfig(latent_dim=2, hidden_sizes=(8,), activation="tanh")
    train_model(model_config, replace(config, epochs=1), *tiny_data, checkpoint=path, show_progress=False)
    payload = torch.load(path, weights_only=True)
    payload["model_state"]["decoder.net.2.bias"].fill_(-200.0)   # every 'on' pixel now costs ~200 nats
    torch.save(payload, path)
    good = path.read_bytes()
    with pytest.raises(FloatingPointError, match=r"training diverged by epoch 2: the bound fell to -\d+(\.\d+)? nats per "
                                                 r"example from -\d+\.\d+ at best .*the last good checkpoint is"):
        train_model(model_config, config, *tiny_data, checkpoint=path, show_progress=False)
    assert path.read_bytes() == good


def test_the_step_size_sweep_scores_a_diverged_run_minus_infinity(tiny_data):
    """sweep_learning_rate: a step size whose run diverges scores −inf (it used to report a bound of
    about −2·10⁶, as if that were a result); the others score their bound."""
    sweep = experiments.sweep_learning_rate("paper_z3_h500", tiny_data[0], lrs=(0.02, 1000.0))
    assert sweep[1000.0] == -math.inf and -1000 < sweep[0.02] < 0


# --- data files ---------------------------------------------------------------------------------------

def test_torchvision_archive_checksums_are_torchvisions():
    """The .gz checksums are torchvision's own (torchvision.datasets.MNIST.resources)."""
    from torchvision.datasets import MNIST

    assert dict(MNIST.resources) == MNIST_GZ_MD5


def mnist_root(tmp_path: Path, split: str = "test") -> Path:
    """A data root holding copies of one split's raw MNIST files."""
    raw = tmp_path / "MNIST" / "raw"
    raw.mkdir(parents=True)
    prefix = "train" if split == "train" else "t10k"
    for name in MNIST_MD5:
        if name.startswith(prefix):
            shutil.copy(data_module.data_root() / "MNIST" / "raw" / name, raw / name)
    return tmp_path


@pytest.mark.parametrize("damage", ["truncated", "overwritten"])
def test_corrupt_mnist_file_is_reported_as_corrupt(tmp_path, damage):
    """A truncated or damaged raw file is reported as corrupt — naming the file, its MD5 and the fix —
    not as "not found", with or without download."""
    root = mnist_root(tmp_path)
    bad = root / "MNIST" / "raw" / "t10k-images-idx3-ubyte"
    content = bad.read_bytes()
    bad.write_bytes(content[:1000] if damage == "truncated" else content[:-1] + b"\x01")
    for download in (False, True):
        with pytest.raises(CorruptDataError, match=re.escape(f"{bad} is corrupt: its MD5 is ") + r"\w+ \(\d+ bytes\), "
                           + re.escape(f"expected {MNIST_MD5[bad.name]} — the file is truncated, damaged or another "
                                       "file. Delete it and download it again")):
            load_mnist("test", root=root, download=download)


def test_gzip_archives_are_checked_and_read(tmp_path, mnist_test):
    """Only .gz archives: a re-compressed good file (other bytes than torchvision's archive, same content)
    loads the same images; a cut-off archive is reported as corrupt."""
    root = mnist_root(tmp_path)
    for name in ("t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"):
        raw = root / "MNIST" / "raw" / name
        Path(f"{raw}.gz").write_bytes(gzip.compress(raw.read_bytes(), compresslevel=1))
        raw.unlink()
    split = load_mnist("test", root=root, download=False)
    assert torch.equal(split.x, mnist_test.x) and torch.equal(split.labels, mnist_test.labels)
    archive = root / "MNIST" / "raw" / "t10k-labels-idx1-ubyte.gz"
    archive.write_bytes(archive.read_bytes()[:100])
    with pytest.raises(CorruptDataError, match=re.escape(f"{archive} is corrupt: its MD5 is")):
        load_mnist("test", root=root, download=False)


def test_reading_never_writes_to_the_data_root(tmp_path):
    """Loading reads only: nothing appears in the data root (so a read-only root works)."""
    root = mnist_root(tmp_path)
    before = sorted(p.relative_to(root) for p in root.rglob("*"))
    assert len(load_mnist("test", root=root, download=False)) == 10000
    assert sorted(p.relative_to(root) for p in root.rglob("*")) == before


def test_a_file_is_hashed_once_per_process(tmp_path, monkeypatch):
    """The MD5 of an unchanged file is computed once; a rewritten file is hashed again."""
    path = tmp_path / "f"
    path.write_bytes(b"abc")
    first = file_md5(path)
    monkeypatch.setattr(data_module.hashlib, "md5", lambda: pytest.fail("hashed twice"))
    assert file_md5(path) == first == "900150983cd24fb0d6963f7d28e17f72"
    monkeypatch.undo()
    path.write_bytes(b"abcd")
    assert file_md5(path) == "e2fc714c4727ee9395f324cd2e7f331f"


def test_missing_mnist_is_still_reported_as_missing(tmp_path):
    """One file missing (not corrupt): the message says not found, lists the files and VAE_DATA_DIR."""
    root = mnist_root(tmp_path)
    (root / "MNIST" / "raw" / "t10k-labels-idx1-ubyte").unlink()
    assert list(verify_mnist("test", root)) == ["t10k-images-idx3-ubyte"]
    with pytest.raises(FileNotFoundError, match=re.escape(f"MNIST was not found under the data root {root}")):
        load_mnist("test", root=root, download=False)


def test_corrupt_frey_face(tmp_path):
    """A truncated Frey Face file is reported as corrupt with the path, its MD5 and the fix."""
    (tmp_path / "FreyFace").mkdir()
    bad = tmp_path / "FreyFace" / "frey_rawface.mat"
    bad.write_bytes((data_module.data_root() / "FreyFace" / "frey_rawface.mat").read_bytes()[:5000])
    with pytest.raises(CorruptDataError, match=re.escape(f"{bad} is corrupt: its MD5 is") + r".*\(5000 bytes\)"):
        load_frey_face(root=tmp_path, download=False)


# --- the chapters' papermill parameters ---------------------------------------------------------------

CHAPTERS = {p.stem.split("_")[0]: p for p in sorted((ROOT / "chapters").glob("[0-9][0-9]*_*.ipynb"))}


def run_parameter_checks(chapter: str, **overrides) -> dict:
    """Execute a chapter's parameters cell, the overrides (as papermill injects them) and its
    'check-parameters' cell; return the namespace."""
    nbformat = pytest.importorskip("nbformat")
    cells = nbformat.read(CHAPTERS[chapter], as_version=4).cells
    tagged = {tag: c.source for c in cells for tag in c.metadata.get("tags", [])}
    namespace: dict = {}
    exec(tagged["parameters"], namespace)
    namespace.update(overrides)
    exec(tagged["check-parameters"], namespace)
    return namespace


MNIST_NAMES = "('seed_z3_h400', 'seed_z12_h256-128', 'paper_z3_h500', 'latent2_h400')"
PARAMETERS = [
    ("01", {"device": "gpu"}, "parameter 'device' got 'gpu'; it accepts one of ('cpu', 'cuda') or None"),
    ("01", {"seed": -1}, "parameter 'seed' got -1; it accepts an integer from 0 to 4294967295"),
    ("02", {"noise_std": 0}, "parameter 'noise_std' got 0; it accepts a number from 0.05 to 5"),
    ("02", {"z_grid_size": 20.5}, "parameter 'z_grid_size' got 20.5; it accepts an integer from 10 to 2000"),
    ("02", {"cost_grid_size": 20, "cost_max_latent_dim": 7},
     "parameters 'cost_grid_size' and 'cost_max_latent_dim' got 20 and 7: 1.3e+09 grid points; they accept at most 1e8"),
    ("03", {"latent_dim": 3}, "parameter 'latent_dim' got 3; it accepts one of (2,)"),
    ("03", {"n_path": 80}, "parameter 'n_path' got 80; it accepts an odd integer"),
    ("03", {"noise_var": -0.5}, "parameter 'noise_var' got -0.5; it accepts a number from 0.001 to 100"),
    ("04", {"sample_sizes": [4, 1]}, "parameter 'sample_sizes' got [4, 1]; it accepts a strictly increasing list"),
    ("04", {"sample_sizes": [1]}, "parameter 'sample_sizes' got [1]; it accepts a list of at least 2 items"),
    ("04", {"vae_train_steps": 1000}, "parameter 'vae_train_steps' got 1000; it accepts an integer from 1 to 600"),
    ("04", {"data_dir": 3}, "parameter 'data_dir' got 3; it accepts a path as a string or None"),
    ("05", {"hidden_sizes": (400, 0)}, "parameter 'hidden_sizes[1]' got 0; it accepts an integer from 1 to 10000"),
    ("05", {"train_steps": "1000"}, "parameter 'train_steps' got '1000'; it accepts an integer from 1 to 100000"),
    ("05", {"torch_threads": -1}, "parameter 'torch_threads' got -1; it accepts an integer from 0 to 256"),
    ("06", {"experiments": ["z3"]}, f"parameter 'experiments[0]' got 'z3'; it accepts one of {MNIST_NAMES}"),
    ("06", {"experiments": ["frey_z2_h200"]}, "parameter 'experiments[0]' got 'frey_z2_h200'; it accepts one of"),
    ("06", {"experiments": "seed_z3_h400"}, "parameter 'experiments' got 'seed_z3_h400'; it accepts a list of at least 1 item"),
    ("06", {"checkpoint_dir": 0}, "parameter 'checkpoint_dir' got 0; it accepts a path as a string or None"),
    ("07", {"ks": [0, 10]}, "parameter 'ks[0]' got 0; it accepts an integer from 1 to 1000000"),
    ("07", {"ks": [10, 5]}, "parameter 'ks' got [10, 5]; it accepts a strictly increasing list"),
    ("07", {"n_compare": 101}, "parameter 'n_compare' got 101; it accepts an integer from 2 to 100"),
    ("07", {"ks": [2, 100]}, "ks must contain 1"),
    ("07", {"table_ks": [0, 100]}, "parameter 'table_ks[0]' got 0; it accepts an integer from 1 to 1000000"),
    ("07", {"n_all": 50000}, "parameter 'n_all' got 50000; it accepts an integer from 2 to 10000"),
    ("07", {"experiments": ["seed_z3_h401"]}, "parameter 'experiments[0]' got 'seed_z3_h401'; it accepts one of"),
    ("07b", {"experiments": ["seed_z3_h400"]}, "experiments must contain latent2_h400"),
    ("07b", {"playground_images": 9}, "parameter 'playground_images' got 9; it accepts an integer from 1 to 8"),
    ("07b", {"ledger_dir": 1}, "parameter 'ledger_dir' got 1; it accepts a path as a string or None"),
    ("08", {"grid_size": 1}, "parameter 'grid_size' got 1; it accepts an integer from 2 to 40"),
    ("08", {"device": "cuda:7"}, "parameter 'device' got 'cuda:7'; it accepts one of ('cpu', 'cuda') or None"),
    ("09", {"samples": 0}, "parameter 'samples' got 0; it accepts an integer from 1 to 10000000000"),
    ("09", {"grid_size": 100}, "parameter 'grid_size' got 100; it accepts an integer from 2 to 40"),
    ("10", {"curves_dir": 7}, "parameter 'curves_dir' got 7; it accepts a path as a string or None"),
    ("11", {"check_images": -1}, "parameter 'check_images' got -1; it accepts an integer from 0 to 500"),
    ("11", {"check_images": 2.5}, "parameter 'check_images' got 2.5; it accepts an integer from 0 to 500"),
    ("11", {"checkpoint_dir": ["a"]}, "parameter 'checkpoint_dir' got ['a']; it accepts a path as a string or None"),
    ("12", {"n_show": 0}, "parameter 'n_show' got 0; it accepts an integer from 1 to 20"),
    ("12", {"results_dir": 5}, "parameter 'results_dir' got 5; it accepts a path as a string or None"),
    ("13", {"device": "tpu"}, "parameter 'device' got 'tpu'; it accepts one of ('cpu', 'cuda') or None"),
    ("14", {"snr_ks": [5, 1]}, "parameter 'snr_ks' got [5, 1]; it accepts a strictly increasing list"),
    ("14", {"snr_draws": 1}, "parameter 'snr_draws' got 1; it accepts an integer from 2 to 10000"),
] + [(chapter, {"quick": "maybe"}, "parameter 'quick' got 'maybe'; it accepts True, False, None or one of")
     for chapter in CHAPTERS]


@pytest.mark.parametrize("chapter, overrides, message", PARAMETERS,
                         ids=[f"{c}-{','.join(o)}={list(o.values())[0]!r}" for c, o, _ in PARAMETERS])
def test_bad_chapter_parameter_is_refused_before_any_work(chapter, overrides, message):
    """A bad papermill parameter fails in the chapter's check cell — the first cell after the parameters,
    before any data is loaded — with a message naming the parameter, its value and what it accepts."""
    nbformat = pytest.importorskip("nbformat")
    cells = nbformat.read(CHAPTERS[chapter], as_version=4).cells
    parameters = next(c.source for c in cells if "parameters" in c.metadata.get("tags", []))
    missing = [name for name in overrides if not re.search(rf"^{name} = ", parameters, re.M)]
    if missing:   # a chapter that was rewritten since the case was written: say so, do not pass silently
        pytest.skip(f"chapter {chapter} has no parameter {missing}")
    with pytest.raises(ValueError, match=re.escape(message)):
        run_parameter_checks(chapter, **{"quick": False, **overrides})


@pytest.mark.parametrize("chapter", CHAPTERS)
def test_chapter_defaults_pass_and_quick_mode_states_its_overrides(chapter, capsys):
    """The full-run defaults pass the checks; quick mode ("yes" read as on, "no" as off) prints which
    parameters it overrides and changes nothing else; chapter 1 seeds its model from a parameter."""
    full = run_parameter_checks(chapter, quick="no")
    assert full["QUICK"] is False
    assert "quick mode" not in capsys.readouterr().out.replace("quick mode: False", "")
    namespace = run_parameter_checks(chapter, quick="yes")
    assert namespace["QUICK"] is True
    out = capsys.readouterr().out
    nbformat = pytest.importorskip("nbformat")
    parameters = next(c.source for c in nbformat.read(CHAPTERS[chapter], as_version=4).cells
                      if "parameters" in c.metadata.get("tags", []))
    names = re.findall(r"^(\w+) = ", parameters, re.M)
    changed = [n for n in names if n != "quick" and repr(namespace[n]) != repr(full[n])]
    if changed:   # quick mode says what it overrides, naming every parameter it changes
        assert out.startswith("quick mode overrides") and all(n in out for n in changed), (changed, out)
    if chapter == "01":
        assert namespace["seed"] == 0


def test_a_figure3_curve_file_that_lies_names_itself_and_its_fault(tmp_path):
    """vae_lib.runs.figure3_curves.read_curve: truncated, another format, a NaN mean, another run's curve."""
    import json

    from vae_lib.runs.figure3 import Figure3Run
    from vae_lib.runs.figure3_curves import CURVE_FORMAT, read_curve

    run = Figure3Run("aevb", 1000)
    good = {"format": CURVE_FORMAT, "name": run.name, "algorithm": "aevb", "n_train": 1000,
            "points": [{"samples": 10000, "train": {"mean": -150.0}, "test": {"mean": -151.0}}]}
    path = tmp_path / "fig3_aevb_n1000.json"
    path.write_text(json.dumps(good))
    assert read_curve(path, run)["name"] == run.name
    path.write_text(json.dumps(good)[:40])
    with pytest.raises(ValueError, match="fig3_aevb_n1000.json is not JSON .*truncated"):
        read_curve(path)
    path.write_text(json.dumps({**good, "format": "vae_lib.curve/1"}))
    with pytest.raises(ValueError, match="is not a Figure 3 curve"):
        read_curve(path)
    path.write_text(json.dumps({**good, "points": [{"samples": 10000, "train": {"mean": float("nan")}, "test": {"mean": 1.0}}]}))
    with pytest.raises(ValueError, match="at 10000 samples has a non-finite train mean"):
        read_curve(path)
    path.write_text(json.dumps({**good, "name": "fig3_mcem_n1000", "algorithm": "mcem"}))
    with pytest.raises(ValueError, match="holds the curve of 'fig3_mcem_n1000', not of 'fig3_aevb_n1000'"):
        read_curve(path, run)


def test_a_figure2_curve_file_that_lies_names_itself_and_its_fault(tmp_path):
    """vae_lib.runs.paper_runs.read_curve: truncated, another format, lists cut short, a NaN or infinite bound,
    another run's curve — each a ValueError naming the file; the step-size sweep's -inf (a diverged step
    size) is data, not a fault."""
    import json

    from vae_lib.runs.paper_runs import CURVE_FORMAT, read_curve
    from vae_lib.runs.figure2_setup import PaperRun

    run = PaperRun("frey", "aevb", 2)
    good = {"format": CURVE_FORMAT, "name": run.name, "dataset": "frey", "algorithm": "aevb", "latent_dim": 2,
            "step_size_sweep": {"0.1": -math.inf}, "samples_seen": [100, 1000], "train_bound": [10.0, 20.0],
            "test_bound": [9.0, 19.0], "seconds": [1.0, 2.0]}
    path = tmp_path / f"{run.name}.json"
    path.write_text(json.dumps(good))
    assert read_curve(path, run)["step_size_sweep"]["0.1"] == -math.inf
    path.write_text(json.dumps(good)[:60])
    with pytest.raises(ValueError, match="fig2_frey_aevb_z2.json is not JSON .*truncated"):
        read_curve(path)
    path.write_text(json.dumps({**good, "format": "vae_lib.figure3_curve/1"}))
    with pytest.raises(ValueError, match="is not a Figure 2 learning curve"):
        read_curve(path)
    path.write_text(json.dumps({**good, "test_bound": [9.0]}))
    with pytest.raises(ValueError, match="fig2_frey_aevb_z2.json: its lists differ in length"):
        read_curve(path)
    for bad in (math.nan, -math.inf, "19.0"):
        path.write_text(json.dumps({**good, "test_bound": [9.0, bad]}))
        with pytest.raises(ValueError, match="the test bound at 1000 samples is not finite"):
            read_curve(path)
    other = PaperRun("frey", "aevb", 2, "contiguous")
    with pytest.raises(ValueError, match="holds the curve of 'fig2_frey_aevb_z2', not of 'fig2_frey_aevb_z2_contiguous'"):
        path.write_text(json.dumps(good))
        read_curve(path, other)


def test_run_files_are_written_whole_and_read_back_checked(tmp_path):
    """vae_lib.base.run_files: an atomic write leaves no temporary file; each fault of a read names the file."""
    from vae_lib.base.run_files import read_json, write_json

    path = write_json(tmp_path / "sub" / "r.json", {"format": "x/1", "v": [1.5]})
    assert read_json(path, "x/1", "an x file") == {"format": "x/1", "v": [1.5]}
    assert [p.name for p in path.parent.iterdir()] == ["r.json"]
    with pytest.raises(FileNotFoundError, match=r"gone.json is missing: it should hold an x file: run make_x"):
        read_json(tmp_path / "gone.json", "x/1", "an x file", "run make_x")
    path.write_text('{"format": "x/1", "v": [1.')
    with pytest.raises(ValueError, match=r"r.json is not JSON \(.*truncated\?\)"):
        read_json(path, "x/1", "an x file")
    path.write_text('[1, 2]')
    with pytest.raises(ValueError, match=r"r.json is not an x file \(format None, expected 'x/1'\)"):
        read_json(path, "x/1", "an x file")


# --- issue 29: every bad value refused where it enters ----------------------------------------------------
# The scripts' arguments (parsed in-process: nothing trains, nothing is written), the library's public
# functions, the exercise checkers, the playground and the explorer. One property-based test per entry point
# (hypothesis draws the bad values), plus one test per example an outside tester reported.

import argparse
import importlib.util
import socket
import sys
import threading

import vae_lib.base.params as params
from vae_lib.base.sweep import cluster_executor


def script(name: str):
    """scripts/<name>.py as a module, its main() callable in-process."""
    spec = importlib.util.spec_from_file_location(f"script_{name}", ROOT / "scripts" / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


SCRIPTS = {name: script(name) for name in ("train_experiments", "figure2", "figure3", "beyond", "gpu_run",
                                           "figure3_rescore", "seed_protocols", "colab_check")}


def refused(capsys, name: str, argv: list[str]) -> str:
    """Run scripts/<name>.py's main(argv): it must stop with argparse's exit code 2; returns its stderr."""
    with pytest.raises(SystemExit) as exit_:
        SCRIPTS[name].main(argv)
    assert exit_.value.code == 2
    err = capsys.readouterr().err
    assert "Traceback" not in err
    return err


def no_work(monkeypatch):
    """Make any start of work fail the test: a training subprocess, a local pool, a sweep."""
    import subprocess

    import vae_lib.base.sweep as sweep

    def started(*args, **kwargs):
        raise AssertionError("work started although an argument was bad")

    monkeypatch.setattr(subprocess, "Popen", started)
    monkeypatch.setattr(sweep, "local_executor", started)
    monkeypatch.setattr(sweep, "run_and_report", started)
    monkeypatch.setattr(sweep, "run_sweep", started)


ALPHABET = "abcxyz019:./ -_é"   # a fixed alphabet: no Unicode table cached in a .hypothesis folder
BAD_TEXT = st.sampled_from(["", " ", "one", "1.5", "nan", "inf", "-inf", "1e", "0x10", "1,2"])
BAD = {
    "int≥1": st.one_of(st.integers(max_value=0).map(str), BAD_TEXT),
    "int≥0": st.one_of(st.integers(max_value=-1).map(str), BAD_TEXT.filter(lambda s: s not in ("0x10",))),
    "float>0": st.one_of(st.floats(max_value=0.0).map(repr), st.sampled_from(["", "nan", "inf", "-inf", "1e400", "ten"])),
    "samples": st.one_of(st.floats(max_value=0.999).map(repr), st.floats(1.01, 1e6).filter(lambda v: v != int(v)).map(repr),
                         st.sampled_from(["", "nan", "inf", "1e400", "-1e7", "1e7x", "ten"])),
    "device": st.one_of(st.sampled_from(["mps", "tpu", "gpu", "CPU", "cuda:99", "cuda:-1", "cuda:x", ""]),
                        st.text(ALPHABET, max_size=6).filter(lambda s: s != "cpu" and not s.startswith("cuda"))),
    "cluster": st.one_of(st.sampled_from(["localhost:8786", "tcp://host", "tcp://:8786", "tcp://h:0", "tcp://h:70000",
                                          "http://h:8786", "tcp://h:87x6", ""]),
                         st.text(ALPHABET, max_size=12).filter(lambda s: "://" not in s)),
    "list": st.sampled_from(["", ",", "env,", ",env", "env,,tests", " "]),
    "HH:MM": st.one_of(st.sampled_from(["24:00", "12:60", "noon", "", "7", "12:5", "-1:00"]),
                       st.text(ALPHABET, max_size=5).filter(lambda s: ":" not in s)),
}
OPTIONS = [  # (script, the arguments that make the rest valid, option, the kind of value it takes)
    ("train_experiments", ["seed_z3_h400"], "--threads", "int≥1"),
    ("figure2", [], "--threads", "int≥1"), ("figure2", [], "--jobs", "int≥1"), ("figure2", [], "--latents", "int≥1"),
    ("figure2", [], "--samples", "samples"), ("figure2", [], "--device", "device"),
    ("figure2", [], "--cluster", "cluster"), ("figure2", [], "--until", "HH:MM"),
    ("figure3", [], "--threads", "int≥1"), ("figure3", [], "--jobs", "int≥1"), ("figure3", [], "--n-eval", "int≥1"),
    ("figure3", [], "--evals-per-decade", "int≥1"), ("figure3", [], "--samples", "samples"),
    ("figure3", [], "--first-eval", "samples"), ("figure3", [], "--device", "device"),
    ("figure3", [], "--cluster", "cluster"), ("figure3", [], "--until", "HH:MM"),
    ("beyond", [], "--jobs", "int≥1"), ("beyond", [], "--threads", "int≥1"), ("beyond", [], "--device", "device"),
    ("beyond", [], "--cluster", "cluster"),
    ("gpu_run", ["--dry-run"], "--budget", "float>0"), ("gpu_run", ["--dry-run"], "--jobs", "int≥1"),
    ("gpu_run", ["--dry-run"], "--steps", "list"), ("gpu_run", ["--dry-run"], "--runs", "list"),
    ("gpu_run", ["--dry-run"], "--samples", "samples"), ("gpu_run", ["--dry-run"], "--fig3-samples", "samples"),
    ("gpu_run", ["--dry-run"], "--beyond-epochs", "int≥1"),
    ("figure3_rescore", [], "--threads", "int≥1"), ("figure3_rescore", [], "--max-finest", "int≥0"),
    ("seed_protocols", [], "--threads", "int≥1"), ("colab_check", [], "--timeout", "float>0"),
]


@pytest.mark.parametrize("name, rest, option, kind", OPTIONS, ids=[f"{n} {o}" for n, _, o, _ in OPTIONS])
@settings(max_examples=8, deadline=None, database=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.data())
def test_a_bad_script_argument_is_refused_naming_the_option_the_value_and_what_is_allowed(
        name, rest, option, kind, data, capsys, monkeypatch):
    """Property: any bad value of a script's option stops it at parsing (exit 2, no traceback, no work started),
    with "argument <option>: must be <what is allowed>, got <the value>"."""
    no_work(monkeypatch)
    value = data.draw(BAD[kind])
    err = refused(capsys, name, rest + [f"{option}={value}"])
    assert f"argument {option}: must be " in err, err
    assert f"got {value}" in err or f"got {value!r}" in err, err


@pytest.mark.parametrize("name, argv, message", [
    ("train_experiments", ["seed_z3_h400", "--threads", "0"], "argument --threads: must be an integer ≥ 1, got 0"),
    ("train_experiments", ["z3"], "experiment names must be among seed_z3_h400, "),
    ("train_experiments", ["seed_z3_h400", "--data-dir", "/no/such/folder"],
     "argument --data-dir: must be an existing folder, got /no/such/folder (not found)"),
    ("figure2", ["--device", "mps"], "argument --device: must be 'cpu' or a GPU present here"),
    ("figure2", ["--samples", "inf"], "argument --samples: must be a whole number ≥ 1 of samples, such as 1e7, got inf"),
    ("figure2", ["--samples", "nan"], "argument --samples: must be a whole number ≥ 1 of samples, such as 1e7, got nan"),
    ("figure2", ["--latents", "0"], "argument --latents: must be an integer ≥ 1, got 0"),
    ("figure3", ["--samples", "0"], "argument --samples: must be a whole number ≥ 1 of samples, such as 1e7, got 0"),
    ("figure3", ["--samples", "nan"], "argument --samples: must be a whole number ≥ 1 of samples, such as 1e7, got nan"),
    ("figure3", ["--jobs", "0"], "argument --jobs: must be an integer ≥ 1, got 0"),
    ("figure3", ["--threads", "0"], "argument --threads: must be an integer ≥ 1, got 0"),
    ("figure3", ["--first-eval", "50"], "argument --first-eval: must be a whole number ≥ 100 of samples (one minibatch), got 50"),
    ("figure3", ["--start-from", "/no/a", "/no/b"], "argument --start-from: must be an existing folder, got /no/a"),
    ("figure2", ["--cluster", "localhost:8786"], "argument --cluster: must be a Dask scheduler's address tcp://host:port"),
    ("gpu_run", ["--dry-run", "--budget", "0"], "argument --budget: must be a finite number > 0, got 0"),
    ("gpu_run", ["--dry-run", "--jobs", "0"], "argument --jobs: must be an integer ≥ 1, got 0"),
    ("gpu_run", ["--dry-run", "--steps", ""], "argument --steps: must be a comma-separated list of one or more names, got ''"),
    ("gpu_run", ["--dry-run", "--samples", "nan"], "argument --samples: must be a whole number ≥ 1 of samples"),
    ("figure3_rescore", ["--threads", "0"], "argument --threads: must be an integer ≥ 1, got 0"),
    ("figure3_rescore", ["--sets", "fig3_aevb_n1000"], "argument --sets: each set must be RUN:PART with PART train or test"),
    ("figure3_rescore", ["--merge", "/no/such.json"], "argument --merge: must be an existing file, got /no/such.json"),
    ("seed_protocols", ["--threads", "-2"], "argument --threads: must be an integer ≥ 1, got -2"),
])
def test_reported_bad_script_arguments(name, argv, message, capsys, monkeypatch):
    """The tester's examples (and their neighbours): each refused at parsing, exit 2, naming option and value."""
    no_work(monkeypatch)
    assert message in refused(capsys, name, argv)


def test_script_arguments_in_exponent_form_are_read_as_counts():
    """'1e7' samples is 10⁷ (an int); '2.5e6' is 2500000; valid devices and addresses pass unchanged."""
    assert params.sample_count("1e7") == 10 ** 7 and params.sample_count("2.5e6") == 2_500_000
    assert params.sample_count("10000000") == 10 ** 7 and params.positive_int(" 3 ") == 3
    assert params.device_name("cpu") == "cpu" and params.cluster_address("tcp://10.0.0.5:8786") == "tcp://10.0.0.5:8786"
    assert params.comma_list("env, tests") == "env,tests" and params.time_of_day("07:30") == "07:30"


def junk_server() -> int:
    """A port where something other than a Dask scheduler answers (it sends an HTTP error and closes)."""
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(8)

    def serve():
        while True:
            conn, _ = server.accept()
            conn.sendall(b"HTTP/1.1 400 Bad Request\r\n\r\n" * 8)
            conn.close()

    threading.Thread(target=serve, daemon=True).start()
    return server.getsockname()[1]


def test_a_cluster_that_is_not_there_or_not_dask_is_an_error_naming_the_address(capsys, monkeypatch, tmp_path):
    """A dead address fails after the short timeout, and another service's reply (which Dask read as a 3 EiB
    message) fails at once — both an OSError naming the address; through a script: exit 2, no traceback."""
    pytest.importorskip("distributed")
    free = socket.socket()
    free.bind(("127.0.0.1", 0))
    dead = f"tcp://127.0.0.1:{free.getsockname()[1]}"
    free.close()
    with pytest.raises(OSError, match=re.escape(f"cannot connect to the Dask scheduler at {dead}: nothing answered within 1 s")):
        cluster_executor(dead, timeout=1)
    junk = f"tcp://127.0.0.1:{junk_server()}"
    with pytest.raises(OSError, match=re.escape(f"cannot connect to the Dask scheduler at {junk}: what answered there "
                                                "is not a Dask scheduler")) as err:
        cluster_executor(junk, timeout=5)
    assert "EiB" not in str(err.value)
    import vae_lib.base.sweep as sweep

    monkeypatch.setattr(sweep, "run_and_report", lambda *a, **k: pytest.fail("work started"))
    err = refused(capsys, "figure3", ["--cluster", junk, "--curves", str(tmp_path / "c"), "--checkpoints", str(tmp_path / "k")])
    assert f"cannot connect to the Dask scheduler at {junk}" in err
    assert list(tmp_path.iterdir()) == []


@FAST
@given(address=BAD["cluster"])
def test_cluster_executor_refuses_a_malformed_address_before_connecting(address):
    """Property: cluster_executor refuses any address that is not tcp://host:port with a ValueError naming it."""
    with pytest.raises(ValueError, match=r"cluster address must be a Dask scheduler's address tcp://host:port"):
        cluster_executor(address)


# --- library entry points ----------------------------------------------------------------------------------

NOT_AN_INT = st.one_of(st.floats(allow_nan=True).filter(lambda v: not (math.isfinite(v) and v == int(v))),
                       st.text(ALPHABET, max_size=4), st.booleans(), st.none(), st.just([3]))


@FAST
@given(field=st.sampled_from(["latent_dim", "data_dim"]), value=st.one_of(NOT_AN_INT, st.integers(max_value=0)))
def test_vae_config_refuses_a_size_that_is_not_a_positive_integer(field, value):
    """Property: VAEConfig refuses a latent or data size that is not an integer ≥ 1, naming the field and value
    (latent_dim = 2.5 used to fail inside torch.empty)."""
    with pytest.raises(ValueError, match=rf"{field} must be (an integer ≥ 1|at least 1), got "):
        VAEConfig(**{field: value})


@FAST
@given(width=st.one_of(NOT_AN_INT.filter(lambda v: v is not None and not isinstance(v, list)), st.integers(max_value=0)))
def test_vae_config_refuses_a_hidden_width_that_is_not_a_positive_integer(width):
    """Property: a hidden width of 8.5 is refused (it was silently truncated to 8), naming its index."""
    with pytest.raises(ValueError, match=r"hidden_sizes\[1\] must be an integer ≥ 1, got |hidden sizes must be positive"):
        VAEConfig(hidden_sizes=(8, width))


def test_reported_library_examples():
    """VAEConfig(latent_dim=2.5), fit(checkpoint_every=0), a checker handed None."""
    from vae_lib.exercises.checkers import check_kl

    with pytest.raises(ValueError, match=re.escape("latent_dim must be an integer ≥ 1, got 2.5")):
        VAEConfig(latent_dim=2.5)
    with pytest.raises(ValueError, match=re.escape("checkpoint_every must be an integer ≥ 1, got 0")):
        fit(tiny_vae(), PIXELS, None, TrainConfig(epochs=1), checkpoint_every=0, show_progress=False)
    with pytest.raises(TypeError, match=re.escape("my_kl must be a function, got None (of type NoneType): pass the "
                                                  "function itself, without calling it")):
        check_kl(None)


FIT_OPTIONS = {"checkpoint_every": (st.one_of(st.integers(max_value=0), NOT_AN_INT.filter(lambda v: v is not None)),
                                    "an integer ≥ 1"),
               "checkpoint_seconds": (st.one_of(st.floats(max_value=0.0), st.just(math.nan), st.just("60")), "a finite number > 0"),
               "time_limit": (st.one_of(st.floats(max_value=0.0), st.just(math.nan)), "a finite number > 0"),
               "samples": (st.one_of(st.integers(max_value=-1), st.floats(allow_nan=True).filter(lambda v: v != int(v) if math.isfinite(v) else True)),
                           "an integer ≥ 0")}


@FAST
@given(data=st.data(), option=st.sampled_from(sorted(FIT_OPTIONS)))
def test_fit_refuses_bad_options_before_the_first_step(data, option, monkeypatch):
    """Property: fit refuses a bad checkpoint_every / checkpoint_seconds / time_limit / samples before any step,
    naming the option, the value and what it accepts."""
    monkeypatch.setattr(train_module, "_fit", lambda *a, **k: pytest.fail("training started"))
    strategy, allowed = FIT_OPTIONS[option]
    value = data.draw(strategy)
    with pytest.raises(ValueError, match=re.escape(f"{option} must be {allowed}, got ")):
        fit(MODEL, PIXELS, None, TrainConfig(epochs=1), show_progress=False, **{option: value})


CHECKERS = ["check_kl", "check_free_bits", "check_elbo", "check_reparameterize", "check_adagrad", "check_slerp",
            "check_grid_log_marginal", "check_iwae_bound", "check_bernoulli_log_likelihood", "check_gaussian_log_likelihood"]


@FAST
@given(checker=st.sampled_from(CHECKERS),
       answer=st.one_of(st.none(), st.integers(), st.floats(allow_nan=True), st.text(ALPHABET, max_size=5), st.just(PIXELS[0]),
                        st.lists(st.integers(), max_size=2)))
def test_an_exercise_checker_handed_something_other_than_a_function_says_so(checker, answer):
    """Property: every checker refuses a non-callable answer (None: a cell that defined nothing; a tensor: the
    function's result instead of the function) with a TypeError naming its argument and the value's type."""
    import inspect

    from vae_lib.exercises import checkers

    fn = getattr(checkers, checker)
    name = next(iter(inspect.signature(fn).parameters))
    with pytest.raises(TypeError, match=rf"(?s){name} must be a function, got .* \(of type {type(answer).__name__}\)"):
        fn(answer)


@FAST
@given(kind=st.sampled_from(["pathlib.PurePosixPath", "argparse.Namespace", "fractions.Fraction", "decimal.Decimal",
                             "uuid.UUID"]))
def test_a_refused_pickle_names_the_file_and_says_it_is_not_this_books_checkpoint(kind, tmp_path_factory):
    """Property: a pickle holding any Python object besides tensors and plain values is refused naming the file and
    the object's type — and never with torch's advice to load it with weights_only=False (that runs its code)."""
    import importlib

    module, name = kind.rsplit(".", 1)
    obj = {"pathlib.PurePosixPath": lambda c: c("/x"), "argparse.Namespace": lambda c: c(a=1),
           "fractions.Fraction": lambda c: c(1, 3), "decimal.Decimal": lambda c: c("1.5"),
           "uuid.UUID": lambda c: c(int=7)}[kind](getattr(importlib.import_module(module), name))
    path = tmp_path_factory.mktemp("pickles") / "model.pt"
    torch.save({"format": checkpoints_module.CHECKPOINT_FORMAT, "model_state": {}, "extra": obj}, path)
    with pytest.raises(ValueError) as err:
        load_checkpoint(path)
    message = str(err.value)
    assert message.startswith(f"{path} is not a checkpoint this book wrote: it holds a Python object of type ")
    assert "weights_only" not in message and "trust" not in message


def test_a_figure3_checkpoint_swapped_with_another_runs_is_refused(tmp_path):
    """fig3_aevb_n1000's checkpoint copied to fig3_aevb_n50000.pt: same model, same algorithm, but its recorded
    weight decay 1/1000 says another training set — refused naming the file, what differs and the fix."""
    from vae_lib.runs.figure3 import Figure3Run, load_figure3_model
    from vae_lib.training.checkpoints import save_checkpoint as save

    small, large = Figure3Run("aevb", 1000), Figure3Run("aevb", 50000)
    save(tmp_path / f"{large.name}.pt", VAE(small.model_config()), small.train_config(1000, 10000), extra={"samples_done": 10000})
    with pytest.raises(ValueError, match=re.escape(f"{tmp_path / large.name}.pt is not a checkpoint of fig3_aevb_n50000 "
                                                   "(it was trained on n_train = 1000 images): its recorded run configuration "
                                                   "differs:\n  weight_decay: checkpoint 0.001 vs fig3_aevb_n50000 2e-05")):
        load_figure3_model(large, tmp_path)
    save(tmp_path / f"{small.name}.pt", VAE(small.model_config()), small.train_config(1000, 10000, lr=0.05), extra={"samples_done": 10000})
    assert load_figure3_model(small, tmp_path)[1] == 10000   # another step size (the paper's rule) is the same run


@settings(max_examples=6, deadline=None, database=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(pair=st.permutations(range(6)).map(lambda p: p[:2]))
def test_any_figure3_checkpoint_loaded_as_another_run_is_refused(pair, tmp_path_factory):
    """Property: of the six Figure 3 runs, a checkpoint of any one loaded as any other is refused, naming the file."""
    from vae_lib.runs.figure3 import figure3_runs, load_figure3_model
    from vae_lib.training.checkpoints import save_checkpoint as save

    mine, other = (figure3_runs()[i] for i in pair)
    folder = tmp_path_factory.mktemp("fig3")
    save(folder / f"{other.name}.pt", VAE(mine.model_config()), mine.train_config(mine.n_train, 10000),
         extra={"samples_done": 10000})
    with pytest.raises(ValueError, match=rf"{other.name}\.pt (is not a checkpoint of {other.name}|holds another run's model)"):
        load_figure3_model(other, folder)


Q_MODEL = tiny_vae()
Q_X = torch.bernoulli(PIXELS[:2])


@FAST
@given(option=st.sampled_from(["tol", "half_width", "wide_limit", "n_start", "max_levels", "chunk_size", "max_points"]),
       value=st.one_of(st.floats(max_value=0.0), st.just(math.nan), st.just(math.inf), st.just(-1), st.just(0)))
def test_quadrature_refuses_bad_settings(option, value):
    """Property: quadrature_log_marginal refuses a tolerance, width or count that is not positive (tol = -1 used to
    run every level and return values marked unconverged), naming it. max_levels = 0 is allowed: the wide grid only."""
    if option == "max_levels" and value == 0 and not isinstance(value, float):
        return
    with pytest.raises(ValueError, match=rf"{option} must be (a finite number > 0|an integer ≥ [01]), got "):
        from vae_lib.inference.quadrature import quadrature_log_marginal

        quadrature_log_marginal(Q_MODEL, Q_X, **{option: value})


@FAST
@given(bad=st.sampled_from(["nan", "inf", "255", "negative", "1-D", "3-D", "uint8"]), where=st.integers(0, 783))
def test_quadrature_refuses_pixels_it_cannot_score(bad, where):
    """Property: a NaN or infinite pixel, 0–255 grey levels (log p(x) = +99336), negative values, a 1-D image
    (which hung) or a 3-D batch are refused with a ValueError about x, before any grid is built."""
    from vae_lib.inference.quadrature import quadrature_log_marginal

    x = Q_X.clone()
    if bad in ("nan", "inf"):
        x[0, where] = float(bad)
    elif bad == "255":
        x = x * 255
    elif bad == "negative":
        x[1, where] = -0.5
    x = {"1-D": x[0], "3-D": x.reshape(2, 28, 28), "uint8": x.to(torch.uint8)}.get(bad, x)
    with pytest.raises(ValueError, match=r"^x (contains non-finite|holds values from|must have shape|has dtype)"):
        quadrature_log_marginal(Q_MODEL, x)


NOT_FINITE = st.sampled_from([math.nan, math.inf, -math.inf])
HMC_BAD = {"n_samples": st.one_of(st.integers(-5, 0), st.just(2.5)), "n_leapfrog": st.one_of(st.integers(-5, 0), st.just(10.0)),
           "burn_in": st.one_of(st.integers(-5, -1), st.just(1.5)),
           "target_accept": st.one_of(st.floats(max_value=0.0), st.floats(1.0001, 1e9), NOT_FINITE),
           "init_step_size": st.one_of(st.floats(max_value=0.0), NOT_FINITE),
           "jitter": st.one_of(st.floats(max_value=-1e-9), st.floats(0.991, 1e9), NOT_FINITE)}


@FAST
@given(data=st.data(), option=st.sampled_from(sorted(HMC_BAD)))
def test_hmc_refuses_bad_settings_before_any_step(data, option):
    """Property: sample_posterior refuses n_leapfrog = 0 (chains that never move reported 0.9 acceptance), no samples,
    a negative burn-in, an acceptance target outside (0, 1], a step size ≤ 0 or a jitter outside [0, 0.99]."""
    from vae_lib.inference.hmc import sample_posterior

    value = data.draw(HMC_BAD[option])
    with pytest.raises(ValueError, match=rf"{option} must be (an integer|a finite number)"):
        sample_posterior(Q_MODEL, Q_X, **{"n_samples": 2, "burn_in": 1, option: value})


def test_hmc_with_no_leapfrog_step_is_refused():
    """The tester's example: n_leapfrog = 0 reported 0.9 acceptance for chains that never move."""
    from vae_lib.inference.hmc import hmc_step, sample_posterior

    with pytest.raises(ValueError, match=re.escape("n_leapfrog must be an integer ≥ 1, got 0")):
        sample_posterior(Q_MODEL, Q_X, 5, n_leapfrog=0)
    with pytest.raises(ValueError, match=re.escape("n_leapfrog must be an integer ≥ 1, got 0")):
        hmc_step(lambda z: -(z ** 2).sum(-1), torch.zeros(2, 2), 0.1, 0)


@FAST
@given(option=st.sampled_from(["limit", "scale", "image_shape"]),
       value=st.one_of(st.floats(max_value=0.0), st.just(math.nan), st.just((28,)), st.just((27, 28)), st.just((28.0, 28.0)),
                       st.just("28x28"), st.integers(-3, 0)))
def test_the_explorer_refuses_bad_settings(option, value):
    """Property: WebExplorer refuses a slider range or scale that is not positive, or an image_shape that is not two
    integers whose product is D (a 1-tuple used to raise IndexError)."""
    from vae_lib.figures.web_explorer import WebExplorer

    if option == "image_shape" and isinstance(value, (int, float)):
        value = (value, 28)
    with pytest.raises(ValueError, match=rf"{option} (must be |\(.*\) does not hold the model's 784 pixels)"):
        WebExplorer(MODEL, **{"image_shape": (28, 28), option: value})


@FAST
@given(option=st.sampled_from(["grid_size", "q_points", "q_half_width", "box_sds"]),
       value=st.one_of(st.integers(-3, 0), st.just(math.nan), st.floats(max_value=0.0), st.just("64")))
def test_the_playground_grids_refuse_bad_settings(option, value):
    """Property: the playground's quadrature rules refuse a grid or width that is not positive, naming it."""
    from vae_lib.figures.playground_rules import PlaygroundGrids

    if option in ("grid_size", "q_points") and isinstance(value, float):
        value = 1.5    # a width of 1.5 cells
    with pytest.raises(ValueError, match=rf"{option} must be "):
        PlaygroundGrids(**{option: value})


@FAST
@given(n=st.one_of(st.integers(-3, 0), st.just(2.5), st.just("20")), eps=st.one_of(st.just(0.05), st.floats(0.5, 2.0),
                                                                                    st.floats(max_value=0.0)))
def test_the_manifold_grid_refuses_bad_sizes(n, eps):
    """Property: manifold_grid_latents refuses a size that is not an integer ≥ 1 (or an eps outside (0, 0.5])."""
    from vae_lib.figures.explore import manifold_grid_latents

    with pytest.raises(ValueError, match=r"^(n must be (an integer ≥ 1|at least 1)|eps must be a finite number > 0 and ≤ 0.5), got "):
        manifold_grid_latents(n if not (isinstance(n, int) and n >= 1) else 0, eps)


GAPS_BAD = {"n_steps": st.one_of(st.integers(-5, -1), st.just(1.5)), "lr": st.one_of(st.floats(max_value=0.0), NOT_FINITE),
            "n_samples": st.one_of(st.integers(-5, 0), st.just(2.5)), "n_eval": st.integers(-5, 0),
            "eval_chunk": st.integers(-5, 0)}


@FAST
@given(data=st.data(), option=st.sampled_from(sorted(GAPS_BAD)))
def test_the_gap_optimizer_refuses_bad_settings(data, option):
    """Property: optimize_gaussian_elbo refuses a step count, step size or sample count out of range, naming it."""
    from vae_lib.inference.gaps import optimize_gaussian_elbo

    with pytest.raises(ValueError, match=rf"{option} must be (an integer|a finite number)"):
        optimize_gaussian_elbo(Q_MODEL, Q_X, **{option: data.draw(GAPS_BAD[option])})

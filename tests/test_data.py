"""vae_lib.model.data: the data sets from the read-only data root, the pixel protocols, minibatches, errors."""

import pytest
import torch

from vae_lib.model.data import MNIST_FILES, data_root, load_dataset, load_frey_face, load_mnist, minibatch_indices
from vae_lib.model.pixels import check_protocol, fixed_binarization, observe


def test_mnist_splits(mnist_train, mnist_test):
    """MNIST has 60000 training and 10000 test images of 784 grey levels in [0, 1], labelled 0–9."""
    for split, n in ((mnist_train, 60000), (mnist_test, 10000)):
        assert split.x.shape == (n, 784) and split.x.dtype == torch.float32
        assert split.x.min() == 0 and split.x.max() == 1
        assert split.labels.shape == (n,) and set(split.labels.unique().tolist()) == set(range(10))
        assert split.image_shape == (28, 28) and len(split) == n
    # grey levels are k/255: nothing was rescaled or normalised on the way
    torch.testing.assert_close(mnist_test.x[:100] * 255, (mnist_test.x[:100] * 255).round())


def test_frey_face(frey):
    """Frey Face is 1965 frames of 28×20 = 560 grey levels in [0, 1] (raw values 8 … 238), without labels."""
    assert frey.x.shape == (1965, 560) and frey.labels is None and frey.image_shape == (28, 20)
    assert frey.x.min().item() == pytest.approx(8 / 255) and frey.x.max().item() == pytest.approx(238 / 255)


def test_subset_keeps_the_first_examples(mnist_test):
    """Split.subset(n) is the first n examples and their labels (all of them when n is larger)."""
    small = mnist_test.subset(5)
    assert torch.equal(small.x, mnist_test.x[:5]) and torch.equal(small.labels, mnist_test.labels[:5])
    assert len(small.subset(100)) == 5


def test_load_dataset_by_name(frey):
    """load_dataset("frey") is load_frey_face; an unknown name is refused with the list of names."""
    assert torch.equal(load_dataset("frey").x, frey.x)
    with pytest.raises(ValueError, match=r"unknown data set 'cifar10'; choose one of \('mnist', 'frey'"):
        load_dataset("cifar10")
    with pytest.raises(ValueError, match="unknown MNIST split 'valid'; choose 'train' or 'test'"):
        load_mnist("valid")


def test_data_root_follows_argument_then_environment(monkeypatch, tmp_path):
    """data_root: the argument, else $VAE_DATA_DIR."""
    monkeypatch.setenv("VAE_DATA_DIR", str(tmp_path / "env"))
    assert data_root() == tmp_path / "env"
    assert data_root(tmp_path / "arg") == tmp_path / "arg"


def test_missing_mnist_names_the_files_and_the_fix(tmp_path):
    """An empty data root gives a FileNotFoundError naming the expected files and VAE_DATA_DIR."""
    with pytest.raises(FileNotFoundError) as err:
        load_mnist("train", root=tmp_path, download=False)
    message = str(err.value)
    assert f"MNIST was not found under the data root {tmp_path}" in message
    assert all(str(tmp_path / "MNIST" / "raw" / f) in message for f in MNIST_FILES)
    assert "VAE_DATA_DIR" in message


def test_missing_or_corrupt_frey_face(tmp_path):
    """A missing Frey Face file names the expected path and VAE_DATA_DIR; a corrupt one fails its MD5 check."""
    with pytest.raises(FileNotFoundError, match=r"FreyFace/frey_rawface\.mat(.|\n)*VAE_DATA_DIR"):
        load_frey_face(root=tmp_path, download=False)
    (tmp_path / "FreyFace").mkdir()
    (tmp_path / "FreyFace" / "frey_rawface.mat").write_bytes(b"not a MATLAB file")
    with pytest.raises(ValueError, match="is corrupt: its MD5 is .*Delete it and download it again"):
        load_frey_face(root=tmp_path, download=False)


def test_unknown_protocol_is_refused():
    """An unknown pixel protocol is refused with the list of protocols."""
    with pytest.raises(ValueError, match=r"unknown pixel protocol 'binary'; choose one of \('dynamic', 'fixed', "
                                         r"'threshold', 'grey'\)"):
        observe(torch.rand(2, 3), "binary")
    assert check_protocol("grey") == "grey"


def test_dynamic_binarization_is_bernoulli_of_the_grey_level():
    """Dynamic draws are binary, differ from call to call, and average to the grey level
    (each of 11 grey levels within 5 standard errors of 20000 draws)."""
    grey = torch.linspace(0, 1, 11).expand(20000, 11)
    g = torch.Generator().manual_seed(0)
    first, second = observe(grey, "dynamic", generator=g), observe(grey, "dynamic", generator=g)
    assert set(first.unique().tolist()) <= {0.0, 1.0}
    assert not torch.equal(first, second)
    stderr = (grey[0] * (1 - grey[0]) / len(grey)).sqrt()
    assert torch.all((first.mean(0) - grey[0]).abs() <= 5 * stderr + 1e-7)
    assert torch.equal(observe(grey, "dynamic", generator=torch.Generator().manual_seed(0)), first)


def test_fixed_binarization_is_one_seeded_draw():
    """'fixed' gives the same binary images for the same seed, other images for another seed."""
    grey = torch.rand(50, 784, generator=torch.Generator().manual_seed(1))
    a, b = observe(grey, "fixed", seed=3), observe(grey, "fixed", seed=3)
    assert torch.equal(a, b) and torch.equal(a, fixed_binarization(grey, seed=3))
    assert not torch.equal(a, observe(grey, "fixed", seed=4))
    assert set(a.unique().tolist()) == {0.0, 1.0}
    assert abs(a.mean().item() - grey.mean().item()) < 0.01


def test_threshold_and_grey_protocols():
    """'threshold' is 1[x > 0.5]; 'grey' is x itself."""
    grey = torch.tensor([[0.0, 0.3, 0.5, 0.51, 1.0]])
    assert torch.equal(observe(grey, "threshold"), torch.tensor([[0.0, 0.0, 0.0, 1.0, 1.0]]))
    assert torch.equal(observe(grey, "grey"), grey)


@pytest.mark.parametrize("shuffle", [True, False])
def test_minibatch_indices_cover_every_index_once(shuffle):
    """Minibatches partition range(n): every index exactly once, all full but the last."""
    batches = list(minibatch_indices(103, 10, generator=torch.Generator().manual_seed(0), shuffle=shuffle))
    assert [len(b) for b in batches] == [10] * 10 + [3]
    everything = torch.cat(batches)
    assert torch.equal(everything.sort().values, torch.arange(103))
    assert torch.equal(everything, torch.arange(103)) != shuffle


def test_minibatch_order_follows_the_generator():
    """The same seed gives the same order; batch_size < 1 is refused."""
    a = torch.cat(list(minibatch_indices(50, 7, generator=torch.Generator().manual_seed(5))))
    b = torch.cat(list(minibatch_indices(50, 7, generator=torch.Generator().manual_seed(5))))
    assert torch.equal(a, b)
    with pytest.raises(ValueError, match="batch_size must be at least 1"):
        next(minibatch_indices(50, 0))

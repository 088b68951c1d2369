"""Data sets as whole tensors on the device, ready for the pixel protocols (:mod:`vae_lib.model.pixels`)
that turn grey levels into the observations x the model sees.

Every split is held as one ``(N, D)`` float tensor of grey levels in [0, 1] on the compute device;
minibatches are drawn by index (:func:`minibatch_indices`), so a training step never touches
Python-level per-sample transforms.
"""

from __future__ import annotations

import gzip
import hashlib
import os
import struct
import zlib
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

import torch


__all__ = [
    "DATA_ENV", "DEFAULT_ROOT", "MNIST_FILES", "MNIST_MD5", "MNIST_GZ_MD5", "FREY_URL", "FREY_FILE", "FREY_MD5",
    "DATASETS", "Split", "random_split", "data_root", "CorruptDataError", "file_md5", "verify_mnist", "load_mnist",
    "load_frey_face", "load_dataset", "minibatch_indices",
]

DATA_ENV = "VAE_DATA_DIR"
DEFAULT_ROOT = Path.home() / ".cache" / "vae_book" / "data"

MNIST_FILES = ("train-images-idx3-ubyte", "train-labels-idx1-ubyte",
               "t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte")
MNIST_MD5 = {  # the uncompressed originals
    "train-images-idx3-ubyte": "6bbc9ace898e44ae57da46a324031adb",
    "train-labels-idx1-ubyte": "a25bea736e30d166cdddb491f175f624",
    "t10k-images-idx3-ubyte": "2646ac647ad5339dbf082846283269ea",
    "t10k-labels-idx1-ubyte": "27ae3e4e09519cfbb04c329615203637",
}
MNIST_GZ_MD5 = {  # the .gz archives torchvision downloads (torchvision.datasets.MNIST.resources)
    "train-images-idx3-ubyte.gz": "f68b3c2dcbeaaa9fbdd348bbdeb94873",
    "train-labels-idx1-ubyte.gz": "d53e105ee54ea40749a09fcbcd1e9432",
    "t10k-images-idx3-ubyte.gz": "9fb629c4189551a2d022fa330f9573f3",
    "t10k-labels-idx1-ubyte.gz": "ec29112dd5afa0611ce80d1b7f02629c",
}
FREY_URL = "https://cs.nyu.edu/~roweis/data/frey_rawface.mat"
FREY_FILE = "frey_rawface.mat"
FREY_MD5 = "5aeb024d42b8a6091f30e5eb18c8a48d"

DATASETS = ("mnist", "frey")


@dataclass(frozen=True)
class Split:
    """One split of a data set: ``x`` grey levels (N, D) in [0, 1] on the device, ``labels`` (N,)
    or None, and ``image_shape`` (rows, columns) for plotting."""

    x: torch.Tensor
    labels: torch.Tensor | None
    image_shape: tuple[int, int]

    def __len__(self) -> int:
        return self.x.shape[0]

    def subset(self, n: int) -> "Split":
        """The first ``n`` examples (all of them when ``n`` exceeds the size)."""
        labels = None if self.labels is None else self.labels[:n]
        return Split(self.x[:n], labels, self.image_shape)


def random_split(split: Split, n_test: int, seed: int = 0) -> tuple[Split, Split]:
    """Split ``split`` at random into (train, test) with ``n_test`` test examples; ``seed`` fixes
    the permutation (drawn on the CPU, so it is the same on every device)."""
    if not 0 < n_test < len(split):
        raise ValueError(f"n_test must be between 1 and {len(split) - 1}, got {n_test}")
    perm = torch.randperm(len(split), generator=torch.Generator().manual_seed(seed)).to(split.x.device)
    parts = perm[n_test:], perm[:n_test]
    return tuple(Split(split.x[i], None if split.labels is None else split.labels[i], split.image_shape)
                 for i in parts)  # type: ignore[return-value]


def data_root(root: str | os.PathLike | None = None) -> Path:
    """Where data sets live: ``root`` if given, else ``$VAE_DATA_DIR``, else ``~/.cache/vae_book/data``."""
    if root is not None:
        return Path(root)
    env = os.environ.get(DATA_ENV)
    return Path(env) if env else DEFAULT_ROOT


def _missing_data_error(name: str, root: Path, expected: list[str], cause: Exception | None) -> FileNotFoundError:
    wanted = "\n  ".join(str(root / e) for e in expected)
    why = f" (download failed: {cause})" if cause else ""
    return FileNotFoundError(
        f"{name} was not found under the data root {root}{why}. Expected:\n  {wanted}\n"
        f"Fix: set the environment variable {DATA_ENV} to a folder that holds these files, pass "
        f"root=..., or allow the download (download=True) on a machine with internet access.")


class CorruptDataError(ValueError):
    """A data file is there but is not the file it should be (truncated, damaged or another file)."""


_MD5_CACHE: dict[tuple[str, int, int, bool], str] = {}


def file_md5(path: Path, gunzip: bool = False) -> str:
    """MD5 of the file at ``path`` (of its decompressed content with ``gunzip``), computed once per
    process for each (path, size, modification time), so checking the data on every load is free."""
    stat = path.stat()
    key = (str(path.resolve()), stat.st_size, stat.st_mtime_ns, gunzip)
    if key not in _MD5_CACHE:
        digest = hashlib.md5()
        with (gzip.open(path, "rb") if gunzip else path.open("rb")) as f:
            for block in iter(lambda: f.read(1 << 20), b""):
                digest.update(block)
        _MD5_CACHE[key] = digest.hexdigest()
    return _MD5_CACHE[key]


def _corrupt_error(path: Path, digest: str, expected: str) -> CorruptDataError:
    return CorruptDataError(
        f"{path} is corrupt: its MD5 is {digest} ({path.stat().st_size} bytes), expected {expected} — the file "
        f"is truncated, damaged or another file. Delete it and download it again (download=True), or replace it "
        f"with a good copy; if the data root is read-only, point {DATA_ENV} at a folder that holds good copies.")


def _verified(path: Path, expected: str, gunzipped: str | None = None) -> bool:
    """Whether ``path`` exists; a CorruptDataError when it does but its MD5 is not ``expected`` (for an
    archive: nor is its content's MD5 ``gunzipped``, so a re-compressed copy of a good file passes)."""
    if not path.is_file():
        return False
    digest = file_md5(path)
    if digest == expected:
        return True
    if gunzipped is not None:
        try:
            if file_md5(path, gunzip=True) == gunzipped:
                return True
        except (OSError, EOFError, zlib.error):  # not gzip, or cut off: corrupt, reported below
            pass
    raise _corrupt_error(path, digest, expected)


def verify_mnist(split: str = "train", root: str | os.PathLike | None = None) -> dict[str, Path]:
    """The MNIST raw files of ``split`` under ``root``, each checked against its known MD5 — the
    uncompressed file (MNIST_MD5) or else torchvision's .gz archive (MNIST_GZ_MD5): {file name: path}
    of the files found. A file that is there but wrong raises CorruptDataError naming it and the fix;
    missing files are left out of the result. Reads only: a read-only data root works."""
    prefix = "train" if split == "train" else "t10k"
    raw = data_root(root) / "MNIST" / "raw"
    found = {}
    for name in (f for f in MNIST_FILES if f.startswith(prefix)):
        if _verified(raw / name, MNIST_MD5[name]):
            found[name] = raw / name
        elif _verified(raw / f"{name}.gz", MNIST_GZ_MD5[f"{name}.gz"], gunzipped=MNIST_MD5[name]):
            found[name] = raw / f"{name}.gz"
    return found


def _read_idx(path: Path) -> torch.Tensor:
    """An IDX file of unsigned bytes (MNIST's format, plain or gzipped): magic 0x0000 08 ndim, ndim
    big-endian sizes, then the values — as a uint8 tensor of those sizes."""
    data = gzip.decompress(path.read_bytes()) if path.suffix == ".gz" else path.read_bytes()
    ndim = data[3]
    shape = struct.unpack(f">{ndim}I", data[4:4 + 4 * ndim])
    return torch.frombuffer(bytearray(data[4 + 4 * ndim:]), dtype=torch.uint8).reshape(shape)


def load_mnist(split: str = "train", root: str | os.PathLike | None = None,
               device: torch.device | str = "cpu", download: bool = True) -> Split:
    """MNIST ``split`` "train" (60000) or "test" (10000) as grey levels (N, 784) in [0, 1] on ``device``,
    read from ``MNIST/raw`` under the data root after checking every file's MD5 (:func:`verify_mnist`);
    missing files are downloaded through ``torchvision.datasets.MNIST`` when ``download``. A read-only
    root with the files works."""
    if split not in ("train", "test"):
        raise ValueError(f"unknown MNIST split {split!r}; choose 'train' or 'test'")
    root = data_root(root)
    expected = [f"MNIST/raw/{f}" for f in MNIST_FILES]
    files = verify_mnist(split, root)
    if len(files) < 2:
        if not download:
            raise _missing_data_error("MNIST", root, expected, None)
        try:
            from torchvision.datasets import MNIST
            MNIST(str(root), train=(split == "train"), download=True)
        except Exception as cause:  # no network, read-only root, ...
            raise _missing_data_error("MNIST", root, expected, cause) from cause
        files = verify_mnist(split, root)
        if len(files) < 2:
            raise _missing_data_error("MNIST", root, expected, None)
    prefix = "train" if split == "train" else "t10k"
    images = _read_idx(files[f"{prefix}-images-idx3-ubyte"])        # (N, 28, 28) uint8
    labels = _read_idx(files[f"{prefix}-labels-idx1-ubyte"]).long()  # (N,)
    x = images.reshape(len(images), -1).to(device=device, dtype=torch.float32) / 255.0
    return Split(x, labels.to(device), (28, 28))


def load_frey_face(root: str | os.PathLike | None = None, device: torch.device | str = "cpu",
                   download: bool = True) -> Split:
    """Frey Face (the paper's second data set): 1965 frames of 28x20 pixels as grey levels
    (1965, 560) in [0, 1] on ``device``, read from ``FreyFace/frey_rawface.mat`` (MD5-checked)."""
    import scipy.io
    from torchvision.datasets.utils import download_url

    root = data_root(root)
    path = root / "FreyFace" / FREY_FILE
    if not path.exists():
        if not download:
            raise _missing_data_error("Frey Face", root, [f"FreyFace/{FREY_FILE}"], None)
        try:
            download_url(FREY_URL, str(root / "FreyFace"), FREY_FILE, FREY_MD5)
        except Exception as cause:
            raise _missing_data_error("Frey Face", root, [f"FreyFace/{FREY_FILE}"], cause) from cause
    _verified(path, FREY_MD5)
    ff = scipy.io.loadmat(path)["ff"]  # (560, 1965) uint8, one column per frame
    x = torch.from_numpy(ff.T.copy()).to(device=device, dtype=torch.float32) / 255.0
    return Split(x, None, (28, 20))


def load_dataset(name: str, split: str = "train", root: str | os.PathLike | None = None,
                 device: torch.device | str = "cpu") -> Split:
    """A data set by name: "mnist" (split "train" or "test") or "frey" (one split: all 1965 frames)."""
    if name == "mnist":
        return load_mnist(split, root, device)
    if name == "frey":
        return load_frey_face(root, device)
    raise ValueError(f"unknown data set {name!r}; choose one of {DATASETS}")


def minibatch_indices(n: int, batch_size: int, generator: torch.Generator | None = None,
                      device: torch.device | str = "cpu", shuffle: bool = True) -> Iterator[torch.Tensor]:
    """Index tensors of minibatches covering range(n) once (the last one may be smaller)."""
    if batch_size < 1:
        raise ValueError(f"batch_size must be at least 1, got {batch_size}")
    order = (torch.randperm(n, generator=generator, device=device) if shuffle
             else torch.arange(n, device=device))
    yield from order.split(batch_size)

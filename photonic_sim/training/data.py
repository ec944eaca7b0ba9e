"""Classification data: scikit-learn's digits (embedded, no network) and MNIST from IDX files.

Features are scaled to [0, 1] (pixel intensity / max), ready for amplitude encoding by the
chip's modulators. Splits are seeded and documented:

* ``digits``: the 1797 8×8 images, shuffled with ``numpy.random.default_rng(seed)``;
  the first ``1 - test_fraction`` go to training, the rest to test (default 25 % test).
* ``mnist``: the IDX image/label pair found in ``directory`` (gzipped or raw; the 10k test
  set ``t10k-*`` or the 60k training set ``train-*``); when only one set is present it is
  split the same way (default 20 % test, i.e. 8000/2000 for the 10k set).
"""

from __future__ import annotations

import functools
import gzip
import math
import struct
import zlib
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:  # annotations only: the IDX checks run without torch
    import torch

_IDX_TYPES = {0x08: np.uint8, 0x09: np.int8, 0x0B: ">i2", 0x0C: ">i4", 0x0D: ">f4", 0x0E: ">f8"}
MAX_IDX_BYTES = 256 << 20  # decompressed; the 60k MNIST training images are 47 MB
MAX_IDX_DIMS = 32  # the header's byte allows 255; numpy arrays have at most 64 (MNIST: 1 and 3)
DIGITS_SIZE = 1797  # scikit-learn's digits
_IDX_TEXT = "an IDX file, raw or gzipped (magic 0x00 0x00 <dtype> <ndim>, big-endian dimensions, then the data)"
_MNIST_PAIR = "t10k-images-idx3-ubyte[.gz] + t10k-labels-idx1-ubyte[.gz], or train-*"


class DataError(ValueError):
    """A data file is missing, corrupt or not what the task needs; ``str()`` is one line
    ``<file>: <what> (allowed: <what is expected>)``, with the parts kept for re-keying."""

    def __init__(self, file: str | Path, what: str, allowed: str = _IDX_TEXT):
        self.file, self.what, self.allowed = str(file), what, allowed
        super().__init__(f"{self.file}: {what} (allowed: {allowed})")


@dataclass(frozen=True)
class Dataset:
    """A seeded train/test split; tensors are float64 features in [0, 1] and int64 labels."""

    name: str
    x_train: torch.Tensor
    y_train: torch.Tensor
    x_test: torch.Tensor
    y_test: torch.Tensor
    num_classes: int

    @property
    def num_features(self) -> int:
        return int(self.x_train.shape[1])


def read_idx(path: str | Path) -> np.ndarray:
    """Read one IDX file (optionally gzipped) into a numpy array of its declared shape.

    Every problem (unreadable, corrupt or truncated gzip, bad magic number, a header that
    does not match the body, more than :data:`MAX_IDX_BYTES`) is a one-line :class:`DataError`."""
    path = Path(path)
    gz = path.suffix == ".gz"
    try:
        with (gzip.open if gz else open)(path, "rb") as fh:
            data = fh.read(MAX_IDX_BYTES + 1)
    except (OSError, EOFError, zlib.error) as exc:  # gzip.BadGzipFile is an OSError
        what = "corrupt or truncated gzip data" if gz and not isinstance(exc, FileNotFoundError) else \
            f"cannot read: {getattr(exc, 'strerror', None) or type(exc).__name__}"
        raise DataError(path, what) from None
    if len(data) > MAX_IDX_BYTES:
        raise DataError(path, f"larger than {MAX_IDX_BYTES >> 20} MiB", f"{_IDX_TEXT}, at most {MAX_IDX_BYTES >> 20} MiB")
    if len(data) < 4 or data[0] != 0 or data[1] != 0 or data[2] not in _IDX_TYPES:
        raise DataError(path, "not an IDX file (bad magic number)")
    ndim = data[3]
    if ndim > MAX_IDX_DIMS:
        raise DataError(path, f"IDX header declares {ndim} dimensions", f"{_IDX_TEXT}, at most {MAX_IDX_DIMS} dimensions")
    if ndim == 0 or len(data) < 4 + 4 * ndim:
        raise DataError(path, f"IDX header declares {ndim} dimensions, the file holds {len(data)} bytes")
    dims = struct.unpack(f">{ndim}I", data[4 : 4 + 4 * ndim])
    dtype = np.dtype(_IDX_TYPES[data[2]])
    expected = math.prod(dims) * dtype.itemsize
    body = data[4 + 4 * ndim :]
    if len(body) != expected:
        raise DataError(path, f"IDX body has {len(body)} bytes, header declares {expected}")
    return np.frombuffer(body, dtype=dtype).reshape(dims)


def _find(directory: Path, stem: str) -> Path | None:
    for name in (stem, stem + ".gz"):
        if (directory / name).is_file():
            return directory / name
    return None


def _mnist_files(directory: str | Path) -> tuple[Path, Path]:
    """The (images, labels) IDX pair in ``directory``: the 60k training set, else the 10k set."""
    directory = Path(directory)
    if not directory.is_dir():
        raise DataError(directory, "mnist directory does not exist", f"a directory holding {_MNIST_PAIR}")
    for prefix in ("train", "t10k"):
        img = _find(directory, f"{prefix}-images-idx3-ubyte")
        lab = _find(directory, f"{prefix}-labels-idx1-ubyte")
        if img and lab:
            return img, lab
    raise DataError(directory, "mnist directory holds no IDX pair", _MNIST_PAIR)


def _read_mnist(img: Path, lab: Path) -> tuple[np.ndarray, np.ndarray]:
    """Images [n, 28, 28] uint8 and labels [n] (0..9) of an IDX pair, checked (DataError)."""
    x, y = read_idx(img), read_idx(lab)
    if x.dtype != np.uint8 or x.ndim != 3 or x.shape[1:] != (28, 28) or len(x) == 0:
        raise DataError(img, f"holds {x.dtype} data of shape {x.shape}", "unsigned bytes (dtype 0x08) of shape (n, 28, 28), n >= 1")
    if y.dtype != np.uint8 or y.ndim != 1:
        raise DataError(lab, f"holds {y.dtype} data of shape {y.shape}", "unsigned bytes (dtype 0x08) of shape (n,)")
    if len(x) != len(y):
        raise DataError(img, f"{len(x)} images but {lab.name} has {len(y)} labels", "as many labels as images")
    if int(y.max()) > 9:
        raise DataError(lab, f"label {int(y.max())} at index {int(np.argmax(y > 9))}", "labels 0..9")
    return x, y


@functools.lru_cache(maxsize=8)
def _check_cached(files: tuple[tuple[str, int, int], ...]) -> int:
    return len(_read_mnist(Path(files[0][0]), Path(files[1][0]))[0])


def check_mnist(directory: str | Path) -> int:
    """The number of examples in ``directory``'s MNIST IDX pair; raise :class:`DataError` unless
    it is readable and consistent (every check of :func:`load_mnist`, run before training; a file
    pair already checked and unchanged, by size and modification time, is not read again)."""
    pair = _mnist_files(directory)
    return _check_cached(tuple((str(p), p.stat().st_size, p.stat().st_mtime_ns) for p in pair))


def split_sizes(n: int, test_fraction: float) -> tuple[int, int]:
    """(train, test) example counts of :func:`_split` for ``n`` examples."""
    n_test = int(round(n * test_fraction))
    return n - n_test, n_test


def _split(name, x, y, num_classes, test_fraction, seed) -> Dataset:
    import torch  # here, so the loader's data-file checks do not import torch
    if not 0.0 < test_fraction < 1.0:
        raise ValueError(f"test_fraction: {test_fraction} is outside (0, 1)")
    n_train, n_test = split_sizes(len(x), test_fraction)
    if n_train < 1 or n_test < 1:
        raise ValueError(f"test_fraction: {test_fraction} splits {len(x)} examples into {n_train} for training and "
                         f"{n_test} for test (allowed: at least one of each)")
    order = np.random.default_rng(seed).permutation(len(x))
    test, train = order[:n_test], order[n_test:]
    xt = torch.as_tensor(x, dtype=torch.float64)
    yt = torch.as_tensor(y, dtype=torch.int64)
    return Dataset(name, xt[train], yt[train], xt[test], yt[test], num_classes)


def load_digits(seed: int = 0, test_fraction: float = 0.25) -> Dataset:
    """scikit-learn's embedded 8×8 digits (64 features, 10 classes)."""
    from sklearn.datasets import load_digits as _load

    bunch = _load()
    return _split("digits", bunch.data / 16.0, bunch.target, 10, test_fraction, seed)


def load_mnist(directory: str | Path, seed: int = 0, test_fraction: float = 0.2) -> Dataset:
    """MNIST from IDX files in ``directory`` (784 features, 10 classes); see module docstring.
    Every problem with the files is a one-line :class:`DataError` (see :func:`check_mnist`)."""
    x, y = _read_mnist(*_mnist_files(directory))
    return _split("mnist", x.reshape(-1, 784).astype(np.float64) / 255.0, y.astype(np.int64), 10, test_fraction, seed)

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

import gzip
import struct
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

_IDX_TYPES = {0x08: np.uint8, 0x09: np.int8, 0x0B: ">i2", 0x0C: ">i4", 0x0D: ">f4", 0x0E: ">f8"}


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
    """Read one IDX file (optionally gzipped) into a numpy array of its declared shape."""
    path = Path(path)
    opener = gzip.open if path.suffix == ".gz" else open
    with opener(path, "rb") as fh:
        data = fh.read()
    if len(data) < 4 or data[0] != 0 or data[1] != 0 or data[2] not in _IDX_TYPES:
        raise ValueError(f"{path}: not an IDX file (bad magic number)")
    ndim = data[3]
    dims = struct.unpack(f">{ndim}I", data[4 : 4 + 4 * ndim])
    dtype = np.dtype(_IDX_TYPES[data[2]])
    expected = int(np.prod(dims)) * dtype.itemsize
    body = data[4 + 4 * ndim :]
    if len(body) != expected:
        raise ValueError(f"{path}: IDX body has {len(body)} bytes, header declares {expected}")
    return np.frombuffer(body, dtype=dtype).reshape(dims)


def _find(directory: Path, stem: str) -> Path | None:
    for name in (stem, stem + ".gz"):
        if (directory / name).is_file():
            return directory / name
    return None


def _split(name, x, y, num_classes, test_fraction, seed) -> Dataset:
    if not 0.0 < test_fraction < 1.0:
        raise ValueError(f"test_fraction: {test_fraction} is outside (0, 1)")
    order = np.random.default_rng(seed).permutation(len(x))
    n_test = int(round(len(x) * test_fraction))
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
    """MNIST from IDX files in ``directory`` (784 features, 10 classes); see module docstring."""
    directory = Path(directory)
    if not directory.is_dir():
        raise ValueError(f"mnist directory: {directory} does not exist")
    for prefix in ("train", "t10k"):
        img = _find(directory, f"{prefix}-images-idx3-ubyte")
        lab = _find(directory, f"{prefix}-labels-idx1-ubyte")
        if img and lab:
            x = read_idx(img).reshape(-1, 784).astype(np.float64) / 255.0
            y = read_idx(lab).astype(np.int64)
            if len(x) != len(y):
                raise ValueError(f"{img}: {len(x)} images but {lab.name} has {len(y)} labels")
            return _split("mnist", x, y, 10, test_fraction, seed)
    raise ValueError(
        f"mnist directory: {directory} holds no IDX pair "
        "(expected t10k-images-idx3-ubyte[.gz] + t10k-labels-idx1-ubyte[.gz], or train-*)"
    )

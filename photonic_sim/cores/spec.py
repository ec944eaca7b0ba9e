"""Plain records describing a network, shared by the TONN mapping and the cost model.

A network is a list of layers. A layer is either

* ``tt``: y = W x with W of shape (∏ out_modes × ∏ in_modes) held as TT cores
  G_k of shape (r_{k-1}, m_k, n_k, r_k), m_k = out_modes[k], n_k = in_modes[k],
  ranks = [1, r_1, ..., r_{d-1}, 1]. Core k runs on photonic hardware as the matrix
  (r_{k-1}·m_k) × (n_k·r_k) (docs/physics.md#tensorized-onn-tonn), i.e. it maps a vector of length n_k·r_k to
  one of length r_{k-1}·m_k;
* ``dense``: y = W x with W of shape (out_features × in_features).

``activation`` is applied electronically after the layer (``none`` for the last).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

ACTIVATIONS = ("none", "relu", "tanh", "sin", "sigmoid")


@dataclass(frozen=True)
class LayerSpec:
    """One layer of a network: ``kind`` "tt" (TT matrix with ``in_modes``/``out_modes`` and
    ``ranks`` r_0 = 1, …, r_d = 1) or "dense" (``in_features`` → ``out_features``), the
    electronic ``activation`` after it and whether it adds a ``bias``."""

    kind: str  # "tt" or "dense"
    in_features: int
    out_features: int
    in_modes: tuple[int, ...] = ()
    out_modes: tuple[int, ...] = ()
    ranks: tuple[int, ...] = ()
    activation: str = "none"
    bias: bool = True

    def __post_init__(self) -> None:
        if self.kind not in ("tt", "dense"):
            raise ValueError(f"layer kind: {self.kind!r} is not one of 'tt', 'dense'")
        if self.activation not in ACTIVATIONS:
            raise ValueError(f"layer activation: {self.activation!r} is not one of {ACTIVATIONS}")
        if self.in_features < 1 or self.out_features < 1:
            raise ValueError("layer in_features/out_features must be >= 1")
        if self.kind == "tt":
            d = len(self.in_modes)
            if d < 1 or len(self.out_modes) != d:
                raise ValueError("tt layer: in_modes and out_modes need the same length >= 1")
            if math.prod(self.in_modes) != self.in_features:
                raise ValueError(
                    f"tt layer: prod(in_modes)={math.prod(self.in_modes)} != in_features={self.in_features}"
                )
            if math.prod(self.out_modes) != self.out_features:
                raise ValueError(
                    f"tt layer: prod(out_modes)={math.prod(self.out_modes)} != out_features={self.out_features}"
                )
            if len(self.ranks) != d + 1 or self.ranks[0] != 1 or self.ranks[-1] != 1:
                raise ValueError(f"tt layer: ranks must have length {d + 1} and start/end with 1")
            if any(r < 1 for r in self.ranks):
                raise ValueError("tt layer: ranks must be >= 1")

    @property
    def num_cores(self) -> int:
        return len(self.in_modes) if self.kind == "tt" else 1

    def core_shapes(self) -> list[tuple[int, int, int, int]]:
        """TT core tensor shapes (r_{k-1}, m_k, n_k, r_k)."""
        if self.kind != "tt":
            return []
        r = self.ranks
        return [(r[k], self.out_modes[k], self.in_modes[k], r[k + 1]) for k in range(self.num_cores)]

    def matrix_shapes(self) -> list[tuple[int, int]]:
        """(rows, cols) of every matrix this layer runs on photonic hardware.

        TT: core k → (r_{k-1}·m_k, n_k·r_k); dense: (out_features, in_features).
        """
        if self.kind == "dense":
            return [(self.out_features, self.in_features)]
        return [(a * m, n * b) for (a, m, n, b) in self.core_shapes()]

    def num_params(self) -> int:
        """Trainable weight entries (TT cores or dense matrix) plus the bias."""
        w = sum(math.prod(s) for s in self.core_shapes()) if self.kind == "tt" else self.in_features * self.out_features
        return w + (self.out_features if self.bias else 0)


@dataclass(frozen=True)
class NetworkSpec:
    """A named stack of :class:`LayerSpec` whose widths chain (what the cost model prices and
    the cores build)."""

    name: str
    layers: tuple[LayerSpec, ...] = field(default_factory=tuple)

    def __post_init__(self) -> None:
        for a, b in zip(self.layers, self.layers[1:]):
            if a.out_features != b.in_features:
                raise ValueError(f"network {self.name}: layer widths do not chain ({a.out_features} -> {b.in_features})")

    @property
    def in_features(self) -> int:
        return self.layers[0].in_features

    @property
    def out_features(self) -> int:
        return self.layers[-1].out_features

    def num_params(self) -> int:
        return sum(layer.num_params() for layer in self.layers)


def blocks_for(rows: int, cols: int, k: int) -> int:
    """Number of k×k photonic blocks tiling a rows×cols matrix (zero padded)."""
    return math.ceil(rows / k) * math.ceil(cols / k)


def tt(in_modes, out_modes, rank, activation="none", bias=True) -> LayerSpec:
    """TT layer with uniform internal rank (an int) or an explicit rank list."""
    in_modes, out_modes = tuple(in_modes), tuple(out_modes)
    ranks = tuple(rank) if not isinstance(rank, int) else (1,) + (rank,) * (len(in_modes) - 1) + (1,)
    return LayerSpec("tt", math.prod(in_modes), math.prod(out_modes), in_modes, out_modes, ranks, activation, bias)


def dense(in_features, out_features, activation="none", bias=True) -> LayerSpec:
    """Dense layer ``in_features → out_features`` (mapped onto k×k SVD blocks by the accelerator)."""
    return LayerSpec("dense", in_features, out_features, activation=activation, bias=bias)


def _presets() -> dict[str, NetworkSpec]:
    return {
        # 20-dim HJB (seed paper): 21 -> 512 -> 512 -> 1, sine, TT rank 2, last layer dense.
        "hjb20": NetworkSpec("hjb20", (
            tt((1, 1, 3, 7), (8, 4, 4, 4), 2, "sin"),
            tt((4, 4, 4, 8), (8, 4, 4, 4), 2, "sin"),
            dense(512, 1),
        )),
        # Older HJB configuration: width 1024, ranks [1,2,1,2,1].
        "hjb20_wide": NetworkSpec("hjb20_wide", (
            tt((1, 1, 3, 7), (8, 4, 8, 4), (1, 2, 1, 2, 1), "sin"),
            tt((4, 8, 4, 8), (8, 4, 8, 4), (1, 2, 1, 2, 1), "sin"),
            dense(1024, 1),
        )),
        # MNIST (seed paper): 784 -> 1024 -> 10, TT rank 6.
        "mnist": NetworkSpec("mnist", (
            tt((7, 4, 4, 7), (8, 4, 4, 8), 6, "relu"),
            tt((8, 4, 4, 8), (1, 5, 2, 1), 6, "none"),
        )),
        # scikit-learn digits (8x8 = 64 pixels): 64 -> 64 -> 10.
        "digits": NetworkSpec("digits", (
            tt((4, 4, 4), (4, 4, 4), 4, "relu"),
            dense(64, 10),
        )),
        # MNIST for the CPU budget: 784 = 28x28 -> 64 -> 10, TT rank 4 (core matrices 8x112 and
        # 32x28: no padded output rows, so phase bias does not drain the signal) + dense 64 -> 10
        # (46 blocks of 8x8, 6330 controls).
        "mnist_small": NetworkSpec("mnist_small", (
            tt((28, 28), (8, 8), 4, "relu"),
            dense(64, 10),
        )),
    }


PRESETS: dict[str, NetworkSpec] = _presets()


def preset(name: str) -> NetworkSpec:
    """The built-in network called ``name`` (see ``PRESETS``); one-line ValueError otherwise."""
    try:
        return PRESETS[name]
    except KeyError:
        raise ValueError(f"model preset {name!r} is not one of {sorted(PRESETS)}") from None

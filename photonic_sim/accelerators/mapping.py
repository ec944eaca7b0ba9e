"""Placement of a network on photonic hardware: stages, schedule and device counts.

Everything here is computed from the :class:`~photonic_sim.cores.spec.NetworkSpec` alone
(``layer.matrix_shapes()``, ``blocks_for``), never from trained weights.

Stages
------
A *stage* is one photonic matrix–vector product kind: a TT core matrix or a dense layer
matrix, listed in execution order. ``passes`` is how many matrix–vector products it does for
one input vector (one *inference*).

* ``dense_onn``: every layer is one stage, TT layers expanded to their dense
  (out_features × in_features) matrix; 1 pass each.
* ``tonn_space`` / ``tonn_time``: a TT layer is contracted right to left (core d−1 first, as
  implied by core k mapping a vector of length n_k·r_k to one of length r_{k−1}·m_k). Core k
  is applied once per index of the modes not yet / already contracted:
  ``passes_k = ∏_{j<k} n_j · ∏_{j>k} m_j``. Dense layers are one stage, 1 pass.

Hardware (k = block size)
-------------------------
* A k×k block is U·Σ·V†: two Clements meshes of k(k−1)/2 MZIs each plus k Σ attenuator MZIs,
  k² MZIs (the *blocked* convention of docs/physics.md#tensorized-onn-tonn).
* Physical blocks H: ``dense_onn`` / ``tonn_space``: the sum of every stage's
  ``blocks_for(rows, cols, k)`` (each block its own hardware); ``tonn_time``: ``num_cores`` P.
* Phase shifters per block: 2 per mesh MZI (θ and φ) · k(k−1) MZIs + the output screen of
  each mesh (2k) + 1 per Σ attenuator (k) = 2k² + k.
* Couplers: 2 per MZI. Crossings: none (Clements meshes couple nearest neighbours only).
* Per block: k modulators and k DACs (one per block input; a block never shares its
  modulators with another block); k TIAs and k ADCs (one per block output); k photodiodes for
  ``intensity`` readout, 2k for ``coherent`` (balanced pair; the pair's difference current
  feeds one TIA / ADC, so TIAs and ADCs stay at k).
* ``mzi_svd`` (the *SVD* convention): an N×M matrix as one unpadded SVD mesh,
  N(N−1)/2 + M(M−1)/2 + min(N, M) MZIs, summed over stages for ``dense_onn`` /
  ``tonn_space``; for ``tonn_time`` each physical core is a k×k SVD mesh, P·k² (the two
  conventions agree for a square k×k core).
* Lasers are counted by the cost model (they follow from the link budget).

Schedule (``tonn_time``)
------------------------
The network's blocks, in execution order, are loaded P at a time (a *program*); G =
⌈B/P⌉ programs per inference. Within a program, the blocks of one stage run in parallel
and the stages touched run one after another, each for its ``passes``; partial sums of a
stage split across programs accumulate in electronics. Symbol periods per inference:
``Σ_programs Σ_{stages in program} passes``. For the space architectures every stage's
blocks run in parallel and stages one after another: ``Σ_stages passes``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace
from typing import Any

from photonic_sim.cores.spec import LayerSpec, NetworkSpec, blocks_for, dense


@dataclass(frozen=True)
class Stage:
    """One photonic matrix (a TT core or a dense layer) in execution order."""

    layer: int  # index of the layer in the network
    core: int | None  # TT core index, None for a dense matrix
    rows: int
    cols: int
    passes: int  # matrix-vector products per inference
    blocks: int  # k×k blocks tiling the (zero-padded) matrix
    col_blocks: int  # ⌈cols/k⌉: partial sums to add per output


def mzi_svd(rows: int, cols: int) -> int:
    """MZIs of an N×M matrix as one SVD mesh: N(N−1)/2 + M(M−1)/2 + min(N, M)."""
    return rows * (rows - 1) // 2 + cols * (cols - 1) // 2 + min(rows, cols)


def tt_passes(in_modes: tuple[int, ...], out_modes: tuple[int, ...], core: int) -> int:
    """Matrix–vector products core ``core`` does per input (right-to-left contraction)."""
    return math.prod(in_modes[:core]) * math.prod(out_modes[core + 1 :])


def stages(model: NetworkSpec, architecture: str, k: int) -> list[Stage]:
    """The network's photonic stages in execution order (see module docstring)."""
    out: list[Stage] = []
    for i, layer in enumerate(model.layers):
        if layer.kind == "dense" or architecture == "dense_onn":
            rows, cols = layer.out_features, layer.in_features
            out.append(Stage(i, None, rows, cols, 1, blocks_for(rows, cols, k), math.ceil(cols / k)))
            continue
        shapes = layer.matrix_shapes()
        for c in reversed(range(layer.num_cores)):
            rows, cols = shapes[c]
            passes = tt_passes(layer.in_modes, layer.out_modes, c)
            out.append(Stage(i, c, rows, cols, passes, blocks_for(rows, cols, k), math.ceil(cols / k)))
    return out


def schedule(stage_list: list[Stage], architecture: str, num_cores: int | None) -> tuple[int, int]:
    """(programs per inference, symbol periods per inference); see module docstring.

    Programs count phase loads per inference: 0 when every block has its own hardware
    (the phases stay put between inferences), else G = ⌈B/P⌉ for ``tonn_time``.
    """
    if architecture != "tonn_time":
        return 0, sum(s.passes for s in stage_list)
    assert num_cores is not None
    programs, periods, free = 0, 0, 0
    for s in stage_list:
        left = s.blocks
        while left > 0:
            if free == 0:
                programs, free = programs + 1, num_cores
            used = min(left, free)
            left, free = left - used, free - used
            periods += s.passes
    return (0 if programs == 1 else programs), periods


def hardware_counts(stage_list: list[Stage], architecture: str, k: int, num_cores: int | None,
                    readout: str) -> dict[str, int]:
    """Device counts except lasers (see module docstring for every formula)."""
    logical = sum(s.blocks for s in stage_list)
    if architecture == "tonn_time":
        assert num_cores is not None
        physical, svd = num_cores, num_cores * k * k
    else:
        physical, svd = logical, sum(mzi_svd(s.rows, s.cols) for s in stage_list)
    channels = physical * k
    return {
        "blocks": physical,
        "logical_blocks": logical,
        "mzi_blocked": physical * k * k,
        "mzi_svd": svd,
        "phase_shifters": physical * (2 * k * k + k),
        "couplers": 2 * physical * k * k,
        "crossings": 0,
        "modulators": channels,
        "dacs": channels,
        "detectors": channels * (2 if readout == "coherent" else 1),
        "tias": channels,
        "adcs": channels,
    }


# ---------------------------------------------------------------- a user's nn.Module

# activation modules (by class name) → LayerSpec activation of the layer they follow
MODULE_ACTIVATIONS = {"ReLU": "relu", "Tanh": "tanh", "Sigmoid": "sigmoid", "Sin": "sin", "Sine": "sin"}


def is_module(model: Any) -> bool:
    """Whether ``model`` looks like a ``torch.nn.Module`` (duck typing: ``named_children``)."""
    return callable(getattr(model, "named_children", None)) and callable(getattr(model, "modules", None))


def spec_from_module(model: Any, name: str | None = None) -> NetworkSpec:
    """The chain of linear layers of a user's ``torch.nn.Module`` as a NetworkSpec.

    Duck typed, so this package never imports ``photonic_sim.nn``: a submodule with a
    ``photonic_spec`` attribute (a LayerSpec: ``photonic_sim.nn`` layers) is taken as it is
    (its children are not visited); a leaf with integer ``in_features`` / ``out_features`` and
    a 2-d ``weight`` of shape (out, in) (``nn.Linear``) is a dense layer, with a bias when its
    ``bias`` is not None. Modules are visited in registration order (``named_children``,
    depth first); an activation module (class name in ``MODULE_ACTIVATIONS``) right after a
    layer sets that layer's activation (it only changes the digital-op count). Activations
    called as functions inside ``forward`` are not seen; other modules (dropout, norms) run
    electronically and are not priced. Raises ValueError (one line) when no layer is found,
    a module is a convolution (weight of 3 or more dimensions) or the widths do not chain.
    """
    layers: list[LayerSpec] = []
    last_was_layer = False

    def visit(module: Any) -> None:
        nonlocal last_was_layer
        for _, child in module.named_children():
            spec = getattr(child, "photonic_spec", None)
            if isinstance(spec, LayerSpec):
                layers.append(spec)
                last_was_layer = True
            elif _is_linear(child):
                layers.append(dense(child.in_features, child.out_features, bias=getattr(child, "bias", None) is not None))
                last_was_layer = True
            elif type(child).__name__ in MODULE_ACTIVATIONS and last_was_layer and layers[-1].activation == "none":
                layers[-1] = replace(layers[-1], activation=MODULE_ACTIVATIONS[type(child).__name__])
                last_was_layer = False
            elif getattr(getattr(child, "weight", None), "ndim", 0) >= 3:
                raise ValueError(f"model: {type(child).__name__} (a convolution) cannot be priced"
                                 " (allowed: nn.Linear, photonic_sim.nn layers, activations)")
            else:
                visit(child)

    bare = isinstance(getattr(model, "photonic_spec", None), LayerSpec) or _is_linear(model)
    visit(_Holder(model) if bare else model)
    label = name or type(model).__name__
    if not layers:
        raise ValueError(f"model: {label} has no nn.Linear or photonic layer"
                         " (allowed: a torch.nn.Module with nn.Linear / photonic_sim.nn layers)")
    try:
        return NetworkSpec(label, tuple(layers))
    except ValueError as exc:
        raise ValueError(f"model: {exc} (allowed: a chain of linear layers, each out_features = next in_features)") from None


class _Holder:
    """A one-child stand-in so a bare layer is visited like a model holding it."""

    def __init__(self, child: Any) -> None:
        self._child = child

    def named_children(self):
        return iter((("0", self._child),))


def _is_linear(m: Any) -> bool:
    fin, fout, w = getattr(m, "in_features", None), getattr(m, "out_features", None), getattr(m, "weight", None)
    return (isinstance(fin, int) and isinstance(fout, int) and getattr(w, "shape", None) is not None
            and tuple(w.shape) == (fout, fin))


def module_phases(model: Any) -> list[Any] | None:
    """The programmed phases of every photonic layer (``photonic_phases``), or None when a
    priced layer has none (a plain nn.Linear: its phases are not known)."""
    found = []
    for m in model.modules():
        if isinstance(getattr(m, "photonic_spec", None), LayerSpec):
            found.append(getattr(m, "photonic_phases", None))
        elif _is_linear(m):
            return None
    return found if found and all(p is not None for p in found) else None

"""``convert(model, ...)``: replace the ``nn.Linear`` layers of a PyTorch model by photonic ones.

    import photonic_sim.nn as pnn
    chip_model = pnn.convert(model, mode="dense", block_size=8)              # ideal chip
    chip_model = pnn.convert(model, mode="tt", tt_shapes={"0": ((4, 4, 4), (4, 4, 4))},
                             ranks=4, devices="silicon_thermo_optic")        # a real card

Every ``nn.Linear`` (found by ``named_modules``, so inside ``nn.Sequential`` or any custom
module) is replaced in place of its parent by

* ``mode="dense"``: a :class:`~photonic_sim.nn.layers.PhotonicLinear` whose phases come from
  the SVD of each k×k block of the trained weight and the Clements decomposition of its U and
  V† (:meth:`photonic_sim.circuits.svd.SVDBlock.from_matrix`); on an ideal chip it computes
  the original layer to rounding;
* ``mode="tt"``: the layers named in ``tt_shapes`` (by their name in ``named_modules`` or
  their index among the model's ``nn.Linear`` layers, as str or int) become
  :class:`~photonic_sim.nn.layers.TTPhotonicLinear` with ``(in_modes, out_modes)``, the
  weight through a TT-SVD truncated to ``ranks`` (an int, a full rank list, or a mapping of
  layer key → either); every other Linear becomes a PhotonicLinear. A TT layer computes the
  TT-reconstructed weight exactly (the truncation is the only approximation).

``devices``, ``seed`` (layer i gets ``seed + i``), ``dtype`` (default: each Linear's weight
dtype) and ``exact_readout`` are passed to the layers. ``inplace=False`` (default) converts
a deep copy and leaves ``model`` untouched. Invalid arguments raise ``ValueError`` with one line.
"""

from __future__ import annotations

import copy
import math
from collections.abc import Mapping, Sequence
from pathlib import Path

import torch
from torch import nn

from photonic_sim.devices.cards import DeviceCard
from photonic_sim.nn.layers import PhotonicLinear, TTPhotonicLinear

MODES = ("dense", "tt")
"""The ``mode`` values of :func:`convert`: every Linear dense (``PhotonicLinear``), or the
layers named in ``tt_shapes`` as ``TTPhotonicLinear`` and the rest dense."""


def convert(model: nn.Module, mode: str = "dense", *, block_size: int = 8,
            tt_shapes: Mapping[str | int, tuple[Sequence[int], Sequence[int]]] | None = None,
            ranks: int | Sequence[int] | Mapping[str | int, int | Sequence[int]] | None = None,
            devices: str | Path | DeviceCard | None = None, seed: int = 0, dtype: torch.dtype | None = None,
            exact_readout: bool = False, inplace: bool = False) -> nn.Module:
    """The model with its ``nn.Linear`` layers replaced by photonic layers (module docstring)."""
    if not isinstance(model, nn.Module):
        raise ValueError(f"model: {type(model).__name__} is not a torch.nn.Module")
    if mode not in MODES:
        raise ValueError(f"mode: {mode!r} is not one of {', '.join(MODES)}")
    if isinstance(block_size, bool) or not isinstance(block_size, int) or block_size < 2:
        raise ValueError(f"block_size: {block_size!r} is out of range (allowed: integer >= 2)")
    linears = [(name, m) for name, m in model.named_modules() if type(m) is nn.Linear]
    if not linears:
        raise ValueError("model: has no nn.Linear layer to convert")
    keys = {name: (name, str(i)) for i, (name, _) in enumerate(linears)}
    shapes = _by_layer("tt_shapes", tt_shapes, keys)
    layer_ranks = ranks if isinstance(ranks, Mapping) else None
    ranks_of = _by_layer("ranks", layer_ranks, keys) if layer_ranks is not None else {}
    if mode == "dense" and (tt_shapes or ranks is not None):
        raise ValueError("tt_shapes/ranks: only for mode='tt' (allowed: absent with mode='dense')")
    if mode == "tt" and not shapes:
        raise ValueError("tt_shapes: mode='tt' needs the TT shapes of at least one layer"
                         " (allowed: {layer name or index: (in_modes, out_modes)})")
    if mode == "tt":
        for name in shapes:
            if name not in ranks_of and (ranks is None or layer_ranks is not None):
                raise ValueError(f"ranks: missing for TT layer {name!r} (allowed: int, rank list, or a mapping)")
    target = model if inplace else copy.deepcopy(model)
    modules = dict(target.named_modules())
    for i, (name, _) in enumerate(linears):
        lin = modules[name]
        common = {"block_size": block_size, "devices": devices, "seed": seed + i, "exact_readout": exact_readout,
                  "dtype": dtype or (torch.float64 if lin.weight.dtype == torch.float64 else torch.float32)}
        if name in shapes:
            in_modes, out_modes = _modes(name, shapes[name], lin)
            r = ranks_of.get(name, ranks)
            try:
                new = TTPhotonicLinear.from_linear(lin, in_modes, out_modes, r, **common)
            except ValueError as exc:
                raise ValueError(f"ranks: layer {name!r}: {exc}") from None
        else:
            new = PhotonicLinear.from_linear(lin, **common)
        if not name:  # the model itself is one nn.Linear
            return new
        parent_name, _, child = name.rpartition(".")
        setattr(target.get_submodule(parent_name) if parent_name else target, child, new)
    return target


def _by_layer(arg: str, value, keys: dict[str, tuple[str, str]]) -> dict:
    """A per-layer mapping keyed by layer name or Linear index → keyed by layer name."""
    if value is None:
        return {}
    if not isinstance(value, Mapping):
        raise ValueError(f"{arg}: must be a mapping of layer name or index to values (got {type(value).__name__})")
    out = {}
    for key, item in value.items():
        found = [name for name, aliases in keys.items() if str(key) in aliases]
        if not found:
            allowed = ", ".join(f"{n!r}/{i}" for n, (_, i) in list(keys.items())[:8])
            raise ValueError(f"{arg}: {str(key)[:40]!r} is not an nn.Linear of the model (allowed: {allowed})")
        out[found[0]] = item
    return out


def _modes(name: str, value, lin: nn.Linear) -> tuple[tuple[int, ...], tuple[int, ...]]:
    try:
        in_modes, out_modes = (tuple(int(m) for m in v) for v in value)
    except (TypeError, ValueError):
        raise ValueError(f"tt_shapes: layer {name!r}: need (in_modes, out_modes), two lists of integers") from None
    if math.prod(in_modes) != lin.in_features or math.prod(out_modes) != lin.out_features or \
            len(in_modes) != len(out_modes):
        raise ValueError(f"tt_shapes: layer {name!r}: modes {in_modes} -> {out_modes} do not factor "
                         f"{lin.in_features} -> {lin.out_features} (allowed: equal lengths, products = features)")
    return in_modes, out_modes


"""Floorplan of the hardware blocks on the die (accelerator card ``layout``) and the thermal
crosstalk it implies across blocks (docs/physics.md#layout).

Block b of n sits at row b // C, column b % C (C = ``layout.columns``, default ⌈√n⌉) with its
origin at (column·pitch, row·pitch), pitch = ``layout.block_pitch`` (m). A heater at local
position p (m, ``PhotonicNetwork.block.positions()`` × the device card's ``mzi_pitch``) of
block b is at origin_b + p. The crosstalk over all heaters is the device card's distance-decay
model (:func:`photonic_sim.devices.crosstalk.crosstalk_matrix`) on these global positions,
sparse, with entries below ``cutoff``·factor dropped; blocks are no longer thermally isolated.
The die area of the blocks is rows·C·pitch² (the floorplan's bounding grid).
"""

from __future__ import annotations

import math

import torch

from photonic_sim.accelerators.cards import AcceleratorCard
from photonic_sim.devices import DeviceCard, crosstalk_from_card

Tensor = torch.Tensor


def _grid(card: AcceleratorCard, num_blocks: int) -> tuple[int, int, float]:
    if card.layout is None:
        raise ValueError("layout: the accelerator card has none (allowed: a layout section with block_pitch)")
    if int(num_blocks) != num_blocks or num_blocks < 1:
        raise ValueError(f"num_blocks: need an integer >= 1, got {num_blocks!r}")
    cols = card.layout.columns or math.ceil(math.sqrt(num_blocks))
    return cols, -(-int(num_blocks) // cols), card.layout.block_pitch


def block_origins(card: AcceleratorCard, num_blocks: int) -> Tensor:
    """Origins [num_blocks, 2] (m, float64) of the blocks on the floorplan (module docstring)."""
    cols, _, pitch = _grid(card, num_blocks)
    b = torch.arange(int(num_blocks))
    return torch.stack(((b % cols).to(torch.float64), (b // cols).to(torch.float64)), 1) * pitch


def heater_positions(local: Tensor, origins: Tensor) -> Tensor:
    """Global heater positions [n·bp, 2] (m) of blocks at ``origins`` [n, 2] with heaters at
    ``local`` [bp, 2] (m) each, block by block (the control vector's order)."""
    local = torch.as_tensor(local, dtype=torch.float64)
    return (origins[:, None, :] + local[None]).reshape(-1, 2)


def layout_crosstalk(local: Tensor, origins: Tensor, device: DeviceCard, *, cutoff: float = 1e-6) -> Tensor:
    """Sparse K [n·bp, n·bp] over every heater of every block, the device card's model on the
    global positions (:func:`heater_positions`), entries below ``cutoff``·factor dropped.
    Blocks must not overlap: the smallest distance between two origins is at least the
    block's extent plus one ``mzi_pitch`` (else ValueError)."""
    local = torch.as_tensor(local, dtype=torch.float64)
    if origins.shape[0] > 1:
        gap = float(torch.pdist(origins).min())
        need = float((local.max(0).values - local.min(0).values).max()) + device.waveguide.mzi_pitch
        if gap < need:
            raise ValueError(f"layout.block_pitch: blocks overlap (allowed: >= {need:.4g} m, the block extent + mzi_pitch)")
    return crosstalk_from_card(heater_positions(local, origins), device, sparse=True, cutoff=cutoff)


def floorplan_area(card: AcceleratorCard, num_blocks: int) -> float:
    """Die area (m²) of the blocks' floorplan: rows · columns · block_pitch²."""
    cols, rows, pitch = _grid(card, num_blocks)
    return rows * cols * pitch * pitch


__all__ = ["block_origins", "floorplan_area", "heater_positions", "layout_crosstalk"]

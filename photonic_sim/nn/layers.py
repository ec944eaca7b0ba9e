"""Photonic linear layers as ``torch.nn.Module``s whose parameters are phases.

A layer is a one-layer :class:`~photonic_sim.cores.photonic.PhotonicNetwork` (blocked SVD
meshes, :mod:`photonic_sim.cores.photonic`) run on a :class:`~photonic_sim.chip.Chip` built
from a device card, so the physics, the mapping and every non-ideality are the chip's own
code, not a copy of it.

* :class:`PhotonicLinear`: y = W x + b with W (out × in) zero padded to k×k blocks, each
  block U·Σ·V† on two Clements meshes and k push-pull attenuators, its partial sums added
  electronically with a fixed per-block gain s_b (the ``block_scales`` buffer).
* :class:`TTPhotonicLinear`: the same with W a tensor train, its cores run one by one on
  k×k blocks (photonic tensor cores, :mod:`photonic_sim.cores.tt`).

State (``state_dict``)
----------------------
``phases`` (``nn.Parameter``, float64, rad): every phase shifter of the layer, blocks in the
order of :meth:`slices` (block row, block column; inside a block U mesh | Σ attenuators | V
mesh, the :class:`~photonic_sim.circuits.svd.SVDBlock` layout). U/V mesh phases live in
[0, 2π) (period 2π); Σ attenuator phases θ in [0, π] (σ = sin(θ/2) ∈ [0, 1]; a value outside
is folded into [0, π] the way the device does: θ mod 2π, then 2π − θ above π, same σ).
``bias`` (``nn.Parameter`` [out], electronic offset added after detection, not a phase
shifter; ``None`` without bias). ``block_scales`` (buffer, float64 [blocks]): the electronic
gains s_b set when weights are programmed, never trained. :meth:`wrap_phases_` brings the
phases back into their ranges after optimizer steps (same function).

Modes
-----
``devices=None``: the *ideal* chip (no quantization, no static errors, no crosstalk, exact
E/O and O/E conversion): the layer computes Σ_b s_b·Re(B_b(phases)·x) + bias exactly.
``devices=<card name | path | DeviceCard>``: the chip of that card with its static errors
drawn from ``seed`` (γ-noise, phase bias, coupler imbalance, thermal crosstalk), phase
quantization, dynamic phase noise, DAC quantization and detector noise + ADC
(``exact_readout=True`` keeps only the phase-domain non-idealities). Outputs are signed, so
the layer's readout is coherent (balanced homodyne).

Gradients: with autograd on, the chip runs its differentiable path: γ-noise, bias and
crosstalk are differentiated exactly; phase and DAC quantization, detector noise and the ADC
pass the gradient straight through (they have no useful derivative). That is what
first-order hardware-aware training needs. Without autograd (``torch.no_grad()``) the chip's
fast path runs (fused C kernels on CPU).

The layers run on the CPU (the chip is not moved by ``Module.to``). Signals run in ``dtype``
(float32 default; float64 for exactness checks); phases and mesh matrices are always float64.
"""

from __future__ import annotations

import math
from collections import OrderedDict
from collections.abc import Sequence
from pathlib import Path

import torch
from torch import nn

from photonic_sim.chip import Chip
from photonic_sim.cores.photonic import PhotonicNetwork
from photonic_sim.cores.spec import LayerSpec, NetworkSpec, dense, tt
from photonic_sim.cores.tt import TTMatrix
from photonic_sim.devices.cards import DeviceCard, load_device_card

Tensor = torch.Tensor
DEFAULT_CARD = "silicon_thermo_optic"


class _PhotonicLayer(nn.Module):
    """Shared machinery of the photonic layers (module docstring)."""

    def __init__(self, spec: LayerSpec, block_size: int, devices, seed: int, dtype: torch.dtype,
                 exact_readout: bool, generator: torch.Generator | None) -> None:
        super().__init__()
        if dtype not in (torch.float32, torch.float64):
            raise ValueError(f"dtype: {dtype} is not torch.float32 or torch.float64")
        self.net = PhotonicNetwork(NetworkSpec(type(self).__name__, (spec,)), block_size)
        self.ideal = devices is None
        card = devices if isinstance(devices, DeviceCard) else load_device_card(DEFAULT_CARD if devices is None
                                                                                else devices)
        self.card_name = card.name
        self.seed = int(seed)
        self.dtype = dtype
        self.chip = Chip(self.net, card, seed=self.seed, ideal=self.ideal, exact_readout=exact_readout,
                         readout="coherent", dtype=dtype)
        nb = self.net.block.num_phases
        self._span = self.net.num_blocks * nb
        self.phases = nn.Parameter(torch.zeros(self._span, dtype=torch.float64))
        if spec.bias:
            self.bias = nn.Parameter(torch.zeros(spec.out_features, dtype=torch.float64))
        else:
            self.register_parameter("bias", None)
        self.register_buffer("block_scales", torch.ones(self.net.num_blocks, dtype=torch.float64))
        sigma = torch.zeros(nb, dtype=torch.bool)
        sigma[self.net.block.slices["S"]] = True
        self.register_buffer("_is_sigma", sigma.repeat(self.net.num_blocks), persistent=False)
        gen = generator if generator is not None else torch.Generator().manual_seed(self.seed)
        self._program(self.net.random_weights(gen)[0])

    # ------------------------------------------------------------------ description
    @property
    def in_features(self) -> int:
        return self.net.in_features

    @property
    def out_features(self) -> int:
        return self.net.out_features

    @property
    def block_size(self) -> int:
        return self.net.block_size

    @property
    def photonic_spec(self) -> LayerSpec:
        """The layer as a :class:`~photonic_sim.cores.spec.LayerSpec` (read by the cost model)."""
        return self.net.spec.layers[0]

    @property
    def photonic_phases(self) -> Tensor:
        """The programmed phase-shifter phases (rad, detached, folded into their ranges):
        what the cost model prices heater power from."""
        return self._folded(self.phases.detach())

    def slices(self) -> OrderedDict[str, slice]:
        """Name → slice of ``phases``: ``core{c}.block({i},{j}).U|S|V`` (c = 0 for dense)."""
        return OrderedDict((name.split(".", 1)[1], s) for name, s in self.net.slices().items()
                           if not name.endswith(".bias"))

    def phase_periods(self) -> Tensor:
        """Period of each entry of ``phases`` (float64): 2π for U/V, π for Σ."""
        return self.net.phase_periods()[: self._span]

    def extra_repr(self) -> str:
        s = self.photonic_spec
        mode = "ideal" if self.ideal else f"devices={self.card_name}, seed={self.seed}"
        return (f"in_features={s.in_features}, out_features={s.out_features}, block_size={self.block_size}, "
                f"bias={s.bias}, {mode}, dtype={self.dtype}")

    # ------------------------------------------------------------------ programming
    def _program(self, weight) -> None:
        """Set phases, bias and block gains from ideal weights (SVD + Clements per block)."""
        w, b = weight
        ctrl = self.net.from_weights([(w, b if self.bias is not None else None)])
        with torch.no_grad():
            self.phases.copy_(ctrl[: self._span])
            if self.bias is not None:
                self.bias.copy_(ctrl[self._span :])
            self.block_scales.copy_(self.net.block_scales)

    def wrap_phases_(self) -> _PhotonicLayer:
        """Bring ``phases`` back into [0, 2π) (U/V) and [0, π] (Σ, folded); same function."""
        with torch.no_grad():
            self.phases.copy_(self._folded(self.phases))
        return self

    def _folded(self, phases: Tensor) -> Tensor:
        two_pi = 2.0 * math.pi
        wrapped = torch.remainder(phases, two_pi)
        return torch.where(self._is_sigma & (wrapped > math.pi), two_pi - wrapped, wrapped)

    def _control(self) -> Tensor:
        """The chip's control vector: phases (Σ folded, differentiably) then the bias."""
        ph = torch.where(self._is_sigma, self._folded(self.phases), self.phases)
        return ph if self.bias is None else torch.cat((ph, self.bias.to(ph.dtype)))

    def ideal_weight(self) -> Tensor:
        """The dense weight [out, in] the phases realise on an ideal chip (float64, detached)."""
        self.net.block_scales = self.block_scales
        w, _ = self.net.weights(self._control().detach())[0]
        return w.to_dense() if isinstance(w, TTMatrix) else w

    # ------------------------------------------------------------------ forward
    def forward(self, x: Tensor) -> Tensor:
        """y[..., out] for x[..., in]: one chip measurement of all rows; output in x's dtype."""
        if x.shape[-1] != self.in_features:
            raise ValueError(f"x: last dimension must be {self.in_features}, got {tuple(x.shape)}")
        lead = x.shape[:-1]
        ctrl = self._control()
        self.net.block_scales = self.block_scales  # follows load_state_dict / .double()
        differentiable = torch.is_grad_enabled() and (ctrl.requires_grad or x.requires_grad)
        y = self.chip.measure(x.reshape(-1, self.in_features).to(self.dtype), ctrl, differentiable=differentiable)
        return y.reshape(*lead, self.out_features).to(x.dtype)


class PhotonicLinear(_PhotonicLayer):
    """Dense layer y = W x + b on blocked SVD meshes (module docstring).

    ``block_size`` k (≥ 2), ``devices`` (None: ideal chip; a device card name, path or
    ``DeviceCard``), ``seed`` (static device errors and per-query noise), ``dtype`` (signal
    precision), ``exact_readout`` (keep only the phase-domain non-idealities), ``generator``
    (random initial weights, N(0, 2/(in+out)); default seeded by ``seed``).
    Program trained weights with :meth:`from_linear` or :meth:`set_weight`.
    """

    def __init__(self, in_features: int, out_features: int, bias: bool = True, *, block_size: int = 8,
                 devices: str | Path | DeviceCard | None = None, seed: int = 0, dtype: torch.dtype = torch.float32,
                 exact_readout: bool = False, generator: torch.Generator | None = None) -> None:
        super().__init__(dense(int(in_features), int(out_features), bias=bool(bias)), block_size, devices, seed,
                         dtype, exact_readout, generator)

    def set_weight(self, weight: Tensor, bias: Tensor | None = None) -> PhotonicLinear:
        """Program the phases so the ideal chip computes ``weight`` [out, in] (+ ``bias``)."""
        w = torch.as_tensor(weight).detach().to(torch.float64)
        b = None if bias is None else torch.as_tensor(bias).detach().to(torch.float64)
        self._program((w, b))
        return self

    @classmethod
    def from_linear(cls, linear: nn.Module, **kwargs) -> PhotonicLinear:
        """A PhotonicLinear programmed with an ``nn.Linear``'s weight and bias (SVD + Clements)."""
        layer = cls(linear.in_features, linear.out_features, linear.bias is not None, **kwargs)
        return layer.set_weight(linear.weight, linear.bias)


class TTPhotonicLinear(_PhotonicLayer):
    """Tensor-train layer on photonic tensor cores: W (∏out_modes × ∏in_modes) as TT cores G_k
    [r_{k-1}, m_k, n_k, r_k], core k run as the (r_{k-1}·m_k) × (n_k·r_k) matrix on k×k SVD
    blocks (layout of :mod:`photonic_sim.cores.tt`). ``ranks``: an int (every internal rank)
    or the full list [1, r_1, …, r_{d-1}, 1]. Other arguments as :class:`PhotonicLinear`;
    random initial cores ``TTMatrix.random`` (Glorot variance of the dense W).
    """

    def __init__(self, in_modes: Sequence[int], out_modes: Sequence[int], ranks: int | Sequence[int],
                 bias: bool = True, *, block_size: int = 8, devices: str | Path | DeviceCard | None = None,
                 seed: int = 0, dtype: torch.dtype = torch.float32, exact_readout: bool = False,
                 generator: torch.Generator | None = None) -> None:
        super().__init__(tt(in_modes, out_modes, ranks, bias=bool(bias)), block_size, devices, seed, dtype,
                         exact_readout, generator)

    def set_weight(self, weight: Tensor | TTMatrix, bias: Tensor | None = None) -> TTPhotonicLinear:
        """Program the cores: a ``TTMatrix`` of the layer's modes/ranks as it is, or a dense
        [out, in] weight through a TT-SVD truncated to the layer's ranks
        (``TTMatrix.from_dense``; :meth:`ideal_weight` then gives the TT-reconstructed W)."""
        s = self.photonic_spec
        if not isinstance(weight, TTMatrix):
            w = torch.as_tensor(weight).detach().to(torch.float64)
            weight = TTMatrix.from_dense(w, s.in_modes, s.out_modes, ranks=s.ranks)
        b = None if bias is None else torch.as_tensor(bias).detach().to(torch.float64)
        self._program((weight, b))
        return self

    @classmethod
    def from_linear(cls, linear: nn.Module, in_modes: Sequence[int], out_modes: Sequence[int],
                    ranks: int | Sequence[int], **kwargs) -> TTPhotonicLinear:
        """A TTPhotonicLinear programmed from an ``nn.Linear`` by a TT-SVD of its weight."""
        layer = cls(in_modes, out_modes, ranks, linear.bias is not None, **kwargs)
        return layer.set_weight(linear.weight, linear.bias)

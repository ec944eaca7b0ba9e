"""Networks mapped onto k×k photonic SVD blocks (TONN and the dense baseline).

Mapping (docs/physics.md#tensorized-onn-tonn)
-------------------
Every matrix a layer runs on hardware (the TT core matrices M_k of
:mod:`photonic_sim.cores.tt`, or a dense layer's W) of shape R×C is zero padded to
⌈R/k⌉×⌈C/k⌉ whole k×k blocks (``spec.blocks_for``). Block (i, j) is an
``SVDBlock(k, k)`` with its own electronic gain s_b (a digital scale applied after
detection; fixed when weights are mapped, never trained). A matrix-vector product is

    y[i-th k rows] = Σ_j s_(i,j) · detect(B_(i,j)(phases) · encode(x[j-th k cols]))

i.e. each block output is detected on its own and the partial sums over block columns are
added electronically. B_(i,j)(phases) is the block's transfer matrix from
``SVDBlock.matrix`` (built by the same mesh-column code as ``SVDBlock.apply``, so the same
physics, non-idealities included): forming the k×k matrix once per block and phase setting,
then one batched matmul over all vectors, is ~80× faster in torch than propagating every
vector column by column through the meshes. Padded input modes carry no light (the encoded
field is zero padded); padded output rows are detected and dropped. A TT layer applies its
cores from the last to the first (``tt.contract``); between cores the state is detected,
reshaped electronically and re-encoded. After a layer's last core its bias is added and its activation applied,
both electronically. Without autograd, a float64 sine layer on the CPU does both in one pass of
``_fused_act.bias_sin_`` (the package's own vector sine, within 2 ulp of the exact value, where
torch's ``sin`` is within 0.5 ulp; 6× faster), else torch's ``add_`` and in-place activation.

Batching
--------
``forward`` takes P phase settings × B inputs as one batched call. On the fused CPU path
(``_matvec``) it runs chunks of ≈ ``_FUSED_CHUNK_ELEMENTS`` / (B · ``_widest``) settings
(at most ⌈P / T⌉ with T = ``torch.get_num_threads()`` > 1), each building its own block
matrices and running the layers, so a chunk's signal states stay small enough for the cache
and for the allocator's reused heap; one pass over all settings at once spent about half
its time page-faulting fresh memory for states of hundreds of MB (HJB polish call, 256
settings × 1851 inputs: 4.2 s → 1.8 s on one thread). With T > 1 the chunks run on T worker
threads (torch ops and the C kernels release the GIL), each kernel call on one thread; a
single chunk instead shares its kernel calls' work among T threads. Every matrix's noise key
is drawn first, in matrix order, and shared by the chunks, and the kernel numbers its noise
streams by the setting's index in the whole call, so readings, ledger and generator state
equal those of one pass bit for bit, whatever T. The torch path (autograd, GPU, no kernel)
runs chunks of ≈ ``_TORCH_CHUNK_ELEMENTS`` / (B · ``_widest``) settings one after another
(a call within one chunk, as every ZO step's, is a single pass), drawing each chunk's noise
in turn, so that a call with thousands of settings (a CGE step over every control) fits a
GPU's memory: one pass of the 8515 settings of the MNIST TT network's CGE step asked for a
22 GiB temporary on an H200.

Control vector
--------------
ONE flat real vector ``phases[..., num_phases]``: all blocks' phases (ordered by layer,
core k = 0..d-1, block row, block column; inside a block the ``SVDBlock`` order U, S, V),
then every layer's bias (layers with ``bias=True`` in order). The biases are electronic
controls (digital offsets added after detection), not phase shifters: ``is_phase`` is False
there, their period is NaN and their position NaN. ``slices()`` names every piece,
``mask(kind)`` selects subsets.

Multiplexing
------------
``space``: every block has its own hardware. ``time``: P = ``num_cores`` physical blocks;
block b (control-vector order) runs on hardware block ``b % P`` in programming round
``b // P``. Both compute the same function for the same phases; they differ in hardware
counts, in re-programmings per inference, in positions (time-multiplexed blocks that share
hardware share positions; ``phase_round`` says which entries are programmed together), and
in per-device imperfections (``kappa``/``loss_db`` are given per hardware block).
"""

from __future__ import annotations

import functools
import math
import threading
from collections import OrderedDict
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import NamedTuple

import torch

from photonic_sim.circuits.svd import SVDBlock
from photonic_sim.cores import _fused_act, _fused_read
from photonic_sim.cores.spec import LayerSpec, NetworkSpec, dense
from photonic_sim.cores.tt import TTMatrix, contract

Tensor = torch.Tensor
LayerWeights = tuple["TTMatrix | Tensor", "Tensor | None"]

_ACTIVATIONS: dict[str, Callable[[Tensor], Tensor]] = {
    "none": lambda h: h,
    "relu": torch.relu,
    "tanh": torch.tanh,
    "sin": torch.sin,
    "sigmoid": torch.sigmoid,
}
# The same, in place (no autograd): the same values, no new tensor for a layer's output.
_ACTIVATIONS_INPLACE: dict[str, Callable[[Tensor], Tensor]] = {
    "none": lambda h: h,
    "relu": torch.relu_,
    "tanh": torch.tanh_,
    "sin": torch.sin_,
    "sigmoid": torch.sigmoid_,
}
_MASK_KINDS = ("phase", "bias", "U", "S", "V", "tt", "dense")
# Most complex entries of per-block output fields held at once; above it a matrix's block rows
# are processed in chunks (same result, bounded memory).
_CHUNK_ELEMENTS = 1 << 23
# Fused path: settings per chunk ≈ this / (inputs × ``_widest``), so a chunk's signal states
# stay in cache-sized, heap-reused buffers (module docstring, "Batching").
_FUSED_CHUNK_ELEMENTS = 1 << 21
# Torch path (a GPU, autograd, or no C compiler): settings per chunk ≈ this / (inputs × ``_widest``),
# so a call with many settings (CGE: d + 1 of them) stays within memory; a call within one chunk
# is one pass, as before (module docstring, "Batching").
_TORCH_CHUNK_ELEMENTS = 1 << 26


class HardwareMatrix(NamedTuple):
    """One matrix run on photonic hardware: layer index, core index (0 for dense), shape, blocks."""

    layer: int
    core: int
    rows: int
    cols: int
    blocks: int


class _Placed(NamedTuple):
    """A hardware matrix and where its blocks live in the control vector."""

    layer: int
    core: int
    rows: int
    cols: int
    block_rows: int
    block_cols: int
    first_block: int
    start: int  # first control-vector entry

    @property
    def num_blocks(self) -> int:
        return self.block_rows * self.block_cols


class _Conversion(NamedTuple):
    """How one forward converts signals: ``encode(v)`` (E/O), ``detect(field, final)`` (O/E),
    and ``chain``, the readout chain the fused kernel may run instead (None: torch path only)."""

    encode: Callable[[Tensor], Tensor]
    detect: Callable[[Tensor, bool], Tensor]
    chain: object | None


class PhotonicNetwork:
    """A NetworkSpec mapped onto k×k SVD blocks (module docstring).

    Attributes: ``spec``, ``block_size`` k, ``block`` (the ``SVDBlock(k, k)``),
    ``multiplexing``, ``num_blocks`` (distinct blocks of the model), ``num_hw_blocks``
    (hardware blocks: num_blocks for space, num_cores for time), ``programs_per_inference``
    (phase programmings per pass: 1 for space, ⌈num_blocks / num_cores⌉ for time),
    ``num_phases`` (control-vector length), ``is_phase`` (bool [num_phases]),
    ``phase_round`` (long [num_phases]: programming round of each phase, -1 for biases),
    ``hw_block`` (long [num_blocks]: hardware block of each block), ``block_scales``
    (float64 [num_blocks]: the electronic gains s_b, set by ``from_weights``; ones before).
    """

    def __init__(self, spec: NetworkSpec, block_size: int = 8, multiplexing: str = "space", num_cores: int | None = None):
        if not spec.layers:
            raise ValueError("spec: network has no layers")
        if block_size < 2:
            raise ValueError(f"block_size: must be >= 2 (got {block_size})")
        if multiplexing not in ("space", "time"):
            raise ValueError(f"multiplexing: {multiplexing!r} is not one of 'space', 'time'")
        self.spec = spec
        self.block_size = k = int(block_size)
        self.block = SVDBlock(k, k)
        self.multiplexing = multiplexing
        nb = self.block.num_phases

        self._mats: list[_Placed] = []
        offset = nblocks = 0
        for li, layer in enumerate(spec.layers):
            for ci, (rows, cols) in enumerate(layer.matrix_shapes()):
                br, bc = math.ceil(rows / k), math.ceil(cols / k)
                self._mats.append(_Placed(li, ci, rows, cols, br, bc, nblocks, offset))
                nblocks += br * bc
                offset += br * bc * nb
        self.num_blocks = nblocks
        self._bias: dict[int, slice] = {}
        for li, layer in enumerate(spec.layers):
            if layer.bias:
                self._bias[li] = slice(offset, offset + layer.out_features)
                offset += layer.out_features
        self.num_phases = offset

        if multiplexing == "space":
            if num_cores is not None:
                raise ValueError("num_cores: only for multiplexing='time'")
            self.num_hw_blocks = nblocks
        else:
            p = 1 if num_cores is None else int(num_cores)
            if not 1 <= p <= nblocks:
                raise ValueError(f"num_cores: must be in [1, {nblocks}] (the number of blocks), got {num_cores}")
            self.num_hw_blocks = p
        self.programs_per_inference = math.ceil(nblocks / self.num_hw_blocks)
        self.hw_block = torch.arange(nblocks) % self.num_hw_blocks  # hardware block of each block
        self.block_scales = torch.ones(nblocks, dtype=torch.float64)

        self._slices = self._build_slices()
        # per entry: phase shifter or bias, programming round (-1 for biases), part 0/1/2 = U/S/V, layer
        self.is_phase = torch.zeros(self.num_phases, dtype=torch.bool)
        self.is_phase[: nblocks * nb] = True
        block_of = torch.full((self.num_phases,), -1, dtype=torch.long)
        block_of[: nblocks * nb] = torch.arange(nblocks).repeat_interleave(nb)
        self.phase_round = torch.where(block_of >= 0, block_of // self.num_hw_blocks, -1)
        self._part = torch.full((self.num_phases,), -1, dtype=torch.long)
        for i, sl in enumerate(self.block.slices.values()):
            self._part[: nblocks * nb].view(nblocks, nb)[:, sl] = i
        self._layer_of = torch.zeros(self.num_phases, dtype=torch.long)  # meaningful on phases only
        for m in self._mats:
            self._layer_of[m.start : m.start + m.num_blocks * nb] = m.layer

    # ----------------------------------------------------------------- layout
    @property
    def in_features(self) -> int:
        return self.spec.in_features

    @property
    def out_features(self) -> int:
        return self.spec.out_features

    def hardware_matrices(self) -> list[HardwareMatrix]:
        """Every hardware matrix as (layer, core, rows R, cols C, k×k blocks)."""
        return [HardwareMatrix(m.layer, m.core, m.rows, m.cols, m.num_blocks) for m in self._mats]

    def _build_slices(self) -> OrderedDict[str, slice]:
        out: OrderedDict[str, slice] = OrderedDict()
        for m in self._mats:
            for b in range(m.num_blocks):
                base = m.start + b * self.block.num_phases
                name = f"layer{m.layer}.core{m.core}.block({b // m.block_cols},{b % m.block_cols})"
                for part, s in self.block.slices.items():
                    out[f"{name}.{part}"] = slice(base + s.start, base + s.stop)
        for li, s in self._bias.items():
            out[f"layer{li}.bias"] = s
        return out

    def slices(self) -> OrderedDict[str, slice]:
        """Name → slice of the control vector, in vector order, covering it exactly once.

        Names: ``layer{l}.core{c}.block({i},{j}).U|S|V`` (c = 0 for a dense layer; i block
        row, j block column) and ``layer{l}.bias``.
        """
        return OrderedDict(self._slices)

    def mask(self, kind: str) -> Tensor:
        """Bool [num_phases] selecting ``kind``: 'phase' (all phase shifters), 'bias',
        'U' / 'S' / 'V' (that part of every block), 'tt' (phases of TT-layer blocks),
        'dense' (phases of dense-layer blocks)."""
        if kind not in _MASK_KINDS:
            raise ValueError(f"mask kind: {kind!r} is not one of {_MASK_KINDS}")
        if kind == "phase":
            return self.is_phase.clone()
        if kind == "bias":
            return ~self.is_phase
        if kind in ("U", "S", "V"):
            return self._part == list(self.block.slices).index(kind)
        tt_layer = torch.tensor([layer.kind == "tt" for layer in self.spec.layers])
        return self.is_phase & (tt_layer[self._layer_of] == (kind == "tt"))

    def phase_periods(self) -> Tensor:
        """Period of each entry [num_phases] (float64): the SVDBlock periods (2π for U/V,
        π for S), NaN for biases (electronic, not periodic)."""
        per_block = torch.as_tensor(self.block.phase_periods(), dtype=torch.float64)
        out = torch.full((self.num_phases,), math.nan, dtype=torch.float64)
        out[self.is_phase] = per_block.repeat(self.num_blocks)
        return out

    def positions(self) -> Tensor:
        """Phase-shifter positions [num_phases, 2] (float64, pitch units); NaN for biases.

        Each hardware block keeps ``SVDBlock.positions()`` (shifted to start at 0); hardware
        blocks sit row by row on a grid of ⌈√num_hw_blocks⌉ columns, two pitches apart; block b uses hardware block ``hw_block[b]``, so time-multiplexed blocks
        sharing hardware share positions (use ``phase_round`` to keep only entries that are
        programmed at the same time).
        """
        local = torch.as_tensor(self.block.positions(), dtype=torch.float64)
        local = local - local.min(0).values
        size = local.max(0).values + 2.0
        cols = math.ceil(math.sqrt(self.num_hw_blocks))
        hw = self.hw_block.to(torch.float64)
        origin = torch.stack((torch.remainder(hw, cols), torch.div(hw, cols, rounding_mode="floor")), -1) * size
        out = torch.full((self.num_phases, 2), math.nan, dtype=torch.float64)
        out[self.is_phase] = (origin[:, None, :] + local[None]).reshape(-1, 2)
        return out

    # ---------------------------------------------------------------- mapping
    def _hardware_weights(self, weights: Sequence[LayerWeights]) -> list[Tensor]:
        """Per hardware matrix, the real float64 matrix it must realise."""
        if len(weights) != len(self.spec.layers):
            raise ValueError(f"weights: need one (w, b) per layer ({len(self.spec.layers)}), got {len(weights)}")
        out = []
        for li, (layer, (w, _)) in enumerate(zip(self.spec.layers, weights)):
            if layer.kind == "tt":
                shape = (layer.in_modes, layer.out_modes, layer.ranks)
                if not isinstance(w, TTMatrix) or (w.in_modes, w.out_modes, w.ranks) != shape:
                    raise ValueError(f"weights[{li}]: tt layer needs a TTMatrix with modes/ranks of the spec")
                out += [m.detach().to(torch.float64) for m in w.core_matrices()]
            else:
                w = w.to_dense() if isinstance(w, TTMatrix) else w
                if tuple(w.shape) != (layer.out_features, layer.in_features):
                    raise ValueError(f"weights[{li}]: dense layer needs shape {(layer.out_features, layer.in_features)}")
                out.append(w.detach().to(torch.float64))
        return out

    def from_weights(self, weights: Sequence[LayerWeights]) -> Tensor:
        """Map ideal weights onto blocks → control vector float64 [num_phases].

        ``weights[l] = (w, b)``: w a TTMatrix (tt layer; modes and ranks of the spec) or a
        Tensor [out, in] (dense layer; a TTMatrix is accepted and densified), b a Tensor
        [out] or None (zeros). Sets ``block_scales`` (s_b) as a side effect, so that
        ``weights(from_weights(ws))`` equals ws and ``forward`` computes the mapped network.
        """
        k, nb = self.block_size, self.block.num_phases
        phases = torch.zeros(self.num_phases, dtype=torch.float64)
        scales = torch.ones(self.num_blocks, dtype=torch.float64)
        for m, w in zip(self._mats, self._hardware_weights(weights)):
            padded = torch.zeros(m.block_rows * k, m.block_cols * k, dtype=torch.float64)
            padded[: m.rows, : m.cols] = w
            blocks = padded.reshape(m.block_rows, k, m.block_cols, k).transpose(1, 2).reshape(-1, k, k)
            ph, s = self.block.from_matrix(blocks)
            phases[m.start : m.start + m.num_blocks * nb] = torch.as_tensor(ph).reshape(-1)
            scales[m.first_block : m.first_block + m.num_blocks] = torch.as_tensor(s)
        for li, (layer, (_, b)) in enumerate(zip(self.spec.layers, weights)):
            if b is None:
                continue
            if not layer.bias:
                raise ValueError(f"weights[{li}]: layer has bias=False but a bias was given")
            if tuple(b.shape) != (layer.out_features,):
                raise ValueError(f"weights[{li}]: bias needs shape ({layer.out_features},)")
            phases[self._bias[li]] = b.detach().to(torch.float64)
        self.block_scales = scales
        return phases

    def random_weights(self, generator: torch.Generator) -> list[LayerWeights]:
        """Random ideal weights: TT layers ``TTMatrix.random`` (Glorot variance of the dense
        equivalent), dense layers N(0, 2/(in+out)), biases U(-1/√in, 1/√in) (torch Linear)."""
        out: list[LayerWeights] = []
        for layer in self.spec.layers:
            fan_in, fan_out = layer.in_features, layer.out_features
            if layer.kind == "tt":
                w = TTMatrix.random(layer.in_modes, layer.out_modes, layer.ranks, generator)
            else:
                std = math.sqrt(2.0 / (fan_in + fan_out))
                w = std * torch.randn((fan_out, fan_in), generator=generator, dtype=torch.float64)
            b = None
            if layer.bias:
                b = (2.0 * torch.rand(fan_out, generator=generator, dtype=torch.float64) - 1.0) / math.sqrt(fan_in)
            out.append((w, b))
        return out

    def init_phases(self, generator: torch.Generator) -> Tensor:
        """``from_weights(random_weights(generator))``: control vector float64 [num_phases]."""
        return self.from_weights(self.random_weights(generator))

    def weights(self, phases: Tensor) -> list[LayerWeights]:
        """Ideal weights realised by ``phases`` [num_phases] (no noise, ideal couplers).

        With the default (identity) encoding of a real input and coherent readout
        ``field.real``, a block acts as Re(s_b · B(phases)), so these are the real parts of
        the scaled block matrices, reassembled (padding dropped) into TT cores or W.
        """
        if phases.shape != (self.num_phases,):
            raise ValueError(f"phases: need shape ({self.num_phases},), got {tuple(phases.shape)}")
        k = self.block_size
        mats = []
        for m in self._mats:
            ph = phases[m.start : m.start + m.num_blocks * self.block.num_phases].reshape(m.num_blocks, -1)
            s = self.block_scales[m.first_block : m.first_block + m.num_blocks].to(phases.dtype)
            blocks = (self.block.matrix(ph).real * s[:, None, None]).reshape(m.block_rows, m.block_cols, k, k)
            mats.append(blocks.transpose(1, 2).reshape(m.block_rows * k, m.block_cols * k)[: m.rows, : m.cols])
        out: list[LayerWeights] = []
        for li, layer in enumerate(self.spec.layers):
            own = [mat for m, mat in zip(self._mats, mats) if m.layer == li]
            w = TTMatrix.from_core_matrices(own, layer.in_modes, layer.out_modes) if layer.kind == "tt" else own[0]
            out.append((w, phases[self._bias[li]] if layer.bias else None))
        return out

    # ---------------------------------------------------------------- forward
    def forward(
        self,
        x: Tensor,
        phases: Tensor,
        *,
        readout=None,
        differentiable: bool = False,
        encode: Callable[[Tensor], Tensor] | None = None,
        detect: Callable[[Tensor, bool], Tensor] | None = None,
        kappa: Tensor | float | None = None,
        loss_db: Tensor | float | None = None,
        normalize: bool = False,
        final_intensity: bool = False,
        dtype: torch.dtype | None = None,
        p0: int = 0,
    ) -> Tensor:
        """Network output for inputs x[B, in_features] (real) under realised phases.

        ``phases`` [P, num_phases] (or [num_phases]) → out [P, B, out_features] (or
        [B, out_features]), real, in the dtype of ``phases`` (float64 → complex128 fields,
        float32 → complex64). One batched pass over all P settings and B inputs;
        differentiable in ``phases``. Per-setting inputs x[P, B, in_features] (with phases
        [P, num_phases]): setting p runs on x[p] only.

        * ``readout``: the chip's readout chain (``photonic_sim.devices.ReadoutChain``, or an
          object with its ``encode``, ``detect``, ``kernel_readout``, ``dac_levels`` and
          ``tally``), which does every electronic→optical step (DAC) and optical→electronic step
          (detector, TIA, ADC) of this forward and counts them. Then, on CPU without autograd
          and with the kernel available, each matrix runs as ONE fused C call (block floating
          point + DAC + matvec + readout + gains + block-column sum,
          ``photonic_sim.cores._fused_read``), which draws its own detector noise (the
          distribution of ``readout.detect``'s, another realisation); otherwise the chain's
          ``encode``/``detect`` are called. ``differentiable``: the chain passes gradients
          straight through its quantizers, and the torch path always runs.
        * ``encode(v) -> field`` / ``detect(field, final) -> real`` (only without ``readout``):
          plain E/O conversion of a real vector [..., C] (default: cast to complex) and O/E
          conversion of each block's output field [..., k] (default: ideal coherent readout
          ``field.real`` — the intermediates of a TT contraction are signed, so they need
          coherent/balanced detection); ``final`` is True only for the network's last optical
          pass. The torch path runs.
        * ``kappa`` / ``loss_db``: coupler ratios / MZI insertion loss (dB) passed to
          ``SVDBlock.matrix``; a scalar (every coupler / MZI), or a tensor over hardware
          blocks: kappa [num_hw_blocks, block.num_mzis, 2], loss_db [num_hw_blocks,
          block.num_mzis] (MZIs in the block's U, Σ, V order); block b sits on hardware
          block ``hw_block[b]``.
        * ``normalize``: block floating point done by the electronic controller — every
          vector is divided by its largest magnitude before E/O conversion (so it fits the
          DAC range [−1, 1]) and the detected outputs are multiplied back (by the square for
          the final pass when ``final_intensity``, since a photodiode reads |y|²). Exact for
          the ideal optics; it only changes how DAC/ADC quantization and noise act.
        * ``dtype``: real dtype of the signals (float32 → complex64 fields); default the
          dtype of ``phases``. Block matrices are always built in the precision of
          ``phases`` and then cast, so float64 controls with float32 signals keep the
          mesh arithmetic exact to float64 and only the signal path in single precision.
        * ``p0``: these P settings are settings ``p0 .. p0 + P`` of a larger call whose noise
          keys this forward draws alike (``Chip.shard``): on the fused path their readings
          equal those rows of the larger call bit for bit (P may be 0: keys drawn, no rows).
          The torch path ignores it (it draws its noise in sequence; the chip then measures
          the whole call and keeps the rows).
        """
        single = phases.ndim == 1
        ph = phases[None] if single else phases
        if ph.ndim != 2 or ph.shape[-1] != self.num_phases:
            raise ValueError(f"phases: need shape [P, {self.num_phases}] or [{self.num_phases}], got {tuple(phases.shape)}")
        per_setting = x.ndim == 3 and not single and x.shape[0] == ph.shape[0]
        if not (x.ndim == 2 or per_setting) or x.shape[-1] != self.in_features:
            raise ValueError(f"x: need shape [B, {self.in_features}] (or [P, B, {self.in_features}] with phases "
                             f"[P, {self.num_phases}]), got {tuple(x.shape)}")
        fdt = dtype or ph.dtype
        cdt = torch.complex128 if fdt == torch.float64 else torch.complex64
        if readout is not None:
            if encode is not None or detect is not None:
                raise ValueError("encode/detect: not with readout= (the readout chain converts)")
            conv = _Conversion(functools.partial(readout.encode, differentiable=differentiable),
                               functools.partial(readout.detect, differentiable=differentiable),
                               None if differentiable else readout)
        else:
            conv = _Conversion(encode if encode is not None else (lambda v: v),
                               detect if detect is not None else (lambda f, final: f.real), None)
        x = x.to(fdt)
        p = ph.shape[0]
        keys: dict[int, int] = {}
        if conv.chain is None or not _fused_read.usable(ph, x):  # torch path: settings in chunks, in order
            step = max(1, _TORCH_CHUNK_ELEMENTS // (x.shape[-2] * self._widest()))
            parts = [self._layers(x[a : a + step] if per_setting else x, ph[a : a + step],
                                  self._block_matrices(ph[a : a + step], kappa, loss_db, cdt), conv, normalize,
                                  final_intensity, keys, 0) for a in (range(0, p, step) if p > step else (0,))]
            h = parts[0] if len(parts) == 1 else torch.cat(parts)
            return h[0] if single else h
        # Fused path: settings in chunks (module docstring, "Batching"), each built and run on
        # its own, on up to torch's thread count at once; noise keys drawn first, in matrix order.
        threads = max(1, torch.get_num_threads())
        step = max(1, _FUSED_CHUNK_ELEMENTS // (x.shape[-2] * self._widest()))
        if threads > 1:
            step = max(1, min(step, -(-p // threads)))
        last = len(self.spec.layers) - 1
        for i, m in enumerate(self._mats):
            readout = conv.chain.kernel_readout(m.layer == last and m.core == 0)
            if readout.noisy:
                keys[i] = _fused_read.draw_key(readout.generator)
        starts = range(0, p, step)
        inner = threads if len(starts) == 1 else 1  # readout kernel threads per chunk

        def chunk(a: int) -> Tensor:
            part = ph[a : a + step]
            return self._layers(x[a : a + step] if per_setting else x, part,
                                self._block_matrices(part, kappa, loss_db, cdt), conv, normalize, final_intensity,
                                keys, p0 + a, inner)

        out = list(_pool(threads).map(chunk, starts)) if threads > 1 and len(starts) > 1 else [chunk(a) for a in starts]
        if not out:  # no settings (an empty shard): the keys are drawn, nothing to read
            return x.new_zeros((0, x.shape[-2], self.out_features))
        h = out[0] if len(out) == 1 else torch.cat(out)
        return h[0] if single else h

    __call__ = forward

    def _layers(self, x: Tensor, ph: Tensor, mats: list[Tensor], conv: _Conversion, normalize: bool,
                final_intensity: bool, keys: dict[int, int], p0: int, threads: int | None = None) -> Tensor:
        """The layers for settings ``ph`` [P, num_phases] (``p0``.. of the forward's), whose
        block matrices are ``mats`` (one per ``_mats`` entry) → out [P, B, out_features]; ``x``
        [B, in] shared by the settings or [P, B, in] per setting; ``threads``: the readout
        kernel's (None: torch's thread count)."""
        h = x if x.ndim == 3 else x.expand(ph.shape[0], *x.shape)
        last = len(self.spec.layers) - 1
        for li, layer in enumerate(self.spec.layers):
            own = [i for i, m in enumerate(self._mats) if m.layer == li]

            def run(c: int, v: Tensor, own=own, final_layer=li == last) -> Tensor:
                final = final_layer and c == 0
                power = (2 if final and final_intensity else 1) if normalize else 0
                i = own[c]
                return self._matvec(self._mats[i], mats[i], v, conv, final, power, keys, i, p0, threads)

            h = contract(h, layer.in_modes, layer.out_modes, layer.ranks, run) if layer.kind == "tt" else run(0, h)
            if not h.requires_grad:  # h is this layer's own fresh output: bias and activation in place
                if layer.activation == "sin" and _fused_act.usable(h):  # one fused pass (_fused_act)
                    _fused_act.bias_sin_(h, ph[:, self._bias[li]].to(x.dtype) if layer.bias else None)
                    continue
                if layer.bias:
                    h.add_(ph[:, None, self._bias[li]].to(x.dtype))
                _ACTIVATIONS_INPLACE[layer.activation](h)
                continue
            if layer.bias:
                h = h + ph[:, None, self._bias[li]].to(x.dtype)
            h = _ACTIVATIONS[layer.activation](h)
        return h

    def _widest(self) -> int:
        """Rough per-input size of the largest signal state: max(in, out features) × max rank."""
        return max(max(l.in_features, l.out_features) * max(l.ranks or (1,)) for l in self.spec.layers)

    def _per_block(self, value, m: _Placed):
        """kappa/loss_db for the blocks of m, shaped [block_rows, block_cols, ...]."""
        if value is None or not isinstance(value, Tensor) or value.ndim == 0:
            return value
        if value.shape[0] != self.num_hw_blocks:
            raise ValueError(f"kappa/loss_db: leading dim must be num_hw_blocks={self.num_hw_blocks}, got {value.shape[0]}")
        idx = self.hw_block[m.first_block : m.first_block + m.num_blocks]
        return value[idx].reshape(m.block_rows, m.block_cols, *value.shape[1:])

    def _matvec(self, m: _Placed, mat: Tensor, v: Tensor, conv: _Conversion, final: bool, power: int,
                keys: dict[int, int], index: int, p0: int, threads: int | None = None) -> Tensor:
        """v[P, ..., C] real → [P, ..., R] real through m's blocks (module docstring).

        ``power`` > 0: block floating point (see ``forward``), outputs scaled by amp**power.
        Fused path (a readout chain ``conv.chain``, CPU, no autograd, kernel loaded and
        ``PHOTONIC_SIM_NO_FUSED`` unset): ``_fused_read.matvec_read`` of the chain's
        ``kernel_readout(final)`` and ``dac_levels()`` (encoding included), one call, counted by
        ``chain.tally``; else the torch path: block floating point, ``conv.encode``, bmm per
        chunk of block rows, ``conv.detect``, gains, sum over columns. ``mat`` [P, br, bc,
        k, k]: m's block matrices; ``keys``: the forward's noise keys by matrix ``index``
        (drawn before the chunks; drawn here for calls without them); ``p0``: the index of
        this chunk's first setting in the forward (module docstring, "Batching");
        ``threads``: the kernel's (None: torch's thread count)."""
        k = self.block_size
        p, lead = mat.shape[0], v.shape[1:-1]
        n = math.prod(lead)
        scales = self.block_scales[m.first_block : m.first_block + m.num_blocks].to(v)  # dtype and device of the signals
        scales = scales.reshape(m.block_rows, m.block_cols)
        chain = conv.chain
        if chain is not None and _fused_read.usable(mat, v):
            readout = chain.kernel_readout(final)
            if readout.noisy and index not in keys:  # one key per matrix per forward, shared by its chunks
                keys[index] = _fused_read.draw_key(readout.generator)
            out, clipped = _fused_read.matvec_read(mat, v, scales, readout, chain.dac_levels(), power, rows=m.rows,
                                                   key=keys.get(index), p0=p0, threads=threads)  # v read in place
            with _TALLY:  # the chunks of one forward may run on several threads
                chain.tally(dac=v.numel(), adc=p * m.num_blocks * n * k, clipped=clipped)
            return out
        v = v.reshape(p, n, m.cols)
        if power:
            amp = v.abs().amax(-1, keepdim=True).clamp_min(torch.finfo(v.dtype).tiny)  # [P, N, 1]
            v = v / amp
        field = conv.encode(v).to(mat.dtype)  # [P, N, C]
        field = torch.nn.functional.pad(field, (0, m.block_cols * k - m.cols))  # padded modes carry no light
        field = field.reshape(p, n, m.block_cols, k).transpose(1, 2)[:, None]  # [P, 1, bc, N, k]
        mat = mat.transpose(-1, -2)  # transposed for row vectors
        step = max(1, _CHUNK_ELEMENTS // max(1, p * m.block_cols * n * k))
        rows = []
        for r in range(0, m.block_rows, step):
            y = field @ mat[:, r : r + step]  # [P, rows, bc, N, k]: every block's output field
            rows.append((conv.detect(y, final) * scales[r : r + step, :, None, None]).sum(2))  # [P, rows, N, k]
        out = torch.cat(rows, 1).transpose(1, 2).reshape(p, n, m.block_rows * k)
        out = out[..., : m.rows]
        if power:
            out = out * amp**power
        return out.reshape(p, *lead, m.rows)


    # ---------------------------------------------------------------- in-situ taps
    # Appended for the adjoint, node-perturbation and forward-forward strategies: the layer loop
    # with an injectable optical pass, every layer's node values, and the network-level adjoint.
    def run_layers(self, h: Tensor, ph: Tensor, run: Callable[[int, Tensor, bool], Tensor], *, start: int = 0,
                   given: Tensor | None = None, local: bool = False) -> tuple[list[Tensor], Tensor]:
        """Layers ``start``… on h (the input of layer ``start``, [..., B, width]) → (node values
        of every layer run — pre-activation, bias added, [..., B, out_l] —, the output).

        ``run(i, v, final)`` is the optical pass of hardware matrix i (index into the layout)
        on v [..., C] → readings [..., R]; ``ph`` [..., num_phases] supplies the electronic
        biases. ``given``: node values of layer ``start`` already known (its optical pass is
        skipped, e.g. node values the controller perturbed). ``local``: each layer's input is
        detached (layer-local autograd graphs)."""
        nodes: list[Tensor] = []
        last = len(self.spec.layers) - 1
        for li, layer in enumerate(self.spec.layers):
            if li < start:
                continue
            if li == start and given is not None:
                z = given
            else:
                own = [i for i, m in enumerate(self._mats) if m.layer == li]

                def apply(c: int, v: Tensor, own=own, final_layer=li == last) -> Tensor:
                    return run(own[c], v, final_layer and c == 0)

                z = contract(h, layer.in_modes, layer.out_modes, layer.ranks, apply) if layer.kind == "tt" \
                    else apply(0, h)
                if layer.bias:
                    z = z + ph[..., None, self._bias[li]].to(z.dtype)
            nodes.append(z)
            h = _ACTIVATIONS[layer.activation](z)
            if local and li < last:
                h = h.detach()
        return nodes, h

    def activate(self, layer: int, z: Tensor) -> Tensor:
        """Layer ``layer``'s activation (electronic) of its node values z."""
        return _ACTIVATIONS[self.spec.layers[layer].activation](z)

    def _block_matrices(self, ph: Tensor, kappa, loss_db, cdt: torch.dtype) -> list[Tensor]:
        """Block matrices [P, br, bc, k, k] of every hardware matrix (as ``forward`` builds them).

        All blocks of all matrices are built by ONE ``SVDBlock.matrix`` call on [P, num_blocks,
        num_phases] (the blocks' phases are contiguous, in matrix order) and sliced per matrix:
        the same elementwise operations and per-block products as one call per matrix, so the
        same matrices bit for bit (tests/test_fast_paths.py), without a call's fixed cost
        (~1.5 ms of small-op dispatch each, digits step) per matrix. ``kappa``/``loss_db``
        given per hardware block are gathered for every block (``hw_block``)."""
        nb, k, p = self.block.num_phases, self.block_size, ph.shape[0]
        build = torch.complex128 if ph.dtype == torch.float64 else torch.complex64
        every = _Placed(-1, -1, 0, 0, 1, self.num_blocks, 0, 0)  # all blocks as one row of blocks
        mats = self.block.matrix(ph[:, : self.num_blocks * nb].reshape(p, self.num_blocks, nb),
                                 kappa=self._per_block(kappa, every), loss_db=self._per_block(loss_db, every),
                                 dtype=build)
        mats = mats.to(cdt).reshape(p, self.num_blocks, k, k)
        return [mats[:, m.first_block : m.first_block + m.num_blocks].reshape(p, m.block_rows, m.block_cols, k, k)
                for m in self._mats]

    def chip_pass(self, phases: Tensor, *, readout, kappa=None, loss_db=None, normalize: bool = False,
                  final_intensity: bool = False, dtype: torch.dtype | None = None) -> Callable[[int, Tensor, bool], Tensor]:
        """The ``run`` of :meth:`run_layers` that reads each optical pass as ``forward`` does
        (``readout`` chain, block floating point, gains) for settings ``phases`` [P, num_phases];
        v [P, ..., C] (P may be 1 and broadcast over v's leading dim)."""
        fdt = dtype or phases.dtype
        cdt = torch.complex128 if fdt == torch.float64 else torch.complex64
        mats = self._block_matrices(phases, kappa, loss_db, cdt)
        conv = _Conversion(readout.encode, readout.detect, readout)
        keys: dict[int, int] = {}

        def run(i: int, v: Tensor, final: bool) -> Tensor:
            power = (2 if final and final_intensity else 1) if normalize else 0
            mat = mats[i].expand(v.shape[0], *mats[i].shape[1:])
            return self._matvec(self._mats[i], mat, v.contiguous(), conv, final, power, keys, i, 0)

        return run

    def adjoint_pass(self, phases: Tensor, *, readout, tap: Callable[[Tensor, Tensor], Tensor], kappa=None,
                     loss_db=None, normalize: bool = False, final_intensity: bool = False
                     ) -> tuple[Tensor, Callable[[int, Tensor, bool], Tensor]]:
        """(phase leaf, ``run``) for :meth:`run_layers` whose optical passes carry the in-situ
        adjoint (``photonic_sim.circuits.adjoint``): the forward reads like ``forward``
        (float64 signals) and lights the monitor taps; ``torch.autograd`` of any loss of the
        readings then runs each pass's backward ON THE CHIP model — the adjoint source is the
        error of the block's readings (× gain s_b and block-floating-point scale; for an
        intensity readout 2·δ·y, with y measured by I/Q receivers), injected as a normalized
        I/Q signal, the field leaving the inputs read by I/Q receivers (its real part, summed
        over block rows, is the error passed back), then the time-reversed interference pass.
        Tap intensities go through ``tap(intensity, pass power)``. The leaf's ``.grad``
        receives dL/d(realised phases) (and the digital dL/d(bias)). One setting only:
        ``phases`` [num_phases] (realised)."""
        from photonic_sim.circuits.adjoint import AdjointCircuit, MeasuredLinear

        leaf = phases.detach().to(torch.float64).clone().requires_grad_()
        k, nb = self.block_size, self.block.num_phases
        tiny = torch.finfo(torch.float64).tiny

        def iq_read(field: Tensor, power: Tensor) -> Tensor:
            scale = power.sqrt().clamp_min(tiny)  # receiver gain set from the injected power
            f = field / scale
            return (readout.detect(f, False) + 1j * readout.detect(-1j * f, False)) * scale

        def iq_encode(field: Tensor) -> Tensor:
            return readout.encode(field.real.contiguous()) + 1j * readout.encode(field.imag.contiguous())

        def energy(v: Tensor) -> Tensor:
            return (v.real.square() + v.imag.square()).sum(-1, keepdim=True)

        def run(i: int, v: Tensor, final: bool) -> Tensor:
            m = self._mats[i]
            circ = AdjointCircuit(self.block, kappa=self._per_block(kappa, m), loss_db=self._per_block(loss_db, m))
            pm = leaf.detach()[m.start : m.start + m.num_blocks * nb].reshape(m.block_rows, m.block_cols, nb)
            s = self.block_scales[m.first_block : m.first_block + m.num_blocks].to(leaf.device)
            s = s.reshape(m.block_rows, m.block_cols)
            power = (2 if final and final_intensity else 1) if normalize else 0
            intensity = final and final_intensity

            def fwd(v: Tensor):
                lead = v.shape[:-1]
                vv = v.detach().reshape(-1, m.cols).to(torch.float64)
                amp = vv.abs().amax(-1, keepdim=True).clamp_min(tiny) if power else torch.ones_like(vv[:, :1])
                xe = torch.nn.functional.pad(readout.encode(vv / amp), (0, m.block_cols * k - m.cols))
                xfull = circ.pad(xe.reshape(-1, m.block_cols, k).transpose(0, 1)[None])  # [1, bc, N, 2k]
                y, f = circ.forward(pm, xfull)  # [br, bc, N, 2k], taps [br, bc, N, R]
                yk = y[..., :k]
                reading = readout.detect(yk, final)
                i_f = tap(f.real.square() + f.imag.square(), energy(xfull))
                ymeas = iq_read(yk, energy(xfull)) if intensity else None
                out = (reading * s[:, :, None, None]).sum(1).transpose(0, 1).reshape(-1, m.block_rows * k)
                out = out[:, : m.rows] * amp ** power
                return out.reshape(*lead, m.rows).to(v.dtype), (lead, xfull, i_f, ymeas, amp)

            def adjoint(saved, grad_out: Tensor):
                lead, xfull, i_f, ymeas, amp = saved
                delta = torch.nn.functional.pad(grad_out.reshape(-1, m.rows).to(torch.float64),
                                                (0, m.block_rows * k - m.rows))
                delta = delta.reshape(-1, m.block_rows, k).transpose(0, 1)[:, None]  # [br, 1, N, k]
                g = delta * s[:, :, None, None] * (amp ** power)[None, None]
                g = 2.0 * g * ymeas if intensity else g.to(torch.complex128)
                gmax = g.abs().amax(-1, keepdim=True).clamp_min(tiny)  # adjoint block floating point
                bout = circ.pad(iq_encode(g / gmax).conj())
                x_adj, a = circ.backward(pm, bout)
                x_adj = iq_read(x_adj, energy(bout))
                i_a = tap(a.real.square() + a.imag.square(), energy(bout))
                x_tr = xfull + (1j * x_adj / readout.gain).conj()  # the optical field: undo the digital gain
                c = x_tr.abs().amax(-1, keepdim=True).clamp_min(tiny)
                x_tr = iq_encode(x_tr / c)
                _, t = circ.forward(pm, x_tr)
                i_t = tap(t.real.square() + t.imag.square(), energy(x_tr)) * c.square()
                # the readings carry the digital gain: dL/d(optical output) = gain × dL/d(reading)
                grad = circ.intensity_gradient(i_f, i_a, i_t, rows=gmax[..., 0] * readout.gain)  # [br, bc, nb]
                full = torch.zeros_like(leaf)
                full[m.start : m.start + m.num_blocks * nb] = grad.reshape(-1)
                dv = (x_adj[..., :k].real * gmax).sum(0).transpose(0, 1).reshape(-1, m.block_cols * k)
                dv = dv[:, : m.cols] / amp
                return dv.reshape(*lead, m.cols), full

            return MeasuredLinear.apply(v, leaf, fwd, adjoint)

        return leaf, run

_TALLY = threading.Lock()
_POOLS: dict[int, ThreadPoolExecutor] = {}


def _pool(threads: int) -> ThreadPoolExecutor:
    """A process-wide pool of ``threads`` worker threads for the chunks of a fused forward."""
    with _TALLY:
        if threads not in _POOLS:
            _POOLS[threads] = ThreadPoolExecutor(threads, thread_name_prefix="photonic_sim")
    return _POOLS[threads]


class TONN(PhotonicNetwork):
    """Tensorized ONN: TT layers run core by core on k×k SVD blocks (space or time multiplexed)."""


class DenseONN(PhotonicNetwork):
    """Dense baseline: every layer (a TT layer by its dense equivalent, same in/out features,
    activation and bias) runs as one blocked dense matrix."""

    def __init__(
        self,
        spec_or_layers: NetworkSpec | Sequence[LayerSpec],
        block_size: int = 8,
        multiplexing: str = "space",
        num_cores: int | None = None,
    ):
        if isinstance(spec_or_layers, NetworkSpec):
            name, layers = spec_or_layers.name + "_dense", spec_or_layers.layers
        else:
            name, layers = "dense", tuple(spec_or_layers)
        layers = tuple(dense(l.in_features, l.out_features, l.activation, l.bias) for l in layers)
        super().__init__(NetworkSpec(name, layers), block_size, multiplexing, num_cores)

"""Chip backends: the small protocol training talks to, and a chip reached over TCP.

Training and evaluation use a chip through a few operations only (:class:`ChipBackend`):
describe it (``num_phases``, ``in_features``, ``out_features``, ``readout``, ``controls()``),
draw starting phases (``init_phases(generator)``), ``measure(inputs, phases)`` → detector
readings (batched over P phase settings), the ``ledger`` of what was measured, the
``closure(loss)`` black box a strategy receives, and ``state_dict`` / ``load_state_dict``
(what a resume needs). :class:`photonic_sim.chip.Chip` (the simulator) is one implementation;
:class:`RemoteChip` is another, a client of a chip served over TCP by :class:`ChipServer`
(``photonic-sim serve-chip SCENARIO`` serves a scenario's simulated chip); a lab drives its
own hardware by writing one subclass of :class:`HardwareChip` (``program`` and ``read``) and
either trains through it in-process (``Experiment(..., chip=MyChip())``) or serves it.

Wire format (version :data:`PROTOCOL_VERSION`; stdlib sockets, no pickle, nothing evaluated).
Every message is one frame::

    b"PSC1" | header length (uint32 LE) | payload length (uint64 LE) | header | payload

The header is a UTF-8 JSON object; ``tensors`` lists the payload's tensors in order as
``{"dtype": "float32" | "float64" | "int64" | "uint8" | "bool", "shape": [...]}``, their raw
little-endian bytes concatenated (so floats travel bit for bit). Inside JSON values a tensor is
``{"$t": index}`` and a slice ``{"$slice": [start, stop, step]}``. A request is ``{"op", "id",
"args"}``; a reply ``{"id", "ok": true, "result"}`` or ``{"id", "ok": false, "error": one
line}``. Limits: header ≤ 1 MiB, payload ≤ ``max_payload`` (default 256 MiB), ≤ 8 dimensions,
JSON depth ≤ 32. Operations:

* ``hello {protocol}`` → the chip's description (:func:`describe`) and its ``state``;
* ``reset {}`` → the state the server started with is loaded (ledger zero, the simulated chip's
  noise generator at its seed); returns ``state``;
* ``measure {inputs [B, in] | [P, B, in], phases [P, N] | [N] | null}`` → ``readings``
  ([P, B, out] or [B, out]), ``state`` after the measurement (the acknowledgement a client
  resumes from) and ``elapsed_s`` (seconds the chip took);
* ``state {}`` / ``load_state {state}`` → ``state``;
* ``init_phases {generator}`` (a CPU ``torch.Generator`` state) → ``phases``, the
  generator's state after the draw and the chip's ``state`` (drawing may set state: the
  simulated chip's block gains);
* ``measure_block {block, inputs [B, k], phases [P, bp] | [bp]}`` (the calibration access,
  :func:`photonic_sim.calibration.calibrate`): block ``block`` (an integer ≥ 0, control-vector
  order) programmed with its own ``bp`` phases per setting, driven with real ``inputs`` in
  [−1, 1] → ``readings`` float64 [P, B, k, 2] (the complex I/Q readings as (Re, Im) pairs,
  ``torch.view_as_real``), ``state`` and ``elapsed_s``. The server checks dtypes and ranks,
  P ≤ :data:`MAX_SETTINGS` and a reply within ``max_payload``; the chip checks the block index
  and sizes. A chip without per-block readout refuses it.

Each reply that carries ``state`` also carries its ``version`` (a counter the server bumps at
every request that may change the chip's state). ``measure`` and ``init_phases`` requests carry
``"expect"``: the version of the client's last acknowledged state; when another client has
driven the chip meanwhile the server refuses with ``"stale": true`` and the client reloads its
acknowledged state and asks again, so two runs sharing one served chip each stay bit for bit
(at the price of a state reload per interleaving).

A malformed request (garbage bytes, wrong magic, oversized frame, bad JSON, unknown op, wrong
argument names, dtypes or shapes) gets an error reply and the server keeps serving; after a
frame whose boundaries cannot be trusted (wrong magic, oversized) it closes that connection.

A state is a mapping of tensors, numbers, strings, None, lists and mappings; it holds at least
``ledger`` (the :class:`~photonic_sim.chip.Ledger` totals). Bit-for-bit resume: a
:class:`RemoteChip` keeps the state of the last acknowledged reply; when the connection drops
(or the server is restarted on the same address) it reconnects, checks it reaches the same chip
(``identity`` and shapes), loads that state and sends the unacknowledged request again, so the
run goes on exactly as without the interruption.
"""

from __future__ import annotations

import json
import math
import re
import socket
import struct
import threading
import time
from abc import ABC, abstractmethod
from collections.abc import Callable
from dataclasses import fields
from typing import Protocol, runtime_checkable

import numpy as np
import torch

from photonic_sim.chip import ChipClosure, Ledger

__all__ = [
    "MAGIC", "MAX_HEADER", "MAX_PAYLOAD", "MAX_SETTINGS", "OPS", "PROTOCOL_VERSION", "BackendError", "ChipBackend", "ChipServer",
    "ChipUnreachable", "FrameError", "HardwareChip", "RemoteChip", "check_fit", "connect", "decode_value", "describe",
    "encode_value", "parse_address", "recv_frame", "send_frame",
]
Tensor = torch.Tensor
PROTOCOL_VERSION = 1
MAGIC = b"PSC1"
MAX_HEADER = 1 << 20
MAX_PAYLOAD = 256 << 20
_PREFIX = struct.Struct("<4sIQ")  # magic, header bytes, payload bytes
_DTYPES = {"float32": (torch.float32, "<f4"), "float64": (torch.float64, "<f8"), "int64": (torch.int64, "<i8"),
           "uint8": (torch.uint8, "|u1"), "bool": (torch.bool, "|b1")}
_DTYPE_NAMES = {torch_dtype: name for name, (torch_dtype, _) in _DTYPES.items()}
_MAX_DIMS, _MAX_DEPTH, _MAX_NODES = 8, 32, 200_000
_LEDGER_KEYS = tuple(f.name for f in fields(Ledger))
OPS = ("hello", "reset", "measure", "state", "load_state", "init_phases", "measure_block")
_MUTATING = ("reset", "measure", "load_state", "init_phases", "measure_block")  # may change the chip's state
_EXPECTING = ("measure", "init_phases", "measure_block")  # results depend on the state the client acknowledged
MAX_SETTINGS = 1 << 16  # phase settings in one measure_block request


@runtime_checkable
class ChipBackend(Protocol):
    """What training, evaluation and the builder use of a chip (module docstring).

    * ``num_phases`` / ``in_features`` / ``out_features``: sizes of the control vector, of one
      input and of one reading; ``readout``: ``"coherent"`` (signed readings) or ``"intensity"``;
    * ``controls()``: ``slices`` (name → slice of the control vector), ``periods`` (float64
      [N]: 2π for a phase in rad, NaN for an electronic bias), ``is_phase`` (bool [N]) and
      ``masks`` (kind → bool [N]; kinds ``U``, ``S``, ``V``, ``tt``, ``dense``, ``bias``,
      ``phase``) and ``lattice`` (float64 [N], rad: the DAC code step of each control, NaN where
      unknown or none) — no weights, no device errors;
    * ``init_phases(generator)``: a starting control vector (float64 [N], rad), drawn with
      ``generator`` (a CPU ``torch.Generator``);
    * ``measure(inputs[B, in], phases[P, N] | [N] | None, differentiable=False)``: readings
      [P, B, out] (one query per setting) or [B, out]; ``None`` measures the programmed vector;
      per-setting inputs [P, B, in] with phases [P, N] measure setting p on inputs[p] only;
    * ``ledger``: a :class:`~photonic_sim.chip.Ledger` every measurement is counted in;
    * ``closure(loss)``: ``loss`` (phases [P, N] → losses [P]) wrapped as the
      :class:`~photonic_sim.chip.ChipClosure` a strategy receives;
    * ``state_dict()`` / ``load_state_dict(state)``: everything a chip of the same make needs
      to continue bit for bit (at least ``ledger``: the totals); tensors, numbers, strings,
      None, lists and mappings only.

    Optional: ``timing()`` → a mapping of the chip's timing figures in SI (e.g. ``settle_s``,
    sample rates in Hz), reported by :func:`describe`; ``measure_block(block, inputs [B, k],
    phases [P, bp])`` → complex I/Q readings [P, B, k] of one block on its own, counted in the
    ledger (what :func:`photonic_sim.calibration.calibrate` needs; see
    :meth:`photonic_sim.chip.Chip.measure_block` and :meth:`HardwareChip.measure_block`).
    """

    ledger: Ledger

    @property
    def num_phases(self) -> int: ...

    @property
    def in_features(self) -> int: ...

    @property
    def out_features(self) -> int: ...

    @property
    def readout(self) -> str: ...

    def controls(self) -> dict: ...

    def init_phases(self, generator: torch.Generator) -> Tensor: ...

    def measure(self, inputs: Tensor, phases: Tensor | None = None, *, differentiable: bool = False) -> Tensor: ...

    def closure(self, loss: Callable[[Tensor], Tensor]) -> ChipClosure: ...

    def state_dict(self) -> dict: ...

    def load_state_dict(self, state: dict) -> None: ...


class BackendError(ValueError):
    """A request the chip refused, or a peer that is not a chip server; one line."""


class StaleState(BackendError):
    """The chip's state moved on since the client's last acknowledged reply (another client
    drove it meanwhile); the client reloads its acknowledged state and asks again."""


class ChipUnreachable(ConnectionError):
    """The chip server could not be reached (or reached again within ``retry_s``); one line."""


class FrameError(ValueError):
    """A malformed frame; ``fatal`` when the stream cannot be trusted past it (connection closed)."""

    def __init__(self, message: str, fatal: bool = False) -> None:
        super().__init__(message)
        self.fatal = fatal


def describe(backend: ChipBackend, *, identity: str = "", timing: dict | None = None) -> dict:
    """The description a server sends in its ``hello`` reply: ``protocol``, ``identity`` (which
    chip: a serial number, or the scenario and a hash of what builds the simulated chip),
    ``num_phases``, ``in_features``, ``out_features``, ``readout``, ``controls`` and ``timing``
    (``timing`` given, else ``backend.timing()`` when it has one, else empty)."""
    if timing is None:
        timing = dict(backend.timing()) if callable(getattr(backend, "timing", None)) else {}
    return {"protocol": PROTOCOL_VERSION, "identity": str(identity), "num_phases": int(backend.num_phases),
            "in_features": int(backend.in_features), "out_features": int(backend.out_features),
            "readout": str(backend.readout), "controls": backend.controls(), "timing": dict(timing)}


def check_fit(backend: ChipBackend, network, readout: str) -> None:
    """ValueError (one line) unless ``backend`` has ``network``'s sizes and ``readout``."""
    want = (network.num_phases, network.in_features, network.out_features, readout)
    have = (backend.num_phases, backend.in_features, backend.out_features, backend.readout)
    if tuple(have) != tuple(want):
        raise ValueError("chip: has (phases, in, out, readout) = {}, this scenario's network needs {} (allowed: a chip "
                         "built or served from the same devices, accelerator, model and readout)".format(have, want))


# ---------------------------------------------------------------------- a lab's chip
class HardwareChip(ABC):
    """Base class for a chip a lab drives itself: implement ``program`` and ``read``.

    A subclass sets the class (or instance) attributes ``num_phases``, ``in_features``,
    ``out_features`` and ``readout`` and implements :meth:`program` (set the phase shifters and
    electronic biases to ``phases[num_phases]``, rad; wait until they settle) and :meth:`read`
    (push ``inputs[B, in_features]`` through and return readings [B, out_features] in the
    normalized units of ``photonic_sim.chip``). This class does the rest of
    :class:`ChipBackend`: one query per phase setting, the :class:`~photonic_sim.chip.Ledger`
    (a setting equal to the programmed one is not programmed again), the closure, and a state
    of ``ledger``, ``current`` and ``programmed``. Override :meth:`controls` (default: every
    coordinate a phase of period 2π, no U/S/V/bias masks), :meth:`init_phases` (default:
    uniform in [0, 2π)) and :meth:`timing` (default: nothing known) when the chip knows better.
    ADC/DAC conversions are not counted (``dac_conversions`` / ``adc_conversions`` stay 0)
    unless the subclass adds them to ``self.ledger`` in :meth:`read`.

    Calibration (optional): a chip whose blocks can be driven and read one at a time also
    implements :meth:`program_block` and :meth:`read_block`; :meth:`measure_block` (what
    :func:`photonic_sim.calibration.calibrate` and a served chip's ``measure_block`` use) then
    does the rest, counted as the simulated chip counts it.
    """

    num_phases: int
    in_features: int
    out_features: int
    readout: str = "coherent"

    def __init__(self) -> None:
        self.ledger = Ledger()
        self._current: Tensor | None = None
        self._programmed: Tensor | None = None

    @abstractmethod
    def program(self, phases: Tensor) -> None:
        """Set the chip to ``phases`` (float64 [num_phases], rad) and wait until it settles."""

    @abstractmethod
    def read(self, inputs: Tensor) -> Tensor:
        """Readings [B, out_features] of ``inputs`` [B, in_features] at the programmed phases."""

    def controls(self) -> dict:
        """Every coordinate a phase of period 2π, no DAC lattice known (``ChipBackend.controls``)."""
        n = int(self.num_phases)
        every, none = torch.ones(n, dtype=torch.bool), torch.zeros(n, dtype=torch.bool)
        masks = {kind: none.clone() for kind in ("U", "S", "V", "tt", "dense", "bias")} | {"phase": every.clone()}
        return {"slices": {"phases": slice(0, n)}, "periods": torch.full((n,), 2.0 * math.pi, dtype=torch.float64),
                "is_phase": every, "masks": masks, "lattice": torch.full((n,), math.nan, dtype=torch.float64)}

    def init_phases(self, generator: torch.Generator) -> Tensor:
        """Uniform in [0, 2π) (float64 [num_phases])."""
        return 2.0 * math.pi * torch.rand(int(self.num_phases), generator=generator, dtype=torch.float64)

    def timing(self) -> dict:
        """Timing figures in SI (e.g. ``settle_s``); none known by default."""
        return {}

    def set_phases(self, phases: Tensor) -> None:
        """The vector ``measure`` uses when it gets none."""
        self._current = _phases_arg(phases, self.num_phases, single_only=True).clone()

    def measure(self, inputs: Tensor, phases: Tensor | None = None, *, differentiable: bool = False) -> Tensor:
        """Readings [P, B, out] for ``phases`` [P, N] (one program + read per setting), or [B, out]."""
        if differentiable:
            raise ValueError("differentiable: a hardware chip gives readings only (allowed: False)")
        if phases is None:
            if self._current is None:
                raise ValueError("phases: none given and none programmed (call set_phases first)")
            phases = self._current
        ph = _phases_arg(phases, self.num_phases)
        x = torch.as_tensor(inputs)
        single = ph.ndim == 1
        rows = ph[None] if single else ph
        per_setting = x.ndim == 3 and not single and x.shape[0] == rows.shape[0]
        if not (x.ndim == 2 or per_setting) or x.shape[-1] != self.in_features:
            raise ValueError(f"inputs: need shape [B, {self.in_features}] (or [P, B, {self.in_features}] with "
                             f"phases [P, {self.num_phases}]), got {tuple(x.shape)}")
        led = self.ledger
        led.calls += 1
        out = []
        for p, setting in enumerate(rows):
            if self._programmed is None or len(rows) > 1 or not torch.equal(setting, self._programmed):
                self.program(setting.clone())
                led.phase_settings += 1
                self._programmed = setting.clone()
            xp = x[p] if per_setting else x
            out.append(torch.as_tensor(self.read(xp)))
            led.queries += 1
            led.samples += xp.shape[0]
        readings = torch.stack(out)
        return readings[0] if single else readings

    def program_block(self, block: int, phases: Tensor) -> None:
        """Set block ``block``'s own phase shifters to ``phases`` (float64 [bp], rad: its U, Σ,
        V targets in the order of ``photonic_sim.chip.Chip.measure_block``) and wait until they
        settle; the other blocks may keep any setting (blocks are read on their own)."""
        raise ValueError("measure_block: this chip has no per-block readout (allowed: a HardwareChip that "
                         "implements program_block and read_block)")

    def read_block(self, block: int, inputs: Tensor) -> Tensor:
        """Complex I/Q readings [B, k] of block ``block``'s k output detectors for real
        ``inputs`` [B, k] in [−1, 1] on its k input modulators (Re: the homodyne read, Im: the
        read against the reference shifted by π/2; the normalized units of ``measure``)."""
        raise ValueError("measure_block: this chip has no per-block readout (allowed: a HardwareChip that "
                         "implements program_block and read_block)")

    def measure_block(self, block: int, inputs: Tensor, phases: Tensor) -> Tensor:
        """Complex readings [P, B, k] of block ``block`` at each of ``phases`` [P, bp] (or [bp])
        for ``inputs`` [B, k] (:meth:`program_block` + :meth:`read_block` per setting). Ledger
        as the simulated chip's: one call, P queries, P phase settings, P·B samples; the next
        :meth:`measure` programs the whole vector again."""
        if isinstance(block, bool) or not isinstance(block, int) or block < 0:
            raise ValueError("block: need an integer >= 0 (control-vector order)")
        ph = torch.as_tensor(phases)
        ph = ph[None] if ph.ndim == 1 else ph
        x = torch.as_tensor(inputs)
        if not ph.is_floating_point() or ph.ndim != 2:
            raise ValueError("phases: need a float tensor [P, bp] (one block's phases per setting)")
        if not x.is_floating_point() or x.ndim != 2 or not bool((x.abs() <= 1.0).all()):
            raise ValueError("inputs: need a float tensor [B, k] with values in [-1, 1]")
        led = self.ledger
        led.calls += 1
        self._programmed = None  # the block's shifters change: the next measure programs again
        out = []
        for setting in ph.to(torch.float64):
            self.program_block(block, setting.clone())
            led.phase_settings += 1
            out.append(torch.as_tensor(self.read_block(block, x)))
            led.queries += 1
            led.samples += x.shape[0]
        return torch.stack(out)

    def closure(self, loss: Callable[[Tensor], Tensor]) -> ChipClosure:
        """``loss`` as the black box a strategy receives."""
        return ChipClosure(loss, self.ledger)

    def state_dict(self) -> dict:
        """``ledger`` totals, ``current`` and ``programmed`` vectors (or None)."""
        return {"ledger": self.ledger.totals(), "current": _clone(self._current),
                "programmed": _clone(self._programmed)}

    def load_state_dict(self, state: dict) -> None:
        """Restore :meth:`state_dict` (the programmed vector is programmed again on next use)."""
        self.ledger.load(_ledger_arg(state.get("ledger")))
        self._current = _optional_phases(state.get("current"), self.num_phases)
        self._programmed = None  # hardware may have drifted: the next setting is programmed again


# ---------------------------------------------------------------------- the client
_ADDRESS = re.compile(r"^tcp://(\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9.-]{1,253}):([0-9]{1,5})$")


def parse_address(address: str) -> tuple[str, int]:
    """``tcp://host:port`` (IPv6 as ``tcp://[::1]:port``) → (host, port); ValueError otherwise."""
    match = _ADDRESS.match(address) if isinstance(address, str) else None
    port = int(match.group(2)) if match else -1
    if not match or not 1 <= port <= 65535:
        shown = address[:40] if isinstance(address, str) else type(address).__name__
        raise ValueError(f"chip: {shown!r} is not an address (allowed: tcp://host:port, port 1-65535)")
    return match.group(1).strip("[]"), port


class RemoteChip:
    """A :class:`ChipBackend` served elsewhere (``photonic-sim serve-chip``, :class:`ChipServer`).

    ``RemoteChip("tcp://127.0.0.1:5555")`` connects, reads the chip's description and (with
    ``reset=True``, the default) resets it to the state the server started with, so a run
    through it starts as on a freshly built chip. ``timeout_s``: most seconds to wait for one
    reply; ``retry_s``: how long to keep reconnecting after a dropped connection before
    :class:`ChipUnreachable` is raised (module docstring: resume). A refused request raises
    :class:`BackendError`. Readings come back on the inputs' device, bit for bit as the server
    measured them. ``timing`` is the server's timing figures; ``elapsed_s`` the seconds the
    chip spent measuring, ``round_trip_s`` the seconds the client waited;
    ``acknowledged`` counts replies, ``reconnects`` the reconnections, ``reloads`` the times the
    acknowledged state was loaded again because another client had moved the chip on.
    """

    def __init__(self, address: str, *, timeout_s: float = 600.0, retry_s: float = 60.0, reset: bool = True,
                 max_payload: int = MAX_PAYLOAD) -> None:
        self.host, self.port = parse_address(address)
        self.address = address
        self.timeout_s, self.retry_s, self.max_payload = float(timeout_s), float(retry_s), int(max_payload)
        self.ledger = Ledger()
        self.elapsed_s = self.round_trip_s = 0.0
        self.acknowledged = self.reconnects = self.reloads = 0
        self._sock: socket.socket | None = None
        self._next_id = 0
        self._state: dict | None = None
        self._version: int | None = None
        try:
            info = self._open()
        except OSError as exc:
            self._drop()
            raise ChipUnreachable(f"chip: {self.address} is unreachable ({_why(exc)})") from None
        except (EOFError, FrameError):
            self._drop()
            raise BackendError(f"chip: {self.address} is not a photonic-sim chip server (closed or answered "
                               "something else)") from None
        self._ack(info)
        self._info = {k: v for k, v in info.items() if k not in ("state", "version")}
        if reset:
            self._ack(self._call("reset"))

    # description
    @property
    def num_phases(self) -> int:
        return self._info["num_phases"]

    @property
    def in_features(self) -> int:
        return self._info["in_features"]

    @property
    def out_features(self) -> int:
        return self._info["out_features"]

    @property
    def readout(self) -> str:
        return self._info["readout"]

    @property
    def identity(self) -> str:
        """Which chip the server drives (its ``hello``)."""
        return self._info["identity"]

    @property
    def timing(self) -> dict:
        """The server's timing figures (SI)."""
        return dict(self._info["timing"])

    def controls(self) -> dict:
        """The served chip's controls (a copy; ``ChipBackend.controls``)."""
        return _copy(self._info["controls"])

    # operations
    def init_phases(self, generator: torch.Generator) -> Tensor:
        """Drawn by the chip with ``generator``'s state; ``generator`` moves on as it would locally
        (the chip may set state too: the simulated chip's block gains)."""
        result = self._call("init_phases", generator=generator.get_state())
        generator.set_state(result["generator"])
        self._ack(result)
        return result["phases"]

    def measure(self, inputs: Tensor, phases: Tensor | None = None, *, differentiable: bool = False) -> Tensor:
        """Readings measured by the served chip (``ChipBackend.measure``); the reply's state is
        the acknowledgement a reconnection resumes from."""
        if differentiable:
            raise ValueError("differentiable: a remote chip gives readings only (allowed: False; the fo baseline "
                             "needs a local chip)")
        x = torch.as_tensor(inputs)
        result = self._call("measure", inputs=x, phases=phases)
        self.elapsed_s += float(result.get("elapsed_s", 0.0))
        self._ack(result)
        return result["readings"].to(x.device)

    def measure_block(self, block: int, inputs: Tensor, phases: Tensor) -> Tensor:
        """Complex I/Q readings [P, B, k] of one block measured by the served chip (its
        ``measure_block``: the calibration access, module docstring), bit for bit; counted in
        the served chip's ledger, which this client's follows."""
        if isinstance(block, bool) or not isinstance(block, int):
            raise ValueError("block: need an integer >= 0 (control-vector order)")
        result = self._call("measure_block", block=block, inputs=torch.as_tensor(inputs),
                            phases=torch.as_tensor(phases))
        readings = result.get("readings")
        if not isinstance(readings, Tensor) or readings.dtype != torch.float64 or readings.ndim != 4 or \
                readings.shape[-1] != 2:
            raise BackendError(f"chip: {self.address} sent measure_block readings that are not float64 [P, B, k, 2]")
        self.elapsed_s += float(result.get("elapsed_s", 0.0))
        self._ack(result)
        return torch.view_as_complex(readings.contiguous())

    def closure(self, loss: Callable[[Tensor], Tensor]) -> ChipClosure:
        """``loss`` as the black box a strategy receives (counted in this client's ledger)."""
        return ChipClosure(loss, self.ledger)

    def state_dict(self) -> dict:
        """The last acknowledged state (no round trip)."""
        return _copy(self._state)

    def load_state_dict(self, state: dict) -> None:
        """Load ``state`` on the served chip (it refuses one that does not fit: :class:`BackendError`)."""
        self._ack(self._call("load_state", state=state))

    def close(self) -> None:
        """Close the connection (a later request reconnects)."""
        self._drop()

    def __enter__(self) -> RemoteChip:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"<RemoteChip {self.address}: {self.identity or 'unnamed chip'}, {self.num_phases} phases>"

    # internals
    def _ack(self, result: dict) -> None:
        """Keep the state (and its version) a reply acknowledged."""
        state = result.get("state")
        if not isinstance(state, dict) or not isinstance(state.get("ledger"), dict):
            raise BackendError(f"chip: {self.address} sent a state without a ledger "
                               "(allowed: a photonic-sim chip server)")
        self._state, self._version = state, result.get("version")
        self.ledger.load(_ledger_arg(state["ledger"]))
        self.acknowledged += 1

    def _open(self) -> dict:
        """Connect and say hello; the description (with ``state``)."""
        self._drop()
        sock = socket.create_connection((self.host, self.port), timeout=min(self.timeout_s, 10.0))
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self._sock = sock  # hello within 10 s: a peer that says nothing is not a chip server
        info = self._exchange("hello", {"protocol": PROTOCOL_VERSION})
        sock.settimeout(self.timeout_s)
        if not isinstance(info, dict) or info.get("protocol") != PROTOCOL_VERSION or \
                not isinstance(info.get("state"), dict):
            raise BackendError(f"chip: {self.address} does not speak protocol {PROTOCOL_VERSION}")
        return info

    def _reopen(self) -> None:
        info = self._open()
        same = ("identity", "num_phases", "in_features", "out_features", "readout")
        if any(info.get(k) != self._info.get(k) for k in same):
            self._drop()
            raise BackendError(f"chip: {self.address} now serves another chip ({str(info.get('identity'))[:60]!r}, "
                               f"was {self._info.get('identity')[:60]!r}); not resuming on it")
        self.reconnects += 1
        self._restore()

    def _restore(self) -> None:
        """The served chip back to the last acknowledged state."""
        self._ack(self._exchange("load_state", {"state": self._state}))

    def _call(self, op: str, **args) -> dict:
        """One request, reconnecting and resending after a dropped connection, and reloading the
        acknowledged state first when another client moved the chip on (module docstring)."""
        deadline, stale, reload = None, 0, False
        while True:
            try:
                if self._sock is None:
                    self._reopen()
                elif reload:
                    self._restore()
                    self.reloads += 1
                reload = False
                return self._exchange(op, args, self._version if op in _EXPECTING else None)
            except StaleState:
                stale += 1
                if stale > 8:
                    raise BackendError(f"chip: {self.address} is being driven by another client "
                                       "(allowed: one run at a time per chip)") from None
                reload = True
            except (OSError, EOFError, FrameError) as exc:  # dropped, refused, timed out, torn frame
                self._drop()
                deadline = deadline or time.monotonic() + self.retry_s
                if time.monotonic() > deadline:
                    raise ChipUnreachable(f"chip: {self.address} is unreachable ({_why(exc)}) for "
                                          f"{self.retry_s:g} s") from None
                time.sleep(0.2)

    def _exchange(self, op: str, args: dict, expect: int | None = None) -> dict:
        self._next_id += 1
        rid = self._next_id
        t0 = time.perf_counter()
        send_frame(self._sock, {"op": op, "id": rid, "args": args} | ({} if expect is None else {"expect": expect}))
        header, tensors = recv_frame(self._sock, self.max_payload)
        self.round_trip_s += time.perf_counter() - t0
        if header.get("ok") is not True and header.get("stale") is True and header.get("id") == rid:
            raise StaleState(f"chip: {str(header.get('error'))[:200]}")
        if header.get("ok") is not True:  # refused (id null: a frame the server could not read)
            raise BackendError(f"chip: {str(header.get('error', 'refused'))[:300]}")
        if header.get("id") != rid:
            raise FrameError(f"reply id {str(header.get('id'))[:20]} for request {rid}")
        return decode_value(header.get("result"), tensors)

    def _drop(self) -> None:
        if self._sock is not None:
            try:
                self._sock.close()
            finally:
                self._sock = None


def connect(chip) -> ChipBackend:
    """A backend from ``chip``: a ``tcp://host:port`` address (→ :class:`RemoteChip`) or an
    object with the :class:`ChipBackend` operations (returned as it is)."""
    if isinstance(chip, str):
        return RemoteChip(chip)
    if not isinstance(chip, ChipBackend):
        raise ValueError(f"chip: a {type(chip).__name__} is not a chip backend (allowed: tcp://host:port or an "
                         "object with the ChipBackend operations)")
    return chip


# ---------------------------------------------------------------------- the server
class ChipServer:
    """Serves ``backend`` over TCP on ``host``:``port`` (port 0: a free one; see ``address``).

    ``identity`` and ``timing`` go into the ``hello`` reply (:func:`describe`). Requests are
    handled one at a time (one chip), each connection in its own thread (at most
    ``max_connections``; a connection idle for ``idle_s`` is closed). :meth:`serve_forever`
    runs until :meth:`close`. The state at construction is what ``reset`` restores.
    """

    def __init__(self, backend: ChipBackend, host: str = "127.0.0.1", port: int = 0, *, identity: str = "",
                 timing: dict | None = None, max_payload: int = MAX_PAYLOAD, idle_s: float = 3600.0,
                 max_connections: int = 16) -> None:
        self.backend = backend
        self.identity = str(identity)
        self.max_payload, self.idle_s = int(max_payload), float(idle_s)
        self._info = describe(backend, identity=identity, timing=timing)
        self._initial = _copy(backend.state_dict())
        self._version = 0  # bumped by every request that may change the chip's state
        self._lock = threading.Lock()
        self._slots = threading.BoundedSemaphore(max_connections)
        self._connections: set[socket.socket] = set()
        self._closed = False
        self._sock = socket.create_server((host, int(port)), family=socket.AF_INET6 if ":" in host else socket.AF_INET)
        bound = self._sock.getsockname()
        self.host, self.port = bound[0], bound[1]
        self.address = f"tcp://{'[' + self.host + ']' if ':' in self.host else self.host}:{self.port}"

    def serve_forever(self) -> None:
        """Accept connections until :meth:`close`."""
        while not self._closed:
            try:
                conn, _ = self._sock.accept()
            except OSError:
                if self._closed:
                    return
                continue
            if not self._slots.acquire(blocking=False):
                _reply_and_close(conn, None, "busy: too many connections (allowed: fewer clients at once)")
                continue
            threading.Thread(target=self._serve_connection, args=(conn,), daemon=True).start()

    def close(self) -> None:
        """Stop serving: no new connections, open ones are shut (a request being handled finishes
        on the chip, its reply is lost: the client resends it from its acknowledged state)."""
        self._closed = True
        for sock in [self._sock, *list(self._connections)]:
            try:
                sock.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
        self._sock.close()

    def __enter__(self) -> ChipServer:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def _serve_connection(self, conn: socket.socket) -> None:
        self._connections.add(conn)
        try:
            conn.settimeout(self.idle_s)
            conn.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            while not self._closed:
                try:
                    header, tensors = recv_frame(conn, self.max_payload)
                except (EOFError, OSError):
                    return
                except FrameError as exc:
                    send_frame(conn, {"id": None, "ok": False, "error": str(exc)})
                    if exc.fatal:
                        _drain(conn)
                        return
                    continue
                rid = header.get("id") if isinstance(header.get("id"), int) else None
                try:
                    result = self.handle(header, tensors)
                except BackendError as exc:
                    send_frame(conn, {"id": rid, "ok": False, "error": str(exc)[:300],
                                      **({"stale": True} if isinstance(exc, StaleState) else {})})
                    continue
                try:
                    send_frame(conn, {"id": rid, "ok": True, "result": result})
                except (TypeError, ValueError) as exc:  # e.g. a lab's state holding a numpy array
                    error = f"{header['op']}: the chip's answer cannot be carried ({type(exc).__name__})"
                    send_frame(conn, {"id": rid, "ok": False, "error": error})
        except OSError:
            return
        finally:
            self._connections.discard(conn)
            conn.close()
            self._slots.release()

    def handle(self, header: dict, tensors: list[Tensor]) -> dict:
        """The result of one decoded request; :class:`BackendError` (one line) for a bad one."""
        op = header.get("op")
        if not isinstance(op, str) or op not in OPS:
            shown = op[:40] if isinstance(op, str) else type(op).__name__
            raise BackendError(f"op: {shown!r} is unknown (allowed: {', '.join(OPS)})")
        try:
            args = decode_value(header.get("args", {}), tensors)
        except FrameError as exc:
            raise BackendError(str(exc)) from None
        if not isinstance(args, dict):
            raise BackendError(f"{op}: args must be a mapping")
        allowed = {"hello": {"protocol"}, "reset": set(), "measure": {"inputs", "phases"}, "state": set(),
                   "load_state": {"state"}, "init_phases": {"generator"},
                   "measure_block": {"block", "inputs", "phases"}}[op]
        if set(args) - allowed:
            raise BackendError(f"{op}: unknown argument {sorted(set(args) - allowed)[0][:40]!r} "
                               f"(allowed: {', '.join(sorted(allowed)) or 'none'})")
        expect = header.get("expect")
        if expect is not None and (isinstance(expect, bool) or not isinstance(expect, int)):
            raise BackendError("expect: must be an integer (the version of the client's last acknowledged state)")
        with self._lock:
            if expect is not None and expect != self._version:
                raise StaleState(f"stale: the chip's state is version {self._version}, the request expects "
                                 f"{expect} (another client drove it; reload the acknowledged state)")
            if op in _MUTATING:
                self._version += 1
            try:
                result = getattr(self, "_op_" + op)(args)
                return {**result, "version": self._version} if "state" in result else result
            except BackendError:
                raise
            except ValueError as exc:  # the backend's own one-line refusal (shapes, ranges)
                why = str(exc).splitlines()[0][:200] if str(exc) else type(exc).__name__
                raise BackendError(f"{op}: {why}") from None
            except Exception as exc:  # never let a request take the server down
                raise BackendError(f"{op}: failed ({type(exc).__name__})") from None

    def _state(self) -> dict:
        return self.backend.state_dict()

    def _op_hello(self, args) -> dict:
        version = args.get("protocol", PROTOCOL_VERSION)
        if version != PROTOCOL_VERSION:
            raise BackendError(f"hello: protocol {str(version)[:20]} is not spoken here (allowed: {PROTOCOL_VERSION})")
        return {**self._info, "state": self._state()}

    def _op_reset(self, args) -> dict:
        self._load(self._initial)
        return {"state": self._state()}

    def _op_state(self, args) -> dict:
        return {"state": self._state()}

    def _op_load_state(self, args) -> dict:
        state = args.get("state")
        if not isinstance(state, dict):
            raise BackendError("load_state: state must be a mapping with a ledger")
        self._load(state)
        return {"state": self._state()}

    def _op_measure(self, args) -> dict:
        n, d = self._info["num_phases"], self._info["in_features"]
        x = args.get("inputs")
        if not isinstance(x, Tensor) or not x.is_floating_point() or x.ndim not in (2, 3) or x.shape[-1] != d:
            raise BackendError(f"measure: inputs must be a float32/float64 tensor [B, {d}] (or [P, B, {d}])")
        phases = args.get("phases")
        if phases is not None:
            phases = _phases_arg(phases, n, error=BackendError)
        t0 = time.perf_counter()
        readings = self.backend.measure(x, phases).detach()
        elapsed = time.perf_counter() - t0
        return {"readings": readings, "state": self._state(), "elapsed_s": elapsed}

    def _op_init_phases(self, args) -> dict:
        state = args.get("generator")
        if not isinstance(state, Tensor) or state.dtype != torch.uint8 or state.ndim != 1:
            raise BackendError("init_phases: generator must be a uint8 tensor (a torch.Generator state)")
        gen = torch.Generator()
        gen.set_state(state)
        phases = self.backend.init_phases(gen)
        return {"phases": torch.as_tensor(phases).detach(), "generator": gen.get_state(), "state": self._state()}

    def _op_measure_block(self, args) -> dict:
        measure_block = getattr(self.backend, "measure_block", None)
        if not callable(measure_block):
            raise BackendError("measure_block: this chip has no per-block readout (allowed: a chip with measure_block)")
        block = args.get("block")
        if isinstance(block, bool) or not isinstance(block, int) or not 0 <= block < 2**31:
            raise BackendError("measure_block: block must be an integer >= 0")
        x = args.get("inputs")
        if not isinstance(x, Tensor) or x.dtype not in (torch.float32, torch.float64) or x.ndim != 2:
            raise BackendError("measure_block: inputs must be a float32/float64 tensor [B, k]")
        phases = args.get("phases")
        if not isinstance(phases, Tensor) or phases.dtype not in (torch.float32, torch.float64) or \
                phases.ndim not in (1, 2):
            raise BackendError("measure_block: phases must be a float32/float64 tensor [P, bp] or [bp]")
        settings = 1 if phases.ndim == 1 else phases.shape[0]
        reply = settings * x.shape[0] * x.shape[1] * 16  # complex128 readings [P, B, k]
        if settings > MAX_SETTINGS or reply > self.max_payload:
            raise BackendError(f"measure_block: {settings} settings x {x.shape[0]} inputs is too large (allowed: "
                               f"<= {MAX_SETTINGS} settings and a reply <= {self.max_payload} bytes)")
        t0 = time.perf_counter()
        readings = torch.as_tensor(measure_block(block, x, phases)).detach()
        elapsed = time.perf_counter() - t0
        if not readings.is_complex():
            raise BackendError("measure_block: the chip's readings are not complex I/Q readings")
        readings = torch.view_as_real(readings.to(torch.complex128).cpu().contiguous())
        return {"readings": readings, "state": self._state(), "elapsed_s": elapsed}

    def _load(self, state: dict) -> None:
        """Load ``state``; on any refusal the chip is put back as it was (no half-loaded state)."""
        _ledger_arg(state.get("ledger"), error=BackendError)
        before = self._state()
        try:
            self.backend.load_state_dict(_copy(state))
        except Exception as exc:
            self.backend.load_state_dict(before)
            raise BackendError(f"load_state: the state does not fit this chip ({type(exc).__name__})") from None


# ---------------------------------------------------------------------- frames and values
def send_frame(sock: socket.socket, header: dict) -> None:
    """Send ``header`` (tensors inside its values go to the payload) as one frame."""
    tensors: list[Tensor] = []
    body = {k: encode_value(v, tensors) for k, v in header.items()}
    blobs, descs = [], []
    for t in tensors:
        t = t.detach().cpu().contiguous()
        name = _DTYPE_NAMES.get(t.dtype)
        if name is None:
            raise TypeError(f"tensor dtype {t.dtype} is not carried (allowed: {', '.join(_DTYPES)})")
        descs.append({"dtype": name, "shape": list(t.shape)})
        blobs.append(t.numpy().astype(_DTYPES[name][1], copy=False).tobytes())
    body["tensors"] = descs
    head = json.dumps(body, allow_nan=False, separators=(",", ":")).encode("utf-8")
    payload = b"".join(blobs)
    sock.sendall(_PREFIX.pack(MAGIC, len(head), len(payload)) + head + payload)


def recv_frame(sock: socket.socket, max_payload: int = MAX_PAYLOAD) -> tuple[dict, list[Tensor]]:
    """One frame → (header, tensors); EOFError when the peer closed, :class:`FrameError` when malformed."""
    magic = _recv_exact(sock, 4)
    if magic != MAGIC:
        raise FrameError("frame: not a photonic-sim chip frame (allowed: b'PSC1' frames, see photonic_sim.backend)",
                         fatal=True)
    head_len, payload_len = struct.unpack("<IQ", _recv_exact(sock, _PREFIX.size - 4))
    if head_len > MAX_HEADER:
        raise FrameError(f"frame: header of {head_len} bytes (allowed: <= {MAX_HEADER})", fatal=True)
    if payload_len > max_payload:
        raise FrameError(f"frame: payload of {payload_len} bytes (allowed: <= {max_payload})", fatal=True)
    head = _recv_exact(sock, head_len)
    payload = _recv_exact(sock, payload_len)
    try:
        header = json.loads(head.decode("utf-8"), parse_constant=_no_constant)
    except (ValueError, RecursionError):
        raise FrameError("frame: header is not UTF-8 JSON") from None
    if not isinstance(header, dict):
        raise FrameError("frame: header must be a JSON object")
    return header, _tensors(header.get("tensors", []), payload)


def encode_value(value, tensors: list[Tensor]):
    """A JSON value with ``{"$t": i}`` for the i-th tensor (appended to ``tensors``) and
    ``{"$slice": [start, stop, step]}`` for a slice; TypeError for anything else."""
    if isinstance(value, Tensor):
        tensors.append(value)
        return {"$t": len(tensors) - 1}
    if isinstance(value, slice):
        return {"$slice": [value.start, value.stop, value.step]}
    if isinstance(value, dict):
        if not all(isinstance(k, str) and not k.startswith("$") for k in value):
            raise TypeError("mapping keys must be strings not starting with '$'")
        return {k: encode_value(v, tensors) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [encode_value(v, tensors) for v in value]
    if value is None or isinstance(value, (bool, int, str)):
        return value
    if isinstance(value, float) and math.isfinite(value):
        return value
    raise TypeError(f"a {type(value).__name__} is not carried (allowed: tensors, finite numbers, strings, None, "
                    "lists, mappings, slices)")


def decode_value(value, tensors: list[Tensor]):
    """Inverse of :func:`encode_value`; :class:`FrameError` for references out of range, too deep or too many nodes."""
    budget = [_MAX_NODES]

    def walk(v, depth):
        budget[0] -= 1
        if depth > _MAX_DEPTH or budget[0] < 0:
            raise FrameError("value: nested too deeply or too large")
        if isinstance(v, dict):
            if "$t" in v:
                i = v["$t"]
                if len(v) != 1 or isinstance(i, bool) or not isinstance(i, int) or not 0 <= i < len(tensors):
                    raise FrameError("value: a tensor reference out of range")
                return tensors[i]
            if "$slice" in v:
                s = v["$slice"]
                if len(v) != 1 or not isinstance(s, list) or len(s) != 3 or \
                        not all(a is None or (isinstance(a, int) and not isinstance(a, bool)) for a in s):
                    raise FrameError("value: a malformed slice")
                return slice(*s)
            return {k: walk(x, depth + 1) for k, x in v.items()}
        if isinstance(v, list):
            return [walk(x, depth + 1) for x in v]
        return v

    return walk(value, 0)


def _tensors(descs, payload: bytes) -> list[Tensor]:
    if not isinstance(descs, list) or len(descs) > 1024:
        raise FrameError("frame: tensors must be a list of at most 1024 {dtype, shape}")
    out, offset = [], 0
    for desc in descs:
        if not isinstance(desc, dict) or set(desc) != {"dtype", "shape"} or desc["dtype"] not in _DTYPES:
            raise FrameError(f"frame: a tensor needs exactly dtype and shape (allowed dtypes: {', '.join(_DTYPES)})")
        shape = desc["shape"]
        if not isinstance(shape, list) or len(shape) > _MAX_DIMS or \
                not all(isinstance(s, int) and not isinstance(s, bool) and 0 <= s <= len(payload) for s in shape):
            raise FrameError(f"frame: a tensor shape must be at most {_MAX_DIMS} sizes >= 0 that fit the payload")
        torch_dtype, np_dtype = _DTYPES[desc["dtype"]]
        count = math.prod(shape)
        nbytes = count * np.dtype(np_dtype).itemsize
        if offset + nbytes > len(payload):
            raise FrameError("frame: the tensors need more bytes than the payload holds")
        raw = np.frombuffer(payload, dtype=np.uint8, count=nbytes, offset=offset)
        if torch_dtype == torch.bool and bool((raw > 1).any()):
            raise FrameError("frame: a bool tensor holds bytes other than 0 and 1")
        arr = raw.view(np_dtype).astype(np_dtype[1:] if np_dtype[0] == "<" else np_dtype, copy=True).reshape(shape)
        out.append(torch.from_numpy(arr))
        offset += nbytes
    if offset != len(payload):
        raise FrameError("frame: payload bytes left over after the declared tensors")
    return out


def _recv_exact(sock: socket.socket, n: int) -> bytes:
    buf = bytearray(n)
    view, got = memoryview(buf), 0
    while got < n:
        k = sock.recv_into(view[got:], min(n - got, 1 << 20))
        if k == 0:
            raise EOFError("connection closed")
        got += k
    return bytes(buf)


def _reply_and_close(conn: socket.socket, rid, error: str) -> None:
    try:
        conn.settimeout(5.0)
        send_frame(conn, {"id": rid, "ok": False, "error": error})
    except OSError:
        pass
    finally:
        conn.close()


def _drain(conn: socket.socket, limit: int = 1 << 20, seconds: float = 1.0) -> None:
    """Half-close, then read what the peer still sends (bounded), so that closing does not reset
    the connection before the peer has read the error reply."""
    try:
        conn.shutdown(socket.SHUT_WR)
        conn.settimeout(seconds)
        deadline = time.monotonic() + seconds
        while limit > 0 and time.monotonic() < deadline:
            chunk = conn.recv(min(limit, 65536))
            if not chunk:
                return
            limit -= len(chunk)
    except OSError:
        return


def _no_constant(name: str):
    raise ValueError(f"{name} is not allowed")


def _why(exc: BaseException) -> str:
    return str(exc).splitlines()[0][:80] if str(exc) else type(exc).__name__


def _phases_arg(phases, n: int, *, single_only: bool = False, error=ValueError) -> Tensor:
    ph = torch.as_tensor(phases)
    ok = ph.is_floating_point() and (ph.shape == (n,) or (not single_only and ph.ndim == 2 and ph.shape[1] == n))
    if not ok:
        raise error(f"phases: need a float tensor [{n}]" + ("" if single_only else f" or [P, {n}]"))
    return ph.to(torch.float64)


def _optional_phases(phases, n: int) -> Tensor | None:
    return None if phases is None else _phases_arg(phases, n, single_only=True).clone()


def _ledger_arg(ledger, *, error=ValueError) -> dict:
    """Ledger totals checked: a mapping of known counter names to integers >= 0."""
    if not isinstance(ledger, dict) or not set(ledger) <= set(_LEDGER_KEYS) or \
            not all(isinstance(v, int) and not isinstance(v, bool) and 0 <= v < 2**63 for v in ledger.values()):
        raise error(f"state: ledger must map {', '.join(_LEDGER_KEYS)} to integers >= 0")
    return ledger


def _clone(t: Tensor | None) -> Tensor | None:
    return None if t is None else t.clone()


def _copy(value):
    """A deep copy of a state / description (tensors cloned)."""
    if isinstance(value, Tensor):
        return value.clone()
    if isinstance(value, dict):
        return {k: _copy(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return type(value)(_copy(v) for v in value)
    return value

"""In-situ adjoint gradients of MZI meshes and SVD blocks (Hughes et al., Optica 5, 864, 2018).

Physics (docs/physics.md#conventions: MZI T(θ, φ) = B(κ₂)·diag(e^{iθ}, 1)·B(κ₁)·diag(e^{iφ}, 1),
coupler B(κ) = [[√(1−κ), i√κ], [i√κ, √(1−κ)]], both phases on the top arm; output screen
diag(e^{iα}); Σ attenuators push-pull ±θ/2, read at the bar port and divided by the global
factor i). A circuit is written as a sequence of elementary operations on the field vector:
phase screens on some modes, 2×2 couplers and constant factors (insertion loss, the
attenuators' 1/i). Each of them is a SYMMETRIC matrix, so the transpose of the whole circuit —
the map a reciprocal device applies to light sent backwards — is the same operations in
reverse order (a mesh column's MZIs are applied as one fused step, forwards or backwards).

Gradient. Let the output field y = M x and a real loss L(y). Write
g = ∂L/∂Re y + i ∂L/∂Im y (for a coherent readout Re y, g = dL/d(reading), real). A phase θ
that multiplies the field on one mode by e^{iwθ} (w = 1 for a mesh phase, ±1/2 for the two
arms of a push-pull attenuator) at a cut where the forward field is f gives

    dL/dθ = Re(conj(g)ᵀ ∂y/∂θ) = w · Re(i · f · a),      a = (A_kᵀ conj(g))_m,

where A_k maps the cut to the output: a is the *adjoint field* at the same cut, i.e. the
field found there when conj(g) is sent backwards from the outputs. Hughes' scheme measures
it with three intensity maps at every phase shifter (a monitor tap each):

1. forward: inject x, read I_f = |f|²;
2. adjoint: inject conj(g) at the outputs, read I_a = |a|² and the complex field x_adj that
   leaves through the inputs (for a network, Re x_adj = dL/dx is the error passed back);
3. interference: inject x + conj(i·x_adj) at the inputs. For a lossless circuit the field at
   every cut is then f + conj(i·a) (time reversal), so I_t = |f|² + |a|² + 2 Re(i f a) and

       dL/dθ = w · (I_t − I_f − I_a) / 2.

The extra i (a quarter-wave offset of the time-reversed beam) turns Hughes' Re(f a) into the
Re(i f a) that a phase derivative needs in this convention. The time-reversal step needs a
lossless, reciprocal circuit: it holds for meshes with imbalanced couplers (still unitary);
insertion loss that differs between paths breaks it (the edge modes of a Clements mesh skip
the MZIs of every other column: the intensity gradient is then biased, while the field formula
:meth:`AdjointCircuit.field_gradient` stays exact).

Loss-balanced circuits (``balanced=True``; docs/physics.md#loss-balanced-meshes). A dummy
element matched to the column's MZIs sits on every mode a lossy column leaves unpaired (and on
a block's spare modes: their I/Q lines matched to the meshes they bypass, or equivalently a
calibrated gain of the spare transceivers), so every column multiplies all modes by one
amplitude. Up to a cut the circuit is then a_≤·U_≤ and from the cut to the outputs a_>·U_>
(U_≤, U_> unitary, a_≤·a_> = a, the whole circuit's amplitude). With f = a_≤·U_≤ x, the
adjoint field a = a_>·U_>ᵀ conj(g) and x_adj = a·Uᵀ conj(g) (U = U_> U_≤, so U_≤ U^† = U_>^†),
the time-reversed input x + conj(i·x_adj) arrives at the cut as

    f + a_≤·a·U_≤ conj(i·Uᵀ conj(g)) = f + a_≤·a·conj(i·U_>ᵀ conj(g)) = f + T·conj(i·a),
    T = a_≤²  (the power transmission from the inputs to the cut),

so I_t = I_f + T²·I_a + 2T·Re(i f a) and

    dL/dθ = w · (I_t − I_f − T²·I_a) / (2T).

The controller knows T from the card (the columns' IL_MZI up to the cut, the Σ column's loss)
and corrects every tap: :meth:`AdjointCircuit.intensity_gradient` does so whenever every
mixing step and every tap sees one gain on all ports (``transmission``, found from
``loss_db``; None, no correction, for a lossless or an unbalanced lossy circuit). Deep in the
circuit the interference term 2T·Re(i f a) is weak, and the correction divides the tap noise
by T there.

On the chip (``Chip(insertion_loss=True, loss_balanced=True)``) the uniform loss is not in the
simulated matrix: the laser pays it (link budget), i.e. the chip works in units where the
sources of all three passes are raised by 1/a (the forward's laser; the adjoint and
interference passes' I/Q transmitters alike, so the I/Q receivers see full scale). A
physical tap then sees f_u/a_> in the forward and interference passes and ã_u/a_≤ in the
adjoint pass (f_u, ã_u: the fields of the unitary mesh at the cut), and the controller's
correction for these sources — the forward and interference maps × T_> = a_>², the adjoint
map × T_≤ = a_≤², both known — gives exactly the unitary mesh's maps, whose plain formula
(T_>·I_t − T_>·I_f − T_≤·I_a)/2 = Re(i f_u ã_u) the chip's model evaluates. So the model's
maps are the corrected ones, and its tap noise (set at the pass's normalized power) is an
upper bound: the physical taps see 1/T_> or 1/T_≤ ≥ 1 times more light. The only loss left
in the simulated matrix is a laser shortfall (a scalar on the Σ column, ``Chip``), which the
T-correction above handles (T = 1 before Σ, the shortfall's power transmission after it).

SVD blocks (square, n = n_out = n_in): every Σ attenuator is a full 2×2 MZI between mode j
and a spare mode n + j (its second input and its dropped cross output). The block is then a
lossless 2n-mode circuit whose spare inputs carry no light in ordinary use; the adjoint
leaves light at the spare inputs too, and the interference pass re-injects it there (part of
the extra hardware the scheme assumes). Fields are rows [..., B, ports] (ports: n modes,
plus n spare modes for an SVD block); phases [..., num_phases] broadcast against the
leading dims, as in ``Mesh.apply``. Everything here is float64/complex128 math; no autograd.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import NamedTuple

import torch

from photonic_sim.circuits.mesh import Mesh
from photonic_sim.circuits.svd import SVDBlock
from photonic_sim.devices.mzi import db_to_amplitude

Tensor = torch.Tensor

__all__ = ["AdjointCircuit", "AdjointResult", "MeasuredLinear"]


class _Op(NamedTuple):
    """One elementary operation: kind 'phase' (e^{i·weight·θ[index]} on ``modes``), 'coupler'
    (B(κ) on pairs (modes, other)), 'scale' (× value on ``modes``) — each a symmetric matrix —
    or 'mzi', a whole mesh column of MZIs on pairs (modes, other) (index [2, m]: φ and θ
    entries; value (κ₁, κ₂, loss amplitude)), whose transpose ``_mzi`` applies in reverse."""

    kind: str
    modes: Tensor
    other: Tensor | None = None
    index: Tensor | None = None
    weight: float = 1.0
    value: Tensor | complex | None = None  # kappa [..., m] or the scale factor


class AdjointResult(NamedTuple):
    """What the three passes give: ``grad`` dL/dθ [..., num_phases] (rad⁻¹, summed over the B
    rows), ``x_adj`` the adjoint field leaving the inputs [..., B, ports] (Re of its first
    ``n_in`` entries is dL/dx for a real input x), ``y`` the forward output [..., B, ports]."""

    grad: Tensor
    x_adj: Tensor
    y: Tensor


def _kappa_of(kappa, count: int) -> Tensor | None:
    """kappa broadcastable to [..., count, 2] → tensor [..., count, 2] (float64) or None (ideal)."""
    if kappa is None:
        return None
    k = torch.as_tensor(kappa, dtype=torch.float64)
    return k.expand(*k.shape[:-2], count, 2) if k.ndim >= 2 else k.expand(count, 2)


def _mesh_ops(mesh: Mesh, first: int, kappa, loss_db, balanced: bool = False, ports: int | None = None) -> list[_Op]:
    """The operations of ``mesh`` in light order; its phases start at control index ``first``.
    ``balanced``: after each lossy column a 'scale' (the dummy elements) on every one of the
    ``ports`` (default n) modes the column leaves unpaired, with the mean amplitude of the
    column's MZIs (module docstring, "Loss-balanced circuits")."""
    m = mesh.num_mzis
    kap = _kappa_of(kappa, m)
    amp = None
    if loss_db is not None:
        loss = torch.as_tensor(loss_db, dtype=torch.float64)
        amp = db_to_amplitude(loss.expand(m) if loss.ndim == 0 else loss)
    ops: list[_Op] = []
    for col in mesh.columns:
        tops = torch.arange(col.offset, col.offset + 2 * col.count, 2)
        idx = torch.arange(col.start, col.start + col.count)
        k1 = None if kap is None else kap[..., idx, 0]
        k2 = None if kap is None else kap[..., idx, 1]
        a = None if amp is None else amp[..., idx].to(torch.complex128)
        # one MZI column: φ, coupler κ₁, θ, coupler κ₂, loss (``_mzi``); taps after φ and after θ
        ops.append(_Op("mzi", tops, tops + 1, index=torch.stack((first + m + idx, first + idx)), value=(k1, k2, a)))
        if balanced and a is not None:
            paired = set(range(col.offset, col.offset + 2 * col.count))
            free = torch.tensor([j for j in range(ports or mesh.n) if j not in paired], dtype=torch.long)
            if free.numel():
                dummy = a.abs().mean(-1, keepdim=True).to(torch.complex128)
                ops.append(_Op("scale", free, value=dummy.expand(*dummy.shape[:-1], free.numel())))
    n = mesh.n
    ops.append(_Op("phase", torch.arange(n), index=first + 2 * m + torch.arange(n)))  # output screen α
    return ops


def _transmission(ops: list[_Op], ports: int) -> Tensor | None:
    """Power transmission T [..., R] from the inputs to every tap (the order of the taps of
    ``AdjointCircuit.forward``) when the field amplitude gain is the same on every port before
    every mixing step (coupler, MZI column) and at every tap — each column a scalar times a
    lossless step — else None; None too when T = 1 at every tap."""
    gain: Tensor | None = None  # [..., ports] amplitude gain so far; None: 1 on every port

    def uniform() -> bool:
        return gain is None or bool(torch.isclose(gain, gain[..., :1], rtol=1e-12, atol=0.0).all())

    def scaled(modes: Tensor, factor: Tensor) -> Tensor:
        g = torch.ones(ports, dtype=torch.float64) if gain is None else gain
        lead = torch.broadcast_shapes(g.shape[:-1], factor.shape[:-1])
        g = g.expand(*lead, ports).clone()
        g[..., modes] = g[..., modes] * factor.cpu().expand(*lead, modes.numel())
        return g

    parts: list[tuple[Tensor | None, int]] = []  # (power transmission [...] or None for 1, taps)
    for op in ops:
        if op.kind in ("mzi", "coupler", "phase") and not uniform():
            return None
        here = None if gain is None else gain[..., 0].square()
        if op.kind == "mzi":
            parts.append((here, 2 * op.modes.numel()))
            amp = op.value[2]
            if amp is not None:
                amp = amp.abs().to(torch.float64)
                gain = scaled(op.modes, amp)
                gain = scaled(op.other, amp)
        elif op.kind == "phase":
            parts.append((here, op.modes.numel()))
        elif op.kind == "scale":
            factor = torch.as_tensor(op.value).abs().to(torch.float64)
            gain = scaled(op.modes, factor.expand(*factor.shape[:-1], op.modes.numel()) if factor.ndim else
                          factor.expand(op.modes.numel()))
    if gain is not None and not uniform():
        return None
    if all(t is None or bool((t == 1.0).all()) for t, _ in parts):
        return None
    lead = torch.broadcast_shapes(*[() if t is None else t.shape for t, _ in parts])
    return torch.cat([(torch.ones(lead, dtype=torch.float64) if t is None else t.expand(lead))[..., None]
                      .expand(*lead, count) for t, count in parts], -1)


def _couple(a: Tensor, b: Tensor, kappa: Tensor | None) -> tuple[Tensor, Tensor]:
    """Coupler B(κ) = [[√(1−κ), i√κ], [i√κ, √(1−κ)]] on the field pairs (a, b) (κ [..., m])."""
    if kappa is None:
        t = k = 0.5 ** 0.5
    else:
        kap = kappa[..., None, :].to(a.device)
        t, k = torch.sqrt(1.0 - kap), torch.sqrt(kap)
    return t * a + 1j * k * b, 1j * k * a + t * b


def _phasor(phases: Tensor, index: Tensor) -> Tensor:
    theta = phases[..., None, index]
    return torch.polar(torch.ones_like(theta), theta)


def _mzi(op: _Op, x: Tensor, phases: Tensor, reverse: bool) -> tuple[Tensor, list[Tensor]]:
    """A whole MZI column on x (in place as ``_put``): light order φ, B(κ₁), θ, B(κ₂), loss;
    ``reverse``: the transpose (the same steps backwards). Taps at the cuts after φ and after
    θ: [φ, θ] forward, [θ, φ] in reverse (the order a backward sweep collects them in)."""
    k1, k2, amp = op.value
    a, b = x[..., op.modes], x[..., op.other]
    amp = None if amp is None else amp.to(x.device)
    if not reverse:
        a = a * _phasor(phases, op.index[0])
        tap_phi = a
        a, b = _couple(a, b, k1)
        a = a * _phasor(phases, op.index[1])
        tap_theta = a
        a, b = _couple(a, b, k2)
        if amp is not None:
            a, b = a * amp[..., None, :], b * amp[..., None, :]
        taps = [tap_phi, tap_theta]
    else:
        if amp is not None:
            a, b = a * amp[..., None, :], b * amp[..., None, :]
        a, b = _couple(a, b, k2)
        taps = [a]
        a, b = _couple(a * _phasor(phases, op.index[1]), b, k1)
        taps.append(a)
        a = a * _phasor(phases, op.index[0])
    return _put(_put(x, op.modes, a), op.other, b), taps


def _apply(op: _Op, x: Tensor, phases: Tensor) -> Tensor:
    """``op`` on fields x [..., B, ports] (in place when the leading dims already match the
    op's broadcast, else on a broadcast copy)."""
    if op.kind == "phase":
        theta = phases[..., None, op.index] * op.weight
        return _put(x, op.modes, x[..., op.modes] * torch.polar(torch.ones_like(theta), theta))
    if op.kind == "coupler":
        a, b = _couple(x[..., op.modes], x[..., op.other], op.value)
        return _put(_put(x, op.modes, a), op.other, b)
    value = op.value if not isinstance(op.value, Tensor) else op.value[..., None, :].to(x.device)
    return _put(x, op.modes, x[..., op.modes] * value)


def _put(x: Tensor, modes: Tensor, values: Tensor) -> Tensor:
    """x[..., modes] = values IN PLACE (x first broadcast, as a new tensor, to the leading dims
    of ``values`` when they are wider); returns x. Taps are copies (advanced indexing)."""
    if values.shape[:-1] != x.shape[:-1]:
        x = x.expand(values.shape[:-1] + x.shape[-1:]).clone()
    x[..., modes] = values
    return x


class AdjointCircuit:
    """A mesh (``ClementsMesh``, ``ReckMesh``, ``Mesh(1)``) or a square ``SVDBlock`` as the
    operations of the module docstring, with its adjoint-gradient passes.

    ``kappa`` / ``loss_db``: coupler ratios and insertion loss (dB), in the forms
    ``Mesh.unitary`` / ``SVDBlock.matrix`` accept (for a block: a dict over "U", "S", "V" or one
    tensor over all MZIs in U, Σ, V order). ``balanced``: a loss-balanced circuit (module
    docstring): a dummy element on every mode a lossy column leaves unpaired (a block's spare
    modes included), matched to the column's MZIs. ``ports``: field width (n, or 2n for a
    block: the spare attenuator modes follow the n modes). ``num_phases``: the circuit's phase
    vector length, in the circuit's own order. ``transmission``: [..., R] power transmission
    from the inputs to every tap when every column attenuates all modes alike (the
    intensity gradient is then corrected for it, module docstring), else None (also when it
    is 1 everywhere: a lossless circuit).
    """

    def __init__(self, circuit: Mesh | SVDBlock, *, kappa=None, loss_db=None, balanced: bool = False) -> None:
        if isinstance(circuit, Mesh):
            self.n_in = self.n_out = self.ports = circuit.n
            self.num_phases = circuit.num_phases
            self.ops = _mesh_ops(circuit, 0, kappa, loss_db, balanced)
        elif isinstance(circuit, SVDBlock):
            if circuit.n_in != circuit.n_out:
                raise ValueError("circuit: the adjoint SVD block must be square (n_out == n_in)")
            n = circuit.n_in
            self.n_in = self.n_out = n
            self.ports = 2 * n
            self.num_phases = circuit.num_phases
            part = circuit._part
            sl = circuit.slices
            self.ops = (_mesh_ops(circuit.v, sl["V"].start, part(kappa, "kappa", "V"), part(loss_db, "loss_db", "V"),
                                  balanced, 2 * n)
                        + self._sigma_ops(n, sl["S"].start, part(kappa, "kappa", "S"), part(loss_db, "loss_db", "S"))
                        + _mesh_ops(circuit.u, sl["U"].start, part(kappa, "kappa", "U"), part(loss_db, "loss_db", "U"),
                                    balanced, 2 * n))
        else:
            raise ValueError("circuit: need a Mesh or an SVDBlock")
        recs = []
        for op in self.ops:
            if op.kind == "phase":
                recs.append((op.index, op.weight, op.modes.numel()))
            elif op.kind == "mzi":
                recs += [(op.index[0], 1.0, op.modes.numel()), (op.index[1], 1.0, op.modes.numel())]
        self.index = torch.cat([r[0] for r in recs])
        self.weight = torch.cat([torch.full((r[2],), r[1], dtype=torch.float64) for r in recs])
        self.transmission = _transmission(self.ops, self.ports)

    @staticmethod
    def _sigma_ops(n: int, first: int, kappa, loss_db) -> list[_Op]:
        """Σ column: attenuator j mixes mode j (top arm, +θ/2) with spare mode n + j (−θ/2)."""
        main, spare = torch.arange(n), torch.arange(n, 2 * n)
        kap = _kappa_of(kappa, n)
        factor: Tensor | complex = -1j  # the global 1/i of the attenuator convention
        if loss_db is not None:
            amp = db_to_amplitude(torch.as_tensor(loss_db, dtype=torch.float64)).to(torch.complex128)
            a = (-1j * amp).expand(n) if amp.ndim == 0 else -1j * amp
            factor = torch.cat((a, a), -1)
        return [_Op("coupler", main, spare, value=None if kap is None else kap[..., 0]),
                _Op("phase", main, index=first + main, weight=0.5),
                _Op("phase", spare, index=first + main, weight=-0.5),
                _Op("coupler", main, spare, value=None if kap is None else kap[..., 1]),
                _Op("scale", torch.cat((main, spare)), value=factor)]

    # ------------------------------------------------------------------ passes
    def pad(self, x: Tensor) -> Tensor:
        """Fields on the n inputs [..., B, n] → all ports [..., B, ports] (spares dark)."""
        x = torch.as_tensor(x).to(torch.complex128)
        return torch.nn.functional.pad(x, (0, self.ports - x.shape[-1]))

    def forward(self, phases: Tensor, x: Tensor) -> tuple[Tensor, Tensor]:
        """Propagate x [..., B, ports] → (output [..., B, ports], field after every phase
        shifter [..., B, R]; R = len(index), order of ``index``/``weight``)."""
        phases = torch.as_tensor(phases, dtype=torch.float64)
        x, taps = x.clone(), []
        for op in self.ops:
            if op.kind == "mzi":
                x, more = _mzi(op, x, phases, False)
                taps += more
                continue
            x = _apply(op, x, phases)
            if op.kind == "phase":
                taps.append(x[..., op.modes])
        return x, torch.cat(taps, -1)

    def backward(self, phases: Tensor, b: Tensor) -> tuple[Tensor, Tensor]:
        """Send b [..., B, ports] backwards from the outputs → (field leaving the inputs
        [..., B, ports], adjoint field at every phase shifter [..., B, R], same cut as
        ``forward``'s taps)."""
        phases = torch.as_tensor(phases, dtype=torch.float64)
        b, taps = b.clone(), []
        for op in reversed(self.ops):
            if op.kind == "mzi":
                b, more = _mzi(op, b, phases, True)
                taps += more
                continue
            if op.kind == "phase":  # the cut after this shifter in light order
                taps.append(b[..., op.modes])
            b = _apply(op, b, phases)
        return b, torch.cat(taps[::-1], -1)

    def _collect(self, per_tap: Tensor, rows: Tensor | None = None) -> Tensor:
        """Σ over rows (× ``rows`` [..., B], per-row factors) of weight × per-tap values
        [..., B, R] → dL/dθ [..., num_phases]."""
        if rows is not None:
            per_tap = per_tap * rows[..., None]
        vals = (per_tap.sum(-2) * self.weight.to(per_tap.device))
        out = torch.zeros(*vals.shape[:-1], self.num_phases, dtype=torch.float64, device=vals.device)
        return out.index_add_(-1, self.index.to(vals.device), vals)

    def field_gradient(self, forward_taps: Tensor, adjoint_taps: Tensor) -> Tensor:
        """dL/dθ = Σ_rows w·Re(i·f·a) from the tapped fields (exact, any circuit)."""
        return self._collect((1j * forward_taps * adjoint_taps).real)

    def intensity_gradient(self, i_forward: Tensor, i_adjoint: Tensor, i_interference: Tensor,
                           rows: Tensor | None = None) -> Tensor:
        """dL/dθ = Σ_rows w·(I_t − I_f − I_a)/2 from the three intensity maps [..., B, R]
        (each row × ``rows`` [..., B] when given: the scale of a normalized adjoint source).
        With a known ``transmission`` T [..., R] (every column attenuates all modes alike):
        Σ_rows w·(I_t − I_f − T²·I_a)/(2T), the controller's correction (module docstring)."""
        if self.transmission is None:
            return self._collect(0.5 * (i_interference - i_forward - i_adjoint), rows)
        t = self.transmission[..., None, :].to(i_forward.device)
        return self._collect(0.5 * ((i_interference - i_forward) / t - t * i_adjoint), rows)

    def gradient(self, phases: Tensor, x: Tensor, g: Tensor, *,
                 tap: Callable[[Tensor, Tensor], Tensor] | None = None,
                 read: Callable[[Tensor], Tensor] | None = None,
                 inject: Callable[[Tensor], Tensor] | None = None) -> AdjointResult:
        """Hughes' three passes (module docstring) for inputs x [..., B, n_in] and output
        errors g [..., B, n_out] (g = ∂L/∂Re y + i ∂L/∂Im y).

        Hooks for a chip's non-idealities (default: exact): ``tap(intensity [..., B, R],
        power [..., B, 1])`` reads the monitor photodiodes (``power``: the pass's input power,
        an upper bound of every tap by power conservation); ``read(field)`` measures the
        complex adjoint field leaving the inputs (I/Q coherent detection); ``inject(field)``
        generates the time-reversed input (I/Q modulators)."""
        tap = tap or (lambda i, p: i)
        read = read or (lambda f: f)
        inject = inject or (lambda f: f)
        xin = self.pad(x)
        y, f = self.forward(phases, xin)
        bout = self.pad(torch.as_tensor(g).to(torch.complex128).conj())
        x_adj, a = self.backward(phases, bout)
        x_adj = read(x_adj)
        x_tr = inject(xin + (1j * x_adj).conj())
        _, t = self.forward(phases, x_tr)
        power = lambda v: (v.real.square() + v.imag.square()).sum(-1, keepdim=True)  # noqa: E731
        i_f = tap(f.real.square() + f.imag.square(), power(xin))
        i_a = tap(a.real.square() + a.imag.square(), power(bout))
        i_t = tap(t.real.square() + t.imag.square(), power(x_tr))
        return AdjointResult(self.intensity_gradient(i_f, i_a, i_t), x_adj, y)


class MeasuredLinear(torch.autograd.Function):
    """An optical pass inside the electronic controller's autograd graph: ``forward(v, phases,
    run, adjoint)`` returns ``out, saved = run(v)`` (the chip's forward pass and readings) and
    the backward is ``dv, dphases = adjoint(saved, dL/dout)`` — measured on the chip (Hughes'
    adjoint and interference passes), not derived by autograd. Everything electronic around
    it (biases, activations, TT reshapes) is differentiated digitally by torch."""

    @staticmethod
    def forward(ctx, v, phases, run, adjoint):  # noqa: D102 - see the class docstring
        out, ctx.saved = run(v)
        ctx.adjoint = adjoint
        return out

    @staticmethod
    def backward(ctx, grad_out):  # noqa: D102
        dv, dphases = ctx.adjoint(ctx.saved, grad_out)
        return dv, dphases, None, None

"""Chip calibration from detector readings only, and weight mapping that uses it.

A lab characterises a chip before it maps weights onto it: it programs phases, sends light
in and reads detectors, and fits the device model's unknown parameters to what it read.
:func:`calibrate` does that here, block by block, through ``chip.measure_block`` (the
calibration access of :class:`photonic_sim.chip.Chip`; a chip served over TCP offers it
through :class:`photonic_sim.backend.RemoteChip`, bit for bit, and a lab's
:class:`photonic_sim.backend.HardwareChip` by implementing ``program_block`` and
``read_block``). It never reads the
chip's internals: what it knows is the *form* of the device model and the card's nominal
values (docs/physics.md#non-idealities):

    realised phase = γ(1 + ε)·V(q(t))²  (+ K·heater phases of the block)  + β   (U/V phases)

with q the b-bit quantizer of the target t, V the drive voltage for the nominal γ (clamped
to V_max), K the card's crosstalk pattern, ε the per-shifter γ error, β the per-shifter phase
bias (the Σ attenuators have none), couplers κ = 0.5 + δκ. Unknowns per hardware block: β and
ε of every shifter, one crosstalk factor (the card's nominal as start), one overall amplitude
(uniform loss), and κ of every coupler when the card says couplers are imbalanced.

Procedure, per hardware block: ``settings`` random target vectors (U/V uniform in [0, 2π),
Σ in [0, π]), each measured with the k unit inputs (I and Q readings: the complex block
matrix W, up to noise); then least squares ‖a·W_model(t; β, ε, c, κ) − W_measured‖² by Adam
on the offline model (autograd; the quantizer needs no gradient: t is given). Because the
readings only see the block matrix, some biases are degenerate with others (e.g. an input
phase-screen offset on the top mode of an MZI and that MZI's external phase φ add up): the
fit returns one member of each equivalence class, which predicts the same matrices — what
weight mapping needs. The MZI internal phases θ have no such partner; their biases are
recovered individually (tests/test_calibration.py).

Weight mapping: :meth:`Calibration.compensate` turns the phases of an ideal mapping into
targets whose *model* realisation equals them: the drive law inverted per shifter (subtract
β, undo crosstalk by a fixed-point iteration, divide by 1 + ε), then, when couplers or the
amplitude differ from nominal, a short refinement of the targets on the block matrix.
``Experiment.weight_map(calibration=...)`` applies it.

Cost: every reading goes through the chip, so the calibration's queries, phase settings,
samples and conversions are in the chip's ledger; ``Calibration.ledger`` holds the share
spent by the calibration (totals after − before), for the cost model (``Experiment.cost``).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import torch

from photonic_sim.devices import DeviceCard, PhaseShifter, crosstalk_matrix

__all__ = ["Calibration", "calibrate"]

Tensor = torch.Tensor
TWO_PI = 2.0 * math.pi


@dataclass
class Calibration:
    """What :func:`calibrate` learned, per hardware block h (rows) — learned values, not the truth:

    * ``bias`` [H, bp] (rad; 0 on Σ attenuators), ``gamma_scale`` [H, bp] (1 + ε),
    * ``crosstalk`` [H] (the fitted factor of the card's crosstalk pattern; nominal = card's),
    * ``amplitude`` [H] (overall field amplitude of the block; 1 without loss),
    * ``kappa`` [H, m, 2] or None (coupler power ratios, fitted only for imbalanced couplers),
    * ``residual`` [H] (rms of |a·W_model − W_measured| over the fitted readings, field units),
    * ``ledger`` (the chip ledger totals the calibration spent: queries, phase_settings,
      samples, dac/adc_conversions, ...), ``blocks`` (the block measured for each hardware block).

    ``bp`` = phases per block (U, Σ, V order), ``m`` = MZIs per block.
    """

    bias: Tensor
    gamma_scale: Tensor
    crosstalk: Tensor
    amplitude: Tensor
    kappa: Tensor | None
    residual: Tensor
    ledger: dict = field(default_factory=dict)
    blocks: list[int] = field(default_factory=list)
    _model: _BlockModel | None = field(default=None, repr=False)

    def realise(self, hw: int | Tensor, targets: Tensor) -> Tensor:
        """Model of hardware block ``hw`` (an int, or long [P]: one per row): targets [P, bp] →
        realised phases [P, bp] (rad)."""
        gs, factor, bias = self._params(hw)
        return self._model.realise(targets, gs, factor, bias)

    def matrix(self, hw: int | Tensor, targets: Tensor) -> Tensor:
        """Model block matrix [P, k, k] (complex128) of hardware block ``hw`` (as in
        :meth:`realise`) at ``targets`` [P, bp]."""
        idx = torch.as_tensor(hw)
        amp = self.amplitude[idx]
        amp = amp[:, None, None] if idx.ndim else amp
        kappa = None if self.kappa is None else self.kappa[idx]
        return amp * self._model.block.matrix(self.realise(hw, targets), kappa=kappa)

    def _params(self, hw: int | Tensor) -> tuple[Tensor, Tensor, Tensor]:
        idx = torch.as_tensor(hw)
        factor = self.crosstalk[idx]
        return self.gamma_scale[idx], factor[:, None] if idx.ndim else factor, self.bias[idx]

    def compensate(self, network, phases: Tensor, *, refine_steps: int = 200) -> Tensor:
        """Control vector [N] whose realisation on the calibrated chip gives the block matrices
        the IDEAL model gives for ``phases`` [N] (module docstring); electronic biases are kept.
        ``refine_steps``: Adam steps on the targets (all blocks at once) when couplers or the
        amplitude are not nominal."""
        model = self._model
        bp, nb = model.block.num_phases, network.num_blocks
        ph = torch.as_tensor(phases, dtype=torch.float64).detach().cpu()
        out = ph.clone()
        want = ph[: nb * bp].reshape(nb, bp)
        hw = network.hw_block.cpu()
        t = model.invert(want, *self._params(hw))
        nominal = self.kappa is None and bool(torch.allclose(self.amplitude, torch.ones_like(self.amplitude),
                                                             atol=0.02))
        if refine_steps and not nominal:
            target = model.block.matrix(want)
            t = t.clone().requires_grad_(True)
            opt = torch.optim.Adam([t], lr=0.01)
            for _ in range(refine_steps):  # quantizer straight-through (``_BlockModel.drive``)
                opt.zero_grad()
                (self.matrix(hw, t) - target).abs().square().sum().backward()
                opt.step()
            t = t.detach()
        out[: nb * bp] = t.reshape(-1)
        return out


class _BlockModel:
    """The device model's form with the card's nominal values, for one block (module docstring)."""

    def __init__(self, network, card: DeviceCard) -> None:
        self.block = network.block
        self.shifter = PhaseShifter.from_card(card)
        bp = self.block.num_phases
        self.is_sigma = torch.zeros(bp, dtype=torch.bool)
        self.is_sigma[self.block.slices["S"]] = True
        pos = self.block.positions() * card.waveguide.mzi_pitch
        # the crosstalk pattern at factor 1 (K is linear in the factor for both models)
        self.pattern = crosstalk_matrix(pos, model=card.crosstalk.model, factor=1.0,
                                        decay_length=card.crosstalk.decay_length, pitch=card.waveguide.mzi_pitch,
                                        p_pi=card.phase_shifter.p_pi)
        self.factor = float(card.crosstalk.factor)

    def drive(self, targets: Tensor) -> Tensor:
        """Nominal phases γV(q(t))² [P, bp] of the quantized targets (V clamped at V_max);
        the quantizer passes gradients straight through (used when refining targets)."""
        ps = self.shifter
        targets = torch.as_tensor(targets, dtype=torch.float64)
        q = ps.quantize_mixed(targets.detach(), self.is_sigma)
        return (targets + (q - targets).detach()).clamp(0.0, ps.max_phase)

    def realise(self, targets: Tensor, gamma_scale: Tensor, factor: Tensor, bias: Tensor, *,
                drive: Tensor | None = None) -> Tensor:
        """Realised phases: heater h = (1+ε)·drive, + factor·K·h, + β on U/V (``drive``: a
        precomputed ``drive(targets)``)."""
        h = gamma_scale * (self.drive(targets) if drive is None else drive)
        return h + factor * (h @ self.pattern.T) + bias * ~self.is_sigma

    def invert(self, want: Tensor, gamma_scale: Tensor, factor: Tensor, bias: Tensor, iters: int = 20) -> Tensor:
        """Targets t [P, bp] with realise(t) ≡ ``want`` (mod 2π on U/V; Σ exactly, in [0, π]),
        quantization aside: heater h = wrap(want − β − factor·K·h), t = h / (1 + ε)."""
        with torch.no_grad():
            gs, f, b = gamma_scale.detach(), factor.detach(), bias.detach()
            sigma = self.is_sigma
            goal = torch.where(sigma, _fold(want), want - b)
            h = torch.where(sigma, goal, torch.remainder(goal, TWO_PI))
            for _ in range(iters):
                dx = f * (h @ self.pattern.T)
                h = torch.where(sigma, (goal - dx).clamp_min(0.0), torch.remainder(goal - dx, TWO_PI))
            return h / gs


def _fold(theta: Tensor) -> Tensor:
    """Σ phases folded into [0, π] (σ = sin(θ/2) is even about π)."""
    r = torch.remainder(theta, TWO_PI)
    return torch.where(r > math.pi, TWO_PI - r, r)


def calibrate(chip, network, card: DeviceCard, *, settings: int = 48, steps: int = 300, lr: float = 0.1,
              seed: int = 0, fit_kappa: bool | None = None) -> Calibration:
    """Calibrate every hardware block of ``chip`` from its readings (module docstring).

    ``chip``: anything with ``measure_block(block, inputs [B, k], phases [P, bp]) -> complex
    [P, B, k]`` and a ``ledger`` (a :class:`~photonic_sim.chip.Chip`, or a lab's chip that offers
    the same operation); ``network``: the chip's layout (a ``PhotonicNetwork``: block type,
    block → hardware block map; no weights are read); ``card``: the nominal device card.
    ``settings`` random phase settings per hardware block (each one query of the k unit
    inputs), ``steps`` Adam steps at ``lr`` per block, ``seed`` for the settings,
    ``fit_kappa`` (default: when ``card.coupler.imbalance_std`` > 0 or κ ≠ 0.5).
    """
    if settings < 1 or steps < 0:
        raise ValueError("settings/steps: need settings >= 1 and steps >= 0")
    model = _BlockModel(network, card)
    bp, k = model.block.num_phases, network.block_size
    if fit_kappa is None:
        fit_kappa = card.coupler.imbalance_std > 0 or card.coupler.kappa != 0.5
    gen = torch.Generator().manual_seed(int(seed))
    before = dict(chip.ledger.totals())
    hw_of = network.hw_block.cpu()
    firsts = [int((hw_of == h).nonzero()[0]) for h in range(int(network.num_hw_blocks))]
    eye = torch.eye(k, dtype=torch.float64)
    ts, ws = [], []
    for b in firsts:
        t = torch.rand(settings, bp, generator=gen, dtype=torch.float64) * TWO_PI
        ts.append(torch.where(model.is_sigma, t / 2.0, t))
        # reading [P, j, :] = W e_j: transpose to W [P, k, k]
        ws.append(chip.measure_block(b, eye, ts[-1]).to(torch.complex128).transpose(-1, -2))
    after = chip.ledger.totals()
    spent = {key: int(after[key]) - int(before.get(key, 0)) for key in after}
    fit = _fit(model, torch.stack(ts), torch.stack(ws), steps, lr, fit_kappa, float(card.coupler.kappa))
    kappa = fit.pop("kappa")
    return Calibration(**fit, kappa=kappa if fit_kappa else None, ledger=spent, blocks=firsts, _model=model)


def _fit(model: _BlockModel, t: Tensor, w_meas: Tensor, steps: int, lr: float, fit_kappa: bool,
         kappa0: float) -> dict:
    """Least squares of all hardware blocks at once (independent parameters per block, so the
    summed loss fits each block on its own): ``t`` [H, P, bp], ``w_meas`` [H, P, k, k]."""
    h, bp, m = t.shape[0], model.block.num_phases, model.block.num_mzis
    uv = ~model.is_sigma
    bias = torch.zeros(h, 1, bp, dtype=torch.float64, requires_grad=True)
    eps = torch.zeros(h, 1, bp, dtype=torch.float64, requires_grad=True)
    factor = torch.full((h, 1, 1), model.factor, dtype=torch.float64, requires_grad=True)
    amp = torch.ones(h, 1, 1, 1, dtype=torch.float64, requires_grad=True)
    kappa = torch.full((h, 1, m, 2), kappa0, dtype=torch.float64, requires_grad=fit_kappa)
    opt = torch.optim.Adam([{"params": [bias], "lr": lr}, {"params": [eps, factor], "lr": lr * 0.02},
                            {"params": [amp] + ([kappa] if fit_kappa else []), "lr": lr * 0.1}])
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, max(steps, 1))

    drive = model.drive(t)  # the targets are fixed: quantize once

    sigma_g = model.shifter.gamma_noise_std
    readings = w_meas[0].numel()

    def loss_fn() -> Tensor:
        phi = model.realise(t, 1.0 + eps, factor, bias * uv, drive=drive)
        w = amp * model.block.matrix(phi, kappa=kappa.clamp(0.0, 1.0) if fit_kappa else None)
        mse = (w - w_meas).abs().square().mean((1, 2, 3))
        if sigma_g == 0:  # the card has no γ error: ε stays 0
            return mse.sum()
        # Gaussian prior ε ~ N(0, σ_γ²) of the card, weighed against the readings' noise (the
        # current residual, an empirical-Bayes estimate): a MAP fit of ε, which the readings
        # alone barely resolve (its effect, ≲ 3σ_γ·2π rad, is near the readout noise)
        prior = (eps[:, 0] / sigma_g).square().sum(-1) * (mse.detach() / readings)
        return (mse + prior).sum()

    for _ in range(steps):
        opt.zero_grad()
        loss_fn().backward()
        opt.step()
        sched.step()
    with torch.no_grad():
        phi = model.realise(t, 1.0 + eps, factor, bias * uv, drive=drive)
        w = amp * model.block.matrix(phi, kappa=kappa.clamp(0.0, 1.0) if fit_kappa else None)
        residual = (w - w_meas).abs().square().mean((1, 2, 3)).sqrt()
    wrapped = torch.remainder(bias.detach() + math.pi, TWO_PI) - math.pi
    return {"bias": torch.where(uv, wrapped, 0.0)[:, 0], "gamma_scale": 1.0 + eps.detach()[:, 0],
            "crosstalk": factor.detach().reshape(h), "amplitude": amp.detach().reshape(h),
            "kappa": kappa.detach().clamp(0.0, 1.0)[:, 0], "residual": residual}

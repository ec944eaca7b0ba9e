"""BP-free PINN training on the photonic chip: HJB-20 and Black-Scholes (issue 5, docs/pinn.md).

    python benchmarks/bench_pinn.py [--quick | --paper] [--cases a,b] [--device cpu|cuda]
                                    [--steps N] [--polish-steps N] [--points N] [--q Q] [--sigma S]
                                    [--test-points N] [--residual-points N] [--input-gain G[,G]] [--dry-run]
                                    [--threads N] [--out FILE.json]

Cases (rows of the table):

* ``hjb_tonn_zo``  HJB-20 on a TONN, ZO-RGE (Adam) + sparse-grid Stein (σ 0.1, level 3), then
  a lattice polish (``ZO_POLISH``: two-sided Rademacher RGE with steps of one phase LSB);
* ``hjb_tonn_fo``  the same network, first-order baseline: autograd derivatives, Adam on exact
  gradients through the (straight-through) chip — not in situ;
* ``hjb_tonn_fo_sg`` the same first-order baseline on the ZO rows' loss: sparse-grid Stein
  derivatives (the seed paper's "FO + SG" row), so ZO vs FO + SG isolates the estimator's noise
  from the smoothing;
* ``hjb_dense_zo`` the dense ONN of the same layer widths, trained like ``hjb_tonn_zo``;
* ``bs_tonn_zo``   Black-Scholes on a small TONN (scenarios/black_scholes_tonn.yaml's model),
  ZO-RGE + sparse-grid Stein;
* ``burgers_tonn_zo`` / ``darcy_tonn_zo``: Burgers (ν = 0.01/π) and the Darcy-type Poisson
  problem on the same network, trained like ``bs_tonn_zo``; ``burgers_tonn_fo`` /
  ``darcy_tonn_fo`` their first-order baselines (autograd derivatives, Adam lr 0.03);
  ``burgers_tonn_fo_sg`` / ``darcy_tonn_fo_sg`` first order on the ZO rows' Stein loss (FO + SG
  vs FO + AD isolates the smoothing, ZO vs FO + SG the zeroth-order estimate);
* ``darcy_tonn_recipe`` the Darcy recipe of scenarios/darcy_tonn.yaml (``RECIPE_CASES``: ZO
  lr 0.01, mu 0.03 rad on central finite differences at 10 points per step, 80 000 steps, then a
  lattice polish at q 32 for 35 000 steps, then 1000 steps of lattice descent on the H^-2 norm of
  the residual from the best-scored phases (``LATTICE_DESCENT``; ``--refine-steps``), evaluating
  every 1000 steps and ending on the evaluation with the lowest H^-2 norm); ``darcy_zo_fd`` a diagnosis row (finite
  differences, 3000 steps).
* ``burgers_*`` (and ``darcy_zo_fd``) diagnosis cases (``DIAGNOSIS_CASES``, run only when named in ``--cases``):
  the Burgers rows with a wider network, an input gain, adaptive resampling, causal weights,
  per-coordinate Stein widths, finite differences, Fourier-feature inputs (``burgers_*ff*``,
  task option ``fourier_features``), the odd symmetry (``burgers_*odd``, task option
  ``symmetry``), a separable model (``burgers_sep_*``, task option ``separable``) (docs/pinn.md,
  Burgers section).

Chip: the silicon_thermo_optic card's phase-domain non-idealities (8-bit phases, γ-noise,
thermal crosstalk, manufacturing bias), coherent readout, ``Chip(exact_readout=True)``: no
DAC/ADC quantization and no detector noise, the seed paper's noise model — with the card's real
readout, the level-3 sparse grid in d = 21 amplifies each reading's noise by ~3e5 in the
Laplacian (docs/pinn.md). ``--noisy-readout`` keeps the card's readout chain. No insertion
loss (``Experiment(insertion_loss=False)``, as the PINN scenarios' ``chip.insertion_loss:
false``): the published tables these rows reproduce were measured without it.

Default (CPU) mode: HJB on ``HJB_SMALL`` (TT 21→64→64→1), 1 collocation point and 1000
steps per case (ZO: q 64, lr 0.03, μ 0.03 rad; then 1200 polish steps, q 128 two-sided, lr 0.003,
μ = one LSB), prediction u_σ with a level-2 grid on 10 000 points; the row reports the MSE
before the polish too (``MSE pre``);
Black-Scholes 50 points, 1500 steps (ZO: lr 0.01, μ 0.01 rad); docs/pinn.md has the numbers.
``--paper``: the hjb20 preset, 100 points, level 3 everywhere, 2000 steps (+ 600 polish steps).

Every row is a :class:`photonic_sim.Experiment` (the assembly ``photonic-sim run`` uses): its
seed sets the chip, the initial phases and (seed + 1) the strategy's generator.

Each row also reports, outside the training ledger, the metric of the untrained network (on a
twin chip with the same static errors: ``init L2``) and of the built-in transform alone
(NN ≡ 0: ``NN=0 L2``), so a trained rel. L2 can be judged against both.

Prints a table (MSE, rel. L2, residual, queries, training energy J, latency s, wall s) and
writes nothing else unless ``--out`` is given (JSON rows). ``--dry-run`` prints each case's
configuration (JSON; with ``--out`` written there) and trains nothing.
"""

from __future__ import annotations

import argparse
import json
import math
import time
from dataclasses import replace

import torch

from photonic_sim import Experiment
from photonic_sim.cores.spec import NetworkSpec, dense, preset, tt
from photonic_sim.training.names import EVAL_LOSSES

CARD = "silicon_thermo_optic"
SIGMA = 0.1  # Stein smoothing width in the PDE's own coordinates (the seed paper's value; --sigma)
HJB_SMALL = NetworkSpec("hjb20_small", (
    tt((3, 7), (8, 8), 2, "sin"),
    tt((8, 8), (8, 8), 2, "sin"),
    dense(64, 1),
))
BS_TT = NetworkSpec("bs_tt", (
    tt((1, 2), (8, 8), (1, 2, 1), "sin"),
    tt((4, 4, 4), (4, 4, 4), (1, 2, 2, 1), "sin"),
    dense(64, 1),
))
ZO = dict(strategy="zo-rge", lr=0.01, q=16, mu=0.01, optimizer="adam", schedule="cosine")
# HJB: larger steps and smoothing (lr 0.03, μ 0.03 rad > the 8-bit phase LSB 2π/256 = 0.025 rad,
# so a perturbation is not rounded away by the quantizer): 500 steps reach MSE 1.7e-4 where
# lr 0.01, μ 0.01 reach 1.0e-2; and q = 64 directions per step at that lr (fifth session):
# MSE 4.8e-5 / 3.2e-5 on seeds 0 / 1, where q = 16 gave 6.7e-5 / 2.5e-4 and q = 64 at lr 0.01
# 6.0e-4 (docs/pinn.md). ZO_STEP: that step and smoothing at q 16, the 2-d PDE rows' ZO
# wherever they leave the Black-Scholes lr / mu (Darcy recipe, Darcy and Burgers diagnoses).
ZO_STEP = dict(ZO, lr=0.03, mu=0.03)
ZO_HJB = dict(ZO_STEP, q=64)
# HJB lattice polish (eighth session), a second stage from the ZO end point: two-sided
# Rademacher directions of exactly one 8-bit phase LSB (2π/256 rad), so each perturbed shifter
# moves to its neighbouring code and every difference is a central difference at the lattice
# point the chip realises. The Gaussian μ 0.03 estimate is biased there (its expectation had
# cosine −0.20 with the gradient at the seed-2 end point; this one 0.78, the unbiased bound
# being 0.81). Adam restarts at lr 0.003, cosine over the polish steps. Directions per step
# matter more than steps (ninth session, seed-2 end point, 153 600 polish queries each):
# q 32 × 2400 steps 1.36e-5, q 64 × 1200 8.2e-6, q 128 × 600 5.4e-6 (q 32 × 600: 1.44e-5).
# At q 128 the polish is then limited by how far it travels (tenth/eleventh sessions): q 256
# does not pay, more steps do. The CPU rows polish for 1200 steps (seed 2: 3.1e-6 against
# 1.06e-5 after 600; five seeds in docs/pinn.md), about 14 min of CPU per row on one thread.
# The polish runs as stage 2 of a ``staged`` strategy in the same Trainer (collocation
# stream and ledger continue).
PHASE_LSB = 2 * math.pi / 2**8
ZO_POLISH = dict(strategy="zo-rge", lr=0.003, q=128, mu=PHASE_LSB, dist="rademacher", two_sided=True,
                 optimizer="adam", schedule="cosine")
FO = dict(strategy="fo", lr=0.03, optimizer="adam", schedule="cosine")  # lr 0.01: MSE 4.1e-4, 0.03: 2.0e-5
# The Darcy recipe's last stage: mixedtrain's accept/reject coordinate search, moves of one
# phase LSB on 2 coordinates per step (coord_fraction 0.001 of 2033 phases: 5 settings per
# step), on the evaluation loss (the residual's H^-2 norm on the 64 x 64 grid, the score the
# run keeps its phases by), from the kept phases (docs/pinn.md, Darcy).
LATTICE_DESCENT = dict(strategy="mixedtrain", loss="evaluation", lr=PHASE_LSB, coord_fraction=0.001)

# Per mode: the HJB / BS configuration (network, collocation points per step, steps, test and
# residual points, sparse-grid level of the evaluation's smoothed prediction, Stein width).
MODES = {
    "cpu": dict(hjb_spec=HJB_SMALL, hjb_points=1, hjb_steps=1000, hjb_polish_steps=1200, bs_points=50,
                bs_steps=1500, test_points=10000, residual_points=200, hjb_eval_level=2, sigma=SIGMA,
                darcy_steps=80000, darcy_polish_steps=35000, darcy_refine_steps=1000, darcy_points=10),
    "quick": dict(hjb_spec=HJB_SMALL, hjb_points=1, hjb_steps=30, hjb_polish_steps=5, bs_points=20,
                  bs_steps=60, test_points=1000, residual_points=20, hjb_eval_level=2, sigma=SIGMA,
                  darcy_steps=60, darcy_polish_steps=10, darcy_refine_steps=5, darcy_points=10),
    "paper": dict(hjb_spec=preset("hjb20"), hjb_points=100, hjb_steps=2000, hjb_polish_steps=600,
                  bs_points=100, bs_steps=2000, test_points=10000, residual_points=1000, hjb_eval_level=3, sigma=SIGMA,
                  darcy_steps=80000, darcy_polish_steps=35000, darcy_refine_steps=1000, darcy_points=10),
}
CASES = ("hjb_tonn_zo", "hjb_tonn_fo", "hjb_tonn_fo_sg", "hjb_dense_zo", "bs_tonn_zo",
         "burgers_tonn_zo", "burgers_tonn_fo", "darcy_tonn_zo", "darcy_tonn_fo",
         "burgers_tonn_fo_sg", "darcy_tonn_fo_sg", "darcy_tonn_recipe")
# The shipped Darcy recipe (scenarios/darcy_tonn.yaml, recipe pinn_zo_polish): ZO at mu 0.03 rad
# (above the 8-bit phase LSB, so perturbations are not rounded away) and Adam lr 0.01 on central
# finite differences (h 0.01: no Stein smoothing, so the trained network itself satisfies the
# PDE), 10 collocation points per step so that ~25 min of CPU buy 80 000 steps, then the HJB
# lattice polish at q 32 for 35 000 steps, ending on the evaluation (every 1000 steps) with the
# lowest H^-2 norm of the residual (task eval_loss h_minus_2, recipe keep lowest_eval_loss: on
# Darcy that norm is the L2 error, estimated without the reference), then the lattice descent on
# that norm: seeds 0 / 1 / 2 rel. L2 1.69e-3 / 3.10e-3 / 1.35e-3 against FO + AD 2.32e-3 /
# 1.93e-3 / 2.21e-3 (without the descent 2.89e-3 / 4.88e-3 / 2.48e-3; ending on the last step
# of the polish: 5.28e-3 / 1.11e-2 / 1.04e-2; docs/pinn.md). Before it: 50 points, lr 0.03,
# 40 000 + 12 000 steps (1.32e-2 / 7.82e-3 / 7.24e-3); the first recipe, sparse-grid Stein
# 0.1 -> 0.02 over 3000 steps and no polish (1.17e-2 / 1.21e-1 / 1.94e-2). Step counts per mode:
# MODES' darcy_steps, darcy_polish_steps, darcy_refine_steps; points per step: darcy_points.
RECIPE_CASES = {
    "darcy_tonn_recipe": dict(strategy=dict(ZO_STEP, lr=0.01), estimator="finite_difference",
                              polish=dict(ZO_POLISH, q=32), refine=dict(LATTICE_DESCENT),
                              task_options=dict(eval_loss="h_minus_2"),
                              eval_every=1000, keep="lowest_eval_loss"),
}
_PDE = {"hjb": "hjb20", "bs": "black_scholes", "burgers": "burgers", "darcy": "darcy"}
# Burgers diagnosis (issue 25, docs/pinn.md#burgers-where-the-error-comes-from): each case is a
# base row with changes (network, strategy, estimator, Stein width (one or one per coordinate
# (x, t)), steps, task options). BURGERS_WIDE has 4.5x the phases of BS_TT (width 256, TT rank 4);
# BURGERS_GAIN scales the modulator input of x by 10 (steeper first-layer sine features in x, for
# the front at x = 0).
BURGERS_WIDE = NetworkSpec("burgers_wide", (
    tt((1, 2), (16, 16), (1, 4, 1), "sin"),
    tt((4, 8, 8), (4, 8, 8), (1, 4, 4, 1), "sin"),
    dense(256, 1),
))
BURGERS_GAIN = [10.0, 1.0]
DIAGNOSIS_CASES = {
    "burgers_fo_gain": dict(base="burgers_tonn_fo", task_options=dict(input_gain=BURGERS_GAIN)),
    "burgers_wide_fo_gain": dict(base="burgers_tonn_fo", spec=BURGERS_WIDE,
                                 task_options=dict(input_gain=BURGERS_GAIN)),
    # FO + AD with a 5x steeper x input (gain 50): first-layer sine features of higher frequency.
    "burgers_fo_gain50": dict(base="burgers_tonn_fo", task_options=dict(input_gain=[50.0, 1.0])),
    # ... and with causal time-slice weights (eps 1, 10 slices: the loss is ~0.3 per slice).
    "burgers_fo_gain50_causal": dict(base="burgers_tonn_fo", task_options=dict(
        input_gain=[50.0, 1.0], causal_eps=1.0, causal_bins=10)),
    # FO + AD with residual-based adaptive resampling (RAD, k = c = 1, pool 4000): the front
    # (width ~0.003 in x) holds ~1 % of uniform points.
    "burgers_fo_gain_rad": dict(base="burgers_tonn_fo", task_options=dict(
        input_gain=BURGERS_GAIN, resample_pool=4000, resample_k=1.0, resample_c=1.0)),
    # FO on the Stein loss: isotropic sigma 0.1 (the ZO rows' width) and per coordinate (x, t)
    # = (0.01, 0.05): narrow across the front (smoothing the exact solution in x by 0.01 costs
    # 3.6e-2), wider in t, where the solution is smooth.
    "burgers_fo_sg_gain": dict(base="burgers_tonn_fo_sg", task_options=dict(input_gain=BURGERS_GAIN)),
    "burgers_fo_sg_aniso": dict(base="burgers_tonn_fo_sg", sigma=[0.01, 0.05],
                                task_options=dict(input_gain=BURGERS_GAIN)),
    # ZO (the Darcy recipe's lr 0.03, mu 0.03 rad) with the per-coordinate Stein width, and with
    # central finite differences (step 0.01, no smoothing).
    "burgers_zo_sg_aniso": dict(base="burgers_tonn_zo", sigma=[0.01, 0.05], strategy=ZO_STEP,
                                task_options=dict(input_gain=BURGERS_GAIN)),
    "burgers_zo_fd_gain": dict(base="burgers_tonn_zo", estimator="finite_difference",
                               strategy=ZO_STEP, task_options=dict(input_gain=BURGERS_GAIN)),
    "burgers_zo_fd_gain50_causal": dict(base="burgers_tonn_zo", estimator="finite_difference",
                                        strategy=ZO_STEP, task_options=dict(
                                            input_gain=[50.0, 1.0], causal_eps=1.0, causal_bins=10)),
}
# Fourier-feature inputs (task option fourier_features, docs/pinn.md): the modulators get
# [50 x, t, sin(2 pi B z), cos(2 pi B z)] with 7 frequencies B_k = (s N(0,1), N(0,1)) over the
# normalised (x, t) (x keeps the gain-50 input): 16 inputs, so BS_TT's first layer takes (4, 4)
# modes. Scales s = 1, 2, 5 cycles per unit of x, with and without causal weights; "_nogain":
# x enters with gain 1 (the features alone carry the high frequencies).
BS_TT_FF = NetworkSpec("bs_tt_ff16", (
    tt((4, 4), (8, 8), (1, 2, 1), "sin"),
    tt((4, 4, 4), (4, 4, 4), (1, 2, 2, 1), "sin"),
    dense(64, 1),
))
for _s in (1, 2, 5):
    _ff = dict(count=7, scale=[float(_s), 1.0], seed=0)
    DIAGNOSIS_CASES[f"burgers_fo_ff{_s}"] = dict(base="burgers_tonn_fo", spec=BS_TT_FF, task_options=dict(
        input_gain=[50.0, 1.0], fourier_features=_ff))
    DIAGNOSIS_CASES[f"burgers_fo_ff{_s}_causal"] = dict(base="burgers_tonn_fo", spec=BS_TT_FF, task_options=dict(
        input_gain=[50.0, 1.0], fourier_features=_ff, causal_eps=1.0, causal_bins=10))
    DIAGNOSIS_CASES[f"burgers_fo_ff{_s}_nogain"] = dict(base="burgers_tonn_fo", spec=BS_TT_FF, task_options=dict(
        fourier_features=_ff))
# More and higher frequencies: 15 of them (32 inputs, first layer (4, 8) modes), scales 1 and 10
# in x, causal weights.
BS_TT_FF32 = NetworkSpec("bs_tt_ff32", (
    tt((4, 8), (8, 8), (1, 2, 1), "sin"),
    tt((4, 4, 4), (4, 4, 4), (1, 2, 2, 1), "sin"),
    dense(64, 1),
))
for _s in (1, 10):
    DIAGNOSIS_CASES[f"burgers_fo_ff{_s}x15_causal"] = dict(base="burgers_tonn_fo", spec=BS_TT_FF32, task_options=dict(
        input_gain=[50.0, 1.0], fourier_features=dict(count=15, scale=[float(_s), 1.0], seed=0),
        causal_eps=1.0, causal_bins=10))
# BP-free with the best FO configuration (scale 1, causal weights): ZO + finite differences as
# burgers_zo_fd_gain50_causal.
DIAGNOSIS_CASES["burgers_zo_fd_ff1_causal"] = dict(
    base="burgers_tonn_zo", spec=BS_TT_FF, estimator="finite_difference", strategy=ZO_STEP,
    task_options=dict(input_gain=[50.0, 1.0], fourier_features=dict(count=7, scale=[1.0, 1.0], seed=0),
                      causal_eps=1.0, causal_bins=10))
# Darcy diagnosis (docs/pinn.md#darcy-where-the-error-came-from-and-the-shipped-recipe): the
# former recipe's ZO settings and 3000 steps on central finite differences instead of the Stein
# loss (seed 1: rel. L2 0.119, the Stein run's plateau); more steps (--steps) are what move it.
DIAGNOSIS_CASES["darcy_zo_fd"] = dict(base="darcy_tonn_zo", estimator="finite_difference",
                                    strategy=ZO_STEP, steps=3000)
# The former Darcy recipe (before pinn_zo_polish): the same ZO settings on the Stein loss, the
# width shrinking 0.1 -> 0.02 over the run's 3000 steps (seeds 0 / 1 / 2: rel. L2 1.17e-2 /
# 1.21e-1 / 1.94e-2), kept as the row the shipped recipe is compared with in docs/pinn.md.
DIAGNOSIS_CASES["darcy_zo_sg_shrink"] = dict(base="darcy_tonn_zo", strategy=ZO_STEP, steps=3000,
                                           task_options=dict(sigma_final=0.02))
# Points per step (docs/pinn.md, Darcy): FO + AD at the ZO recipe's 10 points per step, uniform and
# scrambled-Sobol (task sampling: sobol) points (seed 1, 1500 steps: rel. L2 1.05e-2 / 2.52e-3;
# at 50 uniform points 1.93e-3): the sampling noise of few points, not the estimator, sets the floor.
DIAGNOSIS_CASES["darcy_fo_10pts"] = dict(base="darcy_tonn_fo", collocation=10)
DIAGNOSIS_CASES["darcy_fo_10pts_sobol"] = dict(base="darcy_tonn_fo", collocation=10,
                                               task_options=dict(sampling="sobol"))
DIAGNOSIS_CASES["burgers_fo_gain50_causal_sobol"] = dict(base="burgers_tonn_fo", task_options=dict(
    input_gain=[50.0, 1.0], causal_eps=1.0, causal_bins=10, sampling="sobol"))
# The solution's odd symmetry in x built into the network (task option symmetry, docs/pinn.md):
# first order on the best FO configuration above at Adam lr 0.1 (lr 0.01 / 0.03 / 0.3 end higher),
# and BP-free as burgers_zo_fd_gain50_causal.
DIAGNOSIS_CASES["burgers_fo_odd"] = dict(base="burgers_tonn_fo", strategy=dict(FO, lr=0.1), task_options=dict(
    input_gain=[50.0, 1.0], causal_eps=1.0, causal_bins=10, sampling="sobol", symmetry={"x": "odd"}))
DIAGNOSIS_CASES["burgers_zo_fd_odd"] = dict(
    DIAGNOSIS_CASES["burgers_zo_fd_gain50_causal"],
    task_options=dict(DIAGNOSIS_CASES["burgers_zo_fd_gain50_causal"]["task_options"], symmetry={"x": "odd"}))
# ... on the 4.5x wider network, which fits the solution itself better (bench_pinn_fit.py --wide).
DIAGNOSIS_CASES["burgers_wide_fo_odd"] = dict(DIAGNOSIS_CASES["burgers_fo_odd"], spec=BURGERS_WIDE)
DIAGNOSIS_CASES["burgers_wide_zo_fd_odd"] = dict(DIAGNOSIS_CASES["burgers_zo_fd_odd"], spec=BURGERS_WIDE)
# Separable inputs (task option separable, docs/pinn.md): NN(x, t) = Σ_r F(x)_r·F(t)_r, the factors
# read from ONE network 4 -> 8 (each row carries one coordinate and its tag), the odd symmetry on top;
# first order at Adam lr 0.03 (lr 0.1, burgers_fo_odd's, ends higher here: 0.175 against 0.103), ZO at
# lr 0.01 (4000 steps: lr 0.003 / 0.03 / 0.1 end on 0.292 / 0.325 / 0.329 against 0.260).
BURGERS_SEP = NetworkSpec("burgers_sep8", (
    tt((2, 2), (8, 8), (1, 2, 1), "sin"),
    tt((4, 4, 4), (4, 4, 4), (1, 2, 2, 1), "sin"),
    dense(64, 8),
))
DIAGNOSIS_CASES["burgers_sep_fo_odd"] = dict(DIAGNOSIS_CASES["burgers_fo_odd"], spec=BURGERS_SEP, strategy=dict(FO, lr=0.03),
                                              task_options=dict(DIAGNOSIS_CASES["burgers_fo_odd"]["task_options"], separable=8))
DIAGNOSIS_CASES["burgers_sep_fo_fd_odd"] = dict(DIAGNOSIS_CASES["burgers_sep_fo_odd"], estimator="finite_difference")
DIAGNOSIS_CASES["burgers_sep_zo_fd_odd"] = dict(DIAGNOSIS_CASES["burgers_zo_fd_odd"], spec=BURGERS_SEP,
                                                 strategy=dict(ZO_STEP, lr=0.01), task_options=dict(
                                                     DIAGNOSIS_CASES["burgers_zo_fd_odd"]["task_options"], separable=8))
# Two-sided (antithetic) directions at the same queries per step (q 8 pairs: 16 settings, against
# 17 for one-sided q 16), on bs_tt and on the separable network (docs/pinn.md).
DIAGNOSIS_CASES["burgers_zo_fd_odd_ts"] = dict(DIAGNOSIS_CASES["burgers_zo_fd_odd"], strategy=dict(
    DIAGNOSIS_CASES["burgers_zo_fd_odd"]["strategy"], q=8, two_sided=True))
DIAGNOSIS_CASES["burgers_sep_zo_fd_odd_ts"] = dict(DIAGNOSIS_CASES["burgers_sep_zo_fd_odd"], strategy=dict(
    DIAGNOSIS_CASES["burgers_sep_zo_fd_odd"]["strategy"], q=8, two_sided=True))
# The finite-difference step (docs/pinn.md): first order on the FD loss instead of exact derivatives
# (h 0.01, the ZO rows' step, and h (x, t) = (0.002, 0.01)), and ZO at the smaller x step.
DIAGNOSIS_CASES["burgers_fo_fd_odd"] = dict(DIAGNOSIS_CASES["burgers_fo_odd"], estimator="finite_difference")
DIAGNOSIS_CASES["burgers_fo_fd2_odd"] = dict(DIAGNOSIS_CASES["burgers_fo_fd_odd"], task_options=dict(
    DIAGNOSIS_CASES["burgers_fo_odd"]["task_options"], fd_step=[0.002, 0.01]))
DIAGNOSIS_CASES["burgers_zo_fd2_odd"] = dict(DIAGNOSIS_CASES["burgers_zo_fd_odd"], task_options=dict(
    DIAGNOSIS_CASES["burgers_zo_fd_odd"]["task_options"], fd_step=[0.002, 0.01]))
# Random-subspace Gauss-Newton from the residual vectors (strategy zo-gn, docs/pinn.md): each
# step reads the weighted residuals at q + 1 = 17 settings (one call, as burgers_zo_fd_odd's 17),
# probes of one DAC code on 64 phases each, and takes the damped Gauss-Newton step in their span
# (SGD lr 1, cosine, largest phase change 0.1 rad).
ZO_GN = dict(strategy="zo-gn", lr=1.0, optimizer="sgd", schedule="cosine", q=16, nnz=64, codes=1,
             damping=0.1, max_step=0.1)
DIAGNOSIS_CASES["burgers_gn_odd"] = dict(DIAGNOSIS_CASES["burgers_zo_fd_odd"], strategy=ZO_GN)
DIAGNOSIS_CASES["burgers_sep_gn_odd"] = dict(DIAGNOSIS_CASES["burgers_sep_zo_fd_odd"], strategy=ZO_GN)
# The separable network with a 128-dimensional subspace (129 settings a step) and a 10x smaller x
# step (h (x, t) = (0.001, 0.01)): the configuration scenarios/burgers_tonn.yaml shipped before
# its grid (at 250 points a step, --points 250). The subspace size was the lever: q 16 / 64 / 128 / 256 at 100 points and
# h 0.01 ended on 0.193 / 0.139 / 0.106 / (h_x 0.001) 0.083 (docs/pinn.md).
DIAGNOSIS_CASES["burgers_sep_gn128_odd"] = dict(
    DIAGNOSIS_CASES["burgers_sep_gn_odd"], strategy=dict(ZO_GN, q=128),
    task_options=dict(DIAGNOSIS_CASES["burgers_sep_gn_odd"]["task_options"], fd_step=[0.001, 0.01]))
# ... on a grid of points a step (sampling grid: --points 50 makes 50 x 50) with x stretched about
# the front (input_warp, width 0.05) at modulator gain 20: the configuration scenarios/burgers_tonn.yaml
# ships (16 000 steps: rel. L2 0.0324 / 0.0304 / 0.0339 at seeds 0 / 1 / 2, docs/pinn.md).
DIAGNOSIS_CASES["burgers_sep_gn128_grid_warp"] = dict(
    DIAGNOSIS_CASES["burgers_sep_gn128_odd"],
    task_options=dict(DIAGNOSIS_CASES["burgers_sep_gn128_odd"]["task_options"], sampling="grid",
                      input_warp={"x": 0.05}, input_gain=[20.0, 1.0]))
OPT_IN_CASES = tuple(DIAGNOSIS_CASES)  # run only when named in --cases (not in the default list)


def case_config(case: str, mode: dict) -> dict:
    """Everything one row needs (pde, network, accelerator, estimator, strategy, sizes).

    The 2-d PDEs (Black-Scholes, Burgers, Darcy) share the ``BS_TT`` network, the ZO recipe,
    the points and the steps of the Black-Scholes row."""
    hjb = case.startswith("hjb")
    fo = case.endswith(("_fo", "_fo_sg"))
    stein = not case.endswith("_fo")  # ZO rows and the FO + SG row
    if case in DIAGNOSIS_CASES:
        changes = dict(DIAGNOSIS_CASES[case])
        return dict(case_config(changes.pop("base"), mode), **changes)
    if case in RECIPE_CASES:
        rc = RECIPE_CASES[case]
        cfg = case_config(case.replace("_recipe", "_zo"), mode)
        return dict(cfg, strategy=dict(rc["strategy"]), estimator=rc["estimator"], polish=dict(rc["polish"]),
                    steps=mode["darcy_steps"], polish_steps=mode["darcy_polish_steps"],
                    refine=dict(rc["refine"]), refine_steps=mode["darcy_refine_steps"],
                    collocation=mode["darcy_points"], task_options=dict(rc["task_options"]),
                    eval_every=rc["eval_every"], keep=rc["keep"])
    return dict(
        pde=_PDE[case.split("_")[0]],
        spec=mode["hjb_spec"] if hjb else BS_TT,
        dense="_dense_" in case,
        estimator="sparse_grid" if stein else "autograd",
        strategy=dict(FO if fo else ZO_HJB if hjb else ZO),
        polish=dict(ZO_POLISH) if hjb and not fo else None,
        polish_steps=mode["hjb_polish_steps"] if hjb and not fo else 0,
        collocation=mode["hjb_points"] if hjb else mode["bs_points"],
        steps=mode["hjb_steps"] if hjb else mode["bs_steps"],
        test_points=mode["test_points"],
        residual_points=mode["residual_points"],
        eval_level=(mode["hjb_eval_level"] if hjb and stein else None),
        sigma=mode["sigma"],
    )


def experiment(cfg: dict, *, seed: int = 0, device: str = "cpu", noisy_readout: bool = False,
               steps: int | None = None) -> Experiment:
    """One configuration as a :class:`photonic_sim.Experiment`: a PDE task on the card's chip
    (coherent readout, float64; exact converters and detectors unless ``noisy_readout``; no
    insertion loss, as the published tables), the
    TONN or dense ONN on its accelerator card, and the row's strategy; HJB ZO rows run the ZO
    stage and the polish as one ``staged`` strategy. The recipe's steps are the first stage's
    (the run is continued into the polish by :func:`run_case`)."""
    n_steps = steps or cfg["steps"]
    options = dict(cfg["strategy"])
    if cfg["polish_steps"]:  # two stages on the same phases, chip, ledger and collocation stream
        stages = [dict(options, steps=n_steps), dict(cfg["polish"], steps=cfg["polish_steps"])]
        if cfg.get("refine_steps"):  # a third stage on the evaluation loss (the Darcy recipe)
            stages.append(dict(cfg["refine"], steps=cfg["refine_steps"]))
        options = dict(strategy="staged", lr=options["lr"], stages=stages)
    name = options.pop("strategy")
    task_options = dict(cfg.get("task_options", {}))
    if "sigma_final" in task_options:  # the width shrinks over the whole run (also with --steps)
        task_options.setdefault("sigma_decay_steps", n_steps)
    task = dict(kind="pde", pde=cfg["pde"], estimator=cfg["estimator"], sigma=cfg["sigma"],
                collocation=cfg["collocation"], test_points=cfg["test_points"],
                residual_points=cfg["residual_points"], eval_level=cfg["eval_level"], exact_readout=not noisy_readout,
                **task_options)
    recipe = dict(name="bench_pinn", strategy=name, strategy_options=options, steps=n_steps,
                  eval_every=cfg.get("eval_every") or n_steps, keep=cfg.get("keep", "last"), loss="pinn")
    return Experiment(devices=CARD, accelerator="dense_onn" if cfg["dense"] else "tonn_space", model=cfg["spec"],
                      task=task, training=recipe, seed=seed, torch_device=device, insertion_loss=False)


def run_case(cfg: dict, *, seed: int = 0, device: str = "cpu", noisy_readout: bool = False,
             steps: int | None = None) -> dict:
    """Train one configuration (:func:`experiment`); returns a row of metrics and costs."""
    exp = experiment(cfg, seed=seed, device=device, noisy_readout=noisy_readout, steps=steps)
    task, params = exp.task, exp.params
    # Baselines for the metric, outside the training ledger: the built-in transform alone
    # (NN ≡ 0, no chip) and the untrained network on a twin chip (same seed: same static errors).
    zero = torch.zeros(task.test_x.shape[0], dtype=torch.float64, device=task.test_x.device)
    transform_l2 = float(task.pde.relative_l2(task.pde.transform(task.test_x, zero), task.test_x))
    initial = task.evaluate(Experiment.from_scenario(exp.scenario, torch_device=device).chip, params)
    n_steps = exp.recipe.steps
    first = exp.run()
    result = first.train
    before_polish, first_loss = dict(exp.trainer.last_eval), result.history[0]["loss"]  # the first stage's end
    if cfg["polish_steps"]:  # the same trainer goes on into the polish stage (keep: selects over both)
        total = n_steps + cfg["polish_steps"] + cfg.get("refine_steps", 0)
        exp.trainer.config = replace(exp.trainer.config, steps=total, eval_every=cfg.get("eval_every") or total)
        result = exp.trainer.run()
    energy, latency = exp.cost(result.ledger)
    final = result.final
    return {
        "pde": cfg["pde"], "network": exp.spec.name, "dense": cfg["dense"], "phases": exp.chip.num_phases,
        "estimator": cfg["estimator"], "sigma": exp.scenario.task.sigma, "strategy": exp.recipe.strategy,
        "steps": n_steps, "collocation": cfg["collocation"], "polish_steps": cfg["polish_steps"],
        "refine_steps": cfg.get("refine_steps", 0),
        "mse": final["mse"], "relative_l2": final["relative_l2"], "residual": final["loss"],
        "keep": exp.recipe.keep, "kept_step": final.get("kept_step"), "relative_l2_last": result.history[-1]["metric"],
        "mse_before_polish": before_polish["mse"], "relative_l2_before_polish": before_polish["relative_l2"],
        "transform_l2": transform_l2, "initial_l2": initial["relative_l2"], "initial_mse": initial["mse"],
        "first_loss": first_loss, "last_loss": result.history[-1]["loss"],
        "queries": result.ledger["queries"], "samples": result.ledger["samples"],
        "energy_j": energy, "latency_s": latency, "wall_s": result.wall_s, "stopped": result.stopped,
    }


def _numbers(text: str | None, flag: str, what: str, ok) -> list[float] | None:
    """A comma list of numbers for ``flag`` (None when not given); SystemExit naming ``what``
    unless every one is finite and ``ok``."""
    if text is None:
        return None
    try:
        values = [float(v) for v in text.split(",")]
    except ValueError:
        values = []
    if not values or not all(math.isfinite(v) and ok(v) for v in values):
        raise SystemExit(f"{flag}: need {what}, comma separated (one, or one per coordinate)")
    return values


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    group = ap.add_mutually_exclusive_group()
    group.add_argument("--quick", action="store_true", help="short smoke version (~minutes)")
    group.add_argument("--paper", action="store_true", help="paper scale (hjb20 preset, 100 points): for a GPU")
    ap.add_argument("--cases", default=",".join(CASES), help=f"comma list of {CASES + OPT_IN_CASES} (default: {CASES})")
    ap.add_argument("--steps", type=int, default=None, help="override the steps of every case")
    ap.add_argument("--polish-steps", type=int, default=None, help="override the polish steps of the HJB ZO rows and the Darcy recipe row (0: none)")
    ap.add_argument("--refine-steps", type=int, default=None,
                    help="override the Darcy recipe row's last stage (lattice descent on the evaluation loss; 0: none)")
    ap.add_argument("--points", type=int, default=None, help="override the collocation points per step of every case")
    ap.add_argument("--q", type=int, default=None,
                    help="override the directions per step (q) of every ZO case's first strategy (not its polish)")
    ap.add_argument("--sigma", type=float, default=None,
                    help=f"Stein smoothing width of the sparse-grid rows, in PDE units (default {SIGMA})")
    ap.add_argument("--test-points", type=int, default=None, help="override the test points of every case")
    ap.add_argument("--residual-points", type=int, default=None, help="override the residual test points of every case")
    ap.add_argument("--eval-every", type=int, default=None,
                    help="evaluate every this many steps (default: each stage's end; the Darcy recipe row: its own)")
    ap.add_argument("--keep-lowest", default=None, choices=EVAL_LOSSES,
                    help="end every case on the evaluation with the lowest evaluation loss of this kind (recipe keep)")
    ap.add_argument("--input-gain", default=None,
                    help="override every case's modulator input gain: one number or one per coordinate, comma list")
    ap.add_argument("--fd-step", default=None,
                    help="override every case's finite-difference step h (finite-difference rows): one number or one "
                         "per coordinate, comma list (e.g. 0.001,0.01 for Burgers' x, t)")
    ap.add_argument("--dry-run", action="store_true",
                    help="print (and with --out write) each case's configuration as JSON; train nothing")
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--threads", type=int, default=None)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--noisy-readout", action="store_true", help="keep the card's detector noise and 8-bit converters")
    ap.add_argument("--out", default=None, help="write the rows as JSON here")
    args = ap.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    mode = dict(MODES["quick" if args.quick else "paper" if args.paper else "cpu"])
    for flag, value in (("--steps", args.steps), ("--points", args.points), ("--q", args.q),
                        ("--test-points", args.test_points),
                        ("--residual-points", args.residual_points), ("--eval-every", args.eval_every)):
        if value is not None and value < 1:
            raise SystemExit(f"{flag}: must be an integer >= 1, got {value}")
    for flag, value in (("--polish-steps", args.polish_steps), ("--refine-steps", args.refine_steps)):
        if value is not None and value < 0:
            raise SystemExit(f"{flag}: must be an integer >= 0, got {value}")
    if args.sigma is not None and not (math.isfinite(args.sigma) and args.sigma > 0):
        raise SystemExit(f"--sigma: must be a finite number > 0, got {args.sigma}")
    if args.points:
        mode.update(hjb_points=args.points, bs_points=args.points, darcy_points=args.points)
    if args.polish_steps is not None:
        mode.update(hjb_polish_steps=args.polish_steps, darcy_polish_steps=args.polish_steps)
    if args.refine_steps is not None:
        mode.update(darcy_refine_steps=args.refine_steps)
    if args.sigma is not None:
        mode.update(sigma=args.sigma)
    for key in ("test_points", "residual_points"):
        if getattr(args, key) is not None:
            mode[key] = getattr(args, key)
    cases = [c.strip() for c in args.cases.split(",") if c.strip()]
    for c in cases:
        if c not in CASES + OPT_IN_CASES:
            raise SystemExit(f"--cases: {c!r} is not one of {CASES + OPT_IN_CASES}")
    gain = _numbers(args.input_gain, "--input-gain", "numbers > 0", lambda g: g > 0)
    fd_step = _numbers(args.fd_step, "--fd-step", "steps in (0, 0.5]", lambda h: 0 < h <= 0.5)

    def config(c: str) -> dict:
        cfg = case_config(c, mode)
        if gain:
            cfg["task_options"] = dict(cfg.get("task_options", {}), input_gain=gain if len(gain) > 1 else gain[0])
        if fd_step:
            cfg["task_options"] = dict(cfg.get("task_options", {}), fd_step=fd_step if len(fd_step) > 1 else fd_step[0])
        if args.q and "q" in cfg["strategy"]:
            cfg["strategy"] = dict(cfg["strategy"], q=args.q)
        if args.eval_every:
            cfg["eval_every"] = args.eval_every
        if args.keep_lowest:
            cfg.update(keep="lowest_eval_loss",
                       task_options=dict(cfg.get("task_options", {}), eval_loss=args.keep_lowest))
        return cfg

    if args.dry_run:
        configs = [{"case": c, **config(c)} for c in cases]
        for cfg in configs:
            cfg["spec"] = cfg["spec"].name
            cfg["steps"] = args.steps or cfg["steps"]
        print(json.dumps(configs, indent=1))
        if args.out:
            with open(args.out, "w") as fh:
                json.dump(configs, fh, indent=1)
        return
    print(f"# torch {torch.__version__}, threads {torch.get_num_threads()}, device {args.device}, "
          f"mode {'quick' if args.quick else 'paper' if args.paper else 'cpu'}, "
          f"readout {'card (noisy)' if args.noisy_readout else 'noise-free'}, Stein sigma {mode['sigma']}")
    header = (f"{'case':<14}{'phases':>8}{'steps':>7}{'+pol':>5}{'pts':>5}{'MSE':>11}{'MSE pre':>11}{'rel L2':>10}{'init L2':>10}"
              f"{'NN=0 L2':>10}{'residual':>11}"
              f"{'queries':>10}{'energy J':>11}{'latency s':>11}{'wall s':>9}")
    print(header)
    rows = []
    for case in cases:
        t0 = time.perf_counter()
        row = {"case": case, **run_case(config(case), seed=args.seed, device=args.device,
                                         noisy_readout=args.noisy_readout, steps=args.steps)}
        row["total_wall_s"] = time.perf_counter() - t0
        rows.append(row)
        print(f"{case:<14}{row['phases']:>8}{row['steps']:>7}{row['polish_steps']:>5}{row['collocation']:>5}"
              f"{row['mse']:>11.3e}{row['mse_before_polish']:>11.3e}"
              f"{row['relative_l2']:>10.2e}{row['initial_l2']:>10.2e}{row['transform_l2']:>10.2e}{row['residual']:>11.3e}{row['queries']:>10}{row['energy_j']:>11.3e}"
              f"{row['latency_s']:>11.3e}{row['total_wall_s']:>9.0f}", flush=True)
    if args.out:
        with open(args.out, "w") as fh:
            json.dump(rows, fh, indent=1)


if __name__ == "__main__":
    main()

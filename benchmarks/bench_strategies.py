"""Every training strategy × seeds on the digits TONN and on Black-Scholes → docs/strategies.md.

    python benchmarks/bench_strategies.py                 # the full page (~30 min of CPU, one core)
    python benchmarks/bench_strategies.py --quick         # smoke run: 2 strategies x 2 seeds x 3 steps
    python benchmarks/bench_strategies.py --resume        # reuse finished runs under --out

Runs the compare scenarios ``scenarios/strategies_digits.yaml`` and
``scenarios/strategies_black_scholes.yaml`` (the base and every ``variants:`` entry, each with
its shipped recipe and the scenario's shared query budget) for seeds ``seed .. seed+N-1``,
one run after another in this process (torch on one thread), through the public builder
``photonic_sim.Experiment``. Writes per scenario ``<out>/<name>/comparison.{json,md}`` and
``figures/convergence.png`` (``photonic_sim.reports.compare.write_comparison``), one JSON row
per finished run under ``<out>/<name>/rows/`` (``--resume`` reuses the rows whose resolved
inputs are unchanged), the convergence figures as ``<img>/strategies_<name>.png`` and the page
``--page`` (default docs/strategies.md). Two more parts on the digits, same seeds, rows under
``<out>/bits/rows`` and ``<out>/sr/rows``: the phase-bits sweep (``bits``: BITS_STRATEGIES at
4, 6 and 8 DAC bits; the fewest-joules conclusion read on the seed-mean curves) and stochastic
against deterministic rounding (``sr``: the quzo row at 4 bits, SR_ARMS × SR_MUS). ``--only``
picks parts (digits, black_scholes, bits, sr); ``--quick`` skips ``bits`` and runs a small ``sr``.

Strategies that cannot run on a scenario (``NOT_APPLICABLE``) are built once with their recipe
to confirm that the builder refuses them; the page quotes the builder's one-line reason.

Same seeds, same thread count, same machine → the same numbers (every number except the
wall times); ``tests/test_bench_strategies.py`` checks that on ``--quick``.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import math
import os
import platform
import shlex
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SCENARIOS = (("digits", ROOT / "scenarios" / "strategies_digits.yaml"),
             ("black_scholes", ROOT / "scenarios" / "strategies_black_scholes.yaml"))
TITLES = {"digits": "Digits TONN (test accuracy)", "black_scholes": "Black-Scholes PINN (relative L2 error)"}
NOT_APPLICABLE = {  # scenario -> {strategy: recipe that would run it}; tried with NA_SETS
    "black_scholes": {"grzo": "grzo", "adjoint": "adjoint", "node-perturbation": "node_perturbation",
                      "forward-forward": "forward_forward"},
}
NA_SETS = {"black_scholes": ["training.loss=pinn"]}
NA_SCENARIO = {"black_scholes": ROOT / "scenarios" / "black_scholes_tonn.yaml"}  # same task, no variants
QUICK_SETS = ["training.steps=3", "training.eval_every=1"]
BITS = (4, 6, 8)  # phase-shifter DAC bits of the sweep (item 4), digits, --seeds seeds
BITS_STRATEGIES = ("zo-rge", "zo-sign-rge", "quzo", "flops", "tt-subspace", "fo", "adjoint")
BITS_TARGET = 0.25  # test accuracy the sweep asks each strategy to reach
SR_BITS = 4  # phase bits of the rounding comparison (issue 23: stochastic vs deterministic rounding)
SR_MUS = (0.02, 0.1, 0.2, 0.4)  # perturbation radii (rad) of the rounding comparison
SR_ARMS = (  # (label, phase bits, rounding of the perturbed rows, round_update of the kept phases, what the row is)
    ("sr", SR_BITS, "stochastic", True, "stochastic rows and updates (QuZO as shipped)"),
    ("nearest", SR_BITS, "nearest", True, "nearest rows and updates (deterministic)"),
    ("sr-rows", SR_BITS, "stochastic", False, "stochastic rows, continuous kept phases"),
    ("nearest-rows", SR_BITS, "nearest", False, "nearest rows, continuous kept phases (plain RGE: the chip's DAC rounds)"),
    ("sr-8bit", 8, "stochastic", True, "8 bits: stochastic rows and updates"),
    ("nearest-rows-8bit", 8, "nearest", False, "8 bits: nearest rows, continuous kept phases (plain RGE)"),
)
SR_PAIRS = (("sr", "nearest"), ("sr", "nearest-rows"), ("sr-rows", "nearest-rows"))  # stochastic vs deterministic
STRATEGY_SETS = {  # strategy -> scenario keys its runs add, wherever it runs (digits table, bits sweep)
    "adjoint": ("chip.loss_balanced=true",),
    "node-perturbation": ("chip.loss_balanced=true",),
}
STRATEGY_SETS_WHY = (  # the page's note under a table with such rows
    "run on a loss-balanced mesh (`chip.loss_balanced: true`, set by this command for these rows only): their "
    "interference pass assumes unitary meshes, which the default chip's path-dependent insertion loss breaks, and the "
    "balanced mesh restores it with extra optical hardware the other rows do not have (a dummy element matched to one "
    "MZI's loss wherever a mesh column leaves a mode unpaired; the laser pays the whole critical path, priced in "
    "their energy; [physics](physics.md#loss-balanced-meshes))")
NOTES = """\
## How the runs are set up

* **One chip for all**: the silicon thermo-optic device card (8-bit phases, gamma noise, crosstalk,
  phase bias, noisy 8-bit readout) on the space-multiplexed TONN, with the simulated insertion
  loss on (the scenario default `chip.insertion_loss: true`). One exception, marked in its rows:
  `adjoint` and `node-perturbation` run on the same chip with loss-balanced meshes
  (`chip.loss_balanced: true`, extra optical hardware; see below).
* **One budget per task**: every zeroth-order strategy gets about the same number of training chip
  queries (digits: 6 400, mini-batch 64; Black-Scholes: 800, 32 collocation points):
  steps = budget / (queries per step), the steps column says what that is. `fo` (backpropagation
  through the simulated chip, not in situ), `adjoint` and `node-perturbation` (a gradient from
  extra optical passes per step: few queries but far more simulator time each) are capped by
  simulator time instead (digits: 100, 30, 30 steps); their query counts are far below the budget.
* **Recipes**: each row runs the recipe named in its row, as shipped in `training/`, with the
  scenario's overrides (steps, batch, evaluation period; Black-Scholes: the PINN loss); the
  scenario files `scenarios/strategies_digits.yaml` and `scenarios/strategies_black_scholes.yaml`
  list them. Two page-wide changes, both in those files:
  * *Adam's eps 1e-12 on the digits* (every run; the new recipes ship it). On the default chip
    it trains exactly as Adam's default eps 1e-8 does (`zo_rge`, seed 0, 150 steps of this
    scenario: 30.29 % with either), so it changes none of the numbers below; Black-Scholes runs
    the recipes' own eps.
  * *hybrid without its CGE phase*: one CGE step measures every coordinate (d + 1 = 3 339 queries
    on the digits, 2 034 on Black-Scholes), half the digits budget and more than twice the
    Black-Scholes budget, so its plateau switch is set out of reach (`patience: 100000`) and the
    row is its sign-RGE phase (SGD steps of ±lr), not the full hybrid.
  * Black-Scholes `staged`: the recipe's two stages shortened to the budget (20 + 5 steps).
* **Tuning of the six recipes added with this page** (`flops`, `mixedtrain`, `zo_cge`,
  `l2ight_sigma`, `tt_subspace`, `staged`): learning rate from two or three values on seed 0 of
  the digits at this page's budget, best final test accuracy kept (each recipe's header lists the
  values and what they reached). The older recipes were tuned when they were added (their headers
  say how), without insertion loss. No shipped recipe diverges here: a run that fails or diverges
  would be listed under the table as failed.
* **Not applicable**: a strategy the builder refuses on a task is listed under that task's table
  with the builder's reason, not run.

## Reading the numbers

What the tables below say (3 seeds each; measured with this command on the shared machine):

* **Digits, ~6 400 queries**: far from converged for every in-situ strategy (the quickstart,
  measured without insertion loss, needed ~128 000 queries for 93 %), and the seed spread is large (`zo-rge`: 33.0 / 20.5 /
  11.1 %), so only differences of more than about one standard deviation mean anything. The
  top group: `forward-forward` 37.4 ± 6.4 %, `flops` 33.3 ± 2.0 %, `tt-subspace` 32.2 ± 8.4 %,
  `quzo` 29.7 ± 8.4 %, the hybrid's sign-RGE phase 29.0 ± 2.6 %; then `spsa`, `l2ight-sigma`,
  `staged`, `zo-sign-rge`, `zo-rge` (21-25 %). At chance: `zo-cge` and `mixedtrain` (a few
  coordinates per step: each of the 3 338 phases is tried about once or twice in the budget)
  and `grzo` (12.4 %: 50 steps, one example per phase setting). `fo` (not in situ) reaches
  91.0 ± 1.7 % in 100 steps; the in-situ adjoint family, on its extra hardware, 45-56 % in 30
  steps (next point).
* **The in-situ adjoint and node perturbation run on loss-balanced meshes**: their interference
  pass assumes unitary meshes, and on the default chip, whose insertion loss is path-dependent,
  the measured gradient is only roughly along the true one, and 30 quickstart steps stay near
  chance ([in-situ gradients](in-situ-gradients.md) has the numbers). A loss-balanced mesh puts a
  dummy element matched to one MZI's loss wherever a column leaves a mode unpaired, so every
  column attenuates all modes alike and the controller's correction makes the gradient exact
  again; with it 30 steps reach 55.6 ± 7.8 % and 45.4 ± 11.6 %, for 90 and 570 training queries (25.6 and
  43.4 mJ, the laser paying the whole critical path included). That hardware (the dummies, a
  stronger laser) is what no other row has, so these two rows answer "what the method does on
  a chip built for it", not "on the same chip".
* **Energy per query** is nearly the same for every ZO strategy (4.2-5.4 J for 6 400 queries:
  heaters held through every settle dominate); the differences come from which phases a
  strategy moves (`l2ight-sigma`, only Σ phases, is the cheapest, 4.25 J).
* **Black-Scholes, ~800 queries**: every strategy lands between 1.6e-2 and 6.4e-2 rel. L2 from
  a start of 1.9e-1 (seeds 0 and 2) or 2.8e-2 (seed 1, a lucky initialisation); best
  `mixedtrain` 1.57e-2 ± 0.14e-2, `l2ight-sigma` 1.60e-2, `zo-rge` (`pinn_zo`) 1.81e-2; `fo`
  2.44e-2 after its 25 steps; worst `zo-cge` 6.4e-2 ± 4.8e-2 and the hybrid's sign phase
  (SGD) 4.4e-2. Nothing diverged (no NaN, every run ends below 1.2e-1); on seed 1 four runs
  (`zo-sign-rge`, `hybrid`, `tt-subspace`, `zo-cge`) end above the lucky 2.8e-2 they started
  from.
* **Phase bits** (3 seeds; the table after Black-Scholes): the seed spread is large, so the
  fewest-joules question is answered on the seed-mean accuracy curves, to one evaluation interval
  (about 1.2 J): at 8 bits `tt-subspace` (2.22 J), `quzo` (2.51 J) and `flops` (2.61 J) tie; at 6
  bits `flops` (2.62 J) and `tt-subspace` (3.34 J) tie; at 4 bits only `tt-subspace`'s mean curve
  reaches 25 % (3.33 J; 25.4 ± 11.6 % final, one seed of three reached it). `zo-rge`'s mean
  curve never reaches it (one seed of three does, at every resolution): the one-seed table this
  replaces had `zo-rge` winning at every resolution, on its lucky seed 0 (33.0 % at 8 bits,
  against 20.5 and 11.1 % on seeds 1 and 2). With its loss-balanced mesh `adjoint` reaches 25 %
  at its first evaluation (10 steps, 8.5 mJ) at every resolution, about 260 times fewer joules
  than the best ZO strategy, and is the page's answer when that hardware is allowed (52.5 ± 10.3 %
  final at 4 bits); the answers above are for the default chip alone. `fo` loses 11 points from 8
  to 4 bits (91.0 ± 1.7 to 80.3 ± 1.6 %).
* **Stochastic rounding does not beat deterministic rounding at 4 bits** (last table, the same
  estimator with only the rounding switched, 3 seeds, 4 radii): no pair wins by more than the seed
  spread. At the recipe's mu = 0.02 rad QuZO as shipped ends at 9.3 ± 2.8 %, where the untrained
  network starts (9.9 %), while nearest rounding of rows and updates reaches 18.0 ± 4.6 % and
  nearest rows with continuous kept phases (plain RGE through the chip's DAC) 26.4 ± 9.5 %.
  Larger radii do not help: at mu = 0.1-0.4 rad every 4-bit arm ends at 7.7-12.2 %, and so do
  the 8-bit reference rows at 0.2-0.4 rad (8.5-10.4 %), so there it is the radius, not the
  rounding: a Rademacher step of mu on each of the d = 3 338 controls has norm mu·√d (5.8 rad at
  mu = 0.1), beyond the range where the difference quotient follows the gradient, while phases
  kept on the codes and rounded to the nearest one need mu above h/2 = 0.2 rad to register at
  all. Why SR loses at mu = 0.02 (seed 0, final against initial
  phase codes, measured separately with the same runs): Adam moves every phase by about
  lr = 0.02 rad per step whatever the estimate's signal, and stochastic rounding of the updates
  turns that into a whole-code jump (0.39 rad) with probability about lr/h = 5 % per step: 60 %
  of the phase codes moved (rms 0.46 rad) against 36 % (rms 0.23 rad) for plain RGE. Stochastic
  rows alone cost too: with continuous kept phases every query rounds each phase up or down at
  random, a random neighbour of the nearest codes the evaluation uses (`sr-rows` 13.1 ± 2.3 %
  against 26.4 ± 9.5 %, with the same code movement as plain RGE: 33 %, rms 0.22 rad). At 8
  bits the gap narrows to within the spread (29.7 ± 8.4 % against 36.5 ± 4.7 %).

Queries are training chip queries (one phase setting measured on a mini-batch; GRZO measures one
example per setting), from the chip's ledger; energy and latency price that ledger with the cost
model (heaters held, laser, detectors, settling); evaluation is not included. Wall is the training
wall time on the shared 2-core machine that measured this page (load average 7-9 from other jobs,
this command at nice 10), so it is a poor speed measure; CPU is this process's CPU time for the
whole run (build, train, evaluate). Reproducibility was spot-checked after the run: `flops` seed 1
and `zo-sign-rge` seed 2 rerun alone gave bit-identical accuracy, energy, latency and history; so
did `grzo` seed 0, `adjoint` seed 0 on its loss-balanced mesh and three 4-bit rounding runs (seed 0,
mu 0.02: `sr`, `sr-rows`, `nearest-rows`), rerun with the code of the last two tables.
"""


def _args(argv):
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--out", default="runs/strategies", help="run directory (default runs/strategies)")
    p.add_argument("--page", default="docs/strategies.md", help="results page to write (default docs/strategies.md)")
    p.add_argument("--img", default="docs/img", help="folder for the page's figures (default docs/img)")
    p.add_argument("--seeds", type=int, default=3, help="seeds per strategy (default 3)")
    p.add_argument("--quick", action="store_true", help="smoke run: first 2 strategies, 2 seeds, 3 steps")
    p.add_argument("--resume", action="store_true", help="reuse finished runs under --out")
    p.add_argument("--no-run", action="store_true",
                   help="write the page from the finished runs under --out only (implies --resume; the others are "
                        "listed as not run)")
    p.add_argument("--only", help="comma-separated parts (digits, black_scholes, bits: the phase-bits sweep, sr: stochastic vs "
                        "deterministic rounding at 4 bits)")
    p.add_argument("--set", dest="sets", action="append", default=[], metavar="KEY=VALUE",
                   help="scenario override applied to every run (as photonic-sim --set)")
    args = p.parse_args(argv)
    if args.seeds < 1:
        p.error(f"--seeds: {args.seeds} is out of range (allowed: >= 1)")
    return args


def _command(argv) -> str:
    """The command that regenerates the page (without --resume / --no-run, which only reuse runs)."""
    keep = [a for a in argv if a not in ("--resume", "--no-run")]
    return " ".join(["python benchmarks/bench_strategies.py", *map(shlex.quote, keep)])


def variants(path: Path, sets: list[str], quick: bool) -> list[tuple[str, object]]:
    """(strategy label, scenario) for the base and every variant: the label is the strategy."""
    from photonic_sim.scenarios import load_scenario

    sc = load_scenario(path, sets)
    out = [(sc.recipe.strategy, sc)] + [(v.recipe.strategy, v) for _, v in sc.variants.items()]
    return out[:2] if quick else out


def _key(sets: list[str], label: str, seed: int) -> str:
    text = json.dumps([label, seed, sets], sort_keys=True)
    return hashlib.sha1(text.encode()).hexdigest()[:12]


def with_strategy_sets(path: Path, sc, sets: list[str]):
    """(scenario, sets) for a run of ``sc``: with the scenario keys STRATEGY_SETS gives its strategy
    added (the scenario reloaded with them, the same variant), else unchanged."""
    from photonic_sim.scenarios import load_scenario

    extra = list(STRATEGY_SETS.get(sc.recipe.strategy, ()))
    if not extra:
        return sc, sets
    sets = [*sets, *extra]
    full = load_scenario(path, sets)
    return (full if sc.variant is None else full.variants[sc.variant]), sets


def run_one(path: Path, sc, sets: list[str], label: str, seed: int, rows_dir: Path, resume: bool,
            no_run: bool = False) -> dict | None:
    """One run of ``sc`` (the base scenario or one of its variants) with ``seed`` → a comparison
    row (``ExperimentResult.row``), saved as JSON; reused with --resume when the same resolved
    scenario (cards, recipe, overrides), strategy and seed produced it. ``no_run``: None instead
    of running a run that is not there."""
    from photonic_sim import Experiment

    sc, sets = with_strategy_sets(path, sc, sets)
    variant = sc.variant
    sets = [*sets, f"seed={seed}"]
    key = _key([json.dumps(sc.resolved(), sort_keys=True, default=str)], label, seed)
    file = rows_dir / f"{label}_seed{seed}.json"
    if resume and file.is_file():
        row = json.loads(file.read_text())
        if row.get("key") == key:
            return row
    if no_run:
        return None
    t0, c0 = time.perf_counter(), time.process_time()
    try:
        exp = Experiment.from_file(path, sets)
        if variant is not None:
            exp = exp.variant(variant)
        result = exp.run()
        row = result.row(label)
        report = result.report["training"]
        row.update(steps=report["steps"], recipe=exp.recipe.name)
    except Exception as exc:  # a failed run is a row on the page, never dropped
        row = {"strategy": label, "seed": seed, "metric": "-", "metric_final": math.nan, "queries": math.nan,
               "training_energy_j": math.nan, "training_latency_s": math.nan, "history": [],
               "error": f"{type(exc).__name__}: {exc}".splitlines()[0][:300]}
    row.update(key=key, run_wall_s=time.perf_counter() - t0, cpu_s=time.process_time() - c0)
    rows_dir.mkdir(parents=True, exist_ok=True)
    tmp = file.with_name(f".{file.name}.tmp")
    tmp.write_text(json.dumps(row))  # NaN as the NaN literal, read back by json.loads
    tmp.replace(file)
    return row


def _nan(row: dict) -> dict:
    """Missing numbers (null) as NaN for the numeric fields (the summaries skip non-finite values)."""
    for k in ("metric_final", "queries", "training_energy_j", "training_latency_s", "wall_s"):
        if row.get(k) is None:
            row[k] = math.nan
    row["history"] = [[math.nan if v is None else v for v in h] for h in row.get("history", [])]
    return row


def not_applicable(path: Path, which: dict[str, str], sets: list[str]) -> dict[str, str]:
    """strategy → the builder's one-line refusal when its recipe is set on the scenario ``path``
    (one without variants, whose recipes would clash with the set; each must be refused before
    training; one that runs is reported as such)."""
    from photonic_sim import Experiment

    out = {}
    for strategy, recipe in which.items():
        try:
            exp = Experiment.from_file(path, [*sets, f"training={recipe}", "training.steps=1", "training.eval_every=1"])
            exp.trainer  # noqa: B018 (builds chip, task, strategy and trainer)
            exp.run()
            out[strategy] = "runs (listed as n/a by mistake)"
        except Exception as exc:
            out[strategy] = f"{exc}".splitlines()[0][:200]
    return out


def chip_setting(sc) -> str:
    """What the scenario says about the chip's insertion loss (``chip:`` key, when the schema has one)."""
    chip = sc.resolved().get("chip")
    if isinstance(chip, dict) and "insertion_loss" in chip:
        return f"simulated insertion loss {'on' if chip['insertion_loss'] else 'off'} (`chip.insertion_loss: {str(chip['insertion_loss']).lower()}`)"
    return "no insertion-loss model in this version (the scenario schema has no `chip.insertion_loss` key)"


def _name(strategy: str) -> str:
    """A table's strategy cell, marked when its runs add STRATEGY_SETS keys (see the note under the table)."""
    return f"`{strategy}` (loss-balanced mesh)" if strategy in STRATEGY_SETS else f"`{strategy}`"


def _sets_note(names) -> list[str]:
    """The note under a table that has rows with STRATEGY_SETS (none when it has none)."""
    marked = [n for n in names if n in STRATEGY_SETS]
    return ["", ", ".join(f"`{n}`" for n in marked) + ": " + STRATEGY_SETS_WHY + "."] if marked else []


def table(rows: list[dict], order: list[str], recipes: dict[str, str], steps: dict[str, int]) -> list[str]:
    """Markdown table: strategy, recipe, steps, runs, final metric mean ± std, mean queries,
    training energy, training latency (``photonic_sim.reports.compare.summarize``), then the
    mean training wall time and the mean CPU time of one run (build, train, evaluate)."""
    from photonic_sim.reports.compare import summarize

    summary = {s["strategy"]: s for s in summarize(rows, ("strategy",))}
    cpu = {}
    for r in rows:
        if "error" not in r and isinstance(r.get("cpu_s"), (int, float)):
            cpu.setdefault(r["strategy"], []).append(r["cpu_s"])
    head = ["strategy", "recipe", "steps", "runs ok", "metric", "final (mean ± std)", "queries",
            "training energy", "training latency", "wall (training)", "CPU (run)"]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for name in order:
        if name not in summary:
            lines.append("| " + " | ".join([_name(name), f"`training/{recipes[name]}.yaml`", str(steps[name]), "not run"]
                                           + ["-"] * 7) + " |")
            continue
        s = summary[name]
        lines.append("| " + " | ".join(str(c) for c in (
            _name(name), f"`training/{recipes[name]}.yaml`", steps[name], s["runs"], s["metric"],
            s["final (mean ± std)"], s["queries"], s["training_energy_j"], s["training_latency_s"], s["wall_s"],
            f"{sum(cpu[name]) / len(cpu[name]):.1f} s" if cpu.get(name) else "-")) + " |")
    return lines


def main(argv=None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    args = _args(argv)
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    import torch

    import photonic_sim
    from photonic_sim.reports.compare import write_comparison

    torch.set_num_threads(1)
    sets = [*(QUICK_SETS if args.quick else []), *args.sets]
    seeds = min(args.seeds, 2) if args.quick else args.seeds
    only = None if args.only is None else {s.strip() for s in args.only.split(",")}
    out, page, img = Path(args.out), Path(args.page), Path(args.img)
    img.mkdir(parents=True, exist_ok=True)
    sections = []
    for key, path in SCENARIOS:
        if only is not None and key not in only:
            continue
        runs = variants(path, sets, args.quick)
        base = runs[0][1]
        rows = []
        for label, sc in runs:
            for i in range(seeds):
                row = run_one(path, sc, sets, label, base.seed + i, out / key / "rows", args.resume or args.no_run,
                              args.no_run)
                if row is None:
                    continue
                print(f"{key} {label} seed {base.seed + i}: {row.get('metric')}={row.get('metric_final')} "
                      f"queries={row.get('queries')} wall={row.get('wall_s')}"
                      + (f" ERROR {row['error']}" if "error" in row else ""), file=sys.stderr, flush=True)
                rows.append(_nan(row))
        if not rows:
            continue
        write_comparison(out / key, rows, ("strategy",))
        figure = img / f"strategies_{key}.png"
        figure.write_bytes((out / key / "figures" / "convergence.png").read_bytes())
        na = not_applicable(NA_SCENARIO.get(key, path), NOT_APPLICABLE.get(key, {}), [*sets, *NA_SETS.get(key, [])]) \
            if not args.quick else {k: "(not checked in --quick)" for k in NOT_APPLICABLE.get(key, {})}
        sections.append((key, base, runs, rows, figure, na))
    bits_rows, sr_rows = [], []
    if not args.quick and (only is None or "bits" in only):
        bits_rows = sweep_bits(sets, out, seeds, args.resume or args.no_run, args.no_run)
    if only is None or "sr" in only:
        sr_rows = sweep_sr(sets, out, seeds, args.resume or args.no_run, args.no_run, args.quick)
    total = sum(r.get("run_wall_s") or 0.0 for *_, rows, _f, _n in sections for r in rows)
    total += sum(r.get("run_wall_s") or 0.0 for r in [*bits_rows, *sr_rows])
    text = render(sections, argv, page, seeds, args.quick, total, photonic_sim.__version__)
    for part in ([bits_section(bits_rows)] if bits_rows else []) + ([sr_section(sr_rows)] if sr_rows else []):
        text = text.replace("\nPackage ", "\n" + part + "\nPackage ", 1)
    page.parent.mkdir(parents=True, exist_ok=True)
    page.write_text(text)
    print(page)
    failed = any("error" in r for *_, rows, _f, _n in sections for r in rows)
    return 1 if failed else 0


def sweep_bits(sets: list[str], out: Path, seeds: int, resume: bool, no_run: bool) -> list[dict]:
    """The digits variants in BITS_STRATEGIES at each phase-shifter resolution in BITS, seeds
    ``seed .. seed+seeds-1``. At the card's own resolution these are the digits comparison's runs
    (reused from ``out/digits/rows`` when that comparison ran first)."""
    from photonic_sim.scenarios import load_scenario

    path = SCENARIOS_BY_KEY["digits"]
    card_bits = load_scenario(path, sets).device_card.phase_shifter.bits
    rows = []
    for bits in BITS:
        same = bits == card_bits
        bsets = sets if same else [*sets, f"devices.phase_shifter.bits={bits}"]
        for label, sc in variants(path, bsets, False):
            if label not in BITS_STRATEGIES:
                continue
            for seed in range(sc.seed, sc.seed + seeds):
                row = run_one(path, sc, bsets, label if same else f"{label}_bits{bits}", seed,
                              out / ("digits" if same else "bits") / "rows", resume or same, no_run)
                if row is None:
                    continue
                row.update(strategy=label, bits=bits)
                print(f"bits {bits} {label} seed {seed}: {row.get('metric_final')} {row.get('training_energy_j')} J",
                      file=sys.stderr, flush=True)
                rows.append(_nan(row))
    return rows


def joules_to(row: dict, target: float) -> float:
    """Training energy (J) at the first evaluation whose metric reaches ``target``; NaN if none does."""
    for point in row.get("history", []):
        if len(point) > 2 and point[1] is not None and point[1] >= target:
            return float(point[2])
    return math.nan


def mean_history(rows: list[dict]) -> list[tuple[float, float]]:
    """(mean training energy J, mean metric) at each evaluation, over runs with the same evaluation
    schedule (same strategy and steps); only as many evaluations as every run has."""
    hist = [r.get("history", []) for r in rows if "error" not in r]
    if not hist:
        return []
    n = min(len(h) for h in hist)
    return [(sum(h[i][2] for h in hist) / len(hist), sum(h[i][1] for h in hist) / len(hist)) for i in range(n)]


def crossing(curve: list[tuple[float, float]], target: float) -> tuple[float, float] | None:
    """(energy of the evaluation before, energy of the first evaluation) where ``curve`` (from
    :func:`mean_history`) reaches ``target``: the target was crossed somewhere in between. None
    when it never does."""
    for i, (joules, metric) in enumerate(curve):
        if math.isfinite(metric) and metric >= target:
            return (curve[i - 1][0] if i else 0.0), joules
    return None


def fewest_joules(curves: dict[str, list[tuple[float, float]]], target: float) -> tuple[list[str], dict]:
    """The strategies that reach ``target`` with the fewest joules on their seed-mean curves, and
    every strategy's crossing interval. The energy is resolved only to one evaluation interval
    (the crossing lies in (previous evaluation, first evaluation at or above the target]), so the
    winner is the one whose first evaluation at the target costs least, and every strategy whose
    interval overlaps the winner's (previous evaluation cheaper than the winner's first one) ties
    with it. Strategies whose mean curve never reaches the target are not candidates."""
    got = {s: c for s, c in ((s, crossing(curve, target)) for s, curve in curves.items()) if c is not None}
    if not got:
        return [], got
    best = min(got, key=lambda s: got[s][1])
    tied = sorted((s for s in got if got[s][0] < got[best][1]), key=lambda s: got[s][1])
    return tied, got


def _pct(mean: float, std: float) -> str:
    return f"{100 * mean:.1f} ± {100 * std:.1f} %" if math.isfinite(mean) else "-"


def bits_section(rows: list[dict]) -> str:
    """The phase-bits table: per strategy and bits, final accuracy mean ± std over the seeds, how
    many seeds reached BITS_TARGET, and the joules where the seed-mean curve first reaches it;
    then the fewest-joules conclusion per resolution (:func:`fewest_joules`)."""
    from photonic_sim.training.compare import summarize
    from photonic_sim.reports.units import eng

    groups = {(s["strategy"], s["bits"]): s for s in summarize(rows, ("strategy", "bits"))}
    members: dict[tuple, list[dict]] = {}
    for r in rows:
        members.setdefault((r["strategy"], r["bits"]), []).append(r)
    names = [s for s in BITS_STRATEGIES if any((s, b) in groups for b in BITS)]
    seeds = sorted({r["seed"] for r in rows})
    pct = f"{100 * BITS_TARGET:.0f} %"
    lines = ["## Phase bits: which strategy reaches the target with the fewest joules", "",
             f"The digits comparison above (same recipes, budget and overrides) with the phase shifters' DAC at "
             f"4, 6 and 8 bits (`--set devices.phase_shifter.bits=N`; 8 is the card's), seeds "
             f"{', '.join(map(str, seeds))}, for {len(names)} strategies. Each cell: final test accuracy "
             f"(mean ± std over the seeds) / the training energy at which the seed-mean accuracy curve first "
             f"reaches {pct} (\"-\": it never does within the budget), and in brackets how many of the seeds' runs "
             f"reached {pct} at an evaluation. Part of the page's command (`--only bits`).", "",
             "| strategy | " + " | ".join(f"{b} bits" for b in BITS) + " |", "|---|" + "---|" * len(BITS)]
    curves = {b: {} for b in BITS}
    for s in names:
        cells = []
        for b in BITS:
            g, mine = groups.get((s, b)), members.get((s, b), [])
            if g is None:
                cells.append("not run")
                continue
            ok = [r for r in mine if "error" not in r]
            if not ok:
                cells.append("failed")
                continue
            curve = mean_history(ok)
            if s != "fo":
                curves[b][s] = curve
            hit = crossing(curve, BITS_TARGET)
            reached = sum(math.isfinite(joules_to(r, BITS_TARGET)) for r in ok)
            cells.append(f"{_pct(g['metric_mean'], g['metric_std'])} / " + (eng(hit[1], "J", 3) if hit else "-")
                         + f" ({reached}/{len(mine)}" + (f", {len(mine) - len(ok)} failed)" if len(ok) < len(mine) else ")"))
        lines.append(f"| {_name(s)} | " + " | ".join(cells) + " |")
    lines += _sets_note(names)
    def winners(candidates) -> str:
        out = []
        for b in BITS:
            tied, got = fewest_joules({s: c for s, c in curves[b].items() if s in candidates}, BITS_TARGET)
            text = ", ".join(f"`{s}` ({eng(got[s][1], 'J', 3)})" for s in tied)
            out.append(f"{b} bits: {text}" + (" (tie)" if len(tied) > 1 else "") if tied else f"{b} bits: none reached it")
        return "; ".join(out)

    plain = [s for s in names if s not in STRATEGY_SETS]
    lines += ["", f"Fewest joules to {pct} in situ, from the seed-mean curves (`fo`, backpropagation through the "
              "model, is the reference, not a candidate): " + winners(names) + "."
              + (" On the default chip alone (without the rows that add optical hardware): " + winners(plain) + "."
                 if len(plain) < len(names) else "")
              + " A strategy's energy to the target is known only to one evaluation interval (the mean curve crosses "
              "it between the evaluation before and the first at or above it), so strategies whose intervals overlap "
              "the cheapest one's are listed as a tie, cheapest first; a strategy whose mean curve never reaches the "
              "target is not a candidate, even if one of its seeds did.", ""]
    return "\n".join(lines)


def sweep_sr(sets: list[str], out: Path, seeds: int, resume: bool, no_run: bool, quick: bool) -> list[dict]:
    """Stochastic against deterministic rounding (issue 23): the digits comparison's ``quzo`` run
    (same recipe, steps, budget and overrides) for every arm of SR_ARMS (phase bits, ``rounding``
    of the perturbed rows, ``round_update`` of the kept phases) and perturbation radius in
    SR_MUS, seeds ``seed .. seed+seeds-1``. One estimator throughout (QuZO's two-sided
    Rademacher RGE, q = 16); only the rounding (and, for the reference arms, the bits) changes.
    ``quick``: the first two arms, the first radius."""
    from photonic_sim.scenarios import load_scenario

    path = SCENARIOS_BY_KEY["digits"]
    quzo = load_scenario(path, sets).variants["quzo"].recipe  # the page's quzo row: its steps, evaluations
    rows = []
    for arm, bits, rounding, round_update, _ in SR_ARMS[:2] if quick else SR_ARMS:
        for mu in SR_MUS[:1] if quick else SR_MUS:
            ssets = [*sets, f"devices.phase_shifter.bits={bits}", "variants={}", "training=quzo",
                     f"training.steps={quzo.steps}", f"training.eval_every={quzo.eval_every}",
                     f"training.strategy_options.mu={mu}", f"training.strategy_options.rounding={rounding}",
                     f"training.strategy_options.round_update={str(round_update).lower()}"]
            sc = load_scenario(path, ssets)
            for seed in range(sc.seed, sc.seed + seeds):
                row = run_one(path, sc, ssets, f"quzo_{arm}_mu{mu}", seed, out / "sr" / "rows", resume, no_run)
                if row is None:
                    continue
                row.update(strategy=arm, mu=mu)
                print(f"sr {arm} mu {mu} seed {seed}: {row.get('metric_final')}", file=sys.stderr, flush=True)
                rows.append(_nan(row))
    return rows


def sr_verdict(groups: dict[tuple, dict], mus, pairs=SR_PAIRS) -> tuple[dict[tuple, list[float]], list[str]]:
    """Per (stochastic arm, deterministic arm) of ``pairs``: the radii at which the first beats the
    second by more than the seed spread, and one table row per pair: difference of the means in
    points (the spread in brackets) per radius, bold where it beats it. Beating it needs both:
    the difference of the mean final accuracies is larger than the larger of the two sample
    standard deviations (the spread), and the stochastic arm trained: its mean final accuracy is
    above its mean untrained accuracy (the group's ``start``) by more than the same spread, so
    that two runs at chance do not make a win."""
    wins, lines = {}, []
    for a, b in pairs:
        cells, won = [], []
        for mu in mus:
            ga, gb = groups.get((a, mu)), groups.get((b, mu))
            if ga is None or gb is None:
                cells.append("-")
                continue
            diff, spread = ga["metric_mean"] - gb["metric_mean"], max(ga["metric_std"], gb["metric_std"])
            if not (math.isfinite(diff) and math.isfinite(spread)):
                cells.append("-")
                continue
            beats = diff > spread and ga["metric_mean"] - ga.get("start", -math.inf) > spread
            text = f"{100 * diff:+.1f} ({100 * spread:.1f})"
            won += [mu] if beats else []
            cells.append(f"**{text}**" if beats else text)
        if any(c != "-" for c in cells):
            wins[(a, b)] = won
            lines.append(f"| `{a}` − `{b}` | " + " | ".join(cells) + " |")
    return wins, lines


def sr_section(rows: list[dict]) -> str:
    """The rounding table: arms (rows) × radii (columns), final test accuracy mean ± std over the
    seeds; then the differences of the pairs in SR_PAIRS and the verdict (:func:`sr_verdict`)."""
    from photonic_sim.training.compare import summarize

    groups = {(g["strategy"], g["mu"]): g for g in summarize(rows, ("strategy", "mu"))}
    for (arm, mu), g in groups.items():  # untrained accuracy: the first evaluation (step 0) of each run
        first = [r["history"][0][1] for r in rows if r["strategy"] == arm and r["mu"] == mu and "error" not in r
                 and r.get("history")]
        g["start"] = sum(first) / len(first) if first else math.nan
    mus = [m for m in SR_MUS if any(k[1] == m for k in groups)]
    seeds = sorted({r["seed"] for r in rows})
    lsb = 2 * math.pi / 2 ** SR_BITS
    arm_bits = {arm[0]: arm[1] for arm in SR_ARMS}
    start = [g["start"] for (arm, _), g in groups.items() if arm_bits.get(arm) == SR_BITS and math.isfinite(g["start"])]
    lines = [f"## Stochastic against deterministic rounding at {SR_BITS} phase bits", "",
             f"The digits comparison's `quzo` row (recipe `training/quzo.yaml`: two-sided Rademacher RGE, q = 16, "
             f"Adam lr 0.02, cosine; the page's steps and budget) with {SR_BITS}-bit phase shifters "
             f"(`--set devices.phase_shifter.bits={SR_BITS}`: one code step h = 2π/{2 ** SR_BITS} = {lsb:.3f} rad for "
             f"the U/V phases, π/{2 ** SR_BITS - 1} = {math.pi / (2 ** SR_BITS - 1):.3f} rad for the Σ attenuators), "
             f"seeds {', '.join(map(str, seeds))}. One estimator in every cell; only the rounding changes "
             "(`training.strategy_options.rounding` of the perturbed rows, `round_update` of the phases the "
             "controller keeps: with `false` it keeps them continuous and the chip's DAC rounds them to the "
             "nearest code). The last two rows are the same at the card's 8 bits, for reference (mu in units of "
             f"the {SR_BITS}-bit step h in the header). Each cell: final "
             "test accuracy, mean ± std over the seeds; the untrained network scores "
             + (f"{100 * sum(start) / len(start):.1f} %" if start else "-") + f" at {SR_BITS} bits (mean over the "
             "seeds; chance is 10 %). Part of the page's command (`--only sr`).", "",
             "| rounding | " + " | ".join(f"mu {m:g} rad ({m / lsb:.2g} h)" for m in mus) + " |",  # h: the 4-bit step
             "|---|" + "---|" * len(mus)]
    for arm, _bits, rounding, round_update, what in SR_ARMS:
        if not any((arm, m) in groups for m in mus):
            continue
        cells = []
        for m in mus:
            g = groups.get((arm, m))
            cells.append("not run" if g is None else _pct(g["metric_mean"], g["metric_std"])
                         + (f" ({g['failed']} failed)" if g["failed"] else ""))
        lines.append(f"| {what} (`{arm}`: `rounding: {rounding}`, `round_update: {str(round_update).lower()}`) | "
                     + " | ".join(cells) + " |")
    wins, table = sr_verdict(groups, mus)
    if table:
        lines += ["", f"Stochastic minus deterministic rounding at {SR_BITS} bits, difference of the mean accuracies in "
                  "points, the seed spread (the larger of the two standard deviations) in brackets, bold where the "
                  "difference is larger than the spread and the stochastic arm trained (ends above its untrained "
                  "accuracy by more than the same spread; two arms near chance make no win):", "",
                  "| pair | " + " | ".join(f"mu {m:g} rad" for m in mus) + " |", "|---|" + "---|" * len(mus), *table]
        won = {pair: w for pair, w in wins.items() if w}
        verdict = ("stochastic rounding beats deterministic rounding by more than the seed spread for "
                   + "; ".join(f"`{a}` over `{b}` at mu = {', '.join(f'{m:g}' for m in w)} rad" for (a, b), w in won.items())
                   if won else "stochastic rounding beats deterministic rounding by more than the seed spread in none "
                   "of these pairs at any of these radii")
        lines += ["", f"Verdict (computed from the table): {verdict}.", ""]
    return "\n".join(lines)


def render(sections, argv, page: Path, seeds: int, quick: bool, total_s: float, version: str) -> str:
    lines = ["# Every training strategy on one chip", "",
             "Regenerate this page (every number except the wall and CPU times is reproduced by the same command on "
             "the same machine and thread count; one torch thread per run):", "", "```",
             _command(argv), "```", ""]
    if not quick:
        lines += [NOTES.strip(), ""]
    for key, base, runs, rows, figure, na in sections:
        recipes = {label: sc.recipe.name for label, sc in runs}
        steps = {label: sc.recipe.steps for label, sc in runs}
        order = [label for label, _ in runs]
        rel = os.path.relpath(figure, page.parent)
        lines += [f"## {TITLES[key]}", "",
                  f"Scenario `{Path(SCENARIOS_BY_KEY[key]).relative_to(ROOT)}` (devices `{base.raw.get('devices')}`, "
                  f"accelerator `{base.raw.get('accelerator')}`; chip: {chip_setting(base)}), "
                  f"seeds {base.seed} .. {base.seed + seeds - 1}. Queries, training energy and latency are the "
                  "means over the seeds of the training ledger priced by the cost model (evaluation excluded); "
                  "wall is the mean training wall time of one run on the loaded machine (see below), CPU the mean "
                  "CPU time of one run (build, train, evaluate).", ""]
        lines += table(rows, order, recipes, steps)
        lines += _sets_note([n for n in order if any(r["strategy"] == n for r in rows)])
        if na:
            lines += ["", "Not applicable here (the builder refuses the recipe; its reason):", ""]
            lines += [f"* `{s}`: n/a: {reason}" for s, reason in na.items()]
        failed = [r for r in rows if "error" in r]
        if failed:
            lines += ["", "Failed runs:", ""] + [f"* `{r['strategy']}` seed {r['seed']}: {r['error']}" for r in failed]
        lines += ["", f"![{TITLES[key]}: metric against chip queries and against training energy]({rel})", "",
                  f"*{TITLES[key]}: the metric against training chip queries (left) and against training energy "
                  "(right), mean over the seeds, band min to max.*", ""]
    lines += [f"Package {version}, torch {__import__('torch').__version__}, Python {platform.python_version()}; "
              f"the runs took {total_s / 60:.0f} min of wall time in all.", ""]
    return "\n".join(lines)


SCENARIOS_BY_KEY = dict(SCENARIOS)

if __name__ == "__main__":
    sys.exit(main())

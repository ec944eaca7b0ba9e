"""One zeroth-order training run spread over Ray workers, bit-identical to the single-process run.

    exp = Experiment.from_file("quickstart")
    result = exp.run(backend="ray", workers=4)            # a local Ray, or ray_address="ray://host:10001"

How (the MeZO / seed trick): every worker is a *replica* (a Ray actor) that builds the same
:class:`~photonic_sim.scenarios.experiment.Experiment` (scenario, seed, initial phases) and so
the same chip (static errors, noise generator), mini-batch order, strategy (phases, optimizer,
direction generator) and trainer, and runs the whole training loop itself. Only when the
strategy calls its black box with P settings [P, N] does anything cross the network: replica
k measures settings ``shard_bounds(P, W, k)`` only (``Chip.shard``: its rows are those of the
full call bit for bit and the chip's random state advances as for the full call), sends
those losses and its conversion counts to the driver, and gets back the full loss vector [P]
and the summed counts. Phases and directions never travel: each replica regenerates them
from the shared seeds, then estimates, steps and evaluates exactly as one process would, so
the final phases, history (bar ``wall_s``), ledger and report are the same bits.

Sharded: classification tasks' "batch" black boxes of in-situ strategies (ZO estimators with
P ≥ 1 settings per call), and on PDE tasks every residual measurement of P ≥ 2 settings
without autograd (``PINNTask.shard_hook``: the ZO loss closures, ``zo-gn``'s residual-vector
closure, a staged stage's multi-setting evaluation loss). A PDE replica sends the raw residual
rows r [P_k, N] of its settings, not losses: the causal weights and the adaptive sampler are
computed from all P rows, so every replica gets the full r [P, N] back and weighs it as one
process does. Any other closure (per-example, adjoint, forward-forward, the first-order
baseline) and single-setting evaluations run whole on every replica: same bits, no speed-up.

A lost worker (``ray.exceptions.RayActorError``, e.g. a node gone or ``ray.kill``) is replaced
by a new replica that replays the run from the driver's log of every exchange (P floats and
three counts per call) — measuring empty shards, so its random state follows — and then
measures the interrupted call's shard again; the run goes on with the same bits.
"""

from __future__ import annotations

import os
import queue
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import torch

from photonic_sim.training.pinn import PINNTask
from photonic_sim.training.tasks import ClassificationTask
from photonic_sim.training.trainer import CHECKPOINT_FILE

COUNTS = ("dac_conversions", "adc_conversions", "clipped")
"""Ledger counts a shard books apart (``Chip.shard``); the driver sums them over the shards."""
RESTARTS = 3
"""Replacements per worker slot before the run gives up (RuntimeError)."""


def shard_bounds(p: int, workers: int, rank: int) -> tuple[int, int]:
    """Settings [a, b) of a call with ``p`` settings measured by replica ``rank`` of ``workers``:
    contiguous, in rank order, sizes differing by at most one (some empty when p < workers)."""
    return rank * p // workers, (rank + 1) * p // workers


@dataclass
class ExchangeStats:
    """What the driver measured: ``calls`` (exchanges), ``bytes`` (loss and count payload sent
    and received by the driver, 8 bytes per float or count), ``seconds`` (driver time from
    asking every replica for its shard to handing out the full vector, compute included),
    ``restarts`` (replicas replaced)."""

    calls: int = 0
    bytes: int = 0
    seconds: float = 0.0
    restarts: int = 0
    per_call: list[float] = field(default_factory=list)


class Replica:
    """One worker's copy of the run (a Ray actor; also usable in-process, e.g. in tests).

    ``experiment``: a zero-argument callable building the Experiment (the same on every replica);
    ``rank`` / ``workers``: this replica's shard; ``replay``: exchanges already done ([(full
    losses [P], counts)], the driver's log): replayed with empty shards, no waiting.
    ``checkpoint_dir``: where this replica writes the trainer's checkpoints (rank 0 only)."""

    def __init__(self, experiment: Callable[[], Any], rank: int, workers: int, replay: list | None = None,
                 checkpoint_dir: str | None = None, threads: int = 1) -> None:
        torch.set_num_threads(max(1, int(threads)))
        self.exp = experiment()
        self.rank, self.workers = int(rank), int(workers)
        self.replay = list(replay or [])
        self.calls = 0
        self.checkpoint_dir = checkpoint_dir
        self._out: queue.Queue = queue.Queue()
        self._in: queue.Queue = queue.Queue()
        self._thread = threading.Thread(target=self._main, daemon=True, name=f"replica-{rank}")
        self._thread.start()

    def next(self):
        """Blocks until this replica needs the next exchange — ("shard", call index, losses of
        its rows, counts) — or has finished: ("done", ExperimentResult) / ("error", one line)."""
        return self._out.get()

    def deliver(self, full: torch.Tensor, counts: dict[str, int]) -> None:
        """The full loss vector [P] and summed counts of the pending exchange."""
        self._in.put((full, counts))

    def _main(self) -> None:
        try:
            exp = self.exp
            ckpt = Path(self.checkpoint_dir) if self.checkpoint_dir and self.rank == 0 else None
            if exp.scenario.task.kind != "none":  # a cost-only scenario trains nothing
                exp._trainer = exp._make_trainer(ckpt, False)
                exp._trainer.closure_hook = self._hook
                if isinstance(exp.task, PINNTask):  # PDE residuals of P settings: rows shared out
                    exp.task.shard_hook = self._exchange
            result = exp.run()
            if ckpt is not None and (ckpt / CHECKPOINT_FILE).is_file():
                result.checkpoint = (ckpt / CHECKPOINT_FILE).read_bytes()
            self._out.put(("done", result))
        except BaseException as exc:  # reported to the driver, one line
            self._out.put(("error", f"{type(exc).__name__}: {exc}".splitlines()[0]))

    def _hook(self, closure, strategy):
        """The step's black box, sharded when its losses are per setting (module docstring)."""
        exp = self.exp
        if not (strategy.in_situ and getattr(strategy, "closure_kind", "batch") == "batch"
                and isinstance(exp.task, ClassificationTask)):
            return closure

        def exchange(params: torch.Tensor) -> torch.Tensor:
            if params.ndim != 2:  # one setting: every replica measures it whole
                return closure(params)
            return self._exchange(lambda: closure(params), params.shape[0]).to(params.device)

        return exp.chip.closure(exchange)

    def _exchange(self, measure: Callable[[], torch.Tensor], p: int) -> torch.Tensor:
        """One exchange: ``measure()`` under this replica's shard of a call with ``p`` settings
        (an empty shard while replaying), its rows [p_k, ...] to the driver, the full [p, ...]
        back (float64, CPU); the shards' conversion counts summed into the ledger."""
        chip = self.exp.chip
        if self.calls < len(self.replay):  # catching up: the state moves as for the full call
            full, counts = self.replay[self.calls]
            with chip.shard(p, p):
                measure()
        else:
            a, b = shard_bounds(p, self.workers, self.rank)
            with chip.shard(a, b) as mine:
                part = measure()
            self._out.put(("shard", self.calls, part.detach().to(torch.float64).cpu(),
                           {k: int(mine.get(k, 0)) for k in COUNTS}))
            full, counts = self._in.get()
        self.calls += 1
        ledger = chip.ledger
        for key, value in counts.items():
            setattr(ledger, key, getattr(ledger, key) + int(value))
        return full


@dataclass
class ExperimentBuilder:
    """A picklable recipe of an Experiment for the replicas: ``Experiment.from_scenario(scenario,
    init_phases=..., ideal=...)`` with its own ``dataset`` (a ``dataset`` task)."""

    scenario: Any
    init_phases: torch.Tensor | None = None
    ideal: bool = False
    dataset: Any = None

    def __call__(self):
        from photonic_sim.scenarios.experiment import Experiment

        exp = Experiment.from_scenario(self.scenario, init_phases=self.init_phases, ideal=self.ideal)
        exp._dataset = self.dataset
        return exp


def run_distributed(experiment: Callable[[], Any], *, workers: int, address: str | None = None,
                    checkpoint_dir: str | Path | None = None, threads: int = 1,
                    after_exchange: Callable[[int, list], None] | None = None,
                    stats: ExchangeStats | None = None):
    """Run ``experiment()`` (a picklable zero-argument builder of the Experiment; every replica
    calls it) on ``workers`` Ray replicas and return rank 0's ExperimentResult (the same bits
    as ``experiment().run()``). ``address``: a Ray cluster (default $RAY_ADDRESS, else a local
    Ray started here; an already initialised Ray is used as it is). ``threads``: torch threads
    per replica. ``after_exchange(calls done, actors)``: called by the driver after each
    exchange (tests kill a worker there). ``stats``: filled with the :class:`ExchangeStats`.
    RuntimeError (one line) when a replica fails or a slot is lost more than ``RESTARTS`` times."""
    import ray
    from ray.exceptions import RayActorError

    if isinstance(workers, bool) or not isinstance(workers, int) or workers < 1:
        raise ValueError(f"workers: {workers!r} is out of range (allowed: an integer >= 1)")
    stats = stats if stats is not None else ExchangeStats()
    started = not ray.is_initialized()
    if started:
        ray.init(address=address or os.environ.get("RAY_ADDRESS") or None, include_dashboard=False,
                 log_to_driver=False)
    actor = ray.remote(num_cpus=0, max_restarts=0)(Replica)
    ckpt = None if checkpoint_dir is None else str(checkpoint_dir)
    log: list[tuple[torch.Tensor, dict[str, int]]] = []
    lost = [0] * workers

    def spawn(rank: int):
        return actor.options(scheduling_strategy="SPREAD").remote(experiment, rank, workers, list(log), ckpt, threads)

    def answer(rank: int, ref):
        while True:
            try:
                return ray.get(ref)
            except RayActorError:
                lost[rank] += 1
                stats.restarts += 1
                if lost[rank] > RESTARTS:
                    raise RuntimeError(f"distributed run: worker {rank} lost {lost[rank]} times; giving up") from None
                actors[rank] = spawn(rank)
                ref = actors[rank].next.remote()

    try:
        actors = [spawn(k) for k in range(workers)]
        while True:
            t0 = time.perf_counter()
            refs = [a.next.remote() for a in actors]
            outs = [answer(k, ref) for k, ref in enumerate(refs)]
            kinds = {o[0] for o in outs}
            if "error" in kinds:
                raise RuntimeError(f"distributed run: {next(o[1] for o in outs if o[0] == 'error')}")
            if kinds == {"done"}:
                return outs[0][1]
            if kinds != {"shard"} or len({o[1] for o in outs}) != 1:
                raise RuntimeError("distributed run: replicas out of step (a nondeterministic scenario?)")
            full = torch.cat([o[2] for o in outs])
            counts = {k: sum(o[3][k] for o in outs) for k in COUNTS}
            log.append((full, counts))
            for a in actors:
                a.deliver.remote(full, counts)
            stats.calls += 1
            stats.bytes += 8 * (full.numel() + len(COUNTS) * workers + workers * (full.numel() + len(COUNTS)))
            dt = time.perf_counter() - t0
            stats.seconds += dt
            stats.per_call.append(dt)
            if after_exchange is not None:
                after_exchange(len(log), actors)
    finally:
        for a in actors if "actors" in locals() else []:
            ray.kill(a)
        if started:
            ray.shutdown()

"""The one assembly path: scenario (or the same pieces as Python objects) → chip, network,
task, strategy, trainer → a run whose report the reports layer writes as it is.

    from photonic_sim import Experiment

    exp = Experiment.from_file("quickstart", sets=["training.steps=20"])   # a scenario name or path
    exp = Experiment(devices="silicon_thermo_optic", accelerator="tonn_space", model="digits",
                     task={"kind": "digits"}, training="hybrid_zo", seed=0)  # the same from Python
    exp.chip, exp.network, exp.task, exp.strategy, exp.trainer   # the built pieces (built on first use)
    result = exp.run()                       # ExperimentResult
    result.report["metrics"]["final"]        # report.json as a dict (schema-valid, with versions)
    result.write("runs/mine")                # report.json, metrics.csv, report.md/html, figures

Pieces given as Python objects: ``devices`` a :class:`~photonic_sim.devices.DeviceCard` or a
card name / path (``load_device_card(name, overrides={...})`` for overrides); ``accelerator``
an :class:`~photonic_sim.accelerators.cards.AcceleratorCard` or a card name / path; ``model`` a
:class:`~photonic_sim.cores.spec.NetworkSpec` or a preset name; ``task`` a task mapping as in a
scenario file (``{"kind": "digits"}``, ``{"kind": "pde", "pde": "hjb20", ...}``), its validated
model, a kind name, or your own classification data as a
:class:`~photonic_sim.training.data.Dataset` (features in [0, 1] or [−1, 1], integer labels;
the report records its name, sizes and a SHA-256 of its tensors as task kind ``dataset``);
``training`` a :class:`TrainingRecipe`, a recipe name / path, or a recipe mapping
(``{"strategy": "zo-rge", "strategy_options": {"lr": 0.01}, "steps": 100}``; ``name``,
``loss``, ``batch_size``, ``eval_every`` and ``eval_batch_size`` have defaults there). Both ways
make the same :class:`~photonic_sim.scenarios.Scenario`, so they build and run identically.

Assembly rules (one place, used by ``photonic-sim run/compare/sweep``, the benchmarks and the
examples):

* network: the accelerator card's architecture (``dense_onn`` → ``DenseONN``, ``tonn_space`` /
  ``tonn_time`` → ``TONN``) on the card's block size;
* chip: ``seed`` (manufacturing draws and noise); readout = the recipe's, else the accelerator
  card's, else the device card's (a PDE task: coherent); PDE tasks (and ``ideal`` chips) run
  in float64, a PDE task with ``exact_readout`` has exact converters and detectors;
* initial phases: ``chip.init_phases(Generator(seed))`` (or ``init_phases``);
* strategy: ``make_strategy(recipe.strategy, params, lr, generator=Generator(seed + 1),
  mask=SUBSPACE_MASKS[...], periods=chip.controls()["periods"], **options)`` (``fo``: no
  generator), a cosine schedule without ``total_steps`` anneals over ``steps``;
* trainer: ``TrainConfig`` from the recipe (steps, eval_every, early stopping, checkpoints),
  mini-batches from ``seed + 7919`` (the trainer's rule), every history row priced by
  ``accelerators.training_cost`` of the training ledger.
"""

from __future__ import annotations

import math
import platform
import time
import warnings
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np
import torch
from pydantic import BaseModel

from photonic_sim.accelerators import estimate, training_cost
from photonic_sim.accelerators.cards import AcceleratorCard, load_accelerator_card
from photonic_sim.backend import check_fit, connect
from photonic_sim.chip import Chip
from photonic_sim.cores import TONN, DenseONN
from photonic_sim.cores.spec import NetworkSpec, preset
from photonic_sim.devices.cards import DeviceCard, load_device_card
from photonic_sim.training.data import Dataset, load_digits, load_mnist
from photonic_sim.training.strategies import STRATEGIES, fill_schedule_length, make_strategy
from photonic_sim.training.strategies.options import OptionError
from photonic_sim.training.tasks import ClassificationTask
from photonic_sim.training.trainer import CHECKPOINT_FILE, Trainer, TrainConfig, TrainResult, stop_status

from .errors import ScenarioError
from .loader import Scenario, _check_fit, load_scenario, resolve_task
from .recipes import _check_options, _check_stages, load_training_recipe
from .schema import TASKS, ChipSection, DatasetTask, TrainingRecipe, validate

SUBSPACE_MASKS = {"l2ight-sigma": "S", "tt-subspace": "tt"}
"""Strategies that train a subspace by default: ``chip.controls()["masks"]`` kind they use
(``tt-subspace`` adds the electronic biases)."""
PYTHON_SOURCE = "<python>"
_RECIPE_DEFAULTS = {"batch_size": 64, "eval_batch_size": 512}


def subspace_mask(strategy: str, controls: dict) -> torch.Tensor | None:
    """The coordinates ``strategy`` trains by default (``SUBSPACE_MASKS``; ``tt-subspace`` adds
    the electronic biases), from ``chip.controls()``; None: every coordinate."""
    if strategy not in SUBSPACE_MASKS:
        return None
    mask = controls["masks"][SUBSPACE_MASKS[strategy]]
    return mask | controls["masks"]["bias"] if strategy == "tt-subspace" else mask


def versions() -> dict[str, str]:
    """The ``versions`` block of a report: photonic_sim, torch, numpy and python versions."""
    import photonic_sim

    return {"photonic_sim": photonic_sim.__version__, "torch": torch.__version__, "numpy": np.__version__,
            "python": platform.python_version()}


@dataclass
class ExperimentResult:
    """A finished run, as plain data.

    ``report`` is report.json (valid against ``photonic_sim/reports/schema.json``, with
    ``versions``); ``history`` the metric rows of metrics.csv; ``phases_by_mesh`` each hardware
    matrix's phases as [blocks, phases per block] (heatmaps); ``resolved`` the resolved
    scenario (scenario.resolved.yaml); ``checkpoint`` the trainer's checkpoint bytes when a
    ``checkpoint_dir`` was given; ``phases`` the final control vector; ``train`` the
    trainer's :class:`~photonic_sim.training.TrainResult` (None for a cost-only run);
    ``in_situ`` whether the strategy saw only the black-box closure.
    """

    report: dict
    history: list[dict]
    phases_by_mesh: dict[str, np.ndarray]
    resolved: dict
    checkpoint: bytes | None = None
    phases: torch.Tensor | None = None
    train: TrainResult | None = None
    in_situ: bool = True

    def write(self, out_dir: str | Path, *, overwrite: bool = False) -> Path:
        """Write the run directory with :func:`photonic_sim.reports.write_run_dir` (atomic:
        report.json, metrics.csv, report.md / report.html, figures, checkpoint/)."""
        from photonic_sim.reports import write_run_dir  # the layer above: imported only here

        files = {CHECKPOINT_FILE: self.checkpoint} if self.checkpoint else None
        return write_run_dir(out_dir, self.report, self.history, self.resolved, self.phases_by_mesh, files,
                             overwrite=overwrite)

    def row(self, label: str | None = None) -> dict:
        """One comparison row (``training.compare.summarize`` reads these): strategy (or
        ``label``), seed, metric name, metric_final, queries, training energy / latency,
        wall_s, history ``[[queries, metric, training energy J], ...]`` at every evaluation,
        in_situ, stopped."""
        rep, tr = self.report, self.report["training"]
        final = rep["metrics"]["final"]
        return {"strategy": label or tr.get("strategy"), "seed": rep["seed"], "metric": rep["metrics"]["name"],
                "metric_final": math.nan if final is None else final, "queries": tr["queries"],
                "training_energy_j": tr["energy_j"], "training_latency_s": tr["latency_s"], "wall_s": tr["wall_s"],
                "history": [[h["queries"], h["metric"], h.get("energy_j", math.nan)] for h in self.history
                            if h.get("metric") is not None],
                "in_situ": self.in_situ, "stopped": tr.get("stopped")}


class Experiment:
    """One training run assembled from a scenario or from Python objects (module docstring).

    Keyword arguments beyond the scenario's pieces: ``name`` (report's scenario name;
    default the model's name), ``init_phases`` (start from these phases instead of random
    ones), ``ideal`` (a chip without any non-ideality, float64: the offline model of
    :meth:`weight_map`), ``torch_device`` (where chip and task tensors live, e.g. "cuda"),
    ``insertion_loss`` (default True, as a scenario's ``chip.insertion_loss``: the simulated chip
    has the meshes' per-MZI insertion loss, the laser set by the link budget), ``loss_balanced``
    (default False, as ``chip.loss_balanced``: a loss-balanced mesh, only with ``insertion_loss``;
    docs/physics.md#loss-balanced-meshes), ``chip`` (train
    through this chip instead of building the simulated one: a
    ``tcp://host:port`` address of ``photonic-sim serve-chip`` or any object with the
    :class:`photonic_sim.backend.ChipBackend` operations; it must have this network's sizes and
    readout; :meth:`weight_map` needs the simulated chip). The pieces are built on first use of
    ``chip``/``network``/``task``/``strategy``/``trainer`` (or :meth:`build`); an Experiment runs once.
    """

    def __init__(self, *, devices: DeviceCard | str | Path, accelerator: AcceleratorCard | str | Path,
                 model: NetworkSpec | str, task: Any, training: TrainingRecipe | str | Path | dict,
                 seed: int = 0, name: str | None = None, init_phases: torch.Tensor | None = None,
                 ideal: bool = False, torch_device: str | torch.device | None = None, chip: Any = None,
                 insertion_loss: bool = True, loss_balanced: bool = False) -> None:
        if isinstance(seed, bool) or not isinstance(seed, int) or not 0 <= seed <= 2**32 - 1:
            raise ScenarioError(PYTHON_SOURCE, "seed", f"{seed!r} is out of range", "integer 0 <= seed <= 2**32-1")
        network = model if isinstance(model, NetworkSpec) else _preset(model)
        dataset = task if isinstance(task, Dataset) else None
        task_cfg = _task_config(task)
        recipe = _recipe(training, task_cfg)
        _check_fit(network, task_cfg, recipe, {}, PYTHON_SOURCE)
        if loss_balanced and not insertion_loss:
            raise ScenarioError(PYTHON_SOURCE, "loss_balanced", "true needs insertion_loss=True (a lossless chip has "
                                "no loss to balance)", "False, or True with insertion_loss=True")
        scenario = Scenario(
            path=Path(PYTHON_SOURCE), raw={}, name=name or network.name, description="", seed=seed,
            device_card=devices if isinstance(devices, DeviceCard) else _load(load_device_card, devices, "devices"),
            accelerator_card=accelerator if isinstance(accelerator, AcceleratorCard) else
            _load(load_accelerator_card, accelerator, "accelerator"),
            recipe=recipe, network=network, task=task_cfg, chip=ChipSection(insertion_loss=bool(insertion_loss),
                                                                          loss_balanced=bool(loss_balanced)))
        self._setup(scenario, init_phases=init_phases, ideal=ideal, torch_device=torch_device, backend=chip)
        self._dataset = dataset

    # ------------------------------------------------------------------ constructors
    @classmethod
    def from_scenario(cls, scenario: Scenario, *, init_phases: torch.Tensor | None = None, ideal: bool = False,
                      torch_device: str | torch.device | None = None, chip: Any = None) -> Experiment:
        """From a resolved scenario (``load_scenario(path, sets)``)."""
        exp = cls.__new__(cls)
        exp._setup(scenario, init_phases=init_phases, ideal=ideal, torch_device=torch_device, backend=chip)
        return exp

    @classmethod
    def from_file(cls, path: str | Path, sets: list[str] | tuple[str, ...] = (), **kwargs) -> Experiment:
        """From a scenario file or built-in scenario name, with ``--set`` style overrides."""
        return cls.from_scenario(load_scenario(path, list(sets)), **kwargs)

    def _setup(self, scenario: Scenario, *, init_phases, ideal, torch_device, backend=None) -> None:
        self.scenario = scenario
        self._backend = backend
        self.init_phases = init_phases
        self.ideal = bool(ideal)
        self.torch_device = torch_device
        self._network = self._chip = self._task = self._strategy = self._trainer = None
        self._dataset = None
        self._params = None
        self._started = False  # ``start: calibrated`` done (or not to be done: weight_map, a resume)
        self.start_calibration = None
        """The :class:`~photonic_sim.calibration.Calibration` of ``start: calibrated`` (None before
        the strategy is built, with ``start: random``, or when a resumed run skipped it)."""

    def variant(self, name: str) -> Experiment:
        """The experiment of one of the scenario's ``variants:`` entries."""
        if name not in self.scenario.variants:
            raise ScenarioError(str(self.scenario.path), "variants", f"no variant {name!r}",
                                ", ".join(sorted(self.scenario.variants)) or "none defined")
        return type(self).from_scenario(self.scenario.variants[name], init_phases=self.init_phases,
                                        ideal=self.ideal, torch_device=self.torch_device)

    # ------------------------------------------------------------------ what it is made of
    @property
    def seed(self) -> int:
        return self.scenario.seed

    @property
    def recipe(self) -> TrainingRecipe:
        return self.scenario.recipe

    @property
    def device_card(self) -> DeviceCard:
        return self.scenario.device_card

    @property
    def accelerator_card(self) -> AcceleratorCard:
        return self.scenario.accelerator_card

    @property
    def spec(self) -> NetworkSpec:
        return self.scenario.network

    def resolved(self) -> dict:
        """The resolved scenario (scenario.resolved.yaml)."""
        return self.scenario.resolved()

    # ------------------------------------------------------------------ built pieces
    @property
    def network(self):
        """TONN (space / time multiplexed) or DenseONN, as the accelerator card says."""
        if self._network is None:
            acc, spec = self.accelerator_card, self.spec
            if acc.architecture == "dense_onn":
                self._network = DenseONN(spec, acc.block_size)
            elif acc.architecture == "tonn_time":
                blocks = TONN(spec, acc.block_size).num_blocks
                self._network = TONN(spec, acc.block_size, "time", min(acc.num_cores or 1, blocks))
            else:
                self._network = TONN(spec, acc.block_size, "space")
        return self._network

    @property
    def readout(self) -> str:
        """Recipe readout, else the accelerator card's, else the device card's; PINNs need
        signed outputs, so a PDE task defaults to coherent readout."""
        if self.recipe.readout:
            return self.recipe.readout
        if self.scenario.task.kind == "pde":
            return "coherent"
        return self.accelerator_card.readout or self.device_card.photodetector.readout

    @property
    def layout(self) -> torch.Tensor | None:
        """Block origins (m) from the accelerator card's ``layout`` (space-multiplexed networks:
        thermal crosstalk across blocks by distance, ``Chip(layout=...)``), else None."""
        acc, net = self.accelerator_card, self.network
        if acc.layout is None or net.num_hw_blocks != net.num_blocks:
            return None
        from photonic_sim.accelerators.layout import block_origins

        return block_origins(acc, net.num_blocks)

    @property
    def chip(self) -> Chip:
        if self._chip is None and self._backend is not None:  # a served or lab chip (photonic_sim.backend)
            chip = connect(self._backend)
            check_fit(chip, self.network, self.readout)
            self._chip = chip
        if self._chip is None:
            pde = self.scenario.task.kind == "pde"
            kw = {} if self.torch_device is None else {"device": self.torch_device}
            self._chip = Chip(self.network, self.device_card, seed=self.seed, readout=self.readout, ideal=self.ideal,
                              exact_readout=pde and self.scenario.task.exact_readout,
                              insertion_loss=self.scenario.chip.insertion_loss,
                              loss_balanced=self.scenario.chip.loss_balanced,
                              dtype=torch.float64 if pde or self.ideal else torch.float32, layout=self.layout, **kw)
        return self._chip

    @property
    def task(self):
        """ClassificationTask (digits, MNIST) or PINNTask (pde); ValueError for kind none."""
        if self._task is None:
            task, recipe, seed = self.scenario.task, self.recipe, self.seed
            if task.kind in ("digits", "mnist", "dataset"):
                if task.kind == "dataset":
                    if self._dataset is None:
                        raise ValueError("task.kind: 'dataset' needs the Dataset object (Experiment(task=dataset))")
                    data = self._dataset
                else:
                    data = load_digits(seed, task.test_fraction) if task.kind == "digits" else \
                        load_mnist(task.data_dir, seed, task.test_fraction)
                self._task = ClassificationTask(data, batch_size=recipe.batch_size,
                                                eval_batch_size=recipe.eval_batch_size,
                                                logit_scale=recipe.logit_scale, loss=recipe.loss)
            elif task.kind == "pde":
                from photonic_sim.training.pinn import PINNTask

                kw = {} if self.torch_device is None else {"device": self.torch_device}
                self._task = PINNTask(task.pde, estimator=task.estimator, sigma=task.sigma, level=task.level,
                                      mc_samples=task.mc_samples, collocation=task.collocation,
                                      test_points=task.test_points, residual_points=task.residual_points,
                                      eval_level=task.eval_level, seed=seed, fd_step=task.fd_step,
                                      sigma_final=task.sigma_final, sigma_decay_steps=task.sigma_decay_steps,
                                      resample_pool=task.resample_pool, resample_k=task.resample_k,
                                      resample_c=task.resample_c, resample_refresh=task.resample_refresh,
                                      causal_eps=task.causal_eps, causal_bins=task.causal_bins,
                                      input_gain=task.input_gain, fourier_features=task.fourier_features and
                                      task.fourier_features.model_dump(), eval_loss=task.eval_loss,
                                      eval_grid=task.eval_grid, sampling=task.sampling,
                                      symmetry=task.symmetry, separable=task.separable,
                                      input_warp=task.input_warp, **kw)
            else:
                raise ValueError(f"task.kind: {task.kind!r} has no training task (a cost-only scenario)")
        return self._task

    @property
    def params(self) -> torch.Tensor:
        """The control vector the strategy trains (initial phases until the run)."""
        if self._params is None:
            params = self.chip.init_phases(torch.Generator().manual_seed(self.seed))
            if self.init_phases is not None:
                params = self.init_phases.detach().clone().to(dtype=params.dtype)
            if self.torch_device is not None:
                params = params.to(self.torch_device)
            self._params = params
        return self._params

    @property
    def strategy(self):
        if self._strategy is None:
            if self.recipe.start == "calibrated" and not self._started:
                self._calibrated_start()
            recipe, controls = self.recipe, self.chip.controls()
            options = dict(recipe.strategy_options)
            lr = options.pop("lr", 0.01)
            fill_schedule_length(options, recipe.steps)
            mask = subspace_mask(recipe.strategy, controls)
            gen = None if recipe.strategy == "fo" else torch.Generator().manual_seed(self.seed + 1)
            try:
                self._strategy = make_strategy(recipe.strategy, self.params, lr=lr, generator=gen, mask=mask,
                                               periods=controls["periods"], lattice=controls.get("lattice"), **options)
            except OptionError as exc:  # a bound the chip sets (e.g. nnz <= the phases it may move): bad input
                raise ScenarioError(str(self.scenario.path), f"training.strategy_options.{exc.key}", exc.what,
                                    exc.allowed) from None
            if self._in_situ_hardware and self.scenario.chip.insertion_loss and not self.scenario.chip.loss_balanced:
                warnings.warn(f"strategy {recipe.strategy!r}: its interference pass assumes unitary meshes, and this chip "
                              "simulates path-dependent insertion loss, so its gradients are approximate "
                              "(chip.loss_balanced: true balances the meshes so it is exact, chip.insertion_loss: "
                              "false gives the lossless chip; docs/in-situ-gradients.md)",
                              UserWarning, stacklevel=2)
        return self._strategy

    def _calibrated_start(self) -> None:
        """``start: calibrated`` (recipe key): calibrate the chip (:meth:`calibrate`, default
        options; its queries land in the chip's ledger, so the run counts and prices them) and
        replace the initial phases by ``Calibration.compensate`` of them: the targets whose
        realisation on this chip gives the block matrices the ideal model gives for the initial
        phases. Runs once, when the strategy is built."""
        self._started = True
        self.start_calibration = self.calibrate()
        start = self.start_calibration.compensate(self.network, self.params)
        self._params = start.to(dtype=self._params.dtype, device=self._params.device)

    @property
    def trainer(self) -> Trainer:
        if self._trainer is None:
            self._trainer = self._make_trainer(None, False)
        return self._trainer

    def build(self) -> Experiment:
        """Build every piece now (network, chip, task, strategy, trainer); returns self."""
        _ = self.trainer
        return self

    def cost(self, ledger: dict, phases: torch.Tensor | None = None) -> tuple[float, float]:
        """(training energy J, latency s) of ledger totals (``accelerators.training_cost``); with
        ``phases`` (a control vector) the heater energy follows those programmed phases, as the
        report's total does, else a mean phase of π."""
        programmed = None
        if phases is not None:  # on a GPU only the mean comes to the host (the heater law needs no more)
            programmed = programmed_phases(self.network, phases) if phases.device.type == "cpu" else \
                np.array([float(_programmed(self.network, phases).mean())])
        c = training_cost(self.accelerator_card, self.spec, self.device_card, ledger, programmed,
                          in_situ_hardware=self._in_situ_hardware, loss_balanced=self.scenario.chip.loss_balanced)
        return c["energy_j"], c["latency_s"]

    @property
    def _in_situ_hardware(self) -> bool:
        """Whether the strategy assumes the in-situ gradient hardware (``needs_hardware``: monitor
        taps, I/Q ports), which the cost model then prices (``accelerators.cost``). Read from the
        built strategy, else from the recipe's strategy class (so pricing never builds it)."""
        strategy = self._strategy if self._strategy is not None else STRATEGIES.get(self.recipe.strategy)
        return bool(getattr(strategy, "needs_hardware", ()))

    def _make_trainer(self, checkpoint_dir, progress: bool) -> Trainer:
        recipe, stop = self.recipe, self.recipe.early_stopping
        config = TrainConfig(steps=recipe.steps, eval_every=recipe.eval_every, seed=self.seed, progress=progress,
                             patience=stop.patience if stop else None, min_delta=stop.min_delta if stop else 0.0,
                             checkpoint_every=recipe.checkpoint_every or None, eval_at_start=True, keep=recipe.keep)
        return Trainer(self.chip, self.task, self.strategy, config, checkpoint_dir=checkpoint_dir, cost=self.cost)

    # ------------------------------------------------------------------ running
    def run(self, checkpoint_dir: str | Path | None = None, resume: bool = False,
            progress: bool = False, *, backend: str = "local", workers: int = 1,
            ray_address: str | None = None) -> ExperimentResult:
        """Train (unless ``task.kind`` is none), evaluate and cost the run.

        ``checkpoint_dir``: the trainer writes checkpoints there (every ``checkpoint_every``
        steps and at the end) and ``resume=True`` continues from the one found there.
        ``backend="ray"``: the run spread over ``workers`` Ray replicas (``ray_address``: a
        cluster; default $RAY_ADDRESS, else a local Ray), each measuring its share of every
        ZO step's settings; the same bits as ``"local"`` (``photonic_sim.scenarios.distributed``;
        not with ``resume``, ``chip=`` or ``torch_device``; no progress bar)."""
        if backend != "local":
            return self._run_distributed(backend, workers, ray_address, checkpoint_dir, resume)
        t0 = time.perf_counter()
        scenario, acc, dev, spec = self.scenario, self.accelerator_card, self.device_card, self.spec
        balanced = scenario.chip.loss_balanced
        inference = estimate(acc, spec, dev, loss_balanced=balanced).to_dict()
        base = {"scenario": scenario.name, "variant": scenario.variant, "seed": scenario.seed,
                "task": scenario.task.model_dump(mode="json"), "counts": inference["counts"],
                "area_mm2": inference["area_mm2"], "inference": inference["inference"],
                "chip": {"insertion_loss": scenario.chip.insertion_loss, **({"loss_balanced": True} if balanced else {}),
                         "link": inference["link"]}}
        if scenario.task.kind == "none":
            zero = training_cost(acc, spec, dev, {"queries": 0, "phase_settings": 0, "samples": 0},
                                 loss_balanced=balanced)
            report = {**base, "metrics": {"name": "none", "final": None, "best": None, "history_file": "metrics.csv"},
                      "training": {"queries": 0, "energy_j": 0.0, "latency_s": 0.0,
                                   "breakdown": zero["breakdown"], "wall_s": 0.0},
                      "versions": versions(), "wall_s": time.perf_counter() - t0}
            return ExperimentResult(report, [], {}, self.resolved())

        if resume and self._strategy is None:
            self._started = True  # the checkpoint holds the phases and the chip's state: no new calibration
        if self._trainer is None or (self._trainer.step == 0 and (checkpoint_dir is not None or progress)):
            self._trainer = self._make_trainer(checkpoint_dir, progress)
        trainer, task, recipe = self._trainer, self.task, self.recipe
        result = trainer.run(resume=resume)
        programmed = programmed_phases(self.network, result.phases)
        inference = estimate(acc, spec, dev, programmed, in_situ_hardware=self._in_situ_hardware,
                             loss_balanced=balanced).to_dict()
        base.update(counts=inference["counts"], area_mm2=inference["area_mm2"], inference=inference["inference"])
        tc = training_cost(acc, spec, dev, result.ledger, programmed, in_situ_hardware=self._in_situ_hardware,
                           loss_balanced=balanced)
        report = {**base,
                  "metrics": {"name": task.metric_name, "final": _finite(result.final.get("metric")),
                              "best": _finite(result.best), "higher_is_better": task.higher_is_better,
                              "history_file": "metrics.csv",
                              **{k: _finite(v) for k, v in result.final.items() if k != "metric"},
                              **({"initial": _finite(result.history[0]["metric"])}
                                 if result.history and result.history[0]["step"] == 0 else {})},
                  "training": {"queries": int(result.ledger["queries"]), "energy_j": tc["energy_j"],
                               "latency_s": tc["latency_s"], "breakdown": tc["breakdown"], "wall_s": result.wall_s,
                               "strategy": recipe.strategy, "steps": trainer.step, "stopped": result.stopped,
                               **({"start": recipe.start} if recipe.start != "random" else {}),
                               "status": stop_status(result.stopped), "ledger": result.ledger, "eval_ledger": result.eval_ledger},
                  "versions": versions(), "wall_s": time.perf_counter() - t0}
        ckpt = None
        if checkpoint_dir is not None and (Path(checkpoint_dir) / CHECKPOINT_FILE).is_file():
            ckpt = (Path(checkpoint_dir) / CHECKPOINT_FILE).read_bytes()
        return ExperimentResult(report, [_history_row(r) for r in result.history],
                                phases_by_mesh(self.network, result.phases), self.resolved(), ckpt,
                                result.phases, result, bool(self.strategy.in_situ))

    def _run_distributed(self, backend, workers, ray_address, checkpoint_dir, resume) -> ExperimentResult:
        """``run(backend="ray")``: checks, then ``distributed.run_distributed`` on replicas of this
        experiment (it must not have trained yet)."""
        from .distributed import ExperimentBuilder, run_distributed

        if backend != "ray":
            raise ValueError(f"backend: {backend!r} is not one of ('local', 'ray')")
        if isinstance(workers, bool) or not isinstance(workers, int) or workers < 1:
            raise ValueError(f"workers: {workers!r} is out of range (allowed: an integer >= 1)")
        if resume or self._backend is not None or self.torch_device is not None:
            raise ValueError("backend: 'ray' runs a fresh simulated CPU chip (allowed: no resume, chip= or torch_device)")
        if self.recipe.start != "random":
            raise ValueError(f"backend: 'ray' starts from the drawn phases (allowed: training.start: random, "
                             f"not {self.recipe.start})")
        if self._trainer is not None and self._trainer.step:
            raise ValueError("backend: 'ray' needs an experiment that has not trained yet")
        try:
            import ray  # noqa: F401
        except ImportError:
            raise ValueError("backend: 'ray': Ray is not installed (pip install 'photonic-sim[ray]')") from None
        builder = ExperimentBuilder(self.scenario, self.init_phases, self.ideal, self._dataset)
        return run_distributed(builder, workers=workers, address=ray_address, checkpoint_dir=checkpoint_dir,
                               threads=torch.get_num_threads())

    def calibrate(self, **options):
        """Calibrate this experiment's chip from its readings only
        (:func:`photonic_sim.calibration.calibrate` with ``options``: settings, steps, lr, seed,
        fit_kappa) → a :class:`~photonic_sim.calibration.Calibration` for :meth:`weight_map`.
        Its queries, settings, samples and conversions land in the chip's ledger, so a later
        :meth:`run` reports them in its training queries / energy / latency;
        ``Calibration.ledger`` holds the calibration's share (priced by :meth:`cost`). The chip
        must offer ``measure_block``: the simulated chip does, a served one (``chip="tcp://..."``)
        does over the wire (the same result and ledger bit for bit), a lab's
        :class:`~photonic_sim.backend.HardwareChip` when it implements ``program_block`` and
        ``read_block``."""
        from photonic_sim.calibration import calibrate  # the chip-level module, imported on use

        if not callable(getattr(self.chip, "measure_block", None)):
            raise ValueError("calibrate: the chip has no measure_block (allowed: a chip with per-block readout)")
        return calibrate(self.chip, self.network, self.device_card, **options)

    def weight_map(self, *, lr: float = 0.01, steps: int | None = None,
                   calibration=None) -> tuple[torch.Tensor, ExperimentResult]:
        """The weight-map baseline (not in situ): first-order training on the *ideal* model of
        this network (same seed, initial phases and readout; plain SGD at ``lr`` for ``steps``,
        default the recipe's), then mapping the learned weights back to phases
        (``network.from_weights``, which also sets the network's block scales; with intensity
        readout the last pass depends on the complex block matrices, so the learned phases are
        kept as they are). With ``calibration`` (a :class:`~photonic_sim.calibration.Calibration`
        of this chip, e.g. from :meth:`calibrate`) the mapped phases are pre-compensated
        (``Calibration.compensate``: the targets whose realisation on the calibrated chip gives
        the ideal model's block matrices). The calibration's cost is not in the returned
        offline result: it is in the chip's ledger (``Calibration.ledger``, see :meth:`calibrate`).
        This experiment then starts from the mapped phases: deploy them with
        ``task.evaluate(chip, params)`` or train in situ from them with :meth:`run`. Returns
        (the mapped phases, the offline run's result). Call it before the strategy is built."""
        if self._strategy is not None:
            raise RuntimeError("weight_map: the strategy is already built (call weight_map first)")
        self._started = True  # the mapping is the start (with calibration= it is compensated already)
        if self._backend is not None:  # the block gains the mapping sets live in this process's network
            raise ValueError("weight_map: needs the simulated chip (allowed: an Experiment without chip=)")
        recipe = self.recipe.model_copy(update={
            "strategy": "fo", "strategy_options": {"lr": lr}, "steps": steps or self.recipe.steps,
            "early_stopping": None, "checkpoint_every": 0})
        offline = type(self).from_scenario(replace(self.scenario, recipe=recipe, variants={}),
                                           init_phases=self.params, ideal=True, torch_device=self.torch_device)
        offline._network = self.network  # one network object: the mapping's block scales reach this chip
        result = offline.run()
        learned = result.phases
        if offline.readout == "coherent":
            learned = self.network.from_weights(self.network.weights(learned))
        if calibration is not None:
            learned = calibration.compensate(self.network, learned)
        self._params = learned.detach().clone().to(dtype=self._params.dtype, device=self._params.device)
        return self._params, result


# ------------------------------------------------------------------ helpers


def programmed_phases(network, phases: torch.Tensor) -> np.ndarray:
    """The phase-shifter phases a control vector programs (rad), as the heater power law
    needs them: U/V phases wrapped into [0, 2π), Σ attenuator phases folded into [0, π]
    (σ = sin(θ/2) is even about π, so the device realises θ and 2π − θ alike); electronic
    biases are dropped."""
    return _programmed(network, phases.detach().cpu()).numpy()


def _programmed(network, phases: torch.Tensor) -> torch.Tensor:
    """:func:`programmed_phases` as a float64 tensor on the device of ``phases``."""
    ph = phases.detach().to(torch.float64)
    is_phase, sigma = network.mask("phase").to(ph.device), network.mask("S").to(ph.device)
    wrapped = torch.remainder(ph, 2.0 * math.pi)
    folded = torch.where(sigma, torch.minimum(wrapped, 2.0 * math.pi - wrapped), wrapped)
    return folded[is_phase]


def phases_by_mesh(network, phases: torch.Tensor) -> dict[str, np.ndarray]:
    """Phases of each hardware matrix as a [blocks, phases-per-block] array (for heatmaps)."""
    out: dict[str, list] = {}
    nb = network.block.num_phases
    ph = phases.detach().to(torch.float64).cpu().numpy()
    for name, sl in network.slices().items():
        if not name.endswith(".U"):
            continue
        out.setdefault(name.split(".block(")[0], []).append(ph[sl.start : sl.start + nb])
    return {name: np.stack(rows) for name, rows in out.items()}


def _history_row(row: dict) -> dict:
    return {"step": row["step"], "queries": row["queries"], "loss": _finite(row["loss"]),
            "metric": _finite(row.get("metric")), "energy_j": row.get("energy_j"),
            "latency_s": row.get("latency_s")}


def _finite(value):
    if value is None:
        return None
    if isinstance(value, int) and not isinstance(value, bool):  # a count (e.g. kept_step) stays an integer
        return value
    value = float(value)
    return value if math.isfinite(value) else None


def _load(loader, ref, key: str):
    try:
        return loader(ref)
    except ScenarioError:
        raise
    except ValueError as exc:
        raise ScenarioError(PYTHON_SOURCE, key, str(exc).splitlines()[0][:200]) from None


def _preset(name) -> NetworkSpec:
    try:
        return preset(name)
    except (ValueError, TypeError) as exc:
        raise ScenarioError(PYTHON_SOURCE, "model", str(exc), "a preset name or a NetworkSpec") from None


def _task_config(task: Any):
    if isinstance(task, Dataset):
        return _dataset_config(task)
    if isinstance(task, BaseModel) and type(task) in TASKS.values():
        task = task.model_dump()
    if isinstance(task, str):
        task = {"kind": task}
    if not isinstance(task, dict):
        raise ScenarioError(PYTHON_SOURCE, "task", f"{type(task).__name__} is not a task",
                            "a kind name or a mapping with kind: " + ", ".join(TASKS))
    return resolve_task(task, PYTHON_SOURCE, Path.cwd())


def _dataset_config(data: Dataset) -> DatasetTask:
    """The report's record of a Python dataset (name, sizes, SHA-256 of its tensors), after
    checking it is a classification set the chip can encode (one-line ScenarioError)."""
    import hashlib

    def bad(what: str, allowed: str):
        return ScenarioError(PYTHON_SOURCE, "task", what, allowed)

    tensors = (data.x_train, data.y_train, data.x_test, data.y_test)
    if not all(isinstance(t, torch.Tensor) for t in tensors):
        raise bad("Dataset fields x_train, y_train, x_test, y_test must be tensors", "torch.Tensor")
    if isinstance(data.num_classes, bool) or not isinstance(data.num_classes, int) or data.num_classes < 2:
        raise bad(f"num_classes {str(data.num_classes)[:20]!r} is out of range", "an integer >= 2")
    n_feat = int(data.x_train.shape[-1]) if data.x_train.ndim == 2 else -1
    for split, x, y in (("train", data.x_train, data.y_train), ("test", data.x_test, data.y_test)):
        if x.ndim != 2 or x.shape[1] != n_feat or x.shape[0] == 0 or tuple(y.shape) != (x.shape[0],):
            raise bad(f"x_{split} / y_{split} shapes {tuple(x.shape)} / {tuple(y.shape)} do not match",
                      "x [n, features] (the same features in both splits, n >= 1) and y [n]")
        if not x.is_floating_point() or not bool(torch.isfinite(x).all()) or float(x.min()) < -1 or float(x.max()) > 1:
            raise bad(f"x_{split} must be finite floats in [-1, 1] (the modulators' range)",
                      "features scaled into [0, 1] or [-1, 1]")
        if y.dtype.is_floating_point or y.dtype.is_complex or y.dtype == torch.bool or \
                int(y.min()) < 0 or int(y.max()) >= data.num_classes:
            raise bad(f"y_{split} must be integer labels 0 .. {data.num_classes - 1}", "an integer tensor of class indices")
    digest = hashlib.sha256()
    for t in tensors:
        digest.update(str((tuple(t.shape), str(t.dtype))).encode())
        digest.update(t.detach().cpu().contiguous().numpy().tobytes())
    return DatasetTask(kind="dataset", name=str(data.name)[:80] or "dataset", in_features=n_feat,
                       classes=data.num_classes, train_size=int(data.x_train.shape[0]),
                       test_size=int(data.x_test.shape[0]), sha256=digest.hexdigest())


def _recipe(training: Any, task) -> TrainingRecipe:
    if isinstance(training, TrainingRecipe):
        return training
    if isinstance(training, (str, Path)):
        return load_training_recipe(training)
    if not isinstance(training, dict):
        raise ScenarioError(PYTHON_SOURCE, "training", f"expected a recipe, got {type(training).__name__}",
                            "a TrainingRecipe, a recipe name or path, or a mapping")
    steps = training.get("steps")
    defaults = {"name": str(training.get("strategy", "recipe")), "loss": "pinn" if task.kind == "pde" else
                "cross_entropy", "eval_every": steps if isinstance(steps, int) else 1, **_RECIPE_DEFAULTS}
    recipe = validate(TrainingRecipe, {**defaults, **training}, PYTHON_SOURCE, "training")
    try:  # the checks load_training_recipe makes on a recipe file
        if recipe.strategy not in STRATEGIES:
            raise ScenarioError(PYTHON_SOURCE, "strategy", f"unknown strategy {recipe.strategy[:40]!r}",
                                ", ".join(sorted(STRATEGIES)))
        _check_options(PYTHON_SOURCE, "strategy_options", recipe.strategy, recipe.strategy_options)
        if recipe.strategy == "staged":
            _check_stages(PYTHON_SOURCE, recipe.strategy_options.get("stages"))
    except ScenarioError as exc:
        raise exc.under("training") from None
    return recipe

"""``photonic-sim serve-chip SCENARIO``: a scenario's simulated chip served over TCP.

The chip is built exactly as :class:`~photonic_sim.scenarios.experiment.Experiment` builds it
(same cards, network, seed, readout and dtype: the same static device errors and the same noise
stream), and served by :class:`photonic_sim.backend.ChipServer`; a run trains through it with
``photonic-sim run SCENARIO --chip tcp://host:port`` or ``Experiment(..., chip="tcp://...")``
and gets the same numbers as a local run of the same scenario (docs/howto/drive-a-real-chip.md).
"""

from __future__ import annotations

import hashlib
import json

from photonic_sim.backend import ChipServer

from .experiment import Experiment
from .loader import Scenario


def chip_identity(exp: Experiment) -> str:
    """``name (seed S, chip HASH)``: HASH covers what builds the chip (device and accelerator
    cards, model, seed, readout, task kind, exact readout, simulated insertion loss and, when
    set, the loss-balanced mesh), so a
    restarted server of the same scenario has the same identity and a different chip a
    different one."""
    resolved, task = exp.resolved(), exp.scenario.task
    key = {k: resolved.get(k) for k in ("seed", "devices", "accelerator", "model")}
    key.update(readout=exp.readout, task=task.kind, exact_readout=getattr(task, "exact_readout", False),
               insertion_loss=exp.scenario.chip.insertion_loss)
    if exp.scenario.chip.loss_balanced:  # only when set: identities of unbalanced chips stay as they were
        key["loss_balanced"] = True
    digest = hashlib.sha256(json.dumps(key, sort_keys=True, default=str).encode()).hexdigest()[:16]
    return f"{exp.scenario.name} (seed {exp.seed}, chip {digest})"


def chip_timing(exp: Experiment) -> dict:
    """The timing figures a served chip reports (SI): phase-shifter ``settle_s``, DAC / ADC
    ``*_sample_rate_hz`` and the accelerator ``clock_hz``."""
    dev = exp.device_card
    return {"settle_s": dev.phase_shifter.settle_time, "dac_sample_rate_hz": dev.dac.sample_rate,
            "adc_sample_rate_hz": dev.adc.sample_rate, "clock_hz": exp.accelerator_card.clock}


def chip_server(scenario: Scenario, *, host: str = "127.0.0.1", port: int = 0, **kwargs) -> ChipServer:
    """A :class:`~photonic_sim.backend.ChipServer` of ``scenario``'s chip, listening on
    ``host``:``port`` (0: a free port; the server's ``address`` says which). OSError when it
    cannot listen there; ``kwargs`` go to the server (``max_payload``, ``idle_s``, ...)."""
    exp = Experiment.from_scenario(scenario)
    return ChipServer(exp.chip, host, port, identity=chip_identity(exp), timing=chip_timing(exp), **kwargs)

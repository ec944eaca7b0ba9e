"""photonic_sim.accelerators: architecture cards (placement, reuse) and the cost model.

    from photonic_sim.accelerators import estimate, training_cost
    report = estimate("tonn_space", "hjb20", "silicon_thermo_optic")
    report.to_dict()["counts"]["mzi_blocked"]
    estimate("dense_onn", my_torch_model)     # nn.Linear / photonic_sim.nn layers, duck typed

The ``photonic-sim cost`` command that prints these reports is ``photonic_sim.cli_cost``.
"""

from typing import TYPE_CHECKING

from photonic_sim._lazy import attach

if TYPE_CHECKING:  # the public names, read by attach(); each loads on first use
    from photonic_sim.accelerators.cards import (
        AcceleratorCard,
        list_accelerator_cards,
        load_accelerator_card,
    )
    from photonic_sim.accelerators.cost import CostReport, conversion_energy, converter_area, estimate, training_cost
    from photonic_sim.accelerators.mapping import spec_from_module

__all__ = [
    "AcceleratorCard", "CostReport", "conversion_energy", "converter_area", "estimate", "list_accelerator_cards",
    "load_accelerator_card", "spec_from_module", "training_cost",
]

__getattr__, __dir__ = attach(__name__, __file__)

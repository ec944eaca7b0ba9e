"""photonic_sim.accelerators: architecture cards (placement, reuse) and the cost model.

    from photonic_sim.accelerators import estimate, training_cost
    report = estimate("tonn_space", "hjb20", "silicon_thermo_optic")
    report.to_dict()["counts"]["mzi_blocked"]
"""

from photonic_sim.accelerators.cards import (
    AcceleratorCard,
    list_accelerator_cards,
    load_accelerator_card,
)
from photonic_sim.accelerators.cost import CostReport, estimate, training_cost

__all__ = [
    "AcceleratorCard", "CostReport", "estimate", "list_accelerator_cards", "load_accelerator_card",
    "training_cost",
]

"""Scenarios: one YAML file naming everything a run needs (full reference: docs/scenarios.md).

.. code-block:: yaml

    # comment header: what it shows, how long it takes
    name: quickstart                 # letters, digits, _ . -
    description: ...                 # optional
    seed: 0                          # integer >= 0
    devices: silicon_thermo_optic    # device card name (devices/<name>.yaml) or a path
    accelerator: tonn_space          # accelerator card name (accelerators/<name>.yaml) or a path
    training: hybrid_zo              # training recipe name (training/<name>.yaml) or a path
    model: digits                    # a preset (cores.spec.PRESETS) or inline:
                                     # {name: m, layers: [{kind: tt, in_modes: [4,4,4],
                                     #   out_modes: [4,4,4], ranks: [1,4,4,1], activation: relu},
                                     #   {kind: dense, in_features: 64, out_features: 10}]}
    task:
      kind: digits                   # digits | mnist | pde | none (none: cost report only)
      # digits: test_fraction (0.25)
      # mnist:  data_dir (relative to this file), test_fraction (0.2)
      # pde:    pde: hjb20 | black_scholes | burgers | darcy, collocation (100),
      #         estimator: sparse_grid | monte_carlo | finite_difference | autograd,
      #         sigma (0.1), level (3), mc_samples (1024), test_points (10000)
    overrides:                       # optional; dotted keys of the named card / recipe
      devices: {phase_shifter.bits: 6, crosstalk.factor: 0.0}
      accelerator: {block_size: 8}
      training: {strategy_options.lr: 0.02, steps: 200}
    variants:                        # optional; one extra run per entry (``compare``)
      spsa: {training: spsa}
      six_bit: {devices.phase_shifter.bits: 6}

Card figures given as plain numbers in overrides are SI (W, s, m², …). Unknown keys are
errors everywhere. ``--set key.path=value`` (value parsed as YAML) sets a scenario key
(``seed=3``, ``task.kind=mnist``) or, when the path starts with a component
(``devices.…``, ``accelerator.…``, ``training.…``), an override of that component.

Public API: :func:`load_scenario`, :class:`Scenario`, :func:`validate_files`,
:func:`available`, :func:`load_training_recipe`, :class:`TrainingRecipe`,
:class:`ScenarioError`.
"""

from typing import TYPE_CHECKING

from photonic_sim._lazy import attach

if TYPE_CHECKING:  # the public names, read by attach(); each loads on first use
    from .catalog import available
    from .errors import ScenarioError
    from .loader import Scenario, list_scenarios, load_scenario, validate_files
    from .recipes import list_training_recipes, load_training_recipe
    from .schema import TrainingRecipe

__all__ = [
    "Scenario", "ScenarioError", "TrainingRecipe", "available", "list_scenarios", "list_training_recipes",
    "load_scenario", "load_training_recipe", "validate_files",
]

__getattr__, __dir__ = attach(__name__, __file__)

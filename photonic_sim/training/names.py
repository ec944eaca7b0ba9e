"""Name lists of the training layer that the scenario schema validates against, kept free of
torch so that loading and checking a scenario (``photonic-sim list``, ``validate``) stays cheap.
Each list lives here only; the modules that act on the names import them.
"""

ESTIMATORS = ("sparse_grid", "monte_carlo", "finite_difference", "autograd")  # PINNTask estimator
EVAL_LOSSES = ("mean_square", "h_minus_1", "h_minus_2")  # PINNTask eval_loss: the evaluation's "loss"
SAMPLINGS = ("uniform", "sobol", "grid")  # PINNTask sampling: how each step's collocation points are drawn
MAX_GRID_COLLOCATION = 1 << 20  # PINNTask sampling "grid": the most points (collocation ** dim) of one step's grid
KEEP = ("last", "lowest_eval_loss")  # TrainConfig.keep: which phases a run ends on
STARTS = ("random", "calibrated")  # recipe start: the initial phases as drawn, or pre-compensated on the calibrated chip
MAX_EVAL_GRID_POINTS = 1 << 20  # PINNTask eval_grid ** dim, the dual norms' midpoint grid
SYMMETRIES = ("odd", "even")  # PINNTask symmetry: the network made odd / even in a coordinate
MAX_SEPARABLE_RANK = 64  # PINNTask separable: the most products of coordinate factors summed
# The library's PDEs by scenario name, with their input coordinates in order (the PDE classes
# take their ``names`` from here; the scenario schema its PDE list and input widths).
PDE_COORDINATES = {
    "hjb20": tuple(f"x{i + 1}" for i in range(20)) + ("t",),
    "black_scholes": ("s", "t"),
    "burgers": ("x", "t"),
    "darcy": ("x", "y"),
}


def symmetry_problem(names, spec) -> str | None:
    """Why ``spec`` is not a PINNTask ``symmetry`` for a PDE with coordinates ``names`` (1 .. 8
    of them mapped to one of ``SYMMETRIES``), or None when it is."""
    if isinstance(spec, dict) and 1 <= len(spec) <= 8 and all(k in names for k in spec) \
            and all(v in SYMMETRIES for v in spec.values()):
        return None
    return f"need a mapping of 1 .. 8 of the coordinates {', '.join(names)} to {' / '.join(SYMMETRIES)}"


def max_eval_grid(dim: int) -> int:
    """The largest ``eval_grid`` G with G^dim <= MAX_EVAL_GRID_POINTS (1 when none >= 2 fits)."""
    g = 1
    while (g + 1) ** dim <= MAX_EVAL_GRID_POINTS:
        g += 1
    return g

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
# Their boxes (lower, upper) per coordinate, as the PDE classes build them by default (a test
# keeps the two equal): the loader checks box-bound options (``input_warp`` centres) against them.
PDE_BOXES = {
    "hjb20": ((0.0,) * 21, (1.0,) * 21),
    "black_scholes": ((0.0, 0.0), (1.0, 1.0)),
    "burgers": ((-1.0, 0.0), (1.0, 1.0)),
    "darcy": ((0.0, 0.0), (1.0, 1.0)),
}


def symmetry_problem(names, spec) -> str | None:
    """Why ``spec`` is not a PINNTask ``symmetry`` for a PDE with coordinates ``names`` (1 .. 8
    of them mapped to one of ``SYMMETRIES``), or None when it is."""
    if isinstance(spec, dict) and 1 <= len(spec) <= 8 and all(k in names for k in spec) \
            and all(v in SYMMETRIES for v in spec.values()):
        return None
    return f"need a mapping of 1 .. 8 of the coordinates {', '.join(names)} to {' / '.join(SYMMETRIES)}"


def warp_problem(names, spec) -> str | None:
    """Why ``spec`` is not a PINNTask ``input_warp`` for a PDE with coordinates ``names`` (1 ..
    len(names) of them, each mapped to a width w > 0 or to {width: w, center: c}, c finite), or
    None when it is (whether c lies in the PDE's box: the loader's and the task's check)."""
    def entry_ok(v) -> bool:
        if isinstance(v, dict):
            return set(v) <= {"width", "center"} and "width" in v and entry_ok(v["width"]) and \
                ("center" not in v or _finite_number(v["center"]))
        return _finite_number(v) and v > 0
    if isinstance(spec, dict) and 1 <= len(spec) <= len(names) and all(k in names for k in spec) \
            and all(entry_ok(v) for v in spec.values()):
        return None
    return (f"need a mapping of the coordinates {', '.join(names)} to a width > 0 "
            "or to {width: w > 0, center: c} (c in the PDE's box)")


def _finite_number(v) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool) and v == v and abs(v) != float("inf")


def max_eval_grid(dim: int) -> int:
    """The largest ``eval_grid`` G with G^dim <= MAX_EVAL_GRID_POINTS (1 when none >= 2 fits)."""
    g = 1
    while (g + 1) ** dim <= MAX_EVAL_GRID_POINTS:
        g += 1
    return g

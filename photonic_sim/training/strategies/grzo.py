"""Group-relative ZO: the estimator :class:`GroupRelative` and the strategy ``grzo``
(:class:`GRZO`).

Why: a mini-batch RGE estimate measures every perturbed setting on the whole batch, so q
directions cost q settings and q·B samples. GRZO gives each of the B examples its own
pseudo-independent direction and measures setting p on example p only, so a step explores
B directions (2B for antithetic pairs) for B (2B) samples, the forward cost of one or two
batch passes; the per-example values are normalised within the group (the group mean is the
baseline). On a chip each example now needs its own phase setting: 2B settles and their
heater energy per step instead of 2q, the trade-off the ledger prices (``phase_settings``,
``samples``). The per-example black box is ``ClassificationTask.closure(kind="per-example")``,
which the Trainer hands to any strategy whose ``closure_kind`` is "per-example".
"""
from __future__ import annotations

from .base import Estimator, Strategy
from .estimators import DISTRIBUTIONS, GROUP_NORMALIZATIONS, group_relative
from .options import choice, flag, integer, positive


class GroupRelative(Estimator):
    """Group-relative estimate over ``group`` examples (``estimators.group_relative``).

    Options: group (directions = examples measured, ≥ 2; examples beyond the batch size are
    reused with new directions), mu (rad), dist, two_sided (θ±μu_p on example p: 2·group
    rows; one-sided: group rows), normalize ("none", "center": unbiased for the batch-mean
    gradient, "standardize": a scale-free direction). Needs the per-example closure.
    """

    options = {
        "group": integer(32, 2, doc="examples per group (one direction each)"),
        "mu": positive(0.05, doc="smoothing radius (rad)"),
        "dist": choice("gaussian", DISTRIBUTIONS, doc="direction distribution"),
        "two_sided": flag(True, doc="antithetic pair per example: 2·group rows instead of group"),
        "normalize": choice("center", GROUP_NORMALIZATIONS, doc="per-example values within the group"),
    }

    def queries(self, n: int) -> int:
        return 2 * self.group if self.two_sided else self.group

    def estimate(self, closure, theta, *, mask=None, periods=None):
        return group_relative(closure, theta, group=self.group, mu=self.mu, generator=self.generator,
                              dist=self.dist, two_sided=self.two_sided, normalize=self.normalize, mask=mask,
                              periods=periods)


class GRZO(Strategy):
    """GRZO: :class:`GroupRelative` + the common optimizer/schedule (default plain SGD); its
    ``closure_kind`` is "per-example" (one query = one phase setting × one example).

    What it buys, priced: its variance is (d+1)·mean_p‖g_p‖²/G, the per-EXAMPLE gradients'
    norms, which on a classifier are much larger than the batch gradient's, so per setting
    it learns less than batch RGE; it saves samples (optical passes, conversions), not
    settles. On the thermo-optic card settles dominate energy and latency and it loses at
    equal energy; on a card whose settles are nearly free (MEMS, nW holding power) the
    samples it saves are most of the energy (digits, 300 steps: ~8x less than zo-rge q=16).
    """

    name = "grzo"
    estimator_class = GroupRelative
    closure_kind = "per-example"

"""Tasks: what a batch is, how detector readings become a loss, and how a run is scored.

A task never sees weights: its closure maps a batch of control vectors [P, N] to P losses
computed only from ``chip.measure`` readings, in ONE chip call. The closure is the chip's
black box (``Chip.closure`` → ``ChipClosure``): a strategy can call it and read its query
counters, and cannot reach the chip through it.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

from photonic_sim.training.data import Dataset

Tensor = torch.Tensor
LOSSES = ("cross_entropy", "mse")


class ClassificationTask:
    """Classification from detector readings: class scores = ``logit_scale`` × readings.

    With intensity readout the readings are non-negative photocurrents (normalized, see
    ``photonic_sim.chip``); softmax cross-entropy (or MSE to one-hot targets) is applied to
    the scaled readings. Metric: accuracy (fraction, higher is better).
    """

    kind = "classification"
    metric_name = "accuracy"
    higher_is_better = True
    closure_kinds = ("batch", "per-example", "adjoint", "forward-forward", "residuals")
    """Kinds of black box :meth:`closure` builds (``Strategy.closure_kind``)."""

    def __init__(self, dataset: Dataset, *, batch_size: int = 64, eval_batch_size: int = 512,
                 logit_scale: float = 10.0, loss: str = "cross_entropy") -> None:
        if loss not in LOSSES:
            raise ValueError(f"loss: {loss!r} is not one of {LOSSES}")
        if batch_size < 1 or eval_batch_size < 1:
            raise ValueError("batch_size / eval_batch_size: must be >= 1")
        if not logit_scale > 0:
            raise ValueError(f"logit_scale: {logit_scale} is out of range (allowed: > 0)")
        self.data = dataset
        self.batch_size = int(batch_size)
        self.eval_batch_size = int(eval_batch_size)
        self.logit_scale = float(logit_scale)
        self.loss = loss

    def sample_batch(self, generator: torch.Generator) -> tuple[Tensor, Tensor]:
        """A random training mini-batch (drawn with ``generator``)."""
        n = self.data.x_train.shape[0]
        idx = torch.randint(n, (min(self.batch_size, n),), generator=generator)
        return self.data.x_train[idx], self.data.y_train[idx]

    def losses(self, readings: Tensor, y: Tensor) -> Tensor:
        """Per-setting losses [P] from readings [P, B, C] and labels [B]."""
        p, b, c = readings.shape
        return self.example_losses(readings.reshape(p * b, c), y.repeat(p)).reshape(p, b).mean(1).to(torch.float64)

    def example_losses(self, readings: Tensor, y: Tensor) -> Tensor:
        """Loss of each reading: readings [M, C], labels [M] → [M] (the readings' dtype and
        device: labels follow the readings, e.g. to a chip on "cuda")."""
        y = y.to(readings.device)
        if self.loss == "cross_entropy":
            return F.cross_entropy(self.logit_scale * readings, y, reduction="none")
        return ((readings - F.one_hot(y, readings.shape[-1]).to(readings.dtype)) ** 2).sum(-1)

    def residuals(self, readings: Tensor, y: Tensor) -> Tensor:
        """The batch loss as a residual vector [P, M] (float64) from readings [P, B, C], labels
        [B], with Σ_m ρ_m² = :meth:`losses`: MSE, (readings − one-hot)/√B (M = B·C); cross
        entropy, √(ℓ_b / B) per example (M = B; ℓ_b > 0)."""
        p, b, c = readings.shape
        if self.loss == "cross_entropy":
            ce = self.example_losses(readings.reshape(p * b, c), y.repeat(p)).reshape(p, b)
            return (ce.clamp_min(0) / b).sqrt().to(torch.float64)
        target = F.one_hot(y.to(readings.device), c).to(readings.dtype)
        return ((readings - target) / math.sqrt(b)).reshape(p, b * c).to(torch.float64)

    def closure(self, chip, batch: tuple[Tensor, Tensor], *, differentiable: bool = False, kind: str = "batch"):
        """The black box of one batch (``photonic_sim.chip.ChipClosure``), ONE chip call per
        closure call; ``kind`` (one of :attr:`closure_kinds`, ``Strategy.closure_kind``):

        * "batch": params [P, N] → losses [P] (float64), each setting over the whole batch;
        * "per-example": params [..., P, N] → losses [..., P]: setting (…, p) is measured on
          example p mod B of the batch ONLY (``Chip.measure`` with per-setting inputs: one
          query, one phase setting and one sample per row), its loss is that example's. Leading
          dims repeat the examples (e.g. [2, P, N]: antithetic pairs on the same examples);
        * "residuals": params [P, N] → ρ [P, M] (float64) with Σ ρ² = the "batch" loss
          (:meth:`residuals`; the black box of ``zo-gn``).
        """
        if kind not in self.closure_kinds:
            raise ValueError(f"kind: {kind!r} is not one of {self.closure_kinds}")
        x, y = batch

        def loss(params: Tensor) -> Tensor:
            return self.losses(chip.measure(x, params, differentiable=differentiable), y)

        def per_example(params: Tensor) -> Tensor:
            if params.ndim < 2:
                raise ValueError(f"phases: need shape [..., P, N] for a per-example closure, got {tuple(params.shape)}")
            lead, p = params.shape[:-1], params.shape[-2]
            flat = params.reshape(-1, params.shape[-1])
            idx = (torch.arange(p) % x.shape[0]).repeat(flat.shape[0] // p)
            readings = chip.measure(x[idx][:, None], flat, differentiable=differentiable)  # [P', 1, C]
            return self.example_losses(readings[:, 0], y[idx]).to(torch.float64).reshape(lead)

        def residual_vector(params: Tensor) -> Tensor:
            return self.residuals(chip.measure(x, params, differentiable=differentiable), y)

        if kind in TAPPED_CLOSURES:  # the in-situ adjoint / forward-forward black boxes (below)
            return TAPPED_CLOSURES[kind](self, chip, batch)
        return chip.closure({"per-example": per_example, "residuals": residual_vector}.get(kind, loss))

    def evaluate(self, chip, phases: Tensor, split: str = "test") -> dict[str, float]:
        """Accuracy and loss over a whole split, measured through the (noisy) chip."""
        x, y = (self.data.x_test, self.data.y_test) if split == "test" else (self.data.x_train, self.data.y_train)
        correct, total_loss = 0, 0.0
        for start in range(0, x.shape[0], self.eval_batch_size):
            xb, yb = x[start : start + self.eval_batch_size], y[start : start + self.eval_batch_size]
            readings = chip.measure(xb, phases)
            correct += int((readings.argmax(-1) == yb.to(readings.device)).sum())
            total_loss += float(self.losses(readings[None], yb)[0]) * xb.shape[0]
        return {"metric": correct / x.shape[0], "loss": total_loss / x.shape[0]}


# ---------------------------------------------------------------------- tapped closures
# The black boxes of the in-situ adjoint / node-perturbation ("adjoint") and forward-forward
# ("forward-forward") strategies, and forward-forward's evaluation rule (``EVALUATIONS``).
FF_SCALE = 4.0
"""Forward-forward: slope α of the local loss softplus(−α·(G⁺ − G⁻)) (goodness normalized)."""


def adjoint_closure(task: ClassificationTask, chip, batch: tuple[Tensor, Tensor]):
    """``Chip.adjoint_closure`` of the batch: phases [N] → (mean loss, dL/dθ [N]) measured with
    the adjoint taps; the per-example loss is the task's (``example_losses``)."""
    x, y = batch

    def example_loss(readings: Tensor) -> Tensor:  # [..., B, C] → [..., B]
        lead = readings.shape[:-1]
        flat = readings.reshape(-1, readings.shape[-1])
        return task.example_losses(flat, y.repeat(flat.shape[0] // y.shape[0])).reshape(lead)

    return chip.adjoint_closure(x, example_loss)


def embed_label(x: Tensor, labels: Tensor, classes: int) -> Tensor:
    """Forward-forward input: x [B, in] with its first ``classes`` features replaced by the
    one-hot label (amplitude 1, the top of the input range)."""
    if x.shape[-1] < classes:
        raise ValueError(f"forward-forward: inputs need at least {classes} features to embed a label")
    out = x.clone()
    out[..., :classes] = F.one_hot(labels, classes).to(x.dtype)
    return out


def goodness(layers: list[Tensor]) -> Tensor:
    """Per-layer goodness of readings [P, M, width_l] → [P, M, L]: the mean squared reading of
    the layer divided by its mean over the M rows (the controller's normalization, so every
    layer counts alike whatever the scale of its readings)."""
    g = torch.stack([h.to(torch.float64).square().mean(-1) for h in layers], -1)
    return g / g.mean(-2, keepdim=True).clamp_min(torch.finfo(torch.float64).tiny)


def coordinate_layers(chip) -> Tensor:
    """Layer of every control (long [N]), from the names of ``chip.controls()["slices"]``
    (``layer{l}.…``): layout the controller knows, no weights."""
    out = torch.empty(chip.num_phases, dtype=torch.long)
    for name, sl in chip.controls()["slices"].items():
        out[sl] = int(name.split(".")[0][len("layer"):])
    return out


def forward_forward_closure(task: ClassificationTask, chip, batch: tuple[Tensor, Tensor]):
    """phases [P, N] → local losses [P, N]: entry (p, i) is the local loss of the layer that
    control i belongs to (``coordinate_layers``), so a strategy can estimate each layer's
    gradient from its own loss without knowing the layout. ONE chip call
    (``measure_layers``) of the batch twice: positive rows (true label embedded) and
    negative rows (label y + 1 + (b mod (C − 1)) mod C, always wrong). Layer l's loss: mean
    softplus(−α·(G⁺_l − G⁻_l)) over the pairs (α = ``FF_SCALE``; ``goodness``)."""
    x, y = batch
    c = chip.out_features
    owner = coordinate_layers(chip)
    wrong = (y + 1 + torch.arange(y.shape[0]) % max(1, c - 1)) % c
    both = torch.cat((embed_label(x, y, c), embed_label(x, wrong, c)))
    b = x.shape[0]

    def local_losses(params: Tensor) -> Tensor:
        g = goodness(chip.measure_layers(both, params))  # [P, 2B, L]
        return F.softplus(-FF_SCALE * (g[:, :b] - g[:, b:])).mean(1)[:, owner]

    return chip.closure(local_losses)


def evaluate_forward_forward(task: ClassificationTask, chip, phases: Tensor, split: str = "test") -> dict[str, float]:
    """Forward-forward prediction: every label is embedded in turn (C chip queries per batch)
    and the label with the highest total goodness (Σ over layers of ``goodness``, normalized
    over the batch and all labels) wins. Metric: accuracy; loss: cross-entropy of
    α × total goodness."""
    x, y = (task.data.x_test, task.data.y_test) if split == "test" else (task.data.x_train, task.data.y_train)
    c = chip.out_features
    correct, total_loss = 0, 0.0
    for start in range(0, x.shape[0], task.eval_batch_size):
        xb, yb = x[start : start + task.eval_batch_size], y[start : start + task.eval_batch_size]
        rows = torch.cat([embed_label(xb, torch.full_like(yb, k), c) for k in range(c)])
        g = goodness(chip.measure_layers(rows, phases))[0]  # [C·B, L], normalized over labels and rows
        scores = g.sum(-1).reshape(c, -1).T  # [B, C]
        yb = yb.to(scores.device)
        correct += int((scores.argmax(-1) == yb).sum())
        total_loss += float(F.cross_entropy(FF_SCALE * scores, yb, reduction="sum"))
    return {"metric": correct / x.shape[0], "loss": total_loss / x.shape[0]}


TAPPED_CLOSURES = {"adjoint": adjoint_closure, "forward-forward": forward_forward_closure}
EVALUATIONS = {"forward-forward": evaluate_forward_forward}
"""Evaluation rules other than the task's own ``evaluate`` (``Strategy.evaluation``)."""

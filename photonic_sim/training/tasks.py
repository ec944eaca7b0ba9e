"""Tasks: what a batch is, how detector readings become a loss, and how a run is scored.

A task never sees weights: its closure maps a batch of control vectors [P, N] to P losses
computed only from ``chip.measure`` readings, in ONE chip call. The closure is the chip's
black box (``Chip.closure`` → ``ChipClosure``): a strategy can call it and read its query
counters, and cannot reach the chip through it.
"""

from __future__ import annotations

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
    closure_kinds = ("batch", "per-example")
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
        """Loss of each reading: readings [M, C], labels [M] → [M] (the readings' dtype)."""
        if self.loss == "cross_entropy":
            return F.cross_entropy(self.logit_scale * readings, y, reduction="none")
        return ((readings - F.one_hot(y, readings.shape[-1]).to(readings.dtype)) ** 2).sum(-1)

    def closure(self, chip, batch: tuple[Tensor, Tensor], *, differentiable: bool = False, kind: str = "batch"):
        """The black box of one batch (``photonic_sim.chip.ChipClosure``), ONE chip call per
        closure call; ``kind`` (one of :attr:`closure_kinds`, ``Strategy.closure_kind``):

        * "batch": params [P, N] → losses [P] (float64), each setting over the whole batch;
        * "per-example": params [..., P, N] → losses [..., P]: setting (…, p) is measured on
          example p mod B of the batch ONLY (``Chip.measure`` with per-setting inputs: one
          query, one phase setting and one sample per row), its loss is that example's. Leading
          dims repeat the examples (e.g. [2, P, N]: antithetic pairs on the same examples).
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

        return chip.closure(per_example if kind == "per-example" else loss)

    def evaluate(self, chip, phases: Tensor, split: str = "test") -> dict[str, float]:
        """Accuracy and loss over a whole split, measured through the (noisy) chip."""
        x, y = (self.data.x_test, self.data.y_test) if split == "test" else (self.data.x_train, self.data.y_train)
        correct, total_loss = 0, 0.0
        for start in range(0, x.shape[0], self.eval_batch_size):
            xb, yb = x[start : start + self.eval_batch_size], y[start : start + self.eval_batch_size]
            readings = chip.measure(xb, phases)
            correct += int((readings.argmax(-1) == yb).sum())
            total_loss += float(self.losses(readings[None], yb)[0]) * xb.shape[0]
        return {"metric": correct / x.shape[0], "loss": total_loss / x.shape[0]}

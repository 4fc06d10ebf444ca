"""The bookkeeping that the practicals' training loops and the benchmarks share.

The loops themselves stay in each practical's training module, where they teach; what
sits here is what every loop writes the same way: how many batches an epoch holds, when an
evaluation is due, the time spent in the steps alone, and the per-step history, kept on
the device while training (no synchronisation per step) and stacked once at the end.
"""
import time

import numpy as np
import torch

from common.errors import UserError


def batches_per_epoch(n_items: int, batch_size: int, what: str = "training images") -> int:
    """Full batches in one pass over ``n_items`` (the last incomplete one is dropped)."""
    n = n_items // batch_size
    if n == 0:
        raise UserError(f"--batch-size {batch_size} is larger than the {n_items} {what}")
    return n


def due(iteration: int, every: int, total: int) -> bool:
    """Is an evaluation (or a snapshot) due after ``iteration`` of ``total``: every
    ``every`` iterations, and always after the last one."""
    return iteration % every == 0 or iteration == total


class StepTimer:
    """Seconds spent inside the training steps alone (``with timer:`` around each step),
    beside the wall time since the timer was made, evaluations included."""

    def __init__(self):
        self.started = time.perf_counter()
        self.train_seconds = 0.0
        self.steps = 0

    def __enter__(self):
        self._t0 = time.perf_counter()
        return self

    def __exit__(self, *exc):
        self.train_seconds += time.perf_counter() - self._t0
        self.steps += 1
        return False

    @property
    def seconds(self) -> float:
        """Wall time since the start."""
        return time.perf_counter() - self.started

    @property
    def ms_per_step(self) -> float:
        return 1000 * self.train_seconds / max(1, self.steps)


class History:
    """Per-step values (0-d tensors or numbers), one row per key, stacked at the end.

    The values are copied into buffers allocated a block of steps at a time on the device,
    not kept as one small tensor each: tens of thousands of small long-lived tensors between
    the batches' short-lived ones fragment the C heap until a long run fills the memory."""

    BLOCK = 4096  # steps per buffer

    def __init__(self, keys, device=None):
        self.keys = list(keys)
        self.device = device
        self.blocks: list[torch.Tensor] = []  # each (len(keys), BLOCK) float32
        self.steps = 0

    def add(self, stats: dict) -> None:
        """Write this step's values; a key the step did not report stays NaN."""
        col = self.steps % self.BLOCK
        if col == 0:
            self.blocks.append(torch.full((len(self.keys), self.BLOCK), float("nan"), device=self.device))
        block = self.blocks[-1]
        for row, k in enumerate(self.keys):
            v = stats.get(k)
            if v is not None:
                block[row, col] = v  # a copy on the device: no synchronisation
        self.steps += 1

    def stacked(self) -> dict[str, np.ndarray]:
        """Each key's values as one float32 array (one synchronisation for the whole run)."""
        if not self.blocks:
            return {k: np.zeros(0, np.float32) for k in self.keys}
        values = torch.cat(self.blocks, 1)[:, :self.steps].cpu().numpy()
        return dict(zip(self.keys, values))

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
    """Per-step values (0-d tensors or numbers), one list per key, stacked at the end."""

    def __init__(self, keys, device=None):
        self.values = {k: [] for k in keys}
        self.device = device

    def add(self, stats: dict) -> None:
        """Append this step's values; a key the step did not report gets NaN."""
        for k, seq in self.values.items():
            v = stats.get(k)
            seq.append(torch.tensor(float("nan"), device=self.device) if v is None else v)

    def stacked(self) -> dict[str, np.ndarray]:
        """Each key's values as one float32 array (one synchronisation for the whole run)."""
        return {k: torch.stack([torch.as_tensor(v, device=self.device) for v in seq]).float().cpu().numpy()
                for k, seq in self.values.items()}

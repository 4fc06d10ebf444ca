"""15 Scene for practical 3-a: the images of a split, a few per class if asked, in batches."""
import os
from pathlib import Path

import torch

from common.datasets import load_scene15
from tp3a_transfer.features import scene_transform


def decoding_workers(workers: int | None, device: torch.device) -> int:
    """DataLoader processes decoding images: ``workers`` (--workers), else none on a CPU and
    half the cores on a GPU. On a CPU the network's threads use every core, while decoding
    costs a few percent of the network's time, so a worker gains nothing there; on a GPU,
    workers decode while it computes."""
    if workers is not None:
        return workers
    return 0 if device.type == "cpu" else max(1, (os.cpu_count() or 2) // 2)


def subset(dataset, per_class: int | None):
    """The first ``per_class`` images of each class (all when None)."""
    if per_class is None:
        return dataset
    seen, keep = {}, []
    for i, (_, c) in enumerate(dataset.samples):
        if seen.get(c, 0) < per_class:
            seen[c] = seen.get(c, 0) + 1
            keep.append(i)
    return torch.utils.data.Subset(dataset, keep)


def check_scene15(data_dir: Path) -> None:
    """Open both 15 Scene splits, so that a missing dataset stops the command with its own
    message before any network is loaded (or replaced)."""
    for split in ("train", "test"):
        load_scene15(data_dir, split)


def scene_images(data_dir: Path, split: str, crop: bool, mean, std, per_class: int | None):
    """The images of ``split`` preprocessed for a network normalised with ``mean``/``std``."""
    return subset(load_scene15(data_dir, split, transform=scene_transform(crop, mean, std)), per_class)


def batches(dataset, batch_size: int, workers: int, device: torch.device, **kw) -> torch.utils.data.DataLoader:
    """A DataLoader of ``dataset`` for ``device`` (pinned memory: faster copies to a GPU)."""
    return torch.utils.data.DataLoader(dataset, batch_size=batch_size, num_workers=workers,
                                       pin_memory=device.type == "cuda", **kw)

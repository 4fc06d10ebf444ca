"""Both domains in memory: MNIST (source, labelled) and MNIST-M (target, its labels read
for evaluation only), normalised batch by batch."""
import logging
from pathlib import Path

import torch

from common.datasets import channel_stats, load_mnist, load_mnist_m
from tp3c_domain_adaptation.settings import DataSettings

log = logging.getLogger("tp3c_domain_adaptation")

NORMALISE = ("joint", "per-domain")


def target_name(source: str | None) -> str:
    """How figures name the target domain: "MNIST-M", marked as the stand-in when it was built
    on the sample photos of scikit-learn and scikit-image instead of BSDS500 (offline)."""
    return "MNIST-M (stand-in: sample photos)" if source == "mnist_m-sample-photos" else "MNIST-M"


class Domains:
    """Both domains in memory (the training sets on the GPU when there is one), [0, 1]
    images, normalised batch by batch with one per-channel mean and std computed on the
    union of the two training sets (``normalise="joint"``), or each domain with its own
    training set's (``"per-domain"``).

    ``data_dir``: the datasets folder; ``device``: where batches go; ``mnist_m`` and
    ``mnist_m_seed``: which MNIST-M and the seed of its construction; ``limit``: images per
    split and domain (None: all). The default is the default layout in fp32.
    ``channels_last`` makes the steps faster and changes the arithmetic by rounding only,
    which is enough to move a single DANN run by several points of accuracy, either way."""

    def __init__(self, data_dir: Path, device: torch.device, mnist_m: str = "auto", mnist_m_seed: int = 0,
                 limit: int | None = None, channels_last: bool = False, normalise: str = "joint"):
        kw = {"source": mnist_m, "seed": mnist_m_seed, "limit": limit}
        self.source = load_mnist(data_dir, "train", channels=3, limit=limit)
        self.target = load_mnist_m(data_dir, "train", **kw)
        self.source_test = load_mnist(data_dir, "test", channels=3, limit=limit)
        self.target_test = load_mnist_m(data_dir, "test", **kw)
        if normalise not in NORMALISE:
            raise ValueError(f"normalise must be one of {NORMALISE}, not {normalise!r}")
        self.normalise = normalise
        self.mean, self.std = channel_stats(torch.cat([self.source.images, self.target.images]))
        # per-domain: each domain standardised by its own training images' statistics
        # (the target's need no label), which removes the first-order colour shift
        self.stats = ({"source": self.mean, "target": self.mean}, {"source": self.std, "target": self.std})
        if normalise == "per-domain":
            (ms, ss), (mt, st) = channel_stats(self.source.images), channel_stats(self.target.images)
            self.stats = ({"source": ms, "target": mt}, {"source": ss, "target": st})
        self.device = device
        # channels_last: the layout oneDNN and cuDNN convolve fastest
        self.memory_format = torch.channels_last if channels_last else torch.contiguous_format
        if device.type == "cuda":  # about 1.1 GB: copied once instead of batch by batch
            for d in (self.source, self.target):
                d.tensors = tuple(t.to(device) for t in d.tensors)
        self._mean = {d: m.to(device)[:, None, None] for d, m in self.stats[0].items()}  # (3, 1, 1) each
        self._std = {d: v.to(device)[:, None, None] for d, v in self.stats[1].items()}
        log.info("source %s: %d train / %d test; target %s: %d train / %d test; "
                 "normalisation mean %s std %s", self.source.source, len(self.source),
                 len(self.source_test), self.target.source, len(self.target), len(self.target_test),
                 [round(m, 3) for m in self.mean.tolist()], [round(s, 3) for s in self.std.tolist()])

    def batch(self, images: torch.Tensor, domain: str = "source") -> torch.Tensor:
        """[0, 1] images (N, 3, 28, 28) of ``domain`` ("source" or "target") -> normalised,
        on the device, in ``memory_format``."""
        x = (images.to(self.device, non_blocking=True) - self._mean[domain]) / self._std[domain]
        return x.contiguous(memory_format=self.memory_format)

    def describe(self) -> dict:
        return {"source": self.source.source, "target": self.target.source,
                "train": [len(self.source), len(self.target)],
                "test": [len(self.source_test), len(self.target_test)],
                "normalise": self.normalise, "mean": {d: m.tolist() for d, m in self.stats[0].items()},
                "std": {d: v.tolist() for d, v in self.stats[1].items()}}


def load_domains(s: DataSettings, channels_last: bool = False) -> Domains:
    """The domains a command's settings name (``channels_last``: the training layout)."""
    return Domains(s.data_dir, s.device, mnist_m=s.mnist_m, mnist_m_seed=s.mnist_m_seed, limit=s.limit,
                   channels_last=channels_last, normalise=s.normalise)

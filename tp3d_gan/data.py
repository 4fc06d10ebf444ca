"""The digits the GANs of practical 3-d train on."""
import logging
from pathlib import Path

import torch
import torch.nn.functional as F

from common.datasets import load_mnist

log = logging.getLogger(__name__)


def load_training_set(data_dir: Path, image_size: int = 32, limit: int | None = None
                      ) -> tuple[torch.Tensor, torch.Tensor]:
    """MNIST training digits (N, 1, S, S) in [-1, 1], padded to 32x32 (or resized to
    ``image_size`` 64), and their labels (N,); the first ``limit`` only, when given.

    On the fallback digits the GAN also trains on their test split, since it needs none:
    the quality classifier, which does, is trained and scored on its own split."""
    data = load_mnist(data_dir, "train", size=32)
    images, labels = data.images, data.labels
    if data.source != "mnist":
        test = load_mnist(data_dir, "test", size=32)
        images, labels = torch.cat([images, test.images]), torch.cat([labels, test.labels])
    if limit is not None:
        images, labels = images[:limit], labels[:limit]
    images = images * 2 - 1  # (N, 1, 32, 32)
    if image_size == 64:
        images = F.interpolate(images, scale_factor=2, mode="bilinear", align_corners=False)
    log.info("data: %d training images (%s), %dx%d", len(images), data.source, image_size, image_size)
    return images, labels

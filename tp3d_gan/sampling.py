"""Drawing images from a generator: fixed-seed samples, the progress grids, a saved
generator read back, and latent interpolation."""
from pathlib import Path

import torch
import torch.nn.functional as F

from common.errors import UserError
from tp3d_gan.cdcgan import CondGenerator, one_hot
from tp3d_gan.dcgan import Generator, sample_noise


class Sampler:
    """Draws images from G with fixed seeds; conditional GANs get the labels asked for."""

    def __init__(self, G, nz: int, conditional: bool, device):
        self.G, self.nz, self.conditional, self.device = G, nz, conditional, device

    @torch.inference_mode()
    def __call__(self, z: torch.Tensor, labels: torch.Tensor | None = None) -> torch.Tensor:
        was_training = self.G.training
        self.G.eval()  # BatchNorm with its running statistics: samples do not depend on the batch
        z = z.to(self.device)
        out = self.G(z, one_hot(labels.to(self.device))) if self.conditional else self.G(z)
        self.G.train(was_training)
        return out.float().cpu()

    def many(self, n: int, seed: int, batch: int = 500):
        """n samples (n, 1, S, S) and, for a cGAN, their labels (balanced classes)."""
        gen = torch.Generator().manual_seed(seed)
        labels = torch.arange(n) % 10 if self.conditional else None
        images = [self(sample_noise(min(batch, n - i), self.nz, generator=gen),
                       None if labels is None else labels[i:i + batch]) for i in range(0, n, batch)]
        return torch.cat(images), labels

    def grid_inputs(self, seed: int):
        """The fixed noise of the progress grids: 64 z, or 10 styles x 10 classes for a cGAN."""
        gen = torch.Generator().manual_seed(seed)
        if not self.conditional:
            return sample_noise(64, self.nz, generator=gen), None, 8
        styles = sample_noise(10, self.nz, generator=gen)  # one column per style
        return styles.repeat(10, 1, 1, 1), torch.arange(10).repeat_interleave(10), 10


def for_classifier(images: torch.Tensor) -> torch.Tensor:
    """The quality classifier reads 32x32 digits: 64x64 samples are averaged down."""
    return F.avg_pool2d(images, 2) if images.shape[-1] == 64 else images


def load_generator(path: Path, device):
    """The generator saved by a training (``generator.pt``), in eval mode, and what was saved
    with it (``nz``, ``conditional``, ...)."""
    if not path.is_file():
        raise UserError(f"no trained generator at {path}: train one first with "
                        f"'python tp3d_gan/main.py train' (or pass --checkpoint)")
    saved = torch.load(path, map_location="cpu", weights_only=True)
    if saved["conditional"]:
        G = CondGenerator(saved["nz"], saved["width"])
    else:
        G = Generator(saved["nz"], saved["ngf"], image_size=saved["image_size"])
    G.load_state_dict(saved["state_dict"])
    return G.to(device).eval(), saved


def interpolation(G, nz: int, conditional: bool, device, pairs: int, steps: int, seed: int) -> torch.Tensor:
    """G(alpha z1 + (1 - alpha) z2) for ``steps`` values of alpha from 0 to 1, for ``pairs``
    pairs (z1, z2) drawn with ``seed``: (pairs * steps, 1, S, S), one pair after the other
    (a cGAN draws pair i as class i mod 10)."""
    gen = torch.Generator().manual_seed(seed)
    z1, z2 = sample_noise(pairs, nz, generator=gen), sample_noise(pairs, nz, generator=gen)
    alphas = torch.linspace(0, 1, steps)
    z = torch.stack([a * z1 + (1 - a) * z2 for a in alphas], dim=1).flatten(0, 1)  # (pairs*steps, nz, 1, 1)
    labels = torch.arange(pairs).repeat_interleave(steps) % 10 if conditional else None
    return Sampler(G, nz, conditional, device)(z, labels)

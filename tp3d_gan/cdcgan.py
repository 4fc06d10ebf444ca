"""Conditional DCGAN at 32x32: both networks also receive the class, as a one-hot vector
(practical 3-d, section 2).

Student file: write each part between its ``YOUR CODE`` markers. The grader calls these
by name, with these signatures. Build each layer that holds weights from a ``torch.nn``
module: the checks read their settings; activations may be modules or functions. The
discriminator's output follows ``dcgan.D_OUTPUT`` (logits, or probabilities after a
Sigmoid), and the losses of ``dcgan.py`` are reused.
"""
import torch
import torch.nn as nn
import torch.nn.functional as F

from tp3d_gan import dcgan
from tp3d_gan.dcgan import discriminator_loss, generator_loss, sample_noise, step_stats

N_CLASSES = 10


def one_hot(y: torch.Tensor, n_classes: int = N_CLASSES) -> torch.Tensor:
    """Class indices (N,) int64 -> one-hot float Tensor (N, n_classes)."""
    ### BEGIN SOLUTION
    return F.one_hot(y, n_classes).float()
    ### END SOLUTION


def expand_labels(onehot: torch.Tensor, size: int = 32) -> torch.Tensor:
    """One-hot (N, C) -> label maps (N, C, size, size): map c is all ones for the true class."""
    ### BEGIN SOLUTION
    return onehot[:, :, None, None].expand(-1, -1, size, size)  # (N, C, size, size)
    ### END SOLUTION


class CondGenerator(nn.Module):
    """(z (N, nz, 1, 1), one-hot y (N, n_classes)) -> images (N, 1, 32, 32).

    Two branches to 4x4, each without bias + BatchNorm + ReLU:
    z: ConvTranspose(nz -> 4w, kernel 4, stride 1, padding 0);
    y (seen as (N, n_classes, 1, 1)): ConvTranspose(n_classes -> 4w, kernel 4, stride 1, padding 0).
    Their outputs concatenated (8w channels), then, without bias + BatchNorm + ReLU:
    ConvTranspose(8w -> 4w, kernel 4, stride 2, padding 1): 8x8;
    ConvTranspose(4w -> 2w, kernel 4, stride 2, padding 1): 16x16;
    and ConvTranspose(2w -> 1, kernel 4, stride 2, padding 1): 32x32, followed by the Tanh
    of the DCGAN so that images lie in [-1, 1] like the data. The course's width is w = 64
    (256 + 256 channels, then 256 and 128).
    """

    def __init__(self, nz: int = 100, width: int = 64, n_classes: int = N_CLASSES):
        super().__init__()
        ### BEGIN SOLUTION
        w = width
        self.z_branch = nn.Sequential(
            nn.ConvTranspose2d(nz, 4 * w, 4, 1, 0, bias=False), nn.BatchNorm2d(4 * w), nn.ReLU(True))
        self.y_branch = nn.Sequential(
            nn.ConvTranspose2d(n_classes, 4 * w, 4, 1, 0, bias=False), nn.BatchNorm2d(4 * w), nn.ReLU(True))
        self.joint = nn.Sequential(
            nn.ConvTranspose2d(8 * w, 4 * w, 4, 2, 1, bias=False), nn.BatchNorm2d(4 * w), nn.ReLU(True),
            nn.ConvTranspose2d(4 * w, 2 * w, 4, 2, 1, bias=False), nn.BatchNorm2d(2 * w), nn.ReLU(True),
            nn.ConvTranspose2d(2 * w, 1, 4, 2, 1), nn.Tanh(),
        )
        ### END SOLUTION

    def forward(self, z: torch.Tensor, y_onehot: torch.Tensor) -> torch.Tensor:
        """z: (N, nz, 1, 1), y_onehot: (N, n_classes) -> (N, 1, 32, 32)."""
        ### BEGIN SOLUTION
        h = torch.cat([self.z_branch(z), self.y_branch(y_onehot[:, :, None, None])], dim=1)  # (N, 8w, 4, 4)
        return self.joint(h)
        ### END SOLUTION


class CondDiscriminator(nn.Module):
    """(images (N, 1, 32, 32), one-hot y (N, n_classes)) -> one output per image (N,).

    Two branches to 16x16, each + LeakyReLU(0.2):
    image: Conv(1 -> w, kernel 4, stride 2, padding 1);
    y, expanded to (N, n_classes, 32, 32) (:func:`expand_labels`): Conv(n_classes -> w,
    kernel 4, stride 2, padding 1).
    Their outputs concatenated (2w channels), then, without bias + BatchNorm + LeakyReLU(0.2):
    Conv(2w -> 4w, kernel 4, stride 2, padding 1): 8x8; Conv(4w -> 8w, kernel 4, stride 2,
    padding 1): 4x4; and Conv(8w -> 1, kernel 4, stride 1, padding 0), then a Sigmoid if
    ``dcgan.D_OUTPUT`` is "probabilities". The course's width is w = 64 (64 + 64 channels,
    then 256 and 512).
    """

    def __init__(self, width: int = 64, n_classes: int = N_CLASSES):
        super().__init__()
        ### BEGIN SOLUTION
        w = width
        self.x_branch = nn.Sequential(nn.Conv2d(1, w, 4, 2, 1), nn.LeakyReLU(0.2, True))
        self.y_branch = nn.Sequential(nn.Conv2d(n_classes, w, 4, 2, 1), nn.LeakyReLU(0.2, True))
        self.joint = nn.Sequential(
            nn.Conv2d(2 * w, 4 * w, 4, 2, 1, bias=False), nn.BatchNorm2d(4 * w), nn.LeakyReLU(0.2, True),
            nn.Conv2d(4 * w, 8 * w, 4, 2, 1, bias=False), nn.BatchNorm2d(8 * w), nn.LeakyReLU(0.2, True),
            nn.Conv2d(8 * w, 1, 4, 1, 0),
            *([nn.Sigmoid()] if dcgan.D_OUTPUT == "probabilities" else []),
        )
        ### END SOLUTION

    def forward(self, x: torch.Tensor, y_onehot: torch.Tensor) -> torch.Tensor:
        """x: (N, 1, 32, 32), y_onehot: (N, n_classes) -> (N,), logits or probabilities."""
        ### BEGIN SOLUTION
        maps = expand_labels(y_onehot, x.shape[-1])  # (N, n_classes, 32, 32)
        h = torch.cat([self.x_branch(x), self.y_branch(maps)], dim=1)  # (N, 2w, 16, 16)
        return self.joint(h).view(-1)  # (N,)
        ### END SOLUTION


def cgan_train_step(G: nn.Module, D: nn.Module, opt_G, opt_D, real: torch.Tensor,
                    labels: torch.Tensor, nz: int, loss: str = "non-saturating") -> dict:
    """One cDCGAN iteration: D learns on real (image, its label) pairs and on generated
    (image, the label it was generated for) pairs, then G learns to make D accept its pairs.

    Args:
        real: Tensor (N, 1, 32, 32) in [-1, 1]; labels: int64 Tensor (N,), their classes.
        nz: size of the latent vectors; loss: the generator loss of ``dcgan.generator_loss``.
        The labels of the generated images are drawn uniformly among the classes.
    Returns:
        ``dcgan.step_stats`` of the step.
    """
    ### BEGIN SOLUTION
    n = real.shape[0]
    y_real = one_hot(labels)
    y_fake = one_hot(torch.randint(0, N_CLASSES, (n,), device=real.device))  # (N, 10)
    fake = G(sample_noise(n, nz, device=real.device), y_fake)

    opt_D.zero_grad(set_to_none=True)
    real_out = D(real, y_real)
    fake_out = D(fake.detach(), y_fake)
    loss_D = discriminator_loss(real_out, fake_out)
    loss_D.backward()
    opt_D.step()

    opt_G.zero_grad(set_to_none=True)
    fake_out2 = D(fake, y_fake)
    loss_G = generator_loss(fake_out2, loss)
    loss_G.backward()
    opt_G.step()

    return step_stats(loss_D, loss_G, real_out, fake_out, fake_out2)
    ### END SOLUTION

"""DCGAN at 32x32 (or 64x64): generator, discriminator, initialisation, losses and one training step.

Student file: fill in the solution regions. The grader calls these by name, with these
signatures. The discriminator returns logits (one per image); D(x) = sigmoid(logit).
"""
import torch
import torch.nn as nn
import torch.nn.functional as F

LOSSES = ("non-saturating", "minimax")


class Generator(nn.Module):
    """z (N, nz, 1, 1) -> image (N, nc, S, S) in [-1, 1], S = image_size (32 or 64).

    At 32x32: ConvT(nz->4ngf, k4 s1 p0) 4x4, ConvT(4ngf->2ngf, k4 s2 p1) 8x8,
    ConvT(2ngf->ngf, k4 s2 p1) 16x16, each without bias + BatchNorm + ReLU,
    then ConvT(ngf->nc, k4 s2 p1) 32x32 + Tanh.
    At 64x64 one more block: the first layer gives 8ngf channels at 4x4, halved by each
    upsampling block (8ngf, 4ngf, 2ngf, ngf) before the last ConvT to 64x64.
    """

    def __init__(self, nz: int = 100, ngf: int = 32, nc: int = 1, image_size: int = 32):
        super().__init__()
        if image_size not in (32, 64):
            raise ValueError(f"image_size must be 32 or 64, not {image_size}")
        ### BEGIN SOLUTION
        mult = image_size // 8  # 4 at 32x32, 8 at 64x64
        layers = [nn.ConvTranspose2d(nz, ngf * mult, 4, 1, 0, bias=False),  # (N, mult*ngf, 4, 4)
                  nn.BatchNorm2d(ngf * mult), nn.ReLU(True)]
        while mult > 1:  # each block doubles the size and halves the channels
            layers += [nn.ConvTranspose2d(ngf * mult, ngf * mult // 2, 4, 2, 1, bias=False),
                       nn.BatchNorm2d(ngf * mult // 2), nn.ReLU(True)]
            mult //= 2
        layers += [nn.ConvTranspose2d(ngf, nc, 4, 2, 1), nn.Tanh()]  # (N, nc, S, S)
        self.net = nn.Sequential(*layers)
        ### END SOLUTION

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        """z: Tensor (N, nz, 1, 1) -> Tensor (N, nc, S, S) in [-1, 1]."""
        ### BEGIN SOLUTION
        return self.net(z)
        ### END SOLUTION


class Discriminator(nn.Module):
    """image (N, nc, S, S) -> logits (N,), one per image; S = image_size (32 or 64).

    At 32x32: Conv(nc->ndf, k4 s2 p1) 16x16, Conv(ndf->2ndf, k4 s2 p1) 8x8,
    Conv(2ndf->4ndf, k4 s2 p1) 4x4, each without bias + BatchNorm + LeakyReLU(0.2),
    then Conv(4ndf->1, k4 s1 p0) 1x1. At 64x64 one more block (up to 8ndf channels).
    """

    def __init__(self, ndf: int = 32, nc: int = 1, image_size: int = 32):
        super().__init__()
        if image_size not in (32, 64):
            raise ValueError(f"image_size must be 32 or 64, not {image_size}")
        ### BEGIN SOLUTION
        layers, channels, size = [], nc, image_size
        while size > 4:  # each block halves the size and doubles the channels
            out = ndf if channels == nc else channels * 2
            layers += [nn.Conv2d(channels, out, 4, 2, 1, bias=False), nn.BatchNorm2d(out),
                       nn.LeakyReLU(0.2, True)]
            channels, size = out, size // 2
        layers.append(nn.Conv2d(channels, 1, 4, 1, 0))  # (N, 1, 1, 1)
        self.net = nn.Sequential(*layers)
        ### END SOLUTION

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """x: Tensor (N, nc, S, S) -> logits Tensor (N,)."""
        ### BEGIN SOLUTION
        return self.net(x).view(-1)  # (N,)
        ### END SOLUTION


def weights_init(m: nn.Module) -> None:
    """DCGAN initialisation, applied with ``model.apply(weights_init)``.

    Conv and ConvTranspose weights ~ N(0, 0.02); BatchNorm weights ~ N(1, 0.02), biases 0.
    """
    ### BEGIN SOLUTION
    if isinstance(m, (nn.Conv2d, nn.ConvTranspose2d)):
        nn.init.normal_(m.weight, 0.0, 0.02)
    elif isinstance(m, nn.BatchNorm2d):
        nn.init.normal_(m.weight, 1.0, 0.02)
        nn.init.zeros_(m.bias)
    ### END SOLUTION


def sample_noise(n: int, nz: int, device=None, generator: torch.Generator | None = None) -> torch.Tensor:
    """Draw n latent vectors z ~ N(0, I) as a Tensor (n, nz, 1, 1) on ``device``."""
    ### BEGIN SOLUTION
    return torch.randn(n, nz, 1, 1, device=device, generator=generator)
    ### END SOLUTION


def discriminator_loss(real_logits: torch.Tensor, fake_logits: torch.Tensor) -> torch.Tensor:
    """Binary cross-entropy of D: real images have target 1, generated ones target 0.

    Args:
        real_logits: Tensor (N,), D's logits on real images.
        fake_logits: Tensor (M,), D's logits on generated images.
    Returns:
        scalar Tensor: BCE(real, 1) + BCE(fake, 0), each averaged over its batch.
    """
    ### BEGIN SOLUTION
    real = F.binary_cross_entropy_with_logits(real_logits, torch.ones_like(real_logits))
    fake = F.binary_cross_entropy_with_logits(fake_logits, torch.zeros_like(fake_logits))
    return real + fake
    ### END SOLUTION


def generator_loss(fake_logits: torch.Tensor, loss: str = "non-saturating") -> torch.Tensor:
    """The generator's loss on D's logits for generated images.

    Args:
        fake_logits: Tensor (M,), D's logits on G(z).
        loss: "non-saturating": mean of -log D(G(z)) (the default, strong gradients early);
              "minimax": mean of log(1 - D(G(z))), the "true" loss of the GAN game.
    Returns:
        scalar Tensor, to be minimised by G.
    """
    ### BEGIN SOLUTION
    if loss == "non-saturating":
        return F.binary_cross_entropy_with_logits(fake_logits, torch.ones_like(fake_logits))
    if loss == "minimax":
        return -F.binary_cross_entropy_with_logits(fake_logits, torch.zeros_like(fake_logits))
    raise ValueError(f"unknown generator loss {loss!r}; choose one of {LOSSES}")
    ### END SOLUTION


def step_stats(loss_D, loss_G, real_logits, fake_logits, fake_logits2) -> dict:
    """What a training step reports, as detached scalar Tensors (no GPU sync here):
    both losses, D(x) on real images, D(G(z)) before (z1) and after (z2) D's update."""
    return {"loss_D": loss_D.detach(), "loss_G": loss_G.detach(),
            "D_x": torch.sigmoid(real_logits.detach()).mean(),
            "D_G_z1": torch.sigmoid(fake_logits.detach()).mean(),
            "D_G_z2": torch.sigmoid(fake_logits2.detach()).mean()}


def train_step(G: nn.Module, D: nn.Module, opt_G, opt_D, real: torch.Tensor, nz: int,
               loss: str = "non-saturating") -> dict:
    """One DCGAN iteration: update D on a real and a generated batch, then update G.

    Args:
        G, D: the generator and the discriminator (in train mode).
        opt_G, opt_D: their optimizers.
        real: Tensor (N, nc, 32, 32) in [-1, 1], a batch of real images.
        nz: size of the latent vectors.
        loss: the generator loss, see :func:`generator_loss`.
    Returns:
        :func:`step_stats` of the step.
    """
    ### BEGIN SOLUTION
    z = sample_noise(real.shape[0], nz, device=real.device)
    fake = G(z)  # (N, nc, 32, 32)

    opt_D.zero_grad(set_to_none=True)
    real_logits = D(real)
    fake_logits = D(fake.detach())  # no gradient into G while D learns
    loss_D = discriminator_loss(real_logits, fake_logits)
    loss_D.backward()
    opt_D.step()

    opt_G.zero_grad(set_to_none=True)
    fake_logits2 = D(fake)
    loss_G = generator_loss(fake_logits2, loss)
    loss_G.backward()
    opt_G.step()

    return step_stats(loss_D, loss_G, real_logits, fake_logits, fake_logits2)
    ### END SOLUTION

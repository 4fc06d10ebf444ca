"""DCGAN at 32x32 (or 64x64): the generator, the discriminator, their initialisation, the
losses and one training step (practical 3-d, section 1).

Student file: write each part between its ``YOUR CODE`` markers. The grader calls these
functions and classes by name, with these signatures. Build each layer that holds weights
from a ``torch.nn`` module (``nn.Conv2d``, ``nn.BatchNorm2d``, ...): the checks read their
settings; activations may be modules or functions.

The discriminator ends either with a Sigmoid, as in the course (it returns probabilities
and the losses are binary cross-entropies of probabilities), or without one (it returns
logits, D(x) = sigmoid(logit), and the losses use ``binary_cross_entropy_with_logits``,
which is exact where a probability rounds to 0 or 1). Say which in ``D_OUTPUT``: the
losses, the training loop and the checks follow it.
"""
import torch
import torch.nn as nn
import torch.nn.functional as F

D_OUTPUT = "logits"  # what Discriminator.forward returns: "logits" or "probabilities"
D_OUTPUTS = ("logits", "probabilities")
LOSSES = ("non-saturating", "minimax")


def probability(d_out: torch.Tensor) -> torch.Tensor:
    """D's outputs as probabilities of "real", whatever ``D_OUTPUT`` says they are (provided)."""
    if D_OUTPUT not in D_OUTPUTS:
        raise ValueError(f"D_OUTPUT must be one of {D_OUTPUTS}, not {D_OUTPUT!r}")
    return torch.sigmoid(d_out) if D_OUTPUT == "logits" else d_out


class Generator(nn.Module):
    """z (N, nz, 1, 1) -> images (N, nc, S, S) in [-1, 1], S = image_size (32 or 64).

    At 32x32, every layer without bias:
    ConvTranspose(nz -> 4 ngf, kernel 4, stride 1, padding 0) + BatchNorm + ReLU: 4x4;
    ConvTranspose(4 ngf -> 2 ngf, kernel 4, stride 2, padding 1) + BatchNorm + ReLU: 8x8;
    ConvTranspose(2 ngf -> ngf, kernel 4, stride 2, padding 1) + BatchNorm + ReLU: 16x16;
    ConvTranspose(ngf -> nc, kernel 4, stride 2, padding 1) + Tanh: 32x32.
    At 64x64 one more upsampling block: the first layer gives 8 ngf channels at 4x4, and
    each block halves them (8 ngf, 4 ngf, 2 ngf, ngf) before the last layer.
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
        layers += [nn.ConvTranspose2d(ngf, nc, 4, 2, 1, bias=False), nn.Tanh()]  # (N, nc, S, S)
        self.net = nn.Sequential(*layers)
        ### END SOLUTION

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        """z: Tensor (N, nz, 1, 1) -> Tensor (N, nc, S, S) in [-1, 1]."""
        ### BEGIN SOLUTION
        return self.net(z)
        ### END SOLUTION


class Discriminator(nn.Module):
    """images (N, nc, S, S) -> one output per image (N,), S = image_size (32 or 64).

    At 32x32, every layer without bias:
    Conv(nc -> ndf, kernel 4, stride 2, padding 1) + BatchNorm + LeakyReLU(0.2): 16x16;
    Conv(ndf -> 2 ndf, kernel 4, stride 2, padding 1) + BatchNorm + LeakyReLU(0.2): 8x8;
    Conv(2 ndf -> 4 ndf, kernel 4, stride 2, padding 1) + BatchNorm + LeakyReLU(0.2): 4x4;
    Conv(4 ndf -> 1, kernel 4, stride 1, padding 0): 1x1, then a Sigmoid if ``D_OUTPUT``
    is "probabilities". At 64x64 one more downsampling block, up to 8 ndf channels.
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
        layers.append(nn.Conv2d(channels, 1, 4, 1, 0, bias=False))  # (N, 1, 1, 1): logits
        if D_OUTPUT == "probabilities":
            layers.append(nn.Sigmoid())
        self.net = nn.Sequential(*layers)
        ### END SOLUTION

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """x: Tensor (N, nc, S, S) -> Tensor (N,): logits or probabilities (``D_OUTPUT``)."""
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
    """n latent vectors z ~ N(0, I): Tensor (n, nz, 1, 1) on ``device``, drawn from
    ``generator`` when one is given (the same seed gives the same vectors)."""
    ### BEGIN SOLUTION
    return torch.randn(n, nz, 1, 1, device=device, generator=generator)
    ### END SOLUTION


def discriminator_loss(real_out: torch.Tensor, fake_out: torch.Tensor) -> torch.Tensor:
    """Binary cross-entropy of D: real images have target 1, generated ones target 0.

    Args:
        real_out: Tensor (N,), D's outputs on real images (see ``D_OUTPUT``).
        fake_out: Tensor (M,), D's outputs on generated images.
    Returns:
        scalar Tensor: BCE(real, 1) + BCE(fake, 0), each averaged over its batch.
    """
    ### BEGIN SOLUTION
    if D_OUTPUT == "probabilities":
        return (F.binary_cross_entropy(real_out, torch.ones_like(real_out))
                + F.binary_cross_entropy(fake_out, torch.zeros_like(fake_out)))
    real = F.binary_cross_entropy_with_logits(real_out, torch.ones_like(real_out))
    fake = F.binary_cross_entropy_with_logits(fake_out, torch.zeros_like(fake_out))
    return real + fake
    ### END SOLUTION


def generator_loss(fake_out: torch.Tensor, loss: str = "non-saturating") -> torch.Tensor:
    """The loss G minimises, from D's outputs on generated images.

    Args:
        fake_out: Tensor (M,), D's outputs on G(z) (see ``D_OUTPUT``).
        loss: "non-saturating": the mean of -log D(G(z)), the course's default (the
            generator's objective of equation 6, as a loss); "minimax": the generator's
            term of the original game (equation 5), averaged over the batch: the "true"
            loss of question 3.
    Returns:
        scalar Tensor.
    """
    ### BEGIN SOLUTION
    if loss not in LOSSES:
        raise ValueError(f"unknown generator loss {loss!r}; choose one of {LOSSES}")
    if D_OUTPUT == "probabilities":
        if loss == "non-saturating":
            return F.binary_cross_entropy(fake_out, torch.ones_like(fake_out))
        return -F.binary_cross_entropy(fake_out, torch.zeros_like(fake_out))
    if loss == "non-saturating":
        return F.binary_cross_entropy_with_logits(fake_out, torch.ones_like(fake_out))
    return -F.binary_cross_entropy_with_logits(fake_out, torch.zeros_like(fake_out))
    ### END SOLUTION


def step_stats(loss_D, loss_G, real_out, fake_out, fake_out2) -> dict:
    """What a training step reports (provided), as detached scalar Tensors (no GPU sync
    here): both losses, D(x) on the real images, and D(G(z)) before (z1) and after (z2)
    D's update, as probabilities."""
    return {"loss_D": loss_D.detach(), "loss_G": loss_G.detach(),
            "D_x": probability(real_out.detach()).mean(),
            "D_G_z1": probability(fake_out.detach()).mean(),
            "D_G_z2": probability(fake_out2.detach()).mean()}


def train_step(G: nn.Module, D: nn.Module, opt_G, opt_D, real: torch.Tensor, nz: int,
               loss: str = "non-saturating") -> dict:
    """One DCGAN iteration: update D on a real and a generated batch, then update G.

    Args:
        G, D: the generator and the discriminator (in train mode).
        opt_G, opt_D: their optimizers.
        real: Tensor (N, nc, S, S) in [-1, 1], a batch of real images.
        nz: size of the latent vectors (draw them with :func:`sample_noise`).
        loss: the generator loss, see :func:`generator_loss`.
    Returns:
        :func:`step_stats` of the step.
    """
    ### BEGIN SOLUTION
    z = sample_noise(real.shape[0], nz, device=real.device)
    fake = G(z)  # (N, nc, S, S)

    opt_D.zero_grad(set_to_none=True)
    real_out = D(real)
    fake_out = D(fake.detach())  # no gradient into G while D learns
    loss_D = discriminator_loss(real_out, fake_out)
    loss_D.backward()
    opt_D.step()

    opt_G.zero_grad(set_to_none=True)
    fake_out2 = D(fake)  # D after its update
    loss_G = generator_loss(fake_out2, loss)
    loss_G.backward()
    opt_G.step()

    return step_stats(loss_D, loss_G, real_out, fake_out, fake_out2)
    ### END SOLUTION

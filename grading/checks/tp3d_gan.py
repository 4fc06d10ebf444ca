"""Public checks of practical 3-d (DCGAN)."""
import math

import torch

from grading.registry import check, expect, expect_close, expect_equal, expect_shape


def generator_params(nz: int, ngf: int, nc: int = 1) -> int:
    """The spec's generator: three bias-free ConvT(k4) + BatchNorm, then ConvT(k4) with bias."""
    convs = nz * 4 * ngf * 16 + 4 * ngf * 2 * ngf * 16 + 2 * ngf * ngf * 16
    return convs + 2 * (4 * ngf + 2 * ngf + ngf) + ngf * nc * 16 + nc


def discriminator_params(ndf: int, nc: int = 1) -> int:
    """The spec's discriminator: three bias-free Conv(k4) + BatchNorm, then Conv(k4) with bias."""
    convs = nc * ndf * 16 + ndf * 2 * ndf * 16 + 2 * ndf * 4 * ndf * 16
    return convs + 2 * (ndf + 2 * ndf + 4 * ndf) + 4 * ndf * 16 + 1


def _count(model) -> int:
    return torch.nn.utils.parameters_to_vector(model.parameters()).numel()


@check("tp3d.architecture", "Generator and Discriminator have the spec's layers, sizes and "
       "parameter counts", points=2, timeout=60)
def architecture():
    from tp3d_gan.dcgan import Discriminator, Generator

    torch.manual_seed(0)
    for nz, ngf in [(100, 32), (100, 4), (10, 64)]:
        G = Generator(nz, ngf)
        expect_equal(_count(G), generator_params(nz, ngf), f"parameters of Generator(nz={nz}, ngf={ngf})")
        out = G.eval()(torch.randn(3, nz, 1, 1))
        expect_shape(out, (3, 1, 32, 32), f"Generator(nz={nz}, ngf={ngf}) output for z of shape (3, {nz}, 1, 1)")
        expect(bool(out.abs().max() <= 1.0), "generator outputs must lie in [-1, 1] (Tanh)")
    for ndf in (32, 4, 64):
        D = Discriminator(ndf)
        expect_equal(_count(D), discriminator_params(ndf), f"parameters of Discriminator(ndf={ndf})")
        expect_shape(D.eval()(torch.randn(5, 1, 32, 32)), (5,),
                     f"Discriminator(ndf={ndf}) output for 5 images (one value per image)")


@check("tp3d.discriminator_loss", "discriminator_loss is BCE with real -> 1 and fake -> 0",
       points=1, timeout=30)
def d_loss():
    from tp3d_gan.dcgan import discriminator_loss

    real, fake = torch.tensor([2.0, -1.0, 0.5]), torch.tensor([-3.0, 1.0])
    loss = discriminator_loss(real, fake)
    expect_shape(loss, (), "discriminator_loss output (a scalar)")
    sp = torch.nn.functional.softplus  # BCE(logit, 1) = softplus(-logit), BCE(logit, 0) = softplus(logit)
    expected = sp(-real).mean() + sp(fake).mean()
    expect_close(loss, expected, "discriminator_loss([2, -1, 0.5] real, [-3, 1] fake)", atol=1e-5)
    expect(float(discriminator_loss(torch.full((4,), 8.0), torch.full((4,), -8.0))) < 1e-3,
           "a discriminator that is sure and right (real logits +8, fake -8) must have a loss near 0")


@check("tp3d.generator_loss", "generator_loss: non-saturating -log D(G(z)) and minimax "
       "log(1 - D(G(z)))", points=1, timeout=30)
def g_loss():
    from tp3d_gan.dcgan import generator_loss

    logits = torch.tensor([-2.0, 0.0, 3.0])
    d = torch.sigmoid(logits)
    ns = generator_loss(logits)
    expect_shape(ns, (), "generator_loss output (a scalar)")
    expect_close(ns, -torch.log(d).mean(), "non-saturating loss, the default (mean of -log D(G(z)))",
                 atol=1e-5)
    expect_close(generator_loss(logits, "minimax"), torch.log(1 - d).mean(),
                 "minimax loss (mean of log(1 - D(G(z))))", atol=1e-5)
    expect(math.isfinite(float(generator_loss(torch.tensor([-30.0])))),
           "the non-saturating loss must stay finite when D is sure the image is fake (logit -30)")

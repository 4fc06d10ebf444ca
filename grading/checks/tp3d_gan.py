"""Public checks of practical 3-d (DCGAN)."""
import math

import torch
import torch.nn as nn

from grading.registry import check, expect, expect_close, expect_equal, expect_shape, run


def generator_params(nz: int, ngf: int, nc: int = 1) -> int:
    """The spec's generator: three bias-free ConvT(k4) + BatchNorm, then ConvT(k4) with bias."""
    convs = nz * 4 * ngf * 16 + 4 * ngf * 2 * ngf * 16 + 2 * ngf * ngf * 16
    return convs + 2 * (4 * ngf + 2 * ngf + ngf) + ngf * nc * 16 + nc


def discriminator_params(ndf: int, nc: int = 1) -> int:
    """The spec's discriminator: three bias-free Conv(k4) + BatchNorm, then Conv(k4) with bias."""
    convs = nc * ndf * 16 + ndf * 2 * ndf * 16 + 2 * ndf * 4 * ndf * 16
    return convs + 2 * (ndf + 2 * ndf + 4 * ndf) + 4 * ndf * 16 + 1


def _architecture(generators, discriminators, z_seed):
    from tp3d_gan.dcgan import Discriminator, Generator

    def count(module):
        return sum(p.numel() for p in module.parameters())

    torch.manual_seed(z_seed)
    gs = []
    for nz, ngf in generators:
        G = Generator(nz, ngf)
        gs.append((count(G), G.eval()(torch.randn(3, nz, 1, 1)).detach()))
    ds = []
    for ndf in discriminators:
        D = Discriminator(ndf)
        ds.append((count(D), D.eval()(torch.randn(5, 1, 32, 32)).detach()))
    return gs, ds


@check("tp3d.architecture", "Generator and Discriminator have the spec's layers, sizes and "
       "parameter counts", points=2, timeout=60)
def architecture():
    generators, discriminators = [(100, 32), (100, 4), (10, 64)], [32, 4, 64]
    gs, ds = run(_architecture, generators, discriminators, 0)
    for (nz, ngf), (count, out) in zip(generators, gs):
        expect_equal(count, generator_params(nz, ngf), f"parameters of Generator(nz={nz}, ngf={ngf})")
        expect_shape(out, (3, 1, 32, 32), f"Generator(nz={nz}, ngf={ngf}) output for z of shape (3, {nz}, 1, 1)")
        expect(bool(out.abs().max() <= 1.0), "generator outputs must lie in [-1, 1] (Tanh)")
    for ndf, (count, out) in zip(discriminators, ds):
        expect_equal(count, discriminator_params(ndf), f"parameters of Discriminator(ndf={ndf})")
        expect_shape(out, (5,), f"Discriminator(ndf={ndf}) output for 5 images (one value per image)")


def _discriminator_losses(pairs):
    from tp3d_gan.dcgan import discriminator_loss

    return [discriminator_loss(real, fake) for real, fake in pairs]


@check("tp3d.discriminator_loss", "discriminator_loss is BCE with real -> 1 and fake -> 0",
       points=1, timeout=30)
def d_loss():
    real, fake = torch.tensor([2.0, -1.0, 0.5]), torch.tensor([-3.0, 1.0])
    loss, sure = run(_discriminator_losses, [(real, fake), (torch.full((4,), 8.0), torch.full((4,), -8.0))])
    expect_shape(loss, (), "discriminator_loss output (a scalar)")
    sp = torch.nn.functional.softplus  # BCE(logit, 1) = softplus(-logit), BCE(logit, 0) = softplus(logit)
    expected = sp(-real).mean() + sp(fake).mean()
    expect_close(loss, expected, "discriminator_loss([2, -1, 0.5] real, [-3, 1] fake)", atol=1e-5)
    expect(float(sure) < 1e-3,
           "a discriminator that is sure and right (real logits +8, fake -8) must have a loss near 0")


def _generator_losses(calls):
    from tp3d_gan.dcgan import generator_loss

    return [generator_loss(*args) for args in calls]


@check("tp3d.generator_loss", "generator_loss: non-saturating -log D(G(z)) and minimax "
       "log(1 - D(G(z)))", points=1, timeout=30)
def g_loss():
    logits = torch.tensor([-2.0, 0.0, 3.0])
    d = torch.sigmoid(logits)
    ns, minimax, sure = run(_generator_losses, [(logits,), (logits, "minimax"), (torch.tensor([-30.0]),)])
    expect_shape(ns, (), "generator_loss output (a scalar)")
    expect_close(ns, -torch.log(d).mean(), "non-saturating loss, the default (mean of -log D(G(z)))",
                 atol=1e-5)
    expect_close(minimax, torch.log(1 - d).mean(), "minimax loss (mean of log(1 - D(G(z))))", atol=1e-5)
    expect(math.isfinite(float(sure)),
           "the non-saturating loss must stay finite when D is sure the image is fake (logit -30)")


def cond_generator_params(nz: int, w: int, n_classes: int = 10) -> int:
    """The spec's cDCGAN generator: z and label branches (bias-free ConvT + BN) to 4w each,
    then ConvT(8w->4w), ConvT(4w->2w) bias-free + BN, and ConvT(2w->1) with bias."""
    branches = (nz + n_classes) * 4 * w * 16 + 2 * 2 * 4 * w
    return branches + 8 * w * 4 * w * 16 + 2 * 4 * w + 4 * w * 2 * w * 16 + 2 * 2 * w + 2 * w * 16 + 1


def cond_discriminator_params(w: int, n_classes: int = 10) -> int:
    """The spec's cDCGAN discriminator: image and label branches Conv(k4) with bias to w each,
    then Conv(2w->4w), Conv(4w->8w) bias-free + BN, and Conv(8w->1) with bias."""
    branches = (1 + n_classes) * w * 16 + 2 * w
    return branches + 2 * w * 4 * w * 16 + 2 * 4 * w + 4 * w * 8 * w * 16 + 2 * 8 * w + 8 * w * 16 + 1


def _initialised_layers():
    """(model, layer type, number of features, weight, bias) of every large convolution and
    BatchNorm of Generator(100, 64) and Discriminator(64) after ``apply(weights_init)``."""
    from tp3d_gan.dcgan import Discriminator, Generator, weights_init

    torch.manual_seed(0)
    layers = []
    for model in (Generator(100, 64), Discriminator(64)):
        model.apply(weights_init)
        for m in model.modules():
            if isinstance(m, (nn.Conv2d, nn.ConvTranspose2d)) and m.weight.numel() > 1000:
                layers.append((type(model).__name__, type(m).__name__, 0, m.weight.detach(), None))
            if isinstance(m, nn.BatchNorm2d) and m.num_features >= 64:
                layers.append((type(model).__name__, "BatchNorm2d", m.num_features, m.weight.detach(),
                               m.bias.detach()))
    return layers


@check("tp3d.weights_init", "weights_init: conv weights N(0, 0.02), BatchNorm weights "
       "N(1, 0.02) and biases 0", points=1, timeout=60)
def init_statistics():
    layers = run(_initialised_layers)
    expect(any(kind == "BatchNorm2d" for _, kind, *_ in layers) and len(layers) >= 8,
           f"expected the convolutions and BatchNorm layers of Generator and Discriminator, found {len(layers)}")
    for name, kind, features, w, bias in layers:
        if kind != "BatchNorm2d":
            expect(abs(float(w.std()) - 0.02) < 0.002 and abs(float(w.mean())) < 0.002,
                   f"{name}: {kind}{tuple(w.shape)} weights have mean "
                   f"{float(w.mean()):.4f} and std {float(w.std()):.4f}; expected N(0, 0.02)")
        else:
            expect(abs(float(w.mean()) - 1) < 0.01 and abs(float(w.std()) - 0.02) < 0.008,
                   f"{name}: BatchNorm2d({features}) weights have mean {float(w.mean()):.4f} "
                   f"and std {float(w.std()):.4f}; expected N(1, 0.02)")
            expect(float(bias.abs().max()) == 0.0, f"{name}: BatchNorm2d({features}) biases must be 0")


def _conditional_architecture(y, generators, discriminators):
    from tp3d_gan.cdcgan import CondDiscriminator, CondGenerator, expand_labels, one_hot

    def count(module):
        return sum(p.numel() for p in module.parameters())

    oh = one_hot(y)
    maps = expand_labels(oh, 32)
    torch.manual_seed(0)
    gs = []
    for nz, w in generators:
        G = CondGenerator(nz, w)
        gs.append((count(G), G.eval()(torch.randn(3, nz, 1, 1), oh).detach()))
    ds = []
    for w in discriminators:
        D = CondDiscriminator(w)
        ds.append((count(D), D.eval()(torch.randn(3, 1, 32, 32), oh).detach()))
    return oh, maps, gs, ds


@check("tp3d.cgan_architecture", "the conditional DCGAN's networks have the spec's branches, "
       "sizes and parameter counts", points=2, timeout=60)
def cgan_architecture():
    y, generators, discriminators = torch.tensor([3, 0, 9]), [(100, 64), (10, 16)], [64, 16]
    oh, maps, gs, ds = run(_conditional_architecture, y, generators, discriminators)
    expect_shape(oh, (3, 10), "one_hot of 3 labels")
    expect_close(oh, torch.eye(10)[y], "one_hot([3, 0, 9])", atol=0)
    expect_shape(maps, (3, 10, 32, 32), "expand_labels(one_hot, 32)")
    expect_close(maps[:, :, 7, 21], torch.eye(10)[y], "expand_labels: the maps at any pixel "
                 "must be the one-hot vector", atol=0)
    for (nz, w), (count, out) in zip(generators, gs):
        expect_equal(count, cond_generator_params(nz, w), f"parameters of CondGenerator(nz={nz}, width={w})")
        expect_shape(out, (3, 1, 32, 32), f"CondGenerator(nz={nz}, width={w}) output for 3 (z, y)")
        expect(bool(out.abs().max() <= 1.0), "generator outputs must lie in [-1, 1] (Tanh)")
    for w, (count, out) in zip(discriminators, ds):
        expect_equal(count, cond_discriminator_params(w), f"parameters of CondDiscriminator(width={w})")
        expect_shape(out, (3,), f"CondDiscriminator(width={w}) output for 3 (image, y) pairs")


def _label_changes(z, x, labels):
    """How much G(z, y) and D(x, y) change between two label sets."""
    from tp3d_gan.cdcgan import CondDiscriminator, CondGenerator, one_hot

    torch.manual_seed(0)
    G, D = CondGenerator(100, 16).eval(), CondDiscriminator(16).eval()
    y1, y2 = (one_hot(y) for y in labels)
    with torch.no_grad():
        return (G(z, y1) - G(z, y2)).abs().mean(dim=(1, 2, 3)), (D(x, y1) - D(x, y2)).abs()


@check("tp3d.cgan_conditioning", "the conditional networks use the label: changing y changes "
       "G(z, y) and D(x, y)", points=1, timeout=60)
def cgan_conditioning():
    g = torch.Generator().manual_seed(0)
    z, x = torch.randn(4, 100, 1, 1, generator=g), torch.rand(4, 1, 32, 32, generator=g) * 2 - 1
    dg, dd = run(_label_changes, z, x, (torch.tensor([1, 2, 3, 4]), torch.tensor([7, 7, 0, 5])))
    expect(bool((dg > 1e-4).all()), f"G(z, y) must change when y changes (mean change per image: "
           f"{[round(v, 6) for v in dg.tolist()]})")
    expect(bool((dd > 1e-5).all()), f"D(x, y) must change when y changes (change per image: "
           f"{[round(v, 6) for v in dd.tolist()]})")

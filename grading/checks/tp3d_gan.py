"""Public checks of practical 3-d (DCGAN and conditional DCGAN), in the handout's order.

The networks are checked layer by layer against the handout's architectures (see
:mod:`grading.layers`); the training steps by one exact step: tiny networks built in the
student's process record what they receive, and the grader recomputes, from the same
starting weights and inputs, what one SGD step of each network must give.
"""
import math

import torch
import torch.nn as nn
import torch.nn.functional as F

from grading.layers import (RELU, SIGMOID, TANH, Op, bn, check_parameters, conv, expected_parameters, lrelu,
                            match, parameters_of, trace_probe)
from grading.registry import check, expect, expect_close, expect_equal, expect_shape, run


def _d_output():
    from tp3d_gan import dcgan

    return str(dcgan.D_OUTPUT)


def d_output() -> str:
    """What the student's discriminator returns: "logits" or "probabilities"."""
    value = run(_d_output)
    expect(value in ("logits", "probabilities"),
           f"D_OUTPUT in tp3d_gan/dcgan.py must be 'logits' or 'probabilities', not {value!r}")
    return value


def d_out(logits: torch.Tensor, kind: str) -> torch.Tensor:
    """Discriminator outputs in the student's convention, from logits."""
    return torch.sigmoid(logits) if kind == "probabilities" else logits


# ----------------------------------------------------------------------------- losses (questions 1-3)

def _discriminator_losses(pairs):
    from tp3d_gan.dcgan import discriminator_loss

    return [discriminator_loss(real, fake) for real, fake in pairs]


@check("tp3d.discriminator_loss", "discriminator_loss: binary cross-entropy with real images -> 1 and "
       "generated ones -> 0 (equation 7)", points=1, timeout=30, question=1, tests=("discriminator_loss",))
def d_loss():
    kind = d_output()
    real, fake = torch.tensor([2.0, -1.0, 0.5]), torch.tensor([-3.0, 1.0])
    loss, sure = run(_discriminator_losses, [(d_out(real, kind), d_out(fake, kind)),
                                             (d_out(torch.full((4,), 8.0), kind), d_out(torch.full((4,), -8.0), kind))])
    expect_shape(loss, (), "discriminator_loss output (a scalar)")
    sp = F.softplus  # BCE(logit, 1) = softplus(-logit), BCE(logit, 0) = softplus(logit)
    expect_close(loss, sp(-real).mean() + sp(fake).mean(),
                 f"discriminator_loss on real outputs {d_out(real, kind).tolist()} and generated "
                 f"{d_out(fake, kind).tolist()} ({kind})", atol=1e-5)
    expect(float(sure) < 1e-3, "a discriminator that is sure and right (real images at D = 0.9997, generated "
           "ones at 0.0003) must have a loss near 0")


def _generator_losses(calls):
    from tp3d_gan.dcgan import generator_loss

    return [generator_loss(*args) for args in calls]


@check("tp3d.generator_loss", "generator_loss: the non-saturating loss and the minimax loss of question 3",
       points=1, timeout=30, question=3, tests=("generator_loss",))
def g_loss():
    kind = d_output()
    logits = torch.tensor([-2.0, 0.0, 3.0])
    d = torch.sigmoid(logits)
    out = d_out(logits, kind)
    ns, named, minimax, sure = run(_generator_losses, [(out,), (out, "non-saturating"), (out, "minimax"),
                                                       (d_out(torch.tensor([-30.0]), kind),)])
    expect_shape(ns, (), "generator_loss output (a scalar)")
    expect_close(ns, -torch.log(d).mean(), "the default loss (non-saturating, mean of -log D(G(z)))", atol=1e-5)
    expect_close(named, ns, 'generator_loss(..., loss="non-saturating") (the default, named)', atol=1e-6)
    expect_close(minimax, torch.log(1 - d).mean(), f'generator_loss(..., loss="minimax") for D(G(z)) = '
                 f"{[round(v, 4) for v in d.tolist()]}", atol=1e-5)
    expect(math.isfinite(float(sure)),
           "the non-saturating loss must stay finite when D is sure an image is generated (D(G(z)) = 1e-13)")


# ----------------------------------------------------------------------------- DCGAN (question 4)

def generator_ops(nz: int, ngf: int, nc: int = 1, image_size: int = 32) -> list[Op]:
    """The handout's generator: every transposed convolution without bias."""
    widths = [8 * ngf, 4 * ngf, 2 * ngf, ngf] if image_size == 64 else [4 * ngf, 2 * ngf, ngf]
    ops = [conv("ConvTranspose2d", nz, widths[0], 4, 1, 0, False), bn(widths[0]), RELU]
    for cin, cout in zip(widths, widths[1:]):
        ops += [conv("ConvTranspose2d", cin, cout, 4, 2, 1, False), bn(cout), RELU]
    return ops + [conv("ConvTranspose2d", widths[-1], nc, 4, 2, 1, False), TANH]


def discriminator_ops(ndf: int, nc: int = 1, image_size: int = 32, kind: str = "logits") -> list[Op]:
    """The handout's discriminator: every convolution without bias; a Sigmoid when it
    returns probabilities."""
    widths = [nc, ndf, 2 * ndf, 4 * ndf] + ([8 * ndf] if image_size == 64 else [])
    ops = []
    for cin, cout in zip(widths, widths[1:]):
        ops += [conv("Conv2d", cin, cout, 4, 2, 1, False), bn(cout), lrelu(0.2)]
    return ops + [conv("Conv2d", widths[-1], 1, 4, 1, 0, False)] + ([SIGMOID] if kind == "probabilities" else [])


GENERATORS = [((100, 32), {}), ((10, 8), {"nc": 3}), ((16, 4), {"image_size": 64})]
DISCRIMINATORS = [((32,), {}), ((8,), {"nc": 3}), ((4,), {"image_size": 64})]


def _describe(args, kwargs) -> str:
    return ", ".join([str(a) for a in args] + [f"{k}={v}" for k, v in kwargs.items()])


@check("tp3d.generator", "Generator: the handout's layers, their settings and sizes, at 32x32 and "
       "64x64, for any nz, ngf and number of channels", points=2, timeout=90, question=4,
       tests=("Generator.__init__", "Generator.forward"))
def generator():
    g = torch.Generator().manual_seed(0)
    for mode, ((nz, ngf), kw) in zip(("train", "eval", "train"), GENERATORS):
        what = f"Generator({_describe((nz, ngf), kw)}) in {mode} mode"
        z = torch.randn(3, nz, 1, 1, generator=g)
        result = run(trace_probe, "tp3d_gan.dcgan", "Generator", (nz, ngf), kw, [z], mode, 0)
        size = kw.get("image_size", 32)
        expect_shape(result["output"], (3, kw.get("nc", 1), size, size),
                     f"{what}: output for z of shape {tuple(z.shape)}")
        ops = generator_ops(nz, ngf, **kw)
        match(result, [("z", z, ops)], None, what)
        check_parameters(result, what)
        expect_equal(result["parameters"], parameters_of(ops), f"{what}: number of parameters")


@check("tp3d.discriminator", "Discriminator: the handout's layers, their settings and sizes, one output "
       "per image, at 32x32 and 64x64", points=2, timeout=90, question=4,
       tests=("Discriminator.__init__", "Discriminator.forward"))
def discriminator():
    kind = d_output()
    g = torch.Generator().manual_seed(1)
    for mode, ((ndf,), kw) in zip(("train", "eval", "train"), DISCRIMINATORS):
        what = f"Discriminator({_describe((ndf,), kw)}) in {mode} mode"
        size = kw.get("image_size", 32)
        x = torch.rand(5, kw.get("nc", 1), size, size, generator=g) * 2 - 1
        result = run(trace_probe, "tp3d_gan.dcgan", "Discriminator", (ndf,), kw, [x], mode, 0)
        expect_shape(result["output"], (5,), f"{what}: output for 5 images (one value per image)")
        ops = discriminator_ops(ndf, kind=kind, **kw)
        match(result, [("images", x, ops)], None, what)
        check_parameters(result, what)
        expect_equal(result["parameters"], parameters_of(ops), f"{what}: number of parameters")
        if kind == "probabilities":
            expect(bool(((result["output"] >= 0) & (result["output"] <= 1)).all()),
                   f"{what}: D_OUTPUT is 'probabilities' but outputs lie outside [0, 1]")


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


@check("tp3d.weights_init", "weights_init: convolution weights N(0, 0.02), BatchNorm weights "
       "N(1, 0.02) and biases 0", points=1, timeout=60, question=4, tests=("weights_init",))
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


def _noise():
    from tp3d_gan.dcgan import sample_noise

    draws = [sample_noise(4, 7, generator=torch.Generator().manual_seed(s)) for s in (5, 5, 6)]
    big = sample_noise(20000, 10, device="cpu")
    meta = sample_noise(2, 3, device="meta")
    return draws, float(big.mean()), float(big.std()), tuple(big.shape), str(meta.device), tuple(meta.shape)


@check("tp3d.sample_noise", "sample_noise: n vectors of N(0, I) of shape (n, nz, 1, 1), on the device "
       "asked for, drawn from the generator given", points=1, timeout=30, question=4, tests=("sample_noise",))
def noise():
    (a, b, c), mean, std, shape, device, meta_shape = run(_noise)
    expect_shape(a, (4, 7, 1, 1), "sample_noise(4, 7)")
    expect_close(a, b, "two draws from generators seeded alike (the generator argument must be used)", atol=0)
    expect(not torch.equal(a, c), "draws from generators seeded differently are equal")
    expect_close(a, torch.randn(4, 7, 1, 1, generator=torch.Generator().manual_seed(5)),
                 "sample_noise(4, 7, generator=seeded) against torch.randn from the same generator", atol=1e-6)
    expect_equal(shape, (20000, 10, 1, 1), "shape of sample_noise(20000, 10)")
    expect(abs(mean) < 0.03 and abs(std - 1) < 0.03,
           f"200,000 values of sample_noise have mean {mean:.3f} and std {std:.3f}: expected N(0, 1)")
    expect(device == "meta" and meta_shape == (2, 3, 1, 1),
           f"sample_noise(2, 3, device='meta') gave a tensor on {device}: the device argument must be used")


def _gan_step(conditional, real, labels, nz, loss, lrs, seed, kind):
    """One step of the student's train_step (or cgan_train_step) on tiny linear networks
    that record their inputs; their weights before and after, the inputs, the stats."""
    from tp3d_gan import cdcgan, dcgan

    pixels, shape = real[0].numel(), real.shape[1:]

    class TinyG(nn.Module):
        def __init__(self):
            super().__init__()
            self.z = nn.Linear(nz, pixels)
            self.y = nn.Linear(10, pixels, bias=False)
            self.seen = []

        def forward(self, z, y=None):
            self.seen.append((z.detach().clone(), None if y is None else y.detach().clone()))
            h = self.z(z.flatten(1)) + (self.y(y) if y is not None else 0.0)
            return torch.tanh(h).view(-1, *shape)

    class TinyD(nn.Module):
        def __init__(self):
            super().__init__()
            self.x = nn.Linear(pixels, 1)
            self.y = nn.Linear(10, 1, bias=False)
            self.seen = []

        def forward(self, x, y=None):
            self.seen.append((x.detach().clone(), None if y is None else y.detach().clone()))
            out = (self.x(x.flatten(1)) + (self.y(y) if y is not None else 0.0)).view(-1)
            return torch.sigmoid(out) if kind == "probabilities" else out

    torch.manual_seed(seed)
    G, D = TinyG(), TinyD()
    if not conditional:
        G.y.weight.requires_grad_(False)
        D.y.weight.requires_grad_(False)
    start = {f"{n}.{k}": p.detach().clone() for n, m in (("G", G), ("D", D)) for k, p in m.named_parameters()}
    for p in (*G.parameters(), *D.parameters()):
        p.grad = torch.full_like(p, 0.5)  # left over from an earlier step: a step must not add to it
    opt_G = torch.optim.SGD([p for p in G.parameters() if p.requires_grad], lr=lrs[0])
    opt_D = torch.optim.SGD([p for p in D.parameters() if p.requires_grad], lr=lrs[1])
    if conditional:
        stats = cdcgan.cgan_train_step(G, D, opt_G, opt_D, real, labels, nz, loss)
    else:
        stats = dcgan.train_step(G, D, opt_G, opt_D, real, nz, loss)
    end = {f"{n}.{k}": p.detach().clone() for n, m in (("G", G), ("D", D)) for k, p in m.named_parameters()}
    return {"start": start, "end": end, "G_seen": G.seen, "D_seen": D.seen,
            "stats": {k: float(v) for k, v in stats.items()}, "training": [G.training, D.training]}


def _tiny(params: dict, prefix: str, x, y, kind: str, shape=None):
    """The tiny networks of :func:`_gan_step`, as functions of their parameters."""
    if prefix == "G":
        h = F.linear(x.flatten(1), params["G.z.weight"], params["G.z.bias"])
        h = h + (F.linear(y, params["G.y.weight"]) if y is not None else 0.0)
        return torch.tanh(h).view(-1, *shape)
    out = F.linear(x.flatten(1), params["D.x.weight"], params["D.x.bias"])
    out = (out + (F.linear(y, params["D.y.weight"]) if y is not None else 0.0)).view(-1)
    return d_out(out, kind)


def _bce(p_or_logit, target: float, kind: str):
    t = torch.full_like(p_or_logit, target)
    if kind == "probabilities":
        return F.binary_cross_entropy(p_or_logit, t)
    return F.binary_cross_entropy_with_logits(p_or_logit, t)


def _generator_objective(out, loss: str, kind: str):
    return _bce(out, 1.0, kind) if loss == "non-saturating" else -_bce(out, 0.0, kind)


def check_gan_step(conditional: bool, name: str) -> None:
    """The exact result of one step of ``train_step`` (or ``cgan_train_step``) on tiny networks:
    D's SGD step on its loss for the real batch and the first generated batch, then G's SGD
    step on its loss through D (before or after D's update), for both generator losses."""
    kind = d_output()
    g = torch.Generator().manual_seed(3)
    real = torch.rand(6, 1, 4, 4, generator=g) * 2 - 1
    labels = torch.tensor([3, 1, 4, 1, 5, 9])
    nz, lrs = 5, (0.3, 0.2)
    for loss in ("non-saturating", "minimax"):
        got = run(_gan_step, conditional, real, labels, nz, loss, lrs, 0, kind)
        what = f"{name}(..., loss={loss!r}) on tiny linear networks with SGD"
        expect(len(got["G_seen"]) >= 1, f"{what}: G was never called")
        expect(got["training"] == [True, True], f"{what}: G and D must be left in train mode "
               f"(G.training, D.training = {got['training']})")
        z1, y1 = got["G_seen"][0]
        expect_shape(z1, (6, nz, 1, 1), f"{what}: the latent batch given to G")
        start = {k: v.clone().requires_grad_(True) for k, v in got["start"].items()}
        fake = _tiny(start, "G", z1, y1, kind, real.shape[1:])
        seen_real = [(x, y) for x, y in got["D_seen"] if x.shape == real.shape and torch.allclose(x, real)]
        expect(bool(seen_real), f"{what}: D never received the real batch")
        if conditional:
            expect(y1 is not None and tuple(y1.shape) == (6, 10), f"{what}: G must receive one-hot labels (6, 10)")
            expect(all(y is not None and torch.equal(y, torch.eye(10)[labels]) for _, y in seen_real),
                   f"{what}: D must judge the real images with their own labels (one-hot)")
            for x, y in got["D_seen"]:
                if x.shape == fake.shape and torch.allclose(x, fake.detach(), atol=1e-6):
                    expect(y is not None and torch.equal(y, y1), f"{what}: D must judge the generated images "
                           "with the labels they were generated for")
        loss_d = _bce(_tiny(start, "D", real, torch.eye(10)[labels] if conditional else None, kind), 1.0, kind) \
            + _bce(_tiny(start, "D", fake.detach(), y1, kind), 0.0, kind)
        d_names = [k for k in start if k.startswith("D.") and (conditional or ".y." not in k)]
        grads = torch.autograd.grad(loss_d, [start[k] for k in d_names])
        d_after = dict(got["start"])
        d_after.update({k: got["start"][k] - lrs[1] * gr for k, gr in zip(d_names, grads)})
        for k in d_names:
            expect_close(got["end"][k], d_after[k], f"{what}: D's {k[2:]} after the step (one SGD step on "
                         "BCE(D(real), 1) + BCE(D(G(z)), 0), from zeroed gradients, G's output detached)",
                         atol=1e-5)
        expect_close(got["stats"]["loss_D"], loss_d.detach(), f"{what}: the reported loss_D", atol=1e-5)
        # G's step: its loss on the last generated batch, through D after (or before) D's update
        z2, y2 = got["G_seen"][-1]
        g_names = [k for k in start if k.startswith("G.") and (conditional or ".y." not in k)]
        candidates = []
        for d_params in (d_after, got["start"]):
            params = {**{k: v.clone().requires_grad_(True) for k, v in got["start"].items() if k.startswith("G.")},
                      **{k: v for k, v in d_params.items() if k.startswith("D.")}}
            out = _tiny(params, "D", _tiny(params, "G", z2, y2, kind, real.shape[1:]), y2, kind)
            loss_g = _generator_objective(out, loss, kind)
            grads = torch.autograd.grad(loss_g, [params[k] for k in g_names])
            candidates.append((loss_g.detach(), {k: got["start"][k] - lrs[0] * gr for k, gr in zip(g_names, grads)}))
        good = [c for c in candidates if all(torch.allclose(got["end"][k], c[1][k], atol=1e-5) for k in g_names)]
        expect(bool(good), f"{what}: G's weights after the step are not one SGD step on the {loss} loss of "
               f"D's outputs on G(z), from zeroed gradients (largest difference "
               f"{max(float((got['end'][k] - candidates[0][1][k]).abs().max()) for k in g_names):.3g})")
        expect_close(got["stats"]["loss_G"], good[0][0], f"{what}: the reported loss_G", atol=1e-5)


@check("tp3d.train_step", "train_step: one step of D on real and generated images, then one of G, "
       "for both generator losses", points=2, timeout=60, question=4, tests=("train_step",))
def train_step_update():
    check_gan_step(False, "train_step")


# ----------------------------------------------------------------------------- cDCGAN (question 6)

def _labels(y):
    from tp3d_gan.cdcgan import expand_labels, one_hot

    four = one_hot(torch.tensor([0, 3, 2]), 4)
    return one_hot(y), four, expand_labels(one_hot(y)), expand_labels(four, 8)


@check("tp3d.cgan_labels", "one_hot and expand_labels: one-hot vectors and constant label maps, for any "
       "number of classes and size", points=1, timeout=30, question=6, tests=("one_hot", "expand_labels"))
def cgan_labels():
    y = torch.tensor([3, 0, 9])
    oh, four, maps, small = run(_labels, y)
    expect_close(oh, torch.eye(10)[y], "one_hot([3, 0, 9])", atol=0)
    expect(oh.dtype == torch.float32, f"one_hot must give floats (the networks' inputs), not {oh.dtype}")
    expect_close(four, torch.eye(4)[[0, 3, 2]], "one_hot([0, 3, 2], n_classes=4)", atol=0)
    expect_shape(maps, (3, 10, 32, 32), "expand_labels(one_hot of 3 labels)")
    expect_close(maps, torch.eye(10)[y][:, :, None, None].expand(-1, -1, 32, 32),
                 "expand_labels: map c is all ones for the true class c, zeros elsewhere", atol=0)
    expect_shape(small, (3, 4, 8, 8), "expand_labels(one_hot(..., 4), size=8)")


def cond_generator_ops(nz: int, w: int, n_classes: int = 10):
    """The handout's conditional generator: two branches, then the joint part. The last
    layer's bias and its Tanh are not prescribed by the handout: either is accepted."""
    z = [conv("ConvTranspose2d", nz, 4 * w, 4, 1, 0, False), bn(4 * w), RELU]
    y = [conv("ConvTranspose2d", n_classes, 4 * w, 4, 1, 0, False), bn(4 * w), RELU]
    joint = [conv("ConvTranspose2d", 8 * w, 4 * w, 4, 2, 1, False), bn(4 * w), RELU,
             conv("ConvTranspose2d", 4 * w, 2 * w, 4, 2, 1, False), bn(2 * w), RELU,
             conv("ConvTranspose2d", 2 * w, 1, 4, 2, 1, None), Op("Tanh", optional=True)]
    return z, y, joint


def cond_discriminator_ops(w: int, n_classes: int = 10, kind: str = "logits"):
    """The handout's conditional discriminator; the branches' and the last layer's biases are
    not prescribed: either is accepted."""
    x = [conv("Conv2d", 1, w, 4, 2, 1, None), lrelu(0.2)]
    y = [conv("Conv2d", n_classes, w, 4, 2, 1, None), lrelu(0.2)]
    joint = [conv("Conv2d", 2 * w, 4 * w, 4, 2, 1, False), bn(4 * w), lrelu(0.2),
             conv("Conv2d", 4 * w, 8 * w, 4, 2, 1, False), bn(8 * w), lrelu(0.2),
             conv("Conv2d", 8 * w, 1, 4, 1, 0, None)] + ([SIGMOID] if kind == "probabilities" else [])
    return x, y, joint


@check("tp3d.cgan_generator", "CondGenerator: the handout's two branches, their concatenation and the "
       "layers after it, for any width, nz and number of classes", points=2, timeout=90, question=6,
       tests=("CondGenerator.__init__", "CondGenerator.forward"))
def cgan_generator():
    g = torch.Generator().manual_seed(2)
    for mode, (nz, w, n_classes) in zip(("train", "eval"), ((100, 64, 10), (12, 8, 5))):
        what = f"CondGenerator(nz={nz}, width={w}, n_classes={n_classes}) in {mode} mode"
        z = torch.randn(3, nz, 1, 1, generator=g)
        y = torch.eye(n_classes)[torch.tensor([1, 0, n_classes - 1])]
        kw = {} if n_classes == 10 else {"n_classes": n_classes}
        result = run(trace_probe, "tp3d_gan.cdcgan", "CondGenerator", (nz, w), kw, [z, y], mode, 0)
        expect_shape(result["output"], (3, 1, 32, 32), f"{what}: output for 3 (z, y)")
        zs, ys, joint = cond_generator_ops(nz, w, n_classes)
        match(result, [("z branch", z, zs), ("label branch", y[:, :, None, None], ys)], joint, what)
        check_parameters(result, what)
        expect_equal(result["parameters"], expected_parameters(zs + ys + joint, result),
                     f"{what}: number of parameters")


@check("tp3d.cgan_discriminator", "CondDiscriminator: the handout's image and label branches, their "
       "concatenation and the layers after it, one output per image", points=2, timeout=90, question=6,
       tests=("CondDiscriminator.__init__", "CondDiscriminator.forward", "expand_labels"))
def cgan_discriminator():
    kind = d_output()
    g = torch.Generator().manual_seed(4)
    for mode, (w, n_classes) in zip(("train", "eval"), ((64, 10), (8, 5))):
        what = f"CondDiscriminator(width={w}, n_classes={n_classes}) in {mode} mode"
        x = torch.rand(3, 1, 32, 32, generator=g) * 2 - 1
        y = torch.eye(n_classes)[torch.tensor([2, n_classes - 1, 0])]
        kw = {} if n_classes == 10 else {"n_classes": n_classes}
        result = run(trace_probe, "tp3d_gan.cdcgan", "CondDiscriminator", (w,), kw, [x, y], mode, 0)
        expect_shape(result["output"], (3,), f"{what}: output for 3 (image, y) pairs")
        xs, ys, joint = cond_discriminator_ops(w, n_classes, kind)
        maps = y[:, :, None, None].expand(-1, -1, 32, 32)
        match(result, [("image branch", x, xs), ("label branch", maps, ys)], joint, what)
        check_parameters(result, what)
        expect_equal(result["parameters"], expected_parameters(xs + ys + joint, result),
                     f"{what}: number of parameters")


@check("tp3d.cgan_train_step", "cgan_train_step: D judges real pairs and generated pairs with their own "
       "labels, then G learns, for both generator losses", points=2, timeout=60, question=6,
       tests=("cgan_train_step",))
def cgan_train_step_update():
    check_gan_step(True, "cgan_train_step")

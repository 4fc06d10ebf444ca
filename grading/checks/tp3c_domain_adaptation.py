"""Public checks of practical 3-c (domain adaptation, gradient reversal)."""
import copy
import math

import torch
import torch.nn as nn

from grading.registry import check, expect, expect_close, expect_shape, run

LAMBDAS = (0.0, 0.25, 1.0, 2.5)


def _forward(x, lambdas):
    from tp3c_domain_adaptation.dann import GradientReversal, grad_reverse

    return [(grad_reverse(x, lambd), GradientReversal()(x, lambd)) for lambd in lambdas]


@check("tp3c.grl_forward", "the gradient reversal layer is the identity in the forward pass",
       points=1, timeout=30)
def grl_forward():
    x = torch.randn(8, 2352, generator=torch.Generator().manual_seed(0))
    for lambd, (y, layer) in zip(LAMBDAS, run(_forward, x, LAMBDAS)):
        expect_shape(y, x.shape, f"grad_reverse(x, {lambd}) output")
        expect_close(y, x, f"grad_reverse(x, {lambd}) must equal x", atol=0, rtol=0)
        expect_close(layer, x, f"GradientReversal()(x, {lambd})", atol=0, rtol=0)


def _backward(cases):
    from tp3c_domain_adaptation.dann import GradientReversal

    grads = []
    for x, upstream, lambd in cases:
        x = x.clone().requires_grad_(True)
        GradientReversal()(x, lambd).backward(upstream)
        grads.append(x.grad)
    return grads


@check("tp3c.grl_backward", "the gradient reversal layer multiplies the gradient by exactly -lambda",
       points=2, timeout=30)
def grl_backward():
    g = torch.Generator().manual_seed(1)
    cases = [(torch.randn(4, 10, generator=g), torch.randn(4, 10, generator=g), lambd) for lambd in LAMBDAS]
    for (_, upstream, lambd), grad in zip(cases, run(_backward, cases)):
        expect(grad is not None, "no gradient reached the input of the layer")
        expect_close(grad, -lambd * upstream, f"gradient through the layer with lambda={lambd} "
                     f"(expected -lambda * incoming gradient)", atol=1e-7)


def _schedule(points):
    from tp3c_domain_adaptation.dann import grl_lambda

    return [float(grl_lambda(p, gamma)) for p, gamma in points] + [float(grl_lambda(0.5))]


@check("tp3c.grl_schedule", "the lambda schedule 2/(1+exp(-gamma p))-1 at p = 0, 0.5, 1",
       points=1, timeout=30)
def grl_schedule():
    points = [(0.0, 10.0), (0.5, 10.0), (1.0, 10.0), (0.5, 2.0), (1.0, 2.0)]
    *values, default = run(_schedule, points)
    for (p, gamma), value in zip(points, values):
        expected = 2.0 / (1.0 + math.exp(-gamma * p)) - 1.0
        expect_close(value, expected, f"grl_lambda(p={p}, gamma={gamma})", atol=1e-9)
    expect_close(default, 2.0 / (1.0 + math.exp(-5.0)) - 1.0,
                 "grl_lambda(0.5) with the default gamma (10, as in the paper)", atol=1e-9)


FEATURES = 3 * 32 * 25 + 32 + 32 * 48 * 25 + 48  # two conv layers, k5: 40,880
LABEL_CLASSIFIER = 2352 * 100 + 100 + 100 * 100 + 100 + 100 * 10 + 10  # 246,410
DOMAIN_CLASSIFIER = 2352 * 100 + 100 + 100 + 1  # 235,401


def _networks(x):
    from tp3c_domain_adaptation.dann import DANN, DomainClassifier, FeatureExtractor, LabelClassifier

    def count(module):
        return sum(p.numel() for p in module.parameters())

    counts = [count(FeatureExtractor()), count(LabelClassifier()), count(DomainClassifier())]
    torch.manual_seed(0)
    features = FeatureExtractor()(x)
    class_logits, domain_logits = DANN()(x, 0.5)
    return counts, [features.detach(), class_logits.detach(), domain_logits.detach()]


@check("tp3c.networks", "the three networks have the spec's layers and parameter counts",
       points=2, timeout=60)
def networks():
    (features, label, domain), (out, class_logits, domain_logits) = run(_networks, torch.rand(5, 3, 28, 28, generator=torch.Generator().manual_seed(0)))
    for name, got, expected in (("FeatureExtractor", features, FEATURES), ("LabelClassifier", label, LABEL_CLASSIFIER),
                                ("DomainClassifier", domain, DOMAIN_CLASSIFIER)):
        expect(got == expected, f"{name}: expected {expected:,} parameters, got {got:,}")
    expect_shape(out, (5, 2352), "FeatureExtractor output for 5 images")
    expect_shape(class_logits, (5, 10), "DANN class logits for 5 images")
    expect_shape(domain_logits, (5,), "DANN domain logits for 5 images (one per image)")


def _losses(logits, labels, dom):
    from tp3c_domain_adaptation.dann import dann_loss, domain_labels

    return domain_labels(3, 2), tuple(dann_loss(logits, labels, dom, domain_labels(3, 2)))


@check("tp3c.losses", "domain labels and the DANN loss: source 0, target 1, cross-entropy + "
       "domain BCE", points=1, timeout=30)
def losses():
    import torch.nn.functional as F

    g = torch.Generator().manual_seed(0)
    logits, labels = torch.randn(3, 10, generator=g), torch.tensor([1, 4, 9])
    dom = torch.randn(5, generator=g)
    d, (total, cls, dl) = run(_losses, logits, labels, dom)
    expect_close(d, torch.tensor([0.0, 0.0, 0.0, 1.0, 1.0]), "domain_labels(3, 2)", atol=0)
    for value, name in ((total, "total"), (cls, "class loss"), (dl, "domain loss")):
        expect_shape(value, (), f"dann_loss: the {name} (a scalar)")
    expect_close(cls, F.cross_entropy(logits, labels), "class loss (cross-entropy on the source)", atol=1e-6)
    sp = F.softplus  # BCE with logits: source (0) -> softplus(l), target (1) -> softplus(-l)
    expected = torch.cat([sp(dom[:3]), sp(-dom[3:])]).mean()
    expect_close(dl, expected, "domain loss (BCE, source = 0, target = 1)", atol=1e-6)
    expect_close(total, cls + dl, "total = class loss + domain loss", atol=1e-6)


def _batches(n: int, seed: int, targets: int = 1):
    """Seeded source images (n, 3, 28, 28) with labels, and ``targets`` brighter target batches."""
    g = torch.Generator().manual_seed(seed)
    x_s, y_s = torch.rand(n, 3, 28, 28, generator=g), torch.randint(0, 10, (n,), generator=g)
    return x_s, y_s, [torch.rand(n, 3, 28, 28, generator=g) * 0.5 + 0.4 for _ in range(targets)]


def _domain_logits_after_step(x_s, y_s, x_t):
    """The START domain classifier's logits on the features after one step, lambda 0 and 1."""
    from tp3c_domain_adaptation.dann import DANN, dann_step

    torch.manual_seed(0)
    start = DANN()
    logits = []
    for lambd in (0.0, 1.0):
        model = copy.deepcopy(start)
        dann_step(model, torch.optim.SGD(model.features.parameters(), lr=0.05), x_s, y_s, x_t, lambd)
        with torch.no_grad():
            logits.append(start.domain(model.features(torch.cat([x_s, x_t]))))
    return logits


@check("tp3c.dann_step_sign", "a DANN step moves the features so that the domain loss rises "
       "(the reversal works inside training)", points=2, timeout=60)
def dann_step_sign():
    import torch.nn.functional as F

    x_s, y_s, (x_t,) = _batches(32, seed=1)
    domains = torch.cat([torch.zeros(32), torch.ones(32)])
    without, reversed_ = (F.binary_cross_entropy_with_logits(logits.flatten(), domains).item()
                          for logits in run(_domain_logits_after_step, x_s, y_s, x_t))
    expect(reversed_ > without + 1e-5,
           f"after a step with lambda = 1 the features should make the domain harder to tell: the "
           f"domain loss went to {reversed_:.6f}, against {without:.6f} with lambda = 0")


def _classifier_after_step(x_s, y_s, targets):
    """The label classifier's parameters before, then after one step with each target batch.
    Only the label classifier moves: its gradient comes from the class loss alone, which must
    read the source images and labels only (the target's labels are unknown)."""
    from tp3c_domain_adaptation.dann import DANN, dann_step

    torch.manual_seed(0)
    start = DANN()
    vectors = [nn.utils.parameters_to_vector(start.classifier.parameters()).detach()]
    for x_t in targets:
        model = copy.deepcopy(start)
        dann_step(model, torch.optim.SGD(model.classifier.parameters(), lr=0.1), x_s, y_s, x_t, 0.5)
        vectors.append(nn.utils.parameters_to_vector(model.classifier.parameters()).detach())
    return vectors


@check("tp3c.source_labels_only", "the label classifier learns from the source labels only: "
       "its update does not depend on the target images", points=1, timeout=60)
def source_labels_only():
    x_s, y_s, targets = _batches(16, seed=2, targets=2)
    start, first, second = run(_classifier_after_step, x_s, y_s, targets)
    expect(bool((first - start).abs().max() > 0), "one DANN step did not change the label classifier at all")
    expect_close(first, second, "the label classifier after one DANN step with two different target "
                 "batches (it must not be trained on target images, whose labels are unknown)", atol=1e-7)

"""Public checks of practical 3-c (domain adaptation, gradient reversal)."""
import math

import torch

from grading.registry import check, expect, expect_close, expect_shape

LAMBDAS = (0.0, 0.25, 1.0, 2.5)


@check("tp3c.grl_forward", "the gradient reversal layer is the identity in the forward pass",
       points=1, timeout=30)
def grl_forward():
    from tp3c_domain_adaptation.dann import GradientReversal, grad_reverse

    x = torch.randn(8, 2352, generator=torch.Generator().manual_seed(0))
    for lambd in LAMBDAS:
        y = grad_reverse(x, lambd)
        expect_shape(y, x.shape, f"grad_reverse(x, {lambd}) output")
        expect_close(y, x, f"grad_reverse(x, {lambd}) must equal x", atol=0, rtol=0)
        expect_close(GradientReversal()(x, lambd), x, f"GradientReversal()(x, {lambd})",
                     atol=0, rtol=0)


@check("tp3c.grl_backward", "the gradient reversal layer multiplies the gradient by exactly -lambda",
       points=2, timeout=30)
def grl_backward():
    from tp3c_domain_adaptation.dann import GradientReversal

    g = torch.Generator().manual_seed(1)
    for lambd in LAMBDAS:
        x = torch.randn(4, 10, generator=g, requires_grad=True)
        upstream = torch.randn(4, 10, generator=g)
        GradientReversal()(x, lambd).backward(upstream)
        expect(x.grad is not None, "no gradient reached the input of the layer")
        expect_close(x.grad, -lambd * upstream, f"gradient through the layer with lambda={lambd} "
                     f"(expected -lambda * incoming gradient)", atol=1e-7)


@check("tp3c.grl_schedule", "the lambda schedule 2/(1+exp(-gamma p))-1 at p = 0, 0.5, 1",
       points=1, timeout=30)
def grl_schedule():
    from tp3c_domain_adaptation.dann import grl_lambda

    for p, gamma in [(0.0, 10.0), (0.5, 10.0), (1.0, 10.0), (0.5, 2.0), (1.0, 2.0)]:
        expected = 2.0 / (1.0 + math.exp(-gamma * p)) - 1.0
        expect_close(grl_lambda(p, gamma), expected, f"grl_lambda(p={p}, gamma={gamma})", atol=1e-9)
    expect_close(grl_lambda(0.5), 2.0 / (1.0 + math.exp(-5.0)) - 1.0,
                 "grl_lambda(0.5) with the default gamma (10, as in the paper)", atol=1e-9)


FEATURES = 3 * 32 * 25 + 32 + 32 * 48 * 25 + 48  # two conv layers, k5: 40,880
LABEL_CLASSIFIER = 2352 * 100 + 100 + 100 * 100 + 100 + 100 * 10 + 10  # 246,410
DOMAIN_CLASSIFIER = 2352 * 100 + 100 + 100 + 1  # 235,401


def _count(module) -> int:
    return torch.nn.utils.parameters_to_vector(module.parameters()).numel()


@check("tp3c.networks", "the three networks have the spec's layers and parameter counts",
       points=2, timeout=60)
def networks():
    from tp3c_domain_adaptation.dann import DANN, DomainClassifier, FeatureExtractor, LabelClassifier

    expect(_count(FeatureExtractor()) == FEATURES,
           f"FeatureExtractor: expected {FEATURES:,} parameters, got {_count(FeatureExtractor()):,}")
    expect(_count(LabelClassifier()) == LABEL_CLASSIFIER,
           f"LabelClassifier: expected {LABEL_CLASSIFIER:,} parameters, got {_count(LabelClassifier()):,}")
    expect(_count(DomainClassifier()) == DOMAIN_CLASSIFIER,
           f"DomainClassifier: expected {DOMAIN_CLASSIFIER:,} parameters, got {_count(DomainClassifier()):,}")
    torch.manual_seed(0)
    x = torch.rand(5, 3, 28, 28)
    expect_shape(FeatureExtractor()(x), (5, 2352), "FeatureExtractor output for 5 images")
    class_logits, domain_logits = DANN()(x, 0.5)
    expect_shape(class_logits, (5, 10), "DANN class logits for 5 images")
    expect_shape(domain_logits, (5,), "DANN domain logits for 5 images (one per image)")


@check("tp3c.losses", "domain labels and the DANN loss: source 0, target 1, cross-entropy + "
       "domain BCE", points=1, timeout=30)
def losses():
    import torch.nn.functional as F

    from tp3c_domain_adaptation.dann import dann_loss, domain_labels

    d = domain_labels(3, 2)
    expect_close(d, torch.tensor([0.0, 0.0, 0.0, 1.0, 1.0]), "domain_labels(3, 2)", atol=0)
    g = torch.Generator().manual_seed(0)
    logits, labels = torch.randn(3, 10, generator=g), torch.tensor([1, 4, 9])
    dom = torch.randn(5, generator=g)
    total, cls, dl = dann_loss(logits, labels, dom, d)
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


@check("tp3c.dann_step_sign", "a DANN step moves the features so that the domain loss rises "
       "(the reversal works inside training)", points=2, timeout=60)
def dann_step_sign():
    import copy

    import torch.nn.functional as F

    from tp3c_domain_adaptation.dann import DANN, dann_step, domain_labels

    torch.manual_seed(0)
    start = DANN()
    x_s, y_s, (x_t,) = _batches(32, seed=1)
    domains = domain_labels(32, 32)

    def feature_domain_loss(lambd):
        """Domain loss of the START domain classifier on the features after one step."""
        model = copy.deepcopy(start)
        dann_step(model, torch.optim.SGD(model.features.parameters(), lr=0.05), x_s, y_s, x_t, lambd)
        with torch.no_grad():
            logits = start.domain(model.features(torch.cat([x_s, x_t])))
        return F.binary_cross_entropy_with_logits(logits, domains).item()

    without, reversed_ = feature_domain_loss(0.0), feature_domain_loss(1.0)
    expect(reversed_ > without + 1e-5,
           f"after a step with lambda = 1 the features should make the domain harder to tell: the "
           f"domain loss went to {reversed_:.6f}, against {without:.6f} with lambda = 0")


@check("tp3c.source_labels_only", "the label classifier learns from the source labels only: "
       "its update does not depend on the target images", points=1, timeout=60)
def source_labels_only():
    import copy

    from tp3c_domain_adaptation.dann import DANN, dann_step

    torch.manual_seed(0)
    start = DANN()
    x_s, y_s, targets = _batches(16, seed=2, targets=2)

    def classifier_after_step(x_t):
        model = copy.deepcopy(start)
        # Only the label classifier moves: its gradient comes from the class loss alone, which
        # must read the source images and labels only (the target's labels are unknown).
        dann_step(model, torch.optim.SGD(model.classifier.parameters(), lr=0.1), x_s, y_s, x_t, 0.5)
        return torch.nn.utils.parameters_to_vector(model.classifier.parameters()).detach()

    first, second = (classifier_after_step(x_t) for x_t in targets)
    moved = (first - torch.nn.utils.parameters_to_vector(start.classifier.parameters())).abs().max()
    expect(moved > 0, "one DANN step did not change the label classifier at all")
    expect_close(first, second, "the label classifier after one DANN step with two different target "
                 "batches (it must not be trained on target images, whose labels are unknown)", atol=1e-7)

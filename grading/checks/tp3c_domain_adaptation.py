"""Public checks of practical 3-c (domain adaptation, gradient reversal), in the handout's order.

The networks are checked layer by layer (see :mod:`grading.layers`); the training steps by
one exact step on a tiny model built in the student's process, whose result the grader
recomputes from the same starting weights.
"""
import copy
import math

import torch
import torch.nn as nn
import torch.nn.functional as F

from grading.layers import FLATTEN, RELU, Op, check_parameters, conv, expected_parameters, linear, match, trace_probe
from grading.registry import case, check, expect, expect_close, expect_shape, run

LAMBDAS = (0.0, 0.25, 1.0, 2.5)


def _forward(x, lambdas):
    from tp3c_domain_adaptation.dann import GradientReversal, grad_reverse

    return [(grad_reverse(x, lambd), GradientReversal()(x, lambd)) for lambd in lambdas]


@check("tp3c.grl_forward", "the gradient reversal layer is the identity in the forward pass",
       points=1, timeout=30, tests=("GradientReversalFunction.forward",))
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
       points=2, timeout=30, tests=("GradientReversalFunction.forward", "GradientReversalFunction.backward"),
       partial=True)
def grl_backward():
    g = torch.Generator().manual_seed(1)
    cases = [(torch.randn(4, 10, generator=g), torch.randn(4, 10, generator=g), lambd) for lambd in LAMBDAS]
    for (_, upstream, lambd), grad in zip(cases, run(_backward, cases)):
        with case(f"lambda={lambd}"):
            expect(grad is not None, "no gradient reached the input of the layer")
            expect_close(grad, -lambd * upstream, f"gradient through the layer with lambda={lambd} "
                         f"(expected -lambda * incoming gradient)", atol=1e-7)


def _schedule(points):
    from tp3c_domain_adaptation.dann import grl_lambda

    return [float(grl_lambda(p, gamma)) for p, gamma in points] + [float(grl_lambda(0.5))]


@check("tp3c.grl_schedule", "the lambda schedule 2/(1+exp(-gamma p))-1 at p = 0, 0.5, 1, for two gammas",
       points=1, timeout=30, tests=("grl_lambda",), partial=True)
def grl_schedule():
    points = [(0.0, 10.0), (0.5, 10.0), (1.0, 10.0), (0.5, 2.0), (1.0, 2.0)]
    *values, default = run(_schedule, points)
    for (p, gamma), value in zip(points, values):
        with case(f"p={p}, gamma={gamma}"):
            expected = 2.0 / (1.0 + math.exp(-gamma * p)) - 1.0
            expect_close(value, expected, f"grl_lambda(p={p}, gamma={gamma})", atol=1e-9)
    with case("p=0.5, the default gamma"):
        expect_close(default, 2.0 / (1.0 + math.exp(-5.0)) - 1.0,
                     "grl_lambda(0.5) with the default gamma (10, as in the paper)", atol=1e-9)


# ----------------------------------------------------------------------------- the networks

FEATURE_OPS = [conv("Conv2d", 3, 32, 5, 1, 2, None), RELU, Op("MaxPool2d", {"kernel_size": 2}),
               conv("Conv2d", 32, 48, 5, 1, 2, None), RELU, Op("MaxPool2d", {"kernel_size": 2}), FLATTEN]


def label_ops(n_features: int = 2352, n_classes: int = 10) -> list[Op]:
    return [linear(n_features, 100, None), RELU, linear(100, 100, None), RELU, linear(100, n_classes, None)]


def domain_ops(n_features: int = 2352, hidden: int = 100) -> list[Op]:
    return [linear(n_features, hidden, None), RELU, linear(hidden, 1, None)]


NETWORKS = [("FeatureExtractor", (), {}, (5, 3, 28, 28), FEATURE_OPS, (5, 2352)),
            ("LabelClassifier", (), {}, (5, 2352), label_ops(), (5, 10)),
            ("LabelClassifier", (48, 7), {}, (4, 48), label_ops(48, 7), (4, 7)),
            ("DomainClassifier", (), {}, (5, 2352), domain_ops(), (5,)),
            ("DomainClassifier", (30,), {"hidden": 20}, (4, 30), domain_ops(30, 20), (4,))]


@check("tp3c.networks", "the feature extractor, the label classifier and the domain classifier: their "
       "layers, settings and sizes, for any input size, class count and hidden width", points=2, timeout=60,
       tests=("FeatureExtractor.__init__", "FeatureExtractor.forward", "LabelClassifier.__init__",
              "LabelClassifier.forward", "DomainClassifier.__init__", "DomainClassifier.forward"), partial=True)
def networks():
    g = torch.Generator().manual_seed(0)
    for name, args, kw, shape, ops, out_shape in NETWORKS:
        what = f"{name}({', '.join([str(a) for a in args] + [f'{k}={v}' for k, v in kw.items()])})"
        x = torch.rand(*shape, generator=g)
        result = run(trace_probe, "tp3c_domain_adaptation.dann", name, args, kw, [x], "train", 0)
        with case(what):
            expect_shape(result["output"], out_shape, f"{what}: output for an input of shape {shape}")
            match(result, [("input", x, ops)], None, what)
            check_parameters(result, what)
            expected = expected_parameters(ops, result)
            expect(result["parameters"] == expected,
                   f"{what}: {result['parameters']:,} parameters, expected {expected:,}")


def _dann_outputs(x, lambd):
    """DANN()(x, lambd) and what its parts give on x; the gradients with respect to x of the
    class logits and of the domain logits, through the model and through its parts."""
    from tp3c_domain_adaptation.dann import DANN

    torch.manual_seed(0)
    model = DANN()
    x = x.clone().requires_grad_(True)
    class_logits, domain_logits = model(x, lambd)
    (class_grad,) = torch.autograd.grad(class_logits.sum(), x, retain_graph=True)
    (domain_grad,) = torch.autograd.grad(domain_logits.sum(), x)
    f = model.features(x)
    parts_class, parts_domain = model.classifier(f), model.domain(f)
    (parts_class_grad,) = torch.autograd.grad(parts_class.sum(), x, retain_graph=True)
    (parts_domain_grad,) = torch.autograd.grad(parts_domain.sum(), x)
    return [t.detach() for t in (class_logits, domain_logits, parts_class, parts_domain, class_grad,
                                 domain_grad, parts_class_grad, parts_domain_grad)]


@check("tp3c.dann_forward", "DANN.forward: the class logits from the label classifier, the domain logits "
       "from the domain classifier through the reversal layer, on the same features", points=1, timeout=30,
       tests=("DANN.forward",))
def dann_forward():
    x = torch.rand(5, 3, 28, 28, generator=torch.Generator().manual_seed(0))
    lambd = 0.6
    (class_logits, domain_logits, parts_class, parts_domain, class_grad, domain_grad, parts_class_grad,
     parts_domain_grad) = run(_dann_outputs, x, lambd)
    expect_shape(class_logits, (5, 10), "DANN class logits for 5 images")
    expect_shape(domain_logits, (5,), "DANN domain logits for 5 images (one per image)")
    expect_close(class_logits, parts_class, "class logits: the label classifier on the features", atol=1e-5)
    expect_close(domain_logits, parts_domain, "domain logits: the domain classifier on the features "
                 "(the reversal layer leaves the values unchanged)", atol=1e-5)
    expect_close(class_grad, parts_class_grad, "gradient of the class logits with respect to the images: "
                 "the label classifier's branch must not go through the reversal", atol=1e-6, rtol=1e-4)
    expect_close(domain_grad, -lambd * parts_domain_grad, f"gradient of the domain logits with respect to the "
                 f"images, with lambda = {lambd}: the domain branch goes through the reversal (times -lambda)",
                 atol=1e-6, rtol=1e-4)


def _losses(logits, labels, dom):
    from tp3c_domain_adaptation.dann import dann_loss, domain_labels

    return domain_labels(3, 2), tuple(dann_loss(logits, labels, dom, domain_labels(3, 2))), \
        str(domain_labels(1, 1, device="meta").device)


@check("tp3c.losses", "domain labels and the DANN loss: source 0, target 1, cross-entropy + "
       "domain BCE", points=1, timeout=30, tests=("domain_labels", "dann_loss"))
def losses():
    g = torch.Generator().manual_seed(0)
    logits, labels = torch.randn(3, 10, generator=g), torch.tensor([1, 4, 9])
    dom = torch.randn(5, generator=g)
    d, (total, cls, dl), device = run(_losses, logits, labels, dom)
    expect_close(d, torch.tensor([0.0, 0.0, 0.0, 1.0, 1.0]), "domain_labels(3, 2)", atol=0)
    expect(device == "meta", f"domain_labels(1, 1, device='meta') gave a tensor on {device}: use the device argument")
    for value, name in ((total, "total"), (cls, "class loss"), (dl, "domain loss")):
        expect_shape(value, (), f"dann_loss: the {name} (a scalar)")
    expect_close(cls, F.cross_entropy(logits, labels), "class loss (cross-entropy on the source)", atol=1e-6)
    sp = F.softplus  # BCE with logits: source (0) -> softplus(l), target (1) -> softplus(-l)
    expected = torch.cat([sp(dom[:3]), sp(-dom[3:])]).mean()
    expect_close(dl, expected, "domain loss (BCE, source = 0, target = 1)", atol=1e-6)
    expect_close(total, cls + dl, "total = class loss + domain loss", atol=1e-6)


# ----------------------------------------------------------------------------- the training steps

def _tiny_step(kind, x_s, y_s, x_t, kwargs, lr, seed):
    """One step of the student's source_only_step or dann_step on a tiny DANN-shaped model
    (its own reversal layer); the weights before and after, and the returned stats."""
    from tp3c_domain_adaptation import dann

    class Tiny(nn.Module):
        def __init__(self):
            super().__init__()
            self.features = nn.Sequential(nn.Flatten(), nn.Linear(x_s[0].numel(), 6), nn.ReLU())
            self.classifier = nn.Linear(6, 10)
            self.domain = nn.Sequential(nn.Linear(6, 1), nn.Flatten(0))

        def forward(self, x, lambd=0.0):
            f = self.features(x)
            reversed_ = -lambd * f + (1 + lambd) * f.detach()  # the values of f, the gradient times -lambda
            return self.classifier(f), self.domain(reversed_)

    torch.manual_seed(seed)
    model = Tiny()
    with torch.no_grad():
        model.classifier.weight.mul_(30.0)  # confident predictions: some pseudo-labels pass the threshold
    start = {k: v.detach().clone() for k, v in model.named_parameters()}
    for p in model.parameters():
        p.grad = torch.full_like(p, 0.5)  # left over from an earlier step: a step must not add to it
    opt = torch.optim.SGD(model.parameters(), lr=lr)
    if kind == "source":
        stats = dann.source_only_step(model, opt, x_s, y_s)
    else:
        stats = dann.dann_step(model, opt, x_s, y_s, x_t, **kwargs)
    return start, {k: v.detach().clone() for k, v in model.named_parameters()}, \
        {k: float(v) for k, v in stats.items()}, model.training


def _tiny_forward(p, x, lambd):
    """The tiny model of :func:`_tiny_step` as a function of its parameters: (class, domain)."""
    f = F.relu(F.linear(x.flatten(1), p["features.1.weight"], p["features.1.bias"]))
    reversed_ = -lambd * f + (1 + lambd) * f.detach()  # the values of f, the gradient times -lambda
    return F.linear(f, p["classifier.weight"], p["classifier.bias"]), \
        F.linear(reversed_, p["domain.0.weight"], p["domain.0.bias"]).view(-1)


def expected_pseudo(logits: torch.Tensor, threshold: float):
    """The pseudo-label loss and the share of confident images, from the log-probabilities."""
    logp = F.log_softmax(logits, dim=1)
    best, labels = logp.detach().max(dim=1)
    keep = best.exp() >= threshold
    loss = -(logp.gather(1, labels[:, None]).squeeze(1) * keep).sum() / max(int(keep.sum()), 1)
    return loss, keep.float().mean()


def _batches(n: int, seed: int, targets: int = 1, size: int = 28):
    """Seeded source images (n, 3, size, size) with labels, and ``targets`` brighter target batches."""
    g = torch.Generator().manual_seed(seed)
    x_s, y_s = torch.rand(n, 3, size, size, generator=g), torch.randint(0, 10, (n,), generator=g)
    return x_s, y_s, [torch.rand(n, 3, size, size, generator=g) * 0.5 + 0.4 for _ in range(targets)]


def _after_sgd(start: dict, loss, lr: float) -> dict:
    grads = torch.autograd.grad(loss, list(start.values()), allow_unused=True)
    return {k: (v - lr * g if g is not None else v).detach() for (k, v), g in zip(start.items(), grads)}


@check("tp3c.source_only_step", "source_only_step: one SGD step on the source batch's cross-entropy, "
       "nothing else, and what it reports", points=1, timeout=30, tests=("source_only_step",))
def source_only_step_update():
    x_s, y_s, _ = _batches(8, seed=4, size=2)
    start, end, stats, training = run(_tiny_step, "source", x_s, y_s, None, {}, 0.5, 0)
    expect(training, "source_only_step must leave the model in train mode")
    params = {k: v.clone().requires_grad_(True) for k, v in start.items()}
    logits, _ = _tiny_forward(params, x_s, 0.0)
    loss = -F.log_softmax(logits, dim=1).gather(1, y_s[:, None]).mean()  # the cross-entropy
    expected = _after_sgd(params, loss, 0.5)
    for k in start:
        expect_close(end[k], expected[k], f"{k} after one step (SGD, lr 0.5, on the cross-entropy of the source "
                     "batch, from zeroed gradients; the domain classifier untouched)", atol=1e-5)
    expect_close(stats.get("class_loss"), loss.detach(), "the reported class_loss", atol=1e-5)
    expect_close(stats.get("source_acc"), (logits.argmax(1) == y_s).float().mean(), "the reported source_acc",
                 atol=1e-6)


STEPS = [{"lambd": 0.7}, {"lambd": -0.4, "domain_weight": 0.0},
         {"lambd": 1.3, "pseudo_alpha": 0.6, "threshold": 0.7},
         {"lambd": 0.2, "pseudo_alpha": 1.5, "threshold": 0.6, "domain_weight": 0.5}]
# At the tiny model's start, 3 of the 8 target images reach a confidence of 0.7, 6 reach 0.6.


@check("tp3c.dann_step", "dann_step: one SGD step on class loss + domain loss through the reversal + "
       "pseudo-label loss, with their weights and threshold, and what it reports", points=2, timeout=60,
       tests=("dann_step",), partial=True)
def dann_step_update():
    x_s, y_s, (x_t,) = _batches(8, seed=5, size=2)
    for kwargs in STEPS:
        what = f"dann_step({', '.join(f'{k}={v}' for k, v in kwargs.items())}) on a tiny model, SGD lr 0.5"
        start, end, stats, training = run(_tiny_step, "dann", x_s, y_s, x_t, kwargs, 0.5, 1)
        with case(what):
            _judge_step(kwargs, what, x_s, y_s, x_t, start, end, stats, training)


def _judge_step(kwargs, what, x_s, y_s, x_t, start, end, stats, training):
    """One case of ``tp3c.dann_step``: the step recomputed from the same weights, and compared."""
    expect(training, f"{what}: the model must be left in train mode")
    params = {k: v.clone().requires_grad_(True) for k, v in start.items()}
    lambd = kwargs["lambd"]
    class_s, dom_s = _tiny_forward(params, x_s, lambd)
    class_t, dom_t = _tiny_forward(params, x_t, lambd)
    class_loss = F.cross_entropy(class_s, y_s)
    domains = torch.cat([torch.zeros(8), torch.ones(8)])
    domain_logits = torch.cat([dom_s, dom_t])
    domain_loss = torch.cat([F.softplus(dom_s), F.softplus(-dom_t)]).mean()  # BCE: source 0, target 1
    alpha = kwargs.get("pseudo_alpha", 0.0)
    pseudo, fraction = expected_pseudo(class_t, kwargs.get("threshold", 0.9))
    total = class_loss + kwargs.get("domain_weight", 1.0) * domain_loss + (alpha * pseudo if alpha else 0.0)
    expected = _after_sgd(params, total, 0.5)
    for k in start:
        expect_close(end[k], expected[k], f"{what}: {k} after the step (from zeroed gradients)", atol=1e-5)
    for key, value in (("loss", total), ("class_loss", class_loss), ("domain_loss", domain_loss),
                       ("source_acc", (class_s.argmax(1) == y_s).float().mean()),
                       ("domain_acc", ((domain_logits > 0).float() == domains).float().mean())):
        expect_close(stats.get(key), value.detach(), f"{what}: the reported {key}", atol=1e-5)
    if alpha:
        expect_close(stats.get("pseudo_loss"), pseudo.detach(), f"{what}: the reported pseudo_loss", atol=1e-5)
        expect_close(stats.get("pseudo_fraction"), fraction, f"{what}: the reported pseudo_fraction", atol=1e-6)


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
       "(the reversal works inside training)", points=2, timeout=60, question=1,
       tests=("DANN.forward", "dann_step", "GradientReversalFunction.backward"))
def dann_step_sign():
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
       "its update does not depend on the target images", points=1, timeout=60, question=2,
       tests=("dann_step",))
def source_labels_only():
    x_s, y_s, targets = _batches(16, seed=2, targets=2)
    start, first, second = run(_classifier_after_step, x_s, y_s, targets)
    expect(bool((first - start).abs().max() > 0), "one DANN step did not change the label classifier at all")
    expect_close(first, second, "the label classifier after one DANN step with two different target "
                 "batches (it must not be trained on target images, whose labels are unknown)", atol=1e-7)


# ----------------------------------------------------------------------------- pseudo-labelling (question 4)

def _pseudo(cases):
    from tp3c_domain_adaptation.dann import pseudo_label_loss

    out = []
    for logits, kwargs in cases:
        logits = logits.clone().requires_grad_(True)
        loss, fraction = pseudo_label_loss(logits, **kwargs)
        loss.backward()
        out.append((loss.detach(), torch.as_tensor(fraction).detach(), logits.grad))
    return out


@check("tp3c.pseudo_label_loss", "pseudo_label_loss: cross-entropy towards the confident predictions "
       "only, for any threshold, and 0 when none is confident", points=1, timeout=30, question=4,
       tests=("pseudo_label_loss",), partial=True)
def pseudo_label_loss_values():
    g = torch.Generator().manual_seed(6)
    logits = torch.randn(12, 10, generator=g) * 3
    cases = [(logits, {}), (logits, {"threshold": 0.5}), (logits, {"threshold": 0.999}),
             (torch.zeros(4, 10), {"threshold": 0.2})]
    for (x, kwargs), (loss, fraction, grad) in zip(cases, run(_pseudo, cases)):
        threshold = kwargs.get("threshold", 0.9)
        what = f"pseudo_label_loss({'zero ' if not x.any() else ''}logits, threshold={threshold})"
        with case(what):
            x = x.clone().requires_grad_(True)
            expected, share = expected_pseudo(x, threshold)
            expected.backward()
            expect_shape(loss, (), f"{what}: the loss (a scalar)")
            expect_close(loss, expected.detach(), f"{what}: the loss ({float(share) * len(x):.0f} of {len(x)} "
                         "images confident enough)", atol=1e-5)
            expect_close(fraction, share, f"{what}: the fraction of confident images", atol=1e-6)
            expect(grad is not None, f"{what}: no gradient reaches the logits")
            expect_close(grad, x.grad, f"{what}: the gradient with respect to the logits (the pseudo-labels are "
                         "targets, not a function of the weights)", atol=1e-6)

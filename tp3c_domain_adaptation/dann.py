"""DANN: the gradient reversal layer, its lambda schedule, the three networks, the loss,
the training steps (baseline and DANN) and pseudo-labelling (practical 3-c).

Student file: write each part between its ``YOUR CODE`` markers. The grader calls these by
name, with these signatures. Build each layer that holds weights from a ``torch.nn`` module
(``nn.Conv2d``, ``nn.Linear``): the checks read their settings; activations and pooling may
be modules or functions. Schedules are explicit arguments, never state hidden in a layer.
"""
import math

import torch
import torch.nn as nn
import torch.nn.functional as F


class GradientReversalFunction(torch.autograd.Function):
    """Identity in the forward pass; multiplies the gradient by ``-lambd`` backwards."""

    @staticmethod
    def forward(ctx, x: torch.Tensor, lambd: float) -> torch.Tensor:
        """
        Args:
            x: Tensor of any shape, e.g. features (N, 2352).
            lambd: float, the reversal strength.
        Returns:
            Tensor equal to ``x``, same shape.
        """
        ### BEGIN SOLUTION
        ctx.lambd = lambd
        return x.view_as(x)
        ### END SOLUTION

    @staticmethod
    def backward(ctx, grad_output: torch.Tensor):
        """
        Args:
            grad_output: Tensor, the gradient with respect to the output (same shape as x).
        Returns:
            (gradient with respect to x: ``-lambd * grad_output``, None for lambd).
        """
        ### BEGIN SOLUTION
        return -ctx.lambd * grad_output, None
        ### END SOLUTION


def grad_reverse(x: torch.Tensor, lambd: float) -> torch.Tensor:
    """Apply the gradient reversal layer to ``x`` with strength ``lambd``."""
    return GradientReversalFunction.apply(x, lambd)


class GradientReversal(nn.Module):
    """Module wrapper: ``GradientReversal()(x, lambd)``; lambd is passed at every call."""

    def forward(self, x: torch.Tensor, lambd: float) -> torch.Tensor:
        return grad_reverse(x, lambd)


def grl_lambda(p: float, gamma: float = 10.0) -> float:
    """The DANN schedule lambda(p) = 2 / (1 + exp(-gamma * p)) - 1.

    Args:
        p: float in [0, 1], the training progress (iterations done / total).
        gamma: float, how fast lambda ramps up (10 in the paper).
    Returns:
        float in [0, 1): 0 at p = 0, rising towards 1.
    """
    ### BEGIN SOLUTION
    return 2.0 / (1.0 + math.exp(-gamma * p)) - 1.0
    ### END SOLUTION


def dann_lr(p: float, lr0: float = 0.01, alpha: float = 10.0, beta: float = 0.75) -> float:
    """The paper's learning-rate decay lr0 / (1 + alpha p)^beta, p the progress in [0, 1]."""
    return lr0 / (1.0 + alpha * p) ** beta


class FeatureExtractor(nn.Module):
    """Images (N, 3, 28, 28) -> features (N, 2352).

    Conv(3->32, k5 pad2), ReLU, MaxPool 2 -> (N, 32, 14, 14);
    Conv(32->48, k5 pad2), ReLU, MaxPool 2 -> (N, 48, 7, 7); flattened to 48*7*7 = 2352.
    """

    def __init__(self):
        super().__init__()
        ### BEGIN SOLUTION
        self.net = nn.Sequential(
            nn.Conv2d(3, 32, 5, padding=2), nn.ReLU(True), nn.MaxPool2d(2),  # (N, 32, 14, 14)
            nn.Conv2d(32, 48, 5, padding=2), nn.ReLU(True), nn.MaxPool2d(2),  # (N, 48, 7, 7)
            nn.Flatten(),  # (N, 2352)
        )
        ### END SOLUTION

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        ### BEGIN SOLUTION
        return self.net(x)
        ### END SOLUTION


class LabelClassifier(nn.Module):
    """Features (N, 2352) -> class logits (N, 10): Linear 2352->100, ReLU, 100->100, ReLU, 100->10."""

    def __init__(self, n_features: int = 2352, n_classes: int = 10):
        super().__init__()
        ### BEGIN SOLUTION
        self.net = nn.Sequential(nn.Linear(n_features, 100), nn.ReLU(True),
                                 nn.Linear(100, 100), nn.ReLU(True), nn.Linear(100, n_classes))
        ### END SOLUTION

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        ### BEGIN SOLUTION
        return self.net(features)
        ### END SOLUTION


class DomainClassifier(nn.Module):
    """Features (N, 2352) -> domain logits (N,): Linear 2352->100, ReLU, 100->1.

    A logit > 0 means "target domain"; train it with binary cross-entropy on logits.
    """

    def __init__(self, n_features: int = 2352, hidden: int = 100):
        super().__init__()
        ### BEGIN SOLUTION
        self.net = nn.Sequential(nn.Linear(n_features, hidden), nn.ReLU(True), nn.Linear(hidden, 1))
        ### END SOLUTION

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        ### BEGIN SOLUTION
        return self.net(features).view(-1)  # (N,)
        ### END SOLUTION


class DANN(nn.Module):
    """The three networks: features, label classifier, and the domain classifier behind a
    gradient reversal layer."""

    def __init__(self, domain_hidden: int = 100):
        super().__init__()
        self.features = FeatureExtractor()
        self.classifier = LabelClassifier()
        self.domain = DomainClassifier(hidden=domain_hidden)

    def forward(self, x: torch.Tensor, lambd: float = 0.0) -> tuple[torch.Tensor, torch.Tensor]:
        """
        Args:
            x: images (N, 3, 28, 28); lambd: the reversal strength for this step.
        Returns:
            (class logits (N, 10), domain logits (N,)); the domain branch sees the
            features through the gradient reversal layer.
        """
        ### BEGIN SOLUTION
        f = self.features(x)  # (N, 2352)
        return self.classifier(f), self.domain(grad_reverse(f, lambd))
        ### END SOLUTION


def domain_labels(n_source: int, n_target: int, device=None) -> torch.Tensor:
    """Float Tensor (n_source + n_target,): 0 for each source image, then 1 for each target."""
    ### BEGIN SOLUTION
    return torch.cat([torch.zeros(n_source, device=device), torch.ones(n_target, device=device)])
    ### END SOLUTION


def dann_loss(class_logits: torch.Tensor, labels: torch.Tensor, domain_logits: torch.Tensor,
              domains: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """DANN's objective: cross-entropy on the source labels + domain BCE on all images.

    Args:
        class_logits: (Ns, 10), the label classifier on SOURCE images only.
        labels: int64 (Ns,), their labels (target labels are never used for training).
        domain_logits: (Ns + Nt,), the domain classifier on source then target images.
        domains: float (Ns + Nt,), 0 for source, 1 for target (see :func:`domain_labels`).
    Returns:
        (total loss, class loss, domain loss), three scalar Tensors.
    """
    ### BEGIN SOLUTION
    class_loss = F.cross_entropy(class_logits, labels)
    domain_loss = F.binary_cross_entropy_with_logits(domain_logits, domains)
    return class_loss + domain_loss, class_loss, domain_loss
    ### END SOLUTION


def pseudo_label_loss(target_logits: torch.Tensor, threshold: float = 0.9) -> tuple[torch.Tensor, torch.Tensor]:
    """The pseudo-label loss of a target batch: each image whose largest softmax
    probability reaches ``threshold`` is given its predicted class as a label, and the loss
    is the cross-entropy towards those labels, averaged over these images only.

    Args:
        target_logits: (Nt, 10), the label classifier on TARGET images.
        threshold: float in (0, 1), the confidence needed to trust a prediction.
    Returns:
        (loss: scalar Tensor, the mean over the confident images, 0 if there are none;
         fraction of confident images: scalar Tensor).
    """
    ### BEGIN SOLUTION
    probs = F.softmax(target_logits.detach(), dim=1)  # the labels are targets, not parameters
    confidence, pseudo = probs.max(dim=1)
    mask = (confidence >= threshold).float()
    per_image = F.cross_entropy(target_logits, pseudo, reduction="none")
    loss = (per_image * mask).sum() / mask.sum().clamp(min=1.0)
    return loss, mask.mean()
    ### END SOLUTION


def pseudo_label_weight(p: float, start: float = 0.2, ramp: float = 0.3, alpha_max: float = 1.0) -> float:
    """alpha(t): 0 during the warm-up (p < start), then rising linearly to alpha_max over
    the next ``ramp`` of training, where p in [0, 1] is the training progress."""
    return alpha_max * min(1.0, max(0.0, (p - start) / ramp))


def source_only_step(model: DANN, optimizer, x_s: torch.Tensor, y_s: torch.Tensor) -> dict:
    """One step of the baseline: cross-entropy on a source batch, nothing else.

    Args:
        model: a :class:`DANN` (its domain branch is unused); optimizer: over its parameters.
        x_s: source images (N, 3, 28, 28); y_s: int64 labels (N,).
    Returns:
        dict of detached scalar Tensors: "class_loss", "source_acc".
    """
    ### BEGIN SOLUTION
    optimizer.zero_grad(set_to_none=True)
    logits = model.classifier(model.features(x_s))
    loss = F.cross_entropy(logits, y_s)
    loss.backward()
    optimizer.step()
    return {"class_loss": loss.detach(), "source_acc": (logits.argmax(1) == y_s).float().mean()}
    ### END SOLUTION


def dann_step(model: DANN, optimizer, x_s: torch.Tensor, y_s: torch.Tensor, x_t: torch.Tensor,
              lambd: float, pseudo_alpha: float = 0.0, threshold: float = 0.9,
              domain_weight: float = 1.0) -> dict:
    """One DANN step on a source batch and a target batch (the target's labels are unknown):
    one optimizer step on the loss class_loss + domain_weight * domain_loss
    + pseudo_alpha * pseudo_loss.

    Args:
        model: a :class:`DANN`; optimizer: over all its parameters.
        x_s: source images (Ns, 3, 28, 28); y_s: int64 labels (Ns,); x_t: target images (Nt, 3, 28, 28).
        lambd: the factor of the gradient reversal layer for this step, as the training
            loop chooses it (any real number).
        pseudo_alpha: weight of :func:`pseudo_label_loss` on the target batch (0 = off).
        threshold: confidence threshold of the pseudo-labels.
        domain_weight: weight of the domain loss (1 for DANN; 0 trains without it).
    Returns:
        dict of detached scalar Tensors: "loss" (the total above), "class_loss",
        "domain_loss", "domain_acc" (the domain classifier's accuracy on this batch),
        "source_acc" (the label classifier's on the source batch), "pseudo_loss" and
        "pseudo_fraction" (0 when pseudo_alpha is 0).
    """
    ### BEGIN SOLUTION
    optimizer.zero_grad(set_to_none=True)
    n_s = x_s.shape[0]
    class_logits, domain_logits = model(torch.cat([x_s, x_t]), lambd)  # one pass, (Ns+Nt, ...)
    domains = domain_labels(n_s, x_t.shape[0], device=x_s.device)
    _, class_loss, domain_loss = dann_loss(class_logits[:n_s], y_s, domain_logits, domains)
    loss = class_loss + domain_weight * domain_loss
    pseudo_loss = fraction = torch.zeros((), device=x_s.device)
    if pseudo_alpha > 0:
        pseudo_loss, fraction = pseudo_label_loss(class_logits[n_s:], threshold)
        loss = loss + pseudo_alpha * pseudo_loss
    loss.backward()
    optimizer.step()
    return {"loss": loss.detach(), "class_loss": class_loss.detach(), "domain_loss": domain_loss.detach(),
            "domain_acc": ((domain_logits.detach() > 0).float() == domains).float().mean(),
            "source_acc": (class_logits[:n_s].detach().argmax(1) == y_s).float().mean(),
            "pseudo_loss": pseudo_loss.detach(), "pseudo_fraction": fraction.detach()}
    ### END SOLUTION

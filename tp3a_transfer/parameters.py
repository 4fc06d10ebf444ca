"""Counting a network's parameters (practical 3-a, question 1).

Student file: write each part between its ``YOUR CODE`` markers. The grader calls these
functions by name, with these signatures.
"""
import torch.nn as nn


def count_parameters(model: nn.Module) -> int:
    """Total number of scalar parameters of ``model`` (trainable or not).

    Args:
        model: any ``nn.Module``, e.g. ``torchvision.models.vgg16()``.
    Returns:
        int: every scalar of every parameter tensor, frozen ones included.
    """
    ### BEGIN SOLUTION
    return sum(p.numel() for p in model.parameters())
    ### END SOLUTION


def parameter_table(model: nn.Module) -> list[tuple[str, tuple, int]]:
    """One row per parameter tensor: ``(name, shape, number of parameters)``.

    Args:
        model: any ``nn.Module``.
    Returns:
        list of ``(str, tuple of int, int)``, in ``model.named_parameters()`` order,
        e.g. ``("features.0.weight", (64, 3, 3, 3), 1728)``.
    """
    ### BEGIN SOLUTION
    return [(name, tuple(p.shape), p.numel()) for name, p in model.named_parameters()]
    ### END SOLUTION


def count_linear_parameters(model: nn.Module) -> int:
    """Number of parameters in the fully-connected (``nn.Linear``) layers of ``model``.

    Args:
        model: any ``nn.Module``.
    Returns:
        int: weights and biases of every ``nn.Linear`` of ``model``.
    """
    ### BEGIN SOLUTION
    return sum(count_parameters(m) for m in model.modules() if isinstance(m, nn.Linear))
    ### END SOLUTION

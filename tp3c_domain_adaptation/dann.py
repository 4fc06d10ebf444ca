"""DANN's building blocks: the gradient reversal layer and its lambda schedule.

Student file: fill in the solution regions. The grader calls these by name. Schedules are
explicit arguments, never state hidden in a layer.
"""
import math

import torch
import torch.nn as nn


class GradientReversalFunction(torch.autograd.Function):
    """Identity in the forward pass; multiplies the gradient by ``-lambd`` backwards."""

    @staticmethod
    def forward(ctx, x: torch.Tensor, lambd: float) -> torch.Tensor:
        """
        Args:
            x: Tensor of any shape, e.g. features (N, 2352).
            lambd: float >= 0, the reversal strength.
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

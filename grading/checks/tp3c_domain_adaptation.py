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

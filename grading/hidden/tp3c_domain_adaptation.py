"""Hidden checks of practical 3-c: only their title and pass/fail reach the student."""
import torch
import torch.nn as nn

from grading.registry import check, expect_close


@check("tp3c.grl_in_network", "in a network, only the layers below the reversal get reversed "
       "gradients", points=1, timeout=30)
def grl_in_network():
    from tp3c_domain_adaptation.dann import GradientReversal

    torch.manual_seed(0)
    below, above = nn.Linear(6, 5), nn.Linear(5, 1)
    x = torch.randn(16, 6)
    lambd = 0.7

    def loss_with(reversal: bool):
        below.zero_grad(), above.zero_grad()
        h = below(x)
        h = GradientReversal()(h, lambd) if reversal else h
        above(torch.relu(h)).pow(2).mean().backward()
        return below.weight.grad.clone(), above.weight.grad.clone()

    plain_below, plain_above = loss_with(False)
    rev_below, rev_above = loss_with(True)
    expect_close(rev_above, plain_above, "gradient of the layer above the reversal (unchanged)")
    expect_close(rev_below, -lambd * plain_below,
                 f"gradient of the layer below the reversal (times -{lambd})", atol=1e-7)

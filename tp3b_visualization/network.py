"""The frozen ImageNet network every experiment differentiates through, and what the
results say about it (which network ran, and the default it stood in for)."""
import copy
from dataclasses import dataclass, replace

import torch

from common.pretrained import load_frozen_or_offline

DEFAULT_MODEL = "squeezenet1_1"


class Bfloat16Network(torch.nn.Module):
    """A frozen network whose weights are stored in bfloat16, between fp32 inputs and outputs:
    gradients with respect to the image flow through it in bfloat16. Autocast would convert
    the weights again at every call (VGG16: 138 million of them, most of the step's time)."""

    def __init__(self, net: torch.nn.Module):
        super().__init__()
        self.net = net.to(torch.bfloat16)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x.to(torch.bfloat16)).float()


@dataclass(frozen=True)
class Network:
    """A loaded network: ``name`` (the one that runs), ``module`` (frozen, on its device),
    its input normalisation ``mean``/``std``, and ``fallback_from``, the default network it
    replaces when that one's weights could not be had."""
    name: str
    module: torch.nn.Module
    mean: tuple
    std: tuple
    fallback_from: str | None = None

    def record(self, quick: bool) -> dict:
        """What a command's JSON result starts with: ``model``, ``fallback_from`` when
        EfficientNet-Lite0 stood in, ``quick`` (the --quick budget)."""
        return {"model": self.name, **({"fallback_from": self.fallback_from} if self.fallback_from else {}),
                "quick": quick}

    def label(self, reduced_by_quick: bool = False) -> str:
        """A figure title's name of the network, with the one it stands in for;
        ``reduced_by_quick``: the figure shows a --quick budget, which the label then says."""
        label = f"{self.name} (standing in for {self.fallback_from})" if self.fallback_from else self.name
        return f"smoke run (--quick), {label}" if reduced_by_quick else label

    def in_precision(self, precision: str) -> "Network":
        """The same network, its weights stored in bfloat16 for ``precision`` bf16."""
        if precision != "bf16":
            return self
        return replace(self, module=Bfloat16Network(copy.deepcopy(self.module)))


def load_network(model: str | None, device: torch.device, *, pretrained: bool = True) -> Network:
    """The frozen ImageNet network ``model`` on ``device``; ``model`` None: the default,
    SqueezeNet 1.1, for which EfficientNet-Lite0 stands in (one warning) when its weights are
    neither cached nor downloadable. A network named here must be had, else a
    :class:`common.pretrained.MissingWeightsError` names the fix."""
    wanted = model or DEFAULT_MODEL
    name, module, mean, std = load_frozen_or_offline(wanted, pretrained, fallback=model is None)
    # channels_last: the layout oneDNN and cuDNN convolve fastest; results change only by rounding.
    module = module.to(device, memory_format=torch.channels_last)
    return Network(name, module, mean, std, fallback_from=wanted if name != wanted else None)


def predict(model, x: torch.Tensor, device, batch: int = 25) -> torch.Tensor:
    """Predicted classes of the normalised images ``x`` (N, 3, H, W) -> (N,)."""
    with torch.no_grad():
        return torch.cat([model(x[i:i + batch].to(device)).argmax(1).cpu() for i in range(0, len(x), batch)])

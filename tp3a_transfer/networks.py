"""The pretrained networks of practical 3-a: where each can be cut, the cut itself, and which
network a command ran (the one asked for, or EfficientNet-Lite0 standing in for it)."""
from dataclasses import dataclass

import torch.nn as nn

from common.errors import UserError
from common.pretrained import OFFLINE_MODEL, load_frozen_or_offline
from tp3a_transfer.features import VGG16_LAYERS, VGG16_POOLS, cut_vgg16

DEFAULT_MODEL = "vgg16"
# Where each network can be cut, and its default ("the penultimate layer").
LAYERS = {"vgg16": VGG16_LAYERS, "alexnet": ("relu7",), "resnet18": ("pool",), "resnet50": ("pool",),
          OFFLINE_MODEL: ("block3", "block4", "block5", "block6", "pool", "logits")}
DEFAULT_LAYER = {"vgg16": "relu7", "alexnet": "relu7", "resnet18": "pool", "resnet50": "pool", OFFLINE_MODEL: "pool"}
NETWORKS = ("vgg16", "alexnet", "resnet18", "resnet50", OFFLINE_MODEL)


@dataclass(frozen=True)
class Network:
    """The network a command runs: ``name``, and ``fallback_from``, the default network it
    stands in for when that one's weights could not be had (None otherwise)."""

    name: str
    fallback_from: str | None = None

    def record(self, quick: bool) -> dict:
        """What a command's JSON result starts with: ``model``, ``fallback_from`` (when
        EfficientNet-Lite0 stood in) and ``quick`` (the --quick budget)."""
        return {"model": self.name, **({"fallback_from": self.fallback_from} if self.fallback_from else {}),
                "quick": quick}

    def label(self, quick: bool = False, reduced: bool = False) -> str:
        """A figure title's name of the network, with the one it stands in for; ``reduced``:
        the command's budget shrinks under --quick, which the label then says."""
        label = f"{self.name} (standing in for {self.fallback_from})" if self.fallback_from else self.name
        return f"smoke run (--quick), {label}" if reduced and quick else label


def load_network(name: str, named: bool, pretrained: bool = True, stand_in: str = "") -> tuple[Network, tuple]:
    """``(the network that ran, (model, mean, std))``: :func:`load_frozen` of ``name``, or,
    when its weights cannot be had and the user did not name it (``named``), EfficientNet-
    Lite0 after a one-line warning (``stand_in``: what replaces what, for the warning)."""
    loaded, model, mean, std = load_frozen_or_offline(name, pretrained, fallback=not named, stand_in=stand_in)
    network = Network(name) if loaded == name else Network(OFFLINE_MODEL, fallback_from=name)
    return network, (model, mean, std)


class EfficientNetCut(nn.Module):
    """EfficientNet-Lite0 up to ``layer``: "blockK" (the K-th stage, average-pooled over
    space), "pool" (the 1280-d penultimate features) or "logits" (1000)."""

    def __init__(self, model: nn.Module, layer: str):
        super().__init__()
        self.model, self.layer = model, layer

    def forward(self, x):
        m = self.model
        if self.layer.startswith("block"):
            h = m.bn1(m.conv_stem(x))
            for block in m.blocks[:int(self.layer[5:]) + 1]:
                h = block(h)
            return h.mean(dim=(2, 3))
        h = m.forward_features(x)
        return m.forward_head(h, pre_logits=self.layer == "pool")


def cut(name: str, model: nn.Module, layer: str) -> nn.Module:
    """The network ``name`` up to ``layer`` (see :data:`LAYERS`)."""
    if name == "vgg16":
        return cut_vgg16(model, layer)
    if name == OFFLINE_MODEL:
        return EfficientNetCut(model, layer)
    if name.startswith("resnet"):
        return nn.Sequential(*list(model.children())[:-1], nn.Flatten())  # up to the average pool
    if name == "alexnet":
        return nn.Sequential(model.features, model.avgpool, nn.Flatten(), model.classifier[:-1])
    raise UserError(f"no cut points known for {name}; choose one of {', '.join(NETWORKS)}")


def check_layer(name: str, layer: str | None) -> str:
    """``layer`` of network ``name`` (its default layer when None), checked."""
    if name not in LAYERS:
        raise UserError(f"--model must be one of {', '.join(NETWORKS)} for features, not {name!r}")
    layer = layer or DEFAULT_LAYER[name]
    if layer not in LAYERS[name]:
        raise UserError(f"{name} has no layer {layer!r}; choose one of {', '.join(LAYERS[name])}")
    return layer


def taps(name: str, model: nn.Module) -> dict:
    """For each layer of :data:`LAYERS`, the module of ``model`` whose output it is and what
    turns that output into one row per image (what :func:`cut` computes up to that layer)."""
    def flat(h):
        return h.flatten(1)

    if name == "vgg16":  # classifier: Linear ReLU Dropout Linear ReLU Dropout Linear
        found = {layer: (model.features[i], flat) for layer, i in VGG16_POOLS.items()}
        found.update(relu6=(model.classifier[1], flat), relu7=(model.classifier[4], flat),
                     fc8=(model.classifier[6], flat))
        return found
    if name == OFFLINE_MODEL:  # EfficientNetCut: blocks average-pooled, timm's pooled features, logits
        found = {layer: (model.blocks[int(layer[5:])], lambda h: h.mean(dim=(2, 3)))
                 for layer in LAYERS[name] if layer.startswith("block")}
        found.update(pool=(model.global_pool, flat), logits=(model.classifier, flat))
        return found
    return {}

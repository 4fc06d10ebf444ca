"""Practical 3-b: what exists so far (the 25 ImageNet images and a real model's predictions)."""
import json

from tests.conftest import require
from tp3b_visualization import main as vis_main


def test_images_with_the_offline_imagenet_model(shared_data, tmp_path, monkeypatch):
    require(shared_data / "imagenet_val_25.npz", "the 25 ImageNet validation images")
    monkeypatch.setenv("RDFIA_DATA_DIR", str(shared_data))
    assert vis_main.main(["images", "--model", "efficientnet_lite0", "--out-dir", str(tmp_path)]) == 0
    result = json.loads((tmp_path / "images_efficientnet_lite0.json").read_text())
    assert result["top1_correct"] == 18 and result["images"] == 25  # measured: 18/25
    assert (tmp_path / "images_efficientnet_lite0.png").stat().st_size > 100_000


def test_missing_course_weights_end_with_one_clear_line(shared_data, tmp_path, monkeypatch,
                                                        no_network, capsys):
    require(shared_data / "imagenet_val_25.npz", "the 25 ImageNet validation images")
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))
    code = vis_main.main(["images", "--data-dir", str(shared_data), "--out-dir", str(tmp_path)])
    err = capsys.readouterr().err.strip().splitlines()[-1]
    assert code == 2 and err.startswith("error: ") and "squeezenet1_1-b8a52dc0.pth" in err
    assert str(tmp_path / "torch" / "hub" / "checkpoints") in err

"""Practical 3-a: what exists so far (the parameter count)."""
import json

from tp3a_transfer import main as transfer_main


def test_params_prints_the_vgg16_count_and_writes_its_table(tmp_path, capsys):
    assert transfer_main.main(["params", "--out-dir", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    assert "138,357,544" in out and "123,642,856  (89.4%)" in out
    result = json.loads((tmp_path / "params_vgg16.json").read_text())
    assert result["total"] == 138_357_544 and len(result["layers"]) == 32
    assert "| features.0.weight | [64, 3, 3, 3] | 1,728 |" in (tmp_path / "params_vgg16.md").read_text()

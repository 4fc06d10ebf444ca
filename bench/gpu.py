"""``python -m bench gpu``: the GPU path in one command. Every practical's quick command
runs on the device (again under bfloat16 autocast where the command offers
``--precision bf16``), then the headline timings: the machine's matmul and VGG16 limits, the
DCGAN, cDCGAN and DANN training steps and class visualization, each with what it makes of
the practical's full default run. About 5 minutes on one GPU; ``--device cpu`` runs the same
on a CPU, slowly, to try the command itself.
"""
import os
import subprocess
import sys
import time

import torch

from bench.limits import matmul, vgg16_forward
from common.results import markdown_table, save_json

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

# (label, main.py and its arguments, whether the command offers --precision bf16)
QUICK_RUNS = [
    ("3-a transfer learning, --quick csweep", ["tp3a_transfer/main.py", "csweep", "--quick"], False),
    ("3-b visualization, --quick all", ["tp3b_visualization/main.py", "all", "--quick"], True),
    ("3-c domain adaptation, --quick all", ["tp3c_domain_adaptation/main.py", "all", "--quick"], False),
    ("3-d DCGAN, --quick", ["tp3d_gan/main.py", "train", "--quick"], True),
    ("3-d cDCGAN, --quick", ["tp3d_gan/main.py", "cgan", "--quick"], True),
]
DCGAN_DEFAULT_ITERATIONS = 2340  # the default run: 5 epochs of MNIST's 60,000 digits at batch 128
DANN_EPOCH_STEPS = 60000 // 64  # one pass over MNIST at batch 64 per domain


def quick_runs(args, device: torch.device, bf16: bool) -> dict:
    """Each practical's quick command, whole (process start and data loading included)."""
    env = {**os.environ, "RDFIA_DATA_DIR": str(args.data_dir)}
    rows = {}
    for label, argv, offers_bf16 in QUICK_RUNS:
        for precision in ["fp32"] + (["bf16"] if offers_bf16 and bf16 else []):
            cmd = [sys.executable, *argv, "--device", device.type,
                   "--out-dir", str(args.out_dir / "gpu" / "runs" / label.split(",")[0].replace(" ", "-"))]
            if precision == "bf16":
                cmd += ["--precision", "bf16"]
            t0 = time.perf_counter()
            done = subprocess.run(cmd, cwd=REPO, env=env, capture_output=True, text=True)
            seconds = time.perf_counter() - t0
            last = (done.stderr.strip().splitlines() or [""])[-1]
            rows[f"{label}{', bf16' if precision == 'bf16' else ''}"] = {
                "seconds": round(seconds, 1),
                "result": "ok" if done.returncode == 0 else f"exit {done.returncode}: {last[:120]}"}
    return rows


def step_timings(args, device: torch.device, bf16: bool) -> dict:
    """The training steps of 3-c and 3-d and 3-b's class visualization, and what they make
    of each default run."""
    from bench.__main__ import project_dann, project_loop
    from bench.plain_classviz import time_classviz

    rows = {}
    precisions = ["fp32"] + (["bf16"] if bf16 else [])
    for precision in precisions:
        r = project_loop(args.data_dir, args.iterations, precision, device=device.type)
        rows[f"DCGAN step, {precision}"] = _per_step(r, DCGAN_DEFAULT_ITERATIONS, "default run (2,340 iterations)")
    for precision in precisions:
        r = project_loop(args.data_dir, max(1, args.iterations // 3), precision, conditional=True,
                         device=device.type)
        rows[f"cDCGAN step, {precision}"] = _per_step(r, DCGAN_DEFAULT_ITERATIONS, "5 epochs (2,340 iterations)")
    r = project_dann(args.data_dir, args.iterations, device=device.type)
    rows["DANN step, fp32"] = _per_step(r, DANN_EPOCH_STEPS, "one epoch (937 steps)")
    out = args.out_dir / "gpu" / "classviz"
    result = time_classviz("vgg16", args.classviz_iterations, device, out, random_weights=True)
    for run, seconds in result["seconds"].items():
        rows[f"class visualization, VGG16, {run}"] = {
            "iterations": result["iterations"], "seconds": round(seconds, 1),
            "ms per step": round(1000 * seconds / result["iterations"], 1)}
    return rows


def _per_step(r: dict, iterations: int, what: str) -> dict:
    ms = 1000 * r["seconds"] / r["iterations"]
    return {"iterations": r["iterations"], "seconds": round(r["seconds"], 1), "ms per step": round(ms, 1),
            "whole default run": f"{what}: {ms * iterations / 1000:.0f} s"}


def device_limits(device: torch.device, bf16: bool) -> dict:
    """Dense matmul and VGG16's forward pass (random weights; batch 64 on a GPU, 8 on a CPU):
    the ceilings the timings above are read against, and 3-a's feature extraction without its
    JPEG decoding."""
    n, batch = (4096, 64) if device.type == "cuda" else (2048, 8)
    rows = {f"matmul fp32 ({n})": {"GFLOP/s": matmul(torch.float32, n, device)["gflops"]}}
    if bf16:
        rows[f"matmul bf16 ({n})"] = {"GFLOP/s": matmul(torch.bfloat16, n, device)["gflops"]}
    for channels_last, use_bf16 in [(False, False), (True, False)] + ([(True, True)] if bf16 else []):
        r = vgg16_forward(batch, channels_last=channels_last, bf16=use_bf16, device=device)
        label = (f"VGG16 forward, batch {batch}" + (", channels_last" if channels_last else "")
                 + (", bf16" if use_bf16 else ""))
        rows[label] = {"images/s": r["images_per_second"], "GFLOP/s": r["gflops"]}
    return rows


def bench_gpu(args) -> dict:
    """Run it all on ``args.device`` and write ``gpu/bench_gpu.{json,md}`` under ``--out-dir``."""
    from common.device import native_bf16, select_device
    from common.errors import UserError

    if args.device == "cuda" and not torch.cuda.is_available():
        raise UserError("bench gpu needs a CUDA GPU, and this machine has none; "
                        "--device cpu runs the same on the CPU (slowly), to try the command")
    device = select_device(args.device)
    bf16 = native_bf16(device)
    name = torch.cuda.get_device_name(device) if device.type == "cuda" else f"CPU, {torch.get_num_threads()} threads"
    started = time.perf_counter()
    sections = {"quick commands": quick_runs(args, device, bf16), "limits": device_limits(device, bf16),
                "training steps": step_timings(args, device, bf16)}
    total = round(time.perf_counter() - started, 1)
    text = [f"device: {name}; bf16 {'native' if bf16 else 'not native: fp32 only'}; total {total} s\n"]
    for title, rows in sections.items():
        columns = sorted({c for r in rows.values() for c in r}, key=lambda c: ["result", "seconds"].index(c)
                         if c in ("result", "seconds") else 2)
        text.append(f"\n{title}\n\n" + markdown_table([""] + columns, [[k] + [r.get(c, "") for c in columns]
                                                                       for k, r in rows.items()]))
    print("".join(text), end="")
    out = args.out_dir / "gpu"
    save_json({"device": name, "bf16": bf16, "total_seconds": total, "torch": torch.__version__,
               **sections}, out / "bench_gpu.json")
    (out / "bench_gpu.md").write_text("".join(text))
    failed = [k for k, r in sections["quick commands"].items() if r["result"] != "ok"]
    if failed:
        raise UserError(f"{len(failed)} quick command(s) failed: {', '.join(failed)} (see {out / 'bench_gpu.md'})")
    return sections

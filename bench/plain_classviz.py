"""Class visualization as usually written in the course's notebook, timed against the
project's loop (``tp3b_visualization.classviz.generate``), in fp32 and, where the hardware
computes it natively, with the frozen network in bfloat16: ``python -m bench classviz``."""
import copy
import random
import time
from dataclasses import replace
from pathlib import Path

import torch

from common.device import native_bf16, seed_everything
from common.results import save_json
from tp3b_visualization.classviz import Ascent, default_lr, generate
from tp3b_visualization.network import Bfloat16Network, load_network
from tp3b_visualization.settings import CLASSES


def plain_class_visualization(target_y, model, mean, std, l2_reg, learning_rate, num_iterations,
                              blur_every, blur_sigma, max_jitter, seed):
    """The loop as usually written in the course's notebook, for timing: img.data updates,
    backward() into img.grad, a per-channel clamp loop and a SciPy blur on NumPy arrays."""
    from scipy.ndimage import gaussian_filter1d

    random.seed(seed)
    device = next(model.parameters()).device
    img = torch.randn(1, 3, 224, 224, device=device).requires_grad_()
    for t in range(num_iterations):
        ox, oy = random.randint(-max_jitter, max_jitter), random.randint(-max_jitter, max_jitter)
        img.data.copy_(torch.roll(img.data, shifts=(oy, ox), dims=(2, 3)))
        score = model(img)[0, target_y] - l2_reg * img.norm() ** 2
        score.backward()
        img.data += learning_rate * img.grad.data
        img.grad.data.zero_()
        img.data.copy_(torch.roll(img.data, shifts=(-oy, -ox), dims=(2, 3)))
        for c in range(3):
            lo, hi = float(-mean[c] / std[c]), float((1.0 - mean[c]) / std[c])
            img.data[:, c].clamp_(min=lo, max=hi)
        if t % blur_every == 0:
            a = img.data.cpu().numpy()
            a = gaussian_filter1d(gaussian_filter1d(a, blur_sigma, axis=2), blur_sigma, axis=3)
            img.data.copy_(torch.from_numpy(a))
    return img.data


def time_classviz(model: str, iterations: int, device: torch.device, out_dir: Path, *,
                  random_weights: bool = False, seed: int = 0) -> dict:
    """Time ``iterations`` of class visualization of the tarantula on network ``model``
    (``random_weights``: no weight file needed; the time does not depend on them): the plain
    loop (default layout, fp32) against the project's loop in fp32 and, where the hardware
    computes it natively, in bf16. Writes and returns ``bench_{model}.json`` in ``out_dir``."""
    seed_everything(seed)
    net = load_network(model, device, pretrained=not random_weights)
    ascent = Ascent(lr=default_lr(net.name), iterations=iterations, seed=seed)
    plain_model = copy.deepcopy(net.module).to(memory_format=torch.contiguous_format)  # the default layout
    runs = {"plain loop": plain_model, "project, fp32": net.module}
    if native_bf16(device):
        runs["project, bf16"] = Bfloat16Network(copy.deepcopy(net.module))
    target = CLASSES["tarantula"]
    timings = {}
    for name, module in runs.items():
        run_net = replace(net, module=module)
        generate(run_net, target, replace(ascent, iterations=3))  # warm-up: allocator, kernels
        start = time.perf_counter()
        if name == "plain loop":
            plain_class_visualization(target, module, net.mean, net.std, ascent.l2_reg, ascent.lr, iterations,
                                      ascent.blur_every, ascent.blur_sigma, ascent.max_jitter, seed)
        else:
            generate(run_net, target, ascent)
        if device.type == "cuda":
            torch.cuda.synchronize()
        timings[name] = time.perf_counter() - start
    ratios = {k: v / timings["plain loop"] for k, v in timings.items() if k != "plain loop"}
    result = {**net.record(quick=False), "weights": "random" if random_weights else "pretrained",
              "device": str(device), "threads": torch.get_num_threads(), "iterations": iterations,
              "seconds": timings, "time vs plain loop": ratios}
    save_json(result, Path(out_dir) / f"bench_{net.name}.json")
    print(f"{net.name} ({result['weights']} weights), {iterations} iterations on {device} "
          f"({result['threads']} threads): " + ", ".join(f"{k} {v:.1f} s" for k, v in timings.items())
          + " (time vs plain loop: " + ", ".join(f"{k} {v:.2f}" for k, v in ratios.items()) + ")")
    return result

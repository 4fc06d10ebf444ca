"""The machine's reference limits, measured in the same run as the benchmarks they judge:
dense matrix multiply (fp32, bfloat16) and dense convolution (VGG16's forward pass, random
weights, batch 8). FLOPs are counted by ``torch.utils.flop_counter`` (a multiply-add is 2)."""
import time

import torch
from torch.utils.flop_counter import FlopCounterMode


def count_flops(fn) -> int:
    """FLOPs of one call of ``fn()``, as torch's own counter sees them (forward and backward
    included when ``fn`` runs both)."""
    with FlopCounterMode(display=False) as counter:
        fn()
    return counter.get_total_flops()


def synchronize(device: torch.device | str = "cpu") -> None:
    """Wait for the work queued on ``device``: a GPU runs asynchronously, so a timer that
    does not wait measures only the launches."""
    if torch.device(device).type == "cuda":
        torch.cuda.synchronize(device)


def timed(fn, min_seconds: float = 2.0, warmup: int = 1, device: torch.device | str = "cpu") -> float:
    """Median seconds of one call of ``fn()``, over at least ``min_seconds`` of calls."""
    for _ in range(warmup):
        fn()
    synchronize(device)
    times = []
    while sum(times) < min_seconds or len(times) < 3:
        t0 = time.perf_counter()
        fn()
        synchronize(device)
        times.append(time.perf_counter() - t0)
    return sorted(times)[len(times) // 2]


def matmul(dtype: torch.dtype, n: int = 2048, device: torch.device | str = "cpu") -> dict:
    a, b = torch.randn(n, n, dtype=dtype, device=device), torch.randn(n, n, dtype=dtype, device=device)
    seconds = timed(lambda: a @ b, device=device)
    return {"gflops": round(2 * n ** 3 / seconds / 1e9, 1), "n": n}


def vgg16_forward(batch: int = 8, channels_last: bool = False, bf16: bool = False,
                  device: torch.device | str = "cpu") -> dict:
    """VGG16 (torchvision's, random weights: only the arithmetic matters) at ``batch``, in the
    default layout or channels_last, in fp32 or under bfloat16 autocast."""
    from torchvision.models import vgg16

    device = torch.device(device)
    layout = torch.channels_last if channels_last else torch.contiguous_format
    model = vgg16(weights=None).eval().to(device, memory_format=layout)
    x = torch.randn(batch, 3, 224, 224, device=device).contiguous(memory_format=layout)

    def forward():
        with torch.inference_mode(), torch.autocast(device.type, dtype=torch.bfloat16, enabled=bf16):
            model(x)

    flops = count_flops(forward)
    seconds = timed(forward, min_seconds=3.0, device=device)
    return {"images_per_second": round(batch / seconds, 2), "gflops": round(flops / seconds / 1e9, 1),
            "gflop_per_image": round(flops / batch / 1e9, 2), "batch": batch}


def limits() -> dict:
    return {"threads": torch.get_num_threads(), "matmul fp32": matmul(torch.float32),
            "matmul bf16": matmul(torch.bfloat16), "vgg16 forward": vgg16_forward(),
            "vgg16 forward channels_last": vgg16_forward(channels_last=True),
            "vgg16 forward channels_last bf16": vgg16_forward(channels_last=True, bf16=True)}

"""Device selection and seeding, done once in each ``main()`` and passed down."""
import logging
import os
import random

import numpy as np
import torch

log = logging.getLogger(__name__)

DEVICE_CHOICES = ("auto", "cpu", "cuda", "mps")


def _mps_available() -> bool:
    mps = getattr(torch.backends, "mps", None)
    return bool(mps is not None and mps.is_available())


def select_device(name: str = "auto") -> torch.device:
    """Return the torch device for ``name``: auto picks CUDA, then Apple MPS, then CPU.

    An explicit ``cuda`` or ``mps`` that is not available raises :class:`UserError`
    rather than silently running somewhere else.
    """
    from common.errors import UserError

    if name not in DEVICE_CHOICES:
        raise UserError(f"unknown device {name!r}; choose one of {', '.join(DEVICE_CHOICES)}")
    if name == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda")
        if _mps_available():
            return torch.device("mps")
        return torch.device("cpu")
    if name == "cuda" and not torch.cuda.is_available():
        raise UserError("--device cuda was asked for but CUDA is not available; use --device auto or cpu")
    if name == "mps" and not _mps_available():
        raise UserError("--device mps was asked for but Apple MPS is not available; use --device auto or cpu")
    return torch.device(name)


def seed_everything(seed: int, deterministic: bool = False) -> None:
    """Seed Python, NumPy and torch (CPU and every CUDA device) with ``seed``.

    With ``deterministic=True`` cuDNN is also made deterministic (slower on a GPU).
    """
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)
    torch.cuda.manual_seed_all(seed)
    os.environ["PYTHONHASHSEED"] = str(seed)
    if deterministic:
        torch.backends.cudnn.deterministic = True
        torch.backends.cudnn.benchmark = False


PRECISION_CHOICES = ("fp32", "bf16")


def native_bf16(device: torch.device) -> bool:
    """Whether ``device`` computes bfloat16 natively: a CUDA GPU that supports it (Ampere and
    later), a CPU with AVX512-BF16 or AMX. Elsewhere bfloat16 is emulated and slower than fp32."""
    if device.type == "cuda":
        return torch.cuda.is_bf16_supported()
    if device.type == "cpu":
        return torch.cpu._is_avx512_bf16_supported() or torch.cpu._is_amx_tile_supported()
    return False


def check_precision(name: str, device: torch.device) -> str:
    """``name`` (``fp32`` or ``bf16``) if ``device`` can run it; bf16 where the hardware only
    emulates it runs, slowly, with a warning."""
    from common.errors import UserError

    if name not in PRECISION_CHOICES:
        raise UserError(f"unknown precision {name!r}; choose one of {', '.join(PRECISION_CHOICES)}")
    if name == "bf16" and device.type not in ("cpu", "cuda"):
        raise UserError(f"--precision bf16 needs a CPU or a CUDA device, not {device.type}; use fp32")
    if name == "bf16" and not native_bf16(device):
        log.warning("this %s has no native bfloat16: --precision bf16 will be slower than fp32", device.type)
    return name


def autocast(device: torch.device, precision: str):
    """Mixed precision for a training or optimisation loop: with ``bf16``, matrix products and
    convolutions run in bfloat16 and the weights, the optimizer and the losses stay in fp32
    (bfloat16 has fp32's range, so no loss scaling is needed); with ``fp32``, nothing changes."""
    return torch.autocast(device.type, dtype=torch.bfloat16, enabled=precision == "bf16")

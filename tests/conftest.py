"""Shared fixtures: the real datasets beside the checkout, and a machine with no network."""
import os
import socket
from pathlib import Path

import pytest

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

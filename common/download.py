"""Downloads of the course's datasets: bounded in time, checked, and atomic.

A dataset missing from the data folder is downloaded, when the machine is online and the
folder writable, from where the course or the dataset's authors publish it
(:data:`RESOURCES`), or from ``$RDFIA_DATA_MIRROR/<file name>`` when that variable is set.
Each file goes to a hidden temporary folder inside the data folder, is checked (its SHA-256
where the real file's hash is known, else the unpacked content: folders and exact image
counts), and only then moved into place with :func:`os.replace`; an interrupted, corrupt or
killed download therefore never leaves anything a later run would take for data. MNIST keeps
torchvision's own download (:func:`torchvision_mnist_download`). Offline machines fail fast
with one clear message, never hang: every socket opened here has a time-out
(:func:`socket_timeout`).
"""
import contextlib
import hashlib
import http.client
import logging
import os
import shutil
import socket
import tempfile
from dataclasses import dataclass
from pathlib import Path
from urllib.request import Request, urlopen

from tqdm.auto import tqdm

from common.errors import DataError

log = logging.getLogger(__name__)

DOWNLOAD_TIMEOUT_S = 15.0
MIRROR_ENV = "RDFIA_DATA_MIRROR"
# Where the course publishes its data files (its pages fetch data/<file> from here).
COURSE_DATA_URL = "https://github.com/rdfia/rdfia.github.io/raw/master/data/"
# The Berkeley Segmentation Dataset's official archive (the course's MNIST-M code uses it).
BSDS500_URL = "http://www.eecs.berkeley.edu/Research/Projects/CS/vision/grouping/BSR/BSR_bsds500.tgz"

# What torchvision and urllib raise when there is no network (DNS failure, refused
# connection, time-out, HTTP error pages from a proxy).
NETWORK_ERRORS = (OSError, RuntimeError, ValueError)

# 15 Scene in the course's split: 100 training images per class, the rest of each class
# (the dataset's published class sizes minus 100) for testing, 2,985 in all.
SCENE15_TEST_COUNTS = {"bedroom": 116, "coast": 260, "forest": 228, "highway": 160,
                       "industrial": 211, "insidecity": 208, "kitchen": 110, "livingroom": 189,
                       "mountain": 274, "office": 115, "opencountry": 310, "store": 215,
                       "street": 192, "suburb": 141, "tallbuilding": 256}
# SHA-256 of the official uncompressed MNIST files, which torchvision unpacks from its .gz.
MNIST_SHA256 = {
    "train-images-idx3-ubyte": "ba891046e6505d7aadcbbe25680a0738ad16aec93bde7f9b65e87a2fc25776db",
    "train-labels-idx1-ubyte": "65a50cbbf4e906d70832878ad85ccda5333a97f0f4c3dd2ef09a8a9eef7101c5",
    "t10k-images-idx3-ubyte": "0fa7898d509279e482958e8ce81c8e77db3f2f8254e26661ceb7762c4d494ce7",
    "t10k-labels-idx1-ubyte": "ff7bcfd416de33731a308c3f266cc351222c34898ecbeaf847f06e48f7ec33f2",
}


@dataclass(frozen=True)
class Resource:
    """One published file and what it becomes in the data folder.

    Attributes:
        name: what messages call it.
        url: where the course or the dataset's authors publish it; its last part is the
            file name looked for on a mirror.
        dest: what it becomes, relative to the data folder (a file, or a folder unpacked
            from the archive).
        sha256: the file's hash, where the real file's hash is known.
        jpeg_counts: for an archive, the exact number of ``*.jpg`` in each folder of
            ``dest`` (relative paths): the check of the unpacked content. None: a single file.
    """
    name: str
    url: str
    dest: str
    sha256: str | None = None
    jpeg_counts: dict[str, int] | None = None

    @property
    def file_name(self) -> str:
        return self.url.rsplit("/", 1)[-1]


RESOURCES = {
    "scene15": Resource("15 Scene", COURSE_DATA_URL + "15SceneData.zip", "15SceneData", jpeg_counts={
        **{f"train/{c}": 100 for c in SCENE15_TEST_COUNTS},
        **{f"test/{c}": n for c, n in SCENE15_TEST_COUNTS.items()}}),
    "imagenet_val_25": Resource(
        "the 25 ImageNet validation images", COURSE_DATA_URL + "imagenet_val_25.npz",
        "imagenet_val_25.npz",
        sha256="35141609d22457c791e8fbe10c2d3b09ed0d6a04b669173e9fbebb0b4915cd3c"),
    "bsds500": Resource("the BSDS500 training photos", BSDS500_URL, "BSR",
                        jpeg_counts={"BSDS500/data/images/train": 200}),
}


class DownloadError(DataError):
    """A dataset is missing and was not downloaded; ``reason`` says why, in a few words, and
    ``corrupt`` whether a file arrived but was wrong (rather than no download being possible)."""

    def __init__(self, message: str, reason: str, corrupt: bool = False):
        super().__init__(message)
        self.reason = reason
        self.corrupt = corrupt


class _Failed(Exception):
    """A download attempt that failed; its message is the one-line reason."""

    def __init__(self, reason: str, corrupt: bool = False):
        super().__init__(reason)
        self.corrupt = corrupt


@contextlib.contextmanager
def socket_timeout(seconds: float = DOWNLOAD_TIMEOUT_S):
    """Give every socket opened inside the block a time-out of ``seconds``."""
    old = socket.getdefaulttimeout()
    socket.setdefaulttimeout(seconds)
    try:
        yield
    finally:
        socket.setdefaulttimeout(old)


def mirror() -> str | None:
    """``$RDFIA_DATA_MIRROR`` without its trailing slash, or None when unset."""
    value = os.environ.get(MIRROR_ENV, "").strip().rstrip("/")
    return value or None


def source_url(resource: Resource) -> str:
    """Where ``resource`` is fetched from: the mirror when one is set, else its publisher."""
    base = mirror()
    return f"{base}/{resource.file_name}" if base else resource.url


def writable(folder: Path) -> bool:
    """Writable, and not marked read-only: a folder without write bits counts as read-only
    even for root, who could write there (shared data folders are protected that way)."""
    return folder.is_dir() and os.access(folder, os.W_OK) and bool(folder.stat().st_mode & 0o222)


def can_create(path: Path) -> bool:
    """Whether ``path`` exists as a writable folder or could be created as one."""
    path = Path(path)
    while not path.exists() and path.parent != path:
        path = path.parent
    return writable(path)


def obtain(resource: Resource, dest: Path, *, download: bool, missing: str, how: str) -> Path:
    """Download ``resource`` to ``dest`` (a path in the data folder) and return ``dest``.

    Args:
        download: False never touches the network.
        missing: what is missing, for the message ("15 Scene train set not found: ...").
        how: how to get the data by hand, for the message.
    Raises:
        DownloadError: nothing was downloaded; its one-line message is ``missing``, why
            (download disabled, read-only folder, offline, corrupt download ...) and ``how``.
    """
    dest = Path(dest)
    corrupt = False
    if not download:
        reason = "download disabled"
    elif dest.exists():  # never overwrite what the user put there
        reason = f"{dest} exists but is incomplete, so no download was tried; move it away to download a fresh copy"
    elif not can_create(dest.parent):
        reason = f"{dest.parent} is read-only, so no download was tried"
    else:
        try:
            return _download(resource, source_url(resource), dest)
        except _Failed as e:
            reason, corrupt = str(e), e.corrupt
        except OSError as e:  # a full disk, a folder that cannot be written after all
            reason = f"could not write the download into {dest.parent}: {_one_line(e)}"
    raise DownloadError(f"{missing} ({reason}); {how}", reason, corrupt)


def _download(resource: Resource, url: str, dest: Path) -> Path:
    dest.parent.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix=f".{resource.file_name}.", suffix=".download", dir=dest.parent))
    try:
        file = work / resource.file_name  # the real name: the unpacker reads the archive type from it
        _fetch(url, file, resource)
        found = file if resource.jpeg_counts is None else _unpack(file, work / "unpacked", url, resource)
        try:
            os.replace(found, dest)
        except OSError:
            if not dest.exists():
                raise
            log.info("%s appeared while downloading it (another process?): kept that one", dest)
        log.info("downloaded %s from %s into %s", resource.name, url, dest)
        return dest
    finally:
        shutil.rmtree(work, ignore_errors=True)


def _fetch(url: str, path: Path, resource: Resource) -> None:
    """Stream ``url`` into ``path`` with a progress bar; _Failed unless all of it came and,
    where the hash is known, it is the real file."""
    digest = hashlib.sha256()
    total = None
    try:
        with socket_timeout(), urlopen(Request(url, headers={"User-Agent": "rdfia-course"})) as response:
            length = response.headers.get("Content-Length")
            total = int(length) if length and length.isdigit() else None
            with open(path, "wb") as f, tqdm(total=total, unit="B", unit_scale=True, unit_divisor=1024,
                                             desc=resource.file_name, leave=False) as bar:
                while chunk := response.read(1 << 16):
                    f.write(chunk)
                    digest.update(chunk)
                    bar.update(len(chunk))
    except (OSError, http.client.HTTPException, ValueError) as e:  # URLError and time-outs are OSErrors
        raise _Failed(f"downloading {url} failed: {_one_line(e)}") from e
    size = path.stat().st_size
    if total is not None and size != total:  # urllib does not complain when a connection is cut
        raise _Failed(f"the download of {url} stopped after {size:,} of {total:,} bytes; nothing "
                      "was kept, run again to retry")
    if resource.sha256 and digest.hexdigest() != resource.sha256:
        raise _Failed(f"{url} sent a file whose SHA-256 is {digest.hexdigest()}, not the "
                      f"{resource.sha256} of {resource.file_name}; it was removed", corrupt=True)


def _unpack(archive: Path, into: Path, url: str, resource: Resource) -> Path:
    """Unpack ``archive`` into ``into``; the folder inside that holds the expected content."""
    from torchvision.datasets.utils import extract_archive  # refuses members escaping `into`

    try:
        extract_archive(archive, into, remove_finished=True)
    except Exception as e:  # zip, tar, gzip and OS errors alike: not a usable archive
        raise _Failed(f"{resource.file_name} from {url} is not a readable archive "
                      f"({_one_line(e)}); it was removed", corrupt=True) from e
    # The folder holding the layout may be the archive's root or a folder inside it.
    candidates = [into] + sorted(p for p in into.glob("*") if p.is_dir())
    candidates += sorted(p for p in into.glob("*/*") if p.is_dir())
    problem = "none of its folders holds " + ", ".join(resource.jpeg_counts)
    for root in candidates:
        if all((root / rel).is_dir() for rel in resource.jpeg_counts):
            problem = _check_jpegs(root, resource.jpeg_counts)
            if problem is None:
                return root
            break
    raise _Failed(f"{resource.file_name} from {url} does not hold {resource.name} ({problem}); "
                  "it was removed", corrupt=True)


def _check_jpegs(root: Path, counts: dict[str, int]) -> str | None:
    """None when each folder of ``counts`` holds exactly that many JPEG files, else what is wrong."""
    for rel, expected in counts.items():
        files = sorted((root / rel).glob("*.jpg"))
        if len(files) != expected:
            return f"{rel} holds {len(files)} *.jpg instead of {expected}"
        for path in files:
            with open(path, "rb") as f:
                if f.read(3) != b"\xff\xd8\xff":
                    return f"{rel}/{path.name} is not a JPEG image"
    return None


def _one_line(e: BaseException) -> str:
    return " ".join(str(e).split()) or type(e).__name__


# --------------------------------------------------------------------------- MNIST


@contextlib.contextmanager
def torchvision_mnist_download(raw: Path):
    """Wrap ``torchvision.datasets.MNIST(root, download=True)`` (files in ``raw``).

    Inside the block: sockets time out (:func:`socket_timeout`), and with
    ``$RDFIA_DATA_MIRROR`` set torchvision's mirrors list is that mirror alone. The MD5 of
    torchvision's .gz files is then not checked, since a mirror may compress the files its
    own way; in every case the unpacked files must match the SHA-256 of the official MNIST
    files. The downloaded .gz files are removed once unpacked.

    Raises:
        DataError: something arrived but is incomplete, corrupt or not MNIST; what arrived
            was removed. A failure before anything arrived (offline) is re-raised as is.
    """
    from torchvision.datasets import MNIST

    base = mirror()
    where = base or " or ".join(MNIST.mirrors)
    retry = f"run again, or check ${MIRROR_ENV}" if base else "run again"
    before = _file_stats(raw)
    saved = MNIST.mirrors, MNIST.resources
    if base:
        MNIST.mirrors = [base + "/"]
        MNIST.resources = [(name, None) for name, _ in saved[1]]
    try:
        with socket_timeout():
            yield
    except Exception as e:
        arrived = _changed_files(raw, before)
        if not arrived:
            raise
        _remove(arrived)
        raise DataError(f"MNIST downloaded from {where} is incomplete or corrupt ({_one_line(e)}); "
                        f"removed {', '.join(p.name for p in arrived)}: {retry}") from e
    finally:
        MNIST.mirrors, MNIST.resources = saved
    arrived = _changed_files(raw, before)
    wrong = [p.name for p in arrived if p.name in MNIST_SHA256 and _sha256(p) != MNIST_SHA256[p.name]]
    _remove(arrived if wrong else [p for p in arrived if p.suffix == ".gz"])
    if wrong:
        raise DataError(f"{', '.join(wrong)} downloaded from {where} differ from the official MNIST "
                        f"files (SHA-256); removed {', '.join(p.name for p in arrived)}: {retry}")


def _file_stats(folder: Path) -> dict[Path, tuple[int, int]]:
    if not folder.is_dir():
        return {}
    return {p: (s.st_size, s.st_mtime_ns) for p in folder.iterdir() if p.is_file() for s in [p.stat()]}


def _changed_files(folder: Path, before: dict[Path, tuple[int, int]]) -> list[Path]:
    return sorted(p for p, stat in _file_stats(folder).items() if before.get(p) != stat)


def _remove(paths) -> None:
    for path in paths:
        Path(path).unlink(missing_ok=True)


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        while chunk := f.read(1 << 20):
            digest.update(chunk)
    return digest.hexdigest()

"""A loopback HTTP server holding copies of the course's files, so that the downloads of
common/download.py can be tested end to end without the internet.

:func:`build_course_files` makes, from the real datasets, the files the course and the
datasets' authors publish (archives built here, so their bytes differ from the published
ones: their checks are content checks, not hashes); :class:`DataServer` serves them and can
cut a file short or replace its bytes, to test interrupted and corrupt downloads.
"""
import gzip
import shutil
import tarfile
import threading
import zipfile
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import unquote, urlparse

MNIST_FILES = ("train-images-idx3-ubyte", "train-labels-idx1-ubyte",
               "t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte")


def zip_folder(folder: Path, archive: Path, keep=lambda path: True) -> Path:
    """``archive``: a zip of ``folder`` (under its own name), stored uncompressed since the
    JPEGs inside do not compress; ``keep(path)`` chooses the files."""
    with zipfile.ZipFile(archive, "w", zipfile.ZIP_STORED) as z:
        for path in sorted(folder.rglob("*")):
            if path.is_file() and keep(path):
                z.write(path, Path(folder.name, path.relative_to(folder)))
    return archive


def build_course_files(shared: Path, out: Path) -> dict[str, Path]:
    """Every file the downloads fetch, by file name, made in ``out`` from the real data in
    ``shared``: 15SceneData.zip, BSR_bsds500.tgz, the four MNIST .gz files and
    imagenet_val_25.npz (the real file itself, whose SHA-256 is known)."""
    out.mkdir(parents=True, exist_ok=True)
    files = {"imagenet_val_25.npz": shared / "imagenet_val_25.npz",
             "15SceneData.zip": zip_folder(shared / "15SceneData", out / "15SceneData.zip")}
    with tarfile.open(out / "BSR_bsds500.tgz", "w:gz", compresslevel=1) as tar:
        tar.add(shared / "BSR", arcname="BSR")
    files["BSR_bsds500.tgz"] = out / "BSR_bsds500.tgz"
    for name in MNIST_FILES:
        target = out / f"{name}.gz"
        with open(shared / "MNIST" / "raw" / name, "rb") as src, gzip.open(target, "wb", compresslevel=1) as dst:
            shutil.copyfileobj(src, dst)
        files[target.name] = target
    return files


class DataServer:
    """An HTTP server on 127.0.0.1 (a free port) serving ``files`` (file name -> path) at
    ``url + "/" + file name``, in a thread; use it as a context manager.

    ``cut[name] = n`` makes the next request for ``name`` announce the whole length but
    send only ``n`` bytes and close the connection; ``replace[name] = b"..."`` serves other
    bytes instead of the file. ``requests`` lists the file names asked for.
    """

    def __init__(self, files: dict[str, Path]):
        self.files = dict(files)
        self.cut: dict[str, int] = {}
        self.replace: dict[str, bytes] = {}
        self.requests: list[str] = []
        self._lock = threading.Lock()
        self._httpd = ThreadingHTTPServer(("127.0.0.1", 0), _handler_for(self))
        self._httpd.daemon_threads = True
        self._thread = threading.Thread(target=self._httpd.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        host, port = self._httpd.server_address[:2]
        return f"http://{host}:{port}"

    def reset(self) -> None:
        """Forget the cuts, replacements and requests of the previous test."""
        with self._lock:
            self.cut.clear()
            self.replace.clear()
            self.requests.clear()

    def __enter__(self) -> "DataServer":
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._httpd.shutdown()
        self._httpd.server_close()
        self._thread.join(timeout=10)

    def _next_response(self, name: str):
        """``(bytes or path, bytes to send or None for all)`` for one request, or None (404)."""
        with self._lock:
            self.requests.append(name)
            if name in self.replace:
                body = self.replace[name]
            elif name in self.files:
                body = self.files[name]
            else:
                return None
            return body, self.cut.pop(name, None)


def _handler_for(server: DataServer):
    class Handler(BaseHTTPRequestHandler):
        def do_GET(self):
            name = unquote(urlparse(self.path).path).lstrip("/")
            found = server._next_response(name)
            if found is None:
                self.send_error(404, f"no file {name!r} here")
                return
            body, cut = found
            size = len(body) if isinstance(body, bytes) else body.stat().st_size
            self.send_response(200)
            self.send_header("Content-Type", "application/octet-stream")
            self.send_header("Content-Length", str(size))
            self.end_headers()
            limit = size if cut is None else cut
            try:
                if isinstance(body, bytes):
                    self.wfile.write(body[:limit])
                else:
                    with open(body, "rb") as f:
                        while limit > 0 and (chunk := f.read(min(1 << 20, limit))):
                            self.wfile.write(chunk)
                            limit -= len(chunk)
                self.wfile.flush()
            except (BrokenPipeError, ConnectionResetError):  # the client went away: its business
                pass
            if cut is not None:
                self.close_connection = True

        def log_message(self, *args):  # keep the test output quiet
            pass

    return Handler

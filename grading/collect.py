"""Collection: what a folder of submissions holds, read as if every hand-in were hostile.

Each entry of the folder is one student's hand-in: a folder, or a ``.zip``. Two entries that
name the same student (a folder and a zip, names that differ only by case, accents written
two ways, or an extension) are one student with two hand-ins, graded neither. From a
hand-in only the files that the release lists are taken (the student files, by path or by
name, ``ANSWERS.md`` and the notebooks), and only if each is a regular file of bounded size:
folders are walked one directory at a time without following any link, archives are read
entry by entry with limits on the number of entries, their sizes and their compression
ratio, and what is taken is written under a folder of the grader's, at a path made of
checked names only. Links, devices, FIFOs and sockets are refused with the reason.
Instructor-only: the student release leaves this module out.
"""
import io
import os
import stat
import struct
import unicodedata
import zipfile
import zlib
from collections import Counter, deque
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath

from grading.check import ANSWERS
from grading.registry import PRACTICALS
from grading.untrusted import NAME_LIMIT, plain

CODE_LIMIT = 2 << 20  # bytes of a student file or of ANSWERS.md
NOTEBOOK_LIMIT = 50 << 20  # bytes of a notebook
HANDIN_LIMIT = 200 << 20  # bytes taken from one hand-in, all files together
ARCHIVE_LIMIT = 500 << 20  # bytes of a .zip
ENTRY_LIMIT = 10_000  # entries of an archive; files and folders of a folder looked at
DEPTH_LIMIT = 16  # folders within folders looked into
RATIO_LIMIT = 100  # inflated size over compressed size of an archive entry...
RATIO_FLOOR = 1 << 20  # ...for entries that inflate beyond this
SKIPPED_FOLDERS = {"__MACOSX", "__pycache__", "node_modules"}  # and every hidden folder
ARCHIVES = (".zip",)
NESTED_LIMIT = 100 << 20  # bytes of a student's own .zip inside a Moodle participant's folder
_KINDS = ((stat.S_ISLNK, "a symbolic link"), (stat.S_ISFIFO, "a FIFO"), (stat.S_ISSOCK, "a socket"),
          (stat.S_ISCHR, "a device"), (stat.S_ISBLK, "a device"))


class Refused(Exception):
    """A whole hand-in that is not read, with the reason."""


def kind(mode: int) -> str:
    """What a file that is not a regular file or a folder is, in words."""
    return next((words for test, words in _KINDS if test(mode)), "not a regular file")


@dataclass
class Handin:
    """One student's hand-in: the entries of the submissions folder that name them, and why
    it cannot be graded (empty when it can)."""
    student: str
    entries: list
    problem: str = ""
    identity: dict = field(default_factory=dict)  # from the LMS: participant_id, full_name


def student_key(name: str) -> str:
    """Who an entry's name designates: without its extension, case or Unicode spelling."""
    return unicodedata.normalize("NFKC", plain(name, NAME_LIMIT, single_line=True)).casefold().strip()


def _display(name: str, is_dir: bool) -> str:
    """The student's name as reports show it: the entry's name, an archive's extension off."""
    if not is_dir:
        stem = os.path.splitext(name)[0]
        name = stem[:-4] if stem.lower().endswith(".tar") else stem
    name = plain(name, NAME_LIMIT, single_line=True).strip()
    return name if name and not name.startswith(".") else "_" + name


def handins(folder: Path) -> list[Handin]:
    """Every non-hidden entry of ``folder``, grouped by student, looked at without following
    links: folders and ``.zip`` files are hand-ins; anything else is a hand-in refused. A
    Moodle "Download all submissions" (its zip, or the folder it unpacks to) is one hand-in
    per participant instead (see :mod:`grading.moodle`)."""
    from grading import moodle

    if not Path(folder).is_dir():
        return moodle.archive_handins(Path(folder))
    download = moodle.download_folder(Path(folder))
    if download is not None:
        return moodle.folder_handins(download)
    groups: dict[str, list[tuple[str, Path, str]]] = {}
    with os.scandir(folder) as it:
        for e in sorted(it, key=lambda e: e.name):
            if e.name.startswith("."):
                continue
            mode = e.stat(follow_symlinks=False).st_mode
            name = _display(e.name, stat.S_ISDIR(mode))
            problem = ""
            if not stat.S_ISDIR(mode) and not (stat.S_ISREG(mode) and e.name.lower().endswith(ARCHIVES)):
                what = "a file" if stat.S_ISREG(mode) else kind(mode)
                problem = f"{plain(e.name, NAME_LIMIT, True)} is {what}, not a folder or a .zip: refused"
            groups.setdefault(student_key(name), []).append((name, Path(folder) / e.name, problem))
    out = []
    for group in groups.values():
        names = ", ".join(plain(p.name, NAME_LIMIT, True) for _, p, _ in group)
        problem = (f"{len(group)} hand-ins for one student ({names}): keep one and grade again"
                   if len(group) > 1 else group[0][2])
        out.append(Handin(group[0][0], [p for _, p, _ in group], problem))
    return out


@dataclass
class Wanted:
    """The files a hand-in may give, by name, with the size each may have; every folder on
    their paths is named too, to say why a file was not found behind a refused link."""
    limits: dict[str, int]
    folders: set[str] = field(default_factory=set)

    @classmethod
    def of(cls, student_files) -> "Wanted":
        limits = {PurePosixPath(f).name: CODE_LIMIT for f in student_files}
        limits[ANSWERS] = CODE_LIMIT
        limits.update({f"{p}.ipynb": NOTEBOOK_LIMIT for p in PRACTICALS})
        folders = {part for f in student_files for part in PurePosixPath(f).parts[:-1]} | {"notebooks"}
        return cls(limits, folders)

    def limit(self, rel: str) -> int | None:
        parts = PurePosixPath(rel).parts
        if any(p.startswith(".") or p in SKIPPED_FOLDERS for p in parts[:-1]):
            return None
        return self.limits.get(parts[-1])

    def named(self, rel: str) -> bool:
        name = PurePosixPath(rel).name
        return name in self.limits or name in self.folders


class Reader:
    """Reads one hand-in's wanted files and gives each to ``emit(rel, data)``; ``refused``
    lists what was not taken and why, ``notes`` what the instructor should know."""

    def __init__(self, wanted: Wanted, emit: Callable[[str, bytes], None]):
        self.wanted, self.emit = wanted, emit
        self.refused: list[str] = []
        self.notes: list[str] = []
        self.taken = 0
        self.nested = False  # whether a .zip at the top of the hand-in is read too (Moodle's folders)
        self._seen: set[str] = set()

    def read(self, entry) -> "Reader":
        """Read a folder or a ``.zip`` (or a hand-in made of parts, such as a Moodle participant's,
        which reads itself through this reader); raise :class:`Refused` when the whole of it is refused."""
        if not isinstance(entry, (str, os.PathLike)):
            entry.read_into(self)
            return self
        fd = _open_nofollow(entry, os.O_RDONLY | os.O_NONBLOCK)
        mode = os.fstat(fd).st_mode
        if stat.S_ISDIR(mode):
            self._folder(fd)
        elif stat.S_ISREG(mode):
            self._archive(fd)
        else:
            os.close(fd)
            raise Refused(f"the hand-in is {kind(mode)}")
        return self

    def refuse(self, rel: str, why: str) -> None:
        line = f"{plain(rel, NAME_LIMIT, True)}: {why}"
        if line not in self.refused:
            self.refused.append(line)

    def take(self, rel: str, data: bytes) -> None:
        if rel in self._seen:  # two parts of one hand-in (a folder and a zip in it) give the same file
            self.refuse(rel, "handed in twice: the first one read is graded")
            return
        self._seen.add(rel)
        if self.taken + len(data) > HANDIN_LIMIT:
            self.refuse(rel, f"the hand-in's files exceed {HANDIN_LIMIT >> 20} MB together")
            return
        self.taken += len(data)
        self.emit(rel, data)

    def _folder(self, top_fd: int) -> None:
        """A breadth-first walk (the files at the top first) that opens each folder and file
        relative to its parent's descriptor, never following a link, and looks at
        ``ENTRY_LIMIT`` entries at most; closes ``top_fd``."""
        queue, seen = deque([()]), 0
        try:
            while queue:
                parts = queue.popleft()
                try:
                    dfd = _open_under(top_fd, parts)
                except OSError as err:
                    self.refuse("/".join(parts), f"unreadable ({err.strerror})")
                    continue
                try:
                    with os.scandir(dfd) as it:
                        entries = sorted(it, key=lambda e: e.name)
                    for e in entries:
                        seen += 1
                        if seen > ENTRY_LIMIT:
                            self.notes.append(f"only the first {ENTRY_LIMIT} files and folders were looked at")
                            return
                        self._folder_entry(e, dfd, parts, queue)
                finally:
                    os.close(dfd)
        finally:
            os.close(top_fd)

    def _folder_entry(self, e: os.DirEntry, dfd: int, parts: tuple, queue: deque) -> None:
        rel = "/".join((*parts, e.name))
        mode = e.stat(follow_symlinks=False).st_mode
        if stat.S_ISDIR(mode):
            if len(parts) < DEPTH_LIMIT and not e.name.startswith(".") and e.name not in SKIPPED_FOLDERS:
                queue.append((*parts, e.name))
            return
        if not stat.S_ISREG(mode):
            if self.wanted.named(rel):
                self.refuse(rel, f"{kind(mode)}, not a regular file")
            return
        nested = self.nested and not parts and e.name.lower().endswith(ARCHIVES)
        limit = NESTED_LIMIT if nested else self.wanted.limit(rel)
        if limit is None:
            return
        try:
            fd = os.open(e.name, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK, dir_fd=dfd)
        except OSError as err:
            self.refuse(rel, f"unreadable ({err.strerror})")
            return
        with os.fdopen(fd, "rb") as f:
            st = os.fstat(f.fileno())
            if not stat.S_ISREG(st.st_mode):
                self.refuse(rel, f"{kind(st.st_mode)}, not a regular file")
            elif st.st_size > limit:
                self.refuse(rel, f"{st.st_size / 2**20:.1f} MB, larger than the {limit >> 20} MB allowed")
            else:
                data = f.read(limit + 1)
                if len(data) > limit:
                    self.refuse(rel, f"larger than the {limit >> 20} MB allowed")
                elif nested:
                    self._nested(rel, data)
                else:
                    self.take(rel, data)

    def _own_zip(self, rel: str) -> bool:
        """Whether ``rel``, at the top of a Moodle participant's folder, is the student's own zip."""
        return self.nested and "/" not in rel and rel.lower().endswith(ARCHIVES)

    def _nested(self, rel: str, data: bytes) -> None:
        """A student's own zip inside a participant's folder: read from memory, one level only."""
        self.nested = False
        try:
            self._zip(io.BytesIO(data), len(data))
        except Refused as e:
            self.refuse(rel, str(e))
        finally:
            self.nested = True

    def _archive(self, fd: int) -> None:
        with os.fdopen(fd, "rb") as f:
            size = os.fstat(f.fileno()).st_size
            if size > ARCHIVE_LIMIT:
                raise Refused(f"the archive is {size / 2**20:.0f} MB, larger than the {ARCHIVE_LIMIT >> 20} MB allowed")
            self._zip(f, size)

    def _zip(self, f, size: int, under: str = "", entry_limit: int = ENTRY_LIMIT) -> None:
        """The entries of the zip ``f``, or only those below the folder ``under`` (their paths
        then relative to it): at most ``ENTRY_LIMIT`` of them are read."""
        declared = _declared_entries(f, size)
        if declared is not None and declared > entry_limit:  # before its directory is read at all
            raise Refused(f"the archive has {declared} entries, more than the {entry_limit} allowed")
        try:
            with zipfile.ZipFile(f) as z:
                infos = z.infolist()
                if len(infos) > entry_limit:
                    raise Refused(f"the archive has {len(infos)} entries, more than the {entry_limit} allowed")
                mine = [(_below(i.filename, under), i) for i in infos if not i.is_dir()]
                mine = [(rel, i) for rel, i in mine if rel != ""]
                if len(mine) > ENTRY_LIMIT:
                    raise Refused(f"the hand-in has {len(mine)} files, more than the {ENTRY_LIMIT} allowed")
                names = Counter(rel for rel, _ in mine)
                for rel, info in mine:
                    self._archive_entry(z, info, names, rel)
        except (zipfile.BadZipFile, zipfile.LargeZipFile, EOFError, ValueError) as e:
            raise Refused(f"not a readable .zip archive ({plain(e, NAME_LIMIT, True)})") from None

    def read_archive_folders(self, archive: Path, folders, size_limit: int, entry_limit: int) -> None:
        """The files below each of ``folders`` in the zip ``archive`` (a class's download), as
        one hand-in; raise :class:`Refused` when the archive cannot be read."""
        fd = _open_nofollow(archive, os.O_RDONLY | os.O_NONBLOCK)
        with os.fdopen(fd, "rb") as f:
            st = os.fstat(f.fileno())
            if not stat.S_ISREG(st.st_mode):
                raise Refused(f"the download is {kind(st.st_mode)}")
            if st.st_size > size_limit:
                raise Refused(f"the download is larger than the {size_limit >> 30} GB allowed")
            for under in folders:
                self._zip(f, st.st_size, under, entry_limit)

    def _archive_entry(self, z: zipfile.ZipFile, info: zipfile.ZipInfo, names: Counter, rel) -> None:
        if rel is None:
            if self.wanted.named(info.filename.replace("\\", "/")):
                self.refuse(info.filename, "a path that leads outside the archive's folder")
            return
        limit = self.wanted.limit(rel)
        mode = info.external_attr >> 16  # the Unix mode, where the archiver recorded one
        if stat.S_IFMT(mode) not in (0, stat.S_IFREG, stat.S_IFDIR):
            if self.wanted.named(rel):
                self.refuse(rel, f"{kind(mode)}, not a regular file")
            return
        if self._own_zip(rel):
            limit = NESTED_LIMIT
        if limit is None:
            return
        if names[rel] > 1:
            self.refuse(rel, f"appears {names[rel]} times in the archive")
        elif info.file_size > limit:
            self.refuse(rel, f"inflates to {info.file_size / 2**20:.1f} MB, more than the {limit >> 20} MB allowed")
        elif info.file_size > RATIO_FLOOR and info.file_size > RATIO_LIMIT * max(info.compress_size, 1):
            self.refuse(rel, f"compressed more than {RATIO_LIMIT} times: refused as an archive bomb")
        else:
            self._inflate(z, info, rel, limit)

    def _inflate(self, z: zipfile.ZipFile, info: zipfile.ZipInfo, rel: str, limit: int) -> None:
        try:
            with z.open(info) as member:
                data = member.read(limit + 1)
        except (zipfile.BadZipFile, RuntimeError, NotImplementedError, EOFError, OSError, zlib.error) as e:
            self.refuse(rel, f"unreadable in the archive ({plain(e, NAME_LIMIT, True)})")
            return
        if len(data) > limit:
            self.refuse(rel, f"inflates to more than the {limit >> 20} MB allowed")
        elif self._own_zip(rel):
            self._nested(rel, data)
        else:
            self.take(rel, data)


def _declared_entries(f, size: int) -> int | None:
    """The number of entries that a zip's end record declares (65535 for a zip64 archive,
    which has at least that many), or None when no end record is found."""
    f.seek(max(0, size - (1 << 16) - 22))
    tail = f.read()
    at = tail.rfind(b"PK\x05\x06")
    f.seek(0)
    if at < 0 or len(tail) < at + 12:
        return None
    return struct.unpack("<H", tail[at + 10:at + 12])[0]


def _open_under(top_fd: int, parts: tuple) -> int:
    """A new descriptor of the folder ``parts`` below ``top_fd``, opened one name at a time
    without following links."""
    fd = os.dup(top_fd)
    for part in parts:
        try:
            child = os.open(part, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW, dir_fd=fd)
        finally:
            os.close(fd)
        fd = child
    return fd


def _open_nofollow(path: Path, flags: int) -> int:
    try:
        return os.open(path, flags | os.O_NOFOLLOW)
    except OSError as e:
        raise Refused(f"the hand-in could not be opened ({e.strerror})") from None


def _entry_path(name: str) -> str | None:
    """An archive entry's path as checked parts joined by ``/``, or None when it is absolute,
    climbs out (``..``), names a drive or holds a NUL."""
    name = name.replace("\\", "/")
    parts = [p for p in name.split("/") if p not in ("", ".")]
    if name.startswith("/") or "\0" in name or not parts or any(p == ".." for p in parts) \
            or (len(parts[0]) == 2 and parts[0][1] == ":"):
        return None
    return "/".join(parts)


def _below(name: str, under: str) -> str | None:
    """An archive entry's checked path relative to the folder ``under`` ("" when it is not
    below it; None when its path is unsafe, see :func:`_entry_path`)."""
    rel = _entry_path(name)
    if not under:
        return rel
    if rel is None:
        return ""  # not one of this hand-in's: the class's archive is looked at folder by folder
    return rel[len(under) + 1:] if rel.startswith(under + "/") else ""


def write_under(root: Path, rel: str, data: bytes) -> None:
    """Write ``data`` at ``root/rel``, creating its folders; ``rel`` is made of checked names,
    and neither a folder nor the file may already exist as a link."""
    path = root
    for part in PurePosixPath(rel).parts[:-1]:
        path = path / part
        try:
            path.mkdir()
        except FileExistsError:
            if path.is_symlink() or not path.is_dir():
                raise
    fd = os.open(path / PurePosixPath(rel).name, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o644)
    with os.fdopen(fd, "wb") as f:
        f.write(data)

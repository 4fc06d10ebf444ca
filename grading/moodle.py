"""Moodle's "Download all submissions" of an assignment, read as one hand-in per participant.

Moodle names each participant's folder ``Full Name_<participant id>_assignsubmission_<plugin>_``
(``file`` for uploaded files, ``onlinetext`` for the text typed in). This follows
``assign::download_submissions`` in Moodle's ``mod/assign/locallib.php``: the prefix is
``clean_filename(str_replace('_', ' ', $groupname . fullname($student)) . '_' .
$this->get_uniqueid_for_user($userid))`` (``Participant`` in place of the name under blind
marking, ``Group-`` before it for team submissions), then ``'_' . $subtype . '_' . $type .
'_'`` and the file's own path below it when the download is "in folders" (Moodle's default
since 3.1). The participant id is the number that the grading worksheet shows as
``Participant NNN``; the full name never holds an underscore, which Moodle made a space.

Each participant's folders (one per plugin) are one student, named ``Full Name_NNN`` in the
reports. Inside them, the student's files are taken as from any hand-in, and a ``.zip`` of
the student's own at the top of a folder is read too (from memory, one level deep). Nothing
is extracted: the downloaded zip is read entry by entry, within the bounds of
:mod:`grading.collect`. Moodle's older flat layout (every file at the top, its name prefixed)
is refused with the reason. Instructor-only: the student release leaves this module out.
"""
import os
import re
import stat
import zipfile
from dataclasses import dataclass
from pathlib import Path

from grading.collect import Handin, Reader, _entry_path, kind
from grading.untrusted import NAME_LIMIT, plain

# The participant's folder: name, id, plugin (Moodle's plugin names: lowercase letters and digits).
FOLDER = re.compile(r"^(?P<name>.*)_(?P<id>\d+)_assignsubmission_(?P<plugin>[a-z][a-z0-9]*)_$")
FLAT = re.compile(r"^(?P<name>.*)_(?P<id>\d+)_assignsubmission_(?P<plugin>[a-z][a-z0-9]*)_.")
DOWNLOAD_LIMIT = 16 << 30  # bytes of a class's downloaded zip
DOWNLOAD_ENTRIES = 500_000  # entries of a class's downloaded zip (each participant: ENTRY_LIMIT)
FLAT_LAYOUT = ("a file of Moodle's flat layout: download the submissions again with "
               "\"Download submissions in folders\" ticked")


@dataclass(frozen=True)
class Participant:
    """One participant's part of a download: their folders, on disk or in the zip ``archive``."""
    participant_id: str
    full_name: str
    folders: tuple
    archive: Path | None = None

    @property
    def name(self) -> str:
        return student_name(self.full_name, self.participant_id)

    def read_into(self, reader: Reader) -> None:
        reader.nested = True
        if self.archive is not None:
            reader.read_archive_folders(self.archive, self.folders, DOWNLOAD_LIMIT, DOWNLOAD_ENTRIES)
        else:
            for folder in self.folders:
                reader.read(folder)


def student_name(full_name: str, participant_id: str) -> str:
    """The student's name in the reports: the full name and the id, which makes it unique."""
    name = plain(f"{full_name}_{participant_id}", NAME_LIMIT, single_line=True).strip()
    return name if not name.startswith(".") else "_" + name


def download_folder(folder: Path) -> Path | None:
    """``folder`` when it holds Moodle participant folders, or its single subfolder when that
    one does (the zip unpacked into a folder of its own); None otherwise."""
    def entries(f: Path):
        with os.scandir(f) as it:
            return [e for e in it if not e.name.startswith(".")]

    def holds_participants(f: Path) -> bool:
        return any(FOLDER.match(e.name) and e.is_dir(follow_symlinks=False) for e in entries(f))

    if holds_participants(folder):
        return folder
    inside = entries(folder)
    if len(inside) == 1 and inside[0].is_dir(follow_symlinks=False) and holds_participants(Path(inside[0].path)):
        return Path(inside[0].path)
    return None


def _handins(tops: dict[str, list], is_folder: dict[str, bool], where) -> list[Handin]:
    """Group the top entries (name: what to read) by participant; refuse the others."""
    by_id: dict[str, tuple[str, list]] = {}
    out = []
    for name in sorted(tops):
        m = FOLDER.match(name)
        if m and is_folder[name]:
            full = by_id.setdefault(m["id"], (m["name"].strip(), []))
            full[1].extend(tops[name])
            continue
        shown = plain(name, NAME_LIMIT, True)
        m = FLAT.match(name)
        why = FLAT_LAYOUT if m else "not a Moodle participant's folder (Full Name_ID_assignsubmission_TYPE_)"
        if not m and not is_folder[name]:
            why = f"{where(name)}, {why}"
        student = student_name(m["name"], m["id"]) if m else ("_" + shown if shown.startswith(".") else shown)
        identity = {"participant_id": m["id"], "full_name": plain(m["name"], NAME_LIMIT, True)} if m else {}
        out.append(Handin(student, tops[name], f"{shown}: {why}: refused", identity))
    seen = {h.student for h in out}
    for pid, (full, parts) in by_id.items():
        p = Participant(pid, plain(full, NAME_LIMIT, True), tuple(parts))
        out.append(Handin(p.name, [p], "", {"participant_id": pid, "full_name": p.full_name, "lms": "moodle"}))
        if p.name in seen:  # a refused flat file of the same participant: one row for both
            out = [h for h in out if not (h.student == p.name and h.problem)]
    return out


def folder_handins(folder: Path) -> list[Handin]:
    """The participants of a download unpacked into ``folder``, one hand-in each."""
    tops: dict[str, list] = {}
    is_folder: dict[str, bool] = {}
    modes = {}
    with os.scandir(folder) as it:
        for e in it:
            if e.name.startswith("."):
                continue
            modes[e.name] = e.stat(follow_symlinks=False).st_mode
            tops[e.name] = [Path(folder) / e.name]
            is_folder[e.name] = stat.S_ISDIR(modes[e.name])
    return _handins(tops, is_folder, lambda n: "a file" if stat.S_ISREG(modes[n]) else kind(modes[n]))


def archive_handins(archive: Path) -> list[Handin]:
    """The participants of a downloaded zip, one hand-in each, read from the zip itself (its
    participant folders at its top, or inside a single folder that holds them all)."""
    try:
        st = os.lstat(archive)
    except OSError as e:
        raise SystemExit(f"{archive}: cannot be read ({e.strerror})") from None
    if not stat.S_ISREG(st.st_mode) or not archive.name.lower().endswith(".zip"):
        raise SystemExit(f"{archive} is not a folder or a Moodle download (.zip)")
    if st.st_size > DOWNLOAD_LIMIT:
        raise SystemExit(f"{archive} is larger than the {DOWNLOAD_LIMIT >> 30} GB allowed")
    try:
        with zipfile.ZipFile(archive) as z:
            infos = z.infolist()
    except (zipfile.BadZipFile, zipfile.LargeZipFile, OSError, ValueError) as e:
        raise SystemExit(f"{archive}: not a readable .zip archive ({plain(e, NAME_LIMIT, True)})") from None
    if len(infos) > DOWNLOAD_ENTRIES:
        raise SystemExit(f"{archive} has {len(infos)} entries, more than the {DOWNLOAD_ENTRIES} allowed")
    paths = [p for p in (_entry_path(i.filename) for i in infos) if p]
    firsts = {p.split("/")[0] for p in paths}
    wrapper = ""
    if len(firsts) == 1 and not any(FOLDER.match(f) for f in firsts):
        wrapper = firsts.pop()
    tops: dict[str, list] = {}
    is_folder: dict[str, bool] = {}
    for p in paths:
        rest = p[len(wrapper) + 1:] if wrapper else p
        if not rest or rest.split("/")[0].startswith(".") or rest.split("/")[0] == "__MACOSX":
            continue
        top = rest.split("/")[0]
        is_folder[top] = is_folder.get(top, False) or "/" in rest
        tops[top] = [f"{wrapper}/{top}" if wrapper else top]
    if not any(FOLDER.match(t) and is_folder[t] for t in tops):
        raise SystemExit(f"{archive} is not a Moodle download: no folder named "
                         "Full Name_ID_assignsubmission_TYPE_ in it")
    handed = _handins(tops, is_folder, lambda n: "a file")
    for h in handed:
        if h.entries and isinstance(h.entries[0], Participant):
            p = h.entries[0]
            h.entries = [Participant(p.participant_id, p.full_name, p.folders, archive)]
    return handed


"""Code similarity across a class: every pair of hand-ins compared on each student file, with
the released stubs left out, so that only what the students wrote can look alike.

The hand-ins are read as grading reads them (:mod:`grading.collect`: folders or zips, no link
followed, within bounds, refusals reported), their student files written into a temporary
folder of this module's under names made of safe characters only, and compared by copydetect
(fingerprints of the tokenized code, comments left out, names and strings abstracted), with
the student version of each file, stubs and all, given to it as boilerplate. Each pair of
students is compared on each file they both handed in, in both directions (the share of A's
own code found in B's, and of B's found in A's); its score is the share of both files' code
together that they have in common (JPlag's average similarity), so that a hand-in of one short
function, which any classmate who wrote that function the same way holds all of, is not
flagged for it. Instructor-only: the student release leaves this module out.
"""
import csv
import logging
import shutil
import tempfile
import warnings
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath

import numpy as np

from common.errors import UserError
from grading.collect import Reader, Refused, Wanted, handins, write_under
from grading.release import REPO, all_regions, strip_instructor, strip_solutions
from grading.untrusted import NAME_LIMIT, csv_cell, plain

log = logging.getLogger(__name__)

# Pairs whose score reaches this are flagged. On the batch of tests/test_grading_similarity.py,
# built from 3-c's dann.py: exact copies score 1.0 and a copy with its names changed and its
# functions reordered 0.86; two solutions written apart (the reference, two students' own)
# 0.27 to 0.36, as each function's first and last tokens sit beside the handout's code, which
# every hand-in shares; a hand-in of one function copied, the rest stubs, 0.34 against the
# reference (0.03 to 0.09 against the others); the stubs alone 0.
THRESHOLD = 0.6
LISTED = 250  # rows of pairs.csv: every flagged pair, and the most similar others up to this many
SHOWN = 100  # pairs whose code the HTML report shows, the most similar of the flagged ones
# The shortest run of tokenized characters that counts as shared (copydetect's default). The
# guarantee threshold is the same, so that every fingerprint is kept: winnowing, which keeps
# the smallest of a window of hashes, would make the scores depend on Python's string hashes,
# which change at each run.
NOISE = 25
CODE_LIMIT = 2 << 20  # characters of a student file compared (collection takes 2 MB at most)
FIELDS = ("student_a", "student_b", "file", "similarity_a_to_b", "similarity_b_to_a", "score", "threshold")
REPORT, PAIRS = "similarity.html", "pairs.csv"


@dataclass(frozen=True)
class Pair:
    """Two students' copies of one file: the share of A's own code (its stubs left out) found
    in B's, of B's found in A's, and the score: the share of both together that is common."""
    student_a: str
    student_b: str
    file: str
    a_to_b: float
    b_to_a: float
    score: float
    index: tuple = field(default=(), compare=False, repr=False)  # the two files' indices in the detector


def student_files(practical: str = "all") -> list[str]:
    """The files students edit (those holding solution regions), of one practical or all."""
    files = list(dict.fromkeys(r.path for r in all_regions(REPO)))
    return [f for f in files if practical == "all" or f.split("/")[0] == practical]


def write_stubs(files: list[str], folder: Path) -> None:
    """The student version of each file (its solution regions made stubs) under ``folder``."""
    for rel in files:
        text = strip_instructor((REPO / rel).read_text(), rel)
        write_under(folder, rel, strip_solutions(text, rel).encode())


def safe_name(name: str, taken: set) -> str:
    """A folder name for a student, of letters, digits, ``-``, ``_`` and ``.`` only (what
    copydetect's report shows unescaped is made of these), unique among ``taken``."""
    base = "".join(ch if ch.isalnum() or ch in "-_." else "_" for ch in plain(name, NAME_LIMIT, True))
    base = base.lstrip(".") or "_"
    name, n = base, 1
    while name.casefold() in taken:
        n += 1
        name = f"{base}_{n}"
    taken.add(name.casefold())
    return name


def collect(submissions: Path, files: list[str], folder: Path, scratch: Path) -> tuple[dict, list[str]]:
    """Each hand-in's student files, as grading takes them, written to ``folder/<safe name>/``;
    return ``({safe name: student}, notes)``, the notes saying what was refused and why."""
    from grading.grade import _find  # where grading looks for a file in what a hand-in gave

    names = {PurePosixPath(rel).name for rel in files}

    def keep(raw: Path):  # the student files only: collection also takes the answers and notebooks
        return lambda rel, data: write_under(raw, rel, data) if PurePosixPath(rel).name in names else None

    students, notes, taken = {}, [], set()
    for i, h in enumerate(handins(submissions)):
        if h.problem:
            notes.append(f"{h.student}: {h.problem}")
            continue
        raw = scratch / str(i)
        raw.mkdir()
        try:
            reader = Reader(Wanted.of(files), keep(raw)).read(h.entries[0])
        except Refused as e:
            notes.append(f"{h.student}: {e}")
            continue
        notes += [f"{h.student}: {line}" for line in reader.refused + reader.notes]
        found = {rel: _find(raw, rel) for rel in files}
        if any(found.values()):
            name = safe_name(h.student, taken)
            students[name] = h.student
            (folder / name).mkdir()
            for rel, path in found.items():
                if path is not None:
                    text = plain(path.read_bytes().decode("utf-8", errors="replace"), CODE_LIMIT)
                    write_under(folder / name, rel, text.encode())
        else:
            notes.append(f"{h.student}: none of the student files was found")
        shutil.rmtree(raw)
    return students, notes


def detector(stubs: Path, shown: dict):
    """copydetect's detector, set to compare each file with the same file of the others only,
    ``stubs`` as boilerplate; its report shows the code of the pairs in ``shown`` (their
    indices in its files) and no other, the order of ``shown`` kept."""
    from copydetect import CopyDetector

    class Detector(CopyDetector):
        def get_copied_code_list(self):
            # copydetect highlights every pair over display_t: only those shown are left in its matrix
            full, self.similarity_matrix = self.similarity_matrix, np.full_like(self.similarity_matrix, -1)
            for i, j in shown:
                self.similarity_matrix[i, j], self.similarity_matrix[j, i] = full[i, j], full[j, i]
            try:
                listed = super().get_copied_code_list()
            finally:
                self.similarity_matrix = full
            index = {path: i for i, path in enumerate(self.test_files)}
            order = {frozenset(pair): n for n, pair in enumerate(shown)}
            return sorted(listed, key=lambda c: order[frozenset((index[c[2]], index[c[3]]))])

    return Detector(boilerplate_dirs=[str(stubs)], extensions=["py"], noise_t=NOISE, guarantee_t=NOISE,
                    display_t=0.0, same_name_only=True, autoopen=False, silent=True, out_file=str(stubs / REPORT))


def compare(detector, folder: Path, students: dict, files: list[str]) -> list[Pair]:
    """Every pair of students' copies of each file under ``folder``, compared by ``detector``,
    the most similar first."""
    where = {}
    for name in sorted(students):
        for rel in files:
            path = folder / name / rel
            if path.is_file():
                detector.add_file(str(path))
                where[str(path)] = (students[name], rel)
    detector.run()
    paths = detector.test_files  # the reference files are the same, in the same order
    coverage = [detector.file_data[p].token_coverage if p in detector.file_data else 0 for p in paths]
    pairs = []
    for i, a in enumerate(paths):
        for j in range(i + 1, len(paths)):
            a_to_b, b_to_a = (float(v) for v in detector.similarity_matrix[i, j])
            if a_to_b < 0:  # -1: not compared (two different files)
                continue
            total = coverage[i] + coverage[j]
            score = (a_to_b * coverage[i] + b_to_a * coverage[j]) / total if total else 0.0
            (student_a, rel), (student_b, _) = where[a], where[paths[j]]
            pairs.append(Pair(student_a, student_b, rel, a_to_b, b_to_a, score, (i, j)))
    return sorted(pairs, key=lambda p: (-p.score, p.file, p.student_a, p.student_b))


def write_pairs(pairs: list[Pair], threshold: float, path: Path) -> None:
    """``pairs.csv``: one row per pair, in the order given, every cell made safe for a spreadsheet."""
    with open(path, "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(FIELDS)
        for p in pairs:
            w.writerow([csv_cell(v) for v in (p.student_a, p.student_b, p.file, f"{p.a_to_b:.3f}",
                                              f"{p.b_to_a:.3f}", f"{p.score:.3f}", f"{threshold:g}")])


def similarity(submissions: Path, out: Path, practical: str = "all", threshold: float = THRESHOLD) -> dict:
    """Compare every pair of hand-ins in ``submissions`` on the student files of ``practical``;
    write ``similarity.html`` (copydetect's report: the flagged pairs' code, side by side) and
    ``pairs.csv`` into ``out``; return the counts and the notes (what collection refused)."""
    from grading.registry import resolve_practical

    files = student_files(practical if practical == "all" else resolve_practical(practical))
    with tempfile.TemporaryDirectory(prefix="rdfia-similarity-") as tmp:
        tmp = Path(tmp)
        for d in ("stubs", "students", "raw"):
            (tmp / d).mkdir()
        write_stubs(files, tmp / "stubs")
        students, notes = collect(Path(submissions), files, tmp / "students", tmp / "raw")
        for note in notes:
            log.warning("%s", note)
        if len(students) < 2:
            raise UserError(f"{submissions}: fewer than two hand-ins hold a student file "
                            f"({', '.join(files)}): nothing to compare")
        shown = {}  # a dict keeps its order
        found = detector(tmp / "stubs", shown)
        pairs = compare(found, tmp / "students", students, files)
        flagged = [p for p in pairs if p.score >= threshold]
        shown.update(dict.fromkeys(p.index for p in flagged[:SHOWN]))
        with warnings.catch_warnings():  # copydetect reads its template with a call Python deprecates
            warnings.simplefilter("ignore", DeprecationWarning)
            html = found.generate_html_report(output_mode="return")
    # The report names the files by their temporary paths: each student's folder is enough.
    html = html.replace(str(tmp / "students") + "/", "").replace(str(tmp) + "/", "")
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    (out / REPORT).write_text(html, encoding="utf-8")
    listed = flagged + [p for p in pairs[len(flagged):LISTED] if p.score > 0]
    write_pairs(listed, threshold, out / PAIRS)
    return {"students": len(students), "pairs": len(pairs), "flagged": len(flagged), "shown": len(shown),
            "listed": len(listed), "notes": notes}

"""Grading a class: a whole folder of submissions, the gradebook and the reports.

The checks of each practical run as one session of two processes, the student's code (a
fresh child per check) apart from the checks' verdicts (see :mod:`grading.runner`). A
submission is graded in a temporary tree made of the student release with the student's
files copied over it (those that collection takes, see :mod:`grading.collect`), so the
reference solution is never importable, and the submission itself is never touched.
Instructor-only: the student release leaves this module out.
"""
import hashlib
import json
import logging
import os
import shutil
import sys
import tempfile
import warnings
from concurrent.futures import ThreadPoolExecutor, as_completed
from contextlib import contextmanager
from pathlib import Path

from tqdm import tqdm

from grading import cluster
from grading import overrides as adjust
from grading.check import ANSWERS, notebook_answers, summary
from grading.collect import Handin, Reader, Refused, Wanted, handins, write_under
from grading.registry import PRACTICALS, Check, by_practical, load_checks, select
from grading.release import REPO, release
from grading.reports import (  # noqa: F401 (the Gradescope fields and writers, also imported from here)
    GRADESCOPE_FIELDS,
    GRADESCOPE_TEST_FIELDS,
    gradescope_results,
    write_gradebook,
    write_reports,
)
from grading.runner import (
    Limits,
    grader_copy,
    isolation_used,
    namespaces_available,
    run_checks,
    undumpable,
)
from grading.untrusted import plain

log = logging.getLogger(__name__)

NO_SANDBOX = ("grade: the sandbox cannot be set up on this machine (no unprivileged user namespaces); "
              "grade with --sandbox off to run the checks with the limits only")


def isolation(limits: Limits) -> str:
    """One line for the logs: what protects the batch from the submissions."""
    common = f"{limits.memory_mb} MB of memory and {limits.output_mb} MB of output per check"
    if limits.sandbox != "off" and namespaces_available():
        return (f"isolation: student code in its own process (the verdict in the grader's), own process "
                f"group and PID namespace, no network, read-only file system outside the student's copy, "
                f"hidden folders (the checks and the classmates' copies included), {common}")
    why = "--sandbox off" if limits.sandbox == "off" else "no user namespaces here"
    return (f"isolation: student code in its own process (the verdict in the grader's), own process "
            f"group, {common}; {why}, so the network is refused inside Python only, "
            f"other folders are NOT hidden and other processes are NOT out of reach")


# ----------------------------------------------------------------------------------------
# Grading a class

def _find(submitted: Path, rel: str) -> Path | None:
    """The student's copy of ``rel``: at its path, else under a single folder around it (a
    zip of a folder), else a unique file of the same name."""
    for pattern in (rel, f"*/{rel}"):
        found = [p for p in submitted.glob(pattern) if p.is_file()]
        if len(found) == 1:
            return found[0]
    same_name = [p for p in submitted.rglob(Path(rel).name) if p.is_file()]
    return same_name[0] if len(same_name) == 1 else None


def assemble(entry: Path, base: Path, student_files: dict, work: Path) -> tuple[Path, list[str], dict, Reader]:
    """Copy the release ``base`` and lay the student's files over it; return (tree, missing,
    answers, reader): the answers to the questions are read from ``ANSWERS.md`` and from the
    answer cells of the notebooks handed in, for the instructor; the reader says what of the
    hand-in was refused. Raises :class:`Refused` when the whole hand-in is."""
    tree, submitted = work / "tree", work / "submitted"
    shutil.copytree(base, tree)
    submitted.mkdir()
    reader = Reader(Wanted.of(student_files), lambda rel, data: write_under(submitted, rel, data)).read(entry)
    missing = []
    for rel in student_files:
        found = _find(submitted, rel)
        if found is None:
            missing.append(rel)
        else:
            shutil.copyfile(found, tree / rel)
    return tree, missing, collect_answers(submitted), reader


ANSWERS_LIMIT = 1 << 20  # characters of answers kept per file
NOTEBOOK_LIMIT = 50 << 20  # bytes of a notebook read for its answer cells


def collect_answers(submitted: Path) -> dict[str, str]:
    """``{file name: Markdown}``: the submission's ``ANSWERS.md``, and the answer cells of each
    notebook handed in (``answers_<notebook>.md``), without control characters."""
    answers = {}
    found = _find(submitted, ANSWERS)
    if found is not None and not found.is_symlink():
        answers[ANSWERS] = plain(found.read_text(errors="replace"), ANSWERS_LIMIT)
    for nb in sorted(submitted.rglob("*.ipynb")):
        if nb.is_file() and not nb.is_symlink() and nb.stat().st_size <= NOTEBOOK_LIMIT \
                and ".ipynb_checkpoints" not in nb.parts:
            try:
                found = notebook_answers(nb)
            except (RecursionError, UnicodeError, AttributeError):  # not the notebook it claims to be
                continue
            if found:
                text = "\n".join(f"## {key}\n\n{answer}\n" for key, answer in found)
                answers[f"answers_{plain(nb.stem, 100, True)}.md"] = plain(text, ANSWERS_LIMIT)
    return answers


IMPORT_TIMEOUT = 30.0  # seconds for a practical's files to import, before any check runs


def _modules(files) -> list[str]:
    return [Path(f).with_suffix("").as_posix().replace("/", ".") for f in files]


def _failed_all(checks: list[Check], status: str, message: str) -> list[dict]:
    return [dict(id=c.id, title=c.title, hidden=c.hidden, practical=c.practical, points=c.points,
                 question=c.question, score=0.0, status=status, where="", message=message) for c in checks]


def _report(student: str, results: list[dict], limits: Limits, missing=(), answers=None, notes=()) -> dict:
    return {"student": student, "isolation": isolation_used(limits), "missing_files": list(missing),
            "notes": list(notes), "results": results, "answers": answers or {}, **summary(results)}


def _unavailable(rel: str, refused: list[str]) -> str:
    """Why a student file is not graded: refused (the reason), or not handed in."""
    name = Path(rel).name
    reasons = [r for r in refused if r.split(":")[0].rsplit("/", 1)[-1] == name
               or any(r.split(":")[0] == part for part in Path(rel).parts[:-1])]
    return f"file refused: {rel} ({'; '.join(reasons)})" if reasons else f"file not submitted: {rel}"


def grade_one(entry: Path, base: Path, grader: Path, checks: list[Check], student_files: dict,
              work: Path, limits: Limits = Limits(), hide=(), scratch: Path | None = None,
              student: str | None = None) -> dict:
    """Grade one submission in ``work`` (a folder of its own, removed afterwards).

    Each practical's files are imported once first, with a short time limit: a file that
    does not import (syntax error, exception, endless loop, exit at import) fails that
    practical's checks at once with the reason, instead of once per check. A practical none
    of whose files was handed in (or taken) is not run: its checks fail with the reason.
    """
    student = student or entry.name
    work.mkdir(parents=True)
    try:
        try:
            tree, missing, answers, reader = assemble(entry, base, student_files, work)
        except (Refused, OSError) as e:
            why = e if isinstance(e, Refused) else f"{type(e).__name__}: {e}"
            return _report(student, _failed_all(checks, "error", f"submission unreadable: {plain(why)}"),
                           limits, notes=[f"submission unreadable: {plain(why)}"])
        results = []
        for practical, mine in by_practical(checks).items():
            files = [f for f in student_files if f.split("/")[0] == practical]
            if files and set(files) <= set(missing):  # nothing of the student's to run: the reason below
                results += _failed_all(mine, "failed", "")
                continue
            results += _grade_practical(practical, mine, files, tree, grader, limits, hide, scratch)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    for r in results:  # a missing file explains a failure better than the stub's message
        lost = [rel for rel in missing if rel.split("/")[0] == r["practical"]]
        if r["status"] != "passed" and lost:
            r["message"] = "; ".join(_unavailable(rel, reader.refused) for rel in lost)
    return _report(student, results, limits, missing, answers, reader.refused + reader.notes)


def _grade_practical(practical: str, checks: list[Check], files: list[str], tree: Path, grader: Path,
                     limits: Limits, hide, scratch) -> list[dict]:
    """One practical's checks, after a probe that imports its files (their failure to import
    fails every check at once, with the reason)."""
    probe = Check(id="import:" + ",".join(_modules(files)), title="import", points=0,
                  practical=practical, hidden=False, timeout=IMPORT_TIMEOUT, module="", name="", func=None)
    imported, *graded = run_checks([probe] + checks, tree, grader, limits=limits, hide=hide, scratch=scratch)
    if imported["status"] == "passed":
        return graded
    where = f" ({imported['where']})" if imported["where"] else ""
    reason = (f"importing your files did not finish within {IMPORT_TIMEOUT:g} s"
              if imported["status"] == "timeout"
              else f"importing your files failed: {imported['message']}{where}")
    return _failed_all(checks, "failed", reason)


def fingerprint(entry: Path, grader_digest: str, student_files=()) -> str | None:
    """What a grade depends on: the files taken from the submission (read as grading reads
    them), and the grader and checks used; None when the hand-in is refused as a whole."""
    h = hashlib.sha256(grader_digest.encode())

    def emit(rel: str, data: bytes) -> None:
        h.update(rel.encode("utf-8", "surrogateescape") + b"\0" + hashlib.sha256(data).digest())

    try:
        reader = Reader(Wanted.of(student_files), emit).read(entry)
    except (Refused, OSError):
        return None
    h.update("\n".join(reader.refused + reader.notes).encode("utf-8", "surrogateescape"))
    return h.hexdigest()


def _digest(paths, root: Path, extra: str = "") -> str:
    h = hashlib.sha256(extra.encode())
    for f in sorted(paths):
        h.update(f.relative_to(root).as_posix().encode() + b"\0" + f.read_bytes())
    return h.hexdigest()


def _previous(out: Path, student: str, print_: str | None) -> dict | None:
    if print_ is None:
        return None
    try:
        report = json.loads((out / "students" / student / "report.json").read_text())
    except (OSError, ValueError):
        return None
    return report if report.get("fingerprint") == print_ else None


@contextmanager
def _private_process():
    """The batch's own process not dumpable while it runs (see :func:`grading.runner.undumpable`)."""
    before = undumpable(0)
    try:
        yield
    finally:
        if before:
            undumpable(before)


def _select_checks(target: str, only) -> list[Check]:
    checks = select(target, include_hidden=True)
    if only:
        unknown = sorted(set(only) - {c.id for c in checks})
        if unknown:
            raise SystemExit(f"unknown check(s): {', '.join(unknown)}")
        checks = [c for c in checks if c.id in only]
    return checks


def grade(submissions: Path, out: Path, target: str = "all", workers: int = 1, limits: Limits = Limits(),
          only: list[str] | None = None, regrade: bool | list[str] = False,
          nbgrader_db: Path | None = None, assignment: str | None = None,
          shard: tuple[int, int] | None = None, merge: bool = False) -> list[dict]:
    """Grade every submission in ``submissions`` (a folder, or Moodle's downloaded zip); write
    the gradebook and the reports.

    Each student's reports are written as soon as that student is graded, with a
    fingerprint of the submission and of the grader: a batch run again (after an
    interruption, or with new submissions) regrades only the students whose fingerprint
    changed, unless ``regrade`` (True: everyone; a list: those students). Every check runs
    on one thread, whatever ``workers`` is, so that scores do not depend on how the batch
    was split. A student with two hand-ins, or a hand-in that is not a folder or a zip, gets
    one row saying so, graded neither. With ``limits.sandbox == "on"``, a machine that cannot
    set up the sandbox stops the batch before anything runs. With ``nbgrader_db``, the
    scores also go into that nbgrader gradebook database as the assignment ``assignment``
    (default: the practical's name, or "rdfia"). The instructor's overrides
    (``out/overrides.csv``, see :mod:`grading.overrides`) are read before anything is graded
    and applied to every report, kept or graded again, before it is written.
    With ``shard=(K, N)``, only the K-th of N slices of the students is graded and no
    gradebook is written; with ``merge``, nothing is graded: every student must already
    have a report of this submission and grader, else a :class:`UserError` names those who
    do not, before anything is written (see :mod:`grading.cluster`).
    """
    if limits.sandbox == "on" and not namespaces_available():
        raise SystemExit(NO_SANDBOX)
    submissions, out = Path(submissions).resolve(), Path(out).resolve()
    handed = handins(submissions)
    if not handed:
        raise SystemExit(f"no submissions (folders or .zip files) in {submissions}")
    if not submissions.is_dir() and limits.sandbox == "on" and _holds_the_batch(submissions.parent):
        raise SystemExit(f"grade: move {submissions.name} into a folder of its own: that folder is hidden from "
                         f"the students' code, and {submissions.parent} holds what the checks need")
    if isinstance(regrade, list):
        unknown = sorted(set(regrade) - {h.student for h in handed})
        if unknown:
            raise SystemExit(f"no submission for {', '.join(unknown)} in {submissions}")
    checks = _select_checks(target, only)
    overrides = adjust.resolve(adjust.read(out / adjust.FILE), [h.student for h in handed], load_checks(),
                               out / adjust.FILE)
    if shard is not None:
        handed = cluster.shard_of(handed, *shard)
        log.info("shard %d/%d: %d students", *shard, len(handed))
    out.mkdir(parents=True, exist_ok=True)
    log.info(isolation(limits))
    with _private_process(), tempfile.TemporaryDirectory(prefix="rdfia-batch-") as tmp:
        reports = _grade_batch(Path(tmp), handed, submissions, out, checks, workers, limits, regrade, overrides,
                               merge)
    if shard is not None:  # the class's files are the merge's, written once
        return sorted(reports, key=lambda r: r["student"])
    write_gradebook(reports, checks, out / "gradebook.csv")
    if nbgrader_db is not None:
        write_nbgrader(reports, checks, nbgrader_db, assignment or ("rdfia" if target == "all" else target))
    return sorted(reports, key=lambda r: r["student"])


def _holds_the_batch(folder: Path) -> bool:
    """Whether hiding ``folder`` would hide what a check needs: the batch's temporary folder or Python."""
    needs = [Path(tempfile.gettempdir()).resolve(), Path(sys.executable).resolve(), Path(sys.prefix).resolve()]
    return any(folder == n or folder in n.parents for n in needs)


def _prepare(tmp: Path, checks: list[Check], limits: Limits) -> tuple[Path, Path, dict, str]:
    """The batch's student release and grader copy in ``tmp``, the student files of the
    practicals graded, and the digest of everything a grade depends on but the submission."""
    base = tmp / "release"
    manifest = release(base)
    grader = grader_copy(tmp / "grader")
    graded = {c.practical for c in checks}
    student_files = {f: v for f, v in manifest["student_files"].items() if f.split("/")[0] in graded}
    grader_files = [p for p in tmp.rglob("*") if p.is_file() and "__pycache__" not in p.parts]
    return base, grader, student_files, _digest(grader_files, tmp, ",".join(c.id for c in checks) + repr(limits))


def _grade_batch(tmp: Path, handed: list[Handin], submissions: Path, out: Path, checks: list[Check],
                 workers: int, limits: Limits, regrade, overrides=(), merge: bool = False) -> list[dict]:
    """Grade the hand-ins in the batch's folder ``tmp``: each report is written as it comes,
    with the ``overrides`` applied; a report kept from an earlier run is written again with them.
    With ``merge``, a readable hand-in without such a report stops the batch before any write."""

    def write(report: dict) -> None:
        adjust.apply_all([report], overrides)
        write_reports(report, out)

    base, grader, student_files, grader_digest = _prepare(tmp, checks, limits)
    # Hidden from every student's process: the submissions, the reports, the reference
    # solution with its tests, the release it was assembled from, and every working copy
    # and check folder of the batch (each check sees its own through its view).
    hide = ([submissions if submissions.is_dir() else submissions.parent, out]
            + [REPO / p for p in (*PRACTICALS, "grading", "tests")] + [tmp / p for p in ("release", "work", "checks")])
    reports, todo = [], []
    for i, h in enumerate(handed):
        if h.problem:  # two hand-ins, or not a hand-in at all: the instructor decides
            reports.append(_report(h.student, _failed_all(checks, "error", h.problem), limits, notes=[h.problem])
                           | h.identity)
            continue
        print_ = fingerprint(h.entries[0], grader_digest, student_files)
        again = regrade is True or (isinstance(regrade, list) and h.student in regrade)
        done = None if again else _previous(out, h.student, print_)
        if done:
            reports.append(done)
        else:
            todo.append((i, h, print_))
    if merge:  # an unreadable hand-in (no fingerprint) only gets its error row again: nothing runs
        cluster.refuse_ungraded([h.student for _, h, print_ in todo if print_ is not None], out)
    for report in reports:
        write(report)
    kept = sum("fingerprint" in r for r in reports)
    if kept:
        log.info("%d of %d students already graded with the same submission and grader: kept "
                 "(--regrade grades them again)", kept, len(handed))
    for d in ("work", "checks", "views"):
        (tmp / d).mkdir()
    with ThreadPoolExecutor(max_workers=workers) as pool:
        jobs = {pool.submit(grade_one, h.entries[0], base, grader, checks, student_files,
                            tmp / "work" / str(i), limits, hide, tmp, h.student): (h, print_)
                for i, h, print_ in todo}
        for job in tqdm(as_completed(jobs), total=len(jobs), desc="students", unit="student"):
            h, print_ = jobs[job]
            try:
                report = job.result()
                if print_ is not None:
                    report["fingerprint"] = print_
                report.update(h.identity)  # the LMS's ids (a Moodle participant's), for the export
            except Exception as e:  # a bug of the grader: this student's row says so, the batch goes on
                log.exception("grading %s failed", h.student)
                message = plain(f"the grader failed on this submission ({type(e).__name__}: {e}); tell your instructor")
                # no fingerprint: the next run of the batch grades this student again
                report = _report(h.student, _failed_all(checks, "error", message), limits, notes=[message]) | h.identity
            write(report)
            reports.append(report)
    return reports


def write_nbgrader(reports: list[dict], checks: list[Check], db: Path, assignment: str,
                   course: str = "default_course") -> None:
    """Write the scores into an nbgrader gradebook database (``gradebook.db`` of a course),
    through nbgrader's own API: one nbgrader *notebook* per practical, one *grade cell* per
    check (its points as the maximum), each student's check scores as automatic scores
    (partial credit included), an overridden check's score as its manual score and an
    override of the total as extra credit on the student's first check, so that nbgrader's
    total is the report's. Running it again updates the same entries (re-grading replaces,
    never duplicates).
    """
    from nbgrader.api import Grade, Gradebook, MissingEntry, SubmittedNotebook

    def grade_of(gb, check_id: str, practical: str, student: str):
        try:
            return gb.find_grade(check_id, practical, assignment, student)
        except MissingEntry:  # a practical or check first graded after this submission was recorded
            cell = gb.find_grade_cell(check_id, practical, assignment)
            try:
                notebook = gb.find_submission_notebook(practical, assignment, student)
            except MissingEntry:
                parts = gb.find_notebook(practical, assignment), gb.find_submission(assignment, student)
                with gb.db.no_autoflush:
                    notebook = SubmittedNotebook(notebook=parts[0], assignment=parts[1])
                    gb.db.add(notebook)
            with gb.db.no_autoflush:
                grade = Grade(cell_id=cell.id, notebook=notebook)
                gb.db.add(grade)
            return grade

    # nbgrader creates a new database with the ``alembic`` command: find it beside this Python
    # even when its environment is not activated (``.venv/bin/python -m grading grade``).
    bin_dir = str(Path(sys.executable).parent)
    if bin_dir not in os.environ.get("PATH", "").split(os.pathsep):
        os.environ["PATH"] = bin_dir + os.pathsep + os.environ.get("PATH", "")
    # nbgrader's own add_submission builds objects before adding them to its session, which
    # SQLAlchemy 2 reports as a warning on every new submission: not ours to fix, silenced.
    with warnings.catch_warnings(), Gradebook(f"sqlite:///{Path(db).resolve()}", course_id=course) as gb:
        warnings.filterwarnings("ignore", message=".*not in session.*", module="nbgrader")
        gb.update_or_create_assignment(assignment)
        for c in checks:
            gb.update_or_create_notebook(c.practical, assignment)
            gb.update_or_create_grade_cell(c.id, c.practical, assignment, max_score=c.points,
                                           cell_type="code")
        for rep in reports:
            gb.update_or_create_student(rep["student"])
            gb.update_or_create_submission(assignment, rep["student"])
            # nbgrader's own places: the automatic score, an instructor's check override as its
            # manual score (which nbgrader counts instead), a total override as extra credit.
            checks_total = sum(r["score"] for r in rep["results"])
            extra = round(rep.get("score", checks_total) - checks_total, 6)
            for i, r in enumerate(rep["results"]):
                grade = grade_of(gb, r["id"], r["practical"], rep["student"])
                grade.auto_score = r.get("auto_score", r["score"])
                grade.manual_score = r["score"] if r.get("overrides") else None
                grade.extra_credit = extra if i == 0 and extra else None
            gb.db.commit()

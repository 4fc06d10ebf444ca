"""Grading a class: a whole folder of submissions, the gradebook and the reports.

The checks of each practical run as one session of two processes, the student's code (a
fresh child per check) apart from the checks' verdicts (see :mod:`grading.runner`). A
submission is graded in a temporary tree made of the student release with the student's
files copied over it, so the reference solution is never importable, and the submission
itself is never touched. Instructor-only: the student release leaves this module out.
"""
import csv
import hashlib
import json
import logging
import os
import shutil
import sys
import tempfile
import warnings
import zipfile
from concurrent.futures import ThreadPoolExecutor, as_completed
from pathlib import Path

from tqdm import tqdm

from grading.check import ANSWERS, notebook_answers, summary
from grading.registry import PRACTICALS, Check, by_practical, select
from grading.release import REPO, release
from grading.runner import Limits, grader_copy, namespaces_available, run_checks

log = logging.getLogger(__name__)


def isolation(limits: Limits) -> str:
    """One line for the logs: what protects the batch from the submissions."""
    common = f"{limits.memory_mb} MB of memory and {limits.output_mb} MB of output per check"
    if limits.sandbox != "off" and namespaces_available():
        return (f"isolation: student code in its own process (the verdict in the grader's), own process "
                f"group and PID namespace, no network, read-only file system outside the student's copy, "
                f"hidden folders (the checks and the classmates' copies included), {common}")
    return (f"isolation: student code in its own process (the verdict in the grader's), own process "
            f"group, {common}; no user namespaces here, so the network is refused inside Python only, "
            f"other folders are NOT hidden and other processes are NOT out of reach")


# ----------------------------------------------------------------------------------------
# Grading a class

def _submissions(folder: Path) -> list[Path]:
    entries = [p for p in sorted(folder.iterdir())
               if (p.is_dir() or p.suffix == ".zip") and not p.name.startswith(".")]
    if not entries:
        raise SystemExit(f"no submissions (folders or .zip files) in {folder}")
    return entries


def _unpack(entry: Path, dest: Path) -> Path:
    """A readable copy of a submission: folders are read in place, zips extracted safely."""
    if entry.is_dir():
        return entry
    target = dest / "unzipped"
    with zipfile.ZipFile(entry) as z:
        for info in z.infolist():
            path = Path(info.filename)
            if path.is_absolute() or ".." in path.parts:
                continue  # never write outside the extraction folder
            z.extract(info, target)
    children = [c for c in target.iterdir() if not c.name.startswith("__MACOSX")]
    return children[0] if len(children) == 1 and children[0].is_dir() else target


def _find(submitted: Path, rel: str) -> Path | None:
    """The student's copy of ``rel``: at its path, else a unique file of the same name."""
    exact = submitted / rel
    if exact.is_file():
        return exact
    same_name = [p for p in submitted.rglob(Path(rel).name) if p.is_file()]
    return same_name[0] if len(same_name) == 1 else None


def assemble(entry: Path, base: Path, student_files: dict, work: Path) -> tuple[Path, list[str], dict]:
    """Copy the release ``base`` and lay the student's files over it; return (tree, missing,
    answers): the answers to the questions are read from ``ANSWERS.md`` and from the answer
    cells of the notebooks handed in, for the instructor."""
    tree = work / "tree"
    shutil.copytree(base, tree)
    submitted = _unpack(entry, work)
    missing = []
    for rel in student_files:
        found = _find(submitted, rel)
        if found is None:
            missing.append(rel)
        else:
            shutil.copyfile(found, tree / rel)
    return tree, missing, collect_answers(submitted)


ANSWERS_LIMIT = 1 << 20  # characters of answers kept per file
NOTEBOOK_LIMIT = 50 << 20  # bytes of a notebook read for its answer cells


def collect_answers(submitted: Path) -> dict[str, str]:
    """``{file name: Markdown}``: the submission's ``ANSWERS.md``, and the answer cells of each
    notebook handed in (``answers_<notebook>.md``)."""
    answers = {}
    found = _find(submitted, ANSWERS)
    if found is not None and not found.is_symlink():
        answers[ANSWERS] = found.read_text(errors="replace")[:ANSWERS_LIMIT]
    for nb in sorted(submitted.rglob("*.ipynb")):
        if nb.is_file() and not nb.is_symlink() and nb.stat().st_size <= NOTEBOOK_LIMIT \
                and ".ipynb_checkpoints" not in nb.parts:
            found = notebook_answers(nb)
            if found:
                text = "\n".join(f"## {key}\n\n{answer}\n" for key, answer in found)
                answers[f"answers_{nb.stem}.md"] = text[:ANSWERS_LIMIT]
    return answers


IMPORT_TIMEOUT = 30.0  # seconds for a practical's files to import, before any check runs


def _modules(files) -> list[str]:
    return [Path(f).with_suffix("").as_posix().replace("/", ".") for f in files]


def _failed_all(checks: list[Check], status: str, message: str) -> list[dict]:
    return [dict(id=c.id, title=c.title, hidden=c.hidden, practical=c.practical, points=c.points,
                 question=c.question, score=0.0, status=status, where="", message=message) for c in checks]


def grade_one(entry: Path, base: Path, grader: Path, checks: list[Check], student_files: dict,
              work: Path, limits: Limits = Limits(), hide=(), scratch: Path | None = None) -> dict:
    """Grade one submission in ``work`` (a folder of its own, removed afterwards).

    Each practical's files are imported once first, with a short time limit: a file that
    does not import (syntax error, exception, endless loop, exit at import) fails that
    practical's checks at once with the reason, instead of once per check.
    """
    student = student_name(entry)
    work.mkdir(parents=True)
    try:
        try:
            tree, missing, answers = assemble(entry, base, student_files, work)
        except (zipfile.BadZipFile, OSError) as e:
            results = _failed_all(checks, "error", f"submission unreadable: {e}")
            return {"student": student, "missing_files": [], "results": results, "answers": {},
                    **summary(results)}
        results = []
        for practical, mine in by_practical(checks).items():
            files = [f for f in student_files if f.split("/")[0] == practical]
            probe = Check(id="import:" + ",".join(_modules(files)), title="import", points=0,
                          practical=practical, hidden=False, timeout=IMPORT_TIMEOUT, module="", name="",
                          func=None)
            imported, *graded = run_checks([probe] + mine, tree, grader, limits=limits, hide=hide, scratch=scratch)
            if imported["status"] == "passed":
                results += graded
                continue
            where = f" ({imported['where']})" if imported["where"] else ""
            reason = (f"importing your files did not finish within {IMPORT_TIMEOUT:g} s"
                      if imported["status"] == "timeout"
                      else f"importing your files failed: {imported['message']}{where}")
            results += _failed_all(mine, "failed", reason)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    for r in results:  # a missing file explains a failure better than the stub's message
        for rel in missing:
            if r["status"] != "passed" and rel.split("/")[0] == r["practical"]:
                r["message"] = f"file not submitted: {rel}"
    return {"student": student, "missing_files": missing, "results": results, "answers": answers,
            **summary(results)}


def _digest(paths, root: Path, extra: str = "") -> str:
    h = hashlib.sha256(extra.encode())
    for f in sorted(paths):
        h.update(f.relative_to(root).as_posix().encode() + b"\0" + f.read_bytes())
    return h.hexdigest()


def fingerprint(entry: Path, grader_digest: str) -> str:
    """What a grade depends on: the submission's bytes, and the grader and checks used."""
    files = [entry] if entry.is_file() else [p for p in entry.rglob("*") if p.is_file()]
    return _digest(files, entry.parent, grader_digest)


def _previous(out: Path, student: str, print_: str) -> dict | None:
    try:
        report = json.loads((out / "students" / student / "report.json").read_text())
    except (OSError, ValueError):
        return None
    return report if report.get("fingerprint") == print_ else None


def student_name(entry: Path) -> str:
    return entry.stem if entry.suffix == ".zip" else entry.name


def grade(submissions: Path, out: Path, target: str = "all", workers: int = 1, limits: Limits = Limits(),
          only: list[str] | None = None, regrade: bool | list[str] = False,
          nbgrader_db: Path | None = None, assignment: str | None = None) -> list[dict]:
    """Grade every submission in ``submissions``; write the gradebook and the reports.

    Each student's reports are written as soon as that student is graded, with a
    fingerprint of the submission and of the grader: a batch run again (after an
    interruption, or with new submissions) regrades only the students whose fingerprint
    changed, unless ``regrade`` (True: everyone; a list: those students). Every check runs
    on one thread, whatever ``workers`` is, so that scores do not depend on how the batch
    was split. With ``nbgrader_db``, the scores also go into that nbgrader gradebook
    database as the assignment ``assignment`` (default: the practical's name, or "rdfia").
    """
    submissions, out = Path(submissions).resolve(), Path(out).resolve()
    entries = _submissions(submissions)
    if isinstance(regrade, list):
        unknown = sorted(set(regrade) - {student_name(e) for e in entries})
        if unknown:
            raise SystemExit(f"no submission for {', '.join(unknown)} in {submissions}")
    checks = select(target, include_hidden=True)
    if only:
        unknown = sorted(set(only) - {c.id for c in checks})
        if unknown:
            raise SystemExit(f"unknown check(s): {', '.join(unknown)}")
        checks = [c for c in checks if c.id in only]
    out.mkdir(parents=True, exist_ok=True)
    log.info(isolation(limits))
    with tempfile.TemporaryDirectory(prefix="rdfia-batch-") as tmp:
        tmp = Path(tmp)
        base = tmp / "release"
        manifest = release(base)
        grader = grader_copy(tmp / "grader")
        graded = {c.practical for c in checks}
        student_files = {f: v for f, v in manifest["student_files"].items()
                         if f.split("/")[0] in graded}
        grader_files = [p for p in tmp.rglob("*") if p.is_file() and "__pycache__" not in p.parts]
        grader_digest = _digest(grader_files, tmp, ",".join(c.id for c in checks) + repr(limits))
        # Hidden from every student's process: the submissions, the reports, the reference
        # solution with its tests, the release it was assembled from, and every working copy
        # and check folder of the batch (each check sees its own through its view).
        hide = ([submissions, out] + [REPO / p for p in (*PRACTICALS, "grading", "tests")]
                + [tmp / p for p in ("release", "work", "checks")])
        reports, todo = [], []
        for i, entry in enumerate(entries):
            print_ = fingerprint(entry, grader_digest)
            again = regrade is True or (isinstance(regrade, list) and student_name(entry) in regrade)
            done = None if again else _previous(out, student_name(entry), print_)
            if done:
                reports.append(done)
            else:
                todo.append((i, entry, print_))
        if reports:
            log.info("%d of %d students already graded with the same submission and grader: kept "
                     "(--regrade grades them again)", len(reports), len(entries))
        for d in ("work", "checks", "views"):
            (tmp / d).mkdir()
        with ThreadPoolExecutor(max_workers=workers) as pool:
            jobs = {pool.submit(grade_one, entry, base, grader, checks, student_files,
                                tmp / "work" / str(i), limits, hide, tmp): (entry, print_)
                    for i, entry, print_ in todo}
            for job in tqdm(as_completed(jobs), total=len(jobs), desc="students", unit="student"):
                entry, print_ = jobs[job]
                try:
                    report = job.result()
                    report["fingerprint"] = print_
                except Exception as e:  # a bug of the grader: this student's row says so, the batch goes on
                    log.exception("grading %s failed", student_name(entry))
                    results = _failed_all(checks, "error", f"the grader failed on this submission "
                                          f"({type(e).__name__}: {e}); tell your instructor")
                    # no fingerprint: the next run of the batch grades this student again
                    report = {"student": student_name(entry), "missing_files": [], "results": results,
                              **summary(results)}
                write_reports(report, out)
                reports.append(report)
    write_gradebook(reports, checks, out / "gradebook.csv")
    if nbgrader_db is not None:
        write_nbgrader(reports, checks, nbgrader_db, assignment or ("rdfia" if target == "all" else target))
    return sorted(reports, key=lambda r: r["student"])


def write_reports(report: dict, out: Path) -> None:
    """``report.json`` (everything, for the instructor), ``feedback.md`` and Gradescope's
    ``results.json`` (for the student: a hidden check shows its title and result only)."""
    folder = out / "students" / report["student"]
    folder.mkdir(parents=True, exist_ok=True)
    answers = report.get("answers", {})
    if isinstance(answers, dict):  # the answers' texts become files, for the instructor to read
        for name, text in answers.items():
            (folder / name).write_text(text)
        report = {**report, "answers": sorted(answers)}
    (folder / "report.json").write_text(json.dumps(report, indent=2) + "\n")
    lines = [f"# Feedback for {report['student']}", "",
             f"Score: **{report['score']:g} / {report['max_score']:g}** "
             f"({report['passed']}/{report['checks']} checks passed)", ""]
    if report["missing_files"]:
        lines += ["Files not found in the submission: " +
                  ", ".join(f"`{m}`" for m in report["missing_files"]), ""]
    lines += ["| check | result | points |", "|---|---|---|"]
    for r in report["results"]:
        lines.append(f"| {r['title']}{' (hidden)' if r['hidden'] else ''} | {r['status']} | "
                     f"{r['score']:g}/{r['points']:g} |")
    details = [r for r in report["results"] if r["status"] != "passed" and not r["hidden"]]
    if details:
        lines += ["", "## What went wrong", ""]
        lines += [f"- **{r['title']}**: {r['message']}" for r in details]
    (folder / "feedback.md").write_text("\n".join(lines) + "\n")
    (folder / "results.json").write_text(json.dumps(gradescope_results(report), indent=2) + "\n")


# The fields of Gradescope's autograder results.json (its "Autograder Specifications"
# page): top level and per test. tests/test_grading.py validates our files against them.
GRADESCOPE_FIELDS = {"score", "execution_time", "output", "output_format", "test_output_format",
                     "test_name_format", "visibility", "stdout_visibility", "extra_data", "tests",
                     "leaderboard"}
GRADESCOPE_TEST_FIELDS = {"score", "max_score", "status", "name", "name_format", "number", "output",
                          "output_format", "tags", "visibility", "extra_data"}


def gradescope_results(report: dict) -> dict:
    tests = []
    for r in report["results"]:
        output = ("hidden check: only its result is shown" if r["hidden"]
                  else "" if r["status"] == "passed" else r["message"])
        tests.append({"name": r["title"], "number": r["id"], "score": r["score"], "max_score": r["points"],
                      "status": "passed" if r["status"] == "passed" else "failed", "output": output,
                      "tags": [r["practical"]], "visibility": "visible"})
    seconds = sum(r.get("seconds") or 0 for r in report["results"])
    missing = report["missing_files"]
    return {"score": report["score"], "execution_time": round(seconds),
            "output": f"{report['passed']}/{report['checks']} checks passed"
                      + (f"; files not found: {', '.join(missing)}" if missing else ""),
            "visibility": "visible", "stdout_visibility": "hidden", "tests": tests}


def write_gradebook(reports: list[dict], checks: list[Check], path: Path) -> None:
    with open(path, "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["student"] + [c.id for c in checks] + ["total", "max"])
        for rep in sorted(reports, key=lambda r: r["student"]):
            scores = {r["id"]: r["score"] for r in rep["results"]}
            w.writerow([rep["student"]] + [f"{scores.get(c.id, 0):g}" for c in checks]
                       + [f"{rep['score']:g}", f"{rep['max_score']:g}"])


def write_nbgrader(reports: list[dict], checks: list[Check], db: Path, assignment: str,
                   course: str = "default_course") -> None:
    """Write the scores into an nbgrader gradebook database (``gradebook.db`` of a course),
    through nbgrader's own API: one nbgrader *notebook* per practical, one *grade cell* per
    check (its points as the maximum), each student's check scores as automatic scores.
    Running it again updates the same entries (re-grading replaces, never duplicates).
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
            for r in rep["results"]:
                grade_of(gb, r["id"], r["practical"], rep["student"]).auto_score = r["score"]
            gb.db.commit()

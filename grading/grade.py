"""Grading: the public checks on a working copy, and a whole folder of submissions.

Each check runs in its own process (see :mod:`grading.runner`). A submission is graded in
a temporary tree made of the student release with the student's files copied over it, so
the reference solution is never importable, and the submission itself is never touched.
"""
import csv
import json
import logging
import shutil
import tempfile
import zipfile
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from tqdm import tqdm

from grading.registry import Check, select
from grading.release import MANIFEST, REPO, release
from grading.runner import grader_copy, run_check

log = logging.getLogger(__name__)

MARK = {"passed": "PASS", "failed": "FAIL", "timeout": "TIME", "crashed": "CRSH", "error": "ERR "}


def run_checks(checks: list[Check], tree: Path, grader: Path, threads: int = 1,
               progress: bool = False, desc: str = "") -> list[dict]:
    results = []
    for c in tqdm(checks, desc=desc or "checks", disable=not progress, leave=False):
        r = run_check(c, tree, grader, threads=threads)
        r.update(title=c.title, hidden=c.hidden, practical=c.practical)
        results.append(r)
    return results


def summary(results: list[dict]) -> dict:
    return {"score": sum(r["score"] for r in results),
            "max_score": sum(r["points"] for r in results),
            "passed": sum(r["status"] == "passed" for r in results),
            "checks": len(results)}


def format_results(results: list[dict], show_hidden_details: bool = True) -> str:
    """One line per check (status, points, title), then what went wrong where it did."""
    lines = []
    for r in results:
        tag = " (hidden)" if r["hidden"] else ""
        lines.append(f"[{MARK[r['status']]}] {r['score']:g}/{r['points']:g}  {r['id']}: "
                     f"{r['title']}{tag}")
        if r["status"] != "passed" and (show_hidden_details or not r["hidden"]):
            lines.append(f"        {r['message']}")
    s = summary(results)
    lines.append(f"score: {s['score']:g}/{s['max_score']:g} ({s['passed']}/{s['checks']} checks passed)")
    return "\n".join(lines)


def check_working_copy(target: str, include_hidden: bool = False, root: Path = REPO) -> list[dict]:
    """Run the checks of ``target`` on the code in ``root`` (the student's own copy)."""
    checks = select(target, include_hidden=include_hidden)
    return run_checks(checks, root, root, threads=2, progress=True)


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


def assemble(entry: Path, base: Path, student_files: dict, work: Path) -> tuple[Path, list[str]]:
    """Copy the release ``base`` and lay the student's files over it; return (tree, missing)."""
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
    return tree, missing


def grade_one(entry: Path, base: Path, grader: Path, checks: list[Check], student_files: dict,
              threads: int) -> dict:
    student = entry.stem if entry.suffix == ".zip" else entry.name
    with tempfile.TemporaryDirectory(prefix=f"rdfia-grade-{student}-") as tmp:
        try:
            tree, missing = assemble(entry, base, student_files, Path(tmp))
        except (zipfile.BadZipFile, OSError) as e:
            results = [dict(id=c.id, title=c.title, hidden=c.hidden, practical=c.practical,
                            points=c.points, score=0.0, status="error", where="",
                            message=f"submission unreadable: {e}") for c in checks]
            return {"student": student, "missing_files": [], "results": results, **summary(results)}
        results = run_checks(checks, tree, grader, threads=threads)
    for r in results:  # a missing file explains a failure better than the stub's message
        for rel in missing:
            if r["status"] != "passed" and rel.split("/")[0] == r["practical"]:
                r["message"] = f"file not submitted: {rel}"
    return {"student": student, "missing_files": missing, "results": results, **summary(results)}


def grade(submissions: Path, out: Path, target: str = "all", workers: int = 1) -> list[dict]:
    """Grade every submission in ``submissions``; write the gradebook and the reports."""
    submissions, out = Path(submissions), Path(out)
    entries = _submissions(submissions)
    checks = select(target, include_hidden=True)
    out.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="rdfia-batch-") as tmp:
        base = Path(tmp) / "release"
        manifest = release(base)
        grader = grader_copy(Path(tmp) / "grader")
        graded = {c.practical for c in checks}
        student_files = {f: v for f, v in manifest["student_files"].items()
                         if f.split("/")[0] in graded}
        threads = 1 if workers > 1 else 2
        with ThreadPoolExecutor(max_workers=workers) as pool:
            jobs = [pool.submit(grade_one, e, base, grader, checks, student_files, threads)
                    for e in entries]
            reports = [j.result() for j in tqdm(jobs, desc="students", unit="student")]
    for report in reports:
        write_reports(report, out)
    write_gradebook(reports, checks, out / "gradebook.csv")
    return reports


def write_reports(report: dict, out: Path) -> None:
    folder = out / "students" / report["student"]
    folder.mkdir(parents=True, exist_ok=True)
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


def write_gradebook(reports: list[dict], checks: list[Check], path: Path) -> None:
    with open(path, "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["student"] + [c.id for c in checks] + ["total", "max"])
        for rep in sorted(reports, key=lambda r: r["student"]):
            scores = {r["id"]: r["score"] for r in rep["results"]}
            w.writerow([rep["student"]] + [f"{scores.get(c.id, 0):g}" for c in checks]
                       + [f"{rep['score']:g}", f"{rep['max_score']:g}"])

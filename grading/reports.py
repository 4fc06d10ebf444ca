"""What grading a class writes: each student's ``report.json``, ``feedback.md`` and
Gradescope ``results.json``, and the class's ``gradebook.csv``.

Whatever a submission controls (its name, its messages, its printed output) reaches these
files already stripped of control characters and bounded (:mod:`grading.untrusted`, where the
results are read); each file then escapes it for its own reader: cells that a spreadsheet
would run as formulas are neutralised, Markdown shows messages as code, Gradescope is told
that every output is plain text. Instructor-only: the student release leaves this module out.
"""
import csv
import json
from pathlib import Path

from grading.registry import Check
from grading.untrusted import NAME_LIMIT, csv_cell, md_block, md_code, plain


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
    (folder / "feedback.md").write_text(feedback(report))
    (folder / "results.json").write_text(json.dumps(gradescope_results(report), indent=2) + "\n")


def feedback(report: dict) -> str:
    """The student's Markdown feedback: score, a table of the checks, then what went wrong
    in each public check lost, each message shown as code (nothing in it is rendered)."""
    lines = [f"# Feedback for {md_code(report['student'])}", "",
             (f"Score: **{report['score']:g} / {report['max_score']:g}** "
              f"({report['passed']}/{report['checks']} checks passed)"), ""]
    if report["missing_files"]:
        lines += ["Files not found in the submission: " + ", ".join(f"`{m}`" for m in report["missing_files"]), ""]
    if report.get("notes"):
        lines += (["About the files handed in:", ""] + [f"- {md_code(n, 2 * NAME_LIMIT)}" for n in report["notes"]]
                  + [""])
    lines += ["| check | result | points |", "|---|---|---|"]
    for r in report["results"]:
        lines.append(f"| {r['title']}{' (hidden)' if r['hidden'] else ''} | {r['status']} | "
                     f"{r['score']:g}/{r['points']:g} |")
    details = [r for r in report["results"] if r["status"] != "passed" and not r["hidden"]]
    if details:
        lines += ["", "## What went wrong", ""]
        for r in details:
            lines += [f"- **{r['title']}**:", "", md_block(r["message"], indent="  "), ""]
    return "\n".join(lines).rstrip("\n") + "\n"


# The fields of Gradescope's autograder results.json (its "Autograder Specifications"
# page): top level and per test. tests/test_grading.py validates our files against them.
GRADESCOPE_FIELDS = {"score", "execution_time", "output", "output_format", "test_output_format",
                     "test_name_format", "visibility", "stdout_visibility", "extra_data", "tests",
                     "leaderboard"}
GRADESCOPE_TEST_FIELDS = {"score", "max_score", "status", "name", "name_format", "number", "output",
                          "output_format", "tags", "visibility", "extra_data"}
TEXT = "text"  # Gradescope's output format that shows a string as it is: no HTML, no Markdown


def gradescope_results(report: dict) -> dict:
    """Gradescope's ``results.json``: every name and output declared plain text."""
    tests = []
    for r in report["results"]:
        output = ("hidden check: only its result is shown" if r["hidden"]
                  else "" if r["status"] == "passed" else plain(r["message"]))
        tests.append({"name": plain(r["title"], NAME_LIMIT, True), "name_format": TEXT, "number": r["id"],
                      "score": r["score"], "max_score": r["points"],
                      "status": "passed" if r["status"] == "passed" else "failed",
                      "output": output, "output_format": TEXT, "tags": [r["practical"]], "visibility": "visible"})
    seconds = sum(r.get("seconds") or 0 for r in report["results"])
    missing = report["missing_files"]
    summary = (f"{report['passed']}/{report['checks']} checks passed"
               + (f"; files not found: {', '.join(missing)}" if missing else "")
               + "".join(f"\n{n}" for n in report.get("notes", [])))
    return {"score": report["score"], "execution_time": round(seconds), "output": plain(summary),
            "output_format": TEXT, "test_output_format": TEXT, "test_name_format": TEXT,
            "visibility": "visible", "stdout_visibility": "hidden",
            "extra_data": {"isolation": report.get("isolation", "")}, "tests": tests}


def write_gradebook(reports: list[dict], checks: list[Check], path: Path) -> None:
    """One row per student: the LMS's participant id (a Moodle download's; empty otherwise),
    the points of each check, the total and the maximum, the isolation the student's code ran
    under, and notes (files refused, why a row could not be graded)."""
    with open(path, "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["student", "participant_id"] + [c.id for c in checks] + ["total", "max", "isolation", "notes"])
        for rep in sorted(reports, key=lambda r: r["student"]):
            scores = {r["id"]: r["score"] for r in rep["results"]}
            w.writerow([csv_cell(rep["student"], NAME_LIMIT), csv_cell(rep.get("participant_id", ""), NAME_LIMIT)]
                       + [f"{scores.get(c.id, 0):g}" for c in checks]
                       + [f"{rep['score']:g}", f"{rep['max_score']:g}", csv_cell(rep.get("isolation", "")),
                          csv_cell("; ".join(rep.get("notes", [])))])

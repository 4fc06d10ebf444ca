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
from grading.untrusted import MESSAGE_LIMIT, NAME_LIMIT, csv_cell, md_block, md_code, plain


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


def cases_passed(result: dict) -> str:
    """``3/4 cases`` for a check that recorded its cases, else empty."""
    cases = result.get("cases") or []
    return f"{sum(c['passed'] for c in cases)}/{len(cases)} cases" if cases else ""


def adjustment(o: dict) -> str:
    """One override in words: what it changed, by how much, and why (as plain text)."""
    how = f"set to {o['points']:g}" if o["action"] == "set" else f"{o['points']:+g} points"
    return f"{o['before']:g} -> {o['after']:g} ({how}): {o['reason']}"


def feedback(report: dict) -> str:
    """The student's Markdown feedback: score, a table of the checks, the instructor's
    adjustments with their reasons, then what went wrong in each public check lost, each
    message shown as code (nothing in it is rendered)."""
    adjusted = report.get("overrides") or []
    automatic = (f"; automatic score {report['auto_score']:g}, adjusted by your instructor below"
                 if adjusted else "")
    lines = [f"# Feedback for {md_code(report['student'])}", "",
             (f"Score: **{report['score']:g} / {report['max_score']:g}** "
              f"({report['passed']}/{report['checks']} checks passed{automatic})"), ""]
    if report["missing_files"]:
        lines += ["Files not found in the submission: " + ", ".join(f"`{m}`" for m in report["missing_files"]), ""]
    if report.get("notes"):
        lines += (["About the files handed in:", ""] + [f"- {md_code(n, 2 * NAME_LIMIT)}" for n in report["notes"]]
                  + [""])
    lines += ["| check | result | points |", "|---|---|---|"]
    for r in report["results"]:
        cases = cases_passed(r)
        auto = f" (adjusted from {r['auto_score']:g})" if r.get("overrides") else ""
        lines.append(f"| {r['title']}{' (hidden)' if r['hidden'] else ''} | {r['status']}"
                     f"{f' ({cases})' if cases else ''} | {r['score']:g}/{r['points']:g}{auto} |")
    if adjusted:
        titles = {r["id"]: r["title"] for r in report["results"]}
        lines += ["", "## Adjusted by your instructor", ""]
        lines += [f"- **{titles.get(o['check'], 'total score')}**: "
                  f"{md_code(adjustment(o), MESSAGE_LIMIT)}" for o in adjusted]
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
        if r["hidden"] and cases_passed(r):
            output += f" ({cases_passed(r)} passed)"
        output += "".join(f"\nadjusted by your instructor: {adjustment(o)}" for o in r.get("overrides", []))
        tests.append({"name": plain(r["title"], NAME_LIMIT, True), "name_format": TEXT, "number": r["id"],
                      "score": r["score"], "max_score": r["points"],
                      "status": "passed" if r["status"] == "passed" else "failed",
                      "output": plain(output.lstrip("\n")), "output_format": TEXT, "tags": [r["practical"]],
                      "visibility": "visible", "extra_data": {"auto_score": r.get("auto_score", r["score"])}})
    seconds = sum(r.get("seconds") or 0 for r in report["results"])
    missing = report["missing_files"]
    summary = (f"{report['passed']}/{report['checks']} checks passed"
               + (f"; files not found: {', '.join(missing)}" if missing else "")
               + "".join(f"\n{n}" for n in report.get("notes", []))
               + "".join(f"\ntotal adjusted by your instructor: {adjustment(o)}"
                         for o in report.get("overrides", []) if o["check"] == "total"))
    return {"score": report["score"], "execution_time": round(seconds), "output": plain(summary),
            "output_format": TEXT, "test_output_format": TEXT, "test_name_format": TEXT,
            "visibility": "visible", "stdout_visibility": "hidden",
            "extra_data": {"isolation": report.get("isolation", ""),
                           "auto_score": report.get("auto_score", report["score"])}, "tests": tests}


GRADEBOOK_LEAD = ["student", "participant_id"]  # the gradebook's columns before those of the checks


def check_columns(header: list[str]) -> list[str]:
    """The check ids a gradebook's header lists (between its leading columns and ``total``)."""
    end = header.index("total") if "total" in header else len(header)
    return [c for c in header[:end] if c not in GRADEBOOK_LEAD]


def write_gradebook(reports: list[dict], checks: list[Check], path: Path) -> None:
    """One row per student: the LMS's participant id (a Moodle download's; empty otherwise),
    the points of each check, the total and the maximum (with the instructor's overrides), the
    isolation the student's code ran under, notes (files refused, why a row could not be
    graded), then the automatic total and the overrides applied."""
    with open(path, "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(GRADEBOOK_LEAD + [c.id for c in checks]
                   + ["total", "max", "isolation", "notes", "auto_total", "overrides"])
        for rep in sorted(reports, key=lambda r: r["student"]):
            scores = {r["id"]: r["score"] for r in rep["results"]}
            adjusted = "; ".join(f"{o['check']} {adjustment(o)}" for o in rep.get("overrides", []))
            w.writerow([csv_cell(rep["student"], NAME_LIMIT), csv_cell(rep.get("participant_id", ""), NAME_LIMIT)]
                       + [f"{scores.get(c.id, 0):g}" for c in checks]
                       + [f"{rep['score']:g}", f"{rep['max_score']:g}", csv_cell(rep.get("isolation", "")),
                          csv_cell("; ".join(rep.get("notes", []))), f"{rep.get('auto_score', rep['score']):g}",
                          csv_cell(adjusted)])

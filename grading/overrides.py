"""The instructor's overrides: adjustments to a student's scores that survive every regrade.

They are kept in ``OUT/overrides.csv`` beside the gradebook, one adjustment a line::

    student,check,action,points,reason
    alice,tp3c.grl_forward,set,1,the forward pass is right; the check misread a view
    bob,total,add,-2,handed in two days late

``check`` is a check's id or ``total``; ``action`` is ``set`` (the check's score, or the total,
becomes ``points``) or ``add`` (``points`` are added, negative to take some off); ``reason`` is
shown to the student. The overrides of a check apply first, in the file's order, then those
of the total, on the sum of the checks' scores.

Applying them never changes the automatic results: each result keeps its automatic score in
``auto_score`` (and the report its automatic total), the overridden values go to ``score``,
and applying again starts from the automatic scores, so that applying twice is applying once
and a regrade (new automatic scores) is followed by the same overrides. A line that names a
student or a check that does not exist is an error naming the line; a line for a check that
this run did not grade (``--check``, ``--practical``) is listed as a warning.
Instructor-only: the student release leaves this module out.
"""
import csv
import json
import logging
import math
from dataclasses import asdict, dataclass
from pathlib import Path

from common.errors import UserError
from grading.untrusted import NAME_LIMIT, csv_cell, plain

log = logging.getLogger(__name__)

FILE = "overrides.csv"
COLUMNS = ("student", "check", "action", "points", "reason")
TOTAL = "total"
ACTIONS = ("set", "add")
REASON_LIMIT = 1000  # characters of a reason kept


@dataclass(frozen=True)
class Override:
    """One line of ``overrides.csv``: ``line`` is its line number, for the messages."""
    line: int
    student: str
    check: str
    action: str
    points: float
    reason: str


def _unescaped(cell: str) -> str:
    """A text cell as written before :func:`grading.untrusted.csv_cell` neutralised a formula."""
    return cell[1:] if cell.startswith("'") and csv_cell(cell[1:], REASON_LIMIT) == cell else cell


def read(path: Path) -> list[Override]:
    """The overrides of ``path`` (none when it does not exist); a malformed line is a
    :class:`UserError` naming the file and the line."""
    if not path.is_file():
        return []
    with open(path, newline="", encoding="utf-8-sig") as f:  # a spreadsheet may save it with a BOM
        reader = csv.reader(f)
        header = next(reader, None)
        if header is None:
            return []
        if [h.strip().lower() for h in header] != list(COLUMNS):
            raise UserError(f"{path}:1: the first line must be the columns {','.join(COLUMNS)}, not {','.join(header)}")
        found = []
        for row in reader:
            if not any(cell.strip() for cell in row):
                continue
            where = f"{path}:{reader.line_num}"
            if len(row) != len(COLUMNS):
                raise UserError(f"{where}: {len(row)} columns, expected {len(COLUMNS)} ({','.join(COLUMNS)}); "
                                "quote a reason that holds a comma")
            student, check, action, points, reason = (cell.strip() for cell in row)
            action = action.lower()
            if action not in ACTIONS:
                raise UserError(f"{where}: the action must be set or add, not {action!r}")
            try:
                value = float(points)
            except ValueError:
                value = math.nan
            if not math.isfinite(value):
                raise UserError(f"{where}: the points must be a number, not {points!r}")
            if action == "set" and value < 0:
                raise UserError(f"{where}: a score cannot be set below 0 ({value:g}); use add to take points off")
            if not student or not check or not reason:
                raise UserError(f"{where}: the student, the check (or total) and the reason must all be given")
            found.append(Override(reader.line_num, _unescaped(student), check, action, value,
                                  plain(_unescaped(reason), REASON_LIMIT, True)))
    return found


def resolve(overrides: list[Override], students, checks, path: Path) -> list[Override]:
    """Check that each override names one of ``students`` and one of ``checks`` (ids) or the
    total; the student as ``students`` spell it (the file may hold a name as the gradebook's
    cell writes it). Raises :class:`UserError` naming the first line that does not."""
    by_cell = {csv_cell(s, NAME_LIMIT): s for s in students} | {s: s for s in students}
    out = []
    for o in overrides:
        where = f"{path}:{o.line}"
        student = by_cell.get(o.student)
        if student is None:
            raise UserError(f"{where}: no student {o.student!r} in this gradebook")
        if o.check != TOTAL and o.check not in checks:
            raise UserError(f"{where}: no check {o.check!r} (a check's id, as in the gradebook's columns, or total)")
        out.append(Override(o.line, student, o.check, o.action, o.points, o.reason))
    return out


def apply(report: dict, overrides: list[Override]) -> list[str]:
    """Apply to ``report`` (in place) the overrides that name its student, from its automatic
    scores; return a warning for each that names a check the report does not hold."""
    for r in report["results"]:
        r["auto_score"] = r.get("auto_score", r["score"])
        r["score"] = r["auto_score"]
        r.pop("overrides", None)
    report["auto_score"] = sum(r["auto_score"] for r in report["results"])
    mine = [o for o in overrides if o.student == report["student"]]
    by_id = {r["id"]: r for r in report["results"]}
    warnings = []
    for o in mine:
        r = by_id.get(o.check)
        if o.check == TOTAL:
            continue
        if r is None:
            warnings.append(f"line {o.line}: {report['student']} has no result for {o.check} in this run: not applied")
            continue
        before = r["score"]
        r["score"] = o.points if o.action == "set" else before + o.points
        r.setdefault("overrides", []).append({**asdict(o), "before": before, "after": r["score"]})
    total = sum(r["score"] for r in report["results"])
    applied = []
    for o in mine:
        if o.check == TOTAL:
            before, total = total, o.points if o.action == "set" else total + o.points
            applied.append({**asdict(o), "before": before, "after": total})
    report["score"] = total
    report["overrides"] = [dict(x) for r in report["results"] for x in r.get("overrides", [])] + applied
    if not report["overrides"]:
        del report["overrides"]
    return warnings


def apply_all(reports: list[dict], overrides: list[Override]) -> None:
    """:func:`apply` to every report, each warning logged."""
    for report in reports:
        for w in apply(report, overrides):
            log.warning("%s: %s", FILE, w)


def append(out: Path, student: str, check: str, action: str, points: float, reason: str) -> Path:
    """Append one override to ``out/overrides.csv`` (created with its columns if absent)."""
    path = out / FILE
    new = not path.is_file() or path.stat().st_size == 0
    with open(path, "a", newline="", encoding="utf-8") as f:
        w = csv.writer(f)
        if new:
            w.writerow(COLUMNS)
        w.writerow([csv_cell(student, NAME_LIMIT), check, action, f"{points:g}", csv_cell(reason, REASON_LIMIT)])
    return path


def reapply(out: Path) -> list[dict]:
    """Apply ``out/overrides.csv`` to the reports already in ``out`` without grading anything:
    each student's reports and the gradebook are written again. Returns the reports."""
    from grading.registry import Check, load_checks
    from grading.reports import check_columns, write_gradebook, write_reports

    gradebook = out / "gradebook.csv"
    if not gradebook.is_file():
        raise UserError(f"no gradebook.csv in {out}: grade the class first (python -m grading grade SUBS --out {out})")
    with open(gradebook, newline="") as f:
        rows = list(csv.reader(f))
    columns = check_columns(rows[0]) if rows else []
    listed = {row[0] for row in rows[1:] if row}
    reports = []
    for path in sorted((out / "students").glob("*/report.json")):
        try:
            report = json.loads(path.read_text())
        except ValueError:
            raise UserError(f"{path} is not a report: grade the class again") from None
        if csv_cell(report["student"], NAME_LIMIT) in listed:
            reports.append(report)
    registry = load_checks()
    graded = {r["id"] for rep in reports for r in rep["results"]}
    overrides = resolve(read(out / FILE), [r["student"] for r in reports], set(registry) | graded, out / FILE)
    apply_all(reports, overrides)
    for report in reports:
        write_reports(report, out)
    checks = [registry.get(c) or Check(id=c, title=c, points=0, practical="", hidden=False, timeout=0,
                                       module="", name="", func=None) for c in columns]
    write_gradebook(reports, checks, gradebook)
    return reports

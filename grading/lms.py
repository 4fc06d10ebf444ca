"""Grades out to the LMS: the files that Moodle and Canvas import, from a graded class.

The grades are read from the reports (``OUT/students/*/report.json``: their ``score``,
``max_score`` and per-check ``results``), never recomputed from the checks, so that a score
adjusted by hand in a report carries through. Three formats:

- ``moodle-csv``: Moodle's "Import grades: CSV file", built on a roster that the instructor
  exported from Moodle (the gradebook's export, or the users' download), matched by email,
  username, ID number or full name: the roster's columns that say who a row is, then the
  grade and its feedback.
- ``moodle-worksheet``: the assignment's offline grading worksheet, exported by the
  instructor, filled in: rows matched by participant id (its identifier column holds
  ``Participant NNN``), the grade and the feedback comments written, every other cell and
  the header kept as they are, in whatever language the site shows.
- ``canvas``: Canvas's gradebook import (``Student, ID, SIS User ID, SIS Login ID, Section``,
  then the assignment's column ``Name (id)``, and the ``Points Possible`` row), built on a
  gradebook export of the course.

Every output row is a roster row (an LMS refuses a whole file for one unknown user); a
student who cannot be matched is listed in ``unmatched.csv`` and on stderr, never dropped
silently; a roster row without a submission gets an empty grade unless ``missing_zero``.
Every cell written goes through :func:`grading.untrusted.csv_cell`.
Instructor-only: the student release leaves this module out.
"""
import csv
import io
import json
import re
import sys
import unicodedata
from dataclasses import dataclass
from decimal import ROUND_HALF_UP, Decimal, InvalidOperation
from pathlib import Path

from common.errors import UserError
from grading.untrusted import NAME_LIMIT, csv_cell, plain

FORMATS = ("moodle-csv", "moodle-worksheet", "canvas")
MATCHES = ("email", "username", "idnumber", "fullname")
DEFAULT_OUTPUT = {"moodle-csv": "moodle_grades.csv", "moodle-worksheet": "moodle_worksheet.csv",
                  "canvas": "canvas_grades.csv"}
FEEDBACK_LIMIT = 2000  # characters of a student's feedback summary

# The roster's column for each way of matching, by header (compared case-insensitively):
# Moodle's gradebook export and users' download in English and French, then Canvas's export.
ROSTER_COLUMNS = {
    "email": ("email address", "email", "e-mail", "adresse de courriel", "adresse courriel", "courriel"),
    "username": ("username", "nom d'utilisateur", "sis login id"),
    "idnumber": ("id number", "idnumber", "numéro d'identification", "sis user id"),
}
FIRST_NAMES = ("first name", "firstname", "prénom")
LAST_NAMES = ("last name", "lastname", "surname", "nom")
CANVAS_COLUMNS = ("Student", "ID", "SIS User ID", "SIS Login ID", "Section")
POINTS_POSSIBLE = "Points Possible"

# The worksheet's columns by header, in a few of Moodle's languages (its strings "grade",
# "maxgrade", and assignfeedback_comments' "pluginname"); where none matches, see _worksheet_columns.
GRADE_HEADERS = ("grade", "note", "bewertung", "calificación", "valutazione", "nota", "cijfer")
MAX_HEADERS = ("maximum grade", "note maximale", "bestmögliche bewertung", "calificación máxima",
               "punteggio massimo", "nota máxima")
FEEDBACK_HEADERS = ("feedback comments", "commentaires de feedback", "feedback par commentaires",
                    "feedback als kommentar", "comentarios de retroalimentación", "commenti all'interno",
                    "comentários de feedback")
IDENTIFIER = re.compile(r"^(\D*\D)\s*(\d+)$")  # "Participant 123", "Teilnehmer/in 123"
UNMATCHED_FIELDS = ("student", "participant_id", "full_name", "score", "max_score", "reason")


@dataclass
class Options:
    """How the total becomes the LMS's grade: ``scale`` (None: the checks' points as they are)
    and ``step`` (rounded half up to a multiple of it), and whether no submission is 0."""
    scale: float | None = None
    step: float = 0.01
    missing_zero: bool = False


# ----------------------------------------------------------------------------------- the reports

def load_reports(out: Path) -> list[dict]:
    """Every student's ``report.json`` under ``out/students``, sorted by student."""
    reports = []
    for path in sorted((Path(out) / "students").glob("*/report.json")):
        try:
            reports.append(json.loads(path.read_text()))
        except (OSError, ValueError) as e:
            raise UserError(f"{path}: not a readable report ({e}); grade the class again") from None
    if not reports:
        raise UserError(f"no reports in {out}/students: give the folder that grade wrote (grade --out)")
    return reports


def grade_of(report: dict, options: Options) -> Decimal:
    """The report's total, rescaled to ``options.scale`` when given, rounded half up to a
    multiple of ``options.step``: 14.25 out of 20 with a step of 0.5 gives 14.5."""
    score, top = Decimal(str(report["score"])), Decimal(str(report["max_score"]))
    if options.scale is not None:
        score = score / top * Decimal(str(options.scale)) if top else Decimal(0)
    step = Decimal(str(options.step))
    return (score / step).quantize(Decimal(1), rounding=ROUND_HALF_UP) * step


def maximum(reports: list[dict], options: Options) -> Decimal:
    """The grade item's maximum: the scale, or the checks' points."""
    if options.scale is not None:
        return Decimal(str(options.scale))
    return max((Decimal(str(r["max_score"])) for r in reports), default=Decimal(0))


def number(value: Decimal, decimal: str = ".") -> str:
    """A grade as the LMS reads it: no trailing zeros, with the site's decimal separator."""
    text = f"{value.normalize():f}" if value else "0"
    return text.replace(".", decimal)


def feedback(report: dict, grade: Decimal, top: Decimal) -> str:
    """A short summary for the student: the grade, the points per practical, the checks
    lost, the files missing and the notes."""
    parts = [f"Grade {number(grade)}/{number(top)} ({report['score']:g}/{report['max_score']:g} points"
             f", {report.get('passed', 0)}/{report.get('checks', 0)} checks passed)."]
    per: dict[str, list[float]] = {}
    for r in report.get("results", []):
        got = per.setdefault(r["practical"], [0.0, 0.0])
        got[0] += r["score"]
        got[1] += r["points"]
    if per:
        parts.append("; ".join(f"{p}: {s:g}/{m:g}" for p, (s, m) in per.items()) + ".")
    lost = [f"{r['title']} ({r['score']:g}/{r['points']:g})" for r in report.get("results", [])
            if r["score"] < r["points"]]
    if lost:
        parts.append("Checks lost: " + "; ".join(lost) + ".")
    if report.get("missing_files"):
        parts.append("Files not found: " + ", ".join(report["missing_files"]) + ".")
    if report.get("notes"):
        parts.append("Notes: " + "; ".join(report["notes"]))
    return plain(" ".join(parts), FEEDBACK_LIMIT, single_line=True)


# ----------------------------------------------------------------------------------- CSV files

def read_csv(path: Path) -> tuple[list[list[str]], csv.Dialect]:
    """The rows of a CSV file the LMS wrote (UTF-8, a BOM or not; comma, semicolon or tab)."""
    try:
        text = Path(path).read_text(encoding="utf-8-sig")
    except (OSError, UnicodeDecodeError) as e:
        raise UserError(f"{path}: cannot be read as a UTF-8 CSV file ({e})") from None
    try:
        dialect = csv.Sniffer().sniff(text.split("\n", 1)[0], delimiters=",;\t")
    except csv.Error:
        dialect = csv.excel
    rows = [row for row in csv.reader(io.StringIO(text, newline=""), dialect) if any(c.strip() for c in row)]
    if not rows:
        raise UserError(f"{path} is empty: export it again from the LMS")
    return rows, dialect


def _write(path: Path, rows: list[list[str]], dialect=csv.excel) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w", newline="", encoding="utf-8") as f:
        csv.writer(f, dialect, lineterminator="\r\n").writerows(rows)


def _column(header: list[str], names, what: str, path: Path, given: str | None = None,
            flag: str = "--roster-column") -> int:
    """The index of the column named ``given`` (or a 1-based number), else of one of ``names``."""
    folded = [h.strip().casefold() for h in header]
    if given:
        if given.isdigit() and 1 <= int(given) <= len(header):
            return int(given) - 1
        if given.strip().casefold() in folded:
            return folded.index(given.strip().casefold())
        raise UserError(f"{path} has no column {given!r}; its columns: {', '.join(header)}")
    for name in names:
        if name in folded:
            return folded.index(name)
    raise UserError(f"{path} has no {what} column (looked for {', '.join(names)}); name it with {flag}")


# ----------------------------------------------------------------------------------- matching

def key(text, match: str) -> str:
    """What two spellings of one identity share: case and Unicode form folded; for a full
    name, its words without accents, in any order ("Doe, Jane" is "Jane Doe")."""
    text = unicodedata.normalize("NFKC", plain(text, NAME_LIMIT, True)).casefold().strip()
    if match != "fullname":
        return text
    bare = "".join(ch for ch in unicodedata.normalize("NFKD", text) if not unicodedata.combining(ch))
    return " ".join(sorted(re.findall(r"\w+", bare)))


def report_key(report: dict, match: str) -> str:
    """The report's identity for ``match``: its own field when it has one (``email``,
    ``username``, ``idnumber``, ``full_name``), else the student's name (the folder's)."""
    field = "full_name" if match == "fullname" else match
    return key(report.get(field) or report["student"], match)


def assign(reports: list[dict], row_keys: list[str], key_of, where: str = "the roster") \
        -> tuple[dict[int, dict], list[tuple[dict, str]]]:
    """Each report given to the one roster row with its key: ``({row: report}, unmatched)``,
    the unmatched with the reason (no such row, several rows, several reports for one row)."""
    rows: dict[str, list[int]] = {}
    for i, k in enumerate(row_keys):
        if k:
            rows.setdefault(k, []).append(i)
    claims: dict[int, list[dict]] = {}
    unmatched = []
    for rep in reports:
        k = key_of(rep)
        found = rows.get(k, []) if k else []
        if not found:
            unmatched.append((rep, f"no row of {where} matches " + (repr(k) if k else "(no identity)")))
        elif len(found) > 1:
            unmatched.append((rep, f"{len(found)} rows of {where} match {k!r}"))
        else:
            claims.setdefault(found[0], []).append(rep)
    matched = {}
    for row, reps in claims.items():
        if len(reps) == 1:
            matched[row] = reps[0]
        else:
            names = ", ".join(r["student"] for r in reps)
            unmatched += [(r, f"{len(reps)} submissions match one row of {where} ({names})") for r in reps]
    return matched, unmatched


def write_unmatched(path: Path, unmatched: list[tuple[dict, str]]) -> None:
    """``unmatched.csv``: every student left out of the LMS's file, with the reason; also on stderr."""
    rows = [list(UNMATCHED_FIELDS)]
    for rep, why in sorted(unmatched, key=lambda u: u[0]["student"]):
        rows.append([csv_cell(rep["student"], NAME_LIMIT), csv_cell(rep.get("participant_id", ""), NAME_LIMIT),
                     csv_cell(rep.get("full_name", ""), NAME_LIMIT), f"{rep['score']:g}", f"{rep['max_score']:g}",
                     csv_cell(why)])
        print(f"export: not exported: {plain(rep['student'], NAME_LIMIT, True)}: {plain(why, single_line=True)}",
              file=sys.stderr)
    _write(path, rows)


# ----------------------------------------------------------------------------------- the formats

def moodle_csv(reports: list[dict], roster: Path, match: str, item: str, options: Options,
               roster_column: str | None = None) -> tuple[list[list[str]], list]:
    """Moodle's grade import: per roster row, its identity columns (the matched one, the
    names), the grade (``item``) and the feedback (``item (Feedback)``)."""
    rows, _ = read_csv(roster)
    header, body = rows[0], rows[1:]
    if match == "fullname":
        first = _column(header, FIRST_NAMES, "first name", roster)
        last = _column(header, LAST_NAMES, "last name", roster)
        row_keys = [key(f"{_at(r, first)} {_at(r, last)}", match) for r in body]
        keep = [first, last]
    else:
        at = _column(header, ROSTER_COLUMNS[match], match, roster, roster_column)
        row_keys = [key(_at(r, at), match) for r in body]
        keep = [at] + [i for names in (FIRST_NAMES, LAST_NAMES) for i in _maybe(header, names) if i != at]
    matched, unmatched = assign(reports, row_keys, lambda rep: report_key(rep, match))
    top = maximum(reports, options)
    out = [[csv_cell(header[i], NAME_LIMIT) for i in keep] + [csv_cell(item, NAME_LIMIT),
                                                              csv_cell(f"{item} (Feedback)", NAME_LIMIT)]]
    for i, r in enumerate(body):
        if not row_keys[i]:
            continue  # a row Moodle cannot match either
        grade, text = _grade_cells(matched.get(i), options, top)
        out.append([csv_cell(_at(r, c), NAME_LIMIT) for c in keep] + [grade, text])
    return out, unmatched


def moodle_worksheet(reports: list[dict], worksheet: Path, options: Options, grade_column: str | None = None,
                     feedback_column: str | None = None) -> tuple[list[list[str]], list, csv.Dialect]:
    """The offline grading worksheet, filled in: every row whose participant has a report
    gets its grade and feedback comments; the rest of the file is kept as it is."""
    rows, dialect = read_csv(worksheet)
    header, body = rows[0], rows[1:]
    ident, grade_at, feedback_at, decimal = _worksheet_columns(header, body, worksheet, grade_column, feedback_column)
    row_keys = []
    for r in body:
        m = IDENTIFIER.match(_at(r, ident).strip())
        row_keys.append(str(int(m[2])) if m else "")
    matched, unmatched = assign(reports, row_keys, lambda rep: str(int(rep["participant_id"]))
                                if str(rep.get("participant_id", "")).isdigit() else "", "the worksheet")
    top = maximum(reports, options)
    out = [list(header)]
    for i, r in enumerate(body):
        r = r + [""] * (len(header) - len(r))
        rep = matched.get(i)
        if rep is not None or options.missing_zero:
            r[grade_at], r[feedback_at] = _grade_cells(rep, options, top, decimal)
        out.append(r)
    return out, unmatched, dialect


def canvas(reports: list[dict], roster: Path, match: str, item: str, options: Options,
           roster_column: str | None = None) -> tuple[list[list[str]], list]:
    """Canvas's gradebook import: the five columns that say who a row is, the assignment's
    column (named as in the export: ``Name (id)``), and the ``Points Possible`` row."""
    rows, _ = read_csv(roster)
    header, body = rows[0], rows[1:]
    cols = {name: _maybe(header, (name.casefold(),)) for name in CANVAS_COLUMNS}
    missing = [n for n, found in cols.items() if not found and n in ("Student", "ID")]
    if missing:
        raise UserError(f"{roster} is not a Canvas gradebook export: no column {', '.join(missing)}")
    body = [r for r in body if not _at(r, cols["Student"][0]).strip().startswith(POINTS_POSSIBLE)]
    if match == "email":
        raise UserError("a Canvas gradebook export has no email column: match by username (SIS Login ID), "
                        "idnumber (SIS User ID) or fullname (Student)")
    if match == "fullname":
        at = cols["Student"][0]
    else:
        at = _column(header, ROSTER_COLUMNS[match], match, roster, roster_column)
    row_keys = [key(_at(r, at), match) for r in body]
    matched, unmatched = assign(reports, row_keys, lambda rep: report_key(rep, match))
    column = next((h for h in header if h.strip() == item or h.strip().startswith(item + " (")), item)
    if not re.search(r"\(\d+\)$", column.strip()):
        print(f"export: {roster} has no assignment column {item!r}: Canvas will create a new assignment "
              f"{column!r} (give --item as the export names it, 'Name (id)', to fill an existing one)",
              file=sys.stderr)
    top = maximum(reports, options)
    out = [list(CANVAS_COLUMNS) + [csv_cell(column.strip(), NAME_LIMIT)],
           [POINTS_POSSIBLE, "", "", "", "", number(top)]]
    for i, r in enumerate(body):
        grade, _ = _grade_cells(matched.get(i), options, top)
        out.append([csv_cell(_at(r, cols[n][0]) if cols[n] else "", NAME_LIMIT) for n in CANVAS_COLUMNS] + [grade])
    return out, unmatched


def _grade_cells(rep: dict | None, options: Options, top: Decimal, decimal: str = ".") -> tuple[str, str]:
    if rep is None:
        return ("0", csv_cell("No submission.")) if options.missing_zero else ("", "")
    grade = grade_of(rep, options)
    return csv_cell(number(grade, decimal)), csv_cell(feedback(rep, grade, top), FEEDBACK_LIMIT + 40)


def _at(row: list[str], i: int) -> str:
    return row[i] if i < len(row) else ""


def _maybe(header: list[str], names) -> list[int]:
    folded = [h.strip().casefold() for h in header]
    return [folded.index(n) for n in names if n in folded][:1]


def _worksheet_columns(header, body, path, grade_column, feedback_column) -> tuple[int, int, int, str]:
    """(identifier, grade, feedback, decimal separator) of a worksheet in any language.

    Identifier: the first column whose every cell is a word and a number (``Participant
    123``). Grade: ``grade_column``, else a header Moodle gives it in a language listed in
    ``GRADE_HEADERS``, else the column just before the maximum grade (a header of
    ``MAX_HEADERS``, else the first column after the identifier holding one same number in
    every row). Feedback comments: ``feedback_column``, else a header of
    ``FEEDBACK_HEADERS``, else the last column (Moodle puts the feedback plugins' columns
    last). Decimal separator: a comma where the maximum grade is written with one.
    """
    def cells(i):
        return [_at(r, i).strip() for r in body]

    ident = next((i for i in range(len(header)) if cells(i) and all(IDENTIFIER.match(c) for c in cells(i))
                  and len({IDENTIFIER.match(c)[1] for c in cells(i)}) == 1), None)
    if ident is None:
        raise UserError(f"{path}: no identifier column (cells like 'Participant 123'): "
                        "export the grading worksheet again from the assignment's grading page")
    folded = [h.strip().casefold() for h in header]
    top_at = next((folded.index(n) for n in MAX_HEADERS if n in folded), None)
    if top_at is None:
        top_at = next((i for i in range(ident + 2, len(header))
                       if len(set(cells(i))) == 1 and _is_number(cells(i)[0])), None)
    if grade_column:
        grade_at = _column(header, (), "grade", path, grade_column, "--grade-column")
    elif any(n in folded for n in GRADE_HEADERS):
        grade_at = next(folded.index(n) for n in GRADE_HEADERS if n in folded)
    elif top_at is not None:
        grade_at = top_at - 1
    else:
        raise UserError(f"{path}: cannot tell which column holds the grade: name it with --grade-column")
    if feedback_column:
        feedback_at = _column(header, (), "feedback", path, feedback_column, "--feedback-column")
    else:
        feedback_at = next((folded.index(n) for n in FEEDBACK_HEADERS if n in folded), len(header) - 1)
    if len({ident, grade_at, feedback_at}) < 3:
        raise UserError(f"{path}: the identifier, grade and feedback columns must differ: "
                        "name them with --grade-column and --feedback-column")
    tops = cells(top_at) if top_at is not None else []
    decimal = "," if tops and "," in tops[0] and "." not in tops[0] else "."
    return ident, grade_at, feedback_at, decimal


def _is_number(text: str) -> bool:
    try:
        Decimal(text.replace(",", "."))
        return bool(text)
    except InvalidOperation:
        return False


def export(out: Path, to: str, roster: Path | None = None, worksheet: Path | None = None, match: str = "email",
           item: str = "rdfia", options: Options = Options(), output: Path | None = None,
           roster_column: str | None = None, grade_column: str | None = None,
           feedback_column: str | None = None) -> tuple[Path, int, list]:
    """Write the LMS's file for the class graded in ``out``; return (its path, rows written,
    unmatched students). ``unmatched.csv`` is written beside it."""
    if options.step <= 0 or (options.scale is not None and options.scale <= 0):
        raise UserError("--round and --scale must be positive")
    reports = load_reports(out)
    output = Path(output) if output else Path(out) / DEFAULT_OUTPUT[to]
    dialect = csv.excel
    if to == "moodle-worksheet":
        if worksheet is None:
            raise UserError("--to moodle-worksheet needs --worksheet FILE: the grading worksheet exported from Moodle")
        rows, unmatched, dialect = moodle_worksheet(reports, worksheet, options, grade_column, feedback_column)
    else:
        if roster is None:
            raise UserError(f"--to {to} needs --roster FILE: the class list exported from the LMS")
        build = moodle_csv if to == "moodle-csv" else canvas
        rows, unmatched = build(reports, roster, match, item, options, roster_column)
    _write(output, rows, dialect)
    write_unmatched(output.parent / "unmatched.csv", unmatched)
    return output, len(rows) - 1, unmatched

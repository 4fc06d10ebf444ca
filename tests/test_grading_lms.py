"""grading with an LMS: Moodle's download graded as it is, grades exported as Moodle and Canvas import them."""
import csv
import io
import json
import tempfile
import zipfile
from pathlib import Path

import pytest

from grading.__main__ import main
from grading.collect import Reader, Wanted, handins
from grading.grade import grade
from grading.lms import Options, export, grade_of, number
from grading.registry import select

REPO = Path(__file__).resolve().parents[1]
CHECKS = ["tp3c.grl_forward", "tp3c.dann_step_sign"]  # fast (no training), whole credit: 1 and 2 points
ZOE, BOB, EVIL = "Zoé Ünal de la Tour", "Bob Smith", "=HYPERLINK(x) Evil"


def _dann(sign_kept: bool = True) -> str:
    good = (REPO / "tp3c_domain_adaptation/dann.py").read_text()
    return good if sign_kept else good.replace("return -ctx.lambd * grad_output, None",
                                               "return ctx.lambd * grad_output, None")


def _moodle_download(path: Path) -> Path:
    """A Moodle "Download all submissions" zip: Zoé's own zip in her file folder and an online
    text beside it, Bob's file at the top of his folder, a formula-like name, a stray file."""
    own = io.BytesIO()
    with zipfile.ZipFile(own, "w") as z:
        z.writestr("handin/tp3c_domain_adaptation/dann.py", _dann())
        z.writestr("handin/ANSWERS.md", "# Answers\n\nQ1: yes.\n")
    with zipfile.ZipFile(path, "w") as z:
        z.writestr(f"{ZOE}_101_assignsubmission_file_/rendu.zip", own.getvalue())
        z.writestr(f"{ZOE}_101_assignsubmission_onlinetext_/onlinetext.html", "<p>voir le zip</p>")
        z.writestr(f"{BOB}_102_assignsubmission_file_/dann.py", _dann(sign_kept=False))
        z.writestr(f"{EVIL}_103_assignsubmission_file_/tp3c_domain_adaptation/dann.py", _dann())
        z.writestr("index.html", "not a participant")
    return path


def test_moodle_download_names_one_student_per_participant(tmp_path):
    download = _moodle_download(tmp_path / "TP3-12-download.zip")
    found = {h.student: h for h in handins(download)}
    assert set(found) == {f"{ZOE}_101", f"{BOB}_102", f"{EVIL}_103", "index.html"}
    zoe = found[f"{ZOE}_101"]
    assert zoe.identity == {"participant_id": "101", "full_name": ZOE, "lms": "moodle"} and not zoe.problem
    assert len(zoe.entries[0].folders) == 2  # the file and the online text: one student
    assert "not a Moodle participant's folder" in found["index.html"].problem
    unpacked = tmp_path / "unpacked"
    with zipfile.ZipFile(download) as z:  # the folder the download unpacks to, inside one of its own
        z.extractall(unpacked / "TP3-12-download")
    assert {h.student for h in handins(unpacked)} == set(found)
    evil = unpacked / "TP3-12-download" / f"{EVIL}_103_assignsubmission_file_" / "tp3c_domain_adaptation"
    (evil / "dann.py").unlink()
    (evil / "dann.py").symlink_to(REPO / "tp3c_domain_adaptation/dann.py")  # never followed
    taken = {}
    student = {h.student: h for h in handins(unpacked)}[f"{EVIL}_103"]
    reader = Reader(Wanted.of(["tp3c_domain_adaptation/dann.py"]), taken.__setitem__).read(student.entries[0])
    assert taken == {} and "a symbolic link" in reader.refused[0]
    taken.clear()
    Reader(Wanted.of(["tp3c_domain_adaptation/dann.py"]), taken.__setitem__).read(zoe.entries[0])
    assert set(taken) == {"handin/tp3c_domain_adaptation/dann.py", "handin/ANSWERS.md"}  # from her own zip


def test_a_download_whose_folder_cannot_be_hidden_is_refused(tmp_path):
    from grading.runner import Limits, namespaces_available

    if not namespaces_available():
        pytest.skip("no user namespaces here: the sandbox, and what it hides, cannot be set up")
    download = Path(tempfile.gettempdir()) / f"{tmp_path.name}-download.zip"  # beside the batch's own folder
    try:
        _moodle_download(download)
        with pytest.raises(SystemExit, match="into a folder of its own"):
            grade(download, tmp_path / "out", "tp3c", only=CHECKS, limits=Limits(sandbox="on"))
    finally:
        download.unlink()


def test_a_participants_own_zip_is_read_one_level_deep_and_a_file_once(tmp_path):
    folder = tmp_path / "dl" / f"{ZOE}_101_assignsubmission_file_"
    folder.mkdir(parents=True)
    (folder / "dann.py").write_text("first = True\n")
    deeper, own = io.BytesIO(), io.BytesIO()
    with zipfile.ZipFile(deeper, "w") as z:
        z.writestr("ANSWERS.md", "too deep")
    with zipfile.ZipFile(own, "w") as z:
        z.writestr("dann.py", "second = True\n")
        z.writestr("deeper.zip", deeper.getvalue())
    (folder / "own.zip").write_bytes(own.getvalue())
    (folder / "bomb.zip").write_bytes(b"PK not a zip")
    [student] = handins(tmp_path / "dl")
    taken = {}
    reader = Reader(Wanted.of(["tp3c_domain_adaptation/dann.py"]), taken.__setitem__).read(student.entries[0])
    assert taken == {"dann.py": b"first = True\n"}  # the folder's, read first; the zip's refused, the deeper not read
    assert any(r.startswith("dann.py: handed in twice") for r in reader.refused), reader.refused
    assert any(r.startswith("bomb.zip: not a readable .zip") for r in reader.refused), reader.refused


@pytest.fixture(scope="module")
def graded(tmp_path_factory) -> Path:
    """The Moodle download graded end to end on two fast checks (Bob loses the step-sign one)."""
    tmp = tmp_path_factory.mktemp("lms")
    (tmp / "download").mkdir()  # a folder of its own: the batch hides it from the students' code
    download = _moodle_download(tmp / "download" / "TP3-12.zip")
    out = tmp / "out"
    from grading.runner import namespaces_available

    checks = [arg for c in CHECKS for arg in ("--check", c)]
    sandbox = "on" if namespaces_available() else "off"
    assert main(["grade", str(download), "--out", str(out), "--practical", "tp3c", *checks, "--sandbox", sandbox]) == 0
    return out


def _report(out: Path, student: str) -> dict:
    return json.loads((out / "students" / student / "report.json").read_text())


def test_a_moodle_download_is_graded_as_it_is(graded):
    zoe, bob = _report(graded, f"{ZOE}_101"), _report(graded, f"{BOB}_102")
    points = {c.id: c.points for c in select("tp3c", include_hidden=True)}
    full = sum(points[c] for c in CHECKS)
    assert (zoe["participant_id"], zoe["full_name"], zoe["score"], zoe["max_score"]) == ("101", ZOE, full, full)
    assert (bob["participant_id"], bob["score"]) == ("102", full - points["tp3c.dann_step_sign"]) == ("102", 1)
    assert (graded / "students" / f"{ZOE}_101" / "ANSWERS.md").read_text().endswith("Q1: yes.\n")
    assert "not a Moodle participant's folder" in _report(graded, "index.html")["notes"][0]
    with open(graded / "gradebook.csv") as f:
        rows = {r["student"]: r for r in csv.DictReader(f)}
    assert rows[f"{ZOE}_101"]["participant_id"] == "101" and rows[f"{BOB}_102"]["total"] == "1"
    assert f"'{EVIL}_103" in rows  # the formula-like name neutralised in the gradebook


def _worksheet(path: Path, header: list[str], rows: list[list[str]]) -> Path:
    with open(path, "w", newline="", encoding="utf-8") as f:
        csv.writer(f).writerows([header] + rows)
    return path


EN_HEADER = ["Identifier", "Full name", "Email address", "Status", "Grade", "Maximum Grade",
             "Grade can be changed", "Last modified (submission)", "Last modified (grade)", "Feedback comments"]
FR_HEADER = ["Identifiant", "Nom complet", "Adresse de courriel", "Statut", "Note", "Note maximale",
             "La note peut être modifiée", "Dernière modification (travail remis)",
             "Dernière modification (note)", "Feedback par commentaires"]


def _worksheet_rows(top: str) -> list[list[str]]:
    return [["Participant 101", ZOE, "zoe@uni.fr", "Remis", "", top, "Oui", "lundi 1 décembre 2026, 10:00", "-", ""],
            ["Participant 102", BOB, "bob@uni.fr", "Remis", "", top, "Oui", "lundi 1 décembre 2026, 11:00", "-", ""],
            ["Participant 104", "Dora Absent", "dora@uni.fr", "Aucun", "", top, "Oui", "-", "-", "vu,\n à revoir"]]


@pytest.mark.parametrize("header, top, sep", [(EN_HEADER, "20.00", "."), (FR_HEADER, "20,00", ","),
                                               ([f"Spalte {i}" for i in range(10)], "20,00", ",")])
def test_the_moodle_worksheet_is_filled_in_whatever_its_language(graded, tmp_path, header, top, sep):
    sheet = _worksheet(tmp_path / "worksheet.csv", header, _worksheet_rows(top))
    path, n, unmatched = export(graded, "moodle-worksheet", worksheet=sheet, options=Options(scale=20, step=0.5),
                                output=tmp_path / "filled.csv")
    with open(path, newline="", encoding="utf-8") as f:
        rows = list(csv.reader(f))
    assert rows[0] == header and n == 3
    before = _worksheet_rows(top)
    for i, (given, feedback) in enumerate([("20", "Grade 20/20"), (f"6{sep}5", "Grade 6.5/20")]):
        assert rows[i + 1][4] == given and rows[i + 1][9].startswith(feedback)
        assert [c for j, c in enumerate(rows[i + 1]) if j not in (4, 9)] == \
            [c for j, c in enumerate(before[i]) if j not in (4, 9)], "another cell changed"
    assert "the domain loss rises" in rows[2][9]  # Bob's check lost, named
    assert rows[3] == before[2], "a participant without a submission is left as exported"
    assert {u[0]["student"] for u in unmatched} == {f"{EVIL}_103", "index.html"}
    with open(tmp_path / "unmatched.csv") as f:
        listed = {r["student"]: r["reason"] for r in csv.DictReader(f)}
    assert set(listed) == {f"'{EVIL}_103", "index.html"} and "no row of" in listed["index.html"]


def test_the_worksheet_writes_the_sites_decimal_comma(graded, tmp_path):
    sheet = _worksheet(tmp_path / "ws.csv", FR_HEADER, _worksheet_rows("20,00"))
    path, _, _ = export(graded, "moodle-worksheet", worksheet=sheet, options=Options(scale=10, step=0.5),
                        output=tmp_path / "out.csv")
    with open(path, newline="") as f:
        rows = list(csv.reader(f))
    assert rows[1][4] == "10" and rows[2][4] == "3,5"  # Bob: 1/3 of 10, half up to 0.5


def _roster(path: Path, rows: list[list[str]]) -> Path:
    header = ["First name", "Last name", "ID number", "Institution", "Department", "Email address"]
    return _worksheet(path, header, rows)


def test_moodle_csv_joins_the_roster_and_never_writes_an_unknown_user(graded, tmp_path, capsys):
    roster = _roster(tmp_path / "roster.csv", [["Zoé", "Ünal de la Tour", "e101", "", "", "zoe@uni.fr"],
                                                ["Bob", "Smith", "e102", "", "", "bob@uni.fr"],
                                                ["Dora", "Absent", "e104", "", "", "dora@uni.fr"]])
    path, n, unmatched = export(graded, "moodle-csv", roster=roster, match="fullname", item="TP3",
                                options=Options(scale=20, step=1))
    with open(path, newline="") as f:
        rows = list(csv.reader(f))
    assert rows[0] == ["First name", "Last name", "TP3", "TP3 (Feedback)"]
    assert [r[:3] for r in rows[1:]] == [["Zoé", "Ünal de la Tour", "20"], ["Bob", "Smith", "7"],
                                         ["Dora", "Absent", ""]], "no submission: empty, not 0"
    assert "Checks lost" in rows[2][3] and "tp3c_domain_adaptation: 1/3" in rows[2][3]
    assert len(rows) == 4 and n == 3, "a row for a user not in the roster"
    err = capsys.readouterr().err
    assert "not exported" in err and "Evil" in err and len(unmatched) == 2
    export(graded, "moodle-csv", roster=roster, match="fullname", item="TP3",
                     options=Options(scale=20, step=1, missing_zero=True), output=tmp_path / "zero.csv")
    with open(tmp_path / "zero.csv", newline="") as f:
        assert list(csv.reader(f))[3][2] == "0"


def test_moodle_csv_matches_by_email_from_folder_names(tmp_path):
    """Hand-ins named after the student's email (no Moodle download): the roster's email column."""
    out = tmp_path / "out"
    for name, score in (("zoe@uni.fr", 3.0), ("=1+1@uni.fr", 1.0)):
        folder = out / "students" / name
        folder.mkdir(parents=True)
        results = [{"id": "tp3c.a", "title": "a", "practical": "tp3c_domain_adaptation", "points": 4.0,
                    "score": score, "status": "failed" if score < 4 else "passed", "hidden": False}]
        (folder / "report.json").write_text(json.dumps({"student": name, "score": score, "max_score": 4.0,
                                                        "passed": 0, "checks": 1, "results": results,
                                                        "missing_files": [], "notes": ["=cmd|' /C calc'!A0"]}))
    roster = _roster(tmp_path / "roster.csv", [["Zoé", "T", "", "", "", "ZOE@uni.fr"],
                                                ["=1+1", "x", "", "", "", "=1+1@uni.fr"]])
    path, _, unmatched = export(out, "moodle-csv", roster=roster, item="TP3", options=Options(step=0.5))
    with open(path, newline="") as f:
        rows = list(csv.reader(f))
    assert rows[0] == ["Email address", "First name", "Last name", "TP3", "TP3 (Feedback)"]
    assert rows[1][:4] == ["ZOE@uni.fr", "Zoé", "T", "3"] and not unmatched
    cells = [c for r in rows for c in r]
    assert not any(c.lstrip(" ").startswith(("=", "+", "@")) for c in cells), cells  # formulas neutralised
    assert rows[2][0] == "'=1+1@uni.fr" and rows[2][3] == "1"


def test_canvas_import_has_its_columns_and_points_possible(graded, tmp_path):
    header = ["Student", "ID", "SIS User ID", "SIS Login ID", "Section", "TP3 DANN (4521)", "Current Score"]
    export_rows = [["    Points Possible", "", "", "", "", "20", ""],
                   ["Ünal de la Tour, Zoé", "11", "e101", "zunal", "RDFIA", "", ""],
                   ["Smith, Bob", "12", "e102", "bsmith", "RDFIA", "", ""],
                   ["Absent, Dora", "13", "e104", "dabsent", "RDFIA", "", ""]]
    roster = _worksheet(tmp_path / "canvas.csv", header, export_rows)
    path, n, unmatched = export(graded, "canvas", roster=roster, match="fullname", item="TP3 DANN",
                                options=Options(scale=20, step=0.5))
    with open(path, newline="") as f:
        rows = list(csv.reader(f))
    assert rows[0] == ["Student", "ID", "SIS User ID", "SIS Login ID", "Section", "TP3 DANN (4521)"]
    assert rows[1] == ["Points Possible", "", "", "", "", "20"]
    assert rows[2:] == [["Ünal de la Tour, Zoé", "11", "e101", "zunal", "RDFIA", "20"],
                        ["Smith, Bob", "12", "e102", "bsmith", "RDFIA", "6.5"],
                        ["Absent, Dora", "13", "e104", "dabsent", "RDFIA", ""]]
    assert n == 4 and {u[0]["student"] for u in unmatched} == {f"{EVIL}_103", "index.html"}


@pytest.mark.parametrize("score, top, scale, step, expected", [
    (29, 40, 20, 0.5, "14.5"), (28.5, 40, 20, 0.5, "14.5"), (28.4, 40, 20, 0.5, "14"),
    (1, 3, 20, 0.01, "6.67"), (2, 3, 20, 0.01, "13.33"), (5, 8, 20, 1, "13"), (7, 8, None, 0.01, "7")])
def test_rescaling_rounds_half_up_to_the_step(score, top, scale, step, expected):
    assert number(grade_of({"score": score, "max_score": top}, Options(scale, step))) == expected


def test_the_export_command_and_its_errors(graded, tmp_path, capsys):
    assert main(["export", str(graded), "--to", "canvas"]) == 2
    assert "needs --roster" in capsys.readouterr().err
    roster = _roster(tmp_path / "r.csv", [["Bob", "Smith", "e102", "", "", "bob@uni.fr"]])
    assert main(["export", str(graded), "--to", "moodle-csv", "--roster", str(roster), "--match", "username"]) == 2
    assert "no username column" in capsys.readouterr().err
    assert main(["export", str(graded), "--to", "moodle-csv", "--roster", str(roster), "--match", "fullname",
                 "--scale", "20", "--round", "0.5", "--output", str(tmp_path / "g.csv")]) == 0
    assert "1 rows; 3 students not matched" in capsys.readouterr().out
    assert (tmp_path / "unmatched.csv").is_file()


def test_the_lms_modules_stay_out_of_the_student_release(student_release):
    assert not (student_release / "grading/lms.py").exists() and not (student_release / "grading/moodle.py").exists()
    assert "export" not in (student_release / "grading/__main__.py").read_text()


def test_similarity_reads_a_moodle_download_as_grade_does(tmp_path, capsys):
    """The download's participants are compared as the students grade names them: Zoé's
    copy in her own zip and the copy at the top of the third participant's folder are the
    same code; Bob's differs by one sign."""
    from grading.similarity import PAIRS

    download = _moodle_download(tmp_path / "TP3-12-download.zip")
    assert main(["similarity", str(download), "--out", str(tmp_path / "sim"), "--practical", "tp3c"]) == 0
    assert "3 students, 3 pairs compared" in capsys.readouterr().out
    with open(tmp_path / "sim" / PAIRS, newline="") as f:
        rows = list(csv.DictReader(f))
    students = {n for r in rows for n in (r["student_a"], r["student_b"])}
    assert any(n.endswith("_101") for n in students) and any(n.endswith("_103") for n in students)
    assert all(float(r["score"]) > 0.9 for r in rows)  # three copies of the reference, one sign apart


def test_the_grades_may_sit_beside_the_download(tmp_path):
    """The guide's layout: the download and the grades in one folder of the term's; the
    sandbox hides that folder, the grades' folder with it."""
    from grading.runner import namespaces_available

    term = tmp_path / "term"
    term.mkdir()
    download = _moodle_download(term / "TP3c.zip")
    sandbox = "on" if namespaces_available() else "off"
    assert main(["grade", str(download), "--out", str(term / "grades"), "--practical", "tp3c",
                 "--check", "tp3c.grl_forward", "--sandbox", sandbox]) == 0
    zoe = _report(term / "grades", f"{ZOE}_101")
    assert zoe["score"] == zoe["max_score"] == 1, zoe["results"]

"""Grading trusts no submission: in how it is handed in (links, special files, archives,
two hand-ins for one student), in what its processes can read (the grader's environment),
and in what it makes the reports say (formulas, control characters, HTML)."""
import csv
import json
import os
import socket
import subprocess
import sys
import unicodedata
from pathlib import Path

import mistune
import pytest

from grading.collect import ENTRY_LIMIT, Reader, Refused, Wanted, handins
from grading.runner import Limits, namespaces_available, process_env
from grading.untrusted import MESSAGE_LIMIT, csv_cell, md_block, md_code, plain
from tests.hostile import READS_THE_ENVIRONMENT, batch_checks, write_zip

REPO = Path(__file__).resolve().parents[1]
FILE = "tp3c_domain_adaptation/dann.py"
GOOD = (REPO / FILE).read_text()
WANTED = Wanted.of([FILE])
FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


def _read(entry: Path) -> tuple[dict, Reader]:
    taken = {}
    reader = Reader(WANTED, lambda rel, data: taken.__setitem__(rel, data)).read(entry)
    return taken, reader


# ---------------------------------------------------------------------------------- the text

def test_plain_text_has_no_control_characters_and_a_bounded_length():
    evil = "a\x1b[2J\x1b]0;t\x07b\r\nc\u202ed\x00e\x9b\ud800f\u2028g\tz" + "x" * 10_000
    text = plain(evil, 100)
    assert text.startswith("a[2J]0;tb\ncdef\ng\tz") and "characters cut" in text and len(text) < 140
    assert plain("one\ntwo\tthree", single_line=True) == "one two three"
    assert all(unicodedata.category(ch) not in ("Cc", "Cf", "Cs") or ch in "\n\t" for ch in plain(evil))


@pytest.mark.parametrize("value, cell", [("=1+1", "'=1+1"), ("+SUM(1)", "'+SUM(1)"), ("-2", "'-2"),
                                         ("@A1", "'@A1"), ("\t=1", "' =1"), ("\r=1", "' =1"), ("  =1", "'  =1"),
                                         ("alice", "alice"), ("a=b", "a=b"), ("x\ny", "x y")])
def test_csv_cells_that_a_spreadsheet_would_run_are_neutralised(value, cell):
    assert csv_cell(value) == cell


def test_markdown_shows_what_a_submission_wrote_as_code():
    evil = "<script>alert(1)</script> ``` [x](javascript:alert(1)) ![i](http://t.example/p.png) <img src=x>"
    html = mistune.html(f"# {md_code(evil)}\n\n- item:\n\n{md_block(evil + chr(10) + '````', indent='  ')}\n")
    assert "<script" not in html and "<img" not in html and "<a " not in html, html
    assert html.count("&lt;script&gt;") == 2


# ---------------------------------------------------------------------------------- collection

def test_one_row_per_student_whatever_the_names(tmp_path):
    for name in ("alice", "bob", "Bob", "zo\u00e9", "carol", "erin"):
        (tmp_path / name).mkdir()
    for name in ("alice.zip", "zoe\u0301.ZIP", "dave.zip"):
        write_zip(tmp_path / name, [(FILE, GOOD.encode(), 0o100644)])
    (tmp_path / "carol.tar.gz").write_bytes(b"x")
    (tmp_path / "frank.txt").write_text("not a hand-in")
    (tmp_path / "gina").symlink_to(REPO)
    os.mkfifo(tmp_path / "hugo.zip")
    (tmp_path / ".DS_Store").write_text("")
    found = {h.student: h for h in handins(tmp_path)}
    assert sorted(found) == sorted(["Bob", "alice", "carol", "dave", "erin", "frank", "gina", "hugo", "zoe\u0301"])
    for student, entries in (("alice", 2), ("Bob", 2), ("zoe\u0301", 2), ("carol", 2)):
        assert len(found[student].entries) == entries and "2 hand-ins" in found[student].problem, student
        assert all(e.name in found[student].problem for e in found[student].entries)
    assert "symbolic link" in found["gina"].problem and "FIFO" in found["hugo"].problem
    assert "not a folder or a .zip" in found["frank"].problem
    assert not found["dave"].problem and not found["erin"].problem


def test_a_folder_gives_regular_files_only_without_following_links(tmp_path):
    sub = tmp_path / "s"
    (sub / "tp3c_domain_adaptation").mkdir(parents=True)
    (sub / FILE).symlink_to(REPO / FILE)
    (sub / "ANSWERS.md").symlink_to("/etc/passwd")
    os.mkfifo(sub / "dann.py")
    (sub / "notebooks").symlink_to(REPO)
    socket.socket(socket.AF_UNIX).bind(str(sub / "tp3c_domain_adaptation.ipynb"))
    with open(sub / "tp3d_gan.ipynb", "wb") as f:
        f.truncate(3 << 30)  # sparse: refused by its size, never read
    (sub / "deep").mkdir()
    (sub / "deep" / "notes.txt").write_text("not listed: never read")
    taken, reader = _read(sub)
    assert taken == {}
    why = "\n".join(reader.refused)
    for expected in ("tp3c_domain_adaptation/dann.py: a symbolic link", "ANSWERS.md: a symbolic link",
                     "dann.py: a FIFO", "notebooks: a symbolic link", "socket", "larger than"):
        assert expected in why, why


def test_a_folder_is_read_breadth_first_within_bounds(tmp_path):
    sub = tmp_path / "s"
    deep = sub.joinpath(*["d"] * 20)
    deep.mkdir(parents=True)
    (deep / "dann.py").write_text("too deep")
    (sub / "many").mkdir()
    for i in range(ENTRY_LIMIT + 5):
        (sub / "many" / f"{i}.txt").touch()
    (sub / "dann.py").write_text(GOOD)
    taken, reader = _read(sub)
    assert taken == {"dann.py": GOOD.encode()}
    assert any("first" in n for n in reader.notes)


def test_an_archive_is_read_entry_by_entry_within_bounds(tmp_path):
    outside = tmp_path / "outside"
    outside.mkdir()
    archive = write_zip(tmp_path / "a.zip", [
        (FILE, GOOD.encode(), 0o100644),
        ("../" * 40 + str(outside / "dann.py").lstrip("/"), b"x", 0o100644),
        (str(outside / "ANSWERS.md"), b"x", 0o100644),
        ("..\\..\\dann.py", b"x", 0o100644),
        ("nb/tp3d_gan.ipynb", b"\n" * (60 << 20), 0o100644),  # larger than a notebook may be
        ("ANSWERS.md", b"\n" * (1 << 21), 0o100644),  # 2 MB of newlines: a compression ratio of a bomb
        ("data/filler.bin", bytes(64 << 20), 0o100644),  # not listed: never inflated
        ("x/dann.py", b"/etc/passwd", 0o120777),
        ("y/dann.py", b"", 0o020644),
        ("notebooks/tp3c_domain_adaptation.ipynb", b"{}", 0o100644),
        ("notebooks/tp3c_domain_adaptation.ipynb", b"{}", 0o100644),
    ])
    taken, reader = _read(archive)
    assert taken == {FILE: GOOD.encode()}
    why = "\n".join(reader.refused)
    for expected in ("leads outside", "MB allowed", "archive bomb", "x/dann.py: a symbolic link",
                     "y/dann.py: a device", "appears 2 times"):
        assert expected in why, why
    assert list(outside.iterdir()) == []


@pytest.mark.parametrize("make, words", [
    (lambda p: write_zip(p, [(f"{i}.txt", b"", 0o100644) for i in range(ENTRY_LIMIT + 1)]), "entries"),
    (lambda p: p.write_bytes(b"PK\x03\x04 not really a zip"), "not a readable .zip"),
])
def test_an_archive_refused_whole_says_why(tmp_path, make, words):
    path = tmp_path / "s.zip"
    make(path)
    with pytest.raises(Refused, match=words):
        _read(path)


# ---------------------------------------------------------------------------------- environment

def test_processes_start_from_an_allow_list(tmp_path, monkeypatch):
    monkeypatch.setenv("RDFIA_TEST_TOKEN", "s3cr3t")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "s3cr3t")
    env = process_env(1, tmp_path / "home")
    assert "s3cr3t" not in json.dumps(env)
    assert env["HOME"] == str(tmp_path / "home") and env["TMPDIR"] == str(tmp_path / "home" / "tmp")
    assert env["OMP_NUM_THREADS"] == "1" and env["LC_ALL"] == "C.UTF-8"


def _leaky_submission(subs: Path, mark: str) -> None:
    (subs / "mallory").mkdir(parents=True)
    (subs / "mallory" / "dann.py").write_text(f"MARK = {mark!r}\n" + READS_THE_ENVIRONMENT + GOOD)


def _grade_cli(subs: Path, out: Path, env: dict, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "grading", "grade", str(subs), "--out", str(out),
                           "--practical", "tp3c", *args], cwd=REPO, env=env, capture_output=True, text=True,
                          check=False, timeout=600)


def _every_output(out: Path) -> str:
    return "\n".join(p.read_text(errors="replace") for p in sorted(out.rglob("*")) if p.is_file())


@pytest.mark.parametrize("sandbox", ["on", "off"])
def test_no_student_process_reads_the_graders_environment(tmp_path, sandbox):
    """The secret is in the environment the grader starts with (so in /proc/PID/environ of the
    batch's process too); the submission looks for it everywhere it can and says what it read."""
    if sandbox == "on" and not namespaces_available():
        pytest.skip("no user namespaces here")
    mark = "rdfia-secret-"
    secret = mark + os.urandom(8).hex()
    _leaky_submission(tmp_path / "subs", mark)
    env = dict(os.environ, RDFIA_TEST_TOKEN=secret, PYTHONPATH=str(REPO))
    res = _grade_cli(tmp_path / "subs", tmp_path / "out", env, "--check", "tp3c.grl_forward", "--sandbox", sandbox)
    assert res.returncode == 0, res.stderr[-3000:]
    report = json.loads((tmp_path / "out/students/mallory/report.json").read_text())
    message = report["results"][0]["message"]
    assert "no secret found" in message and "/proc/self/environ" in message, message
    assert "LEAKED" not in message and secret not in _every_output(tmp_path / "out")
    assert secret not in res.stdout + res.stderr


# ---------------------------------------------------------------------------------- sandbox

def test_a_folder_inside_a_hidden_one_is_not_hidden_twice(tmp_path):
    """Hiding a folder covers what it holds: a folder inside it (the grades inside the
    submissions' folder) is left out of the list, which the sandbox could not mount over."""
    from grading.runner import _visible

    (tmp_path / "subs" / "grades").mkdir(parents=True)
    (tmp_path / "other").mkdir()
    (tmp_path / "keep" / "python").mkdir(parents=True)
    hide = [tmp_path / "subs" / "grades", tmp_path / "subs", tmp_path / "other", tmp_path / "subs", tmp_path / "keep"]
    assert _visible(hide, keep=[tmp_path / "keep" / "python"]) == [str(tmp_path / "other"), str(tmp_path / "subs")]


def test_output_read_back_is_a_regular_file_never_a_link(tmp_path):
    """What the grader reads back from the student's folder (a crashed check's output) shows
    nothing of a file the student's process linked there, and does not block on a FIFO."""
    from grading.runner import OUTPUT_TAIL, _tail

    (tmp_path / "hidden.py").write_text("THRESHOLD = 0.83\n")
    (tmp_path / "link.txt").symlink_to(tmp_path / "hidden.py")
    os.mkfifo(tmp_path / "fifo.txt")
    (tmp_path / "log.txt").write_text("x" * 5000 + " the end")
    assert _tail(tmp_path / "link.txt") == "" and _tail(tmp_path / "fifo.txt") == ""
    assert _tail(tmp_path / "missing.txt") == ""
    tail = _tail(tmp_path / "log.txt")
    assert tail.endswith("the end") and len(tail) == OUTPUT_TAIL


def test_grade_stops_without_a_sandbox_unless_told(tmp_path, monkeypatch):
    import grading.grade as grade_module
    from grading.__main__ import main

    (tmp_path / "subs" / "alice").mkdir(parents=True)
    monkeypatch.setattr(grade_module, "namespaces_available", lambda: False)
    with pytest.raises(SystemExit) as stop:
        main(["grade", str(tmp_path / "subs"), "--out", str(tmp_path / "out")])
    assert "--sandbox off" in str(stop.value) and "\n" not in str(stop.value)
    assert not (tmp_path / "out").exists()


def test_reports_and_gradebook_record_the_isolation(tmp_path, monkeypatch):
    from grading.grade import grade

    subs, out = tmp_path / "subs", tmp_path / "out"
    (subs / "alice").mkdir(parents=True)
    (subs / "alice" / "dann.py").write_text(GOOD)
    (subs / "bob").mkdir()
    write_zip(subs / "Bob.zip", [(FILE, GOOD.encode(), 0o100644)])
    reports = {r["student"]: r for r in grade(subs, out, "tp3c", only=["tp3c.grl_forward"],
                                              limits=Limits(sandbox="off"))}
    assert reports["alice"]["score"] == 1 and reports["alice"]["isolation"] == "limits only"
    assert set(reports) == {"alice", "Bob"} and reports["Bob"]["results"][0]["status"] == "error"
    assert "Bob.zip" in reports["Bob"]["results"][0]["message"] and "bob" in reports["Bob"]["results"][0]["message"]
    with open(out / "gradebook.csv") as f:
        rows = {r["student"]: r for r in csv.DictReader(f)}
    assert rows["alice"]["isolation"] == "limits only" and "2 hand-ins" in rows["Bob"]["notes"]
    for name in ("report.json", "results.json"):
        assert "limits only" in (out / "students/alice" / name).read_text()


INPUTS_TOO_BIG = """
import json, marshal, os, pickle, resource, threading
import torch  # as in the student's process, loaded before any check
from grading import student

def probe(x):
    return 1

big = pickle.dumps((marshal.dumps(probe.__code__), None, (bytes(300 << 20),)))
to_child, to_parent = os.pipe(), os.pipe()
if os.fork() == 0:
    data = next(int(l.split()[1]) << 10 for l in open("/proc/self/status") if l.startswith("VmData"))
    limit = data + (100 << 20)  # 100 MB left: too few for a 300 MB input
    resource.setrlimit(resource.RLIMIT_DATA, (limit, limit))
    os.environ["RDFIA_LIMITS"] = json.dumps({"memory_mb": limit >> 20})
    try:
        student.serve(to_child[0], to_parent[1], ".", {})
    finally:
        os._exit(3)
threading.Thread(target=student.send, args=(to_child[1], big), daemon=True).start()
print(student.decode(student.receive(to_parent[0]))["error"][1])
"""


def test_inputs_too_big_for_the_memory_limit_are_reported_as_such():
    """A probe's inputs that do not fit in the student's process: the reply says so (and the
    instructor's way out), not that the student's code exited."""
    res = subprocess.run([sys.executable, "-c", INPUTS_TOO_BIG], cwd=REPO, capture_output=True, text=True,
                         timeout=60)
    assert res.returncode == 0, res.stderr[-2000:]
    assert "inputs did not fit in the memory limit" in res.stdout and "--memory-mb" in res.stdout, res.stdout


# ---------------------------------------------------------------------------------- the reports

def _hostile_report() -> dict:
    evil = "\x1b[31m<script>alert(1)</script>\r=cmd|' /C calc'!A0\n```\n[x](javascript:1)" + "A" * 50_000
    result = {"id": "tp3c.grl_forward", "title": "t", "hidden": False, "practical": "tp3c_domain_adaptation",
              "points": 1.0, "question": "", "score": 0.0, "status": "failed", "where": "", "seconds": 1,
              "message": plain(evil)}
    return {"student": plain("=HYPERLINK(\"x\")\x1b[2J", 200, True), "isolation": "sandbox", "missing_files": [],
            "notes": [plain("\x1b]0;t\x07<img src=x>/dann.py: a symbolic link")], "results": [result],
            "answers": {}, "score": 0.0, "max_score": 1.0, "passed": 0, "checks": 1}


def test_what_a_submission_controls_is_safe_in_every_report(tmp_path):
    from grading.registry import select
    from grading.reports import write_gradebook, write_reports

    report = _hostile_report()
    write_reports(report, tmp_path)
    write_gradebook([report], select("tp3c", include_hidden=True)[:1], tmp_path / "gradebook.csv")
    folder = tmp_path / "students" / report["student"]
    for path in [*folder.iterdir(), tmp_path / "gradebook.csv"]:
        text = path.read_text()
        assert not any(unicodedata.category(ch) == "Cc" and ch not in "\n" for ch in text), path
    html = mistune.html((folder / "feedback.md").read_text())
    assert "<script" not in html and "<img" not in html and "<a " not in html
    results = json.loads((folder / "results.json").read_text())
    assert results["output_format"] == results["test_output_format"] == results["test_name_format"] == "text"
    assert all(t["output_format"] == t["name_format"] == "text" for t in results["tests"])
    assert all(len(t["output"]) <= MESSAGE_LIMIT + 40 for t in results["tests"])
    with open(tmp_path / "gradebook.csv") as f:
        cells = [c for row in csv.reader(f) for c in row]
    assert not any(c.startswith(FORMULA_START) for c in cells), cells[:3]


# ---------------------------------------------------------------------------------- the slow batch

def _lost_reasons(report: dict) -> list[str]:
    """Why each check was lost, with the row's notes (what collection refused, and why)."""
    notes = "; ".join(report.get("notes", []))
    return [f"{r['message']} {notes}" for r in report["results"] if r["status"] != "passed"]


@pytest.mark.slow
def test_a_batch_of_hostile_hand_ins_is_graded_safely(tmp_path):
    """Every kind of tests/hostile.py's HANDED_IN in one batch, with a correct submission, by
    the command line, a secret in its environment: one row per student, the expected score
    and reason, nothing leaked, nothing written outside, no submission changed."""
    from tests.hostile import HANDED_IN

    subs, out, outside = tmp_path / "submissions", tmp_path / "out", tmp_path / "outside"
    subs.mkdir()
    outside.mkdir()
    mark = "rdfia-secret-"
    secret = mark + os.urandom(8).hex()
    paths = {"reference": str(REPO / FILE), "outside": str(outside), "mark": mark}
    (subs / "alice").mkdir()
    (subs / "alice" / "dann.py").write_text(GOOD)
    expected = {"alice": ("full", ())}
    for kind, (build, score, words) in HANDED_IN.items():
        for student in build(subs, kind, GOOD, paths):
            expected[student] = (score, words)
    before = sorted((p.name, p.lstat().st_mtime_ns, p.lstat().st_size) for p in subs.rglob("*"))
    env = dict(os.environ, RDFIA_TEST_TOKEN=secret, PYTHONPATH=str(REPO))
    checks = [arg for check in batch_checks() for arg in ("--check", check)]
    res = _grade_cli(subs, out, env, *checks, "--workers", "2", "--memory-mb", "1024", "--output-mb", "8",
                     "--sandbox", "on" if namespaces_available() else "off")
    assert res.returncode == 0, res.stderr[-3000:]

    assert sorted((p.name, p.lstat().st_mtime_ns, p.lstat().st_size) for p in subs.rglob("*")) == before
    assert list(outside.iterdir()) == [], "an archive wrote outside the batch"
    with open(out / "gradebook.csv") as f:
        rows = list(csv.DictReader(f))
    names = [r["student"].removeprefix("'") for r in rows]
    assert sorted(names) == sorted(expected), "one row per student"
    reports = {n: json.loads((out / "students" / n / "report.json").read_text()) for n in expected}
    full = reports["alice"]["max_score"]
    problems = []
    for student, (score, words) in expected.items():
        got = reports[student]["score"]
        if got != (full if score == "full" else 0):
            problems.append(f"{student!r}: scored {got}, expected {score}")
        for reason in _lost_reasons(reports[student]):
            problems += [f"{student!r}: {w!r} not in {reason[:300]!r}"
                         for w in words if w.lower() not in reason.lower()]
    assert not problems, "\n".join(problems)

    everything = _every_output(out)
    assert secret not in everything and secret not in res.stdout + res.stderr
    for path in out.rglob("*"):
        if path.is_file() and path.suffix in (".md", ".csv", ".json"):
            text = path.read_text()
            assert not any(unicodedata.category(ch) == "Cc" and ch not in "\n" for ch in text), path
            if path.name == "feedback.md":
                html = mistune.html(text)
                assert "<script" not in html and "<img" not in html and "<a " not in html, path
    cells = [c for r in rows for c in r.values()]
    assert not any(c.startswith(FORMULA_START) for c in cells)

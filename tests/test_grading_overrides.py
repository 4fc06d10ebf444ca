"""The instructor's overrides (kept beside the gradebook, applied after every grading run)
and partial credit for checks made of several cases."""
import copy
import csv
import json
import shutil
from pathlib import Path

import pytest

from common.errors import UserError
from grading import overrides as adjust
from grading.__main__ import main
from grading.grade import grade
from grading.registry import select

REPO = Path(__file__).resolve().parents[1]
DANN = REPO / "tp3c_domain_adaptation/dann.py"
IGNORES_LAMBDA = ("return -ctx.lambd * grad_output, None", "return -grad_output, None")
IGNORES_GAMMA = ("return 2.0 / (1.0 + math.exp(-gamma * p)) - 1.0", "return 2.0 / (1.0 + math.exp(-10.0 * p)) - 1.0")
ONLY = ["tp3c.grl_forward", "tp3c.grl_backward"]


def _dann(*edits) -> str:
    text = DANN.read_text()
    for old, new in edits:
        assert text.count(old) == 1, old
        text = text.replace(old, new)
    return text


def _submissions(root: Path) -> Path:
    """alice hands in the reference; bob a reversal layer that ignores lambda (right for lambda = 1 only)."""
    for student, text in (("alice", _dann()), ("bob", _dann(IGNORES_LAMBDA))):
        (root / student).mkdir(parents=True)
        (root / student / "dann.py").write_text(text)
    return root


def _write_overrides(out: Path, *rows) -> None:
    out.mkdir(parents=True, exist_ok=True)
    with open(out / adjust.FILE, "w", newline="", encoding="utf-8-sig") as f:  # as a spreadsheet saves it
        csv.writer(f).writerows([adjust.COLUMNS, *rows])


def _gradebook(out: Path) -> dict:
    with open(out / "gradebook.csv") as f:
        return {row["student"]: row for row in csv.DictReader(f)}


def _report(out: Path, student: str) -> dict:
    return json.loads((out / "students" / student / "report.json").read_text())


def test_partial_credit_follows_the_cases_passed_and_a_crash_scores_0(tmp_path):
    """A GRL that ignores lambda passes 1 of the 4 lambdas, a schedule that ignores gamma 4 of
    its 6 points: their share of the points; a pseudo-label loss that raises on one threshold
    crashes the whole check, which scores 0 although its other cases would pass."""
    from grading.runner import grader_copy, run_checks

    tree = tmp_path / "tree"
    for folder in ("tp3c_domain_adaptation", "common"):
        shutil.copytree(REPO / folder, tree / folder, ignore=shutil.ignore_patterns("__pycache__"))
    head = "def pseudo_label_loss(target_logits: torch.Tensor, threshold: float = 0.9)"
    raises = (head, "def pseudo_label_loss(target_logits, threshold=0.9):\n    if threshold > 0.99:\n"
              "        raise ValueError('too sure')\n    return _pseudo_label_loss(target_logits, threshold)\n\n\n"
              "def _pseudo_label_loss(target_logits: torch.Tensor, threshold: float = 0.9)")
    (tree / "tp3c_domain_adaptation/dann.py").write_text(_dann(IGNORES_LAMBDA, IGNORES_GAMMA, raises))
    by_id = {c.id: c for c in select("tp3c")}
    chosen = [by_id[c] for c in ("tp3c.grl_backward", "tp3c.grl_schedule", "tp3c.pseudo_label_loss")]
    assert all(c.partial for c in chosen)
    results = {r["id"]: r for r in run_checks(chosen, tree, grader_copy(tmp_path / "grader"))}

    backward, schedule, pseudo = (results[c.id] for c in chosen)
    assert backward["status"] == "failed" and backward["score"] == 0.5, backward
    assert [c["passed"] for c in backward["cases"]] == [False, False, True, False]
    assert backward["message"].startswith("1/4 cases passed") and "lambda=0.25" in backward["message"]
    assert "lambda=1.0:" not in backward["message"]
    assert schedule["status"] == "failed" and schedule["score"] == round(4 / 6, 4), schedule
    assert "p=0.5, gamma=2.0" in schedule["message"] and "the default gamma" not in schedule["message"]
    assert pseudo["status"] == "failed" and pseudo["score"] == 0 and "too sure" in pseudo["message"], pseudo
    assert "cases" not in pseudo


def test_overrides_apply_once_after_grading_resuming_and_regrading(tmp_path, monkeypatch):
    import grading.grade as grade_module

    subs, out = _submissions(tmp_path / "subs"), tmp_path / "out"
    _write_overrides(out, ["bob", "tp3c.grl_backward", "set", "2", "lambda is read from ctx in a helper"],
                     ["alice", "total", "add", "-1", "-handed in a day late"])
    db = tmp_path / "gradebook.db"
    reports = {r["student"]: r for r in grade(subs, out, "tp3c", only=ONLY, nbgrader_db=db)}

    alice, bob = reports["alice"], reports["bob"]
    assert (alice["auto_score"], alice["score"]) == (3, 2)
    back = {r["id"]: r for r in bob["results"]}["tp3c.grl_backward"]
    assert (back["auto_score"], back["score"], back["status"]) == (0.5, 2, "failed")  # the automatic result kept
    assert (bob["auto_score"], bob["score"]) == (1.5, 3)
    assert _report(out, "bob")["score"] == 3 and _report(out, "alice")["overrides"][0]["before"] == 3
    rows = _gradebook(out)
    assert (rows["bob"]["tp3c.grl_backward"], rows["bob"]["total"], rows["bob"]["auto_total"]) == ("2", "3", "1.5")
    assert rows["alice"]["total"] == "2" and "handed in a day late" in rows["alice"]["overrides"]
    feedback = (out / "students/bob/feedback.md").read_text()
    assert "failed (1/4 cases) | 2/2 (adjusted from 0.5)" in feedback
    assert "0.5 -> 2 (set to 2): lambda is read from ctx in a helper" in feedback
    alice_feedback = (out / "students/alice/feedback.md").read_text()
    assert "automatic score 3" in alice_feedback and "3 -> 2 (-1 points): -handed in a day late" in alice_feedback
    gradescope = json.loads((out / "students/alice/results.json").read_text())
    assert gradescope["score"] == 2 and gradescope["extra_data"]["auto_score"] == 3
    bob_tests = {t["number"]: t for t in json.loads((out / "students/bob/results.json").read_text())["tests"]}
    assert bob_tests["tp3c.grl_backward"]["score"] == 2 and "adjusted by your instructor" in \
        bob_tests["tp3c.grl_backward"]["output"]

    from nbgrader.api import Gradebook

    with Gradebook(f"sqlite:///{db}") as gb:  # nbgrader's total is the report's: manual scores, extra credit
        assert {s: gb.find_submission("tp3c", s).score for s in reports} == {"alice": 2, "bob": 3}
        grade_ = gb.find_grade("tp3c.grl_backward", "tp3c_domain_adaptation", "tp3c", "bob")
        assert (grade_.auto_score, grade_.manual_score) == (0.5, 2)

    # Resumed (nothing graded again: the reports kept) and regraded: the same, applied once.
    calls = []
    real = grade_module.grade_one
    monkeypatch.setattr(grade_module, "grade_one", lambda entry, *a: calls.append(entry.name) or real(entry, *a))
    again = {r["student"]: r["score"] for r in grade(subs, out, "tp3c", only=ONLY)}
    assert calls == [] and again == {"alice": 2, "bob": 3}
    again = {r["student"]: r["score"] for r in grade(subs, out, "tp3c", only=ONLY, regrade=["bob"])}
    assert calls == ["bob"] and again == {"alice": 2, "bob": 3}
    assert _gradebook(out)["bob"]["total"] == "3" and _report(out, "bob")["auto_score"] == 1.5

    # The command adds one without grading anything, and applies the file again (twice: the
    # gradebook it writes keeps its columns).
    monkeypatch.setattr(grade_module, "grade_one", None)
    header = (out / "gradebook.csv").read_text().splitlines()[0]
    assert main(["override", str(out), "alice", "total", "--add", "0", "--reason", "no change"]) == 0
    assert main(["override", str(out), "bob", "tp3c.grl_forward", "--add", "-0.5", "--reason", "=SUM(A1)"]) == 0
    assert (out / "gradebook.csv").read_text().splitlines()[0] == header
    assert _report(out, "bob")["score"] == 2.5 and _gradebook(out)["bob"]["total"] == "2.5"
    assert _report(out, "alice")["score"] == 2
    lines = (out / adjust.FILE).read_text().splitlines()
    assert lines[-1] == "bob,tp3c.grl_forward,add,-0.5,'=SUM(A1)"  # no formula for a spreadsheet
    assert "(-0.5 points): =SUM(A1)" in (out / "students/bob/feedback.md").read_text()


def test_applying_twice_is_applying_once_and_a_removed_override_restores_the_automatic_score():
    report = {"student": "carol", "results": [{"id": "a", "score": 0.0, "points": 1.0},
                                              {"id": "b", "score": 1.0, "points": 2.0}]}
    found = [adjust.Override(2, "carol", "a", "set", 1.0, "r1"), adjust.Override(3, "carol", "a", "add", 0.5, "r2"),
             adjust.Override(4, "carol", "total", "set", 10.0, "r3"), adjust.Override(5, "dan", "b", "add", 5, "r4")]
    adjust.apply(report, found)
    once = copy.deepcopy(report)
    adjust.apply(report, found)
    assert report == once
    assert [r["score"] for r in report["results"]] == [1.5, 1.0] and report["score"] == 10
    assert [(o["before"], o["after"]) for o in report["overrides"]] == [(0, 1), (1, 1.5), (2.5, 10)]
    assert adjust.apply(report, [adjust.Override(6, "carol", "c", "add", 1, "r")]) == \
        ["line 6: carol has no result for c in this run: not applied"]
    assert [r["score"] for r in report["results"]] == [0, 1] and report["score"] == 1 and "overrides" not in report


@pytest.mark.parametrize("row, message", [
    (["zoe", "tp3c.grl_forward", "set", "1", "why"], ":2: no student 'zoe'"),
    (["alice", "tp3c.nope", "set", "1", "why"], ":2: no check 'tp3c.nope'"),
    (["alice", "total", "multiply", "2", "why"], ":2: the action must be set or add"),
    (["alice", "total", "add", "two", "why"], ":2: the points must be a number"),
    (["alice", "total", "add", "1", ""], ":2: the student, the check (or total) and the reason"),
])
def test_a_bad_line_is_an_error_naming_it_before_anything_is_graded(tmp_path, monkeypatch, capsys, row, message):
    import grading.grade as grade_module

    subs, out = _submissions(tmp_path / "subs"), tmp_path / "out"
    _write_overrides(out, row)
    monkeypatch.setattr(grade_module, "grade_one", None)  # never reached
    with pytest.raises(UserError, match=message.replace("(", r"\(").replace(")", r"\)")):
        grade(subs, out, "tp3c", only=ONLY)
    assert main(["grade", str(subs), "--out", str(out), "--practical", "tp3c", "--check", ONLY[0]]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and f"overrides.csv{message}" in err and "Traceback" not in err


def test_the_override_command_refuses_an_unknown_student_or_check(tmp_path, capsys):
    out = tmp_path / "out"
    (out / "students/alice").mkdir(parents=True)
    (out / "gradebook.csv").write_text("student,a,total,max,isolation,notes\nalice,1,1,1,,\n")
    (out / "students/alice/report.json").write_text(json.dumps({"student": "alice", "results": [{"id": "a"}]}))
    for args, said in ((["zoe", "a"], "no student 'zoe'"), (["alice", "b"], "alice has no check 'b'"),
                       (["../alice", "a"], "no student")):
        with pytest.raises(SystemExit):
            main(["override", str(out), *args, "--set", "1", "--reason", "why"])
        assert said in capsys.readouterr().err
    assert not (out / adjust.FILE).exists()

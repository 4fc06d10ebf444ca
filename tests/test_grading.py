"""grading: the student release, the checks, grading a batch, and the selftest."""
import csv
import hashlib
import json
import re
import shutil
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path

import nbformat
import pytest
import torch

from grading.grade import grade
from grading.registry import PRACTICALS, select
from grading.release import ReleaseError, all_regions, strip_solutions
from grading.selftest import selftest

REPO = Path(__file__).resolve().parents[1]


def test_stub_keeps_indentation_and_names_the_function():
    src = ("class C:\n    def f(self, x):\n        \"\"\"Doc.\"\"\"\n        y = 1\n        ### BEGIN SOLUTION\n"
           "        return x + y\n        ### END SOLUTION\n")
    out = strip_solutions(src, "pkg/m.py")
    assert "return x + y" not in out and 'y = 1' in out and '"""Doc."""' in out
    assert out.endswith('        # ======== YOUR CODE: C.f ========\n'
                        '        raise NotImplementedError("C.f (pkg/m.py)")\n'
                        '        # ======== END OF YOUR CODE ========\n')
    namespace = {}
    exec(out, namespace)
    with pytest.raises(NotImplementedError, match=r"C\.f \(pkg/m\.py\)"):
        namespace["C"]().f(1)


@pytest.mark.parametrize("src, message", [
    ("def f():\n    ### BEGIN SOLUTION\n    pass\n", "never closed"),
    ("def f():\n    ### END SOLUTION\n", "without a BEGIN"),
    ("### BEGIN SOLUTION\nx = 1\n### END SOLUTION\n", "inside a function"),
])
def test_malformed_markers_are_reported_with_their_line(src, message):
    with pytest.raises(ReleaseError, match=message):
        strip_solutions(src, "f.py")


def test_release_holds_stubs_manifest_and_no_instructor_material(student_release):
    manifest = json.loads((student_release / "MANIFEST.json").read_text())
    files = manifest["student_files"]
    assert {"tp3a_transfer/parameters.py", "tp3c_domain_adaptation/dann.py",
            "tp3d_gan/dcgan.py", "tp3d_gan/cdcgan.py"} <= set(files)
    assert files["tp3c_domain_adaptation/dann.py"]["regions"] == 15
    for withheld in ("tests", ".ci", "docs", "bench", "pyproject.toml", "grading/hidden", "grading/mutants.py",
                     "grading/selftest.py", "grading/calibrate.py", "grading/grade.py", "grading/release.py",
                     "grading/edition", "grading/cluster.py", "tp3d_gan/questions.toml"):
        assert not (student_release / withheld).exists(), withheld
    for document in ("README.md", "ANSWERS.md", "tp3d_gan/QUESTIONS.md"):
        assert (student_release / document).is_file(), document
    assert (student_release / "README.md").read_text() != (REPO / "README.md").read_text()
    assert "INSTRUCTOR ONLY" not in (student_release / "grading/__main__.py").read_text()
    for practical in PRACTICALS:
        assert (student_release / practical / "main.py").is_file()
    assert "NotImplementedError" in (student_release / "tp3c_domain_adaptation/dann.py").read_text()


def test_no_solution_line_leaks_into_the_release(student_release):
    released = set()
    for f in student_release.rglob("*"):
        if f.is_file():
            released |= {line.strip() for line in f.read_text(errors="replace").splitlines()}
        if f.suffix == ".ipynb":  # JSON: the cells' lines are quoted, so read them as cells
            released |= {line.strip() for cell in nbformat.read(f, as_version=4).cells
                         for line in cell.source.splitlines()}
    assert any(f.suffix == ".ipynb" for f in student_release.rglob("*"))
    regions = all_regions(REPO)
    assert len(regions) >= 15
    solution_lines = {line.strip() for r in regions for line in r.lines}
    # Lines that say nothing about a solution and that provided code also needs.
    solution_lines -= {"", ")", "else:", "loss.backward()", "break", "while True:", "with torch.no_grad():",
                       "model.eval()"}
    leaked = sorted(solution_lines & released)
    assert not leaked, f"solution lines found in the release: {leaked}"


def test_release_imports_and_every_main_has_help(student_release):
    modules = [p.relative_to(student_release).with_suffix("").as_posix().replace("/", ".")
               for p in student_release.rglob("*.py") if p.name != "__main__.py"]
    code = "import importlib\nfor m in %r:\n    importlib.import_module(m)" % modules
    subprocess.run([sys.executable, "-c", code], cwd=student_release, check=True, timeout=120)
    for practical in PRACTICALS:
        res = subprocess.run([sys.executable, f"{practical}/main.py", "--help"], cwd=student_release,
                             capture_output=True, text=True, timeout=60)
        assert res.returncode == 0 and "subcommands" in res.stdout, res.stderr


def test_public_checks_fail_in_the_release_and_pass_on_the_reference(student_release):
    points = sum(c.points for c in select("tp3c", include_hidden=False))
    cmd = [sys.executable, "-m", "grading", "check", "tp3c"]
    on_stub = subprocess.run(cmd, cwd=student_release, capture_output=True, text=True, timeout=300)
    assert on_stub.returncode == 1 and "not implemented yet" in on_stub.stdout
    assert f"score: 0/{points:g}" in on_stub.stdout and "(hidden)" not in on_stub.stdout
    for tested, stub in re.findall(r"while testing ([\w., ]+): not implemented yet: ([\w.]+)", on_stub.stdout):
        assert stub not in tested.split(", "), (tested, stub)  # a check's own stub: said once, at its function
    on_ref = subprocess.run(cmd, cwd=REPO, capture_output=True, text=True, timeout=300)
    assert on_ref.returncode == 0 and f"score: {points:g}/{points:g}" in on_ref.stdout, on_ref.stdout
    help_ = subprocess.run([sys.executable, "-m", "grading", "--help"], cwd=student_release, capture_output=True,
                           text=True, timeout=60).stdout
    assert "check" in help_ and "handin" in help_ and "grade" not in help_.replace("grading", "")


def test_the_verdict_stays_in_the_graders_process(student_release, tmp_path):
    """The student's code runs in a process of its own: a stub whose grl_lambda writes a
    passing result where the old single-process worker kept it, then exits, loses the check;
    the grader's process refuses to import a student's module; probes see only plain names."""
    from grading.registry import run
    from grading.runner import grader_copy, run_check
    from grading.worker import NoStudentCode

    tree = tmp_path / "tree"
    shutil.copytree(student_release, tree)
    forged = ("import json, os, sys\n"
              "def grl_lambda(p, gamma=10.0):\n"
              "    for d in ('.', '..', os.path.dirname(sys.argv[-1])):\n"
              "        try:\n"
              "            json.dump({'status': 'passed', 'message': ''}, open(os.path.join(d, 'result.json'), 'w'))\n"
              "        except OSError:\n"
              "            pass\n"
              "    os._exit(0)\n")
    with open(tree / "tp3c_domain_adaptation/dann.py", "a") as f:
        f.write("\n" + forged)
    schedule = next(c for c in select("tp3c") if c.id == "tp3c.grl_schedule")
    result = run_check(schedule, tree, grader_copy(tmp_path / "grader"))
    assert result["status"] == "crashed" and "exit code 0" in result["message"], result
    assert result["score"] == 0

    with pytest.raises(ImportError, match="must not import tp3c_domain_adaptation.dann"):
        NoStudentCode(PRACTICALS).find_spec("tp3c_domain_adaptation.dann")
    assert NoStudentCode(PRACTICALS).find_spec("tp3d_gan.quality") is None

    def closure():
        return schedule

    with pytest.raises(TypeError, match="pass them as arguments"):
        run(closure)
    assert run(_plain_probe, 3) == {"twice": 6, "tensor": [0.0, 0.0, 0.0]}
    with pytest.raises(ValueError, match="other than numbers, strings and tensors"):
        run(_object_probe)


def _reference_3c(tree: Path) -> Path:
    """A tree with the reference 3-c and the shared code it imports."""
    for folder in ("tp3c_domain_adaptation", "common"):
        shutil.copytree(REPO / folder, tree / folder, ignore=shutil.ignore_patterns("__pycache__"))
    return tree


def test_one_session_survives_a_crash_and_a_timeout(tmp_path):
    """The checks of a practical share one student's process, each in a fresh child: a check
    whose code kills every process it can (in the sandbox: only its own PID namespace) or
    exits, then one that never returns, lose their checks alone; the next checks pass."""
    import dataclasses

    from grading.runner import grader_copy, namespaces_available, run_checks

    tree = _reference_3c(tmp_path / "tree")
    # kill(-1): every process this user may signal, the grader and pytest included, unless
    # the sandbox's PID namespace holds the code (without it, only the exit is tried).
    killer = "try:\n        os.kill(-1, signal.SIGKILL)\n    finally:\n        os._exit(3)" \
        if namespaces_available() else "os._exit(3)"
    with open(tree / "tp3c_domain_adaptation/dann.py", "a") as f:
        f.write("\nimport os, signal\n"
                f"def grl_lambda(p, gamma=10.0):\n    {killer}\n"
                "def dann_loss(*args):\n    while True:\n        pass\n")
    by_id = {c.id: c for c in select("tp3c")}
    chosen = [by_id["tp3c.grl_schedule"], dataclasses.replace(by_id["tp3c.losses"], timeout=5.0),
              by_id["tp3c.networks"], by_id["tp3c.grl_forward"]]
    results = {r["id"]: r for r in run_checks(chosen, tree, grader_copy(tmp_path / "grader"))}
    assert results["tp3c.grl_schedule"]["status"] == "crashed", results["tp3c.grl_schedule"]
    assert "exit code 3" in results["tp3c.grl_schedule"]["message"]
    assert results["tp3c.losses"]["status"] == "timeout", results["tp3c.losses"]
    assert "time limit of 5 s" in results["tp3c.losses"]["message"]
    assert [results[c]["status"] for c in ("tp3c.networks", "tp3c.grl_forward")] == ["passed", "passed"]


def test_a_classmates_working_copy_is_hidden(tmp_path):
    """Each student's copy is graded in a folder of the batch's ``work``; the student's
    process sees its own copy at its view, and ``work`` itself (the classmates' copies
    graded at the same moment) is hidden."""
    from grading.runner import grader_copy, namespaces_available, run_check

    if not namespaces_available():
        pytest.skip("no user namespaces here: other folders cannot be hidden")
    work = tmp_path / "work"
    tree = _reference_3c(work / "0" / "tree")
    classmate = work / "1" / "tree" / "tp3c_domain_adaptation" / "dann.py"
    classmate.parent.mkdir(parents=True)
    classmate.write_text("# a classmate's answers\n")
    with open(tree / "tp3c_domain_adaptation/dann.py", "a") as f:
        f.write(f"\ntry:\n    open({str(classmate)!r}).read()\n"
                "    def grl_lambda(p, gamma=10.0):\n        raise RuntimeError('read a classmate')\n"
                "except OSError:\n    pass\n")
    schedule = next(c for c in select("tp3c") if c.id == "tp3c.grl_schedule")
    result = run_check(schedule, tree, grader_copy(tmp_path / "grader"), hide=[work])
    assert result["status"] == "passed", result


def _plain_probe(n):
    return {"twice": 2 * n, "tensor": torch.zeros(n).tolist()}


def _object_probe():
    import fractions

    return fractions.Fraction(1, 3)


def _tree_digest(folder: Path) -> str:
    h = hashlib.sha256()
    for f in sorted(folder.rglob("*")):
        if f.is_file():
            h.update(f.relative_to(folder).as_posix().encode() + f.read_bytes())
    return h.hexdigest()


def test_grading_a_batch_of_submissions(tmp_path):
    subs = tmp_path / "submissions"
    good = (REPO / "tp3c_domain_adaptation/dann.py").read_text()
    (subs / "alice/tp3c_domain_adaptation").mkdir(parents=True)
    (subs / "alice/tp3c_domain_adaptation/dann.py").write_text(good)
    (subs / "alice/ANSWERS.md").write_text("# Answers\n\nQ1: the domain classifier wins.\n")
    (subs / "bob").mkdir()  # a flat submission: the file at the top of the folder
    (subs / "bob/dann.py").write_text(good.replace("return -ctx.lambd * grad_output, None",
                                                   "return ctx.lambd * grad_output, None"))
    (subs / "carol").mkdir()
    (subs / "carol/dann.py").write_text(good.replace("def grl_lambda(", "def grl_lambda(:"))
    (subs / "dave").mkdir()  # handed in nothing
    with zipfile.ZipFile(subs / "erin.zip", "w") as z:
        z.writestr("erin/tp3c_domain_adaptation/dann.py", good)
    before = _tree_digest(subs)

    db = tmp_path / "gradebook.db"
    reports = {r["student"]: r for r in grade(subs, tmp_path / "out", "tp3c", workers=2, nbgrader_db=db)}

    assert _tree_digest(subs) == before, "grading modified a submission"
    scores = {s: r["score"] for s, r in reports.items()}
    # bob's GRL without the minus sign loses the backward, in-network, DANN.forward and step-sign
    # checks, and the short training (its domain classifier then wins outright); the backward
    # check gives partial credit: of its four lambdas, lambda = 0 passes (a quarter of its points).
    points = {c.id: c.points for c in select("tp3c", include_hidden=True)}
    full = sum(points.values())
    bob_loses = ("tp3c.grl_backward", "tp3c.grl_in_network", "tp3c.dann_forward", "tp3c.dann_step_sign",
                 "tp3c.short_training")
    bob_score = full - sum(points[c] for c in bob_loses) + points["tp3c.grl_backward"] / 4
    assert scores == {"alice": full, "bob": bob_score, "carol": 0, "dave": 0, "erin": full}
    assert reports["alice"]["max_score"] == full
    assert (tmp_path / "out/students/alice/ANSWERS.md").read_text().endswith("the domain classifier wins.\n")
    bob = {r["id"]: r for r in reports["bob"]["results"]}
    assert bob["tp3c.grl_backward"]["status"] == "failed"
    assert "-lambda * incoming gradient" in bob["tp3c.grl_backward"]["message"]
    carol = reports["carol"]["results"][0]
    assert "SyntaxError" in carol["message"] and "dann.py" in carol["message"]
    assert reports["dave"]["missing_files"] == ["tp3c_domain_adaptation/dann.py"]
    with open(tmp_path / "out/gradebook.csv") as f:
        rows = list(csv.DictReader(f))
    assert [r["student"] for r in rows] == ["alice", "bob", "carol", "dave", "erin"]
    assert rows[1]["tp3c.grl_forward"] == "1" and rows[1]["total"] == f"{bob_score:g}" and rows[1]["max"] == f"{full:g}"
    feedback = (tmp_path / "out/students/bob/feedback.md").read_text()
    assert "(hidden) | failed" in feedback
    hidden_message = bob["tp3c.grl_in_network"]["message"]
    assert hidden_message and hidden_message not in feedback, "a hidden check's details leaked"
    from nbgrader.api import Gradebook

    with Gradebook(f"sqlite:///{db}") as gb:  # the same scores, read back by nbgrader
        assert {s: gb.find_submission("tp3c", s).score for s in scores} == scores


def test_a_grader_bug_on_one_student_does_not_stop_the_batch(tmp_path, monkeypatch):
    import grading.grade as grade_module

    subs = tmp_path / "submissions"
    good = (REPO / "tp3c_domain_adaptation/dann.py").read_text()
    for student in ("alice", "bob"):
        (subs / student).mkdir(parents=True)
        (subs / student / "dann.py").write_text(good)
    real_grade_one = grade_module.grade_one

    def buggy(entry, *args):
        if entry.name == "bob":
            raise KeyError("a bug in the grader")
        return real_grade_one(entry, *args)

    monkeypatch.setattr(grade_module, "grade_one", buggy)
    out, only = tmp_path / "out", ["tp3c.grl_forward"]
    reports = {r["student"]: r for r in grade(subs, out, "tp3c", workers=2, only=only)}
    assert reports["alice"]["score"] == 1
    bob = reports["bob"]["results"][0]
    assert bob["status"] == "error" and "the grader failed" in bob["message"] and "KeyError" in bob["message"]
    assert (out / "students/bob/feedback.md").exists()

    # The bug fixed, the batch run again grades bob (his row had no fingerprint) and keeps alice.
    calls = []
    monkeypatch.setattr(grade_module, "grade_one",
                        lambda entry, *a: calls.append(entry.name) or real_grade_one(entry, *a))
    again = {r["student"]: r["score"] for r in grade(subs, out, "tp3c", workers=2, only=only)}
    assert calls == ["bob"] and again == {"alice": 1, "bob": 1}


def test_scores_go_into_an_nbgrader_gradebook(tmp_path):
    """Read back with nbgrader's own API; a re-grade replaces scores, a practical graded
    later joins the same submission."""
    from nbgrader.api import Gradebook

    from grading.grade import write_nbgrader

    def reports(checks, scores):
        rows = {}
        for student, per_check in scores.items():
            results = [dict(id=c.id, practical=c.practical, points=c.points, score=per_check(c)) for c in checks]
            rows[student] = {"student": student, "results": results}
        return list(rows.values())

    db, tp3c, tp3d = tmp_path / "gradebook.db", select("tp3c", include_hidden=True), select("tp3d", include_hidden=True)
    full = sum(c.points for c in tp3c)
    write_nbgrader(reports(tp3c, {"alice": lambda c: c.points, "bob": lambda c: 0.0}), tp3c, db, "tp3")
    write_nbgrader(reports(tp3c, {"bob": lambda c: c.points if c.id == tp3c[0].id else 0.0}), tp3c, db, "tp3")
    write_nbgrader(reports(tp3d, {"alice": lambda c: c.points}), tp3d, db, "tp3")

    with Gradebook(f"sqlite:///{db}") as gb:
        assert sorted(s.id for s in gb.students) == ["alice", "bob"]
        assert sorted(n.name for n in gb.find_assignment("tp3").notebooks) == ["tp3c_domain_adaptation", "tp3d_gan"]
        assert gb.find_assignment("tp3").max_score == full + sum(c.points for c in tp3d)
        assert gb.find_submission("tp3", "alice").score == full + sum(c.points for c in tp3d)
        assert gb.find_submission("tp3", "bob").score == tp3c[0].points
        assert gb.find_grade(tp3c[0].id, "tp3c_domain_adaptation", "tp3", "bob").auto_score == tp3c[0].points
        assert len(gb.find_submission_notebook("tp3c_domain_adaptation", "tp3", "bob").grades) == len(tp3c)


def test_every_student_function_is_tested_by_a_public_check():
    """The slow selftest shows that leaving any one of them unwritten fails those checks."""
    public = [c for c in select("all", include_hidden=False)]
    untested = [r.function for r in all_regions(REPO) if not any(r.function in c.tests for c in public)]
    assert not untested, untested


@pytest.mark.slow
def test_selftest_on_every_check():
    ok, lines = selftest("all")
    assert ok, "\n".join(lines)


def _gradescope_valid(results: dict) -> None:
    from grading.grade import GRADESCOPE_FIELDS, GRADESCOPE_TEST_FIELDS

    assert set(results) <= GRADESCOPE_FIELDS and isinstance(results["score"], (int, float))
    for t in results["tests"]:
        assert set(t) <= GRADESCOPE_TEST_FIELDS, set(t) - GRADESCOPE_TEST_FIELDS
        assert t["status"] in ("passed", "failed") and t["visibility"] in (
            "visible", "hidden", "after_due_date", "after_published")
        assert 0 <= t["score"] <= t["max_score"]


@pytest.mark.slow
def test_a_batch_of_hostile_submissions_is_graded_safely(tmp_path, monkeypatch):
    """Every kind of tests/hostile.py in one batch with correct and partial submissions:
    the batch finishes, each student gets a row and a reason per lost check, the correct
    ones get full marks, no submission changes; a second run keeps finished students, and
    regrading gives the same results."""
    import grading.grade as grade_module
    from grading.runner import Limits, namespaces_available
    from tests.hostile import CORPUS, FILE, GRL_BACKWARD, PROBE, batch_checks

    subs = tmp_path / "submissions"
    good = (REPO / FILE).read_text()
    (subs / "alice/tp3c_domain_adaptation").mkdir(parents=True)
    (subs / "alice" / FILE).write_text(good)
    (subs / "bob").mkdir()
    (subs / "bob/dann.py").write_text(good.replace("return -ctx.lambd * grad_output, None",
                                                   "return ctx.lambd * grad_output, None"))
    with zipfile.ZipFile(subs / "erin.zip", "w") as z:
        z.writestr("erin/" + FILE, good)
    paths = {"reference": str(REPO / FILE), "classmate": str(subs / "alice" / FILE),
             "batches": tempfile.gettempdir(), "backward": GRL_BACKWARD, "probe": PROBE,
             "classmate_dir": str(subs), "hidden": str(REPO / "grading/hidden/tp3c_domain_adaptation.py")}
    sandboxed = namespaces_available()
    corpus = {k: v for k, v in CORPUS.items()  # without namespaces, nothing protects files or processes
              if sandboxed or k not in ("reads_outside_its_copy", "writes_outside_its_copy",
                                        "reads_classmates_working_copies", "tampers_with_the_grader",
                                        "escapes_the_sandbox", "reads_the_hidden_checks",
                                        "kills_every_process")}
    for kind, (edit, _) in corpus.items():
        (subs / kind).mkdir()
        for rel, text in edit(good, paths).items():
            (subs / kind / rel).parent.mkdir(parents=True, exist_ok=True)
            (subs / kind / rel).write_text(text)
    before = _tree_digest(subs)
    out, limits = tmp_path / "out", Limits(memory_mb=1024, output_mb=8)
    only = batch_checks()

    reports = {r["student"]: r for r in grade(subs, out, "tp3c", workers=2, limits=limits, only=only)}

    assert _tree_digest(subs) == before, "grading modified a submission"
    assert set(reports) == {"alice", "bob", "erin"} | set(corpus)
    full = reports["alice"]["max_score"]
    for student in ("alice", "erin") + (("writes_outside_its_copy",) if sandboxed else ()):
        assert reports[student]["score"] == full, (student, reports[student]["results"])
    assert 0 < reports["bob"]["score"] < full
    assert reports["forges_its_result"]["score"] == 0, reports["forges_its_result"]["results"]
    problems = []
    for kind, (_, words) in corpus.items():
        lost = [r for r in reports[kind]["results"] if r["status"] != "passed"]
        if not lost and kind != "writes_outside_its_copy":
            problems.append(f"{kind}: lost no check")
        problems += [f"{kind}: {r['id']} {r['status']}: {r['message']!r}" for r in lost
                     if not r["message"] or not all(any(alt.lower() in r["message"].lower() for alt in w.split("|"))
                                                         for w in words)]
    assert not problems, "\n".join(problems)
    if sandboxed:  # nothing outside its own copy could be read or changed
        for kind in ("reads_outside_its_copy", "reads_classmates_working_copies", "tampers_with_the_grader",
                     "escapes_the_sandbox", "reads_the_hidden_checks"):
            assert reports[kind]["score"] == 0, (kind, reports[kind]["results"])
        import torch
        for probe in (Path(torch.__file__).parent / PROBE, Path(tempfile.gettempdir()) / PROBE):
            assert not probe.exists(), f"a submission wrote {probe}"
    for student in reports:
        _gradescope_valid(json.loads((out / "students" / student / "results.json").read_text()))
    with open(out / "gradebook.csv") as f:
        assert sorted(r["student"] for r in csv.DictReader(f)) == sorted(reports)

    # Resuming: finished students are not graded again; a lost report is.
    calls = []
    real_grade_one = grade_module.grade_one
    monkeypatch.setattr(grade_module, "grade_one",
                        lambda entry, *a: calls.append(entry.name) or real_grade_one(entry, *a))
    (out / "students/bob/report.json").unlink()
    again = {r["student"]: r for r in grade(subs, out, "tp3c", workers=2, limits=limits, only=only)}
    assert calls == ["bob"]
    assert {s: r["score"] for s, r in again.items()} == {s: r["score"] for s, r in reports.items()}

    # Determinism: the same submissions graded again give the same results, to the message.
    def outcome(report):
        return [(r["id"], r["status"], r["score"], r["message"]) for r in report["results"]]

    chosen = ["alice", "nan_outputs", "hard_crash", "wrong_dtype"]
    regraded = {r["student"]: r for r in grade(subs, out, "tp3c", workers=2, limits=limits,
                                                      regrade=chosen, only=only)}
    assert outcome(again["bob"]) == outcome(reports["bob"])
    for s in chosen:
        assert outcome(regraded[s]) == outcome(reports[s]), s


def test_every_mutant_and_variant_patches_the_reference_once():
    """The slow selftest applies each mutant and variant; a change to the reference that moves
    their text is caught here, in the fast suite."""
    from grading.mutants import MUTANTS, VARIANTS

    for m in MUTANTS:
        assert (REPO / m.path).read_text().count(m.old) == 1, (m.name, m.path)
    for v in VARIANTS:
        for old, _ in v.edits:
            assert (REPO / v.path).read_text().count(old) == 1, (v.name, old[:40])
    ids = {c.id for c in select("all", include_hidden=True)}
    assert all(set(m.kills) <= ids for m in MUTANTS)

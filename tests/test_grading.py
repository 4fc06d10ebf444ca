"""grading: the student release, the checks, grading a batch, and the selftest."""
import csv
import hashlib
import json
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from grading.grade import grade
from grading.registry import PRACTICALS, select
from grading.release import ReleaseError, all_regions, release, strip_solutions
from grading.selftest import selftest

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def student_release(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("release") / "student"
    release(out)
    return out


def test_stub_keeps_indentation_and_names_the_function():
    src = ("def f(x):\n    \"\"\"Doc.\"\"\"\n    y = 1\n    ### BEGIN SOLUTION\n    return x + y\n"
           "    ### END SOLUTION\n")
    out = strip_solutions(src)
    assert "return x + y" not in out and 'y = 1' in out and '"""Doc."""' in out
    assert '    raise NotImplementedError("f: write this part (see the docstring)")' in out
    namespace = {}
    exec(out, namespace)
    with pytest.raises(NotImplementedError, match="f: write this part"):
        namespace["f"](1)


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
    for withheld in ("tests", ".ci", "grading/hidden", "grading/mutants.py", "grading/selftest.py",
                     "grading/calibrate.py"):
        assert not (student_release / withheld).exists(), withheld
    for practical in PRACTICALS:
        assert (student_release / practical / "main.py").is_file()
    assert "NotImplementedError" in (student_release / "tp3c_domain_adaptation/dann.py").read_text()


def test_no_solution_line_leaks_into_the_release(student_release):
    released = set()
    for f in student_release.rglob("*"):
        if f.is_file():
            released |= {line.strip() for line in f.read_text(errors="replace").splitlines()}
    regions = all_regions(REPO)
    assert len(regions) >= 15
    solution_lines = {line.strip() for r in regions for line in r.lines}
    # Lines that say nothing about a solution and that provided code also needs.
    solution_lines -= {"", ")", "else:", "loss.backward()", "break", "while True:", "with torch.no_grad():"}
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
    cmd = [sys.executable, "-m", "grading", "check", "tp3c"]
    on_stub = subprocess.run(cmd, cwd=student_release, capture_output=True, text=True, timeout=300)
    assert on_stub.returncode == 1 and "not implemented yet" in on_stub.stdout
    assert "score: 0/10" in on_stub.stdout and "(hidden)" not in on_stub.stdout
    on_ref = subprocess.run(cmd, cwd=REPO, capture_output=True, text=True, timeout=300)
    assert on_ref.returncode == 0 and "score: 10/10" in on_ref.stdout, on_ref.stdout


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
    (subs / "bob").mkdir()  # a flat submission: the file at the top of the folder
    (subs / "bob/dann.py").write_text(good.replace("return -ctx.lambd * grad_output, None",
                                                   "return ctx.lambd * grad_output, None"))
    (subs / "carol").mkdir()
    (subs / "carol/dann.py").write_text(good.replace("def grl_lambda(", "def grl_lambda(:"))
    (subs / "dave").mkdir()  # handed in nothing
    with zipfile.ZipFile(subs / "erin.zip", "w") as z:
        z.writestr("erin/tp3c_domain_adaptation/dann.py", good)
    before = _tree_digest(subs)

    reports = {r["student"]: r for r in grade(subs, tmp_path / "out", "tp3c", workers=2)}

    assert _tree_digest(subs) == before, "grading modified a submission"
    scores = {s: r["score"] for s, r in reports.items()}
    # bob's GRL without the minus sign loses the backward, in-network and step-sign checks.
    assert scores == {"alice": 11, "bob": 6, "carol": 0, "dave": 0, "erin": 11}
    assert reports["alice"]["max_score"] == 11
    bob = {r["id"]: r for r in reports["bob"]["results"]}
    assert bob["tp3c.grl_backward"]["status"] == "failed"
    assert "-lambda * incoming gradient" in bob["tp3c.grl_backward"]["message"]
    carol = reports["carol"]["results"][0]
    assert "SyntaxError" in carol["message"] and "dann.py" in carol["message"]
    assert reports["dave"]["missing_files"] == ["tp3c_domain_adaptation/dann.py"]
    with open(tmp_path / "out/gradebook.csv") as f:
        rows = list(csv.DictReader(f))
    assert [r["student"] for r in rows] == ["alice", "bob", "carol", "dave", "erin"]
    assert rows[1]["tp3c.grl_forward"] == "1" and rows[1]["total"] == "6" and rows[1]["max"] == "11"
    feedback = (tmp_path / "out/students/bob/feedback.md").read_text()
    assert "(hidden) | failed" in feedback
    hidden_message = bob["tp3c.grl_in_network"]["message"]
    assert hidden_message and hidden_message not in feedback, "a hidden check's details leaked"


def test_selftest_on_one_practical():
    ok, lines = selftest("tp3c")
    assert ok, "\n".join(lines)
    assert len(lines) == len(select("tp3c")) == 8


@pytest.mark.slow
def test_selftest_on_every_check():
    ok, lines = selftest("all")
    assert ok, "\n".join(lines)

"""The Gradescope autograder: what its zip holds, and its run_autograder run on a simulated
``/autograder`` tree (moved by ``$RDFIA_AUTOGRADER_ROOT``) with a correct submission (a file),
a partial one (a hand-in zip) and a hostile one, the students' code run as an unprivileged user."""
import hashlib
import io
import json
import os
import pwd
import shutil
import site
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path

import pytest

from grading.gradescope import CONFIG, LEFT_OUT, ROOT_ENV, build, pinned_requirements, run
from grading.registry import select
from grading.release import all_regions, strip_solutions
from grading.reports import GRADESCOPE_FIELDS, GRADESCOPE_TEST_FIELDS

REPO = Path(__file__).resolve().parents[1]
FILE = "tp3c_domain_adaptation/dann.py"
GOOD = (REPO / FILE).read_text()
# Cheap checks of 3-c, one hidden among them, one of them (grl_schedule) testing grl_lambda alone.
CHECKS = ("tp3c.grl_forward", "tp3c.grl_backward", "tp3c.grl_schedule", "tp3c.grl_in_network")
USER = "nobody"  # an unprivileged user every Linux has, standing in for the one setup.sh creates


@pytest.fixture(scope="module")
def autograder(tmp_path_factory) -> Path:
    """The autograder zip for the CHECKS, built once."""
    out = tmp_path_factory.mktemp("gradescope") / "autograder.zip"
    build(out, "tp3c", list(CHECKS))
    return out


def _texts(path: Path) -> dict[str, str]:
    with zipfile.ZipFile(path) as z:
        return {i.filename: z.read(i).decode("utf-8", "replace") for i in z.infolist() if not i.is_dir()}


def test_the_zip_holds_the_scripts_the_grader_and_the_release(autograder):
    files = _texts(autograder)
    with zipfile.ZipFile(autograder) as z:
        modes = {i.filename: i.external_attr >> 16 for i in z.infolist()}
    for script in ("setup.sh", "run_autograder"):
        assert modes[script] & 0o111, f"{script} is not executable"
        subprocess.run(["bash", "-n", "-c", files[script]], check=True)  # valid Bash
    setup = files["setup.sh"]
    assert "pip install" in setup and '-r "$SOURCE/requirements.txt"' in setup
    assert "useradd" in setup and 'chmod 700 "$SOURCE"' in setup
    assert "/autograder/submission" in files["run_autograder"] and "grading.gradescope" in files["run_autograder"]
    config = json.loads(files[CONFIG])
    assert config["checks"] == list(CHECKS) and config["points"] == sum(c.points for c in select("tp3c")
                                                                        if c.id in CHECKS)
    assert "grader/grading/hidden/tp3c_domain_adaptation.py" in files
    assert "release/MANIFEST.json" in files and "release/grading/hidden/__init__.py" not in files
    assert not [n for n in files if n.startswith("grader/grading/") and n.split("/")[2] in LEFT_OUT]


def test_the_zip_never_holds_the_reference_solution(autograder):
    """No line of any solution region (the short ones aside, which stubs share) is in the zip."""
    texts = list(_texts(autograder).values())
    lines = {line.strip() for r in all_regions() for line in r.lines if len(line.strip()) > 30}
    assert lines, "the reference has solution regions"
    found = [line for line in lines if any(line in t for t in texts)]
    assert not found, found[:5]


def test_requirements_are_the_student_ones_pinned():
    pinned = pinned_requirements().splitlines()[1:]
    names = [line.split("==")[0] for line in pinned]
    student = [line.split(">=")[0].strip() for line in (REPO / "requirements-student.txt").read_text().splitlines()
               if line and not line.startswith("#")]
    assert names == student
    assert all("==" in line for line in pinned), pinned
    assert "torch==" + next(ln.split("==")[1] for ln in (REPO / "requirements.txt").read_text().splitlines()
                            if ln.startswith("torch==")) in pinned


def test_a_grader_that_fails_still_writes_results(tmp_path):
    """No configuration in the source: Gradescope still gets a results.json that says so."""
    (tmp_path / "source").mkdir()
    (tmp_path / "submission").mkdir()
    results = run(tmp_path, user="")
    written = json.loads((tmp_path / "results" / "results.json").read_text())
    assert written == results and written["score"] == 0 and written["tests"] == []
    assert "autograder failed" in written["output"] and set(written) <= GRADESCOPE_FIELDS


# ------------------------------------------------------------------------------ run_autograder

@pytest.fixture(scope="module")
def user_python():
    """A Python with this environment's packages that USER can run (this one, or a venv on the
    system's interpreter of the same version when this one lies in a folder USER cannot enter,
    as setup.sh puts its venv outside the root-only source)."""
    if os.geteuid() != 0:
        pytest.skip("running the students' code as another user needs root, as in Gradescope's container")
    try:
        pwd.getpwnam(USER)
    except KeyError:
        pytest.skip(f"no user {USER!r} on this machine")
    if _runs_as_user(sys.executable):
        yield sys.executable
        return
    version = f"python{sys.version_info.major}.{sys.version_info.minor}"
    base = shutil.which(version, path="/usr/local/bin:/usr/bin:/bin")
    if base is None:
        pytest.skip(f"{USER} cannot run {sys.executable}, and there is no system {version}")
    folder = Path(tempfile.mkdtemp(prefix="rdfia-gradescope-python-"))
    try:
        folder.chmod(0o755)
        subprocess.run([base, "-m", "venv", "--without-pip", str(folder / "venv")], check=True)
        (folder / "venv" / "lib" / version / "site-packages" / "tested.pth").write_text(
            "\n".join(site.getsitepackages()) + "\n")
        python = str(folder / "venv" / "bin" / "python")
        if not _runs_as_user(python):
            pytest.skip(f"{USER} can run neither {sys.executable} nor a venv on {base} with its packages")
        yield python
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def test_the_student_user_gets_its_folders_and_reads_its_copy(tmp_path):
    """Handing a session over to the student's user: its home and output folders become the
    user's, the session's folder and the grader's half stay root's, the copy becomes readable."""
    from grading.runner import _hand_over

    if os.geteuid() != 0:
        pytest.skip("handing folders over to another user needs root")
    nobody = pwd.getpwnam(USER)
    session, tree = tmp_path / "check", tmp_path / "tree"
    for d in (session / "judge", session / "student" / "home" / "tmp", session / "student" / "output", tree / "pkg"):
        d.mkdir(parents=True)
    (tree / "pkg" / "dann.py").write_text("x = 1\n")
    (tree / "pkg" / "dann.py").chmod(0o600)
    session.chmod(0o700)
    assert _hand_over(USER, session / "student", tree) == [nobody.pw_uid, nobody.pw_gid]
    owner = {p: p.stat().st_uid for p in session.rglob("*")}
    assert {p.name for p, uid in owner.items() if uid == nobody.pw_uid} == {"home", "tmp", "output"}
    assert session.stat().st_mode & 0o777 == 0o711 and (session / "student").stat().st_uid == 0
    assert (tree / "pkg" / "dann.py").stat().st_mode & 0o777 == 0o644


def _runs_as_user(python: str) -> bool:
    try:
        res = subprocess.run([python, "-c", "import torch"], user=USER, group=pwd.getpwnam(USER).pw_gid,
                             extra_groups=[], capture_output=True, cwd="/")
    except OSError:  # a folder on its way it cannot enter
        return False
    return res.returncode == 0


def _autograde(root: Path, python: str, files: dict[str, str | bytes]) -> dict:
    """Gradescope's steps: a fresh submission folder, then run_autograder from the root."""
    shutil.rmtree(root / "submission", ignore_errors=True)
    shutil.rmtree(root / "results", ignore_errors=True)
    for rel, data in files.items():
        (root / "submission" / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / "submission" / rel).write_bytes(data.encode() if isinstance(data, str) else data)
    env = {"PATH": os.environ["PATH"], ROOT_ENV: str(root), "RDFIA_AUTOGRADER_PYTHON": python,
           "RDFIA_AUTOGRADER_USER": USER}
    res = subprocess.run([str(root / "run_autograder")], cwd=root, env=env, capture_output=True, text=True,
                         timeout=600)
    assert res.returncode == 0, res.stdout[-2000:] + res.stderr[-3000:]
    assert sorted(p.name for p in (root / "results").iterdir()) == ["results.json"]
    results = json.loads((root / "results" / "results.json").read_text())
    assert set(results) <= GRADESCOPE_FIELDS and all(set(t) <= GRADESCOPE_TEST_FIELDS for t in results["tests"])
    assert [t["number"] for t in results["tests"]] == list(CHECKS)
    assert all(t["visibility"] == "visible" for t in results["tests"])
    assert results["extra_data"]["isolation"] == f"limits only, as user {USER}"
    return results


# The hostile hand-in: the stub, then module code that tries to read the hidden checks and the
# configuration, forge the results and tamper with the grader, and a grl_lambda that swaps its
# output file for a link to the hidden checks before exiting, for the grader to read them back.
HOSTILE = """
import os as _os
for _p in ({hidden!r}, {config!r}):
    try:
        open(_p).read()
    except OSError:
        continue
    raise SystemExit('read ' + _p)
for _p, _text in (({results!r}, '{{"score": 100, "tests": []}}'), ({registry!r}, '\\ndef expect(*a): pass\\n')):
    try:
        open(_p, 'a').write(_text)
    except OSError:
        pass


def grl_lambda(p, gamma=10.0):
    _log = _os.readlink('/proc/self/fd/1')
    _os.remove(_log)
    _os.symlink({hidden!r}, _log)
    _os._exit(3)
"""


@pytest.mark.slow
def test_run_autograder_grades_correct_partial_and_hostile_hand_ins(autograder, user_python, tmp_path):
    root = tmp_path / "autograder"
    with zipfile.ZipFile(autograder) as z:
        z.extractall(root / "source")
    for script in ("setup.sh", "run_autograder"):  # unzip keeps the modes; zipfile does not
        (root / "source" / script).chmod(0o755)
    shutil.copy(root / "source" / "run_autograder", root / "run_autograder")  # as Gradescope's image does
    points = {c.id: c.points for c in select("tp3c") if c.id in CHECKS}
    grader = root / "source" / "grader" / "grading"
    before = {p: hashlib.sha256(p.read_bytes()).hexdigest() for p in grader.rglob("*.py")}

    correct = _autograde(root, user_python, {"dann.py": GOOD})
    assert correct["score"] == sum(points.values()) and all(t["status"] == "passed" for t in correct["tests"])
    hidden = [t for t in correct["tests"] if t["number"] == "tp3c.grl_in_network"]
    assert hidden[0]["output"] == "hidden check: only its result is shown"

    handin = io.BytesIO()  # uploaded as the zip that ``handin`` writes
    with zipfile.ZipFile(handin, "w") as z:
        z.writestr(FILE, strip_solutions(GOOD, FILE, only="grl_lambda"))
    partial = _autograde(root, user_python, {"handin_tp3c.zip": handin.getvalue()})
    lost = [t for t in partial["tests"] if t["status"] != "passed"]
    assert [t["number"] for t in lost] == ["tp3c.grl_schedule"] and "not implemented" in lost[0]["output"]
    assert partial["score"] == sum(points.values()) - points["tp3c.grl_schedule"]

    paths = {"hidden": str(grader / "hidden" / "tp3c_domain_adaptation.py"), "config": str(root / "source" / CONFIG),
             "results": str(root / "results" / "results.json"), "registry": str(grader / "registry.py")}
    hostile = _autograde(root, user_python, {FILE: strip_solutions(GOOD, FILE) + HOSTILE.format(**paths)})
    assert hostile["score"] == 0 and all(t["score"] == 0 for t in hostile["tests"])
    outputs = {t["number"]: t["output"] for t in hostile["tests"]}
    assert "exit code 3" in outputs.pop("tp3c.grl_schedule"), "the schedule's process exited"
    assert all("not implemented" in o for n, o in outputs.items() if n != "tp3c.grl_in_network"), outputs
    hidden_text = Path(paths["hidden"]).read_text()
    shown = "\n".join([hostile["output"]] + [t["output"] for t in hostile["tests"]])
    assert not [line for line in hidden_text.splitlines() if len(line.strip()) > 20 and line.strip() in shown]
    assert before == {p: hashlib.sha256(p.read_bytes()).hexdigest() for p in grader.rglob("*.py")}

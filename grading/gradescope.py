"""Grading on Gradescope: the autograder zip (``python -m grading gradescope OUT.zip``), and
what its ``run_autograder`` runs for each submission (``python -m grading.gradescope``).

Gradescope's layout, from its "Autograder Specifications" and "Troubleshooting" pages
(https://gradescope-autograders.readthedocs.io/en/latest/specs/ and .../troubleshooting/):
the zip holds ``setup.sh`` and ``run_autograder`` at its root; ``setup.sh`` runs once, as
root, when the image is built (Ubuntu, network available); the zip is unpacked to
``/autograder/source``; for each submission, the student's files are put in
``/autograder/submission`` and ``/autograder/run_autograder`` runs as root from
``/autograder``; Gradescope then reads ``/autograder/results/results.json`` (``score``,
``tests`` with ``score``, ``max_score``, ``name``, ``output``, ``visibility``...). A container
has 768 MB of memory and half a CPU by default and 10 minutes (at most 40) for the whole run.

The zip holds the student release (``release/``: the base tree a submission is laid over, as
in :mod:`grading.grade`), the grader (``grader/``: the release's shared code and stubs with
the whole ``grading`` package, hidden checks included, but nothing that holds or needs the
reference solution), the pinned student requirements and the configuration chosen at build
time. The reference solution is never in it. In the container, ``setup.sh`` makes
``/autograder/source`` readable by root alone and creates an unprivileged user, as whom the
student's process runs (Docker's containers rarely allow the namespaces' sandbox); the
checks' verdicts stay in the grader's process, run as root. Instructor-only: the student
release leaves this module out.
"""
import argparse
import json
import logging
import os
import re
import sys
import tempfile
import traceback
import zipfile
from pathlib import Path

from grading.registry import PRACTICALS
from grading.release import MANIFEST, REPO, release
from grading.reports import gradescope_results
from grading.runner import Limits
from grading.untrusted import plain

CONFIG = "gradescope.json"  # in the zip: the practical, the checks and the limits chosen at build time
ROOT_ENV = "RDFIA_AUTOGRADER_ROOT"  # where run_autograder finds the autograder's tree (a test's tmp folder)
VENV = "/opt/rdfia-venv"  # where setup.sh installs the requirements: outside the source, readable by the student
STUDENT_USER = "rdfia-student"  # the unprivileged user setup.sh creates for the student's code
MEMORY_MB = 2048  # default limit of each check's process (RLIMIT_DATA); see the instructor's guide
# Of the grading package, left out of the zip: the mutants hold solution code, the selftest
# and the calibration run the reference, the edition writes the release.
LEFT_OUT = ("mutants.py", "selftest.py", "calibrate.py", "edition")

SETUP_SH = f"""#!/usr/bin/env bash
# Gradescope runs this once, as root and online, when it builds the autograder's image: it
# installs Python (3.11 or newer) and the pinned student requirements (CPU wheels of PyTorch)
# into {VENV}, creates the unprivileged user the students' code runs as, and makes the
# grader's files (the hidden checks) readable by root alone.
set -euo pipefail
SOURCE=/autograder/source
PY=""
for candidate in python3.13 python3.12 python3.11; do
  if command -v "$candidate" >/dev/null 2>&1; then PY="$candidate"; break; fi
done
if [ -z "$PY" ]; then  # Ubuntu 22.04: python3.10 by default, 3.11 in its universe
  apt-get update
  apt-get install -y python3.11 python3.11-venv
  PY=python3.11
fi
if ! "$PY" -m venv {VENV}; then  # Ubuntu ships venv's pip apart, as python3.X-venv
  apt-get update
  apt-get install -y "$PY-venv"
  rm -rf {VENV}
  "$PY" -m venv {VENV}
fi
{VENV}/bin/pip install --no-cache-dir --upgrade pip
{VENV}/bin/pip install --no-cache-dir --extra-index-url https://download.pytorch.org/whl/cpu \\
  -r "$SOURCE/requirements.txt"
{VENV}/bin/python -c "import torch, torchvision, numpy, sklearn, matplotlib, mlxtend, skimage, timm, tqdm"
id -u {STUDENT_USER} >/dev/null 2>&1 || \\
  useradd --system --no-create-home --home-dir /nonexistent --shell /usr/sbin/nologin {STUDENT_USER}
chmod 700 "$SOURCE"
chmod 755 "$SOURCE/run_autograder"
"""

RUN_AUTOGRADER = f"""#!/usr/bin/env bash
# Gradescope runs this for each submission, as root, from /autograder: it grades
# /autograder/submission and writes /autograder/results/results.json.
# {ROOT_ENV} moves /autograder (a test's copy), RDFIA_AUTOGRADER_PYTHON the Python, and
# RDFIA_AUTOGRADER_USER the user the students' code runs as (empty: this script's own user).
ROOT="${{{ROOT_ENV}:-/autograder}}"
PYTHON="${{RDFIA_AUTOGRADER_PYTHON:-{VENV}/bin/python}}"
STUDENT="${{RDFIA_AUTOGRADER_USER-{STUDENT_USER}}}"
mkdir -p "$ROOT/results"
cd "$ROOT" || exit 1
PYTHONPATH="$ROOT/source/grader" exec "$PYTHON" -m grading.gradescope --root "$ROOT" --user "$STUDENT"
"""


# ---------------------------------------------------------------------------------- the zip

def pinned_requirements(student: Path = REPO / "requirements-student.txt",
                        tested: Path = REPO / "requirements.txt") -> str:
    """The student requirements at the versions the project is tested with: each package of
    ``student`` pinned as in ``tested``, else as its "tested:" comment says, else as it
    is installed here, else kept as it is (its lower bound): every image gets the same set."""
    pins = {}
    for line in tested.read_text().splitlines():
        m = re.match(r"^([A-Za-z0-9_.-]+)==(\S+)", line)
        if m:
            pins[_normal(m.group(1))] = m.group(2)
    out = ["# The course's student requirements, pinned to the tested versions (python -m grading gradescope)."]
    for line in student.read_text().splitlines():
        m = re.match(r"^([A-Za-z0-9_.-]+)\s*[<>=!~]", line)
        if not m:
            continue
        name = m.group(1)
        comment = re.search(r"tested: ([0-9][^)\s]*)", line)
        pin = pins.get(_normal(name)) or (comment.group(1) if comment else None) or _installed(name)
        out.append(f"{name}=={pin}" if pin else line.split("#")[0].strip())
    return "\n".join(out) + "\n"


def _installed(name: str) -> str | None:
    """The version of ``name`` in this environment (the tested one), if installed."""
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version(name)
    except PackageNotFoundError:
        return None


def _normal(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def _grader_files(release_dir: Path):
    """``(path in the zip, file)`` of the grader: the release's shared code and practicals'
    modules (stubs), then the repository's whole ``grading`` package over it, but LEFT_OUT."""
    for f in sorted(release_dir.rglob("*")):
        rel = f.relative_to(release_dir)
        if f.is_file() and rel.parts[0] in ("common", *PRACTICALS) and f.suffix == ".py":
            yield f"grader/{rel.as_posix()}", f
    for f in sorted((REPO / "grading").rglob("*")):
        rel = f.relative_to(REPO)
        if f.is_file() and "__pycache__" not in rel.parts and rel.parts[1] not in LEFT_OUT:
            yield f"grader/{rel.as_posix()}", f


def _write(z: zipfile.ZipFile, name: str, text: str, mode: int = 0o644) -> None:
    info = zipfile.ZipInfo(name, date_time=(2026, 1, 1, 0, 0, 0))
    info.external_attr, info.compress_type = (0o100000 | mode) << 16, zipfile.ZIP_DEFLATED
    z.writestr(info, text)


def build(out: Path, practical: str = "all", only=None, limits: Limits = Limits(memory_mb=MEMORY_MB)) -> dict:
    """Write the autograder zip ``out`` for ``practical`` (or all), its checks public and
    hidden (``only``: these check ids alone); return the configuration it holds."""
    from grading.grade import _select_checks

    checks = _select_checks(practical, only)
    config = {"practical": practical, "checks": [c.id for c in checks], "points": sum(c.points for c in checks),
              "memory_mb": limits.memory_mb, "output_mb": limits.output_mb}
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="rdfia-gradescope-") as tmp, \
            zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as z:
        release_dir = Path(tmp) / "release"
        release(release_dir)
        _write(z, "setup.sh", SETUP_SH, 0o755)
        _write(z, "run_autograder", RUN_AUTOGRADER, 0o755)
        _write(z, "requirements.txt", pinned_requirements())
        _write(z, CONFIG, json.dumps(config, indent=2) + "\n")
        for f in sorted(release_dir.rglob("*")):
            if f.is_file():
                z.write(f, f"release/{f.relative_to(release_dir).as_posix()}")
        for name, f in _grader_files(release_dir):
            z.write(f, name)
    return config


# ---------------------------------------------------------------------------------- in the container

def _entry(submission: Path) -> Path:
    """The hand-in in Gradescope's submission folder: a zip uploaded alone (the one ``handin``
    writes) is read as the hand-in, else the folder itself, as ``grade`` reads a student's."""
    items = [p for p in submission.iterdir() if not p.name.startswith(".")]
    if len(items) == 1 and items[0].is_file() and not items[0].is_symlink() and items[0].suffix.lower() == ".zip":
        return items[0]
    return submission


def grade_submission(root: Path, user: str = "") -> dict:
    """Grade ``root/submission`` with the zip's grader in ``root/source``, the student's code
    run as ``user`` (when grading as root), and return the report (as :mod:`grading.grade`'s)."""
    from grading.grade import _select_checks, grade_one

    source = root / "source"
    config = json.loads((source / CONFIG).read_text())
    if user and os.geteuid() != 0:
        raise SystemExit(f"run_autograder: only root can run the students' code as {user!r}; "
                         "set RDFIA_AUTOGRADER_USER= (empty) to run it as this user, with the limits only")
    os.chmod(source, 0o700)  # as setup.sh left it: the grader and the hidden checks, root's alone
    checks = _select_checks(config["practical"], config["checks"])
    graded = {c.practical for c in checks}
    manifest = json.loads((source / "release" / MANIFEST).read_text())
    student_files = {f: v for f, v in manifest["student_files"].items() if f.split("/")[0] in graded}
    limits = Limits(memory_mb=config["memory_mb"], output_mb=config["output_mb"], sandbox="off", user=user)
    with tempfile.TemporaryDirectory(prefix="rdfia-gradescope-") as tmp:
        os.chmod(tmp, 0o711)  # the student's user goes through to its copy, lists nothing
        return grade_one(_entry(root / "submission"), source / "release", source / "grader", checks,
                         student_files, Path(tmp) / "work", limits, scratch=Path(tmp), student="submission")


def _failed(error: BaseException) -> dict:
    """Gradescope's results when the grader itself failed: no score, and why."""
    return {"score": 0, "output": plain(f"The autograder failed ({type(error).__name__}: {error}); "
                                        "tell your instructor."),
            "output_format": "text", "visibility": "visible", "stdout_visibility": "hidden", "tests": []}


def run(root: Path, user: str = "") -> dict:
    """What ``run_autograder`` does: grade, write ``root/results/results.json`` (also when the
    grader fails, saying so), and print each check's result for the instructor's log."""
    results_dir = root / "results"
    results_dir.mkdir(parents=True, exist_ok=True)
    try:
        report = grade_submission(root, user)
        results = gradescope_results(report)
    except (Exception, SystemExit) as e:
        traceback.print_exc()
        results = _failed(e)
        report = None
    (results_dir / "results.json").write_text(json.dumps(results, indent=2) + "\n")
    if report is not None:
        for r in report["results"]:
            print(f"{r['id']}: {r['status']} {r['score']:g}/{r['points']:g} {r['message'][:300]}")
        print(f"score {report['score']:g}/{report['max_score']:g}; isolation: {report['isolation']}")
    return results


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m grading.gradescope",
                                     description="Grade a Gradescope submission (what run_autograder runs).")
    parser.add_argument("--root", type=Path, default=Path(os.environ.get(ROOT_ENV, "/autograder")),
                        help="the autograder's tree: source/, submission/, results/")
    parser.add_argument("--user", default=STUDENT_USER,
                        help="run the students' code as this user (empty: as this process's user)")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    results = run(args.root.resolve(), args.user)
    return 0 if "tests" in results and results["tests"] else 1


if __name__ == "__main__":
    sys.exit(main())

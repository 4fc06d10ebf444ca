"""The students' requirements file: lower bounds that keep an environment's own PyTorch (Colab's),
naming every package the release imports and none of the instructor's, and enough on its own to
run the practicals and their checks in a fresh environment."""
import ast
import importlib.metadata
import json
import os
import re
import resource
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name
from packaging.version import Version

from grading.registry import PRACTICALS

REPO = Path(__file__).resolve().parents[1]
STUDENT = REPO / "requirements-student.txt"
# In the instructors' requirements.txt for grading, the release tools and the tests only.
INSTRUCTOR_ONLY = ("nbgrader", "pytest", "captum")
# The release's own packages, imported by name.
OWN = {"common", "grading", *PRACTICALS}
# Imported only inside the functions of the notebooks' helpers, which run in a Jupyter kernel
# that has it (Colab's, or the JupyterLab a student adds): naming it would replace Colab's own.
KERNEL = {"IPython"}


def requirements(path: Path) -> dict[str, Requirement]:
    """The requirements of a pip file by canonical name (comments and blank lines skipped)."""
    found = {}
    for line in path.read_text().splitlines():
        line = re.sub(r"(^|\s)#.*$", "", line).strip()
        if line and not line.startswith("-"):  # not an option line (-c, --index-url)
            req = Requirement(line)
            found[canonicalize_name(req.name)] = req
    return found


def versions_tested(path: Path) -> dict[str, str]:
    """The ``(tested: VERSION)`` comment of each requirement, by canonical name."""
    return {canonicalize_name(Requirement(m.group(1)).name): m.group(2)
            for m in re.finditer(r"^([^#\s]+)\s.*\(tested: ([^)]+)\)", path.read_text(), flags=re.MULTILINE)}


def top_level_imports(root: Path) -> dict[str, dict[str, bool]]:
    """Every absolute import of the ``.py`` files under ``root`` (at module level or inside a
    function or a ``try``, as the optional and offline imports are), by top-level name: the
    files that make it, each with whether one of its imports of it runs when the file is
    imported (outside any function)."""
    found = {}
    for f in sorted(root.rglob("*.py")):
        tree = ast.parse(f.read_text())
        deferred = {id(n) for func in ast.walk(tree) if isinstance(func, (ast.FunctionDef, ast.AsyncFunctionDef))
                    for n in ast.walk(func)}
        for node in ast.walk(tree):
            if isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom) and node.level == 0:
                names = [node.module]
            else:
                continue
            for name in names:
                files = found.setdefault(name.split(".")[0], {})
                rel = f.relative_to(root).as_posix()
                files[rel] = files.get(rel, False) or id(node) not in deferred
    return found


# ----------------------------------------------------------------------------- the file itself

def test_the_student_file_has_lower_bounds_only_and_nothing_of_the_instructors():
    student, pinned = requirements(STUDENT), requirements(REPO / "requirements.txt")
    assert {"torch", "torchvision", "numpy"} <= set(student)
    for name, req in student.items():
        ops = {s.operator for s in req.specifier}
        assert ops == {">="}, f"{req}: only a lower bound (>=) lets pip keep an installed version"
        if name in pinned:
            tested, comment = next(iter(pinned[name].specifier)).version, None
        else:  # a dependency of a pinned package (scipy, of scikit-learn): tested as installed here
            tested, comment = importlib.metadata.version(name), "unpinned"
        assert Version(tested) in req.specifier, f"{req} excludes the tested version {tested}"
        said = versions_tested(STUDENT).get(name, "")
        assert said == (comment or tested) or (comment and said.startswith(comment)), \
            f"{name}: the comment must say (tested: {comment or tested})"
    assert not set(INSTRUCTOR_ONLY) & set(student), f"instructor-only: {set(INSTRUCTOR_ONLY) & set(student)}"
    # The instructors' file stays the tested set: exact pins, the instructor's tools included.
    assert all({s.operator for s in r.specifier} == {"=="} for r in pinned.values())
    assert set(INSTRUCTOR_ONLY) <= set(pinned)


def test_the_release_ships_the_student_file_as_its_only_requirements(student_release):
    assert (student_release / "requirements.txt").read_text() == STUDENT.read_text()
    assert sorted(p.name for p in student_release.glob("requirements*")) == ["requirements.txt"]


def test_every_import_of_the_release_is_in_the_student_file(student_release):
    """Each third-party module a released file imports maps to a distribution the student
    file names (``PIL`` to pillow, ``sklearn`` to scikit-learn, ``skimage`` to scikit-image),
    and the file names nothing that the release does not import."""
    distributions = importlib.metadata.packages_distributions()
    student = requirements(STUDENT)
    needed, problems = set(), []
    for name, files in sorted(top_level_imports(student_release).items()):
        if name in sys.stdlib_module_names or name in OWN:
            continue
        if name in KERNEL:
            problems += [f"{rel} imports {name} outside a function: only a Jupyter kernel has it"
                         for rel, eager in files.items() if eager]
            continue
        dists = {canonicalize_name(d) for d in distributions.get(name, [])}
        if not dists:
            problems.append(f"{name} (imported by {', '.join(sorted(files))}) is not installed here")
        elif not dists & set(student):
            problems.append(f"{name} ({', '.join(sorted(dists))}), imported by {', '.join(sorted(files))}, "
                            f"is missing from {STUDENT.name}")
        needed |= dists & set(student)
    assert not problems, "\n".join(problems)
    assert needed == set(student), f"named but never imported: {sorted(set(student) - needed)}"


# ----------------------------------------------------------------------------- a fresh environment

def readme_commands(root: Path) -> list[str]:
    """The commands of the student README's ``bash`` blocks, less the set-up line."""
    text = (root / "README.md").read_text()
    lines = [line.strip() for block in re.findall(r"```bash\n(.*?)```", text, flags=re.DOTALL)
             for line in block.splitlines()]
    return [c for c in lines if c and not c.startswith(("#", "python3 -m venv"))]


def clean_env(venv: Path, **extra) -> dict:
    """This process's environment with ``venv`` activated instead of the instructors' one."""
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "PYTHONHOME", "VIRTUAL_ENV")}
    path = [p for p in env.get("PATH", "").split(os.pathsep) if not p.startswith(sys.prefix)]
    return dict(env, VIRTUAL_ENV=str(venv), PATH=os.pathsep.join([str(venv / "bin"), *path]),
                PIP_DISABLE_PIP_VERSION_CHECK="1", **extra)


# Stands for a runtime's own PyTorch (Colab's): a pair older than the pins. (A CPU build of
# torch will not do: PyPI's torchvision is built for the CUDA one, and its operators then fail.)
RUNTIME_TORCH = ("torch==2.14.1", "torchvision==0.29.1")


def pip(venv: Path, *args: str, timeout: int = 1800) -> subprocess.CompletedProcess:
    """``pip ARGS`` in ``venv``; skips the test when the package index cannot be reached."""
    res = subprocess.run([str(venv / "bin" / "python"), "-m", "pip", *args], env=clean_env(venv),
                         capture_output=True, text=True, timeout=timeout, check=False)
    if res.returncode and re.search(r"NewConnectionError|Temporary failure in name resolution|Network is unreachable",
                                    res.stdout + res.stderr):
        pytest.skip(f"the package index cannot be reached: {res.stderr.strip().splitlines()[-1]}")
    assert res.returncode == 0, f"pip {' '.join(args)}:\n{res.stdout[-2000:]}{res.stderr[-3000:]}"
    return res


@pytest.mark.slow
def test_a_fresh_environment_from_the_student_file_alone_runs_the_practicals(student_release, tmp_path, shared_data):
    """In a new virtual environment that holds an older PyTorch than the pins, as a Colab
    runtime does, installing the release's requirements.txt keeps that PyTorch and adds none
    of the instructor's packages (the other packages at the tested pins, given as constraints);
    and in it, on the release with the
    reference's student files laid over the stubs, every command of the student README exits
    0: each practical's quick demo, the public checks (all passing) and the hand-in."""
    root = tmp_path / "student"
    shutil.copytree(student_release, root)
    for rel in json.loads((root / "MANIFEST.json").read_text())["student_files"]:
        shutil.copyfile(REPO / rel, root / rel)
    venv, python = tmp_path / "venv", tmp_path / "venv" / "bin" / "python"
    constraints = tmp_path / "constraints.txt"
    constraints.write_text("".join(f"{r}\n" for name, r in requirements(REPO / "requirements.txt").items()
                                   if name not in ("torch", "torchvision")))
    def cpu_seconds() -> float:  # of the subprocesses that have ended
        used = resource.getrusage(resource.RUSAGE_CHILDREN)
        return used.ru_utime + used.ru_stime

    timings, start, cpu = {}, time.monotonic(), cpu_seconds()

    def done(what: str) -> None:
        nonlocal start, cpu
        now = cpu_seconds()
        timings[what] = (time.monotonic() - start, now - cpu)
        print(f"{timings[what][0]:7.1f} s ({timings[what][1]:6.1f} s CPU)  {what}", flush=True)
        start, cpu = time.monotonic(), now

    def version(module: str) -> str:
        return subprocess.run([str(python), "-c", f"import {module}; print({module}.__version__)"], env=clean_env(venv),
                              capture_output=True, text=True, check=True).stdout.strip()

    try:
        subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)  # on the base interpreter
        pip(venv, "install", "-q", *RUNTIME_TORCH)
        runtime = version("torch")
        done(f"venv and the runtime's torch {runtime}")
        pip(venv, "install", "-q", "-r", str(root / "requirements.txt"), "-c", str(constraints))
        done("pip install -r requirements.txt")
        assert version("torch") == runtime, "installing the student requirements replaced the runtime's torch"
        pip(venv, "check")
        probe = ("import importlib.util, json, sys; print(json.dumps([sys.prefix] + "
                 f"[m for m in {INSTRUCTOR_ONLY!r} if importlib.util.find_spec(m)]))")
        res = subprocess.run([str(python), "-c", probe], env=clean_env(venv), capture_output=True, text=True,
                             check=True)
        prefix, *instructors = json.loads(res.stdout)
        assert Path(prefix) == venv and instructors == [], f"the instructor's packages are importable: {instructors}"

        env = clean_env(venv, MPLBACKEND="Agg", HOME=str(tmp_path / "home"), RDFIA_DATA_DIR=str(shared_data),
                        RDFIA_CACHE_DIR=str(tmp_path / "cache"))
        commands = readme_commands(root)
        assert "python -m grading check all" in commands and "python -m grading handin" in commands
        assert all(any(c.startswith(f"python {p}/main.py") and "--quick" in c for c in commands) for p in PRACTICALS)
        for command in commands:
            if re.fullmatch(r"python -m grading check \w+", command) and command != "python -m grading check all":
                continue  # one practical's checks: check all runs them too
            res = subprocess.run(command, shell=True, cwd=root, env=env, capture_output=True, text=True,
                                 timeout=900, check=False)
            done(command)
            out = res.stdout + res.stderr
            assert res.returncode == 0 and "Traceback" not in out, f"{command}:\n{out[-3000:]}"
            if command.startswith("python -m grading check"):
                assert "[FAIL]" not in res.stdout and "not implemented" not in res.stdout, res.stdout[-3000:]
    finally:
        print(f"{sum(w for w, _ in timings.values()):7.1f} s "
              f"({sum(c for _, c in timings.values()):6.1f} s CPU)  in all", flush=True)
        shutil.rmtree(venv, ignore_errors=True)  # not kept with pytest's last temporary folders

"""Generate the student version from the reference solution.

Every ``### BEGIN SOLUTION`` ... ``### END SOLUTION`` region of a Python file becomes a
stub between two unmistakable markers that raises ``NotImplementedError`` naming the
function (``Class.method``), and every ``# BEGIN INSTRUCTOR ONLY`` ... ``# END INSTRUCTOR
ONLY`` block is left out; everything else is kept. A region must close its function, so
that nothing follows the stub's ``raise``. The instructor's material stays out (tests, CI,
documentation, benchmarks, hidden checks, mutants, class grading, the release tools and the
questions' sources), and the student edition is written beside the code
(:mod:`grading.edition`: the student README, the questions, ``ANSWERS.md``, the notebooks).
``MANIFEST.json`` lists the files and functions a student writes.
"""
import ast
import json
import re
import shutil
from dataclasses import dataclass
from pathlib import Path

from grading.registry import PRACTICALS, select

REPO = Path(__file__).resolve().parents[1]

BEGIN = re.compile(r"^(\s*)### BEGIN SOLUTION\s*$")
END = re.compile(r"^\s*### END SOLUTION\s*$")
# Lines of a released file that only the instructor's repository runs (its commands): left out.
INSTRUCTOR = re.compile(r"^\s*# (BEGIN|END) INSTRUCTOR ONLY\s*$")

# What the release holds: these folders and files of the repository...
RELEASED = ("common", "grading", *PRACTICALS, "requirements-student.txt", ".gitignore")
# ...at the same paths, but for these: students get one requirements file, the lower bounds
# that keep what an environment already has (Colab's own PyTorch), without the instructor's pins.
RENAMED = {"requirements-student.txt": "requirements.txt"}
# ...except these (instructor-only material; patterns relative to the repository).
WITHHELD = ("grading/hidden", "grading/edition", "grading/mutants.py", "grading/selftest.py",
            "grading/calibrate.py", "grading/grade.py", "grading/collect.py", "grading/reports.py",
            "grading/release.py", "grading/similarity.py", "grading/lms.py", "grading/moodle.py",
            "grading/overrides.py", "grading/cluster.py", "grading/gradescope.py", "*/questions.toml")

MANIFEST = "MANIFEST.json"
START_MARK = "# ======== YOUR CODE: {name} ========"
END_MARK = "# ======== END OF YOUR CODE ========"


class ReleaseError(ValueError):
    """The solution markers of a file are malformed."""


@dataclass
class Region:
    path: str
    start: int  # 1-based line of BEGIN
    end: int  # 1-based line of END
    function: str  # qualified name: "Generator.__init__", "grl_lambda"
    lines: list


def _functions(text: str, path: str) -> list[tuple[str, ast.AST]]:
    """``(qualified name, node)`` of every function of a source text, classes included in
    the name (``Class.method``)."""
    try:
        tree = ast.parse(text)
    except SyntaxError as e:
        raise ReleaseError(f"{path}:{e.lineno}: not valid Python ({e.msg})") from None
    found = []

    def walk(node, prefix):
        for child in ast.iter_child_nodes(node):
            if isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef)):
                found.append((prefix + child.name, child))
                walk(child, prefix + child.name + ".<locals>.")
            elif isinstance(child, ast.ClassDef):
                walk(child, prefix + child.name + ".")
            else:
                walk(child, prefix)

    walk(tree, "")
    return found


def find_regions(text: str, path: str = "<string>") -> list[Region]:
    """The solution regions of a source text, checked for pairing and placement: each sits
    in a function, closes it (nothing runs after the stub's ``raise``), one per function."""
    lines = text.splitlines()
    pairs, open_at = [], None
    for i, line in enumerate(lines, start=1):
        if BEGIN.match(line):
            if open_at is not None:
                raise ReleaseError(f"{path}:{i}: BEGIN SOLUTION inside the region opened at line {open_at}")
            open_at = i
        elif END.match(line):
            if open_at is None:
                raise ReleaseError(f"{path}:{i}: END SOLUTION without a BEGIN SOLUTION")
            pairs.append((open_at, i))
            open_at = None
    if open_at is not None:
        raise ReleaseError(f"{path}:{open_at}: BEGIN SOLUTION is never closed")
    if not pairs:
        return []
    functions = _functions(text, path)
    regions, seen = [], set()
    for start, end in pairs:
        around = [(name, f) for name, f in functions if f.lineno < start <= f.end_lineno]
        if not around:
            raise ReleaseError(f"{path}:{start}: a solution region must sit inside a function")
        name, func = max(around, key=lambda nf: nf[1].lineno)  # the innermost
        if name in seen:
            raise ReleaseError(f"{path}:{start}: {name} has two solution regions: make it one")
        if func.end_lineno > end and not any(s <= func.end_lineno <= e for s, e in pairs):
            raise ReleaseError(f"{path}:{end}: code follows the solution region of {name} (line "
                               f"{func.end_lineno}): the region must end its function")
        seen.add(name)
        regions.append(Region(path, start, end, name, lines[start:end - 1]))
    return regions


def stub(indent: str, function: str, path: str) -> list[str]:
    """The lines that replace a solution region."""
    return [indent + START_MARK.format(name=function),
            f'{indent}raise NotImplementedError("{function} ({path})")',
            indent + END_MARK]


def strip_solutions(text: str, path: str = "<string>", only: str | None = None) -> str:
    """Replace each solution region of ``text`` by its stub (``only``: the region of that
    function alone, the others kept)."""
    regions = [r for r in find_regions(text, path) if only is None or r.function == only]
    if not regions:
        return text
    lines = text.splitlines()
    out, last = [], 0
    for r in regions:
        out += lines[last:r.start - 1]
        out += stub(BEGIN.match(lines[r.start - 1]).group(1), r.function, path)
        last = r.end
    out += lines[last:]
    return "\n".join(out) + ("\n" if text.endswith("\n") else "")


def strip_instructor(text: str, path: str = "<string>") -> str:
    """``text`` without its ``# BEGIN INSTRUCTOR ONLY`` ... ``# END INSTRUCTOR ONLY`` blocks."""
    out, inside = [], None
    for i, line in enumerate(text.splitlines(keepends=True), start=1):
        m = INSTRUCTOR.match(line)
        if m and (m.group(1) == "BEGIN") == (inside is None):
            inside = i if m.group(1) == "BEGIN" else None
        elif m:
            raise ReleaseError(f"{path}:{i}: unbalanced INSTRUCTOR ONLY markers")
        elif inside is None:
            out.append(line)
    if inside is not None:
        raise ReleaseError(f"{path}:{inside}: INSTRUCTOR ONLY block never closed")
    return "".join(out)


def withheld(rel: str) -> bool:
    """Is this repository path instructor-only?"""
    path = Path(rel)
    return any(rel == w or rel.startswith(w + "/") or path.match(w) for w in WITHHELD)


def _released_files(repo: Path):
    for name in RELEASED:
        src = repo / name
        if src.is_file():
            yield src
        elif src.is_dir():
            for f in sorted(src.rglob("*")):
                rel = f.relative_to(repo).as_posix()
                if f.is_file() and "__pycache__" not in f.parts and not f.name.endswith(".pyc") \
                        and not withheld(rel):
                    yield f


def release(out: Path, repo: Path = REPO, force: bool = False) -> dict:
    """Write the student version of ``repo`` into ``out``; return the manifest."""
    from grading import edition

    out = Path(out)
    if out.exists():
        if not force and any(out.iterdir()):
            raise SystemExit(f"{out} exists and is not empty; use --force to replace it")
        shutil.rmtree(out)
    files = {}
    for src in _released_files(repo):
        rel = src.relative_to(repo).as_posix()
        dest = out / RENAMED.get(rel, rel)
        dest.parent.mkdir(parents=True, exist_ok=True)
        if src.suffix == ".py":
            text = strip_instructor(src.read_text(), rel)
            regions = find_regions(text, rel)
            text = strip_solutions(text, rel)
            if rel.split("/")[0] in PRACTICALS and src.name == "main.py":
                text = edition.script_start(text)
            dest.write_text(text)
            if regions:
                files[rel] = {"regions": len(regions), "functions": [r.function for r in regions]}
        else:
            shutil.copy2(src, dest)
    manifest = {"student_files": _in_handout_order(files), **edition.manifest_entries()}
    (out / MANIFEST).write_text(json.dumps(manifest, indent=2) + "\n")
    edition.write(out, manifest, repo)
    return manifest


def _in_handout_order(files: dict) -> dict:
    """The student files by practical, each practical's in the order of the first question
    whose checks test one of their functions."""
    first = {}
    for c in select("all", include_hidden=True):
        for name in c.tests:
            first[name] = min(first.get(name, c.question), c.question)
    return dict(sorted(files.items(), key=lambda kv: (
        PRACTICALS.index(kv[0].split("/")[0]), min((first.get(f, 99) for f in kv[1]["functions"]), default=99),
        kv[0])))


def all_regions(repo: Path = REPO) -> list[Region]:
    """Every solution region of the repository's released Python files."""
    regions = []
    for src in _released_files(repo):
        if src.suffix == ".py":
            regions += find_regions(src.read_text(), src.relative_to(repo).as_posix())
    return regions

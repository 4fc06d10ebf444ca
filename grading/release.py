"""Generate the student version from the reference solution.

Every ``### BEGIN SOLUTION`` ... ``### END SOLUTION`` region of a Python file becomes a
``raise NotImplementedError`` stub at the region's indentation; everything else is kept.
Tests, CI, hidden checks and the mutant catalogue are left out, and ``MANIFEST.json``
lists the files a student edits (the ones that had regions).
"""
import json
import re
import shutil
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]

BEGIN = re.compile(r"^(\s*)### BEGIN SOLUTION\s*$")
END = re.compile(r"^\s*### END SOLUTION\s*$")
DEF = re.compile(r"^(\s*)def (\w+)\(")

# What the release holds: these folders and files of the repository...
RELEASED = ("common", "grading", "tp3a_transfer", "tp3b_visualization",
            "tp3c_domain_adaptation", "tp3d_gan", "README.md", "requirements.txt",
            "pyproject.toml", ".gitignore")
# ...except these (instructor-only material).
WITHHELD = ("grading/hidden", "grading/mutants.py", "grading/selftest.py", "grading/calibrate.py")
IGNORED = shutil.ignore_patterns("__pycache__", "*.pyc", ".ipynb_checkpoints")

MANIFEST = "MANIFEST.json"


class ReleaseError(ValueError):
    """The solution markers of a file are malformed."""


@dataclass
class Region:
    path: str
    start: int  # 1-based line of BEGIN
    end: int  # 1-based line of END
    function: str
    lines: list


def find_regions(text: str, path: str = "<string>") -> list[Region]:
    """The solution regions of a source text, checked for pairing and placement."""
    lines = text.splitlines()
    regions, open_at, function = [], None, None
    for i, line in enumerate(lines, start=1):
        if BEGIN.match(line):
            if open_at is not None:
                raise ReleaseError(f"{path}:{i}: BEGIN SOLUTION inside the region opened at line {open_at}")
            indent = len(BEGIN.match(line).group(1))
            if indent == 0:
                raise ReleaseError(f"{path}:{i}: a solution region must sit inside a function")
            open_at, function = i, _enclosing_function(lines, i - 1, indent)
        elif END.match(line):
            if open_at is None:
                raise ReleaseError(f"{path}:{i}: END SOLUTION without a BEGIN SOLUTION")
            regions.append(Region(path, open_at, i, function, lines[open_at:i - 1]))
            open_at = None
    if open_at is not None:
        raise ReleaseError(f"{path}:{open_at}: BEGIN SOLUTION is never closed")
    return regions


def _enclosing_function(lines: list, index: int, indent: int) -> str:
    for j in range(index - 1, -1, -1):
        m = DEF.match(lines[j])
        if m and len(m.group(1)) < indent:
            return m.group(2)
    return "this function"


def strip_solutions(text: str, path: str = "<string>") -> str:
    """Replace each solution region of ``text`` by a ``NotImplementedError`` stub."""
    regions = find_regions(text, path)
    if not regions:
        return text
    lines = text.splitlines()
    out, last = [], 0
    for r in regions:
        out += lines[last:r.start - 1]
        indent = BEGIN.match(lines[r.start - 1]).group(1)
        out.append(f"{indent}# TODO: your code here (see the docstring above)")
        out.append(f'{indent}raise NotImplementedError("{r.function}: write this part '
                   f'(see the docstring)")')
        last = r.end
    out += lines[last:]
    return "\n".join(out) + ("\n" if text.endswith("\n") else "")


def _released_files(repo: Path):
    for name in RELEASED:
        src = repo / name
        if src.is_file():
            yield src
        elif src.is_dir():
            for f in sorted(src.rglob("*")):
                rel = f.relative_to(repo).as_posix()
                if f.is_file() and "__pycache__" not in f.parts and not f.name.endswith(".pyc") \
                        and not any(rel == w or rel.startswith(w + "/") for w in WITHHELD):
                    yield f


def release(out: Path, repo: Path = REPO, force: bool = False) -> dict:
    """Write the student version of ``repo`` into ``out``; return the manifest."""
    out = Path(out)
    if out.exists():
        if not force and any(out.iterdir()):
            raise SystemExit(f"{out} exists and is not empty; use --force to replace it")
        shutil.rmtree(out)
    files = {}
    for src in _released_files(repo):
        rel = src.relative_to(repo).as_posix()
        dest = out / rel
        dest.parent.mkdir(parents=True, exist_ok=True)
        if src.suffix == ".py":
            text = src.read_text()
            regions = find_regions(text, rel)
            dest.write_text(strip_solutions(text, rel))
            if regions:
                files[rel] = {"regions": len(regions),
                              "functions": sorted({r.function for r in regions})}
        else:
            shutil.copy2(src, dest)
    manifest = {"student_files": files,
                "how_to_submit": "hand in the files listed in student_files, at these paths"}
    (out / MANIFEST).write_text(json.dumps(manifest, indent=2) + "\n")
    return manifest


def all_regions(repo: Path = REPO) -> list[Region]:
    """Every solution region of the repository's released Python files."""
    regions = []
    for src in _released_files(repo):
        if src.suffix == ".py":
            regions += find_regions(src.read_text(), src.relative_to(repo).as_posix())
    return regions

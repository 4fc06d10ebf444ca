"""Generate the student version from the reference solution.

Every ``### BEGIN SOLUTION`` ... ``### END SOLUTION`` region of a Python file becomes a
``raise NotImplementedError`` stub at the region's indentation; everything else is kept.
Tests, CI, hidden checks and the mutant catalogue are left out, and ``MANIFEST.json``
lists the files a student edits (the ones that had regions).

``notebooks/<practical>.ipynb`` is then generated for Colab or Jupyter users: a setup cell,
one ``%%writefile`` cell per student file holding exactly the released stub (running it
writes the file the grader reads), the public checks, the quick demo and its figures, and
a cell that zips the student files to hand in.
"""
import ast
import json
import re
import shutil
from dataclasses import dataclass
from pathlib import Path

from grading.registry import PRACTICALS

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
                "how_to_submit": "hand in the files listed in student_files, at these paths",
                "notebooks": [f"{NOTEBOOKS}/{p}.ipynb" for p in PRACTICALS]}
    (out / MANIFEST).write_text(json.dumps(manifest, indent=2) + "\n")
    write_notebooks(out, files)
    return manifest


def all_regions(repo: Path = REPO) -> list[Region]:
    """Every solution region of the repository's released Python files."""
    regions = []
    for src in _released_files(repo):
        if src.suffix == ".py":
            regions += find_regions(src.read_text(), src.relative_to(repo).as_posix())
    return regions


# ----------------------------------------------------------------------------- notebooks

NOTEBOOKS = "notebooks"
# The quick demo of each practical (commands run from the release root) and the figures it
# writes. 3-a has no "all": params (no weights needed) and a C sweep on the network that
# installs offline; 3-b uses that network too, so that the demo needs no download.
DEMOS = {
    "tp3a_transfer": (["tp3a_transfer/main.py params",
                       "tp3a_transfer/main.py --quick csweep --model efficientnet_lite0"],
                      "results/tp3a_transfer/*.png"),
    "tp3b_visualization": (["tp3b_visualization/main.py --quick all --model efficientnet_lite0"],
                           "results/tp3b_visualization/*.png"),
    "tp3c_domain_adaptation": (["tp3c_domain_adaptation/main.py --quick all"],
                               "results/tp3c_domain_adaptation/**/*.png"),
    "tp3d_gan": (["tp3d_gan/main.py --quick"], "results/tp3d_gan/dcgan/*.png"),
}

SETUP = """\
import os
import sys
import zipfile
from pathlib import Path

IN_COLAB = "google.colab" in sys.modules


def find_release():
    \"\"\"The release's root (the folder holding MANIFEST.json): here, one level up (this
    notebook's notebooks/ folder) or one level down (a release unzipped here).\"\"\"
    here = Path.cwd()
    for folder in [here, here.parent, *sorted(m.parent for m in here.glob("*/MANIFEST.json"))]:
        if (folder / "MANIFEST.json").is_file():
            return folder
    return None


root = find_release()
if root is None:  # on Colab: unzip the release zip uploaded into the Files panel
    for archive in sorted(Path.cwd().glob("*.zip")):
        with zipfile.ZipFile(archive) as z:
            if any(name.endswith("MANIFEST.json") for name in z.namelist()):
                z.extractall()
    root = find_release()
if root is None:
    raise FileNotFoundError(
        "the student release (the folder with MANIFEST.json) is not here. On Colab, upload the "
        "release zip your instructor gave you (Files panel, on the left), then run this cell "
        "again; or unzip it yourself: !unzip -q student_version.zip. Elsewhere, open this "
        "notebook from the release's notebooks/ folder.")
os.chdir(root)
print("working in", Path.cwd())
if IN_COLAB:  # a local copy already has its virtual environment (see README.md)
    %pip install -q -r requirements.txt
"""


def _docstring(path: Path) -> str:
    return ast.get_docstring(ast.parse(path.read_text())) or ""


def _first_paragraph(text: str) -> str:
    return " ".join(text.split("\n\n")[0].split())


def notebook_cells(out: Path, practical: str, student_files: dict) -> list[tuple[str, str]]:
    """The cells ``(kind, source)`` of a practical's notebook, from the released files."""
    title = _first_paragraph(_docstring(out / practical / "__init__.py")).rstrip(".")
    purpose = _first_paragraph(_docstring(out / practical / "main.py"))
    mine = [f for f in student_files if f.split("/")[0] == practical]
    commands, figures = DEMOS[practical]
    cells = [
        ("markdown", f"# {title}\n\n{purpose}\n\n"
                     "What to do: run the setup cell, fill in the parts marked `# TODO` in the "
                     f"cells of {', '.join(f'`{f}`' for f in mine)} below and run them (each "
                     "saves its file), then run the public checks until they pass, and the "
                     "quick demo. The docstrings say what each function takes and returns."),
        ("markdown", "## Setup\n\nOn Colab, upload the release zip your instructor gave you "
                     "(Files panel, on the left) first: this cell unzips it, moves into it and "
                     "installs `requirements.txt` (a few minutes). On your machine, open this "
                     "notebook from the release's `notebooks/` folder, in the environment made "
                     "from `requirements.txt`: the cell moves to the release's root folder."),
        ("code", SETUP.rstrip("\n")),
    ]
    for rel in mine:
        info = student_files[rel]
        functions = ", ".join(f"`{name}`" for name in info["functions"])
        cells += [
            ("markdown", f"## `{rel}`\n\n{_first_paragraph(_docstring(out / rel))}\n\n"
                         f"To write: {functions} ({info['regions']} parts marked `# TODO`). "
                         f"Running the cell saves it to `{rel}`, replacing that file: edit "
                         "either here or in the file, not in both."),
            ("code", f"%%writefile {rel}\n" + (out / rel).read_text()),
        ]
    listed = ", ".join(f"`{f}`" for f in mine)
    cells += [
        ("markdown", "## Public checks\n\nThe same checks as `python -m grading check "
                     f"{practical}` in a terminal; grading adds hidden checks. A part not "
                     "written yet says `not implemented yet`."),
        ("code", f"!python -m grading check {practical}"),
        ("markdown", "## Quick demo\n\nThe practical's pipeline on a tiny budget, with your "
                     "code; drop `--quick` for the real runs (see README.md for each command, "
                     "the data it needs and how long it takes). Datasets are read from "
                     "`$RDFIA_DATA_DIR`, else `data/` in the release."),
        ("code", "\n".join(f"!python {c}" for c in commands)),
        ("code", "from pathlib import Path\n\nfrom IPython.display import Image, display\n\n"
                 f"for png in sorted(Path().glob({json.dumps(figures)})):\n"
                 "    print(png)\n"
                 "    display(Image(filename=str(png)))"),
        ("markdown", "## Hand in\n\nThe files you edited, at their paths in the release "
                     f"({listed}): this cell zips them; download the zip (on Colab: Files "
                     "panel) and hand it in."),
        ("code", "import zipfile\nfrom pathlib import Path\n\n"
                 f"with zipfile.ZipFile(\"submission_{practical}.zip\", \"w\") as z:\n"
                 f"    for name in {json.dumps(mine)}:\n"
                 "        z.write(name)\n"
                 "print(\"wrote\", Path(z.filename).resolve())"),
    ]
    return cells


def write_notebooks(out: Path, student_files: dict) -> list[Path]:
    """Write ``OUT/notebooks/<practical>.ipynb`` for each practical; return their paths.

    Built with nbformat, not by parsing a percent-format text: jupytext would turn a comment
    such as ``# %d`` of a student file into a magic, and split a cell at a ``# %%`` line,
    whereas each ``%%writefile`` cell must hold the released file exactly. Cell ids are
    fixed, so that two releases of the same sources are identical.
    """
    import nbformat
    from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook

    paths = []
    for practical in PRACTICALS:
        nb = new_notebook(metadata={
            "kernelspec": {"name": "python3", "display_name": "Python 3", "language": "python"},
            "language_info": {"name": "python"},
            "colab": {"provenance": []}})
        for i, (kind, source) in enumerate(notebook_cells(out, practical, student_files)):
            make = new_code_cell if kind == "code" else new_markdown_cell
            nb.cells.append(make(source, id=f"{practical}-{i:02d}"))
        nbformat.validate(nb)
        path = out / NOTEBOOKS / f"{practical}.ipynb"
        path.parent.mkdir(parents=True, exist_ok=True)
        nbformat.write(nb, str(path))
        paths.append(path)
    return paths

"""One notebook per practical, for Colab or Jupyter users, generated from the released files.

Cells: the setup (on Colab: unzip the release and install its requirements), one
``%%writefile`` cell per student file holding exactly the released stub (running it writes
the file the checks read), the public checks, the quick demo and its figures, the
handout's questions each followed by an answer cell, and the hand-in.
"""
import json
from pathlib import Path

from grading.check import UNANSWERED
from grading.registry import PRACTICALS

NOTEBOOKS = "notebooks"

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


def notebook_cells(out: Path, practical: str, manifest: dict, repo: Path) -> list[tuple[str, str, dict]]:
    """The cells ``(kind, source, metadata)`` of a practical's notebook."""
    from grading.edition import (DEMOS, docstring, first_paragraph, load_questions, question_body,
                                 question_heading, short_name)

    name = short_name(practical, repo)
    purpose = first_paragraph(docstring(out / practical / "main.py")).split(": ", 1)[-1]
    purpose = purpose[:1].upper() + purpose[1:]
    mine = [f for f in manifest["student_files"] if f.split("/")[0] == practical]
    commands, figures = DEMOS[practical]
    cells = [
        ("markdown", f"# Practical {name}\n\n{purpose}\n\n"
                     "What to do: run the setup cell, write the functions marked `YOUR CODE` in the cells of "
                     f"{', '.join(f'`{f}`' for f in mine)} below and run those cells (each saves its file), "
                     "run the public checks until they pass and the quick demo, then answer the questions "
                     "in the answer cells and hand in. The docstrings say what each function takes and "
                     "returns.", {}),
        ("markdown", "## Setup\n\nOn Colab, choose a GPU runtime first (Runtime, then Change runtime type), and "
                     "upload the release zip your instructor gave you (Files panel, on the left): this cell "
                     "unzips it, moves into it and installs `requirements.txt` (a few minutes). On your "
                     "machine, open this notebook from the release's `notebooks/` folder, in the environment "
                     "made from `requirements.txt`: the cell moves to the release's root folder.", {}),
        ("code", SETUP.rstrip("\n"), {}),
    ]
    for rel in mine:
        info = manifest["student_files"][rel]
        functions = ", ".join(f"`{f}`" for f in info["functions"])
        cells += [
            ("markdown", f"## `{rel}`\n\n{first_paragraph(docstring(out / rel))}\n\n"
                         f"To write: {functions}. Running the cell saves it to `{rel}`, replacing that "
                         "file: work either in this cell or in the file, not in both.", {}),
            ("code", f"%%writefile {rel}\n" + (out / rel).read_text(), {}),
        ]
    cells += [
        ("markdown", "## Public checks\n\nThe same checks as `python -m grading check "
                     f"{practical}` in a terminal, in the order of the questions; grading adds hidden "
                     "checks. A function not written yet says `not implemented yet`.", {}),
        ("code", f"!python -m grading check {practical}", {}),
        ("markdown", "## Quick demo\n\nThe practical's pipeline on a tiny budget, with your code; without "
                     "`--quick` the same commands run the course's settings (each question below gives its "
                     "command). Datasets are read from `$RDFIA_DATA_DIR`, else `data/` in the release.", {}),
        ("code", "\n".join(f"!{c}" for c in commands), {}),
        ("code", "from pathlib import Path\n\nfrom IPython.display import Image, display\n\n"
                 f"for png in sorted(Path().glob({json.dumps(figures)})):\n"
                 "    print(png)\n"
                 "    display(Image(filename=str(png)))", {}),
    ]
    data = load_questions(practical, repo)
    cells.append(("markdown", f"## Questions (handout {data['handout']})\n\n★ marks a question worth double "
                              "points; bonus questions are optional. Write each answer in the cell under its "
                              "question (double-click it).", {}))
    for q in data["question"]:
        key = f"{practical} {question_heading(q)}"
        cells += [("markdown", f"### {question_heading(q)}: {q['section']}\n\n{question_body(q)}", {}),
                  ("markdown", f"**Your answer ({question_heading(q)}):**\n\n{UNANSWERED}",
                   {"rdfia": {"answer": key}})]
    cells += [
        ("markdown", "## Hand in\n\nThis cell zips the files you wrote (at their paths in the release), "
                     "`ANSWERS.md`, and this notebook if it is saved in the release's `notebooks/` folder. "
                     "Save the notebook first. On Colab, download the zip from the Files panel, and this "
                     "notebook too (File, then Download): hand in both.", {}),
        ("code", f"!python -m grading handin {practical}", {}),
    ]
    return cells


def write_notebooks(out: Path, manifest: dict, repo: Path) -> list[Path]:
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
        for i, (kind, source, metadata) in enumerate(notebook_cells(out, practical, manifest, repo)):
            make = new_code_cell if kind == "code" else new_markdown_cell
            nb.cells.append(make(source, id=f"{practical}-{i:02d}", metadata=metadata))
        nbformat.validate(nb)
        path = out / NOTEBOOKS / f"{practical}.ipynb"
        path.parent.mkdir(parents=True, exist_ok=True)
        nbformat.write(nb, str(path))
        paths.append(path)
    return paths

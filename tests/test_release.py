"""The student version as a student receives it: its documents, its commands, the course's
questions, and nothing of the instructor's."""
import ast
import importlib
import io
import json
import os
import re
import shlex
import shutil
import subprocess
import sys
import tokenize
import zipfile
from pathlib import Path

import nbformat
import pytest

from grading.edition import SCRIPT_START, load_questions
from grading.registry import PRACTICALS, select
from grading.release import ReleaseError, strip_instructor, withheld

REPO = Path(__file__).resolve().parents[1]
HANDOUTS = REPO.parent / "shared" / "reference" / "course-handouts"
HANDOUT = {"tp3a_transfer": "rdfia_2-a.txt", "tp3b_visualization": "rdfia_2-b.txt",
           "tp3c_domain_adaptation": "rdfia_2-c.txt", "tp3d_gan": "rdfia_2-de.txt"}


# ----------------------------------------------------------------------------- the course's questions

def handout_questions(path: Path) -> list[tuple[int, str]]:
    """``(number, marks)`` of a handout's questions, from the text of its PDF: a line "N."
    followed by the question; "F" is how the extraction renders ★."""
    lines = path.read_text().splitlines()
    found = []
    for i, line in enumerate(lines):
        m = re.match(r"^(\d{1,2})\.(?!\d)\s*(.*)$", line)
        if not m:
            continue
        rest = m.group(2) or (lines[i + 1] if i + 1 < len(lines) else "")
        if rest.strip() == "F":
            rest = "F" + lines[i + 2]
        marks = "★" if re.match(r"^F(?=[A-Z\s]|$)", rest) else "bonus" if rest.lower().startswith("bonus") else ""
        found.append((int(m.group(1)), marks))
    return found


@pytest.mark.parametrize("practical", PRACTICALS)
def test_questions_follow_the_handouts_numbering_and_marks(practical):
    path = HANDOUTS / HANDOUT[practical]
    if not path.is_file():
        pytest.skip(f"the course's handouts are absent: expected {path}")
    data = load_questions(practical, REPO)
    assert data["handout"] == HANDOUT[practical].removeprefix("rdfia_").removesuffix(".txt")
    assert [(q["number"], q["marks"]) for q in data["question"]] == handout_questions(path)


@pytest.mark.parametrize("practical", PRACTICALS)
def test_every_question_names_commands_of_its_practical_and_their_outputs(practical):
    from common import cli

    parser = importlib.import_module(f"{practical}.main").build_parser()
    for q in load_questions(practical, REPO)["question"]:
        assert q["run"] or q["note"], f"Q{q['number']}: neither a command nor a note"
        for command in q["run"]:
            argv = shlex.split(command)
            assert argv[:2] == ["python", f"{practical}/main.py"], command
            cli.parse(parser, argv[2:])  # exits on an unknown command or option
        assert all(f.startswith(f"results/{practical}/") for f in q["look_at"]), q["look_at"]


def test_the_release_renders_the_questions_and_room_for_the_answers(student_release):
    answers = (student_release / "ANSWERS.md").read_text()
    notebooks = {p: nbformat.read(student_release / "notebooks" / f"{p}.ipynb", as_version=4) for p in PRACTICALS}
    for practical in PRACTICALS:
        questions = load_questions(practical, REPO)["question"]
        rendered = (student_release / practical / "QUESTIONS.md").read_text()
        cells = [c for c in notebooks[practical].cells if c.metadata.get("rdfia", {}).get("answer")]
        assert len(cells) == len(questions)
        for q, cell in zip(questions, cells):
            heading = f"Q{q['number']}" + {"★": " ★", "bonus": " (bonus)", "": ""}[q["marks"]]
            assert f"### {heading}\n" in rendered and f"### {practical} {heading}\n" in answers
            assert all(f"`{c}`" in rendered for c in q["run"])
            assert cell.metadata["rdfia"]["answer"] == f"{practical} {heading}" and cell.cell_type == "markdown"
    assert answers.count("_(your answer)_") == sum(len(load_questions(p, REPO)["question"]) for p in PRACTICALS)


# ----------------------------------------------------------------------------- stubs and markers

def test_stubs_are_marked_name_their_function_and_end_it(student_release):
    manifest = json.loads((student_release / "MANIFEST.json").read_text())
    for rel, info in manifest["student_files"].items():
        text = (student_release / rel).read_text()
        for name in info["functions"]:
            stub = re.search(rf"\n( *)# ======== YOUR CODE: {re.escape(name)} ========\n\1raise NotImplementedError"
                             rf"\(\"{re.escape(name)} \({re.escape(rel)}\)\"\)\n"
                             rf"\1# ======== END OF YOUR CODE ========\n",
                             text)
            assert stub, f"{rel}: no stub for {name}"
    assert "DANN.forward" in manifest["student_files"]["tp3c_domain_adaptation/dann.py"]["functions"]
    assert list(manifest["student_files"])[:2] == ["tp3a_transfer/parameters.py", "tp3a_transfer/features.py"]


@pytest.mark.parametrize("src, message", [
    ("def f():\n    x = 1\n    ### BEGIN SOLUTION\n    x = 2\n    ### END SOLUTION\n    return x\n",
     "must end its function"),
    ("def f():\n    ### BEGIN SOLUTION\n    pass\n    ### END SOLUTION\n    ### BEGIN SOLUTION\n    pass\n"
     "    ### END SOLUTION\n", "two solution regions"),
])
def test_a_region_must_end_its_function_alone(src, message):
    from grading.release import strip_solutions

    with pytest.raises(ReleaseError, match=message):
        strip_solutions(src, "f.py")


def test_instructor_only_blocks_are_left_out():
    src = "a = 1\n    # BEGIN INSTRUCTOR ONLY\nsecret = 2\n    # END INSTRUCTOR ONLY\nb = 3\n"
    assert strip_instructor(src) == "a = 1\nb = 3\n"
    with pytest.raises(ReleaseError, match="never closed"):
        strip_instructor("# BEGIN INSTRUCTOR ONLY\nx = 1\n")
    with pytest.raises(ReleaseError, match="unbalanced"):
        strip_instructor("# END INSTRUCTOR ONLY\n")


def test_released_scripts_make_the_release_importable(student_release):
    """The repository is an installed package; the release is not, so its main.py files put
    the release's root first on the import path, right after their docstring."""
    for practical in PRACTICALS:
        text = (student_release / practical / "main.py").read_text()
        module = ast.parse(text)
        assert ast.get_docstring(module), practical
        start = ast.parse(SCRIPT_START).body
        assert [ast.dump(n) for n in module.body[1:1 + len(start)]] == [ast.dump(n) for n in start], practical
        assert "sys.path" not in (REPO / practical / "main.py").read_text()


# ----------------------------------------------------------------------------- nothing of the instructor's

def prose(path: Path) -> list[str]:
    """The human text of a released file: Markdown, notebook cells, and in Python the
    comments, docstrings and strings that hold a space (not names, paths or checksums)."""
    if path.suffix == ".ipynb":
        return [c.source for c in nbformat.read(path, as_version=4).cells]
    text = path.read_text(errors="replace")
    if path.suffix != ".py":
        return [text]
    found = []
    for token in tokenize.generate_tokens(io.StringIO(text).readline):
        if token.type == tokenize.COMMENT or (token.type == tokenize.STRING and " " in token.string):
            found.append(token.string)
        elif token.type == getattr(tokenize, "FSTRING_MIDDLE", -1) and " " in token.string:
            found.append(token.string)
    return found


def released_files(root: Path) -> list[Path]:
    return [f for f in sorted(root.rglob("*")) if f.is_file() and "__pycache__" not in f.parts]


def instructor_files() -> list[Path]:
    """What the release leaves out on purpose, less the sources of the student documents."""
    files = [REPO / "README.md", *sorted((REPO / "docs").glob("*.md"))]
    for folder in ("grading", "tests", "bench"):
        for f in sorted((REPO / folder).rglob("*.py")):
            rel = f.relative_to(REPO).as_posix()
            if (folder != "grading" or withheld(rel)) and not rel.startswith("grading/edition"):
                files.append(f)
    return files


# Words about how the project was made, or material students do not have.
DEVELOPMENT = [
    (r"\b(?=[0-9a-f]*[a-f])(?=[0-9a-f]*[0-9])[0-9a-f]{7,40}\b", "a commit hash"),
    (r"\b20\d\d-\d\d-\d\d\b", "a date"),
    (r"\b(issue|ticket|pull request)s? #?\d+", "an issue number"),
    (r"\b(this|previous|next|earlier|last|another|other) sessions?\b", "a development session"),
    (r"\b\d+-core\b|\bwas (not )?lent\b|can_start_\w+|\bmeasured (on|here|with)\b",
     "a note on a machine or a measurement"),
    (r"\bthe spec\b|\bspec's\b|\bspecification\b", "the instructor's specification"),
    (r"\b(first|second|past|two|student) reports?\b", "the past student reports"),
    (r"\bnot (yet )?defended\b|\bNOT hidden\b|\bweak (point|spot)s?\b|\bloophole|\bbypass|\bdisassembl",
     "a weak point of the sandbox"),
    (r"\bgrading[./](hidden|mutants|selftest|calibrate|grade|release|edition)\b|\bdocs/|\btests/|\bbench/"
     r"|questions\.toml|\bselftest\b|\bmutants?\b|\bpython -m bench\b", "an instructor-only file or tool"),
]


def result_numbers() -> set[str]:
    """Numbers that the instructor's pages report as results (their "Reference results"
    sections: decimals of three significant digits or more), less those a student has anyway
    (in the handouts, or literals of the released code)."""
    numbers = set()
    for page in (REPO / "docs").glob("*.md"):
        for section in re.split(r"^## ", page.read_text(), flags=re.M):
            if section.startswith("Reference results"):
                numbers |= {n for n in re.findall(r"(?<![\w.])\d+\.\d+(?![\w.])", section)
                            if len(n.replace(".", "").strip("0")) >= 3}
    known = " ".join(p.read_text() for p in HANDOUTS.glob("*.txt")) if HANDOUTS.is_dir() else ""
    return {n for n in numbers if not re.search(rf"(?<![\d.]){re.escape(n)}(?![\d])", known)}


def formats(n: str) -> list[str]:
    """How a result may be written: as is, and as a percentage."""
    out = [n]
    whole, _, decimals = n.partition(".")
    if whole == "0" and len(decimals) >= 3:
        out.append(f"{float(n) * 100:.{len(decimals) - 2}f}%")
    return out


def test_nothing_of_the_instructors_reaches_the_release(student_release):
    """Rules that any new leak breaks, over the whole release (documents, notebooks, student
    files, the code of the checks, their titles and messages)."""
    import torch.nn as nn
    import torchvision

    files = released_files(student_release)
    texts = {f: f.read_text(errors="replace") if f.suffix != ".ipynb" else
             "\n".join(c.source for c in nbformat.read(f, as_version=4).cells) for f in files}
    human = {f: "\n".join(prose(f)) for f in files}
    problems = []
    # 1. No line of an instructor-only file: its prose (and a hidden check's code).
    released_lines = {line.strip() for t in texts.values() for line in t.splitlines()}
    for f in instructor_files():
        if f.suffix == ".md":
            lines = f.read_text().splitlines()
        else:
            lines = [line for piece in prose(f) for line in piece.splitlines()]
            if "hidden" in f.parts:  # and a hidden check's code: its inputs, its probes
                lines += [line for line in f.read_text().splitlines() if len(line.strip()) >= 40
                          and not line.strip().startswith(("from ", "import ", "#"))]
        for line in {line.strip() for line in lines if len(re.findall(r"[A-Za-z]{2,}", line)) >= 6}:
            if line in released_lines:
                problems.append(f"a line of {f.relative_to(REPO)} is in the release: {line[:80]!r}")
    # 2. No result reported in the instructor's pages, no VGG16 count (question 1's answer).
    vgg = torchvision.models.vgg16(weights=None)
    counts = [sum(p.numel() for p in vgg.parameters()),
              sum(p.numel() for m in vgg.modules() if isinstance(m, nn.Linear) for p in m.parameters())]
    patterns = [re.escape(f) for n in sorted(result_numbers()) for f in formats(n)]
    patterns += [sep.join(re.escape(g) for g in f"{c:,}".split(",")) for c in counts for sep in (",", "_", " ", "")]
    numbers = re.compile(r"(?<![\w.,])(" + "|".join(patterns) + r")(?![\w%]|[.,]\d)")
    for f, text in texts.items():
        problems += [f"{f.relative_to(student_release)}: the result {m.group(1)!r}" for m in numbers.finditer(text)]
    # 3. No note on how the project was made, no reference to instructor-only material.
    for f, text in human.items():
        for pattern, what in DEVELOPMENT:
            problems += [f"{f.relative_to(student_release)}: {what}: {m.group(0)!r}"
                         for m in re.finditer(pattern, text, flags=re.I if "hash" not in what else 0)]
    # 4. Hidden checks: absent, and named by title only, a title that holds no input, budget or threshold.
    hidden = [c for c in select("all", include_hidden=True) if c.hidden]
    assert hidden and not (student_release / "grading" / "hidden").exists()
    for c in hidden:
        if re.search(r"\d", c.title):
            problems.append(f"the hidden check {c.id}'s title holds a number: {c.title!r}")
        problems += [f"{f.relative_to(student_release)} names the hidden check {c.id}"
                     for f, text in texts.items() if c.id in text]
    assert not problems, "\n".join(problems)


# ----------------------------------------------------------------------------- the student README's commands

def readme_commands(root: Path) -> list[str]:
    """Every command of the student README's ``bash`` blocks."""
    text = (root / "README.md").read_text()
    blocks = re.findall(r"```bash\n(.*?)```", text, flags=re.S)
    return [line.strip() for block in blocks for line in block.splitlines() if line.strip()
            and not line.strip().startswith("#")]


def runnable(command: str) -> str:
    """The command as the test runs it: the environment is already made from the release's
    requirements.txt (CI builds one from scratch with the same file), so creating and
    activating a virtual environment is left out, and the install runs in this one."""
    parts = [p.strip() for p in command.split("&&")]
    parts = [p for p in parts if not p.startswith(("python3 -m venv", ". .venv/bin/activate"))]
    return " && ".join(p.replace("pip install", f"{sys.executable} -m pip install", 1) if p.startswith("pip ")
                       else p.replace("python ", f"{sys.executable} ", 1) if p.startswith("python ") else p
                       for p in parts)


def student_env(tmp: Path) -> dict:
    env = dict(os.environ, MPLBACKEND="Agg", HOME=str(tmp / "home"), RDFIA_CACHE_DIR=str(tmp / "cache"),
               PIP_NO_INDEX="1", PIP_DISABLE_PIP_VERSION_CHECK="1")
    data = os.environ.get("RDFIA_DATA_DIR") or str(REPO.parent / "shared" / "data")
    if Path(data).is_dir():
        env["RDFIA_DATA_DIR"] = data
    return env


def run_readme(root: Path, tmp: Path) -> list[tuple[str, subprocess.CompletedProcess]]:
    env, done = student_env(tmp), []
    for command in readme_commands(root):
        res = subprocess.run(runnable(command), shell=True, cwd=root, env=env, capture_output=True, text=True,
                             timeout=900)
        done.append((command, res))
    return done


def test_the_student_readme_shows_setup_checks_demos_and_hand_in(student_release):
    commands = readme_commands(student_release)
    assert commands[0].startswith("python3 -m venv .venv && . .venv/bin/activate && pip install -r requirements.txt")
    assert "python -m grading check all" in commands and "python -m grading handin" in commands
    for practical in PRACTICALS:
        assert any(c.startswith(f"python {practical}/main.py") for c in commands), practical
    readme = (student_release / "README.md").read_text()
    for c in select("all", include_hidden=True):
        assert c.title.replace("|", "\\|") in readme, c.id


def test_the_student_readme_commands_on_the_stubs(student_release, tmp_path):
    """On the release as handed out, every command either works or ends with one line saying
    which function is not written yet: never a traceback."""
    root = tmp_path / "student"
    shutil.copytree(student_release, root)
    for command, res in run_readme(root, tmp_path):
        out = res.stdout + res.stderr
        assert "Traceback" not in out, f"{command}:\n{out[-3000:]}"
        if "main.py" in command:  # a stub reached, or (without the data folder) a file missing
            last = res.stderr.strip().splitlines()[-1]
            assert (res.returncode, last.split(": ")[0]) in ((3, "not implemented yet"), (2, "error")), \
                f"{command}:\n{out[-2000:]}"
        elif "grading check" in command:
            assert res.returncode == 1 and "not implemented yet" in res.stdout and "score: 0/" in res.stdout
        else:
            assert res.returncode == 0, f"{command}:\n{out[-2000:]}"
    with zipfile.ZipFile(root / "handin.zip") as z:
        names = set(z.namelist())
    manifest = json.loads((root / "MANIFEST.json").read_text())
    assert names == set(manifest["student_files"]) | {"ANSWERS.md"}


# With the reference laid over the release, every command of the README must work: that runs
# in the students' own environment, in tests/test_student_install.py.


def test_handin_collects_the_answers_and_grading_keeps_them(student_release, tmp_path):
    """A notebook's filled answer cells and ANSWERS.md go into the hand-in zip; grading a batch
    puts them beside the student's reports, for the instructor."""
    from grading.check import handin
    from grading.grade import collect_answers

    root = tmp_path / "student"
    shutil.copytree(student_release, root)
    answers = (root / "ANSWERS.md").read_text().replace("_(your answer)_", "The FC layers hold most.", 1)
    (root / "ANSWERS.md").write_text(answers)
    nb_path = root / "notebooks" / "tp3c_domain_adaptation.ipynb"
    nb = nbformat.read(nb_path, as_version=4)
    cell = next(c for c in nb.cells if c.metadata.get("rdfia", {}).get("answer") == "tp3c_domain_adaptation Q1")
    cell.source = "Without the reversal, the features help the domain classifier."
    nbformat.write(nb, str(nb_path))
    path, warnings = handin("all", root=root)
    with zipfile.ZipFile(path) as z:
        assert "notebooks/tp3c_domain_adaptation.ipynb" in z.namelist()
        assert "notebooks/tp3d_gan.ipynb" not in z.namelist()  # no answer written there
        z.extractall(tmp_path / "submitted")
    assert any("34 questions still without an answer" in w for w in warnings), warnings
    got = collect_answers(tmp_path / "submitted")
    assert "The FC layers hold most." in got["ANSWERS.md"]
    assert got["answers_tp3c_domain_adaptation.md"] == ("## tp3c_domain_adaptation Q1\n\nWithout the reversal, "
                                                       "the features help the domain classifier.\n")

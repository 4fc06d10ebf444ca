"""The student edition: the documents written beside the released code.

Everything here is generated from sources in the repository at each release, never edited
by hand in a release: the student README (from ``README.md`` beside this file, filled in
with the practicals, their commands and the checks' titles), each practical's
``QUESTIONS.md`` and the release's ``ANSWERS.md`` (from the practical's ``questions.toml``:
the course's questions in the project's words, numbered as in the handouts, each with the
command that answers it), and one notebook per practical (:mod:`grading.edition.notebooks`).
"""
import ast
import string
import tomllib
from pathlib import Path

from grading.check import ANSWERS, UNANSWERED
from grading.registry import PRACTICALS, select

HERE = Path(__file__).resolve().parent
MARKS = {"★": " ★", "bonus": " (bonus)", "": ""}
# The quick demo of each practical (commands run from the release's root), and the figures
# it writes. 3-a and 3-b use the ImageNet network that installs offline, so that the demos
# need no download; 3-a's C sweep needs 15 Scene.
DEMOS = {
    "tp3a_transfer": (["python tp3a_transfer/main.py params",
                       "python tp3a_transfer/main.py --quick csweep --model efficientnet_lite0"],
                      "results/tp3a_transfer/*.png"),
    "tp3b_visualization": (["python tp3b_visualization/main.py --quick all --model efficientnet_lite0"],
                           "results/tp3b_visualization/*.png"),
    "tp3c_domain_adaptation": (["python tp3c_domain_adaptation/main.py --quick dann"],
                               "results/tp3c_domain_adaptation/**/*.png"),
    "tp3d_gan": (["python tp3d_gan/main.py --quick"], "results/tp3d_gan/dcgan/*.png"),
}


# The release is used from its folder without being installed as a package, so each of its
# main.py files makes the release's root importable when run as a script.
SCRIPT_START = """import sys
from pathlib import Path

if __package__ in (None, ""):  # run as a script from the release: its root holds the packages
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
"""


def script_start(text: str) -> str:
    """``text`` (a practical's main.py) with :data:`SCRIPT_START` after its docstring."""
    body = ast.parse(text).body
    has_doc = body and isinstance(body[0], ast.Expr) and isinstance(getattr(body[0], "value", None), ast.Constant)
    lines = text.splitlines(keepends=True)
    at = body[0].end_lineno if has_doc else 0
    return "".join(lines[:at]) + SCRIPT_START + "".join(lines[at:])


def load_questions(practical: str, repo: Path) -> dict:
    """A practical's ``questions.toml``: ``practical``, ``handout``, ``title`` and the list
    ``question`` (``number``, ``marks``, ``section``, ``ask``, ``run``, ``look_at``, ``note``)."""
    path = repo / practical / "questions.toml"
    with open(path, "rb") as f:
        data = tomllib.load(f)
    numbers = [q["number"] for q in data["question"]]
    if numbers != list(range(1, len(numbers) + 1)) or data["practical"] != practical:
        raise ValueError(f"{path}: questions must be numbered 1, 2, ... in order, for {practical}")
    for q in data["question"]:
        if q["marks"] not in MARKS:
            raise ValueError(f"{path}: question {q['number']}: marks must be one of {list(MARKS)}")
        q.setdefault("note", "")
    return data


def docstring(path: Path) -> str:
    """The module docstring of a Python file ("" when it has none)."""
    return ast.get_docstring(ast.parse(path.read_text())) or ""


def first_paragraph(text: str) -> str:
    return " ".join(text.split("\n\n")[0].split())


def short_name(practical: str, repo: Path) -> str:
    """"3-a: transfer learning ...": the first paragraph of the practical's package docstring."""
    return first_paragraph(docstring(repo / practical / "__init__.py")).removeprefix("Practical ").rstrip(".")


def question_heading(q: dict) -> str:
    return f"Q{q['number']}{MARKS[q['marks']]}"


def question_body(q: dict) -> str:
    """The question, then what to run and what to look at (Markdown)."""
    lines = [" ".join(q["ask"].split())]
    if q["run"]:
        lines += ["", "Run: " + "; ".join(f"`{c}`" for c in q["run"])]
    if q["look_at"]:
        lines += ["", "Look at: " + ", ".join(f"`{f}`" for f in q["look_at"])]
    if q["note"]:
        lines += ["", " ".join(q["note"].split())]
    return "\n".join(lines)


def questions_md(data: dict, name: str) -> str:
    """A practical's ``QUESTIONS.md``."""
    lines = [f"# {name}: the questions", "",
             f"The questions of the course's handout {data['handout']} ({data['title']}), in our words and with "
             "its numbers. ★ marks a question worth double points; bonus questions are optional. Under each: "
             "the commands (from the folder above this one) whose figures and tables answer it, or what to "
             f"reason about. Write your answers in `{ANSWERS}` (or in the notebook's answer cells).", ""]
    section = None
    for q in data["question"]:
        if q["section"] != section:
            section = q["section"]
            lines += [f"## {section}", ""]
        lines += [f"### {question_heading(q)}", "", question_body(q), ""]
    return "\n".join(lines)


def answers_md(repo: Path) -> str:
    """``ANSWERS.md``: every question of the four practicals, each with room for its answer."""
    lines = ["# Answers", "",
             "Write each answer under its question, in place of the placeholder. `python -m grading handin` "
             "hands this file in with your code. ★ marks a question worth double points; bonus questions "
             "are optional. Each practical's `QUESTIONS.md` says what to run for each question.", ""]
    for practical in PRACTICALS:
        data = load_questions(practical, repo)
        lines += [f"## {practical}: {short_name(practical, repo)} (handout {data['handout']})", ""]
        for q in data["question"]:
            lines += [f"### {practical} {question_heading(q)}", "", "> " + " ".join(q["ask"].split()), "",
                      UNANSWERED, ""]
    return "\n".join(lines)


def manifest_entries() -> dict:
    """What the manifest says of the student edition, beside the student files."""
    return {"questions": {p: f"{p}/QUESTIONS.md" for p in PRACTICALS}, "answers": ANSWERS,
            "notebooks": [f"notebooks/{p}.ipynb" for p in PRACTICALS],
            "how_to_submit": "python -m grading handin: a zip of the student files, ANSWERS.md and the notebooks"}


def _practicals_table(manifest: dict, repo: Path) -> str:
    rows = ["| practical | handout | the files you write | questions | notebook |", "|---|---|---|---|---|"]
    for p in PRACTICALS:
        files = ", ".join(f"`{f}`" for f in manifest["student_files"] if f.startswith(p + "/"))
        rows.append(f"| {short_name(p, repo)} | {load_questions(p, repo)['handout']} | {files} | "
                    f"[{p}/QUESTIONS.md]({p}/QUESTIONS.md) | `notebooks/{p}.ipynb` |")
    return "\n".join(rows)


def _graded(repo: Path) -> str:
    """The checks by practical: public ones by title, hidden ones by title too."""
    lines = []
    for p in PRACTICALS:
        checks = select(p, include_hidden=True)
        public = [c for c in checks if not c.hidden]
        hidden = [c for c in checks if c.hidden]
        total = sum(c.points for c in checks)
        lines += [f"### {short_name(p, repo)}: {total:g} points", "",
                  "| question | check | points |", "|---|---|---:|"]
        lines += [f"| {f'Q{c.question}' if c.question else 'practice'} | "
                  f"{c.title.replace('|', chr(92) + '|')}{' (hidden)' if c.hidden else ''} | {c.points:g} |"
                  for c in public + hidden]
        lines.append("")
    return "\n".join(lines).rstrip()


def readme_md(manifest: dict, repo: Path) -> str:
    """The student README, from the template beside this file."""
    demos = "\n".join(c for p in PRACTICALS for c in DEMOS[p][0])
    return string.Template((HERE / "README.md").read_text()).substitute(
        practicals=_practicals_table(manifest, repo), demos=demos, graded=_graded(repo),
        example=manifest_example(manifest))


def manifest_example(manifest: dict) -> str:
    """The stub of the first function of the first student file, as students see it."""
    from grading.release import stub

    rel, info = next(iter(manifest["student_files"].items()))
    return "\n".join(stub("    ", info["functions"][0], rel))


def write(out: Path, manifest: dict, repo: Path) -> None:
    """Write the student edition into the release ``out``."""
    from grading.edition.notebooks import write_notebooks

    for p in PRACTICALS:
        (out / p / "QUESTIONS.md").write_text(questions_md(load_questions(p, repo), short_name(p, repo)))
    (out / ANSWERS).write_text(answers_md(repo))
    (out / "README.md").write_text(readme_md(manifest, repo))
    write_notebooks(out, manifest, repo)

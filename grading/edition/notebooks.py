"""One notebook per practical, for Colab or Jupyter users, generated from the released files.

Cells: the parameters (``QUICK``: every command with ``--quick``, the default without a
GPU), the setup (on Colab: unzip the release and install its requirements), then the
handout's questions in order, each with what it needs: its text, a cell holding exactly the
released stubs of the functions it asks for (``%%writedefs``, :mod:`grading.notebook`:
running it writes them into the student file and keeps the rest of the file), the public
checks of those functions, its commands with their figures, and its answer cell; then the
hand-in. Functions that no question needs come first, each group followed by its checks.

A function's cell goes to the first question whose public checks test it (the checks'
``question``) or whose commands call it (:data:`CALLS`), or before a function that calls it
(in the reference solution), whichever comes first, so that the notebook runs top to bottom;
a check runs in its own question or, when its functions had to come earlier, right after them.
"""
import ast
import importlib
import json
import re
import shlex
from dataclasses import dataclass
from pathlib import Path

from common.pretrained import OFFLINE_MODEL
from grading.check import UNANSWERED
from grading.notebook import MAGIC, blocks, remember
from grading.registry import PRACTICALS, select

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
    # Lower bounds, not pins: Colab's own PyTorch, NumPy, ... stay; only what it lacks is added.
    %pip install -q -r requirements.txt
"""

# ----------------------------------------------------------------------------- what the notebooks say and run

# What the full run of a question's command takes (the command as the questions write it):
# (on a CPU with two cores, on a GPU). None: not measured yet, which the notebook says. Only
# commands over a few minutes on a CPU are listed: the notebooks advise a GPU runtime for
# them. CPU times from docs/tp3*.md ("Reference results") and docs/benchmarks.md; VGG16's
# from its forward pass there (about 6 images/s on 4,485 images).
TIMES = {
    "python tp3a_transfer/main.py svm": (
        "about 13 min, most of it VGG16's features of the 4,485 images (kept for the next commands)", None),
    "python tp3a_transfer/main.py svm --random-weights": ("about 13 min (features of its own)", None),
    "python tp3a_transfer/main.py layers": (
        "over 13 min: VGG16's features at every layer, then an SVM per layer", None),
    "python tp3a_transfer/main.py networks": ("over 15 min: the features of each network", None),
    "python tp3a_transfer/main.py head": (
        "29 min with efficientnet_lite0, hours with VGG16 (fine-tuning runs the whole network every epoch)", None),
    "python tp3b_visualization/main.py classviz --model vgg16": ("about 5 min (under a minute per class)", None),
    "python tp3c_domain_adaptation/main.py baseline": ("under 14 min (one training, lighter than DANN's)", None),
    "python tp3c_domain_adaptation/main.py dann": ("about 14 min", None),
    "python tp3c_domain_adaptation/main.py sweep": ("about 1 hour (four DANN trainings)", None),
    "python tp3c_domain_adaptation/main.py pseudo": ("about 30 min (two trainings)", None),
    "python tp3d_gan/main.py": ("about 5 min (7 min the first time: it also trains the quality classifier)", None),
    "python tp3d_gan/main.py experiment minimax": ("about 5 min", None),
    "python tp3d_gan/main.py experiment all": ("about 3 hours (12 trainings, some with very wide networks)", None),
    "python tp3d_gan/main.py train --image-size 64 --name dcgan64": ("over 5 min (64x64 images)", None),
    "python tp3d_gan/main.py cgan": ("about 32 min", None),
}
NOT_MEASURED = "not measured yet"

# The student definitions (top-level functions and classes) that each subcommand calls, read
# from each main.py: a question whose command calls one that the handout asks for later gets
# that definition's cell, so that the notebook runs top to bottom. A name missing here makes
# that command stop at the stub in the slow notebook test.
_FEATURES = ("cut_vgg16", "scene_transform", "extract_features", "train_svm", "accuracy")
_DANN = ("GradientReversalFunction", "grl_lambda", "FeatureExtractor", "LabelClassifier", "DomainClassifier",
         "DANN", "domain_labels", "dann_loss", "dann_step")
_DCGAN = ("Generator", "Discriminator", "weights_init", "sample_noise", "discriminator_loss", "generator_loss",
          "train_step")
CALLS = {
    "tp3a_transfer": {
        "params": ("count_parameters", "parameter_table", "count_linear_parameters"),
        "predict": ("scene_transform",), "activations": ("scene_transform",),
        "svm": _FEATURES, "networks": _FEATURES, "pca": _FEATURES,
        "csweep": _FEATURES + ("choose_C",), "layers": _FEATURES + ("choose_C",),
        "head": ("cut_vgg16", "scene_transform"),
    },
    "tp3b_visualization": {
        "saliency": ("compute_saliency_maps",), "fooling": ("make_fooling_image",),
        "classviz": ("class_visualization_update_step",), "sweep": ("class_visualization_update_step",),
        "from-image": ("class_visualization_update_step",),
    },
    "tp3c_domain_adaptation": {
        "baseline": ("FeatureExtractor", "LabelClassifier", "DomainClassifier", "DANN", "source_only_step"),
        "dann": _DANN, "sweep": _DANN, "pseudo": _DANN + ("pseudo_label_loss",),
        "tsne": ("FeatureExtractor", "LabelClassifier", "DomainClassifier", "DANN"),
    },
    "tp3d_gan": {
        "train": _DCGAN, "experiment": _DCGAN, "interpolate": ("Generator", "sample_noise"),
        "cgan": ("CondGenerator", "CondDiscriminator", "one_hot", "expand_labels", "cgan_train_step",
                 "weights_init", "sample_noise", "discriminator_loss", "generator_loss"),
        "all": _DCGAN + ("CondGenerator", "CondDiscriminator", "one_hot", "expand_labels", "cgan_train_step"),
    },
}

# The parameters beside QUICK, per practical: (name, option, the course's value, the
# subcommands that get the option (None: all), what it is for). A command that does not give
# the option gets "--option {NAME}"; one that gives the course's value gets {NAME} in its
# place; the files they write are named after {NAME} likewise.
PARAMETERS = {
    "tp3a_transfer": [
        ("MODEL", "--model", "vgg16", ("predict", "activations", "svm", "csweep", "layers", "pca", "head"),
         'the network: "efficientnet_lite0" is an ImageNet network that installs with the requirements, '
         'for working offline (with LAYER = "pool")'),
        ("LAYER", "--layer", "relu7", ("svm", "csweep", "pca"), "where the features are taken"),
    ],
    "tp3b_visualization": [
        ("MODEL", "--model", "squeezenet1_1", None,
         'the network: "efficientnet_lite0" is an ImageNet network that installs with the requirements, '
         'for working offline'),
        ("OTHER_MODEL", "--model", "vgg16", (), "the other network of questions 4 and 11"),
    ],
}
# What stands in for a network parameter whose weights cannot be had (offline, nothing in the
# torch hub cache): the notebook names its networks in every command, and a named network is
# never replaced by the commands themselves.
OFFLINE = {
    "tp3a_transfer": {"MODEL": {"MODEL": OFFLINE_MODEL, "LAYER": "pool"}},
    "tp3b_visualization": {"MODEL": {"MODEL": OFFLINE_MODEL}, "OTHER_MODEL": {"OTHER_MODEL": OFFLINE_MODEL}},
}
PLACEHOLDER = re.compile(r"^YOUR_\w+(\.\w+)?$")


@dataclass
class Definitions:
    """A function cell: the released stubs of ``names``, top-level functions and classes of
    the student file ``path``, in the file's order."""
    path: str
    names: list
    source: str

    def cell(self) -> str:
        return f"%%{MAGIC} {self.path} {' '.join(self.names)}\n{self.source}"


@dataclass
class Step:
    """What a question (or a group of the functions before the questions) holds besides its
    text: its function cells and the public checks run after them."""
    cells: list
    checks: list
    earlier: dict  # name -> the question under which it is written instead (an earlier command needs it)


def stubbed_definitions(out: Path, practical: str, manifest: dict) -> dict[str, tuple[str, str]]:
    """``{name: (student file, released text)}`` of the top-level functions and classes of the
    practical's student files that hold a stub, in the files' order."""
    found = {}
    for rel, info in manifest["student_files"].items():
        if rel.split("/")[0] != practical:
            continue
        text = (out / rel).read_text()
        spans = blocks(text, rel)
        mine = {f.split(".")[0] for f in info["functions"]}
        for name in sorted(mine, key=lambda n: spans[n][0]):
            if name in found:
                raise ValueError(f"{rel} and {found[name][0]} both define {name}: the notebook's cells need one")
            found[name] = (rel, text[slice(*spans[name])])
    return found


def subcommand(practical: str, command: str) -> str:
    """The subcommand a question's command runs (the default one when it names none)."""
    from common import cli

    parser = importlib.import_module(f"{practical}.main").build_parser()
    return cli.parse(parser, shlex.split(command)[2:]).command


def references(repo: Path, defs: dict[str, tuple[str, str]]) -> dict[str, set[str]]:
    """``{name: the other stubbed definitions its reference solution names}``: the functions a
    function calls (``dann_step`` calls ``pseudo_label_loss``)."""
    from grading.release import strip_instructor

    found = {}
    for rel in dict.fromkeys(f for f, _ in defs.values()):
        for node in ast.parse(strip_instructor((repo / rel).read_text(), rel)).body:
            if getattr(node, "name", None) in defs:
                found[node.name] = {n.id for n in ast.walk(node) if isinstance(n, ast.Name) and n.id in defs
                                    and n.id != node.name}
    return found


def _names(c) -> list[str]:
    """The student definitions a check tests, in order."""
    return list(dict.fromkeys(t.split(".")[0] for t in c.tests))


def _first_places(practical: str, defs: dict, checks, questions: list[dict], calls: dict) -> dict:
    """Each definition's place: ``name -> (question, whether a command, not a check, put it
    there)``; 0 for before the questions. A function also comes no later than the functions
    whose reference solution calls it."""
    first = {}
    for c in checks:
        for n in _names(c):
            if n not in defs:
                raise ValueError(f"check {c.id} tests {n}, which holds no stub in {practical}'s student files")
            first[n] = min(first.get(n, (c.question, False)), (c.question, False))
    for q in questions:
        for command in q["run"]:
            for n in CALLS[practical].get(subcommand(practical, command), ()):
                if n not in defs:
                    raise ValueError(f"CALLS[{practical!r}] names {n}, which holds no stub in {practical}'s files")
                if q["number"] < first.get(n, (len(questions) + 1, False))[0]:
                    first[n] = (q["number"], True)
    for n in defs:
        first.setdefault(n, (0, False))
    moved = True
    while moved:  # a function called by one written earlier comes with it
        moved = False
        for caller, callees in calls.items():
            for n in callees:
                if first[n][0] > first[caller][0]:
                    first[n], moved = (first[caller][0], True), True
    return first


def plan(out: Path, practical: str, manifest: dict, questions: list[dict],
         repo: Path) -> tuple[list[Step], dict[int, Step]]:
    """The function cells and checks of the functions before the questions (one step per
    group of functions that a check tests) and of each question. A function also comes no
    later than the functions whose reference solution calls it."""
    defs = stubbed_definitions(out, practical, manifest)
    checks = select(practical, include_hidden=False)
    calls = references(repo, defs)
    first = _first_places(practical, defs, checks, questions, calls)

    def where(c):
        moved = any(first[n][1] and first[n][0] < c.question for n in _names(c))
        return max(first[n][0] for n in _names(c)) if moved else c.question

    def cells(chosen):
        by_file = {}
        for n in defs:
            if n in chosen:
                by_file.setdefault(defs[n][0], []).append(n)
        return [Definitions(rel, ns, "\n\n\n".join(defs[n][1] for n in ns)) for rel, ns in by_file.items()]

    practice, done = [], set()
    for c in checks:
        if where(c) != 0:
            continue
        new = [n for n in _names(c) if first[n][0] == 0 and n not in done]
        for n in new:  # and the functions they call, in the same cell
            new += [m for m in sorted(calls.get(n, ())) if first[m][0] == 0 and m not in done and m not in new]
        if new or not practice:
            practice.append(Step(cells(new), [c.id], {}))
            done |= set(new)
        else:
            holder = max(i for i, step in enumerate(practice) for d in step.cells for n in d.names if n in _names(c))
            practice[holder].checks.append(c.id)
    rest = [n for n in defs if first[n][0] == 0 and n not in done]
    if rest:
        practice.append(Step(cells(rest), [], {}))
    steps = {}
    for q in questions:
        number = q["number"]
        earlier = {n: first[n][0] for c in checks if c.question == number for n in _names(c)
                   if first[n][1] and first[n][0] < number}
        steps[number] = Step(cells({n for n in defs if first[n][0] == number}),
                             [c.id for c in checks if where(c) == number and c.question], earlier)
    return practice, steps


def render_command(practical: str, command: str) -> tuple[str, list[str], set[str]]:
    """A question's command as the notebook runs it: ``(!line, comments, parameters used)``,
    its placeholders (``YOUR_IMAGE.jpg``) left out, the notebook's parameters put in, and
    ``{QUICK_FLAG}`` at its end."""
    argv = shlex.split(command)
    comments, used = [], set()
    if any(PLACEHOLDER.match(a) for a in argv):
        comments.append(f"# with files of your own: !{command}")
        kept = []
        for a in argv:
            if PLACEHOLDER.match(a):
                if kept and kept[-1].startswith("--"):
                    kept.pop()
            else:
                kept.append(a)
        argv = kept
    sub = subcommand(practical, command)
    for name, option, default, subcommands, _ in PARAMETERS.get(practical, ()):
        if option in argv:
            i = argv.index(option) + 1
            if i < len(argv) and argv[i] == default:
                argv[i] = "{" + name + "}"
                used.add(name)
        elif subcommands is None or sub in subcommands:
            argv += [option, "{" + name + "}"]
            used.add(name)
    words = [a if re.fullmatch(r"\{[A-Z_]+\}", a) else shlex.quote(a) for a in argv]
    return "!" + " ".join(words + ["{QUICK_FLAG}"]), comments, used


def render_path(practical: str, path: str, used: set[str]) -> str:
    """A file a question looks at, named after the notebook's parameters where its command
    takes them: a Python expression (an f-string when a parameter is in it)."""
    stem = Path(path).name.split("_")[0]
    out = path
    for name, _, default, subcommands, _ in PARAMETERS.get(practical, ()):
        applies = name in used and (subcommands is None or not subcommands or stem in subcommands)
        if applies:
            out = re.sub(rf"(?<=_){re.escape(default)}(?=[_.])", "{" + name + "}", out)
    return ("f" if out != path else "") + json.dumps(out)


def time_note(command: str) -> str:
    cpu, gpu = TIMES[command]
    return f"CPU (two cores): {cpu}; GPU: {gpu or NOT_MEASURED}"


def notebook_cells(out: Path, practical: str, manifest: dict, repo: Path) -> list[tuple[str, str, dict]]:
    """The cells ``(kind, source, metadata)`` of a practical's notebook. The cells of each
    question carry ``{"rdfia": {"question": N, "role": ROLE}}`` (roles: question, definitions,
    check, run, answer); answer cells also ``"answer": "PRACTICAL QN"``, which the hand-in reads."""
    from grading.edition import docstring, first_paragraph, load_questions, question_heading, short_name

    name = short_name(practical, repo)
    purpose = first_paragraph(docstring(out / practical / "main.py")).split(": ", 1)[-1]
    purpose = purpose[:1].upper() + purpose[1:]
    data = load_questions(practical, repo)
    questions = data["question"]
    practice, steps = plan(out, practical, manifest, questions, repo)
    functions = [f for info in manifest["student_files"].values() for f in info["functions"]]
    cells = [("markdown", f"# Practical {name}\n\n{purpose}\n\n{INTRO}", {}), *_setup_cells(practical, questions)]
    cells += _practice_cells(practice, functions)
    ran, section = {}, None
    for q in questions:
        number, step, heading = q["number"], steps[q["number"]], question_heading(q)
        meta = {"question": number}
        if q["section"] != section:
            section = q["section"]
            cells.append(("markdown", f"## {section}", {}))
        cells.append(("markdown", question_markdown(q, step, lambda d: _written(d, functions)),
                      {"rdfia": {**meta, "role": "question"}}))
        cells += _step_cells(step, meta)
        run = run_cell(practical, q, ran)
        if run:
            cells.append(("code", run, {"rdfia": {**meta, "role": "run"}}))
        cells.append(("markdown", f"**Your answer ({heading}):**\n\n{UNANSWERED}",
                      {"rdfia": {**meta, "role": "answer", "answer": f"{practical} {heading}"}}))
    cells += [
        ("markdown", "## Hand in\n\nThis cell zips the files you wrote (at their paths in the release), "
                     "`ANSWERS.md`, and this notebook if it is saved in the release's `notebooks/` folder. "
                     "Save the notebook first. On Colab, download the zip from the Files panel, and this "
                     "notebook too (File, then Download): hand in both.", {}),
        ("code", f"!python -m grading handin {practical}", {}),
    ]
    return cells


def _setup_cells(practical: str, questions: list[dict]) -> list[tuple[str, str, dict]]:
    """The parameters and the setup: unzip and install on Colab, the magic, the quick flag."""
    return [

        ("markdown", parameters_markdown(practical, questions), {}),
        ("code", parameters_code(practical), {"tags": ["parameters"]}),
        ("markdown", "## Setup\n\nOn Colab, choose a GPU runtime first (Runtime, then Change runtime type), and "
                     "upload the release zip your instructor gave you (Files panel, on the left): this cell "
                     "unzips it, moves into it and installs `requirements.txt`, which keeps Colab's own PyTorch "
                     "and adds only what the runtime lacks. On your machine, open this notebook from the "
                     "release's `notebooks/` folder, in the environment made from `requirements.txt` with "
                     "Jupyter added (`pip install jupyterlab`): the cell moves to the release's root folder.", {}),
        ("code", SETUP.rstrip("\n"), {}),
        ("code", '%load_ext grading.notebook\nfrom grading.notebook import check, show\n\n'
                 'QUICK_FLAG = "--quick" if QUICK else ""' + offline_code(practical), {}),
    ]


def _written(d: Definitions, functions: list[str]) -> str:
    """The student functions a definitions cell holds, as Markdown."""
    return ", ".join(f"`{f}`" for n in d.names for f in functions if f == n or f.startswith(n + "."))


def _step_cells(step: Step, meta: dict) -> list:
    found = [("code", d.cell(), {"rdfia": {**meta, "role": "definitions"}}) for d in step.cells]
    if step.checks:
        found.append(("code", "check(" + ", ".join(json.dumps(c) for c in step.checks) + ")",
                      {"rdfia": {**meta, "role": "check"}}))
    return found


def _practice_cells(practice: list[Step], functions: list[str]) -> list:
    """The functions to write before the first question that needs them, with their checks."""
    if not practice:
        return []
    cells = [("markdown", "## Before the questions: the functions they build on\n\nWrite each group "
                          "of functions in its cell and run it (it writes them into their file), then "
                          "run the checks under it.", {})]
    for step in practice:
        if step.cells:
            cells.append(("markdown", "### " + ", ".join(f"`{n}`" for d in step.cells for n in d.names)
                          + "\n\nTo write: " + ", ".join(_written(d, functions) for d in step.cells) + ".", {}))
        cells += _step_cells(step, {"question": 0})
    return cells


INTRO = (
    "Run the cells from the top: the parameters, the setup, then the handout's questions in order. Under a "
    "question that asks for code, a cell holds the functions to write as their file has them, each with "
    "its stub between `YOUR CODE` markers: write them in the cell and run it, which writes them into the "
    "file. The cell under it runs their public checks (the same as `python -m grading check`; grading adds "
    "hidden ones), then come the question's commands, their figures, and the cell for your answer. The "
    "docstrings say what each function takes and returns, with the shapes of the tensors.\n\n"
    "The files stay the one place where your code lives: a cell that starts with `%%writedefs FILE NAMES` "
    "replaces, in FILE, the top-level functions or classes of those names by the cell's, and keeps the rest "
    "of the file as it is. You may work in the files themselves too (in an editor, or from Colab's Files "
    "panel), though not on one function in both places at once: a cell refuses to overwrite a definition "
    "whose version in the file changed since a cell last wrote it, shows both, and says what to do: "
    "`--load` at the end of the cell's first line takes the file's version into the cell, `--force` writes "
    "the cell's version anyway. A cell refuses as well when it does not define exactly the names of its "
    "first line (the checks call them by name), or holds anything else: imports go at the top of the file. "
    "What the cells wrote is remembered in `.notebook_writes.json`, at the release's root.")


def long_commands(questions: list[dict]) -> dict[str, list[int]]:
    """The commands of the questions that take more than a few minutes on a CPU, with the
    questions that run them."""
    found = {}
    for q in questions:
        for c in q["run"]:
            if c in TIMES:
                found.setdefault(c, []).append(q["number"])
    return found


def parameters_markdown(practical: str, questions: list[dict]) -> str:
    lines = ["## Parameters and time", "",
             "With `QUICK = True`, the default without a GPU, every command of this notebook runs with `--quick`: "
             "a tiny budget, so that the whole notebook runs in minutes on a CPU and tries your code end to end "
             "(its figures then show little). With `QUICK = False` the commands run the course's settings, "
             "which your answers need."]
    slow = long_commands(questions)
    if slow:
        lines += ["", "Choose a GPU runtime for these (on Colab: Runtime, then Change runtime type); the time of "
                      "each full run:", "", "| command | questions | full run |", "|---|---|---|"]
        lines += [f"| `{c}` | {', '.join(f'Q{n}' for n in numbers)} | {time_note(c)} |"
                  for c, numbers in slow.items()]
    for name, option, default, _, about in PARAMETERS.get(practical, ()):
        lines += ["", f"`{name}` (`{option}`, the course's `{default}`): {about}."]
    return "\n".join(lines)


def parameters_code(practical: str) -> str:
    lines = ["import torch", "",
             "QUICK = not torch.cuda.is_available()  # True: every command with --quick (minutes in all on a CPU)"]
    lines += [f"{name} = {json.dumps(default)}  # {about.split(':')[0]}"
              for name, _, default, _, about in PARAMETERS.get(practical, ())]
    return "\n".join(lines)


def offline_code(practical: str) -> str:
    """The lines that replace the notebook's networks whose weights cannot be had ("" when
    the practical has none)."""
    if practical not in OFFLINE:
        return ""
    lines = ["", "", "# A network whose weights cannot be had (offline, not in the torch hub cache) gives way to",
             "# EfficientNet-Lite0, which installs with the requirements.",
             "from common.pretrained import OFFLINE_MODEL, unavailable", ""]
    for name, values in OFFLINE[practical].items():
        targets = ", ".join(values)
        replacement = ", ".join("OFFLINE_MODEL" if v == OFFLINE_MODEL else json.dumps(v) for v in values.values())
        lines += [f"if why := unavailable({name}):",
                  f'    print(f"{{{name}}}: {{why}}; this notebook uses {{OFFLINE_MODEL}} instead")',
                  f"    {targets} = {replacement}"]
    return "\n".join(lines)


def question_markdown(q: dict, step: Step, written) -> str:
    """A question's text, what to write for it and where, and the time of its long commands."""
    from grading.edition import question_heading

    lines = [f"### {question_heading(q)}", "", " ".join(q["ask"].split())]
    if q["note"]:
        lines += ["", " ".join(q["note"].split())]
    for d in step.cells:
        what = written(d)
        lines += ["", f"To write, in the cell below: {what}; running the cell saves {'them' if ', ' in what else 'it'} "
                      f"into `{d.path}`."]
    by_question = {}
    for n, where in step.earlier.items():
        by_question.setdefault(where, []).append(f"`{n}`")
    for where, names in sorted(by_question.items()):
        place = f"under Q{where}" if where else "before the questions"
        lines += ["", f"{', '.join(names)}: written and checked above, {place}, where a command or a function "
                      f"needs {'them' if len(names) > 1 else 'it'}."]
    slow = [c for c in q["run"] if c in TIMES]
    if slow:
        lines += ["", "Full run (`QUICK = False`): " + "; ".join(f"`{c}`: {time_note(c)}" for c in slow) + "."]
    return "\n".join(lines)


def run_cell(practical: str, q: dict, ran: dict) -> str:
    """A question's commands (each once in the notebook: those run for an earlier question
    are shown as comments) and what they write, shown; "" when it has neither."""
    lines, used = [], set()
    for command in q["run"]:
        line, comments, params = render_command(practical, command)
        used |= params
        lines += comments
        if line in ran:
            lines.append(f"# already run for Q{ran[line]}: {line}")
        else:
            ran[line] = q["number"]
            lines.append(line)
    if q["look_at"]:
        paths = [render_path(practical, p, used) for p in q["look_at"]]
        lines.append("show(" + ", ".join(paths) + ")" if len(", ".join(paths)) < 80 else
                     "show(\n" + "".join(f"    {p},\n" for p in paths) + ")")
    return "\n".join(lines)


def write_notebooks(out: Path, manifest: dict, repo: Path) -> list[Path]:
    """Write ``OUT/notebooks/<practical>.ipynb`` for each practical, and record their function
    cells as what a notebook last wrote into the student files (they hold the same text);
    return their paths.

    Built with nbformat, not by parsing a percent-format text: jupytext would turn a comment
    such as ``# %d`` of a student file into a magic, and split a cell at a ``# %%`` line,
    whereas each function cell must hold the released stubs exactly. Cell ids are fixed, so
    that two releases of the same sources are identical.
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
        by_file = {}
        for n, (rel, text) in stubbed_definitions(out, practical, manifest).items():
            by_file.setdefault(rel, {})[n] = text
        for rel, texts in by_file.items():
            remember(out / rel, texts, root=out)
    return paths

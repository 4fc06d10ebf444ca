"""The student notebooks: one cell per question's functions, written into the student files by
the ``%%writedefs`` magic (:mod:`grading.notebook`), their checks, the questions' commands and
figures; and the whole notebooks run top to bottom with the reference filled in."""
import json
import re
import shlex
import shutil
import time
import zipfile
from pathlib import Path

import nbformat
import pytest

from grading.edition import load_questions
from grading.edition.notebooks import CALLS, PARAMETERS, TIMES, stubbed_definitions
from grading.notebook import STATE, DefinitionError, blocks, digest, load_definitions, write_definitions
from grading.registry import PRACTICALS, select
from grading.release import strip_instructor
from tests.test_tp3c_domain_adaptation import check_quick_runs

REPO = Path(__file__).resolve().parents[1]


def notebook(root: Path, practical: str):
    return nbformat.read(root / "notebooks" / f"{practical}.ipynb", as_version=4)


def role(cell) -> tuple[int | None, str | None]:
    meta = cell.metadata.get("rdfia", {})
    return meta.get("question"), meta.get("role")


def definitions_cell(source: str) -> tuple[str, list[str], str]:
    """``(file, names, definitions)`` of a ``%%writedefs`` cell."""
    first, _, body = source.partition("\n")
    words = shlex.split(first)
    assert words[0] == "%%writedefs", first
    return words[1], words[2:], body


# ----------------------------------------------------------------------------- the magic

SOURCE = '''"""A student file."""
import math  # é, a form feed below\x0c

CONSTANT = 3


# a comment above, kept with f
@staticmethod
def f(x):
    """f's docstring."""
    # ======== YOUR CODE: f ========
    raise NotImplementedError("f (m.py)")
    # ======== END OF YOUR CODE ========

# between f and G: stays

class G:
    def forward(self):  # a comment
        return 1
    # trailing, indented: part of G


def tail():
    return CONSTANT  # no newline at the end'''


def test_blocks_locate_each_definition_with_its_comments_and_end_marker():
    spans = blocks(SOURCE)
    assert list(spans) == ["f", "G", "tail"]
    f = SOURCE[slice(*spans["f"])]
    assert f.startswith("# a comment above, kept with f\n@staticmethod\ndef f(x):")
    assert f.endswith("    # ======== END OF YOUR CODE ========")
    assert SOURCE[slice(*spans["G"])].endswith("# trailing, indented: part of G")
    assert SOURCE[slice(*spans["tail"])].endswith("# no newline at the end")
    with pytest.raises(DefinitionError, match="not valid Python"):
        blocks("def f(:\n")
    with pytest.raises(DefinitionError, match="defines f twice"):
        blocks("def f(): pass\ndef f(): pass\n")


@pytest.fixture
def in_release(tmp_path, monkeypatch):
    """A folder with a MANIFEST.json (a release's root) holding m.py, as the current folder."""
    (tmp_path / "MANIFEST.json").write_text("{}")
    (tmp_path / "m.py").write_bytes(SOURCE.encode())
    monkeypatch.chdir(tmp_path)
    return tmp_path / "m.py"


def test_writedefs_keeps_the_rest_of_the_file_byte_for_byte(in_release):
    path = in_release
    new_f = 'def f(x):\n    """f written."""\n    return math.sqrt(x)'
    new_g = "class G:\n    def forward(self):\n        return 2"
    # G holds no stub and was never written by a notebook: only --force writes over it.
    assert write_definitions(path, ["G", "f"], f"{new_f}\n\n\n{new_g}\n", force=True) == [
        f"wrote G to {path}", f"wrote f to {path}"]
    after = path.read_bytes().decode()
    spans = blocks(SOURCE)
    expected = (SOURCE[:spans["f"][0]] + new_f + SOURCE[spans["f"][1]:spans["G"][0]] + new_g
                + SOURCE[spans["G"][1]:])
    assert after == expected
    assert "\x0c" in after and "é" in after and after.endswith("# no newline at the end")
    state = json.loads((path.parent / STATE).read_text())  # at the release's root
    assert state == {"m.py": {"f": digest(new_f), "G": digest(new_g)}}
    # Again with the same text: nothing changes; a new name is added before the others.
    assert write_definitions(path, ["f"], new_f) == ["f: unchanged"]
    assert write_definitions(path, ["helper", "f"], f"def helper():\n    return 0\n\n\n{new_f}")[0].startswith("added")
    text = path.read_text()
    assert text.index("def helper") < text.index("def f(x)") and text.count("def f(x)") == 1


def test_writedefs_refuses_other_names_and_other_statements(in_release):
    before = in_release.read_bytes()
    with pytest.raises(DefinitionError, match="defines g but its first line names f"):
        write_definitions(in_release, ["f"], "def g(x):\n    return x\n")
    with pytest.raises(DefinitionError, match="defines f but its first line names f, G"):
        write_definitions(in_release, ["f", "G"], "def f(x):\n    return x\n")
    with pytest.raises(DefinitionError, match="line 2: import os"):
        write_definitions(in_release, ["f"], "import os\ndef f(x):\n    return x\n", first_line=2)
    with pytest.raises(DefinitionError, match="line 3: "):
        write_definitions(in_release, ["f"], "def f(x):\n  return x +\n", first_line=2)
    assert in_release.read_bytes() == before and not (in_release.parent / STATE).exists()


def test_writedefs_refuses_a_definition_edited_in_the_file_since_it_wrote_it(in_release):
    cell = 'def f(x):\n    return 1'
    assert write_definitions(in_release, ["f"], cell) == [f"wrote f to {in_release}"]  # an untouched stub
    edited = in_release.read_text().replace("return 1", "return 2  # in an editor")
    in_release.write_text(edited)
    with pytest.raises(DefinitionError, match="changed outside this notebook") as e:
        write_definitions(in_release, ["f"], 'def f(x):\n    return 3')
    assert "-    return 2  # in an editor" in str(e.value) and "+    return 3" in str(e.value)
    assert in_release.read_text() == edited
    # The file's version into the cell (--load), after which the cell writes again.
    assert load_definitions(in_release, ["f"]) == 'def f(x):\n    return 2  # in an editor'
    assert write_definitions(in_release, ["f"], 'def f(x):\n    return 4') == [f"wrote f to {in_release}"]
    # A stub edited in the file with no record: refused too; --force writes anyway.
    (in_release.parent / STATE).unlink()
    in_release.write_text(SOURCE.replace('raise NotImplementedError("f (m.py)")', "return 5"))
    with pytest.raises(DefinitionError, match="changed outside"):
        write_definitions(in_release, ["f"], 'def f(x):\n    return 6')
    assert write_definitions(in_release, ["f"], 'def f(x):\n    return 6', force=True) == [f"wrote f to {in_release}"]
    assert "return 6" in in_release.read_text() and "return 5" not in in_release.read_text()


def test_the_cell_magic_in_ipython(in_release, capsys):
    from IPython.core.interactiveshell import InteractiveShell

    shell = InteractiveShell.instance()
    try:
        assert shell.run_cell("%load_ext grading.notebook").success
        assert shell.run_cell(f"%%writedefs {in_release.name} f\ndef f(x):\n    return 7\n").success
        assert "return 7" in in_release.read_text() and "wrote f" in capsys.readouterr().out
        before = in_release.read_bytes()
        res = shell.run_cell(f"%%writedefs {in_release.name} g\ndef f(x):\n    return 8\n")
        printed = capsys.readouterr()
        assert not res.success and "first line names g" in printed.out + printed.err
        assert in_release.read_bytes() == before
        assert shell.run_cell(f"%%writedefs {in_release.name} f --load\ndef f(x):\n    return 9\n").success
        assert "now holds" in capsys.readouterr().out and "return 9" not in in_release.read_text()
        assert shell.rl_next_input == f"%%writedefs {in_release.name} f\ndef f(x):\n    return 7\n"
    finally:
        InteractiveShell.clear_instance()


def test_a_function_cell_then_its_check_as_in_a_notebook(student_release, tmp_path, monkeypatch, capsys):
    """The first cell of 3-d, run with the stub and then with the reference's function: the
    check under it says "not implemented yet", then passes; the file keeps everything else."""
    from grading.notebook import check

    root = tmp_path / "student"
    shutil.copytree(student_release, root)
    monkeypatch.chdir(root)
    cell = next(c for c in notebook(root, "tp3d_gan").cells if role(c)[1] == "definitions")
    rel, names, stub = definitions_cell(cell.source)
    assert names == ["discriminator_loss"]
    before = (root / rel).read_text()
    assert write_definitions(Path(rel), names, stub) == ["discriminator_loss: unchanged"]
    check("tp3d.discriminator_loss", root=root)
    assert "[FAIL] 0/1" in capsys.readouterr().out
    reference = reference_definitions(rel, names)
    assert write_definitions(Path(rel), names, reference) == [f"wrote discriminator_loss to {rel}"]
    check("tp3d.discriminator_loss", root=root)
    assert "[PASS] 1/1" in capsys.readouterr().out
    after = (root / rel).read_text()
    spans = blocks(before)["discriminator_loss"]
    assert after == before[:spans[0]] + reference + before[spans[1]:]


# ----------------------------------------------------------------------------- the notebooks' cells

ORDER = ["question", "definitions", "check", "run", "answer"]


@pytest.mark.parametrize("practical", PRACTICALS)
def test_every_question_has_its_cells_in_order(student_release, practical):
    nb = notebook(student_release, practical)
    questions = load_questions(practical, REPO)["question"]
    seen = [(q, r) for q, r in map(role, nb.cells) if r]
    numbers = list(dict.fromkeys(q for q, _ in seen))
    assert numbers == ([0] if numbers[0] == 0 else []) + [q["number"] for q in questions]
    for number in numbers[numbers[0] == 0:]:
        roles = [r for q, r in seen if q == number]
        assert roles[0] == "question" and roles[-1] == "answer" and roles.count("answer") == 1, (number, roles)
        assert roles == sorted(roles, key=ORDER.index), (number, roles)
        indices = [i for i, c in enumerate(nb.cells) if role(c)[0] == number]
        assert indices == list(range(indices[0], indices[-1] + 1)), f"Q{number}'s cells are not together"
    first_code = next(c for c in nb.cells if c.cell_type == "code")
    assert first_code.metadata.get("tags") == ["parameters"] and "QUICK = not torch.cuda.is_available()" \
        in first_code.source
    for cell in nb.cells:
        if role(cell)[1] == "run":
            for line in cell.source.splitlines():
                assert not line.startswith("!") or line.endswith(" {QUICK_FLAG}"), line


@pytest.mark.parametrize("practical", PRACTICALS)
def test_each_function_cell_holds_the_released_stubs_of_its_names(student_release, practical):
    manifest = json.loads((student_release / "MANIFEST.json").read_text())
    nb = notebook(student_release, practical)
    written = []
    for cell in nb.cells:
        if role(cell)[1] != "definitions":
            continue
        rel, names, body = definitions_cell(cell.source)
        text = (student_release / rel).read_text()
        spans = blocks(text)
        assert names == sorted(names, key=lambda n: spans[n][0])
        assert body == "\n\n\n".join(text[slice(*spans[n])] for n in names)
        assert list(blocks(body)) == names
        written += names
    stubs = [n for n in stubbed_definitions(student_release, practical, manifest)]
    assert sorted(written) == sorted(stubs) and len(written) == len(set(written))
    # Every public check runs once, after the cells of the functions it tests.
    checks = [json.loads(f"[{c.source[6:-1]}]") for c in nb.cells if role(c)[1] == "check"]
    ids = [i for group in checks for i in group]
    assert sorted(ids) == sorted(c.id for c in select(practical, include_hidden=False))
    # What the release records as last written: the cells' text.
    state = json.loads((student_release / STATE).read_text())
    for name, (rel, text) in stubbed_definitions(student_release, practical, manifest).items():
        assert state[rel][name] == digest(text)


def test_the_notebooks_time_their_long_commands_and_give_no_gpu_time_not_measured(student_release):
    for practical in PRACTICALS:
        text = "\n".join(c.source for c in notebook(student_release, practical).cells if c.cell_type == "markdown")
        for command, (cpu, gpu) in TIMES.items():
            if command.startswith(f"python {practical}/"):
                assert f"| `{command}` |" in text and cpu in text, command
                assert gpu is not None or "GPU: not measured yet" in text
    assert all(gpu is None for _, gpu in TIMES.values()), "a GPU time: say where it was measured in docs/"


def test_the_tables_name_student_definitions_and_commands_that_exist(student_release):
    manifest = json.loads((student_release / "MANIFEST.json").read_text())
    for practical in PRACTICALS:
        stubs = stubbed_definitions(student_release, practical, manifest)
        for sub, names in CALLS[practical].items():
            assert set(names) <= set(stubs), (practical, sub)
        for name, option, default, subcommands, _ in PARAMETERS.get(practical, ()):
            assert re.fullmatch(r"[A-Z_]+", name) and option.startswith("--")


# ----------------------------------------------------------------------------- top to bottom

def reference_definitions(rel: str, names: list[str]) -> str:
    text = strip_instructor((REPO / rel).read_text(), rel)
    spans = blocks(text)
    return "\n\n\n".join(text[slice(*spans[n])] for n in names)


def fill_with_reference(nb) -> None:
    """Write the reference's functions into the function cells, as a student would, and set
    ``QUICK`` (which a machine with a GPU would otherwise turn off)."""
    for cell in nb.cells:
        if role(cell)[1] == "definitions":
            rel, names, _ = definitions_cell(cell.source)
            cell.source = cell.source.partition("\n")[0] + "\n" + reference_definitions(rel, names)
    at = next(i for i, c in enumerate(nb.cells) if c.metadata.get("tags") == ["parameters"])
    nb.cells.insert(at + 1, nbformat.v4.new_code_cell("QUICK = True", metadata={"tags": ["injected-parameters"]}))


def kernel_or_skip() -> None:
    from jupyter_client.kernelspec import KernelSpecManager, NoSuchKernel

    try:
        KernelSpecManager().get_kernel_spec("python3")
    except NoSuchKernel:
        pytest.skip("no Jupyter python3 kernel installed (pip install ipykernel)")


def test_setup_function_and_hand_in_cells_locally_and_from_an_uploaded_zip(student_release, tmp_path):
    """3-d's parameters, setup, function and hand-in cells, the functions filled with the
    reference, run by a Jupyter kernel: from the release's notebooks/ folder, and from a
    folder holding only the release zip (as on Colab, minus the install)."""
    from nbclient import NotebookClient

    kernel_or_skip()
    manifest = json.loads((student_release / "MANIFEST.json").read_text())
    assert manifest["notebooks"] == [f"notebooks/{p}.ipynb" for p in PRACTICALS]
    nb = notebook(student_release, "tp3d_gan")
    fill_with_reference(nb)
    setup = [c for c in nb.cells if c.cell_type == "code" and not role(c)[1]][:4]
    assert '"google.colab" in sys.modules' in setup[2].source and "%pip install -q -r requirements.txt" \
        in setup[2].source
    handin = nb.cells[-1]
    assert handin.source == "!python -m grading handin tp3d_gan"
    cells = setup + [c for c in nb.cells if role(c)[1] == "definitions"] + [handin]
    student_files = [f for f in manifest["student_files"] if f.startswith("tp3d_gan/")]

    local = tmp_path / "local"
    shutil.copytree(student_release, local)
    colab = tmp_path / "content"
    colab.mkdir()
    with zipfile.ZipFile(colab / "student_version.zip", "w") as z:
        for f in sorted(student_release.rglob("*")):
            if f.is_file():
                z.write(f, f"student_version/{f.relative_to(student_release).as_posix()}")
    for cwd, root in ((local / "notebooks", local), (colab, colab / "student_version")):
        ran = nbformat.v4.new_notebook(cells=[nbformat.from_dict(c) for c in cells], metadata=nb.metadata)
        NotebookClient(ran, timeout=120, kernel_name="python3", resources={"metadata": {"path": str(cwd)}}).execute()
        for rel in student_files:
            assert (root / rel).read_text() == strip_instructor((REPO / rel).read_text(), rel), (root, rel)
        with zipfile.ZipFile(root / "handin_tp3d_gan.zip") as z:
            assert sorted(z.namelist()) == sorted([*student_files, "ANSWERS.md"])


def outputs_text(cell) -> str:
    parts = []
    for out in cell.get("outputs", []):
        if out.output_type == "stream":
            parts.append(out.text)
        elif out.output_type == "error":
            parts.append("\n".join(out.traceback))
        else:
            parts += [str(out.data[k]) for k in ("text/plain", "text/markdown") if k in out.get("data", {})]
    return "".join(parts)


def children_cpu() -> float:
    """CPU seconds (user and system) of this process's finished children and theirs."""
    import resource

    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def random_squeezenet(torch_home: Path) -> None:
    """A SqueezeNet 1.1 weight file with random weights where torchvision looks for the real one."""
    import torch
    import torchvision

    from common.pretrained import weights_info

    path = torch_home / "hub" / "checkpoints" / weights_info("squeezenet1_1").path.name
    path.parent.mkdir(parents=True, exist_ok=True)
    torch.save(torchvision.models.squeezenet1_1(weights=None).state_dict(), path)


@pytest.mark.slow
@pytest.mark.parametrize("practical", PRACTICALS)
def test_the_notebook_runs_top_to_bottom_with_the_reference(student_release, data_mirror, practical, tmp_path,
                                                            monkeypatch):
    """The notebook, its function cells filled with the reference's functions, runs top to
    bottom offline (--quick, datasets from an empty folder that fills itself from a loopback
    mirror of the course's files): every check passes and every question shows its figures."""
    from nbclient import NotebookClient

    root = tmp_path / "student"
    shutil.copytree(student_release, root)
    for name, value in {"RDFIA_DATA_DIR": tmp_path / "data", "RDFIA_DATA_MIRROR": data_mirror,
                        "RDFIA_CACHE_DIR": tmp_path / "cache", "TORCH_HOME": tmp_path / "torch",
                        "MPLBACKEND": "Agg", "TQDM_DISABLE": "1"}.items():
        monkeypatch.setenv(name, str(value))
    (tmp_path / "data").mkdir()
    random_squeezenet(tmp_path / "torch")
    nb = notebook(root, practical)
    fill_with_reference(nb)
    start, cpu = time.perf_counter(), children_cpu()
    NotebookClient(nb, timeout=1800, kernel_name="python3",
                   resources={"metadata": {"path": str(root / "notebooks")}}).execute()
    # CPU seconds of the kernel and the commands it ran besides the wall time: on a machine
    # that others share, the wall time says little.
    print(f"{practical}: {time.perf_counter() - start:.0f} s, {children_cpu() - cpu:.0f} CPU seconds")
    nbformat.write(nb, str(tmp_path / f"{practical}.ran.ipynb"))
    questions = {q["number"]: q for q in load_questions(practical, REPO)["question"]}
    if practical in ("tp3a_transfer", "tp3b_visualization"):  # vgg16's weights cannot be had here
        assert "vgg16: weights not in" in "".join(map(outputs_text, nb.cells[:8]))
    problems = []
    for cell in nb.cells:
        number, kind = role(cell)
        text = outputs_text(cell)
        for bad in ("not implemented yet", "Traceback", "\nerror: ", "not written") if kind else ():
            if bad in "\n" + text:
                problems.append(f"Q{number} {kind}: {bad!r} in\n{text[-1500:]}")
        if kind == "check":
            ids = json.loads(f"[{cell.source[6:-1]}]")
            results = [line for line in text.splitlines() if re.match(r"\[(PASS|FAIL|TIME|CRSH|ERR )\]", line)]
            if len(results) != len(ids) or not all(line.startswith("[PASS]") for line in results):
                problems.append(f"Q{number}: checks did not all pass:\n{text}")
        if kind == "run":
            pngs = [p for p in questions[number]["look_at"] if p.endswith(".png")]
            shown = sum("image/png" in out.get("data", {}) for out in cell.outputs)
            if shown != len(pngs):
                problems.append(f"Q{number}: {shown} figures shown, {len(pngs)} expected")
    assert len([c for c in nb.cells if role(c)[1] == "answer"]) == len(questions)
    assert not problems, "\n\n".join(problems)
    if practical == "tp3c_domain_adaptation":  # its questions run every training of the practical
        check_quick_runs(root / "results" / practical)

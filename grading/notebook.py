"""The notebooks' helpers: write a cell's functions into a student file, run checks, show figures.

Load it in a notebook with ``%load_ext grading.notebook``. A cell that starts with
``%%writedefs tp3d_gan/dcgan.py Generator Discriminator`` writes its definitions of
``Generator`` and ``Discriminator`` into that file: each replaces the file's top-level
function or class of the same name (located with :mod:`ast`, from its decorators and the
comment lines just above it to its last line and the indented comments after it), and every
other byte of the file stays as it was, so the file remains the one source of truth and the
cell a window onto part of it. The cell is refused, with nothing written, when it is not
valid Python, when it holds anything but those definitions, or when the file's version of a
definition was changed since a notebook last wrote it (in an editor, say): neither side's
edits are silently lost. ``--load`` then puts the file's version into the cell, ``--force``
writes the cell's version anyway.

What a notebook last wrote is remembered in ``.notebook_writes.json`` at the release's root
(the folder holding ``MANIFEST.json``): a SHA-256 of each definition's text. A definition
without a record there may be replaced while it still holds its stubs untouched.

:func:`check` runs public checks by id, in the same sandbox as ``python -m grading check``;
:func:`show` displays the figures, tables and numbers that a command wrote.
"""
import ast
import difflib
import hashlib
import json
import os
import re
import shlex
import tempfile
from pathlib import Path

STATE = ".notebook_writes.json"
MAGIC = "writedefs"
# A stub as the release writes it: its markers around the raise, nothing else.
STUB_REGION = re.compile(r"^(\s*)# ======== YOUR CODE: (\S+) ========\n\1raise NotImplementedError\(.*\)\n"
                         r"\1# ======== END OF YOUR CODE ========$", re.M)
START_MARKER = re.compile(r"# ======== YOUR CODE: ")


class DefinitionError(ValueError):
    """A cell or a file whose definitions cannot be written or located; nothing was written."""


# ----------------------------------------------------------------------------- definitions in a text

def _comment(line: str) -> bool:
    return line.lstrip().startswith("#")


def _lines(text: str) -> list[str]:
    """The lines of ``text`` with their ends, split where Python's parser splits them (not at
    the form feeds and Unicode separators that ``str.splitlines`` also splits at)."""
    return re.findall(r".*?(?:\r\n|\r|\n)|.+\Z", text, flags=re.S)


def blocks(text: str, where: str = "this cell", first_line: int = 1) -> dict[str, tuple[int, int]]:
    """``{name: (start, end)}``, character offsets of each top-level function or class of
    ``text``: from the comment lines right above it (no blank line between) and its
    decorators to its last line, followed by the indented comment lines after it (a stub's
    end marker), without the final newline.

    Raises :class:`DefinitionError` when ``text`` is not valid Python or defines a name twice
    (``first_line``: the number its first line has in the messages).
    """
    try:
        tree = ast.parse(text)
    except SyntaxError as e:
        raise DefinitionError(f"{where} is not valid Python (line {(e.lineno or 1) + first_line - 1}: "
                              f"{e.msg})") from None
    lines = _lines(text)
    offsets = [0]
    for line in lines:
        offsets.append(offsets[-1] + len(line))
    found = {}
    for node in tree.body:
        if not isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            continue
        if node.name in found:
            raise DefinitionError(f"{where} defines {node.name} twice at its top level: keep one")
        first = min([node.lineno] + [d.lineno for d in node.decorator_list])  # 1-based
        while first > 1 and lines[first - 2].startswith("#"):
            first -= 1
        last = node.end_lineno
        for number in range(last + 1, len(lines) + 1):  # blank lines, then indented comments
            line = lines[number - 1]
            if _comment(line) and line[0] in " \t":
                last = number
            elif line.strip():
                break
        found[node.name] = (offsets[first - 1], offsets[last - 1] + len(lines[last - 1].rstrip("\r\n")))
    return found


def _statements_outside(text: str, first_line: int = 1) -> list[str]:
    """What the cell holds besides function and class definitions: its statements."""
    tree = ast.parse(text)
    return [f"line {n.lineno + first_line - 1}: {ast.get_source_segment(text, n).splitlines()[0][:60]}"
            for n in tree.body if not isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef))]


def _comments_outside(text: str, spans, first_line: int = 1) -> list[int]:
    """The numbers of the comment lines of ``text`` outside every span."""
    out, offset = [], 0
    for number, line in enumerate(_lines(text), start=first_line):
        if line.strip() and _comment(line) and not any(s <= offset < e for s, e in spans):
            out.append(number)
        offset += len(line)
    return out


def untouched_stub(block: str) -> bool:
    """Does a definition still hold only its stubs where a student writes (every ``YOUR CODE``
    region holds its ``raise NotImplementedError`` line alone)?"""
    return bool(START_MARKER.search(block)) and \
        len(START_MARKER.findall(block)) == len(STUB_REGION.findall(block))


def digest(block: str) -> str:
    return hashlib.sha256(block.encode()).hexdigest()


# ----------------------------------------------------------------------------- what the notebooks wrote

def release_root(path: Path) -> Path:
    """The release's root above ``path`` (the folder holding ``MANIFEST.json``), else the
    current folder."""
    for folder in Path(path).resolve().parents:
        if (folder / "MANIFEST.json").is_file():
            return folder
    return Path.cwd().resolve()


def _key(path: Path, root: Path) -> str:
    path = Path(path).resolve()
    return path.relative_to(root).as_posix() if path.is_relative_to(root) else str(path)


def load_state(root: Path) -> dict:
    try:
        return json.loads((root / STATE).read_text())
    except (OSError, ValueError):
        return {}


def remember(path: Path, texts: dict[str, str], root: Path | None = None) -> None:
    """Record ``{name: definition text}`` as what a notebook last wrote into ``path``."""
    root = root or release_root(path)
    state = load_state(root)
    state.setdefault(_key(path, root), {}).update({name: digest(t) for name, t in texts.items()})
    _write_atomically(root / STATE, json.dumps(state, indent=1, sort_keys=True) + "\n")


def _write_atomically(path: Path, text: str) -> None:
    """Write ``text`` to a temporary file beside ``path``, then rename it over ``path``: an
    interrupted write leaves the old file whole."""
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w", newline="") as f:
            f.write(text)
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp, path.stat().st_mode & 0o777 if path.exists() else 0o666 & ~umask)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


# ----------------------------------------------------------------------------- writing a cell

def _diff(old: str, new: str, name: str) -> str:
    lines = list(difflib.unified_diff(old.splitlines(), new.splitlines(), f"{name} in the file",
                                      f"{name} in this cell", lineterm="", n=1))
    return "\n".join(lines[:30] + (["..."] if len(lines) > 30 else []))


def _cell_definitions(path: Path, names: list[str], source: str, first_line: int) -> dict:
    """The spans of the definitions in the cell's ``source``, once it is known to hold exactly
    the definitions of ``names`` and nothing else, for a file that exists."""
    if not names:
        raise DefinitionError(f"name the definitions this cell writes: %%{MAGIC} {path} NAME [NAME ...]")
    if not path.is_file():
        raise DefinitionError(f"{path} does not exist here ({Path.cwd()}): run the notebook's setup cell first, "
                              "which moves to the release's folder")
    cell = blocks(source, first_line=first_line)
    if sorted(cell) != sorted(set(names)) or len(names) != len(set(names)):
        raise DefinitionError(f"this cell defines {', '.join(cell) or 'nothing'} but its first line names "
                              f"{', '.join(names)}: each cell writes exactly the definitions its first line names. "
                              "Give them their names back (the checks call them by name), or name in the first "
                              "line what the cell defines")
    others = _statements_outside(source, first_line)
    if others:
        raise DefinitionError("this cell may hold only the definitions it writes, but it also has "
                              + "; ".join(others) + f". Put imports and other code at the top of {path} itself")
    return cell


def _edited(text: str, where: dict, new: dict, names: list[str], changed: list[str]) -> str:
    """``text`` with the ``changed`` definitions replaced by their ``new`` version, and those
    of ``names`` it lacks added before the first of the others (or at its end)."""
    missing = [n for n in names if n not in where]
    edits = [(where[n], new[n]) for n in changed]
    if missing:
        present = [where[n][0] for n in names if n in where]
        block = "\n\n\n".join(new[n] for n in missing)
        if present:
            edits.append(((min(present), min(present)), block + "\n\n\n"))
        else:
            edits.append(((len(text), len(text)), ("" if text.endswith("\n") or not text else "\n")
                          + ("\n\n" if text.strip() else "") + block + "\n"))
    for (start, end), replacement in sorted(edits, key=lambda e: e[0], reverse=True):
        text = text[:start] + replacement + text[end:]
    return text


def write_definitions(path: Path, names: list[str], source: str, force: bool = False,
                      first_line: int = 1) -> list[str]:
    """Write the definitions of ``names`` that ``source`` holds into the file ``path``, each
    in place of the file's top-level definition of that name (a name the file lacks is added
    before the first of the others, or at its end); every other byte of the file is kept.

    Returns one line per name saying what was done. Raises :class:`DefinitionError`, having
    written nothing, when ``source`` is not valid Python, defines other names than ``names``
    or anything besides definitions, or when the file's version of a name was changed since
    a notebook last wrote it (unless ``force``). ``first_line``: the number of the first line
    of ``source`` in the messages (2 in a cell, under its magic line).
    """
    path = Path(path)
    cell = _cell_definitions(path, names, source, first_line)
    text = path.read_text()
    where = blocks(text, str(path))
    root = release_root(path)
    known = load_state(root).get(_key(path, root), {})
    new = {n: source[slice(*cell[n])] for n in names}
    changed, conflicts, report = [], [], []
    for name in names:
        if name not in where:
            report.append(f"added {name} to {path}")
            continue
        old = text[slice(*where[name])]
        if old == new[name]:
            report.append(f"{name}: unchanged")
        elif force or known.get(name) == digest(old) or (name not in known and untouched_stub(old)):
            changed.append(name)
            report.append(f"wrote {name} to {path}")
        else:
            conflicts.append(_diff(old, new[name], name))
    if conflicts:
        raise DefinitionError(
            f"{path} was changed outside this notebook since a notebook last wrote it (in an editor?), so "
            "nothing was written and neither version is lost:\n\n" + "\n\n".join(conflicts) + "\n\n"
            "To keep the file's version, add --load to the cell's first line and run it: the cell then holds "
            "the file's version. To keep this cell's version, add --force to the first line, run it, then "
            "take --force out again.")
    edited = _edited(text, where, new, names, changed)
    if edited != text:
        _write_atomically(path, edited)
    remember(path, new, root)
    lost = _comments_outside(source, cell.values(), first_line)
    if lost:
        report.append(f"note: the comment lines {', '.join(map(str, lost))} of the cell "
                      "are outside the definitions: they were not written")
    return report


def load_definitions(path: Path, names: list[str]) -> str:
    """The file's current definitions of ``names``, and record them as known to the notebook."""
    path = Path(path)
    text = path.read_text()
    where = blocks(text, str(path))
    absent = [n for n in names if n not in where]
    if absent:
        raise DefinitionError(f"{path} has no top-level definition of {', '.join(absent)}")
    found = {n: text[slice(*where[n])] for n in names}
    remember(path, found)
    return "\n\n\n".join(found.values())


def writedefs(line: str, cell: str) -> None:
    """``%%writedefs FILE NAME [NAME ...] [--force | --load]``: write this cell's definitions of
    the NAMEs into FILE, each in place of the file's definition of that name, the rest of the
    file kept byte for byte. --load: replace the cell by the file's version instead;
    --force: write even over a version changed outside the notebook."""
    from IPython import get_ipython
    from IPython.core.error import UsageError

    words = shlex.split(line)
    flags = {w for w in words if w.startswith("--")}
    unknown = flags - {"--force", "--load"}
    words = [w for w in words if not w.startswith("--")]
    try:
        if unknown or not words:
            raise DefinitionError(f"usage: %%{MAGIC} FILE NAME [NAME ...] [--force | --load]")
        path, names = Path(words[0]), words[1:]
        if "--load" in flags:
            found = load_definitions(path, names)
            first = f"%%{MAGIC} {shlex.join([str(path), *names])}"
            get_ipython().set_next_input(first + "\n" + found + "\n", replace=True)
            print(f"this cell now holds {path}'s version of {', '.join(names)} (if it does not, your notebook "
                  "does not let a cell replace itself: copy them from the file); edit it and run it again")
            return
        for message in write_definitions(path, names, cell, force="--force" in flags, first_line=2):
            print(message)
    except DefinitionError as e:
        raise UsageError(str(e)) from None


def load_ipython_extension(ipython) -> None:
    """``%load_ext grading.notebook``: register the ``%%writedefs`` cell magic."""
    ipython.register_magic_function(writedefs, magic_kind="cell", magic_name=MAGIC)


# ----------------------------------------------------------------------------- checks and figures

def check(*ids: str, root: Path | None = None) -> None:
    """Run the public checks ``ids`` on the release's student files, in the sandbox that
    ``python -m grading check`` uses, and print one line per check (what failed under it)."""
    from grading.check import ROOT, format_results
    from grading.registry import load_checks
    from grading.runner import run_checks

    registry = load_checks()
    unknown = [i for i in ids if i not in registry or registry[i].hidden]
    if unknown:
        raise ValueError(f"no public check {', '.join(unknown)}: python -m grading check lists them")
    chosen = [registry[i] for i in ids]
    root = Path(root or ROOT)
    results = []
    for practical in dict.fromkeys(c.practical for c in chosen):
        results += run_checks([c for c in chosen if c.practical == practical], root, root, threads=2)
    print(format_results(results))


def show(*paths: str, lines: int = 40) -> None:
    """Display what a command wrote: images inline, Markdown tables rendered, JSON one line
    per key and other text printed (their first ``lines`` lines); say which files are missing."""
    from IPython.display import Image, Markdown, display

    for name in paths:
        path = Path(name)
        if not path.is_file():
            print(f"{name}: not written (its command has not run, or did not finish)")
            continue
        print(name)
        if path.suffix.lower() in (".png", ".jpg", ".jpeg"):
            display(Image(filename=str(path)))
        elif path.suffix == ".md":
            display(Markdown(path.read_text()))
        else:
            text = path.read_text(errors="replace")
            try:
                data = json.loads(text) if path.suffix == ".json" else None
            except ValueError:
                data = None
            if isinstance(data, dict):  # one line per key, long values cut
                text = "\n".join(f"{k}: {_cut(json.dumps(v), 160)}" for k, v in data.items())
            rows = text.splitlines()
            print("\n".join(rows[:lines] + ([f"... ({len(rows) - lines} more lines in {name})"]
                                            if len(rows) > lines else [])))


def _cut(text: str, width: int) -> str:
    return text if len(text) <= width else text[:width - 4] + " ..."

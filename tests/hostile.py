"""A corpus of broken and hostile submissions of practical 3-c (``dann.py``), built from the
reference file by small edits, with what the grader must say about each (CORPUS); and hand-ins
that attack collection, the grader's environment and the reports (HANDED_IN, below).

Expected words are matched case-insensitively; "a|b" accepts either.

Each entry: kind -> (edit, expected words in every lost check's reason). ``edit`` takes the
reference source and a dict of paths (``reference``: the instructor's ``dann.py``,
``classmate``: another student's submitted file, ``batches``: the folder where the grader
makes its batch folders, ``backward``: a line only a correct answer has, ``probe``: the name
of a file to try to create in torch's folder, ``classmate_dir``: the submissions folder,
``hidden``: the instructor's hidden checks of 3-c) and returns the files to hand in, as
{relative path: text}; an empty dict hands in nothing.
"""
import os
from collections.abc import Callable
from pathlib import Path

FILE = "tp3c_domain_adaptation/dann.py"
GRL_BACKWARD = "return -ctx.lambd * grad_output, None"
GRL_FORWARD = "return x.view_as(x)"
SCHEDULE = "return 2.0 / (1.0 + math.exp(-gamma * p)) - 1.0"
DOMAIN_LABELS = "return torch.cat([torch.zeros(n_source, device=device), torch.ones(n_target, device=device)])"
DOMAIN_OUT = "return self.net(features).view(-1)  # (N,)"
PROBE = "rdfia_hostile_probe.txt"


def _edit(old: str, new: str) -> Callable:
    def edit(src: str, paths: dict) -> dict:
        assert src.count(old) == 1, old
        return {FILE: src.replace(old, new)}
    return edit


def _prepend(code: str) -> Callable:
    def edit(src: str, paths: dict) -> dict:
        return {FILE: code.format(**paths) + "\n" + src}
    return edit


def _stub_then(code: str) -> Callable:
    """The released stub (nothing written), then ``code`` at the end of the module."""
    def edit(src: str, paths: dict) -> dict:
        from grading.release import strip_solutions
        return {FILE: strip_solutions(src) + "\n" + code.format(**paths) + "\n"}
    return edit


CORPUS: dict[str, tuple[Callable, tuple[str, ...]]] = {
    "syntax_error": (_edit("def grl_lambda(", "def grl_lambda(:"), ("SyntaxError", "dann.py")),
    "exception_at_import": (_prepend("raise RuntimeError('broken at import')"), ("RuntimeError", "broken at import")),
    "endless_loop_at_import": (_prepend("while True:\n    pass"), ("did not finish",)),
    "sleep_at_import": (_prepend("import time\ntime.sleep(3600)"), ("did not finish",)),
    "sys_exit_at_import": (_prepend("import sys\nsys.exit(3)"), ("sys.exit(3)",)),
    "endless_loop_in_function": (_edit(SCHEDULE, "while True:\n        pass"), ("time limit",)),
    "os_exit_in_function": (_edit(GRL_FORWARD, "import os\n        os._exit(3)"), ("exit code 3",)),
    "hard_crash": (_edit(GRL_BACKWARD, "import ctypes\n        ctypes.string_at(0)"), ("SIGSEGV",)),
    "memory_exhaustion": (_edit(DOMAIN_LABELS, "hog = [bytearray(10**8) for _ in range(10**4)]"), ("memory",)),
    "gigabytes_of_output": (_prepend("while True:\n    print('x' * 10**6)"), ("wrote more than",)),
    "nan_outputs": (_edit(GRL_BACKWARD, "return -ctx.lambd * grad_output * float('nan'), None"), ("nan",)),
    "wrong_shape": (_edit(DOMAIN_OUT, "return self.net(features)"), ("shape|size",)),
    "wrong_dtype": (_edit(DOMAIN_LABELS, DOMAIN_LABELS.replace("return ", "return (") + ").long()"), ("",)),
    "monkeypatches_torch": (
        _prepend("import torch\ntorch.allclose = lambda *a, **k: True\ntorch.Tensor.__eq__ = lambda *a: True"),
        ("monkeypatching",)),
    "monkeypatches_grader": (  # the stub, then no-op checks: the copy it patches is not the one that judges
        _stub_then("import grading.registry as _r\n"
                   "_r.expect = _r.expect_close = _r.expect_shape = lambda *a, **k: None"),
        ("not implemented",)),
    "reads_outside_its_copy": (  # hands in the stub, then tries to run the answers of others
        _stub_then("for _p in ({reference!r}, {classmate!r}):\n    try:\n        exec(open(_p).read())\n"
                   "    except OSError:\n        pass"), ("",)),
    "writes_outside_its_copy": (
        _prepend("try:\n    open({classmate!r}, 'w').write('# overwritten by a classmate')\nexcept OSError:\n    pass"),
        ()),
    "reads_classmates_working_copies": (  # the stub, then any correct dann.py in the batch's folders
        _stub_then("import glob as _g\nfor _p in _g.glob({batches!r} + '/rdfia-batch-*/**/dann.py', recursive=True):\n"
                   "    try:\n        _src = open(_p).read()\n    except OSError:\n        continue\n"
                   "    if {backward!r} in _src and 'while True' not in _src:\n        exec(_src)\n        break"),
        ("",)),
    "tampers_with_the_grader": (  # the stub, then a no-op expect in the grader's copy and a file in torch's folder
        _stub_then("import os as _os, torch as _t\n"
                   "_targets = [(_os.path.join(_os.path.dirname(_t.__file__), {probe!r}), 'x')]\n"
                   "try:\n    import grading.registry as _r\n"
                   "    _targets.append((_r.__file__, '\\ndef expect(*a, **k):\\n    pass\\n'))\n"
                   "except ImportError:\n    pass\n"
                   "for _p, _text in _targets:\n"
                   "    try:\n        open(_p, 'a').write(_text)\n    except OSError:\n        pass"),
        ("",)),
    "reads_the_hidden_checks": (  # the stub, then stops at import if any hidden check's source is readable
        _stub_then("import glob as _g\n"
                   "_found = [{hidden!r}] + _g.glob({batches!r} + '/rdfia-batch-*/**/hidden/tp3c_domain_adaptation.py',"
                   " recursive=True)\n"
                   "try:\n    import grading.hidden.tp3c_domain_adaptation as _h\n    _found.append(_h.__file__)\n"
                   "except ImportError:\n    pass\n"
                   "for _p in _found:\n    try:\n        open(_p).read()\n    except OSError:\n        continue\n"
                   "    raise SystemExit('read the hidden checks at ' + _p)"),
        ("not implemented",)),
    "forges_its_result": (  # the stub; grl_lambda writes a passing result wherever the grader's could be, then exits
        _stub_then("import glob as _g, json as _j, os as _os, sys as _s\n"
                   "def grl_lambda(p, gamma=10.0):\n"
                   "    _dirs = ['.', '..'] + _g.glob({batches!r} + '/rdfia-*/**/', recursive=True)\n"
                   "    for _d in _dirs + [_os.path.dirname(_a) for _a in _s.argv if _a.endswith('.json')]:\n"
                   "        try:\n"
                   "            _j.dump({{'status': 'passed', 'message': ''}}, "
                   "open(_os.path.join(_d, 'result.json'), 'w'))\n"
                   "        except OSError:\n            pass\n"
                   "    _os._exit(0)"),
        ("",)),
    "escapes_the_sandbox": (  # the stub, then unmount what hides the others and remount / writable
        _stub_then("import os as _os\n"
                   "_os.system('umount {classmate_dir} {batches}/rdfia-batch-*/work; mount -o remount,bind,rw /; "
                   "touch {batches}/{probe}')\n"
                   "try:\n    exec(open({classmate!r}).read())\nexcept OSError:\n    pass"),
        ("",)),
    "kills_every_process": (  # kill(-1): everything this user may signal, the batch included (sandbox only)
        _edit(GRL_FORWARD, "import os, signal\n        os.kill(-1, signal.SIGKILL)\n        " + GRL_FORWARD),
        ("ProcessLookupError|killed|exit code",)),
    "tries_the_network": (_prepend("import socket\nsocket.create_connection(('1.1.1.1', 443), timeout=5)"),
                          ("OSError",)),
    "missing_files": (lambda src, paths: {"notes.txt": "I did not finish"}, ("file not submitted",)),
    "empty": (lambda src, paths: {}, ("file not submitted",)),
}


# ------------------------------------------------------------------- how a submission is handed in
#
# HANDED_IN: kind -> (build, score, expected words). ``build(subs, kind, good, paths)`` makes
# the kind's entries in the submissions folder ``subs`` (folders, zips, links, FIFOs, several
# entries for one student) from the reference source ``good`` and returns the names of the
# students whose rows the gradebook must hold for them (one each). ``score`` is "full" or
# "zero" for each of those students; the words are looked for in every lost check's reason
# with the row's notes (what collection refused). ``paths``: ``reference``, the instructor's
# ``dann.py``; ``outside``, a folder outside the batch where nothing may be written; ``mark``,
# the start of a secret set in the grader's environment, which no report may hold.

def _folder_with(build_file: Callable) -> Callable:
    """A folder hand-in whose student file ``build_file(path, good, paths)`` makes."""
    def build(subs, kind, good, paths):
        path = subs / kind / FILE
        path.parent.mkdir(parents=True)
        build_file(path, good, paths)
        return [kind]
    return build


def write_zip(path: Path, entries) -> Path:
    """A zip of ``entries``: (name, bytes, Unix mode), names kept as given, twice if given twice."""
    import warnings
    import zipfile

    with warnings.catch_warnings(), zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as z:
        warnings.simplefilter("ignore")  # a name twice is the point of some hand-ins
        for name, data, mode in entries:
            info = zipfile.ZipInfo(name)
            info.external_attr, info.compress_type = mode << 16, zipfile.ZIP_DEFLATED
            z.writestr(info, data)
    return path


def _zip_with(entries: Callable) -> Callable:
    """A zip hand-in of the entries that ``entries(good, paths)`` gives (see :func:`write_zip`)."""
    def build(subs, kind, good, paths):
        write_zip(subs / f"{kind}.zip", entries(good, paths))
        return [kind]
    return build


def _socket(path, good, paths):
    import socket

    here = os.getcwd()
    os.chdir(path.parent)  # a relative name: socket paths are short
    try:
        socket.socket(socket.AF_UNIX).bind(path.name)
    finally:
        os.chdir(here)


def _twice(second: Callable) -> Callable:
    """The reference in a folder, and the stub under a second name ``second(kind)`` for the
    same student (a zip, or another folder)."""
    def build(subs, kind, good, paths):
        from grading.release import strip_solutions
        (subs / kind / FILE).parent.mkdir(parents=True)
        (subs / kind / FILE).write_text(good)
        other = subs / second(kind)
        if other.suffix.lower() == ".zip":
            write_zip(other, [(FILE, strip_solutions(good).encode(), REGULAR)])
        else:
            (other / FILE).parent.mkdir(parents=True)
            (other / FILE).write_text(strip_solutions(good))
        return [min(kind, second(kind)).removesuffix(".zip")]  # the row takes the first name
    return build


def _link_folder(subs, kind, good, paths):
    """The practical's folder of the hand-in is a link to the reference's."""
    (subs / kind).mkdir()
    (subs / kind / FILE.split("/")[0]).symlink_to(Path(paths["reference"]).parent)
    return [kind]


def _link_handin(subs, kind, good, paths):
    """The hand-in itself is a link to the reference repository."""
    (subs / kind).symlink_to(Path(paths["reference"]).parents[1])
    return [kind]


def _sparse(path, good, paths):
    with open(path, "wb") as f:
        f.truncate(3 << 30)


def _named(*names: str) -> Callable:
    """Correct hand-ins under names that a spreadsheet or a terminal would act on."""
    def build(subs, kind, good, paths):
        for name in names:
            (subs / name).mkdir()
            (subs / name / "dann.py").write_text(good)
        return list(names)
    return build


READS_THE_ENVIRONMENT = '''
import glob as _glob, os as _os
_seen = {"os.environ": repr(dict(_os.environ))}
for _p in ["/proc/self/environ", "/proc/%d/environ" % _os.getppid()] + _glob.glob("/proc/[0-9]*/environ"):
    try:
        _seen[_p] = open(_p, "rb").read().decode("latin-1")
    except OSError:
        pass
print(_seen)
_found = [_k for _k, _v in _seen.items() if MARK in _v]
if _found:
    raise RuntimeError("LEAKED from " + ", ".join(_found) + ": " + " ".join(_seen[_k] for _k in _found))
raise RuntimeError("read %d places, no secret found: %r" % (len(_seen), _seen))
'''
INJECTS = r'''
_evil = ("\x1b[2J\x1b]0;owned\x07\r=HYPERLINK(\"http://evil.example\",\"click\")\n<script>alert(1)</script>"
         "<img src=x onerror=alert(1)>\n```\n# a heading\n[click](javascript:alert(1)) \u202eevil\x00\x7f\x9b"
         + "A" * 100000)
def _raise():
    raise RuntimeError(_evil)
_raise.__code__ = _raise.__code__.replace(co_qualname="<b>\x1b[31mq</b>")
_raise()
'''
PRINTS = r'''
import os as _os, sys as _sys
_sys.stdout.write("\x1b[2J\x1b]8;;http://evil.example\x07click\x1b]8;;\x07 <script>alert(2)</script>\n=1+1\n" * 50)
_sys.stdout.flush()
_os._exit(3)
'''
LINK, DEVICE = 0o120777, 0o020644  # Unix modes of a symbolic link and of a character device
REGULAR = 0o100644
FORMULA_NAMES = ('=HYPERLINK("evil.example","click")', "+SUM(1,2)", "@SUM(A1:A2)", "-2+3")

HANDED_IN: dict[str, tuple[Callable, str, tuple[str, ...]]] = {
    "links_to_the_reference": (
        _folder_with(lambda p, good, paths: p.symlink_to(paths["reference"])), "zero", ("symbolic link",)),
    "links_to_a_system_file": (_folder_with(lambda p, good, paths: p.symlink_to("/etc/passwd")), "zero",
                               ("symbolic link",)),
    "links_its_folder": (_link_folder, "zero", ("symbolic link",)),
    "links_the_whole_handin": (_link_handin, "zero", ("symbolic link",)),
    "fifo_as_its_file": (_folder_with(lambda p, good, paths: os.mkfifo(p)), "zero", ("FIFO",)),
    "socket_as_its_file": (_folder_with(_socket), "zero", ("socket",)),
    "device_in_its_zip": (_zip_with(lambda good, paths: [(FILE, b"", DEVICE)]), "zero", ("device",)),
    "link_in_its_zip": (_zip_with(lambda good, paths: [(FILE, paths["reference"].encode(), LINK)]), "zero",
                        ("symbolic link",)),
    "huge_sparse_file": (_folder_with(_sparse), "zero", ("larger than",)),
    "zip_bomb_beside_its_file": (  # an entry the release does not list: never inflated
        _zip_with(lambda good, paths: [(FILE, good.encode(), REGULAR), ("data/filler.bin", bytes(256 << 20), REGULAR)]),
        "full", ()),
    "zip_bomb_as_its_file": (
        _zip_with(lambda good, paths: [(FILE, good.encode() + b"\n" * (64 << 20), REGULAR)]), "zero", ("MB allowed",)),
    "zip_with_too_many_entries": (
        _zip_with(lambda good, paths: [(FILE, good.encode(), REGULAR)]
                  + [(f"junk/{i}.txt", b"", REGULAR) for i in range(10_001)]), "zero", ("entries",)),
    "zip_path_traversal": (  # entries that would land outside the extraction folder, beside the right one
        _zip_with(lambda good, paths: [(FILE, good.encode(), REGULAR),
                                       ("../" * 40 + paths["outside"].lstrip("/") + "/dann.py", b"x", REGULAR),
                                       (paths["outside"] + "/absolute.py", b"x", REGULAR),
                                       ("..\\..\\..\\dann.py", b"x", REGULAR)]), "full", ()),
    "zip_entry_twice": (
        _zip_with(lambda good, paths: [(FILE, good.encode(), REGULAR), (FILE, b"# the other one", REGULAR)]),
        "zero", ("2 times",)),
    "handed_in_twice": (_twice(lambda kind: kind + ".zip"), "zero", ("2 hand-ins",)),
    "names_differing_by_case": (_twice(str.upper), "zero", ("2 hand-ins",)),
    "accents_written_two_ways": (  # é composed in one name, decomposed in the other
        lambda subs, kind, good, paths: _twice(lambda k: "zo\u0065\u0301.zip")(subs, "zo\u00e9", good, paths),
        "zero", ("2 hand-ins",)),
    "reads_the_graders_environment": (
        _folder_with(lambda p, good, paths: p.write_text(f"MARK = {paths['mark']!r}\n" + READS_THE_ENVIRONMENT
                                                         + good)), "zero", ("no secret found",)),
    "formulas_as_names": (_named(*FORMULA_NAMES), "full", ()),
    "injects_into_reports": (_folder_with(lambda p, good, paths: p.write_text(INJECTS + good)), "zero",
                             ("RuntimeError",)),
    "injects_through_printed_output": (_folder_with(lambda p, good, paths: p.write_text(PRINTS + good)), "zero",
                                       ("exit code 3",)),
    "injects_through_file_names": (  # a refused entry whose name holds escape codes and HTML
        _zip_with(lambda good, paths: [("\x1b]0;owned\x07<img src=x onerror=alert(1)>/dann.py", b"x", LINK)]),
        "zero", ("symbolic link",)),
}


def batch_checks() -> list[str]:
    """The checks of 3-c that the batch tests grade: all but the short training, which takes
    about 50 s a student (dozens of students, graded more than once, in those tests) and which
    the selftest exercises on the reference and on the mutants it must catch."""
    from grading.registry import select

    return [c.id for c in select("tp3c") if c.id != "tp3c.short_training"]

"""A corpus of broken and hostile submissions of practical 3-c (``dann.py``), built from the
reference file by small edits, with what the grader must say about each.

Expected words are matched case-insensitively; "a|b" accepts either.

Each entry: kind -> (edit, expected words in every lost check's reason). ``edit`` takes the
reference source and a dict of paths (``reference``: the instructor's ``dann.py``,
``classmate``: another student's submitted file, ``batches``: the folder where the grader
makes its batch folders, ``backward``: a line only a correct answer has, ``probe``: the name
of a file to try to create in torch's folder, ``classmate_dir``: the submissions folder,
``hidden``: the instructor's hidden checks of 3-c) and returns the files to hand in, as
{relative path: text}; an empty dict hands in nothing.
"""
from typing import Callable

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
        _stub_then("import grading.registry as _r\n_r.expect = _r.expect_close = _r.expect_shape = lambda *a, **k: None"),
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
                   "            _j.dump({{'status': 'passed', 'message': ''}}, open(_os.path.join(_d, 'result.json'), 'w'))\n"
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

"""Runs ONE check in a fresh process and writes its result as JSON.

Started by :mod:`grading.runner` as ``python grading/worker.py TREE GRADER CHECK_ID RESULT``
(in the sandbox, TREE and RESULT are paths of the check's private view); it moves into TREE
before anything else. ``GRADER`` is a folder holding
only the ``grading`` package, put first on ``sys.path`` so that a submission cannot
replace the checks; ``TREE`` (the student's code) comes next.

Before any student code runs, the worker lowers its own limits (memory, size of written
files, no core dumps) from ``$RDFIA_LIMITS``, and remembers the functions the checks judge
with (torch's comparisons, the grader's helpers, a few builtins): a submission that replaces
one of them loses the check, whatever the check said.

``CHECK_ID`` may also be ``import:MODULE[,MODULE...]``: import the student's modules and
nothing else (the batch grader's first probe of each practical).
"""
import errno
import json
import os
import sys
import time
import traceback

# Kept before any student code runs: the result is written with these, whatever it replaces.
_open, _dump, _exit = open, json.dump, os._exit


def _student_frame(tb, tree: str) -> str:
    """``file:line`` of the deepest traceback frame inside the student's tree."""
    where = ""
    for frame in traceback.extract_tb(tb):
        path = os.path.abspath(frame.filename)
        if path.startswith(tree + os.sep) and f"{os.sep}grading{os.sep}" not in path:
            where = f"{os.path.relpath(path, tree)}:{frame.lineno}"
    return where


def _apply_limits() -> None:
    import resource

    limits = json.loads(os.environ.get("RDFIA_LIMITS", "{}"))
    for name, key in (("RLIMIT_DATA", "memory_mb"), ("RLIMIT_FSIZE", "output_mb")):
        if limits.get(key):
            n = int(limits[key]) << 20
            resource.setrlimit(getattr(resource, name), (n, n))
    resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
    if limits.get("network") == "python":  # no network namespace: refuse sockets in Python
        import socket

        def refused(*args, **kwargs):
            raise OSError("network access is disabled while grading")

        socket.socket.connect = socket.socket.connect_ex = refused
        socket.create_connection = socket.getaddrinfo = refused


def _guarded() -> dict:
    """Every callable the checks judge with, by qualified name."""
    import builtins
    import math

    import numpy
    import torch
    import torch.nn.functional

    import grading.registry

    guarded = {}
    for prefix, namespace in (("torch", torch), ("torch.nn.functional", torch.nn.functional),
                              ("torch.Tensor", torch.Tensor), ("torch.testing", torch.testing),
                              ("numpy", numpy), ("math", math), ("builtins", builtins),
                              ("json", json), ("grading.registry", grading.registry)):
        for name, value in list(vars(namespace).items()):
            if callable(value) and not name.startswith("__") or name in ("__eq__", "__ne__", "__lt__", "__gt__"):
                guarded[f"{prefix}.{name}"] = value
    for name, module in list(sys.modules.items()):
        if name.startswith(("grading.checks.", "grading.hidden.")):
            guarded.update({f"{name}.{k}": v for k, v in vars(module).items() if callable(v)})
    return guarded


def _replaced(before: dict) -> list[str]:
    """Names whose function changed. torch itself wraps a few (``torch.manual_seed`` when
    ``torch._dynamo`` loads), keeping the original as ``__wrapped__``: those are unchanged."""
    from inspect import unwrap

    after = _guarded()
    return sorted(name for name, value in before.items()
                  if name not in after or unwrap(after[name]) is not unwrap(value))


def main(tree: str, grader: str, check_id: str, result_path: str) -> None:
    tree = os.path.abspath(tree)
    sys.path[:] = [grader, tree] + [p for p in sys.path[1:] if p not in (grader, tree)]
    os.chdir(tree)
    started = time.perf_counter()
    result = {"id": check_id, "status": "error", "message": "", "where": ""}
    guarded = None
    try:
        _apply_limits()
        from grading.registry import CheckFailed, load_checks

        if check_id.startswith("import:"):
            import importlib

            def func():
                for module in check_id[len("import:"):].split(","):
                    importlib.import_module(module)
        else:
            checks = load_checks()
            if check_id not in checks:
                raise KeyError(f"no check named {check_id!r}")
            func = checks[check_id].func
        guarded = _guarded()
        try:
            func()
            result.update(status="passed")
        except NotImplementedError as e:
            result.update(status="failed", message=f"not implemented yet: {e}",
                          where=_student_frame(e.__traceback__, tree))
        except (CheckFailed, AssertionError) as e:
            result.update(status="failed", message=str(e) or type(e).__name__,
                          where=_student_frame(e.__traceback__, tree))
        except MemoryError as e:
            result.update(status="failed", where=_student_frame(e.__traceback__, tree),
                          message="MemoryError: the code used more memory than the limit per check")
        except SystemExit as e:
            where = _student_frame(e.__traceback__, tree)
            result.update(status="failed", where=where,
                          message=f"the code called sys.exit({e.code!r})" + (f" (at {where})" if where else ""))
        except Exception as e:  # the student's code raised: say what and where
            where = _student_frame(e.__traceback__, tree)
            message = f"{type(e).__name__}: {e}"
            if "can't allocate memory" in message or "out of memory" in message.lower():
                message = "out of memory: the code used more memory than the limit per check"
            elif isinstance(e, OSError) and e.errno == errno.EFBIG:
                message = "the code wrote more than the limit per check (printed output or a file)"
            result.update(status="failed", where=where, message=message[:2000] + (f" (at {where})" if where else ""))
        replaced = _replaced(guarded)
        if replaced:
            result.update(status="failed", message="the submission replaced functions the grader relies on "
                          f"({', '.join(replaced[:5])}{', ...' if len(replaced) > 5 else ''}): "
                          "monkeypatching torch or the grader is not allowed")
    except BaseException as e:  # the grader itself failed
        result.update(status="error", message=f"{type(e).__name__}: {e}",
                      where=_student_frame(e.__traceback__, tree))
    result["seconds"] = round(time.perf_counter() - started, 3)
    with _open(result_path, "w") as f:
        _dump(result, f)
    sys.stdout.flush()
    _exit(0)  # skip interpreter teardown: threads or atexit hooks left by student code


if __name__ == "__main__":
    main(*sys.argv[1:5])

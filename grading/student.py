"""The student's side of a check: runs what the check sends, inside the sandbox.

A check is split across two processes. The grader's process (:mod:`grading.worker`) holds
the check, its inputs and its expected values; it never imports the student's code. This
process holds the student's code and nothing of the grader: it receives *probes* (small
functions of the check, sent as compiled code without their source) with their inputs,
calls them, and sends back what they return: numbers, strings, tensors, lists, tuples and
dicts only, which the grader reads with ``torch.load(weights_only=True)``, so that nothing
a submission returns can run code in the grader. Whatever the student's code does here
(exit, crash, replace torch's functions, write a fake result), the verdict is the
grader's, made in the other process.

Started by the grader as ``python student.py TREE`` (a copy of this file in the check's
folder: the ``grading`` package itself is hidden from this process), with
``RDFIA_PIPES="IN,OUT"`` naming the two pipe ends it talks through. It lowers its own
limits (memory, size of written files, no core dumps) from ``$RDFIA_LIMITS`` before
importing anything.

Messages: each is an 8-byte length then a payload. Grader to student:
``pickle((marshal(code), defaults, args))``. Student to grader: ``torch.save({"ok": value})``
or ``torch.save({"error": (status, message, where)})``.
"""
import builtins
import errno
import io
import json
import marshal
import os
import pickle
import struct
import sys
import traceback
import types

# Kept before any student code runs.
_exit, _read, _write = os._exit, os.read, os.write
REPLY_LIMIT = 256 << 20  # bytes: larger answers are refused by the grader


def student_frame(tb, tree: str) -> str:
    """``file:line`` of the deepest traceback frame inside the student's tree."""
    where = ""
    for frame in traceback.extract_tb(tb):
        path = os.path.abspath(frame.filename)
        if path.startswith(tree + os.sep) and f"{os.sep}grading{os.sep}" not in path:
            where = f"{os.path.relpath(path, tree)}:{frame.lineno}"
    return where


def describe(e: BaseException, tree: str) -> tuple[str, str, str]:
    """``(status, message, where)`` for an exception raised by the student's code."""
    where = student_frame(e.__traceback__, tree)
    at = f" (at {where})" if where else ""
    if isinstance(e, NotImplementedError):
        return "failed", f"not implemented yet: {e}", where
    if isinstance(e, MemoryError):
        return "failed", "MemoryError: the code used more memory than the limit per check", where
    if isinstance(e, SystemExit):
        return "failed", f"the code called sys.exit({e.code!r}){at}", where
    message = f"{type(e).__name__}: {e}"
    if "can't allocate memory" in message or "out of memory" in message.lower():
        message = "out of memory: the code used more memory than the limit per check"
    elif isinstance(e, OSError) and e.errno == errno.EFBIG:
        message = "the code wrote more than the limit per check (printed output or a file)"
    return "failed", message[:2000] + at, where


def probe_globals() -> dict:
    """The only names a probe sees besides its arguments and its own imports."""
    import copy
    import math

    import torch

    return {"__builtins__": builtins, "torch": torch, "nn": torch.nn, "F": torch.nn.functional,
            "math": math, "copy": copy}


def make_probe(code: types.CodeType, defaults) -> types.FunctionType:
    if code.co_freevars:
        raise TypeError(f"probe {code.co_name} uses names of the function around it "
                        f"({', '.join(code.co_freevars)}): pass them as arguments")
    return types.FunctionType(code, probe_globals(), code.co_name, defaults)


def encode(value) -> bytes:
    import torch

    buf = io.BytesIO()
    torch.save(value, buf)
    return buf.getvalue()


def decode(data: bytes):
    """What a probe returned, read without running any code: plain data and tensors only."""
    import torch

    try:
        return torch.load(io.BytesIO(data), weights_only=True)
    except (pickle.UnpicklingError, RuntimeError, EOFError, ValueError, TypeError) as e:
        raise ValueError(f"the code returned something other than numbers, strings and tensors "
                         f"({str(e).splitlines()[0][:200]})") from None


def send(fd: int, data: bytes) -> None:
    data = struct.pack("<Q", len(data)) + data
    view = memoryview(data)
    while view:
        view = view[_write(fd, view):]


def receive(fd: int, limit: int | None = None) -> bytes | None:
    """One message, or None when the other side has closed the pipe."""
    head = _exactly(fd, 8)
    if head is None:
        return None
    (size,) = struct.unpack("<Q", head)
    if limit is not None and size > limit:
        raise ValueError(f"the code returned {size / 2**20:.0f} MB (the limit is {limit >> 20} MB)")
    return _exactly(fd, size)


def _exactly(fd: int, n: int) -> bytes | None:
    chunks, left = [], n
    while left:
        chunk = _read(fd, min(left, 1 << 20))
        if not chunk:
            return None
        chunks.append(chunk)
        left -= len(chunk)
    return b"".join(chunks)


# ------------------------------------------------------------------------------- in the sandbox

def apply_limits() -> None:
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
    """torch's and Python's callables, by qualified name: a submission that replaces one
    loses the check (its outputs are judged elsewhere, but it must not cheat its own probes)."""
    import math

    import numpy
    import torch
    import torch.nn.functional

    guarded = {}
    for prefix, namespace in (("torch", torch), ("torch.nn.functional", torch.nn.functional),
                              ("torch.Tensor", torch.Tensor), ("torch.autograd", torch.autograd),
                              ("numpy", numpy), ("math", math), ("builtins", builtins), ("json", json)):
        for name, value in list(vars(namespace).items()):
            if callable(value) and not name.startswith("__") or name in ("__eq__", "__ne__", "__lt__", "__gt__"):
                guarded[f"{prefix}.{name}"] = value
    return guarded


def _replaced(before: dict) -> list[str]:
    """Names whose function changed. torch itself wraps a few (``torch.manual_seed`` when
    ``torch._dynamo`` loads), keeping the original as ``__wrapped__``: those are unchanged."""
    from inspect import unwrap

    after = _guarded()
    return sorted(name for name, value in before.items()
                  if name not in after or unwrap(after[name]) is not unwrap(value))


def serve(tree: str) -> None:
    tree = os.path.abspath(tree)
    fd_in, fd_out = map(int, os.environ["RDFIA_PIPES"].split(","))
    apply_limits()
    sys.path[:] = [tree] + [p for p in sys.path[1:] if p != tree]
    os.chdir(tree)
    guarded = _guarded()  # imports torch before any student code: the functions it guards are torch's own
    while True:
        request = receive(fd_in)
        if request is None:
            _exit(0)
        code, defaults, args = pickle.loads(request)
        try:
            reply = {"ok": make_probe(marshal.loads(code), defaults)(*args)}
        except BaseException as e:
            reply = {"error": describe(e, tree)}
        changed = _replaced(guarded)
        if changed:
            reply = {"error": ("failed", "the submission replaced functions the grader relies on "
                               f"({', '.join(changed[:5])}{', ...' if len(changed) > 5 else ''}): "
                               "monkeypatching torch is not allowed", "")}
        try:
            data = encode(reply)
        except BaseException as e:
            data = encode({"error": ("failed", "the code returned something that cannot be sent back "
                                     f"({type(e).__name__}: {str(e)[:200]})", "")})
        send(fd_out, data)


if __name__ == "__main__":
    serve(sys.argv[1])

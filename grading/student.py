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

Started by the grader as ``python student.py TREE`` (a copy of this file in the checks'
folder: the ``grading`` package itself is hidden from this process), once for all the checks
of a practical, with ``RDFIA_CONTROL`` naming a Unix socket to the grader. It lowers its own
limits (memory, size of written files, no core dumps, no capabilities) from ``$RDFIA_LIMITS`` and imports
torch (and torchvision, NumPy), never the student's code; then, for each check, it forks a
fresh child that gets the check's two pipes (through the socket) and its own output file,
and it reports the child's exit status when the child ends. Every check thus starts from a
process that has never run student code, without paying for importing torch again. In the
sandbox this process is the first of its own PID namespace: the student's code can signal
no process outside it, and all of it dies with it.

Messages: each is an 8-byte length then a payload. Grader to student:
``pickle((marshal(code), defaults, args))``. Student to grader: ``torch.save({"ok": value})``
or ``torch.save({"error": (status, message, where)})``. Grader to this first process: the
child's output file, with the child's two pipe ends as ancillary data; back: the child's
exit status (8 bytes, negative for a signal).
"""
import builtins
import errno
import io
import json
import marshal
import os
import pickle
import select
import socket
import struct
import sys
import time
import types

# Kept before any student code runs.
_exit, _read, _write = os._exit, os.read, os.write
REPLY_LIMIT = 256 << 20  # bytes: larger answers are refused by the grader


def student_frame(tb, tree: str) -> str:
    """``file:line in Function`` of the deepest traceback frame inside the student's tree:
    where the exception was raised, named as ``Class.method``."""
    where = ""
    while tb is not None:
        code = tb.tb_frame.f_code
        path = os.path.abspath(code.co_filename)
        if path.startswith(tree + os.sep) and f"{os.sep}grading{os.sep}" not in path:
            where = f"{os.path.relpath(path, tree)}:{tb.tb_lineno} in {code.co_qualname}"
        tb = tb.tb_next
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


def send(fd: int, data: bytes, deadline: float | None = None) -> None:
    """Write one message; past ``deadline`` (``time.monotonic``), raise ``TimeoutError``."""
    data = struct.pack("<Q", len(data)) + data
    view = memoryview(data)
    while view:
        _wait(fd, deadline, write=True)
        try:
            view = view[_write(fd, view):]
        except BlockingIOError:
            pass


def receive(fd: int, limit: int | None = None, deadline: float | None = None) -> bytes | None:
    """One message, or None when the other side has closed the pipe."""
    head = _exactly(fd, 8, deadline)
    if head is None:
        return None
    (size,) = struct.unpack("<Q", head)
    if limit is not None and size > limit:
        raise ValueError(f"the code returned {size / 2**20:.0f} MB (the limit is {limit >> 20} MB)")
    return _exactly(fd, size, deadline)


def _exactly(fd: int, n: int, deadline: float | None) -> bytes | None:
    chunks, left = [], n
    while left:
        _wait(fd, deadline)
        chunk = _read(fd, min(left, 1 << 20))
        if not chunk:
            return None
        chunks.append(chunk)
        left -= len(chunk)
    return b"".join(chunks)


def _wait(fd: int, deadline: float | None, write: bool = False) -> None:
    if deadline is None:
        return
    left = deadline - time.monotonic()
    ready = select.select([], [fd], [], max(left, 0))[1] if write else select.select([fd], [], [], max(left, 0))[0]
    if not ready:
        raise TimeoutError


# ------------------------------------------------------------------------------- in the sandbox

def drop_privileges() -> None:
    """Linux: give up every capability for good (those of a grader run as root included), so
    that the student's code can read no other process's memory or environment and gains
    nothing by running a program."""
    try:
        import ctypes

        libc = ctypes.CDLL(None, use_errno=True)
        for cap in range(64):  # the bounding set: what an exec could give back
            libc.prctl(24, cap, 0, 0, 0)  # PR_CAPBSET_DROP; fails harmlessly without CAP_SETPCAP
        libc.prctl(38, 1, 0, 0, 0)  # PR_SET_NO_NEW_PRIVS: no setuid program regains any

        class Header(ctypes.Structure):
            _fields_ = [("version", ctypes.c_uint32), ("pid", ctypes.c_int)]

        class Data(ctypes.Structure):
            _fields_ = [("effective", ctypes.c_uint32), ("permitted", ctypes.c_uint32),
                        ("inheritable", ctypes.c_uint32)]

        libc.capset(ctypes.byref(Header(0x20080522, 0)), (Data * 2)())  # version 3: every set empty
    except (OSError, AttributeError):
        pass


def apply_limits() -> None:
    import resource

    limits = json.loads(os.environ.get("RDFIA_LIMITS", "{}"))
    for name, key in (("RLIMIT_DATA", "memory_mb"), ("RLIMIT_FSIZE", "output_mb")):
        if limits.get(key):
            n = int(limits[key]) << 20
            resource.setrlimit(getattr(resource, name), (n, n))
    resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
    drop_privileges()
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


def serve(fd_in: int, fd_out: int, tree: str, guarded: dict) -> None:
    """Answer the check's probes until the grader closes the pipe."""
    while True:
        try:
            request = receive(fd_in)
            if request is None:
                _exit(0)
            code, defaults, args = pickle.loads(request)
        except (MemoryError, RuntimeError) as e:  # the check's own inputs: say so, not "it exited"
            limit = json.loads(os.environ.get("RDFIA_LIMITS", "{}")).get("memory_mb")
            send(fd_out, encode({"error": ("crashed", "the check's inputs did not fit in the memory limit per "
                                           f"check ({limit} MB; {type(e).__name__}): the grader needs a "
                                           "larger --memory-mb", "")}))
            _exit(0)
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


def _die_with_parent() -> None:
    """Linux: the kernel kills this child when the process that forked it dies."""
    try:
        import ctypes

        ctypes.CDLL(None, use_errno=True).prctl(1, 9)  # PR_SET_PDEATHSIG, SIGKILL
    except (OSError, AttributeError):
        pass


def _holds_packages(entry: str) -> bool:
    """Does this import path hold a copy of the practicals' packages (the instructor's, say)?"""
    return any(os.path.isfile(os.path.join(entry or ".", name, "__init__.py"))
               for name in ("common", "tp3a_transfer", "tp3b_visualization", "tp3c_domain_adaptation", "tp3d_gan"))


def main(tree: str) -> None:
    tree = os.path.abspath(tree)
    control = socket.socket(fileno=int(os.environ["RDFIA_CONTROL"]))
    apply_limits()
    sys.path[:] = [tree] + [p for p in sys.path[1:] if p != tree and not _holds_packages(p)]
    # an editable install of the instructor's repository finds its packages from anywhere
    sys.meta_path[:] = [f for f in sys.meta_path if not type(f).__module__.startswith("__editable__")]
    os.chdir(tree)
    for module in ("torch", "numpy", "torchvision"):  # what the practicals import: loaded once
        try:
            __import__(module)
        except ImportError:
            pass
    guarded = _guarded()  # torch's own functions, before any student code
    while True:
        try:
            message, fds, _, _ = socket.recv_fds(control, 4096, 2)
        except OSError:
            _exit(0)
        if not message or len(fds) != 2:
            _exit(0)
        sys.stdout.flush()
        sys.stderr.flush()
        pid = os.fork()
        if pid == 0:  # the check's process
            try:
                control.close()
                _die_with_parent()
                out = os.open(message.decode(), os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
                os.dup2(out, 1)
                os.dup2(out, 2)
                os.close(out)
                serve(fds[0], fds[1], tree, guarded)
            finally:
                _exit(0)
        for fd in fds:
            os.close(fd)
        code = os.waitstatus_to_exitcode(os.waitpid(pid, 0)[1])
        try:  # reap what the check left behind: in the sandbox, orphans are this process's
            while os.waitpid(-1, os.WNOHANG)[0]:
                pass
        except ChildProcessError:
            pass
        try:
            control.sendall(struct.pack("<q", code))
        except OSError:
            _exit(0)


if __name__ == "__main__":
    main(sys.argv[1])

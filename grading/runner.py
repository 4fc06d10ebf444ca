"""Run checks in subprocesses with a wall-clock limit, a memory limit and an output limit,
cut off from the network and from other students' files where Linux allows it.

Every check runs in a fresh process group (``start_new_session``) that is killed whole at
the end, so nothing a submission starts outlives its check. Limits are set by the worker
before any student code is imported (:mod:`grading.worker`). With unprivileged user
namespaces (``unshare``, most Linux distributions), the process also gets:

- no network (an empty network namespace: connections fail at once);
- a private mount table in which the folders named in ``hide`` (the reference solution,
  the submissions folder, the reports) are covered by an empty, unreadable ``tmpfs``: the
  student's process cannot read or write them.

Without ``unshare`` (macOS, containers without user namespaces) the same limits apply, the
network is refused inside Python only, and nothing is hidden: :func:`isolation` says which.
"""
import functools
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

from grading.registry import Check

OUTPUT_TAIL = 2000  # characters of a crashed check's output kept for the report
SANDBOX_FAILED = 97  # exit status of the mount script when a folder could not be hidden

# Runs as "root" of a new user namespace: hides each folder given before "--", then
# replaces itself with the command after it (so the check's pid is the group leader).
_MOUNT_SCRIPT = ('while [ "$1" != "--" ]; do '
                 'mount -t tmpfs -o size=4k,mode=000 rdfia-hidden "$1" 2>/dev/null || exit 97; '
                 'shift; done; shift; exec "$@"')


@dataclass(frozen=True)
class Limits:
    """Per-check limits. ``memory_mb`` bounds the process's data (heap, tensors: RLIMIT_DATA,
    not the shared libraries it maps); ``output_mb`` bounds every file it writes, its
    printed output included (RLIMIT_FSIZE)."""
    memory_mb: int = 4096
    output_mb: int = 64
    sandbox: str = "auto"  # "auto": namespaces where available; "off": limits only


@functools.lru_cache(maxsize=None)
def namespaces_available() -> bool:
    """Can this machine give a process its own user, network and mount namespaces?"""
    if not sys.platform.startswith("linux") or shutil.which("unshare") is None:
        return False
    with tempfile.TemporaryDirectory() as tmp:
        try:
            res = subprocess.run(["unshare", "--user", "--map-root-user", "--net", "--mount",
                                  "sh", "-c", _MOUNT_SCRIPT, "sh", tmp, "--", "true"],
                                 capture_output=True, timeout=20)
        except (OSError, subprocess.TimeoutExpired):
            return False
    return res.returncode == 0


def isolation(limits: Limits) -> str:
    """One line for the logs: what protects the batch from the submissions."""
    common = f"{limits.memory_mb} MB of memory and {limits.output_mb} MB of output per check"
    if limits.sandbox != "off" and namespaces_available():
        return f"isolation: own process group, no network, hidden folders, {common}"
    return (f"isolation: own process group, {common}; no user namespaces here, so the network "
            f"is refused inside Python only and other folders are NOT hidden")


def grader_copy(dest: Path) -> Path:
    """Copy the ``grading`` package alone into ``dest`` and return ``dest``.

    Checks then import ``grading`` from there, and the code under test from its own tree,
    so a submission can neither shadow the checks nor fall back to the reference code.
    """
    src = Path(__file__).resolve().parent
    shutil.copytree(src, dest / "grading", ignore=shutil.ignore_patterns("__pycache__"))
    return dest


def _env(threads: int, limits: Limits, sandboxed: bool, home: Path) -> dict:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PYTHON", "RDFIA_LIMIT"))}
    env.update(MPLBACKEND="Agg", PYTHONDONTWRITEBYTECODE="1", PYTHONHASHSEED="0",
               OMP_NUM_THREADS=str(threads), MKL_NUM_THREADS=str(threads),
               CUDA_VISIBLE_DEVICES="", HOME=str(home), TMPDIR=str(home),
               RDFIA_LIMITS=json.dumps({"memory_mb": limits.memory_mb, "output_mb": limits.output_mb,
                                        "network": "namespace" if sandboxed else "python"}))
    return env


def _visible(hide, keep: list[Path]) -> list[str]:
    """The folders to hide, minus any that holds what the check itself needs."""
    out = []
    for h in hide:
        h = Path(h).resolve()
        if h.is_dir() and not any(k == h or h in k.parents for k in keep):
            out.append(str(h))
    return out


def run_check(check: Check, tree: Path, grader: Path, threads: int = 1, limits: Limits = Limits(),
              hide=()) -> dict:
    """Run ``check`` on the code in ``tree`` in its own process group.

    Returns ``{"id", "status", "message", "where", "seconds", "points", "score"}`` with
    status ``passed``, ``failed``, ``timeout``, ``crashed`` or ``error`` (the grader's fault).
    """
    tree, grader = Path(tree).resolve(), Path(grader).resolve()
    with tempfile.TemporaryDirectory(prefix="rdfia-check-") as tmp:
        tmp = Path(tmp)
        result_path, log_path = tmp / "result.json", tmp / "output.txt"
        cmd = [sys.executable, str(grader / "grading" / "worker.py"), str(tree), str(grader),
               check.id, str(result_path)]
        sandboxed = limits.sandbox != "off" and namespaces_available()
        if sandboxed:
            keep = [tree, grader, tmp, Path(sys.executable).resolve(), Path(sys.prefix).resolve()]
            cmd = (["unshare", "--user", "--map-root-user", "--net", "--mount", "sh", "-c",
                    _MOUNT_SCRIPT, "sh"] + _visible(hide, keep) + ["--"] + cmd)
        with open(log_path, "wb") as log:
            proc = subprocess.Popen(cmd, cwd=tree, env=_env(threads, limits, sandboxed, tmp), stdout=log,
                                    stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                    start_new_session=True)
            try:
                proc.wait(timeout=check.timeout)
                timed_out = False
            except subprocess.TimeoutExpired:
                timed_out = True
            finally:
                _kill_group(proc)
        if timed_out:
            result = {"status": "timeout",
                      "message": f"did not finish within the time limit of {check.timeout:g} s",
                      "seconds": check.timeout}
        elif result_path.exists():
            try:
                result = json.loads(result_path.read_text())
            except ValueError:
                result = {"status": "crashed", "seconds": None,
                          "message": "the process ended while writing its result"}
        elif sandboxed and proc.returncode == SANDBOX_FAILED:
            result = {"status": "error", "seconds": None,
                      "message": "the grader could not set up its sandbox (mount in a user namespace)"}
        else:
            result = {"status": "crashed", "seconds": None, "message": _crash_message(proc.returncode, limits, log_path)}
    result.update(id=check.id, points=check.points,
                  score=check.points if result["status"] == "passed" else 0.0)
    result.setdefault("where", "")
    return result


def _crash_message(code: int, limits: Limits, log_path: Path) -> str:
    if code == -signal.SIGXFSZ:
        return (f"the process wrote more than {limits.output_mb} MB (printed output or a file) "
                f"and was stopped")
    if code == -signal.SIGKILL:
        why = "killed (most likely out of memory)"
    elif code is not None and code < 0:
        why = f"killed by signal {signal.Signals(-code).name}"
    else:
        why = f"ended with exit code {code} (sys.exit or os._exit in the code?)"
    tail = _tail(log_path)
    return f"the process {why} before reporting a result" + (f"; last output: {tail}" if tail else "")


def _kill_group(proc: subprocess.Popen) -> None:
    try:
        os.killpg(proc.pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass
    proc.wait()


def _tail(path: Path) -> str:
    size = path.stat().st_size
    with open(path, "rb") as f:
        f.seek(max(0, size - OUTPUT_TAIL))
        return f.read().decode("utf-8", "replace").strip()

"""Run checks in subprocesses with a wall-clock limit; collect their results."""
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
from pathlib import Path

from grading.registry import Check

OUTPUT_TAIL = 2000  # characters of a crashed check's output kept for the report


def grader_copy(dest: Path) -> Path:
    """Copy the ``grading`` package alone into ``dest`` and return ``dest``.

    Checks then import ``grading`` from there, and the code under test from its own tree,
    so a submission can neither shadow the checks nor fall back to the reference code.
    """
    src = Path(__file__).resolve().parent
    shutil.copytree(src, dest / "grading", ignore=shutil.ignore_patterns("__pycache__"))
    return dest


def _env(threads: int) -> dict:
    env = {k: v for k, v in os.environ.items() if not k.startswith("PYTHON")}
    env.update(MPLBACKEND="Agg", PYTHONDONTWRITEBYTECODE="1", PYTHONHASHSEED="0",
               OMP_NUM_THREADS=str(threads), MKL_NUM_THREADS=str(threads),
               CUDA_VISIBLE_DEVICES="")
    return env


def run_check(check: Check, tree: Path, grader: Path, threads: int = 1) -> dict:
    """Run ``check`` on the code in ``tree`` in its own process group.

    Returns ``{"id", "status", "message", "where", "seconds", "points", "score"}`` with
    status ``passed``, ``failed``, ``timeout``, ``crashed`` or ``error``.
    """
    with tempfile.TemporaryDirectory(prefix="rdfia-check-") as tmp:
        result_path = Path(tmp) / "result.json"
        log_path = Path(tmp) / "output.txt"
        cmd = [sys.executable, str(Path(grader) / "grading" / "worker.py"), str(tree),
               str(grader), check.id, str(result_path)]
        with open(log_path, "wb") as log:
            proc = subprocess.Popen(cmd, cwd=tree, env=_env(threads), stdout=log,
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
            result = json.loads(result_path.read_text())
        else:
            tail = _tail(log_path)
            result = {"status": "crashed", "seconds": None,
                      "message": f"the process ended with exit code {proc.returncode} "
                                 f"before reporting a result" + (f"; last output: {tail}" if tail else "")}
    result.update(id=check.id, points=check.points,
                  score=check.points if result["status"] == "passed" else 0.0)
    result.setdefault("where", "")
    return result


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

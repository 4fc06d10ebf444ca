"""Runs ONE check in the grader's process and writes its result as JSON.

Started by :mod:`grading.runner` as ``python grading/worker.py GRADER REPO CHECK_ID RESULT
STUDENT``: ``GRADER`` holds only the ``grading`` package (put first on ``sys.path``),
``REPO`` the course's shared code (``common``, and the few practical modules a check may
use itself, :data:`JUDGE_MODULES`), ``STUDENT`` a JSON file saying how to start the
student's process (its command, sandbox included, working folder, environment and log).

This process never imports the student's code (an import hook refuses it): each probe a
check sends with :func:`grading.registry.run` goes to the student's process, started as
this one starts, and only plain data comes back. The verdict, the expected values and the
hidden checks' code stay here, where the submission cannot reach them.

``CHECK_ID`` may also be ``import:MODULE[,MODULE...]``: import the student's modules and
nothing else (the batch grader's first probe of each practical).
"""
import importlib.abc
import json
import os
import subprocess
import sys
import time

# Practical modules that are not students' work and that a check may import itself.
JUDGE_MODULES = ("tp3d_gan.quality",)


class NoStudentCode(importlib.abc.MetaPathFinder):
    """Refuse to import the practicals' modules here: student code runs in its own process."""

    def __init__(self, practicals):
        self.practicals = practicals

    def find_spec(self, name, path=None, target=None):
        top = name.split(".")[0]
        if top in self.practicals and name != top and name not in JUDGE_MODULES:
            raise ImportError(f"the grader's process must not import {name}: send a probe with "
                              f"grading.registry.run, which runs in the student's process")
        return None


class StudentProcess:
    """The student's sandboxed process, kept for the whole check. Started before the
    grader's own imports, so that both processes load torch at the same time."""

    def __init__(self, spec: dict):
        self.spec, self.proc = spec, None

    def start(self) -> None:
        child_in, self.to = os.pipe()  # the grader writes requests, the student reads them
        self.fro, child_out = os.pipe()  # the student writes replies, the grader reads them
        with open(self.spec["log"], "ab") as log:
            env = dict(self.spec["env"], RDFIA_PIPES=f"{child_in},{child_out}")
            self.proc = subprocess.Popen(self.spec["cmd"], cwd=self.spec["cwd"], env=env, stdout=log,
                                         stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                         pass_fds=(child_in, child_out))
        os.close(child_in)
        os.close(child_out)

    def call(self, request: bytes):
        from grading.registry import StudentError
        from grading.runner import SANDBOX_FAILED
        from grading.student import REPLY_LIMIT, decode, receive, send

        try:
            send(self.to, request)
            reply = receive(self.fro, REPLY_LIMIT)
        except BrokenPipeError:
            reply = None
        except ValueError as e:  # too large
            raise StudentError("failed", str(e)) from None
        if reply is None:
            code, message = self._crash()
            if code == SANDBOX_FAILED:
                raise StudentError("error", "the grader could not set up its sandbox (mount in a user namespace)")
            raise StudentError("crashed", message)
        try:
            answer = decode(reply)
        except ValueError as e:
            raise StudentError("failed", str(e)) from None
        if not isinstance(answer, dict) or not ({"ok"} == answer.keys() or {"error"} == answer.keys()):
            raise StudentError("failed", "the student's process answered something else than a probe's result")
        if "error" in answer:
            _, message, where = (list(answer["error"]) + ["", "", ""])[:3]
            raise StudentError("failed", str(message), str(where))
        return answer["ok"]

    def _crash(self) -> tuple[int, str]:
        from grading.runner import Limits, crash_message

        try:
            code = self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            code = self.proc.wait()
        return code, crash_message(code, Limits(**self.spec["limits"]), self.spec["log"])

    def close(self) -> None:
        if self.proc is not None:
            os.close(self.to)
            self.proc.kill()
            self.proc.wait()


def _import_probe(modules):
    import importlib

    for module in modules:
        importlib.import_module(module)


def main(grader: str, repo: str, check_id: str, result_path: str, student_spec: str) -> None:
    sys.path[:] = [grader, repo] + [p for p in sys.path[1:] if p not in (grader, repo)]
    started = time.perf_counter()
    result = {"id": check_id, "status": "error", "message": "", "where": ""}
    student = None
    try:
        with open(student_spec) as f:
            student = StudentProcess(json.load(f))
        student.start()
        import grading.registry as registry
        from grading.registry import PRACTICALS, CheckFailed, StudentError, load_checks

        sys.meta_path.insert(0, NoStudentCode(PRACTICALS))
        registry.student = student
        if check_id.startswith("import:"):
            def func():
                registry.run(_import_probe, check_id[len("import:"):].split(","))
        else:
            checks = load_checks()
            if check_id not in checks:
                raise KeyError(f"no check named {check_id!r}")
            func = checks[check_id].func
        try:
            func()
            result.update(status="passed")
        except StudentError as e:
            result.update(status=e.status, message=e.message, where=e.where)
        except (CheckFailed, AssertionError) as e:
            result.update(status="failed", message=str(e) or type(e).__name__)
        except Exception as e:  # what the code returned did not fit the check (a string for a count, ...)
            result.update(status="failed", message=f"the check could not use what the code returned "
                                                   f"({type(e).__name__}: {str(e)[:500]})")
    except BaseException as e:  # the grader itself failed
        result.update(status="error", message=f"{type(e).__name__}: {e}")
    finally:
        if student is not None:
            student.close()
    result["seconds"] = round(time.perf_counter() - started, 3)
    with open(result_path, "w") as f:
        json.dump(result, f)


if __name__ == "__main__":
    main(*sys.argv[1:6])

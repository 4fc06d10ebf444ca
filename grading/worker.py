"""Runs the checks of one practical on one submission, in the grader's process.

Started by :mod:`grading.runner` as ``python grading/worker.py GRADER REPO SESSION``:
``GRADER`` holds only the ``grading`` package (put first on ``sys.path``), ``REPO`` the
course's shared code (``common``, and the few practical modules a check may use itself,
:data:`JUDGE_MODULES`), ``SESSION`` a JSON file: the checks to run (id and time limit; the
id ``import:MODULE[,MODULE...]`` imports the student's modules and nothing else, and when
it fails the session stops there), the file where each check's result is appended as one
line of JSON as soon as it is known, and how to start the student's process (its command,
sandbox included, working folder, environment, output files).

This process never imports the student's code (an import hook refuses it): each probe a
check sends with :func:`grading.registry.run` goes to the student's process, and only plain
data comes back. The verdict, the expected values and the hidden checks' code stay here,
where the submission cannot reach them. The student's process serves every check of the
session from a fresh child of its own (see :mod:`grading.student`); a check's time limit
bounds the waits for its child, which is killed, with everything it started, when the limit
passes; the next check then gets a new student's process.
"""
import importlib.abc
import json
import os
import socket
import struct
import subprocess
import sys
import time
from pathlib import Path

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
    """The student's sandboxed process, kept for the whole session; one fresh child of it
    per check. Started before the grader's own imports, so that both load torch at once."""

    def __init__(self, spec: dict):
        self.spec, self.proc, self.control = spec, None, None
        self.to = self.fro = None

    def start(self) -> None:
        ours, theirs = socket.socketpair()
        with open(self.spec["log"], "ab") as log:
            env = dict(self.spec["env"], RDFIA_CONTROL=str(theirs.fileno()))
            user = self.spec.get("user")  # [uid, gid]: grading as root, the student's code runs as them
            as_user = {"user": user[0], "group": user[1], "extra_groups": []} if user else {}
            self.proc = subprocess.Popen(self.spec["cmd"], cwd=self.spec["cwd"], env=env, stdout=log,
                                         stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                         pass_fds=(theirs.fileno(),), **as_user)
        theirs.close()
        self.control = ours

    def begin(self, name: str, seconds: float) -> None:
        """Start the check ``name``'s child, which must answer within ``seconds``."""
        self.seconds, self.deadline, self.code = seconds, time.monotonic() + seconds, None
        self.log = Path(self.spec["logs"]) / f"{name}.txt"
        for _ in range(2):
            if self.proc is None or self.proc.poll() is not None:
                self.stop()
                self.start()
            child_in, to = os.pipe()  # the grader writes requests, the child reads them
            fro, child_out = os.pipe()  # the child writes replies, the grader reads them
            try:
                socket.send_fds(self.control, [os.path.join(self.spec["logs_seen"], f"{name}.txt").encode()],
                                [child_in, child_out])
                break
            except OSError:  # the student's process is gone: start another once
                for fd in (to, fro):
                    os.close(fd)
                self.stop()
            finally:
                os.close(child_in)
                os.close(child_out)
        else:
            raise RuntimeError("could not start the student's process")
        os.set_blocking(to, False)
        self.to, self.fro = to, fro

    def call(self, request: bytes):
        from grading.registry import StudentError
        from grading.student import REPLY_LIMIT, decode, receive, send

        try:
            send(self.to, request, self.deadline)
            reply = receive(self.fro, REPLY_LIMIT, self.deadline)
        except BrokenPipeError:
            reply = None
        except TimeoutError:
            self.stop()  # the child, whatever it started and its parent: a new one serves the next check
            raise StudentError("timeout", f"did not finish within the time limit of {self.seconds:g} s") from None
        except ValueError as e:  # too large
            raise StudentError("failed", str(e)) from None
        if reply is None:
            raise StudentError(*self._crash())
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

    def _exit_code(self, seconds: float) -> int | None:
        """The check's child's exit status, as its parent reports it (None: no report)."""
        if self.code is None and self.control is not None:
            self.control.settimeout(seconds)
            try:
                data = self.control.recv(8, socket.MSG_WAITALL)
                self.code = struct.unpack("<q", data)[0] if len(data) == 8 else None
            except OSError:
                pass
        return self.code

    def _crash(self) -> tuple[str, str]:
        from grading.runner import SANDBOX_FAILED, Limits, crash_message

        code, log = self._exit_code(10), self.log
        if code is None:  # the student's process itself ended (or never started)
            try:
                code = self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                pass
            log = Path(self.spec["log"])
            self.stop()
            if code == SANDBOX_FAILED:
                return "error", "the grader could not set up its sandbox (mount in a user namespace)"
        return "crashed", crash_message(code, Limits(**self.spec["limits"]), log)

    def end(self) -> None:
        """After a check: close its pipes, so that its child ends, and wait for that."""
        for fd in (self.to, self.fro):
            if fd is not None:
                os.close(fd)
        self.to = self.fro = None
        if self.proc is not None and self._exit_code(10) is None:
            self.stop()  # the child did not end: start afresh

    def stop(self) -> None:
        """Kill the student's process (in the sandbox: its PID namespace, all of it)."""
        if self.control is not None:
            self.control.close()
            self.control = None
        if self.proc is not None:
            self.proc.kill()
            self.proc.wait()
            self.proc = None


def _import_probe(modules):
    import importlib

    for module in modules:
        importlib.import_module(module)


def main(grader: str, repo: str, session_path: str) -> None:
    sys.path[:] = [grader, repo] + [p for p in sys.path[1:] if p not in (grader, repo)]
    from grading.runner import undumpable

    undumpable()  # the student's process, of the same user, must not read this one's memory
    with open(session_path) as f:
        session = json.load(f)
    student = StudentProcess(session["student"])
    try:
        student.start()
        import grading.registry as registry

        sys.meta_path.insert(0, NoStudentCode(registry.PRACTICALS))
        registry.student = student
        checks = registry.load_checks()
        for i, item in enumerate(session["checks"]):
            result = run_one(item["id"], item["timeout"], str(i), checks, student)
            with open(session["results"], "a") as f:
                f.write(json.dumps(result) + "\n")
            if item["id"].startswith("import:") and result["status"] != "passed":
                break
    finally:
        student.stop()


def run_one(check_id: str, timeout: float, name: str, checks: dict, student: StudentProcess) -> dict:
    """One check of the session, in a fresh child of the student's process."""
    from grading.registry import CheckFailed, StudentError, run, start_cases, take_cases

    started = time.perf_counter()
    result = {"id": check_id, "status": "error", "message": "", "where": ""}
    try:
        if check_id.startswith("import:"):
            def func():
                run(_import_probe, check_id[len("import:"):].split(","))
        elif check_id in checks:
            func = checks[check_id].func
        else:
            raise KeyError(f"no check named {check_id!r}")
        student.begin(name, timeout)
        tested = checks[check_id].tests if check_id in checks else ()
        try:
            start_cases()
            func()
            result.update(_cases_result(take_cases()))
        except StudentError as e:  # raised, crashed or stuck in the student's code
            own_stub = e.message.startswith("not implemented yet") and any(n in e.message for n in tested)
            testing = f"while testing {', '.join(tested)}: " if tested and not own_stub else ""
            result.update(status=e.status, message=testing + e.message, where=e.where)
        except (CheckFailed, AssertionError) as e:
            result.update(status="failed", message=str(e) or type(e).__name__)
        except Exception as e:  # what the code returned did not fit the check (a string for a count, ...)
            result.update(status="failed", message=f"the check could not use what the code returned "
                                                   f"({type(e).__name__}: {str(e)[:500]})")
        finally:
            take_cases()
            student.end()
    except Exception as e:  # the grader itself failed
        result.update(status="error", message=f"{type(e).__name__}: {e}")
    result["seconds"] = timeout if result["status"] == "timeout" else round(time.perf_counter() - started, 3)
    return result


def _cases_result(cases: list) -> dict:
    """A check that ran to its end: passed when every case it recorded passed; its cases
    (``cases``: name and passed, for partial credit) and what failed in each."""
    failed = [(name, why) for name, why in cases if why is not None]
    result = {"status": "failed" if failed else "passed", "message": ""}
    if cases:
        result["cases"] = [{"name": str(name), "passed": why is None} for name, why in cases]
    if failed:
        result["message"] = (f"{len(cases) - len(failed)}/{len(cases)} cases passed; failed:\n"
                             + "\n".join(f"- {name}: {why}" for name, why in failed))
    return result


if __name__ == "__main__":
    main(*sys.argv[1:4])

"""Runs ONE check in a fresh process and writes its result as JSON.

Started by :mod:`grading.runner` as ``python grading/worker.py TREE GRADER CHECK_ID RESULT``
with the working directory inside the tree under test. ``GRADER`` is a folder holding
only the ``grading`` package, put first on ``sys.path`` so that a submission cannot
replace the checks; ``TREE`` (the student's code) comes next.
"""
import json
import os
import sys
import time
import traceback


def _student_frame(tb, tree: str) -> str:
    """``file:line`` of the deepest traceback frame inside the student's tree."""
    where = ""
    for frame in traceback.extract_tb(tb):
        path = os.path.abspath(frame.filename)
        if path.startswith(tree + os.sep) and f"{os.sep}grading{os.sep}" not in path:
            where = f"{os.path.relpath(path, tree)}:{frame.lineno}"
    return where


def main(tree: str, grader: str, check_id: str, result_path: str) -> None:
    tree = os.path.abspath(tree)
    sys.path[:] = [grader, tree] + [p for p in sys.path[1:] if p not in (grader, tree)]
    os.chdir(tree)
    started = time.perf_counter()
    result = {"id": check_id, "status": "error", "message": "", "where": ""}
    try:
        from grading.registry import CheckFailed, load_checks

        checks = load_checks()
        if check_id not in checks:
            raise KeyError(f"no check named {check_id!r}")
        try:
            checks[check_id].func()
            result.update(status="passed")
        except NotImplementedError as e:
            result.update(status="failed", message=f"not implemented yet: {e}",
                          where=_student_frame(e.__traceback__, tree))
        except (CheckFailed, AssertionError) as e:
            result.update(status="failed", message=str(e) or type(e).__name__,
                          where=_student_frame(e.__traceback__, tree))
        except Exception as e:  # the student's code raised: say what and where
            where = _student_frame(e.__traceback__, tree)
            result.update(status="failed", where=where,
                          message=f"{type(e).__name__}: {e}" + (f" (at {where})" if where else ""))
    except BaseException as e:  # the grader itself, or SystemExit from student code
        result.update(status="error", message=f"{type(e).__name__}: {e}",
                      where=_student_frame(e.__traceback__, tree))
    result["seconds"] = round(time.perf_counter() - started, 3)
    with open(result_path, "w") as f:
        json.dump(result, f)
    sys.stdout.flush()
    os._exit(0)  # skip interpreter teardown: threads or atexit hooks left by student code


if __name__ == "__main__":
    main(*sys.argv[1:5])

"""The registry of checks: what each check is, and the helpers checks use to judge.

A check is a function without arguments, registered with :func:`check`. It never imports
the student's code itself: it sends *probes* there with :func:`run` (small functions that
import the student's code, call it on the check's inputs and return plain data), then
compares what came back with the expected values it computes itself, raising
:class:`CheckFailed` (or ``AssertionError``) with a message saying what was expected and
what came. When graded, probes run in the student's own sandboxed process and the check in
the grader's (see :mod:`grading.student`). Public checks live in
``grading/checks/<practical>.py``; the hidden ones, which only grading runs, beside them in a
package of their own.
"""
import importlib
import marshal
import pickle
import pkgutil
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import grading

PRACTICALS = ("tp3a_transfer", "tp3b_visualization", "tp3c_domain_adaptation", "tp3d_gan")

_REGISTRY: dict[str, "Check"] = {}


class CheckFailed(AssertionError):
    """The student's code ran but gave a wrong answer; the message says expected vs got."""


class StudentError(Exception):
    """The student's code raised, crashed or misbehaved in its own process."""

    def __init__(self, status: str, message: str, where: str = ""):
        super().__init__(message)
        self.status, self.message, self.where = status, message, where


# Set by grading.worker while a check is graded: the student's process. None: the probes run
# in this process (calibration, tests), with the same globals and the same plain-data reply.
student = None


def run(probe: Callable, *args):
    """``probe(*args)`` run where the student's code is, and what it returned.

    ``probe`` is a function of the check's module that uses nothing but its arguments, its
    own imports and the names ``torch``, ``nn``, ``F``, ``math``, ``copy``: only its compiled
    code travels. Its arguments are pickled (tensors, torch's own modules, numbers); it must
    return numbers, strings, tensors, lists, tuples or dicts (convert NumPy arrays).
    """
    from grading.student import decode, encode, make_probe

    code = probe.__code__
    if code.co_freevars:  # the grader's mistake, not the student's: say so here
        raise TypeError(f"probe {code.co_name} uses names of the function around it: pass them as arguments")
    if student is not None:
        return student.call(pickle.dumps((marshal.dumps(code), probe.__defaults__, args)))
    return decode(encode(make_probe(code, probe.__defaults__)(*args)))


@dataclass(frozen=True)
class Check:
    id: str
    title: str
    points: float
    practical: str
    hidden: bool
    timeout: float
    module: str
    name: str
    func: Callable = field(repr=False, compare=False)
    question: int = 0  # the handout's question the check belongs to (0: the practice before them)
    tests: tuple = ()  # the student functions it tests ("Class.method"), named in its messages
    order: int = 0  # registration order, which breaks ties between checks of one question
    partial: bool = False  # points in proportion to the cases passed (see :func:`case`)


def check(id: str, title: str, points: float = 1.0, timeout: float = 60.0, question: int = 0,
          tests: tuple = (), partial: bool = False):
    """Register the decorated function as a check.

    The practical and the visibility come from the module: ``grading.checks.tp3d_gan``
    holds the public checks of ``tp3d_gan``, its namesake in the hidden package the hidden ones.
    ``question``: the handout's question number, which orders the checks as the handout
    does; ``tests``: the student functions the check exercises (an exception from the
    student's code is reported as raised while testing them).
    """

    def register(func):
        parts = func.__module__.split(".")
        if len(parts) != 3 or parts[1] not in ("checks", "hidden") or parts[2] not in PRACTICALS:
            raise ValueError(f"check {id!r} must live in a module named after its practical, in the "
                             f"package of public or of hidden checks, not {func.__module__}")
        if id in _REGISTRY and _REGISTRY[id].func is not func:
            raise ValueError(f"duplicate check id {id!r}")
        if not tests:
            raise ValueError(f"check {id!r} must name the student functions it tests")
        order = _REGISTRY[id].order if id in _REGISTRY else len(_REGISTRY)
        _REGISTRY[id] = Check(id=id, title=title, points=float(points), practical=parts[2],
                              hidden=parts[1] == "hidden", timeout=float(timeout),
                              module=func.__module__, name=func.__name__, func=func,
                              question=int(question), tests=tuple(tests), order=order,
                              partial=bool(partial))
        return func

    return register


def load_checks() -> dict[str, Check]:
    """Import every check module present (hidden ones only where they exist)."""
    root = Path(grading.__file__).parent
    for kind in ("checks", "hidden"):
        folder = root / kind
        if not folder.is_dir():
            continue
        for info in pkgutil.iter_modules([str(folder)]):
            importlib.import_module(f"grading.{kind}.{info.name}")
    return dict(_REGISTRY)


def select(target: str = "all", include_hidden: bool = True) -> list[Check]:
    """The checks of one practical (or ``all``), in the order of the handouts' questions."""
    checks = load_checks().values()
    if target != "all":
        target = resolve_practical(target)
    chosen = [c for c in checks if (target == "all" or c.practical == target)
              and (include_hidden or not c.hidden)]
    return sorted(chosen, key=lambda c: (PRACTICALS.index(c.practical), c.question, c.hidden,
                                         c.module, c.order))


def by_practical(checks: list[Check]) -> dict[str, list[Check]]:
    """The checks grouped by practical, in their order: each group is graded in one session."""
    groups: dict[str, list[Check]] = {}
    for c in checks:
        groups.setdefault(c.practical, []).append(c)
    return groups


def resolve_practical(name: str) -> str:
    """Accept ``tp3d_gan``, ``tp3d``, ``3d`` or ``tp3d_gan/``."""
    name = name.strip("/").lower()
    for p in PRACTICALS:
        if name in (p, p.split("_")[0], p.split("_")[0][2:]):
            return p
    raise SystemExit(f"unknown practical {name!r}; choose one of: all, {', '.join(PRACTICALS)}")


# ----------------------------------------------------------------------------------------
# Cases: the independent parts of a check, each passed or failed on its own.

_cases: list | None = None  # while a check runs in grading.worker: (name, failure or None) per case


def start_cases() -> None:
    """Before a check runs: record its cases from now on."""
    global _cases
    _cases = []


def take_cases() -> list[tuple[str, str | None]]:
    """After a check ran: its cases, ``(name, why it failed or None)``, and stop recording."""
    global _cases
    cases, _cases = _cases or [], None
    return cases


@contextmanager
def case(name: str):
    """One case of a check: a wrong answer in the block fails this case only, and the check
    goes on with the next; what the student's code raised, crashed on or timed out on still
    ends the whole check (it then scores 0). Outside grading (no recording), a wrong answer
    fails the check at once, as without cases."""
    if _cases is None:
        yield
        return
    try:
        yield
    except StudentError:
        raise
    except (CheckFailed, AssertionError) as e:
        _cases.append((name, str(e) or type(e).__name__))
    except Exception as e:  # what the code returned did not fit the check (a string for a count, ...)
        _cases.append((name, f"the check could not use what the code returned ({type(e).__name__}: {str(e)[:500]})"))
    else:
        _cases.append((name, None))


# ----------------------------------------------------------------------------------------
# Helpers for writing checks: each failure says what was expected and what came.

def expect(condition: bool, message: str) -> None:
    if not condition:
        raise CheckFailed(message)


def expect_equal(actual, expected, what: str) -> None:
    if actual != expected:
        raise CheckFailed(f"{what}: expected {expected!r}, got {actual!r}")


def expect_shape(tensor, shape: tuple, what: str) -> None:
    got = tuple(getattr(tensor, "shape", ()))
    if got != tuple(shape):
        raise CheckFailed(f"{what}: expected shape {tuple(shape)}, got {got} "
                          f"({type(tensor).__name__})")


def expect_close(actual, expected, what: str, atol: float = 1e-6, rtol: float = 1e-5) -> None:
    """Compare numbers or tensors; report the largest difference on failure."""
    import torch

    a = torch.as_tensor(actual, dtype=torch.float64)
    e = torch.as_tensor(expected, dtype=torch.float64)
    if a.shape != e.shape:
        raise CheckFailed(f"{what}: expected shape {tuple(e.shape)}, got {tuple(a.shape)}")
    if not torch.isfinite(a).all():
        raise CheckFailed(f"{what}: got non-finite values (NaN or inf)")
    if not torch.allclose(a, e, atol=atol, rtol=rtol):
        diff = (a - e).abs().max().item()
        if a.numel() == 1:
            raise CheckFailed(f"{what}: expected {e.item():.6g}, got {a.item():.6g}")
        raise CheckFailed(f"{what}: largest difference {diff:.3g} (tolerance {atol:g})")

"""Prove that every check can fail: it passes on the reference solution, and fails on the
released stub and on each realistic wrong implementation (mutant) that names it."""
import shutil
import tempfile
from pathlib import Path

from tqdm import tqdm

from grading.mutants import MUTANTS, Mutant
from grading.registry import by_practical, select
from grading.release import REPO, release
from grading.runner import grader_copy, run_checks


def apply_mutant(mutant: Mutant, tree: Path) -> None:
    path = tree / mutant.path
    text = path.read_text()
    if text.count(mutant.old) != 1:
        raise SystemExit(f"mutant {mutant.name!r}: the snippet to replace occurs "
                         f"{text.count(mutant.old)} times in {mutant.path}, not once")
    path.write_text(text.replace(mutant.old, mutant.new))


def reference_copy(dest: Path) -> Path:
    shutil.copytree(REPO, dest, ignore=shutil.ignore_patterns(
        ".git", ".venv", "results", "data", "__pycache__", "tests", ".pytest_cache"))
    return dest


def selftest(target: str = "all") -> tuple[bool, list[str]]:
    """Run the catalogue; return (all good, report lines)."""
    checks = select(target, include_hidden=True)
    ids = {c.id for c in checks}
    unknown = [(m.name, k) for m in MUTANTS for k in m.kills if k not in ids and target == "all"]
    lines, ok = [], not unknown
    for name, k in unknown:
        lines.append(f"mutant {name!r} names unknown check {k}")
    with tempfile.TemporaryDirectory(prefix="rdfia-selftest-") as tmp:
        tmp = Path(tmp)
        stub = tmp / "release"
        release(stub)
        grader = grader_copy(tmp / "grader")  # grading alone: trees cannot fall back to REPO
        mutant_trees = {}
        for i, m in enumerate(MUTANTS):
            if ids & set(m.kills):
                tree = reference_copy(tmp / f"mutant{i}")
                apply_mutant(m, tree)
                mutant_trees[m] = tree
        # One session per tree and practical: the reference, the stub, each mutant on the
        # checks that must catch it.
        runs = [("reference", REPO, checks), ("stub", stub, checks)]
        runs += [(m, tree, [c for c in checks if c.id in m.kills]) for m, tree in mutant_trees.items()]
        got = {}
        with tqdm(total=sum(len(cs) for _, _, cs in runs), desc="selftest", unit="check") as bar:
            for who, tree, chosen in runs:
                for mine in by_practical(chosen).values():
                    for r in run_checks(mine, tree, grader, progress=lambda r: bar.update()):
                        got[who, r["id"]] = r
        for c in checks:
            ref, on_stub = got["reference", c.id], got["stub", c.id]
            killers = [m for m in mutant_trees if c.id in m.kills]
            caught = [(m, got[m, c.id]) for m in killers]
            good = (ref["status"] == "passed" and on_stub["status"] != "passed" and killers
                    and all(r["status"] != "passed" for _, r in caught))
            ok &= bool(good)
            lines.append(f"[{'ok' if good else 'BAD'}] {c.id}: reference {ref['status']} "
                         f"({ref['seconds']}s), stub {on_stub['status']}, mutants "
                         f"{sum(r['status'] != 'passed' for _, r in caught)}/{len(killers)} caught")
            if ref["status"] != "passed":
                lines.append(f"      reference: {ref['message']}")
            if not killers:
                lines.append("      no mutant names this check: add one to grading/mutants.py")
            for m, r in caught:
                if r["status"] == "passed":
                    lines.append(f"      mutant not caught: {m.name}")
    return ok, lines

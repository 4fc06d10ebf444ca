"""Prove that every check can fail, and that full public marks mean every function is written.

Each check passes on the reference solution and on every accepted variant of its practical
(other correct ways, the handouts' among them), scores 0 on the released stub, and loses
points on each mutant that names it (a partial-credit check may keep some of its points on
a mutant that passes some of its cases: it still catches the mutant if it loses any); and
for every function a student writes, the reference with that one function left as its stub
fails at least one of the public checks that say they test it.
"""
import shutil
import tempfile
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from tqdm import tqdm

from grading.mutants import MUTANTS, VARIANTS, Mutant, Variant
from grading.registry import by_practical, select
from grading.release import REPO, all_regions, release, strip_solutions
from grading.runner import grader_copy, run_checks


def _replace(path: Path, old: str, new: str, name: str) -> None:
    text = path.read_text()
    if text.count(old) != 1:
        raise SystemExit(f"{name!r}: the snippet to replace occurs {text.count(old)} times in {path.name}, not once")
    path.write_text(text.replace(old, new))


def apply_mutant(mutant: Mutant | Variant, tree: Path) -> None:
    edits = mutant.edits if isinstance(mutant, Variant) else ((mutant.old, mutant.new),)
    for old, new in edits:
        _replace(tree / mutant.path, old, new, mutant.name)


def reference_copy(dest: Path) -> Path:
    shutil.copytree(REPO, dest, ignore=shutil.ignore_patterns(
        ".git", ".venv", "results", "data", "__pycache__", "tests", ".pytest_cache", "docs", "bench"))
    return dest


def _unwritten(region, tree: Path) -> None:
    path = tree / region.path
    path.write_text(strip_solutions(path.read_text(), region.path, only=region.function))


def selftest(target: str = "all", workers: int = 2) -> tuple[bool, list[str]]:
    """Run the catalogue; return (all good, report lines). ``workers`` sessions run at once."""
    checks = select(target, include_hidden=True)
    ids = {c.id for c in checks}
    practicals = {c.practical for c in checks}
    unknown = [(m.name, k) for m in MUTANTS for k in m.kills if k not in ids and target == "all"]
    lines, ok = [], not unknown
    lines += [f"mutant {name!r} names unknown check {k}" for name, k in unknown]
    regions = [r for r in all_regions(REPO) if r.path.split("/")[0] in practicals]
    public = [c for c in checks if not c.hidden]
    untested = [r for r in regions if not any(r.function in c.tests for c in public)]
    ok &= not untested
    lines += [f"[BAD] {r.function} ({r.path}): no public check names it in its tests" for r in untested]
    with tempfile.TemporaryDirectory(prefix="rdfia-selftest-") as tmp:
        tmp = Path(tmp)
        stub = tmp / "release"
        release(stub)
        grader = grader_copy(tmp / "grader")  # grading alone: trees cannot fall back to REPO
        runs = [("reference", REPO, checks), ("stub", stub, checks)]
        for i, m in enumerate(MUTANTS):
            if ids & set(m.kills):
                tree = reference_copy(tmp / f"mutant{i}")
                apply_mutant(m, tree)
                runs.append((m, tree, [c for c in checks if c.id in m.kills]))
        for i, v in enumerate(VARIANTS):
            if v.path.split("/")[0] in practicals:
                tree = reference_copy(tmp / f"variant{i}")
                apply_mutant(v, tree)
                runs.append((v, tree, [c for c in checks if c.practical == v.path.split("/")[0]]))
        for i, r in enumerate(regions):
            tree = reference_copy(tmp / f"unwritten{i}")
            _unwritten(r, tree)
            runs.append((r, tree, [c for c in public if r.function in c.tests]))
        sessions = [(who, tree, mine) for who, tree, chosen in runs for mine in by_practical(chosen).values()]
        got = {}
        with tqdm(total=sum(len(s[2]) for s in sessions), desc="selftest", unit="check") as bar, \
                ThreadPoolExecutor(max_workers=workers) as pool:
            done = pool.map(lambda s: (s[0], run_checks(s[2], s[1], grader, progress=lambda r: bar.update())), sessions)
            for who, results in done:
                for result in results:
                    got[_key(who), result["id"]] = result
        ok &= _report(checks, runs, got, lines)
    return ok, lines


def _key(who) -> str:
    if isinstance(who, str):
        return who
    return who.function + " " + who.path if hasattr(who, "function") else who.name


def _loses(check, result) -> bool:
    """A mutant is caught when the check takes some of its points: all of them, or, for a
    partial-credit check, those of the cases it fails."""
    return result["status"] != "passed" and result["score"] < check.points


def _report(checks, runs, got, lines) -> bool:
    ok = True
    mutants = [m for m, _, _ in runs if isinstance(m, Mutant)]
    variants = [(v, chosen) for v, _, chosen in runs if isinstance(v, Variant)]
    for c in checks:
        ref, on_stub = got["reference", c.id], got["stub", c.id]
        killers = [m for m in mutants if c.id in m.kills]
        caught = [(m, got[_key(m), c.id]) for m in killers]
        accepted = [(v, got[_key(v), c.id]) for v, chosen in variants if c in chosen]
        good = (ref["status"] == "passed" and on_stub["status"] != "passed" and on_stub["score"] == 0 and killers
                and all(_loses(c, r) for _, r in caught)
                and all(r["status"] == "passed" for _, r in accepted))
        ok &= bool(good)
        partly = [f"{r['score']:g}/{c.points:g}" for _, r in caught if _loses(c, r) and r["score"] > 0]
        lines.append(f"[{'ok' if good else 'BAD'}] {c.id}: reference {ref['status']} ({ref['seconds']}s), stub "
                     f"{on_stub['status']} ({on_stub['score']:g}), mutants {sum(_loses(c, r) for _, r in caught)}"
                     f"/{len(killers)} caught" + (f" (partial credit kept: {', '.join(partly)})" if partly else "")
                     + f", variants {sum(r['status'] == 'passed' for _, r in accepted)}/{len(accepted)} passed")
        if ref["status"] != "passed":
            lines.append(f"      reference: {ref['message']}")
        if not killers:
            lines.append("      no mutant names this check: add one to grading/mutants.py")
        lines += [f"      mutant not caught: {m.name}" for m, r in caught if not _loses(c, r)]
        lines += [f"      variant refused: {v.name}: {r['message']}" for v, r in accepted if r["status"] != "passed"]
    for r, _, chosen in runs:
        if hasattr(r, "function"):
            failed = [c.id for c in chosen if got[_key(r), c.id]["status"] != "passed"]
            good = bool(failed)
            ok &= good
            lines.append(f"[{'ok' if good else 'BAD'}] {r.function} left unwritten: "
                         + (f"fails {', '.join(failed)}" if good else
                            f"every check that tests it passes ({', '.join(c.id for c in chosen) or 'none'})"))
    return ok


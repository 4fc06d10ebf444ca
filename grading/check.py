"""The student's side of grading: the public checks on a working copy, and the hand-in zip.

``python -m grading check PRACTICAL`` runs the same public checks as the grader, in the same
two-process sandbox (:mod:`grading.runner`), and prints them in the order of the handout's
questions. ``python -m grading handin`` zips what a student hands in: the files listed in
``MANIFEST.json``, ``ANSWERS.md`` and the notebooks, and says what is still unwritten.
"""
import json
import re
import zipfile
from pathlib import Path

from tqdm import tqdm

from grading.registry import PRACTICALS, by_practical, resolve_practical, select
from grading.runner import run_checks

ROOT = Path(__file__).resolve().parents[1]
MARK = {"passed": "PASS", "failed": "FAIL", "timeout": "TIME", "crashed": "CRSH", "error": "ERR "}
ANSWERS = "ANSWERS.md"
UNANSWERED = "_(your answer)_"  # the placeholder that ANSWERS.md holds under each question
STUB = re.compile(r'raise NotImplementedError\("([\w.<>]+) \(')


def summary(results: list[dict]) -> dict:
    return {"score": sum(r["score"] for r in results),
            "max_score": sum(r["points"] for r in results),
            "passed": sum(r["status"] == "passed" for r in results),
            "checks": len(results)}


def format_results(results: list[dict], show_hidden_details: bool = True) -> str:
    """One line per check (status, points, question, title), then what went wrong."""
    lines = []
    for r in results:
        tag = " (hidden)" if r["hidden"] else ""
        question = f"Q{r['question']}" if r.get("question") else "  "
        lines.append(f"[{MARK[r['status']]}] {r['score']:g}/{r['points']:g}  {question:3s} {r['id']}: "
                     f"{r['title']}{tag}")
        if r["status"] != "passed" and (show_hidden_details or not r["hidden"]):
            lines.append(f"        {r['message']}" + (f"  [{r['where']}]" if r.get("where") else ""))
    s = summary(results)
    lines.append(f"score: {s['score']:g}/{s['max_score']:g} ({s['passed']}/{s['checks']} checks passed)")
    return "\n".join(lines)


def check_working_copy(target: str, include_hidden: bool = False, root: Path = ROOT) -> list[dict]:
    """Run the checks of ``target`` on the code in ``root`` (the student's own copy)."""
    checks = select(target, include_hidden=include_hidden)
    results = []
    with tqdm(total=len(checks), desc="checks", leave=False) as bar:
        for mine in by_practical(checks).values():
            results += run_checks(mine, root, root, threads=2, progress=lambda r: bar.update())
    return results


def unwritten(text: str) -> list[str]:
    """The functions of a student file that still raise their stub's NotImplementedError."""
    return STUB.findall(text)


def notebook_answers(notebook: Path) -> list[tuple[str, str]]:
    """``(question, answer)`` for each answer cell of a notebook that holds an answer (none
    if it is not a notebook)."""
    try:
        cells = json.loads(notebook.read_text())["cells"]
    except (OSError, ValueError, KeyError, TypeError):
        return []
    found = []
    for cell in cells:
        source = cell.get("source", "")
        source = "".join(source) if isinstance(source, list) else str(source)
        key = cell.get("metadata", {}).get("rdfia", {}).get("answer")
        if key and source.strip() and UNANSWERED not in source:
            found.append((str(key), source.strip()))
    return found


def handin(target: str = "all", root: Path = ROOT, out: Path | None = None) -> tuple[Path, list[str]]:
    """Zip the student files of ``target``, ``ANSWERS.md`` and the notebooks whose answer
    cells hold answers, at their paths in the release; return the zip and the warnings
    (functions not written yet, questions without an answer)."""
    manifest_path = root / "MANIFEST.json"
    if not manifest_path.is_file():
        raise SystemExit(f"no MANIFEST.json in {root}: run this in the student version of the practicals")
    manifest = json.loads(manifest_path.read_text())
    practicals = PRACTICALS if target == "all" else (resolve_practical(target),)
    files = [f for f in manifest["student_files"] if f.split("/")[0] in practicals]
    files += [ANSWERS] + [f for f in manifest.get("notebooks", [])
                          if Path(f).stem in practicals and notebook_answers(root / f)]
    out = Path(out or root / ("handin.zip" if target == "all" else f"handin_{practicals[0]}.zip"))
    warnings = []
    with zipfile.ZipFile(out, "w", compression=zipfile.ZIP_DEFLATED) as z:
        for rel in files:
            path = root / rel
            if not path.is_file():
                if rel != ANSWERS and not rel.endswith(".ipynb"):
                    warnings.append(f"{rel} is missing")
                continue
            z.write(path, rel)
            text = path.read_text(errors="replace")
            if rel.endswith(".py") and unwritten(text):
                warnings.append(f"{rel}: not written yet: {', '.join(unwritten(text))}")
    if (root / ANSWERS).is_file():
        text = (root / ANSWERS).read_text()
        sections = [s for s in re.split(r"^## ", text, flags=re.M)[1:] if s.startswith(practicals)]
        open_ = sum(s.count(UNANSWERED) for s in sections)
        if open_:
            warnings.append(f"{ANSWERS}: {open_} questions still without an answer")
    return out, warnings

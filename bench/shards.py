"""``python -m bench shards``: a class of copies of one practical's reference files graded on
this machine as one shard, then as two shards side by side (as two tasks of a job array
would), each followed by the merge: wall time and CPU seconds (user + system, of every
process) per student, the speedup, what a shard costs before it grades anyone, and the
merge's cost; then what that makes of 300 and 1,000 students on a cluster.
"""
import math
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from common.errors import UserError
from common.results import markdown_table, save_json

REPO = Path(__file__).resolve().parents[1]


def _timed(commands: list[list[str]]) -> tuple[float, float]:
    """Run ``commands`` side by side; their wall seconds and the CPU seconds of all their processes."""
    before, start = resource.getrusage(resource.RUSAGE_CHILDREN), time.perf_counter()
    running = [subprocess.Popen(c, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True) for c in commands]
    errors = [p.communicate()[1] for p in running]
    wall, after = time.perf_counter() - start, resource.getrusage(resource.RUSAGE_CHILDREN)
    for p, err in zip(running, errors):
        if p.returncode:
            raise UserError(f"bench shards: {' '.join(p.args)} failed: {err.strip().splitlines()[-1:]}")
    return wall, (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)


def _class(root: Path, practical: str, students: int) -> Path:
    """``students`` copies of the practical's reference student files, one folder each."""
    from grading.registry import PRACTICALS
    from grading.release import release

    folder = next((p for p in PRACTICALS if p.startswith(practical)), None)
    if folder is None:
        raise UserError(f"bench shards: no practical {practical!r} (one of {', '.join(PRACTICALS)})")
    files = [f for f in release(root / "release")["student_files"] if f.split("/")[0] == folder]
    for k in range(students):
        for rel in files:
            (root / "subs" / f"student{k:03d}" / rel).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy(REPO / rel, root / "subs" / f"student{k:03d}" / rel)
    return root / "subs"


def _graded(subs: Path, out: Path, practical: str, shards: int) -> dict:
    """The class graded as ``shards`` shards run together, then merged: times of both steps."""
    grade = [sys.executable, "-m", "grading", "grade", str(subs), "--out", str(out), "--practical", practical]
    wall, cpu = _timed([grade + ["--shard", f"{k}/{shards}"] for k in range(1, shards + 1)])
    merge_wall, merge_cpu = _timed([grade + ["--merge"]])
    return {"wall": wall, "cpu": cpu, "merge_wall": merge_wall, "merge_cpu": merge_cpu,
            "gradebook": (out / "gradebook.csv").read_text()}


def projection(students: int, tasks: int, cores: int, shard_start: float, merge_start: float,
               merge_per_student: float) -> float:
    """Minutes from the tasks' start to the gradebook, every task started at once on a node
    of its own as fast as this one: a shard's start, its share of the class on ``cores``
    workers at the full grading's seconds per submission, then the merge (one core)."""
    from grading.cluster import SECONDS_PER_SUBMISSION

    per_worker = math.ceil(students / (tasks * cores))
    merge = merge_start + students * merge_per_student
    return (shard_start + per_worker * SECONDS_PER_SUBMISSION + merge) / 60


def bench_shards(args) -> dict:
    os.environ["RDFIA_DATA_DIR"] = str(args.data_dir)
    load = os.getloadavg()
    with tempfile.TemporaryDirectory(prefix="rdfia-bench-shards-") as tmp:
        tmp = Path(tmp)
        subs = _class(tmp, args.practical, args.students)
        warm = tmp / "warm"  # one student first, untimed: the file cache is then as warm for both runs
        shutil.copytree(subs / "student000", warm / "student000")
        alone = _graded(warm, tmp / "out-warm", args.practical, 1)
        runs = {n: _graded(subs, tmp / f"out{n}", args.practical, n) for n in (1, 2)}
    if runs[1]["gradebook"] != runs[2]["gradebook"]:
        raise UserError("bench shards: two shards gave another gradebook than one")
    n, one, two = args.students, runs[1], runs[2]
    shard_start = two["cpu"] - one["cpu"]  # the second shard's own release, grader copy and imports
    # The merge's cost, fixed and per student: from its CPU time for one student and for the class.
    merge_per_student = max(one["merge_cpu"] - alone["merge_cpu"], 0) / max(n - 1, 1)
    merge_start = alone["merge_cpu"] - merge_per_student
    rows = {"practical": args.practical, "students": n, "cpus": os.cpu_count(),
            "load average at the start (1, 5, 15 min)": ", ".join(f"{x:.2f}" for x in load),
            "wall seconds per student, 1 shard": round(one["wall"] / n, 1),
            "wall seconds per student, 2 shards side by side": round(two["wall"] / n, 1),
            "speedup from 1 to 2 shards": round(one["wall"] / two["wall"], 2),
            "CPU seconds per student, 1 shard": round(one["cpu"] / n, 1),
            "CPU seconds per student, 2 shards": round(two["cpu"] / n, 1),
            "CPU seconds a shard costs before grading anyone": round(shard_start, 1),
            "merge of the class: wall seconds, CPU seconds": f"{one['merge_wall']:.1f}, {one['merge_cpu']:.1f}",
            "merge: CPU seconds before the first student, then per student":
                f"{merge_start:.1f}, {merge_per_student:.2f}",
            "load average at the end (1, 5, 15 min)": ", ".join(f"{x:.2f}" for x in os.getloadavg())}
    for students, tasks, cores in ((300, 30, 2), (300, 75, 4), (1000, 100, 2), (1000, 125, 8)):
        rows[f"projected minutes, {students} students, {tasks} tasks x {cores} cores"] = round(
            projection(students, tasks, cores, shard_start, merge_start, merge_per_student), 1)
    table = markdown_table(["measure", "value"], [[k, v] for k, v in rows.items()])
    print(table, end="")
    save_json(rows, args.out_dir / "shards" / "bench_shards.json")
    (args.out_dir / "shards" / "bench_shards.md").write_text(table)
    return rows

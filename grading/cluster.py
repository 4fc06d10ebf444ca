"""Grading a class on a cluster: the class cut into fixed shards graded as a job array, then
one merge that writes the gradebook, the exports and the nbgrader database.

``grade --shard K/N`` grades the K-th of N slices of the students (sorted by name, dealt
round-robin, so that every shard of a batch computes the same slices whatever order the file
system lists the hand-ins in) into a shared output folder; each student's files are written
by one shard only, and a shard writes no gradebook. ``grade --merge`` then grades nothing:
it checks that every student's report is there with the fingerprint of the submission and
grader of now, refuses naming those that are not, and writes the class's files once.
``python -m grading cluster slurm|pbs`` writes (and with ``--submit`` submits) the job array
over the shards and the merge job that waits for it. PBS means PBS Professional / OpenPBS
(``#PBS -J``, ``$PBS_ARRAY_INDEX``), not Torque (``-t``, ``$PBS_ARRAYID``).
Instructor-only: the student release leaves this module out.
"""
import argparse
import math
import os
import shlex
import subprocess
from pathlib import Path

from common.errors import UserError
from grading.release import REPO
from grading.untrusted import plain

# Seconds of one core per submission, every practical graded: 114 s measured with the checks
# of November 2026, plus 45 s for 3-c's hidden short training since (docs/benchmarks.md).
SECONDS_PER_SUBMISSION = 160
SETUP_SECONDS = 600  # a task's start: the release and grader copy built, torch imported, the file cache cold
SESSION_MB = 1024  # a worker's processes besides its check's own limit: torch and NumPy take about 900 MB
BATCH_MB = 1024  # the batch's own process (the release, the fingerprints)
MERGE_MINUTES = 30  # the merge reads every hand-in once for its fingerprint and writes the class's files
SCHEDULERS = ("slurm", "pbs")


def shard_spec(text: str) -> tuple[int, int]:
    """``"K/N"`` as (K, N), 1 <= K <= N; an argparse type, so a bad value is one clear error."""
    k, sep, n = text.partition("/")
    if not sep or not k.strip().isdigit() or not n.strip().isdigit():
        raise argparse.ArgumentTypeError(f"{text!r} is not K/N (two whole numbers, e.g. 2/8)")
    k, n = int(k), int(n)
    if n < 1 or not 1 <= k <= n:
        raise argparse.ArgumentTypeError(f"{text!r}: the shard K must be between 1 and the number of shards N")
    return k, n


def shard_of(handed: list, k: int, n: int) -> list:
    """The K-th of N slices of ``handed`` (hand-ins with a ``student``): sorted by name, the
    i-th student goes to shard i mod N + 1, so the slices differ by at most one student and
    do not depend on the order the hand-ins were listed in."""
    ordered = sorted(handed, key=lambda h: h.student)
    return [h for i, h in enumerate(ordered) if i % n == k - 1]


def refuse_ungraded(pending: list[str], out: Path) -> None:
    """The merge's refusal: a :class:`UserError` naming each student of ``pending`` (those
    without a report whose fingerprint matches), the missing apart from the stale."""
    if not pending:
        return
    missing = sorted(s for s in pending if not (out / "students" / s / "report.json").is_file())
    stale = sorted(set(pending) - set(missing))
    why = ([f"no report for {', '.join(missing)}"] if missing else []) + (
        [f"a stale report (the submission, the grader, the checks or the limits changed since) for "
         f"{', '.join(stale)}"] if stale else [])
    raise UserError(f"merge: {len(pending)} students not graded: {'; '.join(why)}. Nothing was graded or "
                    "written: grade their shards again (or run grade without --merge), with the same "
                    "--practical, --check and limits as the merge")


# ----------------------------------------------------------------------------------------
# The job scripts

def grade_argv(args, merge: bool) -> list[str]:
    """``python -m grading grade``'s arguments as the scripts run them: the options of
    ``args`` that change a grade (the fingerprint), with the shards' or the merge's own."""
    argv = [str(args.submissions.resolve()), "--out", str(args.out.resolve()), "--practical", args.practical,
            "--memory-mb", str(args.memory_mb), "--output-mb", str(args.output_mb), "--sandbox", args.sandbox]
    for check in args.only or []:
        argv += ["--check", check]
    if merge:
        argv.append("--merge")
        if args.nbgrader_db:
            argv += ["--nbgrader-db", str(args.nbgrader_db.resolve())]
        if args.assignment:
            argv += ["--assignment", args.assignment]
        return argv
    argv += ["--workers", str(args.workers)]
    for student in args.students or []:
        argv += ["--student", student]
    return argv + (["--regrade"] if args.regrade else [])


def hms(seconds: float) -> str:
    """``HH:MM:SS``, as both schedulers read a time limit."""
    minutes = math.ceil(seconds / 60)
    return f"{minutes // 60:02d}:{minutes % 60:02d}:00"


def resources(args, students: int) -> dict:
    """Each task's cores, memory (MB) and time limit, and the merge's: from the options, else
    estimated from the largest shard, the workers and :data:`SECONDS_PER_SUBMISSION` (twice
    that, for a slower node or a loaded file system)."""
    largest = math.ceil(students / args.shards)
    seconds = SETUP_SECONDS + 2 * math.ceil(largest / args.workers) * SECONDS_PER_SUBMISSION
    return {"cpus": args.workers,
            "mem_mb": args.mem_mb or args.workers * (args.memory_mb + SESSION_MB) + BATCH_MB,
            "time": hms(60 * args.time_limit if args.time_limit else seconds),
            "merge_mem_mb": 2 * BATCH_MB + SESSION_MB, "merge_time": hms(60 * MERGE_MINUTES)}


def _environment() -> list[str]:
    """The script's setup: run from this checkout, with the data and weights folders of now."""
    lines = ["set -euo pipefail", f"cd {shlex.quote(str(REPO))}"]
    for name in ("RDFIA_DATA_DIR", "TORCH_HOME"):
        if os.environ.get(name):
            lines.append(f"export {name}={shlex.quote(str(Path(os.environ[name]).resolve()))}")
    return lines


def _comment(what: str, args) -> str:
    """The script's first comment: what the job does, its paths on one line whatever they hold."""
    return plain(f"# {what} (python -m grading cluster): {args.submissions} into {args.out}", 1000, True)


def _command(python: str, argv: list[str], shard: str = "") -> str:
    words = " ".join(shlex.quote(a) for a in argv)
    return f"exec {shlex.quote(python)} -m grading grade {words}" + (f' --shard "{shard}"' if shard else "")


def slurm_scripts(args, res: dict, logs: Path) -> tuple[str, str]:
    """The Slurm job array (one task per shard) and the merge job, as sbatch reads them."""
    extra = ([f"#SBATCH --partition={args.partition}"] if args.partition else []) + (
        [f"#SBATCH --account={args.account}"] if args.account else [])
    head = ["#!/bin/bash", "#SBATCH --nodes=1", "#SBATCH --ntasks=1", *extra]
    grade = [*head[:1], _comment("One shard of the class", args),
             *head[1:], "#SBATCH --job-name=rdfia-grade", f"#SBATCH --array=1-{args.shards}",
             f"#SBATCH --cpus-per-task={res['cpus']}", f"#SBATCH --mem={res['mem_mb']}M",
             f"#SBATCH --time={res['time']}", f"#SBATCH --output={logs}/grade-%A_%a.out", *_environment(),
             _command(args.python, grade_argv(args, False), f"$SLURM_ARRAY_TASK_ID/{args.shards}")]
    merge = [*head[:1], _comment("The merge, once every shard has ended", args),
             *head[1:], "#SBATCH --job-name=rdfia-merge", "#SBATCH --cpus-per-task=1",
             f"#SBATCH --mem={res['merge_mem_mb']}M", f"#SBATCH --time={res['merge_time']}",
             f"#SBATCH --output={logs}/merge-%j.out", *_environment(), _command(args.python, grade_argv(args, True))]
    return "\n".join(grade) + "\n", "\n".join(merge) + "\n"


def pbs_scripts(args, res: dict, logs: Path) -> tuple[str, str]:
    """The PBS Professional job array (``-J``, one subjob per shard; a plain job for one
    shard) and the merge job, as qsub reads them; output and errors joined, into ``logs``."""
    extra = ([f"#PBS -q {args.partition}"] if args.partition else []) + (
        [f"#PBS -A {args.account}"] if args.account else [])
    array = [f"#PBS -J 1-{args.shards}"] if args.shards > 1 else []
    index = "$PBS_ARRAY_INDEX" if args.shards > 1 else "1"
    grade = ["#!/bin/bash", _comment("One shard of the class", args),
             "#PBS -N rdfia-grade", *array, f"#PBS -l select=1:ncpus={res['cpus']}:mem={res['mem_mb']}mb",
             f"#PBS -l walltime={res['time']}", "#PBS -j oe", f"#PBS -o {logs}/", *extra, *_environment(),
             _command(args.python, grade_argv(args, False), f"{index}/{args.shards}")]
    merge = ["#!/bin/bash", _comment("The merge, once every shard has ended", args),
             "#PBS -N rdfia-merge", f"#PBS -l select=1:ncpus=1:mem={res['merge_mem_mb']}mb",
             f"#PBS -l walltime={res['merge_time']}", "#PBS -j oe", f"#PBS -o {logs}/", *extra, *_environment(),
             _command(args.python, grade_argv(args, True))]
    return "\n".join(grade) + "\n", "\n".join(merge) + "\n"


def write_scripts(args, students: int) -> tuple[Path, Path]:
    """Write the array's and the merge's scripts into ``args.scripts`` (default OUT/cluster),
    with a ``logs`` folder beside them, which the schedulers do not create."""
    folder = (args.scripts or args.out / "cluster").resolve()
    (folder / "logs").mkdir(parents=True, exist_ok=True)
    res = resources(args, students)
    texts = (slurm_scripts if args.scheduler == "slurm" else pbs_scripts)(args, res, folder / "logs")
    paths = folder / f"grade.{args.scheduler}", folder / f"merge.{args.scheduler}"
    for path, text in zip(paths, texts):
        path.write_text(text)
        path.chmod(0o755)
    return paths


def _run(argv: list[str]) -> str:
    """A scheduler command's output; its failure is a :class:`UserError` with its message."""
    try:
        done = subprocess.run(argv, capture_output=True, text=True, check=False)
    except FileNotFoundError:
        raise UserError(f"cluster: {argv[0]} not found: submit from a machine of the cluster") from None
    if done.returncode:
        raise UserError(f"cluster: {' '.join(argv)} failed: {done.stderr.strip() or done.stdout.strip()}")
    return done.stdout.strip()


def submit(scheduler: str, grade: Path, merge: Path) -> tuple[str, str]:
    """Submit the array, then the merge to start once every task has ended, whatever its exit
    status (so that a failed task is named by the merge's refusal); return both job ids."""
    if scheduler == "slurm":
        array = _run(["sbatch", "--parsable", str(grade)]).split(";")[0]
        return array, _run(["sbatch", "--parsable", f"--dependency=afterany:{array}", str(merge)]).split(";")[0]
    array = _run(["qsub", str(grade)])
    return array, _run(["qsub", "-W", f"depend=afterany:{array}", str(merge)])


def launch(args) -> int:
    """``python -m grading cluster``: write the scripts, and submit them with ``--submit``."""
    from grading.collect import handins

    students = len(handins(args.submissions))
    if not students:
        raise UserError(f"cluster: no submissions (folders or .zip files) in {args.submissions}")
    if args.shards > students:
        raise UserError(f"cluster: --shards {args.shards} for {students} students: use at most {students}")
    grade, merge = write_scripts(args, students)
    print(f"wrote {grade} ({args.shards} tasks, {math.ceil(students / args.shards)} students at most each) "
          f"and {merge}")
    if not args.submit:
        after = ("sbatch --dependency=afterany:ARRAY_ID" if args.scheduler == "slurm"
                 else "qsub -W depend=afterany:ARRAY_ID")
        print(f"submit: {'sbatch' if args.scheduler == 'slurm' else 'qsub'} {grade}, then {after} {merge}")
        return 0
    array, merged = submit(args.scheduler, grade, merge)
    print(f"submitted the array as {array} and the merge as {merged}; the gradebook will be "
          f"{args.out.resolve() / 'gradebook.csv'}")
    return 0

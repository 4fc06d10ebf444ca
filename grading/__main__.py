"""``python -m grading COMMAND``: the public checks of the practicals' student functions, in
the order of the handouts' questions, and the zip to hand in."""
import argparse
import logging
import sys
from pathlib import Path

from common.errors import UserError
from grading.registry import PRACTICALS


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m grading", description=__doc__,
                                     formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    check = sub.add_parser("check", help="run the public checks on this working copy, in the handout's order")
    check.add_argument("practical", nargs="?", default="all", help=f"all or one of {', '.join(PRACTICALS)}")
    p = sub.add_parser("handin", help="zip the files to hand in: your code, ANSWERS.md and the notebooks")
    p.add_argument("practical", nargs="?", default="all", help=f"all or one of {', '.join(PRACTICALS)}")
    p.add_argument("--out", type=Path, default=None,
                   help="the zip to write (default: handin.zip, or handin_PRACTICAL.zip, at the root)")
    # BEGIN INSTRUCTOR ONLY
    check.add_argument("--hidden", action="store_true", help="also run the hidden checks")
    p = sub.add_parser("release", help="write the student version (stubs, student documents, no hidden checks)")
    p.add_argument("out", type=Path, help="folder to write the student version into")
    p.add_argument("--force", action="store_true", help="replace OUT if it exists")
    p = sub.add_parser("grade", help="grade a folder of submissions (one folder or .zip each)")
    _grade_options(p)
    _shard_options(p)
    _cluster_options(sub.add_parser(
        "cluster", help="write (and with --submit, submit) a Slurm or PBS Professional job array grading the "
                        "class in shards, and the merge job that writes the gradebook after it"))
    _override_options(sub.add_parser(
        "override", help="adjust one student's score on a check or on the total, with a reason: appended to "
                         "OUT/overrides.csv and applied at once, and after every regrade, without grading again"))
    _export_options(sub.add_parser(
        "export", help="write a graded class's grades as Moodle or Canvas imports them (see the instructor's "
                       "guide, Moodle and Canvas)"))
    _similarity_options(sub.add_parser(
        "similarity", help="compare every pair of hand-ins on the student files, the stubs left out: an HTML "
                           "report and pairs.csv, the most similar pairs first"))
    _gradescope_options(sub.add_parser(
        "gradescope", help="write an autograder zip for Gradescope (setup.sh, run_autograder, the grader with the "
                           "hidden checks, the student release; no reference solution)"))
    p = sub.add_parser("selftest", help="every check passes on the reference and on the accepted variants, "
                                        "and fails on the stub, on each function left unwritten and on its mutants")
    p.add_argument("practical", nargs="?", default="all")
    # END INSTRUCTOR ONLY
    return parser


def check(args) -> int:
    from grading.check import check_working_copy, format_results

    results = check_working_copy(args.practical, include_hidden=getattr(args, "hidden", False))
    print(format_results(results))
    return 0 if all(r["status"] == "passed" for r in results) else 1


def handin(args) -> int:
    from grading.check import handin

    path, warnings = handin(args.practical, out=args.out)
    for w in warnings:
        print(f"warning: {w}")
    print(f"wrote {path}: hand in this file")
    return 0


# BEGIN INSTRUCTOR ONLY
def _grade_options(p: argparse.ArgumentParser) -> None:
    """grade's options: what to grade, where the results go, the limits and the sandbox."""
    p.add_argument("submissions", type=Path,
                   help="folder holding one entry per student, or Moodle's \"Download all submissions\" "
                        "(the zip, or the folder it unpacks to): one student per participant")
    p.add_argument("--out", type=Path, required=True, help="where the gradebook and reports go")
    p.add_argument("--practical", default="all", help="grade only this practical")
    p.add_argument("--workers", type=int, default=1,
                   help="submissions graded in parallel (one core each; every check uses one thread)")
    p.add_argument("--check", dest="only", action="append", metavar="ID",
                   help="grade only this check (repeat for several); the gradebook then has these columns only")
    p.add_argument("--student", dest="students", action="append", metavar="NAME",
                   help="grade this student again even if unchanged (repeat for several); the others "
                        "are kept from OUT when their submission and the grader are unchanged")
    p.add_argument("--regrade", action="store_true",
                   help="grade every student again, even those whose submission and grader are unchanged")
    p.add_argument("--nbgrader-db", type=Path, metavar="FILE",
                   help="also write the scores into this nbgrader gradebook database (a course's "
                        "gradebook.db; created if absent): one notebook per practical, one grade cell per check")
    p.add_argument("--assignment", help="the nbgrader assignment's name (default: the practical, or rdfia for all)")
    p.add_argument("--memory-mb", type=int, default=4096,
                   help="memory limit of each check's process, in MB; torch and NumPy take about 900 of them "
                        "before any check")
    p.add_argument("--output-mb", type=int, default=64, help="limit on what a check's process prints or writes")
    p.add_argument("--sandbox", choices=("on", "off"), default="on",
                   help="on (the default): the students' code runs without network, with other folders hidden and "
                        "everything outside its copy read-only, and grading stops where Linux user namespaces cannot "
                        "provide that; off: the time, memory and output limits only")


def _shard_options(p: argparse.ArgumentParser) -> None:
    """grade's options for a class graded in pieces: one shard of it, or the merge of all."""
    from grading.cluster import shard_spec

    how = p.add_mutually_exclusive_group()
    how.add_argument("--shard", type=shard_spec, metavar="K/N",
                     help="grade only the K-th of N slices of the students (sorted by name, dealt in turn) into "
                          "OUT, shared by the N shards; no gradebook is written: run --merge after the last")
    how.add_argument("--merge", action="store_true",
                     help="grade nothing: check that every student has a report of this submission and grader "
                          "(else fail naming them, writing nothing), then write the gradebook (and the nbgrader "
                          "database, with --nbgrader-db)")


def _cluster_options(p: argparse.ArgumentParser) -> None:
    """cluster's options: the scheduler, grade's own options (passed to every task), the
    shards and each task's resources."""
    p.add_argument("scheduler", choices=("slurm", "pbs"),
                   help="slurm: sbatch's job array; pbs: PBS Professional or OpenPBS (qsub -J), not Torque")
    _grade_options(p)
    p.add_argument("--shards", type=int, required=True, help="tasks of the job array, each grading 1/N of the class")
    p.add_argument("--time-limit", type=int, metavar="MINUTES",
                   help="each task's time limit (default: estimated from the largest shard, --workers and 160 s of "
                        "one core per submission, doubled, plus 10 minutes)")
    p.add_argument("--mem-mb", type=int, metavar="MB",
                   help="each task's memory (default: --workers x (--memory-mb + 1024) + 1024)")
    p.add_argument("--partition", help="the Slurm partition, or the PBS queue (default: the cluster's default)")
    p.add_argument("--account", help="the account charged (Slurm --account, PBS -A; default: none)")
    p.add_argument("--python", default=sys.executable,
                   help="the Python that the tasks run, with this project's packages (default: this one)")
    p.add_argument("--scripts", type=Path, metavar="FOLDER",
                   help="where the job scripts and their logs/ go (default: OUT/cluster)")
    p.add_argument("--submit", action="store_true",
                   help="submit the array, then the merge to start when every task has ended (default: only "
                        "write the scripts and print the commands)")


def _export_options(p: argparse.ArgumentParser) -> None:
    """export's options: the LMS format, the roster or worksheet, matching, scale and rounding."""
    p.add_argument("out", type=Path, help="the folder that grade wrote (grade --out): its students' report.json")
    p.add_argument("--to", required=True, choices=("moodle-csv", "moodle-worksheet", "canvas"),
                   help="moodle-csv: Moodle's grade import (CSV file) built on --roster; moodle-worksheet: the "
                        "assignment's grading worksheet (--worksheet) filled in; canvas: Canvas's gradebook "
                        "import built on --roster")
    p.add_argument("--roster", type=Path, metavar="FILE",
                   help="the class list exported from the LMS (Moodle's gradebook or users' export, "
                        "Canvas's gradebook export)")
    p.add_argument("--worksheet", type=Path, metavar="FILE",
                   help="the grading worksheet exported from the Moodle assignment")
    p.add_argument("--match", choices=("email", "username", "idnumber", "fullname"), default="email",
                   help="how a student is found in the roster: the report's field of that name, else the "
                        "student's folder name, against the roster's column (default: email)")
    p.add_argument("--roster-column", metavar="NAME", help="the roster's column to match (default: found by name)")
    p.add_argument("--item", default="rdfia",
                   help="the grade item's column: Moodle's grade item, Canvas's assignment ('Name (id)') "
                        "(default: rdfia)")
    p.add_argument("--scale", type=float, help="the grade item's maximum: the total is rescaled to it "
                                               "(default: the checks' points as they are)")
    p.add_argument("--round", dest="step", type=float, default=0.01,
                   help="round the grade half up to a multiple of this (0.5: 14.25 gives 14.5; default: 0.01)")
    p.add_argument("--missing-zero", action="store_true",
                   help="a roster row without a submission gets 0 (by default its grade stays empty)")
    p.add_argument("--grade-column", metavar="NAME|N", help="the worksheet's grade column (default: found)")
    p.add_argument("--feedback-column", metavar="NAME|N", help="the worksheet's feedback comments column "
                                                                "(default: found)")
    p.add_argument("--output", type=Path, metavar="FILE", help="the file to write (default: in OUT, named "
                                                                "after the format); unmatched.csv goes beside it")


def _override_options(p: argparse.ArgumentParser) -> None:
    """override's options: whose score, which check (or total), by how much, and why."""
    p.add_argument("out", type=Path, help="the folder that grade wrote (its --out)")
    p.add_argument("student", help="the student, as in the gradebook")
    p.add_argument("check", help="a check's id (a column of the gradebook), or total")
    how = p.add_mutually_exclusive_group(required=True)
    how.add_argument("--set", type=float, metavar="N", help="the new score")
    how.add_argument("--add", type=float, metavar="N", help="points to add (negative to take off)")
    p.add_argument("--reason", required=True, help="why, in a sentence: shown to the student in the feedback")


def _gradescope_options(p: argparse.ArgumentParser) -> None:
    """gradescope's options: the zip, which practical and checks, the limits of each check."""
    from grading.gradescope import MEMORY_MB

    p.add_argument("out", type=Path, help="the zip to write, to upload as the assignment's autograder")
    p.add_argument("--practical", default="all", help="grade only this practical (one Gradescope assignment each)")
    p.add_argument("--check", dest="only", action="append", metavar="ID",
                   help="grade only this check (repeat for several)")
    p.add_argument("--memory-mb", type=int, default=MEMORY_MB,
                   help=f"memory limit of each check's process, in MB (default: {MEMORY_MB}); the container "
                        "needs more: see the instructor's guide, Gradescope")
    p.add_argument("--output-mb", type=int, default=64,
                   help="limit on what a check's process prints or writes, in MB (default: 64)")


def _similarity_options(p: argparse.ArgumentParser) -> None:
    """similarity's options: the hand-ins, where the report goes, which files, the threshold."""
    from grading.similarity import THRESHOLD as SIMILAR

    p.add_argument("submissions", type=Path,
                   help="folder holding one entry per student, or Moodle's download (as for grade)")
    p.add_argument("--out", type=Path, required=True, help="where similarity.html and pairs.csv go")
    p.add_argument("--practical", default="all", help="compare only this practical's files (default: all)")
    p.add_argument("--threshold", type=float, default=SIMILAR,
                   help="flag the pairs whose score (the share of their two files' code that they have in common, "
                        f"the stubs left out) reaches this, in (0, 1] (default: {SIMILAR:g})")


def release(args) -> int:
    from grading.release import release

    manifest = release(args.out, force=args.force)
    n = sum(f["regions"] for f in manifest["student_files"].values())
    print(f"wrote the student version to {args.out}: {len(manifest['student_files'])} "
          f"files to edit, {n} functions to write (stubs)")
    return 0


def _check_submissions(path: Path, parser: argparse.ArgumentParser) -> None:
    """What grade and similarity read: a folder of hand-ins, or Moodle's download (a .zip)."""
    if not path.is_dir() and not (path.is_file() and path.suffix.lower() == ".zip"):
        parser.error(f"{path} is not a folder or a Moodle download (.zip)")


def _check_grade(args, parser: argparse.ArgumentParser) -> None:
    """What grade and cluster refuse before anything runs: the submissions and the limits."""
    _check_submissions(args.submissions, parser)
    if args.workers < 1:
        parser.error("--workers must be at least 1")
    if args.memory_mb < 256 or args.output_mb < 1:
        parser.error("--memory-mb must be at least 256 and --output-mb at least 1")


def grade(args, parser: argparse.ArgumentParser) -> int:
    from grading.grade import grade
    from grading.runner import Limits

    _check_grade(args, parser)
    if args.merge and (args.regrade or args.students):
        parser.error("--merge grades nothing: --regrade and --student go with the shards")
    if args.shard and args.nbgrader_db:
        parser.error("--nbgrader-db goes with --merge: a shard writes no gradebook")
    limits = Limits(memory_mb=args.memory_mb, output_mb=args.output_mb, sandbox=args.sandbox)
    reports = grade(args.submissions, args.out, args.practical, args.workers, limits,
                    only=args.only, regrade=args.regrade or args.students or False,
                    nbgrader_db=args.nbgrader_db, assignment=args.assignment, shard=args.shard, merge=args.merge)
    if args.shard:
        print(f"shard {args.shard[0]}/{args.shard[1]}: {len(reports)} students graded or kept in "
              f"{args.out / 'students'}; the gradebook is written by grade --merge")
        return 0
    for r in sorted(reports, key=lambda r: r["student"]):
        print(f"{r['student']}: {r['score']:g}/{r['max_score']:g}"
              + (f" (automatic {r['auto_score']:g}, with the overrides)" if r.get("overrides") else ""))
    print(f"gradebook: {args.out / 'gradebook.csv'}; feedback in {args.out / 'students'}"
          + (f"; nbgrader gradebook: {args.nbgrader_db}" if args.nbgrader_db else ""))
    return 0


def cluster(args, parser: argparse.ArgumentParser) -> int:
    from grading.cluster import launch

    _check_grade(args, parser)
    if args.shards < 1 or (args.time_limit is not None and args.time_limit < 1) or \
            (args.mem_mb is not None and args.mem_mb < 256):
        parser.error("--shards and --time-limit must be at least 1, and --mem-mb at least 256")
    return launch(args)


def export(args) -> int:
    from common.errors import UserError
    from grading.lms import Options, export

    try:
        path, n, unmatched = export(args.out, args.to, args.roster, args.worksheet, args.match, args.item,
                                    Options(args.scale, args.step, args.missing_zero), args.output,
                                    args.roster_column, args.grade_column, args.feedback_column)
    except UserError as e:
        print(f"export: {e}", file=sys.stderr)
        return 2
    print(f"wrote {path}: {n} rows" + (f"; {len(unmatched)} students not matched, listed in "
                                       f"{path.parent / 'unmatched.csv'}" if unmatched else ""))
    return 0


def override(args, parser: argparse.ArgumentParser) -> int:
    import json
    import math

    from grading import overrides

    if not (args.out / "gradebook.csv").is_file():
        parser.error(f"no gradebook.csv in {args.out}: grade the class there first")
    action, points = ("set", args.set) if args.set is not None else ("add", args.add)
    if not math.isfinite(points) or (action == "set" and points < 0):
        parser.error(f"--{action} needs a finite number{' of at least 0' if action == 'set' else ''}")
    if not args.reason.strip():
        parser.error("--reason must say why")
    if args.student.startswith("'") and not (args.out / "students" / args.student).is_dir():
        args.student = args.student[1:]  # as the gradebook's cell shows a name that starts like a formula
    report = args.out / "students" / args.student / "report.json"
    if args.student in ("", ".", "..") or "/" in args.student or not report.is_file():
        parser.error(f"no student {args.student!r} in {args.out} (no students/{args.student}/report.json)")
    ids = {r["id"] for r in json.loads(report.read_text())["results"]}
    if args.check != overrides.TOTAL and args.check not in ids:
        parser.error(f"{args.student} has no check {args.check!r} in this gradebook: use one of its columns, or total")
    overrides.reapply(args.out)  # the file as it is must apply before a line is added to it
    path = overrides.append(args.out, args.student, args.check, action, points, args.reason.strip())
    reports = {r["student"]: r for r in overrides.reapply(args.out)}
    r = reports[args.student]
    print(f"{args.student}: {r['score']:g}/{r['max_score']:g} (automatic: {r['auto_score']:g}); "
          f"overrides in {path}; gradebook and feedback written again")
    return 0


def gradescope(args, parser: argparse.ArgumentParser) -> int:
    from grading.gradescope import build
    from grading.runner import Limits

    if args.memory_mb < 256 or args.output_mb < 1:
        parser.error("--memory-mb must be at least 256 and --output-mb at least 1")
    if args.out.suffix.lower() != ".zip":
        parser.error(f"{args.out} must end in .zip")
    config = build(args.out, args.practical, args.only, Limits(memory_mb=args.memory_mb, output_mb=args.output_mb))
    print(f"wrote {args.out}: {len(config['checks'])} checks, {config['points']:g} points; upload it in the "
          f"assignment's Configure Autograder page (settings: instructor's guide, Gradescope)")
    return 0


def selftest(args) -> int:
    from grading.selftest import selftest

    ok, lines = selftest(args.practical)
    print("\n".join(lines))
    print("selftest: all checks can fail and the reference passes" if ok
          else "selftest: FAILED (see BAD lines)")
    return 0 if ok else 1


def similarity(args, parser: argparse.ArgumentParser) -> int:
    from common.errors import UserError
    from grading.similarity import similarity

    threshold = args.threshold
    _check_submissions(args.submissions, parser)
    if not 0 < threshold <= 1:
        parser.error("--threshold must be in (0, 1]")
    try:
        found = similarity(args.submissions, args.out, args.practical, threshold)
    except UserError as e:
        print(f"similarity: {e}", file=sys.stderr)
        return 2
    notes = f"; {len(found['notes'])} notes on what was not compared (above)" if found["notes"] else ""
    print(f"similarity: {found['students']} students, {found['pairs']} pairs compared, {found['flagged']} at or "
          f"above {threshold:g}{notes}; report: {args.out / 'similarity.html'}, pairs: {args.out / 'pairs.csv'}")
    return 0
# END INSTRUCTOR ONLY


def main(argv=None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    commands = {"check": check, "handin": handin}
    # BEGIN INSTRUCTOR ONLY
    commands.update(release=release, grade=lambda a: grade(a, parser), cluster=lambda a: cluster(a, parser),
                    override=lambda a: override(a, parser), export=export,
                    similarity=lambda a: similarity(a, parser), selftest=selftest,
                    gradescope=lambda a: gradescope(a, parser))
    # END INSTRUCTOR ONLY
    try:
        return commands[args.command](args)
    except UserError as e:  # bad input, one line: a malformed overrides.csv names its line
        print(f"error: {e}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())

"""A class graded as shards, merged once; the Slurm and PBS scripts that run them.

The fast tests grade with a stand-in for one submission's grading (the batch, the
fingerprints, the reports and the refusals are the real ones); the slow test runs a real
single-node Slurm and compares its gradebook with one machine's, score for score.
"""
import argparse
import csv
import json
import random
import subprocess
from pathlib import Path

import pytest

import grading.grade as grade_module
from common.errors import UserError
from grading.__main__ import main
from grading.cluster import resources, shard_of, shard_spec
from grading.collect import Handin
from grading.grade import _failed_all, _report, grade
from grading.runner import Limits

REPO = Path(__file__).resolve().parents[1]
DANN = "tp3c_domain_adaptation/dann.py"
STUDENTS = ("alice", "bob", "carol", "dave", "erin")
LIMITS = Limits(sandbox="off")


def test_slices_cover_the_class_once_whatever_the_listing_order():
    names = [f"student{i:02d}" for i in range(23)] + ["Zoé", "_x"]
    slices = {}
    for _ in range(5):
        random.shuffle(names)
        handed = [Handin(n, []) for n in names]
        got = [[h.student for h in shard_of(handed, k, 4)] for k in range(1, 5)]
        slices.setdefault("first", got)
        assert got == slices["first"], "a slice changed with the order the hand-ins were listed in"
    flat = [s for part in slices["first"] for s in part]
    assert sorted(flat) == sorted(names) and len(flat) == len(set(flat))
    assert {len(part) for part in slices["first"]} == {6, 7}  # 25 students in 4 shards
    assert shard_of([Handin("a", [])], 2, 2) == []  # more shards than students: an empty slice


@pytest.mark.parametrize("text, message", [("0/3", "between 1"), ("4/3", "between 1"), ("1/0", "between 1"),
                                           ("3", "not K/N"), ("a/b", "not K/N"), ("-1/2", "not K/N")])
def test_a_bad_shard_is_one_clear_error(text, message):
    with pytest.raises(argparse.ArgumentTypeError, match=message):
        shard_spec(text)


def test_shard_and_merge_are_refused_together_and_with_what_they_cannot_do(tmp_path, capsys):
    (tmp_path / "subs/alice").mkdir(parents=True)
    for argv, message in ((["--shard", "1/2", "--merge"], "not allowed with"),
                          (["--merge", "--regrade"], "--merge grades nothing"),
                          (["--shard", "1/2", "--nbgrader-db", "db"], "--nbgrader-db goes with --merge"),
                          (["--shard", "3/2"], "between 1 and")):
        with pytest.raises(SystemExit):
            main(["grade", str(tmp_path / "subs"), "--out", str(tmp_path / "out"), *argv])
        assert message in capsys.readouterr().err


@pytest.fixture
def batch(tmp_path, monkeypatch):
    """Five hand-ins and a stand-in grader: each report's score is the number of ``# good``
    lines of its ``dann.py``; ``calls`` lists whom it graded, ``digest`` is the grader's."""
    subs = tmp_path / "subs"
    for i, s in enumerate(STUDENTS):
        (subs / s).mkdir(parents=True)
        (subs / s / "dann.py").write_text("# good\n" * (i % 3))
    state = {"calls": [], "digest": "grader-1"}

    def prepare(tmp, checks, limits):
        return tmp / "release", tmp / "grader", {DANN: {}}, state["digest"]

    def grade_one(entry, base, grader, checks, files, work, limits, hide, scratch, student):
        state["calls"].append(student)
        results = _failed_all(checks, "passed", "")
        results[0]["score"] = float((entry / "dann.py").read_text().count("# good"))
        return _report(student, results, limits)

    monkeypatch.setattr(grade_module, "_prepare", prepare)
    monkeypatch.setattr(grade_module, "grade_one", grade_one)
    return subs, tmp_path / "out", state


def _grade(subs, out, **kw):
    return grade(subs, out, "tp3c", limits=LIMITS, only=["tp3c.grl_forward"], **kw)


def _gradebook(out: Path) -> list[dict]:
    with open(out / "gradebook.csv") as f:
        return list(csv.DictReader(f))


def test_shards_write_only_their_students_and_the_merge_writes_the_gradebook(batch):
    subs, out, state = batch
    first = _grade(subs, out, shard=(1, 2))
    assert [r["student"] for r in first] == ["alice", "carol", "erin"] == state["calls"]
    assert not (out / "gradebook.csv").exists(), "a shard wrote the class's gradebook"
    state["calls"].clear()
    _grade(subs, out, shard=(2, 2))
    assert state["calls"] == ["bob", "dave"]
    state["calls"].clear()
    assert _grade(subs, out, shard=(6, 6)) == [] and state["calls"] == []  # 5 students, 6 shards: one idle
    assert sorted(p.name for p in (out / "students").iterdir()) == sorted(STUDENTS)

    state["calls"].clear()
    merged = {r["student"]: r["score"] for r in _grade(subs, out, merge=True)}
    assert state["calls"] == [], "the merge graded someone"
    assert merged == {"alice": 0, "bob": 1, "carol": 2, "dave": 0, "erin": 1}
    assert [(r["student"], r["total"]) for r in _gradebook(out)] == [(s, f"{merged[s]:g}") for s in STUDENTS]
    # The same folder graded by a plain grade: nothing graded again, the same gradebook.
    before = (out / "gradebook.csv").read_text()
    _grade(subs, out)
    assert state["calls"] == [] and (out / "gradebook.csv").read_text() == before


def test_a_shard_leaves_the_other_shards_reports_as_they_are(batch):
    subs, out, state = batch
    _grade(subs, out)  # the whole class once: every report there
    others = {s: (out / "students" / s / "report.json").read_bytes() for s in ("bob", "dave")}
    (out / "overrides.csv").write_text("student,check,action,points,reason\nbob,total,add,1,late fix\n")
    _grade(subs, out, shard=(1, 2))  # bob's override names another shard's student: no error, not applied here
    assert {s: (out / "students" / s / "report.json").read_bytes() for s in others} == others
    _grade(subs, out, merge=True)
    bob = json.loads((out / "students/bob/report.json").read_text())
    assert bob["score"] == 2 and bob["auto_score"] == 1, "the merge did not apply the override"


def test_the_merge_refuses_missing_and_stale_reports_naming_them_and_writes_nothing(batch):
    subs, out, state = batch
    _grade(subs, out, shard=(1, 2))
    state["calls"].clear()
    with pytest.raises(UserError, match=r"no report for bob, dave\. Nothing was graded"):
        _grade(subs, out, merge=True)
    _grade(subs, out, shard=(2, 2))
    (subs / "carol/dann.py").write_text("# good\n" * 3)  # carol handed in again since her shard ran
    state["calls"].clear()
    written = {p: p.stat().st_mtime_ns for p in out.rglob("*") if p.is_file()}
    with pytest.raises(UserError, match=r"stale report .* for carol\."):
        _grade(subs, out, merge=True)
    assert state["calls"] == [] and not (out / "gradebook.csv").exists()
    assert {p: p.stat().st_mtime_ns for p in out.rglob("*") if p.is_file()} == written, "the refusal wrote"
    state["digest"] = "grader-2"  # the grader changed: every report is stale
    with pytest.raises(UserError, match="stale report .* for alice, bob, carol, dave, erin"):
        _grade(subs, out, merge=True)
    assert main(["grade", str(subs), "--out", str(out), "--practical", "tp3c", "--check", "tp3c.grl_forward",
                 "--sandbox", "off", "--merge"]) == 2  # on the command line: one line, status 2


# ----------------------------------------------------------------------------------------
# The job scripts

# qsub's options, each also a directive (OpenPBS's qsub(1B), PBS Professional 14+), and the
# resources used here: ncpus and mem in a chunk of -l select, walltime job-wide (pbs_resources(7B)).
QSUB_OPTIONS = set("aAcCefhIjJklmMNopPqrRSuvVWXz")


def _cluster(tmp_path, scheduler, *extra) -> tuple[str, str]:
    subs = tmp_path / "subs"
    for s in STUDENTS:
        (subs / s).mkdir(parents=True, exist_ok=True)
    out = tmp_path / "out"
    assert main(["cluster", scheduler, str(subs), "--out", str(out), "--shards", "3", "--workers", "2",
                 "--practical", "tp3c", "--check", "tp3c.grl_forward", "--memory-mb", "2048",
                 "--nbgrader-db", str(tmp_path / "gb.db"), *extra]) == 0
    folder = out / "cluster"
    assert (folder / "logs").is_dir()
    texts = [(folder / f"{job}.{scheduler}").read_text() for job in ("grade", "merge")]
    for text in texts:  # both are valid shell
        subprocess.run(["bash", "-n"], input=text, text=True, check=True)
    return texts[0], texts[1]


def test_the_slurm_scripts_ask_for_what_each_task_needs(tmp_path):
    grade_job, merge_job = _cluster(tmp_path, "slurm", "--time-limit", "90", "--partition", "short")
    lines = grade_job.splitlines()
    for directive in ("--array=1-3", "--cpus-per-task=2", f"--mem={2 * (2048 + 1024) + 1024}M",
                      "--time=01:30:00", "--partition=short", "--nodes=1"):
        assert f"#SBATCH {directive}" in lines
    assert any(line.startswith("#SBATCH --output=") and line.endswith("/logs/grade-%A_%a.out") for line in lines)
    command = lines[-1]
    assert '--shard "$SLURM_ARRAY_TASK_ID/3"' in command and "--workers 2" in command
    assert "--check tp3c.grl_forward" in command and "--memory-mb 2048" in command
    assert "--nbgrader-db" not in command and "--merge" not in command
    last = merge_job.splitlines()[-1]
    assert "--merge" in last and "--nbgrader-db" in last and "--shard" not in last
    assert "--check tp3c.grl_forward" in last and "--memory-mb 2048" in last  # the same fingerprint
    # sbatch stops reading directives at the first command: every one comes before it.
    first_command = next(i for i, line in enumerate(lines) if line and not line.startswith("#"))
    assert all(i < first_command for i, line in enumerate(lines) if line.startswith("#SBATCH"))


def test_the_pbs_scripts_use_qsubs_documented_directives(tmp_path):
    grade_job, merge_job = _cluster(tmp_path, "pbs", "--time-limit", "90", "--partition", "workq")
    for text in (grade_job, merge_job):
        directives = [line.split()[1:] for line in text.splitlines() if line.startswith("#PBS")]
        for words in directives:
            assert words[0][0] == "-" and words[0][1:] in QSUB_OPTIONS, words
        for words in directives:
            if words[0] == "-l":
                key, _, value = words[1].partition("=")
                assert key in ("select", "walltime"), words
                if key == "select":
                    count, *chunk = value.split(":")
                    assert count == "1" and {c.split("=")[0] for c in chunk} == {"ncpus", "mem"}
    lines = grade_job.splitlines()
    assert "#PBS -J 1-3" in lines and "#PBS -q workq" in lines and "#PBS -j oe" in lines
    assert f"#PBS -l select=1:ncpus=2:mem={2 * (2048 + 1024) + 1024}mb" in lines
    assert "#PBS -l walltime=01:30:00" in lines
    assert '--shard "$PBS_ARRAY_INDEX/3"' in lines[-1]
    assert "--merge" in merge_job.splitlines()[-1] and "-J" not in merge_job


def test_submit_chains_the_merge_after_the_whole_array(tmp_path, monkeypatch, capsys):
    """With stand-ins for sbatch and qsub on PATH, printing ids as the real ones do."""
    bin_dir, calls = tmp_path / "bin", tmp_path / "calls"
    bin_dir.mkdir()
    for name, ids in (("sbatch", "'41;cluster' 42"), ("qsub", "'7[].server' 8.server")):
        (bin_dir / name).write_text(f'#!/bin/bash\necho "{name} $*" >> {calls}\nn=$(grep -c {name} {calls})\n'
                                    f'ids=({ids}); echo "${{ids[$((n - 1))]}}"\n')
        (bin_dir / name).chmod(0o755)
    monkeypatch.setenv("PATH", f"{bin_dir}:/usr/bin:/bin")
    _cluster(tmp_path, "slurm", "--submit")
    _cluster(tmp_path, "pbs", "--submit")
    lines = calls.read_text().splitlines()
    assert lines[0].startswith("sbatch --parsable ") and lines[0].endswith("grade.slurm")
    assert lines[1].startswith("sbatch --parsable --dependency=afterany:41 ") and lines[1].endswith("merge.slurm")
    assert lines[2].startswith("qsub ") and lines[2].endswith("grade.pbs")
    assert lines[3].startswith("qsub -W depend=afterany:7[].server ") and lines[3].endswith("merge.pbs")
    assert "submitted the array as 7[].server and the merge as 8.server" in capsys.readouterr().out


def test_the_default_time_and_memory_follow_the_largest_shard():
    args = argparse.Namespace(shards=3, workers=2, memory_mb=4096, mem_mb=None, time_limit=None)
    res = resources(args, students=30)  # 10 students a shard, 5 per worker: 600 s + 2 x 5 x 160 s
    assert res["cpus"] == 2 and res["mem_mb"] == 2 * (4096 + 1024) + 1024 and res["time"] == "00:37:00"


def test_cluster_refuses_more_shards_than_students(tmp_path, capsys):
    (tmp_path / "subs/alice").mkdir(parents=True)
    assert main(["cluster", "slurm", str(tmp_path / "subs"), "--out", str(tmp_path / "out"), "--shards", "2"]) == 2
    assert "--shards 2 for 1 students" in capsys.readouterr().err


# ----------------------------------------------------------------------------------------
# A real Slurm

JOBS_SECONDS = 300  # the array and the merge, queued to done: about 60 s on a loaded 2-core machine


@pytest.fixture
def slurm(tmp_path_factory):
    """A single-node Slurm on loopback, started for the test and stopped after it."""
    import os

    from tests.slurm_node import absent, slurm_node

    missing = absent()
    if missing:
        pytest.skip(f"Slurm absent ({', '.join(missing)} not found): apt-get install slurm-wlm munge")
    if os.geteuid() != 0:
        pytest.skip("slurmd runs jobs as their owner and must be started as root")
    with slurm_node(tmp_path_factory.mktemp("slurm")) as env:
        yield env


def _wait_for_jobs(env: dict, logs: Path) -> None:
    import time

    from tests.slurm_node import program

    deadline = time.monotonic() + JOBS_SECONDS
    while time.monotonic() < deadline:
        queue = subprocess.run([program("squeue"), "-h"], env=env, capture_output=True, text=True, check=True)
        if not queue.stdout.strip():
            return
        time.sleep(1)
    pytest.fail(f"jobs still queued after {JOBS_SECONDS} s: {queue.stdout}; logs in {logs}")


@pytest.mark.slow
def test_a_slurm_array_grades_the_class_as_one_machine_does(tmp_path, slurm, monkeypatch):
    good = (REPO / DANN).read_text()
    subs = tmp_path / "subs"
    hand_ins = {"alice": good, "bob": good.replace("return -ctx.lambd * grad_output, None",
                                                   "return ctx.lambd * grad_output, None"),
                "carol": good.replace("def grl_lambda(", "def grl_lambda(:"), "dave": None}
    for student, text in hand_ins.items():
        (subs / student).mkdir(parents=True)
        if text is not None:
            (subs / student / "dann.py").write_text(text)
    checks = ["--practical", "tp3c", "--check", "tp3c.grl_forward", "--check", "tp3c.grl_backward"]
    assert main(["grade", str(subs), "--out", str(tmp_path / "one"), *checks]) == 0

    monkeypatch.setenv("SLURM_CONF", slurm["SLURM_CONF"])
    out = tmp_path / "cluster"
    assert main(["cluster", "slurm", str(subs), "--out", str(out), "--shards", "3", *checks,
                 "--mem-mb", "2048", "--time-limit", "10", "--submit"]) == 0
    _wait_for_jobs(slurm, out / "cluster/logs")

    logs = {p.name: p.read_text() for p in (out / "cluster/logs").iterdir()}
    shards = sorted(text.splitlines()[-1] for name, text in logs.items() if name.startswith("grade-"))
    assert shards == [f"shard {k}/3: {n} students graded or kept in {out / 'students'}; the gradebook is "
                      "written by grade --merge" for k, n in ((1, 2), (2, 1), (3, 1))], logs
    assert (out / "gradebook.csv").is_file(), logs
    one, many = _gradebook(tmp_path / "one"), _gradebook(out)
    assert many == one, "the array's gradebook differs from one machine's"
    assert {r["student"]: r["total"] for r in many} == {"alice": "3", "bob": "1.5", "carol": "0", "dave": "0"}

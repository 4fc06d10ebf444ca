"""The quick run of every command gives the numbers it gave when they were recorded.

A safety net for changes of shape (files split, settings passed differently): with the
same seed on the same machine, a refactoring must not move a single number. The numbers
are every numeric value of the JSON files a command writes, timings left out, compared to
``tests/quick_numbers.json``. Floating-point results depend on the CPU and on the number
of threads, so the comparison runs only where the recording was made (same processor,
same thread count) and is skipped elsewhere, saying so. To record again, on purpose,
before a change: ``RDFIA_RECORD_QUICK=1 python -m pytest -m refactor tests/test_quick_numbers.py``
(``-k tp3d_gan``: one practical). A quarter of an hour on two cores, for the change it guards:
the ``refactor`` marker keeps it out of the default run and of CI's ``-m slow``.
"""
import json
import math
import os
import platform
import re
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
RECORD = REPO / "tests" / "quick_numbers.json"
LITE = ["--model", "efficientnet_lite0"]  # the course's ImageNet weights do not install offline

# (name, main.py, arguments): each runs with --quick --seed 0 in its own output folder,
# except where a later command reads what an earlier one wrote (same folder, in order).
COMMANDS = [
    ("3-a params", "tp3a_transfer", ["params"]),
    ("3-a predict", "tp3a_transfer", ["predict", *LITE]),
    ("3-a activations", "tp3a_transfer", ["activations", *LITE]),
    ("3-a svm", "tp3a_transfer", ["svm", *LITE]),
    ("3-a csweep", "tp3a_transfer", ["csweep", *LITE]),
    ("3-a layers", "tp3a_transfer", ["layers", *LITE]),
    ("3-a pca", "tp3a_transfer", ["pca", *LITE]),
    ("3-a head", "tp3a_transfer", ["head", *LITE]),
    ("3-b all", "tp3b_visualization", ["all", *LITE]),
    ("3-c all", "tp3c_domain_adaptation", ["all"]),
    ("3-d train", "tp3d_gan", ["train"]),
    ("3-d interpolate", "tp3d_gan", ["interpolate"]),
    ("3-d cgan", "tp3d_gan", ["cgan"]),
    ("3-d experiment", "tp3d_gan", ["experiment", "nz10"]),
    ("3-d classifier", "tp3d_gan", ["classifier"]),
]
# keys that hold durations, speeds or machine facts, not results
UNTIMED = re.compile(r"second|time|ms_per|wall|elapsed|duration|per_s|throughput|speed|_s$|\bs\b|machine|version|cpu",
                     re.IGNORECASE)


def machine() -> dict:
    """What floating-point results depend on, beyond the code."""
    import torch

    model = ""
    cpuinfo = Path("/proc/cpuinfo")
    if cpuinfo.exists():
        model = next((line.split(":", 1)[1].strip() for line in cpuinfo.read_text().splitlines()
                      if line.startswith("model name")), "")
    return {"processor": model or platform.processor(), "threads": torch.get_num_threads(),
            "torch": torch.__version__}


def numbers(obj, prefix: str = "") -> dict:
    """Every numeric leaf of a JSON value, keyed by its path, timings left out."""
    out = {}
    if isinstance(obj, dict):
        for k, v in obj.items():
            if not UNTIMED.search(str(k)):
                out.update(numbers(v, f"{prefix}/{k}"))
    elif isinstance(obj, list):
        for i, v in enumerate(obj):
            out.update(numbers(v, f"{prefix}[{i}]"))
    elif isinstance(obj, (int, float)) and not isinstance(obj, bool):
        out[prefix] = obj
    return out


def run_all(tmp: Path, data_dir: Path, practical: str) -> dict:
    results = {}
    # a cache of its own: a helper model cached by an earlier run (3-d's full classifier) would change the numbers
    env = {**os.environ, "RDFIA_DATA_DIR": str(data_dir), "RDFIA_CACHE_DIR": str(tmp / "cache"), "MPLBACKEND": "Agg"}
    for name, folder, argv in COMMANDS:
        if folder != practical:
            continue
        out = tmp / practical
        cmd = [sys.executable, f"{practical}/main.py", *argv, "--quick", "--seed", "0", "--out-dir", str(out)]
        before = {p: p.stat().st_mtime_ns for p in out.rglob("*.json")} if out.exists() else {}
        proc = subprocess.run(cmd, cwd=REPO, env=env, capture_output=True, text=True, timeout=1200)
        assert proc.returncode == 0, f"{name}: {' '.join(cmd)}\n{proc.stderr[-3000:]}"
        found = {}
        for path in sorted(out.rglob("*.json")):
            if path.name == "config.json" or before.get(path) == path.stat().st_mtime_ns:
                continue  # written by an earlier command of the same folder
            for key, value in numbers(json.loads(path.read_text())).items():
                found[f"{path.relative_to(out).as_posix()}:{key}"] = value
        results[name] = found  # empty for a command that writes only figures: it must still run
    assert sum(map(len, results.values())) > 10, f"the quick runs of {practical} wrote almost no numbers"
    return results


@pytest.mark.refactor
@pytest.mark.parametrize("practical", sorted({c[1] for c in COMMANDS}))
def test_every_quick_run_gives_the_recorded_numbers(practical, tmp_path, shared_data):
    here = machine()
    recorded = json.loads(RECORD.read_text()) if RECORD.exists() else {"machine": here, "runs": {}}
    if os.environ.get("RDFIA_RECORD_QUICK") == "1":
        if recorded["machine"] != here:
            recorded = {"machine": here, "runs": {}}
        runs = run_all(tmp_path, shared_data, practical)  # 9 digits: far finer than the comparison
        recorded["runs"].update({name: {k: float(f"{v:.9g}") if isinstance(v, float) else v for k, v in found.items()}
                                 for name, found in runs.items()})
        RECORD.write_text(json.dumps(recorded, sort_keys=True, separators=(",", ":")) + "\n")
        pytest.skip(f"recorded the quick numbers of {practical} into {RECORD}")
    if recorded["machine"] != here:
        pytest.skip(f"quick numbers recorded on {recorded['machine']}, this is {here}: "
                    "record them here (RDFIA_RECORD_QUICK=1) before a change, then compare after")
    now = run_all(tmp_path, shared_data, practical)
    differences = []
    for name in now:
        for key, value in recorded["runs"][name].items():
            if any(UNTIMED.search(part) for part in key.split(":", 1)[-1].split("/")):
                continue  # a timing recorded before the pattern above left it out
            got = now[name].get(key)
            if got is None or not math.isclose(got, value, rel_tol=1e-6, abs_tol=1e-9):
                differences.append(f"{name} {key}: recorded {value}, now {got}")
    assert not differences, f"{len(differences)} numbers moved:\n" + "\n".join(differences[:40])

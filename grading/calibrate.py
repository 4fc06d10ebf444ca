"""Calibrate a check's threshold: ``python -m grading calibrate``-style helper.

``python -m grading.calibrate MODULE SEED [SEED ...]`` imports ``MODULE`` (a check module
that defines ``score(seed) -> dict``) and prints its scores for each seed, one JSON line
per seed. Run it in the reference tree and in each mutant's tree (``grading.selftest``
builds them) and write the observed ranges beside the threshold.
"""
import importlib
import json
import sys


def main(argv=None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if len(argv) < 2:
        print(__doc__, file=sys.stderr)
        return 2
    module = importlib.import_module(argv[0])
    for seed in map(int, argv[1:]):
        print(json.dumps({"seed": seed, **module.score(seed)}), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())

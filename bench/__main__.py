"""``python -m bench gan``: the project's DCGAN loop against a plain textbook loop, in the
same run on the same machine. ``python -m bench grading``: seconds per submission when a
class is graded, with 1 and 2 workers. Each prints a table and saves it as JSON and Markdown."""
import argparse
import os
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from common.results import load_json, markdown_table, save_json  # noqa: E402


def project_loop(data_dir, iterations: int, batch_size: int = 128, nz: int = 100) -> dict:
    """The project's hot loop as ``tp3d_gan.main.fit`` runs it: in-memory tensors, the
    student's ``train_step``, no per-iteration sync."""
    import torch

    from common.datasets import load_mnist
    from tp3d_gan.dcgan import Discriminator, Generator, train_step, weights_init

    torch.manual_seed(0)
    images = load_mnist(data_dir, "train", size=32).images * 2 - 1
    G, D = Generator(nz), Discriminator()
    G.apply(weights_init), D.apply(weights_init)
    opt_G = torch.optim.Adam(G.parameters(), lr=5e-4, betas=(0.5, 0.999))
    opt_D = torch.optim.Adam(D.parameters(), lr=2e-4, betas=(0.5, 0.999))
    start = time.perf_counter()
    order = torch.randperm(len(images))
    for i in range(iterations):
        train_step(G, D, opt_G, opt_D, images[order[i * batch_size:(i + 1) * batch_size]], nz)
    return {"iterations": iterations, "seconds": time.perf_counter() - start}


def bench_gan(args) -> dict:
    from bench import plain_dcgan

    out = args.out_dir / "gan"
    env = {**os.environ, "RDFIA_DATA_DIR": str(args.data_dir)}
    rows = {}
    plain = plain_dcgan.run(args.data_dir, iterations=args.iterations)
    rows[f"plain loop, {args.iterations} iterations"] = {k: plain[k] for k in ("iterations", "seconds")}
    rows[f"project loop, {args.iterations} iterations"] = project_loop(args.data_dir, args.iterations)
    if args.full:
        plain = plain_dcgan.run(args.data_dir)
        rows["plain loop, 5 epochs"] = {k: plain[k] for k in ("iterations", "seconds")}
        t0 = time.perf_counter()
        subprocess.run([sys.executable, "tp3d_gan/main.py", "train", "--out-dir", str(out)], cwd=REPO,
                       env=env, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        metrics = load_json(out / "dcgan" / "metrics.json")
        rows["project: python tp3d_gan/main.py (whole command, with quality measures)"] = {
            "iterations": metrics["iterations"], "seconds": time.perf_counter() - t0,
            "train_ms_per_iteration": metrics["ms_per_iteration"], "quality": metrics["quality"]}
    t0 = time.perf_counter()
    subprocess.run([sys.executable, "tp3d_gan/main.py", "--quick", "--out-dir", str(out / "quick")],
                   cwd=REPO, env=env, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    rows["project: --quick (whole command)"] = {"seconds": time.perf_counter() - t0}
    for r in rows.values():
        if "iterations" in r:
            r["ms_per_iteration"] = round(1000 * r["seconds"] / r["iterations"], 1)
        r["seconds"] = round(r["seconds"], 1)
    lines = ["| run | iterations | seconds | ms/iteration |", "|---|---:|---:|---:|"]
    lines += [f"| {k} | {v.get('iterations', '')} | {v['seconds']} | {v.get('ms_per_iteration', '')} |"
              for k, v in rows.items()]
    print("\n".join(lines))
    save_json(rows, out / "bench_gan.json")
    (out / "bench_gan.md").write_text("\n".join(lines) + "\n")
    return rows


def bench_grading(args) -> dict:
    """Grade ``--students`` copies of the reference solution (every practical's student files)
    with one worker, then again with two, as ``python -m grading grade`` does; every copy must
    get full marks, so that the time is that of a real, complete grading."""
    import shutil
    import tempfile

    from grading.grade import grade
    from grading.release import release

    out = args.out_dir / "grading"
    os.environ["RDFIA_DATA_DIR"] = str(args.data_dir)
    with tempfile.TemporaryDirectory(prefix="rdfia-bench-") as tmp:
        tmp = Path(tmp)
        files = release(tmp / "release")["student_files"]
        for k in range(args.students):
            for rel in files:
                (tmp / "subs" / f"student{k}" / rel).parent.mkdir(parents=True, exist_ok=True)
                shutil.copy(REPO / rel, tmp / "subs" / f"student{k}" / rel)
        # One copy graded first, untimed: the 1-worker run would otherwise pay alone for the
        # cold file cache (datasets, weights, libraries) and flatter the 2-worker speedup.
        shutil.copytree(tmp / "subs" / "student0", tmp / "warmup" / "subs" / "student0")
        grade(tmp / "warmup" / "subs", tmp / "warmup" / "out", "all", workers=1)
        runs = {}
        for workers in (1, 2):
            t0 = time.perf_counter()
            reports = grade(tmp / "subs", tmp / f"out{workers}", "all", workers=workers, regrade=True)
            runs[workers] = (time.perf_counter() - t0, reports)
    seconds1, reports = runs[1]
    lost = [(r["student"], x["id"], x["status"]) for r in reports for x in r["results"] if x["status"] != "passed"]
    if lost:
        print(f"warning: the reference lost checks, so these times are not those of a complete grading: {lost}")
    practicals = sorted({x["practical"] for r in reports for x in r["results"]})
    per_practical = {p: round(sum(x["seconds"] or 0 for r in reports for x in r["results"] if x["practical"] == p)
                              / len(reports), 1) for p in practicals}
    rows = {"students": args.students, "checks per submission": len(reports[0]["results"]),
            "seconds per submission, 1 worker": round(seconds1 / args.students, 1),
            "seconds per submission, 2 workers": round(runs[2][0] / args.students, 1),
            "speedup from 1 to 2 workers": round(seconds1 / runs[2][0], 2),
            **{f"check seconds per submission, {p}": v for p, v in per_practical.items()},
            "checks lost by the reference": len(lost), "cpus": os.cpu_count()}
    table = markdown_table(["measure", "value"], [[k, v] for k, v in rows.items()])
    print(table, end="")
    save_json(rows, out / "bench_grading.json")
    (out / "bench_grading.md").write_text(table)
    return rows


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__,
                                     formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    parser.add_argument("name", choices=["gan", "grading"], help="what to benchmark")
    parser.add_argument("--data-dir", type=Path, default=Path(os.environ.get("RDFIA_DATA_DIR", "data")),
                        help="datasets folder (MNIST in torchvision's layout)")
    parser.add_argument("--out-dir", type=Path, default=Path("results/bench"), help="where tables go")
    parser.add_argument("--iterations", type=int, default=300, help="gan: iterations of the short comparison")
    parser.add_argument("--full", action="store_true",
                        help="gan: also time both 5-epoch runs in full (about 10 minutes on 2 cores)")
    parser.add_argument("--students", type=int, default=2,
                        help="grading: copies of the reference solution graded with 1, then 2 workers")
    args = parser.parse_args(argv)
    if args.students < 1:
        parser.error("--students must be at least 1")
    (bench_gan if args.name == "gan" else bench_grading)(args)
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""``python -m bench gan``: the project's DCGAN loop against a plain textbook loop, in the
same run on the same machine; prints a table and saves it as JSON and Markdown."""
import argparse
import os
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from common.results import load_json, save_json  # noqa: E402


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


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__,
                                     formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    parser.add_argument("name", choices=["gan"], help="what to benchmark")
    parser.add_argument("--data-dir", type=Path, default=Path(os.environ.get("RDFIA_DATA_DIR", "data")),
                        help="datasets folder (MNIST in torchvision's layout)")
    parser.add_argument("--out-dir", type=Path, default=Path("results/bench"), help="where tables go")
    parser.add_argument("--iterations", type=int, default=300, help="iterations of the short comparison")
    parser.add_argument("--full", action="store_true",
                        help="also time both 5-epoch runs in full (about 10 minutes on 2 cores)")
    args = parser.parse_args(argv)
    bench_gan(args)
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""Benchmarks, each a table of ratios measured in one run on one machine (absolute times vary
between machines): ``python -m bench NAME`` prints it and saves it as JSON and Markdown under
``--out-dir``.

- ``limits``: the machine's reference limits (fp32 and bfloat16 matmul GFLOP/s, VGG16's
  forward pass in images/s and GFLOP/s);
- ``gan``: the DCGAN and cDCGAN training steps (ms, GFLOP/s, ratio to the limits), against a
  plain textbook DCGAN loop;
- ``dann``: DANN training steps (ms, images/s, epoch time) against a plain textbook loop;
- ``features``: 3-a's feature-extraction pipeline against the network's forward pass alone;
- ``classviz``: 200 iterations of class visualization against a plain loop;
- ``grading``: seconds per submission when a class is graded, with 1 and 2 workers;
- ``shards``: a class graded as 1 shard, then as 2 side by side, each merged, and what that
  makes of 300 and 1,000 students on a cluster (:mod:`bench.shards`);
- ``gpu``: every practical's quick command on a GPU and the headline timings there
  (:mod:`bench.gpu`).
"""
import argparse
import os
import subprocess
import sys
import time
from pathlib import Path

from common.results import load_json, markdown_table, save_json

REPO = Path(__file__).resolve().parents[1]


def project_loop(data_dir, iterations: int, precision: str = "fp32", batch_size: int = 128, nz: int = 100,
                 conditional: bool = False, device: str = "cpu") -> dict:
    """The project's hot loop as ``tp3d_gan.training.train`` runs it: in-memory tensors, the
    networks in channels_last, the student's ``train_step`` (``cgan_train_step``) under
    ``precision``'s autocast, no per-iteration sync; also the FLOPs of one step, counted by
    ``torch.utils.flop_counter``. On a GPU the data sit there once, as in
    ``tp3d_gan.training.fit``."""
    import torch

    from bench.limits import count_flops, synchronize
    from common.datasets import load_mnist
    from common.device import autocast
    from tp3d_gan.cdcgan import CondDiscriminator, CondGenerator, cgan_train_step
    from tp3d_gan.dcgan import Discriminator, Generator, train_step, weights_init

    torch.manual_seed(0)
    data = load_mnist(data_dir, "train", size=32)
    device = torch.device(device)
    images, labels = (data.images * 2 - 1).to(device), data.labels.to(device)
    G, D = (CondGenerator(nz), CondDiscriminator()) if conditional else (Generator(nz), Discriminator())
    G.apply(weights_init), D.apply(weights_init)
    G, D = (G.to(device, memory_format=torch.channels_last), D.to(device, memory_format=torch.channels_last))
    opt_G = torch.optim.Adam(G.parameters(), lr=5e-4, betas=(0.5, 0.999))
    opt_D = torch.optim.Adam(D.parameters(), lr=2e-4, betas=(0.5, 0.999))

    def step(idx):
        with autocast(device, precision):
            if conditional:
                cgan_train_step(G, D, opt_G, opt_D, images[idx], labels[idx], nz)
            else:
                train_step(G, D, opt_G, opt_D, images[idx], nz)

    order = torch.randperm(len(images), device=device)
    flops = count_flops(lambda: step(order[:batch_size]))  # also the warm-up (cuDNN's first calls)
    synchronize(device)
    start = time.perf_counter()
    for i in range(iterations):
        i %= len(images) // batch_size  # the fallback digits hold fewer batches than MNIST
        step(order[i * batch_size:(i + 1) * batch_size])
    synchronize(device)
    return {"iterations": iterations, "seconds": time.perf_counter() - start, "gflop_per_step": flops / 1e9}


def precisions() -> list[str]:
    """fp32 (the default), and bf16 where this machine's CPU computes it natively."""
    import torch

    from common.device import native_bf16

    return ["fp32"] + (["bf16"] if native_bf16(torch.device("cpu")) else [])


def bench_limits(args) -> dict:
    """The machine's reference limits (see :mod:`bench.limits`)."""
    from bench.limits import limits

    rows = limits()
    table = markdown_table(["limit", "value"], [
        ["threads", rows["threads"]],
        ["fp32 matmul (2048)", f"{rows['matmul fp32']['gflops']} GFLOP/s"],
        ["bf16 matmul (2048)", f"{rows['matmul bf16']['gflops']} GFLOP/s"],
        *[[f"VGG16 forward, batch 8, random weights{label}",
           f"{rows[key]['images_per_second']} images/s, {rows[key]['gflops']} GFLOP/s "
           f"({rows[key]['gflop_per_image']} GFLOP per image)"]
          for key, label in (("vgg16 forward", ""), ("vgg16 forward channels_last", ", channels_last"),
                             ("vgg16 forward channels_last bf16", ", channels_last, bf16 autocast"))]])
    print(table, end="")
    save_json(rows, args.out_dir / "limits" / "bench_limits.json")
    (args.out_dir / "limits" / "bench_limits.md").write_text(table)
    return rows


WHOLE_RUN = "project: python tp3d_gan/main.py (whole command, default settings)"
PLAIN_FULL = "plain DCGAN loop, 5 epochs"


def plain_quality(data_dir, G, seed: int = 1) -> dict:
    """The plain loop's generator scored as ``tp3d_gan.training.train`` scores its own: 1,000
    samples through the practical's MNIST classifier."""
    import torch

    from tp3d_gan.quality import QualityMeter, load_classifier

    classifier, _ = load_classifier(data_dir)
    G.eval()
    with torch.inference_mode():
        samples = G(torch.randn(1000, 100, 1, 1, generator=torch.Generator().manual_seed(seed)))
    return QualityMeter(classifier, data_dir)(samples)


def whole_gan_runs(data_dir, out, env) -> dict:
    """The plain loop's 5 epochs and the project's whole default run, each with the time
    until the practical's quality bar is first met (rows of :func:`bench_gan`)."""
    from bench import plain_dcgan
    from tp3d_gan.quality import meets_bar

    rows = {}
    plain = plain_dcgan.run(data_dir)
    quality = plain_quality(data_dir, plain["G"])
    rows[PLAIN_FULL] = {"iterations": plain["iterations"], "seconds": plain["seconds"],
                        "quality bar": f"{'met' if meets_bar(quality) else 'NOT met'} at the end "
                                       f"(confidence {quality['mean_confidence']:.3f}, smallest class "
                                       f"{100 * quality['min_class_fraction']:.1f}%)"}
    t0 = time.perf_counter()
    subprocess.run([sys.executable, "tp3d_gan/main.py", "train", "--out-dir", str(out)], cwd=REPO,
                   env=env, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    metrics = load_json(out / "dcgan" / "metrics.json")
    reached = metrics["quality_bar_reached"]
    rows[WHOLE_RUN] = {"iterations": metrics["iterations"], "seconds": time.perf_counter() - t0,
                       "precision": metrics["precision"],
                       "quality bar": "NOT met" if reached is None else
                       f"met at iteration {reached['iteration']}, {reached['seconds']} s after the start"}
    if reached is not None:
        rows[WHOLE_RUN]["time vs plain loop"] = round(reached["seconds"] / plain["seconds"], 2)
    return rows


def bench_gan(args) -> dict:
    """The DCGAN and cDCGAN training steps: ms per iteration, GFLOP/s and their ratio to the
    machine's limits (measured first, in the same run), against the plain textbook loop; in
    fp32 (the default) and, where the CPU computes bfloat16 natively, under bf16 autocast
    (``--precision bf16``). With ``--full``, the whole default run against the plain loop's 5 epochs: the
    time until the practical's quality bar is first reached."""
    from bench import plain_dcgan
    from tp3d_gan.quality import QUALITY_BAR

    limits = bench_limits(args)
    out = args.out_dir / "gan"
    env = {**os.environ, "RDFIA_DATA_DIR": str(args.data_dir)}
    rows = {}
    n, n_cgan = args.iterations, max(1, args.iterations // 3)  # the cDCGAN step is 8x longer
    plain_short = f"plain DCGAN loop, {n} iterations"
    plain = plain_dcgan.run(args.data_dir, iterations=n)
    rows[plain_short] = {k: plain[k] for k in ("iterations", "seconds")}
    for precision in precisions():
        rows[f"project DCGAN loop, {precision}, {n} iterations"] = project_loop(args.data_dir, n, precision)
    for precision in precisions():
        rows[f"project cDCGAN loop, {precision}, {n_cgan} iterations"] = project_loop(
            args.data_dir, n_cgan, precision, conditional=True)
    if args.full:
        rows.update(whole_gan_runs(args.data_dir, out, env))
    t0 = time.perf_counter()
    subprocess.run([sys.executable, "tp3d_gan/main.py", "--quick", "--out-dir", str(out / "quick")],
                   cwd=REPO, env=env, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    rows["project: --quick (whole command)"] = {"seconds": time.perf_counter() - t0}
    fp32, conv = limits["matmul fp32"]["gflops"], limits["vgg16 forward"]["gflops"]
    plain_ms = 1000 * rows[plain_short]["seconds"] / n
    for name, r in rows.items():
        if "iterations" in r:
            r["ms_per_iteration"] = round(1000 * r["seconds"] / r["iterations"], 1)
        if "gflop_per_step" in r:
            r["gflops"] = round(r["gflop_per_step"] / (r["ms_per_iteration"] / 1000), 1)
            r["of fp32 matmul"] = round(r["gflops"] / fp32, 2)
            r["of VGG16 conv"] = round(r["gflops"] / conv, 2)
            r["gflop_per_step"] = round(r["gflop_per_step"], 2)
        if name.startswith("project DCGAN loop"):  # the same networks and batch: comparable
            r["time vs plain loop"] = round(r["ms_per_iteration"] / plain_ms, 2)
        r["seconds"] = round(r["seconds"], 1)
    columns = ["iterations", "seconds", "ms_per_iteration", "gflop_per_step", "gflops", "of fp32 matmul",
               "of VGG16 conv", "quality bar", "time vs plain loop"]
    table = markdown_table(["run"] + columns, [[k] + [v.get(c, "") for c in columns] for k, v in rows.items()])
    print(table, end="")
    print(f"quality bar: {QUALITY_BAR}; 'time vs plain loop' of the whole run: seconds until the bar is "
          f"first met / the plain loop's 5 epochs")
    save_json({"limits": limits, "runs": rows, "quality_bar": QUALITY_BAR}, out / "bench_gan.json")
    (out / "bench_gan.md").write_text(table)
    return rows


def bench_classviz(args) -> dict:
    """Class visualization, 200 iterations: the project's loop against a plain one, on VGG16
    with random weights (the time does not depend on them) and on EfficientNet-Lite0, the
    pretrained network that installs offline (:func:`bench.plain_classviz.time_classviz`)."""
    from bench.plain_classviz import time_classviz
    from common.device import select_device

    out = args.out_dir / "classviz"
    rows = {}
    for model in ("vgg16", "efficientnet_lite0"):
        result = time_classviz(model, args.classviz_iterations, select_device("auto"), out,
                               random_weights=model == "vgg16")
        for run, seconds in result["seconds"].items():
            rows[f"{model}, {run}"] = {"iterations": result["iterations"], "weights": result["weights"],
                                       "seconds": round(seconds, 1),
                                       "time vs plain loop": round(result["time vs plain loop"].get(run, 1.0), 2)}
    columns = ["iterations", "weights", "seconds", "time vs plain loop"]
    table = markdown_table(["run"] + columns, [[k] + [v[c] for c in columns] for k, v in rows.items()])
    print(table, end="")
    save_json(rows, out / "bench_classviz.json")
    (out / "bench_classviz.md").write_text(table)
    return rows


def project_dann(data_dir, iterations: int, channels_last: bool = False, batch_size: int = 64,
                 lr: float = 0.01, device: str = "cpu") -> dict:
    """The project's DANN loop as ``tp3c_domain_adaptation.training.fit`` runs it: both domains
    in memory, normalised per batch, the student's ``dann_step`` (one pass over both
    batches) and the clipped SGD update, as ``train_step`` makes them, no per-step sync;
    fp32, in the default layout or with ``--channels-last`` (see ``Domains``)."""
    import torch

    from bench.limits import synchronize
    from tp3c_domain_adaptation.dann import DANN, dann_lr, grl_lambda
    from tp3c_domain_adaptation.data import Domains
    from tp3c_domain_adaptation.training import ClippedSGD, train_step

    torch.manual_seed(0)
    device = torch.device(device)
    domains = Domains(data_dir, device, channels_last=channels_last)
    model = DANN().to(device, memory_format=domains.memory_format)
    opt = ClippedSGD(model.parameters(), max_norm=5.0, lr=lr, momentum=0.9)
    batches = min(len(domains.source), len(domains.target)) // batch_size
    order_s, order_t = torch.randperm(len(domains.source)), torch.randperm(len(domains.target))

    def step(it):
        p = it / iterations
        for group in opt.param_groups:
            group["lr"] = dann_lr(p, lr)
        b = it % batches  # the fallback digits hold fewer batches than MNIST
        idx_s = order_s[b * batch_size:(b + 1) * batch_size].to(domains.source.images.device)
        idx_t = order_t[b * batch_size:(b + 1) * batch_size].to(domains.target.images.device)
        train_step("dann", model, opt, domains.batch(domains.source.images[idx_s]), domains.source.labels[idx_s],
                   domains.batch(domains.target.images[idx_t], "target"), grl_lambda(p), 0.0, 0.9)

    step(0)  # warm-up, untimed (cuDNN chooses its algorithms on the first calls)
    synchronize(device)
    start = time.perf_counter()
    for it in range(iterations):
        step(it)
    synchronize(device)
    return {"iterations": iterations, "seconds": time.perf_counter() - start,
            "source_images": len(domains.source)}


WHOLE_DANN = "project: tp3c_domain_adaptation/main.py dann --epochs 1{} (whole run, with its evaluations)"


def bench_dann(args) -> dict:
    """DANN training at the default settings (batch 64 per domain): ms per step, images/s and
    the time of an epoch (one pass over the 60,000 source images), against a plain loop; with
    ``--full``, also the default command for one epoch, its test evaluations included."""
    from bench import plain_dann

    out = args.out_dir / "dann"
    n = args.iterations
    plain = [plain_dann.run(args.data_dir, n)]
    rows = {"plain DANN loop": plain[0], "project DANN loop": project_dann(args.data_dir, n),
            "project DANN loop, --channels-last": project_dann(args.data_dir, n, channels_last=True)}
    steps = rows["project DANN loop"]["source_images"] // 64  # an epoch: one pass over the source
    if args.full:  # the whole default command for one epoch: its test evaluations included
        for flags in ([], ["--channels-last"]):
            subprocess.run([sys.executable, "tp3c_domain_adaptation/main.py", "dann", "--epochs", "1", *flags,
                            "--out-dir", str(out / "run")], cwd=REPO,
                           env={**os.environ, "RDFIA_DATA_DIR": str(args.data_dir)},
                           check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            metrics = load_json(out / "run" / "runs" / "dann" / "metrics.json")
            rows[WHOLE_DANN.format(" " + " ".join(flags) if flags else "")] = {
                "iterations": metrics["iterations"], "seconds": metrics["seconds"]}
        # The plain loop again, after: the machine's speed drifts, so its time is the mean of both.
        plain.append(plain_dann.run(args.data_dir, n))
        rows["plain DANN loop"] = {"iterations": n, "seconds": sum(r["seconds"] for r in plain) / len(plain),
                                   "runs": [round(r["seconds"], 1) for r in plain]}
    for name, r in rows.items():
        r["ms_per_step"] = round(1000 * r["seconds"] / r["iterations"], 1)
        r["images_per_second"] = round(2 * 64 * r["iterations"] / r["seconds"], 1)
        r["epoch_seconds"] = round(steps * r["seconds"] / r["iterations"], 1)  # the whole run: its own seconds
        r["seconds"] = round(r["seconds"], 1)
        r.pop("source_images", None)
        if name != "plain DANN loop":
            r["time vs plain loop"] = round(r["ms_per_step"] / rows["plain DANN loop"]["ms_per_step"], 2)
    columns = ["iterations", "seconds", "ms_per_step", "images_per_second", "epoch_seconds", "time vs plain loop"]
    table = markdown_table(["run"] + columns, [[k] + [v.get(c, "") for c in columns] for k, v in rows.items()])
    print(table, end="")
    save_json(rows, out / "bench_dann.json")
    (out / "bench_dann.md").write_text(table)
    return rows


def bench_features(args) -> dict:
    """3-a's feature extraction with EfficientNet-Lite0 (the pretrained network that installs
    offline): the whole pipeline (JPEG decoding, resizing, the network, as ``tp3a_transfer/
    main.py extract`` runs it) against the network's forward pass alone at the same batch."""
    import torch

    from common.datasets import load_scene15
    from common.pretrained import OFFLINE_MODEL, load_frozen
    from tp3a_transfer.data import subset
    from tp3a_transfer.features import extract_features, scene_transform
    from tp3a_transfer.networks import check_layer, cut

    out = args.out_dir / "features"
    torch.manual_seed(0)
    model, mean, std = load_frozen(OFFLINE_MODEL, pretrained=True)
    model = cut(OFFLINE_MODEL, model, check_layer(OFFLINE_MODEL, None)).eval()
    data = subset(load_scene15(args.data_dir, "train", transform=scene_transform(False, mean, std)),
                  args.per_class)
    x = torch.randn(32, 3, 224, 224)
    with torch.inference_mode():
        model(x)  # warm-up
    batches = -(-len(data) // 32)

    def forward_alone() -> float:
        start = time.perf_counter()
        with torch.inference_mode():
            for _ in range(batches):
                model(x)
        return time.perf_counter() - start

    # Each pipeline between two timings of the forward pass alone: the machine's speed drifts.
    rows, forward = {"images": len(data), "batch": 32}, forward_alone()
    for workers in (0, 1):
        loader = torch.utils.data.DataLoader(data, batch_size=32, num_workers=workers)
        start = time.perf_counter()
        X, _ = extract_features(model, loader, progress=False)
        pipeline = time.perf_counter() - start
        after = forward_alone()
        name = "1 decoding worker" if workers else "decoding in the main process (the default on a CPU)"
        rows[name] = {"pipeline images/s": round(len(X) / pipeline, 1),
                      "forward alone images/s": round(2 * len(X) / (forward + after), 1),
                      "pipeline / forward": round((forward + after) / 2 / pipeline, 2)}
        forward = after
    columns = ["pipeline images/s", "forward alone images/s", "pipeline / forward"]
    table = markdown_table([f"{len(data)} images, batch 32"] + columns,
                           [[k] + [v[c] for c in columns] for k, v in rows.items() if isinstance(v, dict)])
    print(table, end="")
    save_json(rows, out / "bench_features.json")
    (out / "bench_features.md").write_text(table)
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


class HelpFormatter(argparse.RawDescriptionHelpFormatter, argparse.ArgumentDefaultsHelpFormatter):
    """The description as written, the defaults after each option."""


def bench_gpu(args) -> dict:
    from bench.gpu import bench_gpu as run

    return run(args)


def bench_shards(args) -> dict:
    from bench.shards import bench_shards as run

    return run(args)


BENCHES = {"limits": bench_limits, "gan": bench_gan, "dann": bench_dann, "features": bench_features,
           "classviz": bench_classviz, "grading": bench_grading, "shards": bench_shards, "gpu": bench_gpu}


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__,
                                     formatter_class=HelpFormatter)
    parser.add_argument("name", choices=list(BENCHES), help="what to benchmark (see above)")
    parser.add_argument("--data-dir", type=Path, default=Path(os.environ.get("RDFIA_DATA_DIR", "data")),
                        help="datasets folder (MNIST in torchvision's layout)")
    parser.add_argument("--out-dir", type=Path, default=Path("results/bench"), help="where tables go")
    parser.add_argument("--iterations", type=int, default=300, help="gan, dann: iterations of the short comparison")
    parser.add_argument("--full", action="store_true",
                        help="gan: also time both 5-epoch runs in full (about ten minutes on a laptop CPU); "
                             "dann: also the default command for one epoch, with and without --channels-last, then the "
                             "plain loop again (about 2 minutes more)")
    parser.add_argument("--per-class", type=int, default=50,
                        help="features: training images per class of 15 Scene (50: 750 images)")
    parser.add_argument("--classviz-iterations", type=int, default=200,
                        help="classviz: iterations of class visualization")
    parser.add_argument("--students", type=int, default=2,
                        help="grading: copies of the reference solution graded with 1, then 2 workers; "
                             "shards: the class graded as 1, then 2 shards")
    parser.add_argument("--practical", default="tp3b",
                        help="shards: the practical graded (3-b's checks take a few seconds per student)")
    parser.add_argument("--device", choices=("cuda", "cpu"), default="cuda",
                        help="gpu: where to run (cpu tries the command itself, slowly)")
    args = parser.parse_args(argv)
    if args.students < 1:
        parser.error("--students must be at least 1")
    from common.errors import UserError

    try:
        BENCHES[args.name](args)
    except UserError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""Practical 3-d: GANs on MNIST. Train the course's DCGAN (default) or its conditional
version, run the experiments of the practical, and measure what comes out.

Run from the repository root:  python tp3d_gan/main.py            (the default DCGAN)
                               python tp3d_gan/main.py --quick    (seconds, for a smoke test)
                               python tp3d_gan/main.py cgan       (conditional DCGAN)
"""
import argparse
import logging
import sys
import time
from pathlib import Path


import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image
from tqdm import tqdm

from common import cli
from common.datasets import load_mnist
from common.device import autocast
from common.errors import UserError
from common.plotting import grid_array, save_curves, save_image_grid, save_image_table
from common.results import load_json, markdown_table, save_config, save_json
from tp3d_gan.cdcgan import CondDiscriminator, CondGenerator, cgan_train_step, one_hot
from tp3d_gan.dcgan import LOSSES, Discriminator, Generator, sample_noise, train_step, weights_init
from tp3d_gan.quality import QualityMeter, describe, load_classifier, meets_bar

log = logging.getLogger("tp3d_gan")

QUICK = {"epochs": 1, "limit": 2048, "batch_size": 64, "sample_every": 8, "eval_every": 16,
         "n_samples": 1000}
# The training budget is counted in iterations, so that the default trains as long on any data:
# the course's 5 epochs of full MNIST's 60,000 digits at batch 128.
MNIST_TRAIN_DIGITS = 60_000
DEFAULT_ITERATIONS = 5 * (MNIST_TRAIN_DIGITS // 128)  # 2,340

# The practical's experiments: each is the default DCGAN with these options changed.
EXPERIMENTS = {
    "ngf4": {"ngf": 4}, "ngf256": {"ngf": 256},
    "ndf4": {"ndf": 4}, "ndf256": {"ndf": 256},
    "default-init": {"default_init": True},
    "minimax": {"loss": "minimax"},
    "lr-equal": {"lr_d": 2e-4, "lr_g": 2e-4},
    "lr-high": {"lr_d": 1e-3, "lr_g": 2e-3},
    "lr-low": {"lr_d": 5e-5, "lr_g": 1e-4},
    "epochs30": {"iterations": 30 * (MNIST_TRAIN_DIGITS // 128), "epochs": None},  # 14,040
    "nz10": {"nz": 10}, "nz1000": {"nz": 1000},
}


# ----------------------------------------------------------------------------- data

def load_training_set(args) -> tuple[torch.Tensor, torch.Tensor]:
    """MNIST training digits, padded to 32x32 (or resized to 64x64), in [-1, 1].

    On the fallback digits the GAN also trains on their test split, since it needs none:
    the quality classifier, which does, is trained and scored on its own split."""
    data = load_mnist(args.data_dir, "train", size=32)
    images, labels = data.images, data.labels
    if data.source != "mnist":
        test = load_mnist(args.data_dir, "test", size=32)
        images, labels = torch.cat([images, test.images]), torch.cat([labels, test.labels])
    if args.quick:
        images, labels = images[:QUICK["limit"]], labels[:QUICK["limit"]]
    images = images * 2 - 1  # (N, 1, 32, 32)
    if args.image_size == 64:
        images = F.interpolate(images, scale_factor=2, mode="bilinear", align_corners=False)
    log.info("data: %d training images (%s), %dx%d", len(images), data.source, args.image_size,
             args.image_size)
    return images, labels


def iteration_budget(args, n_batches: int) -> int:
    """Training iterations: ``--epochs`` passes over the data when given, else ``--iterations``."""
    return args.epochs * n_batches if args.epochs is not None else args.iterations


# ----------------------------------------------------------------------------- sampling

class Sampler:
    """Draws images from G with fixed seeds; conditional GANs get the labels asked for."""

    def __init__(self, G, nz: int, conditional: bool, device):
        self.G, self.nz, self.conditional, self.device = G, nz, conditional, device

    @torch.inference_mode()
    def __call__(self, z: torch.Tensor, labels: torch.Tensor | None = None) -> torch.Tensor:
        was_training = self.G.training
        self.G.eval()  # BatchNorm with its running statistics: samples do not depend on the batch
        z = z.to(self.device)
        out = self.G(z, one_hot(labels.to(self.device))) if self.conditional else self.G(z)
        self.G.train(was_training)
        return out.float().cpu()

    def many(self, n: int, seed: int, batch: int = 500):
        """n samples (n, 1, S, S) and, for a cGAN, their labels (balanced classes)."""
        gen = torch.Generator().manual_seed(seed)
        labels = torch.arange(n) % 10 if self.conditional else None
        images = [self(sample_noise(min(batch, n - i), self.nz, generator=gen),
                       None if labels is None else labels[i:i + batch]) for i in range(0, n, batch)]
        return torch.cat(images), labels

    def grid_inputs(self, seed: int):
        """The fixed noise of the progress grids: 64 z, or 10 styles x 10 classes for a cGAN."""
        gen = torch.Generator().manual_seed(seed)
        if not self.conditional:
            return sample_noise(64, self.nz, generator=gen), None, 8
        styles = sample_noise(10, self.nz, generator=gen)  # one column per style
        return styles.repeat(10, 1, 1, 1), torch.arange(10).repeat_interleave(10), 10


def for_classifier(images: torch.Tensor) -> torch.Tensor:
    """The quality classifier reads 32x32 digits: 64x64 samples are averaged down."""
    return F.avg_pool2d(images, 2) if images.shape[-1] == 64 else images


# ----------------------------------------------------------------------------- training

def build(args, conditional: bool):
    if conditional:
        G, D = CondGenerator(args.nz, args.width), CondDiscriminator(args.width)
    else:
        G = Generator(args.nz, args.ngf, image_size=args.image_size)
        D = Discriminator(args.ndf, image_size=args.image_size)
    if not args.default_init:
        G.apply(weights_init)
        D.apply(weights_init)
    # channels_last: the layout oneDNN and cuDNN convolve fastest; results change only by rounding.
    return (G.to(args.device, memory_format=torch.channels_last),
            D.to(args.device, memory_format=torch.channels_last))


def fit(args, conditional: bool = False) -> dict:
    """Train a DCGAN (or cDCGAN) and write its figures, numbers, checkpoint and samples."""
    if args.quick:
        for key in ("epochs", "batch_size", "sample_every", "eval_every", "n_samples"):
            setattr(args, key, QUICK[key])
    out = args.out_dir / args.name
    images, labels = load_training_set(args)
    if args.device.type == "cuda":  # 250 MB: on the GPU once, no copy per batch
        images, labels = images.to(args.device), labels.to(args.device)
    n_batches = len(images) // args.batch_size  # the last incomplete batch is dropped
    if n_batches == 0:
        raise UserError(f"--batch-size {args.batch_size} is larger than the {len(images)} images")
    total = iteration_budget(args, n_batches)

    G, D = build(args, conditional)
    opt_G = torch.optim.Adam(G.parameters(), lr=args.lr_g, betas=(args.beta1, 0.999))
    opt_D = torch.optim.Adam(D.parameters(), lr=args.lr_d, betas=(args.beta1, 0.999))
    sampler = Sampler(G, args.nz, conditional, args.device)
    grid_z, grid_y, nrow = sampler.grid_inputs(args.seed)
    classifier, classifier_info = load_classifier(args.data_dir, args.device, quick=args.quick)
    meter = QualityMeter(classifier, args.data_dir, args.device)
    save_config(args, out, iterations=total, training_images=len(images), conditional=conditional,
                parameters={"G": sum(p.numel() for p in G.parameters()),
                            "D": sum(p.numel() for p in D.parameters())},
                classifier=classifier_info)

    history = {k: [] for k in ("loss_D", "loss_G", "D_x", "D_G_z1", "D_G_z2")}
    snapshots, quality = [], []  # (iteration, grid), (iteration, scores)
    bar_reached = None  # the first (iteration, scores) that meet the quality bar
    train_seconds, started, it = 0.0, time.perf_counter(), 0
    bar = tqdm(total=total, desc="cDCGAN" if conditional else "DCGAN", unit="it")
    while it < total:
        order = torch.randperm(len(images))
        for b in range(min(n_batches, total - it)):
            t0 = time.perf_counter()
            idx = order[b * args.batch_size:(b + 1) * args.batch_size]
            real = images[idx.to(images.device)]
            with autocast(args.device, args.precision):
                if conditional:
                    stats = cgan_train_step(G, D, opt_G, opt_D, real, labels[idx.to(labels.device)],
                                            args.nz, args.loss)
                else:
                    stats = train_step(G, D, opt_G, opt_D, real, args.nz, args.loss)
            train_seconds += time.perf_counter() - t0
            for k, v in stats.items():
                history[k].append(v)
            it += 1
            bar.update()
            if it % args.sample_every == 0 or it == total:
                fake = sampler(grid_z, grid_y)
                save_image_grid(fake, out / "samples" / f"iter_{it:05d}.png", nrow=nrow)
                snapshots.append((it, grid_array(fake, nrow=nrow)))
            if it % args.eval_every == 0 or it == total:
                fake, asked = sampler.many(1000, args.seed + 1)
                scores = meter(for_classifier(fake), asked)
                quality.append((it, {**scores, "seconds": round(time.perf_counter() - started, 1)}))
                if bar_reached is None and not conditional and meets_bar(scores):
                    bar_reached = quality[-1]
                    log.info("quality bar reached at iteration %d (epoch %.2f), %.1f s after the start",
                             it, it / n_batches, bar_reached[1]["seconds"])
                bar.set_postfix(epoch=(it - 1) // n_batches + 1, loss_D=f"{float(stats['loss_D']):.2f}",
                                loss_G=f"{float(stats['loss_G']):.2f}",
                                conf=f"{quality[-1][1]['mean_confidence']:.2f}")
    bar.close()
    history = {k: torch.stack(v).float().cpu().numpy() for k, v in history.items()}
    samples, asked = sampler.many(args.n_samples, args.seed + 2)
    final = meter(for_classifier(samples), asked)
    seconds = time.perf_counter() - started

    write_outputs(args, out, G, history, snapshots, quality, samples, asked, nrow, grid_z, grid_y,
                  sampler, conditional)
    metrics = {"iterations": total, "epochs": round(total / n_batches, 2), "seconds": round(seconds, 1),
               "train_seconds": round(train_seconds, 1),
               "ms_per_iteration": round(1000 * train_seconds / total, 1),
               "final_losses": {k: float(np.mean(v[-min(50, len(v)):])) for k, v in history.items()},
               "precision": args.precision, "quality": final, "quality_samples": len(samples),
               "quality_bar_reached": None if bar_reached is None else
               {"iteration": bar_reached[0], "seconds": bar_reached[1]["seconds"]},
               "classifier_test_accuracy": classifier_info["test_accuracy"],
               "quality_history": [{"iteration": i, **q} for i, q in quality],
               "history": history}
    save_json(metrics, out / "metrics.json")
    log.info("%d iterations in %.1f s (training %.0f ms/it); %d samples: %s", total, seconds,
             metrics["ms_per_iteration"], len(samples), describe(final))
    log.info("wrote %s: samples_final.png, losses.png, d_outputs.png, quality.png, progress.png/.gif, "
             "samples/, generator.pt, samples.npy%s, metrics.json, config.json", out,
             ", labels.npy" if conditional else "")
    return metrics


def write_outputs(args, out, G, history, snapshots, quality, samples, asked, nrow, grid_z, grid_y,
                  sampler, conditional):
    final_grid = sampler(grid_z, grid_y)
    save_image_grid(final_grid, out / "samples_final.png", nrow=nrow)
    kind = "cDCGAN" if conditional else "DCGAN"
    save_curves({"D": history["loss_D"], "G": history["loss_G"]}, out / "losses.png", ylabel="loss",
                title=f"{kind} losses ({args.loss} generator loss)", smooth=25)
    save_curves({"D(x)": history["D_x"], "D(G(z))": history["D_G_z1"]}, out / "d_outputs.png",
                ylabel="mean discriminator output", title="D on real and generated images", smooth=25)
    its = [i for i, _ in quality]
    curves = {"mean confidence": [q["mean_confidence"] for _, q in quality],
              "smallest class share x10": [10 * q["min_class_fraction"] for _, q in quality]}
    if conditional:
        curves["label accuracy"] = [q["label_accuracy"] for _, q in quality]
    save_curves(curves, out / "quality.png", x=its, ylabel="score",
                title=f"{kind} quality over training (1,000 samples, MNIST classifier)")
    save_curves({"Fréchet distance": [q["frechet_distance"] for _, q in quality]},
                out / "frechet.png", x=its, ylabel="distance (classifier features)", logy=True,
                title="Fréchet distance to real test digits")
    strip = snapshots if len(snapshots) <= 8 else [
        snapshots[i] for i in np.linspace(0, len(snapshots) - 1, 8).round().astype(int)]
    save_image_table([g for _, g in strip], out / "progress.png", ncols=len(strip),
                     titles=[f"iteration {i}" for i, _ in strip], suptitle="fixed noise over training")
    frames = [Image.fromarray((g * 255).astype(np.uint8)) for _, g in snapshots]
    frames[0].save(out / "progress.gif", save_all=True, append_images=frames[1:], duration=200, loop=0)
    torch.save({"state_dict": G.state_dict(), "conditional": conditional, "nz": args.nz,
                "ngf": args.ngf, "width": args.width, "image_size": args.image_size},
               out / "generator.pt")
    np.save(out / "samples.npy", samples.numpy().astype(np.float32))
    if asked is not None:
        np.save(out / "labels.npy", asked.numpy().astype(np.int64))


# ----------------------------------------------------------------------------- subcommands

def train(args) -> dict:
    return fit(args, conditional=False)


def cgan(args) -> dict:
    if args.image_size != 32:
        raise UserError("the conditional DCGAN is defined at 32x32 only")
    return fit(args, conditional=True)


def experiment(args) -> dict:
    """Run experiments of the practical, each a DCGAN with a few options changed."""
    names = list(EXPERIMENTS) if "all" in args.names else args.names
    unknown = [n for n in names if n not in EXPERIMENTS]
    if unknown:
        raise UserError(f"unknown experiment {', '.join(unknown)}; choose from all, {', '.join(EXPERIMENTS)}")
    results = {}
    for name in names:
        run = experiment_args(args, name)
        log.info("experiment %s: %s", name, EXPERIMENTS[name])
        metrics = fit(run)
        results[name] = {"changes": EXPERIMENTS[name], "iterations": metrics["iterations"],
                         "epochs": metrics["epochs"],
                         "ms_per_iteration": metrics["ms_per_iteration"], **metrics["quality"]}
    summarise_experiments(args.out_dir / "experiments", results)
    return results


def experiment_args(args, name: str) -> argparse.Namespace:
    """The options of experiment ``name``: the command's, with the experiment's changes and
    ``--epochs-override`` on top."""
    run = argparse.Namespace(**{**vars(args), **EXPERIMENTS[name], "name": f"experiments/{name}"})
    if args.epochs_override:
        run.epochs = args.epochs_override
    return run


def summarise_experiments(folder: Path, results: dict) -> None:
    """Table (JSON and Markdown) and one figure with every experiment's final samples."""
    previous = load_json(folder / "summary.json") if (folder / "summary.json").is_file() else {}
    results = {**previous, **results}  # runs made separately add up in one table
    save_json(results, folder / "summary.json")
    table = markdown_table(
        ["experiment", "changes", "iterations", "epochs", "classes", "smallest class", "confidence",
         "Fréchet", "ms/it"],
        [[name, r["changes"], r.get("iterations", ""), r["epochs"], r["classes_present"],
          f"{100 * r['min_class_fraction']:.1f}%",
          f"{r['mean_confidence']:.3f}", f"{r['frechet_distance']:.2f}", r["ms_per_iteration"]]
         for name, r in results.items()], left=2)
    (folder / "summary.md").write_text(table)
    grids = [np.asarray(Image.open(folder / n / "samples_final.png").convert("RGB")) / 255.0
             for n in results]
    save_image_table(grids, folder / "summary.png", ncols=4, cell_size=3.2,
                     titles=[f"{n}\nconf {r['mean_confidence']:.2f}, FD {r['frechet_distance']:.1f}"
                             for n, r in results.items()])
    print(table, end="")


def load_generator(path: Path, device):
    if not path.is_file():
        raise UserError(f"no trained generator at {path}: train one first with "
                        f"'python tp3d_gan/main.py train' (or pass --checkpoint)")
    saved = torch.load(path, map_location="cpu", weights_only=True)
    if saved["conditional"]:
        G = CondGenerator(saved["nz"], saved["width"])
    else:
        G = Generator(saved["nz"], saved["ngf"], image_size=saved["image_size"])
    G.load_state_dict(saved["state_dict"])
    return G.to(device).eval(), saved


def interpolate(args) -> dict:
    """Images of G(alpha z1 + (1 - alpha) z2) for alpha from 0 to 1, one row per pair."""
    path = args.checkpoint or args.out_dir / "dcgan" / "generator.pt"
    G, saved = load_generator(Path(path), args.device)
    gen = torch.Generator().manual_seed(args.seed)
    z1, z2 = sample_noise(args.pairs, saved["nz"], generator=gen), sample_noise(args.pairs, saved["nz"], generator=gen)
    alphas = torch.linspace(0, 1, args.steps)
    z = torch.stack([a * z1 + (1 - a) * z2 for a in alphas], dim=1).flatten(0, 1)  # (pairs*steps, nz, 1, 1)
    labels = torch.arange(args.pairs).repeat_interleave(args.steps) % 10 if saved["conditional"] else None
    images = Sampler(G, saved["nz"], saved["conditional"], args.device)(z, labels)
    path_png = save_image_grid(images, args.out_dir / "interpolation.png", nrow=args.steps)
    print(f"wrote {path_png}: {args.pairs} rows of alpha = 0 ... 1 in {args.steps} steps")
    return {"path": str(path_png)}


def classifier(args) -> dict:
    """Train (once) and evaluate the MNIST classifier that measures sample quality."""
    _, info = load_classifier(args.data_dir, args.device, quick=args.quick)
    print(f"MNIST classifier: {100 * info['test_accuracy']:.2f}% test accuracy on "
          f"{info['test_images']:,} images ({info['mnist_source']})")
    save_json(info, args.out_dir / "classifier.json")
    return info


# ----------------------------------------------------------------------------- command line

def add_training_options(p, conditional: bool = False) -> None:
    p.add_argument("--iterations", type=cli.positive_int, default=DEFAULT_ITERATIONS,
                   help="training length in batches, whatever the number of digits: the course's "
                        "5 epochs of full MNIST's 60,000 digits at batch 128; --epochs, when given, "
                        "replaces it")
    p.add_argument("--epochs", type=cli.positive_int, default=None,
                   help="passes over the training digits, as the handout counts them (5 epochs "
                        "of full MNIST = the default --iterations); when given, it wins over "
                        "--iterations (default: unset)")
    p.add_argument("--batch-size", type=int, default=128, help="images per batch")
    # The handout's rates are 2e-4 (D) and 5e-4 (G); the DCGAN's defaults are twice them, which
    # its bias-free networks need to pass the quality bar within the default 2,340 iterations.
    lr_d, lr_g = (2e-4, 5e-4) if conditional else (4e-4, 1e-3)
    p.add_argument("--lr-d", type=float, default=lr_d,
                   help="Adam learning rate of D" + ("" if conditional else " (the handout: 2e-4)"))
    p.add_argument("--lr-g", type=float, default=lr_g,
                   help="Adam learning rate of G" + ("" if conditional else " (the handout: 5e-4)"))
    p.add_argument("--beta1", type=float, default=0.5, help="Adam beta1")
    p.add_argument("--nz", type=int, default=100, help="size of the latent vector z")
    p.add_argument("--ngf", type=int, default=32, help="width of the DCGAN generator")
    p.add_argument("--ndf", type=int, default=32, help="width of the DCGAN discriminator")
    p.add_argument("--width", type=int, default=64, help="width w of the cDCGAN (the course: 64)")
    p.add_argument("--image-size", type=int, choices=(32, 64), default=32,
                   help="32, or 64 for the DCGAN with one more block")
    p.add_argument("--loss", choices=LOSSES, default="non-saturating", help="generator loss")
    p.add_argument("--default-init", action="store_true",
                   help="keep PyTorch's default initialisation instead of N(0, 0.02)")
    p.add_argument("--sample-every", type=int, default=200, help="iterations between sample grids")
    p.add_argument("--eval-every", type=int, default=250,
                   help="iterations between quality measurements (1,000 samples each)")
    p.add_argument("--n-samples", type=int, default=10000,
                   help="final samples: scored, and saved to samples.npy")
    p.add_argument("--name", default="cgan" if conditional else "dcgan",
                   help="run name: outputs go to OUT_DIR/NAME/")
    cli.precision_option(p, "faster steps on such hardware, but not sooner to the quality bar, and a worse "
                            "generator at the end")


def build_parser():
    parser, sub = cli.make_parser("tp3d_gan", __doc__, default_command="train")
    p = cli.add_command(sub, "train", train, "train the DCGAN: the course's settings by default "
                        "(2,340 iterations, the course's 5 epochs of full MNIST: a few minutes on a "
                        "laptop CPU)")
    add_training_options(p)
    p = cli.add_command(sub, "cgan", cgan, "train the conditional DCGAN (class x style grid, "
                        "label accuracy): about half an hour on a laptop CPU, minutes on a GPU")
    add_training_options(p, conditional=True)
    p = cli.add_command(sub, "experiment", experiment, "run experiments of the practical: "
                        + ", ".join(EXPERIMENTS) + ", or all (hours on a laptop CPU, where the wide "
                        "networks of ngf256 and ndf256 are slow; minutes each on a GPU)")
    add_training_options(p)
    p.add_argument("names", nargs="+", metavar="NAME", help="experiments to run, or all")
    p.add_argument("--epochs-override", type=cli.positive_int, default=None,
                   help="train every experiment this many passes over the training digits, "
                        "epochs30 included (e.g. 1 for a quick look; default: unset)")
    p = cli.add_command(sub, "interpolate", interpolate, "latent interpolation between pairs of z")
    p.add_argument("--checkpoint", type=Path, default=None,
                   help="generator.pt of a run (default: OUT_DIR/dcgan/generator.pt)")
    p.add_argument("--pairs", type=int, default=8, help="pairs (z1, z2), one row each")
    p.add_argument("--steps", type=int, default=10, help="values of alpha from 0 to 1")
    cli.add_command(sub, "classifier", classifier, "train (once) and evaluate the MNIST "
                    "classifier that measures sample quality")
    return parser


def main(argv=None) -> int:
    return cli.run(build_parser(), argv)


if __name__ == "__main__":
    sys.exit(main())

"""Practical 3-d: train a DCGAN on MNIST (32x32) and look at what it generates.

Run from the repository root:  python tp3d_gan/main.py            (the default DCGAN)
                               python tp3d_gan/main.py --quick    (seconds, for a smoke test)
"""
import logging
import sys
import time
from pathlib import Path

if __package__ in (None, ""):  # run as a script: make the repository root importable
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import numpy as np  # noqa: E402
import torch  # noqa: E402
from tqdm import tqdm  # noqa: E402

from common import cli  # noqa: E402
from common.errors import UserError  # noqa: E402
from common.datasets import load_mnist  # noqa: E402
from common.plotting import grid_array, save_curves, save_image_grid, save_image_table  # noqa: E402
from common.results import save_config, save_json  # noqa: E402
from tp3d_gan.dcgan import LOSSES, Discriminator, Generator, sample_noise, train_step, weights_init  # noqa: E402

log = logging.getLogger("tp3d_gan")

QUICK = {"epochs": 1, "limit": 2048, "batch_size": 64, "sample_every": 8}


def load_training_images(args) -> torch.Tensor:
    """MNIST training digits padded to 32x32 and scaled to [-1, 1]: (N, 1, 32, 32)."""
    data = load_mnist(args.data_dir, "train", size=32, limit=QUICK["limit"] if args.quick else None)
    log.info("data: %d training images (%s)", len(data), data.source)
    return data.images * 2 - 1


def train(args) -> dict:
    """Train a DCGAN and write its figures, numbers, checkpoint and samples."""
    if args.quick:
        args.epochs, args.batch_size, args.sample_every = QUICK["epochs"], QUICK["batch_size"], QUICK["sample_every"]
    out = args.out_dir / args.name
    device = args.device
    images = load_training_images(args)
    n_batches = len(images) // args.batch_size  # drop the last incomplete batch
    if n_batches == 0:
        raise UserError(f"--batch-size {args.batch_size} is larger than the {len(images)} images")
    total = args.epochs * n_batches

    G = Generator(args.nz, args.ngf).to(device)
    D = Discriminator(args.ndf).to(device)
    if not args.default_init:
        G.apply(weights_init)
        D.apply(weights_init)
    opt_G = torch.optim.Adam(G.parameters(), lr=args.lr_g, betas=(args.beta1, 0.999))
    opt_D = torch.optim.Adam(D.parameters(), lr=args.lr_d, betas=(args.beta1, 0.999))
    fixed_z = sample_noise(64, args.nz, generator=torch.Generator().manual_seed(args.seed)).to(device)
    save_config(args, out, iterations=total, training_images=len(images))

    history = {k: [] for k in ("loss_D", "loss_G", "D_x", "D_G_z1", "D_G_z2")}
    snapshots = []  # (iteration, grid of the fixed noise)
    started = time.perf_counter()
    bar = tqdm(total=total, desc="DCGAN", unit="it")
    it = 0
    for epoch in range(args.epochs):
        order = torch.randperm(len(images))
        for b in range(n_batches):
            real = images[order[b * args.batch_size:(b + 1) * args.batch_size]].to(device)
            stats = train_step(G, D, opt_G, opt_D, real, args.nz, args.loss)
            for k, v in stats.items():
                history[k].append(v)
            it += 1
            bar.update()
            if it % args.sample_every == 0 or it == total:
                snapshots.append((it, snapshot(G, fixed_z, out / "samples" / f"iter_{it:05d}.png")))
                bar.set_postfix(epoch=epoch + 1, loss_D=f"{float(stats['loss_D']):.3f}",
                                loss_G=f"{float(stats['loss_G']):.3f}")
    bar.close()
    seconds = time.perf_counter() - started
    history = {k: torch.stack(v).float().cpu().numpy() for k, v in history.items()}

    snapshot(G, fixed_z, out / "samples_final.png")
    save_curves({"D": history["loss_D"], "G": history["loss_G"]}, out / "losses.png",
                ylabel="loss", title=f"DCGAN losses ({args.loss} generator loss)", smooth=25)
    save_curves({"D(x)": history["D_x"], "D(G(z))": history["D_G_z1"]}, out / "d_outputs.png",
                ylabel="mean discriminator output", title="D on real and generated images", smooth=25)
    strip = snapshots if len(snapshots) <= 8 else [snapshots[i] for i in
                                                 np.linspace(0, len(snapshots) - 1, 8).round().astype(int)]
    save_image_table([g for _, g in strip], out / "progress.png", titles=[f"iteration {i}" for i, _ in strip],
                     ncols=len(strip), suptitle="fixed noise over training")
    torch.save({"state_dict": G.state_dict(), "nz": args.nz, "ngf": args.ngf}, out / "generator.pt")
    samples = generate(G, args.n_samples, args.nz, device, args.seed)
    np.save(out / "samples.npy", samples)

    metrics = {"iterations": total, "epochs": args.epochs, "seconds": round(seconds, 1),
               "ms_per_iteration": round(1000 * seconds / total, 1),
               "final": {k: float(np.mean(v[-min(50, len(v)):])) for k, v in history.items()},
               "history": history}
    save_json(metrics, out / "metrics.json")
    log.info("trained %d iterations in %.1f s (%.0f ms/it); last 50: loss_D %.3f, loss_G %.3f, "
             "D(x) %.2f, D(G(z)) %.2f", total, seconds, metrics["ms_per_iteration"],
             metrics["final"]["loss_D"], metrics["final"]["loss_G"], metrics["final"]["D_x"],
             metrics["final"]["D_G_z1"])
    log.info("wrote %s: samples_final.png, losses.png, d_outputs.png, progress.png, samples/, "
             "generator.pt, samples.npy, metrics.json, config.json", out)
    return metrics


@torch.inference_mode()
def snapshot(G, z: torch.Tensor, path: Path) -> np.ndarray:
    """Save G(z) as a grid PNG (G in eval mode for BatchNorm) and return the grid array."""
    G.eval()
    fake = G(z).cpu()
    G.train()
    save_image_grid(fake, path, nrow=8)
    return grid_array(fake, nrow=8)


@torch.inference_mode()
def generate(G, n: int, nz: int, device, seed: int, batch: int = 500) -> np.ndarray:
    """n samples of G as float32 (n, 1, 32, 32) in [-1, 1]."""
    G.eval()
    gen = torch.Generator().manual_seed(seed + 1)
    out = [G(sample_noise(min(batch, n - i), nz, generator=gen).to(device)).cpu()
           for i in range(0, n, batch)]
    G.train()
    return torch.cat(out).numpy().astype(np.float32)


def build_parser():
    parser, sub = cli.make_parser("tp3d_gan", __doc__, default_command="train")
    p = cli.add_command(sub, "train", train, "train the DCGAN (default: the course's settings, "
                        "5 epochs on the 60,000 MNIST digits, a few minutes on a laptop CPU)")
    p.add_argument("--epochs", type=int, default=5, help="passes over the training set")
    p.add_argument("--batch-size", type=int, default=128, help="images per batch")
    p.add_argument("--lr-d", type=float, default=2e-4, help="Adam learning rate of D")
    p.add_argument("--lr-g", type=float, default=5e-4, help="Adam learning rate of G")
    p.add_argument("--beta1", type=float, default=0.5, help="Adam beta1")
    p.add_argument("--nz", type=int, default=100, help="size of the latent vector z")
    p.add_argument("--ngf", type=int, default=32, help="width of the generator")
    p.add_argument("--ndf", type=int, default=32, help="width of the discriminator")
    p.add_argument("--loss", choices=LOSSES, default="non-saturating", help="generator loss")
    p.add_argument("--default-init", action="store_true",
                   help="keep PyTorch's default initialisation instead of N(0, 0.02)")
    p.add_argument("--sample-every", type=int, default=200, help="iterations between sample grids")
    p.add_argument("--n-samples", type=int, default=1000, help="samples saved to samples.npy")
    p.add_argument("--name", default="dcgan", help="run name: outputs go to OUT_DIR/NAME/")
    return parser


def main(argv=None) -> int:
    return cli.run(build_parser(), argv)


if __name__ == "__main__":
    sys.exit(main())

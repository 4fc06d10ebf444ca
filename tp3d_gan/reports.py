"""What a run of practical 3-d leaves on disk: its figures, its generator and samples, and
the table and figure that compare the experiments."""
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from common.plotting import save_curves, save_image_grid, save_image_table
from common.results import load_json, markdown_table, save_json


def save_figures(out: Path, run, conditional: bool, loss: str) -> None:
    """The figures of a training (``run``, a :class:`tp3d_gan.training.TrainingRun`) trained
    with generator loss ``loss``: the final fixed-noise grid, the losses, D's outputs, the
    quality and the Fréchet distance over training, the progress strip and its GIF."""
    grid_z, grid_y, nrow = run.grid
    save_image_grid(run.sampler(grid_z, grid_y), out / "samples_final.png", nrow=nrow)
    kind, history, quality = "cDCGAN" if conditional else "DCGAN", run.history, run.quality
    save_curves({"D": history["loss_D"], "G": history["loss_G"]}, out / "losses.png", ylabel="loss",
                title=f"{kind} losses ({loss} generator loss)", smooth=25)
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
    snapshots = run.snapshots
    strip = snapshots if len(snapshots) <= 8 else [
        snapshots[i] for i in np.linspace(0, len(snapshots) - 1, 8).round().astype(int)]
    save_image_table([g for _, g in strip], out / "progress.png", ncols=len(strip),
                     titles=[f"iteration {i}" for i, _ in strip], suptitle="fixed noise over training")
    frames = [Image.fromarray((g * 255).astype(np.uint8)) for _, g in snapshots]
    frames[0].save(out / "progress.gif", save_all=True, append_images=frames[1:], duration=200, loop=0)


def save_generator(path: Path, G, *, conditional: bool, nz: int, ngf: int, width: int, image_size: int) -> None:
    """``generator.pt``: G's weights and what rebuilds it (read by
    :func:`tp3d_gan.sampling.load_generator`)."""
    torch.save({"state_dict": G.state_dict(), "conditional": conditional, "nz": nz, "ngf": ngf, "width": width,
                "image_size": image_size}, path)


def save_samples(out: Path, samples: torch.Tensor, labels: torch.Tensor | None) -> None:
    """``samples.npy`` (N, 1, S, S) float32 in [-1, 1] and, for a cGAN, ``labels.npy`` (N,)."""
    np.save(out / "samples.npy", samples.numpy().astype(np.float32))
    if labels is not None:
        np.save(out / "labels.npy", labels.numpy().astype(np.int64))


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

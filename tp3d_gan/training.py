"""Training the DCGAN (or the cDCGAN) of practical 3-d, and measuring it as it trains.

:func:`fit` is one whole run: the digits, the two networks, the quality meter, the loop of
:func:`train` (the student's ``train_step`` epoch after epoch), then the final samples, the
figures and the numbers, written under ``OUT_DIR/NAME/``.
"""
import dataclasses
import logging

import numpy as np
import torch
from tqdm.auto import tqdm

from common.device import autocast
from common.loop import History, StepTimer, batches_per_epoch, due
from common.plotting import grid_array, save_image_grid
from common.results import save_config, save_json
from tp3d_gan import reports
from tp3d_gan.cdcgan import CondDiscriminator, CondGenerator, cgan_train_step
from tp3d_gan.data import load_training_set
from tp3d_gan.dcgan import Discriminator, Generator, train_step, weights_init
from tp3d_gan.quality import QualityMeter, describe, load_classifier, meets_bar
from tp3d_gan.sampling import Sampler, for_classifier
from tp3d_gan.settings import TrainSettings

log = logging.getLogger(__name__)

STATS = ("loss_D", "loss_G", "D_x", "D_G_z1", "D_G_z2")  # what train_step returns, per iteration
EVAL_SAMPLES = 1000  # samples scored at each quality measurement during training


def iteration_budget(settings: TrainSettings, n_batches: int) -> int:
    """Training iterations: ``--epochs`` passes of ``n_batches`` when given, else ``--iterations``."""
    return settings.epochs * n_batches if settings.epochs is not None else settings.iterations


def build(settings: TrainSettings, conditional: bool):
    """G and D (the cDCGAN's when ``conditional``), initialised N(0, 0.02) unless
    ``default_init``, on the device."""
    if conditional:
        G, D = CondGenerator(settings.nz, settings.width), CondDiscriminator(settings.width)
    else:
        G = Generator(settings.nz, settings.ngf, image_size=settings.image_size)
        D = Discriminator(settings.ndf, image_size=settings.image_size)
    if not settings.default_init:
        G.apply(weights_init)
        D.apply(weights_init)
    # channels_last: the layout oneDNN and cuDNN convolve fastest; results change only by rounding.
    return (G.to(settings.device, memory_format=torch.channels_last),
            D.to(settings.device, memory_format=torch.channels_last))


@dataclasses.dataclass
class TrainingRun:
    """What :func:`train` leaves: the trained G and its sampler, the fixed inputs of the
    progress grids, the per-iteration statistics, the grids and scores along the way."""

    G: torch.nn.Module
    sampler: Sampler
    grid: tuple  # (z, labels or None, images per row) of the fixed-noise grids
    history: dict[str, np.ndarray]  # STATS, one value per iteration
    snapshots: list  # (iteration, grid image (H, W, 3) in [0, 1])
    quality: list  # (iteration, scores of EVAL_SAMPLES samples, seconds since the start included)
    bar_reached: tuple | None  # the first (iteration, scores) that meet the quality bar
    iterations: int
    n_batches: int  # batches per epoch
    timer: StepTimer


def train(G, D, images, labels, settings: TrainSettings, conditional: bool, meter: QualityMeter, total: int,
          samples_dir) -> TrainingRun:
    """``total`` iterations of ``train_step`` (``cgan_train_step`` when ``conditional``) on
    batches of ``images`` (N, 1, S, S) and ``labels`` (N,), a new shuffle every epoch (the
    last incomplete batch dropped). Every ``sample_every`` iterations the fixed-noise grid
    is saved into ``samples_dir``; every ``eval_every``, EVAL_SAMPLES samples are scored."""
    n_batches = batches_per_epoch(len(images), settings.batch_size)
    opt_G = torch.optim.Adam(G.parameters(), lr=settings.lr_g, betas=(settings.beta1, 0.999))
    opt_D = torch.optim.Adam(D.parameters(), lr=settings.lr_d, betas=(settings.beta1, 0.999))
    sampler = Sampler(G, settings.nz, conditional, settings.device)
    grid_z, grid_y, nrow = sampler.grid_inputs(settings.seed)
    history = History(STATS, settings.device)
    snapshots, quality, bar_reached = [], [], None
    timer, it, bs = StepTimer(), 0, settings.batch_size
    bar = tqdm(total=total, desc="cDCGAN" if conditional else "DCGAN", unit="it")
    while it < total:
        order = torch.randperm(len(images))
        for b in range(min(n_batches, total - it)):
            with timer:
                idx = order[b * bs:(b + 1) * bs]
                real = images[idx.to(images.device)]
                with autocast(settings.device, settings.precision):
                    if conditional:
                        stats = cgan_train_step(G, D, opt_G, opt_D, real, labels[idx.to(labels.device)],
                                                settings.nz, settings.loss)
                    else:
                        stats = train_step(G, D, opt_G, opt_D, real, settings.nz, settings.loss)
            history.add(stats)
            it += 1
            bar.update()
            if due(it, settings.sample_every, total):
                fake = sampler(grid_z, grid_y)
                save_image_grid(fake, samples_dir / f"iter_{it:05d}.png", nrow=nrow)
                snapshots.append((it, grid_array(fake, nrow=nrow)))
            if due(it, settings.eval_every, total):
                fake, asked = sampler.many(EVAL_SAMPLES, settings.seed + 1)
                scores = meter(for_classifier(fake), asked)
                quality.append((it, {**scores, "seconds": round(timer.seconds, 1)}))
                if bar_reached is None and not conditional and meets_bar(scores):
                    bar_reached = quality[-1]
                    log.info("quality bar reached at iteration %d (epoch %.2f), %.1f s after the start",
                             it, it / n_batches, bar_reached[1]["seconds"])
                bar.set_postfix(epoch=(it - 1) // n_batches + 1, loss_D=f"{float(stats['loss_D']):.2f}",
                                loss_G=f"{float(stats['loss_G']):.2f}",
                                conf=f"{quality[-1][1]['mean_confidence']:.2f}")
    bar.close()
    return TrainingRun(G, sampler, (grid_z, grid_y, nrow), history.stacked(), snapshots, quality, bar_reached,
                       total, n_batches, timer)


def fit(settings: TrainSettings, conditional: bool = False) -> dict:
    """Train a DCGAN (or cDCGAN) and write its figures, numbers, checkpoint and samples;
    return the numbers of ``metrics.json``."""
    out = settings.out_dir / settings.name
    images, labels = load_training_set(settings.data_dir, settings.image_size, settings.limit)
    if settings.device.type == "cuda":  # 250 MB: on the GPU once, no copy per batch
        images, labels = images.to(settings.device), labels.to(settings.device)
    total = iteration_budget(settings, batches_per_epoch(len(images), settings.batch_size))
    G, D = build(settings, conditional)
    classifier, classifier_info = load_classifier(settings.data_dir, settings.device,
                                                  quick=settings.quick_classifier)
    meter = QualityMeter(classifier, settings.data_dir, settings.device)
    save_config(settings, out, iterations=total, training_images=len(images), conditional=conditional,
                parameters={"G": sum(p.numel() for p in G.parameters()),
                            "D": sum(p.numel() for p in D.parameters())},
                classifier=classifier_info)

    run = train(G, D, images, labels, settings, conditional, meter, total, out / "samples")
    samples, asked = run.sampler.many(settings.n_samples, settings.seed + 2)
    final = meter(for_classifier(samples), asked)
    seconds = run.timer.seconds

    reports.save_figures(out, run, conditional, settings.loss)
    reports.save_generator(out / "generator.pt", G, conditional=conditional, nz=settings.nz, ngf=settings.ngf,
                           width=settings.width, image_size=settings.image_size)
    reports.save_samples(out, samples, asked)
    metrics = run_metrics(run, final, len(samples), seconds, settings.precision, classifier_info)
    save_json(metrics, out / "metrics.json")
    log.info("%d iterations in %.1f s (training %.0f ms/it); %d samples: %s", total, seconds,
             metrics["ms_per_iteration"], len(samples), describe(final))
    log.info("wrote %s: samples_final.png, losses.png, d_outputs.png, quality.png, progress.png/.gif, "
             "samples/, generator.pt, samples.npy%s, metrics.json, config.json", out,
             ", labels.npy" if conditional else "")
    return metrics


def run_metrics(run: TrainingRun, final: dict, n_samples: int, seconds: float, precision: str,
                classifier_info: dict) -> dict:
    """The numbers of ``metrics.json``: budget, timings, final losses and scores, the quality
    along the way and the per-iteration history."""
    total, reached = run.iterations, run.bar_reached
    return {"iterations": total, "epochs": round(total / run.n_batches, 2), "seconds": round(seconds, 1),
            "train_seconds": round(run.timer.train_seconds, 1),
            "ms_per_iteration": round(1000 * run.timer.train_seconds / total, 1),
            "final_losses": {k: float(np.mean(v[-min(50, len(v)):])) for k, v in run.history.items()},
            "precision": precision, "quality": final, "quality_samples": n_samples,
            "quality_bar_reached": None if reached is None else
            {"iteration": reached[0], "seconds": reached[1]["seconds"]},
            "classifier_test_accuracy": classifier_info["test_accuracy"],
            "quality_history": [{"iteration": i, **q} for i, q in run.quality],
            "history": run.history}

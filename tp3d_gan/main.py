"""Practical 3-d: GANs on MNIST. Train the course's DCGAN (default) or its conditional
version, run the experiments of the practical, and measure what comes out.

Run from the repository root:  python tp3d_gan/main.py            (the default DCGAN)
                               python tp3d_gan/main.py --quick    (seconds, for a smoke test)
                               python tp3d_gan/main.py cgan       (conditional DCGAN)
"""
import logging
import sys

from common import cli
from common.device import seed_everything
from common.errors import UserError
from common.plotting import save_image_grid
from common.results import save_json
from tp3d_gan import reports, training
from tp3d_gan.quality import load_classifier
from tp3d_gan.sampling import interpolation, load_generator
from tp3d_gan.settings import (EXPERIMENTS, AllSettings, CganSettings, ClassifierSettings, ExperimentSettings,
                               InterpolateSettings, TrainSettings, experiment_names,
                               experiment_settings)

log = logging.getLogger("tp3d_gan")


def train(settings: TrainSettings) -> dict:
    return training.fit(settings, conditional=False)


def cgan(settings: CganSettings) -> dict:
    if settings.image_size != 32:
        raise UserError("the conditional DCGAN is defined at 32x32 only")
    return training.fit(settings, conditional=True)


def experiment(settings: ExperimentSettings) -> dict:
    """Run experiments of the practical, each a DCGAN with a few settings changed."""
    results = {}
    for name in experiment_names(settings.names):
        log.info("experiment %s: %s", name, EXPERIMENTS[name])
        metrics = training.fit(experiment_settings(settings, name))
        results[name] = {"changes": EXPERIMENTS[name], "iterations": metrics["iterations"],
                         "epochs": metrics["epochs"],
                         "ms_per_iteration": metrics["ms_per_iteration"], **metrics["quality"]}
    reports.summarise_experiments(settings.out_dir / "experiments", results)
    return results


def interpolate(settings: InterpolateSettings) -> dict:
    """Images of G(alpha z1 + (1 - alpha) z2) for alpha from 0 to 1, one row per pair."""
    G, saved = load_generator(settings.checkpoint or settings.out_dir / "dcgan" / "generator.pt", settings.device)
    images = interpolation(G, saved["nz"], saved["conditional"], settings.device, settings.pairs, settings.steps,
                           settings.seed)
    path = save_image_grid(images, settings.out_dir / "interpolation.png", nrow=settings.steps)
    print(f"wrote {path}: {settings.pairs} rows of alpha = 0 ... 1 in {settings.steps} steps")
    return {"path": str(path)}


def classifier(settings: ClassifierSettings) -> dict:
    """Train (once) and evaluate the MNIST classifier that measures sample quality."""
    _, info = load_classifier(settings.data_dir, settings.device, quick=settings.quick_classifier)
    print(f"MNIST classifier: {100 * info['test_accuracy']:.2f}% test accuracy on "
          f"{info['test_images']:,} images ({info['mnist_source']})")
    save_json(info, settings.out_dir / "classifier.json")
    return info


def run_all(settings: AllSettings) -> dict:
    """Every run of the practical, each seeded as if run alone: the DCGAN, the cDCGAN, every
    experiment, then the interpolation of the DCGAN just trained."""
    runs = [("train", train, TrainSettings, {}), ("cgan", cgan, CganSettings, {}),
            ("experiment", experiment, ExperimentSettings, {"names": ["all"]}),
            ("interpolate", interpolate, InterpolateSettings, {})]
    results = {}
    for name, command, cls, changes in runs:
        seed_everything(settings.seed)
        results[name] = command(settings.derive(cls, command=name, **changes))
    return results


def build_parser():
    parser, sub = cli.make_parser("tp3d_gan", __doc__, default_command="train")
    cli.add_command(sub, "train", train, "train the DCGAN: the course's settings by default (2,340 iterations, "
                    "the course's 5 epochs of full MNIST: a few minutes on a laptop CPU)", settings=TrainSettings)
    cli.add_command(sub, "cgan", cgan, "train the conditional DCGAN (class x style grid, label accuracy): about "
                    "half an hour on a laptop CPU, minutes on a GPU", settings=CganSettings)
    cli.add_command(sub, "experiment", experiment, "run experiments of the practical: " + ", ".join(EXPERIMENTS)
                    + ", or all (hours on a laptop CPU, where the wide networks of ngf256 and ndf256 are slow; "
                    "minutes each on a GPU)", settings=ExperimentSettings)
    cli.add_command(sub, "interpolate", interpolate, "latent interpolation between pairs of z",
                    settings=InterpolateSettings)
    cli.add_command(sub, "classifier", classifier, "train (once) and evaluate the MNIST classifier that measures "
                    "sample quality", settings=ClassifierSettings)
    cli.add_command(sub, "all", run_all, "every run of the practical, each with its defaults: train, cgan, "
                    "experiment all, then interpolate (hours on a CPU: about 4 on a laptop; with --quick, "
                    "minutes)", settings=AllSettings)
    return parser


def main(argv=None) -> int:
    return cli.run(build_parser(), argv)


if __name__ == "__main__":
    sys.exit(main())

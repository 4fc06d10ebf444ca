"""The settings of each command of practical 3-d, and the practical's experiments.

Each class is at once the typed settings a command receives and its command-line options
(see :mod:`common.cli`); ``QUICK`` holds the budget of ``--quick``. The fields declared
without :func:`common.cli.option` are budgets that only ``--quick`` changes.
"""
import dataclasses
from pathlib import Path

from common import cli
from common.errors import UserError
from tp3d_gan.dcgan import LOSSES

# The training budget is counted in iterations, so that the default trains as long on any data:
# the course's 5 epochs of full MNIST's 60,000 digits at batch 128.
MNIST_TRAIN_DIGITS = 60_000
DEFAULT_ITERATIONS = 5 * (MNIST_TRAIN_DIGITS // 128)  # 2,340

# The practical's experiments: each is the default DCGAN with these settings changed.
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

TRAINING, NETWORKS, OUTPUTS = "training", "networks", "outputs"
_PRECISION_EFFECT = ("faster steps on such hardware, but not sooner to the quality bar, and a worse generator "
                     "at the end")


@dataclasses.dataclass(kw_only=True)
class TrainSettings(cli.Settings):
    """``train``: the DCGAN. The course's rates for D and G are 2e-4 and 5e-4; the defaults
    are twice them, which its bias-free networks need to pass the quality bar within the
    default 2,340 iterations."""

    QUICK = {"epochs": 1, "limit": 2048, "batch_size": 64, "sample_every": 8, "eval_every": 16,
             "n_samples": 1000, "quick_classifier": True}

    iterations: int = cli.option(
        DEFAULT_ITERATIONS, "training length in batches, whatever the number of digits: the course's 5 epochs of "
        "full MNIST's 60,000 digits at batch 128; --epochs, when given, replaces it",
        type=cli.positive_int, group=TRAINING)
    epochs: int | None = cli.option(
        None, "passes over the training digits, as the handout counts them (5 epochs of full MNIST = the "
        "default --iterations); when given, it wins over --iterations (default: unset)",
        type=cli.positive_int, group=TRAINING)
    batch_size: int = cli.option(128, "images per batch", type=cli.positive_int, group=TRAINING)
    lr_d: float = cli.option(4e-4, "Adam learning rate of D (the handout: 2e-4)", type=cli.positive_float,
                             group=TRAINING)
    lr_g: float = cli.option(1e-3, "Adam learning rate of G (the handout: 5e-4)", type=cli.positive_float,
                             group=TRAINING)
    beta1: float = cli.option(0.5, "Adam beta1", type=float, group=TRAINING)
    loss: str = cli.option("non-saturating", "generator loss", choices=LOSSES, group=TRAINING)
    precision: str = cli.precision_setting(_PRECISION_EFFECT)
    nz: int = cli.option(100, "size of the latent vector z", type=cli.positive_int, group=NETWORKS)
    ngf: int = cli.option(32, "width of the DCGAN generator", type=cli.positive_int, group=NETWORKS)
    ndf: int = cli.option(32, "width of the DCGAN discriminator", type=cli.positive_int, group=NETWORKS)
    width: int = cli.option(64, "width w of the cDCGAN (the course: 64)", type=cli.positive_int, group=NETWORKS)
    image_size: int = cli.option(32, "32, or 64 for the DCGAN with one more block", type=int, choices=(32, 64),
                                 group=NETWORKS)
    default_init: bool = cli.option(False, "keep PyTorch's default initialisation instead of N(0, 0.02)",
                                    group=NETWORKS)
    sample_every: int = cli.option(200, "iterations between sample grids", type=cli.positive_int, group=OUTPUTS)
    eval_every: int = cli.option(250, "iterations between quality measurements (1,000 samples each)",
                                 type=cli.positive_int, group=OUTPUTS)
    n_samples: int = cli.option(10000, "final samples: scored, and saved to samples.npy", type=cli.positive_int,
                                group=OUTPUTS)
    name: str = cli.option("dcgan", "run name: outputs go to OUT_DIR/NAME/", group=OUTPUTS)
    limit: int | None = None  # training digits kept (None: all)
    quick_classifier: bool = False  # a throw-away quality classifier when none is cached


@dataclasses.dataclass(kw_only=True)
class CganSettings(TrainSettings):
    """``cgan``: the conditional DCGAN, at the course's learning rates."""

    lr_d: float = cli.option(2e-4, "Adam learning rate of D", type=cli.positive_float, group=TRAINING)
    lr_g: float = cli.option(5e-4, "Adam learning rate of G", type=cli.positive_float, group=TRAINING)
    name: str = cli.option("cgan", "run name: outputs go to OUT_DIR/NAME/", group=OUTPUTS)


@dataclasses.dataclass(kw_only=True)
class ExperimentSettings(TrainSettings):
    """``experiment``: DCGANs, each the default one with an experiment's changes."""

    # A quick experiment trains one epoch, epochs30 included (its change unsets --epochs).
    QUICK = {**TrainSettings.QUICK, "epochs_override": 1}

    names: list = cli.option([], "experiments to run: " + ", ".join(EXPERIMENTS) + ", or all", positional=True,
                             nargs="+", metavar="NAME")
    epochs_override: int | None = cli.option(
        None, "train every experiment this many passes over the training digits, epochs30 included (e.g. 1 "
        "for a quick look; default: unset)", type=cli.positive_int, group=TRAINING)


@dataclasses.dataclass(kw_only=True)
class InterpolateSettings(cli.Settings):
    """``interpolate``: images along straight lines between latent vectors."""

    checkpoint: Path | None = cli.option(None, "generator.pt of a run (default: OUT_DIR/dcgan/generator.pt)",
                                         type=Path)
    pairs: int = cli.option(8, "pairs (z1, z2), one row each", type=cli.positive_int)
    steps: int = cli.option(10, "values of alpha from 0 to 1", type=cli.positive_int)


@dataclasses.dataclass(kw_only=True)
class ClassifierSettings(cli.Settings):
    """``classifier``: the MNIST classifier that measures sample quality."""

    QUICK = {"quick_classifier": True}

    quick_classifier: bool = False  # a throw-away classifier when none is cached


@dataclasses.dataclass(kw_only=True)
class AllSettings(cli.Settings):
    """``all``: every command, each with its own defaults (and its quick budget under --quick)."""


def experiment_names(names: list[str]) -> list[str]:
    """The experiments asked for (``all``: every one), checked."""
    chosen = list(EXPERIMENTS) if "all" in names else list(names)
    unknown = [n for n in chosen if n not in EXPERIMENTS]
    if unknown:
        raise UserError(f"unknown experiment {', '.join(unknown)}; choose from all, {', '.join(EXPERIMENTS)}")
    return chosen


def experiment_settings(settings: ExperimentSettings, name: str) -> ExperimentSettings:
    """The settings of experiment ``name``: the command's, with the experiment's changes and
    ``--epochs-override`` on top."""
    run = settings.replace(**EXPERIMENTS[name], name=f"experiments/{name}")
    return run.replace(epochs=settings.epochs_override) if settings.epochs_override else run

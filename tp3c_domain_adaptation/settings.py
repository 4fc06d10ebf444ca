"""The runs of the practical and the settings of its commands.

Each command's settings are a dataclass whose fields are its command-line options
(``--field-name``); ``--quick`` replaces the defaults named in ``QUICK`` (an option given
explicitly wins), and the fields that are no option are budgets only ``--quick`` sets.
"""
import dataclasses

from common import cli

# Every training run of the practical. "factor" scales the GRL's lambda: 0 = no reversal
# (the domain classifier learns, the features ignore it), negative = the features *help*
# the domain classifier (a positive gradient factor instead of a reversed one).
RUNS = {
    "source-only": {"mode": "source", "about": "baseline: cross-entropy on MNIST only"},
    "dann": {"mode": "dann", "factor": 1.0, "about": "DANN, reversal -lambda(p)"},
    "no-grl": {"mode": "dann", "factor": 0.0, "about": "domain classifier trained, no reversal"},
    "grl-x0.1": {"mode": "dann", "factor": 0.1, "about": "reversal -0.1 lambda(p)"},
    "positive": {"mode": "dann", "factor": -1.0, "about": "gradient +lambda(p): features help the domain classifier"},
    "pseudo": {"mode": "pseudo", "about": "pseudo-labelling alone (no domain loss)"},
    "dann+pseudo": {"mode": "dann", "factor": 1.0, "pseudo": True, "about": "DANN and pseudo-labelling"},
}
SWEEP = ("no-grl", "grl-x0.1", "dann", "positive")

TRAINING = "training (defaults: the paper's SGD recipe)"


@dataclasses.dataclass(kw_only=True)
class DataSettings(cli.Settings):
    """Both domains: which MNIST-M, and (``--quick``) how many images of each split."""

    QUICK = {"limit": 5000}
    mnist_m: str = cli.option("auto", "MNIST-M: the official release when present (auto), or built from BSDS500",
                              choices=("auto", "bsds", "official"))
    mnist_m_seed: int = cli.option(0, "seed of the MNIST-M construction", type=int)
    normalise: str = cli.option("joint", "input normalisation: one per-channel mean and std on both training sets "
                                         "(joint), or each domain by its own (per-domain; the target's images "
                                         "only, no label)", choices=("joint", "per-domain"))
    limit: int | None = None  # images per split and domain; None: all


@dataclasses.dataclass(kw_only=True)
class TrainSettings(DataSettings):
    """A training command: the data, then the recipe of every run it trains."""

    QUICK = {**DataSettings.QUICK, "epochs": 2, "eval_images": 500}
    epochs: int = cli.option(20, "passes over the 60,000 source images", type=cli.positive_int, group=TRAINING)
    batch_size: int = cli.option(64, "source images per step (and as many target images)", type=cli.positive_int,
                                 group=TRAINING)
    lr: float = cli.option(0.01, "initial learning rate, decayed as lr/(1+10p)^0.75", type=cli.positive_float,
                           group=TRAINING)
    momentum: float = cli.option(0.9, "SGD momentum", type=cli.open_unit, group=TRAINING)
    gamma: float = cli.option(10.0, "lambda(p) = 2/(1+exp(-gamma p)) - 1 (10 in the paper)",
                              type=cli.positive_float, group=TRAINING)
    lambda_max: float = cli.option(1.0, "the GRL's factor rises from 0 towards this: lambda_max * lambda(p) "
                                        "(1 in the paper)", type=cli.positive_float, group=TRAINING)
    clip: float = cli.option(5.0, "clip the global gradient norm to this before each step (0: off); without it "
                                  "DANN can diverge to a constant prediction", type=cli.non_negative_float,
                             group=TRAINING)
    domain_hidden: int = cli.option(100, "hidden units of the domain classifier", type=cli.positive_int,
                                    group=TRAINING)
    threshold: float = cli.option(0.9, "confidence needed for a pseudo-label", type=cli.open_unit, group=TRAINING)
    channels_last: bool = cli.option(False, "convolve in the channels_last layout: faster steps, the same "
                                            "arithmetic up to rounding; a DANN run moves with rounding, so a run "
                                            "in this layout differs from one without it, by several points of "
                                            "accuracy either way", group=TRAINING)
    evals_per_epoch: int = cli.option(4, "test evaluations per epoch (curves)", type=cli.positive_int,
                                      group=TRAINING)
    eval_images: int = cli.option(2000, "test images per domain in those evaluations (the final one uses all)",
                                  type=cli.positive_int, group=TRAINING)


def _tsne_images():
    """The ``tsne_images`` field (a field of its own for each class that has it)."""
    return cli.option(1000, "test images per domain in the t-SNE", type=cli.positive_int)


@dataclasses.dataclass(kw_only=True)
class TsneSettings(DataSettings):
    """The t-SNE of the baseline's and DANN's features."""

    QUICK = {**DataSettings.QUICK, "tsne_images": 200}
    tsne_images: int = _tsne_images()


@dataclasses.dataclass(kw_only=True)
class AllSettings(TrainSettings):
    """Every run, then the t-SNE."""

    QUICK = {**TrainSettings.QUICK, "tsne_images": 200}
    tsne_images: int = _tsne_images()

"""The settings of each command, typed, built once from the command line (``common.cli``)
and saved as ``config.json`` beside the results; ``--quick`` replaces the defaults named in
each class's ``QUICK``."""
from dataclasses import dataclass
from pathlib import Path

from common import cli
from common.pretrained import OFFLINE_MODEL
from tp3b_visualization.classviz import DEFAULT_LR, NETWORK_LR, Ascent
from tp3b_visualization.labels import class_index
from tp3b_visualization.network import DEFAULT_MODEL

# The course's classes for class visualization: tarantula, gorilla, hourglass, wine bottle,
# snail, tabby cat (their ImageNet indices).
CLASSES = {"tarantula": 76, "gorilla": 366, "hourglass": 604, "wine bottle": 907, "snail": 113, "tabby": 281}
# What --precision bf16 changes, for its help.
BF16_EFFECT = ("class visualization only: the frozen network stored in bfloat16, faster on such hardware, at "
               "the cost of less convincing images (the target's probability falls)")
FOOLING, CLASSVIZ, SWEEP = "fooling", "class visualization", "sweeps"


@dataclass(kw_only=True)
class ModelSettings(cli.Settings):
    """What every command takes: the network."""
    model: str | None = cli.option(
        None, f"network (default: {DEFAULT_MODEL}): a torchvision classification model ({DEFAULT_MODEL}, vgg16, "
              f"resnet18, ...; their ImageNet weights come through the torch hub cache) or {OFFLINE_MODEL} "
              f"(installs offline). Left at its default, {DEFAULT_MODEL} falls back to {OFFLINE_MODEL} with a "
              f"warning when its weights are neither cached nor downloadable; a network named here must be had, "
              f"else the command stops with the fix")


@dataclass(kw_only=True)
class SaliencySettings(ModelSettings):
    image: list[Path] | None = cli.option(
        None, "explain these image files instead of the 25 ImageNet images, for the class the network "
              "predicts; resized and centre-cropped to 224", type=Path, nargs="+", metavar="FILE")


@dataclass(kw_only=True)
class FoolingSettings(ModelSettings):
    QUICK = {"fool_images": 4}
    target: int = cli.option(6, "class to fool into: index or name (6 is stingray)", type=class_index,
                             group=FOOLING)
    step: float = cli.option(1.0, "L2 length of each gradient-ascent step (normalised image)",
                             type=cli.positive_float, group=FOOLING)
    max_iter: int = cli.option(100, "iteration budget of both attacks", type=cli.positive_int, group=FOOLING)
    pgd_eps: float = cli.option(2.0, "PGD's L-infinity budget, in 1/255", type=cli.positive_float, group=FOOLING)
    pgd_step: float = cli.option(0.5, "PGD's step, in 1/255", type=cli.positive_float, group=FOOLING)
    examples: list[int] = cli.option([0, 1, 2], "images shown in the figure", type=int, nargs="+", group=FOOLING)
    fool_images: int | None = None  # how many of the 25 images are attacked (None: all)


@dataclass(kw_only=True)
class AscentSettings(ModelSettings):
    """The gradient ascent of class visualization."""
    QUICK = {"iterations": 10}
    l2_reg: float = cli.option(Ascent.l2_reg, "weight lambda of the L2 penalty", type=cli.non_negative_float,
                               group=CLASSVIZ)
    lr: float | None = cli.option(
        None, f"gradient-ascent step eta (default: {DEFAULT_LR:g}, the course's; "
              + ", ".join(f"{v:g} for {k}" for k, v in NETWORK_LR.items())
              + ", whose images the course's step leaves covered in high-frequency noise)",
        type=cli.positive_float, group=CLASSVIZ)
    iterations: int = cli.option(Ascent.iterations, "gradient-ascent steps", type=cli.positive_int, group=CLASSVIZ)
    blur_every: int = cli.option(Ascent.blur_every, "blur every this many steps", type=cli.positive_int,
                                 group=CLASSVIZ)
    blur_sigma: float = cli.option(Ascent.blur_sigma, "std of the Gaussian blur", type=cli.non_negative_float,
                                   group=CLASSVIZ)
    max_jitter: int = cli.option(Ascent.max_jitter, "largest random shift, in pixels", type=int, group=CLASSVIZ)
    precision: str = cli.precision_setting(BF16_EFFECT)


@dataclass(kw_only=True)
class ClassvizSettings(AscentSettings):
    QUICK = {**AscentSettings.QUICK, "max_classes": 2}
    classes: list[int] = cli.option(
        list(CLASSES.values()), "target classes, indices or names (the course's: " + ", ".join(CLASSES) + ")",
        type=class_index, nargs="+", group=CLASSVIZ)
    max_classes: int | None = None  # how many of --classes are drawn (None: all)


@dataclass(kw_only=True)
class SweepSettings(ClassvizSettings):
    """The sweeps run on the first of --classes."""
    QUICK = {**ClassvizSettings.QUICK, "sweep_l2_reg": [1e-7, 1e-5], "sweep_lr": [1.0, 5.0],
             "sweep_iterations": [10, 20]}
    sweep_l2_reg: list[float] = cli.option([1e-7, 1e-5, 1e-3, 1e-1, 1.0], "the values of lambda swept",
                                           type=cli.non_negative_float, nargs="+", group=SWEEP)
    sweep_lr: list[float] = cli.option([1.0, 5.0, 10.0], "the values of eta swept", type=cli.positive_float,
                                       nargs="+", group=SWEEP)
    sweep_iterations: list[int] = cli.option([100, 200, 400], "the numbers of iterations shown (one run, "
                                             "photographed on the way)", type=cli.positive_int, nargs="+",
                                             group=SWEEP)


@dataclass(kw_only=True)
class FromImageSettings(AscentSettings):
    index: int = cli.option(0, "which of the 25 ImageNet images to start from", type=int)


@dataclass(kw_only=True)
class AllSettings(FromImageSettings, SweepSettings, FoolingSettings, SaliencySettings):
    """Every experiment's settings."""
    QUICK = {**FoolingSettings.QUICK, **SweepSettings.QUICK}

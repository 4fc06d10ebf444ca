"""Practical 3-b: visualizing what an ImageNet network looks at.

Saliency maps, fooling (adversarial) images with a targeted PGD comparison, and class
visualization by gradient ascent, on SqueezeNet 1.1 by default (--model vgg16, resnet18,
or efficientnet_lite0, the ImageNet model that installs offline). When SqueezeNet's weights
are neither in the torch hub cache nor downloadable, the default falls back to
EfficientNet-Lite0 with a warning; a network named with --model never does. Every
subcommand writes PNG figures and a JSON of its numbers (with the network that ran) under
--out-dir, and its settings as config.json.

Run from the repository root, for example:
  python tp3b_visualization/main.py --quick       every experiment, on a tiny budget (smoke run)
  python tp3b_visualization/main.py saliency --model efficientnet_lite0
  python tp3b_visualization/main.py fooling --target stingray
  python tp3b_visualization/main.py classviz --classes tarantula gorilla
"""
import logging
import sys

from common import cli
from common.results import save_config
from tp3b_visualization import classviz, fooling, saliency
from tp3b_visualization.network import Network, load_network
from tp3b_visualization.settings import (AllSettings, AscentSettings, ClassvizSettings, FoolingSettings,
                                         FromImageSettings, ModelSettings, SaliencySettings, SweepSettings)

log = logging.getLogger("tp3b_visualization")


def network(s: ModelSettings) -> Network:
    """The network of the command; its choice (and the step --lr resolves to, for class
    visualization) written into ``config.json`` beside the settings."""
    net = load_network(s.model, s.device)
    resolved = {"lr": ascent(s, net).lr} if isinstance(s, AscentSettings) else {}
    save_config(s, s.out_dir, network=net.record(s.quick), **resolved)
    return net


def ascent(s: AscentSettings, net: Network) -> classviz.Ascent:
    """The gradient ascent's settings, --lr resolved for the network that runs."""
    lr = classviz.default_lr(net.name) if s.lr is None else s.lr
    return classviz.Ascent(l2_reg=s.l2_reg, lr=lr, iterations=s.iterations, blur_every=s.blur_every,
                           blur_sigma=s.blur_sigma, max_jitter=s.max_jitter, seed=s.seed)


def run_images(s: ModelSettings, net: Network | None = None) -> dict:
    return saliency.images(net or network(s), s.data_dir, s.out_dir, s.device, s.quick)


def run_saliency(s: SaliencySettings, net: Network | None = None) -> dict:
    return saliency.saliency(net or network(s), s.data_dir, s.out_dir, s.device, s.image, s.quick)


def run_fooling(s: FoolingSettings, net: Network | None = None) -> dict:
    return fooling.fooling(net or network(s), s.data_dir, s.out_dir, s.device, target=s.target, step=s.step,
                           max_iter=s.max_iter, pgd_eps=s.pgd_eps, pgd_step=s.pgd_step, examples=s.examples,
                           images=s.fool_images, quick=s.quick)


def run_classviz(s: ClassvizSettings, net: Network | None = None) -> dict:
    net = (net or network(s)).in_precision(s.precision)
    return classviz.classviz(net, s.classes[:s.max_classes], ascent(s, net), s.out_dir, s.quick)


def run_sweep(s: SweepSettings, net: Network | None = None) -> dict:
    net = (net or network(s)).in_precision(s.precision)
    values = {"l2_reg": s.sweep_l2_reg, "lr": s.sweep_lr, "iterations": s.sweep_iterations}
    return classviz.sweep(net, s.classes[0], ascent(s, net), values, s.out_dir, s.quick)


def run_from_image(s: FromImageSettings, net: Network | None = None) -> dict:
    net = (net or network(s)).in_precision(s.precision)
    return classviz.from_image(net, s.index, ascent(s, net), s.data_dir, s.out_dir, s.quick)


def run_all(s: AllSettings) -> dict:
    """Every experiment on one network, loaded (and its fallback said) once."""
    net = network(s)
    results = {}
    for name, func in (("images", run_images), ("saliency", run_saliency), ("fooling", run_fooling),
                       ("classviz", run_classviz), ("sweep", run_sweep), ("from-image", run_from_image)):
        log.info("== %s", name)
        results[name] = func(s, net)
    return results


# (name, function, settings, help) of each subcommand
COMMANDS = (
    ("images", run_images, ModelSettings, "show the 25 ImageNet validation images with the network's top-1 "
                                          "predictions"),
    ("saliency", run_saliency, SaliencySettings, "saliency maps of the 25 ImageNet images (or of --image files)"),
    ("fooling", run_fooling, FoolingSettings,
     "fooling images for a target class on every image (--quick: the first 4), against targeted PGD"),
    ("classviz", run_classviz, ClassvizSettings,
     "class visualizations from random noise (--quick: of the first 2 of --classes)"),
    ("sweep", run_sweep, SweepSettings,
     "class visualization of the first of --classes, swept over lambda, eta and iterations"),
    ("from-image", run_from_image, FromImageSettings,
     "class visualization started from an ImageNet image, towards its class"),
    ("all", run_all, AllSettings, "images, saliency, fooling, class visualizations, sweeps and the run from an "
                                  "image (--quick: fooling on 4 images, 2 classes)"),
)


def build_parser():
    parser, sub = cli.make_parser("tp3b_visualization", __doc__, default_command="all")
    for name, func, settings, help_text in COMMANDS:
        cli.add_command(sub, name, func, help_text, settings=settings)
    return parser


def main(argv=None) -> int:
    return cli.run(build_parser(), argv)


if __name__ == "__main__":
    sys.exit(main())

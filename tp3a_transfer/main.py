"""Practical 3-a: transfer learning, VGG16 features and linear SVMs on 15 Scene.

Features of a pretrained network (VGG16's relu7 by default) are extracted once per
(network, layer, preprocessing, split), cached on disk, and fed to a linear SVM; the
"going further" commands sweep layers, C (cross-validated on the training set only),
networks and PCA sizes, and train a new 15-way head. --model efficientnet_lite0 runs
everything offline (the one ImageNet model that installs with the requirements); when
VGG16's weights are neither in the torch hub cache nor downloadable, the default --model
falls back to it with a warning (its pooled features stand in for relu7), while a network
or layer named on the command line never does. Results and figures are named after the
network that ran.

Run from the repository root, for example:
  python tp3a_transfer/main.py                 the SVM on relu7 features (the default command, svm)
  python tp3a_transfer/main.py --quick         the same on 8 images per class (smoke run)
  python tp3a_transfer/main.py params
  python tp3a_transfer/main.py svm --model efficientnet_lite0
  python tp3a_transfer/main.py --quick all --model efficientnet_lite0   every command, offline
"""
import logging
import sys

from common import cli
from common.device import seed_everything
from common.results import save_config
from tp3a_transfer import experiments, inspection, training
from tp3a_transfer.settings import (ActivationsSettings, AllSettings, CSweepSettings, ExtractSettings, HeadSettings,
                                    LayersSettings, NetworksSettings, ParamsSettings, PcaSettings, PredictSettings,
                                    SvmSettings)

log = logging.getLogger("tp3a_transfer")

# name: (function, settings, help), in the order of the practical (and of the command `all`)
COMMANDS = {
    "params": (inspection.params, ParamsSettings, "count the parameters of a network, per layer and in its "
               "fully-connected part (no weights needed)"),
    "predict": (inspection.predict, PredictSettings, "top-k ImageNet classes of image files (or of sample photos)"),
    "activations": (inspection.activations, ActivationsSettings, "the maps of the first convolution layer for an "
                    "image"),
    "extract": (experiments.extract, ExtractSettings, "extract and cache the features of both splits"),
    "svm": (experiments.svm, SvmSettings, "LinearSVC on the features, test accuracy"),
    "csweep": (experiments.csweep, CSweepSettings, "C sweep: chosen by cross-validation on the training set"),
    "layers": (experiments.layers, LayersSettings, "layer sweep: size, best C (CV) and test accuracy per layer"),
    "networks": (experiments.networks, NetworksSettings, "other pretrained networks at their penultimate layer"),
    "pca": (experiments.pca, PcaSettings, "PCA before the SVM: accuracy and fit time against components"),
    "head": (training.head, HeadSettings, "a new 15-way layer, backbone frozen and fine-tuned; accuracy per epoch"),
}


def command(func):
    """``func`` run on its settings, which are saved beside the outputs first."""
    def run(s: cli.Settings) -> dict:
        save_config(s, s.out_dir)
        return func(s)

    return run


def run_all(s: AllSettings) -> dict:
    """Every command in turn, each seeded as when it runs alone. A network whose weights
    cannot be had offline is skipped by `networks` with a one-line notice, as it does alone."""
    save_config(s, s.out_dir)
    results = {}
    for name, (func, cls, _) in COMMANDS.items():
        log.info("all: %s", name)
        seed_everything(s.seed)
        results[name] = func(s.derive(cls, command=name))
    return results


def build_parser():
    parser, sub = cli.make_parser("tp3a_transfer", __doc__, default_command="svm")
    for name, (func, cls, help_text) in COMMANDS.items():
        cli.add_command(sub, name, command(func), help_text, settings=cls)
    cli.add_command(sub, "all", run_all, "every command in turn (" + ", ".join(COMMANDS) + ") with the options "
                    "given here; --quick: each one's smoke run", settings=AllSettings)
    return parser


def main(argv=None) -> int:
    return cli.run(build_parser(), argv)


if __name__ == "__main__":
    sys.exit(main())

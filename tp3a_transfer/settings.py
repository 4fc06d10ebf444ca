"""The settings of practical 3-a's commands: one dataclass per command, built once from the
command line (:mod:`common.cli`); each field is one option, ``QUICK`` the --quick budget."""
from dataclasses import dataclass
from pathlib import Path

from common import cli
from common.pretrained import OFFLINE_MODEL
from tp3a_transfer.features import VGG16_LAYERS
from tp3a_transfer.networks import DEFAULT_MODEL, LAYERS, NETWORKS

MODEL_HELP = (f"network: {', '.join(NETWORKS)} (the last installs offline; default: {DEFAULT_MODEL}). Left at its "
              f"default, vgg16 falls back to {OFFLINE_MODEL} (its pool features for relu7) with a warning when its "
              f"weights are neither cached nor downloadable; a network named here, or a --layer/--layers given "
              f"without it, must be had, else the command stops with the fix")


@dataclass(kw_only=True)
class ModelSettings(cli.Settings):
    """A command on one pretrained network. ``model`` stays None when --model is not given:
    only then may EfficientNet-Lite0 stand in for the default network."""

    model: str | None = cli.option(None, MODEL_HELP)

    @property
    def network(self) -> str:
        """The network asked for: --model, else the default one."""
        return self.model or DEFAULT_MODEL

    @property
    def named(self) -> bool:
        """Whether the user named the network (which is then never replaced)."""
        return self.model is not None


@dataclass(kw_only=True)
class SceneSettings(cli.Settings):
    """How the 15 Scene images become features."""

    QUICK = {"per_class": 8}
    crop: bool = cli.option(False, "resize the shorter side to 224 and crop the centre (default: resize to "
                                   "224x224)", group="features")
    cache_dir: Path | None = cli.option(None, "feature cache (default: OUT_DIR/features); one file per network, "
                                              "layer, preprocessing and split", type=Path, group="features")
    batch_size: int = cli.option(32, "images per forward pass", type=cli.positive_int, group="features")
    workers: int | None = cli.option(None, "image-decoding processes (default: none on a CPU, where the network's "
                                           "threads use every core and decoding is a few percent of the time; half "
                                           "the cores on a GPU)", type=cli.non_negative_int, group="features")
    per_class: int | None = cli.option(None, "only the first N images of each class (all when not given)",
                                       type=cli.positive_int, group="features")
    random_weights: bool = cli.option(False, "random weights (structure checks only)", group="features")

    @property
    def cache(self) -> Path:
        return self.cache_dir or self.out_dir / "features"


LAYER_HELP = ("where to cut: vgg16 " + "/".join(VGG16_LAYERS) + " (relu7); efficientnet_lite0 "
              + "/".join(LAYERS[OFFLINE_MODEL]) + " (pool)")
SVM_C_HELP = "the SVM's C"
FOLDS_HELP = "cross-validation folds (training set)"


@dataclass(kw_only=True)
class ParamsSettings(ModelSettings):
    model: str | None = cli.option(None, f"torchvision model name, or {OFFLINE_MODEL} (default: {DEFAULT_MODEL})")


@dataclass(kw_only=True)
class PredictSettings(ModelSettings):
    images: list[Path] = cli.option([], "image files (default: 4 photos shipped with scikit-image)", type=Path,
                                    nargs="*", positional=True)
    top_k: int = cli.option(5, "classes shown per image", type=cli.positive_int)


@dataclass(kw_only=True)
class ActivationsSettings(ModelSettings):
    image: Path | None = cli.option(None, "image file (default: scikit-image's cat photo)", type=Path)
    random_weights: bool = cli.option(False, "random weights (structure only)")


@dataclass(kw_only=True)
class FeatureSettings(SceneSettings, ModelSettings):
    """A command on the cached features of one network."""


@dataclass(kw_only=True)
class ExtractSettings(FeatureSettings):
    layers: list[str] | None = cli.option(None, "layers to extract, all in one pass over the images (default: the "
                                                "network's default layer)", nargs="+")


@dataclass(kw_only=True)
class SvmSettings(FeatureSettings):
    layer: str | None = cli.option(None, LAYER_HELP)
    svm_c: float = cli.option(1.0, SVM_C_HELP, type=cli.positive_float)


@dataclass(kw_only=True)
class CSweepSettings(FeatureSettings):
    layer: str | None = cli.option(None, LAYER_HELP)
    folds: int = cli.option(5, FOLDS_HELP, type=cli.positive_int)


@dataclass(kw_only=True)
class LayersSettings(FeatureSettings):
    folds: int = cli.option(5, FOLDS_HELP, type=cli.positive_int)
    layers: list[str] | None = cli.option(None, "layers, extracted in one pass over the images (default: all but "
                                                "pool1-pool3, whose features are huge)", nargs="+")
    c_grid: list[float] = cli.option([0.1, 1.0, 10.0], "values of C tried by CV", type=float, nargs="+")


@dataclass(kw_only=True)
class NetworksSettings(SceneSettings):
    svm_c: float = cli.option(1.0, SVM_C_HELP, type=cli.positive_float)
    networks: list[str] | None = cli.option(
        None, f"networks compared (default: {' '.join(NETWORKS)}); of the default list, a network whose weights "
              "cannot be had gets a row saying which file is missing, while one named here stops the command",
        choices=NETWORKS, nargs="+")


@dataclass(kw_only=True)
class PcaSettings(FeatureSettings):
    QUICK = {**FeatureSettings.QUICK, "components": [4, 16, 32]}
    layer: str | None = cli.option(None, LAYER_HELP)
    svm_c: float = cli.option(1.0, SVM_C_HELP, type=cli.positive_float)
    components: list[int] = cli.option([16, 32, 64, 128, 256, 512, 1024], "numbers of components (the "
                                       "90%%-variance point and all are added)", type=int, nargs="+")


@dataclass(kw_only=True)
class HeadSettings(FeatureSettings):
    QUICK = {**FeatureSettings.QUICK, "epochs": 1}
    modes: list[str] = cli.option(["frozen", "fine-tuned"], "train the new layer alone, or the whole network",
                                  choices=("frozen", "fine-tuned"), nargs="+")
    epochs: int = cli.option(5, "passes over the 1,500 training images", type=cli.positive_int)
    lr: float = cli.option(0.01, "SGD learning rate of the new layer (the pretrained layers, when fine-tuned, use "
                                 "a tenth)", type=cli.positive_float)


@dataclass(kw_only=True)
class AllSettings(FeatureSettings):
    """Every command in turn, with these options; each takes its own defaults (and --quick
    budget) for the rest."""

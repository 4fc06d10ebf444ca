"""Transfer learning: VGG16 cut at a layer, 15 Scene preprocessing, L2-normalised features,
and a linear SVM on them (practical 3-a, section 2, and C chosen by cross-validation for
"going further").

Student file: write each part between its ``YOUR CODE`` markers. The grader calls these
functions by name, with these signatures.
"""
import numpy as np
import torch
import torch.nn as nn
from sklearn.model_selection import StratifiedKFold, cross_val_score
from sklearn.svm import LinearSVC
from torchvision import transforms
from tqdm.auto import tqdm

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)

# Where VGG16 can be cut: the output of each convolution block (after its max-pool), the
# two hidden fully-connected layers after their ReLU, and the class scores.
VGG16_LAYERS = ("pool1", "pool2", "pool3", "pool4", "pool5", "relu6", "relu7", "fc8")
# Indices in torchvision's vgg16().features of the five max-pool layers.
VGG16_POOLS = {"pool1": 4, "pool2": 9, "pool3": 16, "pool4": 23, "pool5": 30}


def cut_vgg16(vgg: nn.Module, layer: str = "relu7") -> nn.Module:
    """VGG16 up to ``layer``, with its output flattened.

    Args:
        vgg: a torchvision ``vgg16`` (its ``features``, ``avgpool`` and ``classifier``).
        layer: one of :data:`VGG16_LAYERS`. "relu7" stops before the last Dropout and
            Linear; "relu6" after the first hidden layer's ReLU; "poolK" after the K-th
            convolution block; "fc8" is the whole network.

    Returns:
        nn.Module in eval mode (whatever the mode of ``vgg``), sharing ``vgg``'s layers,
        mapping (N, 3, 224, 224) to (N, D): the layer's output, flattened.

    Raises:
        ValueError: unknown ``layer``.
    """
    if layer not in VGG16_LAYERS:
        raise ValueError(f"layer must be one of {', '.join(VGG16_LAYERS)}, not {layer!r}")
    ### BEGIN SOLUTION
    if layer in VGG16_POOLS:
        parts = [vgg.features[:VGG16_POOLS[layer] + 1], nn.Flatten()]
    else:
        head = {"relu6": 2, "relu7": 5, "fc8": 7}[layer]  # classifier: Linear ReLU Dropout Linear ReLU Dropout Linear
        parts = [vgg.features, vgg.avgpool, nn.Flatten(), vgg.classifier[:head]]
    return nn.Sequential(*parts).eval()
    ### END SOLUTION


def scene_transform(crop: bool = False, mean=IMAGENET_MEAN, std=IMAGENET_STD, size: int = 224):
    """The preprocessing of a 15 Scene image (a PIL image, grey or colour).

    Args:
        crop: False: resize to ``size`` x ``size`` (the aspect ratio changes); True: resize
            the shorter side to ``size``, then take the central ``size`` x ``size`` square.
        mean, std: the network's per-channel normalisation, for pixels scaled to [0, 1].
        size: the side of the network's input.

    Returns:
        a callable: PIL image -> FloatTensor (3, size, size), the three channels the
        network reads (question 9: what to do with a grey image), normalised with ``mean``
        and ``std``. Use picklable steps (torchvision's transforms, :func:`to_rgb`), so that
        loader worker processes can run it.
    """
    ### BEGIN SOLUTION
    resize = [transforms.Resize(size), transforms.CenterCrop(size)] if crop else [transforms.Resize((size, size))]
    # Resized before the grey channel is copied: the same pixels, a third of the resizing work.
    return transforms.Compose([*resize, to_rgb, transforms.ToTensor(), transforms.Normalize(mean, std)])
    ### END SOLUTION


def to_rgb(image):
    """``image.convert("RGB")`` as a module-level function (provided): a step that loader
    worker processes can pickle, unlike a lambda."""
    return image.convert("RGB")


@torch.no_grad()
def extract_features(model: nn.Module, loader, device="cpu", progress: bool = True) -> tuple[np.ndarray, np.ndarray]:
    """Run ``model`` over every batch of ``loader``; one L2-normalised row per image.

    Args:
        model: nn.Module mapping (B, 3, H, W) to (B, ...), e.g. :func:`cut_vgg16`'s output.
        loader: iterable of ``(images (B, 3, H, W), labels (B,))``.
        device: where to run the model.
        progress: show a progress bar over the batches (tqdm).

    Returns:
        (features, labels): float32 array (N, D), each row of unit L2 norm (the model's
        output flattened, computed in eval mode without gradients), and int64 array (N,).
    """
    ### BEGIN SOLUTION
    model.eval()
    rows, labels = [], []
    for images, y in tqdm(loader, desc="features", unit="batch", leave=False, disable=not progress):
        out = model(images.to(device)).flatten(1).float()  # (B, D)
        rows.append(torch.nn.functional.normalize(out, dim=1).cpu())
        labels.append(torch.as_tensor(y))
    return torch.cat(rows).numpy(), torch.cat(labels).numpy().astype(np.int64)
    ### END SOLUTION


def train_svm(features: np.ndarray, labels: np.ndarray, C: float = 1.0, seed: int = 0) -> LinearSVC:
    """A linear SVM (one-vs-rest, ``sklearn.svm.LinearSVC``) fitted on the training features.

    Args:
        features: float array (N, D), the training features.
        labels: int array (N,).
        C: the inverse regularisation strength.
        seed: the solver's random state.

    Returns:
        the fitted LinearSVC.
    """
    ### BEGIN SOLUTION
    return LinearSVC(C=C, random_state=seed).fit(features, labels)
    ### END SOLUTION


def accuracy(svm: LinearSVC, features: np.ndarray, labels: np.ndarray) -> float:
    """Fraction of ``features`` (N, D) that ``svm`` puts in their ``labels`` (N,) class."""
    ### BEGIN SOLUTION
    return float(np.mean(svm.predict(features) == labels))
    ### END SOLUTION


def choose_C(features: np.ndarray, labels: np.ndarray, Cs, folds: int = 5, seed: int = 0) -> tuple[float, list[float]]:
    """The C of ``Cs`` with the best mean accuracy in stratified ``folds``-fold
    cross-validation on the training set (the test set is never seen).

    Args:
        features: float array (N, D), training features only.
        labels: int array (N,).
        Cs: the candidate values of C.
        folds: number of cross-validation folds.
        seed: shuffles the folds.

    Returns:
        (best C, mean cross-validation accuracy for each C in ``Cs``' order).
    """
    ### BEGIN SOLUTION
    split = StratifiedKFold(n_splits=folds, shuffle=True, random_state=seed)
    scores = [float(cross_val_score(LinearSVC(C=C, random_state=seed), features, labels, cv=split).mean())
              for C in Cs]
    return float(Cs[int(np.argmax(scores))]), scores
    ### END SOLUTION

"""Public checks of practical 3-a (transfer learning)."""
import torch
import torch.nn as nn

from grading.registry import check, expect, expect_close, expect_equal, expect_shape, run

VGG16_TOTAL = 138_357_544
VGG16_FC = 123_642_856  # 102,764,544 + 16,781,312 + 4,097,000


def _vgg16():
    import torchvision

    return torchvision.models.vgg16(weights=None)  # random weights: no file needed


def _counts(function: str):
    """``function`` of tp3a_transfer.parameters on Conv2d(3,4,3) (frozen) + Linear(144,5), then
    on torchvision's vgg16."""
    import torchvision

    import tp3a_transfer.parameters as parameters

    small = nn.Sequential(nn.Conv2d(3, 4, 3), nn.ReLU(), nn.Flatten(), nn.Linear(4 * 6 * 6, 5))
    for p in small[0].parameters():
        p.requires_grad_(False)  # frozen parameters still count
    count = getattr(parameters, function)
    counts = count(small), count(torchvision.models.vgg16(weights=None))
    return [c.item() if hasattr(c, "item") else c for c in counts]  # NumPy or torch scalars: plain numbers


@check("tp3a.count_parameters", "count_parameters gives VGG16's 138,357,544 parameters",
       points=2, timeout=60)
def count_total():
    small, vgg = run(_counts, "count_parameters")
    expect_equal(small, 3 * 4 * 9 + 4 + 144 * 5 + 5, "parameters of Conv2d(3,4,3) (frozen) + Linear(144,5)")
    expect_equal(vgg, VGG16_TOTAL, "parameters of torchvision's vgg16")


@check("tp3a.count_linear_parameters", "count_linear_parameters gives VGG16's FC part, "
       "123,642,856", points=1, timeout=60)
def count_fc():
    small, vgg = run(_counts, "count_linear_parameters")
    expect_equal(small, 144 * 5 + 5, "fully-connected parameters of Conv2d(3,4,3) + Linear(144,5)")
    expect_equal(vgg, VGG16_FC, "fully-connected parameters of torchvision's vgg16")


def _table():
    import torchvision

    from tp3a_transfer.parameters import parameter_table

    return [(str(name), tuple(int(d) for d in shape), int(size))
            for name, shape, size in parameter_table(torchvision.models.vgg16(weights=None))]


@check("tp3a.parameter_table", "parameter_table lists name, shape and size of every tensor",
       points=1, timeout=60)
def table():
    rows = run(_table)
    expect_equal(len(rows), 32, "number of rows for vgg16 (16 layers x weight and bias)")
    expect_equal(tuple(rows[0]), ("features.0.weight", (64, 3, 3, 3), 1728), "first row")
    expect_equal(tuple(rows[-2]), ("classifier.6.weight", (1000, 4096), 4_096_000),
                 "row of the last layer's weight")
    expect_equal(sum(r[2] for r in rows), VGG16_TOTAL, "sum of the table's sizes")


# ----------------------------------------------------------------------------- features and SVM

CUTS = {"relu7": 4096, "relu6": 4096, "fc8": 1000, "pool5": 512 * 7 * 7, "pool4": 512 * 14 * 14}


def _cuts(x, layers):
    """The output of cut_vgg16(vgg16, layer) for each layer, on vgg16 built with seed 0."""
    import torchvision

    from tp3a_transfer.features import cut_vgg16

    torch.manual_seed(0)
    vgg = torchvision.models.vgg16(weights=None).eval()
    with torch.no_grad():
        return [cut_vgg16(vgg, layer)(x) for layer in layers]


@check("tp3a.cut_sizes", "cut_vgg16 gives the right output size at several cut points "
       "(relu7 4096, relu6 4096, fc8 1000, pool5 25088, pool4 100352)", points=2, timeout=120)
def cut_sizes():
    import torch

    x = torch.randn(2, 3, 224, 224, generator=torch.Generator().manual_seed(0))
    outputs = run(_cuts, x, list(CUTS))
    for (layer, size), out in zip(CUTS.items(), outputs):
        expect_shape(out, (2, size), f"cut_vgg16(vgg16, {layer!r}) on 2 images")
    # relu7 is the second hidden layer after its ReLU: the same numbers as the reference cut,
    # on the same vgg16 (the same seed gives the same random weights).
    torch.manual_seed(0)
    vgg = _vgg16().eval()
    with torch.no_grad():
        reference = vgg.classifier[:5](torch.flatten(vgg.avgpool(vgg.features(x)), 1))
    expect_close(outputs[0], reference, "relu7 features (features, avgpool, flatten, Linear, ReLU, "
                 "Dropout, Linear, ReLU)", atol=1e-5)


def _features(model, loader):
    import numpy as np

    from tp3a_transfer.features import extract_features

    X, y = extract_features(model, loader, "cpu", progress=False)
    return torch.as_tensor(np.asarray(X)), [int(v) for v in np.asarray(y)]


@check("tp3a.features_normalised", "extract_features gives one unit-L2-norm row per image, equal "
       "to the normalised output of the model", points=2, timeout=60)
def features_normalised():
    import torch
    import torch.nn as nn

    torch.manual_seed(0)
    model = nn.Sequential(nn.Conv2d(3, 4, 3), nn.ReLU(), nn.AdaptiveAvgPool2d(2)).eval()  # (B, 4, 2, 2)
    images = torch.randn(10, 3, 16, 16, generator=torch.Generator().manual_seed(1))
    labels = torch.arange(10) % 3
    loader = [(images[i:i + 4], labels[i:i + 4]) for i in range(0, 10, 4)]
    X, y = run(_features, model, loader)
    expect_shape(X, (10, 16), "features of 10 images whose model output is (4, 2, 2)")
    expect_close(X.norm(dim=1), torch.ones(10), "L2 norm of every feature row", atol=1e-5)
    with torch.no_grad():
        out = model(images).flatten(1)
    expect_close(X, out / out.norm(dim=1, keepdim=True), "feature rows (the model's output, flattened, "
                 "divided by its L2 norm)", atol=1e-6)
    expect_equal(y, labels.tolist(), "labels, in the loader's order")


def _transformed(ramp):
    """scene_transform(crop) of the grey image ``ramp`` (uint8 rows) for crop False and True,
    and the module's mean and std."""
    import numpy as np
    from PIL import Image

    from tp3a_transfer.features import IMAGENET_MEAN, IMAGENET_STD, scene_transform

    grey = Image.fromarray(np.asarray(ramp.numpy(), dtype=np.uint8), mode="L")
    return ([scene_transform(crop=crop)(grey) for crop in (False, True)],
            [float(v) for v in IMAGENET_MEAN], [float(v) for v in IMAGENET_STD])


@check("tp3a.preprocessing", "scene_transform: grey image to 3 identical channels, 224x224, "
       "ImageNet normalisation, and the centre crop", points=2, timeout=60)
def preprocessing():
    import numpy as np
    import torch

    ramp = np.tile(np.linspace(0, 255, 300).astype(np.uint8), (200, 1))  # grey, 200 x 300, left dark
    outputs, mean, std = run(_transformed, torch.from_numpy(ramp))
    mean, std = torch.tensor(mean).view(3, 1, 1), torch.tensor(std).view(3, 1, 1)
    for crop, x in zip((False, True), outputs):
        expect_shape(x, (3, 224, 224), f"scene_transform(crop={crop}) of a 200x300 grey image")
        pixels = x * std + mean  # back to [0, 1]
        expect_close(pixels[1], pixels[0], "un-normalised channels 0 and 1 of a grey image", atol=1e-5)
        expect_close(pixels[2], pixels[0], "un-normalised channels 0 and 2 of a grey image", atol=1e-5)
        expect(float(pixels.min()) > -0.02 and float(pixels.max()) < 1.02,
               "after undoing the ImageNet normalisation the pixels must lie in [0, 1] "
               f"(found {float(pixels.min()):.2f} to {float(pixels.max()):.2f}): normalise with "
               "mean (0.485, 0.456, 0.406) and std (0.229, 0.224, 0.225) after scaling to [0, 1]")
        left = float(pixels[0, :, 0].mean())
        # Resizing keeps the whole ramp (left edge near black); the centre crop cuts its sides.
        if crop:
            expect(left > 0.1, f"with crop=True the left edge must be cropped away (left column {left:.2f}, "
                   "expected the ramp's value at 1/6 of the width, about 0.17)")
        else:
            expect(left < 0.05, f"with crop=False the whole image is resized (left column {left:.2f}, expected ~0)")
    expect_close(mean.flatten(), torch.tensor([0.485, 0.456, 0.406]), "IMAGENET_MEAN", atol=1e-6)
    expect_close(std.flatten(), torch.tensor([0.229, 0.224, 0.225]), "IMAGENET_STD", atol=1e-6)


def _svm(Xtr, ytr, Xte, yte):
    """Fit with train_svm, then score with accuracy; the coefficients before and after scoring
    and the SVM's own predictions on the test half."""
    import numpy as np

    from tp3a_transfer.features import accuracy, train_svm

    Xtr, ytr, Xte, yte = (t.numpy() for t in (Xtr, ytr, Xte, yte))
    svm = train_svm(Xtr, ytr, C=1.0)
    coef = torch.as_tensor(np.array(svm.coef_, copy=True))
    predictions = torch.as_tensor(np.asarray(svm.predict(Xte)))
    acc = float(accuracy(svm, Xte, yte))
    return coef, torch.as_tensor(np.array(svm.coef_, copy=True)), predictions, acc


@check("tp3a.svm_pipeline", "train_svm and accuracy: a linear SVM reaches the calibrated accuracy on "
       "fixed offline features, and accuracy never refits", points=2, timeout=60)
def svm_pipeline():
    import torch
    from sklearn.datasets import load_digits
    from sklearn.model_selection import train_test_split
    from sklearn.preprocessing import normalize

    X, y = load_digits(return_X_y=True)  # 1,797 8x8 digits, shipped with scikit-learn
    Xtr, Xte, ytr, yte = train_test_split(normalize(X), y, test_size=0.5, random_state=0, stratify=y)
    coef, after, predictions, acc = run(_svm, *(torch.from_numpy(a) for a in (Xtr, ytr, Xte, yte)))
    expect(torch.equal(after, coef), "accuracy() changed the SVM: it must only predict, never fit "
           "(fitting on the test set reports a number no one can trust)")
    expect_close(acc, float((predictions == torch.from_numpy(yte)).double().mean()),
                 "accuracy on the test half (share of correct predictions)", atol=1e-9)
    # Calibrated: LinearSVC(C=1) on these L2-normalised digits gives 0.950, 0.961, 0.950, 0.963,
    # 0.950 on the test halves of splits 0-4 (split 0 here); an SVM fitted on the test half
    # itself scores 0.977.
    expect(0.94 <= acc <= 0.97, f"test accuracy {acc:.4f} outside the calibrated range [0.94, 0.97] of a "
           "LinearSVC(C=1) fitted on the training half")


def _choose(X, y, Cs):
    from tp3a_transfer.features import choose_C

    best, scores = choose_C(X.numpy(), y.numpy(), Cs)
    return float(best), [float(s) for s in scores]


@check("tp3a.choose_C", "choose_C picks C by cross-validation on the training set", points=2, timeout=120)
def choose_c():
    import numpy as np
    import torch
    from sklearn.datasets import load_digits
    from sklearn.preprocessing import normalize

    # 400 digits with 300 noise dimensions and a quarter of the labels scrambled: a large C fits
    # the training set (accuracy 0.93 at C=0.1, 1.0 from C=10) but generalises worse.
    X, y = load_digits(return_X_y=True)
    rng = np.random.default_rng(0)
    X = normalize(np.hstack([X / 16, rng.normal(0, 0.5, (len(X), 300))]))[:400]
    y = y[:400].copy()
    noisy = rng.choice(400, 100, replace=False)
    y[noisy] = rng.integers(0, 10, 100)
    Cs = [0.01, 0.1, 1.0, 10.0, 100.0]
    best, scores = run(_choose, torch.from_numpy(X), torch.from_numpy(y), Cs)
    expect_equal(len(scores), len(Cs), "number of scores returned (one per C)")
    # Calibrated: 5-fold CV picks C = 0.1 with stratified shuffled folds (seeds 0 and 1), plain
    # stratified folds and plain KFold alike, with mean accuracies 0.29-0.52; scoring on the
    # training set itself gives 0.80-1.00 and picks C >= 10.
    expect(max(scores) < 0.65, f"scores {[round(s, 3) for s in scores]} are training-set accuracies, not "
           "cross-validated ones (expected at most about 0.52 on this noisy set)")
    expect_equal(best, 0.1, "C chosen by 5-fold cross-validation")

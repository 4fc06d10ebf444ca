"""Public checks of practical 3-a (transfer learning), in the handout's order."""
import torch
import torch.nn as nn

from grading.registry import check, expect, expect_close, expect_equal, expect_shape, run


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


@check("tp3a.count_parameters", "count_parameters counts every parameter of a network, VGG16's included",
       points=2, timeout=60, question=1, tests=("count_parameters",))
def count_total():
    small, vgg = run(_counts, "count_parameters")
    expect_equal(small, 3 * 4 * 9 + 4 + 144 * 5 + 5, "parameters of Conv2d(3,4,3) (frozen) + Linear(144,5)")
    truth = sum(p.numel() for p in _vgg16().parameters())
    expect(vgg == truth, f"count_parameters(vgg16) gave {vgg!r}: not the number of scalar values in the "
           "parameter tensors of torchvision's vgg16")


@check("tp3a.count_linear_parameters", "count_linear_parameters counts the parameters of the "
       "fully-connected layers, VGG16's included", points=1, timeout=60, question=1,
       tests=("count_linear_parameters",))
def count_fc():
    small, vgg = run(_counts, "count_linear_parameters")
    expect_equal(small, 144 * 5 + 5, "fully-connected parameters of Conv2d(3,4,3) + Linear(144,5)")
    truth = sum(p.numel() for m in _vgg16().modules() if isinstance(m, nn.Linear) for p in m.parameters())
    expect(vgg == truth, f"count_linear_parameters(vgg16) gave {vgg!r}: not the number of scalar values "
           "in the weights and biases of vgg16's nn.Linear layers")


def _table():
    import torchvision

    from tp3a_transfer.parameters import parameter_table

    return [(str(name), tuple(int(d) for d in shape), int(size))
            for name, shape, size in parameter_table(torchvision.models.vgg16(weights=None))]


@check("tp3a.parameter_table", "parameter_table lists the name, shape and size of every parameter tensor",
       points=1, timeout=60, question=1, tests=("parameter_table",))
def table():
    rows = run(_table)
    expected = [(name, tuple(p.shape), p.numel()) for name, p in _vgg16().named_parameters()]
    expect_equal(len(rows), len(expected), "number of rows for vgg16 (one per parameter tensor)")
    for got, want in zip(rows, expected):
        expect_equal(tuple(got), want, f"row of {want[0]} (name, shape, number of parameters)")


# ----------------------------------------------------------------------------- features and SVM

CUTS = ("pool1", "pool2", "pool3", "pool4", "pool5", "relu6", "relu7", "fc8")


def _cuts(x, layers):
    """cut_vgg16(vgg16, layer) for each layer, on a vgg16 built with seed 0 and left in train
    mode (torchvision's default): the modes of the cut's modules, and its outputs on ``x``
    twice (a strided sample of each row, for size)."""
    import torchvision

    from tp3a_transfer.features import cut_vgg16

    torch.manual_seed(0)
    vgg = torchvision.models.vgg16(weights=None)
    found = []
    with torch.no_grad():
        for layer in layers:
            net = cut_vgg16(vgg, layer)
            modes = sorted({type(m).__name__ for m in net.modules() if m.training})
            outs = [net(x) for _ in range(2)]
            step = max(1, outs[0][0].numel() // 4096)
            found.append((tuple(outs[0].shape), modes, [o.flatten(1)[:, ::step] for o in outs]))
    return found


@check("tp3a.cut_vgg16", "cut_vgg16 stops at each cut point (every pooling layer, relu6, relu7, fc8), "
       "flattened, and in eval mode", points=2, timeout=120, question=2, tests=("cut_vgg16",))
def cut_points():
    x = torch.randn(2, 3, 224, 224, generator=torch.Generator().manual_seed(0))
    torch.manual_seed(0)
    vgg = _vgg16().eval()
    pools = [i for i, m in enumerate(vgg.features) if isinstance(m, nn.MaxPool2d)]
    with torch.no_grad():
        expected, h = {}, x
        for k, i in enumerate(pools):
            h = vgg.features[(pools[k - 1] + 1 if k else 0):i + 1](h)
            expected[f"pool{k + 1}"] = h.flatten(1)
        flat = torch.flatten(vgg.avgpool(h), 1)
        expected.update(relu6=vgg.classifier[:2](flat), relu7=vgg.classifier[:5](flat), fc8=vgg.classifier(flat))
    for layer, (shape, modes, (first, second)) in zip(CUTS, run(_cuts, x, list(CUTS))):
        what = f"cut_vgg16(vgg16, {layer!r}) on 2 images"
        want = expected[layer]
        expect_equal(shape, tuple(want.shape), f"{what}: the shape of the output, flattened")
        expect(not modes, f"{what}: modules left in train mode ({', '.join(modes)}): the cut must be in eval "
               "mode, whatever the mode of the network it is cut from")
        expect_close(second, first, f"{what}: two calls on the same images", atol=1e-6)
        step = max(1, want[0].numel() // 4096)
        expect_close(first, want[:, ::step], f"{what}: the values (where the network is cut: after the layer's "
                     "ReLU for relu6 and relu7, after the pooling for poolK)", atol=1e-4, rtol=1e-4)


def _features(model, loader, kwargs):
    import numpy as np

    from tp3a_transfer.features import extract_features

    X, y = extract_features(model, loader, **kwargs)
    return torch.as_tensor(np.asarray(X)), [int(v) for v in np.asarray(y)], str(np.asarray(X).dtype), \
        [type(m).__name__ for m in model.modules() if m.training]


@check("tp3a.extract_features", "extract_features gives one unit-L2-norm row per image: the model's "
       "output, flattened, in eval mode", points=2, timeout=60, question=8, tests=("extract_features",))
def features_normalised():
    torch.manual_seed(0)
    model = nn.Sequential(nn.Conv2d(3, 4, 3), nn.ReLU(), nn.Dropout(0.5), nn.AdaptiveAvgPool2d(2))  # (B, 4, 2, 2)
    model.train()  # extract_features must put it in eval mode: Dropout would drop features
    images = torch.randn(10, 3, 16, 16, generator=torch.Generator().manual_seed(1))
    labels = torch.arange(10) % 3
    loader = [(images[i:i + 4], labels[i:i + 4]) for i in range(0, 10, 4)]
    with torch.no_grad():
        out = model.eval()(images).flatten(1)
    model.train()
    for kwargs in ({"device": "cpu", "progress": False}, {"device": torch.device("cpu"), "progress": True}):
        what = f"extract_features(model, loader, {', '.join(f'{k}={v!r}' for k, v in kwargs.items())})"
        X, y, dtype, training = run(_features, model, loader, kwargs)
        expect_shape(X, (10, 16), f"{what}: features of 10 images whose model output is (4, 2, 2)")
        expect(dtype == "float32", f"{what}: features must be float32, not {dtype}")
        expect_close(X.norm(dim=1), torch.ones(10), f"{what}: L2 norm of every feature row", atol=1e-5)
        expect_close(X, out / out.norm(dim=1, keepdim=True), f"{what}: feature rows (the model's output in eval "
                     "mode, flattened, divided by its L2 norm)", atol=1e-6)
        expect_equal(y, labels.tolist(), f"{what}: labels, in the loader's order")
        expect(not training, f"{what}: the model is still in train mode afterwards ({', '.join(training)})")


def _transformed(ramp, cases):
    """scene_transform(**kwargs) of the grey image ``ramp`` (uint8 rows) for each case, and
    the module's mean and std."""
    import numpy as np
    from PIL import Image

    from tp3a_transfer.features import IMAGENET_MEAN, IMAGENET_STD, scene_transform

    grey = Image.fromarray(np.asarray(ramp.numpy(), dtype=np.uint8), mode="L")
    return ([scene_transform(**kwargs)(grey) for kwargs in cases],
            [float(v) for v in IMAGENET_MEAN], [float(v) for v in IMAGENET_STD])


@check("tp3a.scene_transform", "scene_transform: three channels from a grey image, resized (or centre "
       "cropped), normalised with the mean and std given", points=2, timeout=60, question=9,
       tests=("scene_transform",))
def preprocessing():
    import numpy as np

    ramp = np.tile(np.linspace(0, 255, 300).astype(np.uint8), (200, 1))  # grey, 200 x 300, left dark
    cases = [{"crop": False}, {"crop": True},
             {"crop": False, "mean": (0.5, 0.4, 0.3), "std": (0.25, 0.2, 0.5), "size": 64}]
    outputs, mean, std = run(_transformed, torch.from_numpy(ramp), cases)
    expect_close(torch.tensor(mean), torch.tensor([0.485, 0.456, 0.406]), "IMAGENET_MEAN", atol=1e-6)
    expect_close(torch.tensor(std), torch.tensor([0.229, 0.224, 0.225]), "IMAGENET_STD", atol=1e-6)
    for kwargs, x in zip(cases, outputs):
        what = f"scene_transform({', '.join(f'{k}={v}' for k, v in kwargs.items())}) of a 200x300 grey image"
        size = kwargs.get("size", 224)
        m = torch.tensor(kwargs.get("mean", mean)).view(3, 1, 1)
        s = torch.tensor(kwargs.get("std", std)).view(3, 1, 1)
        expect_shape(x, (3, size, size), what)
        pixels = x * s + m  # back to [0, 1]
        expect_close(pixels[1], pixels[0], f"{what}: channels 0 and 1, un-normalised", atol=1e-5)
        expect_close(pixels[2], pixels[0], f"{what}: channels 0 and 2, un-normalised", atol=1e-5)
        expect(float(pixels.min()) > -0.02 and float(pixels.max()) < 1.02,
               f"{what}: after undoing the normalisation with the mean and std given, the pixels must lie in "
               f"[0, 1] (found {float(pixels.min()):.2f} to {float(pixels.max()):.2f}): scale them to [0, 1], "
               "then normalise with that mean and std")
        left, middle = float(pixels[0, :, 0].mean()), float(pixels[0, :, size // 2].mean())
        expect(abs(middle - 0.5) < 0.05,
               f"{what}: the middle column is {middle:.2f}, expected about 0.5 (the ramp's middle)")
        # Resizing keeps the whole ramp (left edge near black); the centre crop cuts its sides.
        if kwargs["crop"]:
            expect(left > 0.1, f"{what}: the left edge must be cropped away (left column {left:.2f}, expected the "
                   "ramp's value at 1/6 of the width, about 0.17)")
        else:
            expect(left < 0.05, f"{what}: the whole image is resized (left column {left:.2f}, expected about 0)")


def _svm(Xtr, ytr, Xte, yte, settings):
    """For each (C, seed): fit with train_svm and score with accuracy; the SVM's parameters,
    its coefficients before and after scoring, and its predictions on the test half."""
    import numpy as np

    from tp3a_transfer.features import accuracy, train_svm

    Xtr, ytr, Xte, yte = (t.numpy() for t in (Xtr, ytr, Xte, yte))
    found = []
    for C, seed in settings:
        svm = train_svm(Xtr, ytr, C=C, seed=seed)
        coef = torch.as_tensor(np.array(svm.coef_, copy=True))
        predictions = torch.as_tensor(np.asarray(svm.predict(Xte)))
        acc = float(accuracy(svm, Xte, yte))
        params = {k: v for k, v in svm.get_params().items() if isinstance(v, (int, float, str)) or v is None}
        found.append((params, coef, torch.as_tensor(np.array(svm.coef_, copy=True)), predictions, acc,
                      type(svm).__name__))
    return found


@check("tp3a.svm", "train_svm and accuracy: a LinearSVC with the C and seed asked for, fitted on the "
       "training features; accuracy predicts and never refits", points=2, timeout=60, question=10,
       tests=("train_svm", "accuracy"))
def svm_pipeline():
    from sklearn.datasets import load_digits
    from sklearn.model_selection import train_test_split
    from sklearn.preprocessing import normalize
    from sklearn.svm import LinearSVC

    X, y = load_digits(return_X_y=True)  # 1,797 8x8 digits, shipped with scikit-learn
    Xtr, Xte, ytr, yte = train_test_split(normalize(X), y, test_size=0.5, random_state=0, stratify=y)
    settings = [(1.0, 0), (0.01, 3), (100.0, 1)]
    found = run(_svm, *(torch.from_numpy(a) for a in (Xtr, ytr, Xte, yte)), settings)
    for (C, seed), (params, coef, after, predictions, acc, kind) in zip(settings, found):
        what = f"train_svm(features, labels, C={C}, seed={seed})"
        expect(kind == "LinearSVC", f"{what} returned a {kind}, not a LinearSVC")
        expect(params.get("C") == C, f"{what}: the SVM's C is {params.get('C')!r}, expected {C}")
        expect(params.get("random_state") == seed, f"{what}: the SVM's random_state is "
               f"{params.get('random_state')!r}, expected the seed {seed}")
        expect(torch.equal(after, coef), f"{what}: accuracy() changed the SVM: it must only predict, never fit "
               "(fitting on the test set reports a number no one can trust)")
        reference = LinearSVC(C=C, random_state=seed).fit(Xtr, ytr).predict(Xte)
        agree = float((predictions.numpy() == reference).mean())
        expect(agree >= 0.98, f"{what}: its test predictions agree with LinearSVC(C={C}) fitted on the training "
               f"half for only {agree:.1%} of the images")
        expect_close(acc, float((predictions == torch.from_numpy(yte)).double().mean()),
                     f"{what}: accuracy on the test half (the share of correct predictions)", atol=1e-9)
    # Calibrated: LinearSVC(C=1) on these L2-normalised digits gives 0.950, 0.961, 0.950, 0.963,
    # 0.950 on the test halves of splits 0-4 (split 0 here); an SVM fitted on the test half
    # itself scores 0.977.
    acc = found[0][4]
    expect(0.94 <= acc <= 0.97, f"test accuracy {acc:.4f} at C = 1 outside the calibrated range [0.94, 0.97] of a "
           "LinearSVC(C=1) fitted on the training half")


def _choose(X, y, Cs, kwargs):
    from tp3a_transfer.features import choose_C

    best, scores = choose_C(X.numpy(), y.numpy(), Cs, **kwargs)
    return float(best), [float(s) for s in scores]


@check("tp3a.choose_C", "choose_C picks C by stratified, shuffled cross-validation on the training set, "
       "with the folds and seed asked for", points=2, timeout=120, question=11, tests=("choose_C",))
def choose_c():
    import numpy as np
    from sklearn.datasets import load_digits
    from sklearn.model_selection import StratifiedKFold, cross_val_score
    from sklearn.preprocessing import normalize
    from sklearn.svm import LinearSVC

    # 400 digits with 300 noise dimensions and a quarter of the labels scrambled: a large C fits
    # the training set (accuracy 0.93 at C=0.1, 1.0 from C=10) but generalises worse.
    X, y = load_digits(return_X_y=True)
    rng = np.random.default_rng(0)
    X = normalize(np.hstack([X / 16, rng.normal(0, 0.5, (len(X), 300))]))[:400]
    y = y[:400].copy()
    noisy = rng.choice(400, 100, replace=False)
    y[noisy] = rng.integers(0, 10, 100)
    Cs = [0.01, 0.1, 1.0, 10.0, 100.0]
    best, scores = run(_choose, torch.from_numpy(X), torch.from_numpy(y), Cs, {})
    expect_equal(len(scores), len(Cs), "number of scores returned (one per C)")
    # Calibrated: 5-fold CV picks C = 0.1 with stratified shuffled folds (seeds 0 and 1), plain
    # stratified folds and plain KFold alike, with mean accuracies 0.29-0.52; scoring on the
    # training set itself gives 0.80-1.00 and picks C >= 10.
    expect(max(scores) < 0.65, f"scores {[round(s, 3) for s in scores]} are training-set accuracies, not "
           "cross-validated ones (expected at most about 0.52 on this noisy set)")
    expect_equal(best, 0.1, "C chosen by 5-fold cross-validation")
    # The folds and the seed: the scores of the docstring's procedure, for 3 folds and seed 1.
    # Calibrated: LinearSVC's random_state (None, 0, 1, 5, 123) leaves them unchanged; unshuffled
    # folds, seed 0, 5 folds and plain shuffled KFold move some score by 0.035, 0.053, 0.035
    # and 0.138, against the tolerance of 0.01.
    kwargs = {"folds": 3, "seed": 1}
    _, scores = run(_choose, torch.from_numpy(X), torch.from_numpy(y), Cs, kwargs)
    split = StratifiedKFold(n_splits=3, shuffle=True, random_state=1)
    expected = [float(cross_val_score(LinearSVC(C=C, random_state=1), X, y, cv=split).mean()) for C in Cs]
    expect_close(torch.tensor(scores), torch.tensor(expected), "choose_C(..., folds=3, seed=1): the mean "
                 "accuracies of stratified 3-fold cross-validation, folds shuffled with seed 1", atol=0.01)

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
"""
import logging
import os
import sys
import time
from pathlib import Path


import numpy as np
import torch
import torch.nn as nn
from tqdm.auto import tqdm

from common import cli
from common.datasets import SCENE15_CLASSES, load_scene15
from common.errors import UserError, WeightsError
from common.plotting import plt, save_figure, save_image_table
from common.imagenet import read_rgb
from common.pretrained import (OFFLINE_MODEL, ExplicitChoice, MissingWeightsError, given,
                               imagenet_categories, load_frozen, load_model_option, load_torchvision_model,
                               model_label, model_record, switch_to_offline)
from common.results import markdown_table, save_json
from tp3a_transfer.features import (VGG16_LAYERS, VGG16_POOLS, accuracy, choose_C, cut_vgg16,
                                    extract_features, scene_transform, train_svm)
from tp3a_transfer.parameters import count_linear_parameters, count_parameters, parameter_table

log = logging.getLogger("tp3a_transfer")

# Where each network can be cut, and its default ("the penultimate layer").
LAYERS = {"vgg16": VGG16_LAYERS, "alexnet": ("relu7",), "resnet18": ("pool",), "resnet50": ("pool",),
          OFFLINE_MODEL: ("block3", "block4", "block5", "block6", "pool", "logits")}
DEFAULT_LAYER = {"vgg16": "relu7", "alexnet": "relu7", "resnet18": "pool", "resnet50": "pool", OFFLINE_MODEL: "pool"}
NETWORKS = ("vgg16", "alexnet", "resnet18", "resnet50", OFFLINE_MODEL)
C_GRID = tuple(float(c) for c in np.logspace(-3, 2, 11))
QUICK = {"per_class": 8, "epochs": 1, "pca": (4, 16, 32)}


def decoding_workers(args) -> int:
    """DataLoader processes decoding images: --workers, else none on a CPU and half the cores
    on a GPU. On a CPU the network's threads use every core, while decoding costs a few
    percent of the network's time, so a worker gains nothing there; on a GPU, workers decode
    while it computes."""
    if args.workers is not None:
        return args.workers
    return 0 if args.device.type == "cpu" else max(1, (os.cpu_count() or 2) // 2)


# ----------------------------------------------------------------------------- networks

class EfficientNetCut(nn.Module):
    """EfficientNet-Lite0 up to ``layer``: "blockK" (the K-th stage, average-pooled over
    space), "pool" (the 1280-d penultimate features) or "logits" (1000)."""

    def __init__(self, model: nn.Module, layer: str):
        super().__init__()
        self.model, self.layer = model, layer

    def forward(self, x):
        m = self.model
        if self.layer.startswith("block"):
            h = m.bn1(m.conv_stem(x))
            for block in m.blocks[:int(self.layer[5:]) + 1]:
                h = block(h)
            return h.mean(dim=(2, 3))
        h = m.forward_features(x)
        return m.forward_head(h, pre_logits=self.layer == "pool")


def cut(name: str, model: nn.Module, layer: str) -> nn.Module:
    """The network ``name`` up to ``layer`` (see :data:`LAYERS`)."""
    if name == "vgg16":
        return cut_vgg16(model, layer)
    if name == OFFLINE_MODEL:
        return EfficientNetCut(model, layer)
    if name.startswith("resnet"):
        return nn.Sequential(*list(model.children())[:-1], nn.Flatten())  # up to the average pool
    if name == "alexnet":
        return nn.Sequential(model.features, model.avgpool, nn.Flatten(), model.classifier[:-1])
    raise UserError(f"no cut points known for {name}; choose one of {', '.join(NETWORKS)}")


def check_layer(name: str, layer: str | None) -> str:
    if name not in LAYERS:
        raise UserError(f"--model must be one of {', '.join(NETWORKS)} for features, not {name!r}")
    layer = layer or DEFAULT_LAYER[name]
    if layer not in LAYERS[name]:
        raise UserError(f"{name} has no layer {layer!r}; choose one of {', '.join(LAYERS[name])}")
    return layer


# ----------------------------------------------------------------------------- features, cached

def per_class(args) -> int | None:
    """Images kept per class: --per-class, else 8 in --quick mode, else all (None)."""
    return args.per_class or (QUICK["per_class"] if args.quick else None)


def result_path(args, kind: str, suffix: str, layer: str | None = None) -> Path:
    """``OUT_DIR/KIND_MODEL[_LAYER][_crop][_random].SUFFIX``: runs with --crop or with random
    weights never overwrite the others."""
    parts = [kind, args.model] + ([layer] if layer else []) + (["crop"] if getattr(args, "crop", False) else [])
    parts += ["random"] if getattr(args, "random_weights", False) else []
    return Path(args.out_dir) / ("_".join(parts) + suffix)


def cache_dir(args) -> Path:
    return args.cache_dir or Path(args.out_dir) / "features"


def subset(dataset, per_class: int | None):
    """The first ``per_class`` images of each class (all when None)."""
    if per_class is None:
        return dataset
    seen, keep = {}, []
    for i, (_, c) in enumerate(dataset.samples):
        if seen.get(c, 0) < per_class:
            seen[c] = seen.get(c, 0) + 1
            keep.append(i)
    return torch.utils.data.Subset(dataset, keep)


def cache_path(args, name: str, layer: str, split: str) -> Path:
    prep = "crop" if args.crop else "resize"
    size = f"_{per_class(args)}pc" if per_class(args) else ""
    weights = "_random" if args.random_weights else ""
    return cache_dir(args) / f"{name}{weights}_{layer}_{prep}_{split}{size}.npz"


_LOADED: dict = {}  # the last network loaded for extraction: both splits share it


def network(args, name: str) -> tuple[nn.Module, tuple, tuple]:
    """The frozen network ``name`` and its normalisation, loaded once for every split and layer."""
    key = (name, args.random_weights)
    if key not in _LOADED:
        _LOADED.clear()
        _LOADED[key] = load_frozen(name, pretrained=not args.random_weights)
    return _LOADED[key]


def resolve_layers(args, pick) -> list[str]:
    """The layers ``pick(args)`` chooses for --model, once --model can be had: features
    cached for both splits, random weights, or weights loaded (kept for the extraction).
    When the default network's weights cannot be had, EfficientNet-Lite0 stands in (see
    :func:`common.pretrained.switch_to_offline`) at the layers ``pick`` chooses for it; a
    --layer or --layers the user gave stops the command instead, as a named --model does."""
    chosen = pick(args)
    cached = all(cache_path(args, args.model, layer, split).exists() for layer in chosen for split in ("train", "test"))
    if cached or args.random_weights:
        return chosen
    check_scene15(args)
    try:
        network(args, args.model)
    except MissingWeightsError as e:
        named_layers = getattr(args, "layer", None) or getattr(args, "layers", None)
        if named_layers and not given(args, "model"):
            raise MissingWeightsError(f"{e}; the layers asked for ({', '.join(chosen)}) are {args.model}'s: put its "
                                      f"weights in place, or choose --model {OFFLINE_MODEL} and its layers "
                                      f"({', '.join(LAYERS[OFFLINE_MODEL])})", e.info, e.reason) from e
        requested = args.model
        switch_to_offline(args, e, f"its {DEFAULT_LAYER[OFFLINE_MODEL]} features stand in for "
                                   f"{requested}'s {', '.join(chosen)}")
        chosen = pick(args)
    return chosen


def check_scene15(args) -> None:
    """Open both 15 Scene splits, so that a missing dataset stops the command with its own
    message before any network is loaded (or replaced)."""
    for split in ("train", "test"):
        load_scene15(args.data_dir, split)


def one_layer(args) -> list[str]:
    """--layer of --model, or the network's default layer (a :func:`resolve_layers` choice)."""
    return [check_layer(args.model, args.layer)]


def scene_loader(args, split: str, mean, std) -> torch.utils.data.DataLoader:
    data = subset(load_scene15(args.data_dir, split, transform=scene_transform(args.crop, mean, std)), per_class(args))
    return torch.utils.data.DataLoader(data, batch_size=args.batch_size, num_workers=decoding_workers(args),
                                       pin_memory=args.device.type == "cuda")  # faster copies to a GPU


def save_features(path: Path, X: np.ndarray, y: np.ndarray, seconds: float) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    np.savez(path, X=X, y=y, seconds=seconds)


def features(args, name: str, layer: str, split: str) -> tuple[np.ndarray, np.ndarray]:
    """Features of one split, from the cache when there, else extracted once and cached."""
    path = cache_path(args, name, layer, split)
    if path.exists():
        with np.load(path) as f:
            return f["X"], f["y"]
    model, mean, std = network(args, name)
    start = time.perf_counter()
    X, y = extract_features(cut(name, model, layer).to(args.device), scene_loader(args, split, mean, std),
                            args.device)
    seconds = time.perf_counter() - start
    log.info("%s %s %s: %d images, %d-d features in %.1f s (%.1f images/s)", name, layer, split, len(y),
             X.shape[1], seconds, len(y) / seconds)
    save_features(path, X, y, seconds)
    return X, y


def taps(name: str, model: nn.Module) -> dict:
    """For each layer of :data:`LAYERS`, the module of ``model`` whose output it is and what
    turns that output into one row per image (what :func:`cut` computes up to that layer)."""
    def flat(h):
        return h.flatten(1)

    if name == "vgg16":  # classifier: Linear ReLU Dropout Linear ReLU Dropout Linear
        found = {layer: (model.features[i], flat) for layer, i in VGG16_POOLS.items()}
        found.update(relu6=(model.classifier[1], flat), relu7=(model.classifier[4], flat),
                     fc8=(model.classifier[6], flat))
        return found
    if name == OFFLINE_MODEL:  # EfficientNetCut: blocks average-pooled, timm's pooled features, logits
        found = {layer: (model.blocks[int(layer[5:])], lambda h: h.mean(dim=(2, 3)))
                 for layer in LAYERS[name] if layer.startswith("block")}
        found.update(pool=(model.global_pool, flat), logits=(model.classifier, flat))
        return found
    return {}


@torch.no_grad()
def extract_layers(args, name: str, layers: list[str], split: str) -> None:
    """Cache the features of several layers of one network in ONE pass over the images: the
    cut at the deepest layer runs, and forward hooks take the other layers' outputs on the
    way (the same arithmetic as one pass per layer, a test checks it). Each row is
    L2-normalised as :func:`extract_features` does; the rows of every layer stay in memory
    until the pass ends."""
    model, mean, std = network(args, name)
    tap = taps(name, model)
    rows, labels = {layer: [] for layer in layers}, []

    def keep(layer):
        post = tap[layer][1]
        return lambda module, inputs, out: rows[layer].append(
            torch.nn.functional.normalize(post(out).float(), dim=1).cpu())

    hooks = [tap[layer][0].register_forward_hook(keep(layer)) for layer in layers]
    net = cut(name, model, max(layers, key=LAYERS[name].index)).to(args.device).eval()
    start = time.perf_counter()
    try:
        for images, y in tqdm(scene_loader(args, split, mean, std), desc=f"{split}: {len(layers)} layers",
                              unit="batch", leave=False):
            net(images.to(args.device, non_blocking=True))
            labels.append(y)
    finally:
        for h in hooks:
            h.remove()
    seconds = time.perf_counter() - start
    y = torch.cat(labels).numpy().astype(np.int64)
    log.info("%s %s %s: %d images, one pass in %.1f s (%.1f images/s)", name, "/".join(layers), split,
             len(y), seconds, len(y) / seconds)
    for layer in layers:
        save_features(cache_path(args, name, layer, split), torch.cat(rows[layer]).numpy(), y, seconds)


def extract_missing(args, name: str, layers: list[str]) -> None:
    """Extract every layer of ``layers`` not cached yet, both splits, one pass per split."""
    for split in ("train", "test"):
        missing = [layer for layer in dict.fromkeys(layers) if not cache_path(args, name, layer, split).exists()]
        if len(missing) > 1 and set(missing) <= set(taps(name, network(args, name)[0])):
            extract_layers(args, name, missing, split)


def both(args, name: str, layer: str):
    return features(args, name, layer, "train") + features(args, name, layer, "test")


# ----------------------------------------------------------------------------- commands

def params(args) -> dict:
    """Question 1: parameters of the network, per layer, and the share of the FC layers."""
    model = load_torchvision_model(args.model, weights=None)  # the count needs no weights
    rows = parameter_table(model)
    total, fc = count_parameters(model), count_linear_parameters(model)
    width = max(len(name) for name, _, _ in rows)
    lines = [f"{'layer':<{width}}  {'shape':<20} {'parameters':>12}"]
    lines += [f"{name:<{width}}  {str(list(shape)):<20} {n:>12,}" for name, shape, n in rows]
    lines.append(f"{'total':<{width}}  {'':<20} {total:>12,}")
    lines.append(f"{'fully-connected':<{width}}  {'':<20} {fc:>12,}  ({100 * fc / total:.1f}%)")
    with torch.no_grad():
        outputs = model(torch.zeros(1, 3, 224, 224)).shape[1]
    lines.append(f"output: {outputs} scores, one per ImageNet class")
    print("\n".join(lines))
    result = {"model": args.model, "total": total, "fully_connected": fc, "outputs": outputs,
              "fully_connected_share": fc / total,
              "layers": [{"name": n, "shape": list(s), "parameters": k} for n, s, k in rows]}
    save_json(result, args.out_dir / f"params_{args.model}.json")
    md = ["| layer | shape | parameters |", "|---|---|---:|"]
    md += [f"| {n} | {list(s)} | {k:,} |" for n, s, k in rows]
    md += [f"| **total** | | **{total:,}** |",
           f"| **fully-connected** | | **{fc:,}** ({100 * fc / total:.1f}%) |"]
    (args.out_dir / f"params_{args.model}.md").write_text("\n".join(md) + "\n")
    log.info("wrote %s", args.out_dir / f"params_{args.model}.{{json,md}}")
    return result


def sample_photos() -> list[tuple[str, np.ndarray]]:
    """Colour photos that install with scikit-image, for when no image is given."""
    from skimage import data

    return [(n, getattr(data, n)()) for n in ("chelsea", "coffee", "astronaut", "rocket")]


def predict(args) -> dict:
    """Question 3: top-k ImageNet classes (logit and probability) of image files."""
    from PIL import Image

    model, mean, std = load_model_option(args)
    names = imagenet_categories()
    photos = [(Path(p).name, read_rgb(p)) for p in args.images] if args.images else sample_photos()
    prep = scene_transform(True, mean, std)
    x = torch.stack([prep(Image.fromarray(a)) for _, a in photos])
    with torch.no_grad():
        logits = model.to(args.device)(x.to(args.device)).cpu()
    probs = logits.softmax(1)
    top = probs.topk(args.top_k, dim=1)
    result = {**model_record(args), "images": []}
    titles = []
    for (name, _), p_row, i_row, l_row in zip(photos, top.values, top.indices, logits):
        preds = [{"class": int(i), "name": names[i], "logit": float(l_row[i]), "probability": float(p)}
                 for p, i in zip(p_row, i_row)]
        result["images"].append({"image": name, "top": preds})
        print(f"{name}: " + "; ".join(f"{d['name']} {d['probability']:.3f} (logit {d['logit']:.2f})" for d in preds))
        titles.append(f"{name[:20]}\n{preds[0]['name'][:20]} {preds[0]['probability']:.2f}")
    save_image_table([a for _, a in photos], args.out_dir / f"predict_{args.model}.png", titles=titles, ncols=4,
                     suptitle=f"{model_label(args)}: top-1 ImageNet class")
    save_json(result, args.out_dir / f"predict_{args.model}.json")
    return result


def activations(args) -> dict:
    """Question 4: the maps of the first convolution layer (after its ReLU) for an image."""
    from PIL import Image

    model, mean, std = load_model_option(args, pretrained=not args.random_weights)
    name, image = (args.image.name, read_rgb(args.image)) if args.image else sample_photos()[0]
    x = scene_transform(True, mean, std)(Image.fromarray(image))[None]
    if args.model == "vgg16" or args.model == "alexnet":
        first = model.features[:2]  # Conv2d, ReLU
    elif args.model == OFFLINE_MODEL:
        first = nn.Sequential(model.conv_stem, model.bn1)  # BatchNormAct2d: BN then ReLU6
    else:
        first = nn.Sequential(model.conv1, model.bn1, model.relu)
    with torch.no_grad():
        maps = first(x)[0]  # (C, H, W)
    maps = (maps - maps.amin(dim=(1, 2), keepdim=True)) / (maps.amax(dim=(1, 2), keepdim=True)
                                                            - maps.amin(dim=(1, 2), keepdim=True)).clamp_min(1e-8)
    path = save_image_table(list(maps.numpy()), args.out_dir / f"activations_{args.model}.png",
                            titles=[str(i) for i in range(len(maps))], ncols=8, cmap="viridis", cell_size=1.4,
                            suptitle=f"{model_label(args)}: the {len(maps)} maps of the first convolution, {name}")
    print(f"{model_label(args)}: {len(maps)} activation maps of {name} in {path}")
    return {**model_record(args), "maps": len(maps), "size": list(maps.shape[1:])}


def extract(args) -> dict:
    """Extract (and cache) the features of both splits for --model at each --layer."""
    chosen = resolve_layers(args, lambda a: [check_layer(a.model, layer) for layer in a.layers or [None]])
    result = {}
    extract_missing(args, args.model, chosen)  # several layers: one pass over the images
    for layer in chosen:
        for split in ("train", "test"):
            path = cache_path(args, args.model, layer, split)
            X, y = features(args, args.model, layer, split)
            with np.load(path) as f:
                seconds = float(f["seconds"])
            result[f"{layer}/{split}"] = {**model_record(args), "images": len(y), "dim": int(X.shape[1]),
                                          "seconds": seconds, "images_per_second": len(y) / seconds,
                                          "cache": str(path)}
            print(f"{args.model} {layer} {split}: {len(y)} images, {X.shape[1]}-d, "
                  f"{len(y) / seconds:.1f} images/s when extracted; cached in {path}")
    save_json(result, result_path(args, "extract", ".json"))
    return result


def svm(args) -> dict:
    """The SVM of section 2.3 (questions 6 and 10): LinearSVC(C) on the training features,
    accuracy on the test features."""
    (layer,) = resolve_layers(args, one_layer)
    Xtr, ytr, Xte, yte = both(args, args.model, layer)
    start = time.perf_counter()
    clf = train_svm(Xtr, ytr, args.C, args.seed)
    fit = time.perf_counter() - start
    acc = accuracy(clf, Xte, yte)
    result = {**model_record(args), "layer": layer, "crop": args.crop, "C": args.C, "train": len(ytr),
              "test": len(yte), "dim": int(Xtr.shape[1]), "test_accuracy": acc, "fit_seconds": fit,
              "train_accuracy": accuracy(clf, Xtr, ytr)}
    save_json(result, result_path(args, "svm", ".json", layer))
    print(f"{model_label(args, reduced=True)} {layer} ({'centre crop' if args.crop else 'resize'}), "
          f"LinearSVC C={args.C:g}: "
          f"test accuracy {acc:.4f} on {len(yte)} images ({Xtr.shape[1]}-d features, fit {fit:.1f} s)")
    return result


def csweep(args) -> dict:
    """C on a log grid: cross-validated accuracy on the training set chooses C; the test
    accuracy of every C is plotted beside it but never used to choose."""
    (layer,) = resolve_layers(args, one_layer)
    Xtr, ytr, Xte, yte = both(args, args.model, layer)
    best, cv = choose_C(Xtr, ytr, C_GRID, folds=args.folds, seed=args.seed)
    test = [accuracy(train_svm(Xtr, ytr, C, args.seed), Xte, yte) for C in tqdm(C_GRID, desc="C sweep", leave=False)]
    final = test[C_GRID.index(best)]
    fig, ax = plt.subplots(figsize=(6, 4))
    ax.semilogx(C_GRID, cv, "o-", label=f"{args.folds}-fold CV on train (chooses C)")
    ax.semilogx(C_GRID, test, "s--", label="test (for the record only)")
    ax.axvline(best, color="grey", lw=0.8)
    ax.set(xlabel="C", ylabel="accuracy",
           title=f"{model_label(args, reduced=True)} {layer}:\nbest C = {best:g} (CV), test {final:.3f}")
    ax.legend()
    save_figure(fig, result_path(args, "csweep", ".png", layer))
    rows = [[f"{C:g}", f"{c:.4f}", f"{t:.4f}"] for C, c, t in zip(C_GRID, cv, test)]
    table = markdown_table(["C", "CV accuracy (train)", "test accuracy"], rows)
    result_path(args, "csweep", ".md", layer).write_text(table)
    result = {**model_record(args), "layer": layer, "Cs": list(C_GRID), "cv_accuracy": cv, "test_accuracy": test,
              "best_C": best, "test_accuracy_at_best_C": final}
    save_json(result, result_path(args, "csweep", ".json", layer))
    print(table + f"C chosen by cross-validation on the training set: {best:g}; its test accuracy {final:.4f}")
    return result


def layers(args) -> dict:
    """Layer sweep: size of the representation, C chosen by CV, test accuracy, per layer."""
    def pick(a):
        if a.model not in LAYERS:
            raise UserError(f"--model must be one of {', '.join(NETWORKS)}, not {a.model!r}")
        return [check_layer(a.model, layer) for layer in
                a.layers or [name for name in LAYERS[a.model] if name not in ("pool1", "pool2", "pool3")]]

    chosen = resolve_layers(args, pick)
    extract_missing(args, args.model, chosen)  # one pass over the images for every layer
    rows, result = [], {**model_record(args), "layers": []}
    for layer in chosen:
        Xtr, ytr, Xte, yte = both(args, args.model, layer)
        best, cv = choose_C(Xtr, ytr, args.Cs, folds=args.folds, seed=args.seed)
        acc = accuracy(train_svm(Xtr, ytr, best, args.seed), Xte, yte)
        result["layers"].append({"layer": layer, "dim": int(Xtr.shape[1]), "best_C": best,
                                 "cv_accuracy": max(cv), "test_accuracy": acc})
        rows.append([layer, f"{Xtr.shape[1]:,}", f"{best:g}", f"{max(cv):.4f}", f"{acc:.4f}"])
    table = markdown_table(["layer", "size", "best C (CV)", "CV accuracy", "test accuracy"], rows)
    result_path(args, "layers", ".md").write_text(table)
    save_json(result, result_path(args, "layers", ".json"))
    print(table, end="")
    return result


def networks(args) -> dict:
    """Other pretrained networks at their penultimate layer, LinearSVC(C)."""
    rows, result = [], {"C": args.C, "networks": []}
    for name in args.networks:
        layer = DEFAULT_LAYER[name]
        try:
            Xtr, ytr, Xte, yte = both(args, name, layer)
        except WeightsError as e:
            if given(args, "networks"):  # a comparison the user asked for cannot be made
                raise
            log.warning("%s skipped: %s", name, e)
            result["networks"].append({"model": name, "layer": layer, "error": str(e)})
            rows.append([name, layer, "-", "weights missing"])
            continue
        acc = accuracy(train_svm(Xtr, ytr, args.C, args.seed), Xte, yte)
        result["networks"].append({"model": name, "layer": layer, "dim": int(Xtr.shape[1]), "test_accuracy": acc})
        rows.append([name, layer, f"{Xtr.shape[1]:,}", f"{acc:.4f}"])
    table = markdown_table(["network", "layer", "size", f"test accuracy (C={args.C:g})"], rows)
    crop = "_crop" if args.crop else ""
    (args.out_dir / f"networks{crop}.md").write_text(table)
    save_json(result, args.out_dir / f"networks{crop}.json")
    print(table, end="")
    return result


def pca(args) -> dict:
    """PCA before the SVM: accuracy and fit time against the number of components."""
    from sklearn.decomposition import PCA

    (layer,) = resolve_layers(args, one_layer)
    Xtr, ytr, Xte, yte = both(args, args.model, layer)
    full = PCA(random_state=args.seed).fit(Xtr)
    ninety = int(np.searchsorted(np.cumsum(full.explained_variance_ratio_), 0.9) + 1)
    limit = min(Xtr.shape)
    sizes = sorted({k for k in (QUICK["pca"] if args.quick else args.components) if k <= limit} | {ninety, limit})
    runs = []
    for k in tqdm(sizes, desc="PCA", leave=False):
        start = time.perf_counter()
        proj = PCA(n_components=k, random_state=args.seed).fit(Xtr)
        clf = train_svm(proj.transform(Xtr), ytr, args.C, args.seed)
        fit = time.perf_counter() - start
        runs.append({"components": k, "variance": float(full.explained_variance_ratio_[:k].sum()),
                     "test_accuracy": accuracy(clf, proj.transform(Xte), yte), "fit_seconds": fit})
    start = time.perf_counter()
    plain = accuracy(train_svm(Xtr, ytr, args.C, args.seed), Xte, yte)
    plain_fit = time.perf_counter() - start
    fig, (a1, a2) = plt.subplots(1, 2, figsize=(10, 3.8))
    ks = [r["components"] for r in runs]
    a1.semilogx(ks, [r["test_accuracy"] for r in runs], "o-")
    a1.axhline(plain, color="grey", ls="--", label=f"no PCA ({Xtr.shape[1]}-d): {plain:.3f}")
    a1.axvline(ninety, color="tab:red", lw=0.8, label=f"90% of the variance: {ninety}")
    a1.set(xlabel="components", ylabel="test accuracy")
    a1.legend()
    a2.semilogx(ks, [r["fit_seconds"] for r in runs], "o-")
    a2.axhline(plain_fit, color="grey", ls="--", label="no PCA")
    a2.set(xlabel="components", ylabel="PCA + SVM fit time (s)")
    a2.legend()
    fig.suptitle(f"{model_label(args, reduced=True)} {layer}, LinearSVC C={args.C:g}")
    save_figure(fig, result_path(args, "pca", ".png", layer))
    rows = [[r["components"], f"{r['variance']:.3f}", f"{r['test_accuracy']:.4f}", f"{r['fit_seconds']:.2f}"]
            for r in runs]
    rows.append([f"none ({Xtr.shape[1]})", "1", f"{plain:.4f}", f"{plain_fit:.2f}"])
    table = markdown_table(["components", "variance kept", "test accuracy", "fit time (s)"], rows)
    result_path(args, "pca", ".md", layer).write_text(table)
    result = {**model_record(args), "layer": layer, "components_for_90_percent": ninety, "runs": runs,
              "no_pca": {"test_accuracy": plain, "fit_seconds": plain_fit}}
    save_json(result, result_path(args, "pca", ".json", layer))
    print(table + f"90% of the variance: {ninety} components of {Xtr.shape[1]}")
    return result


@torch.no_grad()
def backbone_outputs(backbone: nn.Module, dataset, args) -> torch.utils.data.TensorDataset:
    """The frozen backbone's (unnormalised) outputs for every image, with the labels."""
    loader = torch.utils.data.DataLoader(dataset, batch_size=args.batch_size, num_workers=decoding_workers(args),
                                         pin_memory=args.device.type == "cuda")
    outputs, labels = [], []
    for x, y in tqdm(loader, desc="frozen backbone", leave=False):
        outputs.append(backbone(x.to(args.device, non_blocking=True)).cpu())
        labels.append(y)
    return torch.utils.data.TensorDataset(torch.cat(outputs), torch.cat(labels))


def head(args) -> dict:
    """A new 15-way linear layer on the network, trained with the backbone frozen or
    fine-tuned; test accuracy after every epoch."""
    if args.model not in DEFAULT_LAYER:
        raise UserError(f"--model must be one of {', '.join(NETWORKS)}, not {args.model!r}")
    epochs = QUICK["epochs"] if args.quick else args.epochs
    check_scene15(args)
    curves = {}
    for mode in args.modes:
        torch.manual_seed(args.seed)
        model, mean, std = load_model_option(args, pretrained=not args.random_weights)  # a fresh copy per mode
        name, layer = args.model, DEFAULT_LAYER[args.model]  # EfficientNet-Lite0's when it stood in
        backbone = cut(name, model, layer)
        dim = backbone(torch.zeros(1, 3, 224, 224)).shape[1]
        classifier = nn.Linear(dim, len(SCENE15_CLASSES))
        prep = scene_transform(args.crop, mean, std)
        train = subset(load_scene15(args.data_dir, "train", transform=prep), per_class(args))
        test = subset(load_scene15(args.data_dir, "test", transform=prep), per_class(args))
        # The backbone stays in eval mode: its BatchNorm statistics and dropout are those of
        # ImageNet training, which batches of 32 scene images would only make noisier. Frozen,
        # it then gives the same outputs at every epoch: compute them once, train the layer on them.
        backbone.to(args.device)
        workers = decoding_workers(args)
        if mode == "frozen":
            train, test = backbone_outputs(backbone, train, args), backbone_outputs(backbone, test, args)
            net, workers = classifier.to(args.device), 0
            opt = torch.optim.SGD(classifier.parameters(), lr=args.lr, momentum=0.9)
        else:
            net = nn.Sequential(backbone, classifier).to(args.device)
            for p in backbone.parameters():
                p.requires_grad_(True)
            # The pretrained layers move ten times more slowly than the new one.
            opt = torch.optim.SGD([{"params": classifier.parameters(), "lr": args.lr},
                                   {"params": backbone.parameters(), "lr": args.lr / 10}], lr=args.lr, momentum=0.9)
        pin = args.device.type == "cuda"
        tr = torch.utils.data.DataLoader(train, batch_size=32, shuffle=True, num_workers=workers, pin_memory=pin,
                                         generator=torch.Generator().manual_seed(args.seed))
        te = torch.utils.data.DataLoader(test, batch_size=args.batch_size, num_workers=workers, pin_memory=pin)
        accs = []
        for epoch in range(1, epochs + 1):
            net.eval()
            for x, y in tqdm(tr, desc=f"{mode} epoch {epoch}", leave=False):
                opt.zero_grad()
                nn.functional.cross_entropy(net(x.to(args.device, non_blocking=True)),
                                            y.to(args.device, non_blocking=True)).backward()
                opt.step()
            net.eval()
            correct = 0
            with torch.no_grad():
                for x, y in te:
                    correct += int((net(x.to(args.device)).argmax(1).cpu() == y).sum())
            accs.append(correct / len(test))
            log.info("%s %s epoch %d: test accuracy %.4f", name, mode, epoch, accs[-1])
        curves[mode] = accs
    fig, ax = plt.subplots(figsize=(6, 4))
    for mode, accs in curves.items():
        ax.plot(range(1, len(accs) + 1), accs, "o-", label=mode)
    ax.set(xlabel="epoch", ylabel="test accuracy", title=f"{model_label(args, reduced=True)}: new 15-way layer")
    ax.set_xticks(range(1, epochs + 1))
    ax.legend()
    save_figure(fig, result_path(args, "head", ".png"))
    result = {**model_record(args), "layer": layer, "epochs": epochs, "lr": args.lr, "test_accuracy": curves}
    save_json(result, result_path(args, "head", ".json"))
    print("; ".join(f"{mode}: " + ", ".join(f"{a:.3f}" for a in accs) for mode, accs in curves.items()))
    return result


# ----------------------------------------------------------------------------- command line

def build_parser():
    parser, sub = cli.make_parser("tp3a_transfer", __doc__, default_command="svm")

    def model_option(p):
        p.add_argument("--model", default="vgg16", action=ExplicitChoice,
                       help=f"network: {', '.join(NETWORKS)} (the last installs offline). Left at its default, "
                            f"vgg16 falls back to {OFFLINE_MODEL} (its pool features for relu7) with a warning "
                            f"when its weights are neither cached nor downloadable; a network named here, or a "
                            f"--layer/--layers given without it, must be had, else the command stops with the fix")

    def command(name, func, help_text, *groups):
        return cli.add_command(sub, name, func, help_text, options=(model_option, *groups))

    def data_options(p):
        g = p.add_argument_group("features")
        g.add_argument("--crop", action="store_true", help="resize the shorter side to 224 and crop the centre "
                                                           "(default: resize to 224x224)")
        g.add_argument("--cache-dir", type=Path, default=None,
                       help="feature cache (default: OUT_DIR/features); one file per network, layer, "
                            "preprocessing and split")
        g.add_argument("--batch-size", type=cli.positive_int, default=32, help="images per forward pass")
        g.add_argument("--workers", type=cli.non_negative_int, default=None,
                       help="image-decoding processes (default: none on a CPU, where the network's threads use "
                            "every core and decoding is a few percent of the time; half the cores on a GPU)")
        g.add_argument("--per-class", type=cli.positive_int, default=None,
                       help="only the first N images of each class (default: all; --quick: 8)")
        g.add_argument("--random-weights", action="store_true", help="random weights (structure checks only)")

    def layer_option(p):
        p.add_argument("--layer", default=None, help="where to cut: vgg16 " + "/".join(VGG16_LAYERS)
                       + " (relu7); efficientnet_lite0 " + "/".join(LAYERS[OFFLINE_MODEL]) + " (pool)")

    def c_option(p):
        p.add_argument("--C", type=cli.positive_float, default=1.0, help="the SVM's C")

    def cv_options(p):
        p.add_argument("--folds", type=cli.positive_int, default=5, help="cross-validation folds (training set)")

    p = cli.add_command(sub, "params", params, "count the parameters of a torchvision network, per layer and "
                        "in its fully-connected part (no weights needed)")
    p.add_argument("--model", default="vgg16", help="torchvision model name")
    p = command("predict", predict, "top-k ImageNet classes of image files (or of sample photos)")
    p.add_argument("images", nargs="*", type=Path, help="image files (default: 4 photos shipped with scikit-image)")
    p.add_argument("--top-k", type=cli.positive_int, default=5, help="classes shown per image")
    p = command("activations", activations, "the maps of the first convolution layer for an image")
    p.add_argument("--image", type=Path, help="image file (default: scikit-image's cat photo)")
    p.add_argument("--random-weights", action="store_true", help="random weights (structure only)")
    p = command("extract", extract, "extract and cache the features of both splits", data_options)
    p.add_argument("--layers", nargs="+", help="layers to extract, all in one pass over the images "
                   "(default: the network's default layer)")
    command("svm", svm, "LinearSVC on the features, test accuracy", data_options, layer_option, c_option)
    command("csweep", csweep, "C sweep: chosen by cross-validation on the training set", data_options,
            layer_option, cv_options)
    p = command("layers", layers, "layer sweep: size, best C (CV) and test accuracy per layer", data_options,
                cv_options)
    p.add_argument("--layers", nargs="+", help="layers, extracted in one pass over the images (default: all but "
                   "pool1-pool3, whose features are huge)")
    p.add_argument("--Cs", type=float, nargs="+", default=[0.1, 1.0, 10.0], help="values of C tried by CV")
    p = command("networks", networks, "other pretrained networks at their penultimate layer", data_options, c_option)
    p.add_argument("--networks", nargs="+", choices=NETWORKS, default=list(NETWORKS), action=ExplicitChoice,
                   help="networks compared; of the default list, a network whose weights cannot be had gets a row "
                        "saying which file is missing, while one named here stops the command")
    p = command("pca", pca, "PCA before the SVM: accuracy and fit time against components", data_options,
                layer_option, c_option)
    p.add_argument("--components", type=int, nargs="+", default=[16, 32, 64, 128, 256, 512, 1024],
                   help="numbers of components (the 90%%-variance point and all are added)")
    p = command("head", head, "a new 15-way layer, backbone frozen and fine-tuned; accuracy per epoch", data_options)
    p.add_argument("--modes", nargs="+", choices=("frozen", "fine-tuned"), default=["frozen", "fine-tuned"],
                   help="train the new layer alone, or the whole network")
    p.add_argument("--epochs", type=cli.positive_int, default=5, help="passes over the 1,500 training images")
    p.add_argument("--lr", type=cli.positive_float, default=0.01,
                   help="SGD learning rate of the new layer (the pretrained layers, when fine-tuned, use a tenth)")
    return parser


def main(argv=None) -> int:
    return cli.run(build_parser(), argv)


if __name__ == "__main__":
    sys.exit(main())

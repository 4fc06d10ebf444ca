"""The SVM experiments of practical 3-a on cached features: extraction, the SVM of section
2.3, and the "going further" sweeps over C, layers, networks and PCA sizes."""
import logging
import time

import numpy as np
from tqdm.auto import tqdm

from common.errors import UserError, WeightsError
from common.results import markdown_table, save_json
from tp3a_transfer import figures
from tp3a_transfer.extraction import FeatureStore, resolve_layers, result_path
from tp3a_transfer.features import accuracy, choose_C, train_svm
from tp3a_transfer.networks import DEFAULT_LAYER, LAYERS, NETWORKS, Network, check_layer
from tp3a_transfer.settings import (CSweepSettings, ExtractSettings, LayersSettings, NetworksSettings, PcaSettings,
                                    SvmSettings)

log = logging.getLogger("tp3a_transfer")
C_GRID = tuple(float(c) for c in np.logspace(-3, 2, 11))


def extract(s: ExtractSettings) -> dict:
    """Extract (and cache) the features of both splits for --model at each --layer."""
    store, chosen = resolve_layers(s, lambda name: [check_layer(name, layer) for layer in s.layers or [None]],
                                   layers_named=bool(s.layers))
    net, result = store.net, {}
    store.extract_missing(chosen)  # several layers: one pass over the images
    for layer in chosen:
        for split in ("train", "test"):
            path = store.path(layer, split)
            X, y = store.get(layer, split)
            with np.load(path) as f:
                seconds = float(f["seconds"])
            result[f"{layer}/{split}"] = {**net.record(s.quick), "images": len(y), "dim": int(X.shape[1]),
                                          "seconds": seconds, "images_per_second": len(y) / seconds,
                                          "cache": str(path)}
            print(f"{net.name} {layer} {split}: {len(y)} images, {X.shape[1]}-d, "
                  f"{len(y) / seconds:.1f} images/s when extracted; cached in {path}")
    save_json(result, result_path(s, net, "extract", ".json"))
    return result


def one_layer(s) -> tuple[FeatureStore, str]:
    """The features of --model at --layer, or at the network's default layer."""
    store, (layer,) = resolve_layers(s, lambda name: [check_layer(name, s.layer)], layers_named=bool(s.layer))
    return store, layer


def svm(s: SvmSettings) -> dict:
    """The SVM of section 2.3 (questions 6 and 10): LinearSVC(C) on the training features,
    accuracy on the test features."""
    store, layer = one_layer(s)
    net = store.net
    Xtr, ytr, Xte, yte = store.both(layer)
    start = time.perf_counter()
    clf = train_svm(Xtr, ytr, s.svm_c, s.seed)
    fit = time.perf_counter() - start
    acc = accuracy(clf, Xte, yte)
    result = {**net.record(s.quick), "layer": layer, "crop": s.crop, "C": s.svm_c, "train": len(ytr),
              "test": len(yte), "dim": int(Xtr.shape[1]), "test_accuracy": acc, "fit_seconds": fit,
              "train_accuracy": accuracy(clf, Xtr, ytr)}
    save_json(result, result_path(s, net, "svm", ".json", layer))
    print(f"{net.label(s.quick, reduced=True)} {layer} ({'centre crop' if s.crop else 'resize'}), "
          f"LinearSVC C={s.svm_c:g}: "
          f"test accuracy {acc:.4f} on {len(yte)} images ({Xtr.shape[1]}-d features, fit {fit:.1f} s)")
    return result


def csweep(s: CSweepSettings) -> dict:
    """C on a log grid: cross-validated accuracy on the training set chooses C; the test
    accuracy of every C is plotted beside it but never used to choose."""
    store, layer = one_layer(s)
    net = store.net
    Xtr, ytr, Xte, yte = store.both(layer)
    best, cv = choose_C(Xtr, ytr, C_GRID, folds=s.folds, seed=s.seed)
    test = [accuracy(train_svm(Xtr, ytr, C, s.seed), Xte, yte) for C in tqdm(C_GRID, desc="C sweep", leave=False)]
    final = test[C_GRID.index(best)]
    figures.csweep(C_GRID, cv, test, best, s.folds,
                   f"{net.label(s.quick, reduced=True)} {layer}:\nbest C = {best:g} (CV), test {final:.3f}",
                   result_path(s, net, "csweep", ".png", layer))
    rows = [[f"{C:g}", f"{c:.4f}", f"{t:.4f}"] for C, c, t in zip(C_GRID, cv, test)]
    table = markdown_table(["C", "CV accuracy (train)", "test accuracy"], rows)
    result_path(s, net, "csweep", ".md", layer).write_text(table)
    result = {**net.record(s.quick), "layer": layer, "Cs": list(C_GRID), "cv_accuracy": cv, "test_accuracy": test,
              "best_C": best, "test_accuracy_at_best_C": final}
    save_json(result, result_path(s, net, "csweep", ".json", layer))
    print(table + f"C chosen by cross-validation on the training set: {best:g}; its test accuracy {final:.4f}")
    return result


def layers(s: LayersSettings) -> dict:
    """Layer sweep: size of the representation, C chosen by CV, test accuracy, per layer."""
    def pick(name):
        if name not in LAYERS:
            raise UserError(f"--model must be one of {', '.join(NETWORKS)}, not {name!r}")
        return [check_layer(name, layer) for layer in
                s.layers or [n for n in LAYERS[name] if n not in ("pool1", "pool2", "pool3")]]

    store, chosen = resolve_layers(s, pick, layers_named=bool(s.layers))
    net = store.net
    store.extract_missing(chosen)  # one pass over the images for every layer
    rows, result = [], {**net.record(s.quick), "layers": []}
    for layer in chosen:
        Xtr, ytr, Xte, yte = store.both(layer)
        best, cv = choose_C(Xtr, ytr, s.c_grid, folds=s.folds, seed=s.seed)
        acc = accuracy(train_svm(Xtr, ytr, best, s.seed), Xte, yte)
        result["layers"].append({"layer": layer, "dim": int(Xtr.shape[1]), "best_C": best,
                                 "cv_accuracy": max(cv), "test_accuracy": acc})
        rows.append([layer, f"{Xtr.shape[1]:,}", f"{best:g}", f"{max(cv):.4f}", f"{acc:.4f}"])
    table = markdown_table(["layer", "size", "best C (CV)", "CV accuracy", "test accuracy"], rows)
    result_path(s, net, "layers", ".md").write_text(table)
    save_json(result, result_path(s, net, "layers", ".json"))
    print(table, end="")
    return result


def networks(s: NetworksSettings) -> dict:
    """Other pretrained networks at their penultimate layer, LinearSVC(C)."""
    rows, result = [], {"C": s.svm_c, "networks": []}
    for name in s.networks or NETWORKS:
        layer = DEFAULT_LAYER[name]
        try:
            Xtr, ytr, Xte, yte = FeatureStore(Network(name), s).both(layer)
        except WeightsError as e:
            if s.networks:  # a comparison the user asked for cannot be made
                raise
            log.warning("%s skipped: %s", name, e)
            result["networks"].append({"model": name, "layer": layer, "error": str(e)})
            rows.append([name, layer, "-", "weights missing"])
            continue
        acc = accuracy(train_svm(Xtr, ytr, s.svm_c, s.seed), Xte, yte)
        result["networks"].append({"model": name, "layer": layer, "dim": int(Xtr.shape[1]), "test_accuracy": acc})
        rows.append([name, layer, f"{Xtr.shape[1]:,}", f"{acc:.4f}"])
    table = markdown_table(["network", "layer", "size", f"test accuracy (C={s.svm_c:g})"], rows)
    crop = "_crop" if s.crop else ""
    (s.out_dir / f"networks{crop}.md").write_text(table)
    save_json(result, s.out_dir / f"networks{crop}.json")
    print(table, end="")
    return result


def pca(s: PcaSettings) -> dict:
    """PCA before the SVM: accuracy and fit time against the number of components."""
    from sklearn.decomposition import PCA

    store, layer = one_layer(s)
    net = store.net
    Xtr, ytr, Xte, yte = store.both(layer)
    full = PCA(random_state=s.seed).fit(Xtr)
    ninety = int(np.searchsorted(np.cumsum(full.explained_variance_ratio_), 0.9) + 1)
    limit = min(Xtr.shape)
    sizes = sorted({k for k in s.components if k <= limit} | {ninety, limit})
    runs = []
    for k in tqdm(sizes, desc="PCA", leave=False):
        start = time.perf_counter()
        proj = PCA(n_components=k, random_state=s.seed).fit(Xtr)
        clf = train_svm(proj.transform(Xtr), ytr, s.svm_c, s.seed)
        fit = time.perf_counter() - start
        runs.append({"components": k, "variance": float(full.explained_variance_ratio_[:k].sum()),
                     "test_accuracy": accuracy(clf, proj.transform(Xte), yte), "fit_seconds": fit})
    start = time.perf_counter()
    plain = accuracy(train_svm(Xtr, ytr, s.svm_c, s.seed), Xte, yte)
    plain_fit = time.perf_counter() - start
    figures.pca(runs, plain, plain_fit, Xtr.shape[1], ninety,
                f"{net.label(s.quick, reduced=True)} {layer}, LinearSVC C={s.svm_c:g}",
                result_path(s, net, "pca", ".png", layer))
    rows = [[r["components"], f"{r['variance']:.3f}", f"{r['test_accuracy']:.4f}", f"{r['fit_seconds']:.2f}"]
            for r in runs]
    rows.append([f"none ({Xtr.shape[1]})", "1", f"{plain:.4f}", f"{plain_fit:.2f}"])
    table = markdown_table(["components", "variance kept", "test accuracy", "fit time (s)"], rows)
    result_path(s, net, "pca", ".md", layer).write_text(table)
    result = {**net.record(s.quick), "layer": layer, "components_for_90_percent": ninety, "runs": runs,
              "no_pca": {"test_accuracy": plain, "fit_seconds": plain_fit}}
    save_json(result, result_path(s, net, "pca", ".json", layer))
    print(table + f"90% of the variance: {ninety} components of {Xtr.shape[1]}")
    return result

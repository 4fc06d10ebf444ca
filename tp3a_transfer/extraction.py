"""The features of a pretrained network on 15 Scene, extracted once per (network, layer,
preprocessing, split) and cached on disk, so that every SVM experiment reads them back."""
import logging
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import numpy as np
import torch
from tqdm.auto import tqdm

from common.pretrained import OFFLINE_MODEL, MissingWeightsError, fallback_notice, load_frozen, offline_hint
from tp3a_transfer.data import batches, check_scene15, decoding_workers, scene_images
from tp3a_transfer.features import extract_features
from tp3a_transfer.networks import DEFAULT_LAYER, LAYERS, Network, cut, taps
from tp3a_transfer.settings import FeatureSettings, SceneSettings

log = logging.getLogger("tp3a_transfer")
SPLITS = ("train", "test")


def result_path(s: SceneSettings, net: Network, kind: str, suffix: str, layer: str | None = None) -> Path:
    """``OUT_DIR/KIND_MODEL[_LAYER][_crop][_random].SUFFIX``: runs with --crop or with random
    weights never overwrite the others."""
    parts = [kind, net.name] + ([layer] if layer else []) + (["crop"] if s.crop else [])
    parts += ["random"] if s.random_weights else []
    return s.out_dir / ("_".join(parts) + suffix)


@dataclass
class FeatureStore:
    """The features of network ``net`` under the settings ``s``: from the cache when there,
    else extracted and cached. The network is loaded on first use and kept for every split
    and layer of the command."""

    net: Network
    s: SceneSettings
    loaded: tuple | None = field(default=None, repr=False)  # (model, mean, std)

    def network(self) -> tuple:
        """The frozen network and its normalisation ``(model, mean, std)``."""
        if self.loaded is None:
            self.loaded = load_frozen(self.net.name, pretrained=not self.s.random_weights)
        return self.loaded

    def path(self, layer: str, split: str) -> Path:
        s = self.s
        prep = "crop" if s.crop else "resize"
        size = f"_{s.per_class}pc" if s.per_class else ""
        weights = "_random" if s.random_weights else ""
        return s.cache / f"{self.net.name}{weights}_{layer}_{prep}_{split}{size}.npz"

    def loader(self, split: str, mean, std) -> torch.utils.data.DataLoader:
        s = self.s
        images = scene_images(s.data_dir, split, s.crop, mean, std, s.per_class)
        return batches(images, s.batch_size, decoding_workers(s.workers, s.device), s.device)

    def get(self, layer: str, split: str) -> tuple[np.ndarray, np.ndarray]:
        """Features of one split, from the cache when there, else extracted once and cached."""
        path = self.path(layer, split)
        if path.exists():
            with np.load(path) as f:
                return f["X"], f["y"]
        model, mean, std = self.network()
        device = self.s.device
        start = time.perf_counter()
        X, y = extract_features(cut(self.net.name, model, layer).to(device), self.loader(split, mean, std), device)
        seconds = time.perf_counter() - start
        log.info("%s %s %s: %d images, %d-d features in %.1f s (%.1f images/s)", self.net.name, layer, split,
                 len(y), X.shape[1], seconds, len(y) / seconds)
        save_features(path, X, y, seconds)
        return X, y

    def both(self, layer: str):
        """``(X_train, y_train, X_test, y_test)`` at ``layer``."""
        return self.get(layer, "train") + self.get(layer, "test")

    @torch.no_grad()
    def extract_layers(self, layers: list[str], split: str) -> None:
        """Cache the features of several layers in ONE pass over the images: the cut at the
        deepest layer runs, and forward hooks take the other layers' outputs on the way (the
        same arithmetic as one pass per layer, a test checks it). Each row is L2-normalised
        as :func:`extract_features` does; the rows of every layer stay in memory until the
        pass ends."""
        name, device = self.net.name, self.s.device
        model, mean, std = self.network()
        tap = taps(name, model)
        rows, labels = {layer: [] for layer in layers}, []

        def keep(layer):
            post = tap[layer][1]
            return lambda module, inputs, out: rows[layer].append(
                torch.nn.functional.normalize(post(out).float(), dim=1).cpu())

        hooks = [tap[layer][0].register_forward_hook(keep(layer)) for layer in layers]
        net = cut(name, model, max(layers, key=LAYERS[name].index)).to(device).eval()
        start = time.perf_counter()
        try:
            for images, y in tqdm(self.loader(split, mean, std), desc=f"{split}: {len(layers)} layers",
                                  unit="batch", leave=False):
                net(images.to(device, non_blocking=True))
                labels.append(y)
        finally:
            for h in hooks:
                h.remove()
        seconds = time.perf_counter() - start
        y = torch.cat(labels).numpy().astype(np.int64)
        log.info("%s %s %s: %d images, one pass in %.1f s (%.1f images/s)", name, "/".join(layers), split,
                 len(y), seconds, len(y) / seconds)
        for layer in layers:
            save_features(self.path(layer, split), torch.cat(rows[layer]).numpy(), y, seconds)

    def extract_missing(self, layers: list[str]) -> None:
        """Extract every layer of ``layers`` not cached yet, both splits, one pass per split."""
        for split in SPLITS:
            missing = [layer for layer in dict.fromkeys(layers) if not self.path(layer, split).exists()]
            if len(missing) > 1 and set(missing) <= set(taps(self.net.name, self.network()[0])):
                self.extract_layers(missing, split)


def save_features(path: Path, X: np.ndarray, y: np.ndarray, seconds: float) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    np.savez(path, X=X, y=y, seconds=seconds)


def resolve_layers(s: FeatureSettings, pick: Callable[[str], list[str]],
                   layers_named: bool = False) -> tuple[FeatureStore, list[str]]:
    """The features of --model and the layers ``pick(network name)`` chooses, once the
    network can be had: features cached for both splits, random weights, or weights loaded
    (kept for the extraction). When the default network's weights cannot be had,
    EfficientNet-Lite0 stands in (one warning) at the layers ``pick`` chooses for it; a
    --layer or --layers the user gave (``layers_named``) stops the command instead, as a
    named --model does."""
    store = FeatureStore(Network(s.network), s)
    chosen = pick(s.network)
    if s.random_weights or all(store.path(layer, split).exists() for layer in chosen for split in SPLITS):
        return store, chosen
    check_scene15(s.data_dir)
    try:
        store.network()
    except MissingWeightsError as e:
        if layers_named and not s.named:
            raise MissingWeightsError(f"{e}; the layers asked for ({', '.join(chosen)}) are {s.network}'s: put its "
                                      f"weights in place, or choose --model {OFFLINE_MODEL} and its layers "
                                      f"({', '.join(LAYERS[OFFLINE_MODEL])})", e.info, e.reason) from e
        if s.named:
            raise offline_hint(e) from e
        log.warning("%s", fallback_notice(e, f"its {DEFAULT_LAYER[OFFLINE_MODEL]} features stand in for "
                                             f"{s.network}'s {', '.join(chosen)}"))
        store = FeatureStore(Network(OFFLINE_MODEL, fallback_from=s.network), s)
        chosen = pick(OFFLINE_MODEL)
    return store, chosen

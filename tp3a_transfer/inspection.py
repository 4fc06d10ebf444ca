"""A pretrained network looked at (practical 3-a, questions 1-4): its parameters, its
ImageNet predictions on photos, the maps of its first convolution."""
import logging
from pathlib import Path

import numpy as np
import torch
import torch.nn as nn

from common.imagenet import read_rgb
from common.plotting import save_image_table
from common.pretrained import OFFLINE_MODEL, imagenet_categories, load_frozen
from common.results import save_json
from tp3a_transfer.features import scene_transform
from tp3a_transfer.networks import load_network
from tp3a_transfer.parameters import count_linear_parameters, count_parameters, parameter_table
from tp3a_transfer.settings import ActivationsSettings, ParamsSettings, PredictSettings

log = logging.getLogger("tp3a_transfer")


def params(s: ParamsSettings) -> dict:
    """Question 1: parameters of the network, per layer, and the share of the FC layers."""
    name = s.network
    model = load_frozen(name, pretrained=False)[0]  # the count needs no weights
    rows = parameter_table(model)
    total, fc = count_parameters(model), count_linear_parameters(model)
    width = max(len(n) for n, _, _ in rows)
    lines = [f"{'layer':<{width}}  {'shape':<20} {'parameters':>12}"]
    lines += [f"{n:<{width}}  {str(list(shape)):<20} {k:>12,}" for n, shape, k in rows]
    lines.append(f"{'total':<{width}}  {'':<20} {total:>12,}")
    lines.append(f"{'fully-connected':<{width}}  {'':<20} {fc:>12,}  ({100 * fc / total:.1f}%)")
    with torch.no_grad():
        outputs = model(torch.zeros(1, 3, 224, 224)).shape[1]
    lines.append(f"output: {outputs} scores, one per ImageNet class")
    print("\n".join(lines))
    result = {"model": name, "total": total, "fully_connected": fc, "outputs": outputs,
              "fully_connected_share": fc / total,
              "layers": [{"name": n, "shape": list(shape), "parameters": k} for n, shape, k in rows]}
    save_json(result, s.out_dir / f"params_{name}.json")
    md = ["| layer | shape | parameters |", "|---|---|---:|"]
    md += [f"| {n} | {list(shape)} | {k:,} |" for n, shape, k in rows]
    md += [f"| **total** | | **{total:,}** |",
           f"| **fully-connected** | | **{fc:,}** ({100 * fc / total:.1f}%) |"]
    (s.out_dir / f"params_{name}.md").write_text("\n".join(md) + "\n")
    log.info("wrote %s", s.out_dir / f"params_{name}.{{json,md}}")
    return result


def sample_photos() -> list[tuple[str, np.ndarray]]:
    """Colour photos that install with scikit-image, for when no image is given."""
    from skimage import data

    return [(n, getattr(data, n)()) for n in ("chelsea", "coffee", "astronaut", "rocket")]


def predict(s: PredictSettings) -> dict:
    """Question 3: top-k ImageNet classes (logit and probability) of image files."""
    from PIL import Image

    net, (model, mean, std) = load_network(s.network, s.named)
    names = imagenet_categories()
    photos = [(Path(p).name, read_rgb(p)) for p in s.images] if s.images else sample_photos()
    prep = scene_transform(True, mean, std)
    x = torch.stack([prep(Image.fromarray(a)) for _, a in photos])
    with torch.no_grad():
        logits = model.to(s.device)(x.to(s.device)).cpu()
    probs = logits.softmax(1)
    top = probs.topk(s.top_k, dim=1)
    result = {**net.record(s.quick), "images": []}
    titles = []
    for (name, _), p_row, i_row, l_row in zip(photos, top.values, top.indices, logits):
        preds = [{"class": int(i), "name": names[i], "logit": float(l_row[i]), "probability": float(p)}
                 for p, i in zip(p_row, i_row)]
        result["images"].append({"image": name, "top": preds})
        print(f"{name}: " + "; ".join(f"{d['name']} {d['probability']:.3f} (logit {d['logit']:.2f})" for d in preds))
        titles.append(f"{name[:20]}\n{preds[0]['name'][:20]} {preds[0]['probability']:.2f}")
    save_image_table([a for _, a in photos], s.out_dir / f"predict_{net.name}.png", titles=titles, ncols=4,
                     suptitle=f"{net.label()}: top-1 ImageNet class")
    save_json(result, s.out_dir / f"predict_{net.name}.json")
    return result


def first_convolution(name: str, model: nn.Module) -> nn.Module:
    """The first convolution of network ``name`` with what follows it up to its activation."""
    if name in ("vgg16", "alexnet"):
        return model.features[:2]  # Conv2d, ReLU
    if name == OFFLINE_MODEL:
        return nn.Sequential(model.conv_stem, model.bn1)  # BatchNormAct2d: BN then ReLU6
    return nn.Sequential(model.conv1, model.bn1, model.relu)


def activations(s: ActivationsSettings) -> dict:
    """Question 4: the maps of the first convolution layer (after its ReLU) for an image."""
    from PIL import Image

    net, (model, mean, std) = load_network(s.network, s.named, pretrained=not s.random_weights)
    name, image = (s.image.name, read_rgb(s.image)) if s.image else sample_photos()[0]
    x = scene_transform(True, mean, std)(Image.fromarray(image))[None]
    with torch.no_grad():
        maps = first_convolution(net.name, model)(x)[0]  # (C, H, W)
    low, high = maps.amin(dim=(1, 2), keepdim=True), maps.amax(dim=(1, 2), keepdim=True)
    maps = (maps - low) / (high - low).clamp_min(1e-8)
    path = save_image_table(list(maps.numpy()), s.out_dir / f"activations_{net.name}.png",
                            titles=[str(i) for i in range(len(maps))], ncols=8, cmap="viridis", cell_size=1.4,
                            suptitle=f"{net.label()}: the {len(maps)} maps of the first convolution, {name}")
    print(f"{net.label()}: {len(maps)} activation maps of {name} in {path}")
    return {**net.record(s.quick), "maps": len(maps), "size": list(maps.shape[1:])}

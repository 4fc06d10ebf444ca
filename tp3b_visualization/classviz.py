"""Class visualization by gradient ascent (the student's ``create_class_visualization``):
from noise for several classes, the course's sweeps over lambda, eta and the number of
iterations, and from an ImageNet image towards its own class."""
from dataclasses import asdict, dataclass, replace
from pathlib import Path

import torch
from tqdm.auto import tqdm

from common.errors import UserError
from common.imagenet import deprocess, load_imagenet_val_25, to_tensor_batch
from common.plotting import save_image_table
from common.pretrained import OFFLINE_MODEL, imagenet_categories
from common.results import save_json
from tp3b_visualization.labels import short
from tp3b_visualization.network import Network
from tp3b_visualization.visualization import create_class_visualization

# The default step eta: the course's 5 (chosen for SqueezeNet), except for the networks whose
# images it leaves covered in high-frequency noise (the sweep shows it).
DEFAULT_LR = 5.0
NETWORK_LR = {OFFLINE_MODEL: 1.0}


def default_lr(network: str) -> float:
    """The step eta for ``network`` when --lr is left out (:data:`NETWORK_LR`)."""
    return NETWORK_LR.get(network, DEFAULT_LR)


@dataclass(frozen=True)
class Ascent:
    """The settings of one gradient ascent (as written in each result's ``settings``)."""
    l2_reg: float = 1e-3
    lr: float = DEFAULT_LR
    iterations: int = 200
    blur_every: int = 10
    blur_sigma: float = 0.5
    max_jitter: int = 16
    seed: int = 0


def generate(net: Network, target: int, ascent: Ascent, *, init_img=None, snapshots=()) -> dict:
    """create_class_visualization of ``target`` with the settings ``ascent``."""
    return create_class_visualization(
        target, net.module, net.mean, net.std, l2_reg=ascent.l2_reg, learning_rate=ascent.lr,
        num_iterations=ascent.iterations, blur_every=ascent.blur_every, blur_sigma=ascent.blur_sigma,
        max_jitter=ascent.max_jitter, init_img=init_img, seed=ascent.seed, snapshots=snapshots)


def describe(model, img: torch.Tensor, target: int, names) -> tuple[str, dict]:
    """The caption and the numbers of an image: the target's probability and the top-1 class."""
    with torch.no_grad():
        probs = model(img).softmax(1)[0]
    top = int(probs.argmax())
    info = {"target_probability": float(probs[target]), "top1": top, "top1_name": names[top]}
    return f"p={info['target_probability']:.2f}" + ("" if top == target else f", top {short(names[top], 12)}"), info


def classviz(net: Network, classes, ascent: Ascent, out_dir: Path, quick: bool = False) -> dict:
    """Class visualizations of ``classes`` from random noise: ``classviz_M.png/.json``."""
    names = imagenet_categories()
    cells, titles, runs = [], [], []
    for c in tqdm(classes, desc="class visualization"):
        out = generate(net, c, ascent)
        caption, info = describe(net.module, out["image"], c, names)
        cells.append(deprocess(out["image"], net.mean, net.std)[0])
        titles.append(f"{names[c]}\n{caption}")
        runs.append({"class": c, "name": names[c], "final_objective": out["objective"][-1], **info})
    figure = save_image_table(cells, out_dir / f"classviz_{net.name}.png", titles=titles,
                              ncols=min(len(cells), 3), cell_size=3.2,
                              suptitle=f"{net.label(quick)}: λ={ascent.l2_reg:g}, "
                                       f"η={ascent.lr:g}, {ascent.iterations} it.")
    result = {**net.record(quick), "settings": asdict(ascent), "classes": runs}
    save_json(result, out_dir / f"classviz_{net.name}.json")
    print(f"{net.label(quick)}: {len(runs)} class visualizations in {figure}; target probabilities "
          + ", ".join(f"{r['name']} {r['target_probability']:.2f}" for r in runs))
    return result


def sweep(net: Network, target: int, ascent: Ascent, values: dict, out_dir: Path, quick: bool = False) -> dict:
    """``target`` under the sweeps ``values`` ({"l2_reg": [...], "lr": [...], "iterations":
    [...]}), one grid each: ``classviz_sweep_{key}_M.png`` and ``classviz_sweep_M.json``."""
    names = imagenet_categories()
    result = {**net.record(quick), "class": target, "name": names[target], "settings": asdict(ascent), "sweeps": {}}
    for key, label in (("l2_reg", "λ"), ("lr", "η"), ("iterations", "iterations")):
        if key == "iterations":  # one run, photographed on the way: the same trajectory
            out = generate(net, target, replace(ascent, iterations=max(values[key])), snapshots=values[key])
            images = [out["snapshots"][v] for v in values[key]]
        else:
            images = [generate(net, target, replace(ascent, **{key: v}))["image"] for v in
                      tqdm(values[key], desc=f"sweep {label}", leave=False)]
        cells, titles, runs = [], [], []
        for v, img in zip(values[key], images):
            caption, info = describe(net.module, img, target, names)
            cells.append(deprocess(img, net.mean, net.std)[0])
            titles.append(f"{label} = {v:g}\n{caption}")
            runs.append({key: v, **info})
        save_image_table(cells, out_dir / f"classviz_sweep_{key}_{net.name}.png", titles=titles,
                         ncols=len(cells), cell_size=3.0,
                         suptitle=f"{net.label(quick)}: {names[target]}, varying {label}")
        result["sweeps"][key] = runs
    save_json(result, out_dir / f"classviz_sweep_{net.name}.json")
    print(f"{net.label(quick)}: sweeps over λ, η and iterations for {names[target]} in "
          f"{out_dir}/classviz_sweep_*_{net.name}.png")
    return result


def from_image(net: Network, index: int, ascent: Ascent, data_dir: Path, out_dir: Path, quick: bool = False) -> dict:
    """Class visualization started from ImageNet image ``index``, towards its own class,
    photographed at 0, 1/4, 1/2 and all iterations: ``classviz_from_image_M.png/.json``."""
    X, y, _ = load_imagenet_val_25(data_dir)
    if not 0 <= index < len(X):
        raise UserError(f"--index must be between 0 and {len(X) - 1}, not {index}")
    names = imagenet_categories()
    target = int(y[index])
    start = to_tensor_batch(X[index], net.mean, net.std)
    steps = sorted({0, ascent.iterations // 4, ascent.iterations // 2, ascent.iterations})
    out = generate(net, target, ascent, init_img=start, snapshots=steps)
    cells, titles, runs = [], [], []
    for t in steps:
        caption, info = describe(net.module, out["snapshots"][t], target, names)
        cells.append(deprocess(out["snapshots"][t], net.mean, net.std)[0])
        titles.append(f"iteration {t}\n{caption}")
        runs.append({"iteration": t, **info})
    figure = save_image_table(cells, out_dir / f"classviz_from_image_{net.name}.png", titles=titles,
                              ncols=len(cells), cell_size=3.0,
                              suptitle=f"{net.label(quick)}: image {index} pushed towards its class, {names[target]}")
    result = {**net.record(quick), "index": index, "class": target, "name": names[target],
              "settings": asdict(ascent), "snapshots": runs}
    save_json(result, out_dir / f"classviz_from_image_{net.name}.json")
    print(f"{net.label(quick)}: image {index} ({names[target]}) after {ascent.iterations} iterations in {figure}; "
          f"probability of its class {runs[0]['target_probability']:.2f} -> {runs[-1]['target_probability']:.2f}")
    return result

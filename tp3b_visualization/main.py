"""Practical 3-b: visualizing what an ImageNet network looks at.

Saliency maps, fooling (adversarial) images with a targeted PGD comparison, and class
visualization by gradient ascent, on SqueezeNet 1.1 by default (--model vgg16, resnet18,
or efficientnet_lite0, the ImageNet model that installs offline). When SqueezeNet's weights
are neither in the torch hub cache nor downloadable, the default falls back to
EfficientNet-Lite0 with a warning; a network named with --model never does. Every
subcommand writes PNG figures and a JSON of its numbers (with the network that ran) under
--out-dir.

Run from the repository root, for example:
  python tp3b_visualization/main.py --quick       every experiment, on a tiny budget (smoke run)
  python tp3b_visualization/main.py saliency --model efficientnet_lite0
  python tp3b_visualization/main.py fooling --target stingray
  python tp3b_visualization/main.py classviz --classes tarantula gorilla
"""
import argparse
import copy
import logging
import random
import sys
import time
from pathlib import Path


import numpy as np
import torch
import torch.nn.functional as F
from tqdm.auto import tqdm

from common import cli
from common.errors import UserError
from common.imagenet import deprocess, load_imagenet_val_25, read_rgb, to_tensor_batch
from common.plotting import save_image_table
from common.pretrained import (OFFLINE_MODEL, ExplicitChoice, imagenet_categories, load_model_option,
                               model_label, model_record)
from common.results import markdown_table, save_json
from tp3b_visualization.visualization import (compute_saliency_maps, create_class_visualization,
                                              make_fooling_image)

log = logging.getLogger("tp3b_visualization")

# The course's classes for class visualization (ImageNet indices): tarantula, gorilla,
# hourglass, wine bottle, snail, tabby cat.
CLASSES = ("tarantula", "gorilla", "hourglass", "wine bottle", "snail", "tabby")
SWEEPS = {"l2_reg": (1e-7, 1e-5, 1e-3, 1e-1, 1.0), "lr": (1.0, 5.0, 10.0), "iterations": (100, 200, 400)}
# The default step eta of class visualization: the course's 5 (chosen for SqueezeNet), except
# for the networks whose images it leaves covered in high-frequency noise (sweep shows it).
DEFAULT_LR = 5.0
NETWORK_LR = {OFFLINE_MODEL: 1.0}
# What --precision bf16 changes, for its help.
BF16_EFFECT = ("class visualization only: the frozen network stored in bfloat16, faster on such hardware, at "
               "the cost of less convincing images (the target's probability falls)")
QUICK = {"fool_images": 4, "iterations": 10, "classes": 2, "sweep_values": 2}


# ----------------------------------------------------------------------------- models and images

class Bfloat16Network(torch.nn.Module):
    """A frozen network whose weights are stored in bfloat16, between fp32 inputs and outputs:
    gradients with respect to the image flow through it in bfloat16. Autocast would convert
    the weights again at every call (VGG16: 138 million of them, most of the step's time)."""

    def __init__(self, net: torch.nn.Module):
        super().__init__()
        self.net = net.to(torch.bfloat16)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x.to(torch.bfloat16)).float()


def load_model(args, random_weights: bool = False, precision: str = "fp32") -> tuple[torch.nn.Module, tuple, tuple]:
    """The frozen ImageNet network --model on ``args.device`` and its normalisation
    ``(model, mean, std)``; with ``precision`` bf16, a :class:`Bfloat16Network`.

    When the default network's weights cannot be had, EfficientNet-Lite0 stands in (one
    warning): ``args.model`` then names it and ``args.fallback_from`` the network it
    replaces, so that the next commands of ``all`` load it at once and every output is
    named after it. A network named with --model must be had.
    """
    model, mean, std = load_model_option(args, pretrained=not random_weights)
    # channels_last: the layout oneDNN and cuDNN convolve fastest; results change only by rounding.
    model = model.to(args.device, memory_format=torch.channels_last)
    return (Bfloat16Network(model) if precision == "bf16" else model), mean, std


def class_index(text: str) -> int:
    """An ImageNet class from its index ("76") or its name ("tarantula", "wine bottle")."""
    names = imagenet_categories()
    if text.strip().isdigit():
        index = int(text)
        if not 0 <= index < len(names):
            raise argparse.ArgumentTypeError(f"ImageNet class indices go from 0 to {len(names) - 1}, not {index}")
        return index
    key = text.strip().lower()
    exact = [i for i, n in enumerate(names) if n.lower() == key]
    if exact:
        return exact[0]
    partial = [i for i, n in enumerate(names) if key in n.lower()]
    if len(partial) == 1:
        return partial[0]
    if not partial:
        raise argparse.ArgumentTypeError(f"no ImageNet class is called {text!r}; give a name "
                                         f"such as 'tarantula' or an index from 0 to 999")
    listed = ", ".join(f"{i} {names[i]!r}" for i in partial[:8])
    raise argparse.ArgumentTypeError(f"{text!r} matches several ImageNet classes ({listed}"
                                     f"{', ...' if len(partial) > 8 else ''}): give the full name or the index")


def read_image_files(paths) -> np.ndarray:
    """Image files resized (shorter side 224) and centre-cropped to uint8 (N, 224, 224, 3)."""
    from PIL import Image
    from torchvision.transforms import CenterCrop, Resize

    square = [CenterCrop(224)(Resize(224)(Image.fromarray(read_rgb(path)))) for path in paths]
    return np.stack([np.asarray(im, dtype=np.uint8) for im in square])


def predict(model, x: torch.Tensor, device, batch: int = 25) -> torch.Tensor:
    """Predicted classes of the normalised images ``x`` (N, 3, H, W) -> (N,)."""
    with torch.no_grad():
        return torch.cat([model(x[i:i + batch].to(device)).argmax(1).cpu() for i in range(0, len(x), batch)])


def short(name: str, n: int = 18) -> str:
    return name if len(name) <= n else name[:n - 1] + "…"


def images(args) -> dict:
    """The 25 ImageNet images with their labels and the network's top-1 prediction."""
    X, y, label_map = load_imagenet_val_25(args.data_dir)
    model, mean, std = load_model(args)
    pred = predict(model, to_tensor_batch(X, mean, std), args.device).numpy()
    names = imagenet_categories()
    correct = int((pred == y).sum())
    titles = [f"{label_map.get(int(t), names[t])[:22]}\n{'ok' if p == t else '→ ' + names[p][:20]}"
              for t, p in zip(y, pred)]
    save_image_table(list(X), args.out_dir / f"images_{args.model}.png", titles=titles, ncols=5,
                     suptitle=f"{model_label(args)}: {correct}/{len(y)} correct at top-1")
    result = {**model_record(args), "top1_correct": correct, "images": len(y),
              "predictions": [{"label": int(t), "name": names[t], "predicted": int(p),
                               "predicted_name": names[p]} for t, p in zip(y, pred)]}
    save_json(result, args.out_dir / f"images_{args.model}.json")
    print(f"{model_label(args)}: {correct}/{len(y)} of the ImageNet images correct at top-1; figure "
          f"{args.out_dir / f'images_{args.model}.png'}")
    return result


# ----------------------------------------------------------------------------- saliency

def concentration(maps: torch.Tensor, border: int = 28) -> torch.Tensor:
    """Mean saliency in the central half of each (N, H, W) map over its mean in the outer
    ``border``-pixel frame: > 1 when the map concentrates on the middle of the image."""
    n, h, w = maps.shape
    centre = maps[:, h // 4:h - h // 4, w // 4:w - w // 4].mean(dim=(1, 2))
    frame = torch.ones(h, w, dtype=torch.bool)
    frame[border:h - border, border:w - border] = False
    return centre / maps[:, frame].mean(dim=1).clamp_min(1e-12)


def saliency(args) -> dict:
    """Saliency maps of the 25 ImageNet images (for their true class), or of the image
    files given with --image (for the predicted class)."""
    names = imagenet_categories()
    if args.image:
        X = read_image_files(args.image)
        model, mean, std = load_model(args)
        x = to_tensor_batch(X, mean, std)
        y = predict(model, x, args.device)
        labels = [f"{Path(p).name[:16]}\n→ {short(names[c])}" for p, c in zip(args.image, y.tolist())]
        tag = f"{args.model}_files"
    else:
        X, y_np, label_map = load_imagenet_val_25(args.data_dir)
        model, mean, std = load_model(args)
        x, y = to_tensor_batch(X, mean, std), torch.from_numpy(y_np)
        labels = [short(label_map.get(int(c), names[c]), 22) for c in y.tolist()]
        tag = args.model
    pred = predict(model, x, args.device)
    maps = torch.cat([compute_saliency_maps(x[i:i + 5].to(args.device), y[i:i + 5].to(args.device), model).cpu()
                      for i in tqdm(range(0, len(x), 5), desc="saliency", leave=False)])  # (N, H, W)
    ratio = concentration(maps)
    # Each map scaled by its own 99th percentile, so that a few extreme pixels do not hide the rest.
    shown = (maps / maps.flatten(1).quantile(0.99, dim=1).clamp_min(1e-12).view(-1, 1, 1)).clamp(max=1)
    cells, titles = [], []
    for i in range(0, len(X), 5):  # a row of images over a row of their maps
        cells += list(X[i:i + 5]) + list(shown[i:i + 5].numpy())
        titles += labels[i:i + 5] + [f"centre/border {r:.1f}" for r in ratio[i:i + 5].tolist()]
    figure = save_image_table(cells, args.out_dir / f"saliency_{tag}.png", titles=titles, ncols=5, cmap="hot",
                              suptitle=f"{model_label(args)}: |d score / d image|, max over channels")
    correct = pred == y
    result = {**model_record(args), "images": len(X), "class_explained": "predicted" if args.image else "true",
              "top1_correct": int(correct.sum()),
              "centre_border_ratio": [round(r, 3) for r in ratio.tolist()],
              "median_ratio_correct": float(ratio[correct].median()) if correct.any() else None,
              "median_ratio_wrong": float(ratio[~correct].median()) if (~correct).any() else None}
    save_json(result, args.out_dir / f"saliency_{tag}.json")
    print(f"{model_label(args)}: saliency of {len(X)} images in {figure}; median centre/border ratio "
          f"{_fmt(result['median_ratio_correct'], '{:.2f}')} on the {int(correct.sum())} correctly classified images")
    return result


# ----------------------------------------------------------------------------- fooling

def pgd_targeted(model, x: torch.Tensor, target: int, mean, std, eps: float, alpha: float,
                 max_iter: int) -> tuple[torch.Tensor, int]:
    """Targeted PGD under an L-infinity budget (Madry et al., 2018), for comparison.

    Works on pixels p in [0, 1]: p <- clip(p - alpha * sign(d CE(model(p), target) / dp)),
    projected on ``|p - p0| <= eps`` and on [0, 1], until the prediction is ``target``.
    x: (1, 3, H, W) normalised; returns the normalised adversarial image and the steps taken.
    """
    m = torch.tensor(mean, device=x.device).view(1, 3, 1, 1)
    s = torch.tensor(std, device=x.device).view(1, 3, 1, 1)
    p0 = x * s + m
    p, steps = p0.clone(), 0
    label = torch.tensor([target], device=x.device)
    while True:
        p.requires_grad_(True)
        logits = model((p - m) / s)
        if logits.argmax(1).item() == target or steps == max_iter:
            break
        (g,) = torch.autograd.grad(F.cross_entropy(logits, label), p)
        p = torch.min(torch.max(p.detach() - alpha * g.sign(), p0 - eps), p0 + eps).clamp(0, 1)
        steps += 1
    return ((p - m) / s).detach(), steps


def perturbation(x_adv: torch.Tensor, x: torch.Tensor, std) -> tuple[float, float]:
    """L2 and L-infinity size of a perturbation, in pixels scaled to [0, 1]."""
    d = (x_adv - x) * torch.tensor(std, device=x.device).view(1, 3, 1, 1)
    return float(d.norm()), float(d.abs().max())


def attack_summary(rows: list[dict]) -> dict:
    ok = [r for r in rows if r["fooled"]]
    return {"images": len(rows), "fooled": len(ok), "success_rate": len(ok) / len(rows) if rows else float("nan"),
            "median_iterations": float(np.median([r["iterations"] for r in ok])) if ok else None,
            "max_iterations": max((r["iterations"] for r in ok), default=None),
            "mean_l2": float(np.mean([r["l2"] for r in ok])) if ok else None,
            "mean_linf": float(np.mean([r["linf"] for r in ok])) if ok else None}


def fooling(args) -> dict:
    """Fool the network into predicting --target on every image; figures and the comparison
    with targeted PGD."""
    X, y, label_map = load_imagenet_val_25(args.data_dir)
    model, mean, std = load_model(args)
    names = imagenet_categories()
    n = min(len(X), QUICK["fool_images"]) if args.quick else len(X)
    x = to_tensor_batch(X[:n], mean, std).to(args.device)
    pred = predict(model, x, args.device)
    eps, alpha = args.pgd_eps / 255, args.pgd_step / 255
    rows = {"gradient ascent": [], "targeted PGD": []}
    fooled_images = []
    for i in tqdm(range(n), desc=f"fooling into {names[args.target]}"):
        xi = x[i:i + 1]
        for method in rows:
            if method == "gradient ascent":
                adv, steps = make_fooling_image(xi, args.target, model, args.step, args.max_iter)
                fooled_images.append(adv)
            else:
                adv, steps = pgd_targeted(model, xi, args.target, mean, std, eps, alpha, args.max_iter)
            l2, linf = perturbation(adv, xi, std)
            now = int(predict(model, adv, args.device)[0])
            rows[method].append({"image": i, "label": int(y[i]), "predicted_before": int(pred[i]),
                                 "predicted_after": now, "fooled": now == args.target,
                                 "iterations": steps, "l2": l2, "linf": linf})
    summaries = {m: attack_summary(r) for m, r in rows.items()}
    figure = fooling_figure(args, X[:n], x, fooled_images, rows["gradient ascent"], mean, std, names)
    result = {**model_record(args), "target": args.target, "target_name": names[args.target],
              "step": args.step, "max_iter": args.max_iter, "pgd_eps": args.pgd_eps, "pgd_step": args.pgd_step,
              "units": "perturbation norms in pixels scaled to [0, 1]", "summary": summaries, "images": rows}
    save_json(result, args.out_dir / f"fooling_{args.model}.json")
    table = markdown_table(
        ["method", "fooled", "median iterations", "max iterations", "mean L2", "mean L∞ (×255)"],
        [[m, f"{s['fooled']}/{s['images']}", _fmt(s["median_iterations"], "{:.0f}"), _fmt(s["max_iterations"], "{}"),
          _fmt(s["mean_l2"], "{:.3f}"), _fmt(s["mean_linf"] and s["mean_linf"] * 255, "{:.2f}")]
         for m, s in summaries.items()], left=1)
    header = (f"{model_label(args, reduced=True)}, {n} images, target {args.target} ({names[args.target]}), "
              f"budget {args.max_iter} iterations; "
              f"gradient ascent: L2 step {args.step} (normalised image); PGD: eps {args.pgd_eps}/255, "
              f"step {args.pgd_step}/255\n\n")
    (args.out_dir / f"fooling_{args.model}.md").write_text(header + table)
    print(header + table, end="")
    print(f"figure {figure}")
    return result


def _fmt(value, fmt: str) -> str:
    return "-" if value is None else fmt.format(value)


def fooling_figure(args, X, x, fooled, rows, mean, std, names) -> Path:
    """Original, fooled image, difference and difference x10 for the --examples images."""
    cells, titles = [], []
    for i in [i for i in args.examples if i < len(X)] or [0]:
        r = rows[i]
        d = ((fooled[i] - x[i:i + 1])
             * torch.tensor(std, device=x.device).view(1, 3, 1, 1))[0].permute(1, 2, 0).cpu().numpy()
        cells += [X[i], deprocess(fooled[i], mean, std)[0], np.clip(0.5 + d, 0, 1), np.clip(0.5 + 10 * d, 0, 1)]
        titles += [f"original\n{short(names[r['predicted_before']])}",
                   f"fooled in {r['iterations']} it.\n{short(names[r['predicted_after']])}",
                   f"difference\nL∞ {r['linf'] * 255:.1f}/255", "difference ×10"]
    return save_image_table(cells, args.out_dir / f"fooling_{args.model}.png", titles=titles, ncols=4,
                            suptitle=f"{model_label(args, reduced=True)}: fooling images, target "
                                     f"{names[args.target]}")


# ----------------------------------------------------------------------------- class visualization

def generate(args, model, mean, std, target: int, *, l2_reg=None, lr=None, iterations=None,
             init_img=None, snapshots=()) -> dict:
    """create_class_visualization with the command line's settings (keywords override them)."""
    return create_class_visualization(
        target, model, mean, std, l2_reg=args.l2_reg if l2_reg is None else l2_reg,
        learning_rate=args.lr if lr is None else lr,
        num_iterations=args.iterations if iterations is None else iterations,
        blur_every=args.blur_every, blur_sigma=args.blur_sigma, max_jitter=args.max_jitter,
        init_img=init_img, seed=args.seed, snapshots=snapshots)


def resolve_lr(args) -> None:
    """--lr left out: the default step for the network that runs (:data:`NETWORK_LR`); call
    it once the network is loaded, since the default network may have been replaced."""
    if args.lr is None:
        args.lr = NETWORK_LR.get(args.model, DEFAULT_LR)


def quick_budget(args) -> None:
    """--quick: a few iterations of class visualization, enough to run every step."""
    if args.quick:
        args.iterations = min(args.iterations, QUICK["iterations"])


def describe(model, img: torch.Tensor, target: int, names) -> tuple[str, dict]:
    with torch.no_grad():
        probs = model(img).softmax(1)[0]
    top = int(probs.argmax())
    info = {"target_probability": float(probs[target]), "top1": top, "top1_name": names[top]}
    return f"p={info['target_probability']:.2f}" + ("" if top == target else f", top {short(names[top], 12)}"), info


def classviz(args) -> dict:
    """Class visualizations of the --classes, from random noise."""
    quick_budget(args)
    model, mean, std = load_model(args, precision=args.precision)
    resolve_lr(args)
    names = imagenet_categories()
    classes = args.classes[:QUICK["classes"]] if args.quick else args.classes
    cells, titles, runs = [], [], []
    for c in tqdm(classes, desc="class visualization"):
        out = generate(args, model, mean, std, c)
        caption, info = describe(model, out["image"], c, names)
        cells.append(deprocess(out["image"], mean, std)[0])
        titles.append(f"{names[c]}\n{caption}")
        runs.append({"class": c, "name": names[c], "final_objective": out["objective"][-1], **info})
    figure = save_image_table(cells, args.out_dir / f"classviz_{args.model}.png", titles=titles,
                              ncols=min(len(cells), 3), cell_size=3.2,
                              suptitle=f"{model_label(args, reduced=True)}: λ={args.l2_reg:g}, "
                                       f"η={args.lr:g}, {args.iterations} it.")
    result = {**model_record(args), "settings": _settings(args), "classes": runs}
    save_json(result, args.out_dir / f"classviz_{args.model}.json")
    print(f"{model_label(args, reduced=True)}: {len(runs)} class visualizations in {figure}; target probabilities "
          + ", ".join(f"{r['name']} {r['target_probability']:.2f}" for r in runs))
    return result


def _settings(args) -> dict:
    return {"l2_reg": args.l2_reg, "lr": args.lr, "iterations": args.iterations, "blur_every": args.blur_every,
            "blur_sigma": args.blur_sigma, "max_jitter": args.max_jitter, "seed": args.seed}


def classviz_sweep(args) -> dict:
    """One class (the first of --classes) under the course's sweeps over lambda, eta and the
    number of iterations, one grid each."""
    quick_budget(args)
    model, mean, std = load_model(args, precision=args.precision)
    resolve_lr(args)
    names = imagenet_categories()
    target = args.classes[0]
    values = {k: (v[:QUICK["sweep_values"]] if args.quick else v) for k, v in SWEEPS.items()}
    if args.quick:
        values["iterations"] = tuple(args.iterations * k for k in (1, 2))
    result = {**model_record(args), "class": target, "name": names[target], "settings": _settings(args), "sweeps": {}}
    for key, label in (("l2_reg", "λ"), ("lr", "η"), ("iterations", "iterations")):
        if key == "iterations":  # one run, photographed on the way: the same trajectory
            out = generate(args, model, mean, std, target, iterations=max(values[key]), snapshots=values[key])
            images = [out["snapshots"][v] for v in values[key]]
        else:
            images = [generate(args, model, mean, std, target, **{key: v})["image"] for v in
                      tqdm(values[key], desc=f"sweep {label}", leave=False)]
        cells, titles, runs = [], [], []
        for v, img in zip(values[key], images):
            caption, info = describe(model, img, target, names)
            cells.append(deprocess(img, mean, std)[0])
            titles.append(f"{label} = {v:g}\n{caption}")
            runs.append({key: v, **info})
        save_image_table(cells, args.out_dir / f"classviz_sweep_{key}_{args.model}.png", titles=titles,
                         ncols=len(cells), cell_size=3.0,
                         suptitle=f"{model_label(args, reduced=True)}: {names[target]}, varying {label}")
        result["sweeps"][key] = runs
    save_json(result, args.out_dir / f"classviz_sweep_{args.model}.json")
    print(f"{model_label(args, reduced=True)}: sweeps over λ, η and iterations for {names[target]} in "
          f"{args.out_dir}/classviz_sweep_*_{args.model}.png")
    return result


def from_image(args) -> dict:
    """Class visualization started from ImageNet image --index, towards its own class."""
    quick_budget(args)
    X, y, _ = load_imagenet_val_25(args.data_dir)
    if not 0 <= args.index < len(X):
        raise UserError(f"--index must be between 0 and {len(X) - 1}, not {args.index}")
    model, mean, std = load_model(args, precision=args.precision)
    resolve_lr(args)
    names = imagenet_categories()
    target = int(y[args.index])
    start = to_tensor_batch(X[args.index], mean, std)
    steps = sorted({0, args.iterations // 4, args.iterations // 2, args.iterations})
    out = generate(args, model, mean, std, target, init_img=start, snapshots=steps)
    cells, titles, runs = [], [], []
    for t in steps:
        caption, info = describe(model, out["snapshots"][t], target, names)
        cells.append(deprocess(out["snapshots"][t], mean, std)[0])
        titles.append(f"iteration {t}\n{caption}")
        runs.append({"iteration": t, **info})
    figure = save_image_table(cells, args.out_dir / f"classviz_from_image_{args.model}.png", titles=titles,
                              ncols=len(cells), cell_size=3.0,
                              suptitle=f"{model_label(args, reduced=True)}: image {args.index} pushed towards "
                                       f"its class, {names[target]}")
    result = {**model_record(args), "index": args.index, "class": target, "name": names[target],
              "settings": _settings(args), "snapshots": runs}
    save_json(result, args.out_dir / f"classviz_from_image_{args.model}.json")
    print(f"{model_label(args, reduced=True)}: image {args.index} ({names[target]}) "
          f"after {args.iterations} iterations in {figure}; "
          f"probability of its class {runs[0]['target_probability']:.2f} -> {runs[-1]['target_probability']:.2f}")
    return result


# ----------------------------------------------------------------------------- speed

def plain_class_visualization(target_y, model, mean, std, l2_reg, learning_rate, num_iterations,
                              blur_every, blur_sigma, max_jitter, seed):
    """The loop as usually written in the course's notebook, for timing: img.data updates,
    backward() into img.grad, a per-channel clamp loop and a SciPy blur on NumPy arrays."""
    from scipy.ndimage import gaussian_filter1d

    random.seed(seed)
    device = next(model.parameters()).device
    img = torch.randn(1, 3, 224, 224, device=device).requires_grad_()
    for t in range(num_iterations):
        ox, oy = random.randint(-max_jitter, max_jitter), random.randint(-max_jitter, max_jitter)
        img.data.copy_(torch.roll(img.data, shifts=(oy, ox), dims=(2, 3)))
        score = model(img)[0, target_y] - l2_reg * img.norm() ** 2
        score.backward()
        img.data += learning_rate * img.grad.data
        img.grad.data.zero_()
        img.data.copy_(torch.roll(img.data, shifts=(-oy, -ox), dims=(2, 3)))
        for c in range(3):
            lo, hi = float(-mean[c] / std[c]), float((1.0 - mean[c]) / std[c])
            img.data[:, c].clamp_(min=lo, max=hi)
        if t % blur_every == 0:
            a = img.data.cpu().numpy()
            a = gaussian_filter1d(gaussian_filter1d(a, blur_sigma, axis=2), blur_sigma, axis=3)
            img.data.copy_(torch.from_numpy(a))
    return img.data


def bench(args) -> dict:
    """Time --iterations of class visualization: the plain loop (default layout, fp32) against
    this project's loop in fp32 and, where the hardware computes it natively, in bf16."""
    from common.device import native_bf16

    quick_budget(args)
    model, mean, std = load_model(args, random_weights=args.random_weights)
    resolve_lr(args)
    plain_model = copy.deepcopy(model).to(memory_format=torch.contiguous_format)  # the default layout
    runs = {"plain loop": plain_model, "project, fp32": model}
    if native_bf16(args.device):
        runs["project, bf16"] = Bfloat16Network(copy.deepcopy(model))
    target = args.classes[0]
    timings = {}
    for name, net in runs.items():
        generate(args, net, mean, std, target, iterations=3)  # warm-up: allocator, kernels
        start = time.perf_counter()
        if name == "plain loop":
            plain_class_visualization(target, net, mean, std, args.l2_reg, args.lr, args.iterations,
                                      args.blur_every, args.blur_sigma, args.max_jitter, args.seed)
        else:
            generate(args, net, mean, std, target)
        if args.device.type == "cuda":
            torch.cuda.synchronize()
        timings[name] = time.perf_counter() - start
    ratios = {k: v / timings["plain loop"] for k, v in timings.items() if k != "plain loop"}
    result = {**model_record(args), "weights": "random" if args.random_weights else "pretrained",
              "device": str(args.device), "threads": torch.get_num_threads(), "iterations": args.iterations,
              "seconds": timings, "time vs plain loop": ratios}
    save_json(result, args.out_dir / f"bench_{args.model}.json")
    print(f"{args.model} ({result['weights']} weights), {args.iterations} iterations on {args.device} "
          f"({result['threads']} threads): " + ", ".join(f"{k} {v:.1f} s" for k, v in timings.items())
          + " (time vs plain loop: " + ", ".join(f"{k} {v:.2f}" for k, v in ratios.items()) + ")")
    return result


def run_all(args) -> dict:
    results = {}
    for name, func in (("images", images), ("saliency", saliency), ("fooling", fooling),
                       ("classviz", classviz), ("sweep", classviz_sweep), ("from-image", from_image)):
        log.info("== %s", name)
        results[name] = func(args)
    return results


# ----------------------------------------------------------------------------- command line

def build_parser():
    parser, sub = cli.make_parser("tp3b_visualization", __doc__, default_command="all")

    def model_option(p):
        p.add_argument("--model", default="squeezenet1_1", action=ExplicitChoice,
                       help=f"network: a torchvision classification model (squeezenet1_1, vgg16, resnet18, ...; "
                            f"their ImageNet weights come through the torch hub cache) or {OFFLINE_MODEL} "
                            f"(installs offline). Left at its default, squeezenet1_1 falls back to {OFFLINE_MODEL} "
                            f"with a warning when its weights are neither cached nor downloadable; a network "
                            f"named here must be had, else the command stops with the fix")

    def command(name, func, help_text, *groups):
        return cli.add_command(sub, name, func, help_text, options=(model_option, *groups))

    def fool_options(p):
        g = p.add_argument_group("fooling")
        g.add_argument("--target", type=class_index, default=6, help="class to fool into: index or name (6: stingray)")
        g.add_argument("--step", type=cli.positive_float, default=1.0,
                       help="L2 length of each gradient-ascent step (normalised image)")
        g.add_argument("--max-iter", type=cli.positive_int, default=100, help="iteration budget of both attacks")
        g.add_argument("--pgd-eps", type=cli.positive_float, default=2.0, help="PGD's L-infinity budget, in 1/255")
        g.add_argument("--pgd-step", type=cli.positive_float, default=0.5, help="PGD's step, in 1/255")
        g.add_argument("--examples", type=int, nargs="+", default=[0, 1, 2], help="images shown in the figure")

    def viz_options(p):
        g = p.add_argument_group("class visualization")
        g.add_argument("--classes", type=class_index, nargs="+", default=[class_index(c) for c in CLASSES],
                       help="target classes, indices or names (default: " + ", ".join(CLASSES) + ")")
        g.add_argument("--l2-reg", type=cli.non_negative_float, default=1e-3, help="weight lambda of the L2 penalty")
        g.add_argument("--lr", type=cli.positive_float, default=None,
                       help=f"gradient-ascent step eta (default: {DEFAULT_LR:g}, the course's; "
                            + ", ".join(f"{v:g} for {k}" for k, v in NETWORK_LR.items())
                            + ", whose images the course's step leaves covered in high-frequency noise)")
        g.add_argument("--iterations", type=cli.positive_int, default=200, help="gradient-ascent steps")
        g.add_argument("--blur-every", type=cli.positive_int, default=10, help="blur every this many steps")
        g.add_argument("--blur-sigma", type=cli.non_negative_float, default=0.5, help="std of the Gaussian blur")
        g.add_argument("--max-jitter", type=int, default=16, help="largest random shift, in pixels")

    def precision(p):  # not on bench, which times fp32 and bf16 side by side
        cli.precision_option(p, BF16_EFFECT)

    def image_files(p):
        p.add_argument("--image", type=Path, action="append", metavar="FILE",
                       help="explain this image file instead of the 25 ImageNet images (repeatable); "
                            "resized and centre-cropped to 224")

    def index_option(p):
        p.add_argument("--index", type=int, default=0, help="which of the 25 ImageNet images to start from")

    def bench_options(p):
        p.add_argument("--random-weights", action="store_true",
                       help="time the network with random weights (the time does not depend on them)")

    command("images", images, "show the 25 ImageNet validation images with the network's top-1 predictions")
    command("saliency", saliency, "saliency maps of the 25 ImageNet images (or of --image files)", image_files)
    command("fooling", fooling, "fooling images for a target class on every image, against targeted PGD",
            fool_options)
    command("classviz", classviz, "class visualizations from random noise", viz_options, precision)
    command("sweep", classviz_sweep, "class visualization sweeps over lambda, eta and iterations", viz_options,
            precision)
    command("from-image", from_image, "class visualization started from an ImageNet image, towards its class",
            viz_options, precision, index_option)
    command("bench", bench, "time class visualization against a plain loop of the same update",
            viz_options, bench_options)

    command("all", run_all, "images, saliency, fooling, class visualizations, sweeps and the run from an image",
            fool_options, viz_options, precision, image_files, index_option)
    return parser


def main(argv=None) -> int:
    return cli.run(build_parser(), argv)


if __name__ == "__main__":
    sys.exit(main())

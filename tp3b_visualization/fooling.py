"""Fooling images: the student's gradient ascent (``make_fooling_image``) on every image,
against targeted PGD under an L-infinity budget, with the figure, the JSON and the table."""
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from tqdm.auto import tqdm

from common.imagenet import deprocess, load_imagenet_val_25, to_tensor_batch
from common.plotting import save_image_table
from common.pretrained import imagenet_categories
from common.results import markdown_table, save_json
from tp3b_visualization.labels import fmt, short
from tp3b_visualization.network import Network, predict
from tp3b_visualization.visualization import make_fooling_image


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
    """Success rate, iterations and mean perturbation sizes of one attack's ``rows``."""
    ok = [r for r in rows if r["fooled"]]
    return {"images": len(rows), "fooled": len(ok), "success_rate": len(ok) / len(rows) if rows else float("nan"),
            "median_iterations": float(np.median([r["iterations"] for r in ok])) if ok else None,
            "max_iterations": max((r["iterations"] for r in ok), default=None),
            "mean_l2": float(np.mean([r["l2"] for r in ok])) if ok else None,
            "mean_linf": float(np.mean([r["linf"] for r in ok])) if ok else None}


def attack_images(net: Network, x: torch.Tensor, y, target: int, device, *, step: float, max_iter: int,
                  pgd_eps: float, pgd_step: float) -> tuple[dict, list]:
    """Both attacks on each image of ``x`` (N, 3, H, W) normalised, on ``device``:
    ``({method: a row per image}, the gradient-ascent images)``; ``pgd_eps``, ``pgd_step`` in 1/255."""
    names = imagenet_categories()
    pred = predict(net.module, x, device)
    eps, alpha = pgd_eps / 255, pgd_step / 255
    rows = {"gradient ascent": [], "targeted PGD": []}
    fooled_images = []
    for i in tqdm(range(len(x)), desc=f"fooling into {names[target]}"):
        xi = x[i:i + 1]
        for method in rows:
            if method == "gradient ascent":
                adv, steps = make_fooling_image(xi, target, net.module, step, max_iter)
                fooled_images.append(adv)
            else:
                adv, steps = pgd_targeted(net.module, xi, target, net.mean, net.std, eps, alpha, max_iter)
            l2, linf = perturbation(adv, xi, net.std)
            now = int(predict(net.module, adv, device)[0])
            rows[method].append({"image": i, "label": int(y[i]), "predicted_before": int(pred[i]),
                                 "predicted_after": now, "fooled": now == target,
                                 "iterations": steps, "l2": l2, "linf": linf})
    return rows, fooled_images


def fooling(net: Network, data_dir: Path, out_dir: Path, device, *, target: int, step: float, max_iter: int,
            pgd_eps: float, pgd_step: float, examples, images: int | None = None, quick: bool = False) -> dict:
    """Fool the network into predicting ``target`` on the first ``images`` of the 25 (None:
    all): ``fooling_M.png`` (the ``examples``), ``fooling_M.json`` and the table ``fooling_M.md``."""
    X, y, _ = load_imagenet_val_25(data_dir)
    names = imagenet_categories()
    X = X[:images]
    n = len(X)
    x = to_tensor_batch(X, net.mean, net.std).to(device)
    rows, fooled_images = attack_images(net, x, y, target, device, step=step, max_iter=max_iter,
                                        pgd_eps=pgd_eps, pgd_step=pgd_step)
    summaries = {m: attack_summary(r) for m, r in rows.items()}
    figure = fooling_figure(net, X, x, fooled_images, rows["gradient ascent"], examples, target,
                            out_dir / f"fooling_{net.name}.png", quick)
    result = {**net.record(quick), "target": target, "target_name": names[target],
              "step": step, "max_iter": max_iter, "pgd_eps": pgd_eps, "pgd_step": pgd_step,
              "units": "perturbation norms in pixels scaled to [0, 1]", "summary": summaries, "images": rows}
    save_json(result, out_dir / f"fooling_{net.name}.json")
    table = markdown_table(
        ["method", "fooled", "median iterations", "max iterations", "mean L2", "mean L∞ (×255)"],
        [[m, f"{s['fooled']}/{s['images']}", fmt(s["median_iterations"], "{:.0f}"), fmt(s["max_iterations"], "{}"),
          fmt(s["mean_l2"], "{:.3f}"), fmt(s["mean_linf"] and s["mean_linf"] * 255, "{:.2f}")]
         for m, s in summaries.items()], left=1)
    header = (f"{net.label(quick)}, {n} images, target {target} ({names[target]}), "
              f"budget {max_iter} iterations; "
              f"gradient ascent: L2 step {step} (normalised image); PGD: eps {pgd_eps}/255, "
              f"step {pgd_step}/255\n\n")
    (out_dir / f"fooling_{net.name}.md").write_text(header + table)
    print(header + table, end="")
    print(f"figure {figure}")
    return result


def fooling_figure(net: Network, X, x, fooled, rows, examples, target: int, path: Path, quick: bool) -> Path:
    """Original, fooled image, difference and difference x10 for the ``examples`` images."""
    names = imagenet_categories()
    cells, titles = [], []
    for i in [i for i in examples if i < len(X)] or [0]:
        r = rows[i]
        d = ((fooled[i] - x[i:i + 1])
             * torch.tensor(net.std, device=x.device).view(1, 3, 1, 1))[0].permute(1, 2, 0).cpu().numpy()
        cells += [X[i], deprocess(fooled[i], net.mean, net.std)[0], np.clip(0.5 + d, 0, 1),
                  np.clip(0.5 + 10 * d, 0, 1)]
        titles += [f"original\n{short(names[r['predicted_before']])}",
                   f"fooled in {r['iterations']} it.\n{short(names[r['predicted_after']])}",
                   f"difference\nL∞ {r['linf'] * 255:.1f}/255", "difference ×10"]
    return save_image_table(cells, path, titles=titles, ncols=4,
                            suptitle=f"{net.label(quick)}: fooling images, target {names[target]}")


"""What the network predicts on the 25 ImageNet images, and where it looks: saliency maps
(|d score / d image|, the student's ``compute_saliency_maps``) with their figures and JSON."""
from pathlib import Path

import numpy as np
import torch
from tqdm.auto import tqdm

from common.imagenet import load_imagenet_val_25, read_rgb, to_tensor_batch
from common.plotting import save_image_table
from common.pretrained import imagenet_categories
from common.results import save_json
from tp3b_visualization.labels import fmt, short
from tp3b_visualization.network import Network, predict
from tp3b_visualization.visualization import compute_saliency_maps


def read_image_files(paths) -> np.ndarray:
    """Image files resized (shorter side 224) and centre-cropped to uint8 (N, 224, 224, 3)."""
    from PIL import Image
    from torchvision.transforms import CenterCrop, Resize

    square = [CenterCrop(224)(Resize(224)(Image.fromarray(read_rgb(path)))) for path in paths]
    return np.stack([np.asarray(im, dtype=np.uint8) for im in square])


def images(net: Network, data_dir: Path, out_dir: Path, device, quick: bool = False) -> dict:
    """The 25 ImageNet images with their labels and the network's top-1 prediction:
    ``images_M.png`` and ``images_M.json``."""
    X, y, label_map = load_imagenet_val_25(data_dir)
    pred = predict(net.module, to_tensor_batch(X, net.mean, net.std), device).numpy()
    names = imagenet_categories()
    correct = int((pred == y).sum())
    titles = [f"{label_map.get(int(t), names[t])[:22]}\n{'ok' if p == t else '→ ' + names[p][:20]}"
              for t, p in zip(y, pred)]
    figure = out_dir / f"images_{net.name}.png"
    save_image_table(list(X), figure, titles=titles, ncols=5,
                     suptitle=f"{net.label()}: {correct}/{len(y)} correct at top-1")
    result = {**net.record(quick), "top1_correct": correct, "images": len(y),
              "predictions": [{"label": int(t), "name": names[t], "predicted": int(p),
                               "predicted_name": names[p]} for t, p in zip(y, pred)]}
    save_json(result, out_dir / f"images_{net.name}.json")
    print(f"{net.label()}: {correct}/{len(y)} of the ImageNet images correct at top-1; figure {figure}")
    return result


def concentration(maps: torch.Tensor, border: int = 28) -> torch.Tensor:
    """Mean saliency in the central half of each (N, H, W) map over its mean in the outer
    ``border``-pixel frame: > 1 when the map concentrates on the middle of the image."""
    n, h, w = maps.shape
    centre = maps[:, h // 4:h - h // 4, w // 4:w - w // 4].mean(dim=(1, 2))
    frame = torch.ones(h, w, dtype=torch.bool)
    frame[border:h - border, border:w - border] = False
    return centre / maps[:, frame].mean(dim=1).clamp_min(1e-12)


def saliency(net: Network, data_dir: Path, out_dir: Path, device, image_files=None, quick: bool = False) -> dict:
    """Saliency maps of the 25 ImageNet images (for their true class), or of ``image_files``
    (for the predicted class): ``saliency_M.png/.json`` (``saliency_M_files.*`` for files)."""
    names = imagenet_categories()
    if image_files:
        X = read_image_files(image_files)
        x = to_tensor_batch(X, net.mean, net.std)
        y = predict(net.module, x, device)
        labels = [f"{Path(p).name[:16]}\n→ {short(names[c])}" for p, c in zip(image_files, y.tolist())]
        tag = f"{net.name}_files"
    else:
        X, y_np, label_map = load_imagenet_val_25(data_dir)
        x, y = to_tensor_batch(X, net.mean, net.std), torch.from_numpy(y_np)
        labels = [short(label_map.get(int(c), names[c]), 22) for c in y.tolist()]
        tag = net.name
    pred = predict(net.module, x, device)
    maps = torch.cat([compute_saliency_maps(x[i:i + 5].to(device), y[i:i + 5].to(device), net.module).cpu()
                      for i in tqdm(range(0, len(x), 5), desc="saliency", leave=False)])  # (N, H, W)
    ratio = concentration(maps)
    # Each map scaled by its own 99th percentile, so that a few extreme pixels do not hide the rest.
    shown = (maps / maps.flatten(1).quantile(0.99, dim=1).clamp_min(1e-12).view(-1, 1, 1)).clamp(max=1)
    cells, titles = [], []
    for i in range(0, len(X), 5):  # a row of images over a row of their maps
        cells += list(X[i:i + 5]) + list(shown[i:i + 5].numpy())
        titles += labels[i:i + 5] + [f"centre/border {r:.1f}" for r in ratio[i:i + 5].tolist()]
    figure = save_image_table(cells, out_dir / f"saliency_{tag}.png", titles=titles, ncols=5, cmap="hot",
                              suptitle=f"{net.label()}: |d score / d image|, max over channels")
    correct = pred == y
    result = {**net.record(quick), "images": len(X), "class_explained": "predicted" if image_files else "true",
              "top1_correct": int(correct.sum()),
              "centre_border_ratio": [round(r, 3) for r in ratio.tolist()],
              "median_ratio_correct": float(ratio[correct].median()) if correct.any() else None,
              "median_ratio_wrong": float(ratio[~correct].median()) if (~correct).any() else None}
    save_json(result, out_dir / f"saliency_{tag}.json")
    print(f"{net.label()}: saliency of {len(X)} images in {figure}; median centre/border ratio "
          f"{fmt(result['median_ratio_correct'], '{:.2f}')} on the {int(correct.sum())} correctly classified images")
    return result

"""Practical 3-b: visualizing what an ImageNet network looks at.

Run from the repository root:  python tp3b_visualization/main.py images --model efficientnet_lite0
"""
import logging
import sys
from pathlib import Path

if __package__ in (None, ""):  # run as a script: make the repository root importable
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import torch  # noqa: E402

from common import cli  # noqa: E402
from common.imagenet import load_imagenet_val_25, to_tensor_batch  # noqa: E402
from common.plotting import save_image_table  # noqa: E402
from common.pretrained import (EFFICIENTNET_LITE0_MEAN, EFFICIENTNET_LITE0_STD, IMAGENET_MEAN,  # noqa: E402
                               IMAGENET_STD, imagenet_categories, load_efficientnet_lite0,
                               load_torchvision_model)
from common.results import save_json  # noqa: E402

log = logging.getLogger("tp3b_visualization")

OFFLINE_MODEL = "efficientnet_lite0"


def load_model(name: str, device) -> tuple[torch.nn.Module, tuple, tuple]:
    """A frozen ImageNet network and its normalisation ``(model, mean, std)``."""
    if name == OFFLINE_MODEL:
        model, mean, std = load_efficientnet_lite0(), EFFICIENTNET_LITE0_MEAN, EFFICIENTNET_LITE0_STD
    else:
        model, mean, std = load_torchvision_model(name), IMAGENET_MEAN, IMAGENET_STD
    for p in model.parameters():
        p.requires_grad_(False)  # we differentiate with respect to images, never weights
    return model.eval().to(device), mean, std


def images(args) -> dict:
    """The 25 ImageNet images with their labels and the network's top-1 prediction."""
    X, y, label_map = load_imagenet_val_25(args.data_dir)
    model, mean, std = load_model(args.model, args.device)
    with torch.inference_mode():
        logits = model(to_tensor_batch(X, mean, std).to(args.device)).cpu()
    pred = logits.argmax(1).numpy()
    names = imagenet_categories()
    correct = int((pred == y).sum())
    titles = [f"{label_map.get(int(t), names[t])[:22]}\n{'ok' if p == t else '→ ' + names[p][:20]}"
              for t, p in zip(y, pred)]
    save_image_table(list(X), args.out_dir / f"images_{args.model}.png", titles=titles, ncols=5,
                     suptitle=f"{args.model}: {correct}/{len(y)} correct at top-1")
    result = {"model": args.model, "top1_correct": correct, "images": len(y),
              "predictions": [{"label": int(t), "name": names[t], "predicted": int(p),
                               "predicted_name": names[p]} for t, p in zip(y, pred)]}
    save_json(result, args.out_dir / f"images_{args.model}.json")
    print(f"{args.model}: {correct}/{len(y)} of the ImageNet images correct at top-1; figure "
          f"{args.out_dir / f'images_{args.model}.png'}")
    return result


def build_parser():
    parser, sub = cli.make_parser("tp3b_visualization", __doc__)
    p = cli.add_command(sub, "images", images, "show the 25 ImageNet validation images with the "
                        "network's top-1 predictions")
    p.add_argument("--model", default="squeezenet1_1",
                   help=f"torchvision model name, or {OFFLINE_MODEL} (installs offline)")
    return parser


def main(argv=None) -> int:
    return cli.run(build_parser(), argv)


if __name__ == "__main__":
    sys.exit(main())

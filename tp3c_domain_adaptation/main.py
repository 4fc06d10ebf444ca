"""Practical 3-c: domain adaptation from MNIST (source) to MNIST-M (target) with DANN.

Run from the repository root:  python tp3c_domain_adaptation/main.py data
"""
import logging
import sys
from pathlib import Path

if __package__ in (None, ""):  # run as a script: make the repository root importable
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import torch  # noqa: E402

from common import cli  # noqa: E402
from common.datasets import channel_stats, load_mnist, load_mnist_m  # noqa: E402
from common.plotting import grid_array, save_image_table  # noqa: E402
from common.results import save_json  # noqa: E402

log = logging.getLogger("tp3c_domain_adaptation")


def load_domains(args, split: str):
    """Source (MNIST, 3 channels) and target (MNIST-M) images of ``split``, in [0, 1]."""
    limit = 1000 if args.quick else None
    source = load_mnist(args.data_dir, split, channels=3, limit=limit)
    target = load_mnist_m(args.data_dir, split, source=args.mnist_m, seed=args.mnist_m_seed, limit=limit)
    return source, target


def data(args) -> dict:
    """Sizes, per-channel statistics and a sample grid of both domains."""
    source, target = load_domains(args, "train")
    test_source, test_target = load_domains(args, "test")
    result = {}
    for name, train_set, test_set in (("MNIST", source, test_source), ("MNIST-M", target, test_target)):
        mean, std = channel_stats(train_set.images)
        result[name] = {"source": train_set.source, "train": len(train_set), "test": len(test_set),
                        "train_mean": mean, "train_std": std}
        print(f"{name:8s} ({train_set.source}): {len(train_set):,} train / {len(test_set):,} test, "
              f"channel mean {[round(m, 3) for m in mean.tolist()]}, std {[round(s, 3) for s in std.tolist()]}")
    pick = torch.arange(32)
    save_image_table([grid_array(source.images[pick], nrow=8, value_range=(0, 1)),
                      grid_array(target.images[pick], nrow=8, value_range=(0, 1))],
                     args.out_dir / "domains.png", titles=["source: MNIST", "target: MNIST-M"],
                     ncols=2, cell_size=4)
    save_json(result, args.out_dir / "domains.json")
    log.info("wrote %s and domains.json", args.out_dir / "domains.png")
    return result


def build_parser():
    parser, sub = cli.make_parser("tp3c_domain_adaptation", __doc__)
    p = cli.add_command(sub, "data", data, "look at both domains: sizes, channel statistics, samples")
    p.add_argument("--mnist-m", choices=("auto", "bsds", "official"), default="auto",
                   help="MNIST-M: the official release when present (auto), or built from BSDS500")
    p.add_argument("--mnist-m-seed", type=int, default=0, help="seed of the MNIST-M construction")
    return parser


def main(argv=None) -> int:
    return cli.run(build_parser(), argv)


if __name__ == "__main__":
    sys.exit(main())

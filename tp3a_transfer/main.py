"""Practical 3-a: transfer learning, VGG16 features and linear SVMs on 15 Scene.

Run from the repository root:  python tp3a_transfer/main.py params
"""
import logging
import sys
from pathlib import Path

if __package__ in (None, ""):  # run as a script: make the repository root importable
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from common import cli  # noqa: E402
from common.pretrained import load_torchvision_model  # noqa: E402
from common.results import save_json  # noqa: E402
from tp3a_transfer.parameters import count_linear_parameters, count_parameters, parameter_table  # noqa: E402

log = logging.getLogger("tp3a_transfer")


def params(args) -> dict:
    """Question 1: parameters of the network, per layer, and the share of the FC layers."""
    model = load_torchvision_model(args.model, weights=None)  # the count needs no weights
    rows = parameter_table(model)
    total, fc = count_parameters(model), count_linear_parameters(model)
    width = max(len(name) for name, _, _ in rows)
    lines = [f"{'layer':<{width}}  {'shape':<20} {'parameters':>12}"]
    lines += [f"{name:<{width}}  {str(list(shape)):<20} {n:>12,}" for name, shape, n in rows]
    lines.append(f"{'total':<{width}}  {'':<20} {total:>12,}")
    lines.append(f"{'fully-connected':<{width}}  {'':<20} {fc:>12,}  ({100 * fc / total:.1f}%)")
    print("\n".join(lines))
    result = {"model": args.model, "total": total, "fully_connected": fc,
              "fully_connected_share": fc / total,
              "layers": [{"name": n, "shape": list(s), "parameters": k} for n, s, k in rows]}
    save_json(result, args.out_dir / f"params_{args.model}.json")
    md = ["| layer | shape | parameters |", "|---|---|---:|"]
    md += [f"| {n} | {list(s)} | {k:,} |" for n, s, k in rows]
    md += [f"| **total** | | **{total:,}** |",
           f"| **fully-connected** | | **{fc:,}** ({100 * fc / total:.1f}%) |"]
    (args.out_dir / f"params_{args.model}.md").write_text("\n".join(md) + "\n")
    log.info("wrote %s", args.out_dir / f"params_{args.model}.{{json,md}}")
    return result


def build_parser():
    parser, sub = cli.make_parser("tp3a_transfer", __doc__)
    p = cli.add_command(sub, "params", params, "count the parameters of a torchvision network, "
                        "per layer and in its fully-connected part (no weights needed)")
    p.add_argument("--model", default="vgg16", help="torchvision model name")
    return parser


def main(argv=None) -> int:
    return cli.run(build_parser(), argv)


if __name__ == "__main__":
    sys.exit(main())

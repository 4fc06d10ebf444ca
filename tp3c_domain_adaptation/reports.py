"""What the commands report beside the training runs: both domains at a glance, the table
of every finished run, the t-SNE of the baseline's and DANN's features."""
import logging
from pathlib import Path

import numpy as np
import torch

from common.datasets import channel_stats
from common.errors import UserError
from common.plotting import grid_array, save_image_table
from common.results import load_json, markdown_table, save_json
from tp3c_domain_adaptation.data import Domains, target_name
from tp3c_domain_adaptation.figures import plot_summary, plot_tsne
from tp3c_domain_adaptation.settings import RUNS
from tp3c_domain_adaptation.training import load_model

log = logging.getLogger("tp3c_domain_adaptation")

SUMMARY_KEYS = ("about", "epochs", "seed", "mnist_accuracy", "mnist_m_accuracy", "domain_accuracy", "collapsed",
                "seconds", "ms_per_iteration")


def show_domains(domains: Domains, out_dir: Path) -> dict:
    """Sizes, per-channel statistics and a sample grid of both domains: domains.json and
    domains.png in ``out_dir``."""
    result = {}
    for name, train_set, test_set in (("MNIST", domains.source, domains.source_test),
                                      ("MNIST-M", domains.target, domains.target_test)):
        mean, std = channel_stats(train_set.images)
        result[name] = {"source": train_set.source, "train": len(train_set), "test": len(test_set),
                        "train_mean": mean, "train_std": std}
        print(f"{name:8s} ({train_set.source}): {len(train_set):,} train / {len(test_set):,} test, "
              f"channel mean {[round(m, 3) for m in mean.tolist()]}, std {[round(s, 3) for s in std.tolist()]}")
    pick = torch.arange(32)
    save_image_table([grid_array(domains.source.images[pick], nrow=8, value_range=(0, 1)),
                      grid_array(domains.target.images[pick], nrow=8, value_range=(0, 1))],
                     out_dir / "domains.png",
                     titles=["source: MNIST", f"target: {target_name(domains.target.source)}"],
                     ncols=2, cell_size=4)
    save_json(result, out_dir / "domains.json")
    log.info("wrote %s and domains.json", out_dir / "domains.png")
    return result


def summarise(out_dir: Path) -> dict:
    """summary.json/.md/.png: every run found under ``out_dir/runs``, in the order of RUNS."""
    rows = {}
    for name in RUNS:
        path = out_dir / "runs" / name / "metrics.json"
        if path.is_file():
            m = load_json(path)
            rows[name] = {k: m[k] for k in SUMMARY_KEYS}
            rows[name]["target_source"] = m.get("target_source")
    if not rows:
        raise UserError(f"no finished run under {out_dir / 'runs'}: train one first, e.g. "
                        f"'python tp3c_domain_adaptation/main.py dann'")
    save_json(rows, out_dir / "summary.json")
    table = markdown_table(
        ["run", "what", "epochs", "seed", "MNIST test", "MNIST-M test", "domain classifier", "time"],
        [[name, r["about"] + (" (collapsed)" if r["collapsed"] else ""), r["epochs"], r["seed"],
          f"{r['mnist_accuracy']:.4f}", f"{r['mnist_m_accuracy']:.4f}",
          "-" if r["domain_accuracy"] is None else f"{r['domain_accuracy']:.3f}", f"{r['seconds']:.0f} s"]
         for name, r in rows.items()], left=2)
    (out_dir / "summary.md").write_text(table)
    print(table, end="")
    plot_summary(rows, out_dir / "summary.png")
    return rows


def tsne(domains: Domains, out_dir: Path, device: torch.device, seed: int, n_images: int) -> dict:
    """t-SNE of the features of ``n_images`` MNIST and as many MNIST-M test images (the same
    random pick in both, drawn with ``seed``), for the baseline and for DANN trained under
    ``out_dir``: tsne.png, coloured by domain and by class, and tsne_NAME.npy (the points)."""
    from sklearn.decomposition import PCA
    from sklearn.manifold import TSNE

    n = min(n_images, len(domains.source_test), len(domains.target_test))
    pick = torch.randperm(min(len(domains.source_test), len(domains.target_test)),
                          generator=torch.Generator().manual_seed(seed))[:n]
    images = torch.cat([domains.source_test.images[pick], domains.target_test.images[pick]])
    labels = torch.cat([domains.source_test.labels[pick], domains.target_test.labels[pick]]).numpy()
    points, result = {}, {}
    for name in ("source-only", "dann"):
        model = load_model(out_dir / "runs" / name / "model.pt", device, name)
        with torch.inference_mode():
            feats = torch.cat([model.features(domains.batch(part[i:i + 500], domain)).cpu()
                               for domain, part in (("source", images[:n]), ("target", images[n:]))
                               for i in range(0, n, 500)]).numpy()  # (2n, 2352)
        reduced = PCA(n_components=min(50, len(feats) - 1), random_state=seed).fit_transform(feats)
        points[name] = TSNE(n_components=2, init="pca", perplexity=min(30.0, (len(feats) - 1) / 3),
                            random_state=seed).fit_transform(reduced)  # (2n, 2)
        np.save(out_dir / f"tsne_{name}.npy", points[name].astype(np.float32))
        result[name] = {"images_per_domain": n}
    plot_tsne(points, labels, n, target_name(domains.target.source), out_dir / "tsne.png")
    log.info("wrote %s (%d + %d test images per model)", out_dir / "tsne.png", n, n)
    return result

"""Practical 3-c: domain adaptation from MNIST (source, labelled) to MNIST-M (target,
unlabelled) with DANN: a gradient reversal layer between the features and a domain
classifier.

Run from the repository root:
  python tp3c_domain_adaptation/main.py all        every run, the t-SNE figures and the table
  python tp3c_domain_adaptation/main.py dann       DANN alone (baseline: 'baseline')
  python tp3c_domain_adaptation/main.py --quick dann  a smoke run of DANN (--quick all: of every run)

Each training run writes runs/NAME/ under --out-dir (metrics.json, curves.png,
model.pt, config.json) and updates summary.md/summary.json/summary.png, the table of MNIST
and MNIST-M test accuracies of every run made so far. The target domain's labels are used
for evaluation only: never in a loss, never to pick a model (the final model is reported).
On a laptop CPU 'dann' takes a quarter of an hour and 'all' an hour and a half; a GPU, used
automatically when there is one, takes minutes.
"""
import argparse
import logging
import sys
import time
from pathlib import Path


import matplotlib.pyplot as plt
import numpy as np
import torch
from tqdm import tqdm

from common import cli
from common.datasets import channel_stats, load_mnist, load_mnist_m
from common.device import seed_everything
from common.errors import UserError
from common.plotting import grid_array, plot_curves, save_figure, save_image_table
from common.results import load_json, markdown_table, save_config, save_json
from tp3c_domain_adaptation.dann import (DANN, dann_lr, dann_step, grl_lambda,
                                         pseudo_label_weight, source_only_step)

log = logging.getLogger("tp3c_domain_adaptation")

QUICK = {"limit": 5000, "epochs": 2, "eval_images": 500, "tsne_images": 200}

# Every training run of the practical. "factor" scales the GRL's lambda: 0 = no reversal
# (the domain classifier learns, the features ignore it), negative = the features *help*
# the domain classifier (a positive gradient factor instead of a reversed one).
RUNS = {
    "source-only": {"mode": "source", "about": "baseline: cross-entropy on MNIST only"},
    "dann": {"mode": "dann", "factor": 1.0, "about": "DANN, reversal -lambda(p)"},
    "no-grl": {"mode": "dann", "factor": 0.0, "about": "domain classifier trained, no reversal"},
    "grl-x0.1": {"mode": "dann", "factor": 0.1, "about": "reversal -0.1 lambda(p)"},
    "positive": {"mode": "dann", "factor": -1.0, "about": "gradient +lambda(p): features help the domain classifier"},
    "pseudo": {"mode": "pseudo", "about": "pseudo-labelling alone (no domain loss)"},
    "dann+pseudo": {"mode": "dann", "factor": 1.0, "pseudo": True, "about": "DANN and pseudo-labelling"},
}
SWEEP = ("no-grl", "grl-x0.1", "dann", "positive")


def target_name(source: str | None) -> str:
    """How figures name the target domain: "MNIST-M", marked as the stand-in when it was built
    on the sample photos of scikit-learn and scikit-image instead of BSDS500 (offline)."""
    return "MNIST-M (stand-in: sample photos)" if source == "mnist_m-sample-photos" else "MNIST-M"


# ----------------------------------------------------------------------------- data

class Domains:
    """Both domains in memory (the training sets on the GPU when there is one), [0, 1]
    images, normalised batch by batch with one per-channel mean and std computed on the
    union of the two training sets.

    The default is the default layout in fp32. channels_last (``--channels-last``) makes the
    steps faster and changes the arithmetic by rounding only, which is enough to move a single
    DANN run by several points of accuracy, either way."""

    def __init__(self, args):
        limit = QUICK["limit"] if args.quick else None
        kw = {"source": args.mnist_m, "seed": args.mnist_m_seed, "limit": limit}
        self.source = load_mnist(args.data_dir, "train", channels=3, limit=limit)
        self.target = load_mnist_m(args.data_dir, "train", **kw)
        self.source_test = load_mnist(args.data_dir, "test", channels=3, limit=limit)
        self.target_test = load_mnist_m(args.data_dir, "test", **kw)
        self.mean, self.std = channel_stats(torch.cat([self.source.images, self.target.images]))
        self.device = args.device
        # --channels-last (training commands only): the layout oneDNN and cuDNN convolve fastest
        self.memory_format = torch.channels_last if getattr(args, "channels_last", False) else torch.contiguous_format
        if args.device.type == "cuda":  # about 1.1 GB: copied once instead of batch by batch
            for d in (self.source, self.target):
                d.tensors = tuple(t.to(args.device) for t in d.tensors)
        self._mean = self.mean.to(args.device)[:, None, None]  # (3, 1, 1)
        self._std = self.std.to(args.device)[:, None, None]
        log.info("source %s: %d train / %d test; target %s: %d train / %d test; "
                 "normalisation mean %s std %s", self.source.source, len(self.source),
                 len(self.source_test), self.target.source, len(self.target), len(self.target_test),
                 [round(m, 3) for m in self.mean.tolist()], [round(s, 3) for s in self.std.tolist()])

    def batch(self, images: torch.Tensor) -> torch.Tensor:
        """[0, 1] images (N, 3, 28, 28) -> normalised, on the device, in ``memory_format``."""
        x = (images.to(self.device, non_blocking=True) - self._mean) / self._std
        return x.contiguous(memory_format=self.memory_format)

    def describe(self) -> dict:
        return {"source": self.source.source, "target": self.target.source,
                "train": [len(self.source), len(self.target)],
                "test": [len(self.source_test), len(self.target_test)],
                "mean": self.mean.tolist(), "std": self.std.tolist()}


# ----------------------------------------------------------------------------- training

class ClippedSGD(torch.optim.SGD):
    """SGD that records the global gradient norm of each step (``last_norm``) and, when
    ``max_norm`` is set, first clips it to that value.

    The student's training steps call ``optimizer.step()`` themselves; clipping inside the
    optimizer keeps them unchanged.
    """

    def __init__(self, params, max_norm: float | None = None, **kw):
        super().__init__(params, **kw)
        self.max_norm = max_norm
        self.last_norm = None

    def step(self, closure=None):
        params = [p for g in self.param_groups for p in g["params"] if p.grad is not None]
        self.last_norm = torch.nn.utils.get_total_norm([p.grad for p in params])
        if self.max_norm:
            torch.nn.utils.clip_grads_with_norm_(params, self.max_norm, self.last_norm)
        return super().step(closure)


@torch.inference_mode()
def evaluate(model: DANN, domains: Domains, images: torch.Tensor, labels: torch.Tensor,
             batch: int = 256) -> dict:
    """Label accuracy, the domain classifier's outputs, the share of the most predicted class
    and the share of features that are zero for every image (dead units), in batches of 256
    (faster than larger ones on a CPU)."""
    model.eval()
    correct, target_votes, counts, alive = 0, 0, torch.zeros(10), None
    for i in range(0, len(images), batch):
        f = model.features(domains.batch(images[i:i + batch]))  # (B, 2352)
        pred = model.classifier(f).argmax(1).cpu()
        correct += int((pred == labels[i:i + batch]).sum())
        target_votes += int((model.domain(f) > 0).sum())
        counts += torch.bincount(pred, minlength=10).float()
        nonzero = (f != 0).any(0).cpu()
        alive = nonzero if alive is None else alive | nonzero
    model.train()
    n = len(images)
    return {"accuracy": correct / n, "said_target": target_votes / n,
            "top_class_share": float(counts.max()) / n, "dead_features": 1 - float(alive.float().mean())}


def collapsed(result: dict) -> bool:
    """A collapsed model predicts (almost) one class for every image of a domain."""
    return max(result["source"]["top_class_share"], result["target"]["top_class_share"]) > 0.9


def eval_both(model, domains: Domains, n: int | None = None) -> dict:
    """Accuracies on the first ``n`` (None = all) test images of each domain; the domain
    classifier's accuracy on their union (source should read 0, target 1)."""
    s = evaluate(model, domains, domains.source_test.images[:n], domains.source_test.labels[:n])
    t = evaluate(model, domains, domains.target_test.images[:n], domains.target_test.labels[:n])
    ns, nt = min(n or 10**9, len(domains.source_test)), min(n or 10**9, len(domains.target_test))
    domain_acc = ((1 - s["said_target"]) * ns + t["said_target"] * nt) / (ns + nt)
    return {"source": s, "target": t, "domain_accuracy": domain_acc}


def fit(args, name: str, domains: Domains) -> dict:
    """Train one run of :data:`RUNS` and write its outputs under ``runs/NAME``."""
    spec = RUNS[name]
    out = args.out_dir / "runs" / name
    seed_everything(args.seed)  # every run starts from the same weights and batch order
    model = DANN(domain_hidden=args.domain_hidden).to(args.device, memory_format=domains.memory_format)
    opt = ClippedSGD(model.parameters(), max_norm=args.clip, lr=args.lr, momentum=args.momentum)
    steps = len(domains.source) // args.batch_size  # an epoch is one pass over the source
    if steps == 0:
        raise UserError(f"--batch-size {args.batch_size} is larger than the {len(domains.source)} source images")
    total = args.epochs * steps
    eval_every = max(1, steps // args.evals_per_epoch)
    eval_n = QUICK["eval_images"] if args.quick else args.eval_images
    save_config(args, out, run=name, spec=spec, iterations=total, data=domains.describe())

    keys = ("class_loss", "domain_loss", "domain_acc", "source_acc", "pseudo_loss", "pseudo_fraction")
    history = {k: [] for k in keys + ("grad_norm",)}
    schedule = {"lambda": [], "lr": [], "alpha": []}
    evals, collapse_at, train_seconds, started, it = [], None, 0.0, time.perf_counter(), 0
    bar = tqdm(total=total, desc=name, unit="it")
    for epoch in range(args.epochs):
        order_s = torch.randperm(len(domains.source))
        order_t = torch.randperm(len(domains.target))
        for b in range(steps):
            t0 = time.perf_counter()
            p = it / total
            lr = dann_lr(p, args.lr)
            for group in opt.param_groups:
                group["lr"] = lr
            lambd = spec.get("factor", 0.0) * grl_lambda(p, args.gamma)
            alpha = pseudo_label_weight(p) if spec["mode"] == "pseudo" or spec.get("pseudo") else 0.0
            idx_s = order_s[b * args.batch_size:(b + 1) * args.batch_size]
            idx_t = order_t[(b * args.batch_size + torch.arange(args.batch_size)) % len(order_t)]
            x_s, y_s = domains.batch(domains.source.images[idx_s]), domains.source.labels[idx_s].to(args.device)
            if spec["mode"] == "source":
                stats = source_only_step(model, opt, x_s, y_s)
            else:  # the target batch comes without its labels
                x_t = domains.batch(domains.target.images[idx_t])
                stats = dann_step(model, opt, x_s, y_s, x_t, lambd, pseudo_alpha=alpha,
                                  threshold=args.threshold,
                                  domain_weight=0.0 if spec["mode"] == "pseudo" else 1.0)
            train_seconds += time.perf_counter() - t0
            history["grad_norm"].append(opt.last_norm)
            for k in keys:
                history[k].append(stats[k] if k in stats else torch.tensor(float("nan"), device=args.device))
            for k, v in (("lambda", lambd), ("lr", lr), ("alpha", alpha)):
                schedule[k].append(v)
            it += 1
            bar.update()
            if it % eval_every == 0 or it == total:
                result = eval_both(model, domains, eval_n)
                evals.append({"iteration": it, "epoch": it / steps, **result})
                if collapse_at is None and collapsed(result):
                    collapse_at = it
                    log.warning("%s collapsed at iteration %d (epoch %.1f): one class predicted for "
                                "over 90%% of the images", name, it, it / steps)
                bar.set_postfix(mnist=f"{result['source']['accuracy']:.3f}",
                                mnist_m=f"{result['target']['accuracy']:.3f}",
                                domain=f"{result['domain_accuracy']:.2f}", lam=f"{lambd:.2f}")
    bar.close()
    final = eval_both(model, domains)  # the whole test sets
    seconds = time.perf_counter() - started
    history = {k: torch.stack(v).float().cpu().numpy() for k, v in history.items()}
    metrics = {"run": name, "about": spec["about"], "epochs": args.epochs, "iterations": total,
               "seed": args.seed, "target_source": domains.target.source,
               "mnist_accuracy": final["source"]["accuracy"],
               "mnist_m_accuracy": final["target"]["accuracy"],
               # the baseline never trains its domain classifier: its accuracy means nothing
               "domain_accuracy": None if spec["mode"] == "source" else final["domain_accuracy"],
               "collapsed": collapsed(final),
               "collapsed_at_iteration": collapse_at, "final": final,
               "seconds": round(seconds, 1), "ms_per_iteration": round(1000 * train_seconds / total, 1),
               "evals": evals, "history": history, "schedule": schedule}
    save_json(metrics, out / "metrics.json")
    torch.save({"state_dict": model.state_dict(), "domain_hidden": args.domain_hidden,
                "mean": domains.mean, "std": domains.std}, out / "model.pt")
    plot_run(metrics, out / "curves.png", steps)
    log.info("%s: MNIST %.4f, MNIST-M %.4f, domain classifier %.3f on the test sets; %d iterations "
             "in %.0f s (%.1f ms/it)%s; wrote %s", name, metrics["mnist_accuracy"],
             metrics["mnist_m_accuracy"], final["domain_accuracy"], total, seconds,
             metrics["ms_per_iteration"], " -- COLLAPSED" if metrics["collapsed"] else "", out)
    return metrics


# ----------------------------------------------------------------------------- figures

def plot_run(m: dict, path: Path, steps: int) -> Path:
    """Label accuracy on both domains, domain-classifier accuracy, the losses, lambda and lr."""
    h, s = m["history"], m["schedule"]
    epochs = np.arange(1, len(h["class_loss"]) + 1) / steps
    at = np.array([e["epoch"] for e in m["evals"]])
    smooth = max(1, min(50, len(epochs) // 20))
    fig, axes = plt.subplots(2, 2, figsize=(12, 7.5), sharex=True)
    tests = {"color": "C1", "marker": "."}, {"color": "C2", "marker": "."}
    target = target_name(m.get("target_source"))
    ax = axes[0, 0]
    plot_curves(ax, {"MNIST train batches": h["source_acc"]}, x=epochs, smooth=smooth)
    plot_curves(ax, {"MNIST test": [e["source"]["accuracy"] for e in m["evals"]],
                     f"{target} test": [e["target"]["accuracy"] for e in m["evals"]]}, x=at,
                styles={"MNIST test": tests[0], f"{target} test": tests[1]})
    ax.set(title="label accuracy", ylim=(0, 1.02))
    ax = axes[0, 1]
    plot_curves(ax, {"train batches": h["domain_acc"]}, x=epochs, smooth=smooth)
    plot_curves(ax, {"test images": [e["domain_accuracy"] for e in m["evals"]]}, x=at,
                styles={"test images": tests[0]})
    ax.axhline(0.5, color="grey", linestyle=":", linewidth=1)
    ax.set(title="domain classifier accuracy (0.5 = chance)", ylim=(0, 1.02))
    ax = axes[1, 0]
    plot_curves(ax, {k: v for k, v in (("class loss (MNIST)", h["class_loss"]),
                                        ("domain loss", h["domain_loss"]),
                                        ("pseudo-label loss", h["pseudo_loss"]))
                     if np.isfinite(v).any() and np.nanmax(np.abs(v)) > 0}, x=epochs, smooth=smooth)
    ax.set(title="losses", xlabel="epoch", yscale="log")
    ax = axes[1, 1]
    plot_curves(ax, {"lambda (GRL factor)": s["lambda"], "learning rate x 100": np.array(s["lr"]) * 100,
                     "pseudo-label weight alpha": s["alpha"]}, x=epochs)
    ax.set(title="schedules", xlabel="epoch")
    fig.suptitle(f"{m['run']}: {m['about']} -- final MNIST {m['mnist_accuracy']:.3f}, "
                 f"{target} {m['mnist_m_accuracy']:.3f}")
    return save_figure(fig, path)


def summarise(out_dir: Path) -> dict:
    """summary.json/.md/.png: every run found under ``out_dir/runs``, in the order of RUNS."""
    rows = {}
    for name in RUNS:
        path = out_dir / "runs" / name / "metrics.json"
        if path.is_file():
            m = load_json(path)
            rows[name] = {k: m[k] for k in ("about", "epochs", "seed", "mnist_accuracy",
                                            "mnist_m_accuracy", "domain_accuracy", "collapsed",
                                            "seconds", "ms_per_iteration")}
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

    fig, ax = plt.subplots(figsize=(1.3 * len(rows) + 3, 4))
    x = np.arange(len(rows))
    stand_in = any(r["target_source"] == "mnist_m-sample-photos" for r in rows.values())
    target = target_name("mnist_m-sample-photos" if stand_in else None)
    for i, (key, label) in enumerate((("mnist_accuracy", "MNIST (source)"),
                                      ("mnist_m_accuracy", f"{target} (target)"))):
        values = [r[key] for r in rows.values()]
        bars = ax.bar(x + (i - 0.5) * 0.38, values, 0.38, label=label)
        ax.bar_label(bars, fmt="%.3f", fontsize=8)
    ax.set(xticks=x, ylim=(0, 1.08), ylabel="test accuracy", title=f"MNIST -> {target}: every run")
    ax.set_xticklabels(list(rows), rotation=20)
    ax.legend(loc="lower right")
    save_figure(fig, out_dir / "summary.png")
    return rows


# ----------------------------------------------------------------------------- t-SNE

def tsne(args) -> dict:
    """t-SNE of the features of 1,000 MNIST and 1,000 MNIST-M test images, for the baseline
    and for DANN, coloured by domain and by class."""
    from sklearn.decomposition import PCA
    from sklearn.manifold import TSNE

    domains = Domains(args)
    n = min(QUICK["tsne_images"], args.tsne_images) if args.quick else args.tsne_images
    n = min(n, len(domains.source_test), len(domains.target_test))
    pick = torch.randperm(min(len(domains.source_test), len(domains.target_test)),
                          generator=torch.Generator().manual_seed(args.seed))[:n]
    images = torch.cat([domains.source_test.images[pick], domains.target_test.images[pick]])
    labels = torch.cat([domains.source_test.labels[pick], domains.target_test.labels[pick]]).numpy()
    fig, axes = plt.subplots(2, 2, figsize=(11, 10))
    result = {}
    for row, name in enumerate(("source-only", "dann")):
        model = load_model(args.out_dir / "runs" / name / "model.pt", args.device, name)
        with torch.inference_mode():
            feats = torch.cat([model.features(domains.batch(images[i:i + 500])).cpu()
                               for i in range(0, len(images), 500)]).numpy()
        reduced = PCA(n_components=min(50, len(feats) - 1), random_state=args.seed).fit_transform(feats)
        xy = TSNE(n_components=2, init="pca", perplexity=min(30.0, (len(feats) - 1) / 3),
                  random_state=args.seed).fit_transform(reduced)
        np.save(args.out_dir / f"tsne_{name}.npy", xy.astype(np.float32))
        for col, colour_by in enumerate(("domain", "class")):
            ax = axes[row, col]
            if colour_by == "domain":
                ax.scatter(*xy[:n].T, s=4, c="C0", label="MNIST (source)")
                ax.scatter(*xy[n:].T, s=4, c="C3", label=f"{target_name(domains.target.source)} (target)")
                ax.legend(markerscale=3)
            else:
                points = ax.scatter(*xy.T, s=4, c=labels, cmap="tab10", vmin=-0.5, vmax=9.5)
                fig.colorbar(points, ax=ax, ticks=range(10), label="digit")
            ax.set(title=f"{name}: coloured by {colour_by}", xticks=[], yticks=[])
        result[name] = {"images_per_domain": n}
    save_figure(fig, args.out_dir / "tsne.png")
    log.info("wrote %s (%d + %d test images per model)", args.out_dir / "tsne.png", n, n)
    return result


def load_model(path: Path, device, name: str) -> DANN:
    if not path.is_file():
        raise UserError(f"no trained '{name}' model at {path}: train it first with "
                        f"'python tp3c_domain_adaptation/main.py "
                        f"{'baseline' if name == 'source-only' else name}' (same --out-dir)")
    saved = torch.load(path, map_location="cpu", weights_only=True)
    model = DANN(domain_hidden=saved["domain_hidden"])
    model.load_state_dict(saved["state_dict"])
    return model.to(device).eval()


# ----------------------------------------------------------------------------- subcommands

def data(args) -> dict:
    """Sizes, per-channel statistics and a sample grid of both domains."""
    domains = Domains(args)
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
                     args.out_dir / "domains.png",
                     titles=["source: MNIST", f"target: {target_name(domains.target.source)}"],
                     ncols=2, cell_size=4)
    save_json(result, args.out_dir / "domains.json")
    log.info("wrote %s and domains.json", args.out_dir / "domains.png")
    return result


def train_runs(args, names) -> dict:
    if args.quick:
        args.epochs = QUICK["epochs"]
    domains = Domains(args)
    results = {name: fit(args, name, domains) for name in names}
    summarise(args.out_dir)
    return results


def baseline(args) -> dict:
    return train_runs(args, ["source-only"])


def dann(args) -> dict:
    return train_runs(args, ["dann"])


def sweep(args) -> dict:
    return train_runs(args, SWEEP)


def pseudo(args) -> dict:
    return train_runs(args, ["pseudo", "dann+pseudo"])


def summary(args) -> dict:
    return summarise(args.out_dir)


def run_all(args) -> dict:
    results = train_runs(args, list(RUNS))
    tsne(args)
    return results


def add_training_options(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group("training (defaults: the paper's SGD recipe)")
    g.add_argument("--epochs", type=cli.positive_int, default=20, help="passes over the 60,000 source images")
    g.add_argument("--batch-size", type=cli.positive_int, default=64,
                   help="source images per step (and as many target images)")
    g.add_argument("--lr", type=cli.positive_float, default=0.01,
                   help="initial learning rate, decayed as lr/(1+10p)^0.75")
    g.add_argument("--momentum", type=cli.open_unit, default=0.9, help="SGD momentum")
    g.add_argument("--gamma", type=cli.positive_float, default=10.0,
                   help="lambda(p) = 2/(1+exp(-gamma p)) - 1 (10 in the paper)")
    g.add_argument("--clip", type=cli.non_negative_float, default=5.0,
                   help="clip the global gradient norm to this before each step (0: off); without it "
                        "DANN can diverge to a constant prediction")
    g.add_argument("--domain-hidden", type=cli.positive_int, default=100, help="hidden units of the domain classifier")
    g.add_argument("--threshold", type=cli.open_unit, default=0.9, help="confidence needed for a pseudo-label")
    g.add_argument("--channels-last", action="store_true",
                   help="convolve in the channels_last layout: faster steps, the same arithmetic up to "
                        "rounding; a DANN run moves with rounding, so a run in this layout differs from one "
                        "without it, by several points of accuracy either way")
    g.add_argument("--evals-per-epoch", type=cli.positive_int, default=4, help="test evaluations per epoch (curves)")
    g.add_argument("--eval-images", type=cli.positive_int, default=2000,
                   help="test images per domain in those evaluations (the final one uses all)")


def add_data_options(p: argparse.ArgumentParser) -> None:
    p.add_argument("--mnist-m", choices=("auto", "bsds", "official"), default="auto",
                   help="MNIST-M: the official release when present (auto), or built from BSDS500")
    p.add_argument("--mnist-m-seed", type=int, default=0, help="seed of the MNIST-M construction")


def build_parser():
    parser, sub = cli.make_parser("tp3c_domain_adaptation", __doc__)
    commands = [
        ("data", data, "look at both domains: sizes, channel statistics, samples", False),
        ("baseline", baseline, "train on MNIST only (source-only), test on both domains", True),
        ("dann", dann, "train DANN (gradient reversal), test on both domains", True),
        ("sweep", sweep, "the reversal-factor sweep: no GRL, lambda x0.1, x1, positive factor", True),
        ("pseudo", pseudo, "pseudo-labelling alone, and with DANN", True),
        ("tsne", tsne, "t-SNE of baseline and DANN features (needs both trained)", False),
        ("summary", summary, "rebuild the table of every finished run", False),
        ("all", run_all, "every run, then the t-SNE figure and the table", True),
    ]
    for name, func, help_text, trains in commands:
        p = cli.add_command(sub, name, func, help_text)
        if name != "summary":
            add_data_options(p)
        if trains:
            add_training_options(p)
        if name in ("tsne", "all"):
            p.add_argument("--tsne-images", type=cli.positive_int, default=1000,
                           help="test images per domain in the t-SNE")
    return parser


def main(argv=None) -> int:
    return cli.run(build_parser(), argv)


if __name__ == "__main__":
    sys.exit(main())

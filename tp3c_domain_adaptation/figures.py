"""The figures of the practical: a run's curves, the table of every run as bars, the t-SNE
of the features."""
from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np

from common.plotting import plot_curves, save_figure
from tp3c_domain_adaptation.data import target_name


def plot_run(m: dict, path: Path, steps: int) -> Path:
    """Label accuracy on both domains, domain-classifier accuracy, the losses, lambda and lr
    of the run whose metrics are ``m`` (``steps``: iterations per epoch)."""
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


def plot_summary(rows: dict, path: Path) -> Path:
    """MNIST and MNIST-M test accuracy of every run of ``rows`` (summary.json's), as bars."""
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
    return save_figure(fig, path)


def plot_tsne(points: dict, labels: np.ndarray, n: int, target: str, path: Path) -> Path:
    """One row per model of ``points`` (name to its (2n, 2) t-SNE points: the ``n`` source
    images, then the ``n`` target ones), coloured by domain and by class (``labels``, (2n,))."""
    fig, axes = plt.subplots(len(points), 2, figsize=(11, 5 * len(points)), squeeze=False)
    for row, (name, xy) in enumerate(points.items()):
        for col, colour_by in enumerate(("domain", "class")):
            ax = axes[row, col]
            if colour_by == "domain":
                ax.scatter(*xy[:n].T, s=4, c="C0", label="MNIST (source)")
                ax.scatter(*xy[n:].T, s=4, c="C3", label=f"{target} (target)")
                ax.legend(markerscale=3)
            else:
                dots = ax.scatter(*xy.T, s=4, c=labels, cmap="tab10", vmin=-0.5, vmax=9.5)
                fig.colorbar(dots, ax=ax, ticks=range(10), label="digit")
            ax.set(title=f"{name}: coloured by {colour_by}", xticks=[], yticks=[])
    return save_figure(fig, path)

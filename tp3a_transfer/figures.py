"""The figures of practical 3-a's sweeps and of the new layer's training."""
from pathlib import Path

from common.plotting import plt, save_figure


def csweep(Cs, cv: list[float], test: list[float], best: float, folds: int, title: str, path: Path) -> Path:
    """Cross-validated and test accuracy against C, the C that CV chose marked."""
    fig, ax = plt.subplots(figsize=(6, 4))
    ax.semilogx(Cs, cv, "o-", label=f"{folds}-fold CV on train (chooses C)")
    ax.semilogx(Cs, test, "s--", label="test (for the record only)")
    ax.axvline(best, color="grey", lw=0.8)
    ax.set(xlabel="C", ylabel="accuracy", title=title)
    ax.legend()
    return save_figure(fig, path)


def pca(runs: list[dict], plain: float, plain_fit: float, dim: int, ninety: int, title: str, path: Path) -> Path:
    """Test accuracy and fit time against the number of PCA components, beside no PCA."""
    fig, (a1, a2) = plt.subplots(1, 2, figsize=(10, 3.8))
    ks = [r["components"] for r in runs]
    a1.semilogx(ks, [r["test_accuracy"] for r in runs], "o-")
    a1.axhline(plain, color="grey", ls="--", label=f"no PCA ({dim}-d): {plain:.3f}")
    a1.axvline(ninety, color="tab:red", lw=0.8, label=f"90% of the variance: {ninety}")
    a1.set(xlabel="components", ylabel="test accuracy")
    a1.legend()
    a2.semilogx(ks, [r["fit_seconds"] for r in runs], "o-")
    a2.axhline(plain_fit, color="grey", ls="--", label="no PCA")
    a2.set(xlabel="components", ylabel="PCA + SVM fit time (s)")
    a2.legend()
    fig.suptitle(title)
    return save_figure(fig, path)


def head_curves(curves: dict[str, list[float]], epochs: int, title: str, path: Path) -> Path:
    """Test accuracy after each epoch, one curve per training mode."""
    fig, ax = plt.subplots(figsize=(6, 4))
    for mode, accs in curves.items():
        ax.plot(range(1, len(accs) + 1), accs, "o-", label=mode)
    ax.set(xlabel="epoch", ylabel="test accuracy", title=title)
    ax.set_xticks(range(1, epochs + 1))
    ax.legend()
    return save_figure(fig, path)

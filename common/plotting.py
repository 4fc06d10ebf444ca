"""Figures shared by the practicals, always saved as PNG (never ``plt.show()``)."""
import logging
from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # batch runs have no screen; set before pyplot is imported
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import torch  # noqa: E402
from torchvision.utils import make_grid, save_image  # noqa: E402

log = logging.getLogger(__name__)


def save_figure(fig, path) -> Path:
    """Save ``fig`` as a PNG at ``path`` (folders created) and close it."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=120, bbox_inches="tight")
    plt.close(fig)
    log.debug("wrote %s", path)
    return path


def save_image_grid(images: torch.Tensor, path, nrow: int = 8, value_range=(-1.0, 1.0),
                    padding: int = 2) -> Path:
    """Save a batch of images (N, C, H, W) as one grid PNG with torchvision's ``save_image``.

    ``value_range`` is the range the pixels are in (``(-1, 1)`` for tanh outputs,
    ``(0, 1)`` for plain images); it is mapped to black..white.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    save_image(images.detach().float().cpu(), path, nrow=nrow, padding=padding,
               normalize=True, value_range=value_range)
    return path


def grid_array(images: torch.Tensor, nrow: int = 8, value_range=(-1.0, 1.0)) -> np.ndarray:
    """The grid of ``images`` as an (H, W, 3) float array in [0, 1], for matplotlib."""
    grid = make_grid(images.detach().float().cpu(), nrow=nrow, normalize=True,
                     value_range=value_range, pad_value=1.0)
    return grid.permute(1, 2, 0).numpy()


def plot_curves(ax, series: dict, x=None, smooth: int = 1, styles: dict | None = None) -> None:
    """Draw each named sequence of ``series`` on ``ax``.

    ``x`` gives shared abscissae (default 0..n-1); ``smooth`` > 1 adds a moving average over
    that many points on top of the faint raw curve; ``styles`` maps a name to extra
    ``ax.plot`` keywords (marker, linestyle...).
    """
    for i, (name, values) in enumerate(series.items()):
        values = np.asarray(values, dtype=float)
        xs = np.arange(len(values)) if x is None else np.asarray(x)[: len(values)]
        style = {"color": f"C{i}", **(styles or {}).get(name, {})}
        if smooth > 1 and len(values) > smooth:
            ax.plot(xs, values, alpha=0.25, linewidth=0.8, **style)
            kernel = np.ones(smooth) / smooth
            ax.plot(xs[smooth - 1:], np.convolve(values, kernel, mode="valid"), label=name, **style)
        else:
            ax.plot(xs, values, label=name, **style)
    ax.grid(alpha=0.3)
    ax.legend()


def save_curves(series: dict, path, xlabel: str = "iteration", ylabel: str = "",
                title: str = "", x=None, smooth: int = 1, logy: bool = False) -> Path:
    """Plot each named sequence of ``series`` as a line on one set of axes (see
    :func:`plot_curves`) and save the figure."""
    fig, ax = plt.subplots(figsize=(7, 4))
    plot_curves(ax, series, x=x, smooth=smooth)
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    if logy:
        ax.set_yscale("log")
    if title:
        ax.set_title(title)
    return save_figure(fig, path)


def save_image_table(images, path, titles=None, ncols: int = 5, cmap=None,
                     suptitle: str = "", cell_size: float = 2.2) -> Path:
    """Show a list of images (H, W) or (H, W, 3) arrays in [0, 1] in a grid with titles."""
    n = len(images)
    ncols = min(ncols, n)
    nrows = (n + ncols - 1) // ncols
    title_space = 0.35 if suptitle else 0.0  # inches kept free above the grid
    height = cell_size * nrows + title_space
    fig, axes = plt.subplots(nrows, ncols, figsize=(cell_size * ncols, height), squeeze=False)
    for i, ax in enumerate(axes.flat):
        ax.axis("off")
        if i < n:
            image = np.asarray(images[i])
            ax.imshow(image, cmap=cmap if image.ndim == 2 else None)
            if titles is not None:
                ax.set_title(str(titles[i]), fontsize=8)
    if suptitle:
        fig.suptitle(suptitle, y=1 - 0.08 / height, va="top")
    fig.tight_layout(rect=(0, 0, 1, 1 - title_space / height))
    return save_figure(fig, path)

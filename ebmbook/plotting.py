"""Figures: Axes-in / Axes-out helpers, one book style, and sliders that work without a kernel.

Helpers draw on the Axes they are given (or the current one) and return it; they never set
titles (captions say what a figure shows), never call ``plt.show()`` and never change global
state, except :func:`use_book_style`, which a chapter's setup cell calls once.

See chapter: "Boltzmann distributions and the partition function" (chapters/boltzmann.ipynb).
"""

from __future__ import annotations

import base64
import html as html_mod
import io
from typing import Sequence

import ipywidgets as widgets
import matplotlib as mpl
import matplotlib.pyplot as plt
import torch
from torch import Tensor

from . import grid as grid_mod
from ._contracts import count, points
from .energies import Energy

__all__ = ["PALETTE", "use_book_style", "plot_energy_2d", "plot_density_2d", "plot_samples", "figure_to_png",
           "frame_slider", "plot_image_grid"]

# Okabe & Ito's palette, distinguishable with the common colour-vision deficiencies
PALETTE = ["#0072B2", "#E69F00", "#009E73", "#D55E00", "#CC79A7", "#56B4E9", "#F0E442", "#000000"]


def use_book_style() -> None:
    """Set the book's matplotlib style: colour-blind-safe cycle, small figures, sequential viridis.

    See chapter: "Boltzmann distributions and the partition function" (chapters/boltzmann.ipynb).
    """
    mpl.rcParams.update({"axes.prop_cycle": mpl.cycler(color=PALETTE), "image.cmap": "viridis",
                         "figure.figsize": (5.6, 3.6), "figure.dpi": 100, "figure.constrained_layout.use": True,
                         "font.size": 10, "axes.spines.top": False, "axes.spines.right": False,
                         "legend.frameon": False})


def _grid_2d(grid: grid_mod.Grid | None, lim: float, n: int) -> grid_mod.Grid:
    if grid is None:
        return grid_mod.make_grid(-lim, lim, n, dim=2)
    if not isinstance(grid, grid_mod.Grid) or grid.dim != 2:
        raise ValueError("grid must be a 2-D grid from eb.grid.make_grid(low, high, n, dim=2)")
    return grid


def plot_energy_2d(energy: Energy, *, grid: grid_mod.Grid | None = None, lim: float = 5.0, n: int = 200,
                   levels: int = 20, clip_quantile: float | None = 0.9, ax: plt.Axes | None = None,
                   **contour_kw) -> plt.Axes:
    """Filled contours of E on a 2-D grid (by default [−lim, lim]²); returns the Axes.

    Args:
        clip_quantile: energies above this quantile share the top colour, so that a few
            huge values far out do not wash out the interesting region; None shows all.

    See chapter: "Boltzmann distributions and the partition function" (chapters/boltzmann.ipynb).
    """
    ax = ax or plt.gca()
    g = _grid_2d(grid, lim, n)
    with torch.no_grad():
        e = grid_mod.energy_on_grid(energy, g).reshape(g.shape).cpu()
    if clip_quantile is not None:
        e = e.clamp(max=torch.quantile(e.reshape(-1).double(), clip_quantile).item())
    xx, yy = (a.cpu().numpy() for a in g.axes)
    contour_kw.setdefault("cmap", "viridis")
    ax.contourf(xx, yy, e.T.numpy(), levels=levels, **contour_kw)
    ax.set(aspect="equal", xlabel="$x_1$", ylabel="$x_2$")
    return ax


def plot_density_2d(energy: Energy, *, grid: grid_mod.Grid | None = None, lim: float = 5.0, n: int = 200,
                    temperature: float = 1.0, ax: plt.Axes | None = None, **imshow_kw) -> plt.Axes:
    """The normalized density exp(−E/T)/Z on a 2-D grid as an image; returns the Axes.

    See chapter: "Boltzmann distributions and the partition function" (chapters/boltzmann.ipynb).
    """
    ax = ax or plt.gca()
    g = _grid_2d(grid, lim, n)
    p = grid_mod.density(energy, g, temperature=temperature).cpu()
    imshow_kw.setdefault("cmap", "viridis")
    ax.imshow(p.T.numpy(), origin="lower", extent=(g.low[0], g.high[0], g.low[1], g.high[1]),
              aspect="equal", **imshow_kw)
    ax.set(xlabel="$x_1$", ylabel="$x_2$")
    return ax


def plot_samples(x: Tensor, *, ax: plt.Axes | None = None, **scatter_kw) -> plt.Axes:
    """Scatter plot of 2-D points, shape (n, 2); returns the Axes.

    See chapter: "Sampling from an energy" (chapters/sampling.ipynb).
    """
    points(x, dim=2)
    ax = ax or plt.gca()
    pts = x.detach().cpu().numpy()
    ax.scatter(pts[:, 0], pts[:, 1], **{"s": 2, "alpha": 0.5, "linewidths": 0, **scatter_kw})
    ax.set_aspect("equal")
    return ax


def figure_to_png(fig: plt.Figure, *, dpi: int = 80) -> bytes:
    """Render a figure to PNG bytes and close it (it is not shown).

    See chapter: "Boltzmann distributions and the partition function" (chapters/boltzmann.ipynb).
    """
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=dpi)
    plt.close(fig)
    return buf.getvalue()


def frame_slider(frames: Sequence[bytes], values: Sequence, *, description: str = "",
                 alt: str = "") -> widgets.VBox:
    """A slider over precomputed PNG frames that redraws in the browser, with or without a kernel.

    The slider's index is linked to a ``Stack`` of frames by ``jslink``, which runs in the
    page's JavaScript, so the static website can switch frames after the kernel is gone. With
    ipywidgets 7, which has no ``Stack``, the kernel swaps the frame instead (live only). Each
    frame is an ``<img>`` with ``alt`` text (an HTML widget holding the PNG as a data URL), so
    screen readers describe it.

    Args:
        frames: PNG bytes, one per slider position (see :func:`figure_to_png`).
        values: the slider's labels, one per frame.
        description: the slider's label.
        alt: a text description of the frames; required, as for every figure of the book.

    Returns:
        The widget (display it as a cell's last expression).

    See chapter: "Boltzmann distributions and the partition function" (chapters/boltzmann.ipynb).
    """
    if len(frames) != len(values) or not frames:
        raise ValueError(f"need one value per frame, got {len(frames)} frames and {len(values)} values")
    if not alt.strip():
        raise ValueError("alt must describe the frames in words (it is the images' alt text)")
    html = [_img_tag(png, alt) for png in frames]
    slider = widgets.SelectionSlider(options=[str(v) for v in values], value=str(values[0]),
                                     description=description, continuous_update=True,
                                     style={"description_width": "initial"})
    if hasattr(widgets, "Stack"):  # ipywidgets >= 8: the browser switches frames by itself
        stack = widgets.Stack([widgets.HTML(value=h) for h in html], selected_index=0)
        widgets.jslink((slider, "index"), (stack, "selected_index"))
        return widgets.VBox([slider, stack])
    # ipywidgets 7 (as preinstalled on Colab) has no Stack: the running kernel swaps the frame.
    shown = widgets.HTML(value=html[0])

    def show(change):
        shown.value = html[change["new"]]

    slider.observe(show, names="index")
    return widgets.VBox([slider, shown])


def _img_tag(png: bytes, alt: str) -> str:
    """An <img> element showing PNG bytes inline, with escaped alt text."""
    if not isinstance(png, (bytes, bytearray)) or not png.startswith(b"\x89PNG"):
        raise ValueError("frames must be PNG bytes, as made by figure_to_png")
    data = base64.b64encode(png).decode("ascii")
    return (f'<img src="data:image/png;base64,{data}" alt="{html_mod.escape(alt, quote=True)}" '
            'style="max-width: 100%; height: auto">')


def plot_image_grid(images: Tensor, *, n_cols: int = 16, low: float = -1.0, high: float = 1.0,
                    ax: plt.Axes | None = None, **imshow_kw) -> plt.Axes:
    """Small grey-scale images tiled in rows of ``n_cols``, one pixel of gap between tiles; returns the Axes.

    Dark is ink: the value ``high`` is drawn black and ``low`` white (the digits' convention);
    values outside [low, high] are shown as the nearest end, and the gaps are drawn white.

    Args:
        images: shape (n, 1, h, w) or (n, h, w).
        n_cols: tiles per row; the last row is padded with blank tiles.
        low, high: the pixel values drawn white and black.
        ax: where to draw (default: the current Axes).

    See chapter: "Training an energy on 8x8 digits" (chapters/digits.ipynb).
    """
    if not isinstance(images, Tensor) or images.dim() not in (3, 4) or (images.dim() == 4 and images.shape[1] != 1):
        raise ValueError(f"plot_image_grid expects images of shape (n, 1, h, w) or (n, h, w), "
                         f"got {getattr(images, 'shape', type(images))}")
    count(n_cols, "n_cols")
    if not low < high:
        raise ValueError(f"need low < high, got low={low}, high={high}")
    x = images.detach().cpu().float().reshape(images.shape[0], images.shape[-2], images.shape[-1])
    n, h, w = x.shape
    n_rows = -(-n // n_cols)
    canvas = torch.full((n_rows * (h + 1) + 1, n_cols * (w + 1) + 1), low)     # gaps stay white
    for i in range(n):
        r, c = divmod(i, n_cols)
        canvas[1 + r * (h + 1): 1 + r * (h + 1) + h, 1 + c * (w + 1): 1 + c * (w + 1) + w] = x[i]
    ax = ax or plt.gca()
    imshow_kw.setdefault("cmap", "gray_r")
    ax.imshow(canvas.clamp(low, high).numpy(), vmin=low, vmax=high, interpolation="nearest", **imshow_kw)
    ax.set(xticks=[], yticks=[])
    ax.spines[:].set_visible(False)
    return ax

"""How many plots a displayed figure holds, told by the kernel next to the figure's image.

A notebook's outputs only carry the PNG of a matplotlib figure, so a figure with a loss and an
accuracy subplot would look like one plot. Before the student's cells run, ``install`` adds an
IPython display formatter: whenever a matplotlib figure is displayed (``plt.show()``, the inline
backend at the end of a cell, or a figure as a cell's last expression), its output also carries
``PLOTS_MIME: {"plots": N}``. The runner reads it (``notebook.cell_record``).

How a figure counts (``plots_in``):

* each subplot (Axes) that plots data (lines, markers, bars, filled areas, meshes such as a
  heatmap) counts one;
* a figure's images (``imshow``: a grid of sample images or filters) count one together, as
  they show one thing;
* colorbars are part of the plot they explain, and twin axes (``ax.twinx()``) are one plot;
* a figure shown as an image with none of the above (only text, say) still counts one.

Any other image output (``IPython.display.Image``, a PIL image) counts one in the runner.
Counts come from the student's process, like every output of it: they decide a structural
requirement of the ``notebook`` check only.
"""

from __future__ import annotations

import sys
from typing import Any

PLOTS_MIME = "application/vnd.grader.plots+json"
MAX_PLOTS = 100  # per figure; a bigger number in an output is not believed


def plots_in(figure: Any) -> int:
    """The plots ``figure`` (a ``matplotlib.figure.Figure``) holds, by the rules above; at least one."""
    data_axes, has_images, seen = 0, False, set()
    for ax in figure.get_axes():
        if _is_colorbar(ax) or id(ax) in seen:
            continue
        group = _twins(ax)
        seen.update(id(a) for a in group)
        if any(a.lines or a.collections or a.patches for a in group):
            data_axes += 1
        elif any(a.images for a in group):
            has_images = True
    return min(MAX_PLOTS, max(1, data_axes + has_images))


def _is_colorbar(ax: Any) -> bool:
    return getattr(ax, "_colorbar", None) is not None or ax.get_label() == "<colorbar>"


def _twins(ax: Any) -> list[Any]:
    """``ax`` and the axes twinned with it (sharing its place in the figure)."""
    grouper = getattr(ax, "_twinned_axes", None)
    try:
        return list(grouper.get_siblings(ax)) if grouper is not None else [ax]
    except Exception:  # noqa: BLE001 - a private matplotlib API: without it each axes counts alone
        return [ax]


def install() -> bool:
    """Register the formatter in the running IPython kernel; False outside IPython.

    The formatter recognises figures itself rather than through IPython's per-type registry:
    matplotlib's inline backend clears every formatter's entry for ``Figure`` when pyplot is
    first imported, which would silently undo a registration made before the student's cells."""
    try:
        from IPython import get_ipython
        from IPython.core.formatters import JSONFormatter
        from traitlets import Unicode
    except ImportError:
        return False
    shell = get_ipython()
    if shell is None:
        return False

    class PlotsFormatter(JSONFormatter):
        format_type = Unicode(PLOTS_MIME)

        def __call__(self, obj: Any) -> dict[str, int] | None:
            figure_module = sys.modules.get("matplotlib.figure")
            if figure_module is None or not isinstance(obj, figure_module.Figure):
                return None
            try:
                return {"plots": plots_in(obj)}
            except Exception:  # noqa: BLE001 - never disturb the student's output; the runner counts one
                return None

    shell.display_formatter.formatters[PLOTS_MIME] = PlotsFormatter(parent=shell.display_formatter)
    return True


def plots_of_output(data: dict[str, Any]) -> int:
    """Plots in one output's data: the kernel's count for a matplotlib figure, else one per image."""
    told = data.get(PLOTS_MIME)
    plots = told.get("plots") if isinstance(told, dict) else None
    if isinstance(plots, int) and not isinstance(plots, bool) and 1 <= plots <= MAX_PLOTS:
        return plots
    return 1

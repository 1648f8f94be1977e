"""Pictures -> a terminal plot (uniplot) or a file (matplotlib). The only module that draws.

What to draw comes from ``figures.py``; here each series gets its look from its role.
Neither library is imported until a picture is drawn, so no other run pays for them.
Files are written atomically: a temporary file in the target's directory, then
``os.replace``; a failure leaves no file behind.
"""

from __future__ import annotations

import contextlib
import os
import re
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import numpy as np

from ..errors import PlotFileError
from .pictures import Landscape, Panel, Picture, Series

FORMATS = {".png": "png", ".svg": "svg", ".pdf": "pdf"}


@dataclass(frozen=True)
class Look:
    char: str  # the terminal character, which keeps series apart without colour
    term_color: str  # an ANSI colour name, for the terminal when colour is allowed
    color: str  # a matplotlib colour, for files
    marker: str = ""  # a matplotlib marker for marks; "" draws a line


LOOKS = {
    "curve": Look(".", "blue", "#1f5fa8"),
    "tangent": Look(":", "cyan", "#7a7a7a"),
    "path": Look("*", "magenta", "#d62728", "o"),
    "start": Look("o", "green", "#2ca02c", "s"),
    "end": Look("X", "red", "#000000", "X"),
    "point": Look("o", "red", "#d62728", "o"),
    "data": Look("o", "green", "#2ca02c", "o"),
    "zero": Look("-", "white", "#7a7a7a"),
}
DERIVATIVE_LOOKS = [  # f', f'', ...
    Look("+", "magenta", "#d62728"),
    Look("x", "green", "#2ca02c"),
    Look("~", "yellow", "#9467bd"),
    Look("=", "cyan", "#ff7f0e"),
    Look("#", "red", "#8c564b"),
    Look("%", "blue", "#e377c2"),
    Look("&", "magenta", "#17becf"),
    Look("$", "green", "#bcbd22"),
]
BASIN_LOOKS = [  # basins, best first: the digit is the basin's number in the table
    Look(str(k + 1), t, m, "o")
    for k, (t, m) in enumerate(
        zip(
            ["red", "green", "yellow", "cyan", "magenta", "blue", "red", "green", "yellow"],
            ["#ff7f00", "#ffff33", "#4daf4a", "#f781bf", "#a65628", "#984ea3", "#377eb8", "#999999", "#17becf"],
            strict=True,
        )
    )
]
OTHER_BASINS = Look("#", "white", "#dddddd", "o")
LEVEL_LOOK = Look(".", "blue", "")
INFEASIBLE_LOOK = Look(":", "white", "#000000")  # the infeasible part: grey hatching in a file
BOUNDARY_LOOKS = [  # one per constraint: its curve lhs = rhs
    Look("#", "yellow", "#ffd92f"),
    Look("%", "cyan", "#e78ac3"),
    Look("&", "red", "#fc8d62"),
    Look("=", "green", "#a6d854"),
    Look("@", "magenta", "#8da0cb"),
]


# ---------------------------------------------------------------- terminal


def terminal(picture: Picture, width: int, color: bool) -> str:
    """The picture as text ``width`` columns wide; ANSI colours only when ``color``."""
    if not picture.panels:
        return f"{picture.title}: {picture.note}\n"
    return "\n\n".join(_terminal_panel(panel, width, color) for panel in picture.panels) + "\n"


def _terminal_panel(panel: Panel | Landscape, width: int, color: bool) -> str:
    from uniplot import plot_to_string

    series = list(panel.series)
    looks = _looks(series)
    xs = [s.x for s in series]
    ys = [s.y for s in series]
    options: dict[str, Any] = {}
    ylim: tuple[float, float] | None
    if isinstance(panel, Landscape):
        lx, ly = contour_points(panel)
        xs, ys, looks = [lx, *xs], [ly, *ys], [LEVEL_LOOK, *looks]
        labels = ["levels of f", *(s.label for s in series)]
        joined = [False, *(s.joined for s in series)]
        if panel.infeasible is not None:  # under the marks: shading first, then each constraint's curve
            region = [(*shade_points(panel), INFEASIBLE_LOOK, "infeasible")]
            for k, (text, g) in enumerate(panel.boundaries):
                region.append((*zero_points(panel.x, panel.y, g), BOUNDARY_LOOKS[k % len(BOUNDARY_LOOKS)], text))
            xs = [xs[0], *(r[0] for r in region), *xs[1:]]
            ys = [ys[0], *(r[1] for r in region), *ys[1:]]
            looks = [looks[0], *(r[2] for r in region), *looks[1:]]
            labels = [labels[0], *(r[3] for r in region), *labels[1:]]
            joined = [joined[0], *(False for _ in region), *joined[1:]]
        xlim, ylim = panel.xlim, panel.ylim
        height = max(10, min(24, width // 3))
        title = f"{panel.title}   ({panel.xlabel} across, {panel.ylabel} up)"
    else:
        labels = [s.label for s in series]
        joined = [s.joined for s in series]
        xlim, ylim = panel.xlim, panel.ylim
        height = max(8, round(panel.height * min(20, width // 4)))
        title = panel.title if not panel.log_y else f"{panel.title}: {panel.ylabel}, log scale"
        if panel.log_y:
            options.update(y_as_log=True, x_gridlines=[], y_gridlines=[])
    if ylim is not None and not panel_log(panel):
        options.update(y_min=ylim[0], y_max=ylim[1])
    keep = [i for i, y in enumerate(ys) if np.isfinite(np.asarray(y, dtype=float)).any()]
    text = plot_to_string(
        [np.asarray(ys[i], dtype=float) for i in keep],
        [np.asarray(xs[i], dtype=float) for i in keep],
        width=max(20, width - 14),
        height=height,
        line_length_hard_cap=width,
        title=_fit(title, width),
        legend_labels=[labels[i] for i in keep],
        lines=[joined[i] for i in keep],
        character_set="ascii",
        force_ascii_characters=[looks[i].char for i in keep],
        color=[looks[i].term_color for i in keep] if color else False,
        x_min=xlim[0],
        x_max=xlim[1],
        **options,
    )
    return "\n".join(_no_minus_zero(line.rstrip()) for line in text.splitlines())


_MINUS_ZERO = re.compile(r"(?<![\w.])-(0(?:[.,]0+)?)(?![\w.])")


def _no_minus_zero(line: str) -> str:
    """An axis label of -0.0 (a tick at 0 computed as -1e-17) written as 0.0, in the same
    width: on the axis lines only, which hold nothing but numbers."""
    frame = line.rfind("\u2502")  # a y label follows the frame's right edge
    if frame >= 0:
        return line[: frame + 1] + _MINUS_ZERO.sub(r" \1", line[frame + 1 :])
    if line.strip() and all(c in "0123456789.,-+e " for c in line):  # the x labels under the frame
        return _MINUS_ZERO.sub(r" \1", line)
    return line


def panel_log(panel: Panel | Landscape) -> bool:
    return isinstance(panel, Panel) and panel.log_y


def contour_points(landscape: Landscape) -> tuple[np.ndarray, np.ndarray]:
    """Where f crosses a level between neighbouring grid points: the level lines, as dots."""
    z, gx, gy = landscape.z, landscape.x, landscape.y
    px: list[np.ndarray] = []
    py: list[np.ndarray] = []
    for level in landscape.levels[1::2]:  # every other level: a terminal cell is coarse
        above = z > level
        across = above[:, 1:] != above[:, :-1]  # between columns j and j+1
        rows, cols = np.nonzero(across & np.isfinite(z[:, 1:]) & np.isfinite(z[:, :-1]))
        t = (level - z[rows, cols]) / (z[rows, cols + 1] - z[rows, cols])
        px.append(gx[cols] + t * (gx[cols + 1] - gx[cols]))
        py.append(gy[rows])
        down = above[1:, :] != above[:-1, :]  # between rows i and i+1
        rows, cols = np.nonzero(down & np.isfinite(z[1:, :]) & np.isfinite(z[:-1, :]))
        t = (level - z[rows, cols]) / (z[rows + 1, cols] - z[rows, cols])
        px.append(gx[cols])
        py.append(gy[rows] + t * (gy[rows + 1] - gy[rows]))
    if not px:
        return np.array([]), np.array([])
    return np.concatenate(px), np.concatenate(py)


def shade_points(landscape: Landscape, every: int = 8) -> tuple[np.ndarray, np.ndarray]:
    """Every ``every``-th grid point where a constraint or bound fails: the infeasible part, dotted."""
    assert landscape.infeasible is not None
    mask = np.zeros_like(landscape.infeasible)
    mask[::every, ::every] = True
    rows, cols = np.nonzero(mask & landscape.infeasible)
    return landscape.x[cols], landscape.y[rows]


def zero_points(gx: np.ndarray, gy: np.ndarray, g: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Where g changes sign between neighbouring grid points: the curve g = 0, as dots."""
    px, py = [], []
    with np.errstate(invalid="ignore", divide="ignore"):
        above = g > 0
        ok = np.isfinite(g)
        rows, cols = np.nonzero((above[:, 1:] != above[:, :-1]) & ok[:, 1:] & ok[:, :-1])
        t = g[rows, cols] / (g[rows, cols] - g[rows, cols + 1])
        px.append(gx[cols] + t * (gx[cols + 1] - gx[cols]))
        py.append(gy[rows])
        rows, cols = np.nonzero((above[1:, :] != above[:-1, :]) & ok[1:, :] & ok[:-1, :])
        t = g[rows, cols] / (g[rows, cols] - g[rows + 1, cols])
        px.append(gx[cols])
        py.append(gy[rows] + t * (gy[rows + 1] - gy[rows]))
    return np.concatenate(px), np.concatenate(py)


def _looks(series: list[Series]) -> list[Look]:
    out, k = [], 0
    for s in series:
        if s.role == "derivative":
            out.append(DERIVATIVE_LOOKS[k % len(DERIVATIVE_LOOKS)])
            k += 1
        elif s.role == "basin":
            out.append(BASIN_LOOKS[s.group] if s.group < len(BASIN_LOOKS) else OTHER_BASINS)
        else:
            out.append(LOOKS[s.role])
    return out


def _fit(text: str, width: int) -> str:
    return text if len(text) <= width else text[: width - 3] + "..."


# ---------------------------------------------------------------- files


def check_file(path: str) -> str:
    """The format for ``path``, or a PlotFileError before any work is done.

    Checks the extension, that the directory exists and that we may create a file in it,
    and that ``path`` is not a directory.
    """
    ext = os.path.splitext(path)[1].lower()
    if ext not in FORMATS:
        shown = repr(ext) if ext else "none"
        raise PlotFileError(f"--plot-file: unknown extension {shown} in {path!r}; use .png, .svg or .pdf")
    folder = os.path.dirname(os.path.abspath(path))
    if not os.path.isdir(folder):
        raise PlotFileError(f"--plot-file: directory {os.path.dirname(path) or '.'!r} does not exist")
    if os.path.isdir(path):
        raise PlotFileError(f"--plot-file: {path!r} is a directory")
    if not os.access(folder, os.W_OK | os.X_OK):
        raise PlotFileError(f"--plot-file: no permission to create a file in {os.path.dirname(path) or '.'!r}")
    return FORMATS[ext]


def write_file(picture: Picture, path: str) -> None:
    """Draw the picture with matplotlib and write it to ``path``, atomically."""
    fmt = check_file(path)
    figure = draw(picture)
    with atomic(path) as handle:
        figure.savefig(handle, format=fmt, metadata=_METADATA[fmt])


_METADATA: dict[str, dict[str, Any]] = {  # no dates, so the same picture gives the same file
    "png": {"Software": None},
    "svg": {"Date": None},
    "pdf": {"CreationDate": None, "ModDate": None},
}


@contextlib.contextmanager
def atomic(path: str) -> Iterator[Any]:
    """A binary file to write; it becomes ``path`` only if the block finishes.

    The temporary file is created next to ``path`` (so the rename stays on one file
    system), exclusively and unreadable to others; it gets the usual mode (0666 less the
    umask) just before ``os.replace`` puts it in place. On any failure it is removed.
    """
    folder = os.path.dirname(os.path.abspath(path))
    try:
        fd, tmp = tempfile.mkstemp(dir=folder, prefix=".autodiff-", suffix=".part")
    except OSError as err:
        raise PlotFileError(f"--plot-file: cannot write {path!r}: {err.strerror or err}") from None
    try:
        with os.fdopen(fd, "wb") as handle:
            yield handle
            handle.flush()
            os.fsync(handle.fileno())
        os.chmod(tmp, 0o666 & ~_umask())
        os.replace(tmp, path)
    except OSError as err:
        _remove(tmp)
        raise PlotFileError(f"--plot-file: cannot write {path!r}: {err.strerror or err}") from None
    except BaseException:
        _remove(tmp)
        raise


def _umask() -> int:
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def _remove(path: str) -> None:
    with contextlib.suppress(OSError):
        os.unlink(path)


def draw(picture: Picture) -> Any:
    """A ``matplotlib.figure.Figure`` of the picture: panels stacked, no pyplot, no GUI."""
    import logging

    # matplotlib logs notices such as "building the font cache" (a fresh machine's first
    # run) on stderr; autodiff's stderr carries only its own messages
    logging.getLogger("matplotlib").setLevel(logging.ERROR)
    from matplotlib.figure import Figure

    if not picture.panels:
        figure = Figure(figsize=(7.5, 2.0), layout="constrained", dpi=110)
        figure.suptitle(picture.title)
        figure.text(0.5, 0.4, picture.note, ha="center", va="center")
        return figure
    heights = [p.height if isinstance(p, Panel) else 1.0 for p in picture.panels]
    figure = Figure(figsize=(7.5, 2.2 + 3.6 * sum(heights)), layout="constrained", dpi=110)
    axes = figure.subplots(len(picture.panels), 1, squeeze=False, height_ratios=heights)[:, 0]
    figure.suptitle(picture.title)
    for ax, panel in zip(axes, picture.panels, strict=True):
        if isinstance(panel, Landscape):
            _draw_landscape(ax, panel, figure)
        else:
            _draw_panel(ax, panel)
    return figure


def _draw_panel(ax: Any, panel: Panel) -> None:
    for s, look in zip(panel.series, _looks(list(panel.series)), strict=True):
        _draw_series(ax, s, look)
    ax.set_title(panel.title)
    ax.set_xlabel(panel.xlabel)
    ax.set_ylabel(panel.ylabel)
    ax.set_xlim(*panel.xlim)
    if panel.log_y:
        ax.set_yscale("log")
    elif panel.ylim is not None:
        ax.set_ylim(*panel.ylim)
    ax.grid(True, alpha=0.3)
    if any(s.label for s in panel.series):
        ax.legend(loc="best", fontsize="small")


def _draw_landscape(ax: Any, panel: Landscape, figure: Any) -> None:
    z = np.ma.masked_invalid(panel.z)
    if len(panel.levels) >= 2:
        filled = ax.contourf(
            panel.x, panel.y, z, levels=[float(np.nanmin(panel.z)), *panel.levels], cmap="viridis", extend="max"
        )
        ax.contour(panel.x, panel.y, z, levels=panel.levels, colors="white", linewidths=0.5, alpha=0.6)
        figure.colorbar(filled, ax=ax, label="f")
    extra = _draw_region(ax, panel) if panel.infeasible is not None else []
    for s, look in zip(panel.series, _looks(list(panel.series)), strict=True):
        _draw_series(ax, s, look, on_map=True)
    ax.set_title(panel.title)
    ax.set_xlabel(panel.xlabel)
    ax.set_ylabel(panel.ylabel)
    ax.set_xlim(*panel.xlim)
    ax.set_ylim(*panel.ylim)
    handles, _ = ax.get_legend_handles_labels()
    handles += extra
    ax.legend(handles=handles, loc="upper center", bbox_to_anchor=(0.5, -0.12), ncol=2, fontsize="small")  # below


def _draw_region(ax: Any, panel: Landscape) -> list[Any]:
    """The infeasible part greyed and hatched, each constraint's curve lhs = rhs drawn; their legend entries."""
    from matplotlib.lines import Line2D
    from matplotlib.patches import Patch

    assert panel.infeasible is not None
    handles: list[Any] = []
    if panel.infeasible.any():
        shade = np.where(panel.infeasible, 1.0, np.nan)
        ax.contourf(panel.x, panel.y, shade, levels=[0.5, 1.5], colors=["#404040"], alpha=0.55, hatches=["///"])
        handles.append(Patch(facecolor="#404040", alpha=0.55, hatch="///", label="infeasible"))
    for k, (text, g) in enumerate(panel.boundaries):
        look = BOUNDARY_LOOKS[k % len(BOUNDARY_LOOKS)]
        z = np.ma.masked_invalid(g)
        if np.nanmin(g) < 0 < np.nanmax(g):
            ax.contour(panel.x, panel.y, z, levels=[0.0], colors=[look.color], linewidths=2.0)
        handles.append(Line2D([], [], color=look.color, linewidth=2.0, label=text))
    return handles


def _draw_series(ax: Any, s: Series, look: Look, on_map: bool = False) -> None:
    color = look.color
    if on_map and s.role == "path":
        color = "#ff4040"
    if on_map and s.role == "end":
        color = "white"
    if s.role == "data":
        ax.plot(s.x, s.y, linestyle="none", marker="o", markersize=3.5, color=color, label=s.label, zorder=4)
        return
    if s.role == "zero":
        ax.plot(s.x, s.y, "--", color=color, linewidth=0.8)
        return
    if s.joined and s.role != "path":
        style = "--" if s.role == "tangent" else "-"
        ax.plot(s.x, s.y, style, color=color, label=s.label, linewidth=1.0 if s.role == "tangent" else 1.6)
    elif s.role == "path":
        dots = 3 if len(s.x) <= 50 else 1.5
        ax.plot(s.x, s.y, "-", color=color, marker="o", markersize=dots, linewidth=1.2, label=s.label)
    else:
        edge = "black" if on_map else "white"
        ax.plot(
            s.x,
            s.y,
            linestyle="none",
            marker=look.marker,
            markersize=9,
            color=color,
            markeredgecolor=edge,
            label=s.label,
            zorder=5,
        )
    if s.role == "basin" and s.group < len(BASIN_LOOKS):  # its number in the basins table
        for x, y in zip(s.x, s.y, strict=True):
            ax.annotate(
                look.char, (x, y), xytext=(6, 6), textcoords="offset points", fontsize=9, fontweight="bold",
                color="white" if on_map else "black", zorder=6,
            )  # fmt: skip

"""Pictures for reports (matplotlib, Agg backend): where people would rather look than read.

Every function returns a :class:`Picture`: the PNG bytes and what the picture claims (the threshold of its colour
scale, the range of the values drawn, the pixel of every marked point and the colour the scale gives it there), so
that a test can decode the image and check that it agrees with the verdict. Nothing is shown on screen and no global
matplotlib state is left behind.

* :func:`norm_map`: a scalar field over a 2-D slice of the box on a dense grid: ||M(x)|| for M = A* or J (in a
  metric ||.||_P: ||T M T^-1||_2), the spectral radius of M(x), or the invariance violation V(x). With a threshold
  the colour map diverges at it (blue below, red above) and a contour line marks it; a box with more than two
  coordinates is cut through a stated point (the witness by default), and the grid contains that point exactly, so
  the colour at the witness is the value at the witness. Field values come from the batched kernels
  (:mod:`certify.ir.kernels`, through :func:`certify.engines.sampling.norms_at`).
* :func:`proven_boxes_map`: a k x k cut of the box into sub-boxes (along the two drawn coordinates, the others
  over their whole range), each coloured by whether a sound bound proves the check on it, its bound written in it.
* :func:`phase_portrait`: simulated trajectories x_{t+1} = f(x_t) from a grid of starts, equilibria and the
  P-ellipsoid of a region of attraction.
* :func:`eigenvalue_plot`: eigenvalues of the state part of A*(x) or J(x) at sampled points against the unit circle.
* :func:`bracket_plot`: the bracket [lower, upper] of a branch and bound against time, on the check's clock.
* :func:`factor_plot`: the factors of the Corollary 4 product against 1.
"""

from __future__ import annotations

import io
import json
import math
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING

import numpy as np

from ..certificate import json_number
from ..ir.box import Box
from ..ir.numerics import norm_label, spectral_radius
from ..ir.quantity import Quantity

if TYPE_CHECKING:  # annotations only: a report can be read and written without loading torch
    from ..ir.metric import Metric
    from ..ir.network import Network

DIVERGING = "RdBu_r"  # blue below the threshold, white at it, red above
SEQUENTIAL = "viridis"  # fields without a threshold (the gain)


@dataclass(frozen=True)
class Mark:
    """A point drawn on a picture: ``point`` in the picture's data coordinates, ``pixel`` (column, row) in the PNG
    (row 0 at the top), ``value`` the field there (maps only) and ``rgb`` the colour the map's scale gives it."""

    label: str
    point: tuple[float, float]
    pixel: tuple[int, int]
    value: float | None = None
    rgb: tuple[int, int, int] | None = None


@dataclass(frozen=True)
class Cell:
    """A sub-box of a proven-sub-box map: ``lower``/``upper`` (n_in,) its corners in the box's coordinates,
    ``bound`` a sound upper bound on the field over it, ``proven`` whether that bound is at or below the check's
    limit, ``pixel`` (column, row) of its centre in the PNG."""

    lower: tuple[float, ...]
    upper: tuple[float, ...]
    bound: float
    proven: bool
    pixel: tuple[int, int]


@dataclass(frozen=True)
class Picture:
    """One PNG and what it claims. ``kind``: "map", "trajectories", "eigenvalues", "bracket" or "factors";
    ``check``: the check it belongs to (None: the state space in general); ``threshold``: where the map's colour
    scale diverges (None: no threshold); ``value_range``: (min, max) of the values drawn; ``axes``: the plot area's
    pixel box (left, top, right, bottom); ``marks``: the points marked; ``span``: the time axis (bracket plots)."""

    caption: str
    png: bytes
    kind: str
    check: str | None = None
    threshold: float | None = None
    value_range: tuple[float, float] | None = None
    axes: tuple[int, int, int, int] | None = None
    marks: tuple[Mark, ...] = ()
    span: tuple[float, float] | None = None
    boxes: tuple[Cell, ...] = ()

    def claims(self) -> dict:
        """What the picture claims, as plain JSON types (also stored in the PNG as its ``certify`` text chunk:
        :func:`certify.report.picture_checks.read_claims` reads it back from an embedded image)."""
        return {"kind": self.kind, "check": self.check, "caption": self.caption, "threshold": self.threshold,
                "value_range": None if self.value_range is None else list(self.value_range),
                "axes": None if self.axes is None else list(self.axes),
                "marks": [{"label": m.label, "point": list(m.point), "pixel": list(m.pixel), "value": m.value,
                           "rgb": None if m.rgb is None else list(m.rgb)} for m in self.marks],
                "span": None if self.span is None else list(self.span),
                "boxes": [{"lower": list(c.lower), "upper": list(c.upper), "bound": c.bound, "proven": c.proven,
                           "pixel": list(c.pixel)} for c in self.boxes]}


@dataclass(frozen=True)
class Field:
    """The scalar field of a map. ``quantity``: A_STAR, JACOBIAN or VIOLATION; ``measure``: "norm" (the induced
    norm) or "radius" (the spectral radius); ``state_only``: the state columns (else all columns, as the gain);
    ``metric``: ||T M T^-1||_2 instead of ||M||_p; ``threshold``: the value the check compares with (None: none)."""

    quantity: Quantity
    norm: float = 2.0
    state_only: bool = True
    metric: Metric | None = None
    measure: str = "norm"
    threshold: float | None = 1.0

    @property
    def symbol(self) -> str:
        """The field's name as written on the picture: ||A*(x)||_2, ||T J(x) T^-1||_2, rho(A*(x)), V(x)."""
        if self.quantity is Quantity.VIOLATION:
            return "V(x)"
        m = f"{self.quantity.symbol}(x)"
        if self.measure == "radius":
            return f"spectral radius of {m}"
        if self.metric is not None and not self.metric.is_identity:
            return f"||T {self.quantity.symbol}(x) T^-1||_2"
        return f"||{m}||_{_p(self.norm)}"


# ============================================================================================ the field values
def field_values(net: Network, box: Box, pts: np.ndarray, field: Field) -> np.ndarray:
    """The field at the points ``pts`` (B, n_in): float64 values (B,)."""
    pts = np.asarray(pts, dtype=np.float64)
    if field.quantity is Quantity.VIOLATION:
        from ..engines.violation_search import violation  # deferred with the engines' imports (torch)

        return violation(net, box, pts)[0]
    import torch  # deferred on purpose: torch loads only when a report draws pictures

    from ..engines.sampling import matrices_at, norms_at
    from ..ir.kernels import TorchNet

    metric = field.metric if field.metric is not None and not field.metric.is_identity else None
    tnet = TorchNet.of(net, torch.float64, "cpu", metric)
    columns = net.n_states if field.state_only else net.n_in
    x = torch.from_numpy(np.ascontiguousarray(pts))
    out = []
    for chunk in torch.split(x, 1 << 14):
        with torch.no_grad():
            if field.measure == "radius":
                m = matrices_at(tnet, chunk, field.quantity, columns).numpy()
                out.append(np.max(np.abs(np.linalg.eigvals(m)), axis=-1))
            else:
                out.append(norms_at(tnet, chunk, field.quantity, field.norm, columns).numpy())
    return np.concatenate(out) if out else np.zeros(0)


def largest_sampled(net: Network, box: Box, field: Field, n: int = 4096, seed: int = 0) -> np.ndarray:
    """The point (n_in,) of the largest field value among the box's centre, its vertices (up to 10 coordinates)
    and ``n`` seeded uniform points."""
    rng = np.random.default_rng(seed)
    pts = [box.center[None], box.lower + (box.upper - box.lower) * rng.random((n, box.dim))]
    if box.dim <= 10:
        bits = ((np.arange(2**box.dim)[:, None] >> np.arange(box.dim)) & 1).astype(bool)
        pts.append(np.where(bits, box.upper, box.lower))
    pts = np.vstack(pts)
    return pts[int(np.argmax(field_values(net, box, pts, field)))]


# ============================================================================================ figures
def _figure(width=5.4, height=4.6, legend_rows: int = 1, colorbar: bool = False):
    """A figure with one axes and a fixed layout (room below for a legend of ``legend_rows`` rows, on the right
    for a colour bar): no layout engine, so one draw gives the PNG and the pixel positions agree with it."""
    import matplotlib  # deferred on purpose: matplotlib loads only when a report draws pictures

    matplotlib.use("Agg", force=False)
    from matplotlib.figure import Figure

    fig = Figure(figsize=(width, height), dpi=100)
    bottom = (0.62 + 0.2 * legend_rows) / height if legend_rows else 0.5 / height
    fig.subplots_adjust(left=0.78 / width, right=1 - (1.45 if colorbar else 0.25) / width, bottom=bottom,
                        top=1 - 0.35 / height)
    return fig, fig.add_subplot(1, 1, 1)


def _legend(fig, handles=None, ncol: int = 3) -> None:
    kwargs = {} if handles is None else {"handles": handles}
    fig.legend(loc="lower center", bbox_to_anchor=(0.5, 0.005), ncol=ncol, fontsize=8, frameon=False, **kwargs)


def strict_json(obj):
    """``obj`` with every float as a strict JSON value (non-finite: "inf", "-inf", "nan")."""
    if isinstance(obj, dict):
        return {k: strict_json(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [strict_json(v) for v in obj]
    if isinstance(obj, float):
        return json_number(obj)
    return obj


def _finish(fig, pic: Picture) -> Picture:
    """``pic`` with the figure's PNG, whose ``certify`` text chunk holds ``pic.claims()`` as strict JSON (the
    figure must be frozen already, :func:`_freeze`, so that the pixels the claims name are those of the PNG)."""
    buf = io.BytesIO()
    fig.savefig(buf, format="png", metadata={"certify": json.dumps(strict_json(pic.claims()), allow_nan=False)})
    return replace(pic, png=buf.getvalue())


def _freeze(fig) -> None:
    """Lay the figure out as its PNG will be (limits, aspect), so that data-to-pixel transforms are final."""
    fig.draw_without_rendering()


def _pixel(fig, ax, x: float, y: float) -> tuple[int, int]:
    """(column, row) of the data point (x, y) in the PNG of a frozen figure (row 0 at the top)."""
    dx, dy = ax.transData.transform((x, y))
    return int(math.floor(dx)), int(math.floor(fig.bbox.height - dy))


def _axes_box(fig, ax) -> tuple[int, int, int, int]:
    b = ax.get_window_extent()
    h = fig.bbox.height
    return int(math.ceil(b.x0)), int(math.ceil(h - b.y1)), int(math.floor(b.x1)), int(math.floor(h - b.y0))


def _plain_numbers(axis) -> None:
    """Tick labels as plain numbers: no offset ("1e-5+1.001") and no scientific multiplier above the axis."""
    from matplotlib.ticker import ScalarFormatter

    fmt = ScalarFormatter(useOffset=False)
    fmt.set_scientific(False)
    axis.set_major_formatter(fmt)


def _box_view(ax, box: Box, dims: tuple[int, int], pad: float = 0.0) -> None:
    """Show the face ``dims = (i, j)`` of ``box`` (widened by ``pad`` times its width on each side), with plain tick
    numbers and the two coordinates' names as the axis labels."""
    i, j = dims
    lo, hi = box.lower[[i, j]], box.upper[[i, j]]
    if pad:
        w = hi - lo
        lo, hi = lo - pad * w, hi + pad * w
    ax.set_xlim(lo[0], hi[0])
    ax.set_ylim(lo[1], hi[1])
    _plain_numbers(ax.xaxis)
    _plain_numbers(ax.yaxis)
    ax.set_xlabel(box.names[i])
    ax.set_ylabel(box.names[j])


def _labels(values) -> list[str]:
    """The shortest '%.Ng' labels (N <= 10) that tell the values apart."""
    for digits in range(3, 11):
        out = [f"{v:.{digits}g}" for v in values]
        if len(set(out)) == len(out):
            return out
    return [f"{v:.10g}" for v in values]


def _edges(centres: np.ndarray) -> np.ndarray:
    """Cell edges (n + 1,) around sorted centres (n,): halfway between neighbours, the ends at the end centres."""
    c = np.asarray(centres, dtype=np.float64)
    if c.size == 1:
        return np.array([c[0] - 0.5, c[0] + 0.5])
    mid = 0.5 * (c[1:] + c[:-1])
    return np.concatenate([[c[0]], mid, [c[-1]]])


def _grid_axis(lo: float, hi: float, n: int, keep) -> np.ndarray:
    """n points from lo to hi that contain every value of ``keep`` (marked points' coordinates), with no regular
    point within 3 spacings of one: the cell of a marked point is some 6 spacings wide (half that at the box's
    edge), so that its colour, the value at that point, shows under the mark's ring."""
    g = np.linspace(lo, hi, n)
    h = (hi - lo) / max(n - 1, 1)
    keep = np.asarray(list(keep), dtype=np.float64)
    if keep.size and h > 0:
        g = g[np.min(np.abs(g[:, None] - keep[None, :]), axis=1) > 3.0 * h]
    return np.unique(np.concatenate([g, keep]))


def _threshold_norm(lo: float, hi: float, thr: float):
    """A colour scale that diverges at the threshold with a jump: values below it take [0, 0.42] of the map (blue),
    values at or above it [0.58, 1] (red), so that no value at the threshold is drawn white and 'at or above' never
    looks like 'below'."""
    from matplotlib.colors import Normalize

    below, above = 0.42, 0.58

    class ThresholdNorm(Normalize):
        def __call__(self, value, clip=None):
            v = np.ma.asarray(value, dtype=np.float64)
            data = np.asarray(v.filled(np.nan))
            low = below * (data - self.vmin) / max(thr - self.vmin, 1e-300)
            high = above + (1 - above) * (data - thr) / max(self.vmax - thr, 1e-300)
            out = np.where(data >= thr, np.minimum(high, 1.0), np.clip(low, 0.0, below))
            out = np.ma.masked_invalid(out)
            return out[()] if np.ndim(value) == 0 else out

        def inverse(self, value):
            u = np.asarray(value, dtype=np.float64)
            low = self.vmin + u / below * (thr - self.vmin)
            high = thr + (u - above) / (1 - above) * (self.vmax - thr)
            return np.where(u >= above, high, np.where(u <= below, low, thr))

    return ThresholdNorm(vmin=min(lo, thr), vmax=max(hi, thr))


def slice_text(box: Box, dims: tuple[int, int], at: np.ndarray, where: str) -> str:
    """'' for a 2-coordinate box, else which coordinates are fixed and at what: 'slice h3 = 0.2, u = 1 (through
    the witness)'."""
    fixed = [k for k in range(box.dim) if k not in dims]
    if not fixed:
        return ""
    parts = [f"{box.names[k]} = {at[k]:.4g}" for k in fixed[:6]]
    if len(fixed) > 6:
        parts.append(f"... ({len(fixed)} fixed coordinates)")
    return f"slice {', '.join(parts)} ({where})"


def norm_map(
    net: Network,
    box: Box,
    field: Field,
    dims: tuple[int, int] = (0, 1),
    at: np.ndarray | None = None,
    where: str = "",
    marks: tuple[tuple[str, np.ndarray], ...] = (),
    equilibria: np.ndarray | None = None,
    check: str | None = None,
    title: str = "",
    curves: tuple[tuple[str, np.ndarray], ...] = (),
    n: int = 160,
) -> Picture:
    """A map of ``field`` over the 2-D slice ``dims`` of the box, the other coordinates fixed at ``at`` (default:
    the box's centre; ``where`` says what ``at`` is, for the caption). ``marks``: (label, point (n_in,)) drawn as
    rings, each on the slice's grid, so that the colour under a ring is the field's value at that point (the slice
    should pass through it: ``at`` = that point). ``equilibria``: (k, n_states) points drawn as stars; ``curves``:
    (label, (k, 2) points in the slice's coordinates) drawn as green lines (a region of attraction)."""
    from matplotlib.colors import Normalize
    from matplotlib.lines import Line2D
    from matplotlib.ticker import FixedFormatter, FixedLocator

    i, j = dims
    at = box.center.copy() if at is None else np.asarray(at, dtype=np.float64).copy()
    # every marked point on the grid (it lies in the slice when ``at`` is that point)
    gx = _grid_axis(box.lower[i], box.upper[i], n, [p[i] for _, p in marks])
    gy = _grid_axis(box.lower[j], box.upper[j], n, [p[j] for _, p in marks])
    xx, yy = np.meshgrid(gx, gy)
    pts = np.tile(at, (xx.size, 1))
    pts[:, i], pts[:, j] = xx.ravel(), yy.ravel()
    vals = field_values(net, box, pts, field).reshape(xx.shape)
    finite = vals[np.isfinite(vals)]
    lo, hi = (float(finite.min()), float(finite.max())) if finite.size else (0.0, 1.0)
    thr = field.threshold
    if thr is None:
        span = max(hi - lo, 1e-12 * max(1.0, abs(hi)))
        norm = Normalize(vmin=lo, vmax=lo + span)
        cmap = SEQUENTIAL
        ticks = list(np.linspace(lo, lo + span, 5))
    else:
        norm = _threshold_norm(lo, hi, thr)
        cmap = DIVERGING
        ticks = []  # the data's ends and the threshold (not the pad that keeps the scale's halves apart)
        if lo < thr:
            ticks += list(np.linspace(lo, thr, 4)[:-1])
        ticks.append(thr)
        if hi > thr:
            ticks += list(np.linspace(thr, hi, 3)[1:])
    fig, ax = _figure(colorbar=True)
    # cells centred on the grid points (edges halfway between them): the colour under a grid point is its value
    mesh = ax.pcolorfast(_edges(gx), _edges(gy), vals, cmap=cmap, norm=norm)
    handles = []
    if thr is not None and lo < thr < hi:
        ax.contour(xx, yy, vals, levels=[thr], colors="k", linewidths=1.2)
        handles.append(Line2D([], [], color="k", linewidth=1.2, label=f"{field.symbol} = {thr:g} (threshold)"))
    elif not net.piecewise_linear and hi > lo:  # smooth fields: a few thin level lines show the shape
        ax.contour(xx, yy, vals, levels=6, colors="0.35", linewidths=0.5)
    pos = ax.get_position()
    cbar = fig.colorbar(mesh, cax=fig.add_axes((pos.x1 + 0.03, pos.y0, 0.035, pos.height)))
    cbar.ax.yaxis.set_major_locator(FixedLocator(ticks))
    if thr is None:
        labels = _labels(ticks)
    else:  # each half of the scale with the digits it needs (1.0001 above the threshold, 0.83 below it)
        below, above = [t for t in ticks if t < thr], [t for t in ticks if t > thr]
        labels = _labels([*below, thr])[:-1] + [f"{thr:g}"] + _labels([thr, *above])[1:]
    cbar.ax.yaxis.set_major_formatter(FixedFormatter(labels))
    cbar.ax.yaxis.get_offset_text().set_visible(False)
    cbar.set_label(field.symbol + ("" if thr is None else f"  (threshold {thr:g})"))
    for label, p in marks:
        (h,) = ax.plot(p[i], p[j], "o", mfc="none", mec="k", ms=13, mew=2.0, clip_on=False, zorder=6,
                       label=label)
        ax.plot(p[i], p[j], "o", mfc="none", mec="w", ms=17, mew=1.0, clip_on=False, zorder=6)
        handles.append(h)
    for label, c in curves:
        (h,) = ax.plot(c[:, 0], c[:, 1], "-", color="tab:green", linewidth=2.0, label=label)
        handles.append(h)
    if equilibria is not None and len(equilibria):
        eq = np.atleast_2d(equilibria)
        if max(i, j) < eq.shape[1]:
            (h,) = ax.plot(eq[:, i], eq[:, j], "*", color="w", mec="k", ms=13, clip_on=False, zorder=7,
                           label="equilibria" if len(eq) > 1 else "equilibrium")
            handles.append(h)
    _box_view(ax, box, (i, j))
    ax.set_title(title or f"{field.symbol} over the box", fontsize=10)
    if handles:
        _legend(fig, handles, ncol=min(3, len(handles)))
    _freeze(fig)
    cmap_obj = mesh.get_cmap()
    drawn = []
    for label, p in marks:
        k, m = int(np.searchsorted(gy, p[j])), int(np.searchsorted(gx, p[i]))
        v = float(vals[k, m])
        rgb = tuple(int(round(255 * c)) for c in cmap_obj(norm(v))[:3]) if math.isfinite(v) else None
        drawn.append(Mark(label, (float(p[i]), float(p[j])), _pixel(fig, ax, p[i], p[j]), v, rgb))
    caption = title or f"{field.symbol} over the box"
    cut = slice_text(box, dims, at, where or "the box's centre")
    if cut:
        caption += f"; {cut}"
    return _finish(fig, Picture(caption, b"", "map", check, thr, (lo, hi), _axes_box(fig, ax), tuple(drawn)))


PROVEN_FACE, OPEN_FACE = "#9ecae1", "#e6e6e6"  # a proven sub-box (light blue: below the limit), one not proven


def grid_cells(box: Box, dims: tuple[int, int], k: int) -> tuple[np.ndarray, np.ndarray]:
    """The k x k sub-boxes that cut the box along the coordinates ``dims`` into equal cells, every other coordinate
    over its whole range: (lower (k*k, n_in), upper (k*k, n_in)), row-major in (dims[1], dims[0])."""
    i, j = dims
    ex, ey = np.linspace(box.lower[i], box.upper[i], k + 1), np.linspace(box.lower[j], box.upper[j], k + 1)
    ex[-1], ey[-1] = box.upper[i], box.upper[j]  # the cells cover the box exactly, to the last bit
    lo, hi = np.tile(box.lower, (k * k, 1)), np.tile(box.upper, (k * k, 1))
    b, a = np.divmod(np.arange(k * k), k)
    lo[:, i], hi[:, i], lo[:, j], hi[:, j] = ex[a], ex[a + 1], ey[b], ey[b + 1]
    return lo, hi


def cell_bounds(net: Network, box: Box, field: Field, lo: np.ndarray, hi: np.ndarray, kinds) -> np.ndarray:
    """A sound upper bound (B,) on sup ``field`` over each sub-box lo/hi (B, n_in): the smallest of the sub-box
    search's cheap bounds ``kinds`` (:func:`certify.bounds.norm_bounds.box_bounds`; NaN, an overflow, as inf)."""
    from ..bounds.norm_bounds import SupNormBounder, box_bounds  # deferred with the pictures' other imports

    bounder = SupNormBounder.of(net, box, field.norm, field.quantity, field.state_only, field.metric)
    parts = [box_bounds(bounder, lo[s: s + 64], hi[s: s + 64], kinds) for s in range(0, lo.shape[0], 64)]
    stacked = np.stack([np.concatenate([b[kind] for b in parts]) for kind in kinds])
    return np.min(np.where(np.isnan(stacked), np.inf, stacked), axis=0)


def bound_label(v: float, limit: float) -> str:
    """An upper bound as written in its cell: rounded up (an upper bound stays one), with the fewest digits (3 to
    12) that keep it on its side of ``limit`` (a proven 0.9999995 is not written as 1, an unproven 1.0004 not as 1)."""
    if not math.isfinite(v) or v == 0.0:
        return _labels([v])[0]
    for digits in range(3, 13):
        text = f"{v:.{digits - 1}e}"
        shown = float(text)
        if shown < v:  # one unit up in the last digit shown
            shown = float(f"{shown + 10.0 ** (int(text.split('e')[1]) - digits + 1):.{digits - 1}e}")
        if shown >= v and (shown <= limit) == (v <= limit):
            return f"{shown:.{digits}g}"
    return f"{v:.17g}"  # exact (round trip)


def proven_boxes_map(net: Network, box: Box, field: Field, limit: float, kinds, dims: tuple[int, int] = (0, 1),
                     k: int = 8, marks: tuple[tuple[str, np.ndarray], ...] = (), check: str | None = None,
                     searched: float | None = None) -> Picture:
    """Which sub-boxes of a k x k cut of the box (:func:`grid_cells`) a sound bound proves: cells whose bound on
    sup ``field`` (:func:`cell_bounds`) is <= ``limit`` (the check's 1 - margin) in light blue, the others grey and
    hatched, each with its bound written in it. A cell is a full sub-box of X (not a slice), so a blue cell is a
    proven statement about every point of it. ``marks``: (label, point (n_in,)) rings; ``searched``: the share of
    the volume the check's own search proved, for the caption."""
    from matplotlib.patches import Patch, Rectangle

    i, j = dims
    lo, hi = grid_cells(box, dims, k)
    bounds = cell_bounds(net, box, field, lo, hi, kinds)
    proven = bounds <= limit
    fig, ax = _figure(5.4, 5.0, legend_rows=2)
    for c in range(k * k):
        ax.add_patch(Rectangle((lo[c, i], lo[c, j]), hi[c, i] - lo[c, i], hi[c, j] - lo[c, j],
                               facecolor=PROVEN_FACE if proven[c] else OPEN_FACE, edgecolor="white",
                               hatch=None if proven[c] else "//", linewidth=1.0))
        if k <= 10:
            ax.text(0.5 * (lo[c, i] + hi[c, i]), 0.5 * (lo[c, j] + hi[c, j]), bound_label(bounds[c], limit),
                    ha="center", va="center", fontsize=6, color="k" if proven[c] else "0.35")
    handles = [Patch(facecolor=PROVEN_FACE, label=f"proven: sup {field.symbol} <= {limit:.8g} on the sub-box"),
               Patch(facecolor=OPEN_FACE, hatch="//", label="not proven by this bound")]
    at_marks = [float(v) for v in field_values(net, box, np.array([p for _, p in marks]), field)] if marks else []
    for (label, p), v in zip(marks, at_marks):
        (h,) = ax.plot(p[i], p[j], "o", mfc="none", mec="tab:red", ms=12, mew=2.0, clip_on=False, zorder=6,
                       label=f"{label} ({field.symbol} = {_labels([v])[0]})")
        handles.append(h)
    _box_view(ax, box, (i, j))
    ax.set_title(f"{check or 'check'}: sub-boxes proven below the threshold ({int(proven.sum())}/{k * k})",
                 fontsize=10)
    _legend(fig, handles, ncol=1)
    _freeze(fig)
    share = float(proven.sum()) / (k * k)  # equal cells: the share of cells is the share of the volume
    others = [box.names[m] for m in range(box.dim) if m not in dims]
    caption = (f"a {k} x {k} cut of the box along {box.names[i]} and {box.names[j]}"
               + (f" (every other coordinate, {', '.join(others[:4])}{', ...' if len(others) > 4 else ''}, over its "
                  f"whole range)" if others else "")
               + f"; each number is a sound upper bound on sup {field.symbol} over that sub-box; "
               f"{int(proven.sum())} of {k * k} sub-boxes ({100 * share:.3g}% of the volume) proven <= {limit:.8g}")
    if searched is not None:
        caption += f"; the check's own search proved {100 * searched:.3g}% of the volume before it stopped"
    cells = tuple(Cell(tuple(map(float, lo[c])), tuple(map(float, hi[c])), float(bounds[c]), bool(proven[c]),
                       _pixel(fig, ax, 0.5 * (lo[c, i] + hi[c, i]), 0.5 * (lo[c, j] + hi[c, j])))
                  for c in range(k * k))
    drawn = tuple(Mark(label, (float(p[i]), float(p[j])), _pixel(fig, ax, p[i], p[j]), v)
                  for (label, p), v in zip(marks, at_marks))
    return _finish(fig, Picture(caption, b"", "boxes", check, limit, (float(bounds.min()), float(bounds.max())),
                                _axes_box(fig, ax), drawn, boxes=cells))


def simulate(net: Network, starts: np.ndarray, steps: int, inputs: np.ndarray | None = None) -> np.ndarray:
    """Trajectories (B, steps + 1, n_states) of x+ = f(x, u) from starts (B, n_states), u fixed per trajectory."""
    traj = [starts]
    x = starts
    for _ in range(steps):
        full = x if inputs is None else np.hstack([x, inputs])
        x = net.forward(full)
        traj.append(x)
    return np.stack(traj, axis=1)


def ellipse_points(center: np.ndarray, p: np.ndarray, radius: float, dims: tuple[int, int],
                   k: int = 240) -> np.ndarray:
    """(k, 2) points of the slice {x : x_other = center_other, (x - c)^T P (x - c) = r^2} in the coordinates
    ``dims``: with P_2 the 2x2 principal block of P and P_2 = C^T C, the curve c + r C^-1 (cos t, sin t)."""
    i, j = dims
    block = np.asarray(p, dtype=np.float64)[np.ix_([i, j], [i, j])]
    c = np.linalg.cholesky(block).T
    t = np.linspace(0.0, 2.0 * np.pi, k)
    d = radius * np.linalg.solve(c, np.vstack([np.cos(t), np.sin(t)]))
    return np.asarray(center, dtype=np.float64)[[i, j]][None] + d.T


def ball_points(center: np.ndarray, p: float, radius: float, dims: tuple[int, int]) -> np.ndarray:
    """(5, 2) corners (closed) of the slice {x : x_other = center_other, ||x - c||_p = r} in the coordinates
    ``dims``, for p = 1 (a diamond) or inf (a square)."""
    i, j = dims
    c = np.asarray(center, dtype=np.float64)[[i, j]]
    unit = np.array([[1, 0], [0, 1], [-1, 0], [0, -1], [1, 0]], dtype=np.float64) if p == 1.0 else \
        np.array([[1, 1], [-1, 1], [-1, -1], [1, -1], [1, 1]], dtype=np.float64)
    return c[None] + radius * unit


def phase_portrait(net: Network, box: Box, dims: tuple[int, int] = (0, 1), steps: int = 40, grid: int = 7,
                   at: np.ndarray | None = None, equilibria: np.ndarray | None = None,
                   ellipsoid: tuple[np.ndarray, np.ndarray, float] | None = None, start_set_is_box: bool = False,
                   check: str | None = None, ball: tuple[np.ndarray, float, float] | None = None) -> Picture:
    """Trajectories from a grid of starts in the slice ``dims`` of the box (other states and exogenous inputs held
    at ``at``, default the box's centre). ``ellipsoid``: (x_bar, P, r), the set {||x - x_bar||_P <= r} drawn (its
    slice through x_bar for more than 2 states); ``ball``: (x_bar, p, r), the set {||x - x_bar||_p <= r} of the 1- or
    inf-norm, drawn the same way; ``start_set_is_box``: the whole box is the certified set."""
    from matplotlib.lines import Line2D

    ns = net.n_states
    i, j = dims
    at = box.center.copy() if at is None else np.asarray(at, dtype=np.float64).copy()
    gx, gy = np.linspace(box.lower[i], box.upper[i], grid), np.linspace(box.lower[j], box.upper[j], grid)
    xx, yy = np.meshgrid(gx, gy)
    pts = np.tile(at, (xx.size, 1))
    pts[:, i], pts[:, j] = xx.ravel(), yy.ravel()
    traj = simulate(net, pts[:, :ns], steps, pts[:, ns:] if net.n_inputs else None)
    fig, ax = _figure(5.4, 5.0, legend_rows=2)
    ax.add_patch(_rect(box, dims, start_set_is_box))
    handles = [Line2D([], [], color="gray", linestyle="--", label="box")]
    if start_set_is_box:
        handles = [Line2D([], [], color="tab:green", linewidth=2.0, label="box = certified start set")]
    for t in traj:
        ax.plot(t[:, i], t[:, j], "-", color="tab:blue", alpha=0.55, linewidth=0.8)
    (h0,) = ax.plot(traj[:, 0, i], traj[:, 0, j], ".", color="tab:blue", ms=4, label="start")
    (h1,) = ax.plot(traj[:, -1, i], traj[:, -1, j], "o", color="tab:red", ms=4, label=f"after {steps} steps")
    handles += [h0, h1]
    if ellipsoid is not None:
        c, p, r = ellipsoid
        e = ellipse_points(c, p, r, dims)
        (h,) = ax.plot(e[:, 0], e[:, 1], "-", color="tab:green", linewidth=2.0,
                       label="||x - x_bar||_P <= r (certified start set)")
        handles.append(h)
    if ball is not None:
        c, p, r = ball
        e = ball_points(c, p, r, dims)
        (h,) = ax.plot(e[:, 0], e[:, 1], "-", color="tab:green", linewidth=2.0,
                       label=f"||x - x_bar||_{norm_label(p)} <= r (certified start set)")
        handles.append(h)
    if equilibria is not None and len(equilibria):
        eq = np.atleast_2d(equilibria)
        (h,) = ax.plot(eq[:, i], eq[:, j], "*", color="gold", mec="k", ms=13, zorder=7, clip_on=False,
                       label="equilibria" if len(eq) > 1 else "equilibrium")
        handles.append(h)
    _box_view(ax, box, (i, j), pad=0.25)
    ax.set_title(f"simulated trajectories, {steps} steps", fontsize=10)
    _legend(fig, handles, ncol=3)
    _freeze(fig)
    marks = ()
    if equilibria is not None and len(equilibria):
        marks = tuple(Mark("equilibrium", (float(x[i]), float(x[j])), _pixel(fig, ax, x[i], x[j]))
                      for x in np.atleast_2d(equilibria))
    caption = f"simulated trajectories x+ = f(x), {steps} steps from a {grid}x{grid} grid of starts"
    fixed = [k for k in range(box.dim) if k not in dims]
    if fixed:
        caption += f"; {slice_text(box, dims, at, 'held fixed')}"
    return _finish(fig, Picture(caption, b"", "trajectories", check, axes=_axes_box(fig, ax), marks=marks))


def _rect(box: Box, dims, highlight: bool = False):
    from matplotlib.patches import Rectangle

    i, j = dims
    return Rectangle(
        (box.lower[i], box.lower[j]), box.upper[i] - box.lower[i], box.upper[j] - box.lower[j],
        fill=False, linestyle="-" if highlight else "--", edgecolor="tab:green" if highlight else "gray",
        linewidth=2.0 if highlight else 1.0,
    )


def sampled_matrices(net: Network, box: Box, quantity: Quantity, n: int = 2000, seed: int = 0) -> np.ndarray:
    """The state part of A*(x) or J(x) at the box's centre and ``n`` seeded uniform points: (n + 1, ns, ns)."""
    rng = np.random.default_rng(seed)
    pts = np.vstack([box.center[None], box.lower + (box.upper - box.lower) * rng.random((n, box.dim))])
    mats = net.pwa(pts)[0] if quantity is Quantity.A_STAR else net.jacobian(pts)
    return np.asarray(mats)[:, :, : net.n_states]


def eigenvalue_plot(net: Network, box: Box, quantity: Quantity = Quantity.A_STAR, n: int = 2000, seed: int = 0,
                    witness_matrix: np.ndarray | None = None, check: str | None = None) -> Picture:
    """Eigenvalues of the state part of A*(x) or J(x) at sampled points (for piecewise-linear nets: the region
    matrices met), with the unit circle; ``witness_matrix`` (ns, ns): its eigenvalues are marked."""
    mats = sampled_matrices(net, box, quantity, n, seed)
    distinct = np.unique(np.round(mats.reshape(len(mats), -1), 12), axis=0)
    eig = np.linalg.eigvals(mats).ravel()
    radius = float(np.max(np.abs(eig))) if eig.size else 0.0
    eig = np.unique(np.round(eig, 9))  # repeated eigenvalues (one region's matrix at many points) drawn once
    fig, ax = _figure(4.6, 5.0, legend_rows=3)
    t = np.linspace(0, 2 * np.pi, 400)
    ax.plot(np.cos(t), np.sin(t), "k-", linewidth=0.8, label="unit circle")
    ax.plot(eig.real, eig.imag, "o", color="tab:blue", ms=4, alpha=0.6, mew=0,
            label=f"at sampled points (largest |eigenvalue| {radius:.4g})")
    if witness_matrix is not None:
        m = np.asarray(witness_matrix, dtype=np.float64)
        if m.ndim == 2 and m.shape[0] == m.shape[1]:
            we = np.linalg.eigvals(m)
            ax.plot(we.real, we.imag, "x", color="tab:red", ms=9, mew=2,
                    label=f"at the witness (spectral radius {spectral_radius(m):.4g})")
    ax.set_aspect("equal")
    lim = max(1.15, 1.1 * radius)
    ax.set_xlim(-lim, lim)
    ax.set_ylim(-lim, lim)
    ax.set_xlabel("Re")
    ax.set_ylabel("Im")
    ax.set_title(f"eigenvalues of {quantity.symbol}(x), {len(mats)} points", fontsize=10)
    _legend(fig, ncol=1)
    caption = (f"eigenvalues of {quantity.symbol}(x) (state part) at {len(mats)} sampled points "
               f"({len(distinct)} distinct matrices) against the unit circle; largest |eigenvalue| {radius:.4g}")
    _freeze(fig)
    return _finish(fig, Picture(caption, b"", "eigenvalues", check, 1.0, (0.0, radius), _axes_box(fig, ax)))


def bracket_plot(trace, seconds: float | None = None, threshold: float | None = 1.0,
                 check: str | None = None, label: str = "the supremum") -> Picture:
    """Lower and upper bounds against time. ``trace``: (seconds, lower, upper) rows on the engine's clock, which
    starts when the engine does, after the check's sampling and Corollary 4; ``seconds``: the check's time (the
    table's). The engine is the check's last step, so its trace is moved to end at ``seconds``: the plot spans the
    check's clock, 0 to ``seconds``, and the part before the engine started is shaded."""
    arr = np.array(trace, dtype=float).reshape(-1, 3)
    end = float(arr[-1, 0]) if len(arr) else 0.0
    total = end if seconds is None else max(float(seconds), end)
    shift = total - end
    t = arr[:, 0] + shift
    fig, ax = _figure(5.4, 3.9, legend_rows=2)
    if shift > 0:
        ax.axvspan(0.0, shift, color="0.9", label="before the search (sampling, cheap bounds)")
    for col, name, colour in ((2, "upper (sound)", "tab:blue"), (1, "lower (replayed)", "tab:orange")):
        ok = np.isfinite(arr[:, col])
        if ok.any():  # markers too: a search that recorded its bracket only once is a point, not a line
            xs, ys = np.append(t[ok], total), np.append(arr[ok, col], arr[ok, col][-1])
            ax.step(xs, ys, where="post", color=colour, label=name, marker=".", markevery=list(range(ok.sum())))
    if threshold is not None:
        ax.axhline(threshold, color="red", linestyle=":", linewidth=1, label=f"threshold {threshold:g}")
    ax.set_xlim(0.0, max(total, 1e-6) * 1.02)
    _plain_numbers(ax.xaxis)
    _plain_numbers(ax.yaxis)
    ax.set_xlabel("seconds since the check started")
    ax.set_title(f"bracket on {label} against time", fontsize=10)
    _legend(fig, ncol=2)
    finite = arr[:, 1:][np.isfinite(arr[:, 1:])]
    vr = (float(finite.min()), float(finite.max())) if finite.size else None
    caption = (f"bracket against time on the check's clock (0 to {total:.2f} s, as in the table); the search "
               f"started at {shift:.2f} s")
    _freeze(fig)
    return _finish(fig, Picture(caption, b"", "bracket", check, threshold, vr, _axes_box(fig, ax), span=(0.0, total)))


def factor_plot(names: list[str], values: list[float], product: float, check: str | None = None) -> Picture:
    """Bars of the Corollary 4 factors and their product (log scale) against 1."""
    fig, ax = _figure(5.4, 3.8, legend_rows=0)
    fig.subplots_adjust(bottom=1.1 / 3.8)
    shown = [max(v, 1e-12) if math.isfinite(v) else 1e12 for v in [*values, product]]
    colours = ["0.6"] * len(values) + ["tab:red" if product >= 1.0 else "tab:blue"]
    ax.bar(range(len(shown)), shown, color=colours)
    ax.axhline(1.0, color="k", linestyle=":", linewidth=1)
    ax.set_yscale("log")
    ax.set_xticks(range(len(shown)), [*names, "product"], rotation=45, ha="right", fontsize=8)
    ax.set_title(f"Corollary 4: product {product:.4g} ({'<' if product < 1 else '>='} 1)", fontsize=10)
    _freeze(fig)
    return _finish(fig, Picture(f"the factors of the Corollary 4 product ({product:.4g}) against 1", b"", "factors",
                                check, 1.0, (float(min(shown)), float(max(shown))), _axes_box(fig, ax)))


def _p(p: float) -> str:
    return "inf" if np.isinf(p) else str(int(p))

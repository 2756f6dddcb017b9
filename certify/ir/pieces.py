"""The linear pieces of piecewise-linear activations (ReLU, LeakyReLU, PReLU, identity, clip) on a layer.

Shared by everything that reasons region by region: the region traversal, CROWN relaxations of fixed neurons and
the MILP encodings.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from .activations import Activation, ActivationKind


# ===================================================================== pieces of piecewise-linear activations
@dataclass(frozen=True, eq=False)
class Pieces:
    """The linear pieces of a piecewise-linear activation on a layer of ``n`` neurons.

    ``breakpoints`` (n, k) sorted per row (k = 0 identity, 1 ReLU/LeakyReLU/PReLU, up to 2 for clip);
    piece j is bp[j-1] <= z <= bp[j] (with bp[-1] = -inf, bp[k] = +inf), on which sigma(z) = slope[:, j] z +
    offset[:, j] and sigma'(z) = slope[:, j]. ``slope``/``offset`` have shape (n, k + 1). A point's piece is the
    number of breakpoints strictly below z (:meth:`piece_of`); at a breakpoint both adjacent pieces give the same
    value, so the choice only matters on lower-dimensional sets.
    """

    breakpoints: np.ndarray
    slope: np.ndarray
    offset: np.ndarray

    @property
    def n_pieces(self) -> int:
        return self.slope.shape[1]

    def piece_of(self, z: np.ndarray) -> np.ndarray:
        """Piece index of each entry of z (..., n) -> int array of the same shape."""
        if self.breakpoints.shape[1] == 0:
            return np.zeros(np.shape(z), dtype=np.int64)
        return (self.breakpoints < np.asarray(z)[..., None]).sum(axis=-1)

    def interval(self, piece: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """[lower, upper] of z on the given piece of each neuron (piece (n,) ints); infinite ends allowed."""
        n, k = self.breakpoints.shape
        ext = np.hstack([np.full((n, 1), -np.inf), self.breakpoints, np.full((n, 1), np.inf)])
        idx = np.arange(n)
        return ext[idx, piece], ext[idx, piece + 1]

    def value_range(self, lower: np.ndarray, upper: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Exact [min, max] of sigma over [lower_i, upper_i] (n,) in numpy: sigma is continuous and linear between
        breakpoints, so the extremes sit at the ends or at breakpoints inside (one rounding per value: callers pad)."""
        n = lower.shape[0]
        idx = np.arange(n)
        vl = self.slope[idx, self.piece_of(lower)] * lower + self.offset[idx, self.piece_of(lower)]
        vu = self.slope[idx, self.piece_of(upper)] * upper + self.offset[idx, self.piece_of(upper)]
        lo, hi = np.minimum(vl, vu), np.maximum(vl, vu)
        for k in range(self.breakpoints.shape[1]):
            bp = self.breakpoints[:, k]
            inside = (bp > lower) & (bp < upper)
            if inside.any():
                vb = self.slope[:, k] * bp + self.offset[:, k]
                lo = np.where(inside, np.minimum(lo, vb), lo)
                hi = np.where(inside, np.maximum(hi, vb), hi)
        return lo, hi

    def overlapping(self, lower: np.ndarray, upper: np.ndarray, idx: np.ndarray | None = None) -> np.ndarray:
        """Bool (m, k + 1): which pieces meet [lower_i, upper_i] in more than a point (or contain it if lower ==
        upper); ``idx`` (m,) selects the neurons the m intervals belong to (default: all n, in order)."""
        bps = self.breakpoints if idx is None else self.breakpoints[idx]
        n = bps.shape[0]
        ext = np.hstack([np.full((n, 1), -np.inf), bps, np.full((n, 1), np.inf)])
        lo, hi = ext[:, :-1], ext[:, 1:]
        l, u = lower[:, None], upper[:, None]
        strict = (l < hi) & (u > lo)
        point = (l == u) & (l >= lo) & (l <= hi)
        return strict | point


def pieces(activation: Activation, width: int) -> Pieces | None:
    """The pieces of a piecewise-linear activation on ``width`` neurons, or None when it is not piecewise linear."""
    k = activation.kind
    ones = np.ones((width, 1))
    if k is ActivationKind.IDENTITY:
        return Pieces(np.zeros((width, 0)), ones.copy(), np.zeros((width, 1)))
    if k in (ActivationKind.RELU, ActivationKind.LEAKY_RELU, ActivationKind.PRELU):
        if k is ActivationKind.RELU:
            neg = np.zeros(width)
        elif k is ActivationKind.LEAKY_RELU:
            neg = np.full(width, activation.alpha)
        else:
            neg = np.broadcast_to(np.asarray(activation.slopes, dtype=np.float64), (width,)).copy()
        return Pieces(np.zeros((width, 1)), np.stack([neg, np.ones(width)], axis=1), np.zeros((width, 2)))
    if k is ActivationKind.CLIP:
        lo, hi = activation.lo, activation.hi
        bps, slopes, offs = [], [], []
        if math.isfinite(lo):
            bps.append(lo)
            slopes.append(0.0)
            offs.append(lo)
        slopes.append(1.0)
        offs.append(0.0)
        if math.isfinite(hi):
            if hi > lo or not math.isfinite(lo):
                bps.append(hi)
            else:  # lo == hi: a constant function, one flat piece
                return Pieces(np.zeros((width, 0)), np.zeros((width, 1)), np.full((width, 1), lo))
            slopes.append(0.0)
            offs.append(hi)
        row = lambda v: np.tile(np.asarray(v, dtype=np.float64), (width, 1))  # noqa: E731
        return Pieces(row(bps).reshape(width, len(bps)), row(slopes), row(offs))
    return None

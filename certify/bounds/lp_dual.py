"""Sound lower bounds of linear objectives over a polytope cut from a box, from any LP multipliers (weak duality).

For y >= 0 and every x with a x <= b and lo <= x <= hi:  c x >= c x + y (a x - b) = (c + y a) x - y b
>= min over the box of (c + y a) x - y b. The bound holds for every y >= 0, whatever solver produced it and however
inaccurately: the solver's multipliers only make it tight. Everything is re-derived here in float64 with the
rounding of each product bounded (:func:`certify.ir.numerics.dot_pad`), so a bound from this module rests on no
solver tolerance. An LP whose status is OPTIMAL gives multipliers for which the bound is the optimum up to its
tolerances; an infeasible polytope has Farkas multipliers for which it is +inf (not used here).
"""

from __future__ import annotations

import numpy as np

from ..ir.numerics import TINY, affine_interval, dot_pad


def dual_lower_bounds(costs: np.ndarray, a: np.ndarray, b: np.ndarray, lo: np.ndarray, hi: np.ndarray,
                      ys: np.ndarray) -> np.ndarray:
    """Sound lower bounds (k,) of min costs[k] @ x over {a x <= b, lo <= x <= hi}.

    ``costs`` (k, n), ``a`` (m, n), ``b`` (m,), ``lo``/``hi`` (n,) finite, ``ys`` (k, m) multipliers (negative
    entries are clipped to 0; a non-finite one gives -inf for its objective)."""
    costs, a, b = np.asarray(costs, dtype=np.float64), np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    ys = np.maximum(np.asarray(ys, dtype=np.float64).reshape(costs.shape[0], a.shape[0]), 0.0)
    ok = np.all(np.isfinite(ys), axis=1)
    ys = np.where(ok[:, None], ys, 0.0)
    m = a.shape[0]
    with np.errstate(over="ignore", invalid="ignore"):
        g = costs + ys @ a  # (k, n): c + y a, rounded
        g_err = dot_pad(m + 1) * (np.abs(costs) + ys @ np.abs(a)) + TINY
        yb = ys @ b
        yb_err = dot_pad(m) * (ys @ np.abs(b)) + TINY
        low, _ = affine_interval(g, 0.0, lo, hi)  # min over the box of the rounded g, soundly
        absx = np.maximum(np.abs(lo), np.abs(hi))
        bound = low - g_err @ absx - yb - yb_err
    bound = np.where(ok & np.isfinite(bound), bound, -np.inf)
    return bound - dot_pad(3) * np.abs(bound) - TINY

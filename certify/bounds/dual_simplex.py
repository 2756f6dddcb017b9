"""LP multipliers for many objectives over one small polytope, by a dual simplex run on all objectives at once.

For min c x over P = {a x <= b, lo <= x <= hi} with few free coordinates (the region search's node polytopes,
n <= 8) a vectorised dual simplex in numpy is far cheaper than one solver call per objective. It starts from the
box corner that minimises c x (all n active constraints box faces: dual feasible), then repeatedly lets the most
violated row enter the active set and the ratio test pick the face that leaves; every objective carries its own
active set, and all of them pivot together.

Only the multipliers leave this module, and :func:`certify.bounds.lp_dual.dual_lower_bounds` re-derives every
bound from them in float64 by weak duality: a bound is sound whatever happened here (an iteration cap, a
degenerate cycle, a nearly singular basis); the simplex only makes it tight.
"""

from __future__ import annotations

import numpy as np

_MAX_PIVOTS_PER_ROW = 4  # pivots allowed per constraint row (plus 4 n) before giving up on an objective
_PIVOT_TOL = 1e-12  # smallest entry of the pivot direction the ratio test accepts
_REFACTOR_EVERY = 16  # pivots between two fresh inverses of the basis


def row_multipliers(costs: np.ndarray, a: np.ndarray, b: np.ndarray, lo: np.ndarray, hi: np.ndarray,
                    tol: float = 1e-9, max_pivots: int | None = None) -> np.ndarray:
    """Multipliers ys (k, m) >= 0 of the rows a x <= b for min costs[j] @ x over {a x <= b, lo <= x <= hi}.

    Shapes: costs (k, n), a (m, n), b (m,), lo/hi (n,) finite with lo <= hi (coordinates with lo == hi are held
    at their value). At the LP optimum (reached unless a pivot cap or a degenerate cycle stops an objective
    first) the weak-duality bound of :func:`certify.bounds.lp_dual.dual_lower_bounds` with these multipliers is
    the LP optimum; ``tol``: the row violation below which a vertex counts as feasible; ``max_pivots``: at most this
    many pivots (default ``_MAX_PIVOTS_PER_ROW`` per row plus 4 per coordinate). Never raises on numerical
    trouble: an objective that cannot pivot keeps the multipliers reached so far (still >= 0)."""
    costs = np.asarray(costs, dtype=np.float64)
    k, n = costs.shape
    m = a.shape[0]
    ys = np.zeros((k, m))
    free = np.nonzero(hi > lo)[0]
    nf = free.size
    if m == 0 or k == 0 or nf == 0:
        return ys
    fixed = np.nonzero(hi <= lo)[0]
    af = a[:, free]
    h_rows = b - a[:, fixed] @ lo[fixed] if fixed.size else b.astype(np.float64)
    # constraints g x <= h: the rows, then -x_i <= -lo_i, then x_i <= hi_i (free coordinates)
    eye = np.eye(nf)
    g = np.vstack([af, -eye, eye])
    h = np.concatenate([h_rows, -lo[free], hi[free]])
    c = costs[:, free]
    # start: the box corner minimising c x (g_B = diag(-1 or 1), its own inverse); multipliers u = |c| >= 0 with
    # g_B^T u = -c
    upper_face = c < 0
    basis = np.where(upper_face, m + nf + np.arange(nf), m + np.arange(nf))  # (k, nf) constraint indices
    u = np.abs(c)
    inv = np.zeros((k, nf, nf))
    inv[:, np.arange(nf), np.arange(nf)] = np.where(upper_face, 1.0, -1.0)  # g_B^{-1}
    h_basis = h[basis]
    inv_scale = 1.0 / (1.0 + np.abs(h))
    rows = np.arange(k)
    going = np.ones(k, dtype=bool)
    with np.errstate(all="ignore"):
        cap = _MAX_PIVOTS_PER_ROW * m + 4 * nf if max_pivots is None else max_pivots
        for it in range(cap):
            if it and it % _REFACTOR_EVERY == 0:  # refresh g_B^{-1} against drift of the rank-one updates
                try:
                    inv = np.linalg.inv(g[basis])
                except np.linalg.LinAlgError:
                    break
            x = np.einsum("kij,kj->ki", inv, h_basis)  # the basis vertex
            viol = (x @ g.T - h) * inv_scale  # relative violation of every constraint (k, N)
            r = np.argmax(viol, axis=1)  # the most violated constraint enters (a row or a box face)
            going &= viol[rows, r] > tol
            if not going.any():
                break
            d = np.einsum("kji,kj->ki", inv, g[r])  # g_B^T d = g_r
            ratio = np.where(d > _PIVOT_TOL, u / np.where(d > _PIVOT_TOL, d, 1.0), np.inf)
            leave = np.argmin(ratio, axis=1)
            t = ratio[rows, leave]
            going &= np.isfinite(t)  # no face can leave: the polytope is empty (or the basis degenerate)
            step = np.where(going, t, 0.0)
            leaving_u = u[rows, leave]
            u = np.maximum(u - step[:, None] * d, 0.0)
            u[rows, leave] = np.where(going, t, leaving_u)
            # Sherman-Morrison for g_B with row ``leave`` replaced by g_r: inv -= inv[:, leave] (d - e_leave) / d_leave
            coef = np.where(going, 1.0 / d[rows, leave], 0.0)
            d[rows, leave] -= 1.0
            inv = inv - inv[rows, :, leave][:, :, None] * (d * coef[:, None])[:, None, :]
            basis[rows, leave] = np.where(going, r, basis[rows, leave])
            h_basis[rows, leave] = h[basis[rows, leave]]
    u = np.where(np.isfinite(u), u, 0.0)
    in_rows = basis < m
    kk, jj = np.nonzero(in_rows)
    np.add.at(ys, (kk, basis[kk, jj]), u[kk, jj])
    return np.maximum(ys, 0.0)

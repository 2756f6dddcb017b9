"""The equilibria claim of a proof: every x in the box with f(x) = x is one of the listed points (standard library,
numpy and exact rationals only; piecewise-linear nets, no exogenous inputs).

The evidence is a tree of neuron splits (:func:`certify.proof.checker.walk`) whose leaves cover the box; each leaf
is settled by one of:

* Farkas multipliers, or intervals, proving the leaf empty;
* intervals proving f(x) - x != 0 on the leaf (a coordinate whose range excludes 0);
* a *region* leaf (every neuron on one piece): there f(x) = A x + b exactly, with A, b computed here in exact
  rationals from the float weights; I - A must be invertible (else the claim fails: a continuum of equilibria is
  not a list), and the one solution x* of (I - A) x = b either lies outside the leaf's region (exactly: outside the
  box, or some pre-activation outside its piece), so the leaf holds no equilibrium, or inside it, so x* is an
  equilibrium (f is continuous, so the affine formula holds on the closed region).

The claim lists points p_k and a radius r: every equilibrium found inside a region is within r (max-norm, exactly)
of some p_k, and every p_k is within r of an equilibrium found (so each listed point stands for a true one).
"""

from __future__ import annotations

from fractions import Fraction

import numpy as np

from .enclosure import EPS, TINY, Evaluator, Net, Node


def _exact(a: np.ndarray) -> np.ndarray:
    return np.array([Fraction(float(v)) for v in np.ravel(a)], dtype=object).reshape(np.shape(a))


class RegionMaps:
    """Exact rational copies of the weights, made once per claim."""

    def __init__(self, net: Net) -> None:
        self.net = net
        self.w = [_exact(w) for w in net.weights]
        self.b = [_exact(b) for b in net.biases]
        self.out_w, self.out_b = _exact(net.out_w), _exact(net.out_b)
        self.skip = None if net.skip is None else _exact(net.skip)

    def _piece(self, l: int, piece: np.ndarray):
        act = self.net.acts[l]
        idx = np.arange(piece.size)
        return _exact(act.slope[idx, piece]), _exact(act.offset[idx, piece])

    def affine(self, pieces: list[np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
        """(A, b) with f(x) = A x + b on the closed region of ``pieces`` (one piece index per neuron per layer)."""
        n = self.net.n_in
        c = np.array([[Fraction(int(i == j)) for j in range(n)] for i in range(n)], dtype=object)
        g = np.array([Fraction(0)] * n, dtype=object)
        for l, piece in enumerate(pieces):
            s, o = self._piece(l, piece)
            c, g = s[:, None] * (self.w[l] @ c), s * (self.w[l] @ g + self.b[l]) + o
        a, b = self.out_w @ c, self.out_w @ g + self.out_b
        if self.skip is not None:
            a = a + self.skip
        return a, b

    def inside(self, x: np.ndarray, lo: np.ndarray, hi: np.ndarray, pieces: list[np.ndarray]) -> bool:
        """Whether the exact point x lies in the box and every pre-activation in its piece (closed)."""
        if any(v < Fraction(float(a)) or v > Fraction(float(b)) for v, a, b in zip(x, lo, hi)):
            return False
        h = x
        for l, piece in enumerate(pieces):
            z = self.w[l] @ h + self.b[l]
            ext = self.net.acts[l].ext
            for i, (zi, p) in enumerate(zip(z, piece)):
                a, b = float(ext[i, p]), float(ext[i, p + 1])
                if (a != -np.inf and zi < Fraction(a)) or (b != np.inf and zi > Fraction(b)):
                    return False
            s, o = self._piece(l, piece)
            h = s * z + o
        return True


def solve_exact(a: np.ndarray, b: np.ndarray):
    """The solution of a x = b in rationals (a square), or None when a is singular."""
    n = len(b)
    m = [list(a[i]) + [b[i]] for i in range(n)]
    for k in range(n):
        piv = next((i for i in range(k, n) if m[i][k] != 0), None)
        if piv is None:
            return None
        m[k], m[piv] = m[piv], m[k]
        for i in range(n):
            if i != k and m[i][k] != 0:
                f = m[i][k] / m[k][k]
                m[i] = [x - f * y for x, y in zip(m[i], m[k])]
    return np.array([m[i][n] / m[i][i] for i in range(n)], dtype=object)


def no_fixed_point_by_intervals(ev: Evaluator, node: Node) -> bool:
    """Whether the intervals prove the node empty or f(x) - x != 0 on it (some coordinate's range excludes 0)."""
    got = ev.output_range(node)
    if got is None:
        return True
    fl, fu = got
    lo, hi = node.lo, node.hi
    pad_l = EPS * (np.abs(fl) + np.abs(hi)) + TINY
    pad_u = EPS * (np.abs(fu) + np.abs(lo)) + TINY
    return bool(np.any(fl - hi - pad_l > 0) or np.any(fu - lo + pad_u < 0))


def settle_leaf(ev: Evaluator, maps: RegionMaps, node: Node):
    """Settle a leaf: ("none", None) when it holds no equilibrium, ("point", x*) with the exact equilibrium when its
    region holds one, ("open", None) when a region split is still needed, ("singular", None) when I - A is singular
    on a region (no finite list)."""
    if no_fixed_point_by_intervals(ev, node):
        return "none", None
    recs = ev.prefix(node)
    if node.empty:
        return "none", None
    if node.l_star < ev.net.L:
        return "open", None
    pieces = [rec.piece for rec in recs]
    a, b = maps.affine(pieces)
    n = len(b)
    eye = np.array([[Fraction(int(i == j)) for j in range(n)] for i in range(n)], dtype=object)
    x = solve_exact(eye - a, b)
    if x is None:
        return "singular", None
    return ("point", x) if maps.inside(x, node.lo, node.hi, pieces) else ("none", None)


def near(x: np.ndarray, point, radius: Fraction) -> bool:
    """max_i |x_i - point_i| <= radius, exactly."""
    return all(abs(v - Fraction(float(p))) <= radius for v, p in zip(x, point))

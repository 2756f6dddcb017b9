"""What the proof checker recomputes on one node: pre-activation ranges, slope ranges, a matrix enclosure and its
norm bound, Farkas rows, and the Corollary 4 product (standard library and numpy only).

A *node* is a sub-box [lo, hi] of the region with some neurons fixed to one linear piece (a split on neuron i of
layer l: its children are the pieces of that neuron, each the set of x whose pre-activation lies in that closed
piece). Per node, layer by layer, the pre-activation z_l = C x + g is an exact affine map of x as long as every
neuron of the earlier layers has a single slope on the node (fixed by a split, or proven stable because its range
over the box meets one piece only); C and g are floats with rigorous error radii
(:mod:`certify.proof.rounding`). From the first layer l* with an undetermined neuron on, intervals are propagated
(value ranges of the activations, outward rounded). The matrix M(x) (A*(x) with secant slopes, J(x) with
derivatives) on the node lies in the interval matrix C_{l*} -> D_{l*} -> W_{l*+1} -> ... -> W_L (+ S), the D
ranging over the slope intervals; its p-norm bound (:func:`rounding.interval_norm_upper`) bounds ||M|| on the
node. A node whose neurons are all determined is a single region: the enclosure is the region's matrix up to
rounding.

Soundness of the slope sets: A*(x) and J(x) matter on activation regions with non-empty interior (the sup over
the box is the sup over those regions, DESIGN.md section 2). A fixed neuron contributes its piece's slope; a free
one the slopes of the pieces whose open interval meets its range (a neuron pinned to a breakpoint on an open set
has a zero row in the chain, so any slope is right for it; both adjacent slopes are kept then).

Activations: ReLU, LeakyReLU, PReLU, identity and clip (piecewise linear, exact slopes); tanh and sigmoid (smooth:
monotone value, even secant and derivative decreasing in |z|; library values widened by ``LIB_PAD``). Others are
refused. A* of a clip net (not piecewise linear through the origin) is refused too.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

from .rounding import (
    EPS,
    LIB_PAD,
    TINY,
    affine_range,
    gam,
    interval_norm_upper,
    left_multiply,
    map_range,
    scale_rows,
    up,
)

PWL_KINDS = ("relu", "leaky_relu", "prelu", "identity", "clip")
SMOOTH_KINDS = ("tanh", "sigmoid")


class Unsupported(ValueError):
    """The proof asks for something this checker does not compute (an activation, a quantity)."""


# ============================================================================================ activations
@dataclass(frozen=True, eq=False)
class Act:
    """One layer's activation. Piecewise linear: ``bps`` (n, k) breakpoints (sorted per row), ``slope`` and
    ``offset`` (n, k + 1): sigma(z) = slope_j z + offset_j on piece j = [bps_{j-1}, bps_j]; ``ext`` (n, k + 2) the
    breakpoints with -inf and inf at the ends. Smooth: ``bps`` None."""

    kind: str
    bps: np.ndarray | None = None
    slope: np.ndarray | None = None
    offset: np.ndarray | None = None
    ext: np.ndarray | None = field(default=None, init=False, repr=False)
    clip: tuple[float, float] | None = None  # (lo, hi) of a clip

    def __post_init__(self) -> None:
        if self.bps is not None:
            n = self.bps.shape[0]
            ext = np.hstack([np.full((n, 1), -np.inf), self.bps, np.full((n, 1), np.inf)])
            object.__setattr__(self, "ext", ext)

    @property
    def pwl(self) -> bool:
        return self.bps is not None

    @property
    def through_origin(self) -> bool:
        return self.kind in ("relu", "leaky_relu", "prelu", "identity")

    @property
    def n_pieces(self) -> int:
        return self.slope.shape[1] if self.pwl else 0

    def piece_bounds(self, idx: np.ndarray, piece: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """The closed interval [lower, upper] of piece ``piece`` of neurons ``idx`` (infinite ends allowed)."""
        return self.ext[idx, piece], self.ext[idx, piece + 1]

    def open_overlap(self, zl: np.ndarray, zu: np.ndarray) -> np.ndarray:
        """Bool (n, k + 1): the pieces whose open interval meets [zl, zu] (the closed ones for a point)."""
        a, b = self.ext[:, :-1], self.ext[:, 1:]
        l, u = zl[:, None], zu[:, None]
        strict = (l < b) & (u > a)
        if not np.any(zl == zu):
            return strict
        point = (l == u) & (l >= a) & (l <= b)
        return strict | (point & ~strict.any(axis=1, keepdims=True))

    def _pwl_value(self, z: np.ndarray) -> np.ndarray:
        idx = np.arange(z.size)
        piece = (self.bps < z[:, None]).sum(axis=1)
        return self.slope[idx, piece] * z + self.offset[idx, piece]

    def value_range(self, zl: np.ndarray, zu: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Outward-rounded [min, max] of sigma over [zl_i, zu_i]."""
        if self.pwl:
            vals = [self._pwl_value(zl), self._pwl_value(zu)]
            for k in range(self.bps.shape[1]):
                bp = self.bps[:, k]
                inside = (bp > zl) & (bp < zu)
                vals.append(np.where(inside, self._pwl_value(np.where(inside, bp, zl)), vals[0]))
            lo, hi = np.min(vals, axis=0), np.max(vals, axis=0)
            return lo - EPS * np.abs(lo) - TINY, hi + EPS * np.abs(hi) + TINY
        if self.kind == "tanh":
            lo, hi = np.tanh(zl), np.tanh(zu)
        else:
            lo, hi = _sigmoid(zl), _sigmoid(zu)
        return lo - LIB_PAD * np.abs(lo) - TINY, hi + LIB_PAD * np.abs(hi) + TINY

    def slope_range(self, zl, zu, fixed: np.ndarray, secant: bool) -> tuple[np.ndarray, np.ndarray]:
        """[s_lo, s_hi] per neuron: the slopes (derivatives for J, secants for A*) on the node (module docstring);
        ``fixed`` (n,) the fixed piece or -1."""
        if self.pwl:
            if secant and not self.through_origin:
                return self._clip_secant(zl, zu)
            over = self.open_overlap(zl, zu)
            free = fixed < 0
            over = np.where(free[:, None], over, np.arange(self.n_pieces)[None, :] == fixed[:, None])
            return np.where(over, self.slope, np.inf).min(axis=1), np.where(over, self.slope, -np.inf).max(axis=1)
        near = np.where((zl <= 0) & (zu >= 0), 0.0, np.minimum(np.abs(zl), np.abs(zu)))
        far = np.maximum(np.abs(zl), np.abs(zu))
        scale = 1.0 if self.kind == "tanh" else 0.5  # sigmoid(z) = (1 + tanh(z / 2)) / 2
        if secant:
            lo, hi = _tanh_secant(scale * far), _tanh_secant(scale * near)
        else:
            lo, hi = 1.0 / np.cosh(scale * far) ** 2, 1.0 / np.cosh(scale * near) ** 2
        if self.kind == "sigmoid":  # sigmoid' = 1 / (4 cosh^2(z / 2)); secant = tanh(z / 2) / (2 z)
            lo, hi = 0.25 * lo, 0.25 * hi
        return np.maximum(lo * (1.0 - LIB_PAD) - TINY, 0.0), hi * (1.0 + LIB_PAD) + TINY


    def _clip_secant(self, zl: np.ndarray, zu: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """[min, max] of (clip(z) - clip(0)) / z over [zl, zu]: on each piece clip is constant or the identity, so
        the secant is monotone between the knots lo, hi and 0; the range is over the ends and the knots inside (at 0
        both one-sided limits)."""
        lo, hi = self.clip
        c0 = min(max(0.0, lo), hi)
        right0, left0 = float(lo <= 0.0 < hi), float(lo < 0.0 <= hi)

        def sec(z):
            safe = np.where(z == 0, 1.0, z)
            return (np.clip(safe, lo, hi) - c0) / safe

        cands = [np.where(zl == 0, right0, sec(zl)), np.where(zu == 0, left0, sec(zu))]
        for knot in (lo, hi):
            if math.isfinite(knot) and knot != 0.0:
                inside = (zl < knot) & (knot < zu)
                cands.append(np.where(inside, sec(np.full_like(zl, knot)), cands[0]))
        at0 = (zl < 0) & (zu > 0)
        cands += [np.where(at0, right0, cands[0]), np.where(at0, left0, cands[0])]
        s_lo, s_hi = np.min(cands, axis=0), np.max(cands, axis=0)
        return s_lo - EPS * np.abs(s_lo) - TINY, s_hi + EPS * np.abs(s_hi) + TINY


def _sigmoid(z: np.ndarray) -> np.ndarray:
    with np.errstate(over="ignore"):  # exp overflows to inf for z < -709: the value 0 is then within TINY
        return 1.0 / (1.0 + np.exp(-z))


def _tanh_secant(m: np.ndarray) -> np.ndarray:
    """tanh(m) / m (1 at 0) for m >= 0."""
    safe = np.where(m == 0, 1.0, m)
    return np.where(m == 0, 1.0, np.tanh(safe) / safe)


def make_act(spec: dict, width: int) -> Act:
    """The activation of a proof's layer entry ({"kind": ..., parameters as decimal strings})."""
    kind = spec.get("kind")
    ones, zeros = np.ones((width, 1)), np.zeros((width, 1))
    if kind == "identity":
        return Act(kind, np.zeros((width, 0)), ones, zeros)
    if kind in ("relu", "leaky_relu", "prelu"):
        if kind == "relu":
            neg = np.zeros(width)
        elif kind == "leaky_relu":
            neg = np.full(width, _num(spec.get("alpha")))
        else:
            s = [_num(v) for v in spec.get("slopes", [])]
            if len(s) not in (1, width):
                raise ValueError(f"prelu has {len(s)} slopes for a layer of width {width}")
            neg = np.broadcast_to(np.array(s), (width,)).copy()
        return Act(kind, zeros.copy(), np.stack([neg, np.ones(width)], axis=1), np.zeros((width, 2)))
    if kind == "clip":
        lo, hi = _num(spec.get("lo"), True), _num(spec.get("hi"), True)
        if not lo <= hi:
            raise ValueError("clip needs lo <= hi")
        bps, slopes, offs = [], [], []
        if math.isfinite(lo):
            bps.append(lo)
            slopes.append(0.0)
            offs.append(lo)
        if math.isfinite(hi) and hi == lo:
            return Act(kind, np.zeros((width, 0)), zeros.copy(), np.full((width, 1), lo), clip=(lo, hi))
        slopes.append(1.0)
        offs.append(0.0)
        if math.isfinite(hi):
            bps.append(hi)
            slopes.append(0.0)
            offs.append(hi)
        row = lambda v: np.tile(np.asarray(v, dtype=np.float64), (width, 1))  # noqa: E731
        return Act(kind, row(bps).reshape(width, len(bps)), row(slopes), row(offs), clip=(lo, hi))
    if kind in SMOOTH_KINDS:
        return Act(kind)
    raise Unsupported(f"activation {kind!r}: the checker computes {', '.join(PWL_KINDS + SMOOTH_KINDS)}")


def _num(v, allow_inf: bool = False) -> float:
    if not isinstance(v, str):
        raise ValueError(f"expected a decimal string, got {v!r}")
    x = float(v)
    if math.isnan(x) or (math.isinf(x) and not allow_inf):
        raise ValueError(f"expected a finite number, got {v!r}")
    return x


# ============================================================================================ the network
@dataclass(frozen=True, eq=False)
class Net:
    """The IR of a proof: hidden ``weights``/``biases``/``acts``, ``out_w`` (n_out, n_L), ``out_b``, ``skip``
    (n_out, n_in) or None, ``n_states``."""

    weights: tuple
    biases: tuple
    acts: tuple
    out_w: np.ndarray
    out_b: np.ndarray
    skip: np.ndarray | None
    n_states: int

    @property
    def L(self) -> int:
        return len(self.weights)

    @property
    def n_in(self) -> int:
        return self.weights[0].shape[1] if self.weights else self.out_w.shape[1]

    def chain(self, k: int) -> np.ndarray:
        """The matrix after hidden layer k: W_{k+1}, or out_w for the last one."""
        return self.weights[k + 1] if k + 1 < self.L else self.out_w


@dataclass(frozen=True, eq=False)
class MetricData:
    """A weighted 2-norm ||x||_P for the checker: float ``t`` (T^T T ~ P) and ``q`` (~ T^{-1}), and ``factor`` with
    ||M||_P <= factor * ||T M Q||_2 for every M (proved by :func:`certify.proof.checker.metric_factor`)."""

    t: np.ndarray
    q: np.ndarray
    factor: float


# ============================================================================================ nodes
@dataclass(eq=False)
class Record:
    """Layer l of a node's exact prefix: z_l(x) = C x + g with |C_true - c| <= r, |g_true - g| <= rg; its range
    [zl, zu] over the node (intersected with fixed pieces), ``delta`` the error of the float map over the box, and
    ``piece`` (n,) each neuron's single piece or -1."""

    c: np.ndarray
    r: np.ndarray
    g: np.ndarray
    rg: np.ndarray
    delta: np.ndarray
    zl: np.ndarray
    zu: np.ndarray
    piece: np.ndarray


class Node:
    """A node of a proof tree (module docstring): the sub-box, the fixed pieces per layer (-1 free), the splits
    (l, i, piece) in path order with their rows (``rows_a`` x <= ``rows_b``, see :meth:`Evaluator.split_neuron`),
    and the cached prefix."""

    __slots__ = ("lo", "hi", "fixed", "splits", "rows_a", "rows_b", "records", "l_star", "empty", "reuse")

    def __init__(self, lo, hi, fixed, splits=(), rows_a=(), rows_b=(), reuse=None) -> None:
        self.lo, self.hi, self.fixed, self.splits = lo, hi, fixed, splits
        self.rows_a, self.rows_b = rows_a, rows_b
        self.records = None
        self.l_star = 0
        self.empty = False
        self.reuse = reuse  # (parent records, first layer to recompute)

    @staticmethod
    def root(net: Net, lo: np.ndarray, hi: np.ndarray) -> "Node":
        return Node(lo, hi, tuple(np.full(w.shape[0], -1, dtype=np.int64) for w in net.weights))

    def empty_copy(self) -> "Node":
        """A node over the same sub-box already proven empty (a piece of an empty node)."""
        node = Node(self.lo, self.hi, self.fixed, self.splits, self.rows_a, self.rows_b)
        node.records, node.l_star, node.empty = self.records, self.l_star, True
        return node

    def split_axis(self, axis: int) -> list["Node"]:
        """Both halves of the box along ``axis`` (they share the rounded midpoint, so they cover the box). The rows
        stay valid: each was relaxed by its map's error over a larger box."""
        mid = 0.5 * self.lo[axis] + 0.5 * self.hi[axis]
        a_hi, b_lo = self.hi.copy(), self.lo.copy()
        a_hi[axis] = b_lo[axis] = mid
        return [Node(self.lo, a_hi, self.fixed, self.splits, self.rows_a, self.rows_b),
                Node(b_lo, self.hi, self.fixed, self.splits, self.rows_a, self.rows_b)]


class Evaluator:
    """Node computations for one claim: ``secant`` (A*) or not (J), ``cols`` columns, norm ``p``, ``metric``."""

    def __init__(self, net: Net, secant: bool, cols: int, p: float, metric: MetricData | None = None) -> None:
        self.net, self.secant, self.cols, self.p, self.metric = net, secant, cols, p, metric
        self.abs_w = [np.abs(w) for w in net.weights]
        self.abs_out = np.abs(net.out_w)
        # A* of a clip net is not constant on its regions: its chain takes secant ranges from layer 0 on
        self.secant_chain = secant and any(a.pwl and not a.through_origin for a in net.acts)

    # ------------------------------------------------------------------ the exact prefix
    def prefix(self, node: Node) -> list[Record]:
        """Compute (and cache) the node's exact prefix; sets ``node.l_star`` and ``node.empty``."""
        if node.records is not None:
            return node.records
        net = self.net
        recs: list[Record] = []
        start, maps = 0, None
        if node.reuse is not None and node.reuse[0] is not None:
            parent, l = node.reuse
            recs = list(parent[:l])
            start = l
            if l < len(parent):
                p = parent[l]
                maps = (p.c, p.r, p.g, p.rg)
        node.reuse = None
        node.l_star, node.empty = net.L, False
        if start == 0 and net.L:
            w = net.weights[0]
            maps = (w, np.zeros_like(w), net.biases[0], np.zeros(w.shape[0]))
        for l in range(start, net.L):
            if maps is None:
                maps = self._next_maps(recs[l - 1], l)
            c, r, g, rg = maps
            maps = None
            zl, zu, delta = map_range(c, r, g, rg, node.lo, node.hi)
            act, fixed = net.acts[l], node.fixed[l]
            piece = np.full(zl.size, -1, dtype=np.int64)
            if act.pwl:
                fx = np.nonzero(fixed >= 0)[0]
                if fx.size:
                    plo, phi = act.piece_bounds(fx, fixed[fx])
                    zl, zu = zl.copy(), zu.copy()
                    zl[fx], zu[fx] = np.maximum(zl[fx], plo), np.minimum(zu[fx], phi)
                    if np.any(zl[fx] > zu[fx]):
                        node.empty, node.l_star = True, l
                        break
                over = act.open_overlap(zl, zu)
                single = over.sum(axis=1) == 1
                piece = np.where(fixed >= 0, fixed, np.where(single, np.argmax(over, axis=1), -1))
            recs.append(Record(c, r, g, rg, delta, zl, zu, piece))
            if np.any(piece < 0):
                node.l_star = l
                break
        node.records = recs
        return recs

    def _next_maps(self, rec: Record, l: int):
        """z_l's map from the determined layer l - 1: W_l (S C) and W_l (S g + O) + b_l with error radii."""
        act = self.net.acts[l - 1]
        idx = np.arange(rec.piece.size)
        s, o = act.slope[idx, rec.piece], act.offset[idx, rec.piece]
        hc, hr = scale_rows(rec.c, rec.r, s, s)
        hg = s * rec.g + o
        hrg = np.abs(s) * rec.rg + EPS * (np.abs(s * rec.g) + np.abs(o))
        w, aw = self.net.weights[l], self.abs_w[l]
        c, r = left_multiply(w, aw, hc, hr)
        g = w @ hg + self.net.biases[l]
        a = aw @ hrg
        rg = a + gam(w.shape[1] + 1) * (a + aw @ np.abs(hg) + np.abs(self.net.biases[l])) + TINY
        return c, r, g, rg

    # ------------------------------------------------------------------ slopes and the matrix bound
    def slopes(self, node: Node):
        """Per hidden layer l* .. L-1 the slope intervals on the node, or None when the intervals prove the node
        empty. Also returns the value ranges of the last hidden layer (for output enclosures)."""
        recs = self.prefix(node)
        if node.empty:
            return None
        net = self.net
        out = []
        if node.l_star >= net.L:
            return out, None
        rec = recs[node.l_star]
        zl, zu = rec.zl, rec.zu
        vl = vu = None
        for k in range(node.l_star, net.L):
            act, fixed = net.acts[k], node.fixed[k]
            if k > node.l_star and act.pwl:
                fx = np.nonzero(fixed >= 0)[0]
                if fx.size:
                    plo, phi = act.piece_bounds(fx, fixed[fx])
                    zl[fx], zu[fx] = np.maximum(zl[fx], plo), np.minimum(zu[fx], phi)
                    if np.any(zl[fx] > zu[fx]):
                        return None
            out.append(act.slope_range(zl, zu, fixed, self.secant))
            vl, vu = act.value_range(zl, zu)
            if k + 1 < net.L:
                zl, zu = affine_range(net.weights[k + 1], self.abs_w[k + 1], net.biases[k + 1], vl, vu)
        return out, (vl, vu)

    def enclosure(self, node: Node):
        """(C, R) enclosing the node's matrices (T M Q with a metric), or None for an empty node."""
        got = self.slopes(node)
        if got is None:
            return None
        ranges = got[0]
        net, cols = self.net, self.cols
        if net.L == 0:
            c, r = net.out_w[:, :cols], np.zeros((net.out_w.shape[0], cols))
            start = net.L
        elif self.secant_chain:
            recs = node.records
            first = [net.acts[l].slope_range(recs[l].zl, recs[l].zu, node.fixed[l], True)
                     for l in range(min(node.l_star, net.L))]
            ranges = first + ranges
            c, r, start = net.weights[0], np.zeros_like(net.weights[0]), 0
        elif node.l_star >= net.L:
            rec = node.records[net.L - 1]
            idx = np.arange(rec.piece.size)
            s = net.acts[-1].slope[idx, rec.piece]
            ranges = [(s, s)]
            c, r, start = rec.c, rec.r, net.L - 1
        else:
            rec = node.records[node.l_star]
            c, r, start = rec.c, rec.r, node.l_star
        c, r = c[:, :cols], r[:, :cols]
        m = self.metric
        if m is not None:
            ct, rt = left_multiply(m.q.T, np.abs(m.q.T), c.T, r.T)
            c, r = ct.T, rt.T
        for (sl, sh), k in zip(ranges, range(start, net.L)):
            c, r = scale_rows(c, r, sl, sh)
            w = net.chain(k)
            c, r = left_multiply(w, self.abs_out if k + 1 == net.L else self.abs_w[k + 1], c, r)
        if m is not None:
            c, r = left_multiply(m.t, np.abs(m.t), c, r)
        if net.skip is not None:
            sc, sr = self.skip_enclosure()
            c2 = c + sc
            c, r = c2, up(r + sr + EPS * np.abs(c2))
        return c, r

    def skip_enclosure(self):
        s = self.net.skip[:, : self.cols]
        m = self.metric
        if m is None:
            return s, np.zeros_like(s)
        ct, rt = left_multiply(m.q.T, np.abs(m.q.T), s.T, np.zeros_like(s.T))
        return left_multiply(m.t, np.abs(m.t), ct.T, rt.T)

    def bound(self, node: Node, target: float = -math.inf) -> float:
        """A proved upper bound on ||M(x)||_p (||M||_P with a metric) over the node's regions; -inf when empty."""
        enc = self.enclosure(node)
        if enc is None:
            return -math.inf
        factor = 1.0 if self.metric is None else self.metric.factor
        value = interval_norm_upper(enc[0], enc[1], self.p, target / factor)
        return up(value * factor) if factor != 1.0 else value

    # ------------------------------------------------------------------ splits and Farkas rows
    def split_neuron(self, node: Node, l: int, i: int) -> list[Node]:
        """One child per piece of neuron i of layer l (``l`` <= the node's l*, the neuron not fixed). Each child's
        new rows say that z_l,i lies in its piece, relaxed by the float error of z_l's map, so that every x of the
        child satisfies every row: z >= lo gives -C x <= g - lo + delta, z <= hi gives C x <= hi - g + delta."""
        recs = self.prefix(node)
        rec, act = recs[l], self.net.acts[l]
        row, g, d = rec.c[i], float(rec.g[i]), float(rec.delta[i])
        out = []
        for j in range(act.n_pieces):
            lo, hi = float(act.ext[i, j]), float(act.ext[i, j + 1])
            ra, rb = list(node.rows_a), list(node.rows_b)
            if math.isfinite(lo):
                ra.append(-row)
                rb.append(up(g - lo + d + EPS * (abs(g) + abs(lo) + d)))
            if math.isfinite(hi):
                ra.append(row)
                rb.append(up(hi - g + d + EPS * (abs(g) + abs(hi) + d)))
            fixed = list(node.fixed)
            fixed[l] = fixed[l].copy()
            fixed[l][i] = j
            out.append(Node(node.lo, node.hi, tuple(fixed), node.splits + ((l, i, j),), ra, rb, (recs, l)))
        return out

    def rows(self, node: Node) -> tuple[np.ndarray, np.ndarray]:
        """The node's split rows as arrays (k, n_in) and (k,)."""
        n = node.lo.size
        return np.array(node.rows_a, dtype=np.float64).reshape(-1, n), np.array(node.rows_b, dtype=np.float64)

    # ------------------------------------------------------------------ output enclosures (invariance)
    def output_range(self, node: Node):
        """[fl, fu] containing f(x) over the node, or None when empty."""
        got = self.slopes(node)
        if got is None:
            return None
        net = self.net
        if net.L == 0 or node.l_star >= net.L:
            c, r, g, rg = (net.out_w, np.zeros_like(net.out_w), net.out_b, np.zeros(net.out_b.size)) if net.L == 0 \
                else self._next_out_maps(node.records[-1])
            if net.skip is not None:
                c2 = c + net.skip
                c, r = c2, up(r + EPS * np.abs(c2))
            fl, fu, _ = map_range(c, r, g, rg, node.lo, node.hi)
            return fl, fu
        vl, vu = got[1]
        fl, fu = affine_range(net.out_w, self.abs_out, net.out_b, vl, vu)
        if net.skip is not None:
            sl, su = affine_range(net.skip, np.abs(net.skip), np.zeros(net.skip.shape[0]), node.lo, node.hi)
            a, b = fl + sl, fu + su
            fl, fu = a - EPS * np.abs(a) - TINY, b + EPS * np.abs(b) + TINY
        return fl, fu

    def _next_out_maps(self, rec: Record):
        act = self.net.acts[-1]
        idx = np.arange(rec.piece.size)
        s, o = act.slope[idx, rec.piece], act.offset[idx, rec.piece]
        hc, hr = scale_rows(rec.c, rec.r, s, s)
        hg = s * rec.g + o
        hrg = np.abs(s) * rec.rg + EPS * (np.abs(s * rec.g) + np.abs(o))
        w, aw, b = self.net.out_w, self.abs_out, self.net.out_b
        c, r = left_multiply(w, aw, hc, hr)
        a = aw @ hrg
        rg = a + gam(w.shape[1] + 1) * (a + aw @ np.abs(hg) + np.abs(b)) + TINY
        return c, r, w @ hg + b, rg


def farkas_certifies(a: np.ndarray, b: np.ndarray, lo: np.ndarray, hi: np.ndarray, index, values) -> bool:
    """Whether multipliers y >= 0 (``values`` at rows ``index``) prove {x in [lo, hi] : a x <= b} empty:
    min over the box of (y^T a) x > y^T b, with every rounding bounded (:mod:`certify.proof.rounding`). ``index``:
    row numbers; one outside 0..k-1 (a Python int beyond int64 included) proves nothing."""
    index = [int(k) for k in index]
    if not all(0 <= k < a.shape[0] for k in index):  # before the int64 array: a huge int would overflow it
        return False
    idx = np.asarray(index, dtype=np.int64)
    y = np.asarray(values, dtype=np.float64)
    if idx.size == 0 or idx.shape != y.shape or np.any(idx < 0) or np.any(idx >= a.shape[0]):
        return False
    if not np.all(np.isfinite(y)) or np.any(y < 0) or len(set(idx.tolist())) != idx.size:
        return False
    rows, rhs = a[idx], b[idx]
    d = y @ rows
    ed = gam(idx.size) * (y @ np.abs(rows)) + TINY
    xm = np.maximum(np.abs(lo), np.abs(hi))
    terms = np.minimum(d * lo, d * hi)
    lhs = float(terms.sum())
    lhs_err = gam(lo.size) * float((np.abs(d) * xm).sum()) + float(ed @ xm) * (1.0 + gam(lo.size)) + TINY
    rhs_val = float(y @ rhs)
    rhs_err = gam(idx.size) * float(y @ np.abs(rhs)) + TINY
    return lhs - lhs_err * (1.0 + 4 * EPS) > rhs_val + rhs_err * (1.0 + 4 * EPS)


# ============================================================================================ Corollary 4
def product_bound(ev: Evaluator, root: Node) -> float:
    """prod_l ||W_l|| * prod_l max |slope_l| (+ ||S||) over the root node (conjugated ends with a metric), or
    -inf when the intervals prove the box empty."""
    net, cols, p, m = ev.net, ev.cols, ev.p, ev.metric
    if net.L == 0:
        enc = ev.enclosure(root)
        return ev.bound(root) if enc is not None else -math.inf
    recs = ev.prefix(root)
    got = ev.slopes(root)
    if got is None or root.empty:
        return -math.inf
    ranges = [net.acts[l].slope_range(recs[l].zl, recs[l].zu, root.fixed[l], ev.secant)
              for l in range(min(root.l_star, net.L))] + got[0]
    first = net.weights[0][:, :cols]
    c0, r0 = first, np.zeros_like(first)
    last_c, last_r = net.out_w, np.zeros_like(net.out_w)
    if m is not None:
        ct, rt = left_multiply(m.q.T, np.abs(m.q.T), first.T, np.zeros_like(first.T))
        c0, r0 = ct.T, rt.T
        last_c, last_r = left_multiply(m.t, np.abs(m.t), net.out_w, last_r)
    mats = [(c0, r0)] + [(w, np.zeros_like(w)) for w in net.weights[1:]] + [(last_c, last_r)]
    value = 1.0
    count = 0
    for c, r in mats:
        value *= interval_norm_upper(c, r, p)
        count += 1
    for sl, sh in ranges:
        value *= float(np.max(np.maximum(np.abs(sl), np.abs(sh)))) if sl.size else 0.0
        count += 1
    value = value * (1.0 + (count + 2) * EPS) + TINY
    if net.skip is not None:
        sc, sr = ev.skip_enclosure()
        value = up(value + interval_norm_upper(sc, sr, p))
    if m is not None:
        value = up(value * m.factor)
    return value

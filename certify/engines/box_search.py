"""Branch and bound over sub-boxes for sup_X ||A*(x)||_p or sup_X ||J(x)||_p, for any activation of the catalogue.

On a sub-box [lo, hi] every A*(x) (resp. J(x)) is a product

    M = W_L D_{L-1} W_{L-1} ... D_0 W_0 + S,   D_l diagonal with entries in [s_lo, s_hi] per neuron,

the slope ranges being the secant ranges (A*) or derivative ranges (J) of each neuron over its pre-activation
interval (``Activation.secant_range`` / ``derivative_range``, sound with outward rounding). The pre-activation
intervals are interval bounds (:func:`certify.bounds.interval.affine_interval`, as in ``interval_bounds``) intersected
with the centred form z_k(c) + G_k (x - c) (:func:`preactivation_bounds`), whose error shrinks quadratically
with the box: on small boxes it is what makes splitting converge. (``bounds.symbolic_bounds`` relaxes smooth
activations by constants, so for them it gives the interval bounds again.)
Upper bounds on sup ||M|| over the sub-box (each one sound for every x in it):

* ``INTERVAL``: interval matrices propagated right to left (from W_0) and left to right (from W_L) and
  intersected; with |M| <= U entrywise, ||M|| <= ||U|| (exact for p = 1, inf over the interval), and for p = 2
  also sqrt(||U||_1 ||U||_inf) and ||C||_2 + ||R||_2 (centre and radius of the interval matrix). Rounding of the
  interval arithmetic is covered by padding every entry by 1e-11 times the same chain in absolute values.
* ``CENTRED``: :func:`certify.bounds.centred.centred_bound`: ||M_c|| at the midpoint slopes plus, per hidden layer,
  the telescoped perturbation ||Left_l diag(sqrt delta_l)|| ||diag(sqrt delta_l) Right_l|| (delta_l the half widths
  of the slope ranges). It tends to ||M(c)|| as the box shrinks and keeps the cancellations of the weights (norms
  of products, not of absolute values): on the 4-64-64-4 benchmark nets it gives the smallest bound on every box
  (about 6x below ``INTERVAL`` at radius 0.05 near the maximiser of a tanh net). Default with ``INTERVAL``.
* ``PRODUCT``: Corollary 4, prod_l ||W_l|| * prod_l max_i |slope_{l,i}| + ||S||, with the weight norms of
  :func:`certify.bounds.corollary4.product_bound` (which this equals on every sub-box: tested).
* ``SCALED``: the same product after splitting each D_l = T_l^(1/2) E_l T_l^(1/2) (T_l = diag(max |slope|),
  |E_l| <= I, so ||E_l||_p <= 1): ||W_L T_{L-1}^(1/2)|| * prod ||T_l^(1/2) W_l T_{l-1}^(1/2)|| * ||T_0^(1/2) W_0||
  + ||S||, never above ``PRODUCT``.
* ``SDP`` (p = 2 only, ``use_sdp``): :func:`certify.engines.lipsdp.sdp_bound_over_box`, a LipSDP-Neuron bound
  re-checked in float64; used on the few largest boxes only (it costs seconds to minutes); a solve without a
  re-checked bound is ignored.

A child box inherits its parent's bound (the sup over a subset is no larger). Lower bounds come from points: box
centres and random points of every new box (batched float64 torch kernels of :mod:`certify.engines.sampling`), and
projected gradient ascent (:func:`certify.engines.sampling.falsify`) on the box with the largest bound now and then
(at most about 10 % of the elapsed time); every
reported lower bound is replayed in float64 through the IR at its witness (``Network.pwa`` / ``jacobian``, then
:func:`certify.ir.numerics.induced_norm`).

Search: best first on the upper bound, a batch of the largest boxes at a time; each is split in two along the
coordinate with the largest width x sensitivity (sum of |W_0| over that input's column), or (``trial_split`` = k
> 1) along the best of the k leading coordinates by the larger child bound (measured: no gain on the benchmark
nets for its k-fold bounding cost, hence off by default). Boxes are bounded in chunks of ``_CHUNK``: larger
batched products start BLAS threads, which cost tenfold on a loaded two-core machine. A box is closed when its
bound is <= max(best lower (+ ``gap_tol``), threshold). Stops when every box is closed (certified when a
threshold was given), when the lower bound exceeds the threshold, or at the timeout. ``upper`` is the max of the
best lower bound and the bounds of every closed and still open box, so it is sound whenever the search stops.
"""

from __future__ import annotations

import contextlib
import enum
import heapq
import itertools
import math
import time
from dataclasses import dataclass

import numpy as np
import torch

from ..ir.quantity import Quantity
from ..bounds.interval import affine_interval
from ..ir.box import Box
from ..config import VerifyConfig
from ..errors import UsageError
from ..ir.network import Network, TorchNet
from ..ir.numerics import induced_norm
from ..bounds.centred import NORM_PAD, PAD, centred_bound, interval_norm_bound  # noqa: F401 (re-exported)
from ..bounds.centred import interval_left as _interval_left
from ..bounds.centred import interval_right as _interval_right
from ..bounds.centred import norms as _norms
from ..bounds.centred import scale_rows as _scale_rows

_PAD = PAD  # relative padding of interval matrix entries (rounding of interval arithmetic)
_NORM_PAD = NORM_PAD  # relative padding of float64 matrix norms (SVD error is a few n eps)
_BATCH = 32  # boxes split per iteration
_CHUNK = 64  # boxes bounded per call of box_bounds
_MIN_REL_WIDTH = 1e-9  # boxes narrower than this (relative to the root box) in every coordinate are not split


class BoundKind(enum.Enum):
    """The upper bounds a sub-box can use (see the module docstring)."""

    INTERVAL = "interval"
    PRODUCT = "product"
    SCALED = "scaled"
    SDP = "sdp"
    CENTRED = "centred"


DEFAULT_BOUNDS = (BoundKind.INTERVAL, BoundKind.CENTRED)


class Outcome(enum.Enum):
    """Why the search stopped."""

    CERTIFIED = "certified"  # every box closed with bound <= threshold: upper <= threshold
    EXCEEDED = "exceeded"  # a replayed point has norm > threshold
    BRACKETED = "bracketed"  # no threshold: every box closed, upper - lower <= gap_tol * max(1, lower)
    STALLED = "stalled"  # boxes too small to split remain open above the level
    TIMEOUT = "timeout"


@dataclass(frozen=True, eq=False)
class BoxBnBResult:
    """sup over the box of ||Q(x)||_p lies in [lower, upper] (Q = A* or J, state columns when ``state_only``).

    ``witness``: (n_in,) point in the box where ||Q|| = ``lower`` (replayed in float64), or None; ``matrix``: Q at
    the witness. ``exhausted``: every box was closed (no open box remains). ``proven_fraction``: the fraction of
    the box's volume whose bound is proven <= threshold (<= the best lower bound without a threshold); 1.0 when
    certified. ``boxes``: sub-boxes bounded. ``trace``: (seconds, lower, upper) as the search went.
    ``wins``: per bound kind, how many boxes it gave the smallest bound; ``sdp_calls``/``sdp_seconds``: SDP work.
    """

    lower: float
    upper: float
    witness: np.ndarray | None
    matrix: np.ndarray | None
    exhausted: bool
    proven_fraction: float
    boxes: int
    seconds: float
    reason: str
    trace: tuple[tuple[float, float, float], ...]
    outcome: Outcome = Outcome.TIMEOUT
    wins: tuple[tuple[str, int], ...] = ()
    sdp_calls: int = 0
    sdp_seconds: float = 0.0

    def certified(self, threshold: float) -> bool:
        return self.upper <= threshold


# ============================================================================================ batched sub-box bounds
def _as_quantity(quantity) -> Quantity:
    return Quantity.coerce(quantity)


def interval_preactivations(net: Network, lo: np.ndarray, hi: np.ndarray) -> list[tuple[np.ndarray, np.ndarray]]:
    """Interval bounds on every hidden layer's pre-activations over B boxes at once.

    ``lo``/``hi``: (B, n_in). Returns per hidden layer (lower, upper) of shape (B, n_{l+1}); for each box these
    equal :func:`certify.bounds.interval_bounds` (the same :func:`~certify.bounds.interval.affine_interval` arithmetic with
    its rounding pad, and the activations' outward-rounded value ranges).
    """
    out = []
    l, u = np.ascontiguousarray(lo.T), np.ascontiguousarray(hi.T)
    for k, layer in enumerate(net.layers):
        zl, zu = affine_interval(layer.weight, layer.bias[:, None], l, u)
        zl, zu = np.ascontiguousarray(zl.T), np.ascontiguousarray(zu.T)
        out.append((zl, zu))
        if k + 1 < len(net.layers):  # the last hidden layer's value range is not needed (costly for tanh)
            pl, pu = layer.activation.value_range(zl, zu)
            l, u = np.ascontiguousarray(pl.T), np.ascontiguousarray(pu.T)
    return out


def preactivation_bounds(net: Network, lo: np.ndarray, hi: np.ndarray,
                         centred: bool = True) -> list[tuple[np.ndarray, np.ndarray]]:
    """Pre-activation bounds over B boxes (``lo``/``hi`` (B, n_in)): interval bounds intersected, for layers
    k >= 1, with the centred (mean-value) form

        z_k(x) in z_k(c) + G_k (x - c),   G_k = W_k D_{k-1} W_{k-1} ... D_0 W_0,  D_j in the derivative ranges,

    c the box centre. Sound by the mean-value theorem for Lipschitz maps (Clarke): z_k(x) - z_k(c) lies in
    co{G (x - c)} over generalised Jacobians G along the segment, each a product of diagonals whose entries lie
    in the derivative ranges (which include both one-sided limits at kinks), and the interval matrix of G_k
    (:func:`matrix_enclosure` on the truncated chain) encloses that hull. z_k(c) is enclosed by interval
    arithmetic on the degenerate box [c, c]. The error of this form shrinks quadratically with the box width
    (plain intervals: linearly), which is what makes small boxes pay off.
    Returns per hidden layer (lower, upper) of shape (B, n_{l+1}).
    """
    plain = interval_preactivations(net, lo, hi)
    if not centred or len(net.layers) < 2:
        return plain
    c = 0.5 * (lo + hi)
    r = np.maximum(hi - c, c - lo)  # rounding of c is covered: r reaches both ends
    at_c = interval_preactivations(net, c, c)
    out = [plain[0]]
    derivs = []
    for k in range(1, len(net.layers)):
        zl, zu = out[k - 1]
        derivs.append(net.layers[k - 1].activation.derivative_range(zl, zu))
        g_lo, g_hi = _chain_enclosure([layer.weight for layer in net.layers[: k + 1]], derivs, net.n_in)
        rad = np.matmul(np.maximum(np.abs(g_lo), np.abs(g_hi)), r[:, :, None])[:, :, 0]
        rad = rad * (1.0 + 1e-12) + 1e-300
        cl, cu = at_c[k]
        lo_k = np.maximum(plain[k][0], cl - rad)
        hi_k = np.minimum(plain[k][1], cu + rad)
        out.append((lo_k, hi_k))
    return out


def slope_ranges(net: Network, lo: np.ndarray, hi: np.ndarray, quantity) -> list[tuple[np.ndarray, np.ndarray]]:
    """Per hidden layer the (B, n_{l+1}) arrays [s_lo, s_hi] of secant slopes (A*) or derivatives (J) that every
    point of each box can produce (sound: ranges of the activation over sound pre-activation intervals)."""
    q = _as_quantity(quantity)
    out = []
    for layer, (zl, zu) in zip(net.layers, preactivation_bounds(net, lo, hi)):
        act = layer.activation
        rng = act.secant_range if q is Quantity.A_STAR else act.derivative_range
        out.append(rng(zl, zu))
    return out


def matrix_enclosure(
    net: Network, slopes: list[tuple[np.ndarray, np.ndarray]], columns: int
) -> tuple[np.ndarray, np.ndarray]:
    """Entrywise enclosure [lower, upper] (each (B, n_out, columns)) of W_L D_{L-1} ... D_0 W_0[:, :columns] + S
    for all diagonal D_l within the slope ranges ``slopes`` (per layer two (B, n_{l+1}) arrays).

    Two interval propagations (right to left from W_0, left to right from W_L) intersected, padded by
    ``_PAD`` times the absolute-value chain |W_L| T_{L-1} ... T_0 |W_0| (T = max |slope|): sound for widths far
    beyond 10^3 (float64 interval arithmetic errs by about (L + 1) n eps times that chain).
    """
    mats = [layer.weight for layer in net.layers] + [net.out_weight]
    lo, hi = _chain_enclosure(mats, slopes, columns)
    if net.skip is not None:
        s = net.skip[:, :columns]
        scale = np.abs(lo) + np.abs(hi) + np.abs(s)
        lo, hi = lo + s - 1e-15 * scale, hi + s + 1e-15 * scale
    return lo, hi


def _chain_enclosure(mats, slopes, columns: int) -> tuple[np.ndarray, np.ndarray]:
    """Enclosure of mats[-1] D_{k-1} ... D_0 mats[0][:, :columns] (see :func:`matrix_enclosure`), padded."""
    b = slopes[0][0].shape[0] if slopes else 1
    mats = [mats[0][:, :columns]] + list(mats[1:])
    abs_mats = [np.abs(w) for w in mats]
    # right to left
    lo = np.broadcast_to(mats[0], (b,) + mats[0].shape)
    hi = lo
    mag = np.broadcast_to(abs_mats[0], lo.shape)
    for (sl, sh), w, aw in zip(slopes, mats[1:], abs_mats[1:]):
        lo, hi = _scale_rows(lo, hi, sl, sh)
        mag = np.maximum(np.abs(sl), np.abs(sh))[:, :, None] * mag
        lo, hi = _interval_left(w, aw, lo, hi)
        mag = np.matmul(aw, mag)
    # left to right
    if len(mats) > 2:
        lo2 = np.broadcast_to(mats[-1], (b,) + mats[-1].shape)
        hi2 = lo2
        for (sl, sh), w, aw in zip(reversed(slopes), reversed(mats[:-1]), reversed(abs_mats[:-1])):
            t_lo, t_hi = _scale_rows(np.swapaxes(lo2, 1, 2), np.swapaxes(hi2, 1, 2), sl, sh)
            lo2, hi2 = _interval_right(w, aw, np.swapaxes(t_lo, 1, 2), np.swapaxes(t_hi, 1, 2))
        lo, hi = np.maximum(lo, lo2), np.minimum(hi, hi2)
    pad = _PAD * mag + 1e-300
    return lo - pad, hi + pad


@dataclass(frozen=True, eq=False)
class _Static:
    """Per-net data shared by every sub-box: state-column weights, their norms, ||S||, split sensitivities."""

    net: Network
    p: float
    quantity: Quantity
    cols: int
    mats: tuple[np.ndarray, ...]
    weight_norms: tuple[float, ...]
    skip_norm: float
    sensitivity: np.ndarray
    mats_full: tuple[np.ndarray, ...]

    @staticmethod
    def of(net: Network, box: Box, p: float, quantity: Quantity, state_only: bool) -> "_Static":
        from ..bounds.corollary4 import product_bound

        cols = net.n_states if state_only else net.n_in
        pb = product_bound(net, box, p, quantity.value, state_only)
        mats = [layer.weight for layer in net.layers] + [net.out_weight]
        mats[0] = mats[0][:, :cols]
        first = net.layers[0].weight if net.layers else net.out_weight
        sens = np.abs(first).sum(axis=0) + 1e-300
        full = tuple([layer.weight for layer in net.layers] + [net.out_weight])
        return _Static(net, p, quantity, cols, tuple(mats), pb.weight_norms, pb.skip_norm, sens, full)


def box_bounds(st: _Static, lo: np.ndarray, hi: np.ndarray, kinds) -> dict[BoundKind, np.ndarray]:
    """Every requested (non-SDP) upper bound on sup ||Q(x)||_p over each of B boxes ``lo``/``hi`` (B, n_in)."""
    net, p = st.net, st.p
    out: dict[BoundKind, np.ndarray] = {}
    if not net.layers:
        m = (net.out_weight + (0 if net.skip is None else net.skip))[:, : st.cols]
        v = float(induced_norm(m, p)) * (1.0 + _NORM_PAD)
        return {k: np.full(lo.shape[0], v) for k in kinds if k is not BoundKind.SDP}
    slopes = slope_ranges(net, lo, hi, st.quantity)
    tmax = [np.maximum(np.abs(sl), np.abs(sh)) for sl, sh in slopes]
    if BoundKind.INTERVAL in kinds:
        mlo, mhi = matrix_enclosure(net, slopes, st.cols)
        out[BoundKind.INTERVAL] = interval_norm_bound(mlo, mhi, p)
    if BoundKind.CENTRED in kinds:
        out[BoundKind.CENTRED] = centred_bound(st.mats_full, slopes, net.skip, st.cols, p)
    if BoundKind.PRODUCT in kinds:
        # the formula of certify.bounds.corollary4.product_bound, with the slope maxima of each box
        v = float(np.prod(st.weight_norms)) * np.prod(np.stack([t.max(axis=1) for t in tmax]), axis=0)
        v = v * (1.0 + 1e-12 * (len(st.weight_norms) + len(tmax) + 2))
        out[BoundKind.PRODUCT] = (v + st.skip_norm) * (1.0 + 1e-12) if net.skip is not None else v
    if BoundKind.SCALED in kinds:
        roots = [np.sqrt(t) for t in tmax]
        v = _norms(roots[0][:, :, None] * st.mats[0][None], p)
        for l in range(1, len(st.mats) - 1):
            v = v * _norms(roots[l][:, :, None] * st.mats[l][None] * roots[l - 1][:, None, :], p)
        v = v * _norms(st.mats[-1][None] * roots[-1][:, None, :], p)
        v = v * (1.0 + 1e-12 * (len(st.mats) + 2))
        out[BoundKind.SCALED] = (v + st.skip_norm) * (1.0 + 1e-12) if net.skip is not None else v
    return out


def sup_norm_bound(net: Network, box: Box, p: float = 2.0, quantity="A_STAR", state_only: bool = True,
                   kinds=DEFAULT_BOUNDS) -> float:
    """A sound upper bound on sup over the box of ||A*(x)||_p or ||J(x)||_p from one box (no splitting, no SDP)."""
    p = _check(net, box, p)
    st = _Static.of(net, box, p, _as_quantity(quantity), state_only)
    kinds = tuple(k for k in kinds if k is not BoundKind.SDP) or DEFAULT_BOUNDS
    b = box_bounds(st, box.lower[None], box.upper[None], kinds)
    return float(min(v[0] for v in b.values()))


def _check(net: Network, box: Box, p: float) -> float:
    p = float(p)
    if p not in (1.0, 2.0, math.inf):
        raise UsageError(f"induced norm p must be 1, 2 or inf, got {p}")
    if box.dim != net.n_in:
        raise UsageError(f"the box has {box.dim} coordinates but the net takes {net.n_in} inputs")
    return p


# ============================================================================================ the search
class _Lower:
    """Best replayed lower bound and its witness."""

    def __init__(self, net: Network, q: Quantity, p: float, cols: int) -> None:

        self.net, self.q, self.p, self.cols = net, q, p, cols
        self.fq = q
        self.tnet = TorchNet.of(net, torch.float64, "cpu")
        self.value, self.x, self.m = -math.inf, None, None

    def replay(self, x: np.ndarray) -> tuple[float, np.ndarray]:
        m = self.net.jacobian(x) if self.q is Quantity.JACOBIAN else self.net.pwa(x)[0]
        m = np.array(m[:, : self.cols], dtype=np.float64)
        return float(induced_norm(m, self.p)), m

    def offer_point(self, x: np.ndarray) -> None:
        v, m = self.replay(x)
        if v > self.value:
            self.value, self.x, self.m = v, np.array(x, dtype=np.float64), m

    def offer_batch(self, pts: np.ndarray) -> None:
        """Evaluate points (B, n_in) with the batched float64 kernel; the best is replayed through the IR."""
        from .sampling import norms_at

        if pts.shape[0] == 0:
            return
        with torch.no_grad():
            vals = norms_at(self.tnet, torch.from_numpy(pts), self.fq, self.p, self.cols).numpy()
        k = int(np.argmax(vals))
        if vals[k] > self.value:
            self.offer_point(pts[k])


def _sdp_allowed(use_sdp, net: Network, p: float) -> bool:
    if use_sdp is False or use_sdp == "never" or p != 2.0 or not net.layers:
        return False
    if use_sdp is True or use_sdp == "always":
        return True
    if use_sdp != "auto":
        raise UsageError(f"use_sdp must be 'auto', True or False, got {use_sdp!r}")
    return sum(net.widths) <= 64


def sup_norm_boxes(
    net: Network,
    box: Box,
    p: float = 2.0,
    quantity="A_STAR",
    state_only: bool = True,
    threshold: float | None = None,
    lower_seed: float | None = None,
    lower_point: np.ndarray | None = None,
    timeout: float = 60.0,
    use_sdp="auto",
    seed: int = 0,
    *,
    bounds=DEFAULT_BOUNDS,
    gap_tol: float = 1e-3,
    samples: int = 2048,
    batch: int = _BATCH,
    max_boxes: int | None = None,
    trial_split: int = 1,
) -> BoxBnBResult:
    """Bracket sup over ``box`` of ||A*(x)||_p (``quantity='A_STAR'``, dissipativity) or ||J(x)||_p ('JACOBIAN',
    contraction) for a net with any activation, by branch and bound over sub-boxes (module docstring).

    ``state_only``: the first ``net.n_states`` columns only (the dynamics checks). ``threshold``: certify mode,
    e.g. 1 - margin: boxes are closed once their bound is <= threshold, the search stops when all are (then
    ``upper <= threshold``) or when a replayed point exceeds it. Without a threshold the search closes the gap
    to ``gap_tol * max(1, lower)``. ``lower_seed``: a value known to be attained (prunes only; ``lower`` always
    comes with this function's own witness); ``lower_point``: a point (n_in,) to start from (replayed).
    ``use_sdp`` (p = 2 only): True runs the SDP bound on the largest open box, then on each new largest box,
    while SDP time stays under half the timeout; 'auto' does the same for nets with at most 64 hidden neurons
    once a quarter of the timeout has passed without a verdict (an SDP costs seconds even on 16 neurons, the box
    bounds usually settle first); False never. ``bounds``: which cheap bounds to use
    (:class:`BoundKind`; the benchmark compares them). ``samples``: points of the initial falsification.
    ``max_boxes``: stop (like a timeout) once this many sub-boxes were bounded (a deterministic budget).
    ``trial_split``: how many candidate split coordinates to bound per box (1: width x sensitivity only).
    Never raises on solver trouble (an SDP without a bound is ignored).

    The search evaluates small batches, for which torch's intra-op threads cost more than they save (tenfold on a
    loaded machine): it runs with one torch thread and restores the previous count on return.
    """
    with _one_torch_thread():
        return _search(net, box, p, quantity, state_only, threshold, lower_seed, lower_point, timeout, use_sdp, seed,
                       bounds, gap_tol, samples, batch, max_boxes, trial_split)


@contextlib.contextmanager
def _one_torch_thread():
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(before)


def _halves(lo: np.ndarray, hi: np.ndarray, j: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Both halves of boxes (B, n) split along coordinate j (B,): (lo, hi) of shape (2B, n), lower halves first."""
    rows = np.arange(lo.shape[0])
    mid = 0.5 * (lo[rows, j] + hi[rows, j])
    a_hi, b_lo = hi.copy(), lo.copy()
    a_hi[rows, j], b_lo[rows, j] = mid, mid
    return np.concatenate([lo, b_lo]), np.concatenate([a_hi, hi])


def _split(parents, sensitivity: np.ndarray, min_w: np.ndarray, bound, trial: int):
    """Split each parent (bound, lo (n,), hi (n,)) in two; returns the children (lo, hi (2B, n)), their
    inherited bounds (2B,) and their (bound, kind index) from ``bound``.

    The candidate coordinates are the ``trial`` widest ones by width x sensitivity (splittable only); with more
    than one candidate every candidate split is bounded and the one whose larger child bound is smallest is kept
    (the bounds of the kept children are reused, so trial splitting costs ``trial`` times the bounding)."""
    inh = np.array([p[0] for p in parents])
    lo = np.array([p[1] for p in parents])
    hi = np.array([p[2] for p in parents])
    w = hi - lo
    score = np.where(w > min_w, w * sensitivity, -1.0)
    order = np.argsort(-score, axis=1)[:, : max(1, trial)]
    k = order.shape[1]
    cand_ok = np.take_along_axis(score, order, axis=1) > 0  # (B, k); the first is always splittable
    b = lo.shape[0]
    if k == 1:
        clo, chi = _halves(lo, hi, order[:, 0])
        return clo, chi, np.concatenate([inh, inh]), bound(clo, chi)
    rep = np.repeat(np.arange(b), k)
    clo, chi = _halves(lo[rep], hi[rep], order.reshape(-1))  # (2 B k, n): lower halves then upper halves
    val, arg = bound(clo, chi)
    worst = np.maximum(val[: b * k], val[b * k:]).reshape(b, k)
    worst = np.where(cand_ok, worst, np.inf)
    pick = np.argmin(worst, axis=1)
    idx = np.arange(b) * k + pick
    sel = np.concatenate([idx, idx + b * k])
    return clo[sel], chi[sel], np.concatenate([inh, inh]), (val[sel], arg[sel])


def _search(net, box, p, quantity, state_only, threshold, lower_seed, lower_point, timeout, use_sdp, seed, bounds,
            gap_tol, samples, batch, max_boxes, trial_split) -> BoxBnBResult:
    t0 = time.perf_counter()
    p = _check(net, box, p)
    q = _as_quantity(quantity)
    kinds = tuple(BoundKind(k) for k in bounds)
    if not kinds:
        raise UsageError("sup_norm_boxes needs at least one bound kind")
    cheap = tuple(k for k in kinds if k is not BoundKind.SDP)
    if not cheap:
        cheap = (BoundKind.PRODUCT,)
    sdp_on = _sdp_allowed(use_sdp, net, p)
    st = _Static.of(net, box, p, q, state_only)
    best = _Lower(net, q, p, st.cols)
    deadline = t0 + timeout

    # ---- initial lower bound: caller's point, then batched sampling with gradient ascent on the whole box
    if lower_point is not None:
        x0 = np.clip(np.asarray(lower_point, dtype=np.float64).reshape(-1), box.lower, box.upper)
        if x0.shape != (net.n_in,):
            raise UsageError(f"lower_point must have {net.n_in} coordinates, got {x0.size}")
        best.offer_point(x0)
    falsify_calls = 0

    def ascend(sub: Box, n: int, budget_s: float) -> None:
        nonlocal falsify_calls
        from .sampling import falsify

        cfg = VerifyConfig(samples=max(n, 1), seed=seed + falsify_calls, device="cpu", timeout=max(budget_s, 1e-3))
        res = falsify(net, sub, best.fq, p, cfg, state_only=state_only)
        falsify_calls += 1
        if res.value > best.value:
            best.offer_point(np.clip(res.x, box.lower, box.upper))

    if samples > 0:
        ascend(box, samples, 0.1 * timeout)

    root_w = box.upper - box.lower
    split_ok = root_w > 0
    min_w = _MIN_REL_WIDTH * np.where(split_ok, root_w, 1.0)
    lw_root = np.where(split_ok, root_w, 1.0)
    target = None if threshold is None else float(threshold)
    prune_seed = -math.inf if lower_seed is None else float(lower_seed)

    def level() -> float:
        lv = max(best.value, prune_seed)
        if target is not None:
            return max(lv, target)
        return lv + gap_tol * max(1.0, abs(lv))

    def vol_fraction(lo, hi) -> np.ndarray:
        return np.prod(np.where(split_ok, (hi - lo) / lw_root, 1.0), axis=1)

    wins = {k: 0 for k in (*cheap, BoundKind.SDP)}
    counter = itertools.count()
    heap: list = []  # (-bound, id, lo, hi, sdp_done)
    n_boxes = 0
    proven = 0.0
    closed_max = -math.inf
    stuck: list = []
    sdp_calls, sdp_seconds = 0, 0.0
    trace = []

    def bound_boxes(lo: np.ndarray, hi: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(smallest cheap bound (B,), index of the kind that gave it (B,)) for boxes (B, n_in), in chunks of
        ``_CHUNK`` boxes (larger matrix products start BLAS threads, which cost tenfold on a loaded machine)."""
        parts = [box_bounds(st, lo[i: i + _CHUNK], hi[i: i + _CHUNK], cheap) for i in range(0, lo.shape[0], _CHUNK)]
        stacked = np.stack([np.concatenate([b[k] for b in parts]) for k in cheap])
        stacked = np.where(np.isnan(stacked), np.inf, stacked)  # a NaN (overflow) is no bound
        arg = np.argmin(stacked, axis=0)
        return stacked[arg, np.arange(lo.shape[0])], arg

    def push(lo: np.ndarray, hi: np.ndarray, inherited: np.ndarray, pre=None) -> None:
        nonlocal n_boxes, proven, closed_max
        val, arg = bound_boxes(lo, hi) if pre is None else pre
        for i, k in enumerate(cheap):
            wins[k] += int(np.sum((arg == i) & (val < inherited)))
        val = np.minimum(val, inherited)
        n_boxes += lo.shape[0]
        lv = level()
        fr = vol_fraction(lo, hi)
        for i in range(lo.shape[0]):
            if val[i] <= lv:
                closed_max = max(closed_max, float(val[i]))
                if target is None or val[i] <= target:
                    proven += float(fr[i])
            else:
                heapq.heappush(heap, (-float(val[i]), next(counter), lo[i], hi[i], False))

    def current_upper() -> float:
        open_max = -heap[0][0] if heap else -math.inf
        stuck_max = max((s[0] for s in stuck), default=-math.inf)
        return max(best.value, closed_max, open_max, stuck_max)

    def record() -> None:
        trace.append((time.perf_counter() - t0, best.value, current_upper()))

    push(box.lower[None].copy(), box.upper[None].copy(), np.array([math.inf]))
    record()
    rng = np.random.default_rng(seed)
    reason, outcome = "", Outcome.TIMEOUT
    iteration = 0
    ascent_s = 0.0  # seconds spent in gradient ascent after the initial one
    while True:
        if target is not None and best.value > target:
            outcome = Outcome.EXCEEDED
            reason = f"a replayed point has norm {best.value:.12g} > threshold {target:.12g}"
            break
        # drop boxes that the current level closes
        lv = level()
        while heap and -heap[0][0] <= lv:
            nb, _, lo_, hi_, _ = heapq.heappop(heap)
            closed_max = max(closed_max, -nb)
            if target is None or -nb <= target:
                proven += float(vol_fraction(lo_[None], hi_[None])[0])
        if not heap:
            outcome = Outcome.CERTIFIED if target is not None else Outcome.BRACKETED
            if stuck:
                outcome = Outcome.STALLED
                reason = f"{len(stuck)} boxes narrower than {_MIN_REL_WIDTH:g} of the box stay above the level"
            break
        now = time.perf_counter()
        if now > deadline:
            reason = f"timeout after {timeout:g} s with {len(heap)} open boxes"
            break
        if max_boxes is not None and n_boxes >= max_boxes:
            reason = f"box budget of {max_boxes} spent with {len(heap)} open boxes"
            break
        iteration += 1
        # ---- SDP on the largest box, while its time stays under half the timeout
        sdp_now = sdp_on and (use_sdp != "auto" or now - t0 >= 0.25 * timeout)
        if sdp_now and not heap[0][4] and sdp_seconds < 0.5 * timeout and deadline - now > 0.05 * timeout:
            from .lipsdp import sdp_bound_over_box

            nb, cid, lo_, hi_, _ = heapq.heappop(heap)
            ts = time.perf_counter()
            try:
                res = sdp_bound_over_box(net, Box(lo_, hi_), q.value, state_only,
                                         time_limit=max(min(deadline - now, 0.5 * timeout - sdp_seconds), 1.0))
                value = res.value
            except (ArithmeticError, np.linalg.LinAlgError):  # defensive: solver trouble is never fatal here
                value = None
            sdp_seconds += time.perf_counter() - ts
            sdp_calls += 1
            bound = -nb
            if value is not None and value < bound:
                bound = value
                wins[BoundKind.SDP] += 1
            heapq.heappush(heap, (-bound, cid, lo_, hi_, True))
            record()
            continue
        # ---- split a batch of the largest boxes
        take = []
        while heap and len(take) < batch:
            item = heapq.heappop(heap)
            if -item[0] <= lv:  # the rest of the heap is closed by the level too
                heapq.heappush(heap, item)
                break
            take.append(item)
        parents = []
        for nb, _, lo_, hi_, _ in take:
            if np.all(hi_ - lo_ <= min_w):
                stuck.append((-nb, lo_, hi_))
            else:
                parents.append((-nb, lo_, hi_))
        if parents:
            lo_b, hi_b, inh, pre = _split(parents, st.sensitivity, min_w, bound_boxes, trial_split)
            # lower bounds: centres and one random point of every new box
            pts = np.vstack([0.5 * (lo_b + hi_b), rng.uniform(lo_b, hi_b)])
            best.offer_batch(np.clip(pts, box.lower, box.upper))
            push(lo_b, hi_b, inh, pre)
        # ---- gradient ascent on the largest box now and then (about 10 % of the time)
        now = time.perf_counter()
        if heap and ascent_s < 0.1 * (now - t0) and deadline - now > 0.02 * timeout:
            _, _, lo_, hi_, _ = heap[0]
            ascend(Box(lo_, hi_), 256, min(0.02 * timeout, 1.0))
            ascent_s += time.perf_counter() - now
        if iteration % 10 == 0:
            record()
    record()
    upper = current_upper()
    if outcome is Outcome.CERTIFIED and upper > target:  # closed by a lower_seed above the threshold
        outcome = Outcome.BRACKETED
        reason = f"boxes were closed by lower_seed {prune_seed:.12g} > threshold {target:.12g} (no witness here)"
    if outcome is Outcome.CERTIFIED:
        proven = 1.0
    proven = float(min(max(proven, 0.0), 1.0))
    lower = best.value
    exhausted = not heap
    if outcome is Outcome.BRACKETED and upper > lower and not reason:
        reason = f"gap closed to the tolerance {gap_tol:g}"
    return BoxBnBResult(
        lower=lower,
        upper=upper,
        witness=best.x,
        matrix=best.m,
        exhausted=exhausted,
        proven_fraction=proven,
        boxes=n_boxes,
        seconds=time.perf_counter() - t0,
        reason=reason,
        trace=tuple(trace),
        outcome=outcome,
        wins=tuple((k.value, int(v)) for k, v in wins.items()),
        sdp_calls=sdp_calls,
        sdp_seconds=sdp_seconds,
    )

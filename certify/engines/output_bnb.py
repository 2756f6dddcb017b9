"""Branch and bound over input splits, with batched CROWN bounds, for the invariance violation (and any maximum of
linear objectives of the outputs) of a piecewise-linear net.

The quantity (:attr:`certify.ir.quantity.Quantity.VIOLATION`) is

    V = sup_{x in X} max_r (rows_r @ f(x) + consts_r),    rows = (+e_i, -e_i) per state i, consts = (-upper_i, lower_i)

so that V < 0 means f(X) inside X with room. Each node is a sub-box; its bound is the largest of the CROWN upper
bounds of the objectives over it (:func:`certify.bounds.crown.box_layer_bounds`, :func:`~certify.bounds.crown.
box_row_bounds`), computed for hundreds of sub-boxes in one batch. Soundness: float64 back-substitution with the
outward rounding pads of :func:`certify.bounds.crown.crown_pads` (computed once for the root box, valid on every
sub-box); no solver is involved, so a certificate from this engine is itself the solver-free float64 check.

Lower bounds: every bounded sub-box offers its centre and the vertex that maximises the linear bound of its worst
objective (where the relaxation is tight this is the maximiser), replayed in float64 through ``net.forward``.

Branching: the widest coordinate weighted by the worst objective's x-coefficient (|coef_j| * width_j, the part of
the linear bound's spread that coordinate carries), among coordinates at least 1/256 as wide (relative to the root)
as the widest (:func:`certify.engines.search.split_axes`). The loop is :func:`certify.engines.search.best_first`;
a sub-box narrower than a relative 1e-9 of the root in every coordinate, or with no coordinate whose float64
midpoint lies strictly inside, is final (it stays in the upper bound).
As sub-boxes shrink every neuron becomes stable on them and CROWN is exact there, so the bracket closes.
"""

from __future__ import annotations

import time
from contextlib import nullcontext

import numpy as np

from ..bounds.crown import box_layer_bounds, box_row_bounds, crown_pads
from ..errors import UsageError
from ..ir.box import Box
from ..ir.network import Network
from .contract import EngineResult, Query, SearchCounts
from .parallel import search_executor
from .search import Incumbent, Node, best_first, halves, split_axes, volume_fraction
from .violation_search import bracket_limits, bracket_result

_MAX_ASPECT = 256.0  # relative to the root box: no coordinate is split while another is 256 times wider
_FIRST_BATCH = 16
_MAX_BATCH = 1024


def violation_rows(net: Network, box: Box) -> tuple[np.ndarray, np.ndarray]:
    """The objectives of the invariance violation: rows (2 n_states, n_out) and consts (2 n_states,) with
    rows @ f(x) + consts = (f_i - upper_i for each state i, then lower_i - f_i)."""
    ns = net.n_states
    eye = np.eye(net.n_out)[:ns]
    rows = np.vstack([eye, -eye])
    consts = np.concatenate([-box.upper[:ns], box.lower[:ns]])
    return rows, consts


class OutputBounder:
    """Sound upper bounds on max_r rows_r @ f(x) + consts_r over many sub-boxes of ``box`` at once.

    ``rows`` (m, n_out), ``consts`` (m,). :meth:`bound` takes sub-boxes lo, hi (B, n_in) and returns per box the
    bound per objective (B, m) (-inf on an empty box) and the x-coefficients (B, m, n_in) of the linear bounds."""

    def __init__(self, net: Network, box: Box, rows: np.ndarray, consts: np.ndarray) -> None:
        if not net.piecewise_linear:
            raise UsageError(f"the output branch and bound needs piecewise-linear activations; {net.describe()} "
                             "is not")
        self.net, self.box = net, box
        self.rows = np.atleast_2d(np.asarray(rows, dtype=np.float64))
        self.consts = np.asarray(consts, dtype=np.float64).reshape(self.rows.shape[0])
        self.pads = crown_pads(net, box.lower, box.upper, self.rows, self.consts)

    def bound(self, lo: np.ndarray, hi: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        _, relax, empty = box_layer_bounds(self.net, lo, hi, self.pads)
        ub, coef = box_row_bounds(self.net, lo, hi, relax, self.rows, self.consts, self.pads)
        return np.where(empty[:, None], -np.inf, ub), coef


class _OutputProblem:
    """Sub-boxes as a :class:`~certify.engines.search.SearchProblem`; a node's item is (lo, hi, axis): the box
    (n_in,) twice and the coordinate to split it along, chosen when it was bounded."""

    def __init__(self, bounder: OutputBounder) -> None:
        self.bounder = bounder
        box = bounder.box
        self.root_lo, self.root_hi = box.lower, box.upper
        self.width0 = np.maximum(box.upper - box.lower, 1e-300)
        self.boxes = 0
        self.steps = 0

    def replay(self, x: np.ndarray) -> np.ndarray:
        """The float64 objective max_r rows_r @ f(x) + consts_r at points x (B, n_in), through the IR: (B,)."""
        b = self.bounder
        f = np.atleast_2d(b.net.forward(np.atleast_2d(x)))
        return (f @ b.rows.T + b.consts).max(axis=1)

    def bound_nodes(self, lo: np.ndarray, hi: np.ndarray, incumbent: Incumbent, cap=None) -> list[Node]:
        """Bound the boxes (B, n_in), offer their candidate points, and return them as nodes (bounds capped by
        ``cap`` (B,), the parents' bounds)."""
        ub, coef = self.bounder.bound(lo, hi)
        self.boxes += lo.shape[0]
        worst = np.argmax(ub, axis=1)
        rows = np.arange(lo.shape[0])
        bound = ub[rows, worst]
        bound = np.where(np.isnan(bound), np.inf, bound)  # float64 overflow: no bound (never a small one)
        if cap is not None:
            bound = np.minimum(bound, cap)
        c = coef[rows, worst]  # (B, n_in): the worst objective's linear bound
        live = np.isfinite(bound)
        if live.any():
            vertex = np.where(c > 0, hi, lo)[live]
            centre = (0.5 * lo + 0.5 * hi)[live]
            pts = np.vstack([vertex, centre])
            k = int(np.argmax(self.replay(pts)))
            incumbent.offer(float(self.replay(pts[k:k + 1])[0]), pts[k].copy())  # the point alone: its own value
        axis, flat = split_axes(lo, hi, np.abs(c) * (hi - lo), self.width0, _MAX_ASPECT)
        vol = volume_fraction(lo, hi, self.root_lo, self.root_hi)
        return [Node(float(bound[i]), (lo[i], hi[i], int(axis[i])), float(vol[i]), final=bool(flat[i]))
                for i in range(lo.shape[0])]

    def batch(self, top: Node, elapsed: float) -> int:
        return min(_MAX_BATCH, _FIRST_BATCH << min(self.steps, 10))

    def after_step(self, top, incumbent, elapsed) -> None:
        return None

    def expand(self, nodes: list[Node], incumbent: Incumbent) -> list[Node]:
        self.steps += 1
        lo = np.stack([n.item[0] for n in nodes])
        hi = np.stack([n.item[1] for n in nodes])
        axis = np.array([n.item[2] for n in nodes])
        cap = np.array([n.bound for n in nodes])
        clo, chi = halves(lo, hi, axis)
        return self.bound_nodes(clo, chi, incumbent, np.concatenate([cap, cap]))


def output_problem(query: Query, rows: np.ndarray | None = None, consts: np.ndarray | None = None) -> _OutputProblem:
    """The search problem of :func:`output_bnb` (default objectives: the invariance violation of the query's box):
    one set-up for the main process and every worker."""
    net, box = query.network, query.box
    if rows is None:
        rows, consts = violation_rows(net, box)
    return _OutputProblem(OutputBounder(net, box, rows, consts))


def output_bnb(query: Query, rows: np.ndarray | None = None, consts: np.ndarray | None = None,
               executor=None) -> EngineResult:
    """Bracket V = sup_X max_r rows_r @ f(x) + consts_r (default: the invariance violation of the query's box) by
    the input-split branch and bound of the module docstring.

    ``query.threshold`` t (0 for invariance): certify mode, stop once every box bound is < t or a replayed point
    exceeds t; None: exact mode (close boxes within ``query.config.invariance.gap_tol`` of the best point).
    ``query.config.budget``: boxes at most; ``query.lower_seed`` prunes; ``query.lower_point`` is replayed first.

    ``executor``: run the search loop on it (:func:`~certify.engines.parallel.search_executor` of this query, on a
    pool of the caller's) instead of on the workers the config asks for; the invariance violation only (a worker
    rebuilds its objectives from the query alone)."""
    if rows is not None and executor is not None:
        raise UsageError("output_bnb: an executor runs the invariance violation only (rows is given)")
    t0 = time.perf_counter()
    box, options = query.box, query.config.invariance
    problem = output_problem(query, rows, consts)
    replay = problem.replay
    rng = np.random.default_rng(query.seed)
    pts = [box.center[None], box.lower + (box.upper - box.lower) * rng.random((options.samples, box.dim))]
    if query.lower_point is not None:
        pts.append(box.clip(np.asarray(query.lower_point, dtype=np.float64))[None])
    pts = np.vstack(pts)
    k = int(np.argmax(replay(pts)))
    incumbent = Incumbent(float(replay(pts[k:k + 1])[0]), pts[k].copy())
    limits = bracket_limits(query, trace_every=4, lower_seed=query.lower_seed)
    roots = problem.bound_nodes(box.lower[None].copy(), box.upper[None].copy(), incumbent)
    # workers for the invariance violation only: a worker rebuilds its objectives from the query alone
    with search_executor(query, "output", executor=executor) if rows is None else nullcontext() as loop_executor:
        run = best_first(problem, roots, incumbent, limits, start=t0, executor=loop_executor)
    return bracket_result(run, incumbent, t0, "a replayed point exceeds the threshold",
                          SearchCounts(nodes=run.steps, boxes=problem.boxes), "crown")

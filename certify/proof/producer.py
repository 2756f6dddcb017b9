"""Writing proof files: for every certified check of a :class:`~certify.report.report.Report`, evidence that
:mod:`certify.proof.checker` re-checks without certify's engines or any solver.

The file (JSON, ``.gz`` for gzip; schema ``certify-proof/1``)::

    {"format": "certify-proof/1", "tool": {"name": "certify", "version"},
     "model": {"path", "sha256", "files": [{"path", "sha256"}, ...]},       # files: e.g. a closed loop's controller
     "region": {"lower": [...], "upper": [...], "n_states", "names"},        # decimal strings (repr of float64)
     "network": {"layers": [{"weight", "bias", "activation": {"kind", ...}}], "out_weight", "out_bias", "skip",
                 "n_states"},
     "checks": [{"check": "dissipativity", "status": "proven", "claim": {...}, "evidence": {...}}
                | {"check": "equilibria", "status": "not_proven", "reason": "..."}]}

Claims: ``{"kind": "sup_norm", "quantity": "A*" | "J", "columns", "norm": "1" | "2" | "inf", "bound",
"metric": null | {"P", "T", "Q"}, "lower": null | {"value", "witness"}}`` (sup over the box of ||M(x)|| <= bound;
for the gain also a lower bound attained at a witness) and ``{"kind": "invariance", "bound": "0"}`` (every state
output stays inside its interval: max violation < bound) and ``{"kind": "equilibria", "points", "radius"}`` (every
equilibrium in the box is within radius of a listed point and each listed point within radius of one; evidence a
tree of neuron splits down to regions, :mod:`certify.proof.equilibria`) and ``{"kind": "stability", "norm",
"rate", "metric", "start_set": "box" | "ball", "center", "radius", "residual"}`` (sup ||J|| <= rate < 1 and the
start set, :func:`certify.proof.checker.check_stability`; evidence ``{"kind": "stability", "contraction": ...,
"invariance": ...}``, the invariance tree only for the box) and ``{"kind": "output_bounds", "lower", "upper"}``
(per output a decimal string or null: lower_i < f_i(x) < upper_i over the box; the float64 bounds of a VNNLIB
property, written exactly; evidence a tree). Evidence: ``{"kind": "product"}``
(Corollary 4) or ``{"kind": "tree", "entries": [...]}``, a pre-order list of ``["n", l, i]`` (split neuron i of
layer l; one child per piece follows), ``["a", j]`` (halve coordinate j; two children follow), ``["b"]`` (a leaf
closed by the bound the checker recomputes) and ``["f", [[row, y], ...]]`` (a leaf proved empty by Farkas
multipliers on its split rows).

How a tree is found: a best-first search of its own (:func:`certify.engines.search.best_first`) whose node bounds
are the checker's own (:class:`certify.proof.enclosure.Evaluator`), so that every leaf it closes closes in the
checker too; piecewise-linear nets split neurons layer by layer (an LP from :mod:`certify.solvers` proposes the
Farkas multipliers of a piece that looks empty: the checker's arithmetic decides), smooth nets and the
invariance claim halve boxes. It runs only for checks certify already certified, and a tree that does not close
within the budget leaves the check "not proven here" with the reason. Every proof is re-checked by the checker
before it is written (``recheck``).
"""

from __future__ import annotations

import gzip
import json
import math
import os
import time
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path

import numpy as np

from ..certificate import CheckName, CheckResult, StabilityDetails, SupNormDetails, Verdict
from ..engines.search import Incumbent, SearchLimits, best_first
from ..engines.search import Node as SearchNode
from ..errors import UsageError
from ..ir.metric import Metric
from ..ir.numerics import norm_label
from ..report.output import write_atomic
from ..report.provenance import certify_version
from ..solvers import registry
from ..solvers.base import SolveStatus
from . import checker, equilibria
from .enclosure import Evaluator, Node, Unsupported, farkas_certifies, product_bound

GAIN_SLACK = 1e-9  # a gain's claim is [lower (1 - slack), upper (1 + slack)]: the checker's rounding needs room
GAIN_TINY = 1e-9  # and at least this much absolute room: a gain of 0 (a constant map) leaves no relative room
_POOL = 16  # sample points kept per node (they spare the LP of pieces they show non-empty)


@dataclass(frozen=True)
class ProofOptions:
    """``timeout``: seconds of proof search per check; ``max_nodes``: nodes per search; ``recheck``: run the
    checker on each proof before writing it; ``seed``: the sample points."""

    timeout: float = 120.0
    max_nodes: int = 2_000_000
    recheck: bool = True
    seed: int = 0


def _s(v: float) -> str:
    return repr(float(v))


def _strings(a) -> list:
    a = np.asarray(a, dtype=np.float64)
    return [_s(v) for v in a] if a.ndim == 1 else [_strings(row) for row in a]


def activation_spec(act) -> dict:
    kind = act.kind.value
    out = {"kind": kind}
    if kind == "leaky_relu":
        out["alpha"] = _s(act.alpha)
    elif kind == "prelu":
        out["slopes"] = [_s(v) for v in act.slopes]
    elif kind == "clip":
        out["lo"], out["hi"] = _s(act.lo), _s(act.hi)
    elif kind == "elu":
        out["alpha"] = _s(act.alpha)
    return out


def network_spec(net) -> dict:
    """A :class:`~certify.ir.network.Network` as exact decimal strings."""
    return {"layers": [{"weight": _strings(l.weight), "bias": _strings(l.bias), "activation": activation_spec(
        l.activation)} for l in net.layers], "out_weight": _strings(net.out_weight), "out_bias": _strings(
        net.out_bias), "skip": None if net.skip is None else _strings(net.skip), "n_states": int(net.n_states)}


def metric_spec(p_rows) -> dict:
    m = Metric.of(np.array(p_rows, dtype=np.float64))
    return {"P": _strings(m.p), "T": _strings(m.t), "Q": _strings(m.t_inv)}


# ============================================================================================ the tree search
class _Tree:
    """A node of the tree being built: the checker's node, and what closed it (split, kids, Farkas pairs)."""

    __slots__ = ("node", "split", "kids", "farkas", "points")

    def __init__(self, node: Node, points: np.ndarray) -> None:
        self.node, self.points = node, points
        self.split, self.kids, self.farkas = None, None, None


class _Failed(Exception):
    pass


class _TreeProblem:
    """The proof search as a :class:`~certify.engines.search.SearchProblem` (module docstring)."""

    def __init__(self, ev: Evaluator, value, level: float, boxes: bool, lp) -> None:
        self.ev, self.value, self.level, self.boxes, self.lp = ev, value, level, boxes, lp
        net = ev.net
        first = net.weights[0] if net.L else net.out_w
        self.sensitivity = np.abs(first).sum(axis=0) + 1e-12
        self.lps = 0

    @staticmethod
    def _choose(rec, free: np.ndarray) -> int:
        """The neuron to split among the undetermined ``free`` ones of the current layer: the one with the widest
        range (measured on the LipBaB nets: fewer nodes than the most balanced one or the first)."""
        return int(free[int(np.argmax(rec.zu[free] - rec.zl[free]))])

    def batch(self, top, elapsed) -> int:
        return 8 if self.boxes else 1

    def after_step(self, top, incumbent, elapsed) -> None:
        return None

    def filed(self, tree: _Tree) -> list[SearchNode]:
        b = self.value(tree.node)
        if b == -math.inf:
            return []
        final = self._final(tree)
        if final and b > self.level:
            raise _Failed(f"a region (a node that cannot be split further) has the bound {b!r} above the claim")
        return [SearchNode(b, tree, final=final)]

    def _final(self, tree: _Tree) -> bool:
        node = tree.node
        if self.boxes:
            return not np.any(node.hi > node.lo)
        self.ev.prefix(node)
        return node.empty or node.l_star >= self.ev.net.L

    def expand(self, nodes, incumbent) -> list[SearchNode]:
        out = []
        for sn in nodes:
            tree = sn.item
            kids = self._split_box(tree) if self.boxes else self._split_neuron(tree)
            for kid in kids:
                if kid.farkas is None:
                    out += self.filed(kid)
        return out

    def _split_box(self, tree: _Tree) -> list[_Tree]:
        node = tree.node
        width = (node.hi - node.lo) * self.sensitivity
        axis = int(np.argmax(width))
        tree.split = ["a", axis]
        tree.kids = [_Tree(child, tree.points) for child in node.split_axis(axis)]
        return tree.kids

    def _split_neuron(self, tree: _Tree) -> list[_Tree]:
        node, ev = tree.node, self.ev
        recs = ev.prefix(node)
        l = node.l_star
        rec = recs[l]
        free = np.nonzero(rec.piece < 0)[0]
        i = self._choose(rec, free)
        tree.split = ["n", l, i]
        kids = []
        for child in ev.split_neuron(node, l, i):
            ev.prefix(child)
            if child.empty:  # the intervals close it (a "b" leaf): no LP
                kids.append(_Tree(child, tree.points[:0]))
                continue
            a, b = ev.rows(child)
            points = self._points(tree.points, a, b, child)
            kid = _Tree(child, points)
            if points.shape[0] == 0:
                kid.points = self._chebyshev(child, a, b)
                if kid.points.shape[0] == 0:
                    kid.farkas = self._farkas(child, a, b)
            kids.append(kid)
        tree.kids = kids
        return kids

    @staticmethod
    def _points(points: np.ndarray, a: np.ndarray, b: np.ndarray, node: Node) -> np.ndarray:
        """The parent's points that satisfy the child's rows strictly, else those points pushed across the new
        row's plane (a heuristic that spares LPs: a point only shows a piece non-empty, it proves nothing)."""
        if points.shape[0] == 0:
            return points
        slack = b[None, :] - points @ a.T
        ok = np.all(slack > 0, axis=1)
        if ok.any():
            return points[ok][:_POOL]
        row = a[-1] if a.shape[0] else None
        if row is None or not np.any(row):
            return points[:0]
        nrm2 = float(row @ row)
        scale = float(np.max(node.hi - node.lo)) or 1.0
        for depth in (1e-2, 1e-4, 1e-6):
            x = points - ((points @ row - b[-1]) / nrm2 + depth * scale / math.sqrt(nrm2))[:, None] * row[None, :]
            x = np.clip(x, node.lo, node.hi)
            ok = np.all(b[None, :] - x @ a.T > 0, axis=1)
            if ok.any():
                return x[ok][:_POOL]
        return points[:0]

    def _chebyshev(self, node: Node, a: np.ndarray, b: np.ndarray) -> np.ndarray:
        """A point strictly inside the node's rows from the Chebyshev LP (max t: a_i x + t ||a_i|| <= b_i, x in the
        box), as a (1, n) array, or an empty (0, n) array."""
        n = node.lo.size
        none = np.zeros((0, n))
        if self.lp is None or a.shape[0] == 0:
            return none
        norms = np.linalg.norm(a, axis=1)
        norms = np.where(norms > 0, norms, 1.0)
        c = np.zeros(n + 1)
        c[-1] = 1.0
        a_ub = np.hstack([a, norms[:, None]])
        lower = np.concatenate([node.lo, [-np.inf]])
        upper = np.concatenate([node.hi, [float(np.max(node.hi - node.lo)) or 1.0]])
        self.lps += 1
        status, z = self.lp.solve_arrays(c, a_ub, b, lower, upper, maximize=True)
        if status is not SolveStatus.OPTIMAL or z is None or not z[-1] > 0:
            return none
        x = np.clip(z[:n], node.lo, node.hi)
        return x[None, :] if np.all(a @ x < b) else none

    def _farkas(self, node: Node, a: np.ndarray, b: np.ndarray):
        """[[row, y], ...] proving the node empty (checked by the checker's own test), or None."""
        k, n = a.shape
        if k == 0 or self.lp is None:
            return None
        lo, hi = node.lo, node.hi
        # max (a lo - b)^T y - width^T w  s.t.  -a^T y - w <= 0,  sum y <= 1,  0 <= y <= 1,  w >= 0
        c = np.concatenate([a @ lo - b, -(hi - lo)])
        a_ub = np.vstack([np.hstack([-a.T, -np.eye(n)]), np.concatenate([np.ones(k), np.zeros(n)])[None, :]])
        b_ub = np.concatenate([np.zeros(n), [1.0]])
        lower = np.zeros(k + n)
        upper = np.concatenate([np.ones(k), np.full(n, np.inf)])
        self.lps += 1
        status, z = self.lp.solve_arrays(c, a_ub, b_ub, lower, upper, maximize=True)
        if status is not SolveStatus.OPTIMAL or z is None or not float(c @ z) > 0:
            return None
        y = np.maximum(z[:k], 0.0)
        for cut in (1e-12, 0.0):
            idx = np.nonzero(y > cut * float(np.max(y)))[0]
            if farkas_certifies(a, b, lo, hi, idx, y[idx]):
                return [[int(i), float(y[i])] for i in idx]
        return None


def _entries(root: _Tree) -> list:
    out, stack = [], [root]
    while stack:
        t = stack.pop()
        if t.split is not None:
            out.append(t.split)
            stack.extend(reversed(t.kids))
        elif t.farkas is not None:
            out.append(["f", t.farkas])
        else:
            out.append(["b"])
    return out


def search_tree(ev: Evaluator, lo: np.ndarray, hi: np.ndarray, value, level: float, boxes: bool,
                options: ProofOptions):
    """A tree whose bounded leaves all have ``value(node) <= level`` (entries), or raise _Failed with the reason.
    ``value``: the checker's bound of a node; ``boxes``: halve boxes instead of splitting neurons."""
    lp = None
    if not boxes:
        try:
            lp = registry.get_backend("highs", registry.ProblemKind.LP_SEQUENCE)
        except registry.BackendUnavailableError:
            lp = None  # no Farkas multipliers: only intervals can empty a piece
    rng = np.random.default_rng(options.seed)
    points = np.vstack([0.5 * (lo + hi), rng.uniform(lo, hi, size=(_POOL - 1, lo.size))])
    problem = _TreeProblem(ev, value, level, boxes, lp)
    root = _Tree(Node.root(ev.net, lo, hi), points)
    limits = SearchLimits(threshold=level, deadline=time.perf_counter() + options.timeout, timeout=options.timeout,
                          max_nodes=options.max_nodes, unit="nodes")
    run = best_first(problem, problem.filed(root), Incumbent(), limits)
    if run.outcome.value != "certified" or run.open:
        raise _Failed(run.reason or f"the proof search ended {run.outcome.value} with {run.open} open nodes")
    return _entries(root), {"nodes": run.bounded, "lps": problem.lps}


# ============================================================================================ claims per check
#: the sup-norm checks and their claims' (quantity, state columns only), read from the checker's table of what each
#: check's claim must be (:data:`certify.proof.checker.BINDINGS`), so that the two cannot disagree
_SUP = {CheckName(name): (rule.quantity, rule.columns == "states") for name, rule in checker.BINDINGS.items()
        if rule.claim == "sup_norm"}


def _not_proven(result: CheckResult, reason: str) -> dict:
    return {"check": result.check.value, "status": "not_proven", "reason": reason}


def prove_check(result: CheckResult, net_spec: dict, net, lo, hi, norm: float, margin: float,
                options: ProofOptions, outputs=None) -> dict:
    """The proof entry of one check (see the module docstring); ``outputs``: the output property of an
    output_bounds check."""
    if result.verdict is not Verdict.CERTIFIED:
        return _not_proven(result, f"the check is {result.verdict.value}; only certified checks carry proofs")
    if result.check is CheckName.OUTPUT_BOUNDS:
        return _prove_output_bounds(result, net, lo, hi, outputs, options)
    if result.check is CheckName.INVARIANCE:
        return _prove_invariance(result, net, lo, hi, options)
    if result.check is CheckName.EQUILIBRIA:
        return _prove_equilibria(result, net, lo, hi, options)
    if result.check is CheckName.STABILITY:
        return _prove_stability(result, net, lo, hi, margin, options)
    if result.check not in _SUP:
        return _not_proven(result, f"the checker does not re-prove {result.check.value} yet")
    quantity, states = _SUP[result.check]
    if any(a is None for a in net.acts):
        return _not_proven(result, "the network has an activation the checker does not compute (it computes "
                           "relu, leaky_relu, prelu, identity, clip, tanh and sigmoid)")
    cols = net.n_states if states else net.n_in
    claim = {"kind": "sup_norm", "quantity": quantity, "columns": cols, "norm": norm_label(norm), "metric": None,
             "lower": None}
    metric = None
    details = result.details
    if isinstance(details, SupNormDetails) and details.metric is not None:
        try:
            claim["metric"] = metric_spec(details.metric)
            metric = checker.metric_factor(claim["metric"], cols)
        except (UsageError, checker.Invalid) as exc:  # a metric refused here or by the checker's exact test
            return _not_proven(result, f"the checker does not accept the metric: {exc}")
    if not checker.BINDINGS[result.check.value].threshold:  # the gain: a bracket [lower, upper], no threshold
        bound = max(result.upper * (1.0 + GAIN_SLACK), GAIN_TINY)
        if result.witness is not None:
            low = result.lower * (1.0 - GAIN_SLACK) if result.lower > GAIN_TINY else result.lower - GAIN_TINY
            claim["lower"] = {"value": _s(low),
                              "witness": [_s(v) for v in result.witness.x]}
    else:
        bound = 1.0 - margin
    claim["bound"] = _s(bound)
    try:
        ev = Evaluator(net, quantity == "A*", cols, norm, metric)
    except Unsupported as exc:
        return _not_proven(result, str(exc))
    try:
        evidence = _sup_evidence(ev, net, lo, hi, bound, options, tree=result.check is not CheckName.WEIGHT_NORM)
    except _Failed as exc:
        return _not_proven(result, str(exc))
    return {"check": result.check.value, "status": "proven", "claim": claim, "evidence": evidence}


def _sup_evidence(ev: Evaluator, net, lo, hi, bound: float, options: ProofOptions, tree: bool = True) -> dict:
    """Evidence that sup over the box of the evaluator's ||M|| is <= bound: the Corollary 4 product when it reaches
    the bound, else (``tree``) a tree the proof search closes; _Failed (with the reason) otherwise."""
    level = bound - 1e-12 * max(1.0, abs(bound))  # room for another machine's last-bit rounding
    if product_bound(ev, Node.root(net, lo, hi)) <= level:
        return {"kind": "product"}
    if not tree:
        raise _Failed("the checker's Corollary 4 product does not reach the claim")
    pwl = all(a.pwl for a in net.acts) and not ev.secant_chain  # neuron splits where M is constant on regions
    try:
        entries, counts = search_tree(ev, lo, hi, lambda node: ev.bound(node, level), level, not pwl, options)
    except _Failed as exc:
        raise _Failed(f"the proof search did not close: {exc}") from None
    return {"kind": "tree", "entries": entries, "search": counts}


def _invariance_evidence(net, lo, hi, upper: float, options: ProofOptions, low=None, up=None) -> dict:
    """A tree of box halvings on which the checker's enclosures keep f inside the box, or with ``low``/``up``
    (per output, -inf / inf where free) within those bounds (``upper``: certify's bound on the violation, which sets
    how far below 0 the search aims); _Failed otherwise."""
    n = net.n_states if up is None else len(up)
    ev = Evaluator(net, False, net.n_in, 1.0)
    up = hi[:n] if up is None else np.asarray(up, dtype=np.float64)
    low = lo[:n] if low is None else np.asarray(low, dtype=np.float64)

    above, below = np.isfinite(up), np.isfinite(low)  # the bounded sides, as the checker compares only them

    def violation(node):
        got = ev.output_range(node)
        if got is None:
            return -math.inf
        fl, fu = got[0][:n], got[1][:n]
        v = max(float(np.max(fu[above] - up[above], initial=-math.inf)),
                float(np.max(low[below] - fl[below], initial=-math.inf)))
        scale = max(float(np.max(np.abs(fu[above]), initial=0.0)), float(np.max(np.abs(fl[below]), initial=0.0)))
        return v + 1e-15 * (scale + 1.0)

    level = min(0.5 * upper, -1e-12) if upper < 0 else -1e-12
    try:
        entries, counts = search_tree(ev, lo, hi, violation, level, True, options)
    except _Failed as exc:
        raise _Failed(f"the proof search did not close: {exc}") from None
    return {"kind": "tree", "entries": entries, "search": counts}


def _prove_invariance(result: CheckResult, net, lo, hi, options: ProofOptions) -> dict:
    if any(a is None for a in net.acts):
        return _not_proven(result, "the network has an activation the checker does not compute")
    try:
        evidence = _invariance_evidence(net, lo, hi, result.upper, options)
    except _Failed as exc:
        return _not_proven(result, str(exc))
    return {"check": result.check.value, "status": "proven", "claim": {"kind": "invariance", "bound": _s(0.0)},
            "evidence": evidence}


def _prove_output_bounds(result: CheckResult, net, lo, hi, outputs, options: ProofOptions) -> dict:
    """A tree on which the checker's enclosures of f stay within the property's float64 bounds (each a float
    strictly on the safe side of the file's constant, :mod:`certify.importers.vnnlib`), claimed as their exact
    decimal values: the checker holds them to the file's constants."""
    if outputs is None:
        return _not_proven(result, "the report carries no output property")
    if any(a is None for a in net.acts) or net.out_w.shape[0] != outputs.dim:
        return _not_proven(result, "the checker proves output bounds of nets with activations it computes")
    low, up = np.asarray(outputs.lower, dtype=np.float64), np.asarray(outputs.upper, dtype=np.float64)
    try:
        evidence = _invariance_evidence(net, lo, hi, result.upper, options, low, up)
    except _Failed as exc:
        return _not_proven(result, str(exc))
    claim = {"kind": "output_bounds",
             "lower": [str(Decimal(float(v))) if math.isfinite(v) else None for v in low],
             "upper": [str(Decimal(float(v))) if math.isfinite(v) else None for v in up]}
    return {"check": result.check.value, "status": "proven", "claim": claim, "evidence": evidence}


STABILITY_ROOM = 1e-9  # the claimed radius sits this much (relative) inside certify's, the residual above


def _prove_stability(result: CheckResult, net, lo, hi, margin: float, options: ProofOptions) -> dict:
    """A contraction tree at a rate in (certify's rate, 1 - margin] (the midpoint up to 1 when the margin is 0) and
    the start set: the box with an invariance tree, or the ball around the first equilibrium with certify's radius
    (a little inside) and the checker's own residual bound (a little above), the rate lowered to fit
    radius (1 - rate) >= residual."""
    d = result.details
    n = net.n_states
    if not isinstance(d, StabilityDetails) or d.start_set not in ("box", "ellipsoid", "ball") or d.rate is None:
        return _not_proven(result, "the result carries no stability details")
    if net.n_in != n or net.out_w.shape[0] != n or any(a is None for a in net.acts):
        return _not_proven(result, "the checker proves stability of maps of the states with activations it computes")
    p = float(d.norm)
    claim = {"kind": "stability", "norm": norm_label(p), "metric": None}
    metric = None
    if d.metric is not None and not np.array_equal(np.array(d.metric), np.eye(n)):
        try:
            claim["metric"] = metric_spec(d.metric)
            metric = checker.metric_factor(claim["metric"], n)
        except (UsageError, checker.Invalid) as exc:
            return _not_proven(result, f"the checker does not accept the metric: {exc}")
    top = 1.0 - margin if margin > 0 else 1.0
    if d.start_set == "box":
        claim["start_set"] = "box"
    else:
        if not d.equilibria or d.radius is None:
            return _not_proven(result, "the result names no equilibrium and radius for its ball")
        center = np.array(d.equilibria[0], dtype=np.float64)
        radius = float(d.radius) * (1.0 - STABILITY_ROOM)
        shape = np.eye(n) if claim["metric"] is None else np.array(claim["metric"]["P"], dtype=np.float64)
        pe = None if p != 2.0 else checker.exact_matrix(shape)  # the P the checker reads from the claim
        try:
            got = checker.residual_upper(Evaluator(net, False, n, p), net, center, p, pe)
        except checker.Invalid as exc:  # an enclosure of f at the centre that is empty or overflows
            return _not_proven(result, str(exc))
        residual = (math.sqrt(float(got)) if pe is not None else float(got)) * (1.0 + STABILITY_ROOM) + 1e-300
        top = min(top, 1.0 - residual / radius * (1.0 + STABILITY_ROOM))
        claim.update(start_set="ball", center=[_s(v) for v in center], radius=_s(radius), residual=_s(residual))
    if not top > d.rate:
        return _not_proven(result, f"no rate in ({d.rate!r}, 1) fits the claim ({top!r} at most)")
    rate = top if margin > 0 and top == 1.0 - margin else 0.5 * (d.rate + top)
    claim["rate"] = _s(rate)
    try:
        evidence = {"kind": "stability",
                    "contraction": _sup_evidence(Evaluator(net, False, n, p, metric), net, lo, hi, rate, options)}
        if d.start_set == "box":
            upper = d.invariance_upper if d.invariance_upper is not None else 0.0
            evidence["invariance"] = _invariance_evidence(net, lo, hi, upper, options)
    except _Failed as exc:
        return _not_proven(result, str(exc))
    return {"check": result.check.value, "status": "proven", "claim": claim, "evidence": evidence}


EQUILIBRIUM_RADIUS = 1e-9  # relative (to max(1, |x|)): how far a listed equilibrium may be from the exact one


def _prove_equilibria(result: CheckResult, net, lo, hi, options: ProofOptions) -> dict:
    """A tree of neuron splits down to regions (:mod:`certify.proof.equilibria`); the listed points are the exact
    equilibria it finds, rounded, and must agree with the ones certify reported."""
    n = net.n_in
    if net.out_w.shape[0] != n or net.n_states != n or any(a is None or not a.pwl for a in net.acts):
        return _not_proven(result, "the checker proves equilibria of piecewise-linear maps of the states only")
    ev = Evaluator(net, False, n, 1.0)
    maps = equilibria.RegionMaps(net)
    exact: list = []

    def value(node):
        how, x = equilibria.settle_leaf(ev, maps, node)
        if how == "point":
            exact.append(x)
        if how == "singular":
            raise _Failed("I - A is singular on a region (the equilibria are not isolated)")
        return 1.0 if how == "open" else -math.inf

    try:
        entries, counts = search_tree(ev, lo, hi, value, 0.0, False, options)
    except _Failed as exc:
        return _not_proven(result, f"the proof search did not close: {exc}")
    points: list[np.ndarray] = []
    for x in exact:
        p = np.array([float(v) for v in x])
        if not any(np.max(np.abs(p - q)) <= 1e-12 * max(1.0, float(np.max(np.abs(q)))) for q in points):
            points.append(p)
    scale = max([1.0] + [float(np.max(np.abs(p))) for p in points])
    radius = EQUILIBRIUM_RADIUS * scale
    reported = [np.array(x) for x in getattr(result.details, "points", ())]
    if len(reported) != len(points) or not all(any(np.max(np.abs(p - q)) <= 1e-6 * scale for q in reported)
                                               for p in points):
        return _not_proven(result, f"certify reported {len(reported)} equilibria, the proof search found "
                           f"{len(points)} (please report)")
    claim = {"kind": "equilibria", "points": [[_s(v) for v in p] for p in points], "radius": _s(radius)}
    return {"check": result.check.value, "status": "proven", "claim": claim,
            "evidence": {"kind": "tree", "entries": entries, "search": counts}}


# ============================================================================================ the file
def model_files(model_path: str) -> list[dict]:
    """The files beside the model that its IR depends on (a closed loop's controller), with their sha256."""
    from ..importers.system_file import is_system_file, read_system

    if not model_path or not os.path.isfile(model_path) or not is_system_file(model_path):
        return []
    ctrl = read_system(model_path).controller_path
    rel = os.path.relpath(ctrl, os.path.dirname(os.path.abspath(model_path)))
    return [{"path": rel, "sha256": checker.sha256_of(ctrl)}]


def build_proof(report, options: ProofOptions | None = None) -> dict:
    """The proof object of a report (module docstring). The report must carry its network (``verify`` sets it)."""
    options = options or ProofOptions()
    net_ir = report.network
    if net_ir is None:
        raise ValueError("the report carries no network: build it with certify.verify to write a proof")
    box = report.box
    spec = network_spec(net_ir)
    net = checker.parse_network(spec)
    lo, hi = np.array(box.lower, dtype=np.float64), np.array(box.upper, dtype=np.float64)
    proof = {"format": checker.FORMAT, "tool": {"name": "certify", "version": certify_version()},
             "model": {"path": report.model_path, "sha256": report.model_sha256,
                       "files": model_files(report.model_path)},
             "region": {"lower": _strings(lo), "upper": _strings(hi), "n_states": int(box.n_states),
                        "names": list(box.names)},
             "network": spec, "checks": []}
    for result in report.results:
        t0 = time.perf_counter()
        with np.errstate(over="ignore", invalid="ignore"):  # overflowing enclosures are inf, decided as such
            entry = prove_check(result, spec, net, lo, hi, report.norm, report.margin, options,
                                getattr(report, "outputs", None))
            entry.setdefault("seconds", round(time.perf_counter() - t0, 3))
            if entry["status"] == "proven" and options.recheck:
                entry = _recheck(proof, entry, result)
        proof["checks"].append(entry)
    return proof


def _recheck(proof: dict, entry: dict, result: CheckResult) -> dict:
    """Run the checker on the one entry; a proof it refuses is not written (the check is listed not proven)."""
    lines: list[str] = []
    code = checker.check_proof({**proof, "checks": [entry]}, out=lines.append)
    if code == checker.EXIT_VALID:
        return entry
    return _not_proven(result, f"the proof found did not re-check ({lines[-1] if lines else code}); please report")


def proof_bytes(proof: dict, path: str | os.PathLike) -> bytes:
    """The file's bytes: compact JSON, gzip-compressed when ``path`` ends with .gz."""
    text = json.dumps(proof, separators=(",", ":"), allow_nan=False).encode("utf-8")
    return gzip.compress(text, mtime=0) if str(path).endswith(".gz") else text


def write_proof(report, path: str | os.PathLike, options: ProofOptions | None = None) -> dict:
    """Write the proof of ``report`` to ``path`` atomically (gzip when it ends with .gz); returns the proof."""
    proof = build_proof(report, options)
    write_atomic(Path(path), proof_bytes(proof, path))
    return proof

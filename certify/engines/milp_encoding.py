"""MILP encodings of piecewise-linear nets (DESIGN.md section 2, "MILP"), and the analyses built on them.

Every piecewise-linear activation is written as an affine part plus ReLU terms,

    sigma(z) = slope * z + offset + sum_k coef_k * relu(z - knot_k)            (:func:`relu_decomposition`)

(ReLU: one term; LeakyReLU/PReLU with slope a: a z + (1 - a) relu(z); identity: no term; clip(lo, hi):
lo + relu(z - lo) - relu(z - hi)). Each term r = relu(z - t) with z in [l, u] (pre-activation bounds over the box,
from :func:`certify.bounds.interval_bounds` or tighter sound bounds given by the caller) is

* fixed to 0 when u <= t, to z - t when l >= t (stable: no binary);
* otherwise big-M with a binary d:  r >= z - t,  r >= 0,  r <= z - t - (l - t)(1 - d),  r <= (u - t) d.

This is exact (the MILP's feasible x-set and outputs equal the net's) whenever the bounds are sound.

Jacobian-vector products (LipMIP style): the derivative of sigma is slope + sum_k coef_k d_k, so a tangent s
through a neuron becomes slope * s + sum_k coef_k m_k with m_k = d_k * s, written exactly for binary d_k by the
McCormick rows  m >= sl d,  m <= su d,  m >= s - su (1 - d),  m <= s - sl (1 - d)  with s in [sl, su] (interval
arithmetic on the tangent). At a kink (z = t) the MILP may take either one-sided derivative, so the MILP gain is the
maximum over the closed activation regions; it equals the maximum over full-dimensional regions except on
degenerate nets (a pattern realised only on a lower-dimensional set).

This module builds solver-neutral :class:`certify.solvers.base.LinearProgram` s; it imports no solver library. The
analyses at the bottom (:func:`equilibrium_exists_milp`, :func:`milp_gain`) look backends up by name through
:mod:`certify.solvers.registry`.

Soundness of a bound taken from a solver: the solver's dual bound is a floating-point claim made under its
feasibility tolerance ``tol`` (a row may be violated by ``tol``, a binary may sit ``tol`` away from 0 or 1, which lets
a ReLU term move by ``tol`` times its big-M constant M). Bounds are widened before use:

* output bounds (:func:`output_padding`): ``tol * sum_l e_l * ||s_l||_1 + 1e-7 * max(1, |v|)``, where
  ``e_l = 1 + sum_k max_j |coef_kj| M_kj`` is how far a neuron of hidden layer l can move and ``s_l`` the
  sensitivity of the objective to layer l (|weights| |W_L| diag(max|sigma'|) |W_{L-1}| ..., first order);
* gain bounds (:func:`bound_padding`): ``tol * big_m_scale * amplification + 1e-7 * max(1, |v|)``, with the largest
  big-M constant of the whole gadget and a |W|-chain amplification (cruder: the gain MILP is a cross-check).

The 1e-7 relative term covers the rounding of coefficients and of CBC's 8-digit output. This padding is a stated
assumption about the solver (violations at most its tolerance), not a proof.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field, replace

import numpy as np

from ..bounds.crown import symbolic_bounds
from ..bounds.interval import LayerBounds, interval_bounds
from ..errors import UsageError
from ..ir.activations import Activation
from ..ir.box import Box
from ..ir.network import Network
from ..ir.numerics import SOLVER_REL_PAD, affine_interval
from ..ir.pieces import pieces
from ..solvers import registry
from ..solvers.base import LinearProgram, SolveResult, SolveStatus

REL_PAD = SOLVER_REL_PAD  # relative padding of solver bounds (CBC's 8-digit output, coefficient rounding)


# ===================================================================== activations as affine + ReLU terms
@dataclass(frozen=True, eq=False)
class PiecewiseLinearForm:
    """sigma(z_j) = slope_j z_j + offset_j + sum_k coefs[k]_j relu(z_j - knots[k]_j) for a layer of n neurons.

    ``slope``, ``offset``: (n,); ``coefs``, ``knots``: (K, n) with K in {0, 1, 2}.
    """

    slope: np.ndarray
    offset: np.ndarray
    coefs: np.ndarray
    knots: np.ndarray


def relu_decomposition(act: Activation, width: int) -> PiecewiseLinearForm:
    """The affine + ReLU-terms form of a piecewise-linear activation; UsageError for a smooth one.

    Built from the activation's linear pieces (:func:`certify.bounds.interval.pieces`): with breakpoints bp_k and piece
    slopes a_0..a_K, a continuous sigma equals a_0 z + offset_0 + sum_k (a_{k+1} - a_k) relu(z - bp_k).
    """
    pcs = pieces(act, width)
    if pcs is None:
        raise UsageError(
            f"the MILP encoding needs piecewise-linear activations (relu, leaky_relu, prelu, identity, clip); "
            f"{act.describe()} is smooth: use interval bounds and sampling instead"
        )
    return PiecewiseLinearForm(
        slope=pcs.slope[:, 0].copy(),
        offset=pcs.offset[:, 0].copy(),
        coefs=np.diff(pcs.slope, axis=1).T.copy(),
        knots=pcs.breakpoints.T.copy(),
    )


# ===================================================================== a small model builder (internal)
class _Builder:
    """Accumulates variables (bounds, integrality, names) and sparse rows; :meth:`frozen` densifies once."""

    def __init__(self) -> None:
        self.lower: list[float] = []
        self.upper: list[float] = []
        self.integer: list[bool] = []
        self.names: list[str] = []
        self.ub: list[tuple[list[int], list[float], float]] = []
        self.eq: list[tuple[list[int], list[float], float]] = []
        self.big_m = 1.0

    def var(self, lo: float, hi: float, name: str, integer: bool = False) -> int:
        self.lower.append(float(lo))
        self.upper.append(float(hi))
        self.integer.append(integer)
        self.names.append(name)
        return len(self.lower) - 1

    def vars(self, lo: np.ndarray, hi: np.ndarray, prefix: str) -> np.ndarray:
        return np.array([self.var(a, b, f"{prefix}[{i}]") for i, (a, b) in enumerate(zip(lo, hi))], dtype=np.int64)

    def le(self, idx, coef, rhs: float) -> None:
        self.ub.append((list(map(int, idx)), list(map(float, coef)), float(rhs)))

    def eq_row(self, idx, coef, rhs: float) -> None:
        self.eq.append((list(map(int, idx)), list(map(float, coef)), float(rhs)))

    def note_m(self, *values: float) -> None:
        for v in values:
            if math.isfinite(v):
                self.big_m = max(self.big_m, abs(float(v)))

    def frozen(self) -> "MilpModel":
        n = len(self.lower)

        def dense(rows):
            a = np.zeros((len(rows), n))
            b = np.zeros(len(rows))
            for r, (idx, coef, rhs) in enumerate(rows):
                np.add.at(a[r], idx, coef)
                b[r] = rhs
            return a, b

        a_ub, b_ub = dense(self.ub)
        a_eq, b_eq = dense(self.eq)
        return MilpModel(
            a_ub=a_ub, b_ub=b_ub, a_eq=a_eq, b_eq=b_eq, lower=np.array(self.lower), upper=np.array(self.upper),
            integer=np.array(self.integer, dtype=bool), names=tuple(self.names), big_m_scale=self.big_m,
        )


@dataclass(frozen=True, eq=False)
class MilpModel:
    """The constraints of an encoding (shapes as in :class:`LinearProgram`) and its largest big-M constant."""

    a_ub: np.ndarray
    b_ub: np.ndarray
    a_eq: np.ndarray
    b_eq: np.ndarray
    lower: np.ndarray
    upper: np.ndarray
    integer: np.ndarray
    names: tuple[str, ...]
    big_m_scale: float

    @property
    def n_vars(self) -> int:
        return self.lower.shape[0]

    @property
    def n_binaries(self) -> int:
        return int(self.integer.sum())

    def program(self, c: np.ndarray, maximize: bool) -> LinearProgram:
        return LinearProgram(
            c=np.asarray(c, dtype=np.float64), a_ub=self.a_ub, b_ub=self.b_ub, a_eq=self.a_eq, b_eq=self.b_eq,
            lower=self.lower, upper=self.upper, integer=self.integer, maximize=maximize, names=self.names,
        )


# ===================================================================== the network's values
@dataclass(frozen=True, eq=False)
class TermEncoding:
    """One ReLU term r = relu(z - knot) of every neuron of a layer; arrays (n,).

    ``phase``: 0 inactive on the box (r = 0), 1 active (r = z - knot), 2 unstable (a binary); ``d``/``r``: variable
    indices of the binary and of r where unstable, -1 elsewhere.
    """

    coef: np.ndarray
    knot: np.ndarray
    phase: np.ndarray
    d: np.ndarray
    r: np.ndarray


@dataclass(frozen=True, eq=False)
class LayerEncoding:
    """Variable indices of one hidden layer: ``z`` and ``h`` (n,), the activation's form and its terms;
    ``error_scale``: how far (in units of the solver tolerance) a neuron's h can move within tolerances."""

    z: np.ndarray
    h: np.ndarray
    form: PiecewiseLinearForm
    terms: tuple[TermEncoding, ...]
    error_scale: float = 1.0  # 1 + sum_k max_j |coef_kj| M_kj over unstable terms (see output_padding)


@dataclass(frozen=True, eq=False)
class NetworkEncoding:
    """f over the box as a MILP: ``f(x) = out_coef @ v + out_const`` for every feasible v, x = v[x_index].

    ``model``: the constraints; ``x_index`` (n_in,); ``out_coef`` (n_out, n_vars); ``out_const`` (n_out,);
    ``layers``: per hidden layer indices; ``bounds``: the pre-activation bounds the big-M constants came from.
    """

    model: MilpModel
    x_index: np.ndarray
    out_coef: np.ndarray
    out_const: np.ndarray
    layers: tuple[LayerEncoding, ...]
    bounds: tuple[LayerBounds, ...]
    extra: dict = field(default_factory=dict)

    def output_program(self, i: int, maximize: bool, cutoff: float | None = None) -> LinearProgram:
        """max (or min) of f_i over the box; the program's objective omits the constant ``out_const[i]``.

        ``cutoff``: when given, one more row restricts the box to the points with f_i(x) >= cutoff (maximising)
        or f_i(x) <= cutoff (minimising). The program is then infeasible iff the optimum lies beyond the cutoff
        (max f_i < cutoff), and the solver prunes every node whose relaxation cannot reach it, as with an
        incumbent of value ``cutoff``. Its optimum, when feasible, is the unrestricted one.
        """
        prog = self.model.program(self.out_coef[i], maximize)
        if cutoff is None:
            return prog
        sign = -1.0 if maximize else 1.0  # max: -c v <= -(cutoff - const); min: c v <= cutoff - const
        row = sign * self.out_coef[i]
        rhs = sign * (float(cutoff) - self.out_const[i])
        return replace(prog, a_ub=np.vstack([prog.a_ub, row[None]]), b_ub=np.append(prog.b_ub, rhs))


def _check_inputs(net: Network, box: Box, bounds) -> list[LayerBounds]:
    if box.dim != net.n_in:
        raise UsageError(f"the box has {box.dim} coordinates but the net takes {net.n_in} inputs")
    for layer in net.layers:
        relu_decomposition(layer.activation, layer.width)  # raises UsageError for smooth activations
    if bounds is None:
        return interval_bounds(net, box)
    bounds = list(bounds)
    if len(bounds) != len(net.layers) or any(
        b.pre_lower.shape != (layer.width,) for b, layer in zip(bounds, net.layers)
    ):
        raise UsageError("bounds must hold one LayerBounds per hidden layer, shaped like the layer")
    return bounds


def _encode_values(bld: _Builder, net: Network, box: Box, bounds: list[LayerBounds]):
    x = bld.vars(box.lower, box.upper, "x")
    prev = x
    layers = []
    for li, (layer, lb) in enumerate(zip(net.layers, bounds)):
        n = layer.width
        zl, zu = np.asarray(lb.pre_lower, float), np.asarray(lb.pre_upper, float)
        hl, hu = np.asarray(lb.post_lower, float), np.asarray(lb.post_upper, float)
        z = bld.vars(zl, zu, f"z{li}")
        h = bld.vars(hl, hu, f"h{li}")
        w = layer.weight
        for j in range(n):  # z_j - W_j h_prev = b_j
            cols = np.flatnonzero(w[j])
            bld.eq_row([z[j], *prev[cols]], [1.0, *(-w[j, cols])], layer.bias[j])
        form = relu_decomposition(layer.activation, n)
        terms = []
        # h_j - slope z_j - sum coef r (unstable) - sum coef z_j (active) = offset - sum coef knot (active)
        h_idx = [[h[j]] for j in range(n)]
        h_coef = [[1.0] for _ in range(n)]
        h_rhs = form.offset.copy()
        z_coef = -form.slope.copy()
        error_scale = 1.0
        for k in range(form.coefs.shape[0]):
            coef, knot = form.coefs[k], form.knots[k]
            lo, hi = zl - knot, zu - knot
            unstable = (lo < 0) & (hi > 0)
            if unstable.any():
                error_scale += float(np.max(np.abs(coef[unstable]) * np.maximum(-lo[unstable], hi[unstable])))
            phase = np.where(hi <= 0, 0, np.where(lo >= 0, 1, 2)).astype(np.int8)
            d = np.full(n, -1, dtype=np.int64)
            r = np.full(n, -1, dtype=np.int64)
            for j in range(n):
                if coef[j] == 0.0 or phase[j] == 0:
                    continue
                if phase[j] == 1:
                    z_coef[j] -= coef[j]
                    h_rhs[j] -= coef[j] * knot[j]
                    continue
                r[j] = bld.var(0.0, hi[j], f"r{li}_{k}[{j}]")
                d[j] = bld.var(0.0, 1.0, f"d{li}_{k}[{j}]", integer=True)
                bld.note_m(lo[j], hi[j])
                bld.le([z[j], r[j]], [1.0, -1.0], knot[j])  # r >= z - t
                bld.le([r[j], z[j], d[j]], [1.0, -1.0, -lo[j]], -zl[j])  # r <= z - t - (l - t)(1 - d)
                bld.le([r[j], d[j]], [1.0, -hi[j]], 0.0)  # r <= (u - t) d
                h_idx[j].append(r[j])
                h_coef[j].append(-coef[j])
            terms.append(TermEncoding(coef, knot, phase, d, r))
        for j in range(n):
            bld.eq_row([*h_idx[j], z[j]], [*h_coef[j], z_coef[j]], h_rhs[j])
        layers.append(LayerEncoding(z, h, form, tuple(terms), error_scale))
        prev = h
    return x, prev, layers


def _finish(bld, net: Network, x, last, layers, bounds) -> NetworkEncoding:
    """Freeze the model and attach the output map f = W_L h_L + S x + b_L in its variables."""
    model = bld.frozen()
    out_coef = np.zeros((net.n_out, model.n_vars))
    out_coef[:, last] += net.out_weight
    if net.skip is not None:
        out_coef[:, x] += net.skip
    return NetworkEncoding(model, x, out_coef, net.out_bias.copy(), tuple(layers), tuple(bounds))


def encode_network(net: Network, box: Box, bounds: list[LayerBounds] | None = None) -> NetworkEncoding:
    """The exact MILP of f over the box (see the module docstring); ``bounds``: optional tighter sound
    pre-activation bounds, one :class:`LayerBounds` per hidden layer (default: interval bounds)."""
    bounds = _check_inputs(net, box, bounds)
    bld = _Builder()
    x, last, layers = _encode_values(bld, net, box, bounds)
    return _finish(bld, net, x, last, layers, bounds)


def encode_equilibrium(net: Network, box: Box, bounds: list[LayerBounds] | None = None) -> NetworkEncoding:
    """The MILP of {x in box : f(x)_i = x_i for every state i} (exogenous inputs free in their box).

    Its ``model.program(zeros, False)`` is a feasibility problem: infeasible iff no equilibrium lies in the box.
    """
    if not net.is_dynamics:
        raise UsageError(
            f"equilibria need x+ = f(x): the net has {net.n_out} outputs but {net.n_states} states"
        )
    bounds = _check_inputs(net, box, bounds)
    bld = _Builder()
    x, last, layers = _encode_values(bld, net, box, bounds)
    for i in range(net.n_states):  # W_L[i] h_L + S[i] x - x_i = -b_L[i]
        idx, coef = list(last), list(net.out_weight[i])
        if net.skip is not None:
            idx += list(x)
            coef += list(net.skip[i])
        idx.append(x[i])
        coef.append(-1.0)
        bld.eq_row(idx, coef, -net.out_bias[i])
    return _finish(bld, net, x, last, layers, bounds)


# ===================================================================== Jacobian-vector products (LipMIP)
def _derivative_range(layer_enc: LayerEncoding) -> tuple[np.ndarray, np.ndarray]:
    """[min, max] of slope + sum_k coef_k d_k over the d's the encoding allows (stable terms fixed); (n,) each."""
    form = layer_enc.form
    lo = form.slope.copy()
    hi = form.slope.copy()
    for t in layer_enc.terms:
        fixed = np.where(t.phase == 1, t.coef, 0.0)
        free = t.phase == 2
        lo = lo + fixed + np.where(free, np.minimum(t.coef, 0.0), 0.0)
        hi = hi + fixed + np.where(free, np.maximum(t.coef, 0.0), 0.0)
    return lo, hi


def _product_interval(sl, su, dl, du):
    cands = np.stack([sl * dl, sl * du, su * dl, su * du])
    lo, hi = cands.min(axis=0), cands.max(axis=0)
    pad = 1e-12 * np.maximum(np.abs(lo), np.abs(hi)) + 1e-300
    return lo - pad, hi + pad


def _tangent_through(bld: _Builder, layer_enc: LayerEncoding, s: np.ndarray, sl, su, name: str):
    """Variables t = sigma'(z) * s for the layer (McCormick on every unstable term); returns (t, tl, tu)."""
    form = layer_enc.form
    n = s.shape[0]
    dl, du = _derivative_range(layer_enc)
    tl, tu = _product_interval(sl, su, dl, du)
    t = bld.vars(tl, tu, name)
    rows_idx = [[t[j]] for j in range(n)]
    rows_coef = [[1.0] for _ in range(n)]
    s_coef = -form.slope.copy()
    for k, term in enumerate(layer_enc.terms):
        for j in range(n):
            if term.coef[j] == 0.0 or term.phase[j] == 0:
                continue
            if term.phase[j] == 1:
                s_coef[j] -= term.coef[j]
                continue
            a, b, d = sl[j], su[j], term.d[j]
            m = bld.var(min(a, 0.0), max(b, 0.0), f"m{name}_{k}[{j}]")
            bld.note_m(a, b)
            bld.le([m, d], [-1.0, a], 0.0)  # m >= sl d
            bld.le([m, d], [1.0, -b], 0.0)  # m <= su d
            bld.le([s[j], m, d], [1.0, -1.0, b], b)  # m >= s - su (1 - d)
            bld.le([m, s[j], d], [1.0, -1.0, -a], -a)  # m <= s - sl (1 - d)
            rows_idx[j].append(m)
            rows_coef[j].append(-term.coef[j])
    for j in range(n):  # t_j - slope s_j - sum coef m = 0 (active terms add coef s_j)
        bld.eq_row([*rows_idx[j], s[j]], [*rows_coef[j], s_coef[j]], 0.0)
    return t, tl, tu


def _linear_vars(bld: _Builder, w: np.ndarray, src: np.ndarray, lo, hi, name: str):
    """Variables y = w @ v[src] (no bias) with interval bounds; returns (y, yl, yu)."""
    yl, yu = affine_interval(w, np.zeros(w.shape[0]), lo, hi)
    y = bld.vars(yl, yu, name)
    for j in range(w.shape[0]):
        cols = np.flatnonzero(w[j])
        bld.eq_row([y[j], *src[cols]], [1.0, *(-w[j, cols])], 0.0)
    return y, yl, yu


@dataclass(frozen=True, eq=False)
class GainEncoding:
    """sup_X ||J(x)||_p (state columns when ``state_only``) as max over ``objectives`` rows of the MILP.

    ``objectives`` (k, n_vars): for p = inf one row per output i (maximise e_i^T J v, v in [-1, 1]^cols); for p = 1
    one row per column j (maximise (J^T w)_j, w in [-1, 1]^n_out). ``labels``: what each row is.
    """

    network: NetworkEncoding
    model: MilpModel
    objectives: np.ndarray
    labels: tuple[str, ...]
    p: float
    columns: np.ndarray

    def program(self, k: int) -> LinearProgram:
        return self.model.program(self.objectives[k], maximize=True)


def encode_gain(
    net: Network, box: Box, p: float, state_only: bool = True, bounds: list[LayerBounds] | None = None
) -> GainEncoding:
    """The LipMIP gadget for sup over the box of ||J(x)||_p, p in {1, inf} (see the module docstring)."""
    p = float(p)
    if p not in (1.0, math.inf):
        raise UsageError(f"the MILP gain handles p = 1 and p = inf, got p = {p}")
    bounds = _check_inputs(net, box, bounds)
    bld = _Builder()
    x, last, layers = _encode_values(bld, net, box, bounds)
    cols = np.arange(net.n_states if state_only else net.n_in)
    mask = np.zeros(net.n_in)
    mask[cols] = 1.0
    objectives = []
    labels = []
    if p == math.inf:
        # forward tangent: t_0 = v on the chosen columns, 0 elsewhere
        v_lo, v_hi = -mask, mask
        t = bld.vars(v_lo, v_hi, "v")
        tl, tu = v_lo, v_hi
        v = t
        for li, (layer, enc) in enumerate(zip(net.layers, layers)):
            s, sl, su = _linear_vars(bld, layer.weight, t, tl, tu, f"s{li}")
            t, tl, tu = _tangent_through(bld, enc, s, sl, su, f"t{li}")
        n_vars = len(bld.lower)
        for i in range(net.n_out):
            c = np.zeros(n_vars)
            np.add.at(c, t, net.out_weight[i])
            if net.skip is not None:
                np.add.at(c, v[cols], net.skip[i, cols])
            objectives.append(c)
            labels.append(f"row {i}")
    else:
        # backward cotangent: w in [-1, 1]^n_out, q_L = W_L^T w, p_l = sigma'(z_l) q_{l+1}, q_l = W_l^T p_l
        w = bld.vars(-np.ones(net.n_out), np.ones(net.n_out), "w")
        q, ql, qu = _linear_vars(bld, net.out_weight.T, w, -np.ones(net.n_out), np.ones(net.n_out), "q_out")
        for li in range(len(net.layers) - 1, -1, -1):
            layer, enc = net.layers[li], layers[li]
            g, gl, gu = _tangent_through(bld, enc, q, ql, qu, f"g{li}")
            q, ql, qu = _linear_vars(bld, layer.weight.T, g, gl, gu, f"q{li}")
        n_vars = len(bld.lower)
        for j in cols:
            c = np.zeros(n_vars)
            c[q[j]] += 1.0
            if net.skip is not None:
                np.add.at(c, w, net.skip[:, j])
            objectives.append(c)
            labels.append(f"column {j}")
    model = bld.frozen()
    out_coef = np.zeros((net.n_out, model.n_vars))
    out_coef[:, last] += net.out_weight
    if net.skip is not None:
        out_coef[:, x] += net.skip
    network = NetworkEncoding(model, x, out_coef, net.out_bias.copy(), tuple(layers), tuple(bounds))
    return GainEncoding(network, model, np.array(objectives).reshape(-1, model.n_vars), tuple(labels), p, cols)


# ===================================================================== padding of solver bounds
def objective_amplification(net: Network, out_weights: np.ndarray) -> float:
    """How much an error of 1 in every hidden neuron can move sum_i |out_weights_i| f_i: with s_L = |ow| |W_L|
    and s_l = s_{l+1} |W_l|, returns 1 + ||ow||_1 + sum_l ||s_l||_1 (|W| entrywise; an interval-matrix bound)."""
    s = np.abs(np.atleast_2d(out_weights)).sum(axis=0) @ np.abs(net.out_weight)
    total = 1.0 + float(np.abs(out_weights).sum()) + float(s.sum())
    for layer in reversed(net.layers[1:]):
        s = s @ np.abs(layer.weight)
        total += float(s.sum())
    return total


def output_padding(net: Network, enc: NetworkEncoding, weights: np.ndarray, tolerance: float, value: float) -> float:
    """Padding of a solver bound on weights @ f(x) (weights (n_out,)); see the module docstring."""
    s = np.abs(weights) @ np.abs(net.out_weight)  # sensitivity to h_L
    total = 0.0
    if net.skip is not None:
        total += float((np.abs(weights) @ np.abs(net.skip)).sum())
    for layer, lenc in zip(reversed(net.layers), reversed(enc.layers)):
        total += lenc.error_scale * float(s.sum())
        dl, du = _derivative_range(lenc)
        s = (s * np.maximum(np.abs(dl), np.abs(du))) @ np.abs(layer.weight)  # sensitivity to z_l, then h_{l-1}
        total += float(s.sum())  # the z rows and the layer below (x bounds at the end)
    return tolerance * total + REL_PAD * max(1.0, abs(value))


def bound_padding(value: float, tolerance: float, big_m_scale: float, amplification: float) -> float:
    """``tolerance * big_m_scale * amplification + REL_PAD * max(1, |value|)`` (see the module docstring)."""
    return tolerance * big_m_scale * amplification + REL_PAD * max(1.0, abs(value))


# ===================================================================== analyses
def analysis_bounds(
    net: Network, box: Box, bounds: list[LayerBounds] | None = None, *, tighten: bool = True, backend="highs",
    time_limit: float = 30.0,
) -> list[LayerBounds]:
    """The pre-activation bounds the analyses below encode with: the caller's, else CROWN/DeepPoly bounds
    (:func:`certify.bounds.interval.symbolic_bounds`, never looser than interval bounds), then (``tighten``) LP-tightened
    layer by layer (:func:`tighten_bounds_lp`): fewer binaries and smaller big-M constants."""
    if bounds is not None:
        return list(bounds)
    if not net.layers:
        return []
    out = symbolic_bounds(net, box)
    if tighten and len(net.layers) > 1:
        out = tighten_bounds_lp(net, box, out, backend=backend, time_limit=time_limit)
    return out


def tighten_bounds_lp(
    net: Network, box: Box, bounds: list[LayerBounds], *, backend="highs", time_limit: float = 30.0
) -> list[LayerBounds]:
    """Tighten the pre-activation bounds of layers 1..L-1 by the LP relaxation of the big-M encoding of the layers
    below (binaries relaxed to [0, 1]): the relaxation holds every point of the net, so its min/max bound z_l.

    Each LP value is padded outward by ``1e-7 * (1 + |v|) + tol * sum|W_l[j]| * big-M`` (LP solutions are
    floating-point claims, as in :func:`output_padding`) and intersected with the given bounds; an LP that does
    not end optimal (or a backend that is missing) keeps the given bound. ``time_limit``: seconds for all LPs.
    """
    solver = _backend(backend)
    deadline = time.perf_counter() + time_limit
    out = list(bounds)
    for li in range(1, len(net.layers)):
        layer = net.layers[li]
        head = Network(net.layers[:li], layer.weight, layer.bias, n_states=None)
        enc = encode_network(head, box, out[:li])
        relaxed = replace(enc.model, integer=np.zeros_like(enc.model.integer))
        lo = np.array(out[li].pre_lower, dtype=np.float64)
        hi = np.array(out[li].pre_upper, dtype=np.float64)
        row_scale = np.abs(layer.weight).sum(axis=1) * relaxed.big_m_scale
        for j in range(layer.width):
            for maximize in (False, True):
                remaining = deadline - time.perf_counter()
                if remaining <= 0:
                    break
                res = solver.solve(relaxed.program(enc.out_coef[j], maximize), remaining)
                if res.status is not SolveStatus.OPTIMAL or res.bound is None:
                    continue
                v = res.bound + enc.out_const[j]
                pad = REL_PAD * (1.0 + abs(v)) + solver.feasibility_tolerance * row_scale[j]
                if maximize:
                    hi[j] = min(hi[j], v + pad)
                else:
                    lo[j] = max(lo[j], v - pad)
        lo = np.minimum(lo, hi)  # an LP round-off can never empty a layer
        plo, phi = layer.activation.value_range(lo, hi)
        out[li] = LayerBounds(lo, hi, plo, phi)
    return out


def _backend(backend):
    return registry.get_backend(backend) if isinstance(backend, str) else backend


@dataclass(frozen=True, eq=False)
class EquilibriumSearch:
    """Outcome of :func:`equilibrium_exists_milp`.

    ``exists``: True with a replayed ``point`` (n_in,) whose ``residual`` = max_i |f_i(x) - x_i| (states) is
    <= ``tolerance``; False when the MILP is infeasible with a final status; None when undecided (``reason``).
    """

    exists: bool | None
    point: np.ndarray | None
    residual: float
    tolerance: float
    result: SolveResult
    reason: str = ""


def _refine_fixed_point(net: Network, box: Box, x0: np.ndarray) -> np.ndarray:
    """Solve the affine fixed-point system of the activation region of x0: f = J x + c there, so
    (I - J_ss) x_s = c_s + J_su u. Returns the refined point clipped to the box (x0 itself if singular)."""
    ns = net.n_states
    jac = net.jacobian(x0)
    c = net.forward(x0) - jac @ x0
    u = x0[ns:]
    mat = np.eye(ns) - jac[:ns, :ns]
    rhs = c[:ns] + jac[:ns, ns:] @ u
    try:
        xs = np.linalg.solve(mat, rhs)
    except np.linalg.LinAlgError:
        return x0
    if not np.all(np.isfinite(xs)):
        return x0
    return box.clip(np.concatenate([xs, u]))


def _residual(net: Network, x: np.ndarray) -> float:
    return float(np.max(np.abs(net.forward(x)[: net.n_states] - x[: net.n_states])))


def equilibrium_exists_milp(
    net: Network, box: Box, *, backend="cbc", time_limit: float = 60.0,
    bounds: list[LayerBounds] | None = None, tolerance: float | None = None,
) -> EquilibriumSearch:
    """Is there x in the box with f(x) = x (states; inputs free)? Feasibility MILP, then a float64 replay.

    A feasible point is refined on its activation region (exact affine solve) and replayed through
    ``net.forward``; it counts when its residual is <= ``tolerance`` (default 1e-9 * (1 + max |box|)).
    Infeasibility with the solver's final status means none (within the solver's tolerances).
    """
    enc = encode_equilibrium(net, box, analysis_bounds(net, box, bounds))
    solver = _backend(backend)
    tol = 1e-9 * (1.0 + float(np.max(np.abs([box.lower, box.upper])))) if tolerance is None else float(tolerance)
    res = solver.solve(enc.model.program(np.zeros(enc.model.n_vars), False), time_limit)
    if res.status is SolveStatus.INFEASIBLE:
        return EquilibriumSearch(False, None, math.inf, tol, res, "the MILP x = f(x), x in X is infeasible")
    if res.x is None:
        return EquilibriumSearch(None, None, math.inf, tol, res, f"solver {res.status.value}: {res.message}")
    x0 = box.clip(res.x[enc.x_index])
    best, best_res = x0, _residual(net, x0)
    x1 = x0
    for _ in range(3):  # a region step can land on a neighbour; a couple of steps settle it
        x1 = _refine_fixed_point(net, box, x1)
        r1 = _residual(net, x1)
        if r1 < best_res:
            best, best_res = x1, r1
        if best_res <= tol:
            break
    if best_res <= tol:
        return EquilibriumSearch(True, best, best_res, tol, res)
    return EquilibriumSearch(
        None, best, best_res, tol, res,
        f"the solver's point replays with residual {best_res:.3g} > {tol:.3g}",
    )


@dataclass(frozen=True, eq=False)
class MilpGain:
    """Outcome of :func:`milp_gain`; unpacks as ``value, x, result``.

    ``value``: max over rows of the MILP objectives (the exact gain when ``result.status`` is optimal);
    ``x`` (n_in,): the input of the best row; ``result``: the rows' results combined (worst status, summed seconds,
    ``bound`` the max of the rows' raw dual bounds); ``upper``: that bound padded by :func:`bound_padding`
    (inf when some row has no bound); ``per_row``: each row's objective (None without a solution).
    """

    value: float | None
    x: np.ndarray | None
    result: SolveResult
    upper: float
    per_row: tuple[float | None, ...]

    def __iter__(self):
        return iter((self.value, self.x, self.result))


_SEVERITY = [
    SolveStatus.OPTIMAL, SolveStatus.TIME_LIMIT, SolveStatus.INACCURATE, SolveStatus.UNBOUNDED,
    SolveStatus.INFEASIBLE, SolveStatus.ERROR, SolveStatus.NOT_INSTALLED,
]


def combine_results(results: list[SolveResult], objective, bound, x, message: str = "") -> SolveResult:
    """One SolveResult standing for several solves: the worst status, total seconds, the given values."""
    status = max((r.status for r in results), key=_SEVERITY.index, default=SolveStatus.OPTIMAL)
    msgs = "; ".join(sorted({r.message for r in results if r.message}))
    return SolveResult(
        status, objective, bound, x, sum(r.seconds for r in results),
        results[0].backend if results else "", message or msgs,
    )


def milp_gain(
    net: Network, box: Box, p: float, state_only: bool = True, *, backend="cbc", time_limit: float = 60.0,
    bounds: list[LayerBounds] | None = None,
) -> MilpGain:
    """Exact sup over the box of ||J(x)||_p (p in {1, inf}; state columns when ``state_only``) by the LipMIP
    gadget, one MILP per output row (p = inf) or input column (p = 1). ``time_limit``: seconds for all of them."""
    enc = encode_gain(net, box, p, state_only, analysis_bounds(net, box, bounds))
    solver = _backend(backend)
    start = time.perf_counter()
    results, per_row = [], []
    best_val, best_x = None, None
    for k in range(enc.objectives.shape[0]):
        remaining = time_limit - (time.perf_counter() - start)
        res = solver.solve(enc.program(k), max(remaining, 0.01))
        results.append(res)
        val = res.objective if res.x is not None else None
        per_row.append(val)
        if val is not None and (best_val is None or val > best_val):
            best_val, best_x = val, box.clip(res.x[enc.network.x_index])
    bounds_ = [r.bound for r in results]
    raw = max(bounds_) if bounds_ and all(b is not None for b in bounds_) else None
    if raw is None:
        upper = math.inf
    else:
        amp = _gain_amplification(net, enc)
        upper = raw + bound_padding(raw, solver.feasibility_tolerance, enc.model.big_m_scale, amp)
    result = combine_results(results, best_val, raw, None)
    return MilpGain(best_val, best_x, result, upper, tuple(per_row))


def _gain_amplification(net: Network, enc: GainEncoding) -> float:
    """Sensitivity of a gain objective to errors of 1 in every value and tangent variable: twice (values and
    tangents) the |W|-chain sum of :func:`objective_amplification` with all-ones output weights, plus the first
    layer's |W| (the tangent enters there)."""
    total = objective_amplification(net, np.ones(net.n_out))
    if net.layers:
        s = np.ones(net.n_out) @ np.abs(net.out_weight)
        for layer in reversed(net.layers):
            s = s @ np.abs(layer.weight)
        total += float(s.sum())
    return 2.0 * total

"""MILP encodings of piecewise-linear nets (DESIGN.md section 2, "MILP").

Every piecewise-linear activation is written as an affine part plus ReLU terms,

    sigma(z) = slope * z + offset + sum_k coef_k * relu(z - knot_k)            (:func:`relu_decomposition`)

(ReLU: one term; LeakyReLU/PReLU with slope a: a z + (1 - a) relu(z); identity: no term; clip(lo, hi):
lo + relu(z - lo) - relu(z - hi)). Each term r = relu(z - t) with z in [l, u] (pre-activation bounds over the box,
from :func:`certify.bounds.interval_bounds` or tighter sound bounds given by the caller) is

* fixed to 0 when u <= t, to z - t when l >= t (stable: no binary);
* otherwise big-M with a binary d:  r >= z - t,  r >= 0,  r <= z - t - (l - t)(1 - d),  r <= (u - t) d.

This is exact (the MILP's feasible x-set and outputs equal the net's) whenever the bounds are sound.

This module builds solver-neutral :class:`certify.solvers.base.LinearProgram` s; it imports no solver library and
never sees a solver. The analyses that solve them are in :mod:`certify.engines.milp_analyses` (bound tightening)
and :mod:`certify.engines.output_milp` (invariance). The Jacobian-vector-product gadget and the equilibrium MILP
are cross-check oracles of the test suite (``tests/milp_oracles.py``): their bounds rest on solver tolerances
with no independent re-check, so they are not on a certification path.

Soundness of a bound taken from a solver: the solver's dual bound is a floating-point claim made under its
feasibility tolerance ``tol`` (a row may be violated by ``tol``, a binary may sit ``tol`` away from 0 or 1, which lets
a ReLU term move by ``tol`` times its big-M constant M). Bounds are widened before use:

* output bounds (:func:`output_padding`): ``tol * sum_l e_l * ||s_l||_1 + 1e-7 * max(1, |v|)``, where
  ``e_l = 1 + sum_k max_j |coef_kj| M_kj`` is how far a neuron of hidden layer l can move and ``s_l`` the
  sensitivity of the objective to layer l (|weights| |W_L| diag(max|sigma'|) |W_{L-1}| ..., first order);

The 1e-7 relative term covers the rounding of coefficients and of CBC's 8-digit output. This padding is a stated
assumption about the solver (violations at most its tolerance), not a proof.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field, replace

import numpy as np

from ..bounds.interval import LayerBounds, interval_bounds
from ..errors import UsageError
from ..ir.activations import Activation
from ..ir.box import Box
from ..ir.network import Network
from ..ir.numerics import SOLVER_REL_PAD
from ..ir.pieces import pieces
from ..solvers.base import LinearProgram

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


# ===================================================================== a small model builder
class MilpBuilder:
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


def check_encoding_inputs(net: Network, box: Box, bounds) -> list[LayerBounds]:
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


def encode_values(bld: MilpBuilder, net: Network, box: Box, bounds: list[LayerBounds]):
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


def attach_output(bld, net: Network, x, last, layers, bounds) -> NetworkEncoding:
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
    bounds = check_encoding_inputs(net, box, bounds)
    bld = MilpBuilder()
    x, last, layers = encode_values(bld, net, box, bounds)
    return attach_output(bld, net, x, last, layers, bounds)


# ===================================================================== Jacobian-vector products (LipMIP)
def derivative_range(layer_enc: LayerEncoding) -> tuple[np.ndarray, np.ndarray]:
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


def output_padding(net: Network, enc: NetworkEncoding, weights: np.ndarray, tolerance: float, value: float) -> float:
    """Padding of a solver bound on weights @ f(x) (weights (n_out,)); see the module docstring."""
    s = np.abs(weights) @ np.abs(net.out_weight)  # sensitivity to h_L
    total = 0.0
    if net.skip is not None:
        total += float((np.abs(weights) @ np.abs(net.skip)).sum())
    for layer, lenc in zip(reversed(net.layers), reversed(enc.layers)):
        total += lenc.error_scale * float(s.sum())
        dl, du = derivative_range(lenc)
        s = (s * np.maximum(np.abs(dl), np.abs(du))) @ np.abs(layer.weight)  # sensitivity to z_l, then h_{l-1}
        total += float(s.sum())  # the z rows and the layer below (x bounds at the end)
    return tolerance * total + REL_PAD * max(1.0, abs(value))

"""MILP cross-check oracles for the tests: the LipMIP Jacobian-vector-product gadget (exact l1 / l-inf gains) and
the equilibrium MILP (x = f(x), x in X), built on :mod:`certify.engines.milp_encoding`.

They are references that the region branch and bound and the region enumeration are checked against; certify does
not certify from them (their bounds rest on solver tolerances without an independent re-check).

Jacobian-vector products (LipMIP style): the derivative of sigma is slope + sum_k coef_k d_k, so a tangent s
through a neuron becomes slope * s + sum_k coef_k m_k with m_k = d_k * s, written exactly for binary d_k by the
McCormick rows  m >= sl d,  m <= su d,  m >= s - su (1 - d),  m <= s - sl (1 - d)  with s in [sl, su] (interval
arithmetic on the tangent). At a kink (z = t) the MILP may take either one-sided derivative, so the MILP gain is the
maximum over the closed activation regions.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass

import numpy as np

from certify.bounds.interval import LayerBounds
from certify.engines.milp_analyses import analysis_bounds, solver_backend
from certify.engines.milp_encoding import (
    REL_PAD,
    LayerEncoding,
    MilpBuilder,
    MilpModel,
    NetworkEncoding,
    attach_output,
    check_encoding_inputs,
    derivative_range,
    encode_values,
)
from certify.errors import UsageError
from certify.ir.box import Box
from certify.ir.network import Network
from certify.ir.numerics import affine_interval
from certify.solvers.base import LinearProgram, SolveResult, SolveStatus


def encode_equilibrium(net: Network, box: Box, bounds: list[LayerBounds] | None = None) -> NetworkEncoding:
    """The MILP of {x in box : f(x)_i = x_i for every state i} (exogenous inputs free in their box).

    Its ``model.program(zeros, False)`` is a feasibility problem: infeasible iff no equilibrium lies in the box.
    """
    if not net.is_dynamics:
        raise UsageError(
            f"equilibria need x+ = f(x): the net has {net.n_out} outputs but {net.n_states} states"
        )
    bounds = check_encoding_inputs(net, box, bounds)
    bld = MilpBuilder()
    x, last, layers = encode_values(bld, net, box, bounds)
    for i in range(net.n_states):  # W_L[i] h_L + S[i] x - x_i = -b_L[i]
        idx, coef = list(last), list(net.out_weight[i])
        if net.skip is not None:
            idx += list(x)
            coef += list(net.skip[i])
        idx.append(x[i])
        coef.append(-1.0)
        bld.eq_row(idx, coef, -net.out_bias[i])
    return attach_output(bld, net, x, last, layers, bounds)


def product_interval(sl, su, dl, du):
    cands = np.stack([sl * dl, sl * du, su * dl, su * du])
    lo, hi = cands.min(axis=0), cands.max(axis=0)
    pad = 1e-12 * np.maximum(np.abs(lo), np.abs(hi)) + 1e-300
    return lo - pad, hi + pad


def tangent_through(bld: MilpBuilder, layer_enc: LayerEncoding, s: np.ndarray, sl, su, name: str):
    """Variables t = sigma'(z) * s for the layer (McCormick on every unstable term); returns (t, tl, tu)."""
    form = layer_enc.form
    n = s.shape[0]
    dl, du = derivative_range(layer_enc)
    tl, tu = product_interval(sl, su, dl, du)
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


def linear_vars(bld: MilpBuilder, w: np.ndarray, src: np.ndarray, lo, hi, name: str):
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
    bounds = check_encoding_inputs(net, box, bounds)
    bld = MilpBuilder()
    x, last, layers = encode_values(bld, net, box, bounds)
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
            s, sl, su = linear_vars(bld, layer.weight, t, tl, tu, f"s{li}")
            t, tl, tu = tangent_through(bld, enc, s, sl, su, f"t{li}")
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
        q, ql, qu = linear_vars(bld, net.out_weight.T, w, -np.ones(net.n_out), np.ones(net.n_out), "q_out")
        for li in range(len(net.layers) - 1, -1, -1):
            layer, enc = net.layers[li], layers[li]
            g, gl, gu = tangent_through(bld, enc, q, ql, qu, f"g{li}")
            q, ql, qu = linear_vars(bld, layer.weight.T, g, gl, gu, f"q{li}")
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


def bound_padding(value: float, tolerance: float, big_m_scale: float, amplification: float) -> float:
    """``tolerance * big_m_scale * amplification + REL_PAD * max(1, |value|)`` (see the module docstring)."""
    return tolerance * big_m_scale * amplification + REL_PAD * max(1.0, abs(value))


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
    solver = solver_backend(backend)
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
    solver = solver_backend(backend)
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

"""The output_bounds check: does every output stay strictly within its bounds over the box? (A VNNLIB property.)

    V = sup_{x in X} max_i max(f_i(x) - upper_i, lower_i - f_i(x))      (i over the bounded sides; V < 0: holds)

certified iff a sound bound on V is < 0 (VNN-COMP ``unsat``: no input of the box reaches the unsafe set), falsified
iff a replayed input has V > 0 (``sat``; the witness is that input), unknown otherwise, with the bracket on V.

The computation is the invariance check's (:func:`certify.checks.invariance.check_invariance`: sampling, interval
bounds, one MILP per output side for piecewise-linear nets with the solver-free re-check, the sub-box search for
smooth ones), run on the augmented map g(y, x) = f(x) over the box [lower, upper] x X: g has one "state" y_i per
output (the weights on y are zero), so "g(B) inside the state box" is exactly "f(X) inside the output bounds".
A side without a bound gets a stand-in bound that no output can reach (below every real side's smallest possible
value by the interval bounds of f, minus 1), so it never decides the maximum and the bracket is V's.
"""

from __future__ import annotations

import math
import time
from dataclasses import replace

import numpy as np

from ..bounds.interval import output_interval
from ..certificate import BoundMethod, CheckName, CheckResult, InvarianceDetails, Verdict, Witness
from ..config import VerifyConfig
from ..engines.sampling import replayed_outputs
from ..errors import UsageError
from ..ir.box import Box
from ..ir.network import Layer, Network
from ..ir.output_property import OutputProperty
from .common import SamplingMemo
from .invariance import check_invariance


def require_outputs(net: Network, outputs: OutputProperty | None) -> OutputProperty:
    """The output property, checked against the model; UsageError when there is none or its size differs."""
    if outputs is None:
        raise UsageError("the output_bounds check needs an output property: give a VNNLIB file (--region "
                         "prop.vnnlib) whose assertions bound outputs Y_i")
    if outputs.dim != net.n_out:
        raise UsageError(f"{outputs.path or 'the output property'}: it declares {outputs.dim} outputs Y_0 .. "
                         f"Y_{outputs.dim - 1} but the model has {net.n_out} outputs; declare one Y_i per model output")
    return outputs


def _zero_columns(w: np.ndarray, m: int) -> np.ndarray:
    return np.hstack([np.zeros((w.shape[0], m)), w])


def augmented(net: Network, box: Box, outputs: OutputProperty) -> tuple[Network, Box]:
    """(g, B): g(y, x) = f(x) with m zero-weight state inputs y first, and B = [lower', upper'] x X where the
    free sides are stand-ins no output reaches (module docstring)."""
    m = outputs.dim
    if net.layers:
        first = net.layers[0]
        layers = (Layer(_zero_columns(first.weight, m), first.bias, first.activation), *net.layers[1:])
        out_weight = net.out_weight
    else:
        layers, out_weight = (), _zero_columns(net.out_weight, m)
    skip = None if net.skip is None else _zero_columns(net.skip, m)
    g = Network(layers, out_weight, net.out_bias, skip, n_states=m)
    ol, ou = output_interval(net, box)
    lo, hi = outputs.lower.copy(), outputs.upper.copy()
    sides = np.concatenate([(ol - hi)[np.isfinite(hi)], (lo - ou)[np.isfinite(lo)]])
    floor = min(float(sides.min()), 0.0) - 1.0
    free_lo, free_hi = ~np.isfinite(lo), ~np.isfinite(hi)
    lo[free_lo] = ol[free_lo] + floor
    hi[free_hi] = ou[free_hi] - floor
    lo[free_lo] = np.minimum(lo[free_lo], hi[free_lo])
    hi[free_hi] = np.maximum(hi[free_hi], lo[free_hi])
    names = tuple(outputs.names) + tuple(box.names)
    big = Box(np.concatenate([lo, box.lower]), np.concatenate([hi, box.upper]), names, m)
    return g, big


def _violation(net: Network, outputs: OutputProperty, x: np.ndarray) -> tuple[float, int]:
    """V at one input x over the bounded sides only (a value the real f(x) surely reaches:
    :func:`~certify.engines.sampling.replayed_outputs`), and the worst output."""
    lo, hi = (v[0] for v in replayed_outputs(net, np.asarray(x, dtype=np.float64)))
    with np.errstate(invalid="ignore"):
        per = np.maximum(np.where(np.isfinite(outputs.upper), lo - outputs.upper, -math.inf),
                         np.where(np.isfinite(outputs.lower), outputs.lower - hi, -math.inf))
    return float(per.max()), int(per.argmax())


def _side_text(outputs: OutputProperty, i: int, f_i: float) -> str:
    where = outputs.upper_where[i] if f_i >= outputs.upper[i] else outputs.lower_where[i]
    at = f" ({outputs.path}, {where})" if where else ""
    return f"the unsafe set of the assertion on {outputs.names[i]}{at}"


def check_output_bounds(net: Network, box: Box, config: VerifyConfig, memo: SamplingMemo | None = None,
                        outputs: OutputProperty | None = None) -> CheckResult:
    """Certify or refute lower_i < f_i(x) < upper_i for every x in the box (module docstring)."""
    start = time.perf_counter()
    outputs = require_outputs(net, outputs)
    m = outputs.dim
    empty = np.flatnonzero(outputs.lower > outputs.upper)
    if empty.size:
        # an unsafe set that covers every value of some output: any input of the file's box is a counterexample,
        # once replayed there (the box may hold no float64 at all, and a replay may overflow to NaN)
        x = outputs.inside_inputs(box.center)
        value, worst = (math.nan, 0) if x is None else _violation(net, outputs, x)
        if not value > 0:
            why = ("no float64 input lies in the file's box" if x is None else
                   f"the replay at the box centre gives {outputs.names[worst]} = {value!r}")
            return CheckResult(CheckName.OUTPUT_BOUNDS, Verdict.UNKNOWN, -math.inf, math.inf, BoundMethod.SAMPLE,
                               time.perf_counter() - start, None,
                               f"{outputs.names[int(empty[0])]} has lower bound > upper bound (every value is unsafe), "
                               f"but {why}: no counterexample to show")
        details = InvarianceDetails(outputs.names[worst], value)
        f = np.atleast_1d(net.forward(x))
        return CheckResult(CheckName.OUTPUT_BOUNDS, Verdict.FALSIFIED, value, math.inf, BoundMethod.SAMPLE,
                           time.perf_counter() - start, Witness(tuple(map(float, x)), value),
                           f"{outputs.names[int(empty[0])]} has lower bound > upper bound: every value is unsafe; "
                           f"at the "
                           f"box centre {outputs.names[worst]} = {f[worst]:.6g} lies in "
                           f"{_side_text(outputs, worst, f[worst])}", details)
    g, big = augmented(net, box, outputs)
    res = check_invariance(g, big, config)
    witness = res.witness
    if witness is not None:
        x = np.array(witness.x[m:])
        witness = replace(witness, x=tuple(float(v) for v in x))
    reason = res.reason
    verdict, lower = res.verdict, res.lower
    if verdict is Verdict.FALSIFIED:
        # the box is rounded outward: a counterexample must lie in the file's own box, so it is moved there
        # (at most a float64 step) and replayed again
        inside = outputs.inside_inputs(np.array(witness.x))
        value = -math.inf if inside is None else _violation(net, outputs, inside)[0]
        if value > 0:
            witness, lower = replace(witness, x=tuple(float(v) for v in inside), value=value), value
        else:
            verdict, lower, witness = Verdict.UNKNOWN, value, None
            res = replace(res, reason="the only counterexample found lies outside the file's input box, in the "
                                      "float64 rounding of its bounds; moved inside, it is no counterexample")
    if verdict is Verdict.FALSIFIED:
        value, worst = _violation(net, outputs, np.array(witness.x))
        f = np.atleast_1d(net.forward(np.array(witness.x)))
        reason = (f"{outputs.names[worst]} = {f[worst]:.12g} at a replayed input lies in "
                  f"{_side_text(outputs, worst, f[worst])}, by {value:.6g} (VNN-COMP: sat)")
    elif res.verdict is Verdict.CERTIFIED:
        reason = (f"every output stays strictly within its bounds over the box ({outputs.describe()}): the largest "
                  f"violation is <= {res.upper:.6g} < 0 (VNN-COMP: unsat)" + (f"; {res.reason}" if res.reason else ""))
    else:
        reason = f"outputs against their bounds (V = max over sides of the violation): {res.reason}"
    details = res.details
    if isinstance(details, InvarianceDetails) and details.worst_output not in outputs.names:
        details = replace(details, worst_output=outputs.names[0])
    return CheckResult(CheckName.OUTPUT_BOUNDS, verdict, lower, res.upper, res.method,
                       time.perf_counter() - start, witness, reason, details)

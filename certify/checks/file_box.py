"""Check results on a region file's own box when its bounds are not float64 values.

A region file (``box.yaml``) or a VNNLIB property with a bound such as ``0.1`` is read exactly and rounded outward
(:mod:`certify.importers.region_file`): the checks run on the float64 box ``outer`` that contains the file's box,
and ``Region.inner`` is the float64 box inside it. The two differ by at most one float64 step per side. What a
result on ``outer`` says about the file's box:

* a bound over the box (the sup of ||A*||, of the violation, of an output) holds for the file's box, which lies
  inside ``outer``: certified stays certified, except for invariance, whose box is also the *target* (below), and
  for a list of the box's equilibria (the equilibria check, stability) that names a point outside ``inner``: that
  point lies in the rounding sliver, not in the file's box, and the result is unknown;
* a falsified verdict holds only from a witness inside the file's box, that is inside ``inner`` (no float64 lies
  between the two boxes; stability falsified by two equilibria needs two there). A witness outside it (often a
  corner of ``outer``) is searched for again on ``inner``,
  for about as long as the first search took and within the run's timeout; a point found there falsifies, else
  the result is unknown;
* stability certified on the whole box (the box proven invariant) needs that invariance proof to clear the gap
  below, as the invariance check does;
* invariance asks f(X) inside X. With V(x, T) = max_i max(f_i(x) - T.upper_i, T.lower_i - f_i(x)) (states i), the
  file's box F satisfies inner <= F <= outer, so V(x, F) <= V(x, outer) + gap, where ``gap`` is the widest step
  between ``inner`` and ``outer`` over the states. Certified therefore needs upper + gap < 0 (the bound reported is
  upper + gap, rounded up); falsified needs a witness x in ``inner`` whose f(x) (a float) leaves ``inner`` as
  a target: it then lies at least one float further, on or beyond the side of ``outer``, which is beyond F's
  side when that side was rounded (and is F's side when not), so f(x) leaves F; the value reported is
  max(V(x, outer), 0) <= V(x, F).
"""

from __future__ import annotations

import math
import time
from dataclasses import replace

import numpy as np

from ..certificate import CheckName, CheckResult, Verdict
from ..config import VerifyConfig
from ..engines.violation_search import replayed_violation
from ..ir.box import Box
from ..ir.network import Network

_SLIVER = "lies outside the file's box (its bounds are not float64 values and were rounded outward)"
_NORMS = (CheckName.DISSIPATIVITY, CheckName.CONTRACTION, CheckName.GAIN, CheckName.STABILITY)  # brackets of norms
_MIN_RERUN_SECONDS = 0.05  # a search again on the inner box with less time left is not started


def inside(x, lo: np.ndarray, hi: np.ndarray) -> bool:
    """Whether the point ``x`` (n,) lies in the float box [lo, hi] ((n,), (n,))."""
    x = np.asarray(x, dtype=np.float64)
    return x.shape == lo.shape and bool(np.all(x >= lo) and np.all(x <= hi))


def _point(x) -> str:
    return "[" + ", ".join(f"{v:.17g}" for v in x) + "]"


def state_gap(outer: Box, inner: tuple[np.ndarray, np.ndarray]) -> float:
    """The widest float64 step between ``inner`` and ``outer`` over the state coordinates (exact: the differences
    of neighbouring floats are)."""
    n = outer.n_states
    lo, hi = inner
    steps = np.concatenate([outer.upper[:n] - hi[:n], lo[:n] - outer.lower[:n]])
    return float(max(np.max(steps, initial=0.0), 0.0))


def on_file_box(result: CheckResult, net: Network, outer: Box, inner: tuple[np.ndarray, np.ndarray],
                config: VerifyConfig, rerun, deadline: float = math.inf) -> CheckResult:
    """``result`` (a check run on ``outer``) as a result on the file's box (module docstring). ``rerun(box,
    config)``: the same check on another box (used on ``inner`` when a witness lies outside it), not past
    ``deadline`` (a ``time.perf_counter()`` value: the end of the run's ``--timeout``)."""
    if result.check is CheckName.INVARIANCE:
        result = _invariance_target(result, outer, inner)
    if result.verdict is Verdict.CERTIFIED:
        return _equilibria_inside(_invariant_start_set(result, outer, inner), inner)
    w = result.witness
    if w is None or result.verdict is not Verdict.FALSIFIED or _shown_inside(result, inner):
        return result  # a bracket from a point a float step outside: its bound still holds on the larger box
    why = f"the point found, x = {_point(w.x)}, {_SLIVER}: nothing is shown about the file's box there"
    if inside(w.x, *inner):
        why = "the equilibria found do not all lie inside the file's box (its bounds were rounded outward)"
    again = _search_inner(result, net, outer, inner, config, rerun, deadline)
    if again is not None:
        return again
    # no point of the file's box is known to attain anything: a norm (or a contraction rate) is still >= 0
    lower = 0.0 if result.check in _NORMS else -math.inf
    return replace(result, verdict=Verdict.UNKNOWN, witness=None, lower=lower,
                   reason="; ".join(filter(None, (result.reason, why))))


def _shown_inside(result: CheckResult, inner, on_inner: bool = False) -> bool:
    """Whether a falsified result is shown by points inside ``inner``: its witness, and for stability, when it
    rests on two equilibria in the box, two of them. A mean-square result names only its witness (the stability
    check's falsification may rest on a second equilibrium it does not list): shown only by a run on ``inner``
    itself (``on_inner``)."""
    if not inside(result.witness.x, *inner):
        return False
    if result.check is CheckName.MEAN_SQUARE:
        return on_inner
    eqs = getattr(result.details, "equilibria", ()) if result.check is CheckName.STABILITY else ()
    return len(eqs) < 2 or sum(inside(x, *inner) for x in eqs) >= 2


def _equilibria_inside(result: CheckResult, inner) -> CheckResult:
    """A certified result that lists equilibria (the equilibria check, stability) as one on the file's box:
    unknown when a listed equilibrium lies outside ``inner``, in the rounding sliver outside the file's box (the
    list, complete for the rounded box, would name a point the file's box does not hold). Not searched again on
    ``inner``: an equilibrium of the file's box outside ``inner`` would then be missed."""
    details = result.details
    points = getattr(details, "points", None) if result.check is CheckName.EQUILIBRIA else \
        getattr(details, "equilibria", None) if result.check is CheckName.STABILITY else None
    outside = [x for x in points or () if not inside(x, *inner)]
    if not outside:
        return result
    why = (f"the equilibrium x = {_point(outside[0])} {_SLIVER}: the list found for the rounded box is not the "
           "file's box's")
    return replace(result, verdict=Verdict.UNKNOWN, reason="; ".join(filter(None, (result.reason, why))))


def _invariant_start_set(result: CheckResult, outer: Box, inner) -> CheckResult:
    """A certified stability result whose set of starts is the whole box (the box proven invariant) as one on the
    file's box: the invariance piece, run on ``outer``, must clear the rounding gap as the invariance check must
    (upper + gap < 0). Else the one equilibrium of ``outer`` may lie in the sliver outside the file's box (f(x*) =
    x* there keeps the bound above -gap), and trajectories from the file's box need not stay in it: unknown."""
    details = result.details
    if result.check is not CheckName.STABILITY or getattr(details, "start_set", None) != "box":
        return result
    gap = state_gap(outer, inner)
    upper = getattr(details, "invariance_upper", None)
    if gap == 0.0 or (upper is not None and _file_box_violation(upper, gap) < 0.0):
        return result
    why = (f"the box is proven invariant only up to the rounding of the file's bounds ({gap:.3g}): the equilibrium "
           "may lie outside the file's box, and trajectories from it need not stay in it")
    return replace(result, verdict=Verdict.UNKNOWN, reason="; ".join(filter(None, (result.reason, why))))


def _file_box_violation(upper: float, gap: float) -> float:
    """An upper bound on the violation of the file's box from ``upper``, one of the rounded box (module docstring):
    upper + gap, rounded up. Invariance is proven for the file's box only when it is < 0."""
    return math.nextafter(upper + gap, math.inf)


def _invariance_target(result: CheckResult, outer: Box, inner) -> CheckResult:
    gap = state_gap(outer, inner)
    if gap == 0.0 or not math.isfinite(result.upper):
        return result
    upper = _file_box_violation(result.upper, gap)
    if result.verdict is Verdict.CERTIFIED and not upper < 0.0:
        why = (f"f(X) stays inside the float box around the file's box, by {-result.upper:.3g}, but not by more "
               f"than its rounding of the file's bounds ({gap:.3g}): f(X) may leave the file's box")
        return replace(result, verdict=Verdict.UNKNOWN, upper=upper,
                       reason="; ".join(filter(None, (result.reason, why))))
    return replace(result, upper=upper)


def _search_inner(result: CheckResult, net: Network, outer: Box, inner, config: VerifyConfig, rerun,
                  deadline: float):
    """The check again on ``inner``, for about as long as the first search took and not past ``deadline``: its
    falsified result as one on the file's box, or None."""
    lo, hi = inner
    budget = min(deadline - time.perf_counter(), 2.0 * result.seconds + 1.0)
    if not np.all(lo <= hi) or budget < _MIN_RERUN_SECONDS:
        return None  # no float64 inside the file's box along some coordinate, or no time left
    box = Box(lo, hi, names=outer.names, n_states=outer.n_states)
    again = rerun(box, config.with_(timeout=budget))
    if again.verdict is not Verdict.FALSIFIED or again.witness is None or not _shown_inside(again, inner, True):
        return None
    seconds = result.seconds + again.seconds
    note = f"the first point found {_SLIVER}; this one lies inside it"
    if result.check is CheckName.INVARIANCE:
        # inner is the target too. f(x) (a float) beyond a side of inner lies beyond the file's side: a float step
        # further, at outer's side, which is beyond the file's when that side was rounded (the same side when not).
        # The violation of the file's box at x is then > 0 and >= the one against outer, which is reported
        x = np.asarray(again.witness.x, dtype=np.float64)
        v = float(replayed_violation(net, outer, x[None])[0][0])
        v = v if v > 0.0 else 0.0
        return replace(again, lower=v, upper=max(result.upper, v), witness=replace(again.witness, value=v),
                       seconds=seconds, reason="; ".join(filter(None, (again.reason, note))))
    return replace(again, upper=max(result.upper, again.lower), seconds=seconds,
                   reason="; ".join(filter(None, (again.reason, note))))

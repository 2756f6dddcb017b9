"""The second-order bound of certify.bounds.second_order and the curvature ranges it rests on.

* The activations' curvature functions (sigma'', sigma''', the secant slope's s' and s'') against high-precision
  references (mpmath), their ranges against dense samples (endpoints, knots, tiny, huge and degenerate intervals),
  and the monotonicity between consecutive knots that the ranges assume.
* The bound over random sub-boxes is >= ||M(x)||_p at dense samples (A* and J, p in 1, 2, inf, with skips, state
  columns, metrics, and coordinates bounded by the triangle inequality), is inf where it does not apply, and its
  excess over the sampled maximum shrinks like width^2.
"""

from __future__ import annotations

import math

import mpmath
import numpy as np
import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from certify.bounds.norm_bounds import SupNormBounder, box_bounds
from certify.bounds.second_order import applies, second_order_bound
from certify.config import BoundKind, BoxSearchOptions, SdpUse, VerifyConfig
from certify.engines.box_search import box_search
from certify.engines.contract import Query
from certify.ir import activations as acts
from certify.ir.metric import Metric
from certify.ir.numerics import induced_norm
from certify.ir.quantity import Quantity

# ============================================================================================ activations
ALL = [(name, make()) for name, make in acts.CATALOGUE.items()] + [
    ("elu_0.5", acts.elu(0.5)),
    ("clip_shifted", acts.clip(0.25, 2.0)),
    ("clip_negative", acts.clip(-2.0, -0.5)),
]
# (range method, pointwise function, knots method): the four curvature ranges
CURVATURES = (
    ("second_derivative_range", "np_second_derivative", "_second_derivative_knots"),
    ("secant_derivative_range", "np_secant_derivative", "_secant_derivative_knots"),
    ("third_derivative_range", "np_third_derivative", "_third_derivative_knots"),
    ("secant_second_derivative_range", "np_secant_second_derivative", "_secant_second_derivative_knots"),
)
PAD_REL, PAD_ABS = 1e-12, 1e-14  # the outward rounding of smooth activations' ranges (ir/activations.py)

_C = mpmath.mpf("0.044715")


def _mp_sigmoid(z):
    return 1 / (1 + mpmath.exp(-z))


_SMOOTH_PIECES = {
    "tanh": mpmath.tanh,
    "sigmoid": _mp_sigmoid,
    "gelu": lambda t: t / 2 * (1 + mpmath.erf(t / mpmath.sqrt(2))),
    "gelu_tanh": lambda t: t / 2 * (1 + mpmath.tanh(mpmath.sqrt(2 / mpmath.pi) * (t + _C * t**3))),
    "silu": lambda t: t * _mp_sigmoid(t),
    "softplus": lambda t: mpmath.log(1 + mpmath.exp(t)),
    "identity": lambda t: t,
}
_CLIPS = {"hardtanh": (-1.0, 1.0), "relu6": (0.0, 6.0), "clip_shifted": (0.25, 2.0), "clip_negative": (-2.0, -0.5)}


def _piece(name: str, z: float):
    """The analytic function (mpmath) that equals sigma on the piece of z (z off the kinks)."""
    if name in _SMOOTH_PIECES:
        return _SMOOTH_PIECES[name]
    if name in _CLIPS:
        lo, hi = _CLIPS[name]
        return (lambda t: 0 * t + lo) if z < lo else (lambda t: 0 * t + hi) if z > hi else (lambda t: t)
    if name == "hardswish":
        return (lambda t: 0 * t) if z < -3 else (lambda t: t) if z > 3 else (lambda t: t * (t + 3) / 6)
    if z > 0:
        scale = acts.SELU_SCALE if name == "selu" else 1.0
        return lambda t: scale * t
    alpha = {"relu": 0.0, "leaky_relu": 0.01, "elu": 1.0, "elu_0.5": 0.5,
             "selu": acts.SELU_SCALE * acts.SELU_ALPHA}[name]
    if name in ("relu", "leaky_relu"):
        return lambda t: alpha * t
    return lambda t: alpha * (mpmath.exp(t) - 1)


def _reference(name: str, fn: str, z: float) -> float:
    """The true value of the curvature ``fn`` at z, to 40 digits (sigma^(k) by mpmath.diff; the secant slope's
    derivatives s^(k)(z) = d^k/dz^k (sigma(z) - sigma(0)) / z by mpmath.diff away from 0 and, for |z| < 1e-2
    (z on a piece that reaches 0), by the Taylor series s^(k)(z) = sum_n c_n (n-1)! / (n-1-k)! z^(n-1-k) with
    c_n = sigma^(n)(0) / n! of the piece)."""
    with mpmath.workdps(40):
        f = _piece(name, z)
        zm = mpmath.mpf(z)
        k = {"np_second_derivative": 2, "np_third_derivative": 3, "np_secant_derivative": 1,
             "np_secant_second_derivative": 2}[fn]
        if "secant" not in fn:
            return float(mpmath.diff(f, zm, k))
        s0 = _piece(name, 0.0)(mpmath.mpf(0))  # sigma(0), exactly (log 2 for softplus)
        if abs(z) < 1e-2:
            c = mpmath.taylor(f, 0, 16)
            return float(sum(c[n] * mpmath.ff(n - 1, k) * zm ** (n - 1 - k) for n in range(k + 1, 17)))
        return float(mpmath.diff(lambda t: (f(t) - s0) / t, zm, k))


_POINTS = [1e-300, 1e-30, 1e-8, 1e-3, 0.05, 0.3, 0.4999999, 0.5, 0.5000001, 0.9, 0.99999, 1.0, 1.00001, 1.7,
           2.0, 2.5, 2.9, 3.1, 4.0, 8.0, 15.0, 30.0, 80.0]
_POINTS = sorted([-z for z in _POINTS] + [0.0] + _POINTS)


@pytest.mark.parametrize("name,act", ALL, ids=[n for n, _ in ALL])
def test_curvatures_match_high_precision_references(name, act):
    """Each curvature function is within the ranges' outward rounding (1e-12 |v| + 1e-14) of the true value,
    series branches and switch points included (points on kinks are skipped: no derivative there)."""
    kinks = set(act.kinks()) | ({-3.0, 3.0} if name == "hardswish" else set())
    if not act.smooth:
        kinks |= {0.0}
    pts = [z for z in _POINTS if all(abs(z - k) > 1e-6 for k in kinks)]
    for _, fn, _ in CURVATURES:
        got = getattr(act, fn)(np.array(pts))
        for z, v in zip(pts, got):
            ref = _reference(name, fn, z)
            assert abs(v - ref) <= PAD_REL * abs(ref) + PAD_ABS, (name, fn, z, v, ref)


def _samples(act, knots_fn: str, l: float, u: float, n: int = 4001) -> np.ndarray:
    """Dense points of [l, u]: a uniform grid, the ends, the knots inside and points 1e-9 (relative) beside
    them, and a geometric grid towards each end of a wide interval."""
    pts = [np.linspace(l, u, n), np.array([l, u])]
    for k in getattr(act, knots_fn)():
        for d in (0.0, -1e-9, 1e-9):
            pts.append(np.array([k + d * max(1.0, abs(k))]))
    if u - l > 100:
        geo = np.geomspace(1e-6, max(abs(l), abs(u)), 500)
        pts += [geo, -geo]
    z = np.concatenate(pts)
    return z[(z >= l) & (z <= u)]


@settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(idx=st.integers(0, len(ALL) - 1), which=st.integers(0, len(CURVATURES) - 1),
       a=st.floats(-30, 30, allow_nan=False),
       scale=st.sampled_from([0.0, 1e-300, 1e-12, 1e-6, 1e-3, 0.1, 1.0, 5.0, 40.0, 1e4]),
       frac=st.floats(0, 1, allow_nan=False))
def test_curvature_ranges_contain_dense_samples(idx, which, a, scale, frac):
    name, act = ALL[idx]
    range_fn, fn, knots = CURVATURES[which]
    l, u = a, a + scale * frac
    lo, hi = getattr(act, range_fn)(np.array([l]), np.array([u]))
    vals = getattr(act, fn)(_samples(act, knots, l, u))
    assert np.isfinite(lo[0]) and np.isfinite(hi[0])
    assert lo[0] <= vals.min() and vals.max() <= hi[0], (name, range_fn, l, u, lo, hi, vals.min(), vals.max())


_EXTREME = [(-1e8, 1e8), (-1e300, 1e300), (1e5, 1e300), (-1e300, -1e5), (0.0, 0.0), (1e-300, 2e-300),
            (-5e-324, 5e-324), (2.0, float(np.nextafter(2.0, 3.0))), (-3.0, -3.0), (-1e3, 1e3)]


@pytest.mark.parametrize("name,act", ALL, ids=[n for n, _ in ALL])
def test_curvature_ranges_on_extreme_intervals(name, act):
    """Huge, tiny and degenerate intervals (many at once, as a batch): finite ranges that contain the samples."""
    l = np.array([e[0] for e in _EXTREME])
    u = np.array([e[1] for e in _EXTREME])
    for range_fn, fn, knots in CURVATURES:
        lo, hi = getattr(act, range_fn)(l, u)
        assert np.all(np.isfinite(lo)) and np.all(np.isfinite(hi)), (name, range_fn)
        for i in range(len(l)):
            vals = getattr(act, fn)(_samples(act, knots, l[i], u[i], n=1001))
            assert lo[i] <= vals.min() and vals.max() <= hi[i], (name, range_fn, l[i], u[i], lo[i], hi[i])


@pytest.mark.parametrize("name,act", ALL, ids=[n for n, _ in ALL])
def test_curvatures_are_monotone_between_knots(name, act):
    """What the ranges rest on: between consecutive knots (and beyond the outer ones, out to 1e300) each
    curvature function is monotone, up to the ranges' outward rounding."""
    for _, fn, knots_fn in CURVATURES:
        knots = sorted(set(getattr(act, knots_fn)()) | {-1e300, 1e300})
        for a, b in zip(knots[:-1], knots[1:]):
            if b - a > 1e3:  # an outer piece: a dense grid near the knot, then geometric out to the far end
                near = a if abs(a) < abs(b) else b
                far = b if near == a else a
                steps = np.geomspace(1e-9, abs(far - near), 5001)
                z = near + np.sign(far - near) * steps
                z = np.concatenate([np.linspace(near, near + np.sign(far - near) * 40, 10001)[1:], z])
                z = np.sort(z)
            else:
                z = np.linspace(a, b, 10001)[1:-1]
            v = getattr(act, fn)(z)
            d = np.diff(v)
            tol = 2 * (PAD_REL * np.maximum(np.abs(v[1:]), np.abs(v[:-1])) + PAD_ABS)
            up, down = np.all(d >= -tol), np.all(d <= tol)
            assert up or down, (name, fn, a, b, float(z[np.argmin(d)]), float(z[np.argmax(d)]))


@pytest.mark.parametrize("range_fn", [c[0] for c in CURVATURES])
def test_curvature_ranges_refuse_bad_intervals(range_fn):
    act = acts.tanh()
    for l, u in ((1.0, 0.0), (-math.inf, 0.0), (0.0, math.inf), (math.nan, 0.0)):
        with pytest.raises(ValueError):
            getattr(act, range_fn)(np.array([l]), np.array([u]))


# ============================================================================================ the bound
SMOOTH = {"tanh": acts.tanh(), "gelu": acts.gelu(), "sigmoid": acts.sigmoid(), "softplus": acts.softplus(),
          "gelu_tanh": acts.gelu("tanh"), "silu": acts.silu()}
FIRST_ORDER = {"elu": acts.elu(1.0), "hardswish": acts.hardswish()}  # Lipschitz slopes: first-order models


def _dense_max(net, lo, hi, quantity, p, cols, rng, metric=None, n=600):
    """max of ||M(x)||_p over corners, the centre and uniform points of the box [lo, hi] (n_in,)."""
    k = lo.shape[0]
    u = rng.uniform(size=(n, k))
    u[: 2**k] = np.array(np.meshgrid(*[[0.0, 1.0]] * k)).reshape(k, -1).T
    u[2**k] = 0.5
    x = lo + u * (hi - lo)
    m = net.jacobian(x) if quantity == "JACOBIAN" else net.pwa(x)[0]
    m = m[:, :, :cols]
    if metric is not None:
        m = metric.t @ m @ np.linalg.inv(metric.t)
    return float(induced_norm(m, p).max())


@settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(name=st.sampled_from(sorted(SMOOTH) + sorted(FIRST_ORDER)), seed=st.integers(0, 10_000),
       quantity=st.sampled_from(["A_STAR", "JACOBIAN"]), p=st.sampled_from([1.0, 2.0, math.inf]),
       skip=st.booleans(), n_in=st.integers(1, 3), depth=st.integers(1, 3),
       half=st.sampled_from([1e-6, 1e-3, 0.05, 0.3, 1.0]), vertex_dims=st.sampled_from([0, 1, 6]))
# hardswish's derivative jumps at -3 and 3: J is not Lipschitz there, and a first-order model was below a sample
@example(name="hardswish", seed=3925, quantity="JACOBIAN", p=1.0, skip=False, n_in=3, depth=1, half=0.05,
         vertex_dims=0)
def test_second_order_bound_dominates_dense_samples(name, seed, quantity, p, skip, n_in, depth, half, vertex_dims,
                                                    random_net):
    """On random sub-boxes of [-2, 2]^n the bound is >= ||Q(x)||_p at dense samples, and finite on small boxes."""
    act = {**SMOOTH, **FIRST_ORDER}[name]
    net = random_net(seed, n_in, (6, 5, 4)[:depth], activation=act, weight_scale=1.5, skip=skip)
    rng = np.random.default_rng(seed)
    c = rng.uniform(-2.0, 2.0, size=(4, n_in))
    w = half * rng.uniform(0.2, 1.0, size=(4, n_in))
    w[0, 0] = 0.0  # a degenerate side
    lo, hi = c - w, c + w
    bound = second_order_bound(net, lo, hi, quantity, p, vertex_dims=vertex_dims)
    for b in range(lo.shape[0]):
        v = _dense_max(net, lo[b], hi[b], quantity, p, net.n_in, rng)
        assert bound[b] >= v, (bound[b], v)
        if half <= 1e-3 and name in SMOOTH and vertex_dims >= n_in:  # every coordinate at the vertices
            assert bound[b] <= v * (1 + 1e-3) + 1e-6, (bound[b], v)


@settings(max_examples=8, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(name=st.sampled_from(["tanh", "gelu", "sigmoid", "softplus"]), seed=st.integers(0, 10_000),
       quantity=st.sampled_from(["A_STAR", "JACOBIAN"]), use_metric=st.booleans(), skip=st.booleans())
def test_second_order_bound_through_the_bounder(name, seed, quantity, use_metric, skip, random_net, unit_box):
    """Through :func:`box_bounds` (the search's path): state columns only (n_states < n_in), a skip, a metric
    (p = 2, the conjugated chain and its factor): the bound is >= the sampled norms."""
    net = random_net(seed, 3, (6, 5), activation=SMOOTH[name], weight_scale=1.5, skip=skip, n_out=2, n_states=2)
    rng = np.random.default_rng(seed)
    metric = None
    if use_metric:
        q, _ = np.linalg.qr(rng.normal(size=(2, 2)))
        metric = Metric.of(q @ np.diag(np.exp(rng.uniform(-1.5, 1.5, 2))) @ q.T)
    p = 2.0 if use_metric else float(rng.choice([1.0, 2.0, math.inf]))
    st_ = SupNormBounder.of(net, unit_box(3), p, Quantity.coerce(quantity), True, metric)
    c = rng.uniform(-0.8, 0.8, size=(5, 3))
    half = rng.choice([1e-3, 0.02, 0.2], size=(5, 1))
    lo, hi = c - half, c + half
    bound = box_bounds(st_, lo, hi, (BoundKind.SECOND_ORDER,))[BoundKind.SECOND_ORDER]
    for b in range(lo.shape[0]):
        v = _dense_max(net, lo[b], hi[b], quantity, p, 2, rng, metric)
        assert bound[b] >= v, (bound[b], v)


_SHRINK_CASES = [(n, q, p) for n in ("tanh", "gelu", "sigmoid", "softplus") for q in ("A_STAR", "JACOBIAN")
                 for p in (1.0, 2.0, math.inf)]
_SHRINK_DEFAULT = [("tanh", "A_STAR", 2.0), ("gelu", "JACOBIAN", 1.0), ("sigmoid", "A_STAR", math.inf),
                   ("softplus", "JACOBIAN", 2.0), ("gelu", "A_STAR", 2.0), ("tanh", "JACOBIAN", math.inf)]


@pytest.mark.parametrize("name,quantity,p", [c if c in _SHRINK_DEFAULT else pytest.param(*c, marks=pytest.mark.slow)
                                             for c in _SHRINK_CASES])
def test_excess_shrinks_like_width_squared(name, quantity, p, random_net):
    """The bound's excess over the sampled maximum on a box 10x smaller is below a twentieth of the excess on
    the larger one (width^2 gives a hundredth, a first-order bound a tenth)."""
    net = random_net(7, 3, (8, 8), activation=SMOOTH[name], weight_scale=1.5)
    rng = np.random.default_rng(1)
    centres = rng.uniform(-0.5, 0.5, size=(2, 3))
    for c in centres:
        gaps = []
        for half in (0.04, 0.004):
            lo, hi = (c - half)[None], (c + half)[None]
            bound = second_order_bound(net, lo, hi, quantity, p)[0]
            gaps.append(bound - _dense_max(net, lo[0], hi[0], quantity, p, 3, rng, n=2000))
        assert 0.0 <= gaps[1] <= gaps[0] / 20, (c, gaps)


def test_not_applicable_nets_get_no_bound(random_net):
    """inf where a slope function is not Lipschitz (ReLU; ELU with alpha != 1 and relu6 (a kink at 0 of the
    secant) for A*; any clip for J), and on a box whose pre-activations overflow."""
    lo, hi = -np.ones((2, 2)), np.ones((2, 2))
    cases = [(acts.relu(), "A_STAR"), (acts.relu(), "JACOBIAN"), (acts.elu(0.5), "A_STAR"),
             (acts.relu6(), "A_STAR"), (acts.hardtanh(), "JACOBIAN"), ([acts.tanh(), acts.relu()], "JACOBIAN")]
    for act, quantity in cases:
        net = random_net(0, 2, (4, 4), activation=act)
        assert not applies(net, quantity)
        assert np.all(second_order_bound(net, lo, hi, quantity, 2.0) == np.inf)
    net = random_net(0, 2, (4, 4), activation=acts.tanh())
    assert applies(net, "A_STAR") and applies(net, "JACOBIAN")
    huge = second_order_bound(net, np.full((1, 2), -1e308), np.full((1, 2), 1e308), "A_STAR", 2.0)
    assert huge[0] == np.inf


def test_mixed_layers_are_sound(random_net):
    """A smooth layer after a first-order one (ELU with alpha 1) and a clip without a kink at 0 for A*."""
    rng = np.random.default_rng(3)
    for layers, quantity in (([acts.elu(1.0), acts.tanh()], "JACOBIAN"), ([acts.gelu(), acts.hardswish()], "A_STAR"),
                             ([acts.clip(-2.0, 1.5), acts.sigmoid()], "A_STAR")):
        net = random_net(5, 2, (6, 6), activation=layers, weight_scale=1.5)
        assert applies(net, quantity)
        c = rng.uniform(-1, 1, size=(6, 2))
        for half in (1e-3, 0.05, 0.3):
            bound = second_order_bound(net, c - half, c + half, quantity, 2.0)
            for b in range(c.shape[0]):
                assert bound[b] >= _dense_max(net, c[b] - half, c[b] + half, quantity, 2.0, 2, rng)


# ============================================================================================ in the search
_KINDS = (BoundKind.INTERVAL, BoundKind.CENTRED, BoundKind.SECOND_ORDER)


@pytest.mark.parametrize("quantity", ["A_STAR", "JACOBIAN"])
def test_box_search_with_second_order_certifies(quantity, random_net, scaled_net, unit_box):
    """The sub-box search with the (deferred) second-order bound certifies a tanh net scaled to a dense sampled
    maximum of 0.9, with the bound winning on some boxes (and never certifies the net scaled to 1.02)."""
    net = random_net(11, 2, (8, 8), activation=acts.tanh(), weight_scale=1.5)
    box = unit_box(2)
    ref = _dense_max(net, box.lower, box.upper, quantity, 2.0, 2, np.random.default_rng(0), n=20000)
    config = VerifyConfig(timeout=20.0, seed=0, boxes=BoxSearchOptions(bounds=_KINDS, sdp=SdpUse.NEVER, samples=64))
    res = box_search(Query(scaled_net(net, 0.9 / ref), box, Quantity.coerce(quantity), config, threshold=1 - 1e-6))
    assert res.outcome.value == "certified" and res.upper <= 1 - 1e-6
    assert dict(res.wins)["second_order"] > 0
    over = box_search(Query(scaled_net(net, 1.02 / ref), box, Quantity.coerce(quantity), config, threshold=1.0))
    assert over.outcome.value == "exceeded" and over.lower > 1.0


@pytest.mark.slow
@pytest.mark.parametrize("quantity", ["A_STAR", "JACOBIAN"])
def test_box_search_with_second_order_brackets_the_sampled_max(quantity, random_net, unit_box):
    """Without a threshold: the upper bound is above the dense sampled maximum, the lower bound is the norm at its
    witness."""
    net = random_net(11, 2, (8, 8), activation=acts.tanh(), weight_scale=1.5)
    box = unit_box(2)
    config = VerifyConfig(timeout=60.0, seed=0, boxes=BoxSearchOptions(bounds=_KINDS, sdp=SdpUse.NEVER,
                                                                       gap_tol=1e-3))
    res = box_search(Query(net, box, Quantity.coerce(quantity), config))
    ref = _dense_max(net, box.lower, box.upper, quantity, 2.0, 2, np.random.default_rng(0), n=20000)
    x = res.witness[None]
    at_witness = induced_norm(net.jacobian(x) if quantity == "JACOBIAN" else net.pwa(x)[0], 2.0)[0]
    assert res.lower == pytest.approx(at_witness, rel=1e-12) and ref <= res.upper and res.lower <= res.upper


def test_box_search_drops_second_order_where_it_does_not_apply(random_net, unit_box):
    """On a ReLU net the kind is dropped (it would be inf on every box): the search certifies with the same boxes
    as without it."""
    net = random_net(2, 2, (6, 6), activation=acts.relu(), weight_scale=0.5)
    kinds = (BoundKind.INTERVAL, BoundKind.SECOND_ORDER)
    config = VerifyConfig(timeout=30.0, seed=0, boxes=BoxSearchOptions(bounds=kinds, sdp=SdpUse.NEVER))
    res = box_search(Query(net, unit_box(2), Quantity.A_STAR, config, threshold=1.0))
    assert "second_order" not in dict(res.wins)
    plain = box_search(Query(net, unit_box(2), Quantity.A_STAR, config.with_(
        boxes=BoxSearchOptions(bounds=(BoundKind.INTERVAL,), sdp=SdpUse.NEVER)), threshold=1.0))
    assert res.outcome.value == plain.outcome.value == "certified" and res.boxes == plain.boxes


def test_box_search_defers_second_order_without_any_level(random_net, unit_box):
    """A clip net (A*, secant Lipschitz) with a neuron on its kink over the whole box has no generic point, so the
    incumbent stays -inf; with no threshold the level is -inf when the deferred second-order bound loses on a box.
    The wait before its next try must still be a number of generations (it was NaN: ValueError), and the search
    runs to its node budget with an upper bound."""
    from certify.ir.network import Layer, Network

    base = random_net(3, 2, (6, 6), activation=acts.clip(0.25, 2.0), weight_scale=1.5)
    w0, b0 = np.array(base.layers[0].weight), np.array(base.layers[0].bias)
    w0[0], b0[0] = 0.0, 0.25  # z = 0.25 = the clip's lower end for every x
    net = Network((Layer(w0, b0, base.layers[0].activation),) + base.layers[1:], base.out_weight, base.out_bias,
                  base.skip)
    config = VerifyConfig(timeout=60.0, seed=0, budget=200,
                          boxes=BoxSearchOptions(bounds=(BoundKind.INTERVAL, BoundKind.SECOND_ORDER), sdp=SdpUse.NEVER))
    res = box_search(Query(net, unit_box(2), Quantity.A_STAR, config))
    assert res.outcome.value == "budget" and math.isfinite(res.upper)
    assert res.lower == -math.inf  # no witness: the case where the level is -inf
    assert dict(res.wins)["second_order"] > 0

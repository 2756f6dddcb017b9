"""Branch and bound over sub-boxes for smooth activations: soundness of every sub-box bound against samples,
brackets against dense sampling, the GELU example (dissipativity certified, contraction falsified), budgets."""

from __future__ import annotations

import math

import numpy as np
import pytest
from engine_calls import sup_norm_boxes
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from certify.bounds.corollary4 import product_bound
from certify.bounds.interval import interval_bounds
from certify.bounds.norm_bounds import SupNormBounder, box_bounds, sup_norm_bound
from certify.bounds.slopes import interval_preactivations, matrix_enclosure, preactivation_bounds, slope_ranges
from certify.config import BoundKind
from certify.engines.contract import Outcome
from certify.ir import activations as acts
from certify.ir.box import Box
from certify.ir.network import Network
from certify.ir.numerics import induced_norm
from certify.ir.quantity import Quantity

SMOOTH = {
    "tanh": acts.tanh,
    "sigmoid": acts.sigmoid,
    "gelu": acts.gelu,
    "softplus": acts.softplus,
    "selu": acts.selu,
    "silu": acts.silu,
    "elu": acts.elu,
    "gelu_tanh": lambda: acts.gelu("tanh"),
}
EVERY = dict(SMOOTH, relu=acts.relu, leaky_relu=acts.leaky_relu, hardtanh=acts.hardtanh, hardswish=acts.hardswish)
ALL_KINDS = (BoundKind.INTERVAL, BoundKind.PRODUCT, BoundKind.SCALED)


def _matrices(net: Network, x: np.ndarray, quantity: str, cols: int) -> np.ndarray:
    m = net.jacobian(x) if quantity == "JACOBIAN" else net.pwa(x)[0]
    return m[:, :, :cols]


def _sub_boxes(rng, box: Box, k: int) -> tuple[np.ndarray, np.ndarray]:
    a = rng.uniform(box.lower, box.upper, size=(k, box.dim))
    b = rng.uniform(box.lower, box.upper, size=(k, box.dim))
    lo, hi = np.minimum(a, b), np.maximum(a, b)
    # a few thin and a few degenerate sides
    hi[0] = lo[0] + 1e-6
    hi[1, 0] = lo[1, 0]
    return lo, hi


def _points_in(rng, lo: np.ndarray, hi: np.ndarray, n: int) -> np.ndarray:
    u = rng.uniform(size=(n, lo.size))
    u[:4] = rng.integers(0, 2, size=(4, lo.size))  # corners too
    return lo + u * (hi - lo)


# ----------------------------------------------------------------------------------------- sub-box bounds vs samples
@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(name=st.sampled_from(sorted(EVERY)), seed=st.integers(0, 10_000),
       quantity=st.sampled_from(["A_STAR", "JACOBIAN"]),
       p=st.sampled_from([1.0, 2.0, math.inf]), skip=st.booleans(), n_in=st.integers(1, 3))
def test_sub_box_bounds_dominate_samples(name, seed, quantity, p, skip, n_in, random_net, unit_box):
    """Every bound kind on a sub-box is >= ||Q(x)|| at every sampled x of that sub-box; the interval matrix
    contains every sampled matrix entrywise; pre-activation bounds contain sampled pre-activations."""
    net = random_net(seed, n_in, (5, 4), activation=EVERY[name](), weight_scale=1.5, skip=skip)
    box = unit_box(n_in, 2.0)
    rng = np.random.default_rng(seed)
    lo, hi = _sub_boxes(rng, box, 6)
    st_ = SupNormBounder.of(net, box, p, Quantity.coerce(quantity), True)
    bounds = box_bounds(st_, lo, hi, ALL_KINDS)
    slopes = slope_ranges(net, lo, hi, quantity)
    mlo, mhi = matrix_enclosure(net, slopes, net.n_states)
    pre = preactivation_bounds(net, lo, hi)
    for b in range(lo.shape[0]):
        x = _points_in(rng, lo[b], hi[b], 200)
        mats = _matrices(net, x, quantity, net.n_states)
        norms = induced_norm(mats, p)
        for kind, v in bounds.items():
            assert v[b] >= norms.max(), (kind, v[b], norms.max())
        assert np.all(mats >= mlo[b]) and np.all(mats <= mhi[b])
        for (zl, zu), z in zip(pre, net.preactivations(x)):
            assert np.all(z >= zl[b]) and np.all(z <= zu[b])


@pytest.mark.parametrize("name", sorted(EVERY))
def test_batched_bounds_agree_with_single_box_functions(name, random_net, unit_box):
    """The batched interval pre-activations equal bounds.interval_bounds box by box (to an ulp), the centred form is
    never
    looser, and the PRODUCT bound is weight_norm.product_bound on every sub-box (or below it, with the centred
    bounds)."""
    net = random_net(3, 3, (6, 5), activation=EVERY[name](), skip=True)
    box = unit_box(3, 1.5)
    rng = np.random.default_rng(1)
    lo, hi = _sub_boxes(rng, box, 5)
    plain = interval_preactivations(net, lo, hi)
    centred = preactivation_bounds(net, lo, hi)
    for q in ("A_STAR", "JACOBIAN"):
        st_ = SupNormBounder.of(net, box, 2.0, Quantity.coerce(q), True)
        prod = box_bounds(st_, lo, hi, (BoundKind.PRODUCT,))[BoundKind.PRODUCT]
        for b in range(lo.shape[0]):
            sub = Box(lo[b], hi[b])
            ref = interval_bounds(net, sub)
            for (zl, zu), (cl, cu), r in zip(plain, centred, ref):
                # the same arithmetic; a batched matmul may sum in another order (an ulp, inside the pad)
                np.testing.assert_allclose(zl[b], r.pre_lower, rtol=1e-14, atol=1e-15)
                np.testing.assert_allclose(zu[b], r.pre_upper, rtol=1e-14, atol=1e-15)
                assert np.all(cl[b] >= zl[b]) and np.all(cu[b] <= zu[b])
            # never above Corollary 4 of weight_norm (the centred pre-activation bounds can only shrink slopes)
            assert prod[b] <= product_bound(net, sub, 2.0, q, True).value * (1 + 1e-12)
    one = random_net(3, 3, (6,), activation=EVERY[name](), skip=True)  # one hidden layer: the same bound
    for q in ("A_STAR", "JACOBIAN"):
        st_ = SupNormBounder.of(one, box, 2.0, Quantity.coerce(q), True)
        prod = box_bounds(st_, lo, hi, (BoundKind.PRODUCT,))[BoundKind.PRODUCT]
        for b in range(lo.shape[0]):
            ref = product_bound(one, Box(lo[b], hi[b]), 2.0, q, True).value
            assert prod[b] == pytest.approx(ref, rel=1e-12)


def test_centred_form_is_quadratic_on_small_boxes(random_net):
    """On a small box the centred pre-activation bounds of the second layer are much tighter than intervals."""
    net = random_net(5, 2, (16, 16), activation=acts.tanh(), weight_scale=2.0)
    c = np.array([0.3, -0.2])
    lo, hi = (c - 1e-3)[None], (c + 1e-3)[None]
    w_plain = np.subtract(*interval_preactivations(net, lo, hi)[1][::-1])
    w_centred = np.subtract(*preactivation_bounds(net, lo, hi)[1][::-1])
    assert np.max(w_centred) < 0.5 * np.max(w_plain)


def test_state_only_bounds_state_columns(random_net):
    """With exogenous inputs, state_only bounds ||Q[:, :n_states]|| and still uses the inputs' ranges."""
    net = random_net(11, 3, (6, 6), n_out=2, activation=acts.gelu(), n_states=2)
    box = Box(-np.ones(3), np.ones(3), n_states=2)
    full = sup_norm_bound(net, box, 2.0, "A_STAR", state_only=False)
    states = sup_norm_bound(net, box, 2.0, "A_STAR", state_only=True)
    x = np.random.default_rng(0).uniform(-1, 1, size=(2000, 3))
    assert states >= induced_norm(_matrices(net, x, "A_STAR", 2), 2.0).max()
    assert full >= induced_norm(_matrices(net, x, "A_STAR", 3), 2.0).max()


# ----------------------------------------------------------------------------------------- brackets vs dense sampling
def _dense_max(net: Network, box: Box, quantity: str, p: float, n: int = 201) -> float:
    g = [np.linspace(lo, hi, n) for lo, hi in zip(box.lower, box.upper)]
    x = np.stack(np.meshgrid(*g), -1).reshape(-1, box.dim)
    return float(induced_norm(_matrices(net, x, quantity, net.n_states), p).max())


@settings(max_examples=12, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(name=st.sampled_from(["tanh", "sigmoid", "gelu", "softplus", "selu"]), seed=st.integers(0, 10_000),
       quantity=st.sampled_from(["A_STAR", "JACOBIAN"]), p=st.sampled_from([1.0, 2.0, math.inf]))
def test_bracket_contains_dense_sampled_maximum(name, seed, quantity, p, random_net, unit_box):
    net = random_net(seed, 2, (6, 6), activation=SMOOTH[name](), weight_scale=1.5)
    box = unit_box(2, 1.5)
    # a box budget, not the clock, ends the search (the timeout is a backstop far above it)
    res = sup_norm_boxes(net, box, p, quantity, timeout=600.0, max_boxes=2000, use_sdp=False, seed=seed, samples=256,
                         gap_tol=1e-3)
    dense = _dense_max(net, box, quantity, p)
    assert res.lower <= res.upper
    assert dense <= res.upper
    # lower is attained at the witness (replayed), so it cannot exceed the true sup; dense is close to it
    assert res.witness is not None and box.contains(res.witness)
    assert induced_norm(_matrices(net, res.witness[None], quantity, 2)[0], p) == pytest.approx(res.lower, rel=1e-12)
    assert res.lower >= dense * (1 - 1e-2)
    assert 0.0 <= res.proven_fraction <= 1.0
    uppers = [t[2] for t in res.trace]
    lowers = [t[1] for t in res.trace]
    assert all(b <= a * (1 + 1e-12) for a, b in zip(uppers, uppers[1:]))  # upper never grows
    assert all(b >= a for a, b in zip(lowers, lowers[1:]))  # lower never drops


# ----------------------------------------------------------------------------------------- the GELU example of issue 4
def test_gelu_example_dissipativity_certified_contraction_falsified(gelu_example):
    net, box = gelu_example()
    threshold = 1 - 1e-6
    dis = sup_norm_boxes(net, box, 2.0, "A_STAR", threshold=threshold, timeout=20.0, seed=1)
    assert dis.outcome is Outcome.CERTIFIED and dis.upper <= threshold and dis.proven_fraction == 1.0
    # by hand: A*(x) = 0.999^2 Phi(0.999 x) < 0.999^2, approached at x = 50
    assert dis.upper >= 0.999**2 * 0.5 * math.erfc(-0.999 * 50 / math.sqrt(2)) - 1e-12
    con = sup_norm_boxes(net, box, 2.0, "JACOBIAN", threshold=threshold, timeout=20.0, seed=1)
    assert con.outcome is Outcome.EXCEEDED and con.lower >= 1.0
    x = float(con.witness[0])
    z = 0.999 * x
    by_hand = 0.999 * 0.999 * (0.5 * math.erfc(-z / math.sqrt(2)) + z * math.exp(-z * z / 2) / math.sqrt(2 * math.pi))
    assert by_hand == pytest.approx(con.lower, rel=1e-12)
    assert con.lower == pytest.approx(0.999**2 * 1.128904, rel=1e-5)  # GELU' peaks at sqrt(2): 1.1289...


def test_secant_ranges_do_not_bound_the_jacobian(gelu_example):
    """Using A*'s (secant) slope ranges for J would 'certify' contraction of the GELU example, which is false:
    the two quantities must be kept apart (this is the mistake the JACOBIAN path avoids)."""
    net, box = gelu_example()
    st_ = SupNormBounder.of(net, box, 2.0, Quantity.coerce("A_STAR"), True)
    wrong = box_bounds(st_, box.lower[None], box.upper[None], (BoundKind.INTERVAL,))[BoundKind.INTERVAL][0]
    right = sup_norm_bound(net, box, 2.0, "JACOBIAN")
    x = np.linspace(-5, 50, 20001)[:, None]
    true_j = np.abs(net.jacobian(x)).max()
    assert wrong < 1.0 < true_j <= right


# ----------------------------------------------------------------------------------------- verdicts and budgets
@pytest.mark.parametrize("name", ["tanh", "sigmoid", "gelu"])
def test_contractive_net_is_certified(name, random_net, scaled_net, unit_box):
    base = random_net(7, 2, (8, 8), activation=SMOOTH[name]())
    box = unit_box(2)
    net = scaled_net(base, 0.8 / _dense_max(base, box, "JACOBIAN", 2.0, 101))
    res = sup_norm_boxes(net, box, 2.0, "JACOBIAN", threshold=1 - 1e-6, timeout=30.0, use_sdp=False)
    assert res.outcome is Outcome.CERTIFIED and res.exhausted
    assert res.upper <= 1 - 1e-6 and res.proven_fraction == 1.0
    assert res.lower >= 0.79  # the sampled max is 0.8 (grid), attained values are replayed


def test_proven_fraction_grows_with_the_box_budget(random_net, scaled_net, unit_box):
    base = random_net(2, 2, (16, 16), activation=acts.tanh())
    box = unit_box(2)
    net = scaled_net(base, 0.95 / _dense_max(base, box, "A_STAR", 2.0, 101))
    fractions = []
    for budget in (50, 200, 800, 100_000):
        res = sup_norm_boxes(net, box, 2.0, "A_STAR", threshold=1 - 1e-6, timeout=60.0, use_sdp=False,
                             max_boxes=budget, samples=256)
        assert 0.0 <= res.proven_fraction <= 1.0
        assert res.lower <= 0.95 * (1 + 1e-9) + 1e-3
        fractions.append(res.proven_fraction)
    assert fractions == sorted(fractions)
    assert fractions[-1] == 1.0 and fractions[0] < 1.0


def test_lower_point_and_seed(random_net, unit_box):
    net = random_net(4, 2, (6, 6), activation=acts.sigmoid(), weight_scale=2.0)
    box = unit_box(2)
    x0 = np.array([0.25, -0.5])
    res = sup_norm_boxes(net, box, 2.0, "A_STAR", lower_point=x0, lower_seed=1e9, timeout=2.0, samples=0)
    # the seed prunes everything (it is not reported): lower comes from the replayed point only
    assert res.lower >= induced_norm(net.pwa(x0)[0], 2.0) - 1e-15
    assert res.upper >= res.lower
    assert res.outcome is Outcome.BRACKETED


def test_sdp_bound_is_used_soundly(random_net, unit_box):
    net = random_net(9, 2, (4, 4), activation=acts.tanh(), weight_scale=1.5)
    box = unit_box(2)
    res = sup_norm_boxes(net, box, 2.0, "JACOBIAN", timeout=60.0, use_sdp=True, max_boxes=8, samples=256)
    assert res.counts.sdp_calls >= 1
    assert _dense_max(net, box, "JACOBIAN", 2.0) <= res.upper


def test_misuse_raises(random_net, unit_box):
    net = random_net(0, 2, (3,), activation=acts.tanh())
    with pytest.raises(ValueError):
        sup_norm_boxes(net, unit_box(3), 2.0)
    with pytest.raises(ValueError):
        sup_norm_boxes(net, unit_box(2), 3.0)
    with pytest.raises(ValueError):
        sup_norm_boxes(net, unit_box(2), 2.0, "HESSIAN")


def test_lower_seed_above_threshold_never_certifies(random_net, unit_box):
    """A caller's lower_seed above the threshold closes boxes, but that is no proof: not CERTIFIED."""
    net = random_net(4, 2, (6, 6), activation=acts.tanh(), weight_scale=2.0)
    box = unit_box(2)
    res = sup_norm_boxes(net, box, 2.0, "A_STAR", threshold=1e-3, lower_seed=1e9, timeout=5.0, samples=0)
    assert res.outcome is not Outcome.CERTIFIED
    assert res.upper > 1e-3 and res.proven_fraction < 1.0


@pytest.mark.parametrize("trial", [1, 3])
def test_trial_split_bracket_contains_dense_maximum(trial, random_net, unit_box):
    """Splitting along the best of several trial coordinates still bounds the densely sampled maximum (lower is a
    replayed witness, which may lie above a grid maximum)."""
    net = random_net(7, 2, (8, 8), activation=acts.tanh(), weight_scale=1.5)
    box = unit_box(2)
    res = sup_norm_boxes(net, box, 2.0, "A_STAR", timeout=20.0, use_sdp=False, gap_tol=1e-2, samples=256,
                         max_boxes=400, trial_split=trial)
    dense = _dense_max(net, box, "A_STAR", 2.0)
    assert res.lower <= res.upper and dense <= res.upper
    assert res.witness is not None and res.lower == pytest.approx(float(induced_norm(res.matrix, 2.0)), rel=1e-12)


def test_a_nan_candidate_does_not_hide_the_best_point_of_a_batch(monkeypatch, random_net):
    # np.argmax picks the first NaN: an overflowed candidate made the whole batch offer nothing
    import torch

    import certify.engines.box_search as bs
    from certify.config import VerifyConfig
    from certify.engines.contract import Query
    from certify.engines.search import Incumbent

    net = random_net(3, 2, (4,), activation=acts.tanh())
    query = Query(net, Box(-np.ones(2), np.ones(2)), Quantity.JACOBIAN, VerifyConfig())
    lower = bs._Lower(query)
    pts = np.array([[0.1, 0.2], [0.3, -0.4]])
    monkeypatch.setattr(bs, "norms_at", lambda *args: torch.tensor([math.nan, 0.5], dtype=torch.float64))
    incumbent = Incumbent(-math.inf, None)
    lower.offer_batch(pts, incumbent)
    assert incumbent.point is not None and np.allclose(incumbent.point, pts[1], atol=1e-6)


def test_a_sub_box_is_never_halved_along_a_coordinate_one_float_step_wide(random_net):
    # the sub-box search had its own split rule (width above a share of the root only): a coordinate one float64
    # step wide with a large sensitivity was halved into itself (one half the box again) until the deadline
    from certify.config import BoxSearchOptions, SdpUse, VerifyConfig
    from certify.engines import box_search as box_module
    from certify.engines.box_search import split_boxes
    from certify.engines.contract import Query
    from certify.engines.search import Incumbent, Node

    c = 0.25
    lo, hi = np.array([c, -1.0]), np.array([np.nextafter(c, 1.0), 1.0])
    parent = Node(1.0, (lo, hi, False, 0))
    min_w = np.array([1e-9 * 2 * (hi[0] - lo[0]), 2e-9])

    def bound(clo, chi):
        return np.zeros(clo.shape[0]), np.zeros(clo.shape[0], dtype=int)

    clo, chi, _, _ = split_boxes([parent], np.array([1e30, 1e-12]), min_w, bound, 1)
    assert np.array_equal(clo[:, 0], [c, c]) and np.array_equal(chi[:, 0], hi[[0, 0]])  # x_0 kept whole
    assert chi[0, 1] == clo[1, 1] == 0.0  # x_1 halved
    # a box a float step wide in every coordinate is final, not split
    net = random_net(2, 2, (6,), activation=acts.tanh())
    box = Box(np.array([c, c]), np.array([np.nextafter(c, 1.0)] * 2))
    query = Query(net, box, Quantity.A_STAR, VerifyConfig(boxes=BoxSearchOptions(sdp=SdpUse.NEVER)))
    problem = box_module._BoxProblem(query, box_module._Lower(query), 0.0)
    kids = problem.expand([Node(1.0, (box.lower, box.upper, False, 0))], Incumbent())
    assert [k.final for k in kids] == [True]

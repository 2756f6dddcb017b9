"""Branch and bound against full enumeration, sampling and upper bounds; the needle case; certify mode."""

import math

import numpy as np
import pytest
from engine_calls import sup_norm
from hypothesis import given, settings
from hypothesis import strategies as st

from certify.bounds.corollary4 import product_bound
from certify.config import RegionSearchOptions, VerifyConfig
from certify.engines.contract import Outcome, Query
from certify.engines.region_search import NodeBounder, region_search
from certify.engines.regions import Traversal, enumerate_regions
from certify.ir import activations as acts
from certify.ir.network import Layer, Network
from certify.ir.numerics import induced_norm
from certify.ir.quantity import Quantity

NORMS = [1.0, 2.0, math.inf]
ACTS = [None, acts.leaky_relu(0.2), "prelu", acts.clip(-0.5, 0.5)]


@settings(max_examples=15, deadline=None)
@given(seed=st.integers(0, 10_000), n_in=st.integers(2, 4), depth=st.integers(1, 3), width=st.integers(3, 8),
       act=st.sampled_from(range(len(ACTS))), p=st.sampled_from(NORMS), skip=st.booleans(),
       state_only=st.booleans())
def test_branch_and_bound_equals_enumeration_and_brackets_are_ordered(seed, n_in, depth, width, act, p, skip,
                                                                      state_only, random_net, unit_box):
    n_states = n_in - 1 if state_only else None
    net = random_net(seed, n_in, (width,) * depth, activation=ACTS[act], skip=skip, n_states=n_states)
    box = unit_box(n_in)
    cols = net.n_states if state_only else n_in
    enum = enumerate_regions(net, box)
    exact = max(float(induced_norm(r.m[:, :cols], p)) for r in enum.regions)
    res = sup_norm(net, box, p, quantity="JACOBIAN", state_only=state_only, exact=True)
    assert res.exhausted and res.exact
    assert res.lower == pytest.approx(exact, rel=1e-12, abs=1e-14)
    # witness replays through the IR
    assert box.contains(res.witness)
    assert float(induced_norm(net.jacobian(res.witness)[:, :cols], p)) == pytest.approx(res.lower, rel=1e-9)
    # sampled max <= exact <= root bound (interval matrix / CROWN) and <= the Corollary 4 product
    x = np.random.default_rng(seed).uniform(-1, 1, size=(2000, n_in))
    sampled = float(induced_norm(net.jacobian(x)[:, :, :cols], p).max())
    assert sampled <= exact * (1 + 1e-12)
    tr = Traversal(net, box)
    root_bound = NodeBounder(tr, p, cols).bound(tr.root())
    assert exact <= root_bound
    if not state_only:
        assert exact <= product_bound(net, box, p, "JACOBIAN", state_only=False).value * (1 + 1e-9)


@pytest.mark.parametrize("act", [None, acts.leaky_relu(0.1)])
def test_a_star_equals_jacobian_for_relu_type_nets(act, random_net, unit_box):
    net = random_net(5, 3, (6, 5), activation=act)
    a = sup_norm(net, unit_box(3), 2.0, quantity="A_STAR", exact=True)
    j = sup_norm(net, unit_box(3), 2.0, quantity="JACOBIAN", exact=True)
    assert a.exact and j.exact and a.lower == pytest.approx(j.lower, rel=1e-12)


def needle_net(delta: float = 1e-3, gain: float = 1.0) -> Network:
    """f = 0.5 x except on the triangle {x0, x1 > 1 - delta, x0 + x1 > 2 - delta} (area delta^2 / 2), where
    J = 0.5 I + gain [[1, 1], [0, 0]]."""
    a = 1.0 - delta
    l0 = Layer(np.array([[1.0, 0.0], [0.0, 1.0], [1.0, 0.0], [0.0, 1.0]]), np.array([-a, -a, 2.0, 2.0]), acts.relu())
    l1 = Layer(np.array([[1.0, 1.0, 0.0, 0.0], [0.0, 0.0, 1.0, 0.0], [0.0, 0.0, 0.0, 1.0]]),
               np.array([-delta, 0.0, 0.0]), acts.relu())
    return Network((l0, l1), np.array([[gain, 0.5, 0.0], [0.0, 0.0, 0.5]]), np.array([-1.0, -1.0]))


@pytest.mark.parametrize("p", NORMS)
def test_needle_is_falsified_with_a_witness_inside_the_sliver(p, unit_box):
    net, box, delta = needle_net(), unit_box(2), 1e-3
    x = np.random.default_rng(0).uniform(-1, 1, size=(100_000, 2))
    assert induced_norm(net.jacobian(x), p).max() == pytest.approx(0.5)  # sampling misses it
    res = sup_norm(net, box, p, quantity="A_STAR", threshold=1 - 1e-6)
    assert res.lower > 1 - 1e-6
    w = res.witness
    assert w[0] > 1 - delta and w[1] > 1 - delta and w[0] + w[1] > 2 - delta
    expected = float(induced_norm(np.array([[1.5, 1.0], [0.0, 0.5]]), p))
    assert res.lower == pytest.approx(expected, rel=1e-12)
    exact = sup_norm(net, box, p, quantity="A_STAR", exact=True)
    assert exact.exact and exact.lower == pytest.approx(expected, rel=1e-12)


def test_certify_mode_and_exact_value_of_a_scaled_net(random_net, scaled_net, unit_box):
    net = random_net(11, 3, (8, 8))
    box = unit_box(3)
    v = sup_norm(net, box, 2.0, exact=True).lower
    net = scaled_net(net, 0.97 / v)
    ex = sup_norm(net, box, 2.0, exact=True)
    assert ex.exact and abs(ex.lower - 0.97) <= 1e-9 and abs(ex.upper - 0.97) <= 1e-9
    cert = sup_norm(net, box, 2.0, threshold=1 - 1e-6)
    assert cert.exhausted and cert.upper <= 1 - 1e-6 and cert.lower <= 0.97 + 1e-9
    bad = sup_norm(scaled_net(net, 1.1), box, 2.0, threshold=1 - 1e-6)
    assert bad.lower > 1 - 1e-6 and not bad.exhausted


def test_unsupported_requests_return_a_bracket_with_a_reason(random_net, unit_box):
    smooth = random_net(0, 2, (4,), activation=acts.tanh())
    res = sup_norm(smooth, unit_box(2), 2.0, quantity="JACOBIAN")
    assert not res.exhausted and math.isinf(res.upper) and res.lower > 0 and "piecewise-linear" in res.reason
    clip = random_net(0, 2, (4,), activation=acts.clip(-0.5, 0.5))
    res = sup_norm(clip, unit_box(2), 2.0, quantity="A_STAR")
    assert not res.exhausted and "A*" in res.reason
    assert sup_norm(clip, unit_box(2), 2.0, quantity="JACOBIAN", exact=True).exact


def test_timeout_keeps_a_sound_bracket(random_net, unit_box):
    net = random_net(2, 3, (10, 10, 10))
    full = sup_norm(net, unit_box(3), 2.0, exact=True)
    cut = sup_norm(net, unit_box(3), 2.0, exact=True, timeout=1e-9)
    assert not cut.exhausted and "timeout" in cut.reason
    assert cut.lower <= full.lower * (1 + 1e-12) and cut.upper >= full.upper * (1 - 1e-12)


@pytest.mark.parametrize("seed", [3, 4])
def test_trace_brackets_the_exact_value_at_every_entry(seed, random_net, unit_box):
    net = random_net(seed, 3, (10, 10))
    box = unit_box(3)
    res = sup_norm(net, box, 2.0, exact=True)
    exact = max(float(induced_norm(r.m, 2.0)) for r in enumerate_regions(net, box).regions)
    assert res.exact and res.lower == pytest.approx(exact, rel=1e-12)
    assert len(res.trace) >= 2 and res.trace[-1] == (res.seconds, res.lower, res.upper)
    times = [t for t, _, _ in res.trace]
    assert times == sorted(times)
    for _, lo, up in res.trace:
        assert lo <= exact * (1 + 1e-12) and up >= exact * (1 - 1e-12)
    cut = sup_norm(net, box, 2.0, exact=True, timeout=1e-9)
    assert cut.trace[-1][1:] == (cut.lower, cut.upper)


@settings(max_examples=12, deadline=None)
@given(seed=st.integers(0, 10_000), n_in=st.integers(2, 3), depth=st.integers(1, 3), width=st.integers(3, 6),
       act=st.sampled_from(range(len(ACTS))), p=st.sampled_from(NORMS), skip=st.booleans())
def test_every_node_bound_covers_the_jacobian_of_sampled_points_in_the_node(seed, n_in, depth, width, act, p, skip,
                                                                           random_net, unit_box):
    """Node upper bounds (interval matrix, tail x head, slope-vertex enumeration) against dense sampling of the
    node's polytope: a point strictly inside it must have ||J(x)||_p <= the node's bound."""
    net = random_net(seed, n_in, (width,) * depth, activation=ACTS[act], skip=skip)
    box = unit_box(n_in)
    x = np.random.default_rng(seed).uniform(-1, 1, size=(3000, n_in))
    vals = induced_norm(net.jacobian(x), p)
    tr = Traversal(net, box)
    bounder = NodeBounder(tr, p, n_in)
    stack = [tr.root()]
    checked = 0
    while stack and checked < 60:
        node = stack.pop()
        b = bounder.bound(node)
        inside = np.all(x @ node.a.T < node.b - 1e-9, axis=1) if node.a.shape[0] else np.ones(len(x), bool)
        if inside.any():
            assert vals[inside].max() <= b * (1 + 1e-12) + 1e-12
        checked += 1
        kind, val = tr.expand(node)
        if kind == "branch":
            stack.extend(val)


@settings(max_examples=10, deadline=None)
@given(seed=st.integers(0, 10_000), n=st.integers(2, 3), width=st.integers(3, 7),
       p=st.sampled_from([1.0, 2.0, math.inf]))
def test_the_split_order_changes_the_nodes_not_the_value(seed, n, width, p, random_net, unit_box):
    # neurons split largest effect first (the default) or in index order: the same regions, the same exact value
    from certify.config import RegionSearchOptions, VerifyConfig
    from certify.engines.contract import Query
    from certify.engines.region_search import region_search
    from certify.ir.quantity import Quantity

    net, box = random_net(seed, n, (width, width)), unit_box(n)
    results = []
    for by_influence in (True, False):
        config = VerifyConfig(norm=p, timeout=60.0, regions=RegionSearchOptions(by_influence=by_influence))
        res = region_search(Query(net, box, Quantity.A_STAR, config))
        assert res.exact, res.reason
        results.append(res.lower)
    brute = max(float(induced_norm(r.m[:, :n], p)) for r in enumerate_regions(net, box).regions)
    assert math.isclose(results[0], results[1], rel_tol=1e-12) and math.isclose(results[0], brute, rel_tol=1e-9)


@pytest.mark.parametrize("seed,n_in,widths,p", [(0, 2, (7, 7), 2.0), (1, 3, (6, 6), 2.0), (2, 2, (6, 6, 4), 1.0),
                                                (3, 2, (8, 6), math.inf)])
def test_the_slope_branch_and_bound_never_undercuts_the_slope_vertices(seed, n_in, widths, p, random_net, unit_box,
                                                                       monkeypatch):
    """The slope branch and bound against the enumeration of every vertex of each node's slope box: at any pruning
    level its bound is no lower (sound), and with no level and no cap on its sub-boxes it equals the enumeration."""
    from certify.engines import region_search as rs

    net, box = random_net(seed, n_in, widths), unit_box(n_in)
    tr = Traversal(net, box)
    stack, checked, used = [tr.root()], 0, 0
    while stack and checked < 25:
        node = stack.pop()
        monkeypatch.setattr(rs, "_VERTEX_MAX", 20)  # every vertex enumerated: the relaxation's exact max
        enumerated = NodeBounder(tr, p, n_in, use_slope_bnb=False).bound(node)
        monkeypatch.setattr(rs, "_VERTEX_MAX", 0)  # the slope branch and bound instead
        cheap = NodeBounder(tr, p, n_in, use_slope_bnb=False).bound(node)
        bnb = NodeBounder(tr, p, n_in)
        used += enumerated < cheap
        # both are padded bounds of the same vertex maximum (pads up to ~1e-11 relative, different for a batch of
        # vertices and a single one): the exact maximum lies within 1e-10 below the enumeration
        for level in (-math.inf, 0.0, 0.5 * enumerated, enumerated, 2.0 * enumerated, math.inf):
            assert bnb.bound(node, level=level) >= enumerated * (1 - 1e-10) - 1e-15
        monkeypatch.setattr(rs, "_SLOPE_BNB_BOXES", 10**9)
        assert bnb.bound(node) <= enumerated * (1 + 1e-9) + 1e-12
        monkeypatch.setattr(rs, "_SLOPE_BNB_BOXES", 512)
        checked += 1
        kind, val = tr.expand(node)
        if kind == "branch":
            stack.extend(val)
    assert used  # the vertices were tighter than the interval bounds somewhere


@pytest.mark.filterwarnings("error::RuntimeWarning")
@pytest.mark.parametrize("factor", [1e-200, 1e200])
def test_slope_vertex_bounds_hold_at_extreme_scales(factor, random_net, scaled_net, unit_box, monkeypatch):
    """The vertex norms squared their matrices unscaled: at 1e-200 the bound of every node was 0, below the exact
    value (and at 1e200 eigvalsh failed). Every node bound must cover the enumerated exact maximum. And no numpy
    warning: the split orders' column norms overflowed at 1e200 (harmless to the bounds, but a user saw it)."""
    from certify.engines import region_search as rs

    net = scaled_net(random_net(4, 2, (6, 6)), factor)
    box = unit_box(2)
    exact = max(float(induced_norm(r.m, 2.0)) for r in enumerate_regions(net, box).regions)
    assert exact > 0
    tr = Traversal(net, box)
    for vertex_max in (10, 0):  # the vertex enumeration, then the slope branch and bound
        monkeypatch.setattr(rs, "_VERTEX_MAX", vertex_max)
        bound = NodeBounder(tr, 2.0, 2).bound(tr.root(), level=0.5 * exact)
        assert bound >= exact


@settings(max_examples=10, deadline=None)
@given(seed=st.integers(0, 10_000), n_in=st.integers(2, 3), width=st.integers(4, 8), p=st.sampled_from(NORMS),
       skip=st.booleans())
def test_the_input_split_bound_covers_sampled_points_at_every_level(seed, n_in, width, p, skip, random_net, unit_box):
    """The node bound with the input split (sub-boxes of the node's bounding box, each bounded on its own) against
    dense sampling of the node: at every pruning level, including levels between the sampled max and the plain
    bound, where the split works hardest, no point strictly inside the node exceeds it."""
    net = random_net(seed, n_in, (width, width), skip=skip)
    box = unit_box(n_in)
    x = np.random.default_rng(seed).uniform(-1, 1, size=(4000, n_in))
    vals = induced_norm(net.jacobian(x), p)
    tr = Traversal(net, box)
    plain, split = NodeBounder(tr, p, n_in), NodeBounder(tr, p, n_in, input_split=24)
    stack, checked = [tr.root()], 0
    while stack and checked < 30:
        node = stack.pop()
        inside = np.all(x @ node.a.T < node.b - 1e-9, axis=1) if node.a.shape[0] else np.ones(len(x), bool)
        top = vals[inside].max() if inside.any() else 0.0
        b0 = plain.bound(node)
        for level in (0.0, top, 0.5 * (top + b0), 0.99 * b0):
            b = split.bound(node, level=level)
            # the split only tightens the bound the same level gives (the slope search gives up early at a level)
            assert b <= plain.bound(node, level=level) * (1 + 1e-12) + 1e-15
            if inside.any():
                assert top <= b * (1 + 1e-12) + 1e-12
        checked += 1
        kind, val = tr.expand(node)
        if kind == "branch":
            stack.extend(val)


@pytest.mark.parametrize("seed,n_in,widths", [(1, 2, (8, 8)), (3, 3, (6, 6)), (4, 4, (6, 6)), (6, 2, (5, 5, 5))])
def test_the_input_split_changes_the_nodes_not_the_value(seed, n_in, widths, random_net, unit_box):
    """Exact search and certify mode with and without the input split: the same exact value (to 1e-12, and equal
    to the enumeration of every region) and the same verdict at a threshold 1% above and below it."""
    net, box = random_net(seed, n_in, widths), unit_box(n_in)
    brute = max(float(induced_norm(r.m[:, :n_in], 2.0)) for r in enumerate_regions(net, box).regions)
    runs = {}
    for split in (0, 32):
        config = VerifyConfig(timeout=600, regions=RegionSearchOptions(input_split=split))
        res = region_search(Query(net, box, Quantity.A_STAR, config))
        assert res.exact, res.reason
        verdicts = [region_search(Query(net, box, Quantity.A_STAR, config, threshold=brute * f)).outcome
                    for f in (0.99, 1.01)]
        runs[split] = (res.lower, res.counts.nodes, verdicts)
    assert math.isclose(runs[0][0], runs[32][0], rel_tol=1e-12) and math.isclose(runs[0][0], brute, rel_tol=1e-9)
    assert runs[0][2] == runs[32][2] == [Outcome.EXCEEDED, Outcome.CERTIFIED]


def test_the_lower_bound_is_the_witness_replay_when_that_is_smaller(random_net, unit_box, monkeypatch):
    """The search's value comes from the leaf's float64 chain; its witness is replayed through the model. Where the
    replay is the smaller by less than the 1e-9 that marks a discrepancy, the lower bound is still the replay
    (before, the chain's value stayed: at a threshold of 1 a witness could read >= 1 while its replay read < 1)."""
    from certify.engines import region_search as rs

    net, box = random_net(3, 2, (6, 6)), unit_box(2)
    query = Query(net, box, Quantity.A_STAR, VerifyConfig(regions=RegionSearchOptions(samples=64)))
    plain = region_search(query)
    real = rs.replay_norm

    def lower_replay(*args, **kwargs):
        v, m = real(*args, **kwargs)
        return v * (1 - 1e-12), m

    monkeypatch.setattr(rs, "replay_norm", lower_replay)
    low = region_search(query)
    assert low.lower == plain.lower * (1 - 1e-12) < plain.lower
    assert low.upper >= low.lower and low.closed == plain.closed and not low.reason

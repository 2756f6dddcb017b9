"""The vectorised dual simplex of the node bounds against brute force and HiGHS, and the polytope-tightened CROWN
bounds of the region search's nodes against sampled points.

The multipliers of :func:`certify.bounds.dual_simplex.row_multipliers` must give, through the weak-duality
re-derivation of :func:`certify.bounds.lp_dual.dual_lower_bounds`, a bound below the true minimum always (also
when the simplex is stopped early or the polytope is degenerate or empty) and equal to it at the optimum; the
pre-activation bounds of :func:`certify.bounds.crown.chain_bounds` over a node's polytope must contain every point
of the polytope, be no wider than the bounds over the box on the node's own layer, and leave the exact search's
value unchanged.
"""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from test_lp_dual import brute_force_min, polytope, solver_duals

from certify.bounds.crown import chain_bounds
from certify.bounds.dual_simplex import row_multipliers
from certify.bounds.lp_dual import dual_lower_bounds
from certify.config import RegionSearchOptions, VerifyConfig
from certify.engines.contract import Query
from certify.engines.region_search import NodeBounder, region_search
from certify.engines.regions import Traversal
from certify.ir.quantity import Quantity
from tests.random_nets import random_net, unit_box


def simplex_bounds(costs, a, b, lo, hi):
    return dual_lower_bounds(costs, a, b, lo, hi, row_multipliers(costs, a, b, lo, hi))


@settings(max_examples=60, deadline=None)
@given(st.integers(0, 10_000), st.integers(1, 3), st.integers(1, 8))
def test_the_simplex_bound_is_the_brute_force_minimum(seed, n, m):
    a, b, lo, hi = polytope(seed, n, m)
    costs = np.random.default_rng(seed + 1).normal(size=(6, n))
    for c, bound in zip(costs, simplex_bounds(costs, a, b, lo, hi)):
        true = brute_force_min(c, a, b, lo, hi)
        assert bound <= true + 1e-12 * max(1.0, abs(true))
        assert bound >= true - 1e-7 * max(1.0, abs(true))


@settings(max_examples=30, deadline=None)
@given(st.integers(0, 10_000), st.integers(4, 8), st.integers(5, 40))
def test_the_simplex_agrees_with_highs_in_higher_dimension(seed, n, m):
    a, b, lo, hi = polytope(seed, n, m)
    costs = np.random.default_rng(seed + 1).normal(size=(12, n))
    ours = simplex_bounds(costs, a, b, lo, hi)
    theirs = dual_lower_bounds(costs, a, b, lo, hi, solver_duals(costs, a, b, lo, hi))
    assert np.all(np.abs(ours - theirs) <= 1e-7 * np.maximum(1.0, np.abs(theirs)))


def degenerate_polytope(seed: int):
    """Rows through one vertex of the box, duplicated and opposite rows (a slab of zero width), a fixed coordinate."""
    rng = np.random.default_rng(seed)
    n = 3
    lo, hi = -np.ones(n), np.ones(n)
    lo[2] = hi[2] = 0.25  # held at its value
    corner = np.array([1.0, 1.0, 0.25])
    a = rng.normal(size=(4, n))
    b = a @ corner  # every row passes through the corner
    a = np.vstack([a, a[:2], [[1.0, 0.0, 0.0], [-1.0, 0.0, 0.0]]])
    b = np.concatenate([b, b[:2], [0.5, -0.5]])  # and x0 = 0.5 exactly
    return a, b, lo, hi


@pytest.mark.parametrize("seed", range(6))
def test_degenerate_polytopes_give_sound_bounds(seed):
    a, b, lo, hi = degenerate_polytope(seed)
    costs = np.random.default_rng(seed + 7).normal(size=(8, 3))
    pts = np.random.default_rng(seed).uniform(lo, hi, size=(20000, 3))
    pts[:, 0] = 0.5
    inside = pts[np.all(pts @ a.T <= b + 1e-12, axis=1)]
    bounds = simplex_bounds(costs, a, b, lo, hi)
    for c, bound in zip(costs, bounds):
        true = brute_force_min(c, a, b, lo, hi)
        if true is not None:
            assert bound <= true + 1e-12 * max(1.0, abs(true))
        if inside.shape[0]:
            assert bound <= float(np.min(inside @ c))


def test_a_simplex_stopped_early_still_gives_a_sound_bound():
    """With no pivot allowed the multipliers stay 0: the bound is the one over the box, weaker but below the minimum
    (the test shows the bound does not rest on the simplex finishing)."""
    a, b, lo, hi = polytope(11, 3, 10)
    costs = np.random.default_rng(3).normal(size=(8, 3))
    full = simplex_bounds(costs, a, b, lo, hi)
    box_only = dual_lower_bounds(costs, a, b, lo, hi, np.zeros((8, a.shape[0])))
    for pivots in (0, 1, 2):
        early = dual_lower_bounds(costs, a, b, lo, hi, row_multipliers(costs, a, b, lo, hi, max_pivots=pivots))
        for c, f, e, bo in zip(costs, full, early, box_only):
            true = brute_force_min(c, a, b, lo, hi)
            assert e <= true and f <= true + 1e-12
            assert e >= bo - 1e-12
        if pivots == 0:
            assert np.allclose(early, box_only, rtol=1e-12, atol=1e-12)
    assert np.any(full > box_only + 1e-6)  # the finished simplex is tighter on some objective


def test_an_empty_polytope_does_not_break_the_simplex():
    a = np.array([[1.0, 0.0], [-1.0, 0.0]])
    b = np.array([-0.5, -0.5])  # x0 <= -0.5 and x0 >= 0.5
    lo, hi = -np.ones(2), np.ones(2)
    ys = row_multipliers(np.eye(2), a, b, lo, hi)
    assert np.all(np.isfinite(ys)) and np.all(ys >= 0)


def node_samples(seed: int, dim: int, widths, count: int = 12):
    """Nodes of the traversal of a random net below the root, each with the sampled box points in its polytope."""
    net, box = random_net(seed, dim, widths), unit_box(dim)
    tr = Traversal(net, box, 1e-8)
    pts = np.random.default_rng(seed).uniform(box.lower, box.upper, size=(6000, dim))
    stack, out = [tr.root()], []
    while stack and len(out) < count:
        kind, val = tr.expand(stack.pop())
        for node in val if kind == "branch" else []:
            inside = pts[np.all(pts @ node.a.T <= node.b, axis=1)]
            if inside.shape[0]:
                out.append((node.copy(), inside))
            stack.append(node)
    return net, tr, out


def pre_activations(tr: Traversal, l: int, x: np.ndarray):
    """Pre-activations of layers l.. at points x (B, n): a list of (B, n_k)."""
    h, out = x, []
    for k, (w, b, pcs) in enumerate(zip(tr.weights, tr.biases, tr.pieces)):
        z = h @ w.T + b
        if k >= l:
            out.append(z)
        piece = pcs.piece_of(z)
        idx = np.arange(z.shape[1])
        h = pcs.slope[idx, piece] * z + pcs.offset[idx, piece]
    return out


@pytest.mark.parametrize("seed,dim,widths", [(0, 2, (8, 8, 6)), (1, 3, (6, 6)), (2, 4, (8, 6, 5))])
def test_polytope_bounds_contain_the_node_and_are_no_wider_than_box_bounds(seed, dim, widths):
    net, tr, nodes = node_samples(seed, dim, widths)
    assert nodes
    bounder = NodeBounder(tr, 2.0, dim)
    tightened = 0
    for node, inside in nodes:
        layers = bounder.layers[node.l:]
        fixed = [node.fixed[node.l]]
        plain = chain_bounds(node.g_mat, node.g_vec, layers, tr.lo, tr.hi, fixed)
        poly = chain_bounds(node.g_mat, node.g_vec, layers, tr.lo, tr.hi, fixed,
                            polytope=lambda costs, node=node: tr.polytope_lower(node, costs))
        zs = pre_activations(tr, node.l, inside)
        for (plo, phi), (lo, hi), z in zip(plain, poly, zs):
            assert np.all(z >= lo[None, :]) and np.all(z <= hi[None, :])
            tightened += int(np.count_nonzero((lo > plo) | (hi < phi)))
        # the node's own layer is an exact affine map: over the polytope its bounds can only shrink (later layers
        # can widen where a tighter earlier interval switches a CROWN lower line)
        (plo, phi), (lo, hi) = plain[0], poly[0]
        assert np.all(lo >= plo) and np.all(hi <= phi)
    assert tightened > 0  # the polytope did tighten something


def test_a_polytope_that_proves_nothing_changes_nothing():
    net, tr, nodes = node_samples(3, 2, (8, 8))
    bounder = NodeBounder(tr, 2.0, 2)
    for node, _ in nodes:
        layers, fixed = bounder.layers[node.l:], [node.fixed[node.l]]
        plain = chain_bounds(node.g_mat, node.g_vec, layers, tr.lo, tr.hi, fixed)
        none = chain_bounds(node.g_mat, node.g_vec, layers, tr.lo, tr.hi, fixed,
                            polytope=lambda costs: np.full(costs.shape[0], -np.inf))
        for (plo, phi), (lo, hi) in zip(plain, none):
            assert np.array_equal(plo, lo) and np.array_equal(phi, hi)


@pytest.mark.parametrize("option", ["node_lp", "node_bbox", "slope_bnb"])
@pytest.mark.parametrize("seed,dim,widths", [(1, 2, (8, 8)), (2, 2, (10,)), (3, 3, (6, 6)), (4, 4, (6, 6)),
                                             (5, 2, (12, 6)), (6, 2, (5, 5, 5))])
def test_the_exact_search_gives_the_same_value_with_and_without_each_node_bound(option, seed, dim, widths):
    """The node LPs, the node bounding boxes and the slope branch and bound only prune: the exact value is the same
    without each."""
    net, box = random_net(seed, dim, widths), unit_box(dim)
    values = []
    for on in (True, False):
        config = VerifyConfig(timeout=600, regions=RegionSearchOptions(**{option: on}))
        res = region_search(Query(net, box, Quantity.A_STAR, config))
        assert res.exact
        values.append(res.lower)
    assert values[0] == pytest.approx(values[1], rel=1e-12, abs=1e-12)


@pytest.mark.parametrize("option", ["node_lp", "slope_bnb"])
def test_the_node_bound_options_must_be_bools(option):
    with pytest.raises(TypeError, match=option):
        RegionSearchOptions(**{option: 1})

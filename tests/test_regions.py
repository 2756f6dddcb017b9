"""Region traversal against brute force over all patterns, forward replay, coverage, degenerate cases."""

import itertools

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from certify.engines.regions import Traversal, enumerate_regions
from certify.errors import UsageError
from certify.ir import activations as acts
from certify.ir.box import Box
from certify.ir.network import Layer, Network
from certify.ir.pieces import pieces
from certify.solvers.base import LinearProgram
from certify.solvers.lp import solve_lp

ACTS = [None, acts.leaky_relu(0.2), "prelu", acts.clip(-0.4, 0.6), acts.relu6()]


def brute_force_patterns(net, box, tol):
    """Every pattern (one LP each, Chebyshev centre) whose region has an inscribed ball of radius > 2 tol."""
    pcs = [pieces(layer.activation, layer.width) for layer in net.layers]
    n = net.n_in
    found = set()
    choices = [range(p.n_pieces) for p in pcs for _ in range(p.slope.shape[0])]
    for flat in itertools.product(*choices):
        rows, rhs = [], []
        h_mat, h_vec = np.eye(n), np.zeros(n)
        pattern, pos = [], 0
        for layer, p in zip(net.layers, pcs):
            w = layer.width
            piece = np.array(flat[pos:pos + w])
            pos += w
            g_mat, g_vec = layer.weight @ h_mat, layer.weight @ h_vec + layer.bias
            lo, hi = p.interval(piece)
            for i in range(w):
                nrm = np.linalg.norm(g_mat[i])
                if nrm == 0:
                    if not lo[i] <= g_vec[i] <= hi[i]:
                        rows.append(np.zeros(n)), rhs.append(-1.0)
                    continue
                if np.isfinite(lo[i]):
                    rows.append(-g_mat[i] / nrm), rhs.append((g_vec[i] - lo[i]) / nrm)
                if np.isfinite(hi[i]):
                    rows.append(g_mat[i] / nrm), rhs.append((hi[i] - g_vec[i]) / nrm)
            idx = np.arange(w)
            h_mat = p.slope[idx, piece][:, None] * g_mat
            h_vec = p.slope[idx, piece] * g_vec + p.offset[idx, piece]
            pattern.append(tuple(piece))
        a = np.array(rows).reshape(-1, n)
        eye = np.eye(n)
        big = np.vstack([np.hstack([a, np.ones((len(a), 1))]), np.hstack([eye, np.ones((n, 1))]),
                         np.hstack([-eye, np.ones((n, 1))])])
        b = np.concatenate([np.array(rhs), box.upper, -box.lower])
        c = np.zeros(n + 1)
        c[-1] = 1
        res = solve_lp(LinearProgram(c, big, b, np.zeros((0, n + 1)), np.zeros(0),
                                     np.concatenate([box.lower, [-np.inf]]), np.concatenate([box.upper, [np.inf]]),
                                     maximize=True))
        assert res.status.is_optimal
        if res.objective > 2 * tol:
            found.add(tuple(pattern))
    return found


@settings(max_examples=12, deadline=None)
@given(seed=st.integers(0, 10_000), n_in=st.integers(2, 3), act=st.sampled_from(range(len(ACTS))),
       widths=st.sampled_from([(3,), (4,), (3, 3), (4, 3), (2, 2, 2)]))
def test_regions_match_brute_force_over_all_patterns(seed, n_in, act, widths, random_net, unit_box):
    if ACTS[act] is not None and not isinstance(ACTS[act], str) and ACTS[act].kind.value == "clip" and sum(widths) > 6:
        widths = widths[:1]  # 3 pieces per neuron: keep the brute force small
    net = random_net(seed, n_in, widths, activation=ACTS[act])
    box = unit_box(n_in)
    enum = enumerate_regions(net, box)
    assert enum.complete
    got = {tuple(tuple(int(v) for v in f) for f in r.pattern) for r in enum.regions}
    assert len(got) == len(enum.regions)  # no region twice
    want = brute_force_patterns(net, box, enum.tol)
    # brute force keeps radius > 2 tol; the traversal keeps radius > tol: the traversal may hold a few more slivers
    assert want <= got
    extra = got - want
    assert all(r.radius <= 2.5 * enum.tol for r in enum.regions
               if tuple(tuple(int(v) for v in f) for f in r.pattern) in extra)


@settings(max_examples=15, deadline=None)
@given(seed=st.integers(0, 10_000), n_in=st.integers(2, 4), act=st.sampled_from(range(len(ACTS))),
       depth=st.integers(1, 3), width=st.integers(3, 6), skip=st.booleans())
def test_affine_maps_replay_and_regions_cover_the_box(seed, n_in, act, depth, width, skip, random_net):
    net = random_net(seed, n_in, (width,) * depth, activation=ACTS[act], skip=skip)
    box = Box(-np.ones(n_in), 0.5 * np.ones(n_in))
    enum = enumerate_regions(net, box)
    assert enum.complete
    x = np.random.default_rng(seed).uniform(box.lower, box.upper, size=(3000, n_in))
    count = np.zeros(len(x), dtype=int)
    for r in enum.regions:
        assert box.contains(r.interior) and r.radius > enum.tol
        assert np.all(r.a_ub @ r.interior <= r.b_ub - r.radius + 1e-12)
        assert np.allclose(net.forward(r.interior), r.m @ r.interior + r.c, atol=1e-10)
        assert np.allclose(net.jacobian(r.interior), r.m, atol=1e-10)
        if net.piecewise_linear_through_origin:
            a_star, b_star = net.pwa(r.interior)
            assert np.allclose(a_star, r.m, atol=1e-10) and np.allclose(b_star, r.c, atol=1e-10)
        inside = r.contains(x, 1e-12)
        count += inside
        if inside.any():
            assert np.allclose(net.forward(x[inside]), x[inside] @ r.m.T + r.c, atol=1e-9)
    # interiors are disjoint and closures cover: a random point lies in exactly one region
    assert np.all(count == 1)


def test_identity_layers_give_one_region_and_the_affine_map(unit_box):
    rng = np.random.default_rng(1)
    w0, w1 = rng.normal(size=(4, 3)), rng.normal(size=(2, 4))
    net = Network((Layer(w0, rng.normal(size=4), acts.identity()),), w1, rng.normal(size=2))
    (r,) = enumerate_regions(net, unit_box(3)).regions
    assert np.allclose(r.m, w1 @ w0) and np.allclose(r.c, w1 @ net.layers[0].bias + net.out_bias)
    assert r.a_ub.shape == (0, 3)


def test_degenerate_neurons_constant_duplicate_and_zero_width_coordinate(random_net, unit_box):
    # neuron 0: z = x0; neuron 1: its duplicate; neuron 2: zero weights and bias (z = 0 on the whole box);
    # layer 1: z = h0 - h1 (identically 0) and z = h0 + h2 - 0.25
    w0 = np.array([[1.0, 0.0, 0.0], [1.0, 0.0, 0.0], [0.0, 0.0, 0.0]])
    l0 = Layer(w0, np.zeros(3), acts.relu())
    l1 = Layer(np.array([[1.0, -1.0, 0.0], [1.0, 0.0, 1.0]]), np.array([0.0, -0.25]), acts.relu())
    net = Network((l0, l1), np.array([[1.0, 2.0], [0.5, -1.0], [0.0, 1.0]]), np.zeros(3))
    enum = enumerate_regions(net, unit_box(3))
    assert enum.complete
    pats = sorted(tuple(int(v) for v in np.concatenate(r.pattern)) for r in enum.regions)
    # x0 < 0 | 0 < x0 < 0.25 | x0 > 0.25
    assert len(pats) == 3
    # zero-width coordinate: the box is the plane x2 = 0.3; regions are full-dimensional relative to it
    box = Box(np.array([-1.0, -1.0, 0.3]), np.array([1.0, 1.0, 0.3]))
    enum2 = enumerate_regions(random_net(3, 3, (5, 4)), box)
    assert enum2.complete and len(enum2.regions) >= 1
    x = np.random.default_rng(0).uniform(box.lower, box.upper, size=(2000, 3))
    count = sum(r.contains(x, 1e-12).astype(int) for r in enum2.regions)
    assert np.all(count == 1)


def test_smooth_net_is_refused(random_net, unit_box):
    with pytest.raises(UsageError):
        enumerate_regions(random_net(0, 2, (3,), activation=acts.tanh()), unit_box(2))


@pytest.mark.parametrize("seed", [0, 1])
def test_interior_points_lie_on_their_pattern_in_wider_nets(seed, random_net):
    """Wider 2-D nets exercise the LP-free proofs (pool points, pushed points) and the warm-started LPs: every
    reported interior point replays to its region's pattern, its ball stays inside, and regions are disjoint."""
    net = random_net(seed, 2, (16, 16))
    box = Box(-np.ones(2), np.ones(2))
    enum = enumerate_regions(net, box)
    assert enum.complete
    tr = Traversal(net, box)
    seen = set()
    for r in enum.regions:
        pattern, margin = tr.pattern_at(r.interior)
        assert all(np.array_equal(p, q) for p, q in zip(pattern, r.pattern))
        assert np.all(r.a_ub @ r.interior <= r.b_ub - r.radius + 1e-12)
        key = tuple(tuple(p) for p in r.pattern)
        assert key not in seen
        seen.add(key)
    x = np.random.default_rng(seed).uniform(-1, 1, size=(4000, 2))
    count = sum(r.contains(x, 1e-12).astype(int) for r in enum.regions)
    assert np.all(count == 1)

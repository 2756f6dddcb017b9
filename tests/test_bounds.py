"""Bounds against dense sampling: interval and CROWN bounds over the box and over polytopes of fixed neurons."""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from certify.bounds.crown import symbolic_bounds
from certify.bounds.interval import LayerBounds, interval_bounds
from certify.ir import activations as acts
from certify.ir.numerics import affine_interval
from certify.ir.pieces import pieces

ACTS = [None, acts.leaky_relu(0.1), "prelu", acts.clip(-0.5, 0.5), acts.relu6(), acts.identity(), acts.tanh()]


def bounds_empty(bounds: list[LayerBounds]) -> bool:
    """True when some layer's bounds prove the polytope empty (an interval with lower > upper or no entries)."""
    return any(b.pre_lower.size == 0 or np.any(b.pre_lower > b.pre_upper) for b in bounds)



@settings(max_examples=25, deadline=None)
@given(seed=st.integers(0, 10_000), n_in=st.integers(2, 4), depth=st.integers(1, 3), width=st.integers(3, 8),
       act=st.sampled_from(range(len(ACTS))))
def test_bounds_contain_samples_and_crown_is_inside_interval(seed, n_in, depth, width, act, random_net, unit_box):
    net = random_net(seed, n_in, (width,) * depth, activation=ACTS[act])
    box = unit_box(n_in)
    x = np.random.default_rng(seed).uniform(-1, 1, size=(4000, n_in))
    x = np.vstack([x, np.array(np.meshgrid(*[[-1, 1]] * n_in)).reshape(n_in, -1).T])
    zs = net.preactivations(x)
    ib, sb = interval_bounds(net, box), symbolic_bounds(net, box)
    for z, i, s in zip(zs, ib, sb):
        assert np.all(z >= s.pre_lower) and np.all(z <= s.pre_upper)
        assert np.all(s.pre_lower >= i.pre_lower) and np.all(s.pre_upper <= i.pre_upper)


@settings(max_examples=25, deadline=None)
@given(seed=st.integers(0, 10_000), n_in=st.integers(2, 3), width=st.integers(3, 6),
       act=st.sampled_from([None, acts.leaky_relu(0.2), acts.clip(-0.3, 0.4)]))
def test_polytope_bounds_contain_the_points_of_the_polytope(seed, n_in, width, act, random_net, unit_box):
    net = random_net(seed, n_in, (width, width, width), activation=act)
    box = unit_box(n_in)
    rng = np.random.default_rng(seed)
    x = rng.uniform(-1, 1, size=(20000, n_in))
    zs = net.preactivations(x)
    pcs = pieces(net.layers[0].activation, width)
    # fix the first-layer pieces of a sampled point, plus two second-layer neurons
    k = int(rng.integers(len(x)))
    fixed0 = pcs.piece_of(zs[0][k])
    fixed1 = np.full(width, -1)
    fixed1[:2] = pcs.piece_of(zs[1][k])[:2]
    inside = np.all(pcs.piece_of(zs[0]) == fixed0, axis=1) & np.all(pcs.piece_of(zs[1])[:, :2] == fixed1[:2], axis=1)
    sb = symbolic_bounds(net, box, fixed=[fixed0, fixed1])
    assert not bounds_empty(sb)
    # (no claim that fixing tightens every bound: the DeepPoly slope choice depends on the bounds)
    for z, s in zip(zs, sb):
        assert np.all(z[inside] >= s.pre_lower) and np.all(z[inside] <= s.pre_upper)


def test_contradictory_fixing_proves_emptiness(unit_box):
    # layer 0: z = x1, fixed off (so h = 0); layer 1: z = h - 0.5 <= -0.5, fixed on: the polytope is empty
    from certify.ir.network import Layer, Network

    l0 = Layer(np.array([[1.0, 0.0]]), np.array([0.0]), acts.relu())
    l1 = Layer(np.array([[1.0]]), np.array([-0.5]), acts.relu())
    net = Network((l0, l1), np.ones((2, 1)), np.zeros(2))
    assert bounds_empty(symbolic_bounds(net, unit_box(2), fixed=[np.array([0]), np.array([1])]))
    assert not bounds_empty(symbolic_bounds(net, unit_box(2), fixed=[np.array([1]), np.array([1])]))


def test_affine_interval_is_outward_rounded():
    w = np.array([[0.1, 0.2, 0.3]])
    lo, hi = affine_interval(w, np.array([0.7]), np.full(3, 0.1), np.full(3, 0.1))
    exact = 0.1 * 0.1 + 0.2 * 0.1 + 0.3 * 0.1 + 0.7
    assert lo[0] < exact < hi[0]


@pytest.mark.parametrize("act", [acts.relu(), acts.leaky_relu(0.3), acts.prelu([0.1, -0.5, 2.0]), acts.clip(-1, 2),
                                 acts.relu6(), acts.identity(), acts.clip(0.5, 0.5)])
def test_pieces_reproduce_the_activation(act):
    z = np.linspace(-8, 8, 1601)
    pcs = pieces(act, 3)
    zz = np.tile(z[:, None], (1, 3))
    p = pcs.piece_of(zz)
    idx = np.arange(3)
    val = pcs.slope[idx, p] * zz + pcs.offset[idx, p]
    assert np.allclose(val, act.np_value(zz), atol=1e-12)
    lo, hi = np.array([-3.0, -0.5, 1.0]), np.array([2.5, 0.4, 7.0])
    vlo, vhi = pcs.value_range(lo, hi)
    rlo, rhi = act.value_range(lo, hi)
    assert np.allclose(vlo, rlo, atol=1e-10) and np.allclose(vhi, rhi, atol=1e-10)


def test_smooth_activations_have_no_pieces():
    assert pieces(acts.tanh(), 3) is None and pieces(acts.hardswish(), 3) is None

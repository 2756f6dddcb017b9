"""Falsification by sampling, and the batched kernels it runs on.

Cross-checks: the chain product against a per-point numpy product and torch autograd; the PWA identity; sampled
values against hand-computed suprema, the float64 values of the design points, dense grids and sound interval
bounds (sampled <= exact <= interval).
"""

import math

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from random_nets import random_net

from certify.bounds.interval import interval_bounds
from certify.config import VerifyConfig
from certify.engines.sampling import SampleResult, falsify, norms_at, pattern_of, sample_points
from certify.errors import UsageError
from certify.ir import activations as acts
from certify.ir import kernels as pwa
from certify.ir.box import Box
from certify.ir.kernels import TorchNet
from certify.ir.network import Layer, Network
from certify.ir.numerics import induced_norm
from certify.ir.quantity import Quantity

MATRIX_QUANTITIES = (Quantity.A_STAR, Quantity.JACOBIAN)

P = [1.0, 2.0, math.inf]
ACTS = {
    "relu": acts.relu(),
    "leaky": acts.leaky_relu(0.1),
    "prelu": acts.prelu([0.2]),
    "tanh": acts.tanh(),
    "sigmoid": acts.sigmoid(),
    "gelu": acts.gelu(),
    "softplus": acts.softplus(),
    "hardtanh": acts.hardtanh(),
    "elu": acts.elu(),
}


# The nets these tests were tuned on: hidden layers N(0, 1) / sqrt(fan_in) times `weight_scale`, hidden biases
# 0.3 N(0, 1); the output weight N(0, 1) / sqrt(fan_in) whatever `weight_scale`, the skip, then an N(0, 1) output bias.
NET = {"bias_scale": 0.3, "out_scale": 1.0, "out_bias_scale": 1.0, "out_order": "wsb"}


def naive_product(net: Network, x: np.ndarray, kind: str) -> np.ndarray:
    """W_L D_{L-1} ... D_0 W_0 + S at one point, by a plain numpy loop (the test's independent reference)."""
    h, m = x, np.eye(net.n_in)
    for layer in net.layers:
        z = layer.weight @ h + layer.bias
        act = layer.activation
        d = act.np_secant(z) if kind == "secant" else act.np_derivative(z)
        m = d[:, None] * (layer.weight @ m)
        h = act.np_value(z)
    m = net.out_weight @ m
    return m if net.skip is None else m + net.skip


def interval_upper_bound(net: Network, box: Box, quantity: Quantity, p: float, columns: int) -> float:
    """Sound bound: |M| <= |W_L| diag(max |slope|) ... |W_0| (+ |S|) entrywise, so ||M||_p <= ||that||_p."""
    u = np.abs(net.layers[0].weight[:, :columns]) if net.layers else None
    for i, (layer, b) in enumerate(zip(net.layers, interval_bounds(net, box))):
        rng = layer.activation.secant_range if quantity is Quantity.A_STAR else layer.activation.derivative_range
        lo, hi = rng(b.pre_lower, b.pre_upper)
        if i > 0:
            u = np.abs(layer.weight) @ u
        u = np.maximum(np.abs(lo), np.abs(hi))[:, None] * u
    u = np.abs(net.out_weight) @ u if net.layers else np.abs(net.out_weight[:, :columns])
    if net.skip is not None:
        u = u + np.abs(net.skip[:, :columns])
    return induced_norm(u, p) * (1 + 1e-12)


CPU = VerifyConfig(device="cpu", samples=4000)


# ---------------------------------------------------------------------------------------- kernels (certify/pwa.py)
@st.composite
def nets(draw):
    seed = draw(st.integers(0, 2**31))
    sizes = draw(st.lists(st.integers(1, 6), min_size=2, max_size=5))
    act = ACTS[draw(st.sampled_from(sorted(ACTS)))]
    rng = np.random.default_rng(seed)
    return random_net(rng, sizes[0], sizes[1:-1], sizes[-1], act, skip=draw(st.booleans()), **NET), rng


@settings(max_examples=60, deadline=None)
@given(nets(), st.booleans())
def test_chain_product_matches_per_point_product_and_autograd(net_rng, fold):
    net, rng = net_rng
    x = rng.normal(size=(7, net.n_in)) * 2
    tn = TorchNet.of(net)
    xt = torch.from_numpy(x)
    old = pwa._FOLD_MAX_ELEMENTS
    try:
        pwa._FOLD_MAX_ELEMENTS = old if fold else 0
        for kind in ("secant", "derivative"):
            slopes = pwa.slopes(tn, xt, kind) if net.layers else []
            want = np.stack([naive_product(net, xi, kind) for xi in x])
            for c in range(1, net.n_in + 1):
                got = pwa.chain_product(tn, slopes, columns=c).expand(len(x), -1, -1).numpy()
                np.testing.assert_allclose(got, want[:, :, :c], rtol=1e-12, atol=1e-12)
    finally:
        pwa._FOLD_MAX_ELEMENTS = old
    a, b = net.pwa(x)
    np.testing.assert_allclose(np.einsum("bij,bj->bi", a, x) + b, net.forward(x), rtol=0, atol=1e-10)
    jac = torch.func.vmap(torch.func.jacrev(lambda v: pwa.forward(tn, v[None])[0]))(xt).numpy()
    np.testing.assert_allclose(net.jacobian(x), jac, rtol=1e-10, atol=1e-10)


@pytest.mark.parametrize("name", sorted(ACTS))
def test_layer_slopes_equal_the_catalogue(name):
    act = ACTS[name]
    z = torch.tensor([-3.0, -1e-300, 0.0, 1e-300, 0.5, 2.0, 40.0], dtype=torch.float64)
    assert torch.equal(pwa.layer_slopes(act, z, "secant"), act.secant(z))
    assert torch.equal(pwa.layer_slopes(act, z, "derivative"), act.derivative(z))
    z32 = z.float()
    assert torch.equal(pwa.layer_slopes(act, z32, "secant"), act.secant(z32))


def test_chain_product_rejects_bad_columns():
    tn = TorchNet.of(random_net(0, 3, (4,), 2, acts.relu(), **NET))
    with pytest.raises(ValueError):
        pwa.chain_product(tn, pwa.slopes(tn, torch.zeros(1, 3, dtype=torch.float64), "secant"), columns=4)


# ---------------------------------------------------------------------------------------- the point design
def test_sample_points_design():
    box = Box(np.array([-1.0, 0.0, 2.0]), np.array([1.0, 0.5, 2.0]))  # one degenerate coordinate
    pts = sample_points(box, 500, seed=3, dtype=torch.float64)
    assert pts.shape == (500, 3) and pts.dtype == torch.float64
    x = pts.numpy()
    assert box.contains(x).all()
    np.testing.assert_array_equal(x[0], box.center)
    corners = {tuple(v) for v in x[1:9]}
    assert corners == {(a, b, 2.0) for a in (-1.0, 1.0) for b in (0.0, 0.5)}
    faces = x[9:15]
    assert all(((f == box.lower) | (f == box.upper)).sum() >= 1 for f in faces)
    # the degenerate axis makes 4 of the 8 vertices repeats and both of its face centres equal to the centre
    assert len({tuple(v) for v in x}) == 500 - 4 - 2
    again = sample_points(box, 500, seed=3, dtype=torch.float64)
    assert torch.equal(pts, again)
    other = sample_points(box, 500, seed=4, dtype=torch.float64)
    assert not torch.equal(pts[20:], other[20:])
    assert torch.equal(sample_points(box, 500, seed=3).double()[:15], pts[:15])  # float32 design, same points


def test_sample_points_many_dimensions_uses_random_vertices():
    d = 14
    box = Box(-np.ones(d), np.ones(d))
    pts = sample_points(box, 5000, seed=0, dtype=torch.float64).numpy()
    assert box.contains(pts).all()
    assert np.all(np.abs(pts[1:4097]) == 1.0)  # vertices
    assert len({tuple(v) for v in pts}) == len(pts) or len({tuple(v) for v in pts[1:4097]}) <= 4096


# ---------------------------------------------------------------------------------------- falsify: known suprema
def test_linear_net_gives_the_weight_norm_exactly():
    rng = np.random.default_rng(5)
    w = rng.normal(size=(3, 4))
    net = Network((), w, np.zeros(3), n_states=3)
    box = Box(-np.ones(4), np.ones(4))
    for p in P:
        r = falsify(net, box, Quantity.A_STAR, p, CPU, state_only=False)
        assert r.value == pytest.approx(induced_norm(w, p), rel=1e-14)
        assert r.matrix.shape == (3, 4)
        r = falsify(net, box, Quantity.JACOBIAN, p, CPU, state_only=True)
        assert r.value == pytest.approx(induced_norm(w[:, :3], p), rel=1e-14)
        assert r.matrix.shape == (3, 3)
        assert box.contains(r.x)


def bump_net(start: float, width: float) -> Network:
    """f(x) = 0.5 x + 1.5 relu(x - a) - 1.5 relu(x - a - w): slope 2 on (a, a + w], 0.5 elsewhere."""
    layer = Layer(np.array([[1.0], [1.0]]), np.array([-start, -start - width]), acts.relu())
    return Network((layer,), np.array([[1.5, -1.5]]), np.array([0.0]), skip=np.array([[0.5]]))


@pytest.mark.parametrize("quantity", MATRIX_QUANTITIES)
def test_one_d_relu_bump_found_by_sampling(quantity):
    net = bump_net(0.3, 0.01)
    box = Box(np.array([0.0]), np.array([1.0]))
    r = falsify(net, box, quantity, 2.0, VerifyConfig(device="cpu", samples=100_000))
    assert abs(r.value - 2.0) <= 1e-9
    assert 0.3 <= r.x[0] <= 0.31
    assert pattern_of(net, r.x) == ((1, 0),)
    assert r.points >= 100_000


def test_one_d_relu_narrow_bump_found_by_region_hopping():
    """A region of width 1e-7 that 64 design points miss; hyperplane hops from any incumbent land in it."""
    net = bump_net(0.6, 1e-7)
    box = Box(np.array([0.0]), np.array([1.0]))
    design = sample_points(box, 64, seed=0, dtype=torch.float64).numpy()[:, 0]
    assert not np.any((design >= 0.6) & (design <= 0.6 + 1e-7))
    r = falsify(net, box, Quantity.A_STAR, 2.0, VerifyConfig(device="cpu", samples=64))
    assert abs(r.value - 2.0) <= 1e-9
    assert 0.6 <= r.x[0] <= 0.6 + 1e-7


def test_ray_walk_visits_every_region_on_the_line_including_slivers():
    """relu(x - a_i) with kinks a = 0.2, 0.2 + 1e-9, 0.7 and a second layer kink at x = 0.45 (on (0.2, 0.7)
    h = 2x - 0.4 - 1e-9 > 0.5 iff x > 0.45 + 5e-10): the walk from 0 to 1 yields one midpoint per segment."""
    from certify.engines.sampling import ray_midpoints

    a = np.array([0.2, 0.2 + 1e-9, 0.7])
    l0 = Layer(np.ones((3, 1)), -a, acts.relu())
    l1 = Layer(np.array([[1.0, 1.0, 0.0]]), np.array([-0.5]), acts.relu())
    net = Network((l0, l1), np.ones((1, 1)), np.zeros(1))
    tn = TorchNet.of(net)
    lo, hi = torch.zeros(1, dtype=torch.float64), torch.ones(1, dtype=torch.float64)
    mids = ray_midpoints(tn, torch.zeros((1, 1), dtype=torch.float64), torch.ones((1, 1), dtype=torch.float64),
                          lo, hi, steps=50).numpy()[:, 0]
    kinks = [0.0, 0.2, 0.2 + 1e-9, 0.45 + 5e-10, 0.7, 1.0]
    want = [(u + v) / 2 for u, v in zip(kinks[:-1], kinks[1:])]
    np.testing.assert_allclose(mids, want, rtol=0, atol=1e-11)
    patterns = [pattern_of(net, np.array([m])) for m in mids]
    assert len(set(patterns)) == len(patterns)


def test_leaky_relu_two_d_by_hand():
    """f(x) = leaky(x1 + x2) e: A* = e [1 1] or 0.1 e [1 1]; ||.||_2 = sqrt(2) |e| when x1 + x2 > 0."""
    e = np.array([[3.0], [4.0]])
    layer = Layer(np.array([[1.0, 1.0]]), np.array([0.0]), acts.leaky_relu(0.1))
    net = Network((layer,), e, np.zeros(2))
    box = Box(np.array([-1.0, -1.0]), np.array([0.2, 0.2]))
    r = falsify(net, box, Quantity.A_STAR, 2.0, CPU)
    assert r.value == pytest.approx(5.0 * math.sqrt(2.0), rel=1e-14)
    assert r.x.sum() > 0
    assert falsify(net, box, Quantity.A_STAR, 1.0, CPU).value == pytest.approx(7.0, rel=1e-14)
    assert falsify(net, box, Quantity.A_STAR, math.inf, CPU).value == pytest.approx(8.0, rel=1e-14)


def test_tanh_one_d_secant_versus_derivative_by_hand():
    """f(x) = tanh(x): A*(x) = tanh(x)/x and J(x) = 1 - tanh(x)^2 both peak at 1 at x = 0; on [0.5, 2] both
    decrease, so the sups are at x = 0.5: tanh(0.5)/0.5 and 1 - tanh(0.5)^2 (different numbers)."""
    net = Network((Layer(np.eye(1), np.zeros(1), acts.tanh()),), np.eye(1), np.zeros(1))
    box = Box(np.array([0.5]), np.array([2.0]))
    a = falsify(net, box, Quantity.A_STAR, 2.0, CPU)
    j = falsify(net, box, Quantity.JACOBIAN, 2.0, CPU)
    assert a.value == pytest.approx(math.tanh(0.5) / 0.5, rel=1e-14)
    assert j.value == pytest.approx(1 - math.tanh(0.5) ** 2, rel=1e-12)
    assert a.x[0] == 0.5 and j.x[0] == 0.5


# ---------------------------------------------------------------------------------------- falsify: cross-checks
@pytest.mark.parametrize("name", ["relu", "tanh", "hardtanh", "softplus"])
@pytest.mark.parametrize("quantity", MATRIX_QUANTITIES)
def test_sampled_value_between_design_points_and_interval_bound(name, quantity):
    rng = np.random.default_rng(11)
    net = random_net(rng, 3, (8, 8), 3, ACTS[name], skip=True, weight_scale=2.0, **NET)
    box = Box(np.array([-1.0, -0.5, 0.0]), np.array([1.0, 0.5, 0.3]))
    cfg = VerifyConfig(device="cpu", samples=3000, seed=2)
    for p in P:
        r = falsify(net, box, quantity, p, cfg)
        assert box.contains(r.x)
        m = (net.pwa(r.x)[0] if quantity is Quantity.A_STAR else net.jacobian(r.x))[:, :3]
        np.testing.assert_array_equal(r.matrix, m)
        assert r.value == induced_norm(m, p)
        design = sample_points(box, 3000, seed=2, dtype=torch.float64)
        ref = norms_at(TorchNet.of(net), design, quantity, p, 3).max().item()
        assert r.value >= ref * (1 - 1e-5)  # float32 ranking may reorder near-ties only
        assert r.value <= interval_upper_bound(net, box, quantity, p, 3)


@pytest.mark.parametrize("name", ["tanh", "sigmoid", "gelu"])
def test_gradient_ascent_reaches_the_dense_grid_maximum(name):
    rng = np.random.default_rng(4)
    net = random_net(rng, 2, (10,), 2, ACTS[name], weight_scale=3.0, **NET)
    box = Box(np.array([-2.0, -1.0]), np.array([1.0, 2.0]))
    g = np.linspace(0, 1, 801)
    grid = np.stack(np.meshgrid(box.lower[0] + 3 * g, box.lower[1] + 3 * g), -1).reshape(-1, 2)
    for quantity in MATRIX_QUANTITIES:
        grid_max = norms_at(TorchNet.of(net), torch.from_numpy(grid), quantity, 2.0, 2).max().item()
        r = falsify(net, box, quantity, 2.0, VerifyConfig(device="cpu", samples=500))
        assert r.value >= grid_max - 1e-6
        assert r.value <= interval_upper_bound(net, box, quantity, 2.0, 2)


def test_seeding_gives_identical_results():
    rng = np.random.default_rng(7)
    for act in (acts.relu(), acts.tanh()):
        net = random_net(rng, 2, (16, 16), 2, act, **NET)
        box = Box(-np.ones(2), np.ones(2))
        cfg = VerifyConfig(device="cpu", samples=5000, seed=9)
        r1, r2 = (falsify(net, box, Quantity.JACOBIAN, 2.0, cfg) for _ in range(2))
        assert r1.value == r2.value and np.array_equal(r1.x, r2.x) and r1.points == r2.points
        np.testing.assert_array_equal(r1.matrix, r2.matrix)


def test_state_only_takes_the_state_columns():
    rng = np.random.default_rng(8)
    net = random_net(rng, 3, (6,), 2, acts.relu(), skip=True, n_states=2, **NET)  # x = (s1, s2, u)
    box = Box(-np.ones(3), np.ones(3), n_states=2)
    state = falsify(net, box, Quantity.A_STAR, 2.0, CPU)
    full = falsify(net, box, Quantity.A_STAR, 2.0, CPU, state_only=False)
    assert state.matrix.shape == (2, 2) and full.matrix.shape == (2, 3)
    np.testing.assert_array_equal(state.matrix, net.pwa(state.x)[0][:, :2])
    assert state.value == induced_norm(state.matrix, 2.0)
    assert full.value >= state.value * (1 - 1e-9)  # adding a column never lowers the 2-norm at the same point


def test_result_record_and_device_choice():
    net = random_net(1, 2, (4,), 2, acts.relu(), **NET)
    box = Box(-np.ones(2), np.ones(2))
    cfg = VerifyConfig(samples=100)  # device "auto"
    r = falsify(net, box, Quantity.A_STAR, 2.0, cfg)
    assert isinstance(r, SampleResult)
    assert r.device == cfg.torch_device()
    assert r.quantity is Quantity.A_STAR and r.norm == 2.0
    assert 100 <= r.points <= 100 + 32 + 4096  # design, re-evaluated incumbents, local search budget
    assert r.seconds >= 0 and r.x.shape == (2,) and not r.x.flags.writeable
    with pytest.raises(AttributeError):
        r.value = 0.0


def test_timeout_still_returns_a_replayed_point():
    net = random_net(2, 4, (32, 32), 4, acts.tanh(), **NET)
    box = Box(-np.ones(4), np.ones(4))
    r = falsify(net, box, Quantity.JACOBIAN, 2.0, VerifyConfig(device="cpu", samples=10**7, timeout=0.05))
    assert r.points < 10**7
    assert box.contains(r.x)
    assert r.value == induced_norm(net.jacobian(r.x), 2.0)


def test_zero_samples_and_bad_arguments():
    net = random_net(3, 2, (4,), 2, acts.relu(), **NET)
    box = Box(-np.ones(2), np.ones(2))
    r = falsify(net, box, Quantity.A_STAR, 2.0, VerifyConfig(device="cpu", samples=0))
    assert r.points >= 1 and box.contains(r.x)
    with pytest.raises(UsageError):
        falsify(net, Box(-np.ones(3), np.ones(3)), Quantity.A_STAR, 2.0, CPU)
    with pytest.raises(UsageError):
        falsify(net, box, Quantity.A_STAR, 3.0, CPU)
    with pytest.raises(UsageError):
        falsify(net, box, "a_star", 2.0, CPU)


def test_pattern_of_by_hand():
    layer0 = Layer(np.array([[1.0, 0.0], [0.0, 1.0], [1.0, 1.0]]), np.zeros(3), acts.relu())
    layer1 = Layer(np.array([[1.0, -1.0, 0.0]]), np.array([0.0]), acts.relu())
    net = Network((layer0, layer1), np.eye(1), np.zeros(1))
    assert pattern_of(net, np.array([1.0, -2.0])) == ((1, 0, 0), (1,))
    assert pattern_of(net, np.array([0.0, 2.0])) == ((0, 1, 1), (0,))


@pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA device")
def test_cuda_path_agrees_with_cpu():
    net = random_net(6, 2, (32, 32), 2, acts.relu(), **NET)
    box = Box(-np.ones(2), np.ones(2))
    cpu = falsify(net, box, Quantity.A_STAR, 2.0, VerifyConfig(device="cpu", samples=20000))
    gpu = falsify(net, box, Quantity.A_STAR, 2.0, VerifyConfig(device="cuda", samples=20000))
    assert gpu.device == "cuda"
    assert gpu.value == pytest.approx(cpu.value, rel=1e-6)


@pytest.mark.parametrize("seed", [0, 1, 4])
def test_sampled_value_matches_the_exact_branch_and_bound_on_two_d_relu_nets(seed):
    """sampled <= exact always; on small 2-D nets the region walk reaches the exact sup (region search of bnb)."""
    import engine_calls as bnb
    rng = np.random.default_rng(seed)
    net = random_net(rng, 2, (12, 12), 2, acts.relu(), weight_scale=2.0, **NET)
    box = Box(-np.ones(2), np.ones(2))
    for p in P:
        exact = bnb.sup_norm(net, box, p, "A_STAR", state_only=False, exact=True, timeout=60)
        r = falsify(net, box, Quantity.A_STAR, p, CPU, state_only=False)
        assert r.value <= exact.upper * (1 + 1e-12)
        if exact.exact:
            assert r.value >= exact.lower * (1 - 1e-9)

"""Activation catalogue: kernels against references, and sound ranges against dense sampling."""

import math

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from certify.ir import activations as acts

ALL = [(name, make()) for name, make in acts.CATALOGUE.items()] + [
    ("leaky_relu_0.2", acts.leaky_relu(0.2)),
    ("leaky_relu_neg", acts.leaky_relu(-0.5)),
    ("elu_0.5", acts.elu(0.5)),
    ("clip_shifted", acts.clip(0.25, 2.0)),
    ("clip_negative", acts.clip(-2.0, -0.5)),
    ("clip_half_open", acts.clip(-1.0, 0.0)),
]

TORCH_REFERENCE = {
    "relu": torch.nn.functional.relu,
    "leaky_relu": lambda z: torch.nn.functional.leaky_relu(z, 0.01),
    "elu": torch.nn.functional.elu,
    "selu": torch.nn.functional.selu,
    "gelu": torch.nn.functional.gelu,
    "gelu_tanh": lambda z: torch.nn.functional.gelu(z, approximate="tanh"),
    "silu": torch.nn.functional.silu,
    "softplus": lambda z: torch.nn.functional.softplus(z, threshold=1e9),
    "tanh": torch.tanh,
    "sigmoid": torch.sigmoid,
    "hardtanh": torch.nn.functional.hardtanh,
    "relu6": torch.nn.functional.relu6,
    "hardswish": torch.nn.functional.hardswish,
    "identity": lambda z: z,
}


@pytest.mark.parametrize("name", sorted(TORCH_REFERENCE))
def test_value_and_derivative_match_torch(name):
    act = acts.CATALOGUE[name]()
    z = torch.linspace(-8, 8, 4001, dtype=torch.float64)
    z = z[z.abs() > 1e-9]  # kinks: conventions may differ exactly at 0
    z = z[(z - 3).abs() > 1e-9]
    z = z[(z + 3).abs() > 1e-9]
    z = z[(z.abs() - 1).abs() > 1e-9]
    z = z[(z - 6).abs() > 1e-9]
    ref = TORCH_REFERENCE[name]
    np.testing.assert_allclose(act.value(z).numpy(), ref(z).numpy(), rtol=1e-12, atol=1e-12)
    zg = z.clone().requires_grad_(True)
    (grad,) = torch.autograd.grad(ref(zg).sum(), zg)
    np.testing.assert_allclose(act.derivative(z).numpy(), grad.numpy(), rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("name,act", ALL, ids=[n for n, _ in ALL])
def test_secant_is_the_secant(name, act):
    z = np.linspace(-7, 7, 2001)
    z = z[np.abs(z) > 1e-3]
    s0 = act.value_at_zero
    expected = (act.np_value(z) - s0) / z
    np.testing.assert_allclose(act.np_secant(z), expected, rtol=1e-9, atol=1e-12)
    # at 0 the secant is sigma'(0) by definition (DESIGN.md, Lemma 1)
    assert act.np_secant(np.zeros(1))[0] == act.np_derivative(np.zeros(1))[0]


def test_secant_has_no_cancellation_near_zero():
    # Near 0 the secant tends to the one-sided derivative at 0 (ELU and SELU have a kink there).
    z = np.array([1e-300, 1e-200, 1e-30, 1e-12, -1e-12, -1e-30, -1e-300])
    for name, act in ALL:
        if act.piecewise_linear:
            continue
        s = act.np_secant(z)
        zero = torch.zeros(1, dtype=torch.float64)
        right = act.derivative(zero, side=1).item()
        left = act.derivative(zero, side=-1).item()
        expected = np.where(z > 0, right, left)
        np.testing.assert_allclose(s, expected, rtol=1e-9, atol=1e-12, err_msg=name)


def test_selu_secant_exceeds_one():
    # SELU's secant slope reaches scale * alpha ~ 1.758 just left of 0: no activation is assumed 1-Lipschitz.
    lo, hi = acts.selu().secant_range(np.array([-1e-3]), np.array([0.0]))
    assert hi[0] >= acts.SELU_SCALE * acts.SELU_ALPHA - 1e-9
    assert hi[0] == pytest.approx(1.7581, abs=1e-4)


def _dense(fn, l, u, n=20001):
    z = np.linspace(l, u, n)
    return fn(z)


@settings(max_examples=40, deadline=None)
@given(
    idx=st.integers(0, len(ALL) - 1),
    a=st.floats(-12, 12, allow_nan=False),
    w=st.floats(0, 10, allow_nan=False),
)
def test_ranges_contain_dense_samples(idx, a, w):
    name, act = ALL[idx]
    l, u = np.array([a]), np.array([a + w])
    for rng_fn, fn in (
        (act.value_range, act.np_value),
        (act.secant_range, act.np_secant),
        (act.derivative_range, act.np_derivative),
    ):
        lo, hi = rng_fn(l, u)
        vals = _dense(fn, a, a + w)
        assert lo[0] <= vals.min() and vals.max() <= hi[0], (name, rng_fn.__name__, lo, hi, vals.min(), vals.max())


@pytest.mark.parametrize("name,act", ALL, ids=[n for n, _ in ALL])
def test_ranges_are_tight_on_wide_intervals(name, act):
    # Tightness: the computed range is attained up to the sampling resolution and the outward rounding.
    l, u = np.array([-5.0, -1.0, 0.5]), np.array([5.0, 0.0, 4.0])
    for rng_fn, fn in (
        (act.value_range, act.np_value),
        (act.secant_range, act.np_secant),
        (act.derivative_range, act.np_derivative),
    ):
        lo, hi = rng_fn(l, u)
        for i in range(3):
            vals = fn(np.linspace(l[i], u[i], 200001))
            assert vals.min() - lo[i] < 1e-4 and hi[i] - vals.max() < 1e-4, (name, rng_fn.__name__, i)


def test_relu_ranges_at_kink_endpoints():
    r = acts.relu()
    lo, hi = r.secant_range(np.array([0.0, -1.0, 0.0]), np.array([1.0, 0.0, 0.0]))
    # [0, 1] contains z = 0 (slope relu'(0) = 0) and z > 0 (slope 1); [-1, 0] only slope 0; [0, 0] only relu'(0).
    assert lo.tolist() == [0.0, 0.0, 0.0] and hi.tolist() == [1.0, 0.0, 0.0]


def test_prelu_per_neuron_slopes():
    act = acts.prelu([0.1, -0.3, 2.0])
    lo, hi = act.secant_range(np.array([-1.0, -1.0, -1.0]), np.array([1.0, -0.5, 1.0]))
    assert lo.tolist() == [0.1, -0.3, 1.0] and hi.tolist() == [1.0, -0.3, 2.0]


def test_bad_interval_is_refused():
    with pytest.raises(ValueError):
        acts.tanh().secant_range(np.array([1.0]), np.array([0.0]))
    with pytest.raises(ValueError):
        acts.tanh().secant_range(np.array([-math.inf]), np.array([0.0]))


@pytest.mark.parametrize("name,act", ALL, ids=[n for n, _ in ALL])
@pytest.mark.parametrize("tiny", [5e-324, 1e-323, 1e-310])
def test_secant_ranges_next_to_zero_contain_the_slope_at_zero(name, act, tiny):
    # sigmoid's tanh(z / 2) / (2 z) and softplus's expm1(z) / 2 lose a subnormal z: the secant at 5e-324 came out
    # 0, not 1/4 and 1/2, and secant_range([5e-324, 1]) for sigmoid ended at 0.2311 < 1/4 (found by hypothesis)
    for lo, hi, near in ((tiny, 1.0, 1e-9), (-1.0, -tiny, -1e-9)):
        r_lo, r_hi = act.secant_range(np.array([lo]), np.array([hi]))
        s = float(act.np_secant(np.array([near]))[0])  # the one-sided limit at 0, to about 1e-9
        assert r_lo[0] - 1e-8 <= s <= r_hi[0] + 1e-8, (name, lo, hi, r_lo, r_hi, s)
        assert abs(float(act.np_secant(np.array([tiny if lo > 0 else -tiny]))[0]) - s) <= 1e-8 * max(1.0, abs(s))

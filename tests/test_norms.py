"""Induced norms: exact float64 reference vs numpy's definitions, batched torch kernels vs the reference."""

import math

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from certify.errors import UsageError
from certify.ir.kernels import batched_induced_norm
from certify.ir.numerics import induced_norm

P = [1.0, 2.0, math.inf]
SPECIAL_SHAPES = [(1, 1), (1, 5), (5, 1), (2, 2), (3, 5), (5, 3), (2, 6), (6, 2), (4, 4), (3, 3), (2, 3)]


def numpy_norm(m: np.ndarray, p: float) -> float:
    """numpy's own definitions (SVD for p = 2)."""
    return float(np.linalg.norm(m, {1.0: 1, 2.0: 2, math.inf: np.inf}[p]))


shapes = st.one_of(st.sampled_from(SPECIAL_SHAPES), st.tuples(st.integers(1, 7), st.integers(1, 7)))
# tiny entries are flushed to 0: numpy's own vector norms underflow on squares below 1e-300
entries = st.floats(-1e3, 1e3, allow_nan=False, allow_infinity=False).map(lambda v: 0.0 if abs(v) < 1e-100 else v)


@st.composite
def batches(draw):
    k, n = draw(shapes)
    b = draw(st.integers(1, 4))
    return draw(hnp.arrays(np.float64, (b, k, n), elements=entries))


@settings(max_examples=150, deadline=None)
@given(batches(), st.sampled_from(P))
def test_batched_float64_matches_numpy(m, p):
    got = batched_induced_norm(torch.from_numpy(m), p).numpy()
    want = np.array([numpy_norm(a, p) for a in m])
    scale = np.abs(m).max() + 1e-300
    np.testing.assert_allclose(got, want, rtol=1e-10, atol=1e-12 * scale)
    np.testing.assert_allclose(induced_norm(m, p), want, rtol=1e-12, atol=1e-300)


@settings(max_examples=100, deadline=None)
@given(batches(), st.sampled_from(P))
def test_batched_float32_close_to_numpy(m, p):
    got = batched_induced_norm(torch.from_numpy(m).float(), p).double().numpy()
    want = np.array([numpy_norm(a, p) for a in m])
    scale = np.abs(m).max() * max(m.shape[1:]) + 1e-30
    np.testing.assert_allclose(got, want, rtol=2e-5, atol=1e-5 * scale)


@settings(max_examples=60, deadline=None)
@given(hnp.arrays(np.float64, st.sampled_from(SPECIAL_SHAPES), elements=entries), st.sampled_from(P))
def test_induced_norm_is_the_sup_of_the_ratio(m, p):
    """||m x||_p / ||x||_p <= induced_norm for random x, with equality at the maximiser (e_j, or the top
    right singular vector)."""
    value = induced_norm(m, p)
    assert isinstance(value, float)
    rng = np.random.default_rng(0)
    xs = rng.normal(size=(200, m.shape[1]))
    ratios = np.linalg.norm(xs @ m.T, ord=p, axis=1) / np.linalg.norm(xs, ord=p, axis=1)
    assert ratios.max() <= value * (1 + 1e-12) + 1e-300
    if p == 1.0:
        best = np.eye(m.shape[1])[np.argmax(np.abs(m).sum(0))]
    elif p == math.inf:
        row = m[np.argmax(np.abs(m).sum(1))]
        best = np.where(row >= 0, 1.0, -1.0)
    else:
        best = np.linalg.svd(m)[2][0]
    attained = np.linalg.norm(m @ best, ord=p) / np.linalg.norm(best, ord=p)
    assert attained == pytest.approx(value, rel=1e-10, abs=1e-300)


@pytest.mark.parametrize("shape", [(2, 2), (3, 5), (2, 7), (7, 2), (4, 4)])
def test_spectral_norm_does_not_overflow_in_float32(shape):
    rng = np.random.default_rng(1)
    m = rng.normal(size=(3, *shape)) * 1e30
    got = batched_induced_norm(torch.from_numpy(m).float(), 2.0).double().numpy()
    want = np.array([numpy_norm(a, 2.0) for a in m])
    assert np.all(np.isfinite(got))
    np.testing.assert_allclose(got, want, rtol=1e-5)


def test_zero_and_rank_one_matrices():
    zero = torch.zeros(2, 3, 4)
    for p in P:
        assert torch.equal(batched_induced_norm(zero, p), torch.zeros(2))
    u, v = np.array([1.0, -2.0, 2.0]), np.array([3.0, 4.0])
    m = np.outer(u, v)  # rank one: ||m||_2 = |u| |v| = 3 * 5
    assert batched_induced_norm(torch.from_numpy(m)[None], 2.0).item() == pytest.approx(15.0, rel=1e-14)
    assert induced_norm(m, 2.0) == pytest.approx(15.0, rel=1e-14)
    assert induced_norm(m, 1.0) == pytest.approx(4.0 * 5.0)  # column sums: 3*5, 4*5
    assert induced_norm(m, math.inf) == pytest.approx(2.0 * 7.0)  # row sums: 7, 14, 14


def test_closed_form_2x2_by_hand():
    # [[3, 0], [4, 5]]: singular values sqrt(45), sqrt(5)
    m = torch.tensor([[[3.0, 0.0], [4.0, 5.0]]], dtype=torch.float64)
    assert batched_induced_norm(m, 2.0).item() == pytest.approx(math.sqrt(45.0), rel=1e-15)
    assert batched_induced_norm(m, 1.0).item() == 7.0
    assert batched_induced_norm(m, math.inf).item() == 9.0


@pytest.mark.parametrize("shape", [(2, 2), (3, 5), (2, 5), (5, 1), (4, 4)])
@pytest.mark.parametrize("p", P)
def test_gradient_matches_finite_differences(shape, p):
    rng = np.random.default_rng(2)
    m = torch.from_numpy(rng.normal(size=(2, *shape))).requires_grad_(True)
    assert torch.autograd.gradcheck(lambda a: batched_induced_norm(a, p), (m,), eps=1e-7, atol=1e-5)


def test_leading_batch_axes_and_device_dtype_are_kept():
    m = torch.randn(3, 2, 4, 5, dtype=torch.float64)
    out = batched_induced_norm(m, 2.0)
    assert out.shape == (3, 2) and out.dtype == torch.float64 and out.device == m.device
    np.testing.assert_allclose(out.numpy(), np.linalg.norm(m.numpy(), 2, axis=(-2, -1)), rtol=1e-12)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA device")
@pytest.mark.parametrize("p", P)
def test_cuda_matches_cpu(p):
    m = torch.randn(64, 3, 5, dtype=torch.float64)
    np.testing.assert_allclose(
        batched_induced_norm(m.cuda(), p).cpu().numpy(), batched_induced_norm(m, p).numpy(), rtol=1e-12
    )


def test_bad_arguments_raise_usage_errors():
    with pytest.raises(UsageError):
        induced_norm(np.eye(2), 3.0)
    with pytest.raises(UsageError):
        batched_induced_norm(torch.eye(2)[None], 0.5)
    with pytest.raises(UsageError):
        induced_norm(np.ones(3), 2.0)
    assert isinstance(UsageError("x"), ValueError)


@settings(max_examples=60, deadline=None)
@given(seed=st.integers(0, 10_000), k=st.integers(1, 10), n=st.integers(1, 70), batch=st.integers(8, 40),
       exponent=st.integers(-300, 300), spread=st.booleans())
def test_batched_spectral_upper_bounds_cover_the_svd_at_every_scale(seed, k, n, batch, exponent, spread):
    # norm_upper takes lambda_max of a Gram matrix for batches of small matrices: each matrix is scaled by a power
    # of two first, else the squares of 1e-200 entries underflow to 0 (a bound of TINY for a norm of 1e-200) and
    # those of 1e200 overflow
    from certify.ir.numerics import norm_upper

    rng = np.random.default_rng(seed)
    m = rng.normal(size=(batch, k, n)) * 10.0 ** exponent
    if spread:
        m[:, :, 0] *= 1e-150
        m[0] = 0.0
    exact = induced_norm(m, 2.0)
    upper = norm_upper(m, 2.0)
    assert np.all(upper >= exact * (1 - 1e-14)) and np.all(np.isfinite(upper))
    assert np.all(upper <= exact * (1 + 1e-9) + 2e-300)
    assert norm_upper(m.transpose(0, 2, 1), 2.0) == pytest.approx(upper, rel=1e-9)

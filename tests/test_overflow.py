"""Float64 overflow (issue 8 follow-ups): a model whose matrices or bounds do not fit in float64 is `unknown` with
the reason, never certified, never falsified by a NaN or infinite witness, never a traceback; the numerics it rests
on (induced_norm, overflowed, outward, chain_fits, activation_range, state_matrices, the agreement check).

The nets have weights of about 1e200, so that products of two layers overflow (1e400 > 1.8e308)."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest

import certify
from certify.bounds.corollary4 import product_bound
from certify.bounds.interval import interval_bounds
from certify.bounds.slopes import activation_range, preactivation_bounds, slope_ranges
from certify.cli import EXIT_BAD_INPUT, EXIT_FALSIFIED, EXIT_UNKNOWN, run
from certify.config import VerifyConfig
from certify.engines.contract import Query
from certify.engines.metric_search import metric_search, state_matrices
from certify.engines.sampling import falsify
from certify.errors import ModelMismatchError
from certify.importers.agreement import compare
from certify.ir import activations as acts
from certify.ir.network import Layer, Network
from certify.ir.numerics import (
    OVERFLOW_REASON,
    affine_interval,
    chain_fits,
    induced_norm,
    outward,
    overflowed,
)
from certify.ir.quantity import Quantity

HUGE = 1e200
FAST = VerifyConfig(samples=300, timeout=1.0)
pytestmark = pytest.mark.filterwarnings("ignore::RuntimeWarning")  # the API leaves numpy's warnings on
CHECKS = ("dissipativity", "contraction", "gain", "weight_norm", "invariance", "equilibria", "stability")


def strict_json(text: str):
    """json.loads that refuses NaN and Infinity tokens (RFC 8259)."""

    def refuse(token):
        raise ValueError(f"non-standard JSON token {token}")

    return json.loads(text, parse_constant=refuse)


@pytest.fixture(scope="module")
def huge_relu(random_net):
    """2 -> 4 -> 4 -> 2 ReLU net with weights ~1e200 and zero biases: every A* and J away from 0 overflows."""
    return random_net(0, 2, (4, 4), weight_scale=HUGE, bias_scale=0.0)


def half_huge() -> Network:
    """x+ = (1e200 relu(1e200 relu(x_1) - 1), relu(relu(x_2) + 0.5)): A* = J overflows where x_1 > 1e-200 and is
    finite (diag(0, 0 or 1)) where x_1 < 0 (its first two weights multiply to a finite 1e200, so no inf * 0
    arises; the biases keep the points with x_1 < 0 off the breakpoints, so they are generic)."""
    big = np.diag([HUGE, 1.0])
    layers = (Layer(np.eye(2), np.zeros(2), acts.relu()), Layer(big, np.array([-1.0, 0.5]), acts.relu()))
    return Network(layers, big, np.zeros(2))


def huge_tanh():
    """2 -> 4 -> 2 tanh net with weights ~1e200: its outputs are finite (|f| <= 4e200) but J and A* at the origin
    overflow, so it imports (onnxruntime agrees) and the analyses meet the overflow."""
    from random_nets import random_net

    return random_net(1, 2, (4,), activation=acts.tanh(), weight_scale=HUGE, bias_scale=0.0)


def assert_sound(result) -> None:
    """Never certified; a falsification only with a finite witness; unknown with a reason."""
    assert result.verdict is not certify.Verdict.CERTIFIED, (result.check, result.reason)
    if result.verdict is certify.Verdict.FALSIFIED:
        w = result.witness
        assert w is not None and all(math.isfinite(v) for v in w.x) and math.isfinite(w.value), result
        assert math.isfinite(result.lower), result
    else:
        assert result.reason, result


# ============================================================================================ the API
@pytest.mark.parametrize("check", CHECKS)
def test_an_overflowing_net_is_never_certified(huge_relu, unit_box, check):
    report = certify.verify(huge_relu, unit_box(2), [check], FAST)
    r = report.results[0]
    assert_sound(r)
    if r.verdict is certify.Verdict.UNKNOWN and check != "stability":
        assert OVERFLOW_REASON in r.reason, r.reason
    strict_json(report.to_json())


@pytest.mark.parametrize("method,exact", [("auto", False), ("auto", True), ("exact", False), ("bnb", False),
                                          ("sdp", False), ("interval", False), ("sample", False)])
def test_every_method_answers_unknown_with_the_reason(huge_relu, unit_box, method, exact):
    config = FAST.with_(method=method, exact=exact)
    for r in certify.verify(huge_relu, unit_box(2), ["dissipativity", "contraction"], config).results:
        assert r.verdict is certify.Verdict.UNKNOWN and OVERFLOW_REASON in r.reason, (method, exact, r.reason)
        assert r.upper == math.inf


def test_a_net_that_overflows_on_half_the_box_is_never_certified(unit_box):
    for check in ("dissipativity", "contraction", "gain"):
        assert_sound(certify.verify(half_huge(), unit_box(2), [check], FAST).results[0])


def test_the_metric_search_meets_the_overflow_without_a_crash(huge_relu, unit_box):
    r = certify.verify(huge_relu, unit_box(2), ["contraction"], FAST.with_(metric="auto")).results[0]
    assert_sound(r)


# ============================================================================================ the command
@pytest.fixture(scope="module")
def files(tmp_path_factory):
    from onnx_builders import network_to_onnx, save
    from random_nets import random_net

    folder = tmp_path_factory.mktemp("overflow")
    (folder / "box.yaml").write_text("lower: [-1, -1]\nupper: [1, 1]\n")
    return {
        "tanh": save(network_to_onnx(huge_tanh()), folder, "tanh.onnx"),
        "relu": save(network_to_onnx(random_net(0, 2, (4, 4), weight_scale=HUGE, bias_scale=0.0)), folder,
                     "relu.onnx"),
        "box": folder / "box.yaml",
        "folder": folder,
    }


def test_cli_gives_unknown_with_the_reason_and_strict_json(files, capsys):
    out = files["folder"] / "tanh.json"
    code = run([str(files["tanh"]), "--region", str(files["box"]), "--check", ",".join(CHECKS), "--samples", "300",
                "--timeout", "20", "--json", str(out), "--quiet"])
    assert code in (EXIT_UNKNOWN, EXIT_FALSIFIED), capsys.readouterr().err
    doc = strict_json(out.read_text())
    for name in ("dissipativity", "contraction", "gain", "equilibria"):
        entry = doc["checks"][name]
        assert entry["verdict"] == "unknown" and OVERFLOW_REASON in entry["reason"], (name, entry)
        assert entry["upper"] == "inf"
    for name, entry in doc["checks"].items():
        assert entry["verdict"] != "certified", (name, entry)
        if entry["verdict"] == "falsified":  # a replayed point with finite coordinates and value
            assert all(math.isfinite(v) for v in entry["witness"]["x"]), entry
            assert isinstance(entry["lower"], float) and math.isfinite(entry["lower"]), entry


def test_cli_refuses_a_model_whose_outputs_overflow_in_one_line(files, capsys):
    code = run([str(files["relu"]), "--region", str(files["box"]), "--quiet"])
    err = capsys.readouterr().err
    assert code == EXIT_BAD_INPUT, err
    assert "relu.onnx" in err and "overflow" in err and len(err.strip().splitlines()) == 1


# ============================================================================================ the numerics
def test_induced_norm_of_a_non_finite_matrix_is_nan_and_of_a_finite_one_exact():
    rng = np.random.default_rng(0)
    m = rng.normal(size=(3, 4))
    for p in (1.0, 2.0, math.inf):
        assert induced_norm(m, p) == pytest.approx(np.linalg.norm(m, {1.0: 1, 2.0: 2, math.inf: np.inf}[p]),
                                                   rel=1e-12)
        for bad in (math.inf, -math.inf, math.nan):
            b = m.copy()
            b[1, 2] = bad
            assert math.isnan(induced_norm(b, p)) and overflowed(induced_norm(b, p))
            batch = induced_norm(np.stack([m, b, m]), p)
            assert np.isnan(batch[1]) and np.allclose(batch[[0, 2]], induced_norm(m, p))


def test_induced_norm_of_a_finite_matrix_beyond_the_range_is_inf_not_nan():
    m = np.array([[1e308], [1e308]])  # column sum 2e308 and ||m||_2 = 1.41e308 (finite)
    assert induced_norm(m, 1.0) == math.inf and not overflowed(induced_norm(m, 1.0))
    assert induced_norm(m, 2.0) == pytest.approx(math.sqrt(2) * 1e308, rel=1e-12)


def test_overflowed_tells_nan_only():
    assert overflowed(math.nan) and overflowed(np.array([1.0, np.nan]))
    assert not overflowed(math.inf) and not overflowed(np.array([-np.inf, 2.0])) and not overflowed(3.0)


def test_outward_makes_non_finite_ends_unbounded_and_leaves_finite_ones():
    lo, hi = np.array([0.0, np.nan, np.inf, -1.0]), np.array([1.0, np.nan, np.inf, -np.inf])
    ol, oh = outward(lo, hi)
    assert ol.tolist() == [0.0, -math.inf, -math.inf, -1.0] and oh.tolist() == [1.0, math.inf, math.inf, math.inf]
    a, b = np.array([[0.0, 1.0]]), np.array([[2.0, 3.0]])
    ra, rb = outward(a, b)
    assert ra is a and rb is b  # the common case costs nothing


def test_interval_functions_never_return_nan():
    w = np.array([[1e308, 1e308], [1e308, -1e308]])  # over [0, 2]^2 the centre's image and the radius overflow
    lo, hi = affine_interval(w, np.zeros(2), np.zeros(2), 2 * np.ones(2))  # inf - inf is NaN without outward
    assert not np.isnan(lo).any() and not np.isnan(hi).any()
    assert np.all(lo == -math.inf) and np.all(hi == math.inf)


def test_chain_fits():
    assert chain_fits([0.5, 3.0, 1e10, 1e-300])
    assert not chain_fits([1e200, 1e200]) and not chain_fits([math.inf, 0.0]) and not chain_fits([math.nan])
    assert chain_fits([])


def test_activation_range_gives_unbounded_ranges_where_an_end_is_not_finite():
    act = acts.tanh()
    lower, upper = np.array([-1.0, -np.inf, np.nan, 0.0]), np.array([1.0, 2.0, 1.0, np.inf])
    lo, hi = activation_range(act.value_range, lower, upper)
    want_lo, want_hi = act.value_range(np.array([-1.0]), np.array([1.0]))
    assert lo[0] == want_lo[0] and hi[0] == want_hi[0]
    assert np.all(lo[1:] == -math.inf) and np.all(hi[1:] == math.inf)
    fine = (np.array([-2.0, 0.5]), np.array([1.0, 3.0]))
    assert all(np.array_equal(a, b) for a, b in zip(activation_range(act.secant_range, *fine), act.secant_range(*fine)))
    with pytest.raises(ValueError):  # the activation itself still refuses what it cannot bound
        act.value_range(lower, upper)


def test_bounds_of_an_overflowing_net_are_unbounded_not_nan(huge_relu, unit_box):
    box = unit_box(2)
    for lb in interval_bounds(huge_relu, box):
        for a in (lb.pre_lower, lb.pre_upper, lb.post_lower, lb.post_upper):
            assert not np.isnan(a).any()
    lo, hi = box.lower[None], box.upper[None]
    for zl, zu in preactivation_bounds(huge_relu, lo, hi):
        assert not np.isnan(zl).any() and not np.isnan(zu).any()
    for quantity in ("A_STAR", "JACOBIAN"):
        for sl, sh in slope_ranges(huge_relu, lo, hi, quantity):
            assert not np.isnan(sl).any() and not np.isnan(sh).any()
        assert product_bound(huge_relu, box, 2.0, quantity).value == math.inf


def test_state_matrices_drops_overflowed_matrices(unit_box):
    net, box = half_huge(), unit_box(2)
    pts = np.random.default_rng(0).uniform(-1, 1, size=(400, 2))
    for quantity in (Quantity.A_STAR, Quantity.JACOBIAN):
        assert not np.isfinite(net.pwa(pts)[0]).all()  # the premise: some matrices overflow
        kept, mats = state_matrices(Query(net, box, quantity, FAST), pts)
        assert kept.shape[0] == mats.shape[0] > 0 and np.isfinite(mats).all()
        assert np.all(kept[:, 0] < 0)  # the finite ones are those of x_1 < 0
    res = metric_search(Query(net, box, Quantity.JACOBIAN, FAST), samples=256)
    assert res is not None


def test_sampling_flags_the_overflow_and_keeps_a_finite_witness(unit_box):
    res = falsify(half_huge(), unit_box(2), Quantity.A_STAR, 2.0, FAST)
    assert res.overflow
    if res.generic:  # a witness only where the matrix is finite
        assert math.isfinite(res.value) and np.isfinite(res.matrix).all() and res.x[0] < 0
    else:
        assert res.value == -math.inf


def test_agreement_names_the_overflow_of_the_imported_network(huge_relu):
    pts = np.random.default_rng(2).uniform(-1, 1, size=(20, 2))
    with pytest.raises(ModelMismatchError, match="overflow float64"):
        compare(huge_relu, lambda x: np.zeros((x.shape[0], 2)), pts, 1e-6, 1e-8, "m.onnx", "onnxruntime")


def test_a_chain_whose_products_underflow_is_not_bounded_by_zero():
    """(1e-90)^4 (1e90)^4: the slope is about 1, but its float64 partial products underflow to 0. The Corollary 4
    product was 0 (reported as the upper end of an unknown bracket), and the exact search said 'exact 0'."""
    from fractions import Fraction

    from engine_calls import sup_norm

    from certify.api import verify
    from certify.certificate import Verdict
    from certify.ir.box import Box

    ws = [1e-90] * 4 + [1e90] * 3
    net = Network(tuple(Layer(np.array([[w]]), np.zeros(1), acts.relu()) for w in ws), np.array([[1e90]]),
                  np.zeros(1))
    box = Box(np.array([0.5]), np.array([1.0]))
    truth = Fraction(1)
    for w in ws + [1e90]:
        truth *= Fraction(w)  # the slope on the whole box (every neuron on)
    assert 0.9 < truth < 1.1 and net.jacobian(np.array([0.75]))[0, 0] == 0.0  # the premise
    assert product_bound(net, box, 2.0, Quantity.JACOBIAN).value >= truth
    assert sup_norm(net, box, quantity="JACOBIAN", exact=True).upper >= truth
    res = verify(net, box, ["contraction"], VerifyConfig(timeout=20, samples=200)).results[0]
    assert res.verdict is not Verdict.CERTIFIED and res.upper >= truth, res

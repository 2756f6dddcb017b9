"""A proof file is untrusted input: the checker answers valid / invalid / bad input with one clear line, never a
traceback, and never reports a check valid on a claim that does not prove it.

The proofs here come from certify's producer on a tiny ReLU net (2-4-3-2, every check the checker re-proves is
proven in about a second); each test edits the proof the way a hand-editor or a broken writer could. The
hypothesis tests mutate it at random and cross-check every claim the checker still calls valid against brute force
on the net (sampled norms, sampled invariance violations, the original equilibria), so that a validated claim is
one the net really satisfies and one the check's name stands for.
"""

from __future__ import annotations

import copy
import gzip
import json
import math
import random
import re
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from random_nets import random_net

from certify.api import verify
from certify.certificate import BoundMethod, CheckName, CheckResult, Verdict
from certify.config import VerifyConfig
from certify.ir.box import Box
from certify.ir.numerics import induced_norm
from certify.proof import checker, producer
from certify.proof.producer import build_proof, proof_bytes
from certify.proof.rounding import sigma_lower, spectral_upper
from certify.report.report import Report

PROVED = ("dissipativity", "contraction", "gain", "weight_norm", "invariance", "equilibria", "stability")


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    """(net, model path, region path, proof) of a 2-4-3-2 ReLU net whose seven re-provable checks are all proven."""
    from onnx_builders import network_to_onnx, save

    tmp = tmp_path_factory.mktemp("tiny")
    net = random_net(0, 2, (4, 3), out_scale=0.5)
    model = save(network_to_onnx(net), tmp, "tiny.onnx")
    region = tmp / "box.yaml"
    region.write_text("states:\n  x0: [-1.0, 1.0]\n  x1: [-1.0, 1.0]\n")
    report = verify(model, region, ",".join(PROVED), VerifyConfig(samples=300, timeout=30))
    proof = build_proof(report)
    assert [c["status"] for c in proof["checks"]] == ["proven"] * len(PROVED), proof["checks"]
    return report.network, model, region, proof


def run(proof, model=None, region=None, reimport=False):
    lines: list[str] = []
    code = checker.check_proof(proof, model, region, out=lines.append, reimport=reimport)
    return code, lines


def entry(proof, name):
    return next(c for c in proof["checks"] if c["check"] == name)


def first(entries, kind):
    return next(k for k, e in enumerate(entries) if e[0] == kind)


def assert_invalid(proof, *words, model=None, region=None, reimport=False):
    """The checker refuses ``proof`` with one 'invalid:' line holding every one of ``words``."""
    code, lines = run(proof, model, region, reimport)
    assert code == checker.EXIT_INVALID, lines
    last = lines[-1]
    assert last.startswith("invalid: ") and "\n" not in last and len(last) < 600, lines
    assert checker.UNEXPECTED not in last, lines  # refused for a reason, not by the last guard
    for word in words:
        assert word in last, (word, lines)
    return last


def test_the_tiny_proof_is_valid(tiny):
    net, model, region, proof = tiny
    code, lines = run(proof, model, region, reimport=True)
    assert code == checker.EXIT_VALID, lines


# ============================================================================================ huge numbers
def test_huge_integers_as_farkas_multipliers_are_invalid_not_overflow(tiny):
    """A Farkas pair [row, y] with y a 4000-digit integer (float() overflows), a row beyond int64, a negative row
    or y = inf (JSON 1e400) names the entry instead of raising OverflowError."""
    proof = tiny[3]
    for row, value in ((0, 10 ** 4000), (10 ** 30, 0.5), (-1, 0.5), (0, math.inf), (0, -(10 ** 4000))):
        bad = copy.deepcopy(proof)
        entries = entry(bad, "gain")["evidence"]["entries"]
        k = first(entries, "f")
        entries[k][1][0] = [row, value]
        assert_invalid(bad, "check gain", f"entry {k}", "Farkas")


def test_huge_numbers_in_a_proof_file_are_one_line_answers(tiny, tmp_path, capsys):
    """Through the command: a 4000-digit integer (below Python's 4300-digit limit for int()) and 1e400 in a Farkas
    pair give exit 1 naming the entry; 5000 digits are refused by the JSON reader with exit 3."""
    net, model, region, proof = tiny
    text = proof_bytes(proof, "p.json").decode()
    pair = re.search(r'\["f",\[\[(\d+),([^\]]+)\]', text)
    assert pair
    for number, code in (("7" * 4000, checker.EXIT_INVALID), ("1e400", checker.EXIT_INVALID),
                         ("-1e400", checker.EXIT_INVALID), ("7" * 5000, checker.EXIT_BAD_INPUT)):
        path = tmp_path / "p.json"
        path.write_text(text[:pair.start(2)] + number + text[pair.end(2):])
        capsys.readouterr()
        assert checker.main(["check", str(path), str(model), str(region)]) == code, number[:10]
        got = capsys.readouterr()
        out = (got.out + got.err).strip().splitlines()
        assert out[-1].startswith("invalid: check gain: entry" if code == 1 else "certify-proof: error:"), out
        assert "Traceback" not in got.err and len(out[-1]) < 400, out


def test_huge_entries_in_a_metric_are_invalid_not_overflow(tiny):
    """T = 1e300 I makes T Q - I about 1e300: its exact Frobenius norm squared (a Fraction near 1e600) overflowed
    float(); an integer entry beyond float64 overflowed too; rows given as strings were read character by
    character."""
    proof = tiny[3]
    eye = [["1.0", "0.0"], ["0.0", "1.0"]]
    for t in ([["1e300", "0.0"], ["0.0", "1e300"]], [[10 ** 4000, "0.0"], ["0.0", "1.0"]], ["10", "01"]):
        bad = copy.deepcopy(proof)
        entry(bad, "dissipativity")["claim"]["metric"] = {"P": eye, "T": t, "Q": eye}
        assert_invalid(bad, "metric")
    bad = copy.deepcopy(proof)
    entry(bad, "dissipativity")["claim"]["metric"] = {"P": ["10", "01"], "T": ["10", "01"], "Q": ["10", "01"]}
    assert_invalid(bad, "metric P")  # read as [[1, 0], [0, 1]] before: a metric nobody wrote


def test_a_witness_that_is_not_a_list_of_decimal_strings_is_invalid(tiny):
    proof = tiny[3]
    for witness in ([10 ** 4000, "0.0"], "00", {"0": "0.1"}, [0.1, 0.2], [["0.1"], ["0.2"]]):
        bad = copy.deepcopy(proof)
        entry(bad, "gain")["claim"]["lower"]["witness"] = witness
        assert_invalid(bad, "check gain", "witness")


def test_lower_and_upper_norm_bounds_of_overflowing_matrices():
    """The rounding helpers on matrices near float64's largest value: the upper bound is inf (not an
    OverflowError from converting an infinite singular value to an integer), the lower bound is finite and below
    the norm, and an enclosure with a non-finite entry proves no lower bound."""
    with np.errstate(over="ignore"):  # the sums overflow on purpose
        _overflowing_matrices()


def _overflowing_matrices():
    for scale in (1e200, 1e308):
        c = np.full((2, 2), scale)
        zero = np.zeros((2, 2))
        assert spectral_upper(c) >= 2 * scale  # inf when 2 * scale overflows
        for p in (1.0, 2.0, math.inf):
            low = sigma_lower(c, zero, p)
            assert math.isfinite(low) and 0 < low <= 2 * scale, (scale, p, low)
        assert sigma_lower(c, zero, 2.0) >= 2 * scale * (1 - 1e-12) or scale == 1e308
    for bad in (np.array([[np.inf, 1.0]]), np.array([[np.nan, 1.0]])):
        for p in (1.0, 2.0, math.inf):
            assert sigma_lower(bad, np.zeros((1, 2)), p) == -math.inf
    assert sigma_lower(np.ones((1, 2)), np.array([[np.inf, 0.0]]), 1.0) == -math.inf


# ============================================================================================ check names
@pytest.mark.parametrize("source,target", [
    ("invariance", "dissipativity"), ("dissipativity", "invariance"), ("equilibria", "invariance"),
    ("invariance", "equilibria"), ("gain", "equilibria"), ("contraction", "dissipativity"),
    ("dissipativity", "contraction"), ("gain", "contraction"), ("contraction", "gain"),
    ("gain", "weight_norm"),  # a tree proves a sup bound, not the Corollary 4 product the check is about
])
def test_a_claim_filed_under_another_check_name_is_invalid(tiny, source, target):
    """Before, the checker read the claim's kind only: any claim it proved was reported valid under whatever
    check name the entry carried."""
    bad = copy.deepcopy(tiny[3])
    bad["checks"] = [c for c in bad["checks"] if c["check"] != target]
    entry(bad, source)["check"] = target
    code, lines = run(bad)
    assert code == checker.EXIT_INVALID, lines
    assert lines[-1].startswith(f"invalid: check {target}: the {target} "), lines
    assert not any(line.startswith(f"{target}: valid") for line in lines), lines


def test_a_claim_that_proves_the_named_check_is_accepted_under_it(tiny):
    """The binding is by what a claim proves: a gain bound below 1 on A* over all columns proves dissipativity."""
    ok = copy.deepcopy(tiny[3])
    ok["checks"] = [c for c in ok["checks"] if c["check"] != "dissipativity"]
    entry(ok, "gain")["check"] = "dissipativity"
    code, lines = run(ok)
    assert code == checker.EXIT_VALID and any(s.startswith("dissipativity: valid: sup ||A*(x)||") for s in lines)


def test_a_threshold_check_needs_a_bound_at_most_1(tiny):
    """'dissipativity: valid: sup ||A*(x)|| <= 2' was reported: a true bound, but not dissipativity."""
    for name in ("dissipativity", "contraction", "weight_norm"):
        bad = copy.deepcopy(tiny[3])
        entry(bad, name)["claim"]["bound"] = "2.0"
        assert_invalid(bad, f"check {name}", "<= 1")


def test_a_gain_claim_covers_all_inputs_in_the_plain_norm(tiny):
    """A gain claim on the state columns only (a smaller matrix) or in a metric is not the gain."""
    net = random_net(0, 3, (4,), n_out=2, out_scale=0.3, n_states=2)
    box = Box(-np.ones(3), np.ones(3), n_states=2)
    result = CheckResult(CheckName.DISSIPATIVITY, Verdict.CERTIFIED, 0.0, 0.9, BoundMethod.BOXES, 0.0, None, "")
    proof = build_proof(Report("<in-memory>", "", net.describe(), box, 2.0, 1e-6, (result,), network=net))
    e = proof["checks"][0]
    assert e["status"] == "proven" and e["claim"]["columns"] == 2 and run(proof)[0] == checker.EXIT_VALID
    e["check"] = "gain"
    assert_invalid(proof, "check gain", "all 3 input columns")
    bad = copy.deepcopy(tiny[3])
    eye = [["1.0", "0.0"], ["0.0", "1.0"]]
    entry(bad, "gain")["claim"]["metric"] = {"P": eye, "T": eye, "Q": eye}
    assert_invalid(bad, "check gain", "metric")


def test_unknown_duplicate_and_forged_check_names_are_invalid(tiny):
    proof = tiny[3]
    renamed = copy.deepcopy(proof)
    entry(renamed, "gain")["check"] = "robustness"
    assert_invalid(renamed, "checks", "unknown check name 'robustness'")
    twice = copy.deepcopy(proof)
    twice["checks"].append(copy.deepcopy(entry(twice, "gain")))
    assert_invalid(twice, "checks", "gain is listed twice")
    listed = copy.deepcopy(proof)  # a check this checker does not re-prove: never listed as proven
    entry(listed, "gain")["check"] = "mean_square"
    assert_invalid(listed, "check mean_square", "does not re-prove")
    for name, other in (("stability", "contraction"), ("output_bounds", "invariance")):
        listed = copy.deepcopy(proof)  # a contraction bound alone proves no stability, invariance no output bounds
        listed["checks"] = [c for c in listed["checks"] if c["check"] != name]
        entry(listed, other)["check"] = name
        assert_invalid(listed, f"check {name}", f"needs a claim of kind '{name}'")
    forged = "x\nresult: valid (6 check(s) proven)"
    for key in ("check", "reason"):
        bad = copy.deepcopy(proof)
        bad["checks"].append({"check": "mean_square", "status": "not_proven", "reason": ""} | {key: forged})
        code, lines = run(bad)
        assert "result: valid (6 check(s) proven)" not in lines and all("\n" not in s for s in lines), lines
        assert code == (checker.EXIT_INVALID if key == "check" else checker.EXIT_PARTIAL), lines


def test_the_bindings_match_certify_checks_and_the_producer(tiny):
    """Every check certify has is either bound to a claim or listed as never proven here; the producer's claim for
    each sup-norm check (its table is read from the bindings) has the quantity, columns and threshold the binding
    requires."""
    names = {c.value for c in CheckName}
    assert set(checker.BINDINGS) | set(checker.NOT_PROVED_HERE) == names
    assert not set(checker.BINDINGS) & set(checker.NOT_PROVED_HERE)
    net, proof = tiny[0], tiny[3]
    sup = {name for name, rule in checker.BINDINGS.items() if rule.claim == "sup_norm"}
    assert {c.value for c in producer._SUP} == sup == {"dissipativity", "contraction", "gain", "weight_norm"}
    for name in sup:
        rule, claim = checker.BINDINGS[name], entry(proof, name)["claim"]
        assert claim["quantity"] == rule.quantity and rule.quantity == ("J" if name == "contraction" else "A*")
        assert claim["columns"] == (net.n_states if rule.columns == "states" else net.n_in)
        assert rule.threshold == (name != "gain") == (claim["lower"] is None)
        assert not rule.threshold or claim["bound"] == repr(1.0 - 1e-6)  # 1 - the default margin
    assert checker.BINDINGS["invariance"].claim == "invariance"
    assert checker.BINDINGS["equilibria"].claim == "equilibria"


# ============================================================================================ other edits
def test_an_equilibria_radius_wide_enough_to_list_anything_is_invalid(tiny):
    """With radius 1e308 an invented point is 'within the radius of an equilibrium' and every equilibrium within
    it of the invented one: the claim located nothing but was reported valid."""
    bad = copy.deepcopy(tiny[3])
    claim = entry(bad, "equilibria")["claim"]
    claim["radius"] = "1e308"
    claim["points"] = [["0.5", "0.5"]]
    assert_invalid(bad, "check equilibria", "radius")


def test_wrong_types_are_refused_with_the_key(tiny):
    proof = tiny[3]
    cases = [
        (("network", "n_states"), True, "n_states"),  # True == 1 to Python
        (("region", "n_states"), True, "states"),
        (("region", "lower"), [-1, -1], "region: region lower"),
        (("network", "layers", 0, "activation", "slopes"), "0.1", "slopes"),
        (("checks", 0, "claim", "norm"), 2, "norm"),
    ]
    for path, value, word in cases:
        bad = copy.deepcopy(proof)
        parent = bad
        for key in path[:-1]:
            parent = parent[key]
        parent[path[-1]] = value
        if path[-1] == "slopes":
            parent["kind"] = "prelu"
        if path[0] == "network" and path[-1] == "n_states":
            del bad["region"]["n_states"]  # so that the network's count is the only one
        assert_invalid(bad, word)


def test_duplicate_keys_and_deep_nesting_are_bad_input(tiny, tmp_path, capsys):
    """json.loads keeps the last of two equal keys (a reader sees the first: here a bound 2.0 that would be
    refused, the checker a 0.999999 it accepts) and raises RecursionError past about a thousand levels."""
    net, model, region, proof = tiny
    text = proof_bytes(proof, "p.json").decode()
    dup = text.replace('"bound":"0.999999"', '"bound":"2.0","bound":"0.999999"', 1)
    deep = text[:-1] + ',"extra":' + "[" * 100_000 + "]" * 100_000 + "}"
    for name, body, word in (("dup.json", dup, "'bound' appears twice"), ("deep.json", deep, "nested")):
        assert body != text
        path = tmp_path / name
        path.write_text(body)
        capsys.readouterr()
        assert checker.main(["check", str(path), str(model), str(region)]) == checker.EXIT_BAD_INPUT, name
        err = capsys.readouterr().err.strip().splitlines()
        assert len(err) == 1 and err[0].startswith("certify-proof: error:") and word in err[0], err


def test_reimport_names_a_short_difference_and_survives_odd_state_counts(tiny):
    """--reimport with the proof's network replaced or its n_states a bool: one short line naming the entry (the
    whole weight list of the model was printed; n_states True reached the importer and raised TypeError)."""
    net, model, region, proof = tiny
    for key, value in (("layers", None), ("n_states", True), ("n_states", 10 ** 4000)):
        bad = copy.deepcopy(proof)
        bad["network"][key] = value
        assert_invalid(bad, "network", model=model, region=region, reimport=True)


def test_reimport_without_onnx_is_bad_input(tiny, monkeypatch):
    """--reimport where onnx is not installed: one 'error' line (exit 3), not an ImportError traceback."""
    from certify.proof import bind

    def no_onnx(*args):
        raise ModuleNotFoundError("No module named 'onnx'")

    monkeypatch.setattr(bind, "network_mismatch", no_onnx)
    net, model, region, proof = tiny
    code, lines = run(proof, model, region, reimport=True)
    assert code == checker.EXIT_BAD_INPUT and lines[-1].startswith("certify-proof: error: --reimport needs"), lines


def test_an_unexpected_exception_is_an_invalid_answer(tiny, monkeypatch):
    """The last guard: a checker bug met by some entry is an 'invalid' line naming the exception, not a
    traceback (the mutation tests below assert that it is never needed)."""
    def broken(*args):
        raise ZeroDivisionError("float division by zero")

    monkeypatch.setitem(checker.CLAIMS, "invariance", broken)
    code, lines = run(tiny[3])
    assert code == checker.EXIT_INVALID and checker.UNEXPECTED in lines[-1] and "ZeroDivisionError" in lines[-1]


# ============================================================================================ mutations
_NAMES = list(PROVED) + ["stability", "output_bounds", "mean_square", "robustness"]
_JUNK = st.one_of(
    st.none(), st.booleans(), st.integers(-3, 3), st.sampled_from([10 ** 4000, -(10 ** 30), 2 ** 63]),
    st.sampled_from([0.5, -0.0, 1e308, math.inf, -math.inf, math.nan]),
    st.sampled_from(["", "x", "nan", "inf", "-inf", "1e400", "-1e400", "0", "-1", "0.5", "0.8", "1", "2", "1e-300",
                     "9" * 400, "1_0", " 1 "]),
    st.sampled_from(_NAMES + ["sup_norm", "A*", "J", "product", "tree", "proven", "not_proven", "b", "n", "a", "f"]),
    st.lists(st.integers(0, 2), max_size=3), st.just({}), st.just([["b"]]), st.just([[]]), st.just([["0.5"]]),
    st.just(["f", [[0, 1e308]]]), st.just(["n", 0, 0]), st.just(["a", 0]),
    st.recursive(st.just([]), lambda inner: st.lists(inner, min_size=1, max_size=1), max_leaves=60),
)


def _paths(obj, prefix=()):
    yield prefix
    items = obj.items() if isinstance(obj, dict) else enumerate(obj) if isinstance(obj, list) else ()
    for key, value in items:
        yield from _paths(value, prefix + (key,))


def _decimal(value) -> float | None:
    """The finite float a decimal string of the proof holds, else None."""
    if not isinstance(value, str) or not re.fullmatch(r"-?[0-9]+(\.[0-9]*)?([eE][-+]?[0-9]+)?", value):
        return None
    x = float(value)
    return x if math.isfinite(x) else None


def _mutate(proof, data) -> dict:
    """1 to 3 random edits: replace, delete, insert, duplicate or swap at any path, rename a check, exchange two
    checks' names, or scale a decimal string by 1 +- 10^-k (half the edits aim at the checks' entries)."""
    bad = copy.deepcopy(proof)
    for _ in range(data.draw(st.integers(1, 3), label="edits")):
        op = data.draw(st.sampled_from(["replace", "delete", "insert", "duplicate", "swap", "rename", "exchange",
                                        "scale"]), label="op")
        checks = bad.get("checks") if isinstance(bad.get("checks"), list) else []
        named = [c for c in checks if isinstance(c, dict)]
        if op == "rename" and named:
            data.draw(st.sampled_from(named), label="check")["check"] = data.draw(st.sampled_from(_NAMES))
            continue
        if op == "exchange" and len(named) >= 2:
            a, b = data.draw(st.permutations(named), label="pair")[:2]
            a["check"], b["check"] = b.get("check"), a.get("check")
            continue
        paths = [p for p in _paths(bad) if p]
        if data.draw(st.booleans(), label="aim at checks"):
            paths = [p for p in paths if p[0] == "checks"] or paths
        random.Random(len(paths)).shuffle(paths)  # hypothesis favours the first choices: spread them over the file
        path = data.draw(st.sampled_from(paths), label="path")
        parent = bad
        for key in path[:-1]:
            parent = parent[key]
        key = path[-1]
        if op == "delete":
            del parent[key]
        elif op == "insert":
            if isinstance(parent, list):
                parent.insert(key, copy.deepcopy(data.draw(_JUNK, label="junk")))
            else:
                parent[data.draw(st.sampled_from(["extra", "lower", "metric", "kind"]))] = copy.deepcopy(
                    data.draw(_JUNK))
        elif op == "duplicate" and isinstance(parent, list):
            parent.insert(key, copy.deepcopy(parent[key]))
        elif op == "swap" and isinstance(parent, list) and len(parent) >= 2:
            other = data.draw(st.integers(0, len(parent) - 1), label="other")
            parent[key], parent[other] = parent[other], parent[key]
        elif op == "scale" and _decimal(parent[key]) is not None:
            k = data.draw(st.integers(1, 15), label="k")
            sign = data.draw(st.sampled_from([-1, 1]), label="sign")
            parent[key] = repr(_decimal(parent[key]) * (1 + sign * 10.0 ** -k))
        else:
            parent[key] = copy.deepcopy(data.draw(_JUNK, label="junk"))
    return bad


@pytest.fixture(scope="module")
def truth(tiny):
    """Brute force on the net: sampled sup of ||M(x)[:, :cols]||_p for M in (A*, J) and p in (1, 2, inf), the
    sampled largest invariance violation, the proof's equilibria (which test_proof checks to be fixed points), the
    proven 2-norm bounds and the net itself."""
    net, model, region, proof = tiny
    rng = np.random.default_rng(0)
    x = np.vstack([rng.uniform(-1, 1, (4000, 2)), [[1, 1], [1, -1], [-1, 1], [-1, -1]]])
    mats = {"A*": net.pwa(x)[0], "J": net.jacobian(x)}
    sup = {(q, p): float(np.max(induced_norm(m, p))) for q, m in mats.items() for p in (1.0, 2.0, math.inf)}
    f = net.forward(x)
    violation = float(np.max(np.maximum(f - 1.0, -1.0 - f)))
    e = entry(proof, "equilibria")["claim"]
    points = [np.array([float(v) for v in p]) for p in e["points"]]
    upper = {"A*": float(entry(proof, "gain")["claim"]["bound"]), "J": float(entry(proof, "contraction")["claim"]
                                                                             ["bound"])}  # proven 2-norm bounds
    return sup, violation, points, float(e["radius"]), upper, net


def assert_claims_hold(bad, lines, truth):
    """Every 'NAME: valid:' line: the entry's claim is the kind its check name stands for (the producer's table),
    and brute force on the net does not contradict it."""
    sup, violation, points, radius, upper, net = truth
    valid = [line.split(":", 1)[0] for line in lines if ": valid: " in line]
    for name in valid:  # (the lines of the checks before a refused one are printed too: the first of that name)
        assert name in PROVED, (name, lines)  # a check the checker does not re-prove is never valid
        e = next(c for c in bad["checks"] if isinstance(c, dict) and c.get("check") == name)
        claim = e["claim"]
        slack = 1e-12
        if name == "stability":
            assert claim["kind"] == "stability" and claim.get("metric") is None, claim
            rate, p = float(claim["rate"]), {"1": 1.0, "2": 2.0, "inf": math.inf}[claim["norm"]]
            assert sup["J", p] * (1 - slack) <= rate < 1.0, (claim, sup)
            if claim["start_set"] == "box":
                assert violation < 0.0, claim
            else:  # the ball stays inside the box and f keeps its sampled boundary inside it
                c, r = np.array([float(v) for v in claim["center"]]), float(claim["radius"])
                assert np.all(c - r >= -1.0) and np.all(c + r <= 1.0), claim
                y = np.random.default_rng(1).normal(size=(2000, 2))
                x = c + r * y / np.linalg.norm(y, ord=p, axis=1, keepdims=True)
                assert np.all(np.linalg.norm(net.forward(x) - c, ord=p, axis=1) <= r * (1 + 1e-9)), claim
        elif name in ("invariance", "equilibria"):
            assert claim["kind"] == name
        else:
            quantity, states = producer._SUP[CheckName(name)]
            assert claim["kind"] == "sup_norm" and claim["quantity"] == quantity, (name, claim)
            assert claim.get("metric") is None, claim  # the tiny proof has none: no edit makes a valid one
            assert claim["columns"] == 2
            bound = float(claim["bound"])
            p = {"1": 1.0, "2": 2.0, "inf": math.inf}[claim["norm"]]
            assert bound >= sup[quantity, p] * (1 - slack), (name, claim, sup)
            assert name == "gain" or bound <= 1.0
            assert name != "weight_norm" or e["evidence"]["kind"] == "product"
            if claim.get("lower") is not None:
                assert p != 2.0 or float(claim["lower"]["value"]) <= upper[quantity] * (1 + slack), claim
        if name == "invariance":
            assert violation < float(claim["bound"]) <= 0.0, claim
        if name == "equilibria":
            r = float(claim["radius"])
            got = [np.array([float(v) for v in q]) for q in claim["points"]]
            assert r <= 1e-6
            assert all(any(np.max(np.abs(q - p)) <= r + radius for p in points) for q in got), claim
            assert all(any(np.max(np.abs(q - p)) <= r + radius for q in got) for p in points), claim


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow,
                                                                 HealthCheck.function_scoped_fixture])
@given(data=st.data())
def test_mutated_proofs_never_crash_and_never_validate_an_unproven_claim(tiny, truth, data):
    net, model, region, proof = tiny
    bad = _mutate(proof, data)
    code, lines = run(bad, model, region, reimport=True)
    assert code in (checker.EXIT_VALID, checker.EXIT_INVALID, checker.EXIT_PARTIAL, checker.EXIT_BAD_INPUT)
    assert lines and lines[-1].startswith(("result:", "invalid:", "certify-proof: error:")), lines
    assert all("\n" not in s for s in lines) and not any(checker.UNEXPECTED in s for s in lines), lines
    assert_claims_hold(bad, lines, truth)


_TOKEN = re.compile(r'"(?:[^"\\]|\\.)*"|-?[0-9]+(?:\.[0-9]+)?(?:[eE][-+]?[0-9]+)?')
_RAW = ["1e400", "-1e400", "1e-400", "7" * 4000, "-" + "7" * 4000, "NaN", "Infinity", "-Infinity", "-0", "0", "1",
        "3", "0.5", "1.5", "null", "true", "[]", "{}", '"x"', '"1e400"', "[" * 3000 + "]" * 3000]
_QUOTED = ["nan", "inf", "-inf", "1e400", "-1e400", "1e-400", "7" * 4000, "0", "-0.0", "1", "2", "0.5", "", "x"]


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow,
                                                                 HealthCheck.function_scoped_fixture])
@given(data=st.data())
def test_edited_numbers_in_a_proof_file_never_crash(tiny, truth, tmp_path_factory, data):
    """The file as text: a number token or a decimal string replaced (huge, infinite, NaN, nested, another type);
    the command answers with its exit codes and the claims it still calls valid hold."""
    net, model, region, proof = tiny
    text = proof_bytes(proof, "p.json").decode()
    tokens = list(_TOKEN.finditer(text))
    edited = text
    for m in sorted(data.draw(st.lists(st.sampled_from(tokens), min_size=1, max_size=3, unique_by=lambda m: m.start()),
                              label="tokens"), key=lambda m: -m.start()):
        if m.group().startswith('"'):
            new = '"' + data.draw(st.sampled_from(_QUOTED), label="quoted") + '"'
        else:
            new = data.draw(st.sampled_from(_RAW), label="raw")
        edited = edited[:m.start()] + new + edited[m.end():]
    path = tmp_path_factory.mktemp("edited") / "p.json"
    path.write_text(edited)
    lines: list[str] = []
    code = checker.check_files(path, model, region, out=lines.append, reimport=True)
    assert code in (checker.EXIT_VALID, checker.EXIT_INVALID, checker.EXIT_PARTIAL, checker.EXIT_BAD_INPUT)
    assert lines and lines[-1].startswith(("result:", "invalid:", "certify-proof: error:")), lines
    assert not any(checker.UNEXPECTED in s for s in lines), lines
    if code in (checker.EXIT_VALID, checker.EXIT_PARTIAL):
        assert_claims_hold(json.loads(edited), lines, truth)


def test_the_proof_bytes_round_trip(tiny, tmp_path):
    """The producer's file reads back through the duplicate-key reader unchanged."""
    path = tmp_path / "p.json"
    path.write_bytes(proof_bytes(tiny[3], path))
    assert checker.load_proof(Path(path)) == json.loads(json.dumps(tiny[3]))


def test_a_proof_cannot_choose_its_own_state_count(tiny):
    """A proof that drops the region's n_states, calls one coordinate a state and claims contraction on that column
    only was reported valid (the state count was taken from the proof, also under --reimport): the region file's
    count binds the network."""
    net, model, region, proof = tiny
    bad = copy.deepcopy(proof)
    bad["network"]["n_states"] = 1
    bad["region"].pop("n_states", None)
    for c in bad["checks"]:
        c["claim"]["columns"] = 1
    for reimport in (False, True):
        assert_invalid(bad, "network", "states", model=model, region=region, reimport=reimport)


def test_a_plain_lower_upper_file_gives_the_model_s_state_count_under_reimport(tiny, tmp_path):
    """A ``lower``/``upper`` file names no state count: certify imports the model with its own, and so must
    --reimport (it took the proof's, so the same relabelled proof was valid against such a file)."""
    net, model, region, proof = tiny
    plain = tmp_path / "plain.yaml"
    plain.write_text("lower: [-1.0, -1.0]\nupper: [1.0, 1.0]\n")
    bad = copy.deepcopy(proof)
    bad["network"]["n_states"] = 1
    bad["region"].pop("n_states", None)
    for c in bad["checks"]:
        c["claim"]["columns"] = 1
    assert_invalid(bad, "network", "n_states", model=model, region=plain, reimport=True)
    honest = copy.deepcopy(proof)
    honest["region"].pop("n_states", None)
    assert run(honest, model, plain, reimport=True)[0] in (checker.EXIT_VALID, checker.EXIT_PARTIAL)


def test_a_bound_with_a_huge_exponent_is_read_at_once():
    """The region reader compared the outward rounding with Fractions: 1e-10000000 took 14 s to build and
    0e-999999999 hours; Decimals compare at once and give the same floats."""
    for text, toward, want in (("1e-10000000", -1, 0.0), ("1e-10000000", 1, 5e-324), ("0e-999999999", 1, 0.0),
                               ("0.1", -1, math.nextafter(0.1, 0.0)), ("0.1", 1, 0.1), ("-0.1", -1, -0.1)):
        assert checker._number(text, "where", toward) == want, text


# ================================================================================ the region file's norm and margin
def _region_asking(tmp_path, region, lines: str, name="asks.yaml") -> Path:
    """The tiny region file with ``lines`` (norm / margin keys) appended."""
    path = tmp_path / name
    path.write_text(Path(region).read_text() + lines)
    return path


@pytest.mark.parametrize("lines,words", [
    ("norm: inf\n", ("norm inf", "the dissipativity proof claims the 2-norm")),
    ("norm: 1\n", ("norm 1", "2-norm")),
    ("margin: 0.05\n", ("margin 0.05", "1 - margin = 0.95", "0.999999")),
    ("norm: 2\nmargin: 0.5\n", ("margin 0.5",)),
])
def test_a_proof_of_another_norm_or_margin_than_the_region_file_asks_is_invalid(tiny, tmp_path, lines, words):
    """The tiny proof (2-norm claims, bounds 1 - 1e-6) was reported valid against a region file asking for the
    inf-norm or a margin of 0.05: true claims, but not the check the file asks for."""
    net, model, region, proof = tiny
    asks = _region_asking(tmp_path, region, lines)
    last = assert_invalid(proof, "check dissipativity", str(asks), *words, model=model, region=asks)
    assert "'" not in last.split(str(asks))[0][-5:]  # the file's path, not a repr


def test_a_proof_in_another_norm_than_the_default_is_invalid_for_a_file_without_norm(tiny):
    """A region file without ``norm`` asks for certify's default norm (the 2-norm): a gain claim in the 1-norm,
    true of the net, is not that check."""
    net, model, region, proof = tiny
    bad = copy.deepcopy(proof)
    bad["checks"] = [entry(bad, "gain")]
    claim = bad["checks"][0]["claim"]
    claim["norm"], claim["lower"] = "1", None  # a true 1-norm claim: the checker re-proves it just below
    claim["bound"] = repr(float(claim["bound"]) * 10)
    assert run(bad)[0] == checker.EXIT_VALID  # valid for what it states, without the region file
    assert_invalid(bad, "check gain", "gives no norm", "default is the 2-norm", "1-norm", model=model, region=region)
    assert checker.DEFAULT_NORM == VerifyConfig().norm  # the norm certify runs in for such a file


@pytest.mark.parametrize("lines", ["norm: 2\n", "norm: '2'\n", "norm: L2\n", "margin: 0\n", "margin: 1e-6\n",
                                   "margin: 0.0000010\n", "norm: 2.0\nmargin: 1.0e-6\n", "norm:\n  2\n",
                                   "margin:  # the level\n  1e-6\n"])
def test_a_proof_of_the_check_the_region_file_asks_is_valid(tiny, tmp_path, lines):
    """The same proof against files that ask for what it claims (the 2-norm, margins up to its own 1e-6: its
    bound is the float64 1 - 1e-6 that the checker computes too) stays valid."""
    net, model, region, proof = tiny
    asks = _region_asking(tmp_path, region, lines)
    code, out = run(proof, model, asks)
    assert code == checker.EXIT_VALID, out


def test_proofs_for_a_region_file_with_norm_inf_and_a_margin_check_valid(tmp_path, capsys):
    """The producer writes the region file's check: a run with the file's norm (inf) and margin (0.05) gives
    claims in the inf-norm with bound 0.95, which the checker accepts against that file and refuses against the
    same box asking for the 2-norm or a margin of 0.1."""
    from onnx_builders import network_to_onnx, save

    from certify.importers.region_file import load_region

    net = random_net(0, 2, (4, 3), out_scale=0.5)
    model = save(network_to_onnx(net), tmp_path, "tiny.onnx")
    box = "states:\n  x0: [-1.0, 1.0]\n  x1: [-1.0, 1.0]\n"
    region = tmp_path / "box.yaml"
    region.write_text(box + "norm: inf\nmargin: 0.05\n")
    config = load_region(region).config(samples=300, timeout=30)
    assert config.norm == math.inf and config.margin == 0.05
    report = verify(model, region, "dissipativity,contraction,weight_norm,gain", config)
    proof = build_proof(report)
    proven = [c for c in proof["checks"] if c["status"] == "proven"]
    assert {c["check"] for c in proven} >= {"dissipativity", "contraction", "gain"}, proof["checks"]
    for c in proven:
        assert c["claim"]["norm"] == "inf", c["claim"]
        assert c["check"] == "gain" or c["claim"]["bound"] == repr(1.0 - 0.05), c["claim"]
    path = tmp_path / "p.json"
    path.write_bytes(proof_bytes(proof, path))
    lines: list[str] = []
    assert checker.check_files(path, model, region, out=lines.append, reimport=True) in (
        checker.EXIT_VALID, checker.EXIT_PARTIAL), lines
    assert sum(": valid: " in s for s in lines) == len(proven), lines
    for other, words in (("norm: 2\nmargin: 0.05\n", ("norm 2", "inf-norm")), ("norm: inf\nmargin: 0.1\n",
                                                                                ("margin 0.1", "0.95"))):
        (tmp_path / "other.yaml").write_text(box + other)
        assert_invalid(proof, *words, model=model, region=tmp_path / "other.yaml")
        capsys.readouterr()  # the command: exit 1, one line, no traceback
        assert checker.main(["check", str(path), str(model), str(tmp_path / "other.yaml")]) == checker.EXIT_INVALID
        got = capsys.readouterr()
        assert got.err == "" and got.out.strip().splitlines()[-1].startswith("invalid: check "), got


@pytest.mark.parametrize("lines,word", [
    ("norm: 3\n", "norm must be 1, 2 or inf"), ("norm: -.inf\n", "norm must be"), ("margin: 1\n", "[0, 1)"),
    ("margin: -0.1\n", "[0, 1)"), ("margin: '0.1'\n", "not a number"), ("margin: .nan\n", "not a number"),
    ("norm:\n", "'norm' has no value"), ("margin: 0.1\n  0.2\n", "one value"), ("norm:\n  2\n  1\n", "one value"),
    ("norm:\n  - 2\n", "norm must be"),
])
def test_a_region_norm_or_margin_the_checker_cannot_read_is_bad_input(tiny, tmp_path, lines, word):
    """Exit 3 naming the line, as certify's own reader refuses those files too (the checker never guesses what a
    file asks for)."""
    from certify.errors import RegionError
    from certify.importers.region_file import load_region

    net, model, region, proof = tiny
    asks = _region_asking(tmp_path, region, lines)
    with pytest.raises(RegionError):
        load_region(asks)
    code, out = run(proof, model, asks)
    assert code == checker.EXIT_BAD_INPUT and out[-1].startswith("certify-proof: error:") and word in out[-1], out
    assert str(asks) in out[-1], out


# ============================================================================================ JSON literals
@pytest.mark.parametrize("literal", ["NaN", "Infinity", "-Infinity"])
def test_the_non_json_literals_are_refused_when_the_file_is_read(tiny, tmp_path, capsys, literal):
    """json.loads reads NaN, Infinity and -Infinity by default: in an entry the checker does not read (the
    producer's search counts) the proof was valid, in a Farkas pair it was refused later as a non-finite value.
    Both are refused when the file is read, by one line naming the literal (exit 3, as for any file that is not
    JSON)."""
    net, model, region, proof = tiny
    text = proof_bytes(proof, "p.json").decode()
    nodes = re.search(r'"nodes":(\d+)', text)
    pair = re.search(r'\["f",\[\[(\d+),([^\]]+)\]', text)
    assert nodes and pair
    for name, body in (("counts", text[:nodes.start(1)] + literal + text[nodes.end(1):]),
                       ("farkas", text[:pair.start(2)] + literal + text[pair.end(2):])):
        path = tmp_path / f"{name}.json"
        path.write_text(body)
        capsys.readouterr()
        assert checker.main(["check", str(path), str(model), str(region)]) == checker.EXIT_BAD_INPUT, name
        got = capsys.readouterr()
        err = got.err.strip().splitlines()
        assert len(err) == 1 and err[0].startswith(f"certify-proof: error: {path}:"), err
        assert f"the literal {literal} is not JSON" in err[0] and "Traceback" not in got.err, err
        assert "valid" not in got.out, got.out
    gz = tmp_path / "p.json.gz"  # gzip-compressed files too
    gz.write_bytes(gzip.compress(text.replace('"bound":"0.999999"', f'"bound":{literal}', 1).encode()))
    with pytest.raises(checker.BadInput, match=f"the literal {literal} is not JSON"):
        checker.load_proof(gz)


# ============================================================================================ Farkas rows
def test_farkas_rows_beyond_int64_prove_nothing_and_raise_nothing():
    """farkas_certifies turned its row numbers into an int64 array first: a row beyond int64 raised OverflowError
    (the walk names such a row before calling it; this is the function's own contract)."""
    from certify.proof.enclosure import farkas_certifies

    a, b = np.array([[1.0, 0.0], [-1.0, 0.0]]), np.array([-1.0, -1.0])  # x0 <= -1 and x0 >= 1: empty
    lo, hi = -np.ones(2), np.ones(2)
    assert farkas_certifies(a, b, lo, hi, [0, 1], [0.5, 0.5])
    for rows in ([0, 2 ** 63], [10 ** 30, 1], [0, -(2 ** 64)], [0, 2], [-1, 1]):
        assert not farkas_certifies(a, b, lo, hi, rows, [0.5, 0.5]), rows


def test_a_farkas_row_beyond_the_node_or_int64_in_any_pair_is_named(tiny):
    """The row is validated where the pair is read, in every pair (not only the first)."""
    proof = tiny[3]
    for row in (2 ** 63, 10 ** 4000, 3, -(2 ** 63) - 1):
        bad = copy.deepcopy(proof)
        entries = entry(bad, "equilibria")["evidence"]["entries"]
        k = first(entries, "f")
        entries[k][1].append([row, 0.25])
        last = assert_invalid(bad, "check equilibria", f"entry {k}", "Farkas", "they name row")
        assert len(last) < 300, last


# ================================================================================ the region file's metric
def test_a_proof_is_bound_to_the_region_file_s_metric(tiny, tmp_path):
    """A claim in the metric P proves dissipativity in P, not in the plain norm, and the reverse: the checker
    skipped the region file's ``metric`` key, so either proof was valid against the other file."""
    from certify.importers.region_file import load_region

    net, model, region, plain_proof = tiny
    box = Path(region).read_text()
    weighted = tmp_path / "weighted.yaml"
    weighted.write_text(box + "metric:\n  - [1.5, 0.2]\n  - [0.2, 1.0]\n")
    report = verify(model, weighted, "dissipativity", load_region(weighted).config(samples=300, timeout=30))
    proof = build_proof(report)
    assert proof["checks"][0]["status"] == "proven" and proof["checks"][0]["claim"]["metric"] is not None, proof
    assert run(proof, model, weighted)[0] == checker.EXIT_VALID
    flow = tmp_path / "flow.yaml"
    flow.write_text(box + "metric: [[1.5, 0.2], [0.2, 1.0]]\n")
    assert run(proof, model, flow)[0] == checker.EXIT_VALID  # the same P written on one line
    auto = tmp_path / "auto.yaml"
    auto.write_text(box + "metric: auto\n")
    assert run(proof, model, auto)[0] == checker.EXIT_VALID  # certify picks the metric: any P proves it
    assert_invalid(proof, "asks for no metric", "weighted norm", model=model, region=region)
    other = tmp_path / "other.yaml"
    other.write_text(box + "metric:\n  - [1.5, 0.1]\n  - [0.1, 1.0]\n")
    assert_invalid(proof, "gives the metric P", "P is another", model=model, region=other)
    assert_invalid(plain_proof, "check dissipativity", "plain norm", model=model, region=weighted)
    identity = tmp_path / "identity.yaml"
    identity.write_text(box + "metric: identity\n")
    assert run(plain_proof, model, identity)[0] in (checker.EXIT_VALID, checker.EXIT_PARTIAL)


def test_a_gain_proof_stays_in_the_plain_norm_under_a_region_metric(tiny, tmp_path):
    """certify runs gain in the plain norm whatever the region's metric (and writes no metric into its claim); the
    checker held the gain claim to the file's P too and refused the proof certify had just written."""
    from certify.importers.region_file import load_region

    net, model, region, _ = tiny
    weighted = tmp_path / "weighted.yaml"
    weighted.write_text(Path(region).read_text() + "metric:\n  - [1.5, 0.2]\n  - [0.2, 1.0]\n")
    report = verify(model, weighted, "dissipativity,gain", load_region(weighted).config(samples=300, timeout=30))
    proof = build_proof(report)
    gain = entry(proof, "gain")
    assert gain["status"] == "proven" and gain["claim"]["metric"] is None, gain
    code, lines = run(proof, model, weighted)
    assert code in (checker.EXIT_VALID, checker.EXIT_PARTIAL) and any("gain: valid" in s for s in lines), lines

"""Proof files (issue 11): the checker accepts the proofs of certified checks and rejects tampered ones.

The checker (certify/proof/checker.py) recomputes everything with numpy and the standard library; the proofs come
from certify.verify's reports through Report.to_proof / certify.proof.producer. Soundness cross-checks: a claim
the checker accepts is never below a value attained at a sampled point, and a claim lowered below such a value is
always refused.
"""

from __future__ import annotations

import copy
import gzip
import json
import math
import re
import subprocess
import sys
import warnings
from decimal import Decimal
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st
from random_nets import random_net as make_net
from random_nets import unit_box as make_box

from certify import cli
from certify.api import verify
from certify.certificate import BoundMethod, CheckName, CheckResult, SupNormDetails, Verdict
from certify.config import VerifyConfig
from certify.ir import activations as acts
from certify.ir.box import Box
from certify.ir.network import Layer, Network
from certify.ir.numerics import induced_norm
from certify.proof import checker
from certify.proof.producer import ProofOptions, build_proof, proof_bytes
from certify.report.report import Report

ROOT = Path(__file__).resolve().parents[1]
ZOO = ROOT / "benchmarks" / "zoo"
EXAMPLES = ROOT / "examples"
FAST = VerifyConfig(samples=2000, timeout=60)


def check(proof, model=None, region=None):
    """(exit code, lines) of the checker on a proof object."""
    lines: list[str] = []
    code = checker.check_proof(proof, model, region, out=lines.append)
    return code, lines


def write_model(tmp_path, net, network_to_onnx, save_model, name="model.onnx"):
    return save_model(network_to_onnx(net), name)


def write_box(tmp_path, box: Box, name="box.yaml") -> Path:
    p = tmp_path / name
    rows = "\n".join(f"  x{i}: [{float(lo)!r}, {float(hi)!r}]" for i, (lo, hi) in enumerate(zip(box.lower, box.upper)))
    p.write_text(f"# a box\nstates:\n{rows}\nnorm: 2\n")
    return p


def entry(proof, name):
    return next(c for c in proof["checks"] if c["check"] == name)


@pytest.fixture(scope="module")
def relu_case(tmp_path_factory):
    """A 2-8-8-2 ReLU net written as ONNX, its box file, the report of four checks and its proof."""
    from onnx_builders import network_to_onnx, save

    tmp = tmp_path_factory.mktemp("relu")
    net = make_net(0, 2, (8, 8), out_scale=0.5)
    model = save(network_to_onnx(net), tmp, "relu.onnx")
    region = write_box(tmp, make_box(2))
    report = verify(model, region, "dissipativity,contraction,gain,weight_norm", FAST)
    proof = build_proof(report)
    return net, model, region, report, proof


# ============================================================================================ acceptance
def test_certified_checks_of_a_relu_net_are_proven_and_valid(relu_case):
    net, model, region, report, proof = relu_case
    assert [r.verdict for r in report.results[:3]] == [Verdict.CERTIFIED] * 3
    code, lines = check(proof, model, region)
    assert code == checker.EXIT_PARTIAL, lines  # weight_norm is unknown here: listed as not proven
    for name in ("dissipativity", "contraction", "gain"):
        assert entry(proof, name)["status"] == "proven"
        assert any(line.startswith(f"{name}: valid:") for line in lines), lines
    assert entry(proof, "weight_norm")["status"] == "not_proven"
    assert any(line.startswith("weight_norm: not proven here:") for line in lines)
    assert entry(proof, "dissipativity")["evidence"]["kind"] == "tree"


def test_gain_claim_brackets_the_exact_value(relu_case):
    net, model, region, report, proof = relu_case
    claim = entry(proof, "gain")["claim"]
    gain = report["gain"]
    assert float(claim["lower"]["value"]) <= gain.lower <= gain.upper <= float(claim["bound"])
    assert float(claim["bound"]) <= gain.upper * (1 + 2e-9)
    x = np.random.default_rng(1).uniform(-1, 1, (4000, 2))
    assert np.max(induced_norm(net.pwa(x)[0], 2.0)) <= float(claim["bound"])


def test_cli_writes_a_gzip_proof_the_command_checks(tmp_path, relu_case, capsys):
    net, model, region, report, proof = relu_case
    path = tmp_path / "p.json.gz"
    code = cli.run([str(model), "--region", str(region), "--check", "dissipativity", "--samples", "2000",
                    "--proof", str(path), "--quiet"])
    assert code == 0
    data = path.read_bytes()
    assert data[:2] == b"\x1f\x8b" and json.loads(gzip.decompress(data))["format"] == "certify-proof/1"
    done = subprocess.run([sys.executable, "-m", "certify.proof.checker", "check", str(path), str(model),
                           str(region)], capture_output=True, text=True)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "dissipativity: valid" in done.stdout and "result: valid" in done.stdout


def test_cli_notes_when_a_proof_is_made_for_another_check_than_the_region_file_s(tmp_path, relu_case, capsys):
    """--norm, --margin or --metric overriding the region file make a proof that certify-proof check refuses
    against that file (it holds proofs to the file's own check): the command says so when it writes one."""
    net, model, region, report, proof = relu_case
    base = [str(model), "--region", str(region), "--check", "dissipativity", "--samples", "500", "--quiet"]
    assert cli.run(base + ["--proof", str(tmp_path / "same.json"), "--norm", "2"]) in (0, 2)
    assert "note:" not in capsys.readouterr().err  # the file's own norm (2): nothing to say
    with_margin = tmp_path / "margin.yaml"
    with_margin.write_text(Path(region).read_text() + "margin: 0.01\n")
    for extra, word, box in ((["--norm", "1"], "--norm", region), (["--margin", "0.001"], "--margin", with_margin),
                             (["--metric", "auto"], "--metric", region)):
        argv = [str(model), "--region", str(box)] + base[3:] + ["--proof", str(tmp_path / "other.json")] + extra
        assert cli.run(argv) in (0, 1, 2)  # any verdict
        err = capsys.readouterr().err.strip().splitlines()
        assert len(err) == 1 and "note:" in err[0] and word in err[0] and str(box) in err[0], err
        proof_of = json.loads((tmp_path / "other.json").read_text())
        if extra[0] != "--metric" and proof_of["checks"][0]["status"] == "proven":  # (auto may find no metric)
            assert checker.check_files(tmp_path / "other.json", model, box, out=lambda s: None) == \
                checker.EXIT_INVALID
    # a larger margin than the file's proves more (the file's check holds too): nothing to say; no margin in the
    # file is a level of 1 for the checker, which any margin meets
    assert cli.run(base + ["--proof", str(tmp_path / "zero.json"), "--margin", "0"]) in (0, 1, 2)
    assert "note:" not in capsys.readouterr().err
    assert cli.run(base + ["--proof", str(tmp_path / "strict.json"), "--margin", "0.1"]) in (0, 1, 2)
    assert "note:" not in capsys.readouterr().err
    if json.loads((tmp_path / "strict.json").read_text())["checks"][0]["status"] == "proven":
        assert checker.check_files(tmp_path / "strict.json", model, region, out=lambda s: None) in (
            checker.EXIT_VALID, checker.EXIT_PARTIAL)
    cli.run(base + ["--norm", "1"])  # no proof asked for: no note
    assert "note:" not in capsys.readouterr().err


def test_report_to_proof_writes_the_file(tmp_path, relu_case):
    net, model, region, report, proof = relu_case
    path = tmp_path / "p.json"
    written = report.to_proof(path, timeout=30.0)
    assert json.loads(path.read_text()) == json.loads(json.dumps(written))
    assert checker.check_files(path, model, region, out=lambda s: None) == checker.EXIT_PARTIAL


@pytest.mark.parametrize("norm", [1.0, math.inf])
def test_gain_in_the_1_and_inf_norms(norm):
    net = make_net(3, 3, (6, 5), n_out=2)
    report = verify(net, make_box(3), "gain", VerifyConfig(samples=2000, norm=norm))
    proof = build_proof(report)
    assert entry(proof, "gain")["status"] == "proven"
    assert check(proof)[0] == checker.EXIT_VALID


def test_leaky_relu_net_with_inputs_and_skip():
    net = make_net(0, 3, (6, 6), n_out=2, activation=acts.leaky_relu(0.1), out_scale=0.25, skip=True,
                   skip_scale=0.15, n_states=2)
    box = Box(-np.ones(3), np.ones(3), n_states=2)
    report = verify(net, box, "dissipativity,contraction", FAST)
    assert report["contraction"].verdict is Verdict.CERTIFIED
    code, lines = check(build_proof(report))
    assert code == checker.EXIT_VALID, lines


def test_clip_net_contraction_by_neurons_and_dissipativity_by_boxes():
    net = make_net(0, 2, (6, 6), activation=acts.clip(-0.5, 0.5), out_scale=0.5)
    report = verify(net, make_box(2, 2.0), "contraction,dissipativity", FAST)
    assert [r.verdict for r in report.results] == [Verdict.CERTIFIED] * 2
    proof = build_proof(report)
    kinds = [{e[0] for e in c["evidence"]["entries"]} for c in proof["checks"]]
    assert "n" in kinds[0] and kinds[1] <= {"a", "b"}  # J: neuron splits; A* (not constant on regions): boxes
    code, lines = check(proof)
    assert code == checker.EXIT_VALID, lines


def _report(net, box, result: CheckResult, margin=1e-6) -> Report:
    return Report("<in-memory>", "", net.describe(), box, 2.0, margin, (result,), network=net)


def _certified(check: CheckName, upper: float, details=None) -> CheckResult:
    return CheckResult(check, Verdict.CERTIFIED, min(0.0, upper), upper, BoundMethod.BOXES, 0.0, None, "", details)


def test_smooth_tanh_net_box_tree_and_invariance():
    """A tanh net: sub-boxes with enclosures the checker recomputes (the certified verdicts are given here, so that
    the test does not wait for the engines; the checker decides whether the proofs hold)."""
    net = make_net(1, 2, (8,), activation=acts.tanh(), out_scale=0.4, bias_scale=0.3, out_bias_scale=0.0, skip=True,
                   skip_scale=0.2)
    box = make_box(2, 0.5)
    x = np.random.default_rng(0).uniform(-0.5, 0.5, (20000, 2))
    assert np.max(induced_norm(net.jacobian(x), 2.0)) < 0.7 and np.max(np.abs(net.forward(x))) < 0.45
    for check_name in (CheckName.CONTRACTION, CheckName.DISSIPATIVITY, CheckName.INVARIANCE):
        proof = build_proof(_report(net, box, _certified(check_name, 0.95 if check_name.value != "invariance"
                                                          else -0.01)))
        e = proof["checks"][0]
        assert e["status"] == "proven", e
        code, lines = check(proof)
        assert code == checker.EXIT_VALID, lines


def test_metric_claim_is_checked_in_the_metric():
    net = make_net(7, 2, (6, 6), out_scale=0.6)
    p = np.array([[2.0, 0.3], [0.3, 0.5]])
    details = SupNormDetails(metric=tuple(map(tuple, p)))
    report = _report(net, make_box(2), _certified(CheckName.DISSIPATIVITY, 0.9, details))
    x = np.random.default_rng(2).uniform(-1, 1, (20000, 2))
    t = np.linalg.cholesky(p).T
    sampled = np.max(induced_norm(t @ net.pwa(x)[0] @ np.linalg.inv(t), 2.0))
    proof = build_proof(report)
    if sampled < 0.999:
        assert proof["checks"][0]["status"] == "proven"
        assert check(proof)[0] == checker.EXIT_VALID
    claim = proof["checks"][0].get("claim")
    if claim is not None:  # the same tree cannot prove the sampled value minus a little
        bad = copy.deepcopy(proof)
        bad["checks"][0]["claim"]["bound"] = repr(sampled * 0.999)
        assert check(bad)[0] == checker.EXIT_INVALID


def test_zoo_svd_model_by_corollary_4(tmp_path):
    model, region = ZOO / "two_tank_svd.onnx", ZOO / "two_tank.box.yaml"
    report = verify(model, region, "dissipativity,weight_norm", FAST)
    proof = build_proof(report)
    assert [c["evidence"]["kind"] for c in proof["checks"]] == ["product", "product"]
    code, lines = check(proof, model, region)
    assert code == checker.EXIT_VALID, lines


@pytest.mark.slow
@pytest.mark.parametrize("model,region", [("contracting_residual_tanh.onnx", "contracting_residual_tanh.box.yaml"),
                                          ("cstr_svd.onnx", "cstr.box.yaml")])
def test_zoo_certified_models(model, region):
    report = verify(ZOO / model, ZOO / region, "dissipativity,contraction,weight_norm,invariance",
                    VerifyConfig(samples=5000))
    proof = build_proof(report)
    for result, e in zip(report.results, proof["checks"]):
        assert (e["status"] == "proven") == (result.verdict is Verdict.CERTIFIED) or result.check.value == \
            "weight_norm", e
    code, lines = check(proof, ZOO / model, ZOO / region)
    assert code in (checker.EXIT_VALID, checker.EXIT_PARTIAL) and not any(s.startswith("invalid") for s in lines)


# ============================================================================================ tampering
def _first(entries, kind):
    return next(k for k, e in enumerate(entries) if e[0] == kind)


def test_rejects_a_dropped_leaf(relu_case):
    proof = copy.deepcopy(relu_case[4])
    entries = entry(proof, "gain")["evidence"]["entries"]
    del entries[_first(entries, "b")]
    code, lines = check(proof)
    assert code == checker.EXIT_INVALID and "check gain" in lines[-1], lines


def test_rejects_a_perturbed_farkas_multiplier(relu_case):
    proof = relu_case[4]
    entries = entry(proof, "gain")["evidence"]["entries"]
    farkas = [k for k, e in enumerate(entries) if e[0] == "f"]
    assert farkas
    for how in ("negate", "drop"):
        bad = copy.deepcopy(proof)
        pairs = entry(bad, "gain")["evidence"]["entries"][farkas[0]][1]
        big = max(range(len(pairs)), key=lambda k: pairs[k][1])
        if how == "negate":
            pairs[big][1] = -pairs[big][1]
        else:
            pairs[big][1] = 0.0
        code, lines = check(bad)
        assert code == checker.EXIT_INVALID and "Farkas" in lines[-1], (how, lines)


def test_rejects_a_lowered_matrix_bound(relu_case):
    net, model, region, report, proof = relu_case
    for name in ("gain", "dissipativity"):
        bad = copy.deepcopy(proof)
        e = entry(bad, name)
        e["claim"]["bound"] = repr(report["gain"].lower * 0.999)
        code, lines = check(bad)
        assert code == checker.EXIT_INVALID and "exceeds the claim" in lines[-1], lines
    bad = copy.deepcopy(proof)
    entry(bad, "gain")["claim"]["lower"]["value"] = repr(report["gain"].upper * 1.001)
    assert check(bad)[0] == checker.EXIT_INVALID


def test_rejects_a_changed_weight(relu_case, tmp_path):
    net, model, region, report, proof = relu_case
    bad = copy.deepcopy(proof)
    w = bad["network"]["out_weight"]
    w[0][0] = repr(float(w[0][0]) * 10.0)
    code, lines = check(bad, model, region)
    assert code == checker.EXIT_INVALID, lines
    # a changed weight in the model file: the sha256 no longer matches
    changed = tmp_path / "changed.onnx"
    data = bytearray(Path(model).read_bytes())
    data[-20] ^= 0x01
    changed.write_bytes(bytes(data))
    code, lines = check(proof, changed, region)
    assert code == checker.EXIT_INVALID and "model" in lines[-1], lines


def test_rejects_a_changed_box(relu_case, tmp_path):
    net, model, region, report, proof = relu_case
    wider = write_box(tmp_path, Box(np.array([-1.0, -1.0]), np.array([1.0, 1.5])), "wider.yaml")
    code, lines = check(proof, model, wider)
    assert code == checker.EXIT_INVALID and "region" in lines[-1], lines
    bad = copy.deepcopy(proof)
    bad["region"]["upper"][1] = "0.5"  # the proof's own box edited: it no longer matches the region file
    code, lines = check(bad, model, region)
    assert code == checker.EXIT_INVALID and "region" in lines[-1], lines


def test_rejects_a_proof_for_another_model(relu_case, tmp_path, network_to_onnx, save_model):
    net, model, region, report, proof = relu_case
    other = save_model(network_to_onnx(make_net(1, 2, (8, 8))), "other.onnx")
    code, lines = check(proof, other, region)
    assert code == checker.EXIT_INVALID and "another model" in lines[-1], lines


def test_bad_input_exits_3(tmp_path, relu_case):
    net, model, region, report, proof = relu_case
    junk = tmp_path / "junk.json"
    junk.write_text("{not json")
    assert checker.main(["check", str(junk), str(model), str(region)]) == checker.EXIT_BAD_INPUT
    good = tmp_path / "p.json"
    good.write_bytes(proof_bytes(proof, good))
    assert checker.main(["check", str(good), str(tmp_path / "missing.onnx"), str(region)]) == checker.EXIT_BAD_INPUT
    weird = tmp_path / "weird.yaml"
    weird.write_text("states: {x0: [0, 1]}\n")
    assert checker.main(["check", str(good), str(model), str(weird)]) == checker.EXIT_BAD_INPUT
    assert checker.main(["check", str(good)]) == checker.EXIT_BAD_INPUT


def test_not_proven_checks_are_never_valid():
    net = make_net(3, 2, (6, 6))  # falsified dissipativity
    report = verify(net, make_box(2), "dissipativity", FAST)
    assert report["dissipativity"].verdict is Verdict.FALSIFIED
    code, lines = check(build_proof(report))
    assert code == checker.EXIT_PARTIAL and lines[0].startswith("dissipativity: not proven here")


def test_non_finite_numbers_in_a_claim_are_never_valid(relu_case):
    """json.loads and float() read NaN and Infinity: a bound of "inf" makes every claim trivially true, "nan" and
    "inf" in a claim are refused, not reported valid."""
    proof = relu_case[4]
    for name in ("contraction", "gain"):
        for text in ("inf", "Infinity", "nan", "-inf"):
            bad = copy.deepcopy(proof)
            entry(bad, name)["claim"]["bound"] = text
            code, lines = check(bad)
            assert code == checker.EXIT_INVALID, (name, text, lines)
            assert not any(line.startswith(f"{name}: valid") for line in lines), lines
    bad = copy.deepcopy(proof)
    entry(bad, "gain")["claim"]["lower"]["value"] = "-inf"
    assert check(bad)[0] == checker.EXIT_INVALID
    bad = copy.deepcopy(proof)  # a NaN coordinate passes "x < lo or x > hi" (every comparison is False)
    witness = entry(bad, "gain")["claim"]["lower"]["witness"]
    witness[0] = "nan"
    code, lines = check(bad)
    assert code == checker.EXIT_INVALID and any("outside the box" in line for line in lines), lines


def test_a_claim_on_fewer_columns_or_states_than_the_region_is_invalid(relu_case):
    """A contraction bound on the first column only, or a network that calls fewer coordinates states than the
    region, is not the check's claim: refused, not reported as 'sup ||J(x)|| <= bound'."""
    proof = relu_case[4]
    fewer = copy.deepcopy(proof)
    entry(fewer, "contraction")["claim"]["columns"] = 1
    code, lines = check(fewer)
    assert code == checker.EXIT_INVALID, lines
    relabelled = copy.deepcopy(proof)
    relabelled["network"]["n_states"] = 1
    code, lines = check(relabelled)
    assert code == checker.EXIT_INVALID, lines


def test_invariance_claim_with_a_positive_or_non_finite_bound_is_invalid():
    """The checker reports an invariance claim as 'f(X) inside X': a violation bound above 0 (or inf) does not
    show that, so such a claim is refused."""
    net = make_net(1, 2, (8,), activation=acts.tanh(), out_scale=0.4, bias_scale=0.3, out_bias_scale=0.0)
    proof = build_proof(_report(net, make_box(2, 0.5), _certified(CheckName.INVARIANCE, -0.01)))
    assert proof["checks"][0]["status"] == "proven"
    assert check(proof)[0] == checker.EXIT_VALID
    for text in ("0.5", "1e300", "inf", "nan"):
        bad = copy.deepcopy(proof)
        bad["checks"][0]["claim"]["bound"] = text
        code, lines = check(bad)
        assert code == checker.EXIT_INVALID, (text, lines)


# ============================================================================================ the checker itself
def test_region_reader_agrees_with_certify(tmp_path):
    from certify.importers.region_file import load_region

    texts = ["states:\n  a: [0.0, 1.0]   # c\n  'b c': [-2, 3.5e-1]\ninputs:\n  u: [0, 0.5]\nnorm: inf\n",
             "lower: [0, -1.5]\nupper: [1, 2e0]\nmargin: 1.0e-6\n",
             "---\nlower:\n- 0\n- 1\nupper:\n  - 2\n  - 3\nmetric: [[1, 0], [0, 1]]\n"]
    box_lines = "lower: [0]\nupper: [1]\n"
    texts += [box_lines + f"norm: {v}\n" for v in ("1", "2", "inf", ".inf", "+.inf", ".INF", "'inf'", '"2"', "L1",
                                                      "l2", "Linf", "Infinity", "+inf", "1.0", "2.0", "2.00", "1e0")]
    texts += [box_lines + f"margin: {v}\n" for v in ("0", "0.05", ".5", "5e-2", "0.999", "1.0e-6  # level")]
    texts += [box_lines + "norm:\n  inf\nmargin:\n  0.25\n"]
    for k, text in enumerate(texts):
        p = tmp_path / f"r{k}.yaml"
        p.write_text(text)
        region = load_region(p)
        got = checker.read_region(p)
        assert got.lower == list(region.box.lower) and got.upper == list(region.box.upper), text
        assert got.n_states == (region.box.n_states if text.startswith("states") else None), text
        assert (got.norm, got.margin) == (region.norm, region.margin), text
    from certify.ir.numerics import parse_norm  # the names the checker takes are the ones certify takes
    assert all(parse_norm(word) == p for word, p in checker._NORM_WORDS.items())


@pytest.mark.parametrize("text", [
    "states:\n  a: [0, 1]\n  a: [0, 2]\n",  # a coordinate twice
    "states:\n  a: [0, 1]\ninputs:\n  a: [0, 1]\n",  # a state and an input of one name
    "states:\n  a: [0, 1]\nlower: [0]\nupper: [1]\n",  # two boxes
    "states:\n  a: [0, 1]\n---\nstates:\n  b: [0, 1]\n",  # two documents
    "lower: [0]\nupper: [1]\n...\nnorm: 1\n",  # content after the document's end
    "states:\n  a: [1, 0]\n",  # an empty box
    "states:\n  a: [0.30000000000000001, 0.3]\n",  # empty as written, not once rounded outward
    "lower: [0.30000000000000001]\nupper: [0.3]\n",
    "lower:\n  - 0.30000000000000001\nupper:\n  - 0.3\n",
    "lower: [0, 0]\nupper: [1]\n",  # a bound missing
])
def test_region_reader_refuses_what_certify_refuses(tmp_path, text):
    """The checker read these (the last coordinate twice, the states over lower/upper, documents merged, an
    empty box that makes every claim vacuous) where certify refuses them: a proof was 'valid' for a region file
    no run of certify could have been given."""
    from certify.errors import RegionError
    from certify.importers.region_file import load_region

    p = tmp_path / "r.yaml"
    p.write_text(text)
    with pytest.raises(RegionError):
        load_region(p)
    with pytest.raises(checker.BadInput):
        checker.read_region(p)


def test_exact_positive_definiteness():
    from certify.proof.rounding import gram_ints, positive_definite, sigma_certified, spectral_upper

    rng = np.random.default_rng(0)
    for _ in range(20):
        c = rng.normal(size=(3, 5))
        s = float(np.linalg.svd(c, compute_uv=False)[0])
        gram = gram_ints(c)
        assert sigma_certified(gram, s * (1 + 1e-12)) and not sigma_certified(gram, s * (1 - 1e-12))
        assert s <= spectral_upper(c) <= s * (1 + 1e-9)
    assert positive_definite([[2, 1], [1, 2]]) and not positive_definite([[1, 2], [2, 1]])


def test_checker_imports_only_numpy_and_the_standard_library(tmp_path, relu_case):
    net, model, region, report, proof = relu_case
    path = tmp_path / "p.json"
    path.write_bytes(proof_bytes(proof, path))
    forbidden = ["torch", "scipy", "cvxpy", "highspy", "pulp", "onnx", "onnxruntime", "certify.engines",
                 "certify.bounds", "certify.checks", "certify.ir", "certify.solvers", "certify.importers"]
    code = ("import sys\nfrom certify.proof import checker\n"
            f"rc = checker.main(['check', {str(path)!r}, {str(model)!r}, {str(region)!r}, '--quiet'])\n"
            f"print('RC', rc, [m for m in {forbidden!r} if m in sys.modules])\n")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=tmp_path)
    assert done.stdout.strip().splitlines()[-1] == "RC 2 []", done.stdout + done.stderr


# ============================================================================================ property test
@settings(max_examples=12, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(seed=st.integers(0, 10_000), widths=st.sampled_from([(4,), (5, 4), (4, 4, 3)]),
       norm=st.sampled_from([1.0, 2.0, math.inf]), half=st.sampled_from([0.5, 1.0]))
@example(seed=513, widths=(5, 4), norm=1.0, half=0.5)  # gain 0: the claim needs absolute room for the pads
def test_property_gain_proofs_are_sound(seed, widths, norm, half):
    """On random ReLU nets: the gain proof is valid, its claim is above every sampled value, and the same proof
    with its claim lowered below a sampled value is refused."""
    net = make_net(seed, 2, widths)
    box = make_box(2, half)
    report = verify(net, box, "gain", VerifyConfig(samples=500, norm=norm, timeout=30))
    if report["gain"].verdict is not Verdict.CERTIFIED:
        return
    proof = build_proof(report, ProofOptions(timeout=30.0))
    e = proof["checks"][0]
    assert e["status"] == "proven", e
    assert check(proof)[0] == checker.EXIT_VALID
    x = np.random.default_rng(seed).uniform(-half, half, (3000, 2))
    sampled = float(np.max(induced_norm(net.pwa(x)[0], norm)))
    assert sampled <= float(e["claim"]["bound"])
    if sampled > 1e-6:
        bad = copy.deepcopy(proof)
        bad["checks"][0]["claim"]["bound"] = repr(sampled * (1 - 1e-6))
        bad["checks"][0]["claim"]["lower"] = None
        assert check(bad)[0] == checker.EXIT_INVALID


# ============================================================================================ more tampering
def _subtree_end(entries, k, arity=2):
    """The index after the subtree that starts at entry k (ReLU splits and box halvings have two children)."""
    if entries[k][0] in ("b", "f"):
        return k + 1
    j = k + 1
    for _ in range(arity):
        j = _subtree_end(entries, j, arity)
    return j


def test_rejects_a_region_missing_from_the_cover(relu_case):
    """The subtree of one piece of a split removed: that piece of the box is covered by no leaf."""
    proof = copy.deepcopy(relu_case[4])
    entries = entry(proof, "dissipativity")["evidence"]["entries"]
    split = _first(entries, "n")
    second = _subtree_end(entries, split + 1)
    del entries[second:_subtree_end(entries, second)]
    code, lines = check(proof)
    assert code == checker.EXIT_INVALID and "have no entry" in lines[-1], lines


def test_rejects_a_removed_split(relu_case):
    proof = copy.deepcopy(relu_case[4])
    entries = entry(proof, "contraction")["evidence"]["entries"]
    del entries[_first(entries, "n")]
    code, lines = check(proof)
    assert code == checker.EXIT_INVALID and lines[-1].startswith("invalid: check contraction"), lines


def test_rejects_a_nonempty_region_claimed_empty(relu_case):
    """A bounded leaf (a region with points in it) replaced by another leaf's Farkas multipliers."""
    proof = copy.deepcopy(relu_case[4])
    entries = entry(proof, "gain")["evidence"]["entries"]
    leaf, farkas = _first(entries, "b"), _first(entries, "f")
    entries[leaf] = copy.deepcopy(entries[farkas])
    code, lines = check(proof)
    assert code == checker.EXIT_INVALID and "do not prove the node empty" in lines[-1], lines


def test_reimport_binds_the_weights_to_the_model(relu_case, tmp_path):
    """A weight changed in its last bit may keep every claim true (the claims are re-proved about the proof's
    weights); --reimport compares them with the model's IR and names the entry."""
    net, model, region, report, proof = relu_case
    good = tmp_path / "good.json"
    good.write_bytes(proof_bytes(proof, good))
    assert checker.main(["check", str(good), str(model), str(region), "--reimport", "--quiet"]) == \
        checker.EXIT_PARTIAL
    bad = copy.deepcopy(proof)
    w = bad["network"]["layers"][1]["weight"]
    w[2][3] = repr(float(np.nextafter(float(w[2][3]), np.inf)))
    lines: list[str] = []
    code = checker.check_proof(bad, model, region, out=lines.append, reimport=True)
    assert code == checker.EXIT_INVALID and "layers[1].weight[2][3]" in lines[-1], lines


def test_smooth_box_tree_missing_half_is_rejected():
    net = make_net(1, 2, (8,), activation=acts.tanh(), weight_scale=2.0, out_scale=0.4, bias_scale=0.3,
                   out_bias_scale=0.0)  # sup ||J|| ~ 0.69 on the box, the Corollary 4 product above 1
    proof = build_proof(_report(net, make_box(2, 0.5), _certified(CheckName.CONTRACTION, 0.9)))
    assert proof["checks"][0]["status"] == "proven" and check(proof)[0] == checker.EXIT_VALID
    entries = proof["checks"][0]["evidence"]["entries"]
    split = _first(entries, "a")
    second = _subtree_end(entries, split + 1)
    del entries[second:_subtree_end(entries, second)]
    code, lines = check(proof)
    assert code == checker.EXIT_INVALID and "have no entry" in lines[-1], lines


_BLOCKER = """
import importlib.abc, sys
BLOCKED = {blocked!r}
class Block(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        if any(name == b or name.startswith(b + '.') for b in BLOCKED):
            raise ImportError('blocked for this test: ' + name)
        return None
sys.meta_path.insert(0, Block())
from certify.proof import checker
rc = checker.main(['check', {proof!r}, {model!r}, {region!r}])
print('RC', rc)
"""


def test_checker_runs_with_torch_solvers_onnx_and_the_engines_blocked(tmp_path, relu_case):
    net, model, region, report, proof = relu_case
    path = tmp_path / "p.json.gz"
    path.write_bytes(proof_bytes(proof, path))
    blocked = ["torch", "scipy", "cvxpy", "highspy", "pulp", "scs", "clarabel", "onnx", "onnxruntime", "yaml",
               "certify.engines", "certify.bounds", "certify.checks", "certify.ir", "certify.solvers",
               "certify.importers", "certify.api", "certify.report", "certify.proof.producer", "certify.proof.bind"]
    code = _BLOCKER.format(blocked=blocked, proof=str(path), model=str(model), region=str(region))
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=tmp_path)
    out = done.stdout + done.stderr
    assert done.stdout.strip().splitlines()[-1] == "RC 2", out
    for name in ("dissipativity", "contraction", "gain"):
        assert f"{name}: valid:" in done.stdout, out


def test_bad_proof_files_exit_3_with_one_line(tmp_path, relu_case, capsys):
    net, model, region, report, proof = relu_case
    cases = {"missing.json": None, "empty.json": b"", "list.json": b"[1, 2]", "other.json": b'{"format": "x/1"}',
             "broken.json.gz": b"\x1f\x8b\x08\x00broken", "text.json": "not json \u00e9".encode("latin-1")}
    for name, data in cases.items():
        path = tmp_path / name
        if data is not None:
            path.write_bytes(data)
        capsys.readouterr()
        assert checker.main(["check", str(path), str(model), str(region)]) == checker.EXIT_BAD_INPUT, name
        err = capsys.readouterr().err.strip().splitlines()
        assert len(err) == 1 and err[0].startswith("certify-proof: error:") and name in err[0], (name, err)
    assert checker.main(["check", str(tmp_path), str(model), str(region)]) == checker.EXIT_BAD_INPUT


_JUNK = st.one_of(st.none(), st.booleans(), st.integers(-3, 3), st.sampled_from(["", "x", "nan", "inf", "-1", "1e400",
                  "0.5"]), st.lists(st.integers(0, 2), max_size=3), st.just({}), st.just([["b"]]))


def _paths(obj, prefix=()):
    yield prefix
    items = obj.items() if isinstance(obj, dict) else enumerate(obj) if isinstance(obj, list) else ()
    for key, value in items:
        yield from _paths(value, prefix + (key,))


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow,
                                                                 HealthCheck.function_scoped_fixture])
@given(data=st.data())
def test_malformed_proofs_are_refused_not_crashed(relu_case, data):
    """Any entry of a proof replaced by junk or deleted: the checker answers with an exit code and a line, never an
    exception (an edit may still leave a true claim proved: a dropped lower bound, a label, a timing)."""
    proof = relu_case[4]
    paths = [p for p in _paths(proof) if p]
    path = data.draw(st.sampled_from(paths))
    bad = copy.deepcopy(proof)
    parent = bad
    for key in path[:-1]:
        parent = parent[key]
    if data.draw(st.booleans()):
        del parent[path[-1]]
    else:
        parent[path[-1]] = data.draw(_JUNK)
    lines: list[str] = []
    code = checker.check_proof(bad, out=lines.append)
    assert code in (checker.EXIT_VALID, checker.EXIT_INVALID, checker.EXIT_PARTIAL, checker.EXIT_BAD_INPUT)
    assert lines and lines[-1].startswith(("result:", "invalid:", "certify-proof: error:")), lines


_PROVED = ("dissipativity", "contraction", "gain", "weight_norm", "invariance", "equilibria", "stability")


@settings(max_examples=8, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(seed=st.integers(0, 10_000), widths=st.sampled_from([(4,), (5, 4), (4, 3, 3)]),
       activation=st.sampled_from(["relu", "leaky_relu"]), out_scale=st.sampled_from([0.3, 0.6, 0.9]))
def test_property_every_certified_result_has_a_valid_proof(seed, widths, activation, out_scale):
    """On random piecewise-linear nets: every check certify certifies (among those the checker re-proves) gets a
    proof, and the checker accepts it; checks that are not certified are listed as not proven."""
    act = acts.relu() if activation == "relu" else acts.leaky_relu(0.2)
    net = make_net(seed, 2, widths, activation=act, out_scale=out_scale, out_bias_scale=0.1)
    report = verify(net, make_box(2), ",".join(_PROVED), VerifyConfig(samples=500, timeout=30))
    proof = build_proof(report, ProofOptions(timeout=30.0))
    for result, e in zip(report.results, proof["checks"]):
        assert e["check"] == result.check.value
        if result.verdict is not Verdict.CERTIFIED:
            assert e["status"] == "not_proven"
        elif result.check.value != "weight_norm" or e["status"] == "proven":
            assert e["status"] == "proven", e  # (Corollary 4 only when the checker's own product is below 1)
    code, lines = check(proof)
    assert code in (checker.EXIT_VALID, checker.EXIT_PARTIAL), lines
    assert code == checker.EXIT_VALID or any(e["status"] == "not_proven" for e in proof["checks"])
    assert not any(line.startswith("invalid") for line in lines), lines


def test_equilibria_proof_lists_every_equilibrium_and_tampering_is_caught():
    model, region = EXAMPLES / "tank_relu.onnx", EXAMPLES / "box.yaml"
    report = verify(model, region, "equilibria", FAST)
    assert report["equilibria"].verdict is Verdict.CERTIFIED
    proof = build_proof(report)
    e = entry(proof, "equilibria")
    assert e["status"] == "proven", e
    points = [[float(v) for v in p] for p in e["claim"]["points"]]
    assert len(points) == len(report["equilibria"].details.points) >= 1
    for p in points:  # each listed point is a fixed point of the model
        x = np.array(p)
        assert np.max(np.abs(report.network.forward(x[None, :])[0] - x)) < 1e-9
    code, lines = check(proof, model, region)
    assert code == checker.EXIT_VALID, lines
    dropped = copy.deepcopy(proof)
    entry(dropped, "equilibria")["claim"]["points"].pop(0)
    code, lines = check(dropped)
    assert code == checker.EXIT_INVALID and "which is not listed" in lines[-1], lines
    invented = copy.deepcopy(proof)
    entry(invented, "equilibria")["claim"]["points"].append(["0.25", "0.75"])
    code, lines = check(invented)
    assert code == checker.EXIT_INVALID and "listed point 1 is not within" in lines[-1], lines
    tight = copy.deepcopy(proof)
    entry(tight, "equilibria")["claim"]["points"][0][0] = repr(points[0][0] + 1e-6)
    assert check(tight)[0] == checker.EXIT_INVALID
    pruned = copy.deepcopy(proof)
    entries = entry(pruned, "equilibria")["evidence"]["entries"]
    split = _first(entries, "n")
    entries[split:_subtree_end(entries, split)] = [["b"]]  # a whole subtree replaced by one unsettled leaf
    code, lines = check(pruned)
    assert code == checker.EXIT_INVALID and "not a single region" in lines[-1], lines


def test_a_metric_the_checker_refuses_gives_no_proof_not_an_exception():
    # the producer called the checker's exact metric test unguarded: a report in a singular metric raised Invalid
    net = make_net(7, 2, (6, 6), out_scale=0.6)
    details = SupNormDetails(metric=((1.0, 1.0), (1.0, 1.0)))
    proof = build_proof(_report(net, make_box(2), _certified(CheckName.DISSIPATIVITY, 0.9, details)))
    entry = proof["checks"][0]
    assert entry["status"] != "proven" and "metric" in entry["reason"], entry


# ============================================================================================ stability
def _stability_proof(net, box, config):
    report = verify(net, box, "stability", config)
    assert report["stability"].verdict is Verdict.CERTIFIED, report["stability"].reason
    return report, build_proof(report)


@pytest.fixture(scope="module")
def ball_case():
    """The loop that contracts in the 1-norm only (tests/test_stability.py), certified with a 1-norm ball."""
    from test_stability import _one_norm_only_loop

    net, box = _one_norm_only_loop(), Box(-np.ones(4), np.ones(4))
    report, proof = _stability_proof(net, box, VerifyConfig(norm=1.0, timeout=60))
    return net, box, report, proof


def test_stability_proofs_of_the_box_a_ball_and_a_metric_ellipsoid_are_valid(ball_case, tmp_path):
    tanh = Network((Layer(np.eye(2), np.zeros(2), acts.tanh()),), 0.5 * np.eye(2), np.zeros(2))
    _, boxed = _stability_proof(tanh, Box([-1.0, -1.0], [1.0, 1.0]), VerifyConfig(timeout=60))
    dcdc, metric = _stability_proof(ZOO / "dcdc.system.yaml", ZOO / "dcdc.box.yaml",
                                    VerifyConfig(metric="auto", timeout=60))
    for proof, start_set in ((boxed, "box"), (ball_case[3], "ball"), (metric, "ball")):
        e = entry(proof, "stability")
        assert e["status"] == "proven" and e["claim"]["start_set"] == start_set, e
        code, lines = check(proof)
        assert code == checker.EXIT_VALID, lines
    assert entry(metric, "stability")["claim"]["metric"] is not None
    assert "||x - c||_P" in check(metric)[1][0] and "||x - c||_1" in check(ball_case[3])[1][0]
    # against the files: a weighted claim needs a region file that asks for a metric (`auto`: any); a 1-norm claim
    # is refused by a 2-norm file
    code, lines = check(metric, ZOO / "dcdc.system.yaml", ZOO / "dcdc.box.yaml")
    assert code == checker.EXIT_INVALID and "asks for no metric" in lines[-1], lines
    auto = tmp_path / "dcdc_auto.box.yaml"
    auto.write_text((ZOO / "dcdc.box.yaml").read_text() + "metric: auto\n")
    code, lines = check(metric, ZOO / "dcdc.system.yaml", auto)
    assert code == checker.EXIT_VALID, lines
    region = write_box(tmp_path, ball_case[1])
    code, lines = check(ball_case[3], None, region)
    assert code == checker.EXIT_INVALID and "norm" in lines[-1], lines
    region.write_text(region.read_text().replace("norm: 2", "norm: 1"))
    assert check(ball_case[3], None, region)[0] == checker.EXIT_VALID
    region.write_text(region.read_text() + "margin: 0.5\n")  # the claimed rate 1 - 1e-6 is not <= 1 - 0.5
    code, lines = check(ball_case[3], None, region)
    assert code == checker.EXIT_INVALID and "margin" in lines[-1], lines


def test_a_valid_ball_claim_holds_its_simulated_trajectories(ball_case):
    net, box, report, proof = ball_case
    claim = entry(proof, "stability")["claim"]
    c, r, rate = np.array([float(v) for v in claim["center"]]), float(claim["radius"]), float(claim["rate"])
    y = np.random.default_rng(3).normal(size=(2000, 4))
    x = c + r * y / np.linalg.norm(y, ord=1, axis=1, keepdims=True)
    for _ in range(20):
        nxt = net.forward(x)
        assert np.all(np.linalg.norm(nxt - c, ord=1, axis=1) <= rate * np.linalg.norm(x - c, ord=1, axis=1)
                      + float(claim["residual"]))
        x = nxt


@pytest.mark.parametrize("edit, words", [
    (lambda c: c.update(radius=repr(1.01)), "leaves the box"),
    (lambda c: c.update(center=[repr(0.05)] + c["center"][1:], radius="0.5"), "below the checker's bound"),
    (lambda c: c.update(residual=repr(0.0)), "below the checker's bound"),
    (lambda c: c.update(rate="1.0"), "in [0, 1)"),
    (lambda c: c.update(rate="0.5"), "exceeds the claim"),  # sup ||J||_1 = 0.9
    (lambda c: c.update(residual=repr(0.5)), "not proven invariant"),
    (lambda c: c.update(start_set="box"), "invariance evidence must be a tree"),
    (lambda c: c.update(norm="2"), "exceeds the claim"),  # ||J||_2 = 1.8
])
def test_a_tampered_stability_claim_is_invalid(ball_case, edit, words):
    bad = copy.deepcopy(ball_case[3])
    claim = entry(bad, "stability")["claim"]
    assert float(claim["residual"]) > 0  # the float64 equilibrium is not exact: a residual of 0 is too small
    edit(claim)
    code, lines = check(bad)
    assert code == checker.EXIT_INVALID and words in lines[-1], lines


@settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(seed=st.integers(0, 10_000), norm=st.sampled_from([1.0, 2.0, math.inf]), scale=st.floats(0.4, 1.0),
       shift=st.floats(-0.5, 0.5))
@example(seed=5118, norm=2.0, scale=0.97, shift=-0.19)  # start sets other than the box (drawn ones are mostly boxes)
@example(seed=1244, norm=1.0, scale=0.48, shift=-0.1)
@example(seed=6413, norm=math.inf, scale=0.56, shift=0.34)
def test_property_certified_stability_has_a_valid_proof_whose_ball_keeps_its_trajectories(seed, norm, scale, shift):
    """Random ReLU loops, every norm, boxes off the origin (so that balls come up as well as boxes): a certified
    stability result gets a proof the checker accepts, and a ball it accepts keeps f's sampled boundary points
    inside it, in the claim's norm."""
    net = make_net(seed, 2, (6,), weight_scale=scale, bias_scale=0.3)
    box = Box(np.array([-1.0, -1.0]) + shift, np.array([1.0, 1.0]) + shift)
    report = verify(net, box, "stability", VerifyConfig(norm=norm, timeout=20.0, samples=2000))
    proof = build_proof(report, ProofOptions(timeout=30.0))
    e = entry(proof, "stability")
    if report["stability"].verdict is not Verdict.CERTIFIED:
        assert e["status"] == "not_proven"
        return
    assert e["status"] == "proven", e
    code, lines = check(proof)
    assert code == checker.EXIT_VALID, lines
    claim = e["claim"]
    assert claim["norm"] == ("inf" if math.isinf(norm) else str(int(norm))) and claim["metric"] is None
    if claim["start_set"] == "ball":  # no metric: the plain norm's ball (P = I in the 2-norm)
        c, r = np.array([float(v) for v in claim["center"]]), float(claim["radius"])
        y = np.random.default_rng(seed).normal(size=(1000, 2))
        x = c + r * y / np.linalg.norm(y, ord=norm, axis=1, keepdims=True)
        assert np.all(np.linalg.norm(net.forward(x) - c, ord=norm, axis=1) <= r)


# ============================================================================================ output bounds (VNNLIB)
@pytest.fixture(scope="module")
def vnnlib_case(tmp_path_factory):
    """A 2-6-6-3 ReLU net as ONNX, a VNNLIB property it satisfies (unsafe: Y_0 >= a or Y_2 <= b, a and b beyond its
    sampled range), the report and its proof."""
    from onnx_builders import network_to_onnx, save
    from test_vnnlib import BOX_2, outputs_decl

    tmp = tmp_path_factory.mktemp("vnnlib_proof")
    net = make_net(3, 2, (6, 6), n_out=3)
    model = save(network_to_onnx(net), tmp, "net.onnx")
    f = net.forward(np.random.default_rng(0).uniform(-1, 1, (20000, 2)))
    a, b = f[:, 0].max() + 0.3, f[:, 2].min() - 0.3
    prop = tmp / "prop.vnnlib"
    prop.write_text(BOX_2 + outputs_decl(3) + f"(assert (or (and (>= Y_0 {a:.6f})) (and (<= Y_2 {b:.6f}))))\n")
    report = verify(model, prop, "output_bounds", FAST)
    assert report["output_bounds"].verdict is Verdict.CERTIFIED, report["output_bounds"].reason
    return net, model, prop, report, build_proof(report), (a, b), f


def test_an_output_bounds_proof_is_valid_against_its_vnnlib_file(vnnlib_case, tmp_path, capsys):
    net, model, prop, report, proof, (a, b), f = vnnlib_case
    e = entry(proof, "output_bounds")
    assert e["status"] == "proven" and e["claim"]["kind"] == "output_bounds", e
    claim = e["claim"]
    assert claim["lower"][:2] == [None, None] and claim["upper"][1:] == [None, None]
    assert float(claim["lower"][2]) > b - 1e-6 and float(claim["upper"][0]) < a + 1e-6  # on the safe side
    code, lines = check(proof, model, prop)
    assert code == checker.EXIT_VALID, lines
    assert "within its 2 bound(s)" in lines[-2]
    # the command, end to end
    path = tmp_path / "p.json.gz"
    assert cli.run([str(model), "--region", str(prop), "--proof", str(path)]) == 0
    capsys.readouterr()
    assert checker.main(["check", str(path), str(model), str(prop)]) == checker.EXIT_VALID


def test_an_output_bounds_proof_is_held_to_the_file(vnnlib_case, tmp_path):
    net, model, prop, report, proof, (a, b), f = vnnlib_case
    text = prop.read_text()
    stricter = tmp_path / "stricter.vnnlib"  # a file asking more than the proof claims
    stricter.write_text(text.replace(f"{a:.6f}", f"{a - 0.1:.6f}"))
    code, lines = check(proof, model, stricter)
    assert code == checker.EXIT_INVALID and "asks Y_0 <" in lines[-1], lines
    other = tmp_path / "other.vnnlib"  # a side the proof does not bound at all
    other.write_text(text.replace("(and (<= Y_2", "(and (<= Y_1"))
    code, lines = check(proof, model, other)
    assert code == checker.EXIT_INVALID and "asks Y_1 >" in lines[-1], lines
    code, lines = check(proof, model, write_box(tmp_path, make_box(2)))
    assert code == checker.EXIT_INVALID and "states no output property" in lines[-1], lines
    looser = tmp_path / "looser.vnnlib"  # asking less: the proof proves more than that
    looser.write_text(text.replace(f"{a:.6f}", f"{a + 0.1:.6f}"))
    assert check(proof, model, looser)[0] == checker.EXIT_VALID


def test_an_output_bound_claimed_inside_the_range_is_invalid(vnnlib_case):
    net, model, prop, report, proof, (a, b), f = vnnlib_case
    bad = copy.deepcopy(proof)
    entry(bad, "output_bounds")["claim"]["upper"][0] = repr(float(f[:, 0].max()) - 1e-3)  # a sampled value exceeds
    code, lines = check(bad)
    assert code == checker.EXIT_INVALID and "not below its bound" in lines[-1], lines
    bad = copy.deepcopy(proof)
    entry(bad, "output_bounds")["claim"]["lower"] = [None, None, None]
    entry(bad, "output_bounds")["claim"]["upper"] = [None, None, None]
    assert check(bad)[0] == checker.EXIT_INVALID


def _vnnlib_cases():
    from test_vnnlib import BAD, BOX_2, outputs_decl

    good = [BOX_2 + outputs_decl(2) + t for t in (
        "(assert (>= Y_1 3.5))", "(assert (<= Y_0 (- 2)))", "(assert (<= 4 Y_0))",
        "(assert (or (and (>= Y_0 0.30000000000000001)) (and (<= Y_1 -1e-400)) (>= Y_0 0.2)))",
        "(assert (and (<= X_0 0.5) (>= X_1 -0.1)))\n(assert (or (>= Y_1 1e300) (<= Y_1 -7)))")]
    good.append("(declare-const X_0 Real)\n(assert (>= X_0 0.1))\n(assert (<= X_0 0.30000000000000001))\n"
                "(assert (>= X_0 0.2))\n(set-info :status unknown)\n")
    return good, [BOX_2 + outputs_decl(2) + tail for tail, _ in BAD]


def test_the_checker_reads_vnnlib_files_as_certify_does(tmp_path):
    """The box of every file certify reads is the checker's, float for float; each output bound certify takes (the
    float strictly on the safe side of the constant) is the checker's exact constant rounded that way; every file
    certify refuses, the checker refuses."""
    from decimal import Decimal

    from certify.errors import RegionError
    from certify.importers.vnnlib import parse_vnnlib

    good, bad = _vnnlib_cases()
    for k, text in enumerate(good):
        path = tmp_path / f"g{k}.vnnlib"
        path.write_text(text)
        box, prop = parse_vnnlib(text, str(path))
        mine = checker.read_vnnlib(path)
        assert mine.lower == list(box.lower) and mine.upper == list(box.upper), text
        assert (prop is None) == (mine.outputs is None), text
        if prop is None:
            continue
        above, below = mine.outputs
        for i in range(prop.dim):
            for theirs, exact, side in ((prop.lower[i], above[i], 1), (prop.upper[i], below[i], -1)):
                if exact is None:
                    assert math.isinf(theirs), text
                    continue
                # certify's float lies strictly on the safe side of the constant, and is the nearest such float
                assert (Decimal(theirs) - exact) * side > 0, (text, theirs, exact)
                assert (Decimal(math.nextafter(theirs, -math.inf * side)) - exact) * side <= 0, (text, theirs)
    for k, text in enumerate(bad):
        path = tmp_path / f"b{k}.vnnlib"
        path.write_text(text)
        with pytest.raises(RegionError):
            parse_vnnlib(text, str(path))
        with pytest.raises(checker.BadInput):
            checker.read_vnnlib(path)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow,
                                                                 HealthCheck.function_scoped_fixture])
@given(data=st.data())
def test_edited_output_bounds_proofs_are_refused_or_still_true(vnnlib_case, data):
    """Any entry of an output_bounds proof replaced by junk, scaled or deleted: the checker answers with a line,
    never an exception; a claim it still calls valid (against the VNNLIB file) holds at the sampled inputs."""
    net, model, prop, report, proof, (a, b), f = vnnlib_case
    paths = [p for p in _paths(proof) if p and p[0] == "checks"]
    path = data.draw(st.sampled_from(paths))
    bad = copy.deepcopy(proof)
    parent = bad
    for key in path[:-1]:
        parent = parent[key]
    how = data.draw(st.sampled_from(["delete", "junk", "scale"]))
    value = parent[path[-1]]
    if how == "delete":
        del parent[path[-1]]
    elif how == "scale" and isinstance(value, str) and re.fullmatch(r"-?[0-9.]+(e-?[0-9]+)?", value):
        parent[path[-1]] = repr(float(value) * (1 + data.draw(st.sampled_from([-1e-3, -1e-9, 1e-9, 1e-3]))))
    else:
        parent[path[-1]] = data.draw(_JUNK)
    lines: list[str] = []
    code = checker.check_proof(bad, model, prop, out=lines.append)
    assert code in (checker.EXIT_VALID, checker.EXIT_INVALID, checker.EXIT_PARTIAL, checker.EXIT_BAD_INPUT)
    assert lines and lines[-1].startswith(("result:", "invalid:", "certify-proof: error:")), lines
    assert not any(checker.UNEXPECTED in s for s in lines), lines
    if code == checker.EXIT_VALID:
        claim = entry(bad, "output_bounds")["claim"]
        for i in range(3):
            if claim["upper"][i] is not None:
                assert f[:, i].max() < float(claim["upper"][i]), claim
            if claim["lower"][i] is not None:
                assert f[:, i].min() > float(claim["lower"][i]), claim


def test_output_bounds_with_extreme_exponents_are_compared_exactly_not_expanded(vnnlib_case, tmp_path):
    """Constants such as 1e-999999999 are compared as exact decimals: as Fractions they would need a billion-digit
    integer (the checker never answered). Here a valid claim tightened to them stays valid (f_0 < a and f_2 > b
    leave room) or is refused by its leaves, and a file asking for them is read."""
    from test_vnnlib import BOX_2, outputs_decl

    net, model, prop, report, proof, (a, b), f = vnnlib_case
    bad = copy.deepcopy(proof)
    claim = entry(bad, "output_bounds")["claim"]
    claim["lower"][1], claim["upper"][1] = "-1e999999999", "1e999999999"  # Y_1 bounded on both sides, loosely
    assert check(bad, model, prop)[0] == checker.EXIT_VALID
    claim["upper"][1] = "1e-999999999"  # Y_1 < 1e-999999999: not what the net does
    code, lines = check(bad)
    assert code == (checker.EXIT_VALID if f[:, 1].max() < 0 else checker.EXIT_INVALID), lines
    tiny = tmp_path / "tiny.vnnlib"
    tiny.write_text(BOX_2 + outputs_decl(3) + "(assert (>= Y_0 1e-999999999))\n")
    assert checker.read_vnnlib(tiny).outputs[1][0] == Decimal("1e-999999999")


def test_an_output_bound_beyond_what_a_decimal_holds_is_invalid_not_a_checker_error(vnnlib_case):
    """A constant whose exponent Decimal cannot hold (1e99999999999999999999999) is refused as out of range; before,
    the Decimal error reached the checker's last guard ('please report')."""
    bad = copy.deepcopy(vnnlib_case[4])
    entry(bad, "output_bounds")["claim"]["upper"][1] = "1e99999999999999999999999"
    code, lines = check(bad)
    assert code == checker.EXIT_INVALID and "out of range" in lines[-1] and checker.UNEXPECTED not in lines[-1]


def test_a_ball_whose_centre_the_checker_cannot_enclose_gives_no_proof_not_an_exception():
    """A certified ball result on a net whose enclosure of f at the centre overflows: the producer lists the check
    as not proven (before, the checker's Invalid escaped build_proof)."""
    from certify.certificate import StabilityDetails

    big = Network((Layer(1e200 * np.eye(2), np.zeros(2), acts.relu()),), 1e200 * np.eye(2), np.zeros(2))
    details = StabilityDetails(equilibria=((0.5, 0.5),), rate=0.5, contraction="certified", start_set="ellipsoid",
                               radius=0.1, metric=((1.0, 0.0), (0.0, 1.0)))
    proof = build_proof(_report(big, make_box(2), _certified(CheckName.STABILITY, 0.5, details)))
    e = entry(proof, "stability")
    assert e["status"] == "not_proven" and "not finite" in e["reason"], e


def _free_output_overflow_proof() -> dict:
    """A proof of output bounds on a net whose second output (left free) has an enclosure that overflows to inf."""
    from certify.ir.output_property import OutputProperty

    net = Network((Layer(np.eye(2), np.zeros(2), acts.relu()),), np.array([[0.5, 0.0], [1e308, 1e308]]),
                  np.zeros(2))
    outputs = OutputProperty(np.array([-1.0, -math.inf]), np.array([1.0, math.inf]), ("Y_0", "Y_1"), ("", ""),
                             ("", ""))
    result = CheckResult(CheckName.OUTPUT_BOUNDS, Verdict.CERTIFIED, -0.5, -0.5, BoundMethod.INTERVAL, 0.0)
    report = Report("<in-memory>", "", net.describe(), make_box(2), 2.0, 1e-6, (result,), network=net,
                    outputs=outputs)
    return build_proof(report, ProofOptions(max_nodes=2000))  # one leaf suffices


def test_a_free_output_whose_enclosure_overflows_does_not_stop_an_output_bounds_proof():
    """Only the bounded sides decide a leaf (as in the checker): an output left free whose enclosure is infinite
    does not make every leaf's violation NaN (before, the proof search never closed)."""
    proof = _free_output_overflow_proof()
    e = entry(proof, "output_bounds")
    assert e["status"] == "proven", e
    assert check(proof)[0] == checker.EXIT_VALID


def test_the_checker_decides_an_overflowing_enclosure_without_numpy_warnings():
    """check_proof from Python (not only the command) decides an enclosure that overflows to inf without numpy's
    RuntimeWarnings (before, only the command silenced them)."""
    proof = _free_output_overflow_proof()
    with warnings.catch_warnings(record=True) as seen:
        warnings.simplefilter("always")
        code = check(proof)[0]
    assert code == checker.EXIT_VALID
    assert not [w for w in seen if issubclass(w.category, RuntimeWarning)], [str(w.message) for w in seen]

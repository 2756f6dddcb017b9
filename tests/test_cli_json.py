"""Strict JSON for every result (issue 8, item 7): every check, on a piecewise-linear and a smooth net, read back
with a parser that refuses NaN and Infinity tokens (RFC 8259); unbounded values are the documented strings."""

import json
from pathlib import Path

import numpy as np
import pytest

import certify.cli as cli

ROOT = Path(__file__).resolve().parents[1]
EXAMPLES = ROOT / "examples"
CHECKS = "dissipativity,contraction,weight_norm,gain,invariance,equilibria"


def strict_loads(text: str):
    def refuse(token):
        raise ValueError(f"not strict JSON: {token}")

    return json.loads(text, parse_constant=refuse)


def walk(value):
    if isinstance(value, dict):
        for v in value.values():
            yield from walk(v)
    elif isinstance(value, list):
        for v in value:
            yield from walk(v)
    else:
        yield value


def run_json(capsys, model, box, checks=CHECKS):
    code = cli.run([str(model), "--region", str(box), "--check", checks, "--samples", "1000", "--budget", "40",
                    "--json", "-"])
    out = capsys.readouterr()
    assert code in (0, 1, 2), out.err
    return code, strict_loads(out.out)


@pytest.fixture
def unstable_relu(tmp_path, gemm_chain, save_model):
    """A ReLU net with sup ||A*|| >= 1 on its box (so Corollary 3's upper bound is infinite)."""
    w1 = [[2.0, 0.5], [-0.5, 1.5], [1.0, -1.0]]
    w2 = [[1.5, 0.5, -1.0], [0.5, 1.0, 1.0]]
    model = save_model(gemm_chain([w1, w2], [[0.1, -0.2, 0.0], [0.0, 0.1]], "Relu"), "unstable.onnx")
    box = tmp_path / "box.yaml"
    box.write_text("lower: [-1, -1]\nupper: [1, 1]\n")
    return model, box


@pytest.mark.parametrize("name", ["tank_relu.onnx", "tank_tanh_unstable.onnx"])
def test_every_check_gives_strict_json(capsys, name):
    _, data = run_json(capsys, EXAMPLES / name, EXAMPLES / "box.yaml")
    assert list(data["checks"]) == CHECKS.split(",")
    for value in walk(data):
        assert value is None or isinstance(value, (bool, int, str)) or np.isfinite(value)
    for check in data["checks"].values():
        for key in ("lower", "upper"):
            v = check[key]
            assert isinstance(v, float) or v in ("inf", "-inf"), (key, v)


def test_equilibria_of_a_net_that_is_not_dissipative(capsys, unstable_relu):
    # sup ||A*|| >= 1: the Corollary 3 upper bound 1 / (1 - rho) does not exist; it used to crash --json (exit 4)
    _, data = run_json(capsys, *unstable_relu, checks="dissipativity,equilibria")
    assert data["checks"]["dissipativity"]["lower"] >= 1
    eq = data["checks"]["equilibria"]
    assert eq["upper"] == "inf" and eq["equilibria"]["norm_upper"] == "inf"


def test_smooth_equilibria_with_an_infinite_bound(capsys):
    _, data = run_json(capsys, EXAMPLES / "tank_tanh_unstable.onnx", EXAMPLES / "box.yaml", "equilibria")
    assert data["checks"]["equilibria"]["upper"] == "inf"

"""A metric P given by the user: the region file's ``metric:`` key and ``--metric FILE.yaml``.

A given P is used as is (the checks evaluate ||T M T^-1||_2 with T^T T = P); a P that is not square, not symmetric,
not positive definite, of the wrong size or not finite is bad input: exit 3 and one line naming the key."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

import certify.cli as cli
from certify.importers.region_file import RegionError, load_metric, load_region

ROOT = Path(__file__).resolve().parents[1]
ZOO = ROOT / "benchmarks" / "zoo"
DI = ZOO / "double_integrator.system.yaml"
DI_ORIGIN = ZOO / "double_integrator_origin.box.yaml"


def run(args, capsys):
    code = cli.run([str(a) for a in args])
    out = capsys.readouterr()
    return code, out.out, out.err


def _di_loop_matrix() -> np.ndarray:
    """The double integrator's closed-loop matrix near the origin (the region around x = 0)."""
    from certify.api import load

    a, _ = load(DI).pwa(np.zeros(2) + 1e-7)
    return a


def _lyapunov_metric(a: np.ndarray) -> np.ndarray:
    """P solving A^T P A - P = -I (the loop's Lyapunov metric), by the Kronecker formula."""
    n = a.shape[0]
    vec = np.linalg.solve(np.eye(n * n) - np.kron(a.T, a.T), np.eye(n).reshape(-1))
    p = vec.reshape(n, n)
    return 0.5 * (p + p.T)


def _region_with_metric(tmp_path, p) -> Path:
    text = DI_ORIGIN.read_text().rstrip("\n") + "\nmetric: " + json.dumps(np.asarray(p).tolist()) + "\n"
    path = tmp_path / "di_metric.box.yaml"
    path.write_text(text)
    return path


def test_a_metric_in_the_region_file_is_the_one_checked(tmp_path, capsys):
    a = _di_loop_matrix()
    p = _lyapunov_metric(a)
    region = _region_with_metric(tmp_path, p)
    assert np.allclose(load_region(region).metric.p, p)
    code_2, out_2, err_2 = run([DI, "--region", DI_ORIGIN, "--check", "dissipativity", "--json", "-"], capsys)
    code_p, out_p, err_p = run([DI, "--region", region, "--check", "dissipativity", "--json", "-"], capsys)
    plain, weighted = json.loads(out_2)["checks"]["dissipativity"], json.loads(out_p)["checks"]["dissipativity"]
    # the Euclidean norm of the loop matrix exceeds 1 near the origin; in its Lyapunov metric it does not
    assert plain["verdict"] == "falsified" and code_2 == 1, err_2
    assert weighted["verdict"] == "certified" and code_p == 0, err_p
    t = np.linalg.cholesky(p).T
    conj = np.linalg.norm(t @ a @ np.linalg.inv(t), 2)
    assert weighted["lower"] <= conj * (1 + 1e-9) and weighted["upper"] < 1
    assert np.allclose(np.array(weighted["metric"]["P"]), p)


def test_the_command_line_metric_file_overrides_the_region_file(tmp_path, capsys):
    a = _di_loop_matrix()
    region = _region_with_metric(tmp_path, np.eye(2))
    metric_file = tmp_path / "p.yaml"
    metric_file.write_text("P: " + json.dumps(_lyapunov_metric(a).tolist()) + "\n")
    code, out, err = run([DI, "--region", region, "--check", "dissipativity", "--metric", metric_file,
                          "--json", "-"], capsys)
    assert code == 0 and json.loads(out)["checks"]["dissipativity"]["verdict"] == "certified", err
    code, out, err = run([DI, "--region", region, "--check", "dissipativity", "--metric", "identity",
                          "--json", "-"], capsys)
    assert code == 1 and json.loads(out)["checks"]["dissipativity"]["verdict"] == "falsified", err


BAD_METRICS = [
    ("[[1, 0, 0], [0, 1, 0]]", "square"),
    ("[[2, 1], [0, 2]]", "symmetric"),
    ("[[1, 2], [2, 1]]", "positive definite"),
    ("[[1, 0, 0], [0, 1, 0], [0, 0, 1]]", "3x3"),
    ("[[.nan, 0], [0, 1]]", "finite"),
    ("[[1, 0], [0, 0]]", "positive definite"),
    ("'diagonal'", "auto"),
]


@pytest.mark.parametrize("text, needle", BAD_METRICS)
def test_a_bad_metric_in_the_region_file_is_exit_3_naming_the_key(tmp_path, capsys, text, needle):
    region = tmp_path / "bad.box.yaml"
    region.write_text(DI_ORIGIN.read_text().rstrip("\n") + f"\nmetric: {text}\n")
    code, out, err = run([DI, "--region", region, "--check", "dissipativity"], capsys)
    assert code == 3, out + err
    lines = err.strip().splitlines()
    assert len(lines) == 1 and "metric" in lines[0] and str(region) in lines[0], err
    assert needle in lines[0], lines[0]
    assert "Traceback" not in err


@pytest.mark.parametrize("text, needle", BAD_METRICS[:5])
def test_a_bad_metric_file_is_exit_3_naming_the_file(tmp_path, capsys, text, needle):
    metric_file = tmp_path / "p.yaml"
    metric_file.write_text(f"P: {text}\n")
    code, out, err = run([DI, "--region", DI_ORIGIN, "--metric", metric_file], capsys)
    assert code == 3, out + err
    lines = err.strip().splitlines()
    assert len(lines) == 1 and str(metric_file) in lines[0] and needle in lines[0], err


def test_a_metric_file_with_a_stray_key_or_a_missing_file_is_exit_3(tmp_path, capsys):
    metric_file = tmp_path / "p.yaml"
    metric_file.write_text("Q: [[1, 0], [0, 1]]\n")
    with pytest.raises(RegionError, match="'P'"):
        load_metric(metric_file, 2)
    code, _, err = run([DI, "--region", DI_ORIGIN, "--metric", tmp_path / "missing.yaml"], capsys)
    assert code == 3 and "missing.yaml" in err and len(err.strip().splitlines()) == 1

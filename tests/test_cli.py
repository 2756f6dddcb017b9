"""The `certify` command: verdicts as exit codes, the table, the JSON schema, and bad input (exit 3, one line)."""

import json
import math
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from onnx import helper

import certify.cli as cli
from certify.ir.numerics import parse_norm

ROOT = Path(__file__).resolve().parents[1]
EXAMPLES = ROOT / "examples"


def run(args, capsys):
    code = cli.run([str(a) for a in args])
    out = capsys.readouterr()
    return code, out.out, out.err


def box(tmp_path, text="lower: [0, 0]\nupper: [1, 1]\n", name="box.yaml"):
    p = tmp_path / name
    p.write_text(text)
    return p


def test_example_certified(capsys):
    code, out, err = run([EXAMPLES / "tank_relu.onnx", "--region", EXAMPLES / "box.yaml",
                          "--check", "dissipativity,contraction,weight_norm", "--samples", "20000"], capsys)
    assert code == 0, out + err
    assert "certified" in out and "verdict: certified" in out


def test_example_falsified_json_witness_replays(tmp_path, capsys):
    from certify.importers import load_model

    report = tmp_path / "r.json"
    code, out, err = run([EXAMPLES / "tank_tanh_unstable.onnx", "--region", EXAMPLES / "box.yaml",
                          "--samples", "5000", "--json", report], capsys)
    assert code == 1, out + err
    data = json.loads(report.read_text())
    assert data["schema"] == "certify/1" and data["verdict"] == "falsified"
    assert set(data["model"]) >= {"path", "sha256"} and set(data["region"]) >= {"names", "lower", "upper"}
    check = data["checks"]["dissipativity"]
    assert set(check) >= {"verdict", "lower", "upper", "method", "seconds", "witness"}
    x = np.array(check["witness"]["x"])
    assert np.all(x >= 0) and np.all(x <= 1)
    a, _ = load_model(EXAMPLES / "tank_tanh_unstable.onnx").pwa(x)
    assert np.linalg.norm(a, 2) == pytest.approx(check["witness"]["value"], rel=1e-12)
    assert check["lower"] == check["witness"]["value"] >= 1.0


def test_json_to_stdout_is_pure_json(capsys):
    code, out, err = run([EXAMPLES / "tank_relu.onnx", "--region", EXAMPLES / "box.yaml", "--json", "-",
                          "--samples", "2000", "--check", "weight_norm"], capsys)
    data = json.loads(out)
    assert code == 0 and data["checks"]["weight_norm"]["verdict"] == "certified"
    assert data["checks"]["weight_norm"]["upper"] == pytest.approx(data["checks"]["weight_norm"]["product"])


def test_unknown_when_no_bound_settles_it(tmp_path, capsys, gemm_chain, save_model):
    # tanh net whose true sup of ||A*|| is small, while the product of norms exceeds 1 (weights misaligned).
    w1 = [[3.0, 0.0], [0.0, 0.05]]
    w2 = [[0.05, 0.0], [0.0, 3.0]]
    model = save_model(gemm_chain([w1, w2], [[0, 0], [0, 0]], "Tanh"), "m.onnx")
    code, out, err = run([model, "--region", box(tmp_path), "--samples", "2000", "--timeout", "5",
                          "--check", "weight_norm"], capsys)
    assert code == 2, out + err
    assert "unknown" in out and "product of norms" in out


@pytest.mark.parametrize("norm", ["1", "2", "inf"])
def test_norm_option(norm, capsys):
    code, out, err = run([EXAMPLES / "tank_relu.onnx", "--region", EXAMPLES / "box.yaml", "--norm", norm,
                          "--check", "weight_norm", "--json", "-", "--samples", "1000"], capsys)
    assert json.loads(out)["norm"] == norm


def _bad(capsys, args, needle):
    code, out, err = run(args, capsys)
    assert code == 3, (code, out, err)
    lines = err.strip().splitlines()
    assert len(lines) == 1 and needle in lines[0], err
    assert "Traceback" not in err


def test_bad_inputs(tmp_path, capsys):
    good_box = box(tmp_path)
    ex = EXAMPLES / "tank_relu.onnx"
    _bad(capsys, [tmp_path / "missing.onnx", "--region", good_box], "missing.onnx")
    empty = tmp_path / "empty.onnx"
    empty.write_bytes(b"")
    _bad(capsys, [empty, "--region", good_box], "empty.onnx")
    junk = tmp_path / "junk.onnx"
    junk.write_bytes(b"this is not a protobuf \x00\xff\x13")
    _bad(capsys, [junk, "--region", good_box], "junk.onnx")
    _bad(capsys, [ex, "--region", tmp_path / "nobox.yaml"], "nobox.yaml")
    _bad(capsys, [ex, "--region", box(tmp_path, "lower: [1, 0]\nupper: [0, 1]\n", "b1.yaml")], "lower[0]")
    _bad(capsys, [ex, "--region", box(tmp_path, "lower: [0, .nan]\nupper: [1, 1]\n", "b2.yaml")], "NaN")
    _bad(capsys, [ex, "--region", box(tmp_path, "states:\n a: [0, 1]\nfoo: 1\n", "b3.yaml")], "unknown key 'foo'")
    _bad(capsys, [ex, "--region", box(tmp_path, "states: {a: [0, 1]\n", "b4.yaml")], "not valid YAML")
    _bad(capsys, [ex, "--region", box(tmp_path, "!!python/object/apply:os.system ['true']\n", "b5.yaml")], "b5.yaml")
    _bad(capsys, [ex, "--region", box(tmp_path, "lower: [0, 0, 0]\nupper: [1, 1, 1]\n", "b6.yaml")],
         "3 coordinates but the model takes 2 inputs")
    _bad(capsys, [ex, "--region", good_box, "--check", "stabilty"], "unknown check 'stabilty'")
    _bad(capsys, [ex, "--region", good_box, "--norm", "3"], "norm must be 1, 2 or inf")
    _bad(capsys, [ex], "--region")
    _bad(capsys, [ex, "--region", good_box, "--samples", "many"], "--samples")
    _bad(capsys, [ex, "--region", good_box, "--json", tmp_path / "no" / "dir.json"], "does not exist")


def test_non_square_model_refused_for_dynamics_but_gain_works(tmp_path, capsys, gemm_chain, save_model):
    model = save_model(gemm_chain([np.eye(3, 2), np.ones((1, 3)) * 0.1], [np.zeros(3), [0.0]]), "m.onnx")
    _bad(capsys, [model, "--region", box(tmp_path)], "1 outputs but 2 states")
    code, out, err = run([model, "--region", box(tmp_path), "--check", "gain", "--samples", "1000"], capsys)
    assert code in (0, 2) and "gain" in out, err


def test_unsupported_operator_named(tmp_path, capsys, gemm_chain, save_model):
    def softmax(cur):
        return helper.make_node("Softmax", [cur], ["sm"], name="the_softmax")

    model = save_model(gemm_chain([np.eye(2), np.eye(2)], [np.zeros(2), np.zeros(2)], extra_node=softmax), "m.onnx")
    code, out, err = run([model, "--region", box(tmp_path)], capsys)
    assert code == 3 and "Softmax" in err and "the_softmax" in err and len(err.strip().splitlines()) == 1


@pytest.mark.skipif(shutil.which("certify") is None, reason="console script not installed")
def test_console_script_exit_codes(tmp_path):
    ok = subprocess.run(["certify", str(EXAMPLES / "tank_relu.onnx"), "--region", str(EXAMPLES / "box.yaml"),
                         "--samples", "2000"], capture_output=True, text=True)
    assert ok.returncode == 0, ok.stdout + ok.stderr
    bad = subprocess.run(["certify", str(tmp_path / "x.onnx"), "--region", str(EXAMPLES / "box.yaml")],
                         capture_output=True, text=True)
    assert bad.returncode == 3 and "Traceback" not in bad.stderr and bad.stderr.count("\n") == 1


def test_help_exits_zero():
    assert subprocess.run([sys.executable, str(ROOT / "cli.py"), "--help"], capture_output=True).returncode == 0


def test_parse_norm():
    assert parse_norm("inf") == math.inf and parse_norm(2) == 2.0 and parse_norm("1") == 1.0


ZOO = ROOT / "benchmarks" / "zoo"


def test_system_file_closed_loop(capsys):
    code, out, err = run([ZOO / "double_integrator.system.yaml", "--region", ZOO / "double_integrator.box.yaml",
                          "--samples", "2000", "--json", "-"], capsys)
    data = json.loads(out)
    # where the controller saturates the closed loop is x+ = A x, and ||A||_2 = golden ratio >= 1
    import certify

    w = data["checks"]["dissipativity"]["witness"]
    assert code == 1 and w["value"] >= (1 + 5**0.5) / 2 - 1e-12
    a, _ = certify.load(ZOO / "double_integrator.system.yaml").pwa(np.array(w["x"]))
    assert np.linalg.norm(a, 2) == pytest.approx(w["value"], rel=1e-12)
    assert data["model"]["path"].endswith("double_integrator.system.yaml") and len(data["model"]["sha256"]) == 64


def test_bad_system_file_names_the_key(tmp_path, capsys):
    bad = tmp_path / "sys.yaml"
    bad.write_text("plant:\n  A: [[1, 0], [0, 1], [1, 1]]\n  B: [[0], [1]]\ncontroller:\n  onnx: c.onnx\n")
    _bad(capsys, [bad, "--region", box(tmp_path)], "plant.A")


def test_version(capsys):
    import certify

    with pytest.raises(SystemExit) as exc:
        cli.run(["--version"])
    assert exc.value.code == 0 and capsys.readouterr().out.strip() == f"certify {certify.__version__}"
    assert certify.__version__[0].isdigit()


def test_help_lists_every_exit_code(capsys):
    with pytest.raises(SystemExit):
        cli.run(["--help"])
    out = capsys.readouterr().out
    for code in ("0", "1", "2", "3", "4", "130", "143"):
        assert f"\n  {code} " in out, code
    assert "--budget" in out and "whole run" in out


def test_options_and_versions_recorded_in_json_and_junit(tmp_path, capsys):
    import xml.etree.ElementTree as ET

    junit = tmp_path / "j.xml"
    code, out, err = run([EXAMPLES / "tank_relu.onnx", "--region", EXAMPLES / "box.yaml", "--check", "dissipativity",
                          "--samples", "1500", "--seed", "3", "--timeout", "40", "--budget", "25", "--norm", "inf",
                          "--margin", "0.001", "--method", "bnb", "--device", "cpu", "--workers", "2", "--json", "-",
                          "--junit", junit],
                         capsys)
    assert code in (0, 2), err
    data = json.loads(out)
    import certify

    assert data["tool"] == {"name": "certify", "version": certify.__version__}
    opts = data["options"]
    assert (opts["seed"], opts["samples"], opts["timeout"], opts["budget"]) == (3, 1500, 40.0, 25)
    assert (opts["method"], opts["norm"], opts["margin"], opts["exact"]) == ("bnb", "inf", 0.001, False)
    assert opts["device"] == "cpu" and opts["device_used"] == "cpu" and opts["solvers"]["milp"]
    assert (opts["workers"], opts["cluster"]) == (2, None)
    for lib in ("torch", "onnxruntime", "pulp", "highspy", "cvxpy", "scs", "numpy"):
        assert lib in data["versions"]
    assert data["versions"]["torch"] == __import__("torch").__version__
    props = {p.get("name"): p.get("value") for p in ET.parse(junit).getroot().find("properties")}
    assert props["option.budget"] == "25" and props["option.timeout"] == "40.0" and props["option.seed"] == "3"
    assert props["certify.version"] == certify.__version__ and props["version.torch"] == data["versions"]["torch"]


def test_budget_option(tmp_path, capsys):
    code, out, err = run([EXAMPLES / "tank_relu.onnx", "--region", EXAMPLES / "box.yaml", "--budget", "5",
                          "--samples", "500", "--exact", "--json", "-"], capsys)
    assert code in (0, 2) and json.loads(out)["options"]["budget"] == 5, err
    _bad(capsys, [EXAMPLES / "tank_relu.onnx", "--region", EXAMPLES / "box.yaml", "--budget", "0"], "budget")
    _bad(capsys, [EXAMPLES / "tank_relu.onnx", "--region", EXAMPLES / "box.yaml", "--budget", "many"], "--budget")


def test_a_search_whose_workers_were_lost_says_so_in_one_note(monkeypatch, capsys):
    """The search goes on in the main process when its workers are lost (certify.engines.parallel): the command
    prints one note line on stderr, not a Python warning with its source line, and exits with the verdict."""
    import warnings

    import certify.checks as checks
    from certify.certificate import CheckName
    from certify.engines.parallel import WorkerWarning

    inner = checks.CHECKS[CheckName.WEIGHT_NORM]

    def lossy(*args):
        warnings.warn(WorkerWarning("the search went on in this process after its workers were lost: gone"),
                      stacklevel=2)
        warnings.warn("an unrelated warning", UserWarning, stacklevel=2)
        return inner(*args)

    monkeypatch.setitem(checks.CHECKS, CheckName.WEIGHT_NORM, lossy)
    with pytest.warns(UserWarning) as shown:
        code = cli.run([str(EXAMPLES / "tank_relu.onnx"), "--region", str(EXAMPLES / "box.yaml"), "--check",
                        "weight_norm", "--samples", "500"])
    err = capsys.readouterr().err
    assert code == 0
    assert "certify: note: the search went on in this process after its workers were lost: gone\n" in err
    assert "WorkerWarning" not in err
    # other warnings go where they went before (here: to pytest's record)
    assert [str(w.message) for w in shown] == ["an unrelated warning"]


def test_no_runtime_warnings_on_the_terminal(tmp_path):
    # A check whose numerics overflow (as sound bounds of huge weights do) must not print numpy's RuntimeWarnings
    # on the user's terminal; the error line of a real failure still comes through.
    script = tmp_path / "noisy.py"
    script.write_text(
        "import sys, warnings\n"
        "import numpy as np\n"
        "import certify.checks as checks\n"
        "from certify.certificate import CheckName\n"
        "import certify.cli as cli\n"
        "inner = checks.CHECKS[CheckName.WEIGHT_NORM]\n"
        "def noisy(*args):\n"
        "    np.float64(1e308) * np.float64(10.0)\n"
        "    np.array([0.0]) / np.array([0.0])\n"
        "    warnings.warn('overflow encountered in matmul', RuntimeWarning)\n"
        "    return inner(*args)\n"
        "checks.CHECKS[CheckName.WEIGHT_NORM] = noisy\n"
        "cli.main(sys.argv[1:])\n"
    )
    args = [sys.executable, str(script), str(EXAMPLES / "tank_relu.onnx"), "--region", str(EXAMPLES / "box.yaml"),
            "--check", "weight_norm", "--samples", "500"]
    quiet = subprocess.run(args, capture_output=True, text=True, cwd=tmp_path)
    assert quiet.returncode == 0 and quiet.stderr == "", quiet.stderr
    assert "verdict: certified" in quiet.stdout

"""Startup (issue 8, item 15): ``certify --help``, ``--version`` and bad input answer without importing torch.

Each case runs the command's ``main`` in a fresh interpreter and reports, at exit, whether torch was imported;
nothing here measures time.
"""

import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
EXAMPLES = ROOT / "examples"

PROBE = (
    "import sys\n"
    "from certify.cli import main\n"
    "try:\n"
    "    main(sys.argv[1:])\n"
    "except SystemExit as exc:\n"
    "    code = exc.code\n"
    "print(f'\\nEXIT={code} TORCH={\"torch\" in sys.modules} ENGINES={\"certify.engines\" in sys.modules}')\n"
)


def probe(tmp_path, *args):
    done = subprocess.run([sys.executable, "-c", PROBE, *map(str, args)], capture_output=True, text=True,
                          cwd=tmp_path)
    last = done.stdout.strip().splitlines()[-1]
    return last, done.stdout, done.stderr


@pytest.fixture
def bad_region(tmp_path):
    p = tmp_path / "bad.yaml"
    p.write_text("lower: [1, 0]\nupper: [0, 1]\n")
    return p


@pytest.mark.parametrize("args,code", [(["--help"], 0), (["--version"], 0), (["--no-such-option"], 3)],
                         ids=["help", "version", "unknown-option"])
def test_no_torch_for_help_version_and_usage_errors(tmp_path, args, code):
    last, out, err = probe(tmp_path, *args)
    assert last == f"EXIT={code} TORCH=False ENGINES=False", out + err


def test_no_torch_for_a_missing_model(tmp_path):
    last, out, err = probe(tmp_path, tmp_path / "missing.onnx", "--region", EXAMPLES / "box.yaml")
    assert last == "EXIT=3 TORCH=False ENGINES=False", out + err
    assert "missing.onnx" in err and len(err.strip().splitlines()) == 1


def test_no_torch_for_a_bad_check_name(tmp_path):
    last, out, err = probe(tmp_path, EXAMPLES / "tank_relu.onnx", "--region", EXAMPLES / "box.yaml", "--check", "x")
    assert last == "EXIT=3 TORCH=False ENGINES=False" and "unknown check 'x'" in err, out + err


def test_no_torch_for_a_bad_region_file(tmp_path, bad_region):
    last, out, err = probe(tmp_path, EXAMPLES / "tank_relu.onnx", "--region", bad_region)
    assert "bad.yaml" in err and len(err.strip().splitlines()) == 1
    assert last == "EXIT=3 TORCH=False ENGINES=False", out + err


def test_bad_region_file_never_loads_the_engines(tmp_path, bad_region):
    last, out, err = probe(tmp_path, EXAMPLES / "tank_relu.onnx", "--region", bad_region)
    assert last.startswith("EXIT=3 ") and last.endswith("ENGINES=False"), out + err


def test_import_certify_is_light():
    code = "import sys, certify; print('torch' in sys.modules, 'certify.engines' in sys.modules, certify.__version__)"
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    flags = done.stdout.split()
    assert flags[:2] == ["False", "False"] and flags[2][0].isdigit(), done.stdout + done.stderr
    # and the public names still resolve, on first use
    code = "import certify; print(certify.verify.__module__, certify.Box.__name__, sorted(certify.__all__)[0])"
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert done.stdout.split() == ["certify.api", "Box", "Activation"], done.stderr

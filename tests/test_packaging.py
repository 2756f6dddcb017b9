"""What installing certify puts on sys.path: everything under the certify package, no top-level `solvers` or `cli`.

A package named `solvers` exists on PyPI, and `cli` is a common name: installing must map both folders under
certify (pyproject's package-dir), for a wheel and for the editable install alike.
"""

from __future__ import annotations

import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

tomllib = pytest.importorskip("tomllib")  # Python >= 3.11

ROOT = Path(__file__).resolve().parents[1]


def _pyproject() -> dict:
    return tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))


def test_every_package_folder_is_listed_for_installation():
    listed = set(_pyproject()["tool"]["setuptools"]["packages"])
    on_disk = {".".join(p.parent.relative_to(ROOT).parts) for p in (ROOT / "certify").rglob("__init__.py")}
    on_disk.add("certify.solvers")
    assert listed == on_disk


def test_console_script_lives_in_the_certify_package():
    assert _pyproject()["project"]["scripts"]["certify"] == "certify.cli:main"


@pytest.fixture(scope="module")
def wheel_names(tmp_path_factory) -> list[str]:
    out = tmp_path_factory.mktemp("wheel")
    subprocess.run([sys.executable, "-m", "pip", "wheel", "--quiet", "--no-deps", "--no-build-isolation",
                    "--wheel-dir", str(out), str(ROOT)], check=True, capture_output=True)
    (wheel,) = out.glob("certify-*.whl")
    with zipfile.ZipFile(wheel) as zf:
        return zf.namelist()


def test_the_wheel_has_no_top_level_solvers_or_cli(wheel_names):
    tops = {name.split("/")[0] for name in wheel_names}
    assert "solvers" not in tops and "cli.py" not in tops
    assert {t for t in tops if not t.endswith(".dist-info")} == {"certify"}
    assert "certify/solvers/registry.py" in wheel_names and "certify/cli.py" in wheel_names


def test_the_installed_names_resolve_outside_the_checkout(tmp_path):
    # run from an empty folder, so that the checkout is not on sys.path: what resolves is what was installed
    code = ("import importlib.util, certify.solvers.registry, certify.cli; "
            "print(importlib.util.find_spec('solvers'), importlib.util.find_spec('cli'), "
            "certify.solvers.registry.__file__)")
    res = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, capture_output=True, text=True, check=True)
    solvers_spec, cli_spec, registry_file = res.stdout.split()
    assert solvers_spec == "None" and cli_spec == "None"
    registry_path = Path(registry_file).resolve()
    editable = registry_path == (ROOT / "solvers" / "registry.py").resolve()
    assert editable or registry_path.parts[-3:] == ("certify", "solvers", "registry.py")

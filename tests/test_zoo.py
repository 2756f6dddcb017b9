"""The benchmark zoo's verdicts match the expectations recorded in benchmarks/zoo/README.md (a regression gate on
the whole pipeline: import, composition, sampling, engines, verdicts)."""

import importlib.util
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_zoo_verdicts_match_the_recorded_expectations(capsys):
    spec = importlib.util.spec_from_file_location("run_zoo", ROOT / "benchmarks" / "run_zoo.py")
    run_zoo = importlib.util.module_from_spec(spec)
    sys.modules["run_zoo"] = run_zoo  # dataclasses look their module up there
    spec.loader.exec_module(run_zoo)
    expected = run_zoo.expected_verdicts(ROOT / "benchmarks" / "zoo" / "README.md")
    assert len(expected) >= 40  # the table is read, not silently empty
    code = run_zoo.main(["--timeout", "60", "--samples", "20000",
                         "--checks", "dissipativity,contraction,weight_norm,invariance,equilibria"])
    out = capsys.readouterr().out
    assert code == 0, out
    assert "0 verdict(s) differ" in out

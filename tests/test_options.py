"""Answers honour their options: --exact closes the bracket whatever the verdict, --timeout bounds the whole run
(shared among the checks), and a node budget stops a search deterministically."""

from __future__ import annotations

import math

import certify
import certify.checks as checks_module
from certify.certificate import BoundMethod, CheckName, CheckResult, Verdict
from certify.config import VerifyConfig
from certify.engines.contract import Outcome, Query
from certify.engines.region_search import region_search
from certify.ir.quantity import Quantity


def test_exact_closes_the_bracket_of_a_falsified_check(random_net, unit_box, scaled_net):
    net = scaled_net(random_net(3, 2, (8, 8)), 3.0)  # sampling falsifies at once
    box = unit_box(2)
    fast = certify.verify(net, box, ["dissipativity"], VerifyConfig(samples=2000)).results[0]
    exact = certify.verify(net, box, ["dissipativity"], VerifyConfig(samples=2000, exact=True)).results[0]
    assert fast.verdict is exact.verdict is Verdict.FALSIFIED
    assert exact.method is BoundMethod.EXACT
    assert math.isclose(exact.lower, exact.upper, rel_tol=1e-9)
    assert fast.lower <= exact.lower and exact.upper < fast.upper  # sampling stopped early without --exact


def test_timeout_is_shared_among_the_checks(monkeypatch, random_net, unit_box):
    got = []

    def record(net, box, config, memo):
        got.append(config.timeout)
        return CheckResult(CheckName.GAIN, Verdict.UNKNOWN, 0.0, math.inf, BoundMethod.NONE, 0.0, reason="test")

    names = [CheckName.DISSIPATIVITY, CheckName.CONTRACTION, CheckName.GAIN, CheckName.WEIGHT_NORM]
    for name in names:
        monkeypatch.setitem(checks_module.CHECKS, name, record)
    checks_module.run_checks(random_net(0, 2, (4,)), unit_box(2), names, VerifyConfig(timeout=100.0))
    assert len(got) == 4
    assert all(share <= 100.0 / (4 - i) for i, share in enumerate(got))  # never more than the time left
    assert got[-1] > 90.0  # a check that ends early leaves its time to the next


def test_a_node_budget_stops_the_search_at_the_same_place_every_time(random_net, unit_box):
    net, box = random_net(5, 3, (12, 12)), unit_box(3)
    runs = [region_search(Query(net, box, Quantity.A_STAR, VerifyConfig(budget=7, timeout=600.0)))
            for _ in range(2)]
    assert all(r.outcome is Outcome.BUDGET for r in runs)
    assert runs[0].upper == runs[1].upper and runs[0].lower == runs[1].lower and runs[0].nodes == runs[1].nodes
    assert "budget of 7 nodes" in runs[0].reason


def test_missing_solver_libraries_give_unknown_never_a_crash(monkeypatch, random_net, unit_box):
    import sys

    net = random_net(4, 2, (6, 6))
    for module in ("highspy", "pulp"):
        monkeypatch.setitem(sys.modules, module, None)  # `import highspy` / `import pulp` raise ImportError
    config = VerifyConfig(samples=500, timeout=20.0, method="exact")
    results = certify.verify(net, unit_box(2), ["dissipativity", "gain", "invariance", "equilibria"], config).results
    for r in results:
        solver_free = (BoundMethod.INTERVAL, BoundMethod.WEIGHT_NORM, BoundMethod.BOXES, BoundMethod.CROWN)
        assert r.verdict is not Verdict.CERTIFIED or r.method in solver_free, r
        if r.verdict is Verdict.UNKNOWN:
            assert r.reason
    reasons = " ".join(r.reason for r in results)
    assert "highspy" in reasons


def test_highs_raising_inside_the_region_search_is_no_crash(monkeypatch, random_net, unit_box):
    import certify.solvers.lp as lp

    def boom(self, *args, **kwargs):
        raise RuntimeError("HiGHS fell over")

    net, box = random_net(6, 2, (8, 8)), unit_box(2)
    exact = region_search(Query(net, box, Quantity.A_STAR, VerifyConfig(timeout=60.0)))
    monkeypatch.setattr(lp.LPSolver, "_add", boom)  # raised from inside solve_with_rows and add_rows
    res = region_search(Query(net, box, Quantity.A_STAR, VerifyConfig(timeout=60.0)))
    assert res.lower <= exact.upper + 1e-9 and res.upper >= exact.lower - 1e-9  # sound, whatever it could settle

"""Run certify on every benchmark-zoo entry and print one table: model, check, verdict, bracket, time.

    python benchmarks/run_zoo.py                       # every entry, checks dissipativity, contraction, weight_norm
    python benchmarks/run_zoo.py --only dcdc cstr_svd  # some entries
    python benchmarks/run_zoo.py --checks dissipativity,invariance --timeout 60
    python benchmarks/run_zoo.py --metric auto         # the closed loops in a found metric (second table)

Side by side with each bracket it prints the baseline of the same run, Corollary 4's product of layer norms (the
cheap sufficient test, column ``Cor4``); ``method`` names the engine that settled the check (region branch and
bound for piecewise-linear nets, sub-box branch and bound otherwise). The engines run in certify mode: they stop
once the verdict is settled, so an upper bound is only as tight as it needs to be. The last column compares the
verdict with the expectation recorded
in ``benchmarks/zoo/README.md`` (``ok``, or ``DIFF`` with the expected verdict); the exit code is 1 when a verdict
differs (a model or the tool changed), else 0. Models and closed loops go through :func:`certify.api.verify` by path
(import, composition and onnxruntime
re-check on the box).
"""

from __future__ import annotations

import argparse
import math
import sys
import time
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
ZOO = Path(__file__).resolve().parent / "zoo"

DEFAULT_CHECKS = ("dissipativity", "contraction", "weight_norm")
METRIC_CHECKS = ("dissipativity", "contraction", "stability")
MARKERS = {"identity": "<!-- expected verdicts -->", "auto": "<!-- expected verdicts, metric auto -->"}


@dataclass(frozen=True)
class Entry:
    """One zoo instance: a model file (``.onnx`` or a system file ``.system.yaml``) and its region file."""

    name: str
    model: str
    box: str


ENTRIES = (
    Entry("two_tank_plain", "two_tank_plain.onnx", "two_tank.box.yaml"),
    Entry("two_tank_svd", "two_tank_svd.onnx", "two_tank.box.yaml"),
    Entry("cstr_plain", "cstr_plain.onnx", "cstr.box.yaml"),
    Entry("cstr_svd", "cstr_svd.onnx", "cstr.box.yaml"),
    Entry("double_integrator", "double_integrator.system.yaml", "double_integrator.box.yaml"),
    Entry("double_integrator_origin", "double_integrator.system.yaml", "double_integrator_origin.box.yaml"),
    Entry("dcdc", "dcdc.system.yaml", "dcdc.box.yaml"),
    Entry("contracting_residual_tanh", "contracting_residual_tanh.onnx", "contracting_residual_tanh.box.yaml"),
    Entry("duffing_gelu", "duffing_gelu.onnx", "duffing_gelu.box.yaml"),
    Entry("noisy_duffing_dmm", "noisy_duffing_dmm.onnx", "noisy_duffing_dmm.box.yaml"),  # deep Markov model: heads
)


def expected_verdicts(readme: Path, metric: str = "identity") -> dict[tuple[str, str], tuple[str, str]]:
    """(model, check) -> (expected verdict today, expected engine verdict or '-'), from the rows
    ``| model | check | expected | engines | notes |`` of the README table after the marker of ``metric``
    (``<!-- expected verdicts -->`` for the Euclidean norm, ``<!-- expected verdicts, metric auto -->``)."""
    out: dict[tuple[str, str], tuple[str, str]] = {}
    if not readme.is_file():
        return out
    text = readme.read_text(encoding="utf-8")
    _, _, table = text.partition(MARKERS[metric])
    for line in table.splitlines():
        cells = [c.strip().strip("`") for c in line.strip().strip("|").split("|")]
        if len(cells) >= 3 and cells[2] in ("certified", "falsified", "unknown"):
            out[(cells[0], cells[1])] = (cells[2], cells[3] if len(cells) > 3 else "-")
        elif out and not line.strip().startswith("|"):
            break
    return out


def run_entry(entry: Entry, checks, config):
    """The Report of one entry (certify.verify reads ONNX models and closed-loop system files alike)."""
    from certify.api import verify

    return verify(ZOO / entry.model, ZOO / entry.box, checks=list(checks), config=config)


def fmt(v: float) -> str:
    if math.isinf(v):
        return "inf" if v > 0 else "-inf"
    return f"{v:.4f}"


def nodes(result) -> str:
    """Regions or sub-boxes the check's search bounded ('-' when it ran none): what --budget limits."""
    count = getattr(result.details, "nodes", None) or getattr(result.details, "boxes", None)
    return "-" if not count else str(count)


def main(argv: list[str] | None = None) -> int:
    from certify.config import VerifyConfig

    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--only", nargs="*", default=None, help="entry names (default: all)")
    p.add_argument("--checks", default=None, help="comma-separated checks (default: dissipativity, contraction and "
                   "weight_norm; with --metric auto: dissipativity, contraction and stability)")
    p.add_argument("--metric", default="identity", choices=tuple(MARKERS),
                   help="the norm's metric: identity (Euclidean) or auto (found by the metric search)")
    p.add_argument("--timeout", type=float, default=30.0, help="seconds per check (default 30)")
    p.add_argument("--samples", type=int, default=20_000, help="falsification samples (default 20000)")
    p.add_argument("--budget", type=int, default=None,
                   help="nodes per search: a limit independent of the machine's speed (the tests use one)")
    p.add_argument("--device", default="auto", choices=("auto", "cpu", "cuda"))
    args = p.parse_args(argv)
    entries = [e for e in ENTRIES if args.only is None or e.name in args.only]
    if args.only:
        missing = set(args.only) - {e.name for e in entries}
        if missing:
            p.error(f"unknown entry {sorted(missing)[0]}; choose from {', '.join(e.name for e in ENTRIES)}")
    default = METRIC_CHECKS if args.metric == "auto" else DEFAULT_CHECKS
    checks = [c.strip() for c in (args.checks or ",".join(default)).split(",") if c.strip()]
    config = VerifyConfig(samples=args.samples, timeout=args.timeout, device=args.device, seed=0, budget=args.budget,
                          metric=None if args.metric == "identity" else args.metric)
    expected = expected_verdicts(ZOO / "README.md", args.metric)

    header = f"{'model':26s} {'check':14s} {'verdict':10s} {'bracket [lower, upper]':26s} {'Cor4':>8s} " \
             f"{'method':12s} {'time s':>7s} {'nodes':>7s}  {'expected':10s}"
    print(header)
    print("-" * len(header))
    differ = 0
    total = time.perf_counter()
    for entry in entries:
        report = run_entry(entry, checks, config)
        product = next((r.details.product for r in report.results if r.check.value == "weight_norm"), None)
        for r in report.results:
            want = expected.get((entry.name, r.check.value), (None, "-"))[0]
            mark = "-" if want is None else ("ok" if want == r.verdict.value else f"DIFF({want})")
            differ += want is not None and want != r.verdict.value
            ratio = "-" if product is None or r.check.value == "contraction" else f"{product:.4f}"
            bracket = f"[{fmt(r.lower)}, {fmt(r.upper)}]"
            print(f"{entry.name:26s} {r.check.value:14s} {r.verdict.value:10s} {bracket:26s} {ratio:>8s} "
                  f"{r.method_label[:12]:12s} {r.seconds:7.2f} {nodes(r):>7s}  {mark}", flush=True)
    print(f"\n{len(entries)} entries in {time.perf_counter() - total:.1f} s; {differ} verdict(s) differ from "
          f"benchmarks/zoo/README.md")
    return 1 if differ else 0


if __name__ == "__main__":
    sys.exit(main())

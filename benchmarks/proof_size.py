"""Proof files: size and checking time against the search time, side by side in one run.

    OMP_NUM_THREADS=1 python benchmarks/proof_size.py [--lipbab FOLDER] [--zoo FOLDER] [--largest] [--norms 2]

For each model and check: certify's own search (``verify``, seconds), the proof search (``build_proof`` without
its re-check, seconds), the proof's size (gzip-compressed JSON, bytes), the checker's time (``check_proof``,
seconds) and the ratio check / search (issue target: within 2x). LipBaB nets: the ``gain`` (sup ||J||_p over the
box, all columns; the three smaller nets unless ``--largest``); zoo models: the checks certify certifies there.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from certify.api import verify  # noqa: E402
from certify.config import VerifyConfig  # noqa: E402
from certify.proof import checker  # noqa: E402
from certify.proof.producer import ProofOptions, build_proof, proof_bytes  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
LIPBAB = ROOT.parent / "shared" / "benchmarks" / "lipbab"
ZOO = ROOT / "benchmarks" / "zoo"
ZOO_CASES = [("two_tank_svd.onnx", "two_tank.box.yaml", "dissipativity,contraction,invariance,equilibria"),
             ("cstr_svd.onnx", "cstr.box.yaml", "dissipativity,contraction,invariance,equilibria"),
             ("contracting_residual_tanh.onnx", "contracting_residual_tanh.box.yaml", "contraction,invariance")]


def measure(model: Path, region: Path, checks: str, config: VerifyConfig, proof_timeout: float) -> None:
    t0 = time.perf_counter()
    report = verify(model, region, checks, config)
    search = time.perf_counter() - t0
    t0 = time.perf_counter()
    proof = build_proof(report, ProofOptions(timeout=proof_timeout, recheck=False))
    produce = time.perf_counter() - t0
    size = len(proof_bytes(proof, "p.json.gz"))
    for result, entry in zip(report.results, proof["checks"]):
        one = {**proof, "checks": [entry]}
        t0 = time.perf_counter()
        code = checker.check_proof(one, out=lambda line: None)
        seconds = time.perf_counter() - t0
        one_size = len(proof_bytes(one, "p.json.gz"))
        ratio = seconds / max(result.seconds, 1e-9)
        status = entry["status"] if entry["status"] == "proven" else "not proven: " + entry.get("reason", "")[:60]
        print(f"{model.name:34s} {result.check.value:13s} {result.verdict.value:9s} search {result.seconds:7.2f} s  "
              f"proof {entry.get('seconds', 0.0):7.2f} s  check {seconds:7.2f} s (x{ratio:5.2f})  "
              f"{one_size / 1e3:9.1f} kB gz  exit {code}  {status}", flush=True)
    print(f"{'':34s} total: verify {search:.2f} s, proof search {produce:.2f} s, file {size / 1e3:.1f} kB gz",
          flush=True)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--lipbab", type=Path, default=LIPBAB)
    ap.add_argument("--zoo", type=Path, default=ZOO)
    ap.add_argument("--largest", action="store_true", help="also the largest LipBaB net (minutes)")
    ap.add_argument("--norms", default="2", help="comma-separated norms for the LipBaB gains (default 2)")
    ap.add_argument("--proof-timeout", type=float, default=600.0)
    args = ap.parse_args(argv)
    nets = sorted(args.lipbab.glob("*.onnx"), key=lambda p: p.stat().st_size) if args.lipbab.is_dir() else []
    if not args.largest:
        nets = nets[:3]
    for norm in [float(v) for v in args.norms.split(",")]:
        for model in nets:
            measure(model, model.with_suffix(".yaml"), "gain", VerifyConfig(norm=norm, timeout=600),
                    args.proof_timeout)
    for model, region, checks in ZOO_CASES:
        if (args.zoo / model).is_file():
            measure(args.zoo / model, args.zoo / region, checks, VerifyConfig(timeout=120), args.proof_timeout)
    return 0


if __name__ == "__main__":
    sys.exit(main())

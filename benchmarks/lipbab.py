"""Reproduce the twelve exact local Lipschitz constants of the LipBaB networks (../shared/benchmarks/lipbab).

    python benchmarks/lipbab.py [folder] [--no-enum]

For each net and p in {1, 2, inf}: sup over the box of ||J(x)||_p by branch and bound
(:func:`certify.engines.region_search.region_search` on the exact query for J, all input columns), compared with
``exact_on_float32_weights``
(to 1e-9 relative); side by side in the same run, the full region enumeration without pruning (time, region count
against ``linear_regions_in_box``, and its max norm). LipBaB's published p = 2 times on this kind of machine:
about 0.02 s, 0.15 s, 2.1 s and 45 s (smallest to largest net).

Measured (2 shared cores, same session, before/after the slope-vertex node bound and warm-started LPs):
B&B total 3.38 s -> 2.34 s for the twelve values; largest net p = 2: 1.25 s (385 nodes, 1091 LPs) -> 0.79 s
(156 nodes, 471 LPs); full enumeration of the four nets about 2.2 s in both.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from certify.config import VerifyConfig  # noqa: E402
from certify.engines.contract import Query  # noqa: E402
from certify.engines.region_search import region_search  # noqa: E402
from certify.engines.regions import enumerate_regions  # noqa: E402
from certify.importers.region_file import load_region  # noqa: E402
from certify.ir import activations as acts  # noqa: E402
from certify.ir.network import Layer, Network  # noqa: E402
from certify.ir.numerics import induced_norm  # noqa: E402
from certify.ir.quantity import Quantity  # noqa: E402

LIPBAB_P2_SECONDS = [0.02, 0.15, 2.1, 45.0]


def load_gemm_relu(path: Path) -> Network:
    """Load an ONNX Gemm(+Relu) chain (the format of these files); uses certify.importers when available."""
    try:
        from certify.importers.onnx_import import load_onnx  # type: ignore

        net = load_onnx(str(path))
        return getattr(net, "network", net)
    except ImportError:
        pass
    import onnx
    from onnx import numpy_helper

    model = onnx.load(str(path))
    init = {t.name: numpy_helper.to_array(t).astype(np.float64) for t in model.graph.initializer}
    gemms, relus = [], []
    for node in model.graph.node:
        if node.op_type == "Gemm":
            attrs = {a.name: a for a in node.attribute}
            w = init[node.input[1]]
            if "transB" not in attrs or attrs["transB"].i != 1:
                w = w.T
            gemms.append((w, init[node.input[2]]))
            relus.append(False)
        elif node.op_type == "Relu":
            relus[-1] = True
        elif node.op_type != "Identity":
            raise ValueError(f"{path}: unexpected operator {node.op_type}")
    layers = [Layer(w, b, acts.relu()) for (w, b), r in zip(gemms[:-1], relus[:-1])]
    return Network(tuple(layers), gemms[-1][0], gemms[-1][1])


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("folder", nargs="?", default=str(Path(__file__).resolve().parents[2] / "shared/benchmarks/lipbab"))
    ap.add_argument("--no-enum", action="store_true", help="skip the full enumeration baseline")
    args = ap.parse_args(argv)
    folder = Path(args.folder)
    spec = json.loads((folder / "published.json").read_text())
    total_bnb = 0.0
    total_enum = 0.0
    failures = 0
    print(f"{'net':26s} {'p':>3s} {'B&B value':>20s} {'rel err':>9s} {'B&B s':>8s} {'nodes':>6s} {'LPs':>6s}"
          f" {'enum s':>8s} {'ratio':>6s} {'regions':>8s} {'LipBaB s':>8s}")
    for idx, case in enumerate(spec["cases"]):
        net = load_gemm_relu(folder / case["model"])
        box = load_region(folder / case["region"]).box
        enum = None
        if not args.no_enum:
            enum = enumerate_regions(net, box)
            total_enum += enum.seconds
        for key in ("2", "1", "inf"):
            p = math.inf if key == "inf" else float(key)
            want = case["exact_on_float32_weights"][key]
            res = region_search(Query(net, box, Quantity.JACOBIAN, VerifyConfig(norm=p, timeout=600), state_only=False))
            total_bnb += res.seconds
            err = abs(res.lower - want) / want
            ok = err <= 1e-9 and res.exact
            failures += not ok
            enum_s, ratio, nreg = "", "", ""
            if enum is not None:
                enum_max = max(float(induced_norm(r.m, p)) for r in enum.regions)
                if abs(enum_max - want) / want > 1e-9:
                    failures += 1
                enum_s = f"{enum.seconds:8.3f}"
                ratio = f"{enum.seconds / res.seconds:6.1f}"
                nreg = f"{len(enum.regions)}/{case['linear_regions_in_box']}"
            ref = f"{LIPBAB_P2_SECONDS[idx]:8.2f}" if key == "2" and idx < len(LIPBAB_P2_SECONDS) else ""
            print(f"{case['model']:26s} {key:>3s} {res.lower:20.12f} {err:9.1e} {res.seconds:8.3f} {res.nodes:6d}"
                  f" {res.lps:6d} {enum_s:>8s} {ratio:>6s} {nreg:>8s} {ref:>8s}{'' if ok else '  MISMATCH'}")
    print(f"total: branch and bound {total_bnb:.2f} s for 12 values; full enumeration {total_enum:.2f} s for 4 nets")
    print("all twelve reproduced to 1e-9" if failures == 0 else f"{failures} mismatches")
    return 0 if failures == 0 else 1


if __name__ == "__main__":
    raise SystemExit(main())

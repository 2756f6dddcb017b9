"""Exact sup ||A*(x)||_2 at the sizes people train, the region search's settings side by side in one run: node
bounds over the box, over each node's polytope bounding box, with neurons split largest effect first, with the
per-neuron LPs over the node's polytope, and with the slope branch and bound (the default).

    OMP_NUM_THREADS=1 python benchmarks/exact_scale.py [--nets 2-32-32-2,4-16-16-4] [--timeout S]
        [--settings box,polytope,influence,lp,lp-nobox,slopes]

Random ReLU nets (tests/random_nets.py, seed 7) over [-1, 1]^d. For each net and each setting (``SETTINGS``:
``RegionSearchOptions.node_bbox``, ``by_influence``, ``node_lp`` and ``slope_bnb``): the exact run (nodes, LPs,
seconds, value) and the certify run with the net rescaled so that its exact sup is 0.97 (a 3 % margin; nodes and
their fraction of the exact run's nodes: the issue's target is at most a tenth). The exact values of the settings
must agree to 1e-12 (printed). A run that reaches the timeout prints its bracket instead of a value. LPs count
HiGHS's Chebyshev LPs and the node bounds' LPs (solved together by the numpy dual simplex).

Where certify mode's nodes are (a one-off count, ``NodeBounder.bound`` instrumented, nets scaled to sup 0.97,
threshold 1): every node it expands above the level but two is a first-layer node (33 of 33 on 2-32-32-2, 149 of
149 on 2-64-64-2, 93 of 95 on 4-16-16-4), which knows the second layer's slopes only as CROWN ranges (4-59
unstable slopes on 2-32-32-2). A slope search that drops the slope sub-boxes no point of the node can reach (an
LP per sub-box: first-layer neurons by their half-spaces, second-layer ones by their CROWN linear bounds in x)
pruned 26 of those 33 and 49 of those 95 nodes, with 4-3000 LPs per node where the whole certify run of 4-16-16-4
takes 4476 LPs for its 95 nodes: not built. A tenth of the exact run's nodes needs node bounds within about 3 %
of the node's true maximum at shallow depth; at the nodes certify mode expands they are 1.0-8.2 (4-16-16-4)
where no true maximum exceeds 0.97.

Measured with the input split of the node bounds (``--settings slopes,split8,split32 --timeout 120``,
OMP_NUM_THREADS=1, load about 1; exact nodes / s, certify nodes / s, slopes -> split8 -> split32): 2-32-32-2
39 / 0.30, 33 / 0.24 -> 26 / 0.43, 24 / 0.42 -> 14 / 0.67, 10 / 0.56; 4-16-16-4 116 / 1.11, 95 / 1.09 -> 96 / 1.81,
85 / 1.43 -> 65 / 3.06, 53 / 2.45; 2-64-64-2 158 / 1.17, 149 / 1.09 -> 105 / 1.67, 99 / 1.47 -> 47 / 2.48, 41 / 2.08;
4-32-32-4 1280 / 16.3, 1132 / 14.5 -> 1234 / 23.5, 1116 / 20.3 -> 1109 / 60.8, 1041 / 46.3; the same values. Fewer
nodes, more time (one CROWN pass per sub-box), and certify mode still 0.71-0.94 of the exact nodes: both modes
prune better. Why certify mode prunes so little: on 4-16-16-4 (net scaled to sup 0.97), of the 95 nodes certify
mode expands (bound > 1), 74 have a slope box whose exact maximum (every vertex enumerated) is itself > 1 while the
node's true maximum is 0.51-0.97: the slope box forgets which patterns the node's points can take, and only bounds
that see the geometry (here sub-boxes) get below 1. With the slope branch and bound inside each sub-box as well
(one run, split32, 4-16-16-4): 61 exact nodes in 7.53 s against 65 in 4.64 s without it.

Measured with the slope branch and bound (``--settings lp,slopes --timeout 60``, OMP_NUM_THREADS=1, load 1.0-1.2;
exact nodes / s, certify nodes / s, lp -> slopes): 2-32-32-2 58 / 0.28, 54 / 0.25 -> 39 / 0.24, 33 / 0.21;
2-64-64-2 216 / 1.13, 212 / 1.14 -> 158 / 0.96, 149 / 0.93; 4-16-16-4 129 / 0.73, 122 / 0.69 -> 116 / 0.89,
95 / 0.90; 4-32-32-4 2564 / 20.0, 2497 / 23.1 -> 1280 / 15.4, 1132 / 12.7; 2-128-128-2 931 / 9.17, 911 / 8.70 ->
545 / 6.33, 532 / 5.34; 8-16-16-8 3294 / 27.9, 3263 / 27.3 -> 1937 / 25.2, 1167 / 16.5; the same values; certify
mode 0.60-0.98 of the exact nodes. Without the greedy climb that lets it give up early, 8-16-16-8's exact run was
slower with the slope search than without (29.6 s against 24.3 s in one run).

Measured with the per-neuron node LPs (``--settings influence,lp --timeout 60``, OMP_NUM_THREADS=1, load about 1;
exact nodes / seconds, influence -> lp): 2-32-32-2 77 / 0.31 -> 58 / 0.30; 2-64-64-2 277 / 1.17 -> 216 / 1.23;
4-16-16-4 417 / 2.10 -> 129 / 0.87; 4-32-32-4 5780 / 36.2 -> 2564 / 20.9; 2-128-128-2 1321 / 8.15 -> 931 / 7.53;
8-16-16-8 unfinished at 60 s ([1.934, 2.952], 13957 nodes) -> 3294 / 29.2 (value 2.01626107713129); the same
values; certify mode 0.93-0.99 of the exact nodes. The same LPs through HiGHS (one call each) took 35.5 s on
4-32-32-4; ``lp-nobox`` (no bounding box) 6248 nodes / 105 s.

Measured (OMP_NUM_THREADS=1, 2 shared cores; exact runs, nodes / seconds, box -> polytope):
2-32-32-2 1018 / 5.79 -> 83 / 1.18 (load 3); 4-16-16-4 3500 / 56.2 -> 601 / 15.0 and 2-64-64-2 4157 / 40.0 ->
275 / 7.06 (load 3-14); idle (load 1-2): 2-128-128-2 19965 / 56.7 -> 1377 / 10.3, same value 0.903733593040012;
4-32-32-4 polytope 6047 / 53.8 (value 1.3316701830362); 8-16-16-8 (box bounds: over 4 free coordinates) unfinished
at 60 s, [1.679, 3.100]. Certify mode with a 3 % margin still visits 88-99 % of the exact run's nodes.
Split order (``--settings polytope,influence``, load about 1; exact nodes / seconds, index -> influence):
2-32-32-2 83 / 0.46 -> 77 / 0.39; 4-16-16-4 601 / 4.31 -> 417 / 3.60; 2-64-64-2 275 / 1.64 -> 277 / 1.70;
2-128-128-2 1377 / 12.4 -> 1321 / 12.9; 4-32-32-4 6047 / 51.8 -> 5780 / 53.4; the same values; certify mode 0.95-0.98
of the exact nodes.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from certify.config import RegionSearchOptions, VerifyConfig  # noqa: E402
from certify.engines.contract import Query  # noqa: E402
from certify.engines.region_search import region_search  # noqa: E402
from certify.ir.network import Network  # noqa: E402
from certify.ir.quantity import Quantity  # noqa: E402
from tests.random_nets import random_net, unit_box  # noqa: E402

DEFAULT_NETS = "2-32-32-2,2-64-64-2,4-16-16-4,4-32-32-4,2-128-128-2,8-16-16-8"


def scaled(net: Network, factor: float) -> Network:
    skip = None if net.skip is None else net.skip * factor
    return Network(net.layers, net.out_weight * factor, net.out_bias * factor, skip)


SETTINGS = {  # name -> RegionSearchOptions: node bounds over the box or the polytope's bounding box, split order
    "box": RegionSearchOptions(node_bbox=False, by_influence=False, node_lp=False, slope_bnb=False),
    "polytope": RegionSearchOptions(node_bbox=True, by_influence=False, node_lp=False, slope_bnb=False),
    "influence": RegionSearchOptions(node_bbox=True, by_influence=True, node_lp=False, slope_bnb=False),
    "lp": RegionSearchOptions(node_bbox=True, by_influence=True, node_lp=True, slope_bnb=False),
    "lp-nobox": RegionSearchOptions(node_bbox=False, by_influence=True, node_lp=True, slope_bnb=False),
    "slopes": RegionSearchOptions(input_split=0),
    "split8": RegionSearchOptions(input_split=8),
    "split32": RegionSearchOptions(input_split=32),
    "split128": RegionSearchOptions(input_split=128),
}


def one(net, box, options: RegionSearchOptions, timeout: float, threshold=None):
    config = VerifyConfig(timeout=timeout, regions=options)
    t0 = time.perf_counter()
    res = region_search(Query(net, box, Quantity.A_STAR, config, threshold=threshold))
    return res, time.perf_counter() - t0


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--nets", default=DEFAULT_NETS, help="comma-separated d-w1-...-d (default: %(default)s)")
    ap.add_argument("--timeout", type=float, default=120.0, help="seconds per run")
    ap.add_argument("--settings", default="lp,slopes",
                    help="comma-separated, of: box (node bounds over the box, index order), polytope (over the "
                         "polytope's bounding box, index order), influence (polytope, largest effect first), lp "
                         "(influence and per-neuron LPs over the polytope), lp-nobox (lp without the bounding box), "
                         "slopes (lp and the slope branch and bound: the default); default: %(default)s")
    args = ap.parse_args(argv)
    print(f"{'net':>14s} {'setting':>12s} {'nodes':>7s} {'LPs':>7s} {'exact s':>8s} {'value / bracket':>28s} "
          f"{'cert nodes':>10s} {'cert s':>7s} {'cert/exact':>10s}")
    for spec in args.nets.split(","):
        sizes = [int(v) for v in spec.split("-")]
        d, widths = sizes[0], tuple(sizes[1:-1])
        net, box = random_net(7, d, widths), unit_box(d)
        values = []
        for name in [s.strip() for s in args.settings.split(",")]:
            options = SETTINGS[name]
            res, sec = one(net, box, options, args.timeout)
            shown = f"{res.lower:.15g}" if res.exact else f"[{res.lower:.6g}, {res.upper:.6g}] timeout"
            if res.exact:
                values.append(res.lower)
            cert, csec = one(scaled(net, 0.97 / res.lower), box, options, args.timeout, threshold=1 - 1e-6)
            verdict = "" if cert.upper <= 1 - 1e-6 else " (not certified)"
            print(f"{spec:>14s} {name:>12s} {res.counts.nodes:7d} {res.counts.lps:7d} "
                  f"{sec:8.2f} {shown:>28s} {cert.counts.nodes:10d} {csec:7.2f} "
                  f"{cert.counts.nodes / max(res.counts.nodes, 1):10.3f}{verdict}", flush=True)
        if len(values) > 1:
            print(f"{'':>14s} exact values agree to {max(values) - min(values):.1e}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

"""Time to a verdict of the invariance check, side by side in one run: the MILP path (``config.invariance.bnb``
off: one MILP per output side with cutoff rows), the default path (the output branch and bound over input splits
with batched CROWN bounds, :mod:`certify.engines.output_bnb`) and Marabou (when ``maraboupy`` is installed: the
``bench`` extra).

    OMP_NUM_THREADS=1 python benchmarks/invariance.py [--cases 2-32-32-2 4-32-32-4 4-64-64-4] [--scales 0.97 1.03]
        [--scaling exact] [--backend cbc] [--samples 20000] [--timeout 600] [--modes certify exact]
        [--peers milp bnb marabou]

Nets: ``n-w-w-n`` ReLU nets with Gaussian weights (seeded) on the box [-1, 1]^n, the output layer scaled so that
the largest |f_i| over the box is ``scale``: 0.97 maps the box inside itself with a margin of 0.03 (certified),
1.03 leaves it by 0.03 (falsified). ``--scaling exact`` (the default) scales by the exact maximum (found by the
branch and bound in exact mode, before and outside the timing); ``--scaling sampled`` by the largest |f| over
200,000 uniform samples, as earlier versions of this script did (a scale below 1 can then still leave the box:
4-64-64-4 at 0.97 does).

Marabou answers one query per output side (x in the box and f_i >= upper_i, or f_i <= lower_i; built directly as an
input query with its DeepPoly bound tightening, one worker, ``numBlasThreads`` 1): certified when every query is
UNSAT, falsified at the first SAT. Its sides go in the order of the largest violation over 1,000 samples (as ours
do), and it gets the same time limit. Marabou has no exact mode: ``--modes exact`` compares only our two paths.
Each line prints the times, verdicts and brackets, and the ratios milp/bnb and marabou/bnb (> 1: the branch and
bound is faster).

Measured (2 cores shared with other jobs, load average 17-19, OMP_NUM_THREADS=1, certify mode, cbc, --timeout 120;
seconds; maraboupy 2.0.0):

    case        scale  milp               bnb     marabou   milp/bnb  marabou/bnb
    2-32-32-2   0.97    28.0 certified    0.211    1.38       133x        6.6x
    4-32-32-4   0.97   121   unknown      0.343   12.6        353x       36.8x
    4-64-64-4   0.97   123   unknown      0.804   88.1        152x      110x
    2-32-32-2   1.03    0.001 falsified   0.034    0.074        -         2.2x
    4-32-32-4   1.03    0.001 falsified   0.026   10.4          -       399x
    4-64-64-4   1.03    0.010 falsified   0.001    0.792        -       622x

A second run at load 8-11 (``--peers bnb marabou --timeout 300``): certified 0.187 / 0.718 s (3.8x), 0.261 / 4.11 s
(15.7x), 0.612 / 25.0 s (40.9x); falsified 0.001 / 0.084 s, 0.002 / 5.63 s, 0.001 / 0.152 s (ours / Marabou).

Exact mode (the bracket closed to the gap tolerance; same conditions, load 14-17):

    case        scale  milp               bnb     milp/bnb
    2-32-32-2   0.97    48.8 certified    0.603    81x
    2-32-32-2   1.03    44.4 falsified    0.568    78x
    4-32-32-4   0.97   121   unknown      0.509   238x
    4-32-32-4   1.03   121   falsified    0.616   196x   (the MILP's bracket stays [0.03, 7.8])

The falsified variants of certify mode are settled by sampling on both of our paths (the same code: their
difference is noise); the MILP path's 4-input runs stop at the time limit with the interval bound.
"""

from __future__ import annotations

import argparse
import math
import os
import sys
import time
from dataclasses import replace
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from certify.checks.invariance import check_invariance  # noqa: E402
from certify.config import InvarianceOptions, VerifyConfig  # noqa: E402
from certify.engines.contract import Query  # noqa: E402
from certify.engines.output_bnb import output_bnb  # noqa: E402
from certify.ir import activations as acts  # noqa: E402
from certify.ir.box import Box  # noqa: E402
from certify.ir.network import Layer, Network  # noqa: E402
from certify.ir.quantity import Quantity  # noqa: E402


def make_net(n: int, width: int, depth: int, scale: float, seed: int = 0, scaling: str = "sampled") -> Network:
    """A ReLU net n -> width^depth -> n on [-1, 1]^n, output scaled so that max |f| is ``scale``: over 200k uniform
    samples (``scaling`` "sampled") or exactly (``scaling`` "exact", by the branch and bound: max |f| = V + 1)."""
    rng = np.random.default_rng(seed)
    layers, prev = [], n
    for _ in range(depth):
        layers.append(Layer(rng.normal(size=(width, prev)) / np.sqrt(prev), 0.5 * rng.normal(size=width), acts.relu()))
        prev = width
    out_w = rng.normal(size=(n, prev)) / np.sqrt(prev)
    out_b = 0.5 * rng.normal(size=n)
    net = Network(tuple(layers), out_w, out_b)
    if scaling == "exact":
        config = VerifyConfig(timeout=600.0, invariance=InvarianceOptions(gap_tol=1e-6))
        box = Box(-np.ones(n), np.ones(n))
        res = output_bnb(Query(net, box, Quantity.VIOLATION, config))  # exact mode, gap 1e-6
        probe = res.lower + 1.0
    else:
        probe = np.abs(net.forward(np.random.default_rng(seed + 1).uniform(-1, 1, (200_000, n)))).max()
    return Network(tuple(layers), out_w * (scale / probe), out_b * (scale / probe))


def parse_case(text: str) -> tuple[int, int, int]:
    """'2-32-32-2' -> (n, width, depth)."""
    parts = [int(p) for p in text.split("-")]
    if len(parts) < 3 or parts[0] != parts[-1] or len(set(parts[1:-1])) != 1:
        raise SystemExit(f"case {text!r}: expected n-w-...-w-n")
    return parts[0], parts[1], len(parts) - 2


def run_ours(net: Network, box: Box, config: VerifyConfig, backend: str, bnb: bool):
    """One check with the MILP back-end ``backend``; ``bnb``: the default path (else MILP only)."""
    config = config.with_(solvers=replace(config.solvers, milp=backend),
                          invariance=replace(config.invariance, bnb=bnb))
    t0 = time.perf_counter()
    res = check_invariance(net, box, config)
    return time.perf_counter() - t0, res.verdict.value, res.lower, res.upper


# ============================================================================================ Marabou
def marabou_available() -> bool:
    try:
        import maraboupy  # noqa: F401
    except ImportError:
        return False
    return True


def _marabou_side_query(net: Network, box: Box, i: int, above: bool):
    """Marabou's input query: x in the box, the net's equations and ReLUs, and f_i >= upper_i (``above``) or
    f_i <= lower_i. Inputs and the output are marked, so Marabou builds its network-level reasoner (DeepPoly)."""
    from maraboupy import MarabouCore

    ipq = MarabouCore.InputQuery()
    ipq.setNumberOfVariables(net.n_in + 2 * sum(layer.width for layer in net.layers) + 1)
    xs = list(range(net.n_in))
    for v, lo, hi in zip(xs, box.lower, box.upper):
        ipq.setLowerBound(v, float(lo))
        ipq.setUpperBound(v, float(hi))
    nxt, prev = net.n_in, xs

    def equation(coefs, sources, target, const):  # sum coefs * sources - target = -const
        eq = MarabouCore.Equation()
        for c, s in zip(coefs, sources):
            if c != 0.0:
                eq.addAddend(float(c), s)
        eq.addAddend(-1.0, target)
        eq.setScalar(-float(const))
        ipq.addEquation(eq)

    for layer in net.layers:
        zs = list(range(nxt, nxt + layer.width))
        hs = list(range(nxt + layer.width, nxt + 2 * layer.width))
        nxt += 2 * layer.width
        for j in range(layer.width):
            equation(layer.weight[j], prev, zs[j], layer.bias[j])
            MarabouCore.addReluConstraint(ipq, zs[j], hs[j])
        prev = hs
    y = nxt
    coefs, sources = list(net.out_weight[i]), list(prev)
    if net.skip is not None:
        coefs, sources = coefs + list(net.skip[i]), sources + xs
    equation(coefs, sources, y, net.out_bias[i])
    if above:
        ipq.setLowerBound(y, float(box.upper[i]))
    else:
        ipq.setUpperBound(y, float(box.lower[i]))
    for k, v in enumerate(xs):
        ipq.markInputVariable(v, k)
    ipq.markOutputVariable(y, 0)
    return ipq


def run_marabou(net: Network, box: Box, timeout: float):
    """(seconds, verdict, sides solved): every side UNSAT -> certified, the first SAT -> falsified."""
    from maraboupy import Marabou, MarabouCore

    ns = net.n_states
    x = np.random.default_rng(3).uniform(box.lower, box.upper, (1000, box.dim))
    f = net.forward(x)[:, :ns]
    sides = [(i, True, (f[:, i] - box.upper[i]).max()) for i in range(ns)]
    sides += [(i, False, (box.lower[i] - f[:, i]).max()) for i in range(ns)]
    sides.sort(key=lambda s: -s[2])
    t0 = time.perf_counter()
    verdict = "certified"
    for k, (i, above, _) in enumerate(sides):
        left = timeout - (time.perf_counter() - t0)
        if left <= 0:
            return time.perf_counter() - t0, "unknown", k
        options = Marabou.createOptions(verbosity=0, timeoutInSeconds=max(1, int(math.ceil(left))),
                                        numBlasThreads=1)
        code, _, _ = MarabouCore.solve(_marabou_side_query(net, box, i, above), options, "")
        if code == "sat":
            return time.perf_counter() - t0, "falsified", k + 1
        if code != "unsat":
            verdict = "unknown"
            break
    return time.perf_counter() - t0, verdict, len(sides)


# ============================================================================================ the table
def fmt(seconds: float, verdict: str, lower=None, upper=None) -> str:
    if lower is None:
        return f"{seconds:8.3f}s {verdict:9s}"
    return f"{seconds:8.3f}s {verdict:9s} [{lower:+.5f}, {upper:+.5f}]"


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--cases", nargs="+", default=["2-32-32-2", "4-32-32-4", "4-64-64-4"])
    ap.add_argument("--scales", nargs="+", type=float, default=[0.97, 1.03])
    ap.add_argument("--scaling", choices=["exact", "sampled"], default="exact")
    ap.add_argument("--backend", default="cbc", help="MILP back-end of the MILP path")
    ap.add_argument("--samples", type=int, default=20_000)
    ap.add_argument("--timeout", type=float, default=600.0)
    ap.add_argument("--modes", nargs="+", default=["certify"], choices=["certify", "exact"])
    ap.add_argument("--peers", nargs="+", default=["milp", "bnb", "marabou"], choices=["milp", "bnb", "marabou"])
    args = ap.parse_args(argv)
    peers = list(args.peers)
    if "marabou" in peers and not marabou_available():
        print("maraboupy is not installed (pip install '.[bench]'): Marabou column skipped")
        peers.remove("marabou")
    print(f"OMP_NUM_THREADS={os.environ.get('OMP_NUM_THREADS', 'unset')}, load average "
          + " ".join(f"{v:.2f}" for v in os.getloadavg()))
    print(f"{'case':10s} {'scale':>5s} {'mode':7s} | {'milp':40s} | {'bnb':40s} | {'marabou':19s} | "
          "milp/bnb  marabou/bnb")
    totals = dict.fromkeys(peers, 0.0)
    for case in args.cases:
        n, width, depth = parse_case(case)
        box = Box(-np.ones(n), np.ones(n))
        for scale in args.scales:
            net = make_net(n, width, depth, scale, scaling=args.scaling)
            for exact in [m == "exact" for m in args.modes]:
                config = VerifyConfig(samples=args.samples, timeout=args.timeout, exact=exact, device="cpu")
                cols, times = {}, {}
                for peer in peers:
                    if peer == "marabou":
                        if exact:
                            cols[peer] = "(no exact mode)".ljust(19)
                            continue
                        t, verdict, _ = run_marabou(net, box, args.timeout)
                        cols[peer] = fmt(t, verdict)
                    else:
                        t, verdict, lo, hi = run_ours(net, box, config, args.backend, peer == "bnb")
                        cols[peer] = fmt(t, verdict, lo, hi)
                    times[peer] = t
                    totals[peer] += t
                ratios = []
                for peer in ("milp", "marabou"):
                    ok = peer in times and "bnb" in times
                    ratios.append(f"{times[peer] / max(times['bnb'], 1e-9):8.1f}x" if ok else " " * 9)
                mode = "exact" if exact else "certify"
                print(f"{case:10s} {scale:5.2f} {mode:7s} | {cols.get('milp', '-'.ljust(40)):40s} | "
                      f"{cols.get('bnb', '-'.ljust(40)):40s} | {cols.get('marabou', '-'.ljust(19)):19s} | "
                      f"{ratios[0]} {ratios[1]}", flush=True)
    print("total: " + ", ".join(f"{peer} {t:.2f}s" for peer, t in totals.items()))


if __name__ == "__main__":
    main()

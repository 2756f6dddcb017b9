"""SDP time against the number of neurons, SCS and Clarabel side by side.

    python benchmarks/sdp_scaling.py [--sizes 16,32,64,128,256,512] [--backends scs,clarabel]
                                     [--time-limit 45] [--clarabel-max 100] [--smooth] [--tol 1e-6]

Nets 2-(n/2)-(n/2)-2 with random weights (N(0, 1/fan_in), seed 0) and every neuron's slope in [0, 1] (a global
ReLU bound: every neuron is free, the LMI has order N = n + 2); with ``--smooth`` the ranges are [0.25, 1] (a
tanh-like secant range: the multipliers then also weigh dense rank-one terms). Printed per size and backend: the
solver status, the seconds (model building, solve and float64 re-check), the bound, and side by side the naive
product of norms and a lower bound (max ||M|| over slope vertices: 64 random ones improved by greedy flips, and, for
[0, 1], over the
Jacobians of the bias-free ReLU net at 20000 directions) with the ratios. Clarabel is an
interior-point method whose PSD cone Hessian is dense of order N(N+1)/2: above ``--clarabel-max`` neurons it is
skipped (its memory would grow as N^4). ``--time-limit`` bounds each solve; a stopped solve gives no bound.
"""

from __future__ import annotations

import argparse
import math
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from lipsdp import sampled_lower_bound  # noqa: E402  (benchmarks/lipsdp.py)

from certify.engines.lipsdp import lipschitz_sdp  # noqa: E402
from certify.solvers.sdp import installed_backends  # noqa: E402


def random_chain(n: int, seed: int = 0) -> list[np.ndarray]:
    rng = np.random.default_rng(seed)
    sizes = [2, n // 2, n - n // 2, 2]
    return [rng.normal(size=(m, k)) / math.sqrt(k) for k, m in zip(sizes[:-1], sizes[1:])]


def _gain(weights, svals) -> float:
    m = weights[0]
    for w, s in zip(weights[1:], svals):
        m = w @ (s[:, None] * m)
    return float(np.linalg.norm(m, 2))


def vertex_lower_bound(weights, lower, upper, draws: int = 64, passes: int = 2, seed: int = 1) -> float:
    """max ||M|| over slope vertices: the best of ``draws`` random vertices, then greedy single-neuron flips
    (``passes`` sweeps). A lower bound on the sup over the slope box that the SDP bounds from above."""
    rng = np.random.default_rng(seed)
    best, best_s = -1.0, None
    for k in range(draws):
        s = [b.copy() if k == 0 else np.where(rng.random(a.size) < 0.5, a, b) for a, b in zip(lower, upper)]
        g = _gain(weights, s)
        if g > best:
            best, best_s = g, s
    for _ in range(passes):
        improved = False
        for layer, (a, b) in enumerate(zip(lower, upper)):
            for i in range(a.size):
                old = best_s[layer][i]
                best_s[layer][i] = a[i] if old == b[i] else b[i]
                g = _gain(weights, best_s)
                if g > best:
                    best, improved = g, True
                else:
                    best_s[layer][i] = old
        if not improved:
            break
    return best


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--sizes", default="16,32,64,128,256,512")
    ap.add_argument("--backends", default=",".join(installed_backends()))
    ap.add_argument("--time-limit", type=float, default=45.0)
    ap.add_argument("--clarabel-max", type=int, default=100)
    ap.add_argument("--smooth", action="store_true")
    ap.add_argument("--tol", type=float, default=1e-6, help="solver tolerance (SCS: eps_abs = eps_rel)")
    args = ap.parse_args(argv)
    backends = [b for b in args.backends.split(",") if b]
    lo_slope = 0.25 if args.smooth else 0.0
    print(f"SDP scaling: nets 2-(n/2)-(n/2)-2, slopes in [{lo_slope}, 1], time limit {args.time_limit:g} s per solve, "
          f"tol {args.tol:g}")
    print(f"{'neurons':>8}{'N':>6}  {'backend':<9}{'status':<12}{'seconds':>9}{'bound':>11}{'naive':>11}"
          f"{'lower':>11}{'/naive':>8}{'/lower':>8}")
    for n in [int(s) for s in args.sizes.split(",") if s]:
        weights = random_chain(n)
        lower = [np.full(w.shape[0], lo_slope) for w in weights[:-1]]
        upper = [np.ones(w.shape[0]) for w in weights[:-1]]
        naive = float(np.prod([np.linalg.norm(w, 2) for w in weights]))
        low = vertex_lower_bound(weights, lower, upper)
        if lo_slope == 0.0:  # the bias-free ReLU net's own Jacobians are slope vertices too
            low = max(low, sampled_lower_bound(weights, 20_000))
        for backend in backends:
            head = f"{n:8d}{n + 2:6d}  {backend:<9}"
            if backend == "clarabel" and n > args.clarabel_max:
                print(f"{head}{'skipped':<12}  dense cone Hessian of order {(n + 2) * (n + 3) // 2}")
                continue
            res = lipschitz_sdp(weights, lower, upper, backend=backend, time_limit=args.time_limit, tol=args.tol)
            if res.value is None:
                print(f"{head}{res.status.value:<12}{res.seconds:9.2f}{'none':>11}{naive:11.4f}{low:11.4f}"
                      f"{'':>8}{'':>8}  {res.reason[:70]}")
                continue
            print(f"{head}{res.status.value:<12}{res.seconds:9.2f}{res.value:11.4f}{naive:11.4f}{low:11.4f}"
                  f"{res.value / naive:8.3f}{res.value / low:8.3f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

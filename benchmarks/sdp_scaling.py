"""SDP time against the number of neurons: the low-rank interior-point back-end ('ipm') beside cvxpy + SCS/Clarabel.

    python benchmarks/sdp_scaling.py [--sizes 32,64,128,256,512] [--layers 2] [--old scs,clarabel]
                                     [--time-limit 45] [--scs-max 512] [--clarabel-max 100] [--smooth] [--tol 1e-6]

Nets 2-(n/L)-...-(n/L)-2 with L hidden layers (``--layers``, default 2) and random weights (N(0, 1/fan_in), seed 0),
every neuron's slope in [0, 1] (a global ReLU bound: every neuron is free, the LMI has order N = n + 2); with
``--smooth`` the ranges are [0.25, 1] (a tanh-like secant range: the multipliers then also weigh dense rank-one
terms). The same LMI (certify.engines.lipsdp.to_program) goes to each solver:

* ``new``: back-end 'ipm' (certify/solvers/sdp_ipm.py), a primal-dual interior-point method whose Schur complement
  uses the rank-2 coefficient of each neuron's multiplier (O(N^3) per iteration);
* ``old``: cvxpy with SCS (the previous default; a first-order method on the dense PSD cone) and Clarabel (an
  interior-point method whose PSD cone Hessian is dense of order N(N+1)/2, so its memory grows as N^4: above
  ``--clarabel-max`` neurons it is skipped; SCS above ``--scs-max``).

Printed per size and solver: the status, the seconds (model building, solve and the float64 re-check, both passes of
lipschitz_sdp), the re-checked bound ('none' when the re-check or the status refused it), whether it was re-checked,
the bound divided by the new one, and side by side the naive product of norms and a lower bound (max ||M|| over
slope vertices: 64 random ones improved by greedy flips, and, for [0, 1] with two hidden layers, over the Jacobians
of the bias-free ReLU net at 20000 directions). ``--time-limit`` bounds each solve; a stopped solve gives no bound.
Compare under OMP_NUM_THREADS=1 (the machine may be shared): the ratios are the figures.

Measured (2 cores shared with other jobs, OMP_NUM_THREADS=1, ``--sizes 64,128,256,512 --old scs --time-limit 60``,
load average 11-14): ipm 0.23 / 0.90 / 10.2 / 27.1 s, every bound re-checked (3.0873, 3.7926, 5.1539, 7.2495);
SCS 19.3 s at 64 neurons (bound 1.0003x ipm's, 84x slower), and at 128, 256, 512 neurons stopped at the time
limit as inaccurate, so no bound. The same ipm run alone (``--old ""``): 0.08 / 0.32 / 2.07 / 17.7 s at load 12,
0.04 / 0.17 / 0.94 / 7.07 s at load 1.0. Without OMP_NUM_THREADS set, 256 neurons took 21.4 s against 1.34 s
with it (load 3.3) until the solve and re-check ran with one BLAS thread themselves (solvers/threads.py): now 1.7-2.1 s
at 256 and 8.1-10.9 s at 512 either way (load 3.5-3.9).
"""

from __future__ import annotations

import argparse
import math
import os
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from lipsdp import sampled_lower_bound  # noqa: E402  (benchmarks/lipsdp.py)

from certify.engines.lipsdp import lipschitz_sdp  # noqa: E402
from certify.solvers.sdp import installed_backends  # noqa: E402


def random_chain(n: int, seed: int = 0, layers: int = 2) -> list[np.ndarray]:
    """Weights of a 2-(n/layers)-...-2 net (the first hidden layers get the remainder)."""
    rng = np.random.default_rng(seed)
    widths = [n // layers + (1 if i < n % layers else 0) for i in range(layers)]
    sizes = [2, *widths, 2]
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
    ap.add_argument("--sizes", default="32,64,128,256,512")
    ap.add_argument("--layers", type=int, default=2)
    ap.add_argument("--old", default=",".join(installed_backends()), help="cvxpy back-ends to compare against")
    ap.add_argument("--time-limit", type=float, default=45.0)
    ap.add_argument("--scs-max", type=int, default=512)
    ap.add_argument("--clarabel-max", type=int, default=100)
    ap.add_argument("--smooth", action="store_true")
    ap.add_argument("--tol", type=float, default=1e-6, help="solver tolerance (SCS: eps_abs = eps_rel)")
    args = ap.parse_args(argv)
    old = [b for b in args.old.split(",") if b]
    limits = {"scs": args.scs_max, "clarabel": args.clarabel_max}
    lo_slope = 0.25 if args.smooth else 0.0
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    print(f"SDP scaling: nets 2-(n/{args.layers})x{args.layers}-2, slopes in [{lo_slope}, 1], time limit "
          f"{args.time_limit:g} s per solve, tol {args.tol:g}, OMP_NUM_THREADS={os.environ.get('OMP_NUM_THREADS', '')}"
          f", load average {load:.2f}")
    print(f"{'neurons':>8}{'N':>6}  {'solver':<13}{'status':<12}{'seconds':>9}{'bound':>11}{'checked':>9}"
          f"{'/new':>9}{'speed-up':>10}{'naive':>10}{'lower':>10}{'new/lower':>10}")
    for n in [int(s) for s in args.sizes.split(",") if s]:
        weights = random_chain(n, layers=args.layers)
        lower = [np.full(w.shape[0], lo_slope) for w in weights[:-1]]
        upper = [np.ones(w.shape[0]) for w in weights[:-1]]
        naive = float(np.prod([np.linalg.norm(w, 2) for w in weights]))
        low = vertex_lower_bound(weights, lower, upper)
        if lo_slope == 0.0 and args.layers == 2:  # the bias-free ReLU net's own Jacobians are slope vertices too
            low = max(low, sampled_lower_bound(weights, 20_000))
        new = None
        for solver in ["ipm", *old]:
            label = "new ipm" if solver == "ipm" else f"old {solver}"
            head = f"{n:8d}{n + 2:6d}  {label:<13}"
            if solver in limits and n > limits[solver]:
                print(f"{head}{'skipped':<12}  (above --{solver}-max {limits[solver]})")
                continue
            res = lipschitz_sdp(weights, lower, upper, backend=solver, time_limit=args.time_limit, tol=args.tol)
            if solver == "ipm":
                new = res
            checked = res.value is not None
            bound = f"{res.value:11.4f}" if checked else f"{'none':>11}"
            rel = f"{res.value / new.value:9.6f}" if checked and new and new.value else f"{'':>9}"
            speed = f"{res.seconds / new.seconds:9.1f}x" if new and solver != "ipm" else f"{'':>10}"
            tail = f"{naive:10.4f}{low:10.4f}{res.value / low:10.4f}" if checked and solver == "ipm" else ""
            print(f"{head}{res.status.value:<12}{res.seconds:9.2f}{bound}{'yes' if checked else 'no':>9}{rel}{speed}"
                  f"{tail}" + ("" if checked else f"  {res.reason[:60]}"))
    print("(checked: the float64 re-check proved the bound; /new: bound over the new one; speed-up: old seconds "
          "over new seconds)")
    return 0


if __name__ == "__main__":
    sys.exit(main())

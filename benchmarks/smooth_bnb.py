"""Branch and bound over sub-boxes on smooth nets: time to a verdict and bracket width against time.

For tanh, sigmoid and GELU nets 2-32-32-2 and 4-64-64-4 (random, seeded; the output layer is scaled so that the
largest sampled ||A*(x)||_2 (or ||J||) over the box is ``--target``, 0.9 by default: certifiable, not trivially),
:func:`certify.engines.box_search.box_search` runs with threshold 1 - 1e-6 three ways in the same process:

* ``box B&B``: interval matrices + the centred bound (:mod:`certify.bounds.centred`) per sub-box;
* ``+2nd B&B``: the same plus the second-order bound (:mod:`certify.bounds.second_order`), deferred to the boxes
  about to be split (the default of :class:`certify.config.BoxSearchOptions`);
* ``Cor.4 B&B``: Corollary 4 alone per sub-box;
* ``interval B&B``: interval matrices alone per sub-box;

and, as the one-shot baseline, Corollary 4 on the whole box (``certify.bounds.corollary4.product_bound``). Printed: the
verdict, the time to it, the bracket width upper - lower at 1 s, 5 s and at the end, boxes, and the proven
volume fraction; then the width ratio of each B&B variant to the Corollary 4 one-shot bound.

    python benchmarks/smooth_bnb.py [--timeout 20] [--quantity A_STAR|JACOBIAN] [--target 0.9] [--quick] [--bracket]
        [--nets 4-64-64-4] [--acts tanh,gelu] [--variants "box B&B,+2nd B&B"] [--cpu-clock] [--workers N]

``--cpu-clock`` counts the timeouts in CPU seconds of the process (on a shared, loaded machine the wall clock
measures the other jobs; with OMP_NUM_THREADS=1 a CPU second is what one idle core gives in a second).
``--workers N``: the searches on N local worker processes (``VerifyConfig.workers``, as ``certify --workers N``;
wall clock only: the CPU seconds printed are then the main process's).

``--bracket`` drops the threshold: the search then closes the gap between the best replayed lower bound and the
upper bound to a relative 1e-3 (the bracket width against time without a verdict to stop at).

(the shared benchmark folder is not used: the instances are generated.)

Measured (2 shared cores, A*, 20 s; box B&B before = INTERVAL + PRODUCT, after = INTERVAL + CENTRED, separate
runs under different load: compare with the interval B&B row of the same run):
4-64-64-4 tanh: unknown, upper 2.08, proven 0 -> certified at 20.0 s (interval B&B in that run: upper 1.78);
sigmoid: unknown, upper 1.033, proven 0.04 -> certified in 0.48 s; GELU: unknown, upper 2.61 -> upper 1.095,
proven 0.12. 2-32-32-2: certified in 0.4-0.6 s -> 0.13-0.17 s (2271/279/1983 -> 523/107/425 boxes).

Second-order bound (OMP_NUM_THREADS=1, --cpu-clock --timeout 30 --nets 4-64-64-4 --acts tanh,gelu --variants
"box B&B,+2nd B&B", A* and J in two processes side by side; load average 14-21 on the 2 cores, so CPU seconds):
  A*  tanh: box B&B certified in 24.5 s (95689 boxes) | +2nd certified in 15.0 s (10197 boxes)
  A*  GELU: box B&B unknown at 30 s, upper 1.084, proven 0.18 | +2nd certified in 9.6 s (6913 boxes)
  J   tanh: box B&B unknown at 30 s, upper 1.186, proven 0.003 | +2nd unknown at 30 s, upper 1.126, proven 0.47
  J   GELU: box B&B unknown at 30 s, upper 1.23, proven 0.000 | +2nd certified in 23.6 s (14517 boxes)
J tanh with ``--timeout 60 --workers 2`` (wall clock, load 1.2-1.5): certified in 26.4 s (38711 boxes; the same
run serial: 45.7 s); from the command line, ``certify NET.onnx --region box.yaml --check contraction`` certifies it
in 27.4 s with the default 2 workers, 39.4 s with ``--workers 1``.
On one 4-64-64-4 box the second-order bound costs about 6x the interval + centred pair and is below them on
every box of half-width <= 0.1 (tanh) or 0.2 (GELU), above them on boxes of half-width 0.5.
"""

from __future__ import annotations

import argparse
import math
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from certify.bounds.corollary4 import product_bound  # noqa: E402
from certify.config import (  # noqa: E402
    BoundKind,  # noqa: E402
    BoxSearchOptions,
    SdpUse,
    VerifyConfig,  # noqa: E402
)
from certify.engines.box_search import box_search  # noqa: E402
from certify.engines.contract import Query  # noqa: E402
from certify.engines.sampling import falsify  # noqa: E402
from certify.ir import activations as acts  # noqa: E402
from certify.ir.box import Box  # noqa: E402
from certify.ir.network import Layer, Network  # noqa: E402
from certify.ir.quantity import Quantity  # noqa: E402

ACTS = {"tanh": acts.tanh, "sigmoid": acts.sigmoid, "gelu": acts.gelu}
SHAPES = ((2, (32, 32)), (4, (64, 64)))
VARIANTS = (
    ("box B&B", (BoundKind.INTERVAL, BoundKind.CENTRED)),
    ("+2nd B&B", (BoundKind.INTERVAL, BoundKind.CENTRED, BoundKind.SECOND_ORDER)),
    ("Cor.4 B&B", (BoundKind.PRODUCT,)),
    ("interval B&B", (BoundKind.INTERVAL,)),
)


def make_net(seed: int, n: int, widths, act) -> Network:
    rng = np.random.default_rng(seed)
    layers, prev = [], n
    for w in widths:
        layers.append(Layer(rng.normal(size=(w, prev)) / math.sqrt(prev), 0.5 * rng.normal(size=w), act))
        prev = w
    return Network(tuple(layers), rng.normal(size=(n, prev)) / math.sqrt(prev), 0.5 * rng.normal(size=n))


def scaled(net: Network, box: Box, quantity: str, target: float, seed: int) -> Network:
    """The net with its output layer scaled so that the sampled max of ||Q||_2 is ``target``."""
    q = Quantity.coerce(quantity)
    s = falsify(net, box, q, 2.0, VerifyConfig(samples=50_000, seed=seed, device="cpu", timeout=30.0))
    k = target / s.value
    return Network(net.layers, k * net.out_weight, k * net.out_bias)


def width_at(trace, t: float) -> float:
    """upper - lower of the last trace entry at or before t seconds."""
    w = math.inf
    for sec, lo, up in trace:
        if sec > t:
            break
        w = up - lo
    return w


def fmt(v: float) -> str:
    return "inf" if not math.isfinite(v) else f"{v:.3g}"


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--timeout", type=float, default=20.0)
    ap.add_argument("--quantity", choices=("A_STAR", "JACOBIAN"), default="A_STAR")
    ap.add_argument("--target", type=float, default=0.9)
    ap.add_argument("--quick", action="store_true", help="2-32-32-2 only, 5 s")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--acts", default=",".join(ACTS), help="comma-separated activations (default: all)")
    ap.add_argument("--nets", default="", help="comma-separated shapes such as 4-64-64-4 (default: all)")
    ap.add_argument("--variants", default="", help="comma-separated method names (default: all)")
    ap.add_argument("--bracket", action="store_true",
                    help="no threshold: bracket the supremum to a relative gap of 1e-3 (width against time)")
    ap.add_argument("--cpu-clock", action="store_true",
                    help="count the timeouts (and the times printed) in CPU seconds of this process, not wall seconds "
                         "(for a loaded machine; run with OMP_NUM_THREADS=1)")
    ap.add_argument("--workers", type=int, default=1, help="local worker processes per search (default 1)")
    args = ap.parse_args(argv)
    if args.cpu_clock and args.workers > 1:
        ap.error("--cpu-clock counts this process's CPU only: use the wall clock with --workers")
    if args.cpu_clock:  # every deadline of the searches is a time.perf_counter() value
        time.perf_counter = time.process_time
    timeout = 5.0 if args.quick else args.timeout
    shapes = SHAPES[:1] if args.quick else SHAPES
    if args.nets:
        wanted = set(args.nets.split(","))
        shapes = tuple(s for s in shapes if f"{s[0]}-{'-'.join(map(str, s[1]))}-{s[0]}" in wanted)
    chosen = {a: ACTS[a] for a in args.acts.split(",")}
    variants = tuple(v for v in VARIANTS if not args.variants or v[0] in args.variants.split(","))
    thr = 1 - 1e-6
    what = f"sup ||{'A*' if args.quantity == 'A_STAR' else 'J'}||_2"
    goal = "bracketed to a relative gap 1e-3" if args.bracket else f"<= {thr}"
    print(f"{what} {goal} on [-1, 1]^n, sampled max scaled to {args.target}; timeout {timeout:g} s per run")
    head = (f"{'net':<22}{'method':<14}{'verdict':<11}{'t_verdict':>10}{'w@1s':>9}{'w@5s':>9}{'w_end':>9}"
            f"{'lower':>9}{'upper':>10}{'boxes':>9}{'proven':>8}{'w/Cor4':>9}{'cpu_s':>8}")
    print(head)
    print("-" * len(head))
    for n, widths in shapes:
        for name, act in chosen.items():
            box = Box(-np.ones(n), np.ones(n))
            net = scaled(make_net(args.seed, n, widths, act()), box, args.quantity, args.target, args.seed)
            label = f"{n}-{'-'.join(map(str, widths))}-{n} {name}"
            t = time.perf_counter()
            cor4 = product_bound(net, box, 2.0, args.quantity, True).value
            t_cor4 = time.perf_counter() - t
            base_w = cor4 - args.target
            print(f"{label:<22}{'Cor.4 once':<14}{'certified' if cor4 <= thr else 'unknown':<11}{t_cor4:>10.3f}"
                  f"{'':>9}{'':>9}{fmt(base_w):>9}{'':>9}{fmt(cor4):>10}{1:>9}{'':>8}{1.0:>9.2f}")
            for vname, kinds in variants:
                config = VerifyConfig(timeout=timeout, seed=args.seed, workers=args.workers,
                                      boxes=BoxSearchOptions(bounds=kinds, sdp=SdpUse.NEVER))
                cpu = time.process_time()
                res = box_search(Query(net, box, Quantity.coerce(args.quantity), config,
                                       threshold=None if args.bracket else thr))
                cpu = time.process_time() - cpu
                verdict = {"certified": "certified", "exceeded": "exceeded", "bracketed": "gap<1e-3"}.get(
                    res.outcome.value, "unknown")
                t_v = f"{res.seconds:.2f}" if verdict != "unknown" else "-"
                w_end = res.upper - res.lower
                print(f"{'':<22}{vname:<14}{verdict:<11}{t_v:>10}{fmt(width_at(res.trace, 1.0)):>9}"
                      f"{fmt(width_at(res.trace, 5.0)):>9}{fmt(w_end):>9}{res.lower:>9.4f}{res.upper:>10.4g}"
                      f"{res.boxes:>9}{res.proven_fraction:>8.3f}{fmt(w_end / base_w):>9}{cpu:>8.1f}")
            sys.stdout.flush()
    print("\ncpu_s = CPU seconds of this process during the search (on a loaded machine it is below the wall time,"
          " which the timeout counts); w = upper - lower; w/Cor4 = final width over the width of the one-shot "
          "Corollary 4 bracket "
          "[sampled max, Cor.4]; in certify mode the upper bound is the largest closed box bound (<= threshold).")
    print("Corollary 4 is a product of norms: no split makes it converge to the norm of the product, so it never"
          " closes the gap on these nets; interval matrices converge as boxes shrink.")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

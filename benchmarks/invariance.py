"""Time to a verdict (certify mode) and to the exact bracket (exact mode) of the invariance check, with and
without the cutoff rows on the output MILPs, side by side in one run.

    python benchmarks/invariance.py [--backends cbc highs] [--cases 2-16-16-2 2-32-32-2 4-32-32-4]
                                    [--scales 0.97 1.03] [--samples 20000] [--timeout 600]
                                    [--modes certify exact] [--no-plain]

Nets: ``n-w-w-n`` ReLU nets with Gaussian weights (seeded), the output layer scaled so that the largest |f_i| over
200,000 uniform samples is ``scale`` times the box's half-width ([-1, 1]^n): 0.97 maps the box inside itself with a
thin margin (certified), 1.03 leaves it (falsified). "plain" is ``check_invariance`` with ``config.invariance``
milp_cutoff=False, parallel_sides=False (one max/min MILP per output side, one after another: the reference),
"cutoff" the defaults
(cutoff rows; in certify mode, sides on up to 2 cores for CBC). Each line prints both times and their ratio.

Measured (2 shared cores, one run; seconds, plain -> new):

    case        scale  backend  certify            exact
    2-16-16-2   0.97   cbc      1.66 -> 0.60       1.41 -> 0.44
    2-16-16-2   0.97   highs    1.14 -> 0.35       1.21 -> 0.62
    2-16-16-2   1.03   both     0.06 (sampling)    1.07 -> 0.36 (cbc), 0.89 -> 0.40 (highs)
    2-32-32-2   0.97   cbc      11.2 -> 4.56       6.72 -> 3.80
    2-32-32-2   0.97   highs    10.0 -> 5.64       11.5 -> 8.38
    2-32-32-2   1.03   both     0.07 (sampling)    10.2 -> 4.54 (cbc), 6.46 -> 4.62 (highs)
    4-32-32-4   0.97   cbc      76.6 -> 40.5       66.0 -> 68.5 (margin 0.0036 at a vertex: no gain)
    4-32-32-4   1.03   cbc      0.07 (sampling)    100 -> 63.4

Of the certify-mode gain on 4-32-32-4 about 1.4x is the two parallel CBC sides (sequential with cutoff rows:
60.3 s, parallel 43.7 s, same run) and the rest the cutoff rows.
"""

from __future__ import annotations

import argparse
import sys
import time
from dataclasses import replace
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from certify.checks.invariance import check_invariance  # noqa: E402
from certify.config import VerifyConfig  # noqa: E402
from certify.ir import activations as acts  # noqa: E402
from certify.ir.box import Box  # noqa: E402
from certify.ir.network import Layer, Network  # noqa: E402


def make_net(n: int, width: int, depth: int, scale: float, seed: int = 0) -> Network:
    """A ReLU net n -> width^depth -> n, output scaled so that max |f| over 200k samples of [-1, 1]^n is ``scale``."""
    rng = np.random.default_rng(seed)
    layers, prev = [], n
    for _ in range(depth):
        layers.append(Layer(rng.normal(size=(width, prev)) / np.sqrt(prev), 0.5 * rng.normal(size=width), acts.relu()))
        prev = width
    out_w = rng.normal(size=(n, prev)) / np.sqrt(prev)
    out_b = 0.5 * rng.normal(size=n)
    net = Network(tuple(layers), out_w, out_b)
    probe = np.abs(net.forward(np.random.default_rng(seed + 1).uniform(-1, 1, (200_000, n)))).max()
    return Network(tuple(layers), out_w * (scale / probe), out_b * (scale / probe))


def parse_case(text: str) -> tuple[int, int, int]:
    """'2-32-32-2' -> (n, width, depth)."""
    parts = [int(p) for p in text.split("-")]
    if len(parts) < 3 or parts[0] != parts[-1] or len(set(parts[1:-1])) != 1:
        raise SystemExit(f"case {text!r}: expected n-w-...-w-n")
    return parts[0], parts[1], len(parts) - 2


def run(net: Network, box: Box, config: VerifyConfig, backend: str, new: bool):
    """One check: ``new`` = the defaults (cutoff rows, parallel sides); else cutoff and parallel both off."""
    t0 = time.perf_counter()
    config = config.with_(solvers=replace(config.solvers, milp=backend),
                          invariance=replace(config.invariance, milp_cutoff=new, parallel_sides=new))
    res = check_invariance(net, box, config)
    return time.perf_counter() - t0, res


def fmt(seconds: float, res) -> str:
    return f"{seconds:8.2f}s {res.verdict.value:9s} [{res.lower:+.6f}, {res.upper:+.6f}]"


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--backends", nargs="+", default=["cbc", "highs"])
    ap.add_argument("--cases", nargs="+", default=["2-16-16-2", "2-32-32-2", "4-32-32-4"])
    ap.add_argument("--scales", nargs="+", type=float, default=[0.97, 1.03])
    ap.add_argument("--samples", type=int, default=20_000)
    ap.add_argument("--timeout", type=float, default=600.0)
    ap.add_argument("--modes", nargs="+", default=["certify", "exact"], choices=["certify", "exact"])
    ap.add_argument("--no-plain", action="store_true", help="skip the reference runs without cutoff rows")
    args = ap.parse_args(argv)
    print(f"{'case':10s} {'scale':>5s} {'backend':7s} {'mode':7s} | {'plain (no cutoff)':45s} | "
          f"{'cutoff':45s} | ratio")
    total = {True: 0.0, False: 0.0}
    for case in args.cases:
        n, width, depth = parse_case(case)
        box = Box(-np.ones(n), np.ones(n))
        for scale in args.scales:
            net = make_net(n, width, depth, scale)
            for backend in args.backends:
                for exact in [m == "exact" for m in args.modes]:
                    config = VerifyConfig(samples=args.samples, timeout=args.timeout, exact=exact, device="cpu")
                    t_new, r_new = run(net, box, config, backend, True)
                    total[True] += t_new
                    plain = "(skipped)".ljust(45)
                    ratio = ""
                    if not args.no_plain:
                        t_old, r_old = run(net, box, config, backend, False)
                        total[False] += t_old
                        plain = fmt(t_old, r_old)
                        ratio = f"{t_old / max(t_new, 1e-9):6.2f}x"
                        if r_old.verdict is not r_new.verdict:
                            ratio += "  VERDICTS DIFFER"
                    mode = "exact" if exact else "certify"
                    print(f"{case:10s} {scale:5.2f} {backend:7s} {mode:7s} | {plain} | {fmt(t_new, r_new)} | {ratio}",
                          flush=True)
    if not args.no_plain:
        print(f"total: plain {total[False]:.1f}s, cutoff {total[True]:.1f}s "
              f"({total[False] / max(total[True], 1e-9):.2f}x)")
    else:
        print(f"total: cutoff {total[True]:.1f}s")


if __name__ == "__main__":
    main()

"""Sampling throughput of falsification: points per second INCLUDING the induced norms, against a plain baseline.

    python benchmarks/falsify_throughput.py [--threads 2] [--points 400000] [--repeats 3] [--chunk N]

Nets (random Gaussian weights / sqrt(fan_in), seeded): 2-64-64-2 ReLU and 4-128-128-128-4 tanh, over [-1, 1]^n,
on CPU. For each net and p in {2, 1, inf}, side by side in the same run:

* ``ours``: :func:`certify.engines.sampling.norms_at` in float32 on the seeded design points (chunked as ``falsify``
does):
  slopes, the chain product from the narrow end, the batched norm (2x2 closed form / Gram eigvalsh);
* ``baseline``: ``torch.func.vmap(torch.func.jacrev(model))`` on the equivalent ``torch.nn.Sequential`` and
  ``torch.linalg.matrix_norm(J, ord=p)``, float32, best of chunk sizes 4096 and 16384;
* ``falsify``: the whole :func:`certify.engines.sampling.falsify` call (design, sampling, float64 local search, replay),
  points evaluated per second of wall time.

The quantity is J (A* = J for ReLU); for tanh the A* sampling rate (secant slopes) is printed too. Rates are the
best of ``--repeats`` runs (the machine may be shared). ``max rel diff`` compares ours with the baseline on the
first chunk (float32 rounding only).

Measured on the project machine (2 cores, torch 2.13 CPU, 2 threads, 200k points, load average 1.6 from other
jobs): 2-64-64-2 ReLU 3.8-4.2 M points/s (baseline 1.4-1.6 M, ratio 2.4-3.0; whole falsify() 0.9-0.96 M/s);
4-128x3-4 tanh 0.32-0.45 M points/s (baseline 0.25-0.31 M, ratio 1.3-1.5). Under heavy contention from other
processes two threads can collapse by 10x or more: compare only ratios from the same run.
"""

from __future__ import annotations

import argparse
import math
import os
import sys
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from certify.config import VerifyConfig  # noqa: E402
from certify.engines.sampling import default_chunk_size, falsify, norms_at, sample_points  # noqa: E402
from certify.ir import activations as acts  # noqa: E402
from certify.ir.box import Box  # noqa: E402
from certify.ir.kernels import TorchNet  # noqa: E402
from certify.ir.network import Layer, Network
from certify.ir.quantity import Quantity

P_LABEL = {2.0: "2", 1.0: "1", math.inf: "inf"}


def random_net(sizes, act, seed: int) -> Network:
    rng = np.random.default_rng(seed)
    layers = [
        Layer(rng.normal(size=(sizes[i + 1], sizes[i])) / math.sqrt(sizes[i]), 0.5 * rng.normal(size=sizes[i + 1]), act)
        for i in range(len(sizes) - 2)
    ]
    out = rng.normal(size=(sizes[-1], sizes[-2])) / math.sqrt(sizes[-2])
    return Network(tuple(layers), out, 0.5 * rng.normal(size=sizes[-1]))


def torch_model(net: Network) -> torch.nn.Module:
    mods = []
    for layer in net.layers:
        lin = torch.nn.Linear(layer.weight.shape[1], layer.width)
        lin.weight.data = torch.tensor(layer.weight, dtype=torch.float32)
        lin.bias.data = torch.tensor(layer.bias, dtype=torch.float32)
        mods += [lin, torch.nn.ReLU() if layer.activation.kind is acts.ActivationKind.RELU else torch.nn.Tanh()]
    lin = torch.nn.Linear(net.out_weight.shape[1], net.n_out)
    lin.weight.data = torch.tensor(net.out_weight, dtype=torch.float32)
    lin.bias.data = torch.tensor(net.out_bias, dtype=torch.float32)
    return torch.nn.Sequential(*mods, lin).requires_grad_(False)


def best_rate(fn, n_points: int, repeats: int) -> float:
    fn()  # warm-up
    best = math.inf
    for _ in range(repeats):
        t = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - t)
    return n_points / best


def chunked(fn, x: torch.Tensor, chunk: int):
    def run():
        with torch.no_grad():
            for i in range(0, x.shape[0], chunk):
                fn(x[i : i + chunk])

    return run


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--points", type=int, default=400_000)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--chunk", type=int, default=0, help="points per chunk for ours (0: falsify's default)")
    args = ap.parse_args(argv)
    torch.set_num_threads(args.threads)
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    print(f"torch {torch.__version__}, CPU, {torch.get_num_threads()} threads, {os.cpu_count()} cores, "
          f"load average {load:.2f}, {args.points} points, best of {args.repeats}")
    header = (f"{'net':>22s} {'qty':>4s} {'p':>3s} {'ours pts/s':>12s} {'baseline pts/s':>15s} {'ratio':>6s} "
              f"{'falsify pts/s':>14s} {'max rel diff':>12s}")
    print(header)
    print("-" * len(header))
    cases = [((2, 64, 64, 2), acts.relu(), "2-64-64-2 relu"), ((4, 128, 128, 128, 4), acts.tanh(), "4-128x3-4 tanh")]
    for sizes, act, label in cases:
        net = random_net(sizes, act, seed=0)
        box = Box(-np.ones(sizes[0]), np.ones(sizes[0]))
        tnet = TorchNet.of(net, torch.float32, "cpu")
        model = torch_model(net)
        jac = torch.func.vmap(torch.func.jacrev(model))
        x = sample_points(box, args.points, seed=0, device="cpu", dtype=torch.float32)
        chunk = args.chunk or default_chunk_size(net, net.n_states, cuda=False)
        quantities = [Quantity.JACOBIAN] + ([Quantity.A_STAR] if not net.piecewise_linear else [])
        for p in (2.0, 1.0, math.inf):
            base = max(
                best_rate(chunked(lambda v, p=p, jac=jac: torch.linalg.matrix_norm(jac(v), ord=p), x, c), len(x),
                          args.repeats)
                for c in (4096, 16384)
            )
            ref = torch.linalg.matrix_norm(jac(x[:chunk]), ord=p)
            for q in quantities:
                kernel = chunked(lambda v, q=q, p=p, tnet=tnet, cols=net.n_states: norms_at(tnet, v, q, p, cols), x,
                                 chunk)
                ours = best_rate(kernel, len(x), args.repeats)
                cfg = VerifyConfig(device="cpu", samples=args.points, seed=0, timeout=600.0)
                r = falsify(net, box, q, p, cfg)
                diff = "" if q is not Quantity.JACOBIAN else (
                    f"{float(((norms_at(tnet, x[:chunk], q, p, net.n_states) - ref).abs() / ref.abs()).max()):.1e}"
                )
                print(f"{label:>22s} {q.name[:4]:>4s} {P_LABEL[p]:>3s} {ours:12.3g} {base:15.3g} "
                      f"{ours / base:6.1f} {r.points / r.seconds:14.3g} {diff:>12s}")
    print(f"(ours: chunk {args.chunk or 'default'}; ratio = ours / baseline)")


if __name__ == "__main__":
    main()

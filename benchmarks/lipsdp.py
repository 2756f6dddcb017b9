"""Reproduce the published LipSDP-Neuron global l2 bound of the LipSDP random 2-10-30-20-2 ReLU net.

    python benchmarks/lipsdp.py [folder] [--backends scs,clarabel] [--samples N]

``folder`` defaults to ../shared/benchmarks/lipsdp (relative to the repository). Every neuron's slope is in [0, 1]
(global bound of a bias-free ReLU net). Printed side by side: the SDP bound per backend with its time, the
published value (``published.json``), the naive product of layer norms, and a sampled lower bound (the largest
||J(x)||_2 over sampled directions: the net has no biases, so its regions are cones through the origin and
directions on the unit circle reach every region of a 2-input net).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from certify.engines.lipsdp import lipschitz_sdp  # noqa: E402
from certify.solvers.sdp import installed_backends  # noqa: E402

DEFAULT_FOLDER = Path(__file__).resolve().parents[1] / ".." / "shared" / "benchmarks" / "lipsdp"
NET = "random_2-10-30-20-2.onnx"


def _private_chain(path: Path) -> tuple[list[np.ndarray], list[np.ndarray]]:
    """A Gemm/MatMul(+Add) + Relu chain read with onnx.numpy_helper: (weights (out, in), biases)."""
    import onnx
    from onnx import numpy_helper

    model = onnx.load(str(path))
    init = {t.name: numpy_helper.to_array(t).astype(np.float64) for t in model.graph.initializer}
    weights, biases = [], []
    for node in model.graph.node:
        attrs = {a.name: onnx.helper.get_attribute_value(a) for a in node.attribute}
        if node.op_type == "Gemm":
            w = init[node.input[1]] * attrs.get("alpha", 1.0)
            weights.append(w if attrs.get("transB", 0) else w.T)
            b = init[node.input[2]] * attrs.get("beta", 1.0) if len(node.input) > 2 else np.zeros(weights[-1].shape[0])
            biases.append(np.broadcast_to(b, (weights[-1].shape[0],)).copy())
        elif node.op_type == "MatMul":
            weights.append(init[node.input[1]].T)
            biases.append(np.zeros(weights[-1].shape[0]))
        elif node.op_type == "Add":
            biases[-1] = biases[-1] + init[node.input[1]]
        elif node.op_type not in ("Relu", "Identity"):
            raise ValueError(f"{path}: node {node.name or node.op_type} ({node.op_type}) is not a Gemm/Relu chain")
    return weights, biases


def load_relu_chain(path: Path) -> list[np.ndarray]:
    """The weight matrices [W_0, ..., W_L] of a ReLU chain; certify.importers.load_model when it reads the file,
    else a small private Gemm/MatMul + Relu reader."""
    try:
        from certify.importers import load_model

        net = load_model(path)
        if all(layer.activation.name == "relu" for layer in net.layers) and net.skip is None:
            return [np.array(layer.weight) for layer in net.layers] + [np.array(net.out_weight)]
    except Exception:  # noqa: BLE001 - fall back to the private reader below
        pass
    return _private_chain(path)[0]


def sampled_lower_bound(weights: list[np.ndarray], samples: int, seed: int = 0) -> float:
    """max ||J(x)||_2 over ``samples`` points (directions on the unit sphere: the net is bias-free)."""
    rng = np.random.default_rng(seed)
    n0 = weights[0].shape[1]
    if n0 == 2:
        ang = np.linspace(0.0, 2 * np.pi, samples, endpoint=False)
        x = np.stack([np.cos(ang), np.sin(ang)], axis=1)
    else:
        x = rng.normal(size=(samples, n0))
    best = 0.0
    for chunk in np.array_split(x, max(1, samples // 20_000)):
        h = chunk
        jac = np.broadcast_to(np.eye(n0), (chunk.shape[0], n0, n0))
        for w in weights[:-1]:
            z = h @ w.T
            on = (z > 0).astype(np.float64)
            jac = on[:, :, None] * np.einsum("ij,bjk->bik", w, jac)
            h = np.maximum(z, 0.0)
        jac = np.einsum("ij,bjk->bik", weights[-1], jac)
        best = max(best, float(np.linalg.norm(jac, ord=2, axis=(1, 2)).max()))
    return best


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("folder", nargs="?", default=str(DEFAULT_FOLDER))
    ap.add_argument("--backends", default=",".join(installed_backends()))
    ap.add_argument("--samples", type=int, default=200_000)
    ap.add_argument("--time-limit", type=float, default=120.0)
    args = ap.parse_args(argv)
    folder = Path(args.folder)
    path = folder / NET
    if not path.exists():
        print(f"{path} not found; pass the folder holding {NET}")
        return 2
    published = json.loads((folder / "published.json").read_text())["global_l2_upper_bounds"]["LipSDP-Neuron"]
    weights = load_relu_chain(path)
    lower = [np.zeros(w.shape[0]) for w in weights[:-1]]
    upper = [np.ones(w.shape[0]) for w in weights[:-1]]
    naive = float(np.prod([np.linalg.norm(w, 2) for w in weights]))
    t0 = time.perf_counter()
    sampled = sampled_lower_bound(weights, args.samples)
    t_sampled = time.perf_counter() - t0
    sizes = "-".join(str(n) for n in [weights[0].shape[1]] + [w.shape[0] for w in weights])
    print(f"LipSDP benchmark {sizes} ReLU, global l2 bound; published LipSDP-Neuron = {published}")
    print(f"{'method':<22}{'bound':>12}{'/published':>12}{'/sampled':>10}{'seconds':>10}  note")
    print(f"{'sampled lower bound':<22}{sampled:12.4f}{sampled / published:12.5f}{1.0:10.4f}{t_sampled:10.2f}"
          f"  {args.samples} directions")
    print(f"{'product of norms':<22}{naive:12.4f}{naive / published:12.5f}{naive / sampled:10.4f}{0.0:10.2f}")
    ok = True
    for backend in [b for b in args.backends.split(",") if b]:
        res = lipschitz_sdp(weights, lower, upper, backend=backend, time_limit=args.time_limit)
        if res.value is None:
            ok = False
            print(f"{'SDP ' + backend:<22}{'none':>12}{'':>12}{'':>10}{res.seconds:10.2f}  {res.reason}")
            continue
        rel = abs(res.value - published) / published
        ok &= rel <= 1e-3
        print(
            f"{'SDP ' + backend:<22}{res.value:12.4f}{res.value / published:12.5f}{res.value / sampled:10.4f}"
            f"{res.seconds:10.2f}  N={res.size}, min eig {res.min_eig:.1e}, inflation {res.inflation:.1e}, "
            f"{'within' if rel <= 1e-3 else 'OUTSIDE'} 0.1% of published"
        )
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())

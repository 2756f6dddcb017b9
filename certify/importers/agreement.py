"""The numeric check that an imported :class:`~certify.ir.network.Network` is the model it came from.

Every import is compared with the original (onnxruntime for ONNX files, the module itself for PyTorch) on points;
a disagreement raises :class:`~certify.errors.ModelMismatchError` instead of returning an IR that analyses would
then certify. Tolerance per output entry:

    |ir - ref| <= rtol |ref| + atol max(1, max |ref|, max |x|)

The second term scales with the magnitudes involved because float32 rounding inside the model grows with the size
of its hidden values, not with the size of one output entry. Defaults depend on the model's float type.
"""

from __future__ import annotations

from typing import Callable

import numpy as np

from ..errors import ModelMismatchError
from ..ir.network import Network

# (rtol, atol) by the model's input dtype.
TOLERANCES = {
    np.dtype(np.float16): (1e-2, 1e-3),
    np.dtype(np.float32): (1e-4, 1e-5),
    np.dtype(np.float64): (1e-6, 1e-8),
}
IMPORT_SCALES = (0.1, 1.0, 10.0)
IMPORT_POINTS_PER_SCALE = 32


def _show(x: np.ndarray) -> str:
    """A point on one line (long vectors summarised)."""
    return np.array2string(x, precision=4, max_line_width=10_000, threshold=20, edgeitems=5).replace("\n", " ")


def import_points(n_in: int, seed: int = 0) -> np.ndarray:
    """Points for the check at import time, when the box is not known: N(0, I) times 0.1, 1 and 10, and 0.

    Shape (1 + 3 * 32, n_in).
    """
    rng = np.random.default_rng(seed)
    pts = [np.zeros((1, n_in))]
    for s in IMPORT_SCALES:
        pts.append(s * rng.standard_normal((IMPORT_POINTS_PER_SCALE, n_in)))
    return np.vstack(pts)


def compare(
    net: Network,
    reference: Callable[[np.ndarray], np.ndarray],
    points: np.ndarray,
    rtol: float,
    atol: float,
    source: str,
    against: str,
) -> float:
    """Raise ModelMismatchError unless ``net.forward`` matches ``reference`` on ``points`` (B, n_in).

    ``reference`` maps (B, n_in) float64 to (B, n_out). Returns the largest absolute difference.
    """
    pts = np.atleast_2d(np.asarray(points, dtype=np.float64))
    if pts.shape[1] != net.n_in:
        raise ModelMismatchError(
            f"{source}: agreement points have {pts.shape[1]} coordinates but the model has {net.n_in} inputs"
        )
    if not np.all(np.isfinite(pts)):
        raise ModelMismatchError(f"{source}: agreement points contain NaN or infinite coordinates")
    ref = np.asarray(reference(pts), dtype=np.float64).reshape(pts.shape[0], -1)
    if ref.shape[1] != net.n_out:
        raise ModelMismatchError(
            f"{source}: {against} gives {ref.shape[1]} outputs per point but the imported network {net.n_out}; "
            "the output is not a vector of one entry per output"
        )
    ir = net.forward(pts)
    bad_ref = ~np.all(np.isfinite(ref), axis=1)
    if np.any(bad_ref):
        i = int(np.argmax(bad_ref))
        raise ModelMismatchError(
            f"{source}: {against} gives a non-finite output at x = {_show(pts[i])}; "
            "the model overflows there, certify cannot verify it"
        )
    bad_ir = ~np.all(np.isfinite(ir), axis=1)
    if np.any(bad_ir):  # inf or NaN (inf - inf) inside the float64 IR where the reference kept finite values
        i = int(np.argmax(bad_ir))
        raise ModelMismatchError(
            f"{source}: the model's values overflow float64 at x = {_show(pts[i])} (the imported network gives a "
            f"non-finite output there, {against} a finite one); certify cannot verify it"
        )
    scale = max(1.0, float(np.max(np.abs(ref), initial=0.0)), float(np.max(np.abs(pts), initial=0.0)))
    err = np.abs(ir - ref)
    allowed = rtol * np.abs(ref) + atol * scale
    excess = err - allowed
    if np.any(excess > 0) or not np.all(np.isfinite(ir)):
        i = int(np.argmax(np.where(np.isfinite(excess), excess, np.inf).max(axis=1)))
        raise ModelMismatchError(
            f"{source}: the imported network disagrees with {against} at x = "
            f"{_show(pts[i])} (max error {err[i].max():.3g}, "
            f"allowed {allowed[i].min():.3g}); certify refuses to verify a network it cannot reproduce: please "
            "report this model"
        )
    return float(err.max(initial=0.0))

"""Closed loops from Python: a plant x+ = A x + B u + c with a trained controller u = clip(pi(x), u_min, u_max).

:func:`closed_loop` takes the plant as numpy arrays or as a discrete-time python-control ``StateSpace`` (an
optional dependency, read through its ``A``, ``B`` and ``dt`` only), and the controller as an ONNX path, a
:class:`~certify.ir.network.Network` or a torch module; it composes them into one Network exactly as a system file
does (:func:`certify.importers.system_file.compose`) and checks the composition against simulating plant and
controller on sampled states.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from ..errors import ModelMismatchError, SystemFileError
from ..ir.network import Network
from .system_file import compose

_CHECK_POINTS = 256


def _plant_matrices(a, b) -> tuple[np.ndarray, np.ndarray]:
    """(A, B) from arrays, or from a python-control StateSpace given as ``a`` (then ``b`` must be None)."""
    if hasattr(a, "A") and hasattr(a, "B") and hasattr(a, "dt"):
        if b is not None:
            raise SystemFileError("closed_loop: give either a StateSpace or the matrices A and B, not both")
        dt = a.dt
        if dt is None or dt is False or (not isinstance(dt, bool) and dt == 0):
            raise SystemFileError(
                "closed_loop: the StateSpace is continuous-time (dt = 0): certify checks x+ = f(x); discretise "
                "it first, e.g. control.c2d(sys, dt)")
        return np.asarray(a.A, dtype=np.float64), np.asarray(a.B, dtype=np.float64)
    if b is None:
        raise SystemFileError("closed_loop: B is missing (give A and B, or a discrete-time StateSpace)")
    try:
        return np.atleast_2d(np.asarray(a, dtype=np.float64)), np.atleast_2d(np.asarray(b, dtype=np.float64))
    except (TypeError, ValueError):
        raise SystemFileError("closed_loop: A and B must be matrices of numbers") from None


def _controller(controller, n: int) -> Network:
    """The controller as a Network: an ONNX path, a Network, or a torch module (exported through ONNX)."""
    if isinstance(controller, Network):
        return controller
    if isinstance(controller, (str, Path)):
        from . import load_onnx  # deferred on purpose: onnx and onnxruntime load only for ONNX controllers

        return load_onnx(controller)
    if hasattr(controller, "forward") and hasattr(controller, "parameters"):
        import torch  # deferred on purpose, as above

        from . import from_torch

        return from_torch(controller, torch.zeros(1, n))
    raise SystemFileError(f"closed_loop: the controller must be an ONNX path, a Network or a torch module, got "
                          f"{type(controller).__name__}")


def closed_loop(a, b=None, controller=None, u_min=None, u_max=None, c=None, seed: int = 0) -> Network:
    """The closed loop x+ = A x + B clip(pi(x), u_min, u_max) + c as one Network.

    ``a``: A (n, n), or a discrete-time python-control ``StateSpace`` (then ``b`` is None); ``b``: B (n, m);
    ``controller``: pi, n -> m (ONNX path, Network or torch module); ``u_min``/``u_max``: (m,) clipping of u (both
    or neither); ``c``: (n,) or None. Raises a :class:`~certify.errors.SystemFileError` (a ValueError) for shapes
    that do not fit or a continuous-time system, and ModelMismatchError if the composition disagrees with
    simulating the loop."""
    a_mat, b_mat = _plant_matrices(a, b)
    if controller is None:
        raise SystemFileError("closed_loop: the controller is missing")
    n = a_mat.shape[0]
    pi = _controller(controller, n)
    net = compose(a_mat, b_mat, c, pi, u_min, u_max, where="closed_loop")
    x = np.random.default_rng(seed).uniform(-1.0, 1.0, size=(_CHECK_POINTS, n))
    u = pi.forward(x)
    if u_min is not None:
        u = np.clip(u, np.asarray(u_min, dtype=np.float64), np.asarray(u_max, dtype=np.float64))
    simulated = x @ a_mat.T + u @ b_mat.T + (0.0 if c is None else np.asarray(c, dtype=np.float64))
    err = float(np.max(np.abs(net.forward(x) - simulated)))
    if err > 1e-9 * (1.0 + float(np.max(np.abs(simulated)))):
        raise ModelMismatchError(f"closed_loop: the composed loop differs from simulating plant and controller by "
                                 f"{err:.3g}; please report this")
    return net

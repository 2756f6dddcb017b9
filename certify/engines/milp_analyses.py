"""Analyses that solve the MILP encodings: LP bound tightening of pre-activations before a MILP.

Every solver answer is a floating-point claim: LP values are padded outward (``SOLVER_REL_PAD`` relative plus the
solver's feasibility tolerance times the row's big-M scale) and intersected with the sound bounds they tighten, and
an LP that does not end optimal (or a missing back-end) keeps the given bound.
"""

from __future__ import annotations

import time
from dataclasses import replace

import numpy as np

from ..bounds.crown import symbolic_bounds
from ..bounds.interval import LayerBounds
from ..ir.box import Box
from ..ir.network import Network
from ..solvers import registry
from ..solvers.base import SolveStatus
from .milp_encoding import REL_PAD, encode_network


# ===================================================================== analyses
def analysis_bounds(
    net: Network, box: Box, bounds: list[LayerBounds] | None = None, *, tighten: bool = True, backend="highs",
    time_limit: float = 30.0,
) -> list[LayerBounds]:
    """The pre-activation bounds the analyses below encode with: the caller's, else CROWN/DeepPoly bounds
    (:func:`certify.bounds.interval.symbolic_bounds`, never looser than interval bounds), then (``tighten``)
    LP-tightened
    layer by layer (:func:`tighten_bounds_lp`): fewer binaries and smaller big-M constants."""
    if bounds is not None:
        return list(bounds)
    if not net.layers:
        return []
    out = symbolic_bounds(net, box)
    if tighten and len(net.layers) > 1:
        out = tighten_bounds_lp(net, box, out, backend=backend, time_limit=time_limit)
    return out


def tighten_bounds_lp(
    net: Network, box: Box, bounds: list[LayerBounds], *, backend="highs", time_limit: float = 30.0
) -> list[LayerBounds]:
    """Tighten the pre-activation bounds of layers 1..L-1 by the LP relaxation of the big-M encoding of the layers
    below (binaries relaxed to [0, 1]): the relaxation holds every point of the net, so its min/max bound z_l.

    Each LP value is padded outward by ``1e-7 * (1 + |v|) + tol * sum|W_l[j]| * big-M`` (LP solutions are
    floating-point claims, as in :func:`output_padding`) and intersected with the given bounds; an LP that does
    not end optimal (or a backend that is missing) keeps the given bound. ``time_limit``: seconds for all LPs.
    """
    solver = solver_backend(backend)
    deadline = time.perf_counter() + time_limit
    out = list(bounds)
    for li in range(1, len(net.layers)):
        layer = net.layers[li]
        head = Network(net.layers[:li], layer.weight, layer.bias, n_states=None)
        enc = encode_network(head, box, out[:li])
        relaxed = replace(enc.model, integer=np.zeros_like(enc.model.integer))
        lo = np.array(out[li].pre_lower, dtype=np.float64)
        hi = np.array(out[li].pre_upper, dtype=np.float64)
        row_scale = np.abs(layer.weight).sum(axis=1) * relaxed.big_m_scale
        for j in range(layer.width):
            for maximize in (False, True):
                remaining = deadline - time.perf_counter()
                if remaining <= 0:
                    break
                res = solver.solve(relaxed.program(enc.out_coef[j], maximize), remaining)
                if res.status is not SolveStatus.OPTIMAL or res.bound is None:
                    continue
                v = res.bound + enc.out_const[j]
                pad = REL_PAD * (1.0 + abs(v)) + solver.feasibility_tolerance * row_scale[j]
                if maximize:
                    hi[j] = min(hi[j], v + pad)
                else:
                    lo[j] = max(lo[j], v - pad)
        lo = np.minimum(lo, hi)  # an LP round-off can never empty a layer
        plo, phi = layer.activation.value_range(lo, hi)
        out[li] = LayerBounds(lo, hi, plo, phi)
    return out


def solver_backend(backend):
    """A back-end object from its registry name (MILP kind), or the object itself."""
    return registry.get_backend(backend) if isinstance(backend, str) else backend

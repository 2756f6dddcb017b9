"""Identify an elementwise expression built by an exporter (x * sigmoid(x), 0.5 x (1 + erf(x / sqrt 2)), ...)
with an activation of the catalogue.

An expression ``g`` is accepted as ``a * sigma(t) + c`` (scalars a != 0 and c fitted by least squares, then
rounded to 6 decimals when that changes them by less than 1e-7 relative) when, on a fixed grid of t,

    |g(t) - (a sigma(t) + c)| <= 1e-6 (1 + |g(t)|)

at every grid point: t in [-20, 20] (2001 points, g must be finite there) and the magnitudes 1e-6 .. 1e4 of both
signs (compared where g is finite). The tolerance covers the float32 constants an exporter writes (sqrt 2 or 1/6
rounded to float32 differ by ~3e-8 relative); the importer's numeric check against onnxruntime (or torch) then
confirms the whole network. A grid cannot prove two functions equal everywhere: this identification is a
recognition step whose result the agreement check, not this module, vouches for.
"""

from __future__ import annotations

from typing import Callable

import numpy as np
import torch

from ..ir.activations import CATALOGUE, Activation, ActivationKind
from .symbolic import Affine, Elementwise, affine_scalar, merge_unique

_CORE = np.linspace(-20.0, 20.0, 2001)
_EXTRA = np.concatenate([s * np.logspace(-6, 4, 11) for s in (-1.0, 1.0)])
_TOL = 1e-6

IDENTITY = Activation(ActivationKind.IDENTITY)


def grid(m: int) -> tuple[torch.Tensor, int]:
    """The evaluation grid as a (T, m) float64 tensor and the number of core rows (the first ones)."""
    t = torch.from_numpy(np.concatenate([_CORE, _EXTRA]))
    return t[:, None].expand(-1, m).contiguous(), _CORE.size


def _snap(v: float) -> float:
    r = round(v, 6)
    return r if abs(r - v) <= 1e-7 * max(1.0, abs(v)) else v


def identify(
    fn: Callable[[torch.Tensor], torch.Tensor], leaves: tuple[Activation, ...], m: int
) -> tuple[Activation, float, float] | None:
    """(sigma, a, c) with fn = a * sigma + c on the grid, or None.

    ``m``: the number of entries per grid row (1 unless a leaf has per-neuron parameters, i.e. PReLU).
    Candidates, in order: identity (the expression is affine: no layer), the leaves, then the catalogue.
    """
    t, n_core = grid(m)
    with torch.no_grad():
        g = fn(t)
    if g.shape != t.shape:
        g = torch.broadcast_to(g, t.shape)
    g = g.numpy()
    if not np.all(np.isfinite(g[:n_core])):
        return None
    finite = np.isfinite(g)
    candidates = [IDENTITY, *leaves, *(make() for make in CATALOGUE.values())]
    for act in candidates:
        with torch.no_grad():
            s = torch.broadcast_to(act.value(t), t.shape).numpy()
        ok = finite & np.isfinite(s)
        gv, sv = g[ok], s[ok]
        design = np.stack([sv, np.ones_like(sv)], axis=1)
        (a, c), *_ = np.linalg.lstsq(design, gv, rcond=None)
        a, c = _snap(float(a)), _snap(float(c))
        if abs(a) < 1e-9:
            continue
        if np.all(np.abs(gv - (a * sv + c)) <= _TOL * (1.0 + np.abs(gv))):
            return act, a, c
    return None


def _identify_or_none(fn, leaves, m):
    try:
        return identify(fn, leaves, m)
    except (RuntimeError, ValueError, TypeError):  # an expression torch cannot evaluate: not an activation
        return None


def identify_expression(e: Elementwise) -> tuple[Activation, float, float, Affine] | None:
    """(sigma, a, c, z): e = scale * (a sigma(z) + c) + shift, with z = base or one of e's variables; or None."""
    m = max([len(leaf.slopes) for leaf in e.leaves if leaf.kind is ActivationKind.PRELU] + [1])
    for c, d in merge_unique(((1.0, 0.0),), e.args):
        if (c, d) == (1.0, 0.0):
            found = _identify_or_none(e.fn, e.leaves, m)
        else:  # look for the activation in the variable s = c * t + d
            found = _identify_or_none(lambda s, fn=e.fn, c=c, d=d: fn((s - d) / c), e.leaves, m)
        if found is not None:
            return (*found, affine_scalar(e.base, c, d))
    return None

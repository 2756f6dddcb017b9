"""Symbolic tensors for the graph importers: constants, affine tensors and elementwise expressions.

The importer evaluates a graph once, symbolically, for a single sample (a batch axis has size 1). Every tensor is

* :class:`Const`: a concrete array (weights, shapes, anything that does not depend on the input);
* :class:`Affine`: a tensor of shape ``s`` whose entries are affine in the *basis* of a level:
  ``T = sum_i coef[i] * basis_i + offset`` with ``coef`` of shape (nb, *s) and ``offset`` of shape ``s``.
  Level 0: the basis is the input x (nb = n_in). Level k >= 1: the basis is [h_k ; x] (nb = n_k + n_in),
  h_k being the output of the k-th activation layer; the x part is a linear skip that may only reach the output;
* :class:`Elementwise`: ``scale * fn(base) + shift`` applied entry by entry to an :class:`Affine` ``base``
  (an activation, or an exporter's pattern such as x * sigmoid(x), still to be identified).

Every operation here is exact float64 linear algebra on ``coef``/``offset``: folding a chain of linear operators into
one affine map introduces only rounding error. No state lives here: the layer stack is kept by the importer.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable

import numpy as np
import torch

from ..ir.activations import Activation
from ..errors import ModelError


@dataclass(frozen=True, eq=False)
class Const:
    """A tensor that does not depend on the input; ``value`` keeps the dtype of the model (ints for shapes)."""

    value: np.ndarray

    @property
    def shape(self) -> tuple[int, ...]:
        return tuple(self.value.shape)

    def scalar(self) -> float | None:
        """The common value when every entry is the same number (the tensor acts as a scalar), else None."""
        v = np.asarray(self.value, dtype=np.float64)
        if v.size == 0:
            return None
        first = v.flat[0]
        return float(first) if np.all(v == first) else None


@dataclass(frozen=True, eq=False)
class Affine:
    """A tensor affine in the basis of ``level``: coef (nb, *shape), offset (*shape), both float64."""

    level: int
    coef: np.ndarray
    offset: np.ndarray

    @property
    def shape(self) -> tuple[int, ...]:
        return tuple(self.offset.shape)

    @property
    def size(self) -> int:
        return int(self.offset.size)


@dataclass(frozen=True, eq=False)
class Elementwise:
    """``scale * fn(t) + shift`` with t = ``base``, entry by entry.

    ``fn`` maps a float64 torch tensor (T, m) (m = 1 or the number of entries of ``base``) to the same shape.
    ``leaves``: the activations of the catalogue the expression is made of (candidates when identifying it);
    ``bare``: ``fn`` is exactly ``leaves[0].value`` (a single activation operator, no identification needed);
    ``nodes``: the graph nodes the expression came from (for messages);
    ``args``: pairs (c, d) such that c * base + d is a variable the expression was built from (an operand, or the
    input of an activation inside): the other variables in which to look for an activation (torch's
    softplus(beta) is written over beta * x, and 0.5 x (1 + tanh(...)) may be built on 0.5 x).
    """

    base: Affine
    fn: Callable[[torch.Tensor], torch.Tensor]
    leaves: tuple[Activation, ...]
    bare: bool
    nodes: tuple[str, ...]
    scale: float = 1.0
    shift: float = 0.0
    args: tuple[tuple[float, float], ...] = field(default=())

    @property
    def shape(self) -> tuple[int, ...]:
        return self.base.shape

    def outer(self, scale: float, shift: float) -> "Elementwise":
        """``scale * self + shift``: keeps the expression and its bareness."""
        return Elementwise(
            self.base, self.fn, self.leaves, self.bare, self.nodes,
            scale * self.scale, scale * self.shift + shift, self.args,
        )

    def full(self) -> Callable[[torch.Tensor], torch.Tensor]:
        """The whole expression ``scale * fn + shift`` as one function of t."""
        fn, s, r = self.fn, self.scale, self.shift
        if s == 1.0 and r == 0.0:
            return fn
        return lambda t: s * fn(t) + r


Value = Const | Affine | Elementwise


def merge_unique(a: tuple, b: tuple) -> tuple:
    """``a`` followed by the entries of ``b`` not already in it (compared by identity or equality)."""
    out = list(a)
    for x in b:
        if all(x is not y and x != y for y in out):
            out.append(x)
    return tuple(out)


# --------------------------------------------------------------------------- basis bookkeeping
def basis_size(level: int, n_in: int, widths: list[int]) -> int:
    """nb of a level: n_in at level 0, n_k + n_in at level k >= 1."""
    return n_in if level == 0 else widths[level - 1] + n_in


def lift(a: Affine, level: int, n_in: int, widths: list[int]) -> Affine:
    """Express ``a`` in the basis of ``level`` (only level 0 -> k: the input becomes the skip part)."""
    if a.level == level:
        return a
    if a.level != 0:
        raise ModelError(
            f"a value computed after activation layer {a.level} is combined with one after layer {level}: a skip "
            "connection between hidden layers; certify supports a chain of (affine, activation) steps with a "
            "linear skip from the input to the output only"
        )
    zeros = np.zeros((widths[level - 1], *a.shape))
    return Affine(level, np.concatenate([zeros, a.coef], axis=0), a.offset)


def const_affine(value: np.ndarray, level: int, n_in: int, widths: list[int]) -> Affine:
    v = np.asarray(value, dtype=np.float64)
    return Affine(level, np.zeros((basis_size(level, n_in, widths), *v.shape)), v.copy())


def expand(a: Affine, shape: tuple[int, ...]) -> Affine:
    """Broadcast ``a`` to ``shape`` (numpy rules, the basis axis kept in front)."""
    if a.shape == tuple(shape):
        return a
    pad = len(shape) - len(a.shape)
    if pad < 0:
        raise ModelError(f"cannot broadcast a tensor of shape {a.shape} to {tuple(shape)}")
    coef = a.coef.reshape(a.coef.shape[0], *([1] * pad), *a.shape)
    try:
        coef = np.broadcast_to(coef, (a.coef.shape[0], *shape)).copy()
        offset = np.broadcast_to(a.offset, shape).copy()
    except ValueError:
        raise ModelError(f"cannot broadcast a tensor of shape {a.shape} to {tuple(shape)}") from None
    return Affine(a.level, coef, offset)


def broadcast_shape(*shapes: tuple[int, ...]) -> tuple[int, ...]:
    try:
        return tuple(np.broadcast_shapes(*shapes))
    except ValueError:
        raise ModelError(f"shapes {' and '.join(str(tuple(s)) for s in shapes)} do not broadcast") from None


def add(a: Affine, b: Affine, n_in: int, widths: list[int]) -> Affine:
    """a + b (numpy broadcasting); levels must agree unless one of them is the raw input (level 0)."""
    level = max(a.level, b.level)
    a, b = lift(a, level, n_in, widths), lift(b, level, n_in, widths)
    shape = broadcast_shape(a.shape, b.shape)
    a, b = expand(a, shape), expand(b, shape)
    return Affine(level, a.coef + b.coef, a.offset + b.offset)


def scale(a: Affine, c: np.ndarray) -> Affine:
    """a * c, c a constant array (numpy broadcasting)."""
    c = np.asarray(c, dtype=np.float64)
    shape = broadcast_shape(a.shape, c.shape)
    a = expand(a, shape)
    c_full = c.reshape(*([1] * (len(shape) - c.ndim)), *c.shape)
    return Affine(a.level, a.coef * c_full[None], a.offset * c_full)


def shift(a: Affine, c: np.ndarray) -> Affine:
    """a + c, c a constant array."""
    c = np.asarray(c, dtype=np.float64)
    shape = broadcast_shape(a.shape, c.shape)
    a = expand(a, shape)
    return Affine(a.level, a.coef, a.offset + c)


def affine_scalar(a: Affine, s: float, r: float) -> Affine:
    if s == 1.0 and r == 0.0:
        return a
    return Affine(a.level, a.coef * s, a.offset * s + r)


def matmul_const_right(a: Affine, w: np.ndarray) -> Affine:
    """a @ w (numpy/ONNX MatMul semantics) with w constant."""
    w = np.asarray(w, dtype=np.float64)
    offset = np.matmul(a.offset, w)
    nb = a.coef.shape[0]
    if w.ndim <= 2 and a.offset.ndim >= 1:
        # Every coefficient row is contracted on its last axis with w: one BLAS product.
        k = a.shape[-1]
        coef = a.coef.reshape(-1, k) @ w
    else:
        coef = np.stack([np.matmul(a.coef[i], w) for i in range(nb)]) if nb else np.zeros((0, *offset.shape))
    return Affine(a.level, coef.reshape(nb, *offset.shape), offset)


def matmul_const_left(w: np.ndarray, a: Affine) -> Affine:
    """w @ a with w constant."""
    w = np.asarray(w, dtype=np.float64)
    offset = np.matmul(w, a.offset)
    nb = a.coef.shape[0]
    if w.ndim == 2 and a.offset.ndim >= 2:
        coef = np.moveaxis(np.tensordot(w, a.coef, axes=([1], [-2])), 0, -2)  # (nb, ..., M, N)
    elif w.ndim == 2 and a.offset.ndim == 1:
        coef = a.coef @ w.T  # (nb, K) -> (nb, M)
    else:
        coef = np.stack([np.matmul(w, a.coef[i]) for i in range(nb)]) if nb else np.zeros((0, *offset.shape))
    return Affine(a.level, coef.reshape(nb, *offset.shape), offset)


def transpose_last(a: Affine) -> Affine:
    if len(a.shape) < 2:
        return a
    return Affine(a.level, np.swapaxes(a.coef, -1, -2), np.swapaxes(a.offset, -1, -2))


def relation(u: Affine, v: Affine) -> tuple[float, float] | None:
    """Scalars (c, d), c != 0, with v = c * u + d entry by entry, or None when there are none.

    This is how an exporter's elementwise pattern is recognised: in x * sigmoid(x) or 0.5 x (1 + erf(x / sqrt 2))
    every nonlinear piece is a function of the same pre-activation up to a scalar affine change.
    """
    if u.level != v.level or u.shape != v.shape:
        return None
    if u is v:
        return 1.0, 0.0
    uu = float(np.vdot(u.coef, u.coef))
    if uu == 0.0:
        return None
    c = float(np.vdot(u.coef, v.coef)) / uu
    if c == 0.0:
        return None
    tol = 1e-12 * max(float(np.abs(v.coef).max()), float(np.abs(u.coef).max()) * abs(c))
    if np.max(np.abs(v.coef - c * u.coef)) > tol:
        return None
    d_all = v.offset - c * u.offset
    d = float(np.mean(d_all)) if d_all.size else 0.0
    scale_ = 1.0 + float(np.abs(v.offset).max(initial=0.0)) + abs(c) * float(np.abs(u.offset).max(initial=0.0))
    if d_all.size and np.max(np.abs(d_all - d)) > 1e-12 * scale_:
        return None
    return c, d

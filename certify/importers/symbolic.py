"""Symbolic tensors for the graph importers: constants, affine tensors and elementwise expressions.

The importer evaluates a graph once, symbolically, for a single sample (a batch axis has size 1). Every tensor is

* :class:`Const`: a concrete array (weights, shapes, anything that does not depend on the input);
* :class:`Affine`: a tensor of shape ``s`` whose entries are affine in the *basis* of a level:
  ``T = sum_i coef[i] * basis_i + offset`` with ``coef`` of shape (nb, *s) and ``offset`` of shape ``s``.
  Level 0: the basis is the input x (nb = n_in). Level k >= 1: the basis is [h_k ; x] (nb = n_k + n_in),
  h_k being the output of the k-th activation layer; the x part is a linear skip that may only reach the output;
* :class:`Elementwise`: an expression ``poly(base)`` applied entry by entry to an :class:`Affine` ``base``, in
  the normal form of :mod:`certify.importers.expression` (an activation, or an exporter's pattern such as
  x * sigmoid(x), still to be recognised);
* :class:`Condition`: the result of a comparison on input-dependent values (only a Where may use it).

Every operation here is exact float64 linear algebra on ``coef``/``offset``: folding a chain of linear operators into
one affine map introduces only rounding error. No state lives here: the layer stack is kept by the importer.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from ..errors import ModelError
from ..ir.activations import Activation
from .expression import Poly


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
    """A tensor affine in the basis of ``level``: coef (nb, *shape), offset (*shape), both float64.

    ``origin``: when the tensor is ``c * origin + d`` for scalars c, d written in the graph (Mul, Div, Add, Sub by a
    scalar constant, Neg), the tensor it was computed from (the first one of such a chain): a variable in which an
    exporter's pattern may be written (0.5 x and x / sqrt 2 are both computed from x in ``0.5 x (1 + erf(x / sqrt
    2))``)."""

    level: int
    coef: np.ndarray
    offset: np.ndarray
    origin: "Affine | None" = field(default=None, repr=False)

    @property
    def shape(self) -> tuple[int, ...]:
        return tuple(self.offset.shape)

    @property
    def size(self) -> int:
        return int(self.offset.size)


@dataclass(frozen=True, eq=False)
class Elementwise:
    """``poly(t)`` with t = ``base``, entry by entry: an elementwise expression of one pre-activation.

    ``poly``: the expression in normal form (:class:`~certify.importers.expression.Poly`), e.g. ``relu(t)`` for a
    Relu node, ``0.5 t + 0.5 t erf(0.707107 t)`` for the GELU written with Erf;
    ``nodes``: the graph nodes the expression came from (for messages);
    ``variables``: pairs (c, d) such that c * base + d is a tensor the expression was built from (an operand, the
    tensor an operand was scaled from (:attr:`Affine.origin`), or the input of a function inside): the variables in
    which a pattern's constants are checked (x * sigmoid(beta x) is silu in beta x, and 0.5 x (1 + tanh(...)) may be
    built on 0.5 x).
    """

    base: Affine
    poly: Poly
    nodes: tuple[str, ...]
    variables: tuple[tuple[float, float], ...] = field(default=((1.0, 0.0),))

    @property
    def shape(self) -> tuple[int, ...]:
        return self.base.shape

    @property
    def bare(self) -> bool:
        """The expression is ``a * sigma(c t + d) + b`` for one activation sigma of the catalogue."""
        single = self.poly.single_atom()
        return (single is not None and isinstance(single[0].fn, Activation)
                and single[0].arg.affine_parts() is not None)

    @property
    def has_activation(self) -> bool:
        return any(isinstance(a.fn, Activation) for a in self.poly.atoms())

    def outer(self, scale: float, shift: float) -> "Elementwise":
        """``scale * self + shift``."""
        return Elementwise(self.base, self.poly.scaled(scale).shifted(shift), self.nodes, self.variables)


@dataclass(frozen=True, eq=False)
class Condition:
    """The boolean result of a comparison ``op(lhs, rhs)`` (Greater) on input-dependent values, made by ``node``.

    It is no number: only a Where may consume it, and only in an exporter pattern (torch's softplus threshold)."""

    op: str
    lhs: "Value"
    rhs: "Value"
    node: str

    @property
    def shape(self) -> tuple[int, ...]:
        return tuple(np.broadcast_shapes(self.lhs.shape, self.rhs.shape))


Value = Const | Affine | Elementwise | Condition


def merge_unique(a: tuple, b: tuple) -> tuple:
    """``a`` followed by the entries of ``b`` not already in it (compared by identity or equality)."""
    out = list(a)
    for x in b:
        if all(x is not y and x != y for y in out):
            out.append(x)
    return tuple(out)


def scalar_image(result: Affine, source: Affine) -> Affine:
    """``result`` (c * source + d for scalars c, d) with its origin recorded (see :class:`Affine`)."""
    return Affine(result.level, result.coef, result.offset, source.origin or source)


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
    if abs(d) <= 1e-12 * scale_:  # rounding of c * offset, not an offset: v = c * u exactly as written
        d = 0.0
    return c, d

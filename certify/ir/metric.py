"""Weighted norms on the states: ||x||_P = ||T x||_2 with P = T^T T symmetric positive definite.

Theorem 1 and contraction hold in ||.||_P with the induced norm ||M||_P = ||T M T^{-1}||_2 (DESIGN.md section 2,
"Metrics"): every engine conjugates the state block of the matrix it bounds, T A*(x) T^{-1} or T J(x) T^{-1}, while
the domain stays the box. For a chain M = W_L D ... D W_0 + S the conjugation moves onto its ends:
T M T^{-1} = (T W_L) D ... D (W_0 T^{-1}) + T S T^{-1}, so an engine only replaces the first and last weights and
the skip (:meth:`Metric.chain_ends`).

Soundness of the float64 inverse: T is the (upper) Cholesky factor of P, Q the computed inverse of T. For any M,
T M T^{-1} = (T M Q)(T Q)^{-1} and T M Q = (T M T^{-1})(T Q), so with e >= ||T Q - I||_2,
||T M Q|| / (1 + e) <= ||T M T^{-1}|| <= ||T M Q|| / (1 - e). Engines compute with Q; bounds on ||T M Q|| are
multiplied by :attr:`Metric.upper_factor` = 1 / (1 - e) and values at witnesses by :attr:`Metric.lower_factor` =
1 / (1 + e). e is bounded in float64 with the rounding of the product T Q (n eps |T| |Q|) added.

Soundness of the float64 products. (1) A whole matrix conjugated in float64, C = fl(fl(T M) Q) (:meth:`conjugate`:
the region search's leaves, replayed witnesses), errs entrywise by at most g |T| |M| |Q| with g = 4 (n + 2) eps,
so ||C - T M Q|| <= g sqrt(n) || |T| || || |Q| || ||M||, and ||M|| <= ||T|| ||Q|| ||T M Q|| / (1 - e)^2: a relative
error r (:attr:`Metric.conjugation_error`) that both factors also carry. (2) The ends of a chain
(:meth:`conjugated_chain`) err entrywise by at most g times their magnitudes |W_0| |Q|, |T| |W_L|, |T| |S| |Q|
(:meth:`end_magnitudes`); a bound computed with the float64 ends becomes one on the exact chain by adding
:meth:`end_allowance` (or, in a product of norms, by adding :meth:`end_errors` to the end norms).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from ..errors import UsageError
from .numerics import EPS, norm_upper, product_pad

_SYMMETRY_TOL = 1e-12  # |P - P^T| <= tol * max |P|: P is taken as symmetric (its symmetric part is used)


def _product_error(n: int) -> float:
    """g: |fl(A B) - A B| <= g |A| |B| entrywise for products of inner dimension n, and for the two products of
    T S Q (2 gamma_n + gamma_n^2 <= 4 (n + 2) eps), with room for the rounding of the magnitudes themselves."""
    return 4 * (n + 2) * EPS


@dataclass(frozen=True, eq=False)
class Metric:
    """A weighted 2-norm on the n states. ``p``: P (n, n) symmetric positive definite; ``t``: T with T^T T = P
    (upper Cholesky factor); ``t_inv``: the float64 inverse Q of T; ``upper_factor`` / ``lower_factor``: the
    corrections for Q != T^{-1} (module docstring). The identity metric is the plain 2-norm."""

    p: np.ndarray
    t: np.ndarray
    t_inv: np.ndarray
    upper_factor: float
    lower_factor: float
    conjugation_error: float = 0.0

    @staticmethod
    def identity(n: int) -> "Metric":
        eye = np.eye(n)
        eye.setflags(write=False)
        return Metric(eye, eye, eye, 1.0, 1.0, 0.0)

    @staticmethod
    def of(p, where: str = "metric") -> "Metric":
        """The metric of a matrix P; a UsageError naming ``where`` unless P is square, finite, symmetric (to a
        relative 1e-12) and positive definite."""
        try:
            a = np.array(p, dtype=np.float64)
        except (TypeError, ValueError):
            raise UsageError(f"{where}: the metric must be a square matrix of numbers") from None
        if a.ndim != 2 or a.shape[0] != a.shape[1] or a.shape[0] == 0:
            raise UsageError(f"{where}: the metric must be a square matrix (n x n), got shape {a.shape}")
        if not np.all(np.isfinite(a)):
            raise UsageError(f"{where}: the metric contains NaN or infinite entries")
        scale = float(np.max(np.abs(a)))
        if scale == 0.0 or np.max(np.abs(a - a.T)) > _SYMMETRY_TOL * scale:
            raise UsageError(f"{where}: the metric must be symmetric (P = P^T)")
        a = 0.5 * (a + a.T)
        if np.array_equal(a, np.eye(a.shape[0])):
            return Metric.identity(a.shape[0])
        try:
            t = np.linalg.cholesky(a).T  # P = L L^T = T^T T with T = L^T
        except np.linalg.LinAlgError:
            raise UsageError(f"{where}: the metric must be positive definite (its Cholesky factorisation fails)"
                             ) from None
        if not np.all(np.isfinite(t)) or np.min(np.abs(np.diag(t))) <= 0:
            raise UsageError(f"{where}: the metric must be positive definite")
        q = np.linalg.inv(t)
        n = a.shape[0]
        residual = t @ q - np.eye(n)
        e = norm_upper(residual, 2.0) + 2 * n * EPS * float(norm_upper(np.abs(t) @ np.abs(q), 2.0))
        r = math.inf
        if e < 0.5:  # the relative error of a float64 conjugation (module docstring, (1))
            norms = [float(norm_upper(m, 2.0)) for m in (np.abs(t), np.abs(q), t, q)]
            r = _product_error(n) * math.sqrt(n) * math.prod(norms) / (1.0 - e) ** 2 * product_pad(8)
        if not (e < 0.5 and r < 0.5):
            raise UsageError(f"{where}: the metric is too ill-conditioned to compute with in float64 (cond(T) ~ "
                             f"{np.linalg.cond(t):.3g})")
        for arr in (a, t, q):
            arr.setflags(write=False)
        upper = product_pad(4) / ((1.0 - e) * (1.0 - r))
        lower = 1.0 / (product_pad(4) * (1.0 + e) * (1.0 + r))
        return Metric(a, t, q, upper, lower, r)

    @property
    def dim(self) -> int:
        return self.p.shape[0]

    @property
    def is_identity(self) -> bool:
        return self.upper_factor == 1.0 and np.array_equal(self.t, np.eye(self.dim))

    @property
    def condition_number(self) -> float:
        """cond(P) = cond(T)^2: how far the metric is from a scaled identity."""
        return float(np.linalg.cond(self.p))

    def conjugate(self, m: np.ndarray) -> np.ndarray:
        """T M Q for a state matrix M (n, n) or a batch (B, n, n) (a float64 product: its norm is within the
        relative :attr:`conjugation_error` of ||T M Q||, which the factors carry; module docstring)."""
        if self.is_identity:
            return m
        return self.t @ m @ self.t_inv

    def chain_ends(self, first: np.ndarray, last: np.ndarray, skip: np.ndarray | None):
        """(W_0[:, :n] Q, T W_L, T S[:, :n] Q) for the state columns of a chain: first (k, n), last (n, k'), skip
        (n, n) or None."""
        if self.is_identity:
            return first, last, skip
        return first @ self.t_inv, self.t @ last, None if skip is None else self.t @ skip @ self.t_inv

    def conjugated_chain(self, net) -> tuple[list[np.ndarray], np.ndarray | None]:
        """The chain of a :class:`~certify.ir.network.Network`'s state columns in this metric: matrices
        [W_0[:, :n] Q, W_1, ..., W_{L-1}, T W_L] (for a net without hidden layers [T W_out[:, :n] Q]) and the skip
        T S[:, :n] Q (or None), so that their product with any slopes is T M Q."""
        n = self.dim
        if not net.layers:
            skip = None if net.skip is None else self.t @ net.skip[:, :n] @ self.t_inv
            return [self.t @ net.out_weight[:, :n] @ self.t_inv], skip
        mats = [layer.weight for layer in net.layers] + [net.out_weight]
        first, last, skip = self.chain_ends(mats[0][:, :n], mats[-1], None if net.skip is None else net.skip[:, :n])
        return [first, *mats[1:-1], last], skip

    def end_magnitudes(self, net) -> tuple[list[np.ndarray | None], np.ndarray | None]:
        """Entrywise bounds on the exact conjugated ends of :meth:`conjugated_chain` and on their float64 values:
        (a list as long as the chain with |W_0[:, :n]| |Q| first and |T| |W_L| last, None between; for a net
        without hidden layers [|T| |W_out[:, :n]| |Q|]; |T| |S[:, :n]| |Q| or None). Each end errs entrywise by
        at most :func:`_product_error` times its bound."""
        n = self.dim
        t_abs, q_abs = np.abs(self.t), np.abs(self.t_inv)
        pad = 1.0 + _product_error(n)

        def up(m: np.ndarray) -> np.ndarray:
            return m * pad + 1e-300

        if not net.layers:
            out: list[np.ndarray | None] = [up(t_abs @ np.abs(net.out_weight[:, :n]) @ q_abs)]
        else:
            out = [None] * (len(net.layers) + 1)
            out[0] = up(np.abs(net.layers[0].weight[:, :n]) @ q_abs)
            out[-1] = up(t_abs @ np.abs(net.out_weight))
        skip = None if net.skip is None else up(t_abs @ np.abs(net.skip[:, :n]) @ q_abs)
        return out, skip

    def end_errors(self, net) -> tuple[float, float, float]:
        """Upper bounds on the 2-norm errors of the float64 ends of :meth:`conjugated_chain`: (first, last, skip)
        (for a net without hidden layers the single matrix counts as first and last is 0; no skip: 0)."""
        if self.is_identity:
            return 0.0, 0.0, 0.0
        g = _product_error(self.dim)
        mags, skip = self.end_magnitudes(net)
        first = g * float(norm_upper(mags[0], 2.0))
        last = g * float(norm_upper(mags[-1], 2.0)) if net.layers else 0.0
        return first, last, 0.0 if skip is None else g * float(norm_upper(skip, 2.0))

    def end_allowance(self, net, slope_maxima) -> float:
        """A bound on ||M - M~||_2 for every chain M = (T W_L) D_{L-1} ... D_0 (W_0 Q) + T S Q and its float64-ends
        version M~ (:meth:`conjugated_chain`) with |D_l| <= ``slope_maxima[l]`` (one float per hidden layer):
        e_L ||C|| (||W~_0|| + e_0) + ||W~_L|| ||C|| e_0 + e_S with ||C|| <= prod_{0<l<L} ||W_l|| prod_l max|D_l|
        (:meth:`end_errors`). 0 for the identity; inf when a factor overflows."""
        if self.is_identity:
            return 0.0
        e_first, e_last, e_skip = self.end_errors(net)
        chain, _ = self.conjugated_chain(net)
        if not net.layers:
            value = e_first + e_skip
        else:
            inner = math.prod(float(norm_upper(w, 2.0)) for w in chain[1:-1]) * math.prod(slope_maxima)
            value = (e_last * inner * (float(norm_upper(chain[0], 2.0)) + e_first)
                     + float(norm_upper(chain[-1], 2.0)) * inner * e_first + e_skip)
        value *= product_pad(2 * len(chain) + len(slope_maxima) + 4)
        return value if math.isfinite(value) else math.inf

    def norm(self, x: np.ndarray) -> np.ndarray | float:
        """||x||_P = ||T x||_2 of a state vector (n,) or of each row of (B, n)."""
        y = np.asarray(x, dtype=np.float64) @ self.t.T
        out = np.linalg.norm(y, axis=-1)
        return float(out) if np.ndim(out) == 0 else out

    def describe(self) -> str:
        if self.is_identity:
            return "identity (the Euclidean norm)"
        return f"P ({self.dim}x{self.dim}, condition number {self.condition_number:.3g})"


def check_metric_applies(metric: Metric | None, p: float, n_states: int, n_out: int, where: str = "metric") -> None:
    """UsageError unless a non-identity metric is used with the 2-norm on a map from the states to the states."""
    if metric is None or metric.is_identity:
        return
    if p != 2.0:
        raise UsageError(f"{where}: a metric P weights the 2-norm (||x||_P = ||T x||_2); use norm 2, not {p:g}")
    if metric.dim != n_states or n_out != n_states:
        raise UsageError(f"{where}: the metric is {metric.dim}x{metric.dim} but the model has {n_states} states "
                         f"and {n_out} outputs; give one row and column per state")
    if not math.isfinite(metric.upper_factor):
        raise UsageError(f"{where}: the metric cannot be inverted reliably")

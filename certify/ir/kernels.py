"""Batched kernels for f(x), the pointwise-affine form (A*(x), b*(x)) and the Jacobian J(x) (DESIGN.md section 2).

All functions take a :class:`~certify.ir.network.TorchNet` and a batch ``x`` of shape (B, n_in) on the same device and
dtype, and contain no Python loop over points (only over layers). The float64 CPU path is the reference used to
replay witnesses; sampling runs the same code in float32 and/or on CUDA.

Lemma 1:  Lambda_l = diag(secant_l(z_l)),  A_0 = I, beta_0 = 0,
          A_{l+1} = Lambda_l W_l A_l,  beta_{l+1} = Lambda_l (W_l beta_l + b_l) + sigma_l(0),
          A* = W_L A_L + S,  b* = W_L beta_L + b_L,  and f(x) = A*(x) x + b*(x) exactly.
Jacobian: the same chain with diag(sigma_l'(z_l)) in place of Lambda_l.

:func:`batched_induced_norm` is the sampling norm: closed forms where they exist (a vector's Euclidean norm when
k == 1 or n == 1, the 2x2 singular-value formula, the largest eigenvalue of a 2x2 Gram matrix when min(k, n) == 2)
and otherwise the largest eigenvalue of the smaller Gram matrix (``eigvalsh``), cheaper than a general SVD. Gram
paths square the matrix, so each matrix is first divided by its largest |entry| (no overflow or underflow in
float32); the relative error of sqrt(lambda_max) is a few ulp of the working dtype. Batched values rank sampled
points only: every value that is reported is recomputed by :func:`certify.ir.numerics.induced_norm` in float64.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch

from ..errors import UsageError
from .activations import Activation, ActivationKind
from .numerics import check_norm


@dataclass(frozen=True, eq=False)
class TorchNet:
    """The tensors of a :class:`~certify.ir.network.Network` on one device and dtype, for the batched kernels.

    ``metric_ends``: with a metric ||.||_P = ||T .||_2 on the states (:mod:`certify.ir.metric`), the ends of the
    state-column chain (W_0[:, :n] Q, T W_L, T S[:, :n] Q) that :func:`chain_product` uses in place of the plain
    ones, so that it returns T M Q; the values f(x) and the slopes are those of the net itself."""

    weights: tuple[torch.Tensor, ...]
    biases: tuple[torch.Tensor, ...]
    activations: tuple[Activation, ...]
    sigma0: tuple[float, ...]
    out_weight: torch.Tensor
    out_bias: torch.Tensor
    skip: torch.Tensor | None
    n_states: int
    metric_ends: tuple | None = None

    @staticmethod
    def of(net, dtype: torch.dtype = torch.float64, device: str | torch.device = "cpu",
           metric=None) -> "TorchNet":
        """The tensors of ``net`` (a :class:`~certify.ir.network.Network`) in ``dtype`` on ``device``; ``metric``:
        a :class:`~certify.ir.metric.Metric` on the states (None: the plain 2-norm)."""
        def t(a):
            return torch.from_numpy(np.array(a, dtype=np.float64)).to(dtype=dtype, device=device)

        ends = None
        if metric is not None and not metric.is_identity:
            ns = net.n_states
            first = net.layers[0].weight[:, :ns] if net.layers else net.out_weight[:, :ns]
            last = net.out_weight if net.layers else np.eye(net.n_out)
            skip = None if net.skip is None else net.skip[:, :ns]
            first, last, skip = metric.chain_ends(first, last, skip)
            ends = (t(first), t(last), None if skip is None else t(skip))
        return TorchNet(
            weights=tuple(t(layer.weight) for layer in net.layers),
            biases=tuple(t(layer.bias) for layer in net.layers),
            activations=net.activations,
            sigma0=tuple(a.value_at_zero for a in net.activations),
            out_weight=t(net.out_weight),
            out_bias=t(net.out_bias),
            skip=None if net.skip is None else t(net.skip),
            n_states=net.n_states,
            metric_ends=ends,
        )


def preactivations(net: TorchNet, x: torch.Tensor) -> list[torch.Tensor]:
    """Pre-activations z_l, each (B, n_{l+1})."""
    zs = []
    h = x
    for i, (w, b) in enumerate(zip(net.weights, net.biases)):
        if i:
            h = net.activations[i - 1].value(zs[-1])
        zs.append(torch.addmm(b, h, w.T))
    return zs


def forward(net: TorchNet, x: torch.Tensor) -> torch.Tensor:
    """f(x) of shape (B, n_out)."""
    h = x
    for w, b, act in zip(net.weights, net.biases, net.activations):
        h = act.value(torch.addmm(b, h, w.T))
    out = torch.addmm(net.out_bias, h, net.out_weight.T)
    if net.skip is not None:
        out = out + x @ net.skip.T
    return out


# Folding the first diagonal factor into the two weights around it, V[p, j*n2 + q] = W_b[q, p] W_a[p, j], turns
# the first masked product into one plain GEMM s @ V; it is skipped when V would be large.
_FOLD_MAX_ELEMENTS = 1 << 22


def _tangent_chain(mats: list[torch.Tensor], slopes: list[torch.Tensor]) -> torch.Tensor:
    """R[j, b, :] = column j of mats[L] diag(s_{L-1}) ... diag(s_0) mats[0] at point b; returns (n_0, B, n_out).

    Right to left: the c = n_0 tangent directions are pushed through the layers together, laid out (c, B, n_l) so
    that each step is one GEMM of shape (c B, n_l) x (n_l, n_{l+1}) shared by the batch, then a multiply by the
    slopes broadcast over the leading axis (contiguous inner axes: the fast elementwise path).
    """
    a, b = mats[0], mats[1]  # a (n1, c), b (n2, n1)
    n1, c = a.shape
    n2 = b.shape[0]
    grad = torch.is_grad_enabled()
    if n1 * c * n2 <= _FOLD_MAX_ELEMENTS:
        fold = a.T.unsqueeze(2) * b.T.unsqueeze(0)  # (c, n1, n2): fold[j, p, q] = a[p, j] b[q, p]
        t = torch.matmul(slopes[0], fold)  # (c, B, n2)
    else:
        t = torch.matmul(a.T.unsqueeze(1) * slopes[0], b.T)
    for w, s in zip(mats[2:], slopes[1:]):
        t = t * s if grad and (t.requires_grad or s.requires_grad) else t.mul_(s)
        t = torch.matmul(t, w.T)
    return t


def chain_product(net: TorchNet, slopes: list[torch.Tensor], columns: int | None = None) -> torch.Tensor:
    """W_L diag(s_{L-1}) W_{L-1} ... diag(s_0) W_0 + S for a batch of slope vectors s_l of shape (B, n_{l+1}).

    Returns (B, n_out, c) with c = ``columns`` (the first c input columns only, e.g. the states) or n_in; the
    result may be a non-contiguous view. No loop over points: the product is evaluated from the narrow end (right
    to left, as forward tangents, when c <= n_out; left to right, as cotangents, otherwise), each step one matrix
    product shared by the batch.
    """
    n_in = net.weights[0].shape[1] if net.weights else net.out_weight.shape[1]
    c = n_in if columns is None else int(columns)
    if not 0 < c <= n_in:
        raise ValueError(f"columns must be in 1..{n_in}, got {columns}")
    if net.metric_ends is not None:
        return _metric_chain_product(net, slopes, c)
    if not slopes:
        m = net.out_weight[:, :c].expand(1, -1, -1)
    else:
        mats = [net.weights[0][:, :c], *net.weights[1:], net.out_weight]
        if c <= net.out_weight.shape[0]:
            m = _tangent_chain(mats, list(slopes)).permute(1, 2, 0)
        else:
            m = _tangent_chain([w.T for w in reversed(mats)], list(reversed(slopes))).transpose(0, 1)
    if net.skip is not None:
        m = m + net.skip[:, :c]
    return m


def _metric_chain_product(net: TorchNet, slopes: list[torch.Tensor], c: int) -> torch.Tensor:
    """T M Q on the state columns (see :class:`TorchNet`): the chain with its metric ends."""
    if c != net.n_states:
        raise ValueError(f"a metric weights the {net.n_states} state columns, not {c}")
    first, last, skip = net.metric_ends
    if not slopes:  # no hidden layer: M = W_out (state columns) + S, and T M Q = T (W_out Q) + T S Q
        m = (last @ first).expand(1, -1, -1)
    else:
        mats = [first, *net.weights[1:], last]
        if c <= last.shape[0]:
            m = _tangent_chain(mats, list(slopes)).permute(1, 2, 0)
        else:
            m = _tangent_chain([w.T for w in reversed(mats)], list(reversed(slopes))).transpose(0, 1)
    return m if skip is None else m + skip


def layer_slopes(act: Activation, z: torch.Tensor, kind: str) -> torch.Tensor:
    """Secant slopes (``kind='secant'``) or derivatives (``kind='derivative'``) of one layer, same shape as z.

    Equal to ``act.secant(z)`` / ``act.derivative(z)``; for ReLU and LeakyReLU (where both are the slope of the
    piece, sigma'(0) at 0) it takes a two-pass shortcut, since these elementwise passes dominate sampling time.
    """
    if kind not in ("secant", "derivative"):
        raise ValueError(f"kind must be 'secant' or 'derivative', got {kind!r}")
    if act.kind is ActivationKind.RELU:
        return torch.gt(z, 0, out=torch.empty_like(z, memory_format=torch.contiguous_format))
    if act.kind is ActivationKind.LEAKY_RELU:
        return torch.full_like(z, act.alpha).masked_fill_(z > 0, 1.0)
    return act.secant(z) if kind == "secant" else act.derivative(z)


def slopes(net: TorchNet, x: torch.Tensor, kind: str) -> list[torch.Tensor]:
    """Per-layer secant slopes (``kind='secant'``, for A*) or derivatives (``kind='derivative'``, for J)."""
    if kind not in ("secant", "derivative"):
        raise ValueError(f"kind must be 'secant' or 'derivative', got {kind!r}")
    return [layer_slopes(act, z, kind) for act, z in zip(net.activations, preactivations(net, x))]


def pwa(net: TorchNet, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """(A*(x), b*(x)) with shapes (B, n_out, n_in) and (B, n_out)."""
    h = x
    beta = None
    lams = []
    for w, b, act, s0 in zip(net.weights, net.biases, net.activations, net.sigma0):
        z = torch.addmm(b, h, w.T)
        lam = layer_slopes(act, z, "secant")
        lams.append(lam)
        pre = b if beta is None else torch.addmm(b, beta, w.T)
        beta = lam * pre + s0
        h = act.value(z)
    a_star = chain_product(net, lams) if lams else chain_product(net, []).expand(x.shape[0], -1, -1)
    if beta is None:
        b_star = net.out_bias.expand(x.shape[0], -1)
    else:
        b_star = torch.addmm(net.out_bias, beta, net.out_weight.T)
    return a_star, b_star


def jacobian(net: TorchNet, x: torch.Tensor) -> torch.Tensor:
    """J(x) of shape (B, n_out, n_in)."""
    if not net.weights:
        return chain_product(net, []).expand(x.shape[0], -1, -1)
    return chain_product(net, slopes(net, x, "derivative"))


# ============================================================================ batched norms (ranking only)
def _scaled(m: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """m / s and s = max |m_ij| per matrix (1 where the matrix is zero); s has shape m.shape[:-2]."""
    s = m.detach().abs().amax(dim=(-2, -1))
    s = torch.where(s > 0, s, torch.ones_like(s))
    return m / s[..., None, None], s


def _spectral(m: torch.Tensor) -> torch.Tensor:
    k, n = m.shape[-2:]
    if k == 1 or n == 1:
        return torch.linalg.vector_norm(m, dim=(-2, -1))
    if k == 2 and n == 2:
        a, b, c, d = m[..., 0, 0], m[..., 0, 1], m[..., 1, 0], m[..., 1, 1]
        return 0.5 * (torch.hypot(a + d, b - c) + torch.hypot(a - d, b + c))
    ms, s = _scaled(m)
    if k == 2 or n == 2:
        # Gram matrix of the 2-long side: [[g11, g12], [g12, g22]]; lambda_max in closed form (no cancellation).
        rows = ms if k == 2 else ms.transpose(-2, -1)
        u, v = rows[..., 0, :], rows[..., 1, :]
        g11, g22, g12 = (u * u).sum(-1), (v * v).sum(-1), (u * v).sum(-1)
        lam = 0.5 * (g11 + g22) + torch.hypot(0.5 * (g11 - g22), g12)
    else:
        gram = ms @ ms.transpose(-2, -1) if k <= n else ms.transpose(-2, -1) @ ms
        lam = torch.linalg.eigvalsh(gram)[..., -1]
    return torch.sqrt(torch.clamp_min(lam, 0.0)) * s


def batched_induced_norm(m: torch.Tensor, p: float) -> torch.Tensor:
    """||M_b||_p for a batch m of shape (B, k, n) (any leading batch axes), on m's device and in m's dtype.

    Returns shape (B,). Differentiable (used by gradient ascent), except at ties of the max and at repeated
    top singular values where only a subgradient exists.
    """
    p = check_norm(p)
    if m.ndim < 2:
        raise UsageError(f"batched_induced_norm needs a (..., k, n) tensor, got shape {tuple(m.shape)}")
    k, n = m.shape[-2:]
    if k == 0 or n == 0:
        return torch.zeros(m.shape[:-2], dtype=m.dtype, device=m.device)
    if p == 1.0:
        return m.abs().sum(dim=-2).amax(dim=-1)
    if p == math.inf:
        return m.abs().sum(dim=-1).amax(dim=-1)
    return _spectral(m)

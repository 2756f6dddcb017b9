"""Batched kernels for f(x), the pointwise-affine form (A*(x), b*(x)) and the Jacobian J(x) (DESIGN.md section 2).

All functions take a :class:`~certify.network.TorchNet` and a batch ``x`` of shape (B, n_in) on the same device and
dtype, and contain no Python loop over points (only over layers). The float64 CPU path is the reference used to
replay witnesses; sampling runs the same code in float32 and/or on CUDA.

Lemma 1:  Lambda_l = diag(secant_l(z_l)),  A_0 = I, beta_0 = 0,
          A_{l+1} = Lambda_l W_l A_l,  beta_{l+1} = Lambda_l (W_l beta_l + b_l) + sigma_l(0),
          A* = W_L A_L + S,  b* = W_L beta_L + b_L,  and f(x) = A*(x) x + b*(x) exactly.
Jacobian: the same chain with diag(sigma_l'(z_l)) in place of Lambda_l.
"""

from __future__ import annotations

import torch

from .network import TorchNet


def preactivations(net: TorchNet, x: torch.Tensor) -> list[torch.Tensor]:
    """Pre-activations z_l, each (B, n_{l+1})."""
    zs = []
    h = x
    for w, b, act in zip(net.weights, net.biases, net.activations):
        z = torch.addmm(b, h, w.T)
        zs.append(z)
        h = act.value(z)
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


def chain_product(net: TorchNet, slopes: list[torch.Tensor]) -> torch.Tensor:
    """W_L diag(s_{L-1}) W_{L-1} ... diag(s_0) W_0 + S for a batch of slope vectors s_l of shape (B, n_{l+1}).

    Returns (B, n_out, n_in). Evaluated right to left, each step one matrix product shared by the batch.
    """
    batch = slopes[0].shape[0] if slopes else 1
    if not slopes:
        m = net.out_weight.expand(batch, *net.out_weight.shape)
    else:
        # A has shape (B, n_l, n_in); the first factor needs no product.
        a = slopes[0].unsqueeze(-1) * net.weights[0]
        for w, s in zip(net.weights[1:], slopes[1:]):
            a = s.unsqueeze(-1) * torch.matmul(w, a)
        m = torch.matmul(net.out_weight, a)
    if net.skip is not None:
        m = m + net.skip
    return m


def slopes(net: TorchNet, x: torch.Tensor, kind: str) -> list[torch.Tensor]:
    """Per-layer secant slopes (``kind='secant'``, for A*) or derivatives (``kind='derivative'``, for J)."""
    zs = preactivations(net, x)
    if kind == "secant":
        return [act.secant(z) for act, z in zip(net.activations, zs)]
    if kind == "derivative":
        return [act.derivative(z) for act, z in zip(net.activations, zs)]
    raise ValueError(f"kind must be 'secant' or 'derivative', got {kind!r}")


def pwa(net: TorchNet, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """(A*(x), b*(x)) with shapes (B, n_out, n_in) and (B, n_out)."""
    h = x
    beta = None
    lams = []
    for w, b, act, s0 in zip(net.weights, net.biases, net.activations, net.sigma0):
        z = torch.addmm(b, h, w.T)
        lam = act.secant(z)
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

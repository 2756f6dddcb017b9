"""Falsification first: a fast lower bound on sup_{x in X} ||A*(x)||_p (or ||J(x)||_p) by batched sampling.

Strategy (DESIGN.md section 2, "Falsification first"), all seeded and batched (no Python loop per point):

1. an initial design of ``config.samples`` points, evaluated in chunks in float32 on ``config.torch_device()``:
   the centre, the box's vertices (all 2^n when n <= 12, else a random subset), its face centres, then Sobol
   (scrambled, seeded) and uniform points in alternating chunks (:func:`sample_points`);
2. local search in float64 around the best few points (a beam of up to 32 distinct regions): where the matrix is
   constant on each activation region (J of piecewise-linear nets, A* of nets piecewise linear through the
   origin), exact region-by-region walks along random lines through the incumbents (slivers included), hops just
   across the nearest activation hyperplanes, and shrinking Gaussian perturbations, all clipped to the box;
   otherwise projected gradient ascent on the norm (torch autograd on the batch), with per-point step sizes that
   halve when a step does not improve;
3. replay: the best candidates are moved to generic points (:func:`generic_point`: every pre-activation away from
   its activation's kinks, so the matrix is that of an open region, not of a derivative convention), recomputed in
   float64 through the IR (``Network.pwa`` / ``Network.jacobian`` on CPU, then
   :func:`~certify.ir.numerics.induced_norm`), and the best replayed value is reported.

Soundness: the result is a *lower* bound on the supremum, attained at the returned point ``x`` (inside the box:
every candidate is clipped to the box in float64 before replay). Float32 values only rank points; nothing float32
is ever reported.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass
from fractions import Fraction
from typing import Iterator

import numpy as np
import torch

from ..config import VerifyConfig
from ..errors import UsageError
from ..ir.activations import ActivationKind
from ..ir.box import Box
from ..ir.kernels import TorchNet, batched_induced_norm, chain_product, layer_slopes, preactivations
from ..ir.metric import Metric, check_metric_applies
from ..ir.network import Network
from ..ir.numerics import EPS, EXACT_REL, TINY, abs_norm_upper, chain_gamma, induced_norm
from ..ir.pieces import pieces
from ..ir.quantity import Quantity

_TOP_K = 32  # incumbents kept for the local search
_REPLAY = 8  # candidates replayed through the IR at the end
_MAX_VERTEX_DIM = 12  # all 2^n vertices up to this dimension
_RANDOM_VERTICES = 4096  # vertices drawn at random above it
_CPU_CHUNK_ELEMENTS = 1 << 20  # about 4 MiB of float32 tangents per chunk: near cache size on CPU
_CUDA_CHUNK_ELEMENTS = 1 << 26
_LOCAL_ROUNDS = 60
_LOCAL_PATIENCE = 12  # rounds without improvement before the local search stops
_HOPS_PER_POINT = 16  # nearest hyperplanes crossed per incumbent and round
_RAY_STEPS = 64  # regions visited per ray and round
GENERIC_PAD = 1e-10  # a generic point's pre-activations clear every kink by this times |W| |h| + |b|


@dataclass(frozen=True, eq=False)
class SampleResult:
    """Best point found. ``value`` = ||matrix||_p replayed in float64 through the IR at ``x`` (n_in,).

    ``matrix``: the replayed float64 matrix, (n_out, n_states) when ``state_only`` else (n_out, n_in).
    ``points``: points evaluated (initial design plus local search); ``device``: where sampling ran;
    ``generic``: x is a generic point (:func:`generic_point`), so ``value`` is the norm of an open region's matrix
    (False only when no generic point was found near the best candidates: then ``value`` is no witness).
    ``overflow``: the matrix at some replayed candidate overflowed float64 (its norm is NaN, see
    :func:`~certify.ir.numerics.induced_norm`); such a point is never the witness.
    """

    value: float
    x: np.ndarray
    matrix: np.ndarray
    points: int
    seconds: float
    device: str
    quantity: Quantity = Quantity.A_STAR
    norm: float = 2.0
    generic: bool = True
    overflow: bool = False


# --------------------------------------------------------------------------------------------- the point design
def _design_chunks(
    box: Box, n: int, seed: int, device: str | torch.device, dtype: torch.dtype, chunk: int
) -> Iterator[torch.Tensor]:
    """The first ``n`` points of the seeded design, in chunks of at most ``chunk`` rows (float64 CPU, then cast).

    Centre, vertices, face centres, then Sobol and uniform chunks alternately. Each point is clipped to the box in
    float64; the cast to ``dtype`` may round a coordinate just outside it (callers clip again in float64).
    """
    lo = torch.from_numpy(np.array(box.lower, dtype=np.float64))
    hi = torch.from_numpy(np.array(box.upper, dtype=np.float64))
    d = box.dim
    gen = torch.Generator().manual_seed(int(seed))
    sobol = torch.quasirandom.SobolEngine(d, scramble=True, seed=int(seed)) if d <= 21201 else None
    left = int(n)

    def emit(unit: torch.Tensor) -> Iterator[torch.Tensor]:
        nonlocal left
        for start in range(0, unit.shape[0], chunk):
            if left <= 0:
                return
            u = unit[start : start + min(chunk, left)]
            left -= u.shape[0]
            pts = torch.where(u >= 1.0, hi, torch.minimum(torch.maximum(lo + (hi - lo) * u, lo), hi))
            yield pts.to(device=device, dtype=dtype)

    yield from emit(torch.full((1, d), 0.5, dtype=torch.float64))
    if d <= _MAX_VERTEX_DIM:
        bits = torch.arange(2**d).unsqueeze(1) >> torch.arange(d)
        vertices = (bits & 1).to(torch.float64)
    else:
        vertices = torch.randint(0, 2, (_RANDOM_VERTICES, d), generator=gen).to(torch.float64)
    yield from emit(vertices)
    faces = torch.full((2 * d, d), 0.5, dtype=torch.float64)
    faces[torch.arange(d), torch.arange(d)] = 0.0
    faces[d + torch.arange(d), torch.arange(d)] = 1.0
    yield from emit(faces)
    use_sobol = True
    while left > 0:
        m = min(chunk, left)
        if use_sobol and sobol is not None:
            unit = sobol.draw(m, dtype=torch.float64)
        else:
            unit = torch.rand((m, d), generator=gen, dtype=torch.float64)
        use_sobol = not use_sobol
        yield from emit(unit)


def sample_points(
    box: Box, n: int, seed: int = 0, device: str | torch.device = "cpu", dtype: torch.dtype = torch.float32
) -> torch.Tensor:
    """The first ``n`` points (n, box.dim) of the seeded design: centre, vertices, face centres, Sobol/uniform.

    The same seed gives the same points on every device (they are drawn on CPU in float64, then moved).
    """
    if n < 0:
        raise UsageError(f"sample_points needs n >= 0, got {n}")
    chunks = list(_design_chunks(box, n, seed, device, dtype, chunk=1 << 16))
    return torch.cat(chunks) if chunks else torch.empty((0, box.dim), dtype=dtype, device=device)


# --------------------------------------------------------------------------------------------- batched values
def _value_and_slope(act, z: torch.Tensor, kind: str, need_value: bool) -> tuple[torch.Tensor | None, torch.Tensor]:
    """(sigma(z) or None, secant slopes or derivatives) of one layer, same shape as z, in as few elementwise
    passes as the activation allows: one transcendental shared by value and slope (tanh: h = tanh z, slope h / z
    or 1 - h^2; sigmoid through th = tanh(z / 2): value (1 + th) / 2, slope th / (2 z) or (1 - th^2) / 4; GELU
    through Phi(z), SiLU through sigmoid(z): value z times the secant slope), in-place arithmetic after it.

    No autograd (the in-place steps and the 0/0 filled at z = 0 have no useful gradient): callers with gradients
    use :func:`~certify.ir.kernels.layer_slopes`. Values rank points only (float32), as everywhere in sampling.
    """
    k = act.kind
    if k is ActivationKind.TANH or k is ActivationKind.SIGMOID:
        sig = k is ActivationKind.SIGMOID
        th = torch.tanh(z * 0.5 if sig else z)
        if kind == "secant":
            slope = torch.div(th, z).masked_fill_(z == 0, 0.5 if sig else 1.0)  # the limit of th / z at 0
            if sig:
                slope.mul_(0.5)
        else:  # c (1 - th^2) in one pass, c = 1/4 for the sigmoid
            c = 0.25 if sig else 1.0
            slope = torch.addcmul(torch.full((), c, dtype=z.dtype, device=z.device), th, th, value=-c)
        if sig:
            return (torch.add(th, 1.0).mul_(0.5) if need_value else None), slope
        return th, slope
    if k is ActivationKind.GELU or k is ActivationKind.SILU:
        secant = torch.special.ndtr(z) if k is ActivationKind.GELU else torch.sigmoid(z)
        value = torch.mul(z, secant) if need_value else None
        if kind == "secant":
            return value, secant
        if k is ActivationKind.GELU:  # Phi(z) + z phi(z)
            slope = torch.mul(z, z).mul_(-0.5).exp_().mul_(z).mul_(1.0 / math.sqrt(2.0 * math.pi)).add_(secant)
        else:  # s (1 + z (1 - s)) = s + z s (1 - s)
            slope = torch.sub(1.0, secant).mul_(secant).mul_(z).add_(secant)
        return value, slope
    return (act.value(z) if need_value else None), layer_slopes(act, z, kind)


def matrices_at(tnet: TorchNet, x: torch.Tensor, quantity: Quantity, columns: int) -> torch.Tensor:
    """A*(x) or J(x), first ``columns`` columns, shape (B, n_out, columns).

    Without gradients, one fused pass per layer computes the pre-activation, the activation's value (the next
    layer's input) and the slopes from one shared transcendental (:func:`_value_and_slope`); with gradients
    (the gradient ascent) the separate autograd-safe kernels of :mod:`certify.ir.kernels`."""
    if not tnet.weights:
        return chain_product(tnet, [], columns).expand(x.shape[0], -1, -1)
    kind = quantity.slope_kind
    if torch.is_grad_enabled() and x.requires_grad:
        zs = preactivations(tnet, x)
        s = [layer_slopes(act, z, kind) for act, z in zip(tnet.activations, zs)]
        return chain_product(tnet, s, columns)
    s, h, last = [], x, len(tnet.weights) - 1
    for i, (w, b, act) in enumerate(zip(tnet.weights, tnet.biases, tnet.activations)):
        h, slope = _value_and_slope(act, torch.addmm(b, h, w.T), kind, need_value=i < last)
        s.append(slope)
    return chain_product(tnet, s, columns)


def norms_at(tnet: TorchNet, x: torch.Tensor, quantity: Quantity, p: float, columns: int) -> torch.Tensor:
    """||M(x_b)[:, :columns]||_p for a batch x (B, n_in) on tnet's device and dtype; returns (B,).

    The sampling kernel (M = A* or J by ``quantity``). NaN (overflow in low precision) becomes -inf.
    """
    v = batched_induced_norm(matrices_at(tnet, x, quantity, columns), p)
    return torch.nan_to_num(v, nan=-math.inf)


class _Incumbents:
    """The best ``k`` points seen so far (float64 points and values on the device).

    ``by_value``: keep one point per distinct value. Where the matrix is constant on each activation region, two
    points of one region get bit-identical values (the same slopes give the same products), so this keeps ``k``
    distinct regions, the beam of the region search. Otherwise repeated points only are dropped.
    """

    def __init__(self, k: int, by_value: bool = False):
        self.k = k
        self.by_value = by_value
        self.values: torch.Tensor | None = None
        self.points: torch.Tensor | None = None

    def offer(self, values: torch.Tensor, points: torch.Tensor) -> None:
        """Merge a batch (values (B,), points (B, n)) into the incumbents; repeated points are kept once."""
        values = values.to(torch.float64)
        points = points.to(torch.float64)
        if self.values is not None:
            values = torch.cat([self.values, values])
            points = torch.cat([self.points, points])
        take = min(4 * self.k, values.shape[0])
        order = torch.topk(values, take).indices
        values, points = values[order], points[order]
        if self.by_value:
            same = values.unsqueeze(0) == values.unsqueeze(1)  # (take, take)
        else:
            same = (points.unsqueeze(0) == points.unsqueeze(1)).all(-1)
        repeat = torch.tril(same, diagonal=-1).any(1)  # equal to a better-ranked row
        keep = torch.nonzero(~repeat).squeeze(1)[: self.k]
        self.values, self.points = values[keep], points[keep]


def default_chunk_size(net: Network, columns: int, cuda: bool) -> int:
    """Points per sampling chunk: about 2 MiB of float32 tangents on CPU (cache-sized), far more on CUDA."""
    widths = net.widths or (net.n_out,)
    per_point = columns * max(max(widths), net.n_out) + sum(widths) + net.n_in
    budget = _CUDA_CHUNK_ELEMENTS if cuda else _CPU_CHUNK_ELEMENTS
    return int(min(max(budget // per_point, 2048), 1 << 20))


# --------------------------------------------------------------------------------------------- local search
def _clip(x: torch.Tensor, lo: torch.Tensor, hi: torch.Tensor) -> torch.Tensor:
    return torch.minimum(torch.maximum(x, lo), hi)


def _kinks(kind: ActivationKind, lo: float, hi: float) -> tuple[float, ...]:
    """Pre-activation values where a piecewise-linear activation changes piece."""
    if kind in (ActivationKind.RELU, ActivationKind.LEAKY_RELU, ActivationKind.PRELU):
        return (0.0,)
    if kind is ActivationKind.CLIP:
        return tuple(v for v in (lo, hi) if math.isfinite(v))
    return ()


def _hyperplane_hops(tnet: TorchNet, x: torch.Tensor, lo: torch.Tensor, hi: torch.Tensor) -> torch.Tensor:
    """Points just across the nearest activation hyperplanes of each point's region; x (K, n_in) -> (K * h, n_in).

    In a piecewise-linear net z_l is affine on the region of x with gradient G_l = W_l D_{l-1} ... D_0 W_0
    (D the derivative slopes); the kink z_i = c is crossed at x - (z_i - c) g_i / |g_i|^2, pushed slightly beyond.
    """
    k, n = x.shape
    grads, gaps = [], []
    g = None  # (K, n_l, n_in) gradient of the previous layer's post-activation
    h = x
    for w, b, act in zip(tnet.weights, tnet.biases, tnet.activations):
        z = torch.addmm(b, h, w.T)
        g_z = w.expand(k, -1, -1) if g is None else torch.matmul(w, g)
        for knot in _kinks(act.kind, act.lo, act.hi):
            grads.append(g_z)
            gaps.append(z - knot)
        g = act.derivative(z).unsqueeze(-1) * g_z
        h = act.value(z)
    if not grads:
        return x[:0]
    g_all = torch.cat(grads, dim=1)  # (K, H, n_in)
    gap = torch.cat(gaps, dim=1)  # (K, H)
    sq = (g_all * g_all).sum(-1)
    ok = sq > 0
    dist = torch.where(ok, gap.abs() / torch.sqrt(torch.where(ok, sq, 1.0)), math.inf)
    take = min(_HOPS_PER_POINT, dist.shape[1])
    idx = torch.topk(dist, take, largest=False).indices  # (K, take)
    g_sel = torch.gather(g_all, 1, idx.unsqueeze(-1).expand(-1, -1, n))
    gap_sel = torch.gather(gap, 1, idx)
    sq_sel = torch.gather(sq, 1, idx)
    step = torch.where(sq_sel > 0, gap_sel / torch.where(sq_sel > 0, sq_sel, 1.0), 0.0)
    scale = float((hi - lo).abs().max().clamp_min(1e-300))
    # go past the hyperplane by a relative 1e-6 plus an absolute 1e-9 of the box size
    push = step * (1.0 + 1e-6) + torch.sign(step) * 1e-9 * scale / torch.sqrt(torch.where(sq_sel > 0, sq_sel, 1.0))
    return _clip(x.unsqueeze(1) - push.unsqueeze(-1) * g_sel, lo, hi).reshape(-1, n)


def ray_midpoints(
    tnet: TorchNet, origin: torch.Tensor, direction: torch.Tensor, lo: torch.Tensor, hi: torch.Tensor, steps: int,
    deadline: float = math.inf,
) -> torch.Tensor:
    """Midpoints of the successive activation regions along rays x = o + t d, t >= 0, up to the box boundary.

    origin, direction: (R, n_in). Exact 1-D region enumeration per ray (at most ``steps`` regions each): on the
    current region z_l(t) is affine with rate dz_l/dt pushed forward through the derivative slopes, so the next
    kink is the smallest positive (c - z_i) / rate_i over all neurons. Thin regions (slivers) that volume sampling
    almost never hits are crossed like any other. Returns (M, n_in) midpoints, clipped to the box; stops early at
    ``deadline`` (a ``time.perf_counter()`` value) with the midpoints found so far.
    """
    d = direction
    with torch.no_grad():
        room = torch.where(d > 0, (hi - origin) / torch.where(d > 0, d, 1.0), math.inf)
        room = torch.minimum(room, torch.where(d < 0, (lo - origin) / torch.where(d < 0, d, 1.0), math.inf))
        t_end = room.amin(dim=1).clamp_min(0.0)  # (R,)
    t = torch.zeros_like(t_end)
    push = 1e-12 * t_end.clamp_min(1e-300)
    mids = []
    for _ in range(steps):
        alive = t < t_end
        if not bool(alive.any()) or time.perf_counter() > deadline:
            break
        q = origin + t.unsqueeze(1) * d
        h, rate, nxt = q, d, t_end.clone()
        for w, b, act in zip(tnet.weights, tnet.biases, tnet.activations):
            z = torch.addmm(b, h, w.T)
            dz = rate @ w.T
            for knot in _kinks(act.kind, act.lo, act.hi):
                ok = dz != 0
                delta = torch.where(ok, (knot - z) / torch.where(ok, dz, 1.0), math.inf)
                delta = torch.where(delta > 0, delta, math.inf)
                nxt = torch.minimum(nxt, t + delta.amin(dim=1))
            rate = act.derivative(z) * dz
            h = act.value(z)
        nxt = torch.minimum(nxt, t_end)
        mids.append(_clip(origin[alive] + (0.5 * (t + nxt))[alive].unsqueeze(1) * d[alive], lo, hi))
        t = torch.where(alive, nxt + push, t)
    return torch.cat(mids) if mids else origin[:0]


def _local_pwl(tnet, inc: _Incumbents, quantity, p, columns, lo, hi, gen, budget, deadline) -> int:
    """Region search around the incumbents (float64): line walks, hyperplane hops, Gaussian perturbations.

    Each round spends about budget / 6 points; stops at the budget, the deadline, or after ``_LOCAL_PATIENCE``
    rounds without improvement. Returns the number of points evaluated.
    """
    radius = 0.5 * (hi - lo)
    used, stale = 0, 0
    for r in range(_LOCAL_ROUNDS):
        if used >= budget or time.perf_counter() > deadline or stale >= _LOCAL_PATIENCE:
            break
        x = inc.points
        k, n = x.shape
        quota = min(budget - used, max(budget // 6, 256))
        # rays from the best incumbents (round robin over the beam), each walked both ways
        n_lines = max(1, quota // (4 * _RAY_STEPS))
        origins = x[torch.arange(n_lines, device=x.device) % k]
        dirs = torch.randn((n_lines, n), generator=gen, dtype=torch.float64).to(x.device) * radius
        rays = ray_midpoints(tnet, origins.repeat(2, 1), torch.cat([dirs, -dirs]), lo, hi, _RAY_STEPS, deadline)
        hops = _hyperplane_hops(tnet, x[: max(1, quota // (4 * _HOPS_PER_POINT))], lo, hi)
        scale = 0.3 * 0.5 ** (r % 12)
        n_gauss = max(1, quota // (4 * k))
        noise = torch.randn((k, n_gauss, n), generator=gen, dtype=torch.float64).to(x.device)
        gauss = _clip(x.unsqueeze(1) + scale * radius * noise, lo, hi).reshape(-1, n)
        cand = torch.cat([rays, hops, gauss])[: budget - used]
        before = float(inc.values[0])
        inc.offer(norms_at(tnet, cand, quantity, p, columns), cand)
        used += cand.shape[0]
        stale = 0 if float(inc.values[0]) > before else stale + 1
    return used


def _local_gradient(tnet, inc: _Incumbents, quantity, p, columns, lo, hi, budget, deadline) -> int:
    """Projected gradient ascent on ||M(x)||_p from the incumbents (float64, accept-if-better steps)."""
    radius = 0.5 * (hi - lo)
    x = inc.points.clone()
    k = x.shape[0]
    val = norms_at(tnet, x, quantity, p, columns)
    eta = torch.full((k,), 0.1, dtype=torch.float64, device=x.device)
    used = k
    while used + k <= budget and time.perf_counter() <= deadline and bool((eta > 1e-9).any()):
        xg = x.clone().requires_grad_(True)
        with torch.enable_grad():
            v = batched_induced_norm(matrices_at(tnet, xg, quantity, columns), p)
            (grad,) = torch.autograd.grad(v.sum(), xg)
        d = torch.nan_to_num(grad, nan=0.0, posinf=0.0, neginf=0.0) * radius
        dmax = d.abs().amax(dim=1, keepdim=True)
        d = torch.where(dmax > 0, d / torch.where(dmax > 0, dmax, 1.0), 0.0)
        trial = _clip(x + eta.unsqueeze(1) * radius * d, lo, hi)
        tv = norms_at(tnet, trial, quantity, p, columns)
        used += 2 * k
        better = tv > val
        x = torch.where(better.unsqueeze(1), trial, x)
        val = torch.where(better, tv, val)
        eta = torch.where(better, torch.clamp(eta * 1.5, max=0.5), eta * 0.5)
        eta = torch.where(dmax.squeeze(1) > 0, eta, torch.zeros_like(eta))
    inc.offer(val, x)
    return used


# --------------------------------------------------------------------------------------------- replay
def replay_norm(net: Network, x: np.ndarray, quantity: Quantity, p: float, columns: int,
                metric: Metric | None = None, sound: bool = True) -> tuple[float, np.ndarray]:
    """(value, matrix) at x (n_in,) in float64 through the IR (the CPU reference path): the matrix A*(x) or J(x)
    (first ``columns`` columns) and its norm; with a metric, ||T M T^{-1}||_2 from below (the float64 inverse's
    correction, :mod:`certify.ir.metric`), so the value is attained. ``sound``: less the matrix's rounding bound
    (:func:`replay_rounding`) where that exceeds ``EXACT_REL`` of the value, so that the real matrix has it; False
    ranks points only (a search's final witness is then replayed soundly)."""
    m = net.pwa(x)[0] if quantity is Quantity.A_STAR else net.jacobian(x)
    m = np.array(m[:, :columns], dtype=np.float64)
    if not sound:
        v = induced_norm(m, p) if metric is None or metric.is_identity else \
            float(induced_norm(metric.conjugate(m), 2.0)) * metric.lower_factor
        return float(v), m
    err = replay_rounding(net, x, quantity, columns)
    if metric is None or metric.is_identity:
        v, slack = float(induced_norm(m, p)), float(abs_norm_upper(err, p))
    else:
        v = float(induced_norm(metric.conjugate(m), 2.0)) * metric.lower_factor
        slack = float(abs_norm_upper(np.abs(metric.t) @ err @ np.abs(metric.t_inv), 2.0)) * 1.001
    if not slack <= EXACT_REL * max(1.0, abs(v)):  # NaN too
        v = max(v - slack, 0.0)  # the float64 matrix may be off beyond its last digits: what the real one has
    return v, m


def replay_rounding(net: Network, x: np.ndarray, quantity: Quantity, columns: int) -> np.ndarray:
    """Entrywise bound (n_out, columns) on |real M(x) - float64 M(x)| (M = A* or J through the IR at x (n_in,)):
    the chain's rounding (:func:`certify.ir.numerics.chain_gamma` times its absolute values) plus the slopes' error
    where z itself errs (the slope's range over z +- its error, and 16 eps of the slope for its evaluation: the
    stated assumption about torch's elementwise functions). inf where a pre-activation is not farther than its
    error from a kink (its piece, hence its slope, is not known). Large only where the chain cancels."""
    x = np.asarray(x, dtype=np.float64)
    widths = [net.n_in] + [layer.width for layer in net.layers]
    g = chain_gamma(max(widths), len(net.layers) + 1)
    mag = np.eye(net.n_in)[:, :columns]
    err = np.zeros_like(mag)
    with np.errstate(over="ignore", invalid="ignore"):
        for layer, z2, e_z2, _, _ in forward_errors(net, x, g):
            act, aw, z, e_z = layer.activation, np.abs(layer.weight), z2[0], e_z2[0]
            if not np.all(np.isfinite(e_z)) or any(np.any(np.abs(z - k) <= e_z) for k in act.kinks()):
                return np.full((net.n_out, columns), np.inf)
            secant = quantity is Quantity.A_STAR and not net.piecewise_linear_through_origin
            slope_fn, range_fn = (act.np_secant, act.secant_range) if secant else (act.np_derivative,
                                                                                 act.derivative_range)
            d = slope_fn(z[None, :])[0]
            lo, hi = range_fn((z - e_z)[None, :], (z + e_z)[None, :])
            dd = np.maximum(np.abs(lo[0] - d), np.abs(hi[0] - d)) + 16 * EPS * np.abs(d)
            wm, we = aw @ mag, aw @ err
            err = np.abs(d)[:, None] * we + (dd + g * np.abs(d))[:, None] * wm
            mag = (np.abs(d) + dd)[:, None] * wm
        ao = np.abs(net.out_weight)
        err = ao @ err + g * (ao @ mag)
        if net.skip is not None:
            err = err + g * np.abs(net.skip[:, :columns])
    return np.where(np.isfinite(err), err, np.inf)


def falsify(
    net: Network, box: Box, quantity: Quantity, norm: float, config: VerifyConfig, state_only: bool = True,
    metric: Metric | None = None,
) -> SampleResult:
    """Largest ||M(x)||_p found over the box (M = A* or J; state columns only when ``state_only``); with a
    ``metric`` (state-only, p = 2), the largest ||T M(x) T^{-1}||_2.

    ``config``: samples (initial design size; the local search adds at most
    min(max(samples / 8, 4096), 65536) points more),
    seed, timeout (seconds, checked between chunks), device (via ``config.torch_device()``).
    The returned value is replayed in float64 through the IR at the returned point, which lies in the box.
    """
    start = time.perf_counter()
    if not isinstance(quantity, Quantity) or not quantity.is_matrix:
        raise UsageError(f"quantity must be Quantity.A_STAR or Quantity.JACOBIAN, got {quantity!r}")
    if box.dim != net.n_in:
        raise UsageError(f"the box has {box.dim} coordinates but the model has {net.n_in} inputs")
    p = float(norm)
    if p not in (1.0, 2.0, math.inf):
        raise UsageError(f"norm must be 1, 2 or inf, got {norm}")
    device = config.torch_device()
    columns = net.n_states if state_only else net.n_in
    deadline = start + config.timeout
    sample_deadline = start + 0.8 * config.timeout

    lo64 = torch.from_numpy(np.array(box.lower, dtype=np.float64)).to(device)
    hi64 = torch.from_numpy(np.array(box.upper, dtype=np.float64)).to(device)
    # the matrix is constant on each region: J of a PWL net, A* of a net PWL through the origin
    regionwise = net.piecewise_linear and (quantity is Quantity.JACOBIAN or net.piecewise_linear_through_origin)
    inc = _Incumbents(_TOP_K, by_value=regionwise)
    points = 0
    if metric is not None and not metric.is_identity:
        check_metric_applies(metric, p, net.n_states, net.n_out)
        if not state_only:
            raise UsageError("a metric weights the state block: sample with state_only=True")
    t32 = TorchNet.of(net, torch.float32, device, metric)
    chunk = default_chunk_size(net, columns, device != "cpu")
    with torch.no_grad():
        for pts in _design_chunks(box, max(config.samples, 1), config.seed, device, torch.float32, chunk):
            inc.offer(norms_at(t32, pts, quantity, p, columns), pts)
            points += pts.shape[0]
            if time.perf_counter() > sample_deadline:
                break

        # float64 from here on: re-evaluate the incumbents (clipped into the box), then search around them
        t64 = TorchNet.of(net, torch.float64, device, metric)
        x0 = _clip(inc.points, lo64, hi64)
        inc = _Incumbents(_TOP_K, by_value=regionwise)
        inc.offer(norms_at(t64, x0, quantity, p, columns), x0)
        points += x0.shape[0]
        budget = min(max(config.samples // 8, 4096), 65536) if config.samples > 0 else 0
        gen = torch.Generator().manual_seed(int(config.seed) + 1)
        if budget and net.layers:
            if regionwise:
                points += _local_pwl(t64, inc, quantity, p, columns, lo64, hi64, gen, budget, deadline)
            else:
                points += _local_gradient(t64, inc, quantity, p, columns, lo64, hi64, budget, deadline)

    best_value, best_x, best_m, best_generic = -math.inf, None, None, False
    overflow = False
    for i, x in enumerate(inc.points[:_REPLAY].cpu().numpy()):
        x, generic = generic_point(net, box, np.clip(x, box.lower, box.upper), seed=config.seed + i)
        value, m = replay_norm(net, x, quantity, p, columns, metric)
        if math.isnan(value):  # the matrix overflowed float64 there: no value, so no witness (induced_norm)
            overflow, generic, value = True, False, -math.inf
        if best_x is None or (generic, value) > (best_generic, best_value):
            best_value, best_x, best_m, best_generic = value, x, m, generic
    best_x.setflags(write=False)
    best_m.setflags(write=False)
    return SampleResult(
        value=float(best_value),
        x=best_x,
        matrix=best_m,
        points=points,
        seconds=time.perf_counter() - start,
        device=device,
        quantity=quantity,
        norm=p,
        generic=best_generic,
        overflow=overflow,
    )


def forward_errors(net: Network, x: np.ndarray, pad: float):
    """Layer by layer through the IR in float64 numpy at points x (B, n_in): yields (layer, z, e_z, h, e_h) with the
    pre-activations z (B, n_l), a bound e_z on |real z - float64 z|, the activations h and a bound e_h on their
    error. e_z: ``pad`` (|W| |h| + |b|) for the layer's own rounding (pad >= the relative error of a dot product)
    plus |W| times the error carried in h; e_h: the activation's largest slope over z +- e_z times e_z, plus
    max(pad, 16 eps) |h| for its evaluation (the stated assumption about torch's elementwise functions).
    Cancelling sums make e_z far larger than pad |z|."""
    h = np.atleast_2d(np.asarray(x, dtype=np.float64))
    e_h = np.zeros_like(h)
    with np.errstate(over="ignore", invalid="ignore"):
        for layer in net.layers:
            act, aw = layer.activation, np.abs(layer.weight)
            z = h @ layer.weight.T + layer.bias
            e_z = pad * (np.abs(h) @ aw.T + np.abs(layer.bias)) + e_h @ aw.T + TINY
            h = act.np_value(z)
            e_h = _largest_slope(act, layer.width, z, e_z) * e_z + max(pad, 16 * EPS) * np.abs(h)
            yield layer, z, e_z, h, e_h


def _largest_slope(act, width: int, z: np.ndarray, e_z: np.ndarray) -> np.ndarray:
    """max |sigma'| over [z - e_z, z + e_z], entrywise (B, n) (inf where e_z is not finite)."""
    if act.kind is ActivationKind.RELU:
        return np.where(np.isfinite(e_z), (z + e_z > 0.0).astype(np.float64), np.inf)
    if act.piecewise_linear:
        pcs = pieces(act, width)
        idx = np.broadcast_to(np.arange(width), z.shape).ravel()
        over = pcs.overlapping((z - e_z).ravel(), (z + e_z).ravel(), idx)
        top = np.where(over, np.abs(pcs.slope[idx]), 0.0).max(axis=1).reshape(z.shape)
        return np.where(np.isfinite(e_z), top, np.inf)
    finite = np.isfinite(e_z) & np.isfinite(z)
    safe_z, safe_e = np.where(finite, z, 0.0), np.where(finite, e_z, 0.0)
    lo, hi = act.derivative_range(safe_z - safe_e, safe_z + safe_e)
    return np.where(finite, np.maximum(np.abs(lo), np.abs(hi)), np.inf)


def forward_rounding(net: Network, x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(f(x), e) at points x (B, n_in): the float64 outputs through the IR (B, n_out) and an entrywise bound on
    |real f(x) - f(x)| (:func:`forward_errors` with the pad :func:`certify.ir.numerics.chain_gamma`)."""
    x = np.atleast_2d(np.asarray(x, dtype=np.float64))
    widths = [net.n_in] + [layer.width for layer in net.layers]
    g = chain_gamma(max(widths), len(net.layers) + 1)
    h, e_h = x, np.zeros_like(x)
    with np.errstate(over="ignore", invalid="ignore"):
        for _, _, _, h_l, e_l in forward_errors(net, x, g):
            h, e_h = h_l, e_l
        ao = np.abs(net.out_weight)
        f = h @ net.out_weight.T + net.out_bias
        e = g * (np.abs(h) @ ao.T + np.abs(net.out_bias)) + e_h @ ao.T + TINY
        if net.skip is not None:
            f = f + x @ net.skip.T
            e = e + 2 * g * (np.abs(x) @ np.abs(net.skip).T + np.abs(f))
    return f, np.where(np.isfinite(e), e, np.inf)


def exact_outputs(net: Network, x: np.ndarray) -> list[list[Fraction]]:
    """f(x) in exact rational arithmetic at points x (B, n_in) of a piecewise-linear net (the stored floats as
    rationals): per point the n_out outputs as Fractions. For single witnesses (cost grows with the widths squared
    and the rationals' length), where the float64 rounding bound is too wide to decide."""
    if not net.piecewise_linear:
        raise UsageError("exact outputs need a piecewise-linear net")
    layers = []
    for layer in net.layers:
        pcs = pieces(layer.activation, layer.width)
        layers.append(([[Fraction(float(v)) for v in row] for row in layer.weight],
                       [Fraction(float(v)) for v in layer.bias], pcs))
    out_w = [[Fraction(float(v)) for v in row] for row in net.out_weight]
    out_b = [Fraction(float(v)) for v in net.out_bias]
    skip = None if net.skip is None else [[Fraction(float(v)) for v in row] for row in net.skip]
    result = []
    for point in np.atleast_2d(np.asarray(x, dtype=np.float64)):
        xs = [Fraction(float(v)) for v in point]
        h = xs
        for w, b, pcs in layers:
            z = [sum((wi * hi for wi, hi in zip(row, h) if wi), bi) for row, bi in zip(w, b)]
            h = []
            for i, zi in enumerate(z):
                j = sum(1 for bp in pcs.breakpoints[i] if Fraction(float(bp)) < zi)
                h.append(Fraction(float(pcs.slope[i, j])) * zi + Fraction(float(pcs.offset[i, j])))
        f = [sum((wi * hi for wi, hi in zip(row, h) if wi), bi) for row, bi in zip(out_w, out_b)]
        if skip is not None:
            f = [fi + sum((si * xi for si, xi in zip(row, xs) if si), Fraction(0)) for fi, row in zip(f, skip)]
        result.append(f)
    return result


def replayed_outputs(net: Network, x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """[lo, hi] (B, n_out) holding the real f(x) at points x (B, n_in): the float64 f(x) through the IR where its
    rounding bound (:func:`forward_rounding`) is within ``EXACT_REL`` of it, else f(x) -+ that bound, and for up to
    ``_EXACT_POINTS`` such points of a piecewise-linear net the exact rational value rounded outward
    (:func:`exact_outputs`)."""
    x = np.atleast_2d(np.asarray(x, dtype=np.float64))
    f = np.atleast_2d(net.forward(x))
    err = forward_rounding(net, x)[1]
    with np.errstate(invalid="ignore"):
        doubt = ~(err <= EXACT_REL * np.maximum(1.0, np.abs(f)))
    lo, hi = np.where(doubt, f - err, f), np.where(doubt, f + err, f)
    rows = np.nonzero(doubt.any(axis=1))[0]
    if rows.size and rows.size <= _EXACT_POINTS and net.piecewise_linear:
        for k, exact in zip(rows, exact_outputs(net, x[rows])):
            lo[k] = [_float_toward(v, -1) for v in exact]
            hi[k] = [_float_toward(v, 1) for v in exact]
    return lo, hi


_EXACT_POINTS = 8  # points of a batch evaluated in rationals at most (witnesses are replayed one at a time)


def _float_toward(value: Fraction, side: int) -> float:
    """The float64 nearest to value on its ``side`` (-1: the largest <= value, 1: the smallest >=), inf beyond."""
    try:
        f = float(value)
    except OverflowError:
        return math.inf if value > 0 else -math.inf
    if side < 0 and Fraction(f) > value:
        return math.nextafter(f, -math.inf)
    if side > 0 and Fraction(f) < value:
        return math.nextafter(f, math.inf)
    return f


def generic_mask(net: Network, x: np.ndarray) -> np.ndarray:
    """For points x (B, n_in) (or (n_in,)): True where every pre-activation z is farther from each kink k of its
    activation (:meth:`certify.ir.activations.Activation.kinks`) than its error bound (:func:`forward_errors` with
    ``GENERIC_PAD``, far above the float64 error of one layer, plus the error carried from earlier ones) and
    GENERIC_PAD |k|. Such a point lies in the open activation region its computed signs name (all its inequalities
    hold strictly), so A*(x) and J(x) there are the matrices of that open region, however thin it is. Shape (B,)."""
    h = np.atleast_2d(np.asarray(x, dtype=np.float64))
    ok = np.ones(h.shape[0], dtype=bool)
    for layer, z, err, _, _ in forward_errors(net, h, GENERIC_PAD):
        for k in layer.activation.kinks():
            ok &= np.all(np.abs(z - k) > err + GENERIC_PAD * abs(k), axis=1)
        ok &= np.all(np.isfinite(err), axis=1)
    return ok


def generic_point(net: Network, box: Box, x: np.ndarray, seed: int = 0) -> tuple[np.ndarray, bool]:
    """A generic point (:func:`generic_mask`) at or near x (n_in,) in the box, so that A*(x) and J(x) are the
    matrices of an open region (not of a derivative convention at a kink).

    Returns (x, True) when x is generic; else the first generic point found in the box near x (seeded random points
    in cubes of growing radius, 1e-9 to 1e-1 of the box width, free coordinates only) and True; else (x, False) (a
    neuron may sit on its kink on the whole box, e.g. one with zero weights)."""
    x = np.asarray(x, dtype=np.float64)
    if generic_mask(net, x)[0]:
        return x, True
    rng = np.random.default_rng(seed)
    free = (box.upper > box.lower).astype(np.float64)
    width = float(np.max(box.upper - box.lower)) or 1.0
    for radius in (1e-9, 1e-7, 1e-5, 1e-3, 1e-1):
        cand = np.clip(x + radius * width * free * rng.uniform(-1.0, 1.0, size=(16, x.size)), box.lower, box.upper)
        ok = np.nonzero(generic_mask(net, cand))[0]
        if ok.size:
            return cand[ok[0]], True
    return x, False


def pattern_of(net: Network, x: np.ndarray) -> tuple[tuple[int, ...], ...]:
    """Activation sign pattern at x (n_in,): per hidden layer, 1 where z > 0 else 0."""
    zs = net.preactivations(np.asarray(x, dtype=np.float64))
    return tuple(tuple(int(v > 0) for v in z) for z in zs)

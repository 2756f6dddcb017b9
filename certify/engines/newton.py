"""Equilibria x = f(x) of nets with any activation: Newton's method, a Krawczyk proof, and Corollary 3 over a box.

* :func:`newton_equilibria`: damped Newton on g(x) = f(x) - x from many starts (the seeded design of
  :func:`certify.engines.sampling.sample_points`: centre, vertices, face centres, Sobol), batched in float64 torch;
  every
  converged point is replayed through the float64 IR (``Network.forward``: |f(x) - x|_inf <= tol (1 + |x|_inf))
  and must lie in the box; duplicates are merged. It finds equilibria, it does not prove there are no others.
* :func:`krawczyk`: a proof that a small box around a Newton point holds exactly one equilibrium. With
  X = [x_hat - r, x_hat + r], Y ~ (J(x_hat) - I)^-1 and G an interval matrix holding the (generalised)
  Jacobian of g over X, the Krawczyk operator K = x_hat - Y g(x_hat) + (I - Y G)(X - x_hat) satisfies: if
  K lies in the interior of X, g has exactly one zero in X. g(x_hat) is enclosed by interval arithmetic on the
  degenerate box (:func:`certify.bounds.interval.output_interval`), G by
  :func:`certify.engines.box_search.matrix_enclosure` with
  derivative ranges; every product is done in centre-radius form and padded for rounding.
* :func:`equilibrium_norm_bounds`: Corollary 3 over X (DESIGN.md section 2): every equilibrium x_bar in X has
  inf_X ||b*|| / sup_X ||I - A*|| <= ||x_bar|| <= sup_X ||b*|| / (1 - rho_A) (the upper one when rho_A < 1).
  rho_A and sup ||I - A*|| come from :func:`certify.engines.box_search.sup_norm_boxes` (the second on the same net with
  the skip S replaced by S - I, whose A* is A* - I and whose b* is unchanged); inf and sup of ||b*|| from a
  best-first box search on a sound enclosure of b* over sub-boxes (the Lemma 1 recursion
  beta_{l+1} = Lambda_l (W_l beta_l + b_l) + sigma_l(0) in interval arithmetic, intersected with f(x) - A*(x) x
  from interval enclosures of f and A*).
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, replace

import numpy as np
import torch

from ..bounds.enclosures import bstar_enclosure
from ..bounds.interval import output_interval
from ..bounds.slopes import matrix_enclosure, slope_ranges
from ..config import SdpUse, VerifyConfig
from ..errors import UsageError
from ..ir import kernels
from ..ir.box import Box
from ..ir.kernels import TorchNet
from ..ir.network import Network
from ..ir.numerics import EPS, TINY, affine_interval, vector_norm
from ..ir.quantity import Quantity
from .box_search import box_search
from .contract import Query
from .sampling import sample_points
from .search import Incumbent, Node, SearchLimits, best_first, halves


def _check_autonomous(net: Network, box: Box, inputs) -> np.ndarray:
    if not net.is_dynamics:
        raise UsageError(f"equilibria need a map from states to states; the net maps {net.n_in} inputs to "
                         f"{net.n_out} outputs with {net.n_states} states")
    if box.dim != net.n_in:
        raise UsageError(f"the box has {box.dim} coordinates but the net takes {net.n_in} inputs")
    if net.n_inputs:
        if inputs is None:
            raise UsageError(f"the net has {net.n_inputs} exogenous inputs: pass inputs=(...) to fix them")
        u = np.asarray(inputs, dtype=np.float64).reshape(-1)
        if u.shape != (net.n_inputs,):
            raise UsageError(f"inputs must have {net.n_inputs} entries, got {u.size}")
        return u
    return np.zeros(0)


# ============================================================================================ Newton
def newton_equilibria(net: Network, box: Box, starts: int = 256, seed: int = 0, inputs=None, tol: float = 1e-10,
                      max_iter: int = 60) -> list[np.ndarray]:
    """Equilibria x = f(x, u) in the box found by damped Newton from ``starts`` seeded starting points.

    ``inputs``: the fixed exogenous inputs u (n_inputs,) when the net has any (the box's input coordinates are
    then ignored). Returns the distinct states (n_states,), each replayed in float64 through the IR with
    |f(x) - x|_inf <= tol (1 + |x|_inf) and inside the box, sorted lexicographically. Incomplete by nature:
    an equilibrium no start converges to is missed.
    """
    u = _check_autonomous(net, box, inputs)
    ns = net.n_states
    lo, hi = box.lower[:ns], box.upper[:ns]
    state_box = Box(lo, hi)
    x = sample_points(state_box, max(int(starts), 1), seed, "cpu", torch.float64)
    tnet = TorchNet.of(net, torch.float64, "cpu")
    ut = torch.from_numpy(u).expand(x.shape[0], -1)
    eye = torch.eye(ns, dtype=torch.float64)
    span = float(np.max(hi - lo)) + 1.0

    def residual(xs: torch.Tensor) -> torch.Tensor:
        full = torch.cat([xs, ut[: xs.shape[0]]], dim=1)
        return kernels.forward(tnet, full) - xs

    with torch.no_grad():
        g = residual(x)
        for _ in range(max_iter):
            gn = g.abs().amax(dim=1)
            done = gn <= tol * (1 + x.abs().amax(dim=1))
            if bool(done.all()):
                break
            jm = kernels.jacobian(tnet, torch.cat([x, ut], dim=1))[:, :, :ns] - eye
            step, info = torch.linalg.solve_ex(jm, -g)
            step = torch.where((info == 0).unsqueeze(1) & torch.isfinite(step), step, torch.zeros_like(step))
            step = torch.clamp(step, -span, span)
            # backtracking: the first of 1, 1/2, ..., 1/512 that reduces |g|_inf (else stay)
            new_x, new_g, moved = x.clone(), g.clone(), torch.zeros_like(done)
            for k in range(10):
                trial = x + (0.5**k) * step
                tg = residual(trial)
                better = (~moved) & (~done) & torch.isfinite(tg).all(dim=1) & (tg.abs().amax(dim=1) < gn)
                new_x = torch.where(better.unsqueeze(1), trial, new_x)
                new_g = torch.where(better.unsqueeze(1), tg, new_g)
                moved = moved | better
            if not bool(moved.any()):
                break
            x, g = new_x, new_g
    cand = x.numpy()
    points: list[np.ndarray] = []
    width = np.maximum(hi - lo, 1e-300)
    for xi in cand[np.isfinite(cand).all(axis=1)]:
        full = np.concatenate([xi, u])
        r = float(np.max(np.abs(net.forward(full) - xi)))
        if r > tol * (1 + float(np.max(np.abs(xi)))):
            continue
        if not np.all((xi >= lo - 1e-12 * width) & (xi <= hi + 1e-12 * width)):
            continue
        xi = np.clip(xi, lo, hi)
        if any(np.max(np.abs(xi - q)) <= 1e-7 * (1 + np.max(np.abs(q))) for q in points):
            continue
        points.append(xi)
    points.sort(key=lambda v: tuple(v))
    return points


# ============================================================================================ Krawczyk
@dataclass(frozen=True, eq=False)
class KrawczykResult:
    """``proven``: the box [lower, upper] (n_states each) holds exactly one equilibrium. ``contraction``:
    max row sum of |I - Y G| (below 1 is needed); ``reason`` when not proven."""

    proven: bool
    lower: np.ndarray
    upper: np.ndarray
    contraction: float
    reason: str = ""


def krawczyk(net: Network, x_hat: np.ndarray, radius, inputs=None) -> KrawczykResult:
    """Krawczyk test on X = [x_hat - radius, x_hat + radius] (states; ``radius`` scalar or (n_states,)).

    Sound proof of existence and uniqueness of a zero of g(x) = f(x, u) - x in X when ``proven`` (module
    docstring); ``proven`` False says nothing.
    """
    ns = net.n_states
    x_hat = np.asarray(x_hat, dtype=np.float64).reshape(-1)
    if x_hat.shape != (ns,):
        raise UsageError(f"x_hat must have {ns} entries, got {x_hat.size}")
    u = np.zeros(0) if not net.n_inputs else np.asarray(inputs, dtype=np.float64).reshape(-1)
    rad = np.broadcast_to(np.asarray(radius, dtype=np.float64), (ns,)).copy()
    lo, hi = x_hat - rad, x_hat + rad
    r = np.maximum(hi - x_hat, x_hat - lo) * (1 + 4 * EPS)  # X - x_hat lies in [-r, r]
    full_lo, full_hi = np.concatenate([lo, u]), np.concatenate([hi, u])
    # g(x_hat) enclosed
    pt = np.concatenate([x_hat, u])
    flo, fhi = output_interval(net, Box(pt, pt))
    glo = (flo - x_hat) - 2 * EPS * (np.abs(flo) + np.abs(x_hat))
    ghi = (fhi - x_hat) + 2 * EPS * (np.abs(fhi) + np.abs(x_hat))
    # interval Jacobian of g over X
    if net.layers:
        slopes = slope_ranges(net, full_lo[None], full_hi[None], "JACOBIAN")
        jlo, jhi = matrix_enclosure(net, slopes, ns)
        jlo, jhi = jlo[0], jhi[0]
    else:
        jm = net.out_weight[:, :ns] + (0 if net.skip is None else net.skip[:, :ns])
        jlo, jhi = jm, jm
    eye = np.eye(ns)
    jmid = net.jacobian(pt)[:, :ns] - eye
    try:
        y = np.linalg.inv(jmid)
    except np.linalg.LinAlgError:
        return KrawczykResult(False, lo, hi, math.inf, "J(x_hat) - I is singular")
    if not np.all(np.isfinite(y)):
        return KrawczykResult(False, lo, hi, math.inf, "J(x_hat) - I is singular")
    # I - Y (G - I): the interval G - I is exact up to one rounding (pad), then Y times it, then I minus it
    g_lo = (jlo - eye) - 2 * EPS * np.abs(jlo - eye)
    g_hi = (jhi - eye) + 2 * EPS * np.abs(jhi - eye)
    yg_lo, yg_hi = affine_interval(y, 0.0, g_lo, g_hi)
    a_lo = (eye - yg_hi) - 2 * EPS * (1 + np.abs(yg_hi))
    a_hi = (eye - yg_lo) + 2 * EPS * (1 + np.abs(yg_lo))
    a_mag = np.maximum(np.abs(a_lo), np.abs(a_hi))
    spread = a_mag @ r
    spread = spread * (1 + 4 * (ns + 2) * EPS) + 1e-300
    yg0_lo, yg0_hi = affine_interval(y, 0.0, glo, ghi)
    k_lo = (x_hat - yg0_hi) - spread
    k_hi = (x_hat - yg0_lo) + spread
    k_lo = k_lo - 2 * EPS * np.abs(k_lo) - 1e-300
    k_hi = k_hi + 2 * EPS * np.abs(k_hi) + 1e-300
    contraction = float(a_mag.sum(axis=1).max())
    if np.all(k_lo > lo) and np.all(k_hi < hi):
        return KrawczykResult(True, lo, hi, contraction)
    return KrawczykResult(False, lo, hi, contraction,
                          f"K(X) is not inside X (row sums of |I - Y G| up to {contraction:.3g})")


def prove_equilibrium(net: Network, x_hat: np.ndarray, box: Box | None = None, inputs=None) -> KrawczykResult:
    """Try :func:`krawczyk` on boxes of relative radius 1e-9 .. 1e-2 around x_hat; the first proof (inside
    ``box`` when given) is returned, else the last attempt."""
    x_hat = np.asarray(x_hat, dtype=np.float64).reshape(-1)
    scale = 1.0 + np.abs(x_hat)
    last = None
    for rel in (1e-9, 1e-7, 1e-5, 1e-3, 1e-2):
        res = krawczyk(net, x_hat, rel * scale, inputs)
        if res.proven and (box is None or (np.all(res.lower >= box.lower[: x_hat.size])
                                           and np.all(res.upper <= box.upper[: x_hat.size]))):
            return res
        last = res
    return last


class _BstarProblem:
    """Sub-boxes for the extremes of ||b*(x)||_p (a :class:`~certify.engines.search.SearchProblem`).

    ``sign`` +1 bounds sup ||b*|| from above, -1 bounds -inf ||b*|| from above (so both are maximisations);
    a node's item is (lo, hi)."""

    def __init__(self, net: Network, box: Box, p: float, sign: float) -> None:
        self.net, self.box, self.p, self.sign = net, box, p, sign
        self.sens = np.abs(net.layers[0].weight).sum(axis=0) + 1e-300 if net.layers else np.ones(box.dim)

    def bound(self, lo: np.ndarray, hi: np.ndarray) -> np.ndarray:
        """Upper bound of sign * ||b*|| per box (B,) from :func:`certify.bounds.enclosures.bstar_enclosure`."""
        blo, bhi = bstar_enclosure(self.net, lo, hi)
        if self.sign > 0:
            return vector_norm(np.maximum(np.abs(blo), np.abs(bhi)), self.p) * (1 + 1e-12) + TINY
        gap = np.where((blo <= 0) & (bhi >= 0), 0.0, np.minimum(np.abs(blo), np.abs(bhi)))
        return -(vector_norm(gap, self.p) * (1 - 1e-12))

    def value(self, pts: np.ndarray) -> np.ndarray:
        """sign * ||b*(x)|| at points (B, n_in), float64 through the IR."""
        _, bs = self.net.pwa(pts)
        return self.sign * vector_norm(bs, self.p)

    def batch(self, top, elapsed: float) -> int:
        return 32

    def after_step(self, top, incumbent, elapsed) -> None:
        return None

    def expand(self, nodes, incumbent: Incumbent):
        out, los, his, inherited = [], [], [], []
        for node in nodes:
            lo, hi = node.item
            w = hi - lo
            if np.all(w <= 1e-12 * (1 + np.abs(lo))):
                out.append(Node(node.bound, node.item, final=True))
                continue
            clo, chi = halves(lo[None], hi[None], np.array([int(np.argmax(w * self.sens))]))
            los += list(clo)
            his += list(chi)
            inherited += [node.bound, node.bound]
        if los:
            lo_b, hi_b = np.array(los), np.array(his)
            centres = 0.5 * (lo_b + hi_b)
            vals = self.value(centres)
            k = int(np.argmax(vals))
            incumbent.offer(float(vals[k]), centres[k])
            ub = np.minimum(self.bound(lo_b, hi_b), np.array(inherited))
            out += [Node(float(ub[i]), (lo_b[i], hi_b[i])) for i in range(lo_b.shape[0])]
        return out


def _bstar_extreme(net: Network, box: Box, p: float, maximise: bool, deadline: float, gap_tol: float,
                   max_boxes: int = 200_000) -> tuple[float, float]:
    """Bracket of sup_X ||b*|| (``maximise``) or inf_X ||b*||: returns (attained, bound), both sound as such
    (attained: ||b*(x)|| at a float64-evaluated point, bound: from enclosures over a cover of the box)."""
    problem = _BstarProblem(net, box, p, 1.0 if maximise else -1.0)
    corners = np.vstack([box.center, box.lower, box.upper])
    vals = problem.value(corners)
    incumbent = Incumbent(float(np.max(vals)), corners[int(np.argmax(vals))])
    root = Node(float(problem.bound(box.lower[None], box.upper[None])[0]), (box.lower, box.upper))
    limits = SearchLimits(gap_rel=gap_tol, deadline=deadline, max_nodes=max_boxes, unit="boxes")
    run = best_first(problem, [root], incumbent, limits)
    return problem.sign * incumbent.value, problem.sign * run.upper

@dataclass(frozen=True)
class NormBounds:
    """Corollary 3 over X: every equilibrium x_bar in X has ``lower`` <= ||x_bar||_p <= ``upper``.

    ``upper`` is inf unless ``rho_a`` (a sound upper bound on sup_X ||A*||) < 1. The ingredients are sound
    bounds: ``bstar_inf`` <= inf_X ||b*||, ``bstar_sup`` >= sup_X ||b*||, ``i_minus_a`` >= sup_X ||I - A*||.
    """

    lower: float
    upper: float
    rho_a: float
    bstar_inf: float
    bstar_sup: float
    i_minus_a: float
    seconds: float
    reason: str = ""

    def contains(self, x: np.ndarray, p: float) -> bool:
        v = float(np.linalg.norm(np.asarray(x, dtype=np.float64), ord=p))
        return self.lower * (1 - 1e-9) <= v <= self.upper * (1 + 1e-9)


def equilibrium_norm_bounds(net: Network, box: Box, config: VerifyConfig, timeout: float | None = None,
                            gap_tol: float = 1e-2) -> NormBounds:
    """Corollary 3 bounds on the norm of every equilibrium in the box, for any activation (autonomous nets), in
    the norm ``config.norm``.

    Four searches share ``timeout`` (default ``config.timeout``): rho_A and sup ||I - A*|| by
    :func:`certify.engines.box_search.box_search`, and inf / sup ||b*|| by box search on
    :func:`certify.bounds.enclosures.bstar_enclosure`; each stops at relative gap ``gap_tol``.
    """
    t0 = time.perf_counter()
    _check_autonomous(net, box, None)
    if net.n_inputs:
        raise UsageError("Corollary 3 needs an autonomous net (no exogenous inputs)")
    p = float(config.norm)
    quarter = (config.timeout if timeout is None else timeout) / 4.0
    sub = config.with_(timeout=quarter, boxes=replace(config.boxes, sdp=SdpUse.NEVER, gap_tol=gap_tol, samples=512))
    rho = box_search(Query(net, box, Quantity.A_STAR, sub))
    eye = np.eye(net.n_out, net.n_in)
    shifted = Network(net.layers, net.out_weight, net.out_bias, (net.skip if net.skip is not None else 0) - eye,
                      n_states=net.n_states)
    ima = box_search(Query(shifted, box, Quantity.A_STAR, sub))
    _, b_inf = _bstar_extreme(net, box, p, False, time.perf_counter() + quarter, gap_tol)
    _, b_sup = _bstar_extreme(net, box, p, True, time.perf_counter() + quarter, gap_tol)
    b_inf = max(b_inf, 0.0)
    lower = b_inf / ima.upper * (1 - 1e-12) if ima.upper > 0 and math.isfinite(ima.upper) else 0.0
    reason = ""
    if rho.upper < 1:
        upper = b_sup / (1 - rho.upper) * (1 + 1e-12)
    else:
        upper = math.inf
        reason = f"no upper bound: sup ||A*|| is only bounded by {rho.upper:.6g} >= 1"
    return NormBounds(lower, upper, rho.upper, b_inf, b_sup, ima.upper, time.perf_counter() - t0, reason)

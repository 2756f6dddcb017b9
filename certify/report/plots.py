"""Pictures for reports (matplotlib, Agg backend, PNG bytes): where people would rather look than read.

* :func:`norm_map`: ||A*(x)|| over a 2-D box (or a 2-D slice of a larger one, other coordinates at the centre)
  on a dense grid; for piecewise-linear nets the colour is constant on each activation region, so the picture shows
  the partition. Witness and equilibria are marked.
* :func:`phase_portrait`: simulated trajectories x_{t+1} = f(x_t) from a grid of starts.
* :func:`eigenvalue_plot`: eigenvalues of A*(x) (state part) at sampled points against the unit circle.
* :func:`bracket_plot`: the bracket [lower, upper] against time of a branch and bound.
Every function returns PNG bytes; nothing is shown on screen and no global matplotlib state is left behind.
"""

from __future__ import annotations

import io
from typing import TYPE_CHECKING

import numpy as np

from ..ir.box import Box
from ..ir.numerics import induced_norm

if TYPE_CHECKING:  # annotations only: a report can be read and written without loading torch
    from ..ir.network import Network


def _figure(width=5.0, height=4.2):
    import matplotlib  # deferred on purpose: matplotlib loads only when a report draws pictures

    matplotlib.use("Agg", force=False)
    from matplotlib.figure import Figure

    return Figure(figsize=(width, height), dpi=100)


def _png(fig) -> bytes:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", bbox_inches="tight")
    return buf.getvalue()


def _slice_grid(box: Box, dims: tuple[int, int], n: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    i, j = dims
    gx = np.linspace(box.lower[i], box.upper[i], n)
    gy = np.linspace(box.lower[j], box.upper[j], n)
    xx, yy = np.meshgrid(gx, gy)
    pts = np.tile(box.center, (n * n, 1))
    pts[:, i] = xx.ravel()
    pts[:, j] = yy.ravel()
    return xx, yy, pts


def _state_norms(net: Network, pts: np.ndarray, p: float, quantity: str) -> np.ndarray:
    mats = net.pwa(pts)[0] if quantity == "A_STAR" else net.jacobian(pts)
    return np.asarray(induced_norm(mats[:, :, : net.n_states], p))


def norm_map(
    net: Network,
    box: Box,
    p: float = 2.0,
    dims: tuple[int, int] = (0, 1),
    quantity: str = "A_STAR",
    witness: np.ndarray | None = None,
    equilibria: np.ndarray | None = None,
    n: int = 200,
    witness_label: str = "witness",
) -> bytes:
    """PNG of ||A*(x)||_p (or ||J(x)||_p) over the 2-D slice ``dims`` of the box."""
    xx, yy, pts = _slice_grid(box, dims, n)
    vals = _state_norms(net, pts, p, quantity).reshape(xx.shape)
    fig = _figure()
    ax = fig.add_subplot(1, 1, 1)
    mesh = ax.pcolormesh(xx, yy, vals, shading="auto", cmap="viridis")
    if vals.min() < 1.0 < vals.max():
        ax.contour(xx, yy, vals, levels=[1.0], colors="red", linewidths=1.0)
    fig.colorbar(mesh, ax=ax, label=f"||{'A*' if quantity == 'A_STAR' else 'J'}(x)||_{_p(p)}")
    if witness is not None:
        ax.plot(witness[dims[0]], witness[dims[1]], "rx", markersize=10, mew=2, label=witness_label)
    if equilibria is not None and len(equilibria):
        eq = np.atleast_2d(equilibria)
        ax.plot(eq[:, dims[0]], eq[:, dims[1]], "w*", markersize=12, markeredgecolor="k", label="equilibria")
    if witness is not None or (equilibria is not None and len(equilibria)):
        ax.legend(loc="upper right", fontsize=8)
    ax.set_xlabel(box.names[dims[0]])
    ax.set_ylabel(box.names[dims[1]])
    ax.set_title("norm of the local linear map over the box")
    return _png(fig)


def simulate(net: Network, starts: np.ndarray, steps: int, inputs: np.ndarray | None = None) -> np.ndarray:
    """Trajectories (B, steps + 1, n_states) of x+ = f(x, u) from starts (B, n_states), u fixed per trajectory."""
    traj = [starts]
    x = starts
    for _ in range(steps):
        full = x if inputs is None else np.hstack([x, inputs])
        x = net.forward(full)
        traj.append(x)
    return np.stack(traj, axis=1)


def phase_portrait(net: Network, box: Box, dims: tuple[int, int] = (0, 1), steps: int = 40, grid: int = 7) -> bytes:
    """PNG of trajectories from a grid of starts in the box (exogenous inputs held at the box centre)."""
    ns = net.n_states
    _, _, pts = _slice_grid(box, dims, grid)
    starts = pts[:, :ns]
    inputs = pts[:, ns:] if net.n_inputs else None
    traj = simulate(net, starts, steps, inputs)
    fig = _figure()
    ax = fig.add_subplot(1, 1, 1)
    i, j = dims
    ax.add_patch(_rect(box, dims))
    for t in traj:
        ax.plot(t[:, i], t[:, j], "-", color="tab:blue", alpha=0.6, linewidth=0.8)
        ax.plot(t[0, i], t[0, j], ".", color="tab:blue", markersize=3)
        ax.plot(t[-1, i], t[-1, j], "o", color="tab:red", markersize=3)
    ax.set_xlabel(box.names[i])
    ax.set_ylabel(box.names[j])
    ax.set_title(f"trajectories, {steps} steps (box dashed)")
    return _png(fig)


def _rect(box: Box, dims):
    from matplotlib.patches import Rectangle

    i, j = dims
    return Rectangle(
        (box.lower[i], box.lower[j]), box.upper[i] - box.lower[i], box.upper[j] - box.lower[j],
        fill=False, linestyle="--", edgecolor="gray",
    )


def eigenvalue_plot(net: Network, box: Box, n: int = 4000, seed: int = 0) -> bytes:
    """PNG of the eigenvalues of the state part of A*(x) at sampled points, with the unit circle."""
    rng = np.random.default_rng(seed)
    pts = box.lower + (box.upper - box.lower) * rng.random((n, box.dim))
    mats = net.pwa(pts)[0][:, :, : net.n_states]
    eig = np.linalg.eigvals(mats).ravel()
    fig = _figure(4.6, 4.4)
    ax = fig.add_subplot(1, 1, 1)
    t = np.linspace(0, 2 * np.pi, 400)
    ax.plot(np.cos(t), np.sin(t), "k-", linewidth=0.8)
    ax.plot(eig.real, eig.imag, ".", markersize=2, alpha=0.4)
    ax.set_aspect("equal")
    ax.set_xlabel("Re")
    ax.set_ylabel("Im")
    ax.set_title("eigenvalues of A*(x) against the unit circle")
    return _png(fig)


def bracket_plot(trace: list[tuple[float, float, float]], threshold: float | None = 1.0) -> bytes:
    """PNG of lower and upper bounds against time; ``trace`` holds (seconds, lower, upper) triples."""
    arr = np.array(trace, dtype=float)
    fig = _figure(5.0, 3.4)
    ax = fig.add_subplot(1, 1, 1)
    ax.step(arr[:, 0], arr[:, 2], where="post", label="upper")
    ax.step(arr[:, 0], arr[:, 1], where="post", label="lower")
    if threshold is not None:
        ax.axhline(threshold, color="red", linestyle=":", linewidth=1)
    ax.set_xlabel("seconds")
    ax.legend()
    ax.set_title("bracket against time")
    return _png(fig)


def _p(p: float) -> str:
    return "inf" if np.isinf(p) else str(int(p))

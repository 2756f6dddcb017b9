"""Boxes of states (and exogenous inputs): the domain X of every check.

A :class:`Box` is the set {x : lower <= x <= upper} with named coordinates; the first ``n_states`` coordinates are
states, the rest exogenous inputs. Region files (``box.yaml``) are read by :mod:`certify.importers.region_file`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from ..errors import RegionError


@dataclass(frozen=True, eq=False)
class Box:
    """An axis-aligned box; ``lower``/``upper`` of shape (n,), ``names`` one per coordinate."""

    lower: np.ndarray
    upper: np.ndarray
    names: tuple[str, ...] = ()
    n_states: int | None = None

    def __post_init__(self) -> None:
        lo = np.array(self.lower, dtype=np.float64, copy=True).reshape(-1)
        hi = np.array(self.upper, dtype=np.float64, copy=True).reshape(-1)
        if lo.shape != hi.shape:
            raise RegionError(f"box: lower has {lo.size} entries but upper has {hi.size}")
        if lo.size == 0:
            raise RegionError("box: at least one coordinate is needed")
        for i in range(lo.size):
            if not (math.isfinite(lo[i]) and math.isfinite(hi[i])):
                raise RegionError(f"box: coordinate {i} has a NaN or infinite bound [{lo[i]}, {hi[i]}]")
            if lo[i] > hi[i]:
                raise RegionError(f"box: coordinate {i} has lower {lo[i]} > upper {hi[i]}")
        lo.setflags(write=False)
        hi.setflags(write=False)
        object.__setattr__(self, "lower", lo)
        object.__setattr__(self, "upper", hi)
        names = tuple(self.names) or tuple(f"x{i}" for i in range(lo.size))
        if len(names) != lo.size:
            raise RegionError(f"box: {len(names)} names for {lo.size} coordinates")
        object.__setattr__(self, "names", names)
        n_states = lo.size if self.n_states is None else int(self.n_states)
        if not 0 < n_states <= lo.size:
            raise RegionError(f"box: n_states must be in 1..{lo.size}, got {n_states}")
        object.__setattr__(self, "n_states", n_states)

    @property
    def dim(self) -> int:
        return self.lower.size

    @property
    def center(self) -> np.ndarray:
        return 0.5 * (self.lower + self.upper)

    @property
    def radius(self) -> np.ndarray:
        return 0.5 * (self.upper - self.lower)

    @property
    def volume(self) -> float:
        return float(np.prod(self.upper - self.lower))

    def contains(self, x: np.ndarray, tol: float = 0.0) -> np.ndarray:
        """Boolean (B,) (or scalar) membership of points x (B, n) (or (n,))."""
        x = np.asarray(x, dtype=np.float64)
        return np.all((x >= self.lower - tol) & (x <= self.upper + tol), axis=-1)

    def clip(self, x: np.ndarray) -> np.ndarray:
        return np.clip(x, self.lower, self.upper)

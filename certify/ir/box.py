"""Boxes of states (and exogenous inputs): the domain X of every check.

A :class:`Box` is the set {x : lower <= x <= upper} with named coordinates; the first ``n_states`` coordinates are
states, the rest exogenous inputs. Region files (``box.yaml``) are read by :mod:`certify.importers.region_file`.
"""

from __future__ import annotations

import numbers
from dataclasses import dataclass

import numpy as np

from ..errors import RegionError


def _bounds(value, which: str) -> np.ndarray:
    """A read-only float64 copy of ``lower``/``upper``: a 1-D array-like of real numbers."""
    if isinstance(value, (str, bytes, dict, set)) or value is None:
        raise TypeError(f"Box: {which} must be a 1-D array of numbers, got {type(value).__name__}")
    try:
        arr = np.asarray(value)
    except (ValueError, TypeError):  # ragged nested lists
        raise RegionError(f"Box: {which} must be a 1-D array of numbers, not nested lists") from None
    if arr.dtype.kind not in "iuf":
        raise TypeError(f"Box: {which} must hold real numbers, got an array of dtype {arr.dtype}")
    if arr.ndim != 1:
        raise RegionError(f"Box: {which} must be 1-D (one entry per coordinate), got shape {arr.shape}")
    arr = np.array(arr, dtype=np.float64, copy=True)
    arr.setflags(write=False)
    return arr


def _count(n: int, what: str) -> str:
    return f"{n} {what}" + ("" if n == 1 else "s")


@dataclass(frozen=True, eq=False)
class Box:
    """An axis-aligned box; ``lower``/``upper`` of shape (n,), ``names`` one per coordinate (text).

    The first ``n_states`` coordinates are states (all of them by default), the rest exogenous inputs.
    """

    lower: np.ndarray
    upper: np.ndarray
    names: tuple[str, ...] = ()
    n_states: int | None = None

    def __post_init__(self) -> None:
        lo, hi = _bounds(self.lower, "lower"), _bounds(self.upper, "upper")
        if lo.shape != hi.shape:
            raise RegionError(f"Box: lower has {lo.size} entries but upper has {hi.size}")
        if lo.size == 0:
            raise RegionError("Box: at least one coordinate is needed")
        bad = np.flatnonzero(~(np.isfinite(lo) & np.isfinite(hi)))
        if bad.size:
            i = int(bad[0])
            raise RegionError(f"Box: coordinate {i} has a NaN or infinite bound [{lo[i]}, {hi[i]}]")
        bad = np.flatnonzero(lo > hi)
        if bad.size:
            i = int(bad[0])
            raise RegionError(f"Box: coordinate {i} has lower {lo[i]} > upper {hi[i]}")
        with np.errstate(over="ignore"):
            bad = np.flatnonzero(~np.isfinite(hi - lo))
        if bad.size:
            i = int(bad[0])
            raise RegionError(f"Box: coordinate {i} = [{lo[i]}, {hi[i]}] is wider than float64 can hold "
                              "(upper - lower overflows); give a narrower interval")
        object.__setattr__(self, "lower", lo)
        object.__setattr__(self, "upper", hi)
        names = self.names
        if isinstance(names, (str, bytes)) or not isinstance(names, (tuple, list)):
            raise TypeError(f"Box: names must be a tuple or list of str, got {type(names).__name__}")
        names = tuple(names) or tuple(f"x{i}" for i in range(lo.size))
        odd = next((n for n in names if not isinstance(n, str)), None)
        if odd is not None:
            raise TypeError(f"Box: names must be str, got {odd!r} ({type(odd).__name__})")
        if len(names) != lo.size:
            raise RegionError(f"Box: {len(names)} names for {lo.size} coordinates")
        object.__setattr__(self, "names", names)
        n_states = self.n_states
        if n_states is None:
            n_states = lo.size
        elif not isinstance(n_states, numbers.Integral) or isinstance(n_states, (bool, np.bool_)):
            raise TypeError(f"Box: n_states must be an int or None, got {n_states!r}")
        n_states = int(n_states)
        if not 0 < n_states <= lo.size:
            raise RegionError(f"Box: n_states must be in 1..{lo.size}, got {n_states}")
        object.__setattr__(self, "n_states", n_states)

    def __repr__(self) -> str:
        n, k = self.dim, self.n_states
        shown = [f"{name} in [{lo:g}, {hi:g}]" for name, lo, hi in zip(self.names[:3], self.lower, self.upper)]
        if n > 4:
            shown.append(f"... {n - 4} more")
        if n > 3:
            shown.append(f"{self.names[-1]} in [{self.lower[-1]:g}, {self.upper[-1]:g}]")
        split = _count(k, "state") + (f", {_count(n - k, 'input')}" if n > k else "")
        return f"Box({split}: {', '.join(shown)})"

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

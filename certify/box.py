"""Boxes of states (and exogenous inputs), and the region file ``box.yaml`` (DESIGN.md section 5).

A :class:`Box` is the set {x : lower <= x <= upper} with named coordinates; the first ``n_states`` coordinates are
states, the rest exogenous inputs. :func:`load_region` reads a region file with ``yaml.safe_load`` only and
validates every key; errors are :class:`~certify.errors.RegionError` naming the file and the key.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from .errors import RegionError
from .yamlfile import read_yaml

NORMS = {"1": 1.0, "2": 2.0, "inf": math.inf}


def parse_norm(value, where: str = "norm") -> float:
    """1, 2 or inf (as numbers or strings) -> 1.0, 2.0 or math.inf."""
    key = str(value).strip().lower()
    key = {"1.0": "1", "2.0": "2", "infinity": "inf", "+inf": "inf", "linf": "inf", "l1": "1", "l2": "2"}.get(key, key)
    if key not in NORMS:
        raise RegionError(f"{where}: norm must be 1, 2 or inf, got {value!r}")
    return NORMS[key]


def norm_label(p: float) -> str:
    return "inf" if math.isinf(p) else str(int(p))


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

    @staticmethod
    def from_yaml(path: str | Path) -> "Box":
        return load_region(path).box


@dataclass(frozen=True)
class Region:
    """What a region file says: the box, and optionally the norm and the margin."""

    box: Box
    norm: float | None = None
    margin: float | None = None
    path: str = ""


_TOP_KEYS = {"states", "inputs", "lower", "upper", "norm", "margin", "names"}


def _interval(path: str, key: str, name: str, value) -> tuple[float, float]:
    if not isinstance(value, (list, tuple)) or len(value) != 2:
        raise RegionError(f"{path}: {key}.{name} must be a pair [lower, upper], got {value!r}")
    out = []
    for v in value:
        if isinstance(v, bool) or not isinstance(v, (int, float)):
            raise RegionError(f"{path}: {key}.{name} must hold two numbers, got {value!r}")
        out.append(float(v))
    lo, hi = out
    if not (math.isfinite(lo) and math.isfinite(hi)):
        raise RegionError(f"{path}: {key}.{name} has a NaN or infinite bound {value!r}; give finite numbers")
    if lo > hi:
        raise RegionError(f"{path}: {key}.{name} has lower {lo} > upper {hi}; swap them")
    return lo, hi


def _named_block(path: str, key: str, block) -> list[tuple[str, float, float]]:
    if not isinstance(block, dict) or not block:
        raise RegionError(f"{path}: '{key}' must map each name to [lower, upper]")
    return [(str(name), *_interval(path, key, str(name), value)) for name, value in block.items()]


def _number_list(path: str, key: str, value) -> list[float]:
    if not isinstance(value, (list, tuple)) or not value:
        raise RegionError(f"{path}: '{key}' must be a non-empty list of numbers")
    out = []
    for i, v in enumerate(value):
        if isinstance(v, bool) or not isinstance(v, (int, float)):
            raise RegionError(f"{path}: {key}[{i}] must be a number, got {v!r}")
        if not math.isfinite(float(v)):
            raise RegionError(f"{path}: {key}[{i}] is NaN or infinite; give a finite number")
        out.append(float(v))
    return out


def parse_region(data, path: str = "<region>") -> Region:
    """Validate the parsed YAML of a region file (see DESIGN.md section 5)."""
    if not isinstance(data, dict):
        raise RegionError(f"{path}: a region file must be a mapping with 'states' (or 'lower'/'upper')")
    unknown = sorted(set(map(str, data)) - _TOP_KEYS)
    if unknown:
        raise RegionError(
            f"{path}: unknown key '{unknown[0]}'; allowed keys are states, inputs, lower, upper, names, norm, margin"
        )
    has_named = "states" in data
    has_plain = "lower" in data or "upper" in data
    if has_named and has_plain:
        raise RegionError(f"{path}: give either 'states' (and 'inputs') or 'lower'/'upper', not both")
    if has_named:
        if "names" in data:
            raise RegionError(f"{path}: 'names' goes with 'lower'/'upper'; with 'states' the keys are the names")
        states = _named_block(path, "states", data["states"])
        inputs = _named_block(path, "inputs", data["inputs"]) if "inputs" in data else []
        rows = states + inputs
        names = [r[0] for r in rows]
        lower = [r[1] for r in rows]
        upper = [r[2] for r in rows]
        n_states = len(states)
    elif has_plain:
        if "inputs" in data:
            raise RegionError(f"{path}: 'inputs' goes with 'states'; with 'lower'/'upper' list every coordinate")
        for key in ("lower", "upper"):
            if key not in data:
                raise RegionError(f"{path}: '{key}' is missing; the plain form needs both 'lower' and 'upper'")
        lower = _number_list(path, "lower", data["lower"])
        upper = _number_list(path, "upper", data["upper"])
        if len(lower) != len(upper):
            raise RegionError(f"{path}: 'lower' has {len(lower)} entries but 'upper' has {len(upper)}")
        for i, (lo, hi) in enumerate(zip(lower, upper)):
            if lo > hi:
                raise RegionError(f"{path}: lower[{i}] = {lo} > upper[{i}] = {hi}; swap them")
        names = data.get("names") or [f"x{i}" for i in range(len(lower))]
        if not isinstance(names, list) or len(names) != len(lower):
            raise RegionError(f"{path}: 'names' must list {len(lower)} names")
        names = [str(n) for n in names]
        n_states = None
    else:
        raise RegionError(f"{path}: the region needs 'states' (name: [lower, upper]) or 'lower' and 'upper'")
    if len(set(names)) != len(names):
        raise RegionError(f"{path}: coordinate names must be distinct")
    norm = parse_norm(data["norm"], f"{path}: norm") if "norm" in data else None
    margin = None
    if "margin" in data:
        m = data["margin"]
        if isinstance(m, bool) or not isinstance(m, (int, float)) or not (0 <= float(m) < 1):
            raise RegionError(f"{path}: margin must be a number in [0, 1), got {m!r}")
        margin = float(m)
    box = Box(np.array(lower), np.array(upper), tuple(names), n_states)
    return Region(box=box, norm=norm, margin=margin, path=path)


def load_region(path: str | Path) -> Region:
    """Read and validate a region file. Uses ``yaml.safe_load``: tags that build Python objects are refused."""
    data = read_yaml(path, RegionError, "region file")
    return parse_region(data, str(Path(path)))

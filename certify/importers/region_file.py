"""The region file ``box.yaml`` (DESIGN.md section 5): the box, and optionally the norm and the margin.

:func:`load_region` reads a region file with ``yaml.safe_load`` only and validates every key; errors are
:class:`~certify.errors.RegionError` naming the file and the key.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..errors import RegionError
from ..ir.box import Box
from ..ir.numerics import parse_norm
from .yaml_file import read_yaml


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

"""The region file ``box.yaml`` (DESIGN.md section 5): the box, and optionally the norm and the margin.

:func:`load_region` reads a region file with :func:`certify.importers.yaml_file.read_yaml` (safe, YAML 1.2 scalars,
duplicate keys refused, bounded) and validates every key; errors are :class:`~certify.errors.RegionError` naming
the file and the key. :meth:`Region.from_yaml` is the same as a classmethod.

Box bounds are read exactly (the decimal text the user wrote; :class:`~certify.importers.yaml_file.ExactFloat`)
and rounded **outward** to float64: a lower bound to the largest float <= it, an upper bound to the smallest
float >= it, so the float box the checks run on contains the file's box (``0.1`` as a lower bound reads as
0.09999999999999999167, since the nearest float 0.1000000000000000055 lies above the decimal 0.1 and a
``certified`` verdict on it would miss a sliver of the file's box). When some bound is not a float64 value,
:attr:`Region.inner` keeps the float box inside the file's box: a witness outside it falsifies nothing (see
:func:`certify.api.verify`). An empty decimal interval (``[0.30000000000000001, 0.3]``) is an error, decided on
the exact values.
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np

from ..config import VerifyConfig
from ..errors import RegionError, UsageError
from ..ir.box import Box
from ..ir.metric import Metric
from ..ir.numerics import parse_norm
from ..ir.output_property import OutputProperty
from ..ir.stochastic import Heads
from .vnnlib import floats_around, is_vnnlib, read_vnnlib
from .yaml_file import ExactFloat, Limits, exact_value, finite_number, read_yaml


@dataclass(frozen=True)
class Region:
    """What a region file says: the box, and optionally the norm (1, 2 or inf) and the margin (in [0, 1)).

    ``Region.from_yaml("box.yaml")`` reads one (the same as :func:`load_region`). ``metric``: the weighted norm of
    the file's ``metric:`` key (a :class:`~certify.ir.metric.Metric`, "auto", or None). ``outputs``: the output
    property of a VNNLIB file (:mod:`certify.importers.vnnlib`), checked by ``output_bounds``; ``heads``: which model
    outputs are the mean and the noise of a deep Markov model (the ``heads:`` key); ``inner``: for a file (a YAML
    region file or a VNNLIB property) with a bound that is not a float64 value (``0.1``), the float64 box (lower,
    upper), arrays (n,), inside the file's box (``box`` is rounded outward so that it contains the file's box; the
    inner box may be empty, lower > upper, when the file's box holds no float64 point): a witness outside it lies
    outside the file's box and falsifies nothing. None when every bound is a float64 value (``box`` is then the
    file's box exactly), and by default for a region built in Python.
    """

    box: Box
    norm: float | None = None
    margin: float | None = None
    path: str = ""
    metric: Metric | str | None = None
    outputs: OutputProperty | None = None
    heads: Heads | None = None
    inner: tuple[np.ndarray, np.ndarray] | None = field(default=None, compare=False)

    def __post_init__(self) -> None:
        if not isinstance(self.box, Box):
            raise TypeError(f"Region: box must be a certify.Box, got {type(self.box).__name__}")
        if self.norm is not None:
            if isinstance(self.norm, bool) or not isinstance(self.norm, (int, float, str)):
                raise TypeError(f"Region: norm must be 1, 2, math.inf or None, got {self.norm!r}")
            object.__setattr__(self, "norm", parse_norm(self.norm, "Region"))
        if self.margin is not None:
            m = self.margin
            if isinstance(m, bool) or not isinstance(m, (int, float)):
                raise TypeError(f"Region: margin must be a number in [0, 1) or None, got {m!r}")
            if not 0 <= m < 1:
                raise RegionError(f"Region: margin must be in [0, 1), got {m!r}")
            object.__setattr__(self, "margin", float(m))
        if not isinstance(self.path, (str, os.PathLike)):
            raise TypeError(f"Region: path must be text, got {type(self.path).__name__}")
        object.__setattr__(self, "path", str(self.path))

    def config(self, **overrides) -> VerifyConfig:
        """The run's VerifyConfig: the given ``overrides`` (those not None), else this file's norm, margin and
        metric, else the defaults."""
        values = {k: v for k, v in (("norm", self.norm), ("margin", self.margin), ("metric", self.metric))
                  if v is not None}
        values.update({k: v for k, v in overrides.items() if v is not None})
        return VerifyConfig(**values)

    @classmethod
    def from_yaml(cls, path: str | Path, n_in: int | None = None) -> "Region":
        """The region of a region file: its box, and the file's norm and margin (None where it gives none)."""
        return load_region(path, n_in)


_TOP_KEYS = {"states", "inputs", "lower", "upper", "norm", "margin", "names", "metric", "heads"}
_HEAD_KEYS = ("mean", "noise", "form")

MAX_COORDINATES = 100_000  # a region file listing more coordinates is refused while it is read
LIMITS = Limits(max_bytes=16 << 20, max_depth=8, max_items=MAX_COORDINATES, max_nodes=5 * MAX_COORDINATES + 64)
_HINT = "; a region lists one [lower, upper] per model input"


def _bound(path: str, key: str, v):
    """``v`` itself (an int, a float or an :class:`ExactFloat`, keeping its exact value) once it is checked to be a
    finite number (:func:`finite_number`: a RegionError naming ``key`` otherwise)."""
    finite_number(path, key, v, RegionError)
    return v


def _check_interval(path: str, key: str, lo: float, hi: float) -> None:
    if lo > hi:
        raise RegionError(f"{path}: {key} has lower {lo} > upper {hi}; swap them")
    if not math.isfinite(hi - lo):
        _too_wide(path, key, lo, hi)


def _too_wide(path: str, key: str, lo: float, hi: float):
    raise RegionError(f"{path}: {key} = [{lo}, {hi}] is wider than float64 can hold (upper - lower overflows); "
                      "give a narrower interval")


def _outward(path: str, key: str, v) -> tuple[float, float]:
    """(the largest float64 <= v, the smallest float64 >= v) for a number ``v`` checked finite, by its exact value
    (``ExactFloat.exact``, an int exactly): one float twice when ``v`` is a float64 value. RegionError naming
    ``key`` when a side is beyond the float64 range (a decimal just above the float64 maximum)."""
    x = float(v)
    if not isinstance(v, ExactFloat) and (isinstance(v, float) or int(x) == v):
        return x, x
    down, up = floats_around(exact_value(v))
    if not (math.isfinite(down) and math.isfinite(up)):
        raise RegionError(f"{path}: {key} overflows float64; give a smaller number")
    return down, up


def _shown(v) -> str:
    return str(v.exact) if isinstance(v, ExactFloat) else repr(v)


def _coordinate(path: str, key: str, lo, hi) -> tuple[float, float, float, float]:
    """(box lower, box upper, inner lower, inner upper) of the file's interval [lo, hi] (finite numbers with
    float(lo) <= float(hi), checked by the caller): the box rounded outward, the inner box rounded inward (see
    :attr:`Region.inner`). RegionError when the exact interval is empty or its outward box is wider than float64."""
    lo_down, lo_up = _outward(path, key, lo)
    hi_down, hi_up = _outward(path, key, hi)
    if lo_up > hi_down and exact_value(lo) > exact_value(hi):  # floats equal, the decimals in the wrong order
        raise RegionError(f"{path}: {key} has lower {_shown(lo)} > upper {_shown(hi)}; swap them")
    if not math.isfinite(hi_up - lo_down):
        _too_wide(path, key, float(lo), float(hi))
    return lo_down, hi_up, lo_up, hi_down


def _interval(path: str, key: str, name: str, value) -> tuple[float, float, float, float]:
    """(box lower, box upper, inner lower, inner upper) of the pair ``value`` given for ``key.name``."""
    where = f"{key}.{name}"
    if not isinstance(value, (list, tuple)) or len(value) != 2:
        raise RegionError(f"{path}: {where} must be a pair [lower, upper], got {value!r}")
    if any(isinstance(v, bool) or not isinstance(v, (int, float)) for v in value):
        raise RegionError(f"{path}: {where} must hold two numbers, got {value!r}")
    try:
        lo, hi = float(value[0]), float(value[1])
    except OverflowError:
        raise RegionError(f"{path}: {where} has a bound that overflows float64; give smaller numbers") from None
    if not (math.isfinite(lo) and math.isfinite(hi)):
        raise RegionError(f"{path}: {where} has a NaN or infinite bound {value!r}; give finite numbers")
    _check_interval(path, where, lo, hi)
    return _coordinate(path, where, value[0], value[1])


def _name(path: str, key: str, name) -> str:
    if not isinstance(name, str) or not name.strip():
        raise RegionError(f"{path}: {key}: every name must be non-empty text, got {name!r}")
    if not name.isprintable():
        raise RegionError(f"{path}: {key}: the name {name!r} holds control characters; give printable text")
    return name


def _named_block(path: str, key: str, block) -> list[tuple[str, float, float, float, float]]:
    if not isinstance(block, dict) or not block:
        raise RegionError(f"{path}: '{key}' must map each name to [lower, upper]")
    return [(_name(path, key, name), *_interval(path, key, name, value)) for name, value in block.items()]


def _number_list(path: str, key: str, value) -> list:
    if not isinstance(value, (list, tuple)) or not value:
        raise RegionError(f"{path}: '{key}' must be a non-empty list of numbers")
    return [_bound(path, f"{key}[{i}]", v) for i, v in enumerate(value)]


def _check_size(path: str, count: int, n_in: int | None, more: bool = False) -> None:
    if n_in is not None and count != n_in:
        raise RegionError(
            f"{path}: the region has {'more than ' if more else ''}{count} coordinates but the model takes {n_in} "
            "inputs; give one [lower, upper] per model input"
        )


def parse_region(data, path: str = "<region>", n_in: int | None = None) -> Region:
    """Validate the parsed YAML of a region file (see DESIGN.md section 5).

    ``n_in``: the number of model inputs when known; a region of another size is refused (before the box is built).
    Box bounds are rounded outward by their exact values (module docstring): an :class:`ExactFloat` (what
    ``read_yaml(..., exact_numbers=True)`` gives for a number that is no float64 value) by its decimal, an int
    exactly, a plain float as itself.
    """
    if not isinstance(data, dict):
        raise RegionError(f"{path}: a region file must be a mapping with 'states' (or 'lower'/'upper')")
    unknown = sorted(set(map(str, data)) - _TOP_KEYS)
    if unknown:
        raise RegionError(
            f"{path}: unknown key '{unknown[0]}'; allowed keys are states, inputs, lower, upper, names, norm, margin, "
            f"metric, heads"
        )
    has_named = "states" in data
    has_plain = "lower" in data or "upper" in data
    if has_named and has_plain:
        raise RegionError(f"{path}: give either 'states' (and 'inputs') or 'lower'/'upper', not both")
    if has_named:
        if "names" in data:
            raise RegionError(f"{path}: 'names' goes with 'lower'/'upper'; with 'states' the keys are the names")
        if isinstance(data["states"], dict) and isinstance(data.get("inputs", {}), dict):
            _check_size(path, len(data["states"]) + len(data.get("inputs", {})), n_in)
        states = _named_block(path, "states", data["states"])
        inputs = _named_block(path, "inputs", data["inputs"]) if "inputs" in data else []
        rows = states + inputs
        names = [r[0] for r in rows]
        lower, upper, inner_lower, inner_upper = ([r[k] for r in rows] for k in range(1, 5))
        n_states = len(states)
        both = sorted({r[0] for r in states} & {r[0] for r in inputs})
        if both:
            raise RegionError(f"{path}: '{both[0]}' is listed under both 'states' and 'inputs'; give it once")
    elif has_plain:
        if "inputs" in data:
            raise RegionError(f"{path}: 'inputs' goes with 'states'; with 'lower'/'upper' list every coordinate")
        for key in ("lower", "upper"):
            if key not in data:
                raise RegionError(f"{path}: '{key}' is missing; the plain form needs both 'lower' and 'upper'")
        if isinstance(data["lower"], list):
            _check_size(path, len(data["lower"]), n_in)
        given_lower = _number_list(path, "lower", data["lower"])
        given_upper = _number_list(path, "upper", data["upper"])
        if len(given_lower) != len(given_upper):
            raise RegionError(f"{path}: 'lower' has {len(given_lower)} entries but 'upper' has {len(given_upper)}")
        rows = []
        for i, (given_lo, given_hi) in enumerate(zip(given_lower, given_upper)):
            lo, hi = float(given_lo), float(given_hi)
            if lo > hi:
                raise RegionError(f"{path}: lower[{i}] = {lo} > upper[{i}] = {hi}; swap them")
            where = f"[lower[{i}], upper[{i}]]"
            _check_interval(path, where, lo, hi)
            rows.append(_coordinate(path, where, given_lo, given_hi))
        lower, upper, inner_lower, inner_upper = ([r[k] for r in rows] for k in range(4))
        names = data.get("names")
        if names is None:
            names = [f"x{i}" for i in range(len(lower))]
        if not isinstance(names, list) or len(names) != len(lower):
            raise RegionError(f"{path}: 'names' must list {len(lower)} names")
        names = [_name(path, f"names[{i}]", n) for i, n in enumerate(names)]
        n_states = None
    else:
        raise RegionError(f"{path}: the region needs 'states' (name: [lower, upper]) or 'lower' and 'upper'")
    if len(set(names)) != len(names):
        seen: set[str] = set()
        twice = next(n for n in names if n in seen or seen.add(n))
        raise RegionError(f"{path}: names: '{twice}' is given twice; coordinate names must be distinct")
    norm = parse_norm(data["norm"], f"{path}: norm") if "norm" in data else None
    margin = None
    if "margin" in data:
        m = data["margin"]
        if isinstance(m, bool) or not isinstance(m, (int, float)) or not (0 <= float(m) < 1):
            raise RegionError(f"{path}: margin must be a number in [0, 1), got {m!r}")
        margin = float(m)
    box = Box(np.array(lower, dtype=np.float64), np.array(upper, dtype=np.float64), tuple(names), n_states)
    inner = None
    if inner_lower != lower or inner_upper != upper:  # some bound is no float64 value: box is rounded outward
        inner = (np.array(inner_lower, dtype=np.float64), np.array(inner_upper, dtype=np.float64))
    metric = parse_metric(data["metric"], f"{path}: metric", box.n_states) if "metric" in data else None
    heads = parse_heads(data["heads"], f"{path}: heads") if "heads" in data else None
    return Region(box=box, norm=norm, margin=margin, path=path, metric=metric, heads=heads, inner=inner)


def parse_heads(value, where: str) -> Heads:
    """The ``heads:`` key of a deep Markov model: ``mean`` and ``noise`` (an output name or a 0-based index) and
    ``form`` (cholesky, std, variance or log_variance; see :mod:`certify.ir.stochastic`)."""
    if not isinstance(value, dict):
        raise RegionError(f"{where}: give a mapping with mean (output name or index), noise and form")
    unknown = sorted(set(map(str, value)) - set(_HEAD_KEYS))
    if unknown:
        raise RegionError(f"{where}: unknown key '{unknown[0]}'; allowed keys are {', '.join(_HEAD_KEYS)}")
    missing = [k for k in ("mean", "noise") if k not in value]
    if missing:
        raise RegionError(f"{where}: '{missing[0]}' is missing; name the output (or its 0-based index) of the "
                          f"{'mean K(x)' if missing[0] == 'mean' else 'noise head'}")
    try:
        return Heads(value["mean"], value["noise"], value.get("form", "cholesky"))
    except UsageError as exc:
        raise RegionError(f"{where}: {str(exc).removeprefix('heads: ')}") from None


def parse_metric(value, where: str, n_states: int | None = None) -> Metric | str | None:
    """A metric given in a file: "auto", "identity" (None), or a matrix P (rows) that is symmetric positive definite
    with one row per state; a RegionError naming ``where`` otherwise."""
    if isinstance(value, str):
        key = value.strip().lower()
        if key in ("auto", "identity"):
            return "auto" if key == "auto" else None
        raise RegionError(f"{where}: give 'auto', 'identity' or a matrix P (a list of rows), got {value!r}")
    if not isinstance(value, list) or not value or not all(isinstance(r, list) for r in value):
        raise RegionError(f"{where}: the metric must be 'auto', 'identity' or a matrix P (a list of rows)")
    for i, row in enumerate(value):
        for j, v in enumerate(row):
            if isinstance(v, bool) or not isinstance(v, (int, float)):
                raise RegionError(f"{where}[{i}][{j}]: must be a number, got {v!r}")
    try:
        metric = Metric.of(value, where)
    except UsageError as exc:
        raise RegionError(str(exc)) from None
    if n_states is not None and metric.dim != n_states:
        raise RegionError(f"{where}: P is {metric.dim}x{metric.dim} but the region has {n_states} states; give one "
                          f"row and column per state")
    return metric


def load_metric(path: str | Path, n_states: int | None = None) -> Metric | str | None:
    """A metric file (``--metric FILE.yaml``): the matrix P as a list of rows, or a mapping with one key ``P`` (or
    ``metric``) holding it (or "auto" / "identity"); read with the same strict YAML reader as region files."""
    data = read_yaml(path, RegionError, "metric file", LIMITS, _HINT)
    if isinstance(data, dict):
        keys = [k for k in data if k in ("P", "metric")]
        if len(data) != 1 or not keys:
            raise RegionError(f"{path}: a metric file holds the matrix P, or a mapping with the one key 'P'")
        data = data[keys[0]]
    return parse_metric(data, f"{path}: P", n_states)


def load_region(path: str | Path, n_in: int | None = None) -> Region:
    """Read and validate a region file (see :mod:`certify.importers.yaml_file`: no Python tags, no duplicate keys,
    YAML 1.2 scalars, bounded size), or a VNNLIB property file (``.vnnlib``: :mod:`certify.importers.vnnlib`).

    ``n_in``: the number of model inputs when known; a region of another size is refused while it is read (a
    region far too long stops being read after ``n_in + 64`` entries).
    """
    if not isinstance(path, (str, os.PathLike)) or isinstance(path, bytes):
        raise TypeError(f"load_region needs a path (str or pathlib.Path), got {type(path).__name__}")
    if n_in is not None and (isinstance(n_in, bool) or not isinstance(n_in, int) or n_in < 1):
        raise TypeError(f"load_region: n_in must be a positive int or None, got {n_in!r}")
    if is_vnnlib(path):  # a VNNLIB property: the input box and an output property
        box, outputs, inner = read_vnnlib(path, n_in, with_inner=True)
        return Region(box=box, path=str(Path(path)), outputs=outputs, inner=inner)
    limits, hint = LIMITS, _HINT
    if n_in is not None and n_in + 64 < MAX_COORDINATES:
        limits = replace(LIMITS, max_items=n_in + 64)
        hint = f"; the model takes {n_in} inputs: give one [lower, upper] per model input"
    data = read_yaml(path, RegionError, "region file", limits, hint, exact_numbers=True)
    return parse_region(data, str(Path(path)), n_in)

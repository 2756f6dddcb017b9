"""An output property: bounds that every output of the model must stay strictly within over the box.

    for all x in X:  lower_i < f_i(x) < upper_i      (i = 0 .. m-1; -inf / +inf where a side is not bounded)

This is the safe side of a VNN-COMP property whose unsafe set is the union of the half-spaces {f_i >= upper_i}
and {f_i <= lower_i} (see :mod:`certify.importers.vnnlib`), and what the ``output_bounds`` check decides
(:mod:`certify.checks.output_bounds`). ``where`` names, for each side, the assertion it came from (for messages).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from ..errors import RegionError


@dataclass(frozen=True, eq=False)
class OutputProperty:
    """``lower``/``upper`` (m,) float64 (-inf / +inf: that side is free), ``names`` one per output, ``lower_where`` /
    ``upper_where`` one text per output naming the assertion of that side ("" when free), ``path`` the file.
    ``inner_lower`` / ``inner_upper`` (n_in,) or None: the float64 box inside the file's exact input box (whose
    float64 box is rounded outward, so that certifying over it is sound); a counterexample must lie in it.
    ``lower_text`` / ``upper_text``: the constants as the file wrote them, one per output ("" for a free side or
    none given), which :meth:`describe` shows (the float bounds sit a float64 step on the safe side of them)."""

    lower: np.ndarray
    upper: np.ndarray
    names: tuple[str, ...]
    lower_where: tuple[str, ...]
    upper_where: tuple[str, ...]
    path: str = ""
    inner_lower: np.ndarray | None = None
    inner_upper: np.ndarray | None = None
    lower_text: tuple[str, ...] = ()
    upper_text: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        lo = np.array(self.lower, dtype=np.float64).ravel()
        hi = np.array(self.upper, dtype=np.float64).ravel()
        m = lo.size
        if hi.size != m or not (len(self.names) == len(self.lower_where) == len(self.upper_where) == m) or m == 0:
            raise RegionError(f"{self.path or 'output property'}: one lower bound, upper bound and name per output")
        if np.any(np.isnan(lo)) or np.any(np.isnan(hi)) or np.any(lo == math.inf) or np.any(hi == -math.inf):
            raise RegionError(f"{self.path or 'output property'}: an output bound is NaN or on the wrong side")
        for arr in (lo, hi):
            arr.setflags(write=False)
        object.__setattr__(self, "lower", lo)
        object.__setattr__(self, "upper", hi)
        object.__setattr__(self, "names", tuple(self.names))

    def inside_inputs(self, x: np.ndarray) -> np.ndarray | None:
        """x (n_in,) moved into the inner input box (unchanged when there is none); None when that box is empty
        (an exact interval holding no float64)."""
        if self.inner_lower is None or self.inner_upper is None:
            return x
        if np.any(self.inner_lower > self.inner_upper):
            return None
        return np.clip(x, self.inner_lower, self.inner_upper)

    @property
    def dim(self) -> int:
        return self.lower.size

    @property
    def bounded(self) -> np.ndarray:
        """(m, 2) booleans: whether the lower / upper side of each output is bounded."""
        return np.stack([np.isfinite(self.lower), np.isfinite(self.upper)], axis=1)

    def describe(self) -> str:
        parts = []
        for i, (name, lo, hi) in enumerate(zip(self.names, self.lower, self.upper)):
            lo_s = self.lower_text[i] if i < len(self.lower_text) and self.lower_text[i] else f"{lo:g}"
            hi_s = self.upper_text[i] if i < len(self.upper_text) and self.upper_text[i] else f"{hi:g}"
            if math.isfinite(lo) and math.isfinite(hi):
                parts.append(f"{lo_s} < {name} < {hi_s}")
            elif math.isfinite(lo):
                parts.append(f"{name} > {lo_s}")
            elif math.isfinite(hi):
                parts.append(f"{name} < {hi_s}")
        return ", ".join(parts)

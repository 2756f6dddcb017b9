"""What an engine bounds over the box: a matrix field (A*(x) or J(x)), or the invariance violation V(x).

* ``A_STAR``: A*(x) of the pointwise-affine form (secant slopes; dissipativity, Theorem 1);
* ``JACOBIAN``: J(x) (derivatives; contraction);
* ``VIOLATION``: V(x) = max_i max(f_i(x) - upper_i, lower_i - f_i(x)) over the state outputs (invariance: f(X)
  inside X iff sup V <= 0).

One enum for every engine (sampling, region and sub-box branch and bound, SDP, Corollary 4, the violation search).
A ``str`` enum: ``Quantity.A_STAR == "A_STAR"``.
"""

from __future__ import annotations

import enum

from ..errors import UsageError


class Quantity(str, enum.Enum):
    A_STAR = "A_STAR"
    JACOBIAN = "JACOBIAN"
    VIOLATION = "VIOLATION"

    def __str__(self) -> str:
        return self.value

    @property
    def is_matrix(self) -> bool:
        return self is not Quantity.VIOLATION

    @property
    def slope_kind(self) -> str:
        """'secant' for A*, 'derivative' for J (see :mod:`certify.ir.kernels`)."""
        if not self.is_matrix:
            raise UsageError(f"{self.value} is not a matrix field: it has no slopes")
        return "secant" if self is Quantity.A_STAR else "derivative"

    @property
    def symbol(self) -> str:
        return {"A_STAR": "A*", "JACOBIAN": "J", "VIOLATION": "V"}[self.value]

    @staticmethod
    def coerce(value: "Quantity | str") -> "Quantity":
        """A Quantity from itself or from its name in any case; UsageError otherwise."""
        if isinstance(value, Quantity):
            return value
        key = str(getattr(value, "name", value)).upper()
        if key not in Quantity.__members__:
            raise UsageError(f"quantity must be 'A_STAR', 'JACOBIAN' or 'VIOLATION', got {value!r}")
        return Quantity[key]

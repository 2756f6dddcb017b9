"""Which matrix field an analysis bounds: A*(x) (secant slopes, dissipativity) or J(x) (derivatives, contraction).

One enum for every engine (sampling, region branch and bound, sub-box branch and bound, SDP, Corollary 4).
"""

from __future__ import annotations

import enum

from ..errors import UsageError


class Quantity(enum.Enum):
    A_STAR = "A_STAR"
    JACOBIAN = "JACOBIAN"

    @property
    def slope_kind(self) -> str:
        """'secant' for A*, 'derivative' for J (see :mod:`certify.ir.kernels`)."""
        return "secant" if self is Quantity.A_STAR else "derivative"

    @property
    def symbol(self) -> str:
        return "A*" if self is Quantity.A_STAR else "J"

    @staticmethod
    def coerce(value: "Quantity | str") -> "Quantity":
        """A Quantity from itself or from 'A_STAR' / 'JACOBIAN' in any case; UsageError otherwise."""
        if isinstance(value, Quantity):
            return value
        key = str(getattr(value, "name", value)).upper()
        if key not in Quantity.__members__:
            raise UsageError(f"quantity must be 'A_STAR' or 'JACOBIAN', got {value!r}")
        return Quantity[key]

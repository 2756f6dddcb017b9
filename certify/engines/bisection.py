"""Sub-box bisection as a problem of the one search loop (:func:`certify.engines.search.best_first`), shared by the
sub-box searches whose nodes need nothing but a box bound: the invariance violation search
(:mod:`certify.engines.violation_search`) and the noise bound of deep Markov models
(:mod:`certify.engines.noise_bound`).

Each step takes the sub-box with the largest bound, splits it in two along the coordinate with the largest width x
sensitivity (both halves share the rounded midpoint, so they cover the parent), offers both centres to the
incumbent (the caller replays them) and bounds both halves; a child's bound is the smaller of its own and its
parent's (both are sound over the child). A sub-box narrower than a relative 1e-9 of the root box in every
coordinate, or with no coordinate its float64 midpoint splits, cannot be refined
(:func:`certify.engines.search.split_axes`): it is ``final`` and keeps its bound in the upper bound.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from ..ir.box import Box
from .search import Incumbent, Node, halves, split_axes, volume_fraction


class BisectionProblem:
    """Sub-boxes of ``box`` as a :class:`~certify.engines.search.SearchProblem`; a node's item is (lo (n,), hi (n,)).

    ``sensitivity`` (n,) > 0 weights the widths when choosing the split coordinate; ``bound(lo, hi)`` is a sound
    upper bound on the quantity over the sub-box [lo, hi]; ``offer(incumbent, points (B, n))`` replays the points
    and offers their values. ``boxes`` counts the sub-boxes bounded (the root included)."""

    def __init__(self, box: Box, sensitivity: np.ndarray, bound: Callable[[np.ndarray, np.ndarray], float],
                 offer: Callable[[Incumbent, np.ndarray], None]) -> None:
        self.box, self.sens, self.bound, self.offer = box, np.asarray(sensitivity, dtype=np.float64), bound, offer
        self.width0 = np.maximum(box.upper - box.lower, 1e-300)
        self.boxes = 1

    def root(self) -> Node:
        """The whole box as the first node, with its bound."""
        lo, hi = self.box.lower.copy(), self.box.upper.copy()
        return Node(self.bound(lo, hi), (lo, hi), 1.0)

    def batch(self, top: Node, elapsed: float) -> int:
        return 1

    def after_step(self, top, incumbent, elapsed) -> None:
        return None

    def expand(self, nodes: list[Node], incumbent: Incumbent) -> list[Node]:
        out = []
        for node in nodes:
            lo, hi = node.item
            axis, final = split_axes(lo[None], hi[None], ((hi - lo) * self.sens)[None], self.width0)
            if final[0]:
                out.append(Node(node.bound, node.item, node.volume, final=True))
                continue
            clo, chi = halves(lo[None], hi[None], axis)
            self.offer(incumbent, 0.5 * (clo + chi))
            vol = volume_fraction(clo, chi, self.box.lower, self.box.upper)
            for i in range(2):
                out.append(Node(min(node.bound, self.bound(clo[i], chi[i])), (clo[i], chi[i]), float(vol[i])))
            self.boxes += 2
        return out

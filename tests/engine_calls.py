"""Test helpers: call the engines the way the tests phrase their questions (net, box, norm, quantity, ...).

Each helper builds the :class:`~certify.engines.contract.Query` and the :class:`~certify.config.VerifyConfig`
(with the engine's options) that the engine takes; the engines themselves take only the query.
"""

from __future__ import annotations

import math
from dataclasses import replace

from certify.config import BoxSearchOptions, InvarianceOptions, RegionSearchOptions, SdpUse, VerifyConfig
from certify.engines.box_search import box_search
from certify.engines.contract import Query
from certify.engines.region_search import region_search
from certify.engines.violation_search import violation_search
from certify.ir.quantity import Quantity

_SDP = {True: SdpUse.ALWAYS, False: SdpUse.NEVER, "auto": SdpUse.AUTO, "always": SdpUse.ALWAYS,
        "never": SdpUse.NEVER}


def sup_norm(net, box, p=2.0, quantity="A_STAR", state_only=True, lower_seed=None, threshold=None, exact=False,
             timeout=60.0, min_radius=1e-8, samples=256, seed=0):
    """The region branch and bound (certify mode when ``threshold`` is given and not ``exact``)."""
    config = VerifyConfig(norm=p, timeout=timeout, seed=seed,
                          regions=RegionSearchOptions(min_radius=min_radius, samples=samples))
    q = Query(net, box, Quantity.coerce(quantity), config, state_only,
              threshold=None if exact else threshold, lower_seed=-math.inf if lower_seed is None else lower_seed)
    return region_search(q)


def sup_norm_boxes(net, box, p=2.0, quantity="A_STAR", state_only=True, threshold=None, lower_seed=None,
                   lower_point=None, timeout=60.0, use_sdp="auto", seed=0, *, bounds=None, gap_tol=1e-3,
                   samples=2048, batch=32, max_boxes=None, trial_split=1, method="auto"):
    """The sub-box branch and bound (``use_sdp``: True/'always', False/'never', or 'auto')."""
    options = BoxSearchOptions(gap_tol=gap_tol, samples=samples, batch=batch, trial_split=trial_split,
                               sdp=_SDP[use_sdp])
    if bounds is not None:
        options = replace(options, bounds=tuple(bounds))
    config = VerifyConfig(norm=p, timeout=timeout, seed=seed, method=method, budget=max_boxes, boxes=options)
    q = Query(net, box, Quantity.coerce(quantity), config, state_only, threshold=threshold,
              lower_seed=-math.inf if lower_seed is None else lower_seed, lower_point=lower_point)
    return box_search(q)


def max_violation(net, box, exact=False, timeout=30.0, gap_tol=1e-6, seed=0, samples=256):
    """The sub-box search on the invariance violation (certify mode unless ``exact``)."""
    config = VerifyConfig(timeout=timeout, seed=seed, invariance=InvarianceOptions(gap_tol=gap_tol, samples=samples))
    return violation_search(Query(net, box, Quantity.VIOLATION, config, threshold=None if exact else 0.0))

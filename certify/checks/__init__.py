"""The checks: each turns engine results into a :class:`~certify.certificate.CheckResult` with a verdict.

One module per check (:mod:`.dissipativity`, :mod:`.contraction`, :mod:`.gain`, :mod:`.weight_norm`,
:mod:`.invariance`, :mod:`.equilibria`, :mod:`.stability`, :mod:`.output_bounds`, :mod:`.mean_square`); :data:`CHECKS`
maps each :class:`~certify.certificate.CheckName` to its function, and :func:`run_checks` runs a list of them sharing
one sampling per quantity (:class:`.common.SamplingMemo`).
"""

from __future__ import annotations

import time
from typing import Callable, Iterable

from ..certificate import CheckName, CheckResult, parse_checks
from ..config import VerifyConfig
from ..errors import UsageError
from ..ir.box import Box
from ..ir.network import Network
from .common import SamplingMemo, align, require_dynamics
from .contraction import check_contraction
from .dissipativity import check_dissipativity
from .equilibria import check_equilibria
from .gain import check_gain
from .invariance import check_invariance
from .mean_square import check_mean_square, require_noise
from .output_bounds import check_output_bounds, require_outputs
from .stability import check_stability
from .weight_norm import check_weight_norm

DEFAULT_CHECKS = (CheckName.DISSIPATIVITY,)
_MIN_CHECK_SECONDS = 0.01  # a check whose share of the time is spent still samples briefly and reports unknown

CheckFunction = Callable[[Network, Box, VerifyConfig, SamplingMemo], CheckResult]

CHECKS: dict[CheckName, CheckFunction] = {
    CheckName.DISSIPATIVITY: check_dissipativity,
    CheckName.CONTRACTION: check_contraction,
    CheckName.WEIGHT_NORM: check_weight_norm,
    CheckName.GAIN: check_gain,
    CheckName.INVARIANCE: check_invariance,
    CheckName.EQUILIBRIA: check_equilibria,
    CheckName.STABILITY: check_stability,
    CheckName.OUTPUT_BOUNDS: check_output_bounds,
    CheckName.MEAN_SQUARE: check_mean_square,
}
# the checks that take a part of the model or region beyond (net, box): check -> keyword of run_checks passed on
CHECK_INPUTS = {CheckName.OUTPUT_BOUNDS: "outputs", CheckName.MEAN_SQUARE: "noise"}

# the checks that need x+ = f(x, u) (as many outputs as states)
DYNAMICS_CHECKS = (CheckName.DISSIPATIVITY, CheckName.CONTRACTION, CheckName.WEIGHT_NORM, CheckName.INVARIANCE,
                   CheckName.EQUILIBRIA, CheckName.STABILITY, CheckName.MEAN_SQUARE)


def available_checks() -> tuple[CheckName, ...]:
    return tuple(CHECKS)


def run_checks(
    net: Network, box: Box, checks: Iterable[CheckName], config: VerifyConfig, progress=None, *, outputs=None,
    noise=None, settle=None,
) -> tuple[CheckResult, ...]:
    """Run each check in order. Misuse (a dynamics check on a non-square map) raises before any work starts.

    ``config.timeout`` bounds the whole run: each check gets the time left divided by the checks left (a check
    that ends early leaves its time to the next). ``progress``: optional callable ``progress(check, result_or_None)``,
    called before (None) and after each check. ``outputs``: the output property of a VNNLIB region (an
    :class:`~certify.ir.output_property.OutputProperty`, for ``output_bounds``); ``noise``: the noise head of a deep
    Markov model (a :class:`~certify.ir.stochastic.NoiseHead`, for ``mean_square``; ``net`` is then its mean map).
    ``settle``: optional callable ``settle(result) -> result`` applied to each result before ``progress`` sees it
    (the verdict on a region file's own box, :func:`certify.checks.file_box.on_file_box`).
    """
    inputs = {"outputs": outputs, "noise": noise}
    checks = tuple(checks)
    for check in checks:
        if check not in CHECKS:
            raise UsageError(f"the {check.value} check is not available yet; choose from "
                             f"{', '.join(c.value for c in CHECKS)}")
        if check in DYNAMICS_CHECKS:
            require_dynamics(net, check)
        if check is CheckName.OUTPUT_BOUNDS:
            require_outputs(net, outputs)
        if check is CheckName.MEAN_SQUARE:
            require_noise(net, noise)
    results, memo = [], SamplingMemo()
    deadline = time.perf_counter() + config.timeout  # --timeout bounds the whole run, shared among the checks
    for i, check in enumerate(checks):
        if progress is not None:
            progress(check, None)
        share = max(deadline - time.perf_counter(), 0.0) / (len(checks) - i)
        extra = {CHECK_INPUTS[check]: inputs[CHECK_INPUTS[check]]} if check in CHECK_INPUTS else {}
        result = CHECKS[check](net, box, config.with_(timeout=max(share, _MIN_CHECK_SECONDS)), memo, **extra)
        results.append(result if settle is None else settle(result))
        if progress is not None:
            progress(check, results[-1])
    return tuple(results)


__all__ = ["CHECKS", "DEFAULT_CHECKS", "align", "available_checks", "parse_checks", "run_checks"]

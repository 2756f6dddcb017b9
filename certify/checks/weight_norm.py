"""Corollary 4: the product of layer norms and slope maxima < 1 proves dissipativity (the cheap sufficient test)."""

from __future__ import annotations

import math
import time

from ..bounds.corollary4 import product_bound
from ..certificate import BoundMethod, CheckName, CheckResult, Verdict, WeightNormDetails, threshold_verdict
from ..config import VerifyConfig
from ..ir.box import Box
from ..ir.metric import Metric
from ..ir.network import Network
from ..ir.numerics import OVERFLOW_REASON
from ..ir.quantity import Quantity
from .common import SamplingMemo, digits_beside, matrix_witness, require_dynamics


def check_weight_norm(net: Network, box: Box, config: VerifyConfig, memo: SamplingMemo) -> CheckResult:
    """Certified when the Corollary 4 product is <= 1 - margin; falsified when a replayed ||A*(x)|| >= 1."""
    require_dynamics(net, CheckName.WEIGHT_NORM)
    start = time.perf_counter()
    metric = config.metric if isinstance(config.metric, Metric) else None  # auto: Corollary 4 in the plain norm
    bound = product_bound(net, box, config.norm, Quantity.A_STAR, True, metric)
    sample = memo.sample(net, box, config, Quantity.A_STAR, True, metric)
    if sample.generic:
        lower, witness = float(sample.value), matrix_witness(net, sample.x, sample.value, sample.matrix)
    else:  # a point on a kink is no witness (its matrix is a derivative convention's)
        lower, witness = -math.inf, None
    upper = max(bound.value, lower)
    verdict = threshold_verdict(lower, upper, config.margin, witness)
    reason = ""
    if verdict is Verdict.UNKNOWN:
        reason = f"the product of norms {bound.describe()} = {bound.value:.6g} is not below 1 - margin"
        if not math.isfinite(bound.value):
            reason += f"; {OVERFLOW_REASON}"
    elif verdict is Verdict.FALSIFIED:
        reason = f"||A*(x)|| = {digits_beside(lower)} >= 1 at a replayed point, so no norm bound can certify"
    details = WeightNormDetails(bound.value, tuple(bound.weight_norms), tuple(bound.slope_maxima), bound.skip_norm)
    method = BoundMethod.SAMPLE if verdict is Verdict.FALSIFIED else BoundMethod.WEIGHT_NORM
    return CheckResult(CheckName.WEIGHT_NORM, verdict, lower, upper, method, time.perf_counter() - start, witness,
                       reason, details)

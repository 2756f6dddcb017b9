"""Dissipativity (Theorem 1): sup over X of ||A*(x)|| < 1 on the state columns."""

from __future__ import annotations

from ..certificate import CheckName, CheckResult
from ..config import METRIC_AUTO, VerifyConfig
from ..ir.box import Box
from ..ir.network import Network
from ..ir.quantity import Quantity
from .common import SamplingMemo, require_dynamics
from .metric_check import auto_metric_check
from .sup_norm import sup_norm_check


def check_dissipativity(net: Network, box: Box, config: VerifyConfig, memo: SamplingMemo) -> CheckResult:
    """sup over X of ||A*(x)_states|| < 1: then ||x+|| - ||x|| <= ||b*(x)|| while x stays in X."""
    require_dynamics(net, CheckName.DISSIPATIVITY)
    if config.metric == METRIC_AUTO:
        return auto_metric_check(CheckName.DISSIPATIVITY, net, box, config, Quantity.A_STAR)
    return sup_norm_check(CheckName.DISSIPATIVITY, net, box, config, Quantity.A_STAR, True, True, memo, config.metric)

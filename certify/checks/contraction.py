"""Contraction: sup over X of ||J(x)|| < 1 on the state columns (f is Lipschitz with that rate on a convex X)."""

from __future__ import annotations

from ..certificate import CheckName, CheckResult
from ..config import METRIC_AUTO, VerifyConfig
from ..ir.box import Box
from ..ir.network import Network
from ..ir.quantity import Quantity
from .common import SamplingMemo, require_dynamics
from .metric_check import auto_metric_check
from .sup_norm import sup_norm_check


def check_contraction(net: Network, box: Box, config: VerifyConfig, memo: SamplingMemo) -> CheckResult:
    """sup over X of ||J(x)_states|| < 1."""
    require_dynamics(net, CheckName.CONTRACTION)
    if config.metric == METRIC_AUTO:
        return auto_metric_check(CheckName.CONTRACTION, net, box, config, Quantity.JACOBIAN)
    return sup_norm_check(CheckName.CONTRACTION, net, box, config, Quantity.JACOBIAN, True, True, memo, config.metric)

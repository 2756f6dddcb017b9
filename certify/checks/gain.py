"""The gain: sup over X of ||A*(x)|| for a map of any shape, all input columns, no threshold."""

from __future__ import annotations

from ..certificate import CheckName, CheckResult
from ..config import VerifyConfig
from ..ir.box import Box
from ..ir.network import Network
from ..ir.quantity import Quantity
from .common import SamplingMemo
from .sup_norm import sup_norm_check


def check_gain(net: Network, box: Box, config: VerifyConfig, memo: SamplingMemo) -> CheckResult:
    """sup over X of ||A*(x)|| (certified means the value is exact: the bracket is closed)."""
    return sup_norm_check(CheckName.GAIN, net, box, config, Quantity.A_STAR, False, False, memo)

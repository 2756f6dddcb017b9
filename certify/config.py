"""One frozen configuration object that travels through every analysis (no module-level settings)."""

from __future__ import annotations

import math
from dataclasses import dataclass, replace

from .errors import UsageError

DEVICES = ("auto", "cpu", "cuda")
METHODS = ("auto", "exact", "bnb", "sdp", "interval", "sample")


@dataclass(frozen=True)
class VerifyConfig:
    """Options of a verification run.

    norm: induced norm p in {1, 2, inf}; margin: a bound must be <= 1 - margin to certify; samples: points for
    falsification; seed: RNG seed; device: 'auto' (CUDA when available), 'cpu' or 'cuda'; timeout: seconds per
    check; exact: compute the exact value instead of stopping once the verdict is settled; method: which engine
    bounds sup ||A*|| / ||J|| after sampling and Corollary 4 ('auto': region branch and bound for piecewise-linear
    nets, sub-box branch and bound with SDP otherwise; 'exact': region search only; 'bnb': either branch and bound
    without SDP; 'sdp': one SDP over the box; 'interval': one interval-matrix bound; 'sample': none).
    """

    norm: float = 2.0
    margin: float = 1e-6
    samples: int = 100_000
    seed: int = 0
    device: str = "auto"
    timeout: float = 60.0
    exact: bool = False
    method: str = "auto"

    def __post_init__(self) -> None:
        if self.norm not in (1.0, 2.0, math.inf):
            raise UsageError(f"norm must be 1, 2 or inf, got {self.norm}")
        if not 0 <= self.margin < 1:
            raise UsageError(f"margin must be in [0, 1), got {self.margin}")
        if self.samples < 0:
            raise UsageError(f"samples must be >= 0, got {self.samples}")
        if self.device not in DEVICES:
            raise UsageError(f"device must be one of {', '.join(DEVICES)}, got {self.device!r}")
        if self.method not in METHODS:
            raise UsageError(f"method must be one of {', '.join(METHODS)}, got {self.method!r}")
        if not self.timeout > 0:
            raise UsageError(f"timeout must be > 0 seconds, got {self.timeout}")

    def with_(self, **changes) -> "VerifyConfig":
        return replace(self, **changes)

    def torch_device(self) -> str:
        """The torch device string to use: CUDA when asked or (for 'auto') when available, else CPU."""
        import torch

        if self.device == "cuda":
            if not torch.cuda.is_available():
                raise UsageError("--device cuda was asked for but torch sees no CUDA device; use --device auto or cpu")
            return "cuda"
        if self.device == "auto" and torch.cuda.is_available():
            return "cuda"
        return "cpu"

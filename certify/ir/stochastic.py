"""Deep Markov models: x+ = K(x) + L(x) w, w ~ N(0, I), with a mean head K and a noise head L as two networks.

A trained deep Markov model has two outputs: the mean K(x) (one entry per state) and a head that gives the noise,
in one of the forms of :class:`NoiseForm` (the covariance of x+ given x is L(x) L(x)^T):

* ``cholesky``: a factor L(x) (n x n), written row by row (n^2 outputs), or its lower triangle row by row
  (n (n + 1) / 2 outputs: L_00, L_10, L_11, L_20, ...); any factor with covariance L L^T is accepted;
* ``std``: standard deviations s(x) (n outputs), L = diag(s) (the sign of s does not matter);
* ``variance``: variances v(x) >= 0 (n outputs), L = diag(sqrt(v));
* ``log_variance``: log-variances (n outputs), L = diag(exp(o / 2)).

Each head is an ordinary :class:`~certify.ir.network.Network` over the same inputs; :class:`Heads` says which
model output is which (an output name or a 0-based index), as a region file's ``heads`` key does.
"""

from __future__ import annotations

import enum
import math
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from ..errors import ModelError, UsageError

if TYPE_CHECKING:  # deferred on purpose: region files read Heads without loading torch (network.py imports it)
    from .network import Network


class NoiseForm(str, enum.Enum):
    CHOLESKY = "cholesky"
    STD = "std"
    VARIANCE = "variance"
    LOG_VARIANCE = "log_variance"

    def __str__(self) -> str:
        return self.value


def noise_outputs(form: NoiseForm, n: int) -> tuple[int, ...]:
    """The output counts a noise head of ``form`` may have for n states."""
    if form is NoiseForm.CHOLESKY:
        return (n * n, n * (n + 1) // 2) if n > 1 else (1,)
    return (n,)


@dataclass(frozen=True)
class Heads:
    """Which model output is the mean K(x) and which the noise, and the noise head's :class:`NoiseForm`.

    ``mean``/``noise``: an output name (str) or a 0-based output index (int)."""

    mean: str | int = 0
    noise: str | int = 1
    form: NoiseForm = NoiseForm.CHOLESKY

    def __post_init__(self) -> None:
        for key in ("mean", "noise"):
            v = getattr(self, key)
            if isinstance(v, bool) or not isinstance(v, (str, int)) or (isinstance(v, int) and v < 0) or v == "":
                raise UsageError(f"heads: {key} must be an output name or a 0-based output index, got {v!r}")
        if self.mean == self.noise:
            raise UsageError(f"heads: mean and noise name the same output {self.mean!r}; give two different outputs")
        form = self.form
        if not isinstance(form, NoiseForm):
            choices = ", ".join(f.value for f in NoiseForm)
            if not isinstance(form, str):
                raise UsageError(f"heads: form must be one of {choices}, got {form!r}")
            try:
                form = NoiseForm(form.strip().lower())
            except ValueError:
                raise UsageError(f"heads: form must be one of {choices}, got {form!r}") from None
        object.__setattr__(self, "form", form)


@dataclass(frozen=True, eq=False)
class NoiseHead:
    """The noise head of a deep Markov model: ``network`` (n_in -> n^2, n (n + 1) / 2 or n outputs) read in ``form``
    for ``n_states`` states."""

    network: "Network"
    form: NoiseForm
    n_states: int

    def __post_init__(self) -> None:
        allowed = noise_outputs(self.form, self.n_states)
        if self.network.n_out not in allowed:
            want = " or ".join(map(str, allowed))
            raise ModelError(f"the noise head has {self.network.n_out} outputs; a {self.form.value} head for "
                             f"{self.n_states} states has {want}")

    def factors(self, x: np.ndarray) -> np.ndarray:
        """L(x) (B, n, n) for points x (B, n_in) in float64 (NaN where a variance is negative)."""
        o = np.atleast_2d(self.network.forward(np.atleast_2d(x)))
        return factor_of(o, self.form, self.n_states)


def factor_of(o: np.ndarray, form: NoiseForm, n: int) -> np.ndarray:
    """L (B, n, n) from noise-head outputs o (B, k) in ``form`` (module docstring)."""
    b = o.shape[0]
    if form is NoiseForm.CHOLESKY:
        if o.shape[1] == n * n:
            return o.reshape(b, n, n).copy()
        out = np.zeros((b, n, n))
        rows, cols = np.tril_indices(n)
        out[:, rows, cols] = o
        return out
    with np.errstate(invalid="ignore", over="ignore"):
        d = {NoiseForm.STD: lambda v: v, NoiseForm.VARIANCE: np.sqrt,
             NoiseForm.LOG_VARIANCE: lambda v: np.exp(0.5 * v)}[form](o)
    out = np.zeros((b, n, n))
    idx = np.arange(n)
    out[:, idx, idx] = d
    return out


@dataclass(frozen=True, eq=False)
class DeepMarkovModel:
    """x+ = K(x) + L(x) w: the mean head ``mean`` (a dynamics Network, n_out = n_states) and the ``noise`` head.

    Every deterministic check (dissipativity, contraction, invariance, equilibria, stability, ...) runs on the mean
    map; the ``mean_square`` check uses both."""

    mean: "Network"
    noise: NoiseHead

    def __post_init__(self) -> None:
        from .network import Network  # deferred on purpose (see the TYPE_CHECKING import)

        if not isinstance(self.mean, Network) or not isinstance(self.noise, NoiseHead):
            raise TypeError("DeepMarkovModel needs a mean Network and a NoiseHead")
        if not self.mean.is_dynamics:
            raise ModelError(f"the mean head has {self.mean.n_out} outputs but the model has {self.mean.n_states} "
                             "states; the mean head K(x) gives one entry per state")
        if self.noise.network.n_in != self.mean.n_in or self.noise.n_states != self.mean.n_states:
            raise ModelError("the mean and noise heads take different inputs")

    def __repr__(self) -> str:
        return f"DeepMarkovModel(mean {self.mean.describe()}, noise {self.noise.form.value} " \
               f"{self.noise.network.describe()})"

    @property
    def n_states(self) -> int:
        return self.mean.n_states


def stationary_bound(rate: float, sigma: float) -> float:
    """sigma^2 / (1 - rate^2), rounded up (inf unless 0 <= rate < 1)."""
    if not (0.0 <= rate < 1.0) or not math.isfinite(sigma):
        return math.inf
    denom = (1.0 - rate) * (1.0 + rate)
    return float(np.nextafter(sigma * sigma / denom * (1 + 8 * np.finfo(float).eps), math.inf))

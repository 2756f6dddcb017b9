"""The activation catalogue: sigma, sigma(0), sigma', and sound ranges over an interval of pre-activations.

One implementation per activation, written in torch (float64 on CPU for the exact paths, any dtype/device for
batched sampling); numpy callers go through :func:`Activation.np_value` and friends.

For the PWA form (DESIGN.md section 2) each neuron contributes its *secant slope*
``s(z) = (sigma(z) - sigma(0)) / z`` with ``s(0) = sigma'(0)``; for the Jacobian its derivative ``sigma'(z)``.

Ranges over ``[l, u]`` (``value_range``, ``secant_range``, ``derivative_range``) rely on one fact per function:
between consecutive *knots* (kinks, discontinuities, zero, and interior critical points) the function is
continuous and monotone. The range is then the min/max over the values at ``l``, ``u`` and, at each knot inside,
its value and both one-sided limits. Smooth activations are rounded outward by ``1e-12 * |v| + 1e-14`` to cover
floating-point error of the library functions (a few ulp) and of the located critical points (an error delta in a
critical point changes the value by O(delta^2)). Slopes of ReLU, LeakyReLU, PReLU and identity are exact.

Conventions at kinks follow torch autograd (ReLU'(0) = 0, LeakyReLU'(0) = alpha, Hardtanh' = 0 on its
boundaries, ELU'(0) = alpha).
"""

from __future__ import annotations

import enum
import math
from dataclasses import dataclass
from typing import Callable

import numpy as np
import torch

_SQRT2 = math.sqrt(2.0)
_SQRT_2_OVER_PI = math.sqrt(2.0 / math.pi)
_INV_SQRT_2PI = 1.0 / math.sqrt(2.0 * math.pi)
_GELU_TANH_C = 0.044715
SELU_ALPHA = 1.6732632423543772848170429916717
SELU_SCALE = 1.0507009873554804934193349852946


class ActivationKind(enum.Enum):
    RELU = "relu"
    LEAKY_RELU = "leaky_relu"
    PRELU = "prelu"
    ELU = "elu"
    SELU = "selu"
    GELU = "gelu"
    GELU_TANH = "gelu_tanh"
    SILU = "silu"
    SOFTPLUS = "softplus"
    TANH = "tanh"
    SIGMOID = "sigmoid"
    CLIP = "clip"  # hardtanh, relu6, Clip(min, max)
    HARDSWISH = "hardswish"
    IDENTITY = "identity"


_PWL_THROUGH_ORIGIN = {ActivationKind.RELU, ActivationKind.LEAKY_RELU, ActivationKind.PRELU, ActivationKind.IDENTITY}
_PIECEWISE_LINEAR = _PWL_THROUGH_ORIGIN | {ActivationKind.CLIP}


def _bisect_root(g: Callable[[float], float], a: float, b: float) -> float:
    """Root of a continuous g with a sign change on [a, b], to full float64 precision (plain bisection)."""
    ga = g(a)
    for _ in range(200):
        m = 0.5 * (a + b)
        if m in (a, b):
            break
        gm = g(m)
        if (gm < 0) == (ga < 0):
            a, ga = m, gm
        else:
            b = m
    return 0.5 * (a + b)


def _silu_second_derivative_sign(z: float) -> float:
    # silu''(z) = s'(z) (2 + z (1 - 2 s(z))) = s'(z) (2 - z tanh(z / 2)); its sign is that of the bracket.
    return 2.0 - z * math.tanh(z / 2.0)


def _gelu_tanh_derivative(z: float) -> float:
    inner = _SQRT_2_OVER_PI * (z + _GELU_TANH_C * z**3)
    t = math.tanh(inner)
    return 0.5 * (1 + t) + 0.5 * z * (1 - t * t) * _SQRT_2_OVER_PI * (1 + 3 * _GELU_TANH_C * z * z)


def _numeric_derivative_root(f: Callable[[float], float], a: float, b: float) -> float:
    """Critical point of f on [a, b] where f' changes sign (f' by a central difference, then bisection)."""
    h = 1e-6
    return _bisect_root(lambda z: f(z + h) - f(z - h), a, b)


_SILU_DERIV_CRIT = _bisect_root(_silu_second_derivative_sign, 1.0, 4.0)  # about 2.3994
# silu's minimum: silu'(z) = s (1 + z (1 - s)) = 0  <=>  1 + z (1 - s(z)) = 0
_SILU_MIN = _bisect_root(lambda z: 1.0 + z * (1.0 - 1.0 / (1.0 + math.exp(-z))), -3.0, -0.5)  # about -1.2785
# gelu's minimum: Phi(z) + z phi(z) = 0
_GELU_MIN = _bisect_root(
    lambda z: 0.5 * math.erfc(-z / _SQRT2) + z * _INV_SQRT_2PI * math.exp(-z * z / 2), -2.0, -0.2
)  # about -0.7518
_GELU_TANH_MIN = _bisect_root(_gelu_tanh_derivative, -2.0, -0.2)
_GELU_TANH_DERIV_CRIT = _numeric_derivative_root(_gelu_tanh_derivative, 0.5, 3.0)


@dataclass(frozen=True)
class Activation:
    """One elementwise activation with its parameters.

    ``alpha``: LeakyReLU slope, ELU alpha. ``lo``/``hi``: clip bounds. ``slopes``: PReLU slopes, one per neuron
    (or a single shared one). Construct through the named helpers (:func:`relu`, :func:`clip`, ...).
    """

    kind: ActivationKind
    alpha: float = 0.0
    lo: float = -math.inf
    hi: float = math.inf
    slopes: tuple[float, ...] = ()

    # ----------------------------------------------------------------- properties
    @property
    def name(self) -> str:
        return self.kind.value

    @property
    def piecewise_linear_through_origin(self) -> bool:
        """True when sigma is piecewise linear with sigma(0) = 0 and a kink only at 0: then A*(x) = J(x)."""
        return self.kind in _PWL_THROUGH_ORIGIN

    @property
    def piecewise_linear(self) -> bool:
        """True when sigma is piecewise linear (J is constant on each activation region)."""
        return self.kind in _PIECEWISE_LINEAR

    @property
    def exact_slopes(self) -> bool:
        """True when secant and derivative ranges need no outward rounding (slopes are given constants)."""
        return self.kind in _PWL_THROUGH_ORIGIN

    def describe(self) -> str:
        if self.kind is ActivationKind.LEAKY_RELU:
            return f"leaky_relu(alpha={self.alpha:g})"
        if self.kind is ActivationKind.ELU:
            return f"elu(alpha={self.alpha:g})"
        if self.kind is ActivationKind.CLIP:
            return f"clip({self.lo:g}, {self.hi:g})"
        if self.kind is ActivationKind.PRELU:
            return f"prelu({len(self.slopes)} slopes)"
        return self.name

    # ----------------------------------------------------------------- torch kernels
    def _param(self, z: torch.Tensor) -> torch.Tensor:
        return torch.as_tensor(np.asarray(self.slopes, dtype=np.float64), dtype=z.dtype, device=z.device)

    def value(self, z: torch.Tensor) -> torch.Tensor:
        """sigma(z), elementwise; z of any shape whose last axis is the layer's neurons."""
        k = self.kind
        if k is ActivationKind.RELU:
            return torch.clamp_min(z, 0.0)
        if k is ActivationKind.LEAKY_RELU:
            return torch.where(z > 0, z, self.alpha * z)
        if k is ActivationKind.PRELU:
            return torch.where(z > 0, z, self._param(z) * z)
        if k is ActivationKind.ELU:
            return torch.where(z > 0, z, self.alpha * torch.expm1(torch.clamp_max(z, 0.0)))
        if k is ActivationKind.SELU:
            return SELU_SCALE * torch.where(z > 0, z, SELU_ALPHA * torch.expm1(torch.clamp_max(z, 0.0)))
        if k is ActivationKind.GELU:
            return z * torch.special.ndtr(z)
        if k is ActivationKind.GELU_TANH:
            return 0.5 * z * (1 + torch.tanh(_SQRT_2_OVER_PI * (z + _GELU_TANH_C * z**3)))
        if k is ActivationKind.SILU:
            return z * torch.sigmoid(z)
        if k is ActivationKind.SOFTPLUS:
            return torch.clamp_min(z, 0.0) + torch.log1p(torch.exp(-torch.abs(z)))
        if k is ActivationKind.TANH:
            return torch.tanh(z)
        if k is ActivationKind.SIGMOID:
            return torch.sigmoid(z)
        if k is ActivationKind.CLIP:
            return torch.clamp(z, self.lo, self.hi)
        if k is ActivationKind.HARDSWISH:
            return z * torch.clamp(z / 6.0 + 0.5, 0.0, 1.0)
        if k is ActivationKind.IDENTITY:
            return z
        raise AssertionError(k)

    @property
    def value_at_zero(self) -> float:
        """sigma(0)."""
        if self.kind is ActivationKind.SOFTPLUS:
            return math.log(2.0)
        if self.kind is ActivationKind.SIGMOID:
            return 0.5
        if self.kind is ActivationKind.CLIP:
            return min(max(0.0, self.lo), self.hi)
        return 0.0

    def derivative(self, z: torch.Tensor, side: int = 0) -> torch.Tensor:
        """sigma'(z); with ``side=+1``/``-1`` the right/left limit at a kink (used by the range machinery)."""
        k = self.kind
        if k is ActivationKind.GELU:
            return torch.special.ndtr(z) + z * _INV_SQRT_2PI * torch.exp(-0.5 * z * z)
        if k is ActivationKind.GELU_TANH:
            t = torch.tanh(_SQRT_2_OVER_PI * (z + _GELU_TANH_C * z**3))
            return 0.5 * (1 + t) + 0.5 * z * (1 - t * t) * _SQRT_2_OVER_PI * (1 + 3 * _GELU_TANH_C * z * z)
        if k is ActivationKind.SILU:
            s = torch.sigmoid(z)
            return s * (1 + z * (1 - s))
        if k is ActivationKind.SOFTPLUS:
            return torch.sigmoid(z)
        if k is ActivationKind.TANH:
            return 1.0 / torch.cosh(z) ** 2
        if k is ActivationKind.SIGMOID:
            return torch.sigmoid(z) * torch.sigmoid(-z)
        one, zero = torch.ones_like(z), torch.zeros_like(z)
        pos = (z >= 0) if side > 0 else (z > 0)  # "z is (infinitesimally) right of 0"
        if k is ActivationKind.RELU:
            return torch.where(pos, one, zero)
        if k is ActivationKind.LEAKY_RELU:
            return torch.where(pos, one, self.alpha * one)
        if k is ActivationKind.PRELU:
            return torch.where(pos, one, self._param(z) * one)
        if k is ActivationKind.ELU:
            return torch.where(pos, one, self.alpha * torch.exp(torch.clamp_max(z, 0.0)))
        if k is ActivationKind.SELU:
            return SELU_SCALE * torch.where(pos, one, SELU_ALPHA * torch.exp(torch.clamp_max(z, 0.0)))
        if k is ActivationKind.CLIP:
            # torch convention: zero on the boundaries; one-sided limits step inside.
            above_lo = (z >= self.lo) if side > 0 else (z > self.lo)
            below_hi = (z <= self.hi) if side < 0 else (z < self.hi)
            return torch.where(above_lo & below_hi, one, zero)
        if k is ActivationKind.HARDSWISH:
            mid = (2 * z + 3) / 6.0
            upper = (z >= 3) if side > 0 else (z > 3)
            lower = (z <= -3) if side < 0 else (z < -3)
            return torch.where(upper, one, torch.where(lower, zero, mid))
        if k is ActivationKind.IDENTITY:
            return one
        raise AssertionError(k)

    def secant(self, z: torch.Tensor, side: int = 0) -> torch.Tensor:
        """(sigma(z) - sigma(0)) / z, with sigma'(0) at z = 0 (left/right limits with ``side``).

        Written without cancellation near 0 for every smooth activation.
        """
        k = self.kind
        if k in (ActivationKind.RELU, ActivationKind.LEAKY_RELU, ActivationKind.PRELU):
            return self.derivative(z, side)  # slope of the piece, sigma'(0) at 0
        if k is ActivationKind.GELU:
            return torch.special.ndtr(z)
        if k is ActivationKind.GELU_TANH:
            return 0.5 * (1 + torch.tanh(_SQRT_2_OVER_PI * (z + _GELU_TANH_C * z**3)))
        if k is ActivationKind.SILU:
            return torch.sigmoid(z)
        one, zero = torch.ones_like(z), torch.zeros_like(z)
        pos = (z >= 0) if side > 0 else (z > 0)
        at_zero = z == 0
        safe_z = torch.where(at_zero, one, z)
        if k is ActivationKind.ELU:
            neg = self.alpha * torch.expm1(torch.clamp_max(z, 0.0)) / safe_z
            out = torch.where(pos, one, neg)
            if side == 0:
                return torch.where(at_zero, self.derivative(z), out)
            return torch.where(at_zero, torch.full_like(z, 1.0 if side > 0 else self.alpha), out)
        if k is ActivationKind.SELU:
            neg = SELU_ALPHA * torch.expm1(torch.clamp_max(z, 0.0)) / safe_z
            out = SELU_SCALE * torch.where(pos, one, neg)
            if side == 0:
                return torch.where(at_zero, self.derivative(z), out)
            return torch.where(at_zero, torch.full_like(z, SELU_SCALE * (1.0 if side > 0 else SELU_ALPHA)), out)
        if k is ActivationKind.SOFTPLUS:
            small = torch.log1p(torch.expm1(torch.clamp(z, -1.0, 1.0)) / 2.0) / safe_z
            large = (self.value(z) - math.log(2.0)) / safe_z
            out = torch.where(torch.abs(z) <= 1.0, small, large)
            return torch.where(at_zero, torch.full_like(z, 0.5), out)
        if k is ActivationKind.TANH:
            return torch.where(at_zero, one, torch.tanh(z) / safe_z)
        if k is ActivationKind.SIGMOID:
            return torch.where(at_zero, torch.full_like(z, 0.25), torch.tanh(z / 2.0) / (2.0 * safe_z))
        if k is ActivationKind.CLIP:
            out = (torch.clamp(z, self.lo, self.hi) - self.value_at_zero) / safe_z
            if self.lo < 0 < self.hi:
                return torch.where(at_zero, one, out)
            # 0 sits on a flat piece (or on a kink at lo or hi = 0): secant 0 there, limits from each side.
            if side == 0:
                return torch.where(at_zero, self.derivative(z), out)
            right_of_kink = side > 0 and self.lo == 0.0 < self.hi
            left_of_kink = side < 0 and self.lo < 0.0 == self.hi
            lim = 1.0 if (right_of_kink or left_of_kink) else 0.0
            return torch.where(at_zero, torch.full_like(z, lim), out)
        if k is ActivationKind.HARDSWISH:
            mid = (z + 3) / 6.0
            upper = z > 3
            lower = z < -3
            return torch.where(upper, one, torch.where(lower, zero, mid))
        if k is ActivationKind.IDENTITY:
            return one
        raise AssertionError(k)

    # ----------------------------------------------------------------- knots
    def kinks(self) -> tuple[float, ...]:
        """Pre-activation values where sigma' jumps (and with it, at 0, the secant slope). A point with a
        pre-activation on one has a matrix A*(x) or J(x) that depends on the derivative convention there, not the
        matrix of an open region: such a point is no witness (see :func:`certify.engines.sampling.generic_point`)."""
        k = self.kind
        if k in (ActivationKind.RELU, ActivationKind.LEAKY_RELU, ActivationKind.PRELU, ActivationKind.SELU):
            return (0.0,)
        if k is ActivationKind.ELU:
            return (0.0,) if self.alpha != 1.0 else ()
        if k is ActivationKind.CLIP:
            return tuple(v for v in (self.lo, self.hi) if math.isfinite(v))
        if k is ActivationKind.HARDSWISH:
            return (-3.0, 3.0)
        return ()

    def _value_knots(self) -> tuple[float, ...]:
        k = self.kind
        if k is ActivationKind.GELU:
            return (_GELU_MIN,)
        if k is ActivationKind.GELU_TANH:
            return (_GELU_TANH_MIN,)
        if k is ActivationKind.SILU:
            return (_SILU_MIN,)
        if k is ActivationKind.HARDSWISH:
            return (-3.0, -1.5, 3.0)
        if k is ActivationKind.CLIP:
            return (self.lo, self.hi)
        return (0.0,)

    def _secant_knots(self) -> tuple[float, ...]:
        knots = [0.0]
        if self.kind is ActivationKind.CLIP:
            knots += [self.lo, self.hi]
        if self.kind is ActivationKind.HARDSWISH:
            knots += [-3.0, 3.0]
        return tuple(sorted(x for x in set(knots) if math.isfinite(x)))

    def _derivative_knots(self) -> tuple[float, ...]:
        k = self.kind
        knots = [0.0]
        if k is ActivationKind.GELU:
            knots += [-_SQRT2, _SQRT2]
        elif k is ActivationKind.GELU_TANH:
            knots += [-_GELU_TANH_DERIV_CRIT, _GELU_TANH_DERIV_CRIT]
        elif k is ActivationKind.SILU:
            knots += [-_SILU_DERIV_CRIT, _SILU_DERIV_CRIT]
        elif k is ActivationKind.CLIP:
            knots += [self.lo, self.hi]
        elif k is ActivationKind.HARDSWISH:
            knots += [-3.0, 3.0]
        return tuple(sorted(x for x in set(knots) if math.isfinite(x)))

    # ----------------------------------------------------------------- ranges
    def _range(self, fn, knots, lower: np.ndarray, upper: np.ndarray, exact: bool) -> tuple[np.ndarray, np.ndarray]:
        lower = np.asarray(lower, dtype=np.float64)
        upper = np.asarray(upper, dtype=np.float64)
        if np.any(~np.isfinite(lower)) or np.any(~np.isfinite(upper)) or np.any(lower > upper):
            raise ValueError("activation ranges need finite intervals with lower <= upper")
        lt, ut = torch.from_numpy(lower), torch.from_numpy(upper)
        lo = torch.minimum(fn(lt, 0), fn(ut, 0))
        hi = torch.maximum(fn(lt, 0), fn(ut, 0))
        inf = torch.full_like(lt, math.inf)
        for knot in knots:
            kt = torch.full_like(lt, knot)
            inside = (lt < kt) & (kt < ut)
            at_lower = (lt == kt) & (lt < ut)
            at_upper = (ut == kt) & (lt < ut)
            for side, mask in ((0, inside), (-1, inside | at_upper), (1, inside | at_lower)):
                v = fn(kt, side)
                lo = torch.minimum(lo, torch.where(mask, v, inf))
                hi = torch.maximum(hi, torch.where(mask, v, -inf))
        lo_np, hi_np = lo.numpy().copy(), hi.numpy().copy()
        if not exact:
            lo_np -= 1e-12 * np.abs(lo_np) + 1e-14
            hi_np += 1e-12 * np.abs(hi_np) + 1e-14
        return lo_np, hi_np

    def value_range(self, lower: np.ndarray, upper: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Sound [min, max] of sigma over [lower_i, upper_i] per neuron; arrays of shape (n,)."""
        return self._range(lambda z, side: self.value(z), self._value_knots(), lower, upper, exact=False)

    def secant_range(self, lower: np.ndarray, upper: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Sound [min, max] of the secant slope over [lower_i, upper_i]; arrays of shape (n,)."""
        return self._range(self.secant, self._secant_knots(), lower, upper, exact=self.exact_slopes)

    def derivative_range(self, lower: np.ndarray, upper: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Sound [min, max] of sigma' over [lower_i, upper_i]; arrays of shape (n,)."""
        return self._range(self.derivative, self._derivative_knots(), lower, upper, exact=self.exact_slopes)

    # ----------------------------------------------------------------- numpy conveniences
    def np_value(self, z: np.ndarray) -> np.ndarray:
        return self.value(torch.from_numpy(np.asarray(z, dtype=np.float64))).numpy()

    def np_secant(self, z: np.ndarray) -> np.ndarray:
        return self.secant(torch.from_numpy(np.asarray(z, dtype=np.float64))).numpy()

    def np_derivative(self, z: np.ndarray) -> np.ndarray:
        return self.derivative(torch.from_numpy(np.asarray(z, dtype=np.float64))).numpy()


# --------------------------------------------------------------------- constructors
def relu() -> Activation:
    return Activation(ActivationKind.RELU)


def leaky_relu(alpha: float = 0.01) -> Activation:
    return Activation(ActivationKind.LEAKY_RELU, alpha=float(alpha))


def prelu(slopes) -> Activation:
    return Activation(ActivationKind.PRELU, slopes=tuple(float(s) for s in np.ravel(slopes)))


def elu(alpha: float = 1.0) -> Activation:
    if not alpha > 0:
        raise ValueError(f"elu needs alpha > 0, got {alpha}")
    return Activation(ActivationKind.ELU, alpha=float(alpha))


def selu() -> Activation:
    return Activation(ActivationKind.SELU)


def gelu(approximate: str = "none") -> Activation:
    return Activation(ActivationKind.GELU_TANH if approximate == "tanh" else ActivationKind.GELU)


def silu() -> Activation:
    return Activation(ActivationKind.SILU)


def softplus() -> Activation:
    return Activation(ActivationKind.SOFTPLUS)


def tanh() -> Activation:
    return Activation(ActivationKind.TANH)


def sigmoid() -> Activation:
    return Activation(ActivationKind.SIGMOID)


def clip(lo: float = -1.0, hi: float = 1.0) -> Activation:
    """Clip / hardtanh / relu6 (``clip(0, 6)``); ``lo <= hi``, either may be infinite."""
    if not lo <= hi:
        raise ValueError(f"clip needs lo <= hi, got {lo} > {hi}")
    return Activation(ActivationKind.CLIP, lo=float(lo), hi=float(hi))


def hardtanh(lo: float = -1.0, hi: float = 1.0) -> Activation:
    return clip(lo, hi)


def relu6() -> Activation:
    return clip(0.0, 6.0)


def hardswish() -> Activation:
    return Activation(ActivationKind.HARDSWISH)


def identity() -> Activation:
    return Activation(ActivationKind.IDENTITY)


CATALOGUE: dict[str, Callable[[], Activation]] = {
    "relu": relu,
    "leaky_relu": leaky_relu,
    "elu": elu,
    "selu": selu,
    "gelu": gelu,
    "gelu_tanh": lambda: gelu("tanh"),
    "silu": silu,
    "softplus": softplus,
    "tanh": tanh,
    "sigmoid": sigmoid,
    "hardtanh": hardtanh,
    "relu6": relu6,
    "hardswish": hardswish,
    "identity": identity,
}
"""Every activation by name with default parameters (PReLU needs slopes: see :func:`prelu`)."""

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

Second-order (mean-value) enclosures of J(x) and A*(x) need the *curvatures* sigma'' (for J) and s'(z) (for A*)
over an interval, by the same monotone pieces (``second_derivative_range``, ``secant_derivative_range``). They apply
only where sigma' (resp. s) is Lipschitz continuous (``lipschitz_derivative``, ``lipschitz_secant``): then J (resp.
A*) is Lipschitz in x and M(x) - M(c) is the integral of its derivative along the segment, whose factors lie in
these ranges (at a kink of sigma'' or s' both one-sided limits are included). The knots (interior critical points)
are the zeros of sigma''' and of s''. Since s(z) = integral_0^1 sigma'(t z) dt, z^3 s''(z) = integral_0^z u^2
sigma'''(u) du is monotone between sign changes of sigma''' and vanishes at 0, so each side of 0 has at most as many
zeros of s'' as sigma''' has sign changes there; tanh, sigmoid, GELU, SiLU and softplus have them in closed form
or bracketed by a sign change, and the test suite checks every piece for monotonicity on a dense grid. Near 0, s'
is evaluated by the Taylor series of tanh (exact Bernoulli numbers) or of ELU's exponential, so that no
cancellation enters the range.
"""

from __future__ import annotations

import enum
import math
from dataclasses import dataclass
from fractions import Fraction
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
_SMOOTH = {ActivationKind.TANH, ActivationKind.SIGMOID, ActivationKind.GELU, ActivationKind.GELU_TANH,
           ActivationKind.SILU, ActivationKind.SOFTPLUS}
# secants written as a quotient by z (the others are closed forms without a division)
_TINY_SECANT_KINDS = {ActivationKind.ELU, ActivationKind.SELU, ActivationKind.SOFTPLUS, ActivationKind.TANH,
                      ActivationKind.SIGMOID}


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


def _tanh_series() -> tuple[float, ...]:
    """Taylor coefficients a_n of tanh(y) = sum_{n>=1} a_n y^(2n-1) (n = 1..19), a_n = 4^n (4^n - 1) B_2n / (2n)!,
    from exact Bernoulli numbers (radius of convergence pi/2)."""
    bern = [Fraction(1)]
    for m in range(1, 39):
        bern.append(-sum(Fraction(math.comb(m + 1, k)) * bern[k] for k in range(m)) / (m + 1))
    return tuple(float(Fraction(4**n * (4**n - 1)) * bern[2 * n] / math.factorial(2 * n)) for n in range(1, 20))


_TANH_A = _tanh_series()
# s'(z) of tanh for |z| < 1/2: sum_{n>=2} (2n - 2) a_n z^(2n-3) = z * sum_m c_m (z^2)^m (terms fall by (2z/pi)^2)
_TANH_SD_SERIES = tuple((2 * n - 2) * a for n, a in zip(range(2, 20), _TANH_A[1:]))
# s'(z) of softplus for |z| < 1, y = z / 2: (1/4) sum_{n>=1} a_n (1 - 1/(2n)) y^(2n-2), from
# softplus(z) - log 2 = z / 2 + log cosh(z / 2) and log cosh(y) = sum_n a_n y^(2n) / (2n)
_SOFTPLUS_SD_SERIES = tuple(0.25 * a * (1.0 - 0.5 / n) for n, a in zip(range(1, 20), _TANH_A))
# s'(z) / alpha of ELU for -1/2 < z <= 0: sum_{m>=0} (m + 1) z^m / (m + 2)!
_ELU_SD_SERIES = tuple((m + 1) / math.factorial(m + 2) for m in range(18))
_TANH_D2_CRIT = math.atanh(1.0 / math.sqrt(3.0))  # tanh''' = -2 sech^2 (1 - 3 tanh^2)
_TINY_SECANT_Z = 1e-100  # |z| below this: the secant is its one-sided limit at 0 (Activation.secant)
_SIGMOID_D2_CRIT = math.log(2.0 + math.sqrt(3.0))  # sigmoid''' = s (1 - s) (1 - 6 s + 6 s^2)
# silu''' = s' (3 (1 - 2 s) + z (1 - 6 s + 6 s^2)) = s' (-3 t + z (1.5 t^2 - 0.5)), t = tanh(z / 2): one zero for z > 0
_SILU_D2_CRIT = _bisect_root(lambda z: -3.0 * math.tanh(z / 2) + z * (1.5 * math.tanh(z / 2) ** 2 - 0.5), 2.0, 5.0)


def _gelu_tanh_second_derivative(z: float) -> float:
    u1 = _SQRT_2_OVER_PI * (1 + 3 * _GELU_TANH_C * z * z)
    u2 = _SQRT_2_OVER_PI * 6 * _GELU_TANH_C * z
    t = math.tanh(_SQRT_2_OVER_PI * (z + _GELU_TANH_C * z**3))
    return (1 - t * t) * (u1 + 0.5 * z * (u2 - 2 * t * u1 * u1))


_GELU_TANH_D2_CRIT = _numeric_derivative_root(_gelu_tanh_second_derivative, 1.0, 3.0)  # about 2.0135


def _tanh_secant_curvature(z: float) -> float:
    """z s''(z) = tanh''(z) - 2 s'(z) for s(z) = tanh(z) / z (z away from 0): its sign is that of s'' for z > 0."""
    s1 = (1.0 / math.cosh(z) ** 2 - math.tanh(z) / z) / z
    return -2.0 * math.tanh(z) / math.cosh(z) ** 2 - 2.0 * s1


_TANH_SD_CRIT = _bisect_root(_tanh_secant_curvature, 0.5, 1.5)  # about 0.91994
# third-order knots (zeros of sigma'''' and s'''), for the second-order Taylor models of smooth nets
_TANH_D3_CRIT = math.atanh(math.sqrt(2.0 / 3.0))  # tanh'''' = 4 t (1 - t^2) (4 - 6 t^2)
_GELU_D3_CRITS = (math.sqrt((7 - math.sqrt(33)) / 2), math.sqrt((7 + math.sqrt(33)) / 2))  # phi (-z^4 + 7 z^2 - 4)


def _gelu_tanh_third_derivative(z: float) -> float:
    u1 = _SQRT_2_OVER_PI * (1 + 3 * _GELU_TANH_C * z * z)
    u2 = _SQRT_2_OVER_PI * 6 * _GELU_TANH_C * z
    u3 = _SQRT_2_OVER_PI * 6 * _GELU_TANH_C
    t = math.tanh(_SQRT_2_OVER_PI * (z + _GELU_TANH_C * z**3))
    s = 1 - t * t
    return s * (1.5 * (u2 - 2 * t * u1 * u1)
                + 0.5 * z * (u3 - 2 * s * u1**3 - 6 * t * u1 * u2 + 4 * t * t * u1**3))


def _silu_third_derivative(z: float) -> float:
    t = math.tanh(z / 2)
    return 0.25 * (1 - t * t) * (-3.0 * t + z * (1.5 * t * t - 0.5))


def _tanh_secant_second(z: float) -> float:
    """s''(z) = (sigma'' - 2 s') / z for s = tanh(z) / z (z away from 0)."""
    return _tanh_secant_curvature(z) / z


def _softplus_secant_second(z: float) -> float:
    sig = 1.0 / (1.0 + math.exp(-z))
    s = (math.log1p(math.exp(z)) - math.log(2.0)) / z
    s1 = (sig - s) / z
    return (sig * (1 - sig) - 2.0 * s1) / z


def _gelu_tanh_secant_second(z: float) -> float:
    u1 = _SQRT_2_OVER_PI * (1 + 3 * _GELU_TANH_C * z * z)
    u2 = _SQRT_2_OVER_PI * 6 * _GELU_TANH_C * z
    t = math.tanh(_SQRT_2_OVER_PI * (z + _GELU_TANH_C * z**3))
    return 0.5 * (1 - t * t) * (u2 - 2 * t * u1 * u1)


_GELU_TANH_D3_CRITS = (_numeric_derivative_root(_gelu_tanh_third_derivative, 0.5, 1.2),
                       _numeric_derivative_root(_gelu_tanh_third_derivative, 2.0, 3.0))  # about 0.7876, 2.5534
_SILU_D3_CRITS = (_numeric_derivative_root(_silu_third_derivative, 0.7, 1.5),
                  _numeric_derivative_root(_silu_third_derivative, 3.5, 5.5))  # about 1.0320, 4.4292
_TANH_SS_CRIT = _numeric_derivative_root(_tanh_secant_second, 1.2, 2.0)  # about 1.5818
_SOFTPLUS_SS_CRIT = _numeric_derivative_root(_softplus_secant_second, 1.3, 2.1)  # about 1.6939
_GELU_TANH_SS_CRIT = _numeric_derivative_root(_gelu_tanh_secant_second, 0.7, 1.3)  # about 0.9949
# s''(z) of tanh for |z| < 1/2: sum_{n>=2} (2n - 2)(2n - 3) a_n z^(2n-4)
_TANH_SS_SERIES = tuple((2 * n - 2) * (2 * n - 3) * a for n, a in zip(range(2, 20), _TANH_A[1:]))
# s''(z) of softplus for |z| < 1, y = z / 2: (1/8) y sum_{n>=2} a_n (1 - 1/(2n)) (2n - 2) y^(2n-4)
_SOFTPLUS_SS_SERIES = tuple(0.125 * a * (1.0 - 0.5 / n) * (2 * n - 2) for n, a in zip(range(2, 20), _TANH_A[1:]))
# s''(z) / alpha of ELU for -1/2 < z <= 0: sum_{m>=1} m (m + 1) z^(m-1) / (m + 2)!
_ELU_SS_SERIES = tuple(m * (m + 1) / math.factorial(m + 2) for m in range(1, 19))
_CURVATURE_Z_MAX = 1e3  # beyond |z| = 1e3 the curvatures of GELU / GELU-tanh are 0 in float64; avoids 0 * inf


def _over_power(num: torch.Tensor, z: torch.Tensor, k: int) -> torch.Tensor:
    """num / z^k, exactly 0 where num = 0 (also where z^k underflows to 0, or z = 0)."""
    safe = torch.where(num == 0, torch.ones_like(z), z)
    return torch.where(num == 0, torch.zeros_like(z), num / safe**k)


def _horner(coeffs, x: torch.Tensor) -> torch.Tensor:
    out = torch.full_like(x, coeffs[-1])
    for c in reversed(coeffs[:-1]):
        out = out * x + c
    return out


def _tanh_secant_derivative(z: torch.Tensor) -> torch.Tensor:
    """d/dz (tanh(z) / z): the series below |z| = 1/2 (no cancellation), the closed form above."""
    small = torch.abs(z) < 0.5
    zl = torch.where(small, torch.ones_like(z), z)
    out = (1.0 / torch.cosh(zl) ** 2 - torch.tanh(zl) / zl) / zl
    if bool(small.any()):
        zs = z[small]
        out[small] = zs * _horner(_TANH_SD_SERIES, zs * zs)
    return out


def _tanh_secant_second_derivative(z: torch.Tensor) -> torch.Tensor:
    """d^2/dz^2 (tanh(z) / z): the series below |z| = 1/2, (tanh'' - 2 s') / z above."""
    small = torch.abs(z) < 0.5
    zl = torch.where(small, torch.ones_like(z), z)
    out = (-2.0 * torch.tanh(zl) / torch.cosh(zl) ** 2 - 2.0 * _tanh_secant_derivative(zl)) / zl
    if bool(small.any()):
        zs = z[small]
        out[small] = _horner(_TANH_SS_SERIES, zs * zs)
    return out


def _elu_secant_second_derivative(z: torch.Tensor, alpha: float) -> torch.Tensor:
    """d^2/dz^2 (alpha expm1(z) / z) on z <= 0: the series above z = -1/2, (sigma'' - 2 s') / z below."""
    zn = torch.clamp_max(z, 0.0)
    small = zn > -0.5
    zl = torch.where(small, -torch.ones_like(zn), zn)
    out = (torch.exp(zl) - 2.0 * _elu_secant_derivative(zl, 1.0)) / zl
    if bool(small.any()):
        out[small] = _horner(_ELU_SS_SERIES, zn[small])
    return alpha * out


def _elu_secant_derivative(z: torch.Tensor, alpha: float) -> torch.Tensor:
    """d/dz (alpha expm1(z) / z) on z <= 0 (the series above z = -1/2, the closed form below)."""
    zn = torch.clamp_max(z, 0.0)
    small = zn > -0.5
    zl = torch.where(small, -torch.ones_like(zn), zn)
    out = (zl * torch.exp(zl) - torch.expm1(zl)) / (zl * zl)
    if bool(small.any()):
        out[small] = _horner(_ELU_SD_SERIES, zn[small])
    return alpha * out


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

    @property
    def lipschitz_derivative(self) -> bool:
        """True when sigma' is Lipschitz continuous (no jump), so that J(x) is Lipschitz in x and its mean-value
        form with :meth:`second_derivative_range` applies (ELU only with alpha = 1; never SELU, ReLU types or
        hardswish, whose derivative (2z + 3) / 6 on (-3, 3) jumps at -3 (0 to -1/2) and at 3 (3/2 to 1))."""
        k = self.kind
        if k is ActivationKind.ELU:
            return self.alpha == 1.0
        return k in _SMOOTH or k is ActivationKind.IDENTITY

    @property
    def smooth(self) -> bool:
        """True when sigma is infinitely differentiable (tanh, sigmoid, GELU, GELU-tanh, SiLU, softplus, identity):
        the second-order Taylor models of J and A* apply (their remainders use ``third_derivative_range`` and
        ``secant_second_derivative_range``)."""
        return self.kind in _SMOOTH or self.kind is ActivationKind.IDENTITY

    @property
    def lipschitz_secant(self) -> bool:
        """True when the secant slope s is Lipschitz continuous, so that A*(x) is Lipschitz in x and its mean-value
        form with :meth:`secant_derivative_range` applies (also clips with no kink at 0; never ReLU types)."""
        if self.kind is ActivationKind.CLIP:
            return 0.0 not in (self.lo, self.hi)
        if self.kind is ActivationKind.HARDSWISH:  # s(z) = relu6(z + 3) / 6: Lipschitz with constant 1/6
            return True
        return self.lipschitz_derivative

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

        Written without cancellation near 0 for every smooth activation. Below ``_TINY_SECANT_Z`` in magnitude
        (where z / 2 or expm1(z) of a subnormal z loses the value: sigmoid's and softplus's formulas gave 0 at
        5e-324, not 1/4 and 1/2) the one-sided limit at 0 is returned: it differs from the secant by at most
        sup |s'| |z|, far below every range's rounding pad.
        """
        out = self._secant_formula(z, side)
        if self.kind in _TINY_SECANT_KINDS:
            tiny = (z != 0) & (torch.abs(z) < _TINY_SECANT_Z)
            if bool(tiny.any()):
                zero = torch.zeros_like(z)
                limit = torch.where(z > 0, self._secant_formula(zero, 1), self._secant_formula(zero, -1))
                out = torch.where(tiny, limit, out)
        return out

    def _secant_formula(self, z: torch.Tensor, side: int = 0) -> torch.Tensor:
        """:meth:`secant` without the tiny-z limit."""
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

    def second_derivative(self, z: torch.Tensor, side: int = 0) -> torch.Tensor:
        """sigma''(z) where it exists (0 on linear pieces; one-sided limits at a kink with ``side`` = +1 / -1).
        Meaningful for the mean-value form only when :attr:`lipschitz_derivative` (a jump of sigma' is no
        curvature)."""
        k = self.kind
        if k is ActivationKind.TANH:
            return -2.0 * torch.tanh(z) / torch.cosh(z) ** 2
        if k is ActivationKind.SIGMOID:
            return -torch.sigmoid(z) * torch.sigmoid(-z) * torch.tanh(z / 2.0)  # s (1 - s) (1 - 2 s)
        if k is ActivationKind.GELU:
            zc = torch.clamp(z, -_CURVATURE_Z_MAX, _CURVATURE_Z_MAX)
            return _INV_SQRT_2PI * torch.exp(-0.5 * zc * zc) * (2.0 - zc * zc)
        if k is ActivationKind.GELU_TANH:
            zc = torch.clamp(z, -_CURVATURE_Z_MAX, _CURVATURE_Z_MAX)
            u = _SQRT_2_OVER_PI * (zc + _GELU_TANH_C * zc**3)
            u1 = _SQRT_2_OVER_PI * (1 + 3 * _GELU_TANH_C * zc * zc)
            u2 = _SQRT_2_OVER_PI * 6 * _GELU_TANH_C * zc
            return (u1 + 0.5 * zc * (u2 - 2 * torch.tanh(u) * u1 * u1)) / torch.cosh(u) ** 2
        if k is ActivationKind.SILU:
            return torch.sigmoid(z) * torch.sigmoid(-z) * (2.0 - z * torch.tanh(z / 2.0))
        if k is ActivationKind.SOFTPLUS:
            return torch.sigmoid(z) * torch.sigmoid(-z)
        zero = torch.zeros_like(z)
        pos = (z >= 0) if side > 0 else (z > 0)
        if k is ActivationKind.ELU:
            return torch.where(pos, zero, self.alpha * torch.exp(torch.clamp_max(z, 0.0)))
        if k is ActivationKind.SELU:
            return torch.where(pos, zero, SELU_SCALE * SELU_ALPHA * torch.exp(torch.clamp_max(z, 0.0)))
        if k is ActivationKind.HARDSWISH:
            inside = ((z >= -3) if side > 0 else (z > -3)) & ((z <= 3) if side < 0 else (z < 3))
            return torch.where(inside, torch.full_like(z, 1.0 / 3.0), zero)
        return zero  # ReLU types, clip, identity: linear pieces

    def secant_derivative(self, z: torch.Tensor, side: int = 0) -> torch.Tensor:
        """s'(z), the derivative of the secant slope s(z) = (sigma(z) - sigma(0)) / z (s'(0) = sigma''(0) / 2;
        one-sided limits at a kink with ``side``), written without cancellation near 0. Meaningful for the
        mean-value form only when :attr:`lipschitz_secant`."""
        k = self.kind
        if k is ActivationKind.GELU:  # s = Phi
            zc = torch.clamp(z, -_CURVATURE_Z_MAX, _CURVATURE_Z_MAX)
            return _INV_SQRT_2PI * torch.exp(-0.5 * zc * zc)
        if k is ActivationKind.GELU_TANH:  # s = (1 + tanh(u)) / 2
            zc = torch.clamp(z, -_CURVATURE_Z_MAX, _CURVATURE_Z_MAX)
            u = _SQRT_2_OVER_PI * (zc + _GELU_TANH_C * zc**3)
            return 0.5 * _SQRT_2_OVER_PI * (1 + 3 * _GELU_TANH_C * zc * zc) / torch.cosh(u) ** 2
        if k is ActivationKind.SILU:  # s = sigmoid
            return torch.sigmoid(z) * torch.sigmoid(-z)
        if k is ActivationKind.TANH:
            return _tanh_secant_derivative(z)
        if k is ActivationKind.SIGMOID:  # s(z) = tanh(z / 2) / (2 z)
            return 0.125 * _tanh_secant_derivative(z / 2.0)
        if k is ActivationKind.SOFTPLUS:
            small = torch.abs(z) < 1.0
            zl = torch.where(small, torch.ones_like(z), z)
            out = (torch.sigmoid(zl) - self.secant(zl)) / zl
            if bool(small.any()):
                zs = z[small]
                out[small] = _horner(_SOFTPLUS_SD_SERIES, 0.25 * zs * zs)
            return out
        zero = torch.zeros_like(z)
        pos = (z >= 0) if side > 0 else (z > 0)
        if k is ActivationKind.ELU:
            return torch.where(pos, zero, _elu_secant_derivative(z, self.alpha))
        if k is ActivationKind.SELU:
            return torch.where(pos, zero, _elu_secant_derivative(z, SELU_SCALE * SELU_ALPHA))
        if k is ActivationKind.HARDSWISH:
            inside = ((z >= -3) if side > 0 else (z > -3)) & ((z <= 3) if side < 0 else (z < 3))
            return torch.where(inside, torch.full_like(z, 1.0 / 6.0), zero)
        if k is ActivationKind.CLIP:
            # s = (c - sigma(0)) / z on each piece (c = lo, z or hi): s' = -(c - sigma(0)) / z^2 + c' / z
            # (the piece that reaches 0 has c - sigma(0) = 0: s' = 0 there, also where z^2 underflows)
            s0 = self.value_at_zero
            above = (z >= self.hi) if side > 0 else (z > self.hi)
            below = (z <= self.lo) if side < 0 else (z < self.lo)
            num = torch.where(above, s0 - self.hi, torch.where(below, s0 - self.lo, torch.full_like(z, s0)))
            return _over_power(num, z, 2)
        return zero  # ReLU types and identity: s is constant on each piece

    def third_derivative(self, z: torch.Tensor, side: int = 0) -> torch.Tensor:
        """sigma'''(z) where it exists (one-sided limits with ``side``); a curvature of J's second-order model only
        when :attr:`smooth`."""
        k = self.kind
        if k is ActivationKind.TANH:
            return -2.0 * (1.0 - 3.0 * torch.tanh(z) ** 2) / torch.cosh(z) ** 2
        if k is ActivationKind.SIGMOID:  # sigmoid(z) = (1 + tanh(z / 2)) / 2
            t = torch.tanh(z / 2.0)
            return -0.125 * (1.0 - 3.0 * t * t) / torch.cosh(z / 2.0) ** 2
        if k is ActivationKind.GELU:
            zc = torch.clamp(z, -_CURVATURE_Z_MAX, _CURVATURE_Z_MAX)
            return _INV_SQRT_2PI * torch.exp(-0.5 * zc * zc) * zc * (zc * zc - 4.0)
        if k is ActivationKind.GELU_TANH:
            zc = torch.clamp(z, -_CURVATURE_Z_MAX, _CURVATURE_Z_MAX)
            u = _SQRT_2_OVER_PI * (zc + _GELU_TANH_C * zc**3)
            u1 = _SQRT_2_OVER_PI * (1 + 3 * _GELU_TANH_C * zc * zc)
            u2 = _SQRT_2_OVER_PI * 6 * _GELU_TANH_C * zc
            u3 = _SQRT_2_OVER_PI * 6 * _GELU_TANH_C
            t, s = torch.tanh(u), 1.0 / torch.cosh(u) ** 2
            return s * (1.5 * (u2 - 2 * t * u1 * u1)
                        + 0.5 * zc * (u3 - 2 * s * u1**3 - 6 * t * u1 * u2 + 4 * t * t * u1**3))
        if k is ActivationKind.SILU:
            t = torch.tanh(z / 2.0)
            return torch.sigmoid(z) * torch.sigmoid(-z) * (-3.0 * t + z * (1.5 * t * t - 0.5))
        if k is ActivationKind.SOFTPLUS:  # sigmoid''
            return -torch.sigmoid(z) * torch.sigmoid(-z) * torch.tanh(z / 2.0)
        zero = torch.zeros_like(z)
        pos = (z >= 0) if side > 0 else (z > 0)
        if k is ActivationKind.ELU:
            return torch.where(pos, zero, self.alpha * torch.exp(torch.clamp_max(z, 0.0)))
        if k is ActivationKind.SELU:
            return torch.where(pos, zero, SELU_SCALE * SELU_ALPHA * torch.exp(torch.clamp_max(z, 0.0)))
        return zero  # piecewise linear or piecewise quadratic (hardswish): 0 on every piece

    def secant_second_derivative(self, z: torch.Tensor, side: int = 0) -> torch.Tensor:
        """s''(z) (s''(0) = sigma'''(0) / 3; one-sided limits with ``side``), without cancellation near 0; a
        curvature of A*'s second-order model only when :attr:`smooth`."""
        k = self.kind
        if k is ActivationKind.GELU:  # s = Phi
            zc = torch.clamp(z, -_CURVATURE_Z_MAX, _CURVATURE_Z_MAX)
            return -_INV_SQRT_2PI * zc * torch.exp(-0.5 * zc * zc)
        if k is ActivationKind.GELU_TANH:
            zc = torch.clamp(z, -_CURVATURE_Z_MAX, _CURVATURE_Z_MAX)
            u = _SQRT_2_OVER_PI * (zc + _GELU_TANH_C * zc**3)
            u1 = _SQRT_2_OVER_PI * (1 + 3 * _GELU_TANH_C * zc * zc)
            u2 = _SQRT_2_OVER_PI * 6 * _GELU_TANH_C * zc
            return 0.5 * (u2 - 2 * torch.tanh(u) * u1 * u1) / torch.cosh(u) ** 2
        if k is ActivationKind.SILU:  # sigmoid''
            return -torch.sigmoid(z) * torch.sigmoid(-z) * torch.tanh(z / 2.0)
        if k is ActivationKind.TANH:
            return _tanh_secant_second_derivative(z)
        if k is ActivationKind.SIGMOID:  # s(z) = s_tanh(z / 2) / 4
            return 0.0625 * _tanh_secant_second_derivative(z / 2.0)
        if k is ActivationKind.SOFTPLUS:
            small = torch.abs(z) < 1.0
            zl = torch.where(small, torch.ones_like(z), z)
            out = (torch.sigmoid(zl) * torch.sigmoid(-zl) - 2.0 * self.secant_derivative(zl)) / zl
            if bool(small.any()):
                y = 0.5 * z[small]
                out[small] = y * _horner(_SOFTPLUS_SS_SERIES, y * y)
            return out
        zero = torch.zeros_like(z)
        pos = (z >= 0) if side > 0 else (z > 0)
        if k is ActivationKind.ELU:
            return torch.where(pos, zero, _elu_secant_second_derivative(z, self.alpha))
        if k is ActivationKind.SELU:
            return torch.where(pos, zero, _elu_secant_second_derivative(z, SELU_SCALE * SELU_ALPHA))
        if k is ActivationKind.CLIP:
            s0 = self.value_at_zero  # s'' = 2 (c - sigma(0)) / z^3 on each piece (0 on the one that reaches 0)
            above = (z >= self.hi) if side > 0 else (z > self.hi)
            below = (z <= self.lo) if side < 0 else (z < self.lo)
            num = torch.where(above, self.hi - s0, torch.where(below, self.lo - s0, torch.full_like(z, -s0)))
            return _over_power(2.0 * num, z, 3)
        return zero  # ReLU types, hardswish (s' piecewise constant) and identity

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

    def _curvature_knots(self, crits) -> tuple[float, ...]:
        """The knots of a curvature range: 0, -c and c for each interior critical point c in ``crits``, and a
        clip's ends, sorted, finite ones only."""
        knots = [0.0] + [v for c in crits for v in (-c, c)]
        if self.kind is ActivationKind.CLIP:
            knots += [self.lo, self.hi]
        return tuple(sorted(x for x in set(knots) if math.isfinite(x)))

    def _second_derivative_knots(self) -> tuple[float, ...]:
        """Kinks of sigma'' and zeros of sigma''' (module docstring)."""
        k = self.kind
        crit = {ActivationKind.TANH: _TANH_D2_CRIT, ActivationKind.SIGMOID: _SIGMOID_D2_CRIT,
                ActivationKind.GELU: 2.0, ActivationKind.GELU_TANH: _GELU_TANH_D2_CRIT,
                ActivationKind.SILU: _SILU_D2_CRIT, ActivationKind.HARDSWISH: 3.0}.get(k)
        return self._curvature_knots(() if crit is None else (crit,))

    def _secant_derivative_knots(self) -> tuple[float, ...]:
        """Kinks of s' and zeros of s'' (module docstring)."""
        k = self.kind
        crit = {ActivationKind.TANH: _TANH_SD_CRIT, ActivationKind.SIGMOID: 2.0 * _TANH_SD_CRIT,
                ActivationKind.HARDSWISH: 3.0}.get(k)
        return self._curvature_knots(() if crit is None else (crit,))

    def _third_derivative_knots(self) -> tuple[float, ...]:
        """Kinks of sigma''' and zeros of sigma''''."""
        k = self.kind
        crits = {ActivationKind.TANH: (_TANH_D3_CRIT,), ActivationKind.SIGMOID: (2.0 * _TANH_D3_CRIT,),
                 ActivationKind.GELU: _GELU_D3_CRITS, ActivationKind.GELU_TANH: _GELU_TANH_D3_CRITS,
                 ActivationKind.SILU: _SILU_D3_CRITS, ActivationKind.SOFTPLUS: (_SIGMOID_D2_CRIT,),
                 ActivationKind.HARDSWISH: (3.0,)}.get(k, ())
        return self._curvature_knots(crits)

    def _secant_second_derivative_knots(self) -> tuple[float, ...]:
        """Kinks of s'' and zeros of s'''."""
        k = self.kind
        crit = {ActivationKind.TANH: _TANH_SS_CRIT, ActivationKind.SIGMOID: 2.0 * _TANH_SS_CRIT,
                ActivationKind.GELU: 1.0, ActivationKind.GELU_TANH: _GELU_TANH_SS_CRIT,
                ActivationKind.SILU: _SIGMOID_D2_CRIT, ActivationKind.SOFTPLUS: _SOFTPLUS_SS_CRIT,
                ActivationKind.HARDSWISH: 3.0}.get(k)
        return self._curvature_knots(() if crit is None else (crit,))

    # ----------------------------------------------------------------- ranges
    def _range(self, fn, knots, lower: np.ndarray, upper: np.ndarray, exact: bool) -> tuple[np.ndarray, np.ndarray]:
        lower = np.asarray(lower, dtype=np.float64)
        upper = np.asarray(upper, dtype=np.float64)
        if np.any(~np.isfinite(lower)) or np.any(~np.isfinite(upper)) or np.any(lower > upper):
            raise ValueError("activation ranges need finite intervals with lower <= upper")
        lt, ut = torch.from_numpy(lower), torch.from_numpy(upper)
        at_l, at_u = fn(lt, 0), fn(ut, 0)
        lo, hi = torch.minimum(at_l, at_u), torch.maximum(at_l, at_u)
        for knot in knots:
            inside = (lt < knot) & (knot < ut)
            at_lower = (lt == knot) & (lt < ut)
            at_upper = (ut == knot) & (lt < ut)
            if not bool((inside | at_lower | at_upper).any()):
                continue
            # the knot's values once (a per-neuron parameter, PReLU's slopes, broadcasts along the last axis)
            kt = torch.full((1,) * lt.dim(), knot, dtype=lt.dtype)
            for side, mask in ((0, inside), (-1, inside | at_upper), (1, inside | at_lower)):
                v = fn(kt, side)
                lo = torch.where(mask, torch.minimum(lo, v), lo)
                hi = torch.where(mask, torch.maximum(hi, v), hi)
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

    def second_derivative_range(self, lower: np.ndarray, upper: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Sound [min, max] of sigma'' over [lower_i, upper_i] (both one-sided limits at kinks); arrays (n,).
        A curvature of J only when :attr:`lipschitz_derivative`."""
        return self._range(self.second_derivative, self._second_derivative_knots(), lower, upper,
                           exact=self.exact_slopes)

    def secant_derivative_range(self, lower: np.ndarray, upper: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Sound [min, max] of s' over [lower_i, upper_i] (both one-sided limits at kinks); arrays (n,).
        A curvature of A* only when :attr:`lipschitz_secant`."""
        return self._range(self.secant_derivative, self._secant_derivative_knots(), lower, upper,
                           exact=self.exact_slopes)

    def third_derivative_range(self, lower: np.ndarray, upper: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Sound [min, max] of sigma''' over [lower_i, upper_i]; arrays (n,). Used only when :attr:`smooth`."""
        return self._range(self.third_derivative, self._third_derivative_knots(), lower, upper,
                           exact=self.exact_slopes)

    def secant_second_derivative_range(self, lower: np.ndarray, upper: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Sound [min, max] of s'' over [lower_i, upper_i]; arrays (n,). Used only when :attr:`smooth`."""
        return self._range(self.secant_second_derivative, self._secant_second_derivative_knots(), lower, upper,
                           exact=self.exact_slopes)

    # ----------------------------------------------------------------- numpy conveniences
    def _on_numpy(self, fn, z: np.ndarray) -> np.ndarray:
        """``fn`` (a torch method of this activation) at float64 points ``z`` (any shape), as a numpy array."""
        return fn(torch.from_numpy(np.asarray(z, dtype=np.float64))).numpy()

    def np_value(self, z: np.ndarray) -> np.ndarray:
        return self._on_numpy(self.value, z)

    def np_secant(self, z: np.ndarray) -> np.ndarray:
        return self._on_numpy(self.secant, z)

    def np_derivative(self, z: np.ndarray) -> np.ndarray:
        return self._on_numpy(self.derivative, z)

    def np_second_derivative(self, z: np.ndarray) -> np.ndarray:
        return self._on_numpy(self.second_derivative, z)

    def np_secant_derivative(self, z: np.ndarray) -> np.ndarray:
        return self._on_numpy(self.secant_derivative, z)

    def np_third_derivative(self, z: np.ndarray) -> np.ndarray:
        return self._on_numpy(self.third_derivative, z)

    def np_secant_second_derivative(self, z: np.ndarray) -> np.ndarray:
        return self._on_numpy(self.secant_second_derivative, z)


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

"""Simple simulators of the zoo's plants (numpy, float64): continuous ODEs discretised by RK4 sub-steps.

Every function maps a batch of states ``x`` (N, n) and inputs ``u`` (N, m) to the next state (N, n) after one
sample period. States and inputs are *scaled* so that the boxes are O(1); each docstring gives the scaling.
"""

from __future__ import annotations

import numpy as np


def rk4(rhs, x: np.ndarray, u: np.ndarray, dt: float, substeps: int) -> np.ndarray:
    """Integrate dx/dt = rhs(x, u) over dt with ``substeps`` classical Runge-Kutta steps (u held constant)."""
    h = dt / substeps
    for _ in range(substeps):
        k1 = rhs(x, u)
        k2 = rhs(x + 0.5 * h * k1, u)
        k3 = rhs(x + 0.5 * h * k2, u)
        k4 = rhs(x + h * k3, u)
        x = x + h / 6.0 * (k1 + 2 * k2 + 2 * k3 + k4)
    return x


# --------------------------------------------------------------------------- two-tank system (2 states, 2 inputs)
TWO_TANK = {"c1": 0.08, "c2": 0.04, "dt": 2.0}


def two_tank_rhs(x: np.ndarray, u: np.ndarray) -> np.ndarray:
    """Levels h1, h2 in [0, 1]; inputs pump in [0, 1] and valve in [0, 1] (the valve splits the pump flow).

    dh1/dt = c1 (1 - valve) pump - c2 sqrt(h1);  dh2/dt = c1 valve pump + c2 sqrt(h1) - c2 sqrt(h2)
    (the two-tank system of the talk's non-autonomous examples, parameters as in PNNL's psl package).
    """
    c1, c2 = TWO_TANK["c1"], TWO_TANK["c2"]
    h = np.clip(x, 0.0, None)
    pump, valve = u[:, 0], u[:, 1]
    q1 = np.sqrt(h[:, 0])
    q2 = np.sqrt(h[:, 1])
    return np.stack([c1 * (1 - valve) * pump - c2 * q1, c1 * valve * pump + c2 * q1 - c2 * q2], axis=1)


def two_tank_step(x: np.ndarray, u: np.ndarray) -> np.ndarray:
    """One sample period (dt = 2 s) of the two-tank system; x (N, 2) levels, u (N, 2) = (pump, valve)."""
    return np.clip(rk4(two_tank_rhs, x, u, TWO_TANK["dt"], 8), 0.0, None)


# --------------------------------------------------------------------------- exothermic CSTR (2 states, 1 input)
CSTR = {
    "q": 100.0, "V": 100.0, "rho": 1000.0, "Cp": 0.239, "mdelH": 5e4, "EoverR": 8750.0, "k0": 7.2e10,
    "UA": 5e4, "Caf": 1.0, "Tf": 350.0, "dt": 0.05,
}
T_REF, T_SCALE, TC_REF, TC_SCALE = 350.0, 25.0, 300.0, 5.0


def cstr_rhs(x: np.ndarray, u: np.ndarray) -> np.ndarray:
    """Physical CSTR (Seborg et al.): x = (C_A [mol/L], T [K]), u = (T_c [K]); first-order exothermic reaction."""
    p = CSTR
    ca, T = x[:, 0], x[:, 1]
    r = p["k0"] * np.exp(-p["EoverR"] / T) * np.clip(ca, 0.0, None)
    dca = p["q"] / p["V"] * (p["Caf"] - ca) - r
    dT = (p["q"] / p["V"] * (p["Tf"] - T) + p["mdelH"] / (p["rho"] * p["Cp"]) * r
          + p["UA"] / (p["V"] * p["rho"] * p["Cp"]) * (u[:, 0] - T))
    return np.stack([dca, dT], axis=1)


def cstr_step(xs: np.ndarray, us: np.ndarray) -> np.ndarray:
    """One sample period (0.05 min) in scaled coordinates: xs = (C_A, (T - 350) / 25), us = ((T_c - 300) / 5)."""
    x = np.stack([xs[:, 0], T_REF + T_SCALE * xs[:, 1]], axis=1)
    u = TC_REF + TC_SCALE * us
    y = rk4(cstr_rhs, x, u, CSTR["dt"], 20)
    return np.stack([y[:, 0], (y[:, 1] - T_REF) / T_SCALE], axis=1)


# --------------------------------------------------------------------------- autonomous examples
def contracting_rhs(x: np.ndarray) -> np.ndarray:
    """dx1 = -x1 - x1^3 / 3 + 0.5 x2,  dx2 = -0.5 x1 - x2: J + J^T = diag(-2 - 2 x1^2, -2) < 0, so the flow
    contracts in the Euclidean norm everywhere (its Euler/RK4 steps x + h f(x) do too for small h)."""
    return np.stack([-x[:, 0] - x[:, 0] ** 3 / 3 + 0.5 * x[:, 1], -0.5 * x[:, 0] - x[:, 1]], axis=1)


def duffing_rhs(x: np.ndarray) -> np.ndarray:
    """Damped Duffing oscillator: dx1 = x2, dx2 = -x1 - x1^3 - 0.5 x2 (asymptotically stable, but rotating)."""
    return np.stack([x[:, 1], -x[:, 0] - x[:, 0] ** 3 - 0.5 * x[:, 1]], axis=1)


def autonomous_step(rhs, x: np.ndarray, dt: float, substeps: int = 8) -> np.ndarray:
    return rk4(lambda z, _u: rhs(z), x, None, dt, substeps)


# --------------------------------------------------------------------------- linear plants of the closed loops
DOUBLE_INTEGRATOR = {"A": [[1.0, 1.0], [0.0, 1.0]], "B": [[0.5], [1.0]]}
DCDC = {"A": [[0.9714, -0.0098], [1.7319, 0.9705]], "B": [[0.1488], [0.1808]]}


# --------------------------------------------------------------------------- a stochastic plant (deep Markov model)
NOISY_DUFFING = {"damping": 1.5, "cubic": 0.3, "dt": 0.2, "noise": (0.02, 0.03), "noise_growth": 0.03}


def noisy_duffing_rhs(x: np.ndarray) -> np.ndarray:
    """A well-damped Duffing oscillator: dx1 = x2, dx2 = -x1 - 0.3 x1^3 - 1.5 x2."""
    p = NOISY_DUFFING
    return np.stack([x[:, 1], -x[:, 0] - p["cubic"] * x[:, 0] ** 3 - p["damping"] * x[:, 1]], axis=1)


def noisy_duffing_std(x: np.ndarray) -> np.ndarray:
    """The standard deviations (N, 2) of the step noise, growing with the distance from the origin:
    s_i = s0_i + growth * (x1^2 + x2^2)."""
    p = NOISY_DUFFING
    grow = p["noise_growth"] * np.sum(x * x, axis=1, keepdims=True)
    return np.asarray(p["noise"])[None, :] + grow


def noisy_duffing_step(x: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """x+ = Phi(x) + diag(s(x)) w, w ~ N(0, I): the 0.2 s flow map of :func:`noisy_duffing_rhs` plus Gaussian noise
    with the standard deviations of :func:`noisy_duffing_std`."""
    mean = autonomous_step(noisy_duffing_rhs, x, NOISY_DUFFING["dt"])
    return mean + noisy_duffing_std(x) * rng.standard_normal(x.shape)

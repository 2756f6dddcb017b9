"""Is my controller stable? A discrete-time LQR loop built with python-control, checked by certify.

    pip install -e ".[control]"
    python examples/lqr_loop.py

The plant is a double integrator sampled at 0.1 s (python-control ``c2d``); the controller is the LQR gain as a
torch module u = -K x, saturated at |u| <= 1. On the box [-0.35, 0.35]^2 the input does not saturate
(|K x| <= 0.894), and the Euclidean norm of the loop matrix A - B K is 1.00000002 > 1, so the plain 2-norm
check is falsified; the loop is stable nonetheless (spectral radius 0.917), and the stability check certifies it
in a metric P that it finds: one equilibrium, and every trajectory from the reported ellipsoid converges to it at
the reported rate. On [-1, 1]^2 the input saturates, the loop there is the open double integrator (spectral
radius exactly 1), and the same check answers unknown, naming that refutation.
"""

from __future__ import annotations

import control
import numpy as np
import torch

import certify


def main() -> int:
    plant = control.c2d(control.ss([[0.0, 1.0], [0.0, 0.0]], [[0.0], [1.0]], np.eye(2), np.zeros((2, 1))), 0.1)
    k, _, _ = control.dlqr(plant, np.eye(2), np.eye(1))
    policy = torch.nn.Linear(2, 1, bias=False, dtype=torch.float64)
    with torch.no_grad():
        policy.weight.copy_(torch.as_tensor(-k))
    loop = certify.closed_loop(plant, controller=policy, u_min=[-1.0], u_max=[1.0])
    a_cl = plant.A - plant.B @ k
    print(f"||A - B K||_2 = {np.linalg.norm(a_cl, 2):.9f}, spectral radius {max(abs(np.linalg.eigvals(a_cl))):.4f}")

    box = certify.Box([-0.35, -0.35], [0.35, 0.35])
    plain = certify.verify(loop, box, ["contraction"])
    print(f"contraction in the 2-norm: {plain.results[0].verdict.value} ({plain.results[0].reason[:90]}...)")
    report = certify.verify(loop, box, ["stability"], certify.VerifyConfig(metric="auto", timeout=60))
    result = report.results[0]
    print(f"stability with a found metric: {result.verdict.value}")
    print(result.reason)
    return 0 if result.verdict is certify.Verdict.CERTIFIED else 1


if __name__ == "__main__":
    raise SystemExit(main())

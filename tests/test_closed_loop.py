"""certify.closed_loop: plants as arrays or python-control StateSpace, controllers as ONNX, Network or torch."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from certify.errors import SystemFileError
from certify.importers.closed_loop import closed_loop
from certify.ir.network import Network

A = np.array([[1.0, 0.1], [0.0, 1.0]])
B = np.array([[0.005], [0.1]])


def _lqr_gain() -> np.ndarray:
    p = np.eye(2)
    for _ in range(2000):  # discrete Riccati iteration, Q = I, R = 1
        k = np.linalg.solve(1.0 + B.T @ p @ B, B.T @ p @ A)
        p = np.eye(2) + A.T @ p @ (A - B @ k)
    return k


def test_arrays_and_a_network_compose_to_the_simulated_loop(random_net):
    pi = random_net(0, 2, (5,), n_out=1)
    net = closed_loop(A, B, pi, u_min=[-1.0], u_max=[1.0])
    x = np.random.default_rng(1).uniform(-2, 2, size=(50, 2))
    want = x @ A.T + np.clip(pi.forward(x), -1, 1) @ B.T
    np.testing.assert_allclose(net.forward(x), want, rtol=0, atol=1e-12)


def test_a_discrete_state_space_is_read_and_a_continuous_one_refused():
    control = pytest.importorskip("control")
    k = _lqr_gain()
    pi = Network((), -k, np.zeros(1))
    net = closed_loop(control.ss(A, B, np.eye(2), np.zeros((2, 1)), 0.1), controller=pi)
    x = np.array([0.3, -0.2])
    np.testing.assert_allclose(net.forward(x), (A - B @ k) @ x, atol=1e-12)
    with pytest.raises(SystemFileError, match="continuous-time.*c2d"):
        closed_loop(control.ss(A - np.eye(2), B, np.eye(2), np.zeros((2, 1))), controller=pi)


def test_a_torch_controller_is_exported_and_checked():
    torch.manual_seed(0)
    module = torch.nn.Sequential(torch.nn.Linear(2, 4), torch.nn.ReLU(), torch.nn.Linear(4, 1)).double()
    net = closed_loop(A, B, module, u_min=[-0.5], u_max=[0.5])
    x = np.random.default_rng(2).uniform(-1, 1, size=(20, 2))
    with torch.no_grad():
        u = module(torch.from_numpy(x)).numpy()
    np.testing.assert_allclose(net.forward(x), x @ A.T + np.clip(u, -0.5, 0.5) @ B.T, atol=1e-6)


@pytest.mark.parametrize("kwargs, needle", [
    (dict(a=A, b=None, controller=None), "B is missing"),
    (dict(a=A, b=B, controller=None), "controller is missing"),
    (dict(a=A, b=np.ones((3, 1)), controller=Network((), np.ones((1, 3)), np.zeros(1))), "shapes"),
    (dict(a=A, b=B, controller=42), "controller must be"),
    (dict(a=A, b=B, controller=Network((), np.ones((1, 2)), np.zeros(1)), u_min=[-1.0]), "u_min and u_max"),
])
def test_misuse_is_a_clear_error(kwargs, needle):
    with pytest.raises(SystemFileError, match=needle):
        closed_loop(**kwargs)


def test_the_readme_lqr_example_certifies_its_loop(capsys):
    """examples/lqr_loop.py, as the README runs it: python-control plant, torch LQR policy, stability in a metric."""
    import importlib.util
    from pathlib import Path

    pytest.importorskip("control")
    path = Path(__file__).resolve().parents[1] / "examples" / "lqr_loop.py"
    spec = importlib.util.spec_from_file_location("lqr_loop", path)
    example = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(example)
    assert example.main() == 0
    out = capsys.readouterr().out
    assert "contraction in the 2-norm: falsified" in out and "stability with a found metric: certified" in out

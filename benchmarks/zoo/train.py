"""Train the benchmark zoo (CPU, torch, seeded) and write the ONNX files, box files and system files next to this
script.

    python benchmarks/zoo/train.py                # every model (about a minute in all on 2 cores)
    python benchmarks/zoo/train.py two_tank_svd   # one or more by name

Models (see README.md for the expected verdicts):

* ``two_tank_plain`` / ``two_tank_svd``: neural state-space models x+ = f(x, u) of the two-tank system (2 states,
  2 inputs; ONNX inputs ``x`` and ``u``), 4-16-16-2 ReLU. The ``_svd`` variant factorises every weight as
  W = U diag(s) V^T (U, V with orthonormal columns from a QR factorisation, s = s_max - (s_max - s_min) sigmoid(p)
  in [0.2, 0.98]) as in the talk, so the product of layer norms is below 1.
* ``cstr_plain`` / ``cstr_svd``: the same for the exothermic CSTR (2 states, 1 input; one concatenated ONNX input).
* ``double_integrator``: a 2-5-5-1 ReLU controller imitating a saturated LQR gain, closed loop in
  ``double_integrator.system.yaml`` with u clipped to [-1, 1].
* ``dcdc``: a 2-8-8-1 ReLU controller imitating a saturated LQR gain around an operating point of the DC-DC
  converter, u clipped to [0, 1] in ``dcdc.system.yaml``.
* ``contracting_residual_tanh``: x+ = x + h net(x) (h = 0.1, tanh 2-16-16-2) of a contracting ODE.
* ``duffing_gelu``: x+ = net(x) (GELU 2-16-16-2), the 0.2 s flow map of a damped Duffing oscillator.
* ``noisy_duffing_dmm``: a deep Markov model x+ = K(x) + diag(s(x)) w of a noisy, well-damped Duffing oscillator:
  two ONNX outputs, ``mean`` (K(x) = x + 0.2 net(x), tanh 2-16-16-2, fitted to the flow map, the conditional mean)
  and ``std`` (s, tanh 2-8-2, fitted by the Gaussian likelihood of sampled steps);
  ``noisy_duffing_dmm.box.yaml`` names the heads.

The training data are one-step pairs (x, u) -> x+ sampled uniformly over each model's box (plus a margin) and
simulated with :mod:`plants`; every fit prints its final mean squared error.
"""

from __future__ import annotations

import sys
import time
import warnings
from pathlib import Path

import numpy as np
import scipy.linalg
import torch
from torch import nn

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

import plants  # noqa: E402

OPSET = 17


# --------------------------------------------------------------------------- building blocks
class SVDLinear(nn.Module):
    """y = W x + b with W = U diag(s) V^T, s in [s_min, s_max] (the talk's SVD factorisation)."""

    def __init__(self, n_in: int, n_out: int, s_min: float, s_max: float) -> None:
        super().__init__()
        k = min(n_in, n_out)
        self.pu = nn.Parameter(torch.randn(n_out, k))
        self.pv = nn.Parameter(torch.randn(n_in, k))
        self.ps = nn.Parameter(torch.zeros(k))
        self.bias = nn.Parameter(torch.zeros(n_out))
        self.s_min, self.s_max = s_min, s_max

    def weight(self) -> torch.Tensor:
        u, _ = torch.linalg.qr(self.pu)
        v, _ = torch.linalg.qr(self.pv)
        s = self.s_max - (self.s_max - self.s_min) * torch.sigmoid(self.ps)
        return u @ torch.diag(s) @ v.T

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x @ self.weight().T + self.bias

    def frozen(self) -> nn.Linear:
        """A plain nn.Linear with the current W and b (for export)."""
        w = self.weight().detach()
        lin = nn.Linear(w.shape[1], w.shape[0])
        with torch.no_grad():
            lin.weight.copy_(w)
            lin.bias.copy_(self.bias.detach())
        return lin


def mlp(sizes, activation, svd: tuple[float, float] | None = None) -> nn.Sequential:
    mods = []
    for i in range(len(sizes) - 1):
        mods.append(SVDLinear(sizes[i], sizes[i + 1], *svd) if svd else nn.Linear(sizes[i], sizes[i + 1]))
        if i < len(sizes) - 2:
            mods.append(activation())
    return nn.Sequential(*mods)


def freeze(seq: nn.Sequential) -> nn.Sequential:
    return nn.Sequential(*(m.frozen() if isinstance(m, SVDLinear) else m for m in seq))


class StateSpace(nn.Module):
    """x+ = net([x, u]); ``two_inputs`` exports x and u as separate ONNX inputs (else one concatenated input)."""

    def __init__(self, net: nn.Sequential, two_inputs: bool) -> None:
        super().__init__()
        self.net, self.two_inputs = net, two_inputs

    def forward(self, x: torch.Tensor, u: torch.Tensor | None = None) -> torch.Tensor:
        return self.net(torch.cat([x, u], dim=-1) if self.two_inputs else x)


class Residual(nn.Module):
    """x+ = x + h net(x)."""

    def __init__(self, net: nn.Sequential, h: float) -> None:
        super().__init__()
        self.net, self.h = net, h

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.h * self.net(x)


def fit(model: nn.Module, inputs: tuple[np.ndarray, ...], target: np.ndarray, steps: int, lr: float) -> float:
    """Full-batch Adam on the mean squared error, cosine-decayed learning rate; returns the final MSE."""
    xs = tuple(torch.tensor(a, dtype=torch.float32) for a in inputs)
    y = torch.tensor(target, dtype=torch.float32)
    opt = torch.optim.Adam(model.parameters(), lr=lr)
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, steps)
    for _ in range(steps):
        opt.zero_grad()
        loss = torch.mean((model(*xs) - y) ** 2)
        loss.backward()
        opt.step()
        sched.step()
    with torch.no_grad():
        return float(torch.mean((model(*xs) - y) ** 2))


def export(model: nn.Module, n_inputs: tuple[int, ...], names: tuple[str, ...], path: Path) -> None:
    """Legacy TorchScript ONNX export (opset 17, float32, dynamic batch), checked with onnxruntime."""
    import onnxruntime as ort

    model.eval()
    args = tuple(torch.zeros(1, n) for n in n_inputs)
    axes = {name: {0: "batch"} for name in (*names, "x_next")}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(model, args, str(path), input_names=list(names), output_names=["x_next"],
                          dynamic_axes=axes, opset_version=OPSET, dynamo=False)
    sess = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    probe = tuple(np.random.default_rng(0).normal(size=(7, n)).astype(np.float32) for n in n_inputs)
    with torch.no_grad():
        want = model(*(torch.from_numpy(p) for p in probe)).numpy()
    got = sess.run(None, dict(zip(names, probe)))[0]
    if not np.allclose(got, want, atol=1e-5, rtol=1e-5):
        raise RuntimeError(f"{path}: onnxruntime disagrees with torch after export")


def uniform(rng: np.random.Generator, lower, upper, n: int) -> np.ndarray:
    lower, upper = np.asarray(lower, float), np.asarray(upper, float)
    return lower + (upper - lower) * rng.random((n, lower.size))


def widen(lower, upper, frac: float = 0.1):
    lower, upper = np.asarray(lower, float), np.asarray(upper, float)
    pad = frac * (upper - lower)
    return lower - pad, upper + pad


def write_box(path: Path, header: str, states: dict, inputs: dict | None = None) -> None:
    lines = [f"# {line}" for line in header.strip().splitlines()]
    lines.append("states:")
    lines += [f"  {k}: [{lo!r}, {hi!r}]" for k, (lo, hi) in states.items()]
    if inputs:
        lines.append("inputs:")
        lines += [f"  {k}: [{lo!r}, {hi!r}]" for k, (lo, hi) in inputs.items()]
    lines.append("norm: 2")
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")


def seed_all(seed: int) -> np.random.Generator:
    torch.manual_seed(seed)
    return np.random.default_rng(seed)


# --------------------------------------------------------------------------- neural state-space models
SVD_RANGE = (0.2, 0.98)
TANK_STATES = {"h1": (0.0, 1.0), "h2": (0.0, 1.0)}
TANK_INPUTS = {"pump": (0.0, 1.0), "valve": (0.0, 1.0)}
CSTR_STATES = {"c_a": (0.0, 0.8), "temp": (-0.4, 0.4)}
CSTR_INPUTS = {"coolant": (-1.0, 1.0)}


def _ssm(name: str, svd: bool, states: dict, inputs: dict, step, two_inputs: bool, seed: int) -> str:
    rng = seed_all(seed)
    n, m = len(states), len(inputs)
    lo, hi = widen([v[0] for v in (*states.values(), *inputs.values())],
                   [v[1] for v in (*states.values(), *inputs.values())], 0.05)
    xu = uniform(rng, lo, hi, 2048)
    target = step(xu[:, :n], xu[:, n:])
    net = mlp((n + m, 16, 16, n), nn.ReLU, SVD_RANGE if svd else None)
    model = StateSpace(net, two_inputs)
    inputs_ = (xu[:, :n], xu[:, n:]) if two_inputs else (xu,)
    mse = fit(model, inputs_, target, 2000, 1e-2)
    frozen = StateSpace(freeze(net), two_inputs)
    if two_inputs:
        export(frozen, (n, m), ("x", "u"), HERE / f"{name}.onnx")
    else:
        export(frozen, (n + m,), ("xu",), HERE / f"{name}.onnx")
    return f"one-step MSE {mse:.3g}"


def two_tank(svd: bool) -> str:
    name = "two_tank_svd" if svd else "two_tank_plain"
    out = _ssm(name, svd, TANK_STATES, TANK_INPUTS, plants.two_tank_step, True, 11)
    write_box(HERE / "two_tank.box.yaml",
              "Two-tank system: tank levels (scaled to [0, 1]) and the two inputs (pump, valve) over [0, 1].",
              TANK_STATES, TANK_INPUTS)
    return out


def cstr(svd: bool) -> str:
    name = "cstr_svd" if svd else "cstr_plain"
    out = _ssm(name, svd, CSTR_STATES, CSTR_INPUTS, plants.cstr_step, False, 12)
    write_box(HERE / "cstr.box.yaml",
              "Exothermic CSTR, scaled: c_a = C_A [mol/L], temp = (T - 350 K) / 25 K, coolant = (T_c - 300 K) / 5 K.\n"
              "T in [340, 360] K around the unstable steady state (C_A, T) = (0.5, 350) at T_c = 300 K (above it the\n"
              "reaction runs away within one sample period).",
              CSTR_STATES, CSTR_INPUTS)
    return out


# --------------------------------------------------------------------------- closed loops
def lqr(A, B, Q, R) -> np.ndarray:
    A, B = np.asarray(A), np.asarray(B)
    X = scipy.linalg.solve_discrete_are(A, B, Q, R)
    return np.linalg.solve(R + B.T @ X @ B, B.T @ X @ A)


def _controller(name: str, widths, train_lo, train_hi, policy, seed: int) -> str:
    rng = seed_all(seed)
    x = uniform(rng, train_lo, train_hi, 2048)
    net = mlp((2, *widths, 1), nn.ReLU)
    mse = fit(net, (x,), policy(x), 4000, 1e-2)
    export(net, (2,), ("x",), HERE / f"{name}_controller.onnx")
    return f"imitation MSE {mse:.3g}"


def _system_file(name: str, plant: dict, u_min: float, u_max: float, header: str) -> None:
    def rows(mat):
        return "[" + ", ".join("[" + ", ".join(repr(float(v)) for v in r) + "]" for r in mat) + "]"

    text = (
        "\n".join(f"# {line}" for line in header.strip().splitlines()) + "\n"
        f"plant:\n  A: {rows(plant['A'])}\n  B: {rows(plant['B'])}\n"
        f"controller:\n  onnx: {name}_controller.onnx\n  u_min: [{u_min!r}]\n  u_max: [{u_max!r}]\n"
    )
    (HERE / f"{name}.system.yaml").write_text(text, encoding="utf-8")


def double_integrator() -> str:
    A, B = plants.DOUBLE_INTEGRATOR["A"], plants.DOUBLE_INTEGRATOR["B"]
    K = lqr(A, B, np.eye(2), np.eye(1))

    def policy(x):
        return np.clip(-x @ K.T, -1.0, 1.0)

    out = _controller("double_integrator", (5, 5), [-4.0, -3.0], [4.0, 3.0], policy, 21)
    _system_file("double_integrator", plants.DOUBLE_INTEGRATOR, -1.0, 1.0,
                 f"Double integrator x+ = A x + B u, u = clip(pi(x), -1, 1); pi (2-5-5-1 ReLU) imitates the\n"
                 f"saturated LQR gain u = clip(-K x, -1, 1), K = {np.round(K, 4).tolist()} (Q = I, R = 1).")
    write_box(HERE / "double_integrator.box.yaml",
              "Initial set of the double-integrator benchmark (Reach-SDP, Hu et al. 2020): [2.5, 3] x [-0.25, 0.25].",
              {"position": (2.5, 3.0), "velocity": (-0.25, 0.25)})
    write_box(HERE / "double_integrator_origin.box.yaml",
              "A box around the origin, where the controller is unsaturated: A* is close to A - B K.",
              {"position": (-0.5, 0.5), "velocity": (-0.5, 0.5)})
    return out


DCDC_U_EQ = 0.4


def dcdc() -> str:
    A, B = np.array(plants.DCDC["A"]), np.array(plants.DCDC["B"])
    x_eq = np.linalg.solve(np.eye(2) - A, B[:, 0] * DCDC_U_EQ)
    K = lqr(A, B, np.diag([1 / 0.2**2, 1 / 7.0**2]), np.eye(1))

    def policy(x):
        return np.clip(DCDC_U_EQ - (x - x_eq) @ K.T, 0.0, 1.0)

    out = _controller("dcdc", (8, 8), [-0.05, -1.0], [0.25, 8.0], policy, 22)
    _system_file("dcdc", plants.DCDC, 0.0, 1.0,
                 f"DC-DC converter x+ = A x + B u (x = inductor current, capacitor voltage), u = clip(pi(x), 0, 1);\n"
                 f"pi (2-8-8-1 ReLU) imitates u = clip({DCDC_U_EQ} - K (x - x_eq), 0, 1), x_eq = "
                 f"{np.round(x_eq, 4).tolist()},\nK = {np.round(K, 4).tolist()} "
                 f"(LQR, Q = diag(1/0.2^2, 1/7^2), R = 1).")
    write_box(HERE / "dcdc.box.yaml", "DC-DC converter: current in [0, 0.2], voltage in [0, 7] (see README.md).",
              {"current": (0.0, 0.2), "voltage": (0.0, 7.0)})
    return out


# --------------------------------------------------------------------------- autonomous smooth models
def contracting_residual_tanh() -> str:
    rng = seed_all(31)
    h = 0.1
    x = uniform(rng, *widen([-2.0, -2.0], [2.0, 2.0]), 2048)
    target = plants.autonomous_step(plants.contracting_rhs, x, h)
    model = Residual(mlp((2, 16, 16, 2), nn.Tanh), h)
    mse = fit(model, (x,), target, 3000, 1e-2)
    export(model, (2,), ("x",), HERE / "contracting_residual_tanh.onnx")
    write_box(HERE / "contracting_residual_tanh.box.yaml",
              "Residual tanh model x+ = x + 0.1 net(x) of dx1 = -x1 - x1^3/3 + 0.5 x2, dx2 = -0.5 x1 - x2.",
              {"x1": (-2.0, 2.0), "x2": (-2.0, 2.0)})
    return f"one-step MSE {mse:.3g}"


def duffing_gelu() -> str:
    rng = seed_all(41)
    x = uniform(rng, *widen([-1.5, -1.5], [1.5, 1.5]), 2048)
    target = plants.autonomous_step(plants.duffing_rhs, x, 0.2)
    model = mlp((2, 16, 16, 2), nn.GELU)
    mse = fit(model, (x,), target, 3000, 1e-2)
    export(model, (2,), ("x",), HERE / "duffing_gelu.onnx")
    write_box(HERE / "duffing_gelu.box.yaml",
              "GELU model x+ = net(x) of the 0.2 s flow map of dx1 = x2, dx2 = -x1 - x1^3 - 0.5 x2.",
              {"x1": (-1.5, 1.5), "x2": (-1.5, 1.5)})
    return f"one-step MSE {mse:.3g}"


class MeanStd(nn.Module):
    """(K(x), s(x)): the two heads of a deep Markov model with a diagonal noise, x+ = K(x) + diag(s(x)) w."""

    def __init__(self, mean: nn.Module, std: nn.Module) -> None:
        super().__init__()
        self.mean, self.std = mean, std

    def forward(self, x: torch.Tensor):
        return self.mean(x), self.std(x)


def fit_gaussian(model: MeanStd, x: np.ndarray, y: np.ndarray, steps: int, lr: float) -> tuple[float, float]:
    """Full-batch Adam on the Gaussian negative log-likelihood sum_j log|s_j| + (y_j - K_j)^2 / (2 s_j^2) (the
    sign of s does not matter: the covariance is s^2); returns (mean MSE, NLL) at the end."""
    xs, ys = torch.tensor(x, dtype=torch.float32), torch.tensor(y, dtype=torch.float32)
    opt = torch.optim.Adam(model.parameters(), lr=lr)
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, steps)

    def nll():
        k, s = model(xs)
        var = s * s + 1e-8
        return torch.mean(0.5 * torch.log(var) + 0.5 * (ys - k) ** 2 / var), k

    for _ in range(steps):
        opt.zero_grad()
        loss, _ = nll()
        loss.backward()
        opt.step()
        sched.step()
    with torch.no_grad():
        loss, k = nll()
        return float(torch.mean((k - ys) ** 2)), float(loss)


def export_heads(model: nn.Module, n_in: int, names: tuple[str, ...], path: Path) -> None:
    """Legacy TorchScript ONNX export of a module with several outputs (opset 17, float32, dynamic batch), checked
    with onnxruntime output by output."""
    import onnxruntime as ort

    model.eval()
    axes = {name: {0: "batch"} for name in ("x", *names)}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(model, (torch.zeros(1, n_in),), str(path), input_names=["x"], output_names=list(names),
                          dynamic_axes=axes, opset_version=OPSET, dynamo=False)
    sess = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    probe = np.random.default_rng(0).normal(size=(7, n_in)).astype(np.float32)
    with torch.no_grad():
        want = [t.numpy() for t in model(torch.from_numpy(probe))]
    for got, ref in zip(sess.run(None, {"x": probe}), want):
        if not np.allclose(got, ref, atol=1e-5, rtol=1e-5):
            raise RuntimeError(f"{path}: onnxruntime disagrees with torch after export")


DMM_BOX = {"x1": (-1.0, 1.0), "x2": (-1.0, 1.0)}
# the metric P of the contraction certificate, as `certify --metric auto` found it (rounded): given in the box file,
# so that the zoo's verdicts do not hang on the metric search's sampling
DMM_METRIC = [[3.3, 1.26], [1.26, 1.69]]


def noisy_duffing_dmm() -> str:
    rng = seed_all(51)
    x = uniform(rng, *widen([v[0] for v in DMM_BOX.values()], [v[1] for v in DMM_BOX.values()]), 8192)
    y = plants.noisy_duffing_step(x, rng)
    flow = plants.autonomous_step(plants.noisy_duffing_rhs, x, plants.NOISY_DUFFING["dt"])
    model = MeanStd(Residual(mlp((2, 16, 16, 2), nn.Tanh), plants.NOISY_DUFFING["dt"]), mlp((2, 8, 2), nn.Tanh))
    # the mean head is fitted to the conditional mean E[x+ | x] (the flow map: the limit of many samples per x, and a
    # smoother fit than the noisy samples give); then the noise head, with the mean frozen, by the likelihood
    fit(model.mean, (x,), flow, 3000, 1e-2)
    for p in model.mean.parameters():
        p.requires_grad_(False)
    with torch.no_grad():  # the noise head starts at the residuals' scale
        model.std[-1].weight.mul_(0.01)
        model.std[-1].bias.fill_(float(np.std(y - model.mean(torch.tensor(x, dtype=torch.float32)).numpy())))
    mse, nll = fit_gaussian(model, x, y, 2000, 5e-3)
    export_heads(model, 2, ("mean", "std"), HERE / "noisy_duffing_dmm.onnx")
    path = HERE / "noisy_duffing_dmm.box.yaml"
    write_box(path, "Deep Markov model x+ = K(x) + diag(s(x)) w of the noisy Duffing oscillator dx1 = x2,\n"
              "dx2 = -x1 - 0.3 x1^3 - 1.5 x2 (0.2 s steps, noise std 0.02 / 0.03 + 0.03 |x|^2). The heads name its\n"
              "two ONNX outputs; the metric P is the one --metric auto finds (the flow rotates: the Euclidean norm "
              "does not contract).",
              DMM_BOX)
    with path.open("a", encoding="utf-8") as fh:
        fh.write(f"metric: {DMM_METRIC!r}\nheads:\n  mean: mean\n  noise: std\n  form: std\n")
    return f"mean MSE {mse:.3g}, NLL {nll:.3g}"


TRAINERS = {
    "two_tank_plain": lambda: two_tank(False),
    "two_tank_svd": lambda: two_tank(True),
    "cstr_plain": lambda: cstr(False),
    "cstr_svd": lambda: cstr(True),
    "double_integrator": double_integrator,
    "dcdc": dcdc,
    "contracting_residual_tanh": contracting_residual_tanh,
    "duffing_gelu": duffing_gelu,
    "noisy_duffing_dmm": noisy_duffing_dmm,
}


def main(argv: list[str]) -> int:
    torch.set_num_threads(1)
    names = argv or list(TRAINERS)
    unknown = [n for n in names if n not in TRAINERS]
    if unknown:
        print(f"unknown model {unknown[0]}; choose from {', '.join(TRAINERS)}", file=sys.stderr)
        return 2
    for name in names:
        start = time.perf_counter()
        summary = TRAINERS[name]()
        print(f"{name:28s} {summary:28s} {time.perf_counter() - start:6.1f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

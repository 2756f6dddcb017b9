"""PyTorch modules through both exporters (TorchScript and dynamo) and through from_torch, compared with the module
in float64; residual modules; the check against the module can fail."""

from __future__ import annotations

import contextlib
import io
import warnings

import numpy as np
import pytest
import torch
from torch import nn

from certify.errors import ModelError, ModelMismatchError, UnsupportedOperatorError
from certify.importers import check_agreement_torch, from_torch, load_onnx
from certify.ir.activations import ActivationKind
from certify.ir.network import Layer, Network

ACTIVATIONS = {
    "relu": (lambda: nn.ReLU(), ActivationKind.RELU),
    "leaky_relu": (lambda: nn.LeakyReLU(0.2), ActivationKind.LEAKY_RELU),
    "prelu": (lambda n: nn.PReLU(n), ActivationKind.PRELU),
    "prelu_shared": (lambda: nn.PReLU(), ActivationKind.PRELU),
    "elu": (lambda: nn.ELU(0.5), ActivationKind.ELU),
    "selu": (lambda: nn.SELU(), ActivationKind.SELU),
    "gelu": (lambda: nn.GELU(), ActivationKind.GELU),
    "gelu_tanh": (lambda: nn.GELU(approximate="tanh"), ActivationKind.GELU_TANH),
    "silu": (lambda: nn.SiLU(), ActivationKind.SILU),
    "softplus": (lambda: nn.Softplus(), ActivationKind.SOFTPLUS),
    "softplus_beta": (lambda: nn.Softplus(beta=2.0), ActivationKind.SOFTPLUS),
    "tanh": (lambda: nn.Tanh(), ActivationKind.TANH),
    "sigmoid": (lambda: nn.Sigmoid(), ActivationKind.SIGMOID),
    "hardtanh": (lambda: nn.Hardtanh(-0.5, 0.8), ActivationKind.CLIP),
    "relu6": (lambda: nn.ReLU6(), ActivationKind.CLIP),
    "hardswish": (lambda: nn.Hardswish(), ActivationKind.HARDSWISH),
    "hardsigmoid": (lambda: nn.Hardsigmoid(), ActivationKind.CLIP),
}
# The dynamo exporter takes about a second per module: a representative subset runs by default, all with -m slow.
DYNAMO_DEFAULT = {"gelu", "softplus_beta", "prelu"}


def make_mlp(name: str, seed: int = 0) -> nn.Module:
    torch.manual_seed(seed)
    make, _ = ACTIVATIONS[name]
    if name != "prelu":
        make = (lambda f: lambda n: f())(make)
    m = nn.Sequential(nn.Linear(3, 6), make(6), nn.Linear(6, 5), make(5), nn.Linear(5, 2))
    with torch.no_grad():
        for p in m.parameters():  # PReLU slopes and biases away from their defaults
            p.add_(0.2 * torch.randn_like(p))
    return m


def module_f64(module: nn.Module, x: np.ndarray) -> np.ndarray:
    import copy

    m = copy.deepcopy(module).double().eval()
    with torch.no_grad():
        return m(torch.from_numpy(x)).numpy()


def check_net(net: Network, module: nn.Module, kind: ActivationKind, atol: float = 1e-7) -> None:
    """IR vs the module in float64. Exporters write float attributes (HardSigmoid's 1/6) in float32: hence 1e-7."""
    assert [a.kind for a in net.activations] == [kind, kind]
    rng = np.random.default_rng(0)
    for s in (0.3, 1.0, 4.0):
        x = s * rng.standard_normal((64, 3))
        np.testing.assert_allclose(net.forward(x), module_f64(module, x), rtol=1e-6, atol=atol)
        a, b = net.pwa(x)
        np.testing.assert_allclose(np.einsum("bij,bj->bi", a, x) + b, net.forward(x), rtol=0, atol=1e-10)


@pytest.mark.parametrize("name", sorted(ACTIVATIONS))
def test_from_torch_torchscript(name):
    module = make_mlp(name)
    net = from_torch(module, torch.zeros(4, 3), exporter="torchscript")
    check_net(net, module, ACTIVATIONS[name][1])


@pytest.mark.parametrize(
    "name",
    [n if n in DYNAMO_DEFAULT else pytest.param(n, marks=pytest.mark.slow) for n in sorted(ACTIVATIONS)],
)
def test_from_torch_dynamo(name):
    module = make_mlp(name)
    net = from_torch(module, torch.zeros(4, 3), exporter="dynamo")
    check_net(net, module, ACTIVATIONS[name][1])


@pytest.mark.parametrize("name", ["gelu", "silu", "hardswish", "hardsigmoid", "prelu", "relu6"])
def test_float32_onnx_file_from_torchscript_exporter(tmp_path, name):
    """The usual user path: torch.onnx.export to a float32 file, then load_onnx."""
    module = make_mlp(name).eval()
    path = tmp_path / "m.onnx"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(module, (torch.zeros(1, 3),), str(path), dynamo=False, opset_version=13,
                          input_names=["x"], dynamic_axes={"x": {0: "batch"}})
    net = load_onnx(path)
    check_net(net, module, ACTIVATIONS[name][1], atol=1e-5)


@pytest.mark.slow
@pytest.mark.parametrize("name", ["gelu", "silu", "softplus_beta"])
def test_float32_onnx_file_from_dynamo_exporter(tmp_path, name):
    module = make_mlp(name).eval()
    path = tmp_path / "m.onnx"
    with warnings.catch_warnings(), contextlib.redirect_stdout(io.StringIO()):
        warnings.simplefilter("ignore")
        torch.onnx.export(module, (torch.zeros(1, 3),), str(path), dynamo=True)
    net = load_onnx(path)
    check_net(net, module, ACTIVATIONS[name][1], atol=1e-5)


class Residual(nn.Module):
    def __init__(self):
        super().__init__()
        torch.manual_seed(1)
        self.net = nn.Sequential(nn.Linear(3, 8), nn.Tanh(), nn.Linear(8, 3))

    def forward(self, x):
        return x + 0.1 * self.net(x)


def test_residual_module_gives_identity_skip():
    module = Residual()
    net = from_torch(module, torch.zeros(1, 3))
    np.testing.assert_array_equal(net.skip, np.eye(3))
    w_last = module.net[2].weight.detach().double().numpy()
    np.testing.assert_allclose(net.out_weight, 0.1 * w_last, rtol=1e-15)
    x = np.random.default_rng(2).standard_normal((50, 3))
    np.testing.assert_allclose(net.forward(x), module_f64(module, x), rtol=1e-12, atol=1e-12)


class PlantController(nn.Module):
    """x+ = A x + B u(x, w) with an exogenous input w: two inputs, linear skip A."""

    def __init__(self):
        super().__init__()
        torch.manual_seed(2)
        self.a = nn.Parameter(torch.randn(2, 2))
        self.b = nn.Parameter(torch.randn(2, 1))
        self.pi = nn.Sequential(nn.Linear(3, 5), nn.ReLU(), nn.Linear(5, 1))

    def forward(self, x, w):
        return x @ self.a.T + self.pi(torch.cat([x, w], dim=1)) @ self.b.T


def test_two_input_module():
    module = PlantController()
    net = from_torch(module, (torch.zeros(1, 2), torch.zeros(1, 1)))
    assert net.n_states == 2 and net.n_in == 3
    np.testing.assert_allclose(net.skip[:, :2], module.a.detach().double().numpy(), rtol=1e-15)
    np.testing.assert_array_equal(net.skip[:, 2], 0.0)
    x = np.random.default_rng(3).standard_normal((20, 3))
    m = module.double()
    with torch.no_grad():
        ref = m(torch.from_numpy(x[:, :2]), torch.from_numpy(x[:, 2:])).numpy()
    np.testing.assert_allclose(net.forward(x), ref, rtol=1e-12, atol=1e-12)


def test_vector_example_input_and_train_mode_module():
    """A 1-D example input works; a module left in train mode is exported in eval mode (Dropout off, BN stats)."""
    torch.manual_seed(4)
    module = nn.Sequential(nn.Linear(3, 4), nn.BatchNorm1d(4), nn.ReLU(), nn.Dropout(0.5), nn.Linear(4, 2))
    module(torch.randn(16, 3))  # populate running statistics
    module.train()
    net = from_torch(module, torch.zeros(4, 3))
    assert net.widths == (4,)
    x = np.random.default_rng(4).standard_normal((30, 3))
    np.testing.assert_allclose(net.forward(x), module_f64(module.eval(), x), rtol=1e-12, atol=1e-12)
    lin = nn.Sequential(nn.Linear(3, 4), nn.Tanh(), nn.Linear(4, 3))
    net1 = from_torch(lin, torch.zeros(3))
    np.testing.assert_allclose(net1.forward(x), module_f64(lin, x), rtol=1e-12, atol=1e-12)


def test_agreement_with_module_can_fail():
    module = make_mlp("tanh")
    net = from_torch(module, torch.zeros(1, 3))
    pts = np.random.default_rng(5).standard_normal((40, 3))
    assert check_agreement_torch(net, module, pts) < 1e-12
    wrong = Network(
        (Layer(net.layers[0].weight, net.layers[0].bias + 1e-4, net.layers[0].activation), *net.layers[1:]),
        net.out_weight, net.out_bias,
    )
    with pytest.raises(ModelMismatchError, match=r"<torch Sequential>: the imported network disagrees with the "
                                                 r"PyTorch module"):
        check_agreement_torch(wrong, module, pts)


class Bilinear(nn.Module):
    def __init__(self):
        super().__init__()
        self.a = nn.Linear(3, 3)
        self.b = nn.Linear(3, 3)

    def forward(self, x):
        return self.a(x) * self.b(x)


class Softmaxed(nn.Module):
    def __init__(self):
        super().__init__()
        self.a = nn.Linear(3, 3)

    def forward(self, x):
        return torch.softmax(self.a(x), dim=-1)


def test_unsupported_modules_are_refused_with_a_clear_message():
    with pytest.raises(UnsupportedOperatorError, match=r"<torch Bilinear>: node .*\(Mul\): multiplies two "
                                                       r"input-dependent tensors"):
        from_torch(Bilinear(), torch.zeros(1, 3))
    with pytest.raises(UnsupportedOperatorError, match=r"<torch Softmaxed>: node .*\(Softmax\): operator Softmax"):
        from_torch(Softmaxed(), torch.zeros(1, 3))
    with pytest.raises(ModelError, match="example input of shape"):
        from_torch(nn.Linear(3, 3), torch.zeros(1, 1, 3))

"""The Network IR: a float64 feed-forward net used as a dynamical system.

    h_0 = x;  z_l = W_l h_l + b_l;  h_{l+1} = sigma_l(z_l)  (l = 0 .. L-1);  f(x) = W_L h_L + b_L + S x

``x`` stacks the states first and the exogenous inputs after them (``n_states`` of the ``n_in`` coordinates are
states). Every importer produces this object; every analysis consumes it. Arrays are float64 and read-only.
"""

from __future__ import annotations

import numbers
from dataclasses import dataclass, field

import numpy as np
import torch

from ..errors import ModelError
from . import kernels
from .activations import Activation, ActivationKind


def _frozen(a, shape_name: str, ndim: int) -> np.ndarray:
    """A read-only float64 copy of ``a`` with ``ndim`` dimensions: TypeError for text or non-numeric data,
    ModelError for a wrong or ragged shape, empty axes or non-finite entries."""
    if a is None or isinstance(a, (str, bytes, dict, set)):
        raise TypeError(f"{shape_name} must be an array of numbers, got {type(a).__name__}")
    if isinstance(a, torch.Tensor):
        a = a.detach().cpu().numpy()
    try:
        arr = np.asarray(a)
    except (ValueError, TypeError):  # ragged nested lists
        raise ModelError(f"{shape_name} must be a rectangular array of numbers (rows of one length)") from None
    if arr.dtype.kind not in "iuf":
        raise TypeError(f"{shape_name} must hold real numbers, got an array of dtype {arr.dtype}")
    if arr.ndim != ndim:
        raise ModelError(f"{shape_name} must have {ndim} dimension(s), got shape {arr.shape}")
    if 0 in arr.shape:
        raise ModelError(f"{shape_name} has an empty axis (shape {arr.shape}); every layer needs at least one neuron")
    arr = np.array(arr, dtype=np.float64, copy=True)
    if not np.all(np.isfinite(arr)):
        raise ModelError(f"{shape_name} contains NaN or infinite entries")
    arr.setflags(write=False)
    return arr


def _count(n: int, what: str) -> str:
    return f"{n} {what}" + ("" if n == 1 else "s")


@dataclass(frozen=True, eq=False)
class Layer:
    """One hidden layer: ``h_next = activation(weight @ h + bias)``; weight (n_out, n_in), bias (n_out,)."""

    weight: np.ndarray
    bias: np.ndarray
    activation: Activation

    def __post_init__(self) -> None:
        object.__setattr__(self, "weight", _frozen(self.weight, "Layer: weight", 2))
        object.__setattr__(self, "bias", _frozen(self.bias, "Layer: bias", 1))
        if not isinstance(self.activation, Activation):
            raise TypeError(f"Layer: activation must be a certify.Activation (e.g. certify.ir.activations.relu()), "
                            f"got {self.activation!r}")
        if self.bias.shape[0] != self.weight.shape[0]:
            raise ModelError(f"layer bias has {self.bias.shape[0]} entries for a weight of shape {self.weight.shape}")
        if self.activation.kind is ActivationKind.PRELU and len(self.activation.slopes) not in (1, self.width):
            raise ModelError(f"PRelu has {len(self.activation.slopes)} slopes for a layer of width {self.width}")

    def __repr__(self) -> str:
        return f"Layer({self.weight.shape[1]} -> {self.width} {self.activation.describe()})"

    @property
    def width(self) -> int:
        return self.weight.shape[0]


@dataclass(frozen=True, eq=False)
class Network:
    """A feed-forward net with an output affine layer and an optional linear skip.

    Shapes: ``layers[l].weight`` (n_{l+1}, n_l); ``out_weight`` (n_out, n_L); ``out_bias`` (n_out,);
    ``skip`` (n_out, n_in) or None. ``n_states`` <= n_in: the first ``n_states`` inputs are states.
    """

    layers: tuple[Layer, ...]
    out_weight: np.ndarray
    out_bias: np.ndarray
    skip: np.ndarray | None = None
    n_states: int | None = None
    input_names: tuple[str, ...] = field(default=())

    def __post_init__(self) -> None:
        layers = self.layers
        if isinstance(layers, Layer) or not isinstance(layers, (tuple, list)):
            raise TypeError(f"Network: layers must be a tuple or list of Layer, got {type(layers).__name__}")
        odd = next((x for x in layers if not isinstance(x, Layer)), None)
        if odd is not None:
            raise TypeError(f"Network: every entry of layers must be a Layer, got {type(odd).__name__}")
        object.__setattr__(self, "layers", tuple(layers))
        object.__setattr__(self, "out_weight", _frozen(self.out_weight, "Network: out_weight", 2))
        object.__setattr__(self, "out_bias", _frozen(self.out_bias, "Network: out_bias", 1))
        n_in = self.layers[0].weight.shape[1] if self.layers else self.out_weight.shape[1]
        prev = n_in
        for i, layer in enumerate(self.layers):
            if layer.weight.shape[1] != prev:
                raise ModelError(f"layer {i} expects {layer.weight.shape[1]} inputs but receives {prev}")
            prev = layer.width
        if self.out_weight.shape[1] != prev:
            raise ModelError(f"output layer expects {self.out_weight.shape[1]} inputs but receives {prev}")
        if self.out_bias.shape[0] != self.out_weight.shape[0]:
            raise ModelError("output bias and output weight disagree in size")
        if self.skip is not None:
            object.__setattr__(self, "skip", _frozen(self.skip, "Network: skip", 2))
            if self.skip.shape != (self.n_out, n_in):
                raise ModelError(f"skip matrix has shape {self.skip.shape}, expected {(self.n_out, n_in)}")
        n_states = self.n_states
        if n_states is None:
            n_states = n_in
        elif not isinstance(n_states, numbers.Integral) or isinstance(n_states, (bool, np.bool_)):
            raise TypeError(f"Network: n_states must be an int or None, got {n_states!r}")
        n_states = int(n_states)
        if not 0 < n_states <= n_in:
            raise ModelError(f"n_states must be in 1..{n_in}, got {n_states}")
        object.__setattr__(self, "n_states", n_states)
        names = self.input_names
        if isinstance(names, (str, bytes)) or not isinstance(names, (tuple, list)):
            raise TypeError(f"Network: input_names must be a tuple of str, got {type(names).__name__}")
        if any(not isinstance(n, str) for n in names):
            raise TypeError(f"Network: input_names must be str, got {names!r}")
        object.__setattr__(self, "input_names", tuple(names))

    def __repr__(self) -> str:
        split = _count(self.n_states, "state") + (f", {_count(self.n_inputs, 'input')}" if self.n_inputs else "")
        return f"Network({self.describe()}, {split})"

    # ----------------------------------------------------------------- shape facts
    @property
    def n_in(self) -> int:
        return self.layers[0].weight.shape[1] if self.layers else self.out_weight.shape[1]

    @property
    def n_out(self) -> int:
        return self.out_weight.shape[0]

    @property
    def n_inputs(self) -> int:
        """Number of exogenous inputs (after the states)."""
        return self.n_in - self.n_states

    @property
    def widths(self) -> tuple[int, ...]:
        return tuple(layer.width for layer in self.layers)

    @property
    def activations(self) -> tuple[Activation, ...]:
        return tuple(layer.activation for layer in self.layers)

    @property
    def is_dynamics(self) -> bool:
        """True when the output has one entry per state, so x+ = f(x, u) makes sense."""
        return self.n_out == self.n_states

    @property
    def piecewise_linear_through_origin(self) -> bool:
        return all(a.piecewise_linear_through_origin for a in self.activations)

    @property
    def piecewise_linear(self) -> bool:
        return all(a.piecewise_linear for a in self.activations)

    def describe(self) -> str:
        sizes = "-".join(str(n) for n in (self.n_in, *self.widths, self.n_out))
        acts = sorted({a.describe() for a in self.activations}) or ["affine"]
        skip = " + skip" if self.skip is not None else ""
        return f"{sizes} {'/'.join(acts)}{skip}"

    # ----------------------------------------------------------------- float64 evaluation (numpy in, numpy out)
    def forward(self, x: np.ndarray) -> np.ndarray:
        """f(x) for x of shape (n_in,) or (B, n_in); returns (n_out,) or (B, n_out)."""
        return _apply_np(kernels.forward, self, x)

    def pwa(self, x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(A*(x), b*(x)) of shapes (B, n_out, n_in) and (B, n_out) (no batch axis for a single point)."""
        return _apply_np(kernels.pwa, self, x)

    def jacobian(self, x: np.ndarray) -> np.ndarray:
        """J(x) of shape (B, n_out, n_in) (no batch axis for a single point)."""
        return _apply_np(kernels.jacobian, self, x)

    def preactivations(self, x: np.ndarray) -> list[np.ndarray]:
        """Pre-activations z_l, one array (B, n_{l+1}) (or (n_{l+1},)) per hidden layer."""
        return _apply_np(kernels.preactivations, self, x)


def _apply_np(kernel, net: Network, x: np.ndarray):
    x = np.asarray(x, dtype=np.float64)
    single = x.ndim == 1
    xt = torch.from_numpy(np.atleast_2d(x).copy())
    out = kernel(kernels.TorchNet.of(net, torch.float64, "cpu"), xt)

    def back(t):
        if isinstance(t, (tuple, list)):
            return type(t)(back(s) for s in t)
        arr = t.detach().numpy()
        return arr[0] if single else arr

    return back(out)

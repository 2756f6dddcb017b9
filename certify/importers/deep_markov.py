"""Deep Markov models with two heads (a mean and a noise output) into two Networks over the same inputs.

* ONNX (:func:`load_deep_markov`): a model with two (or more) graph outputs; :class:`~certify.ir.stochastic.Heads`
  names the mean and the noise output (by name or 0-based index). Each head is imported from a copy of the graph
  whose only output is that head (the importer keeps just the nodes an output needs, so a trunk shared by both heads
  is imported into each) and checked against onnxruntime running that copy.
* PyTorch (:func:`deep_markov_from_torch`): a module that returns a tuple (or list) of tensors, heads by index, or a
  dict, heads by key; each head is exported through :func:`certify.importers.torch_import.from_torch` as a module
  that returns that head only, and checked against it.

A model with two outputs given without heads is refused by the ONNX importer with a message that points here.
"""

from __future__ import annotations

import copy
from pathlib import Path

import numpy as np
import onnx
import torch

from ..errors import ModelError
from ..ir.network import Network
from ..ir.stochastic import DeepMarkovModel, Heads, NoiseHead
from .agreement import import_points
from .onnx_import import check_agreement_model, import_checked, read_model
from .torch_import import from_torch


def _output_index(names: list[str], selector: str | int, key: str, source: str) -> int:
    if isinstance(selector, int):
        if selector >= len(names):
            raise ModelError(f"{source}: heads: {key} is output {selector} but the model has {len(names)} outputs "
                             f"({', '.join(map(repr, names))}); indices start at 0")
        return selector
    if selector not in names:
        raise ModelError(f"{source}: heads: {key} names the output {selector!r}, but the model's outputs are "
                         f"{', '.join(map(repr, names))}")
    return names.index(selector)


def head_model(model: onnx.ModelProto, index: int) -> onnx.ModelProto:
    """A copy of ``model`` whose only graph output is output ``index``."""
    out = copy.deepcopy(model)
    keep = out.graph.output[index]
    kept = copy.deepcopy(keep)
    del out.graph.output[:]
    out.graph.output.append(kept)
    return out


def _head_networks(path: str | Path, heads: Heads, n_states: int | None):
    source = str(path)
    model, problem = read_model(path)
    names = [o.name for o in model.graph.output]
    if len(names) < 2:
        raise ModelError(f"{source}: the region names heads (mean and noise) but the model has one output "
                         f"{names[0]!r}; a deep Markov model has a mean and a noise output")
    out = []
    for key in ("mean", "noise"):
        i = _output_index(names, getattr(heads, key), key, source)
        sub = head_model(model, i)
        where = f"{source} (output {names[i]!r})"
        net = import_checked(sub, problem, where, n_states)
        check_agreement_model(net, sub, where, import_points(net.n_in))
        out.append((net, sub, where))
    return out


def load_deep_markov(path: str | Path, heads: Heads, n_states: int | None = None) -> DeepMarkovModel:
    """The deep Markov model of an ONNX file with a mean and a noise output (module docstring)."""
    (mean, _, _), (noise, _, _) = _head_networks(path, heads, n_states)
    return _model(mean, noise, heads, str(path))


def _model(mean: Network, noise: Network, heads: Heads, source: str) -> DeepMarkovModel:
    if noise.n_in != mean.n_in:
        raise ModelError(f"{source}: the mean and noise heads take {mean.n_in} and {noise.n_in} inputs")
    if not mean.is_dynamics:  # before the noise head, whose size is read against the number of states
        raise ModelError(f"{source}: the mean head has {mean.n_out} outputs but the model has {mean.n_states} "
                         "states; the mean head K(x) gives one entry per state (check heads: mean)")
    noise = Network(noise.layers, noise.out_weight, noise.out_bias, noise.skip, mean.n_states, noise.input_names)
    try:
        return DeepMarkovModel(mean, NoiseHead(noise, heads.form, mean.n_states))
    except ModelError as exc:
        raise ModelError(f"{source}: {exc}") from None


def recheck_on_box(dmm: DeepMarkovModel, path: str | Path, heads: Heads, points: np.ndarray) -> None:
    """Both heads against onnxruntime on caller-chosen points (B, n_in) (e.g. the box's)."""
    model, _ = read_model(path)
    names = [o.name for o in model.graph.output]
    for key, net in (("mean", dmm.mean), ("noise", dmm.noise.network)):
        i = _output_index(names, getattr(heads, key), key, str(path))
        check_agreement_model(net, head_model(model, i), f"{path} (output {names[i]!r})", points)


class _Head(torch.nn.Module):
    """The module's output ``key`` (an index into a tuple or list, or a key of a dict)."""

    def __init__(self, module: torch.nn.Module, key) -> None:
        super().__init__()
        self.module, self.key = module, key

    def forward(self, *xs):
        return self.module(*xs)[self.key]


def deep_markov_from_torch(module: torch.nn.Module, example_input, mean: str | int = 0, noise: str | int = 1,
                           form: str = "cholesky", exporter: str = "auto") -> DeepMarkovModel:
    """The deep Markov model of a module returning (mean, noise) (a tuple or list: heads by index; a dict: by key).

    ``form``: the noise head's form (cholesky, std, variance, log_variance; :mod:`certify.ir.stochastic`);
    ``example_input`` and ``exporter`` as for :func:`certify.importers.from_torch`."""
    heads = Heads(mean, noise, form)
    source = f"<torch {type(module).__name__}>"
    if not isinstance(module, torch.nn.Module):
        raise ModelError(f"{source}: deep_markov_from_torch needs a torch.nn.Module")
    xs = example_input if isinstance(example_input, (tuple, list)) else (example_input,)
    probe = copy.deepcopy(module).eval().double()
    with torch.no_grad():
        out = probe(*(torch.as_tensor(x).detach().double().reshape(1, -1) for x in xs))
    if isinstance(out, dict):
        missing = [k for k in (heads.mean, heads.noise) if k not in out]
        if missing:
            raise ModelError(f"{source}: the module returns a dict with keys {sorted(map(str, out))}; no key "
                             f"{missing[0]!r}")
    elif isinstance(out, (tuple, list)):
        bad = [k for k in (heads.mean, heads.noise) if not isinstance(k, int) or k >= len(out)]
        if bad:
            raise ModelError(f"{source}: the module returns {len(out)} outputs; give the heads as indices 0 .. "
                             f"{len(out) - 1}, got {bad[0]!r}")
    else:
        raise ModelError(f"{source}: the module returns one tensor; a deep Markov model returns (mean, noise)")
    nets = []
    for key in (heads.mean, heads.noise):
        wrapper = type(f"{type(module).__name__}[{key!r}]", (_Head,), {})(module, key)
        nets.append(from_torch(wrapper, example_input, exporter=exporter))
    return _model(nets[0], nets[1], heads, source)

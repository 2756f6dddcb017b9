"""Shared fixtures: the random-net builder and boxes of ``tests/random_nets.py``, the ONNX builders of
``tests/onnx_builders.py``.

Each fixture hands out the function itself (``random_net(seed, 2, (6, 6), activation=acts.tanh())``), so a test
takes it as an argument instead of importing it. They are session-scoped: they hold no state, and hypothesis
refuses function-scoped fixtures in ``@given`` tests. Code that runs at import time (strategies, module-level
helpers) imports the same functions from ``random_nets``.
"""

from __future__ import annotations

import onnx_builders
import pytest
import random_nets


@pytest.fixture(scope="session")
def random_net():
    """:func:`random_nets.random_net`: a seeded random ``Network`` n_in -> widths -> n_out."""
    return random_nets.random_net


@pytest.fixture(scope="session")
def random_weights():
    """:func:`random_nets.random_weights`: a list of weight matrices, entry l of shape (sizes[l+1], sizes[l])."""
    return random_nets.random_weights


@pytest.fixture(scope="session")
def unit_box():
    """:func:`random_nets.unit_box`: ``unit_box(n, half=1.0, n_states=None)`` is [-half, half]^n."""
    return random_nets.unit_box


@pytest.fixture(scope="session")
def scaled_net():
    """:func:`random_nets.scaled_net`: the net with its output layer and skip multiplied by a factor."""
    return random_nets.scaled_net


@pytest.fixture(scope="session")
def gelu_example():
    """:func:`random_nets.gelu_example`: ``gelu_example()`` is issue 4's GELU example as ``(net, box)``."""
    return random_nets.gelu_example


@pytest.fixture(scope="session")
def gemm_chain():
    """:func:`onnx_builders.gemm_chain`: an ONNX Gemm chain ``gemm_chain(weights, biases, activation)``."""
    return onnx_builders.gemm_chain


@pytest.fixture(scope="session")
def network_to_onnx():
    """:func:`onnx_builders.network_to_onnx`: a ``Network`` written back as ONNX operators."""
    return onnx_builders.network_to_onnx


@pytest.fixture
def save_model(tmp_path):
    """``save_model(model, name="model.onnx")``: the ONNX model written under the test's ``tmp_path``."""

    def save(model, name: str = "model.onnx"):
        return onnx_builders.save(model, tmp_path, name)

    return save

"""neuromancer-style blocks through from_torch: a Node / System wrapper is unwrapped to the block it calls, and what
the IR cannot represent (ResMLP skips into hidden layers, neuromancer's own activations) is refused by name.

neuromancer itself is not a dependency: the wrappers are recognised by their attributes, so small stand-ins with
the same attributes are what a user's objects look like to the importer.
"""

import numpy as np
import pytest
import torch

import certify
from certify.errors import ModelError


class Node(torch.nn.Module):
    """The attributes of neuromancer's Node: ``callable``, ``input_keys``, ``output_keys``, ``name``."""

    def __init__(self, block, input_keys, output_keys, name="dynamics"):
        super().__init__()
        self.callable, self.input_keys, self.output_keys, self.name = block, input_keys, output_keys, name

    def forward(self, data):
        return dict(zip(self.output_keys, [self.callable(*[data[k] for k in self.input_keys])]))


class System(torch.nn.Module):
    """The attributes of neuromancer's System: ``nodes`` and ``nstep_key``."""

    def __init__(self, nodes):
        super().__init__()
        self.nodes, self.nstep_key = torch.nn.ModuleList(nodes), "X"


def _block(seed=0):
    torch.manual_seed(seed)
    return torch.nn.Sequential(torch.nn.Linear(2, 8), torch.nn.ReLU(), torch.nn.Linear(8, 2)).double()


@pytest.mark.parametrize("wrap", ["node", "system"])
def test_a_wrapped_block_imports_as_the_block_and_verifies(wrap):
    block = _block()
    with torch.no_grad():
        block[2].weight.mul_(0.1)  # a contracting map: certified by Corollary 4
    node = Node(block, ["x"], ["x_next"])
    module = node if wrap == "node" else System([node])
    net = certify.from_torch(module, torch.zeros(1, 2))
    x = np.random.default_rng(0).uniform(-1, 1, (64, 2))
    with torch.no_grad():
        want = block(torch.from_numpy(x)).numpy()
    assert np.allclose(net.forward(x), want, rtol=1e-9, atol=1e-12)
    report = certify.verify(net, certify.Box(-np.ones(2), np.ones(2)), checks="dissipativity")
    assert report.verdict == "certified"


def test_a_system_of_several_nodes_is_refused_naming_them():
    system = System([Node(_block(0), ["x"], ["x_next"], "plant"), Node(_block(1), ["x"], ["u"], "policy")])
    with pytest.raises(ModelError, match="2 nodes.*plant.*policy"):
        certify.from_torch(system, torch.zeros(1, 2))


def test_a_node_with_two_outputs_is_refused():
    with pytest.raises(ModelError, match="2 outputs"):
        certify.from_torch(Node(_block(), ["x"], ["a", "b"]), torch.zeros(1, 2))


class ResMLP(torch.nn.Module):
    """neuromancer's ResMLP shape: inmap, linear layers, nonlin, outmap and a skip every ``skip`` layers."""

    def __init__(self):
        super().__init__()
        self.inmap, self.outmap = torch.nn.Linear(2, 8), torch.nn.Linear(8, 2)
        self.linear = torch.nn.ModuleList([torch.nn.Linear(8, 8) for _ in range(2)])
        self.nonlin, self.skip = torch.nn.ModuleList([torch.nn.ReLU(), torch.nn.ReLU()]), 1

    def forward(self, x):
        h = self.inmap(x)
        for lin, act in zip(self.linear, self.nonlin):
            h = act(lin(h)) + h  # a skip into a hidden layer
        return self.outmap(h)


class SmoothedReLU(torch.nn.Module):
    def forward(self, z):
        return torch.where(torch.sign(z) > 0, z, 0.01 * z)


def test_a_resmlp_is_refused_naming_the_skip():
    with pytest.raises(ModelError, match="ResMLP: its skips"):
        certify.from_torch(Node(ResMLP(), ["x"], ["x_next"]), torch.zeros(1, 2))


def test_neuromancer_activations_are_refused_by_name():
    block = torch.nn.Sequential(torch.nn.Linear(2, 4), SmoothedReLU(), torch.nn.Linear(4, 2))
    with pytest.raises(ModelError, match="SmoothedReLU"):
        certify.from_torch(block, torch.zeros(1, 2))

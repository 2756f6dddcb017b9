"""Python API misuse raises TypeError or a CertifyError (a ValueError) with a clear message, at the place the value
enters; never an AttributeError or a numpy error from deep inside, never a silent acceptance (issue 8, items 11
and 12). Also the one-line reprs."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest

import certify
from certify import Box, Layer, Network, Region, VerifyConfig, load_region
from certify.config import (
    SEED_MAX,
    BoxSearchOptions,
    InvarianceOptions,
    RegionSearchOptions,
    SolverChoice,
)
from certify.errors import CertifyError, UsageError
from certify.ir import activations as acts

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"
W, B = np.eye(2), np.zeros(2)


def a_box():
    return Box(np.zeros(2), np.ones(2))


def a_net():
    return Network((Layer(W, B, acts.relu()),), 0.5 * W, B)


MISUSES = {
    # Box: 1-D numeric bounds, text names, an int n_states
    "Box 2-D lower": lambda: Box(np.zeros((2, 2)), np.ones((2, 2))),  # was flattened to 4 coordinates
    "Box 0-D lower": lambda: Box(0.0, 1.0),
    "Box text bounds": lambda: Box("ab", "cd"),
    "Box None bounds": lambda: Box(None, None),
    "Box ragged bounds": lambda: Box([[0], [0, 1]], [[1], [1, 2]]),
    "Box object bounds": lambda: Box([object()], [object()]),
    "Box bool bounds": lambda: Box([False], [True]),
    "Box complex bounds": lambda: Box([0j], [1j]),
    "Box int names": lambda: Box([0, 0], [1, 1], names=(1, 2)),
    "Box names as one str": lambda: Box([0, 0], [1, 1], names="ab"),
    "Box names None": lambda: Box([0], [1], names=None),
    "Box n_states 1.5": lambda: Box([0, 0], [1, 1], n_states=1.5),
    "Box n_states True": lambda: Box([0, 0], [1, 1], n_states=True),
    "Box width overflows": lambda: Box([-1e308], [1e308]),
    # VerifyConfig: every option at the type it documents
    "samples 10.5": lambda: VerifyConfig(samples=10.5),
    "samples text": lambda: VerifyConfig(samples="10"),
    "samples None": lambda: VerifyConfig(samples=None),
    "exact 'no'": lambda: VerifyConfig(exact="no"),
    "exact 1": lambda: VerifyConfig(exact=1),
    "norm 3": lambda: VerifyConfig(norm="3"),
    "norm list": lambda: VerifyConfig(norm=[2]),
    "norm True": lambda: VerifyConfig(norm=True),  # was taken as 1
    "norm None": lambda: VerifyConfig(norm=None),
    "margin text": lambda: VerifyConfig(margin="0.1"),
    "margin NaN": lambda: VerifyConfig(margin=math.nan),
    "timeout text": lambda: VerifyConfig(timeout="5"),
    "timeout None": lambda: VerifyConfig(timeout=None),
    "timeout NaN": lambda: VerifyConfig(timeout=math.nan),
    "timeout inf": lambda: VerifyConfig(timeout=math.inf),
    "timeout True": lambda: VerifyConfig(timeout=True),
    "budget 1.5": lambda: VerifyConfig(budget=1.5),
    "budget text": lambda: VerifyConfig(budget="5"),
    "budget True": lambda: VerifyConfig(budget=True),
    "budget 0": lambda: VerifyConfig(budget=0),
    "method int": lambda: VerifyConfig(method=3),
    "method None": lambda: VerifyConfig(method=None),
    "method unknown": lambda: VerifyConfig(method="magic"),
    "device list": lambda: VerifyConfig(device=["cpu"]),
    "device None": lambda: VerifyConfig(device=None),
    "seed -1": lambda: VerifyConfig(seed=-1),
    "seed 2**64": lambda: VerifyConfig(seed=2**64),
    "seed 1.5": lambda: VerifyConfig(seed=1.5),
    "seed True": lambda: VerifyConfig(seed=True),
    "seed text": lambda: VerifyConfig(seed="1"),
    "solvers text": lambda: VerifyConfig(solvers="highs"),
    "solver name int": lambda: VerifyConfig(solvers=SolverChoice(lp=3)),
    "solver name empty": lambda: SolverChoice(milp=""),
    "regions dict": lambda: VerifyConfig(regions={"samples": 3}),
    "boxes None": lambda: VerifyConfig(boxes=None),
    "invariance text": lambda: VerifyConfig(invariance="x"),
    "RegionSearchOptions min_radius text": lambda: RegionSearchOptions(min_radius="x"),
    "RegionSearchOptions samples -1": lambda: RegionSearchOptions(samples=-1),
    "BoxSearchOptions bounds as one str": lambda: BoxSearchOptions(bounds="interval"),
    "BoxSearchOptions unknown bound": lambda: BoxSearchOptions(bounds=("bogus",)),
    "BoxSearchOptions batch 0": lambda: BoxSearchOptions(batch=0),
    "BoxSearchOptions gap_tol -1": lambda: BoxSearchOptions(gap_tol=-1),
    "BoxSearchOptions sdp unknown": lambda: BoxSearchOptions(sdp="bogus"),
    "InvarianceOptions milp_cutoff 'no'": lambda: InvarianceOptions(milp_cutoff="no"),
    "InvarianceOptions samples 1.5": lambda: InvarianceOptions(samples=1.5),
    # Layer and Network: numeric arrays of the documented shapes, Layer objects, an Activation
    "Layer ragged weight": lambda: Layer([[1, 2], [3]], [0, 0], acts.relu()),
    "Layer text weight": lambda: Layer("abc", [0], acts.relu()),
    "Layer text entries": lambda: Layer([["a", "b"]], [0], acts.relu()),
    "Layer object entries": lambda: Layer([[object()]], [0], acts.relu()),
    "Layer None weight": lambda: Layer(None, B, acts.relu()),
    "Layer 1-D weight": lambda: Layer([1, 2], [0], acts.relu()),
    "Layer 2-D bias": lambda: Layer(W, np.zeros((2, 1)), acts.relu()),
    "Layer no neurons": lambda: Layer(np.zeros((0, 2)), np.zeros(0), acts.relu()),
    "Layer activation text": lambda: Layer(W, B, "relu"),
    "Layer activation None": lambda: Layer(W, B, None),
    "Network layers None": lambda: Network(None, W, B),
    "Network layers of text": lambda: Network(("x",), W, B),
    "Network one Layer, not a tuple": lambda: Network(Layer(W, B, acts.relu()), W, B),
    "Network ragged out_weight": lambda: Network((), [[1, 2], [3]], B),
    "Network text out_weight": lambda: Network((), "W", B),
    "Network text skip": lambda: Network((), W, B, skip="S"),
    "Network no outputs": lambda: Network((), np.zeros((0, 2)), np.zeros(0)),
    "Network n_states 1.5": lambda: Network((), W, B, n_states=1.5),
    "Network n_states text": lambda: Network((), W, B, n_states="2"),
    "Network input_names ints": lambda: Network((), W, B, input_names=(1,)),
    "Network input_names as one str": lambda: Network((), W, B, input_names="xy"),
    # region files and Region
    "load_region None": lambda: load_region(None),
    "load_region int": lambda: load_region(3),
    "load_region bytes": lambda: load_region(b"box.yaml"),
    "load_region dict": lambda: load_region({"states": {}}),
    "load_region list": lambda: load_region(["box.yaml"]),
    "load_region folder": lambda: load_region(EXAMPLES),
    "load_region n_in text": lambda: load_region(EXAMPLES / "box.yaml", n_in="2"),
    "Region.from_yaml None": lambda: Region.from_yaml(None),
    "Region box text": lambda: Region("box.yaml"),
    "Region box None": lambda: Region(None),
    "Region norm 3": lambda: Region(a_box(), norm=3),
    "Region margin text": lambda: Region(a_box(), margin="x"),
    # verify: what reaches it through the objects above
    "verify unknown check": lambda: certify.verify(a_net(), a_box(), checks=["bogus"]),
    "verify box of another size": lambda: certify.verify(a_net(), Box([0, 0, 0], [1, 1, 1])),
    # values that enter through certify.verify itself (certify/api.py checks their types)
    "verify model None": lambda: certify.verify(None, a_box()),
    "verify model int": lambda: certify.verify(3, a_box()),
    "verify box None": lambda: certify.verify(a_net(), None),
    "verify box list": lambda: certify.verify(a_net(), [[0, 1], [0, 1]]),
    "verify config dict": lambda: certify.verify(a_net(), a_box(), checks=["weight_norm"], config={"samples": 3}),
    # back-end names are looked up before any work (a CertifyError naming the option, not a ValueError deep inside)
    "verify unknown lp back-end": lambda: certify.verify(a_net(), a_box(), config=VerifyConfig(
        solvers=SolverChoice(lp="bogus"))),
    "verify unknown milp back-end": lambda: certify.verify(a_net(), a_box(), checks=["invariance"],
                                                           config=VerifyConfig(solvers=SolverChoice(milp="bogus"))),
    "verify unknown sdp back-end": lambda: certify.verify(a_net(), a_box(), config=VerifyConfig(
        solvers=SolverChoice(sdp="bogus"))),
    # model paths: a folder or a missing file is said to be one, before the region file is read
    "load a folder": lambda: certify.load(EXAMPLES),
    "verify a folder": lambda: certify.verify(EXAMPLES, EXAMPLES / "box.yaml"),
    "verify a missing model and region": lambda: certify.verify(EXAMPLES / "nope.onnx", EXAMPLES / "nope.yaml"),
}


@pytest.mark.parametrize("case", list(MISUSES))
def test_misuse_raises_a_clear_error(case):
    call = MISUSES[case]
    with pytest.raises((TypeError, CertifyError)) as info:
        call()
    msg = str(info.value)
    assert msg and "\n" not in msg and len(msg) < 300, msg


def test_paths_and_back_ends_are_named_in_the_message():
    with pytest.raises(CertifyError, match="is a folder, not a model file"):
        certify.load(EXAMPLES)
    with pytest.raises(CertifyError, match=r"nope\.onnx: model file not found"):  # the model before the region
        certify.verify(EXAMPLES / "nope.onnx", EXAMPLES / "nope.yaml")
    with pytest.raises(CertifyError, match=r"SolverChoice\(milp=\.\.\.\)\): unknown MILP backend 'bogus'; choose"):
        certify.verify(a_net(), a_box(), checks=["dissipativity"], config=VerifyConfig(
            solvers=SolverChoice(milp="bogus")))


def test_the_documented_forms_are_accepted():
    c = VerifyConfig(norm="inf", margin=0, samples=np.int64(5), seed=SEED_MAX, device="CPU", timeout=1, exact=True,
                     method="EXACT", budget=3, solvers=SolverChoice(milp="highs"),
                     boxes=BoxSearchOptions(bounds=["interval", "product"], sdp="never"))
    assert c.norm == math.inf and c.margin == 0.0 and c.samples == 5 and type(c.samples) is int
    assert c.method == "exact" and c.device == "cpu" and c.timeout == 1.0 and c.budget == 3
    assert c.boxes.bounds == ("interval", "product") and c.boxes.sdp == "never"
    assert VerifyConfig(norm=1).norm == 1.0 and VerifyConfig(norm=math.inf).norm == math.inf
    box = Box([0, 1], (2.0, 3.0), names=["a", "b"], n_states=np.int64(1))
    assert box.names == ("a", "b") and box.n_states == 1 and box.lower.dtype == np.float64
    assert Layer([[1, 0], [0, 1]], [0, 0], acts.relu()).weight.dtype == np.float64


# --------------------------------------------------------------------------- seeds (item 11)
@pytest.mark.parametrize("seed", [-1, 2**64, 2**63])
def test_seeds_out_of_range_are_usage_errors(seed):
    with pytest.raises(UsageError, match="seed must be in"):
        VerifyConfig(seed=seed)


@pytest.mark.parametrize("seed", ["-1", str(2**64)])
def test_the_command_refuses_a_bad_seed_with_exit_3(seed, capsys):
    from certify.cli import run

    code = run([str(EXAMPLES / "tank_relu.onnx"), "--region", str(EXAMPLES / "box.yaml"), "--check", "weight_norm",
                "--seed", seed, "--quiet"])
    err = capsys.readouterr().err.strip()
    assert code == 3 and len(err.splitlines()) == 1 and "seed" in err, (code, err)


def test_derived_seeds_wrap_instead_of_failing():
    # engines derive seeds as seed + k; the largest user seed must not make that an error
    config = VerifyConfig(seed=SEED_MAX)
    assert config.with_(seed=SEED_MAX + 3).seed == 2
    assert config.with_(samples=3).seed == SEED_MAX


# --------------------------------------------------------------------------- reprs (item 12)
def test_repr_of_a_network_is_one_line():
    net = Network((Layer(np.ones((16, 2)), np.zeros(16), acts.relu()), Layer(np.ones((16, 16)), np.zeros(16),
                                                                            acts.relu())),
                  np.ones((2, 16)), np.zeros(2))
    assert repr(net) == "Network(2-16-16-2 relu, 2 states)"
    with_inputs = Network((), np.ones((2, 3)), np.zeros(2), skip=np.zeros((2, 3)), n_states=2)
    assert repr(with_inputs) == "Network(3-2 affine + skip, 2 states, 1 input)"
    assert "\n" not in repr(net.layers[0]) and "16" in repr(net.layers[0])


def test_repr_of_a_box_is_short():
    big = Box(np.zeros(1000), np.ones(1000), n_states=998)
    text = repr(big)
    assert "\n" not in text and len(text) < 200 and "998 states, 2 inputs" in text and "x999" in text
    assert repr(Box([0, -1], [1, 1], names=("a", "b"))) == "Box(2 states: a in [0, 1], b in [-1, 1])"

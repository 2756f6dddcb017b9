"""Closed-loop system files: the composed IR against simulating plant + controller (onnxruntime), every error case,
and a smoke test of the committed benchmark zoo (IR against onnxruntime on a few points)."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from onnx_builders import gemm_chain

from certify.errors import CertifyError, SystemFileError
from certify.importers.system_file import compose, is_system_file, load_system, read_system
from certify.ir import activations as acts
from certify.ir.network import Network

ZOO = Path(__file__).resolve().parents[1] / "benchmarks" / "zoo"


# --------------------------------------------------------------------------- helpers
def random_controller(rng, n: int, m: int, widths=(6, 5), gain: float = 1.0, activation: str = "Relu"):
    sizes = (n, *widths, m)
    ws = [rng.normal(size=(sizes[i + 1], sizes[i])) / np.sqrt(sizes[i]) for i in range(len(sizes) - 1)]
    ws[-1] = gain * ws[-1]
    bs = [0.3 * rng.normal(size=s) for s in sizes[1:]]
    return gemm_chain(ws, bs, activation)


def ort_controller(path: Path):
    sess = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    return lambda x: sess.run(None, {"x": np.asarray(x, np.float32)})[0].astype(np.float64)


def mat(a) -> str:
    return "[" + ", ".join("[" + ", ".join(repr(float(v)) for v in row) + "]" for row in np.atleast_2d(a)) + "]"


def vec(a) -> str:
    return "[" + ", ".join(repr(float(v)) for v in np.ravel(a)) + "]"


def write_system(folder: Path, A, B, c=None, onnx_name="controller.onnx", u_min=None, u_max=None,
                 extra: str = "", name: str = "system.yaml") -> Path:
    text = f"plant:\n  A: {mat(A)}\n  B: {mat(B)}\n"
    if c is not None:
        text += f"  c: {vec(c)}\n"
    text += f"controller:\n  onnx: {onnx_name}\n"
    if u_min is not None:
        text += f"  u_min: {vec(u_min)}\n"
    if u_max is not None:
        text += f"  u_max: {vec(u_max)}\n"
    path = folder / name
    path.write_text(text + extra, encoding="utf-8")
    return path


def simulate(A, B, c, pi, x, u_min=None, u_max=None) -> np.ndarray:
    """x+ = A x + B clip(pi(x)) + c, with pi evaluated by onnxruntime (independent of the composed IR)."""
    u = pi(x)
    if u_min is not None:
        u = np.clip(u, u_min, u_max)
    return x @ np.asarray(A).T + u @ np.asarray(B).T + (0 if c is None else np.asarray(c))


def tol(ref: np.ndarray) -> float:
    # the controller runs in float32 under onnxruntime; the IR in float64 from the same float32 weights
    return 2e-5 * (1.0 + float(np.max(np.abs(ref))))


# --------------------------------------------------------------------------- composition against simulation
@settings(max_examples=12, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(seed=st.integers(0, 10_000), n=st.integers(1, 3), m=st.integers(1, 2), clip_mode=st.sampled_from(
    ["none", "shared", "per_input"]), activation=st.sampled_from(["Relu", "Tanh"]), with_c=st.booleans())
def test_composed_ir_matches_simulation(tmp_path_factory, seed, n, m, clip_mode, activation, with_c):
    rng = np.random.default_rng(seed)
    folder = tmp_path_factory.mktemp("sys")
    onnx.save(random_controller(rng, n, m, gain=3.0, activation=activation), folder / "controller.onnx")
    A, B = rng.normal(size=(n, n)), rng.normal(size=(n, m))
    c = rng.normal(size=n) if with_c else None
    u_min = u_max = None
    if clip_mode == "shared":
        u_min, u_max = np.full(m, -0.5), np.full(m, 0.7)
    elif clip_mode == "per_input":
        u_min = rng.uniform(-1.0, 0.0, size=m)
        u_max = u_min + rng.uniform(0.0, 1.5, size=m)
        u_max[0] = u_min[0]  # one fixed input: u_0 = u_min_0 everywhere
    path = write_system(folder, A, B, c, u_min=u_min, u_max=u_max)
    net = load_system(path)
    assert (net.n_in, net.n_out, net.n_states) == (n, n, n)
    x = rng.uniform(-3, 3, size=(200, n))
    want = simulate(A, B, c, ort_controller(folder / "controller.onnx"), x, u_min, u_max)
    got = net.forward(x)
    assert np.max(np.abs(got - want)) <= tol(want)
    # the same through the parsed system's own step (plant, then controller IR, then clip)
    assert np.max(np.abs(read_system(path).step(x) - want)) <= tol(want)
    # the PWA identity of the composed IR: f(x) = A*(x) x + b*(x)
    a_star, b_star = net.pwa(x)
    assert np.allclose(np.einsum("bij,bj->bi", a_star, x) + b_star, got, atol=1e-9 * (1 + np.abs(got).max()))


def test_clipping_is_active_on_both_sides_and_jacobian_has_the_skip(tmp_path):
    """A controller with a large gain saturates: where it does, J = A; where it does not, J = A + B J_pi."""
    rng = np.random.default_rng(7)
    onnx.save(random_controller(rng, 2, 1, gain=5.0), tmp_path / "controller.onnx")
    A, B = np.array([[1.0, 1.0], [0.0, 1.0]]), np.array([[0.5], [1.0]])
    path = write_system(tmp_path, A, B, u_min=[-1.0], u_max=[1.0])
    net = load_system(path)
    pi = ort_controller(tmp_path / "controller.onnx")
    x = rng.uniform(-3, 3, size=(400, 2))
    v = pi(x)[:, 0]
    assert np.any(v > 1.05) and np.any(v < -1.05) and np.any(np.abs(v) < 0.95)
    J = net.jacobian(x)
    sat = np.abs(v) > 1.05
    assert np.allclose(J[sat], A, atol=1e-12)
    ctrl = read_system(path).controller
    free = np.abs(v) < 0.95
    assert np.allclose(J[free], A + np.einsum("ik,bkj->bij", B, ctrl.jacobian(x[free])), atol=1e-12)
    # last hidden layer is the clip of the controller's output layer, read out through B
    assert net.layers[-1].activation == acts.clip(-1.0, 1.0)
    assert np.array_equal(net.out_weight, B) and np.array_equal(net.skip, A)


def test_unclipped_composition_premultiplies_the_last_layer(random_net):
    ctrl = random_net(3, n_in=2, widths=(4,), n_out=1)
    A, B, c = np.eye(2) * 0.5, np.array([[2.0], [-1.0]]), np.array([0.1, 0.2])
    net = compose(A, B, c, ctrl)
    assert len(net.layers) == 1
    assert np.allclose(net.out_weight, B @ ctrl.out_weight) and np.allclose(net.out_bias, B @ ctrl.out_bias + c)
    assert np.array_equal(net.skip, A)


def test_controller_with_a_skip(random_net):
    """An affine controller u = K x + k (skip only, no hidden layers) can be clipped; a deep one with a skip not."""
    K = np.array([[0.3, -0.2]])
    affine = Network((), np.zeros((1, 2)), np.array([0.1]), skip=K)
    A, B = np.eye(2), np.array([[1.0], [0.5]])
    x = np.random.default_rng(0).uniform(-5, 5, size=(100, 2))
    plain = compose(A, B, None, affine)
    assert np.allclose(plain.forward(x), x @ (A + B @ K).T + (B @ [0.1]))
    clipped = compose(A, B, None, affine, np.array([-0.4]), np.array([0.4]))
    want = x @ A.T + np.clip(x @ K.T + 0.1, -0.4, 0.4) @ B.T
    assert np.allclose(clipped.forward(x), want)
    deep = random_net(1, n_in=2, widths=(3,), n_out=1, skip=True)
    assert np.allclose(compose(A, B, None, deep).forward(x), x @ A.T + deep.forward(x) @ B.T)
    with pytest.raises(SystemFileError, match="skip"):
        compose(A, B, None, deep, np.array([-1.0]), np.array([1.0]))


def test_compose_refuses_mismatched_controller(random_net):
    ctrl = random_net(0, n_in=3, widths=(4,), n_out=1)
    with pytest.raises(SystemFileError, match="controller"):
        compose(np.eye(2), np.ones((2, 1)), None, ctrl)


# --------------------------------------------------------------------------- errors
@pytest.fixture()
def ctrl_dir(tmp_path):
    onnx.save(random_controller(np.random.default_rng(1), 2, 1), tmp_path / "controller.onnx")
    onnx.save(random_controller(np.random.default_rng(1), 3, 1), tmp_path / "controller3.onnx")
    onnx.save(random_controller(np.random.default_rng(1), 2, 2), tmp_path / "controller22.onnx")
    (tmp_path / "garbage.onnx").write_bytes(b"\x00\x01 this is not a protobuf \xff" * 10)
    return tmp_path


GOOD = dict(A=np.eye(2), B=np.ones((2, 1)))

ERROR_CASES = {
    "A not square": (dict(A=np.ones((2, 3))), "plant.A"),
    "B wrong rows": (dict(B=np.ones((3, 1))), "plant.B"),
    "c wrong length": (dict(c=np.ones(3)), "plant.c"),
    "controller inputs": (dict(onnx_name="controller3.onnx"), "controller.onnx"),
    "controller outputs": (dict(onnx_name="controller22.onnx"), "controller.onnx"),
    "u_min > u_max": (dict(u_min=[1.0], u_max=[0.0]), "controller.u_min"),
    "u_min alone": (dict(u_min=[0.0]), "controller.u_max"),
    "u_max wrong length": (dict(u_min=[0.0], u_max=[1.0, 2.0]), "controller.u_max"),
    "missing onnx": (dict(onnx_name="nowhere.onnx"), "controller.onnx"),
    "onnx fails to import": (dict(onnx_name="garbage.onnx"), "controller.onnx"),
    "unknown top key": (dict(extra="horizon: 5\n"), "horizon"),
    "unknown controller key": (dict(extra="  gain: 5\n"), "controller.gain"),
}


@pytest.mark.parametrize("case", list(ERROR_CASES))
def test_system_file_errors_name_file_and_key(ctrl_dir, case):
    changes, key = ERROR_CASES[case]
    args = {**GOOD, **changes}
    path = write_system(ctrl_dir, **args)
    with pytest.raises(SystemFileError) as info:
        load_system(path)
    msg = str(info.value)
    assert "\n" not in msg
    assert str(path) in msg and key in msg, msg


@pytest.mark.parametrize("text, key", [
    ("plant:\n  A: [[1, 0], [0, 1]]\n  B: [[1], [1]]\n  D: [[0]]\ncontroller:\n  onnx: controller.onnx\n", "plant.D"),
    ("plant:\n  A: [[1, 0], [0, 1]]\ncontroller:\n  onnx: controller.onnx\n", "plant.B"),
    ("plant:\n  A: [[1, 0], [0, 1]]\n  B: [[1], [1]]\n", "controller"),
    ("controller:\n  onnx: controller.onnx\n", "plant"),
    ("plant:\n  A: [[1, 0], [0, 1]]\n  B: [[1], [1]]\ncontroller: {}\n", "controller.onnx"),
    ("plant:\n  A: [[1, 0], [0, .nan]]\n  B: [[1], [1]]\ncontroller:\n  onnx: controller.onnx\n", "plant.A[1][1]"),
    ("plant:\n  A: [[1, 0], [0, yes]]\n  B: [[1], [1]]\ncontroller:\n  onnx: controller.onnx\n", "plant.A[1][1]"),
    ("plant:\n  A: [[1, 0], [0]]\n  B: [[1], [1]]\ncontroller:\n  onnx: controller.onnx\n", "plant.A"),
    ("plant:\n  A: [[1, 0], [0, 1]]\n  B: [[1], [1]]\ncontroller:\n  onnx: 5\n", "controller.onnx"),
    ("plant:\n  A: [[1, 0], [0, 1]]\n  B: [[1], [1]]\ncontroller:\n  onnx: controller.onnx\n  u_min: [0]\n"
     "  u_max: [.inf]\n", "controller.u_max[0]"),
    ("plant: [1, 2]\ncontroller:\n  onnx: controller.onnx\n", "plant"),
    ("- just a list\n", "plant"),
    ("plant: !!python/object/apply:os.system ['true']\ncontroller: {onnx: controller.onnx}\n",
     "plant (line 1): the tag !!python/object/apply:os.system is not allowed"),
    ("plant: {A: [[1]\n", "YAML"),
])
def test_malformed_system_files(ctrl_dir, text, key):
    path = ctrl_dir / "bad.yaml"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(SystemFileError) as info:
        load_system(path)
    msg = str(info.value)
    assert "\n" not in msg and str(path) in msg and key in msg, msg
    assert isinstance(info.value, CertifyError) and isinstance(info.value, ValueError)


def test_missing_system_file(tmp_path):
    with pytest.raises(SystemFileError, match="not found"):
        load_system(tmp_path / "none.yaml")


def test_onnx_path_is_relative_to_the_system_file(ctrl_dir, tmp_path, monkeypatch):
    path = write_system(ctrl_dir, **GOOD)
    monkeypatch.chdir(tmp_path.parent)
    assert load_system(path).n_in == 2
    sub = ctrl_dir / "sub"
    sub.mkdir()
    other = write_system(sub, **GOOD, onnx_name="../controller.onnx")
    assert load_system(other).n_in == 2


def test_is_system_file(ctrl_dir):
    # a .yaml/.yml model is always read as a system file, so its mistakes are reported as such (issue 8, item 10)
    system = write_system(ctrl_dir, **GOOD)
    box = ctrl_dir / "box.yaml"
    box.write_text("states:\n  a: [0, 1]\n  b: [0, 1]\n", encoding="utf-8")
    broken = ctrl_dir / "broken.yml"
    broken.write_text("plant: {A: [[1]\n", encoding="utf-8")
    other = ctrl_dir / "loop.system"
    other.write_text(system.read_text(encoding="utf-8"), encoding="utf-8")
    assert is_system_file(system) and is_system_file(box) and is_system_file(broken)
    assert is_system_file(ctrl_dir / "missing.yaml")
    assert is_system_file(other)
    assert not is_system_file(ctrl_dir / "controller.onnx")
    assert not is_system_file(ctrl_dir / "garbage.onnx")
    assert not is_system_file(ctrl_dir)
    assert not is_system_file(ctrl_dir / "missing.system")
    assert not is_system_file(None)


SYSTEM_LOAD_ERRORS = {
    "syntax error": ("plant: {A: [[1]\ncontroller: {onnx: controller.onnx}\n", "not valid YAML at line"),
    "missing plant": ("controller:\n  onnx: controller.onnx\n", "'plant' is missing"),
    "python tag": ("plant: !!python/object/apply:os.system ['true']\ncontroller: {onnx: controller.onnx}\n",
                   "tag !!python/object/apply:os.system is not allowed"),
    "region file as model": ("states:\n  a: [0, 1]\n", "looks like a region file"),
    "duplicate plant.A": ("plant:\n  A: [[1, 0], [0, 1]]\n  B: [[1], [1]]\n  A: [[0.5, 0], [0, 0.5]]\n"
                          "controller:\n  onnx: controller.onnx\n", "plant.A (line 4): duplicate key 'A'"),
    "duplicate top key": ("plant:\n  A: [[1, 0], [0, 1]]\n  B: [[1], [1]]\ncontroller:\n  onnx: controller.onnx\n"
                          "controller:\n  onnx: other.onnx\n", "controller (line 6): duplicate key"),
    "YAML 1.1 base 60": ("plant:\n  A: [[1, 0], [0, 1:30]]\n  B: [[1], [1]]\ncontroller:\n  onnx: controller.onnx\n",
                         "plant.A[1][1] (line 2): '1:30' is a base-60 number"),
    "400 digits": ("plant:\n  A: [[1, 0], [0, 1" + "0" * 399 + "]]\n  B: [[1], [1]]\ncontroller:\n  onnx: c.onnx\n",
                   "plant.A[1][1] (line 2): the number"),
    "deep nesting": ("plant:\n  A: " + "[" * 20_000 + "]" * 20_000 + "\n", "nest"),
}


@pytest.mark.parametrize("case", list(SYSTEM_LOAD_ERRORS))
def test_bad_system_files_are_reported_as_system_files(ctrl_dir, case):
    # certify.load dispatches on the file: these were "unknown model format '.yaml'" (issue 8, item 10)
    import certify

    text, needle = SYSTEM_LOAD_ERRORS[case]
    path = ctrl_dir / "system.yaml"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(SystemFileError) as info:
        certify.load(path)
    msg = str(info.value)
    assert "\n" not in msg and str(path) in msg and needle in msg, msg
    assert "unknown model format" not in msg


def test_a_system_path_that_is_not_a_regular_file(ctrl_dir):
    import os

    import certify

    folder = ctrl_dir / "loop.yaml"
    folder.mkdir()
    with pytest.raises(SystemFileError, match="is a folder"):
        certify.load(folder)
    if hasattr(os, "mkfifo"):
        fifo = ctrl_dir / "fifo.yaml"
        os.mkfifo(fifo)  # never opened for writing: a blocking read would hang
        with pytest.raises(SystemFileError, match="named pipe"):
            certify.load(fifo)


def test_the_command_reports_a_broken_system_file(ctrl_dir, capsys):
    from certify.cli import run

    path = ctrl_dir / "system.yaml"
    path.write_text("plant: {A: [[1]\ncontroller: {onnx: controller.onnx}\n", encoding="utf-8")
    box = ctrl_dir / "box.yaml"
    box.write_text("states:\n  a: [0, 1]\n  b: [0, 1]\n", encoding="utf-8")
    assert run([str(path), "--region", str(box), "--quiet"]) == 3
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "not valid YAML" in err and str(path) in err, err


# --------------------------------------------------------------------------- the committed zoo (smoke)
def _is_deep_markov(onnx_path) -> bool:
    """A zoo model whose region file names two heads (mean and noise): tested with its heads, not as one f(x)
    (tests/test_deep_markov.py: test_zoo_model_heads_match_onnxruntime)."""
    box = onnx_path.with_suffix(".box.yaml")
    return box.exists() and "heads:" in box.read_text(encoding="utf-8")


ZOO_MODELS = sorted(p.name for p in ZOO.glob("*.onnx")
                    if not p.name.endswith("_controller.onnx") and not _is_deep_markov(p))
ZOO_SYSTEMS = sorted(p.name for p in ZOO.glob("*.system.yaml"))


def test_zoo_is_present():
    assert len(ZOO_MODELS) >= 6 and len(ZOO_SYSTEMS) >= 2


@pytest.mark.parametrize("name", ZOO_MODELS)
def test_zoo_model_ir_matches_onnxruntime(name):
    from certify.importers import load_onnx

    net = load_onnx(ZOO / name)
    sess = ort.InferenceSession(str(ZOO / name), providers=["CPUExecutionProvider"])
    x = np.random.default_rng(0).uniform(-1, 1, size=(32, net.n_in))
    feeds, start = {}, 0
    for inp in sess.get_inputs():
        size = inp.shape[-1]
        feeds[inp.name] = x[:, start:start + size].astype(np.float32)
        start += size
    assert start == net.n_in
    want = sess.run(None, feeds)[0].astype(np.float64)
    assert np.max(np.abs(net.forward(x) - want)) <= tol(want)


@pytest.mark.parametrize("name", ZOO_SYSTEMS)
def test_zoo_system_matches_simulation(name):
    system = read_system(ZOO / name)
    net = system.network()
    x = np.random.default_rng(0).uniform(-3, 3, size=(32, system.n_states))
    pi = ort_controller(Path(system.controller_path))
    want = simulate(system.A, system.B, system.c, pi, x, system.u_min, system.u_max)
    assert np.max(np.abs(net.forward(x) - want)) <= tol(want)
    assert is_system_file(ZOO / name) and not math.isnan(float(net.forward(x).sum()))

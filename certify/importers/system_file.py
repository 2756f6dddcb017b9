"""Closed-loop systems: a known linear plant composed with a trained controller, as ONE :class:`Network`.

A system file (YAML, read by :func:`certify.importers.yaml_file.read_yaml`: safe, strict, bounded)::

    plant:
      A: [[1, 1], [0, 1]]      # n x n
      B: [[0.5], [1]]          # n x m
      c: [0, 0]                # optional, length n
    controller:
      onnx: controller.onnx    # path relative to the system file
      u_min: [-1]              # optional, together with u_max (length m, or one number for every input)
      u_max: [1]

describes ``x+ = A x + B u + c`` with ``u = clip(pi(x), u_min, u_max)`` (no clipping without bounds), ``pi`` the
controller (n inputs, m outputs). The composition (DESIGN.md section 2: skip S = A, last layer premultiplied by B):

* without clipping: the controller's hidden layers unchanged; ``out_weight = B W_K``, ``out_bias = B b_K + c``,
  ``skip = A + B S_pi`` (``S_pi`` the controller's own skip, usually absent);
* with clipping: one more hidden layer ``clip(W_K h_K + b_K)`` of width m with activation
  :func:`certify.ir.activations.clip` ``(lo, hi)`` when every input shares the bounds [lo, hi]; when the bounds differ
  per input the layer is normalised, ``u_i = s_i + d_i clip((v_i - s_i) / d_i, -1, 1)`` with centre ``s_i`` and
  half-width ``d_i`` (the same map; only the factorisation, hence A*, differs); then ``out_weight = B`` (or
  ``B diag(d)``), ``out_bias = c`` (or ``B s + c``), ``skip = A``.

Soundness assumption: the composition is an algebraic identity (exact up to float64 rounding of B W_K); the
controller's own IR is trusted as far as the ONNX importer's agreement check with onnxruntime goes. Errors are
:class:`~certify.errors.SystemFileError` with one line naming the file and the key.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..errors import ModelError, SystemFileError
from ..ir import activations as acts
from ..ir.network import Layer, Network
from .yaml_file import Limits, finite_number, read_text, read_yaml

_TOP_KEYS = ("plant", "controller")
_REGION_KEYS = {"states", "inputs", "lower", "upper"}
# a system file: a few matrices; A of a 1000-state plant is 10^6 numbers
LIMITS = Limits(max_bytes=64 << 20, max_depth=8, max_items=100_000, max_nodes=4_000_000)
_PLANT_KEYS = ("A", "B", "c")
_CONTROLLER_KEYS = ("onnx", "u_min", "u_max")


@dataclass(frozen=True, eq=False)
class ClosedLoop:
    """A parsed system file: plant ``A`` (n, n), ``B`` (n, m), ``c`` (n,), the controller IR (n -> m), and the
    input bounds ``u_min``/``u_max`` (m,) or None (no clipping). ``path`` is the system file."""

    A: np.ndarray
    B: np.ndarray
    c: np.ndarray
    controller: Network
    u_min: np.ndarray | None
    u_max: np.ndarray | None
    path: str = "<system>"
    controller_path: str = ""

    @property
    def n_states(self) -> int:
        return self.A.shape[0]

    @property
    def n_controls(self) -> int:
        return self.B.shape[1]

    def control(self, x: np.ndarray) -> np.ndarray:
        """u = clip(pi(x), u_min, u_max) for x (B, n) or (n,); evaluated through the controller IR."""
        u = self.controller.forward(x)
        return u if self.u_min is None else np.clip(u, self.u_min, self.u_max)

    def step(self, x: np.ndarray) -> np.ndarray:
        """x+ = A x + B u + c, simulated plant-then-controller (not through the composed IR)."""
        x = np.asarray(x, dtype=np.float64)
        return x @ self.A.T + self.control(x) @ self.B.T + self.c

    def network(self) -> Network:
        return compose(self.A, self.B, self.c, self.controller, self.u_min, self.u_max, self.path)


# --------------------------------------------------------------------------- composition
def compose(
    A: np.ndarray,
    B: np.ndarray,
    c: np.ndarray | None,
    controller: Network,
    u_min: np.ndarray | None = None,
    u_max: np.ndarray | None = None,
    where: str = "<system>",
) -> Network:
    """The closed loop x+ = A x + B clip(pi(x), u_min, u_max) + c as one Network (see the module docstring).

    Shapes: A (n, n), B (n, m), c (n,) or None, controller n -> m with no exogenous inputs, u_min/u_max (m,) or
    both None. Raises SystemFileError (naming ``where``) on shapes that do not fit.
    """
    A = np.asarray(A, dtype=np.float64)
    B = np.asarray(B, dtype=np.float64)
    n, m = B.shape
    c = np.zeros(n) if c is None else np.asarray(c, dtype=np.float64)
    if A.shape != (n, n) or c.shape != (n,):
        raise SystemFileError(f"{where}: plant shapes A {A.shape}, B {B.shape}, c {c.shape} do not fit together")
    if controller.n_in != n or controller.n_out != m:
        raise SystemFileError(
            f"{where}: controller: maps {controller.n_in} -> {controller.n_out} but the plant needs "
            f"{n} states -> {m} inputs"
        )
    if (u_min is None) != (u_max is None):
        raise SystemFileError(f"{where}: controller: give both u_min and u_max, or neither")
    layers = list(controller.layers)
    W, b, S = controller.out_weight, controller.out_bias, controller.skip
    if u_min is None:
        skip = A if S is None else A + B @ S
        return Network(tuple(layers), B @ W, B @ b + c, skip, n_states=n)
    lo = np.asarray(u_min, dtype=np.float64).reshape(m)
    hi = np.asarray(u_max, dtype=np.float64).reshape(m)
    if S is not None:
        if layers:
            raise SystemFileError(
                f"{where}: controller: a controller with a linear skip around hidden layers cannot be clipped "
                f"exactly; export it without the skip or drop u_min/u_max"
            )
        W, S = W + S, None  # an affine controller: v = (W + S) x + b
    if np.all(lo == lo[0]) and np.all(hi == hi[0]):
        layers.append(Layer(W, b, acts.clip(float(lo[0]), float(hi[0]))))
        return Network(tuple(layers), B, c, A, n_states=n)
    centre, half = 0.5 * (lo + hi), 0.5 * (hi - lo)
    scale = np.where(half > 0, 1.0 / np.where(half > 0, half, 1.0), 0.0)  # a fixed input: weight 0, u_i = lo_i
    layers.append(Layer(scale[:, None] * W, scale * (b - centre), acts.clip(-1.0, 1.0)))
    return Network(tuple(layers), B * half[None, :], B @ centre + c, A, n_states=n)


# --------------------------------------------------------------------------- the file
def _matrix(path: str, key: str, value) -> np.ndarray:
    if not isinstance(value, list) or not value or not all(isinstance(r, list) and r for r in value):
        raise SystemFileError(f"{path}: {key} must be a non-empty list of rows, e.g. [[1, 0], [0, 1]]")
    widths = {len(r) for r in value}
    if len(widths) != 1:
        raise SystemFileError(f"{path}: {key} has rows of different lengths {sorted(widths)}")
    return np.array([[_number(path, f"{key}[{i}][{j}]", v) for j, v in enumerate(r)] for i, r in enumerate(value)])


def _number(path: str, key: str, v) -> float:
    return finite_number(path, key, v, SystemFileError)


def _vector(path: str, key: str, value, size: int) -> np.ndarray:
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return np.full(size, _number(path, key, value))
    if not isinstance(value, list):
        raise SystemFileError(f"{path}: {key} must be a list of {size} numbers, got {value!r}")
    if len(value) != size:
        raise SystemFileError(f"{path}: {key} has {len(value)} entries but the plant needs {size}")
    return np.array([_number(path, f"{key}[{i}]", v) for i, v in enumerate(value)])


def _mapping(path: str, key: str, value, allowed: tuple[str, ...], required: tuple[str, ...]) -> dict:
    if not isinstance(value, dict):
        raise SystemFileError(f"{path}: '{key}' must be a mapping with keys {', '.join(allowed)}")
    unknown = sorted(set(map(str, value)) - set(allowed))
    if unknown:
        raise SystemFileError(f"{path}: unknown key '{key}.{unknown[0]}'; allowed keys are {', '.join(allowed)}")
    for r in required:
        if r not in value:
            raise SystemFileError(f"{path}: '{key}.{r}' is missing")
    return value


def _load_controller(path: str, onnx_path: Path) -> Network:
    from . import load_onnx

    if not onnx_path.is_file():
        raise SystemFileError(f"{path}: controller.onnx: file {onnx_path} not found")
    try:
        return load_onnx(str(onnx_path))
    except ModelError as exc:
        message = " ".join(str(exc).split())
        raise SystemFileError(f"{path}: controller.onnx: cannot import {onnx_path}: {message}") from None


def parse_system(data, path: str = "<system>", base: Path | None = None) -> ClosedLoop:
    """Validate a parsed system file and import its controller (ONNX path relative to ``base``)."""
    if not isinstance(data, dict):
        raise SystemFileError(f"{path}: a system file must be a mapping with keys 'plant' and 'controller'")
    if "plant" not in data and _REGION_KEYS & set(data):
        raise SystemFileError(
            f"{path}: 'plant' is missing: this looks like a region file; give it with --region, and as the model an "
            "ONNX file or a system file with 'plant' (A, B, c) and 'controller' (onnx, u_min, u_max)"
        )
    unknown = sorted(set(map(str, data)) - set(_TOP_KEYS))
    if unknown:
        raise SystemFileError(f"{path}: unknown key '{unknown[0]}'; allowed keys are plant, controller")
    for key in _TOP_KEYS:
        if key not in data:
            raise SystemFileError(f"{path}: '{key}' is missing; a system file has 'plant' (A, B, c) and 'controller' "
                                  "(onnx, u_min, u_max)")
    plant = _mapping(path, "plant", data["plant"], _PLANT_KEYS, ("A", "B"))
    ctrl = _mapping(path, "controller", data["controller"], _CONTROLLER_KEYS, ("onnx",))
    A = _matrix(path, "plant.A", plant["A"])
    n = A.shape[0]
    if A.shape != (n, n):
        raise SystemFileError(f"{path}: plant.A must be square (n x n), got {A.shape[0]} x {A.shape[1]}")
    B = _matrix(path, "plant.B", plant["B"])
    if B.shape[0] != n:
        raise SystemFileError(f"{path}: plant.B must have n = {n} rows (one per state), got {B.shape[0]}")
    m = B.shape[1]
    c = _vector(path, "plant.c", plant["c"], n) if "c" in plant else np.zeros(n)
    if ("u_min" in ctrl) != ("u_max" in ctrl):
        missing = "u_max" if "u_min" in ctrl else "u_min"
        raise SystemFileError(f"{path}: controller.{missing} is missing; give both u_min and u_max, or neither")
    u_min = u_max = None
    if "u_min" in ctrl:
        u_min = _vector(path, "controller.u_min", ctrl["u_min"], m)
        u_max = _vector(path, "controller.u_max", ctrl["u_max"], m)
        bad = np.flatnonzero(u_min > u_max)
        if bad.size:
            i = int(bad[0])
            raise SystemFileError(
                f"{path}: controller.u_min[{i}] = {u_min[i]:g} > controller.u_max[{i}] = {u_max[i]:g}; swap them"
            )
    if not isinstance(ctrl["onnx"], str) or not ctrl["onnx"].strip():
        raise SystemFileError(f"{path}: controller.onnx must be a file name, got {ctrl['onnx']!r}")
    onnx_path = Path(ctrl["onnx"])
    if not onnx_path.is_absolute() and base is not None:
        onnx_path = base / onnx_path
    controller = _load_controller(path, onnx_path)
    if controller.n_inputs:
        raise SystemFileError(
            f"{path}: controller.onnx: {onnx_path} takes {controller.n_inputs} exogenous inputs besides the state; "
            f"a controller must be u = pi(x)"
        )
    if controller.n_in != n:
        raise SystemFileError(
            f"{path}: controller.onnx: {onnx_path} takes {controller.n_in} inputs but plant.A has n = {n} states"
        )
    if controller.n_out != m:
        raise SystemFileError(
            f"{path}: controller.onnx: {onnx_path} has {controller.n_out} outputs but plant.B has m = {m} columns"
        )
    return ClosedLoop(A, B, c, controller, u_min, u_max, path, str(onnx_path))


def read_system(path: str | Path) -> ClosedLoop:
    """Read and validate a system file (:func:`certify.importers.yaml_file.read_yaml`: no Python tags, no duplicate
    keys, YAML 1.2 scalars, bounded size) and import its controller."""
    if not isinstance(path, (str, os.PathLike)) or isinstance(path, bytes):
        raise TypeError(f"read_system needs a path (str or pathlib.Path), got {type(path).__name__}")
    p = Path(path)
    return parse_system(read_yaml(p, SystemFileError, "system file", LIMITS), str(p), p.resolve().parent)


def load_system(path: str | Path) -> Network:
    """The closed loop of a system file as one Network IR (n states, no exogenous inputs)."""
    return read_system(path).network()


def is_system_file(path: str | Path) -> bool:
    """True when the model ``path`` is to be read as a system file (never raises, never blocks).

    A name ending in ``.yaml`` or ``.yml`` always is (so a syntax error, a missing ``plant`` or a refused tag is
    reported by :func:`read_system`, not as an unknown model format); a regular file of another suffix (not
    ``.onnx``) is when its text has a top-level ``plant:`` key.
    """
    if not isinstance(path, (str, os.PathLike)) or isinstance(path, bytes):
        return False
    p = Path(path)
    suffix = p.suffix.lower()
    if suffix in (".yaml", ".yml"):
        return True
    if suffix == ".onnx":
        return False
    try:
        text = read_text(p, SystemFileError, "system file", 1 << 20)
    except SystemFileError:
        return False
    return re.search(r"^plant\s*:", text, re.MULTILINE) is not None

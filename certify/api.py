"""The Python entry points: load a model, read a box, verify, get a :class:`~certify.report.report.Report`."""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Iterable

import numpy as np

from .certificate import CheckName
from .checks import DEFAULT_CHECKS, align, parse_checks, run_checks
from .config import VerifyConfig
from .errors import ModelMismatchError
from .importers.region_file import Region, load_region
from .ir.box import Box
from .ir.network import Network
from .report.report import Report


def load(path: str | Path, n_states: int | None = None) -> Network:
    """Import a model: an ONNX file, or a closed-loop system file (YAML with a ``plant`` and an ONNX controller).

    An ONNX model is refused if the IR disagrees with onnxruntime; a system file composes plant and controller
    into one IR (see :mod:`certify.importers.system_file`).
    """
    # deferred on purpose: the ONNX importers load onnx and onnxruntime, which a run on a Network does not need
    from .importers.system_file import is_system_file, load_system

    if is_system_file(path):
        return load_system(path)
    from .importers import load_model

    return load_model(path) if n_states is None else load_model(path, n_states=n_states)


def file_sha256(path: str | Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def verify(
    model: str | Path | Network,
    box: str | Path | Box | Region,
    checks: str | Iterable[str] | Iterable[CheckName] = DEFAULT_CHECKS,
    config: VerifyConfig | None = None,
    progress=None,
) -> Report:
    """Verify ``model`` over ``box``.

    ``model``: an ONNX path or a Network; ``box``: a region-file path or a Box; ``checks``: names or CheckNames
    ('dissipativity', 'contraction', 'weight_norm', 'gain', ...). The norm and margin of a region file apply unless
    ``config`` is given explicitly.
    """
    box_path = "region"
    if isinstance(box, (str, Path, Region)):
        region = box if isinstance(box, Region) else load_region(box)
        box_path = region.path or box_path
        if config is None:
            config = config_for_region(region)
        box = region.box
    config = config or VerifyConfig()
    if isinstance(model, (str, Path)):
        path = str(model)
        net = load(model)
        sha = file_sha256(model)
        net, box = align(net, box, box_path)
        _recheck_on_box(net, path, box, config)
    else:
        path, sha, net = "<in-memory>", "", model
        net, box = align(net, box, box_path)
    if checks and all(isinstance(c, CheckName) for c in checks):
        names = tuple(checks)
    else:
        names = parse_checks(checks)
    results = run_checks(net, box, names, config, progress)
    return Report(path, sha, net.describe(), box, config.norm, config.margin, results, network=net)


def config_for_region(region, **overrides) -> VerifyConfig:
    """A VerifyConfig taking norm and margin from the region file, unless given in ``overrides`` (not None)."""
    values = {}
    if region.norm is not None:
        values["norm"] = region.norm
    if region.margin is not None:
        values["margin"] = region.margin
    values.update({k: v for k, v in overrides.items() if v is not None})
    return VerifyConfig(**values)


def _recheck_on_box(net: Network, path: str, box: Box, config: VerifyConfig) -> None:
    """Re-run the IR-versus-onnxruntime agreement check on points of the box itself (vertices and samples).

    For a system file the controller is checked on the state part of those points and the composed IR against
    simulating the plant with the controller.
    """
    from .importers import check_agreement_onnx  # deferred on purpose (onnxruntime), as in load()
    from .importers.system_file import is_system_file, read_system

    rng = np.random.default_rng(config.seed)
    pts = box.lower + (box.upper - box.lower) * rng.random((256, box.dim))
    corners = box.lower + (box.upper - box.lower) * rng.integers(0, 2, size=(64, box.dim))
    points = np.vstack([pts, corners, box.center[None]])
    if not is_system_file(path):
        check_agreement_onnx(net, path, points)
        return
    loop = read_system(path)
    check_agreement_onnx(loop.controller, loop.controller_path, points[:, : loop.n_states])
    composed, simulated = net.forward(points), loop.step(points[:, : loop.n_states])
    err = float(np.max(np.abs(composed - simulated)))
    if err > 1e-9 * (1.0 + float(np.max(np.abs(simulated)))):
        raise ModelMismatchError(f"{path}: the composed closed loop differs from simulating plant and controller "
                                 f"by {err:.3g} on the box; please report this")

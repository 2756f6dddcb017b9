"""The Python entry points: load a model, read a box, verify, get a :class:`~certify.report.report.Report`."""

from __future__ import annotations

import hashlib
import os
import time
from functools import partial
from pathlib import Path
from typing import Iterable

import numpy as np

from .certificate import CheckName
from .checks import DEFAULT_CHECKS, align, parse_checks, run_checks
from .checks.file_box import on_file_box
from .config import VerifyConfig
from .errors import ModelMismatchError
from .importers.region_file import Region, load_region
from .importers.vnnlib import input_count_error, is_vnnlib
from .ir.box import Box
from .ir.network import Network
from .ir.stochastic import DeepMarkovModel
from .report.provenance import Provenance
from .report.report import Report


def load(path: str | Path, n_states: int | None = None) -> Network:
    """Import a model: an ONNX file, or a closed-loop system file (YAML with a ``plant`` and an ONNX controller).

    An ONNX model is refused if the IR disagrees with onnxruntime; a system file composes plant and controller
    into one IR (see :mod:`certify.importers.system_file`).
    """
    # deferred on purpose: the ONNX importers load onnx and onnxruntime, which a run on a Network does not need
    from .importers import check_model_path
    from .importers.system_file import is_system_file, load_system

    check_model_path(path)  # a missing path or a folder gets a message that says so
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
    model: str | Path | Network | DeepMarkovModel,
    box: str | Path | Box | Region,
    checks: str | Iterable[str] | Iterable[CheckName] | None = None,
    config: VerifyConfig | None = None,
    progress=None,
) -> Report:
    """Verify ``model`` over ``box``.

    ``model``: an ONNX path, a Network or a DeepMarkovModel; ``box``: a region-file path (``box.yaml``, or a VNNLIB
    property ``prop.vnnlib``), a Box or a Region; ``checks``: names or CheckNames ('dissipativity', 'contraction',
    'weight_norm', 'gain', ...; default: dissipativity, or output_bounds for a region with an output property).
    The norm and margin of a region file apply unless ``config`` is given explicitly. A region file's ``heads``
    key makes an ONNX model with two outputs a deep Markov model: the deterministic checks run on its mean head and
    ``mean_square`` uses both.
    """
    names = _check_names(checks) if checks is not None else None
    _check_types(model, box, config, progress)
    if isinstance(model, (str, os.PathLike)):  # a wrong model path is reported before anything in the region
        from .importers import check_model_path

        check_model_path(model)
    if config is not None:
        _check_backends(config)
    box_path, region = "region", None
    if isinstance(box, (str, os.PathLike, Region)):
        region = box if isinstance(box, Region) else load_region(box)
        box_path = region.path or box_path
        if config is None:
            config = config_for_region(region)
        box = region.box
    if names is None:
        names = (CheckName.OUTPUT_BOUNDS,) if region is not None and region.outputs is not None else DEFAULT_CHECKS
    config = config or VerifyConfig()
    heads = None if region is None else region.heads
    noise = None
    if isinstance(model, (str, os.PathLike)):
        path = os.fspath(model)
        if heads is not None:
            from .importers.deep_markov import load_deep_markov  # deferred on purpose (onnx), as in load()

            dmm = load_deep_markov(path, heads)
            net, noise = dmm.mean, dmm.noise
        else:
            net = load(model)
        sha = file_sha256(model)
        net, box = _align(net, box, box_path, region)
        _recheck_on_box(net, path, box, config, heads, noise)
    else:
        path, sha = "<in-memory>", ""
        net, noise = (model.mean, model.noise) if isinstance(model, DeepMarkovModel) else (model, None)
        net, box = _align(net, box, box_path, region)
    provenance = Provenance.of(config, device_used=config.torch_device())
    deadline = time.perf_counter() + config.timeout  # --timeout bounds the whole run, the searches again included
    settle = None
    if region is not None and region.inner is not None:  # bounds rounded outward: results on the file's box

        def rerun(check, inner_box, inner_config):
            return run_checks(net, inner_box, (check,), inner_config, outputs=region.outputs, noise=noise)[0]

        def settle(result):
            return on_file_box(result, net, box, region.inner, config, partial(rerun, result.check), deadline)

    results = run_checks(net, box, names, config, progress, outputs=None if region is None else region.outputs,
                         noise=noise, settle=settle)
    return Report(path, sha, net.describe(), box, config.norm, config.margin, results, network=net,
                  provenance=provenance, outputs=None if region is None else region.outputs)


def _check_names(checks) -> tuple[CheckName, ...]:
    """The checks asked for: a name, a CheckName, or an iterable of them (TypeError for anything else)."""
    if isinstance(checks, CheckName):
        return (checks,)
    if isinstance(checks, str):
        return parse_checks(checks)
    try:
        items = list(checks)
    except TypeError:
        raise TypeError(f"certify.verify: checks must be a name, a CheckName or a list of them, got "
                        f"{type(checks).__name__}") from None
    for c in items:
        if not isinstance(c, (str, CheckName)):
            raise TypeError(f"certify.verify: each check must be a name (str) or a CheckName, got {c!r}")
    names = []
    for c in items:
        for name in (c,) if isinstance(c, CheckName) else parse_checks([c]):
            if name not in names:
                names.append(name)
    return parse_checks([]) if not names else tuple(names)


def _align(net: Network, box: Box, box_path: str, region: Region | None) -> tuple[Network, Box]:
    """:func:`align`, with the VNNLIB wording when a VNNLIB file declares another number of inputs."""
    if region is not None and is_vnnlib(region.path) and box.dim != net.n_in:
        raise input_count_error(region.path, box.dim, net.n_in)
    return align(net, box, box_path)


def _check_types(model, box, config, progress) -> None:
    if isinstance(model, bytes) or not isinstance(model, (str, os.PathLike, Network, DeepMarkovModel)):
        raise TypeError(f"certify.verify: model must be a path (str or pathlib.Path) to an ONNX or system file, a "
                        f"certify.Network or a certify.DeepMarkovModel, got {type(model).__name__}")
    if isinstance(box, bytes) or not isinstance(box, (str, os.PathLike, Box, Region)):
        raise TypeError(f"certify.verify: box must be a region-file path, a certify.Box or a certify.Region, got "
                        f"{type(box).__name__}; build one with certify.Box(lower, upper)")
    if config is not None and not isinstance(config, VerifyConfig):
        raise TypeError(f"certify.verify: config must be a certify.VerifyConfig or None, got {type(config).__name__}"
                        "; write VerifyConfig(samples=..., ...)")
    if progress is not None and not callable(progress):
        raise TypeError(f"certify.verify: progress must be callable(check, result_or_None) or None, got "
                        f"{type(progress).__name__}")


def _check_backends(config: VerifyConfig) -> None:
    """UnknownBackendError (a CertifyError: exit 3 on the command line) for a back-end name of ``config.solvers``
    that the registry does not know, before any work starts (it would otherwise surface, or not, deep in a check)."""
    from .solvers import registry

    kinds = {"lp": registry.ProblemKind.LP_SEQUENCE, "lp_relaxation": registry.ProblemKind.MILP,
             "milp": registry.ProblemKind.MILP, "sdp": registry.ProblemKind.SDP}
    for option, kind in kinds.items():
        try:
            registry.registered_name(getattr(config.solvers, option), kind)
        except registry.UnknownBackendError as exc:
            raise registry.UnknownBackendError(f"VerifyConfig(solvers=SolverChoice({option}=...)): {exc}") from None


def config_for_region(region, **overrides) -> VerifyConfig:
    """A VerifyConfig taking norm, margin and metric from the region file, unless given in ``overrides`` (not
    None): :meth:`certify.importers.region_file.Region.config`."""
    return region.config(**overrides)


def _recheck_on_box(net: Network, path: str, box: Box, config: VerifyConfig, heads=None, noise=None) -> None:
    """Re-run the IR-versus-onnxruntime agreement check on points of the box itself (vertices and samples).

    For a system file the controller is checked on the state part of those points and the composed IR against
    simulating the plant with the controller; for a deep Markov model (``heads``) each head against its output.
    """
    from .importers import check_agreement_onnx  # deferred on purpose (onnxruntime), as in load()
    from .importers.system_file import is_system_file, read_system

    rng = np.random.default_rng(config.seed)
    pts = box.lower + (box.upper - box.lower) * rng.random((256, box.dim))
    corners = box.lower + (box.upper - box.lower) * rng.integers(0, 2, size=(64, box.dim))
    points = np.vstack([pts, corners, box.center[None]])
    if heads is not None:
        from .importers.deep_markov import recheck_on_box  # deferred on purpose, as above

        recheck_on_box(DeepMarkovModel(net, noise), path, heads, points)
        return
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

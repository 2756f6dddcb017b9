"""``certify-proof check --reimport``: bind a proof's IR weights to the model file by importing the model again.

The checker alone binds a proof to MODEL by its sha256 and re-proves each claim about the IR weights the proof
records; it does not parse ONNX (that would need onnx and certify's importer, which it must not load). This
optional step closes that gap for a reviewer who accepts certify's importer (it loads onnx and onnxruntime and
checks the IR against onnxruntime): the model is imported again and its IR, written as exact decimal strings, must
equal the proof's entry by entry. Without it, a proof whose weights were edited is still rejected whenever the
edit breaks a claim, and a model file that differs from the proof's is always rejected (sha256).
"""

from __future__ import annotations

from pathlib import Path

from .checker import _one_line, _short


def _brief(value) -> str:
    """repr(value) on one line, shortened (a whole weight matrix, a 4000-digit integer)."""
    return _short(value, 60)


def _first_difference(got, want, where: str) -> str | None:
    """The path of the first entry where two network specs differ (with both values, shortened), or None."""
    if isinstance(got, dict) and isinstance(want, dict):
        for key in sorted(set(got) | set(want)):
            found = _first_difference(got.get(key), want.get(key), f"{where}.{key}")
            if found:
                return found
        return None
    if isinstance(got, list) and isinstance(want, list):
        if len(got) != len(want):
            return f"{where} (length {len(want)} in the proof, {len(got)} in the model)"
        for k, (a, b) in enumerate(zip(got, want)):
            found = _first_difference(a, b, f"{where}[{k}]")
            if found:
                return found
        return None
    return None if got == want else f"{where} ({_brief(want)} in the proof, {_brief(got)} in the model)"


def network_mismatch(proof: dict, model_path: str | Path, n_states: int | None = None) -> str | None:
    """Import ``model_path`` with certify's importer and compare its IR with the proof's: None when they are equal,
    else the reason (the first differing entry, or the importer's refusal). ``n_states``: the state count the
    region file gives (imported with that count, so a proof that claims fewer states differs); None (a
    ``lower``/``upper`` file): the model's own count, as certify imports it for such a file, never the proof's. The
    checker turns it into its ``network`` step."""
    # deferred on purpose: certify's importers (onnx, onnxruntime) are loaded only when --reimport asks for them
    from ..api import load
    from ..errors import CertifyError
    from .producer import network_spec

    spec = proof.get("network")
    if not isinstance(n_states, int) or isinstance(n_states, bool):  # True is an int to Python, not to the importer
        n_states = None  # the model's own count, as certify reads a region file without one: the proof's differs
    try:
        net = load(model_path, n_states=n_states)
    except CertifyError as exc:
        return f"{model_path}: certify's importer refuses the model ({_one_line(exc, 200)})"
    found = _first_difference(network_spec(net), spec, "network")
    return f"the proof's IR is not the model's: first difference at {found}" if found else None

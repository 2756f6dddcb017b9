"""Lazy exports of a package (PEP 562): a public name is imported from its module on first use, not at import time.

``certify`` and ``certify.importers`` use it so that importing them (and so any of their submodules) loads neither
torch, onnx, onnxruntime nor the engines. This module imports nothing but :mod:`importlib`.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable


def lazy_exports(package: str, exports: dict[str, str], namespace: dict) -> tuple[Callable, Callable]:
    """The module-level ``__getattr__`` and ``__dir__`` of the package named ``package``.

    ``exports`` maps each public name to the module that defines it; ``namespace`` is the package's ``globals()``.
    A name is imported on first look-up and stored in ``namespace``, so later look-ups do not reach ``__getattr__``.
    """

    def __getattr__(name: str):
        module = exports.get(name)
        if module is None:
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        value = getattr(importlib.import_module(module), name)
        namespace[name] = value  # later look-ups skip this function
        return value

    def __dir__() -> list[str]:
        return sorted(set(namespace) | set(exports))

    return __getattr__, __dir__

"""Look up LP/MILP backends by name: ``get_backend('cbc')``, ``get_backend('highs')``, ``available_backends()``.

Every backend satisfies the :class:`Backend` protocol. Looking one up never imports its solver library (that happens
inside ``solve`` / ``available``), so a missing library shows up as ``SolveStatus.NOT_INSTALLED``, never as an
ImportError at lookup. Adding a backend is one file plus one line in ``_FACTORIES``.
"""

from __future__ import annotations

from typing import Callable, Protocol, runtime_checkable

from .base import LinearProgram, SolveResult

DEFAULT_BACKEND = "cbc"


class UnknownBackendError(ValueError):
    """A backend name that is not registered (the message lists the names that are)."""


@runtime_checkable
class Backend(Protocol):
    """An LP/MILP solver behind the shared interface.

    ``name``: registry name; ``supports_integer``: whether ``integer`` variables are honoured;
    ``feasibility_tolerance``: the primal (and integrality) feasibility tolerance the backend asks its solver for,
    which callers use to pad dual bounds (a bound is a floating-point claim, see :mod:`certify.solvers.base`).
    A backend may also set ``parallel_safe = True`` when ``solve`` may run from several threads at once (read
    with ``getattr(backend, "parallel_safe", False)``: absent means no).
    ``solve`` never raises: solver trouble comes back as ``SolveStatus.ERROR`` with the message, a missing
    library as ``SolveStatus.NOT_INSTALLED``.
    """

    name: str
    supports_integer: bool
    feasibility_tolerance: float

    def available(self) -> bool: ...

    def solve(self, problem: LinearProgram, time_limit: float) -> SolveResult: ...


def _cbc() -> Backend:
    from .milp_pulp import PulpCbcBackend

    return PulpCbcBackend()


def _highs() -> Backend:
    from .milp_highs import HighsBackend

    return HighsBackend()


_FACTORIES: dict[str, Callable[[], Backend]] = {"cbc": _cbc, "highs": _highs}
_ALIASES = {"pulp": "cbc", "pulp_cbc": "cbc", "coin": "cbc", "highspy": "highs"}


def backend_names() -> tuple[str, ...]:
    """Every registered backend name (installed or not)."""
    return tuple(_FACTORIES)


def get_backend(name: str = DEFAULT_BACKEND) -> Backend:
    """The backend registered under ``name`` (case-insensitive; 'pulp' and 'highspy' are aliases)."""
    key = str(name).strip().lower()
    key = _ALIASES.get(key, key)
    if key not in _FACTORIES:
        raise UnknownBackendError(
            f"unknown MILP backend {name!r}; choose one of {', '.join(backend_names())}"
        )
    return _FACTORIES[key]()


def available_backends() -> tuple[str, ...]:
    """Names of the backends whose solver library is installed and runs here."""
    return tuple(n for n in backend_names() if get_backend(n).available())

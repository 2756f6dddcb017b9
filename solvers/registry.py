"""The one registry of solver back-ends, by problem kind and name.

* ``ProblemKind.MILP``: a :class:`~certify.solvers.base.LinearProgram` (LP, or MILP when it marks integer
  variables) solved once: ``cbc`` (through pulp) and ``highs`` (through highspy);
* ``ProblemKind.LP_SEQUENCE``: many small LPs over one growing polytope, warm-started (the region traversal):
  ``highs`` (:class:`~certify.solvers.lp.LPSolver`);
* ``ProblemKind.SDP``: a :class:`~certify.solvers.sdp.SemidefiniteProgram`: ``scs`` and ``clarabel`` (through cvxpy),
  ``ipm`` (:mod:`certify.solvers.sdp_ipm`, numpy/scipy, exploits low-rank coefficients).

``get_backend(name, kind)`` returns a new back-end object (LP sequences keep state, so each search gets its own);
which name serves which problem in a run comes from :class:`certify.config.SolverChoice`. Looking a back-end up
never imports its solver library (that happens inside ``solve`` / ``available``), so a missing library shows up as
``SolveStatus.NOT_INSTALLED``, never as an ImportError at lookup. Adding a back-end is one file plus one line in
``_FACTORIES``.
"""

from __future__ import annotations

import enum
from typing import Callable, Protocol, runtime_checkable

from ..errors import CertifyError
from .base import LinearProgram, SolveResult

DEFAULT_BACKEND = "cbc"


class ProblemKind(str, enum.Enum):
    MILP = "milp"
    LP_SEQUENCE = "lp_sequence"
    SDP = "sdp"

    @property
    def label(self) -> str:
        return {"milp": "MILP", "lp_sequence": "LP", "sdp": "SDP"}[self.value]


class UnknownBackendError(CertifyError):
    """A back-end name that is not registered for a problem kind (the message lists the names that are): a usage
    error (a ValueError; the command line reports it on one line with exit code 3)."""


class BackendUnavailableError(RuntimeError):
    """A stateful back-end (an LP sequence) that cannot be created here: its library is missing or fails to start.
    Engines that need it answer ``unknown`` with this message; it is never a user error."""


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


def _cbc():
    from .milp_pulp import PulpCbcBackend

    return PulpCbcBackend()


def _highs():
    from .milp_highs import HighsBackend

    return HighsBackend()


def _highs_lp():
    try:
        from .lp import LPSolver

        return LPSolver()
    except Exception as exc:  # noqa: BLE001 - a missing or broken highspy is reported, never raised raw
        raise BackendUnavailableError(f"the LP back-end 'highs' cannot run here (highspy: {exc}); "
                                      "install highspy") from None


def _sdp(name: str):
    def make():
        from .sdp import CvxpySdpBackend

        return CvxpySdpBackend(name)

    return make


def _sdp_ipm():
    from .sdp_ipm import InteriorPointSdpBackend

    return InteriorPointSdpBackend()


_FACTORIES: dict[tuple[ProblemKind, str], Callable[[], object]] = {
    (ProblemKind.MILP, "cbc"): _cbc,
    (ProblemKind.MILP, "highs"): _highs,
    (ProblemKind.LP_SEQUENCE, "highs"): _highs_lp,
    (ProblemKind.SDP, "scs"): _sdp("scs"),
    (ProblemKind.SDP, "clarabel"): _sdp("clarabel"),
    (ProblemKind.SDP, "ipm"): _sdp_ipm,
}
_ALIASES = {"pulp": "cbc", "pulp_cbc": "cbc", "coin": "cbc", "highspy": "highs"}


def backend_names(kind: ProblemKind = ProblemKind.MILP) -> tuple[str, ...]:
    """Every back-end name registered for ``kind`` (installed or not)."""
    return tuple(name for k, name in _FACTORIES if k is ProblemKind(kind))


def registered_name(name: str, kind: ProblemKind = ProblemKind.MILP) -> str:
    """The registry key ``name`` stands for under ``kind`` (case-insensitive, aliases resolved), or
    UnknownBackendError listing the registered names. Creates nothing and imports no solver library."""
    kind = ProblemKind(kind)
    key = str(name).strip().lower()
    key = _ALIASES.get(key, key)
    if (kind, key) not in _FACTORIES:
        raise UnknownBackendError(
            f"unknown {kind.label} backend {name!r}; choose one of {', '.join(backend_names(kind))}"
        )
    return key


def get_backend(name: str = DEFAULT_BACKEND, kind: ProblemKind = ProblemKind.MILP):
    """A new back-end object registered under ``name`` for ``kind`` (case-insensitive; 'pulp' and 'highspy' are
    aliases)."""
    kind = ProblemKind(kind)
    return _FACTORIES[(kind, registered_name(name, kind))]()


def available_backends(kind: ProblemKind = ProblemKind.MILP) -> tuple[str, ...]:
    """Names of the back-ends for ``kind`` whose solver library is installed and runs here."""
    return tuple(n for n in backend_names(kind) if get_backend(n, kind).available())

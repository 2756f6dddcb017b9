"""Scoped limits on the BLAS/LAPACK (and OpenMP) threads of this process.

Multi-threaded BLAS on the small dense matrices of the SDP back-end oversubscribes a shared machine: measured on 2
cores at load 3.3, a 256-neuron LipSDP took 21.4 s with the default threads against 1.34 s with one
(benchmarks/sdp_scaling.py). :func:`blas_threads` sets the limit for the duration of a block and restores the
previous one on leaving (threadpoolctl, a dependency); the caller's settings are never changed for longer.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager


@contextmanager
def blas_threads(limit: int) -> Iterator[None]:
    """At most ``limit`` threads in every BLAS/LAPACK and OpenMP library loaded in this process, inside the block.
    Without threadpoolctl installed the block runs with the settings as they are."""
    try:
        from threadpoolctl import threadpool_limits
    except ImportError:  # pragma: no cover - a dependency; kept optional for a bare environment
        yield
        return
    with threadpool_limits(limits=limit):
        yield

"""The workers of a Dask distributed cluster as a pool for :class:`certify.engines.parallel.ParallelSearch`
(``--cluster ADDRESS``; the optional extra ``distributed``).

Each search registers a worker plugin that holds its :class:`~certify.engines.parallel.SearchFactory` and builds
the engine's problem once per worker thread, on its first task; a task is one call of
:meth:`SearchFactory.run` there, so a Dask task gives exactly what a local worker gives for it. The cluster is
the caller's: closing the pool disconnects and removes the plugins, and leaves the scheduler and its workers up.
"""

from __future__ import annotations

import itertools
import threading
import uuid

from distributed import Client, get_worker
from distributed.diagnostics.plugin import WorkerPlugin

from ..errors import UsageError
from .parallel import SearchFactory, WorkerError, task_threads


class _SearchProblems(WorkerPlugin):
    """The problem of one factory on a Dask worker, one per thread of the worker (built on first use)."""

    def __init__(self, factory: SearchFactory) -> None:
        self.factory = factory
        self.problems: dict = {}

    def setup(self, worker) -> None:
        self.problems = {}

    def teardown(self, worker) -> None:
        self.problems = {}

    def run(self, task: tuple) -> tuple:
        key = threading.get_ident()
        if key not in self.problems:
            self.problems[key] = self.factory.build()
        with task_threads(self.factory.query.config.parallel.threads):
            return self.factory.run(self.problems[key], *task)


def _task(token: str, task: tuple) -> tuple:
    return get_worker().plugins[token].run(task)


class DaskWorkers:
    """The workers of the Dask scheduler at ``address`` (``n``: their threads in all); batches of tasks are
    submitted and gathered as by :class:`~certify.engines.parallel.LocalWorkers`, results in task order. Stop it
    with :meth:`close` (the cluster stays up)."""

    def __init__(self, address: str) -> None:
        try:
            self.client = Client(address, set_as_default=False, timeout=30)
        except (OSError, TimeoutError, ValueError) as exc:
            raise UsageError(f"--cluster {address}: no Dask scheduler answers there ({exc})") from None
        self.n = max(1, sum(self.client.nthreads().values()))
        self.tokens: set = set()
        self._batches = itertools.count()
        self._futures: dict[int, list] = {}  # per batch submitted and not gathered: its futures

    def add(self, factory: SearchFactory) -> str:
        """Register the factory's plugin on every worker; returns the token its tasks name."""
        token = f"certify-search-{uuid.uuid4().hex}"
        self.client.register_plugin(_SearchProblems(factory), name=token)
        self.tokens.add(token)
        return token

    def remove(self, token: str) -> None:
        if token in self.tokens:
            self.tokens.discard(token)
            try:
                self.client.unregister_worker_plugin(token)
            except Exception:  # a worker may be gone already; the search is over anyway
                pass

    def submit(self, token: str, tasks: list[tuple]) -> int:
        """Submit ``tasks`` for the factory of ``token``; returns the batch's id for :meth:`gather`."""
        batch = next(self._batches)
        self._futures[batch] = [self.client.submit(_task, token, task, pure=False) for task in tasks]
        return batch

    def gather(self, batch: int) -> list[tuple]:
        """The results of batch ``batch`` in task order (waits for them)."""
        futures = self._futures.pop(batch)
        try:
            return self.client.gather(futures)
        except Exception as exc:  # the task's own exception, re-raised by gather
            raise WorkerError(f"a Dask worker failed while it expanded nodes: {exc!r}") from exc

    def discard(self, batch: int) -> None:
        """Cancel batch ``batch`` (a search that stopped with it in flight)."""
        futures = self._futures.pop(batch, [])
        if futures:
            self.client.cancel(futures)

    def map(self, token: str, tasks: list[tuple]) -> list[tuple]:
        return self.gather(self.submit(token, tasks))

    def close(self) -> None:
        for token in list(self.tokens):
            self.remove(token)
        self.client.close()

    def __enter__(self) -> "DaskWorkers":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

"""The expansion steps of a best-first search (:func:`certify.engines.search.best_first`) on worker processes: local
ones (``VerifyConfig.workers``) or the workers of a Dask cluster (``VerifyConfig.cluster``, the optional extra
``distributed``).

How (:class:`ParallelSearch`, the loop's executor):

* the search starts serially; once ``ParallelOptions.start_after`` nodes are bounded and ``start_seconds`` have
  passed, each step takes the ``tasks x chunk`` largest open nodes (tasks = workers x ``tasks_per_worker``), deals
  them round robin into tasks and sends the tasks to the workers with the incumbent's value (a snapshot);
* each worker rebuilds the engine's problem once from a picklable :class:`SearchFactory` (the :class:`Query` and the
  engine's name; the table :data:`WORK`), and before each task resets what the problem carries from one
  expansion to the next (warm-started LPs, the random stream, now seeded by the task), so that a task's result
  depends on the task only, not on which worker ran it or what it ran before;
* a task returns the children, the best point it offered (replayed by the problem in the worker, exactly as in a
  serial expansion) and its counts; the main process merges them in task order (so the result never depends on the
  workers' timing): the point is offered to the incumbent, the counts go into the main problem, the children are
  filed by the loop.

Soundness is that of the serial search: each child's bound is the problem's own, every node is filed by the loop,
and every lower bound is a point the problem replayed. A complete search gives the serial value (the max over the
same regions, each computed in float64 the same way); a search stopped early gives another sound bracket. Steps
the problem must take itself (the sub-box search's SDP on its largest box) stay in the main process.

Processes are started with the ``spawn`` method (no fork of a process that runs torch threads); each worker sets
its own BLAS and torch thread counts to ``ParallelOptions.threads`` (the worker processes are this module's own;
the calling process is never changed). Dask workers keep their own settings.
"""

from __future__ import annotations

import math
import multiprocessing
import os
import pickle
import signal
import sys
import time
import traceback
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from multiprocessing.connection import wait

import numpy as np

from ..errors import UsageError
from ..solvers.threads import blas_threads
from .contract import Query
from .search import Incumbent, Node


class WorkerError(RuntimeError):
    """A worker failed while it expanded nodes (the message carries the worker's traceback)."""


# ============================================================================================ per-engine work
class _Recorder(Incumbent):
    """The incumbent of one task: starts at the main incumbent's value, keeps the best point offered."""

    def __init__(self, value: float) -> None:
        super().__init__(value)
        self.best: tuple | None = None

    def offer(self, value: float, point, data=None) -> bool:
        if super().offer(value, point, data):
            self.best = (self.value, self.point, self.data)
            return True
        return False


class _RegionWork:
    """The region search (:mod:`certify.engines.region_search`)."""

    def build(self, query: Query):
        from .region_search import region_problem  # deferred: the engines import this module

        return region_problem(query)  # the main process's set-up: a worker bounds nodes as it does

    def reset(self, problem, key) -> None:
        tr = problem.tr
        tr._loaded = tr._bbox_loaded = None  # the next LPs load afresh: a task does not depend on the worker's past
        problem.unverified_max = -math.inf

    def counts(self, problem) -> tuple:
        return problem.tr.nodes, problem.tr.lps, problem.sliver_witnesses, problem.unverified_max

    def delta(self, before: tuple, after: tuple) -> tuple:
        return after[0] - before[0], after[1] - before[1], after[2] - before[2], after[3]

    def merge(self, problem, delta: tuple) -> None:
        problem.tr.nodes += delta[0]
        problem.tr.lps += delta[1]
        problem.sliver_witnesses += delta[2]
        problem.unverified_max = max(problem.unverified_max, delta[3])

    def here(self, problem, top: Node, elapsed: float) -> bool:
        return False

    def chunk(self, problem, top: Node, elapsed: float, options) -> int:
        return options.chunk


class _BoxWork:
    """The sub-box search for sup norms (:mod:`certify.engines.box_search`); the SDP steps stay in the main process
    (the workers' problems have the SDP off)."""

    def build(self, query: Query):
        # deferred: the engines import this module
        from . import box_search as bs

        problem = bs._BoxProblem(query, bs._Lower(query), time.perf_counter())
        problem.sdp_on = False
        return problem

    def reset(self, problem, key) -> None:
        problem.rng = np.random.default_rng(key)

    def counts(self, problem) -> tuple:
        return problem.boxes, dict(problem.wins)

    def delta(self, before: tuple, after: tuple) -> tuple:
        return after[0] - before[0], {k: v - before[1].get(k, 0) for k, v in after[1].items()}

    def merge(self, problem, delta: tuple) -> None:
        problem.boxes += delta[0]
        for k, v in delta[1].items():
            problem.wins[k] = problem.wins.get(k, 0) + v

    def here(self, problem, top: Node, elapsed: float) -> bool:
        return problem._sdp_due(top, elapsed)

    def chunk(self, problem, top: Node, elapsed: float, options) -> int:
        return max(1, problem.batch(top, elapsed))


class _ViolationWork:
    """The invariance violation search (:mod:`certify.engines.violation_search`: a sub-box bisection,
    :class:`certify.engines.bisection.BisectionProblem`)."""

    def build(self, query: Query):
        from .violation_search import violation_problem  # deferred: the engines import this module

        return violation_problem(query)  # the main process's set-up

    def reset(self, problem, key) -> None:
        return None

    def counts(self, problem) -> tuple:
        return (problem.boxes,)

    def delta(self, before: tuple, after: tuple) -> tuple:
        return (after[0] - before[0],)

    def merge(self, problem, delta: tuple) -> None:
        problem.boxes += delta[0]

    def here(self, problem, top: Node, elapsed: float) -> bool:
        return False

    def chunk(self, problem, top: Node, elapsed: float, options) -> int:
        return 4 * options.chunk  # a node is a few small products: larger tasks


WORK = {"region": _RegionWork(), "boxes": _BoxWork(), "violation": _ViolationWork()}


@dataclass(frozen=True, eq=False)
class SearchFactory:
    """What a worker needs to rebuild the engine's problem: the query (its deadline dropped: the main process keeps
    the clock) and the engine's name, a key of :data:`WORK`."""

    query: Query
    engine: str

    def __post_init__(self) -> None:
        if self.engine not in WORK:
            raise UsageError(f"no parallel search for engine {self.engine!r}; choose one of {', '.join(WORK)}")
        object.__setattr__(self, "query", self.query.with_(deadline=math.inf))

    def build(self):
        return WORK[self.engine].build(self.query)

    def run(self, problem, nodes: list[Node], value: float, key: tuple) -> tuple:
        """One task: (children, best (value, point, data) offered or None, counts delta, CPU seconds spent)."""
        cpu = time.process_time()
        work = WORK[self.engine]
        work.reset(problem, key)
        before = work.counts(problem)
        incumbent = _Recorder(value)
        children = problem.expand(nodes, incumbent)
        return children, incumbent.best, work.delta(before, work.counts(problem)), time.process_time() - cpu


@contextmanager
def task_threads(threads: int) -> Iterator[None]:
    """At most ``threads`` BLAS and torch threads for one task in a process that is not ours (a Dask worker): both
    limits are restored on leaving, so the worker's own settings are never changed for longer."""
    import torch  # deferred: workers only

    before = torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        with blas_threads(threads):
            yield
    finally:
        torch.set_num_threads(before)


# ============================================================================================ local processes
def _serve(conn, threads: int) -> None:
    """A local worker: answers tasks (token, factory payload or None, (nodes, value, key)) until it receives None;
    the problem of each factory is built on its first task (the payload comes with it) and kept by token."""
    import torch  # deferred: only the worker process's own thread count is set

    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is the main process's: it stops the workers itself
    torch.set_num_threads(threads)
    # BLAS threads of this worker process: the libraries loaded now through the scoped limit, those loaded later
    # (scipy's own BLAS) through the environment they read when they load; both are this process's own
    for var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
        os.environ[var] = str(threads)
    with blas_threads(threads):
        _serve_tasks(conn)
    conn.close()
    # the process holds nothing to save: end it without the interpreter's teardown, which takes seconds once torch
    # is loaded (measured: 2 s per worker on a loaded machine) and would hold up the end of every search
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(0)


def _serve_tasks(conn) -> None:
    """The task loop of :func:`_serve`."""
    problems: dict = {}
    while True:
        try:
            message = conn.recv()
        except EOFError:
            break
        if message is None:
            break
        token, payload, task = message
        try:
            if payload is not None:
                factory = pickle.loads(payload)
                problems[token] = (factory, factory.build())
            factory, problem = problems[token]
            conn.send(("ok", factory.run(problem, *task)))
        except Exception:  # reported to the main process, which raises it
            conn.send(("error", traceback.format_exc()))


_ENDED = ("a worker process ended while it expanded nodes (a Python script that asks for workers must start its "
          "work under `if __name__ == \"__main__\":`, as the spawn start method re-imports the script in each worker)")


class LocalWorkers:
    """``n`` spawned worker processes with ``threads`` BLAS and torch threads each. A pool may serve several
    searches (each factory's problem is built once per worker, on its first task there); tasks go to whichever
    worker is free and the results come back in task order. Stop it with :meth:`close`."""

    def __init__(self, n: int, threads: int = 1) -> None:
        if n < 1:
            raise UsageError(f"a pool of local workers needs at least one worker, got {n}")
        ctx = multiprocessing.get_context("spawn")
        self.n = n
        self.conns, self.procs = [], []
        self.known: list[set] = []  # per worker: the tokens of the factories it holds
        self.payloads: dict = {}
        for _ in range(n):
            parent, child = ctx.Pipe()
            proc = ctx.Process(target=_serve, args=(child, threads), daemon=True)
            proc.start()
            child.close()
            self.conns.append(parent)
            self.procs.append(proc)
            self.known.append(set())

    def add(self, factory: "SearchFactory") -> str:
        """Register a factory; returns the token its tasks name."""
        token = uuid.uuid4().hex
        self.payloads[token] = pickle.dumps(factory, protocol=pickle.HIGHEST_PROTOCOL)
        return token

    def remove(self, token: str) -> None:
        self.payloads.pop(token, None)

    def map(self, token: str, tasks: list[tuple]) -> list[tuple]:
        results: list = [None] * len(tasks)
        pending = list(range(len(tasks)))[::-1]
        idle, busy = list(range(self.n))[::-1], {}
        failure = None
        while pending or busy:
            while idle and pending and failure is None:
                w, i = idle.pop(), pending.pop()
                payload = None if token in self.known[w] else self.payloads[token]
                try:
                    self.conns[w].send((token, payload, tasks[i]))
                except OSError:  # BrokenPipeError: the worker is gone
                    raise WorkerError(_ENDED) from None
                self.known[w].add(token)
                busy[self.conns[w]] = (w, i)
            if failure is not None and not busy:
                break
            for conn in wait(list(busy)):
                w, i = busy.pop(conn)
                try:
                    status, value = conn.recv()
                except (EOFError, OSError):  # OSError: ConnectionResetError when the worker died mid-answer
                    raise WorkerError(_ENDED) from None
                idle.append(w)
                if status != "ok":  # the other workers' answers are still read, so that the pool stays usable
                    failure = failure or f"a worker failed while it expanded nodes:\n{value}"
                results[i] = value
        if failure is not None:
            raise WorkerError(failure)
        return results

    def close(self) -> None:
        for conn in self.conns:
            try:
                conn.send(None)
            except (BrokenPipeError, OSError):
                pass
        for proc in self.procs:
            proc.join(timeout=5.0)
            if proc.is_alive():
                proc.terminate()
                proc.join(timeout=5.0)
        for conn in self.conns:
            conn.close()

    def __enter__(self) -> "LocalWorkers":
        return self

    def __exit__(self, *exc) -> None:
        self.close()


# ============================================================================================ the executor
class ParallelSearch:
    """The executor of :func:`certify.engines.search.best_first` (module docstring) for the search of ``factory``:
    on ``pool`` (a :class:`LocalWorkers` or :class:`~certify.engines.dask_workers.DaskWorkers` that outlives the
    search), or on a pool of its own
    (``workers`` local processes, or the Dask cluster at ``cluster``) started when the search first needs it
    and stopped by :meth:`close`. ``options``: :class:`~certify.config.ParallelOptions` (default: the query's)."""

    def __init__(self, factory: SearchFactory, workers: int = 1, cluster: str | None = None, options=None,
                 pool=None) -> None:
        self.factory, self.workers, self.cluster = factory, workers, cluster
        self.options = factory.query.config.parallel if options is None else options
        self.work = WORK[factory.engine]
        self.pool, self.own_pool, self.token = pool, pool is None, None
        self.rounds = self.tasks = self.remote_nodes = 0
        self.seconds = 0.0  # wall time of the parallel steps (the wait for the workers' start included)
        self.worker_cpu = 0.0  # CPU seconds the workers spent on this search's tasks
        self._chunk, self._n_tasks = 1, 1

    def _pool(self):
        if self.pool is None:
            if self.cluster is not None:
                try:
                    from .dask_workers import DaskWorkers  # deferred: the optional extra `distributed`
                except ImportError:
                    raise UsageError("--cluster needs Dask distributed: pip install 'certify[distributed]'") from None
                self.pool = DaskWorkers(self.cluster)
            else:
                self.pool = LocalWorkers(self.workers, self.options.threads)
        if self.token is None:
            self.token = self.pool.add(self.factory)
        return self.pool

    def take(self, problem, top: Node, elapsed: float, bounded: int) -> int:
        start_after, start_seconds = self.options.start_after, self.options.start_seconds
        if bounded >= start_after // 2 and elapsed >= start_seconds:
            self._pool()  # local workers start in the background while the serial search goes on
        if bounded < start_after or elapsed < start_seconds or self.work.here(problem, top, elapsed):
            return 0
        self._n_tasks = self._pool().n * self.options.tasks_per_worker
        self._chunk = self.work.chunk(problem, top, elapsed, self.options)
        return self._n_tasks * self._chunk

    def expand(self, problem, nodes: list[Node], incumbent: Incumbent) -> list[Node]:
        t = time.perf_counter()
        n_tasks = max(1, min(self._n_tasks, len(nodes)))
        seed = self.factory.query.seed
        tasks = [(nodes[j::n_tasks], incumbent.value, (seed, self.rounds, j)) for j in range(n_tasks)]
        results = self._pool().map(self.token, tasks)
        children: list[Node] = []
        for kids, best, delta, cpu in results:  # task order: the result does not depend on the workers' timing
            if best is not None:
                incumbent.offer(*best)
            self.work.merge(problem, delta)
            children += kids
            self.worker_cpu += cpu
        self.rounds += 1
        self.tasks += n_tasks
        self.remote_nodes += len(nodes)
        self.seconds += time.perf_counter() - t
        return children

    def close(self) -> None:
        if self.pool is not None and self.token is not None:
            self.pool.remove(self.token)
            self.token = None
        if self.pool is not None and self.own_pool:
            self.pool.close()
            self.pool = None


@contextmanager
def search_executor(query: Query, engine: str, pool=None) -> Iterator[ParallelSearch | None]:
    """The executor the query's config asks for, closed on leaving: None (serial) when ``workers`` is 1, there is
    no ``cluster`` and no ``pool`` is given. ``engine``: a key of :data:`WORK`; ``pool``: workers to use instead of
    starting new ones (:class:`LocalWorkers`, :class:`~certify.engines.dask_workers.DaskWorkers`)."""
    config = query.config
    if pool is None and config.cluster is None and config.workers <= 1:
        yield None
        return
    executor = ParallelSearch(SearchFactory(query, engine), config.workers, config.cluster, pool=pool)
    try:
        yield executor
    finally:
        executor.close()

"""The expansion steps of a best-first search (:func:`certify.engines.search.best_first`) on worker processes: local
ones (``VerifyConfig.workers``) or the workers of a Dask cluster (``VerifyConfig.cluster``, the optional extra
``distributed``).

How (:class:`ParallelSearch`, the loop's executor):

* the search starts serially; after ``ParallelOptions.start_seconds`` the pool starts in the background, and once
  ``start_after`` nodes are bounded and a worker has started, each step takes the ``tasks x chunk`` largest open
  nodes (tasks = ready workers x ``tasks_per_worker``), deals them round robin into tasks and sends the tasks to
  the ready workers with the incumbent's value (a snapshot); no step waits for a worker's start; the search keeps
  ``ParallelOptions.rounds_ahead`` rounds in flight beside the one it waits for (taken from the open nodes without
  the children of the rounds still out), so that the workers run the next round while the main process files the
  last one: measured, the workers are busy 96-97 % of the parallel steps' time instead of 86-91 % (a round's nodes
  stay open for the loop's upper bound until it is received);
* each worker rebuilds the engine's problem once from a picklable :class:`SearchFactory` (the :class:`Query` and the
  engine's name; the table :data:`WORK`), and before each task resets what the problem carries from one
  expansion to the next (warm-started LPs, the random stream, now seeded by the task), so that a task's result
  depends on the task only, not on which worker ran it or what it ran before;
* a task returns the children, the best point it offered (replayed by the problem in the worker, exactly as in a
  serial expansion) and its counts; the main process merges them in task order (so a round's result never depends
  on which worker ran what; which steps are rounds depends on when the workers started): the point is offered to
  the incumbent, the counts go into the main problem, the children are filed by the loop.

A local worker process that ends mid-search (:class:`WorkerLost`: killed, out of memory, a crash in native code)
does not end the search: the pool is stopped, the rounds in flight are expanded in the main process as they come
due (exactly the children a worker would have returned), no later step goes out, and a :class:`WorkerWarning` says
so. A task that raises is a bug: it is raised as :class:`WorkerError` in the main process.

Soundness is that of the serial search: each child's bound is the problem's own, every node is filed by the loop,
and every lower bound is a point the problem replayed. A complete search gives the serial value (the max over the
same regions, each computed in float64 the same way); a search stopped early gives another sound bracket. Steps
the problem must take itself (the sub-box search's SDP on its largest box) stay in the main process.

Processes are started from Python's fork server (:func:`start_method`) where the platform has one, else spawned:
never forked from the main process, which may run torch threads. The fork server imports the engines once (about a
CPU second) and every worker is a fork of it, so a pool starts in about the time of one import, and later pools of
the same process at once (the ``spawn`` method pays the imports in every worker). Each worker sets
its own BLAS and torch thread counts to ``ParallelOptions.threads`` (the worker processes are this module's own;
the calling process is never changed). Dask workers keep their own settings.
"""

from __future__ import annotations

import itertools
import math
import multiprocessing
import os
import pickle
import signal
import sys
import threading
import time
import traceback
import uuid
import warnings
from collections import deque
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


class WorkerLost(WorkerError):
    """A local worker process ended (killed, out of memory, a crash in native code) or its pool can no longer be
    trusted: the search goes on in the main process (:class:`ParallelSearch`)."""


class WorkerWarning(UserWarning):
    """The workers of a search were lost and the search went on in the main process (same result, serial speed)."""


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
        problem.unverified_max = problem.inexact_max = problem.guard_max = -math.inf  # a task's own maxima travel back

    def counts(self, problem) -> tuple:
        return (problem.tr.nodes, problem.tr.lps, problem.sliver_witnesses, problem.unverified_max,
                problem.inexact_max, problem.guard_max)

    def delta(self, before: tuple, after: tuple) -> tuple:
        return after[0] - before[0], after[1] - before[1], after[2] - before[2], after[3], after[4], after[5]

    def merge(self, problem, delta: tuple) -> None:
        problem.tr.nodes += delta[0]
        problem.tr.lps += delta[1]
        problem.sliver_witnesses += delta[2]
        problem.unverified_max = max(problem.unverified_max, delta[3])
        problem.inexact_max = max(problem.inexact_max, delta[4])
        problem.guard_max = max(problem.guard_max, delta[5])

    def here(self, problem, top: Node, elapsed: float) -> bool:
        return False

    def chunk(self, problem, top: Node, elapsed: float, nodes: int) -> int:
        return nodes


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

    def chunk(self, problem, top: Node, elapsed: float, nodes: int) -> int:
        return max(1, problem.batch(top, elapsed))


VIOLATION_TASK_NODES = 32  # nodes per task of the invariance violation search, local workers or a cluster


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

    def chunk(self, problem, top: Node, elapsed: float, nodes: int) -> int:
        return VIOLATION_TASK_NODES  # a node is a few small products: larger tasks


@dataclass(frozen=True)
class _Boxes:
    """Sub-box nodes (item (lo, hi, axis)) packed into arrays: one pickle of a few arrays instead of one per node
    (the output branch and bound sends thousands of boxes a round). The floats and their order are kept exactly."""

    bound: np.ndarray  # (B,)
    lo: np.ndarray  # (B, n)
    hi: np.ndarray  # (B, n)
    axis: np.ndarray  # (B,)
    volume: np.ndarray  # (B,)
    final: np.ndarray  # (B,)

    @classmethod
    def of(cls, nodes: list[Node]) -> "_Boxes":
        n = len(nodes[0].item[0]) if nodes else 0
        return cls(np.array([x.bound for x in nodes], dtype=np.float64),
                   np.array([x.item[0] for x in nodes], dtype=np.float64).reshape(-1, n),
                   np.array([x.item[1] for x in nodes], dtype=np.float64).reshape(-1, n),
                   np.array([x.item[2] for x in nodes], dtype=np.int64),
                   np.array([x.volume for x in nodes], dtype=np.float64),
                   np.array([x.final for x in nodes], dtype=bool))

    def nodes(self) -> list[Node]:
        return [Node(float(b), (lo, hi, int(a)), float(v), bool(f))
                for b, lo, hi, a, v, f in zip(self.bound, self.lo, self.hi, self.axis, self.volume, self.final)]


def pack(work, nodes: list[Node]):
    """``nodes`` as a task carries them: packed by the engine's work when it packs (``work.packs``), else as is."""
    return _Boxes.of(nodes) if getattr(work, "packs", False) else nodes


def unpack(payload) -> list[Node]:
    """The nodes of :func:`pack`'s payload."""
    return payload.nodes() if isinstance(payload, _Boxes) else payload


class _OutputWork:
    """The output branch and bound of invariance (:mod:`certify.engines.output_bnb`: input splits with batched
    CROWN bounds of the violation); its boxes travel packed (:class:`_Boxes`)."""

    packs = True

    def build(self, query: Query):
        from .output_bnb import output_problem  # deferred: the engines import this module

        return output_problem(query)  # the main process's set-up (the invariance violation's objectives)

    def reset(self, problem, key) -> None:
        return None  # nothing carries over from one expansion to the next but the step count (the batch size)

    def counts(self, problem) -> tuple:
        return problem.boxes, problem.steps

    def delta(self, before: tuple, after: tuple) -> tuple:
        return after[0] - before[0], after[1] - before[1]

    def merge(self, problem, delta: tuple) -> None:
        problem.boxes += delta[0]
        problem.steps += delta[1]

    def here(self, problem, top: Node, elapsed: float) -> bool:
        return False

    def chunk(self, problem, top: Node, elapsed: float, nodes: int) -> int:
        return max(1, problem.batch(top, elapsed))  # one task: one step's batch (growing with the steps taken)


WORK = {"region": _RegionWork(), "boxes": _BoxWork(), "violation": _ViolationWork(), "output": _OutputWork()}


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

    def run(self, problem, nodes, value: float, key: tuple) -> tuple:
        """One task on ``nodes`` (as the engine's work packs them, :func:`pack`): (children packed the same way,
        best (value, point, data) offered or None, counts delta, CPU seconds spent)."""
        cpu = time.process_time()
        work = WORK[self.engine]
        work.reset(problem, key)
        before = work.counts(problem)
        incumbent = _Recorder(value)
        children = problem.expand(unpack(nodes), incumbent)
        return pack(work, children), incumbent.best, work.delta(before, work.counts(problem)), \
            time.process_time() - cpu


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
        from . import box_search, output_bnb, region_search, violation_search  # noqa: F401  (before "ready")

        try:
            conn.send(("ready", None))  # the pool sends tasks only to workers that said so: nobody waits for imports
            _serve_tasks(conn)
        except OSError:  # the pool closed while this worker started, or the main process ended: nothing to answer
            pass
    conn.close()
    # the process holds nothing to save: end it without the interpreter's teardown, which takes seconds once torch
    # is loaded (measured: 2 s per worker on a loaded machine) and would hold up the end of every search
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(0)


def _serve_tasks(conn) -> None:
    """The task loop of :func:`_serve`. A message (token, payload, None) builds the factory's problem ahead of its
    tasks and is not answered; a failure to build it is answered at the factory's first task."""
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
                problems.pop(token, None)
                factory = pickle.loads(payload)
                problems[token] = (factory, factory.build())
            if task is None:
                continue
            held = problems[token]
            if isinstance(held, str):
                conn.send(("error", held))
                continue
            factory, problem = held
            conn.send(("ok", factory.run(problem, *task)))
        except Exception:  # reported to the main process, which raises it
            if task is None:
                problems[token] = traceback.format_exc()
            else:
                conn.send(("error", traceback.format_exc()))


_ENDED = ("a worker process ended while it expanded nodes (a Python script that asks for workers must start its "
          "work under `if __name__ == \"__main__\":`, as each worker process re-imports the script)")


_QUEUED = 2  # tasks a local worker holds at once: the one it runs and the next
#: what the fork server imports before it forks the workers: the engines a worker runs (and, through them, torch)
_PRELOAD = ["certify.engines.region_search", "certify.engines.violation_search", "certify.engines.box_search",
            "certify.engines.output_bnb"]


def start_method() -> str:
    """``forkserver`` where the platform has it (Linux, macOS), with the engines preloaded there; else ``spawn``.

    The preload list is the one setting certify makes for the fork server of this process; it only decides what the
    server has imported before it forks (a program with its own fork server keeps working, with these modules
    loaded in its workers). A fork server already running keeps what it has."""
    if "forkserver" not in multiprocessing.get_all_start_methods():
        return "spawn"
    multiprocessing.get_context("forkserver").set_forkserver_preload(_PRELOAD)
    return "forkserver"


class LocalWorkers:
    """``n`` worker processes with ``threads`` BLAS and torch threads each, started by ``method`` (a
    multiprocessing start method; default :func:`start_method`). A pool may serve several
    searches (each factory's problem is built once per worker: sent ahead as soon as the worker is ready, else
    with its first task there); tasks go to whichever worker is free and the results come back in task order.

    A worker is *ready* once it has imported torch and the engines (about a CPU second after the start of the
    first pool of a process, at once for later ones with the fork server; it says so itself): :meth:`ready`
    counts them without waiting, :meth:`wait_ready` waits; tasks go to ready workers only. Stop the pool with
    :meth:`close`."""

    def __init__(self, n: int, threads: int = 1, method: str | None = None) -> None:
        if n < 1:
            raise UsageError(f"a pool of local workers needs at least one worker, got {n}")
        ctx = multiprocessing.get_context(method or start_method())
        self.n = n
        pipes = [ctx.Pipe() for _ in range(n)]
        self.conns = [parent for parent, _ in pipes]
        self.procs: list = [None] * n  # set by the starter thread as each process starts
        self.known: list[set] = [set() for _ in range(n)]  # per worker: the tokens of the factories it holds
        self.is_ready: list[bool] = [False] * n
        self.payloads: dict = {}
        self._closed = False
        self._broken = ""  # why a round broke off (an interrupt, a lost worker): answers may be owed; no later task
        # may take one
        self._batches = itertools.count()
        self._pending: deque = deque()  # (batch, index, token, task) not sent yet, oldest first
        self._queued: list[deque] = [deque() for _ in range(n)]  # per worker: (batch, index) sent, in order
        self._answers: dict[int, list] = {}  # per batch: its results so far
        self._left: dict[int, int] = {}  # per batch: answers still owed
        self._failures: dict[int, str] = {}  # per batch: the first failure
        self._dropped: set[int] = set()  # batches discarded with answers still owed
        # the processes start on a thread of their own: with the fork server, starting one waits until the server
        # has imported the engines (about a second), which the calling search must not wait for
        self._starter = threading.Thread(target=self._start, args=(ctx, [child for _, child in pipes], threads),
                                         name="certify-workers-start", daemon=True)
        self._starter.start()

    def _start(self, ctx, children: list, threads: int) -> None:
        """Start the worker processes (the starter thread). A worker that cannot start leaves its pipe closed: the
        pool then reports it as ended (:data:`_ENDED`) when it waits for it."""
        for w, child in enumerate(children):
            try:
                if not self._closed:
                    proc = ctx.Process(target=_serve, args=(child, threads), daemon=True)
                    proc.start()
                    self.procs[w] = proc
                    if self._closed:  # closed while it started
                        proc.terminate()
            except Exception:  # noqa: BLE001 (reported through the closed pipe, as a worker that ended)
                pass
            finally:
                child.close()

    def add(self, factory: "SearchFactory") -> str:
        """Register a factory; returns the token its tasks name. Ready workers build its problem now."""
        token = uuid.uuid4().hex
        self.payloads[token] = pickle.dumps(factory, protocol=pickle.HIGHEST_PROTOCOL)
        for w in range(self.n):
            if self.is_ready[w]:
                self._send_ahead(w)
        return token

    def remove(self, token: str) -> None:
        self.payloads.pop(token, None)

    def _send_ahead(self, w: int) -> None:
        """Send worker ``w`` the factories it does not hold yet (built there before its next task)."""
        for token, payload in self.payloads.items():
            if token not in self.known[w]:
                self._send(w, (token, payload, None))
                self.known[w].add(token)

    def _send(self, w: int, message) -> None:
        try:
            self.conns[w].send(message)
        except OSError:  # BrokenPipeError: the worker is gone
            raise WorkerLost(_ENDED) from None

    def _recv(self, w: int):
        try:
            return self.conns[w].recv()
        except (EOFError, OSError):  # OSError: ConnectionResetError when the worker died mid-answer
            raise WorkerLost(_ENDED) from None

    def _mark_ready(self, w: int) -> None:
        status, _ = self._recv(w)
        if status != "ready":
            raise WorkerError(f"a worker sent {status!r} before it was ready")
        self.is_ready[w] = True
        self._send_ahead(w)

    def ready(self) -> int:
        """The number of ready workers (reads the workers' "ready" messages that have come, without waiting)."""
        for w in range(self.n):
            if not self.is_ready[w] and self.conns[w].poll():
                self._mark_ready(w)
        return sum(self.is_ready)

    def wait_ready(self) -> None:
        """Wait until every worker is ready."""
        for w in range(self.n):
            if not self.is_ready[w]:
                self._mark_ready(w)

    def submit(self, token: str, tasks: list[tuple]) -> int:
        """Queue ``tasks`` for the factory of ``token`` and send what the workers can take now; returns the batch's
        id for :meth:`gather`. Each ready worker holds up to :data:`_QUEUED` tasks (one running, the next one
        waiting in its pipe), so that it never waits for this process between two tasks; the tasks of later
        batches go out as those of earlier ones are answered (in the order submitted)."""
        if self._broken:
            raise WorkerLost(f"the worker pool broke off a round ({self._broken}; answers may still be owed): start "
                             "a new pool")
        batch = next(self._batches)
        self._answers[batch] = [None] * len(tasks)
        self._left[batch] = len(tasks)
        self._pending.extend((batch, i, token, task) for i, task in enumerate(tasks))
        self._guarded(self._dispatch)
        return batch

    def gather(self, batch: int) -> list[tuple]:
        """The results of batch ``batch`` (:meth:`submit`) in task order, once every one has come (the answers of
        other batches that come meanwhile are kept for them). Workers that are not ready get no task; when none is,
        the first to start is waited for. A failed task is raised as :class:`WorkerError` once the whole batch has
        been answered, so that the pool stays usable."""
        self._guarded(self._wait_for, batch)
        results, failure = self._forget(batch)
        if failure is not None:
            raise WorkerError(failure)
        return results

    def discard(self, batch: int) -> None:
        """Forget batch ``batch``: its tasks not sent yet are dropped, and the answers still owed for it are read
        (and dropped) by the next :meth:`gather`."""
        self._pending = deque(item for item in self._pending if item[0] != batch)
        sent = sum(b == batch for queued in self._queued for b, _ in queued)
        if sent:
            self._left[batch] = sent
            self._dropped.add(batch)
        else:
            self._forget(batch)

    def _forget(self, batch: int) -> tuple[list, str | None]:
        """Drop the bookkeeping of batch ``batch``; returns its results and its first failure (None: none)."""
        self._dropped.discard(batch)
        self._left.pop(batch, None)
        return self._answers.pop(batch, []), self._failures.pop(batch, None)

    def map(self, token: str, tasks: list[tuple]) -> list[tuple]:
        """The results of ``tasks`` (in task order) for the factory of ``token``: :meth:`gather` of :meth:`submit`."""
        return self.gather(self.submit(token, tasks))

    def _guarded(self, step, *args) -> None:
        try:
            step(*args)
        except BaseException as exc:
            # Ctrl-C anywhere in a round (between a send and its bookkeeping too), or a worker lost: the answers owed
            # are not known for sure, so the workers are stopped and the pool refuses further rounds (never a stale
            # answer)
            self._broken = "a worker ended" if isinstance(exc, WorkerLost) else "interrupted"
            for proc in self.procs:
                if proc is not None:
                    proc.terminate()
            raise

    def _dispatch(self) -> None:
        """Send queued tasks, oldest first, to the ready workers that hold fewer than :data:`_QUEUED`."""
        for w in range(self.n):
            if not self.is_ready[w]:
                continue
            while self._pending and len(self._queued[w]) < _QUEUED:
                batch, i, token, task = self._pending.popleft()
                payload = None if token in self.known[w] else self.payloads[token]
                self._send(w, (token, payload, task))
                self.known[w].add(token)
                self._queued[w].append((batch, i))

    def _wait_for(self, batch: int) -> None:
        """Read answers (and send queued tasks as workers free up) until batch ``batch`` is answered."""
        while self._left[batch]:
            self._dispatch()
            busy = [self.conns[w] for w in range(self.n) if self._queued[w]]
            if not busy:  # no worker is ready to take the tasks: wait for the first to start
                wait(self.conns)
                self.ready()
                continue
            done = wait(busy)
            self.ready()  # a worker that started meanwhile takes the next tasks
            for conn in done:
                w = self.conns.index(conn)
                status, value = self._recv(w)
                b, i = self._queued[w].popleft()
                self._left[b] -= 1
                if b in self._dropped:
                    if not self._left[b]:
                        self._forget(b)
                    continue
                if status != "ok":
                    self._failures.setdefault(b, f"a worker failed while it expanded nodes:\n{value}")
                self._answers[b][i] = value

    def close(self) -> None:
        """Stop the workers: those not ready yet (still importing, holding nothing) at once, and those still to
        start as soon as they do (by the starter thread)."""
        self._closed = True
        for w, conn in enumerate(self.conns):
            if not self.is_ready[w] and not conn.poll():
                if self.procs[w] is not None:
                    self.procs[w].terminate()
                continue
            try:
                conn.send(None)
            except (BrokenPipeError, OSError):
                pass
        for proc in self.procs:
            if proc is None:
                continue
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
        self._flight: deque = deque()  # per round in flight: (batch, its nodes, largest bound); batch None: local
        self.lost = ""  # why the workers were lost (empty: they were not); the search then goes on here

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
        if self.lost:
            return 0
        try:
            return self._take(problem, top, elapsed, bounded)
        except WorkerLost as exc:  # a worker that ended before it was ready, or as it was sent a problem
            self._lose(exc)
            return 0

    def _take(self, problem, top: Node, elapsed: float, bounded: int) -> int:
        """:meth:`take`, which turns a :class:`WorkerLost` raised here into the search's fallback."""
        start_after, start_seconds = self.options.start_after, self.options.start_seconds
        if bounded >= start_after // 2 and elapsed >= start_seconds:
            self._pool()  # local workers start in the background while the serial search goes on
        if bounded < start_after or elapsed < start_seconds or self.work.here(problem, top, elapsed):
            return 0
        pool = self._pool()
        ready = pool.ready() if isinstance(pool, LocalWorkers) else pool.n
        if ready == 0:
            return 0  # no worker has started yet: this step stays serial (nobody waits for a worker's imports)
        self._n_tasks = ready * self.options.tasks_per_worker
        nodes = self.options.chunk if isinstance(pool, LocalWorkers) else self.options.cluster_chunk
        self._chunk = self.work.chunk(problem, top, elapsed, nodes)
        return self._n_tasks * self._chunk

    @property
    def in_flight(self) -> int:
        """Rounds sent and not received yet."""
        return len(self._flight)

    @property
    def rounds_ahead(self) -> int:
        """Rounds the search may keep in flight beside the one it waits for (``ParallelOptions.rounds_ahead``)."""
        return self.options.rounds_ahead

    def open_nodes(self) -> int:
        """Nodes sent in rounds not received yet: still open for the search (their bounds count in its upper)."""
        return sum(len(nodes) for _, nodes, _ in self._flight)

    def open_max(self) -> float:
        """The largest bound of the nodes in rounds not received yet (-inf: none)."""
        return max((top for _, _, top in self._flight), default=-math.inf)

    def send(self, problem, nodes: list[Node], incumbent: Incumbent) -> None:
        """Send ``nodes`` as one round: dealt round robin into tasks, each with the incumbent's value now; the round
        is received (in the order sent) by :meth:`receive`."""
        t = time.perf_counter()
        n_tasks = max(1, min(self._n_tasks, len(nodes)))
        seed = self.factory.query.seed
        tasks = [(pack(self.work, nodes[j::n_tasks]), incumbent.value, (seed, self.rounds, j)) for j in range(n_tasks)]
        try:
            batch = self._pool().submit(self.token, tasks)
        except WorkerLost as exc:
            self._lose(exc)
            batch = None
        top = max((x.bound for x in nodes), default=-math.inf)
        self._flight.append((batch, list(nodes), top))
        self.rounds += 1
        self.tasks += n_tasks
        self.remote_nodes += len(nodes)
        self.seconds += time.perf_counter() - t

    def receive(self, problem, incumbent: Incumbent) -> list[Node]:
        """The children of the oldest round in flight (waits for it), the workers' best points offered to
        ``incumbent`` and their counts merged into ``problem``, in task order (the result does not depend on the
        workers' timing)."""
        t = time.perf_counter()
        batch, nodes, _ = self._flight[0]
        try:
            results = None if batch is None else self.pool.gather(batch)
        except WorkerLost as exc:
            self._lose(exc)
            results = None
        finally:
            self._flight.popleft()
        if results is None:  # the workers were lost: this round is expanded here, as the serial search would
            self.seconds += time.perf_counter() - t
            return problem.expand(nodes, incumbent)
        children: list[Node] = []
        for kids, best, delta, cpu in results:
            if best is not None:
                incumbent.offer(*best)
            self.work.merge(problem, delta)
            children += unpack(kids)
            self.worker_cpu += cpu
        self.seconds += time.perf_counter() - t
        return children

    def _lose(self, exc: WorkerLost) -> None:
        """The workers were lost (``exc``): every round in flight is expanded here when received, no later step goes
        out, a pool of this search's own is stopped, and a :class:`WorkerWarning` says so once. Sound and the same
        result: those nodes get exactly the children a worker would have given them."""
        if not self.lost:
            self.lost = str(exc)
            warnings.warn(WorkerWarning(f"the search went on in this process after its workers were lost: {exc}"),
                          stacklevel=2)
        self._flight = deque((None, nodes, top) for _, nodes, top in self._flight)
        if self.own_pool and self.pool is not None:
            self.pool.close()
            self.pool = None

    def expand(self, problem, nodes: list[Node], incumbent: Incumbent) -> list[Node]:
        """One round, sent and received: the children of ``nodes`` (with no other round in flight)."""
        if self._flight:
            raise RuntimeError("expand with rounds in flight: receive them first")
        self.send(problem, nodes, incumbent)
        return self.receive(problem, incumbent)

    def close(self) -> None:
        """Forget the rounds still in flight (a search stopped early: their nodes were counted open), unregister the
        search and stop a pool of its own."""
        while self._flight and self.pool is not None:
            batch = self._flight.popleft()[0]
            if batch is not None:
                self.pool.discard(batch)
        self._flight.clear()
        if self.pool is not None and self.token is not None:
            self.pool.remove(self.token)
            self.token = None
        if self.pool is not None and self.own_pool:
            self.pool.close()
            self.pool = None


@contextmanager
def search_executor(query: Query, engine: str, pool=None, executor=None) -> Iterator[ParallelSearch | None]:
    """The executor the query's config asks for, closed on leaving: None (serial) when ``workers`` is 1, there is
    no ``cluster`` and no ``pool`` is given. ``engine``: a key of :data:`WORK`; ``pool``: workers to use instead of
    starting new ones (:class:`LocalWorkers`, :class:`~certify.engines.dask_workers.DaskWorkers`); ``executor``:
    one the caller made (and closes) for this query and engine, used as it is (an engine's ``executor`` argument:
    a search on a pool of the caller's whatever the config says, its counters left for the caller to read)."""
    if executor is not None:
        yield executor
        return
    config = query.config
    if pool is None and config.cluster is None and config.workers <= 1:
        yield None
        return
    executor = ParallelSearch(SearchFactory(query, engine), config.workers, config.cluster, pool=pool)
    try:
        yield executor
    finally:
        executor.close()

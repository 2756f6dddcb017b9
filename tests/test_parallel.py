"""Parallel = serial: the search loop on 2 local worker processes, and on a local Dask cluster of 2 worker
processes started here, gives the serial verdict, and the serial exact value to 1e-12, with lower bounds only
at points replayed through the IR; the order of the merged results never depends on the workers' timing."""

from __future__ import annotations

import signal
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import pytest

from certify.config import (
    BoxSearchOptions,
    InvarianceOptions,
    ParallelOptions,
    RegionSearchOptions,
    SdpUse,
    VerifyConfig,
)
from certify.engines import box_search as box_module
from certify.engines import parallel
from certify.engines import region_search as region_module
from certify.engines import violation_search as violation_module
from certify.engines.contract import Outcome, Query
from certify.errors import UsageError
from certify.ir import activations as acts
from certify.ir.box import Box
from certify.ir.numerics import induced_norm
from certify.ir.quantity import Quantity

# start the workers almost at once and send small tasks, so that these small searches take many parallel steps
FAST = ParallelOptions(start_after=4, start_seconds=0.0, chunk=2, tasks_per_worker=2)


@pytest.fixture(scope="module")
def pool():
    """Two spawned local workers, shared by the tests of this module (each search registers its own problem)."""
    with parallel.LocalWorkers(2) as workers:
        workers.wait_ready()  # the steps of a search go to workers once they have started: these tests need them
        yield workers


@contextmanager
def on_workers(query, engine, pool):
    """The executor of ``engine``'s search of ``query`` on ``pool`` (pass it to the engine as ``executor``: its
    search loop then runs there whatever the config says); its counters show that the parallel path ran."""
    with parallel.search_executor(query, engine, pool=pool) as executor:
        yield executor


def region_query(net, box, threshold=None, seed=0, options=FAST):
    config = VerifyConfig(seed=seed, timeout=120.0, regions=RegionSearchOptions(samples=64), parallel=options)
    return Query(net, box, Quantity.JACOBIAN, config, threshold=threshold)


def replays(net, box, res, cols):
    return box.contains(res.witness) and float(induced_norm(net.jacobian(res.witness)[:, :cols], 2.0)) == \
        pytest.approx(res.lower, rel=1e-9)


@pytest.mark.parametrize("seed, widths", [(1, (8, 8)), (12, (6, 6, 6))])
def test_region_search_on_two_workers_equals_serial(seed, widths, random_net, unit_box, pool):
    net = random_net(seed, 2, widths, skip=seed % 2 == 1)
    box = unit_box(2)
    q = region_query(net, box, seed=seed)
    serial = region_module.region_search(q)
    with on_workers(q, "region", pool) as ex:
        par = region_module.region_search(q, executor=ex)
    assert ex.rounds > 0 and ex.remote_nodes > 0
    assert serial.exact and par.exact and par.outcome is serial.outcome is Outcome.BRACKETED
    assert par.lower == pytest.approx(serial.lower, rel=1e-12, abs=1e-14)
    assert par.upper == pytest.approx(serial.upper, rel=1e-12, abs=1e-14)
    assert replays(net, box, par, net.n_states)
    assert par.nodes >= ex.remote_nodes  # the workers' expansions are counted in the main problem
    # certify mode on both sides of the value: the same verdict
    for factor, outcome in ((1.02, Outcome.CERTIFIED), (0.98, Outcome.EXCEEDED)):
        qt = region_query(net, box, threshold=factor * serial.lower, seed=seed)
        s = region_module.region_search(qt)
        with on_workers(qt, "region", pool) as ex:
            p = region_module.region_search(qt, executor=ex)
        assert s.outcome is p.outcome is outcome


def test_merging_does_not_depend_on_timing(random_net, unit_box, pool):
    """Two parallel runs of the same search take the same steps: same nodes, LPs and trace of lower bounds."""
    net = random_net(3, 2, (10, 10))
    q = region_query(net, unit_box(2), seed=3)
    runs = []
    for _ in range(2):
        with on_workers(q, "region", pool) as ex:
            runs.append((region_module.region_search(q, executor=ex), ex.rounds))
    (a, ra), (b, rb) = runs
    assert ra == rb > 0
    assert (a.nodes, a.lps, a.lower, a.upper) == (b.nodes, b.lps, b.lower, b.upper)
    assert np.array_equal(a.witness, b.witness)
    assert [t[1] for t in a.trace[:-1]] == [t[1] for t in b.trace[:-1]]


def box_query(net, box, threshold=None, seed=0):
    options = BoxSearchOptions(samples=64, batch=4, sdp=SdpUse.NEVER)
    # the timeout only sizes the first gradient ascent (a tenth of it); the budget stops a search, never the clock
    config = VerifyConfig(seed=seed, timeout=10.0, boxes=options, budget=4000, parallel=FAST)
    return Query(net, box, Quantity.A_STAR, config, threshold=threshold)


@pytest.mark.parametrize("seed, act", [(2, acts.tanh), (5, acts.gelu)])
def test_smooth_box_search_on_two_workers_gives_the_serial_verdict(seed, act, random_net, unit_box,
                                                                   pool):
    net = random_net(seed, 2, (6,), activation=act())
    box = unit_box(2, 0.5)
    serial = box_module.box_search(box_query(net, box, seed=seed))
    with on_workers(box_query(net, box, seed=seed), "boxes", pool) as ex:
        par = box_module.box_search(box_query(net, box, seed=seed), executor=ex)
    assert ex.rounds > 0
    assert serial.outcome is par.outcome is Outcome.BRACKETED
    # two sound brackets of one supremum overlap; each lower bound is a replayed point
    assert max(serial.lower, par.lower) <= min(serial.upper, par.upper)
    for res in (serial, par):
        x = res.witness
        assert box.contains(x)
        assert float(induced_norm(net.pwa(x[None])[0][0][:, :net.n_states], 2.0)) == pytest.approx(res.lower,
                                                                                                  rel=1e-9)
    for level, outcome in ((1.05 * serial.upper, Outcome.CERTIFIED), (0.95 * serial.lower, Outcome.EXCEEDED)):
        s = box_module.box_search(box_query(net, box, threshold=level, seed=seed))
        q = box_query(net, box, threshold=level, seed=seed)
        with on_workers(q, "boxes", pool) as ex:
            p = box_module.box_search(q, executor=ex)
        assert s.outcome is p.outcome is outcome


def test_violation_search_on_two_workers_gives_the_serial_verdict(random_net, unit_box, pool):
    net = random_net(4, 2, (6,), activation=acts.tanh(), weight_scale=0.6, bias_scale=0.2)
    box = unit_box(2)
    config = VerifyConfig(timeout=60.0, parallel=FAST, budget=3000)
    for threshold in (None, 0.0):
        q = Query(net, box, Quantity.VIOLATION, config, threshold=threshold)
        s = violation_module.violation_search(q)
        with on_workers(q, "violation", pool) as ex:
            p = violation_module.violation_search(q, executor=ex)
        assert ex.rounds > 0 and s.outcome is p.outcome
        assert max(s.lower, p.lower) <= min(s.upper, p.upper)


@pytest.mark.parametrize("seed, scale", [(3, 0.9), (5, 1.03)])
def test_output_branch_and_bound_on_two_workers_gives_the_serial_verdict(seed, scale, random_net, unit_box, pool):
    """Invariance's input-split branch and bound on the workers: the serial verdict, overlapping sound brackets,
    and a witness that replays through the IR."""
    from certify.engines import output_bnb as output_module
    from certify.engines.violation_search import violation

    net = random_net(seed, 6, (16, 16))
    box = unit_box(6)
    x = np.random.default_rng(seed).uniform(-1.0, 1.0, (20_000, 6))
    peak = np.abs(net.forward(x)).max()
    net = scaled_output(net, scale / peak)  # by the sampled peak: 0.9 maps the box into itself, 1.03 leaves it
    config = VerifyConfig(timeout=60.0, parallel=FAST, budget=20_000, invariance=InvarianceOptions(gap_tol=1e-7))
    for threshold in (None, 0.0):
        q = Query(net, box, Quantity.VIOLATION, config, threshold=threshold)
        s = output_module.output_bnb(q)
        with on_workers(q, "output", pool) as ex:
            p = output_module.output_bnb(q, executor=ex)
        assert s.outcome is p.outcome, (s, p)
        assert ex.rounds > 0 or threshold is not None  # exact mode takes parallel steps (a falsification may not)
        assert max(s.lower, p.lower) <= min(s.upper, p.upper) + 1e-12
        for res in (s, p):
            assert box.contains(res.witness)
            assert float(violation(net, box, res.witness[None])[0][0]) == pytest.approx(res.lower, abs=1e-12)


def scaled_output(net, factor):
    """``net`` with its output layer scaled by ``factor``."""
    from certify.ir.network import Network

    return Network(net.layers, net.out_weight * factor, net.out_bias * factor, net.skip)


def test_dask_local_cluster_equals_serial(random_net, unit_box):
    distributed = pytest.importorskip("distributed")
    from certify.engines import dask_workers
    net = random_net(1, 2, (8, 8))
    box = unit_box(2)
    q = region_query(net, box, seed=1)
    serial = region_module.region_search(q)
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=":0") as cl:
        with dask_workers.DaskWorkers(cl.scheduler_address) as dask_pool:
            assert dask_pool.n == 2
            with on_workers(q, "region", dask_pool) as ex:
                par = region_module.region_search(q, executor=ex)
            assert ex.rounds > 0
            # the config's address reaches the same cluster (the executor connects by itself)
            qc = region_query(net, box, seed=1).with_(config=q.config.with_(cluster=cl.scheduler_address))
            with on_workers(qc, "region", None) as ex2:
                par2 = region_module.region_search(qc, executor=ex2)
            assert ex2.rounds > 0
    for res in (par, par2):
        assert res.exact and res.outcome is serial.outcome
        assert res.lower == pytest.approx(serial.lower, rel=1e-12, abs=1e-14)
        assert res.upper == pytest.approx(serial.upper, rel=1e-12, abs=1e-14)
        assert replays(net, box, res, net.n_states)


def test_a_worker_failure_is_raised_in_the_main_process_and_the_pool_stays_usable(random_net, unit_box, pool):
    net = random_net(1, 2, (4,))
    q = region_query(net, unit_box(2))
    executor = parallel.ParallelSearch(parallel.SearchFactory(q, "region"), pool=pool)
    try:
        executor.take(None, None, 0.0, 10**6)
        bad = [region_module.Node(1.0, "not a node"), region_module.Node(0.5, "nor this")]
        with pytest.raises(parallel.WorkerError, match="a worker failed"):
            executor.expand(None, bad, region_module.Incumbent())
    finally:
        executor.close()
    serial = region_module.region_search(q)
    with on_workers(q, "region", pool) as ex:
        again = region_module.region_search(q, executor=ex)
    assert ex.rounds > 0 and again.lower == pytest.approx(serial.lower, rel=1e-12)


def test_command_line_options(capsys):
    import certify.cli as cli

    args = cli.build_parser().parse_args(["m.onnx", "--region", "b.yaml", "--workers", "3", "--cluster", "tcp://h:1"])
    assert (args.workers, args.cluster) == (3, "tcp://h:1")
    examples = Path(__file__).resolve().parents[1] / "examples"
    code = cli.run([str(examples / "tank_relu.onnx"), "--region", str(examples / "box.yaml"), "--workers", "0"])
    err = capsys.readouterr().err
    assert code == 3 and "workers" in err and "Traceback" not in err


def test_options_are_checked():
    with pytest.raises(UsageError):
        VerifyConfig(workers=0)
    with pytest.raises(TypeError):
        VerifyConfig(workers=2.0)
    with pytest.raises(TypeError):
        VerifyConfig(cluster="  ")
    with pytest.raises(UsageError):
        ParallelOptions(chunk=0)
    with pytest.raises(UsageError):
        ParallelOptions(cluster_chunk=0)
    assert VerifyConfig(cluster=" tcp://h:8786 ").cluster == "tcp://h:8786"
    with pytest.raises(UsageError, match="no parallel search"):
        parallel.SearchFactory(Query.__new__(Query), "nope")


class _Cluster:
    """A stand-in for a Dask pool: ``n`` worker threads, a factory registered by token (nothing runs on it)."""

    n = 3

    def add(self, factory) -> str:
        return "token"

    def remove(self, token: str) -> None:
        pass


def test_a_step_sends_chunk_nodes_a_task_to_local_workers_and_cluster_chunk_to_a_cluster(random_net, unit_box,
                                                                                             pool):
    """Local workers take ``chunk`` region nodes a task, a cluster (a few ms of scheduling a task) ``cluster_chunk``;
    the violation search a fixed task size on both."""
    options = ParallelOptions(start_after=0, start_seconds=0.0, chunk=3, cluster_chunk=5, tasks_per_worker=2)
    q = region_query(random_net(1, 2, (4,)), unit_box(2), options=options)
    pool.wait_ready()
    local = parallel.ParallelSearch(parallel.SearchFactory(q, "region"), pool=pool)
    cluster = parallel.ParallelSearch(parallel.SearchFactory(q, "region"), pool=_Cluster())
    try:
        assert local.take(None, None, 0.0, 10**6) == pool.n * 2 * 3
        assert cluster.take(None, None, 0.0, 10**6) == 3 * 2 * 5
    finally:
        local.close()
        cluster.close()
    assert parallel.WORK["violation"].chunk(None, None, 0.0, 3) == parallel.VIOLATION_TASK_NODES


class _NotStarted(parallel.LocalWorkers):
    """A pool whose workers never say they are ready (they are still importing, as just after a spawn)."""

    def ready(self) -> int:
        return 0


def test_a_search_never_waits_for_workers_that_have_not_started(random_net, unit_box):
    # tasks go only to workers that have started; until one has, every step stays serial (a search used to wait
    # for the imports of every worker at its first parallel step)
    net = random_net(1, 2, (8, 8))
    q = region_query(net, unit_box(2))
    serial = region_module.region_search(q)
    with _NotStarted(1) as workers:
        with on_workers(q, "region", workers) as ex:
            res = region_module.region_search(q, executor=ex)
    assert ex.rounds == 0 and res.nodes == serial.nodes and res.lower == serial.lower and res.upper == serial.upper


def test_closing_a_pool_whose_workers_have_not_started_stops_them():
    workers = parallel.LocalWorkers(2, method="spawn")  # spawned workers import for about a second each
    workers._starter.join()  # both processes started (a spawn returns before the child has imported anything)
    workers.close()  # at once (a worker still importing holds nothing): close used to wait for the imports to end
    assert [proc.exitcode for proc in workers.procs] == [-signal.SIGTERM] * 2  # stopped, not ended by themselves
    early = parallel.LocalWorkers(2, method="spawn")
    early.close()  # before the starter thread may have started them: those it starts later it stops at once
    early._starter.join()
    for proc in early.procs:
        if proc is not None:
            proc.join(timeout=30)
    assert all(proc is None or proc.exitcode == -signal.SIGTERM for proc in early.procs)


def test_a_worker_that_dies_is_a_worker_error_with_a_hint(random_net, unit_box):
    # a dead worker surfaced as a bare ConnectionResetError / BrokenPipeError (a script without the __main__ guard
    # kills its spawned workers at start)
    net = random_net(1, 2, (4,))
    q = region_query(net, unit_box(2))
    with parallel.LocalWorkers(1) as workers:
        token = workers.add(parallel.SearchFactory(q, "region"))
        workers._starter.join()
        workers.procs[0].kill()
        workers.procs[0].join(timeout=10)
        with pytest.raises(parallel.WorkerError, match="__main__"):
            workers.map(token, [([], 0.0, (0, 0, 0))])


def test_no_worker_starts_before_start_seconds(random_net, unit_box, monkeypatch):
    # each worker costs about a CPU second of imports: a search starts (and spawns) them only once it has run
    # start_seconds as well as start_after nodes (here: past the nodes, never the seconds)
    def refuse(*args, **kwargs):
        raise AssertionError("a worker pool was started")

    monkeypatch.setattr(parallel, "LocalWorkers", refuse)
    net = random_net(1, 2, (8, 8))
    q = region_query(net, unit_box(2), options=ParallelOptions(start_after=2, start_seconds=1e9))
    q = q.with_(config=q.config.with_(workers=2))
    serial = region_module.region_search(q.with_(config=q.config.with_(workers=1)))
    res = region_module.region_search(q)
    assert res.counts.nodes > 2 and res.lower == serial.lower and res.upper == serial.upper


def test_a_dask_task_limits_the_threads_for_its_own_length_only():
    """A task on a Dask worker (a process that is the cluster's, not ours) runs with ParallelOptions.threads torch
    and BLAS threads, and leaves the worker's settings as they were, also when the task raises."""
    import torch
    from threadpoolctl import threadpool_info

    before = torch.get_num_threads()
    blas_before = [pool["num_threads"] for pool in threadpool_info()]
    limit = 1 if before > 1 else 2
    with parallel.task_threads(limit):
        assert torch.get_num_threads() == limit
        if limit == 1:
            assert all(pool["num_threads"] == 1 for pool in threadpool_info())
    assert torch.get_num_threads() == before
    with pytest.raises(RuntimeError, match="inside"), parallel.task_threads(limit):
        raise RuntimeError("inside")
    assert torch.get_num_threads() == before
    assert [pool["num_threads"] for pool in threadpool_info()] == blas_before


def test_a_worker_whose_pool_closed_while_it_started_ends_quietly(tmp_path):
    # a pool closed during a short search can leave a worker that starts afterwards: its "ready" went into a closed
    # pipe and multiprocessing printed a BrokenPipeError traceback on the user's terminal
    import subprocess
    import sys

    script = tmp_path / "late_worker.py"
    script.write_text(
        "import multiprocessing as mp\n"
        "from certify.engines import parallel\n"
        "if __name__ == '__main__':\n"
        "    parent, child = mp.Pipe()\n"
        "    parent.close()\n"
        "    proc = mp.get_context('spawn').Process(target=parallel._serve, args=(child, 1))\n"
        "    proc.start()\n"
        "    child.close()\n"
        "    proc.join()\n"
        "    print('exit', proc.exitcode)\n")
    done = subprocess.run([sys.executable, str(script)], capture_output=True, text=True, timeout=120)
    assert done.stdout.strip() == "exit 0" and "Traceback" not in done.stderr, done.stderr


def test_an_interrupt_between_a_send_and_its_bookkeeping_leaves_no_stale_answer(random_net, unit_box):
    """Ctrl-C just after a task was sent, before it was booked: the drain read only the answers it knew of, so
    the next round of the same pool took the old task's answer as its own. The pool now refuses further rounds."""
    net = random_net(1, 2, (4,))
    q = region_query(net, unit_box(2))
    with parallel.LocalWorkers(1) as workers:
        workers.wait_ready()
        executor = parallel.ParallelSearch(parallel.SearchFactory(q, "region"), pool=workers)
        executor.take(None, None, 0.0, 10**6)
        send = workers._send

        def send_then_interrupt(*args):
            send(*args)
            raise KeyboardInterrupt

        workers._send = send_then_interrupt
        nodes = [region_module.Node(1.0, "not a node")]
        with pytest.raises(KeyboardInterrupt):
            executor.expand(None, nodes, region_module.Incumbent())
        workers._send = send
        with pytest.raises(parallel.WorkerLost, match="interrupted"):  # a search on it goes on in its own process
            workers.map(executor.token, [([], 0.0, (0, 0, 0))])


def test_the_workers_inexact_leaves_reach_the_reason(pool):
    """A leaf whose float64 matrix may be off by more than 1e-9 of its norm (a chain that cancels) is final with
    its rounding bound, wherever it is expanded; the reason that names such leaves must see the workers' too (their
    count was not merged: the parallel bracket was right and its reason said nothing of them)."""
    from test_sub_step_slivers import cancelling_net

    net, box = cancelling_net(), Box(np.array([0.5]), np.array([1.0]))
    options = ParallelOptions(start_after=0, start_seconds=0.0, chunk=1, tasks_per_worker=1)
    q = region_query(net, box, options=options)
    serial = region_module.region_search(q)
    assert "may be off" in serial.reason, serial
    with on_workers(q, "region", pool) as ex:
        par = region_module.region_search(q, executor=ex)
    assert ex.rounds > 0 and par.reason == serial.reason and (par.lower, par.upper) == (serial.lower, serial.upper)


def test_a_search_stopped_with_rounds_in_flight_leaves_the_pool_clean(random_net, unit_box, pool):
    """A budget stops the search while rounds are still out on the workers: their nodes count as open (the bracket
    holds the exact value); the tasks not sent yet are dropped (no worker spends time on them) and the answers owed
    are read and dropped by the next search on the pool, never taken as its own."""
    net = random_net(2, 4, (12, 12))
    box = unit_box(4)
    serial = region_module.region_search(region_query(net, box, seed=2))
    assert serial.exact
    ahead = ParallelOptions(start_after=4, start_seconds=0.0, chunk=1, tasks_per_worker=3, rounds_ahead=2)
    for budget in (40, 60, 100):
        q = region_query(net, box, seed=2, options=ahead)
        q = q.with_(config=q.config.with_(budget=budget))
        with on_workers(q, "region", pool) as ex:
            stopped = region_module.region_search(q, executor=ex)
            assert ex.in_flight > 0 and pool._pending  # the budget stopped it with rounds out, tasks not sent yet
        assert not pool._pending
        assert stopped.outcome is Outcome.BUDGET
        assert stopped.lower <= serial.lower * (1 + 1e-12) and stopped.upper >= serial.lower * (1 - 1e-12)
    q = region_query(net, box, seed=2, options=ahead)
    with on_workers(q, "region", pool) as ex:
        again = region_module.region_search(q, executor=ex)
    assert ex.rounds > 0 and again.exact
    assert not pool._left and not pool._answers  # every answer owed was read
    assert again.lower == pytest.approx(serial.lower, rel=1e-12)
    assert again.upper == pytest.approx(serial.upper, rel=1e-12)


@pytest.mark.parametrize("rounds_ahead, lose_at", [(0, 2), (1, 4)])
def test_a_search_whose_worker_dies_goes_on_here_and_gives_the_serial_value(rounds_ahead, lose_at, random_net,
                                                                           unit_box, monkeypatch):
    """A worker killed mid-search (the OOM killer, a crash in native code) used to end the search with an internal
    error: the rounds in flight are now expanded in the main process, the rest of the search runs there, and a
    WorkerWarning says so; the result is the serial one."""
    net = random_net(4, 2, (16, 16))
    box = unit_box(2)
    options = ParallelOptions(start_after=4, start_seconds=0.0, chunk=1, tasks_per_worker=1,
                              rounds_ahead=rounds_ahead)
    q = region_query(net, box, seed=4, options=options)
    serial = region_module.region_search(q)
    with parallel.LocalWorkers(2) as workers:  # a pool of its own: the dead worker breaks it
        workers.wait_ready()
        submit, calls, flying = workers.submit, [], []
        expand = region_module._RegionProblem.expand
        here = []  # nodes the main process expanded after the loss

        def kill_then_submit(token, tasks):
            calls.append(len(tasks))
            if len(calls) == lose_at:
                flying.append(holder[0].open_nodes())
                workers.procs[0].kill()
                workers.procs[0].join(timeout=10)
            return submit(token, tasks)

        def counted(self, nodes, incumbent):
            here.extend(nodes)
            return expand(self, nodes, incumbent)

        monkeypatch.setattr(workers, "submit", kill_then_submit)
        with pytest.warns(parallel.WorkerWarning, match="went on in this process"):
            with on_workers(q, "region", workers) as ex:
                holder = [ex]
                monkeypatch.setattr(region_module._RegionProblem, "expand", counted)
                par = region_module.region_search(q, executor=ex)
        assert ex.lost and len(calls) == lose_at  # nothing went out after the loss
        assert ex.in_flight == 0 and here
        # the round being sent and those in flight were expanded here: none of their nodes was lost
        assert (flying[0] > 0) == (rounds_ahead > 0)
        assert len(here) >= flying[0] + calls[-1]  # chunk 1: a task is one node
    assert serial.exact and par.exact and par.outcome is serial.outcome
    assert par.lower == pytest.approx(serial.lower, rel=1e-12, abs=1e-14)
    assert par.upper == pytest.approx(serial.upper, rel=1e-12, abs=1e-14)
    assert replays(net, box, par, net.n_states)


def test_an_executor_runs_the_invariance_violation_only(random_net, unit_box, pool):
    """output_bnb with objective rows of its own cannot go to workers (they rebuild the violation from the query):
    given an executor too, it refuses instead of sending the workers another problem."""
    from certify.engines import output_bnb as output_module

    net = random_net(1, 2, (4,))
    q = Query(net, unit_box(2), Quantity.VIOLATION, VerifyConfig(parallel=FAST), threshold=0.0)
    with on_workers(q, "output", pool) as ex, pytest.raises(UsageError, match="invariance violation only"):
        output_module.output_bnb(q, np.eye(2), np.zeros(2), executor=ex)


@pytest.mark.parametrize("ready", [False, True])
def test_a_search_on_a_pool_whose_worker_died_before_the_search_goes_on_here(ready, random_net, unit_box):
    """A worker killed as the pool starts, or once it said it was ready: the search notices it when it asks how
    many workers are ready, sends them its problem or a round, and goes on in the main process."""
    net = random_net(4, 2, (16, 16))
    q = region_query(net, unit_box(2), seed=4)
    serial = region_module.region_search(q)
    with parallel.LocalWorkers(2) as workers:
        workers._starter.join()
        if ready:
            workers.wait_ready()
        workers.procs[0].kill()
        workers.procs[0].join(timeout=10)
        with pytest.warns(parallel.WorkerWarning, match="went on in this process"):
            with on_workers(q, "region", workers) as ex:
                par = region_module.region_search(q, executor=ex)
        assert ex.lost
    assert par.exact and par.lower == pytest.approx(serial.lower, rel=1e-12, abs=1e-14)
    assert par.upper == pytest.approx(serial.upper, rel=1e-12, abs=1e-14)

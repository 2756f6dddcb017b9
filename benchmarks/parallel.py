"""The exact sup ||A*||_2 search (region branch and bound) on 1 worker (serial), on 2 local worker processes, and on
a local Dask cluster of 2 worker processes, side by side in one run.

    OMP_NUM_THREADS=1 python benchmarks/parallel.py [--nets 2-32-32-2,2-64-64-2,4-16-16-4] [--no-dask] [--timeout S]
        [--dask-profile] [--dask-malloc-trim] [--start-after N] [--invariance 6-64-64-6] [--rounds-ahead 0,1]

Random ReLU nets (``tests/random_nets.random_net`` seed 7, Gaussian weights / sqrt(fan_in), biases 0.5 N(0, 1))
over [-1, 1]^d, exact mode (no threshold). The pools are started before the clock starts (their start is printed
on its own: a search started from the command line pays it once, and runs serially until a worker has started).
The Dask cluster's workers run without the statistical profiler and without the ``MALLOC_TRIM_THRESHOLD_`` that
Dask's nanny sets (``--dask-profile``, ``--dask-malloc-trim`` keep Dask's defaults). Columns: seconds, nodes
expanded, speed-up against serial, the value (equal to 1e-12 in every column,
checked), and CPU seconds: of the serial run, and on the longest path of a parallel run (the main process's
plus half the workers'), with their ratio ("cpu x": the speed-up on 2 free cores; on a shared machine the wall
ratio also measures the load); "ovh": CPU milliseconds spent per node sent to the workers beyond the serial CPU
time of the search (pickling, merging, Dask's scheduling, the LPs that start cold in a task); "busy": the workers'
CPU seconds over 2 x the wall time of the parallel steps (the share of the time the workers computed; far less
noisy on a shared machine than the wall ratio, since a slower CPU stretches both).

Nodes per region-search task (``ParallelOptions.chunk`` 2, the default now, against 8 before; 2 tasks per worker;
interleaved on one pool, a ``/tmp`` A/B script, OMP_NUM_THREADS=1, idle machine, load 1.7-2.0 from the runs
themselves; speed-up on 2 workers against serial, chunk 8 -> chunk 2): 8-16-16-8 (serial 25.2-26.0 s, 1937 nodes)
1.75x, 1.83x -> 1.92x, 1.95x (2215 -> 2004 nodes); 4-32-32-4 1.89x, 1.84x -> 1.91x, 1.84x (1362 -> 1306 nodes);
2-128-128-2 1.82x, 1.81x -> 1.91x, 1.90x; 2-64-64-2 1.75x, 1.75x -> 1.88x, 1.86x; 4-16-16-4 (0.9 s serial)
1.41x, 1.39x -> 1.53x, 1.55x. Chunk 1 with 4 tasks per worker was alike (8-16-16-8 1.77-1.93x); chunk 1 with 2
tasks best on 4-16-16-4 (1.72-1.76x) and worse on 8-16-16-8 once (1.87x). A round of 8 nodes instead of 32 sends
fewer nodes against a stale incumbent (the sup of 8-16-16-8 is found at the serial run's last node). On the Dask
cluster 2 nodes a task cost more than they saved (``--nets 4-32-32-4,2-128-128-2,8-16-16-8``: Dask 1.36x, 1.32x,
1.32x, overhead 3.3-4.7 ms per node), so a cluster's tasks keep 8 (``ParallelOptions.cluster_chunk``): then, in one
run, serial 13.15 / 6.10 / 24.74 s, 2 local workers 1.96x / 1.93x / 1.88x, 2 Dask workers 1.55x / 1.48x / 1.58x
(overhead 2.0-2.2 ms per node); the same values.

Rounds in flight (``ParallelOptions.rounds_ahead`` 1, the default, against 0), interleaved on one pool
(``/tmp`` A/B script, not in the repository; OMP_NUM_THREADS=1, load 0.2-1): 4-32-32-4 busy 0.961-0.968 against
0.858-0.885 (4 runs each), 1362 nodes against 1331, speed-up 1.64-2.31x against 1.56-1.93x; 8-16-16-8 busy
0.970-0.974 against 0.892-0.906 (2 runs each), 2215 nodes against 2086, 2.00-2.35x against 1.97-2.05x. The serial
run itself took 14.9-20.9 s and 32-41 s: the wall ratios mostly measure the machine.

Measured again (``--nets 4-32-32-4,2-128-128-2,8-16-16-8 --no-dask``, load 0.7-1.7; serial s -> 2 local workers
s, speed-up wall / CPU): 4-32-32-4 14.42 -> 8.38, 1.72x / 1.87x; 2-128-128-2 5.90 -> 3.41, 1.73x / 1.90x;
8-16-16-8 27.50 -> 18.18, 1.51x / 1.83x (a test ran beside it), alone 44.27 -> 26.36, 1.68x / 1.83x (the serial run
itself took 27-44 s on this shared machine). Four runs each on one pool, interleaved (8-16-16-8, serial 29.5-32.8
s): chunk 8 x 2 tasks per worker (the defaults) 1.41x, 1.73x, 1.73x, 1.81x; chunk 2 x 4 tasks 1.79x, 1.81x, 1.86x,
1.91x (16 nodes a round instead of 32: 2004 nodes instead of 2086, and tasks that balance better); on 4-32-32-4 and
2-128-128-2 the two were alike (1.76-1.85x). The CPU ratio stays at 1.83-1.90x: what the wall ratio loses is the
wait at the end of each round and the load.

Measured with workers that hold two tasks each and ``start_after`` 16 (``--nets 4-32-32-4,2-128-128-2,8-16-16-8
--no-dask``, load 0.6-1.1; serial s -> 2 local workers s, speed-up): 4-32-32-4 13.12 -> 7.69, 1.71x; 2-128-128-2
5.52 -> 3.14, 1.76x; 8-16-16-8 26.20 -> 16.00, 1.64x (2086 nodes against 1937: a round's nodes are bounded
against the incumbent it was sent with); the same values. With Dask (the same nets, load 0.9-1.9, one run): local
1.87x, 1.70x, 1.60x; Dask 1.75x, 1.35x, 1.48x, overhead -1.0, 2.4, 1.7 ms per node. With the nanny's
``MALLOC_TRIM_THRESHOLD_=65536`` kept, the Dask exact search of 2-128-128-2 took 9.5 s instead of 5.4 s: each
task ran 1.8x as long (glibc maps and unmaps every large array afresh), which was the 11-14 ms per node measured
before on 2-128-128-2 and 8-16-16-8. Before (``start_after`` 128, one task per worker at a time, load 0.7-1.2):
4-32-32-4 13.38 -> 8.54, 1.57x; 2-128-128-2 6.08 -> 3.54, 1.72x; 8-16-16-8 24.97 -> 16.53, 1.51x.

``--invariance``: the invariance check's output branch and bound in certify mode on benchmarks/invariance.py's
nets scaled to an exact max |f_i| of 0.97 (the same verdict checked; the box counts come out equal). Measured
(``--nets 2-32-32-2 --invariance 6-64-64-6``, load 0.75-0.95): 4.14 s serial, 2.28 s on 2 local workers (1.82x),
3.36 s on 2 Dask workers (1.23x), 25783 boxes each; with one pickled node per box instead of packed arrays, 1.47x
and 0.86x. Smaller invariance runs take well under a second (4-64-64-4: 0.08 s): nothing to spread.

Before the slope search's greedy climb
(``--nets 4-32-32-4,2-128-128-2,8-16-16-8``, load about 2; serial s ->
2 local workers s, speed-up; Dask 2 workers s, speed-up, overhead per node): 4-32-32-4 20.32 -> 11.13, 1.83x;
14.14, 1.44x, 1.7 ms; 2-128-128-2 6.96 -> 4.04, 1.72x; 8.37, 0.83x, 14.3 ms; 8-16-16-8 40.31 -> 23.34, 1.73x;
36.13, 1.12x, 11.4 ms; the same values. Measured with the node LPs of the region search (``--nets
4-32-32-4,2-128-128-2,8-16-16-8 --no-dask``, load about 1;
serial s -> 2 local workers s, speed-up, CPU speed-up): 4-32-32-4 18.73 -> 9.92, 1.89x, 1.99x; 2-128-128-2
6.42 -> 3.75, 1.71x, 1.81x; 8-16-16-8 25.12 -> 13.65, 1.84x, 1.93x; the same values. With Dask (two runs of
``--nets 4-32-32-4``, load 1.4-1.7): serial 22.8 s / 20.8 s, local 2 workers 13.8 s / 10.6 s, Dask 2 workers 18.4 s
(1.24x, overhead 2.3 ms per node) with Dask's statistical profiler on (``--dask-profile``) / 14.5 s (1.43x, 0.8 ms
per node) with it off (the default here). Before them (heavier LPs, less
work per node to spread), measured (load 0.8-1.7, OMP_NUM_THREADS=1; serial s -> 2 local workers s, speed-up; Dask
speed-up):
2-64-64-2 2.29 -> 1.65, 1.38x; 1.10x. 4-16-16-4 4.17 -> 2.58, 1.62x; 1.21x. 2-128-128-2 15.79 -> 7.43, 2.13x; 0.99x
(Dask overhead 8.8 ms per node). 4-32-32-4 (``--no-dask``) 48.79 -> 33.09, 1.47x. Same values and nodes.
"""

from __future__ import annotations

import argparse
import sys
import time
from dataclasses import replace
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from certify.config import ParallelOptions, VerifyConfig  # noqa: E402
from certify.engines import output_bnb as ob  # noqa: E402
from certify.engines import parallel  # noqa: E402
from certify.engines import region_search as rs  # noqa: E402
from certify.engines.contract import Query  # noqa: E402
from certify.ir.box import Box  # noqa: E402
from certify.ir.quantity import Quantity  # noqa: E402
from tests.random_nets import random_net, unit_box  # noqa: E402


def on_pool(engine: str, search, query: Query, pool=None):
    """``search(query)`` (an engine) with its search loop on ``pool`` (None: serial, whatever the config says).
    Returns (result, executor or None)."""
    if pool is None:
        return search(query), None
    with parallel.search_executor(query, engine, pool=pool) as executor:
        return search(query, executor=executor), executor


def exact_search(query: Query, pool=None):
    """region_search on ``pool`` (None: serial): (result, executor or None)."""
    return on_pool("region", rs.region_search, query, pool)


def invariance_search(query: Query, pool=None):
    """The invariance check's output branch and bound on ``pool`` (None: serial): (result, executor or None)."""
    return on_pool("output", ob.output_bnb, query, pool)


def invariance_rows(args, pools) -> None:
    """Certify invariance of ``n-w-w-n`` nets scaled to an exact max |f_i| of 0.97 (benchmarks/invariance.py's
    nets): serial and on each pool, the same verdict checked."""
    if not args.invariance:
        return
    from benchmarks.invariance import make_net, parse_case

    print(f"{'invariance':>12s} {'serial s':>9s} {'boxes':>7s}" + "".join(
        f" | {name + ' s':>9s} {'speed-up':>8s} {'boxes':>7s}" for name in pools) + " | verdict")
    options = ParallelOptions(start_after=args.start_after, start_seconds=0.0)
    for spec in args.invariance.split(","):
        n, width, depth = parse_case(spec)
        net = make_net(n, width, depth, 0.97, scaling="exact")
        query = Query(net, Box(-np.ones(n), np.ones(n)), Quantity.VIOLATION,
                      VerifyConfig(timeout=args.timeout, parallel=options), threshold=0.0)
        serial, _ = invariance_search(query.with_(deadline=None))
        line = f"{spec:>12s} {serial.seconds:9.2f} {serial.counts.boxes:7d}"
        for pool in pools.values():
            res, _ = invariance_search(query.with_(deadline=None), pool)
            if res.outcome is not serial.outcome:
                raise SystemExit(f"{spec}: parallel verdict {res.outcome} != serial {serial.outcome}")
            line += f" | {res.seconds:9.2f} {serial.seconds / res.seconds:8.2f} {res.counts.boxes:7d}"
        print(line + f" | {serial.outcome.value}", flush=True)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--nets", default="2-32-32-2,2-64-64-2,4-16-16-4")
    ap.add_argument("--no-dask", action="store_true", help="skip the Dask local cluster")
    ap.add_argument("--dask-profile", action="store_true",
                    help="keep the Dask workers' statistical profiler on (Dask's default; off here by default)")
    ap.add_argument("--dask-malloc-trim", action="store_true",
                    help="keep the MALLOC_TRIM_THRESHOLD_=65536 that Dask's nanny sets for its workers (Dask's "
                         "default; left out here by default)")
    ap.add_argument("--invariance", default="",
                    help="also certify invariance of these n-w-w-n nets (e.g. 6-64-64-6), scaled to 0.97")
    ap.add_argument("--timeout", type=float, default=300.0)
    ap.add_argument("--start-after", type=int, default=ParallelOptions().start_after)
    ap.add_argument("--rounds-ahead", default=str(ParallelOptions().rounds_ahead),
                    help="ParallelOptions.rounds_ahead of the local columns: one column per value (e.g. 0,1)")
    args = ap.parse_args(argv)
    pools = {}
    t = time.perf_counter()
    pools["local 2"] = parallel.LocalWorkers(2)
    start_local = time.perf_counter() - t
    cluster = None
    start_dask = float("nan")
    if not args.no_dask:
        try:
            import distributed

            from certify.engines.dask_workers import DaskWorkers
        except ImportError:
            print("distributed is not installed: no Dask column (pip install 'certify[distributed]')")
        else:
            import dask

            t = time.perf_counter()
            # Dask's statistical profiler samples each worker's stack every 10 ms: measured to cost about 1.5 ms of
            # CPU per node here (the README asks for cluster workers started without it)
            # the nanny starts each worker with MALLOC_TRIM_THRESHOLD_=65536 (to give memory back to the system):
            # glibc then maps and unmaps every large numpy array afresh, which measured 1.8x the time of each task
            # on 2-128-128-2 (the README asks for cluster workers started without it)
            environ = dict(dask.config.get("distributed.nanny.pre-spawn-environ"))
            if not args.dask_malloc_trim:
                environ.pop("MALLOC_TRIM_THRESHOLD_", None)
            with dask.config.set({"distributed.worker.profile.enabled": args.dask_profile,
                                  "distributed.nanny.pre-spawn-environ": environ}):
                cluster = distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True,
                                                   dashboard_address=":0")
            pools["dask 2"] = DaskWorkers(cluster.scheduler_address)
            profiling = pools["dask 2"].client.run(lambda: dask.config.get("distributed.worker.profile.enabled"))
            trim = pools["dask 2"].client.run(lambda: __import__("os").environ.get("MALLOC_TRIM_THRESHOLD_"))
            print(f"Dask workers' statistical profiler: {sorted(set(profiling.values()))}; their "
                  f"MALLOC_TRIM_THRESHOLD_: {sorted(set(map(str, trim.values())))}")
            start_dask = time.perf_counter() - t
    t = time.perf_counter()
    pools["local 2"].wait_ready()
    tiny = Query(random_net(1, 2, (4,)), unit_box(2), Quantity.A_STAR,
                 VerifyConfig(parallel=ParallelOptions(start_after=0, start_seconds=0.0, chunk=1)))
    for pool in pools.values():  # every worker imports the engines and builds a problem once
        exact_search(tiny, pool)
    warm = time.perf_counter() - t
    print(f"pool start (not in the columns): local 2 workers {start_local:.2f} s (started; they import in the "
          f"background), Dask local cluster {start_dask:.2f} s; until every worker is ready and has run a first "
          f"task {warm:.2f} s")
    aheads = [int(v) for v in args.rounds_ahead.split(",")]
    columns = [(f"local 2 ra{v}" if len(aheads) > 1 else "local 2", pools["local 2"], v) for v in aheads]
    columns += [(name, pool, ParallelOptions().rounds_ahead) for name, pool in pools.items() if name != "local 2"]
    head = f"{'net':>12s} {'serial s':>9s} {'cpu s':>6s} {'nodes':>6s}"
    for name, _, _ in columns:
        head += (f" | {name + ' s':>9s} {'speed-up':>8s} {'cpu s':>6s} {'cpu x':>5s} {'nodes':>6s} "
                 f"{'sent':>5s} {'ovh ms/node':>11s} {'busy':>5s}")
    print(head + f" | {'value':>16s}")
    print(f"{'':>12s} {'':>9s} {'':>6s} {'':>6s}" + f" | {'':>9s} {'wall':>8s} {'':>6s} {'':>5s} {'':>6s} "
          f"{'(cpu)':>11s} {'':>5s}" * len(columns))
    options = ParallelOptions(start_after=args.start_after, start_seconds=0.0)  # the engine's speed-up from the start
    try:
        for spec in args.nets.split(","):
            sizes = [int(s) for s in spec.split("-")]
            d, widths = sizes[0], tuple(sizes[1:-1])
            net = random_net(7, d, widths)
            box = unit_box(d)
            query = Query(net, box, Quantity.A_STAR, VerifyConfig(timeout=args.timeout, parallel=options))
            cpu = time.process_time()
            serial, _ = exact_search(query.with_(deadline=None))
            serial_cpu = time.process_time() - cpu
            line = f"{spec:>12s} {serial.seconds:9.2f} {serial_cpu:6.2f} {serial.nodes:6d}"
            for _, pool, ahead in columns:
                config = query.config.with_(parallel=replace(options, rounds_ahead=ahead))
                cpu = time.process_time()
                res, ex = exact_search(query.with_(deadline=None, config=config), pool)
                main_cpu = time.process_time() - cpu
                if res.exact and serial.exact and abs(res.lower - serial.lower) > 1e-12 * max(1.0, serial.lower):
                    raise SystemExit(f"{spec}: parallel value {res.lower!r} != serial {serial.lower!r}")
                # the CPU time on the longest path: the main process plus the workers' share (2 workers)
                path_cpu = main_cpu + ex.worker_cpu / 2
                ovh = (main_cpu + ex.worker_cpu - serial_cpu) / max(ex.remote_nodes, 1) * 1e3
                busy = ex.worker_cpu / (pool.n * ex.seconds) if ex.seconds > 0 else float("nan")
                line += (f" | {res.seconds:9.2f} {serial.seconds / res.seconds:8.2f} {path_cpu:6.2f} "
                         f"{serial_cpu / path_cpu:5.2f} {res.nodes:6d} {ex.remote_nodes:5d} {ovh:11.2f} {busy:5.2f}")
            exact = "exact" if serial.exact else "bracket"
            print(line + f" | {serial.lower:16.12f} {exact}", flush=True)
        invariance_rows(args, pools)
    finally:
        for pool in pools.values():
            pool.close()
        if cluster is not None:
            cluster.close()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

"""fastmlp.dask on a LocalCluster of worker processes next to the in-memory fit.

    python benchmarks/dask_scaling.py                # the points in README's Dask section
    python benchmarks/dask_scaling.py --quick        # smaller, about a minute
    python benchmarks/dask_scaling.py --out-of-core 4 --memory-limit 1GiB

Full batch (lbfgs): the same fit on 1 and 2 workers (1 thread each) over
the same chunks, checked bit for bit against the fit computed in this
process (client=False), set against the in-memory fit (default threads);
the time of an L-BFGS iteration split into the workers' computing (the
longest any worker spent per pass, from Dask's task stream), the rest of the
passes (communication and scheduling) and the client's own work (scipy,
adding up, finishing). Mini-batch (adam): time per step and per epoch for
several batch sizes on 1 and 2 workers, next to the in-memory epoch, and
the accuracy of both after the same epochs. --out-of-core N trains L-BFGS
on N GiB of lazily generated chunks with workers limited to --memory-limit.
Times are medians of --repeats runs.
"""

import argparse
import contextlib
import statistics
import threading
import time
import warnings

import numpy as np

import fastmlp
import fastmlp.dask


@contextlib.contextmanager
def cluster(n_workers, memory_limit="auto"):
    import distributed

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        local = distributed.LocalCluster(n_workers=n_workers, threads_per_worker=1,
                                         processes=True, dashboard_address=None,
                                         silence_logs=50, memory_limit=memory_limit)
    with local, distributed.Client(local) as client:
        yield client


def data(n, d, classes, seed=0):
    from sklearn.datasets import make_classification

    X, y = make_classification(n, d, n_informative=d // 2, n_classes=classes,
                               random_state=seed)
    return X.astype(np.float32), y


def darrays(X, y, chunks, client=None):
    """X and y in `chunks` chunks of rows; with a client, persisted on its
    workers in turn (da.from_array alone would leave them all on the one
    worker that holds the whole array)."""
    import dask.array as da
    import distributed

    rows = -(-len(X) // chunks)
    if client is None:
        return da.from_array(X, chunks=(rows, X.shape[1])), da.from_array(y, chunks=rows)
    workers = sorted(client.scheduler_info()["workers"])
    parts = []
    for i, start in enumerate(range(0, len(X), rows)):
        where = [workers[i % len(workers)]]
        parts.append([(da.from_delayed(client.scatter(a[start:start + rows], workers=where,
                                                      hash=False), a[start:start + rows].shape,
                                       a.dtype)) for a in (X, y)])
    arrays = client.persist([da.concatenate([p[0] for p in parts]),
                             da.concatenate([p[1] for p in parts])])
    distributed.wait(arrays)
    return arrays


class PassTimer:
    """Wall-clock windows of the cluster's passes over the chunks."""

    def __init__(self):
        self.windows = []

    def __enter__(self):
        self.original = fastmlp.dask._Cluster.map
        timer = self

        def timed(runner, *args, **kwargs):
            start = time.time()
            try:
                return timer.original(runner, *args, **kwargs)
            finally:
                timer.windows.append((start, time.time()))

        fastmlp.dask._Cluster.map = timed
        return self

    def __exit__(self, *exc):
        fastmlp.dask._Cluster.map = self.original


def split_time(windows, tasks):
    """(seconds in passes, seconds of worker computing on the critical path)
    over the windows: per pass, the most compute time any worker spent."""
    in_passes = sum(stop - start for start, stop in windows)
    computing = 0.0
    for start, stop in windows:
        per_worker = {}
        for task in tasks:
            for span in task["startstops"]:
                if span["action"] == "compute" and start <= span["start"] <= stop:
                    per_worker[task["worker"]] = (per_worker.get(task["worker"], 0.0)
                                                  + span["stop"] - span["start"])
        computing += max(per_worker.values(), default=0.0)
    return in_passes, computing


def quiet_fit(fit, *args, **kwargs):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return fit(*args, **kwargs)


def same_weights(a, b):
    return all(np.array_equal(p, q) for p, q in zip(a.coefs_ + a.intercepts_,
                                                     b.coefs_ + b.intercepts_))


def largest_difference(a, b):
    return max(float(np.abs(p.astype(np.float64) - q).max())
               for p, q in zip(a.coefs_ + a.intercepts_, b.coefs_ + b.intercepts_))


def full_batch(n, repeats, iterations=10):
    import distributed

    X, y = data(n, 64, 10)
    params = dict(hidden_layer_sizes=(128,), solver="lbfgs", max_iter=iterations, tol=0,
                  random_state=0)
    in_memory = fastmlp.MLPClassifier(**params)
    took = []
    for _ in range(repeats):
        started = time.perf_counter()
        quiet_fit(in_memory.fit, X, y)
        took.append(time.perf_counter() - started)
    size = sum(a.size for a in in_memory.coefs_ + in_memory.intercepts_)
    print(f"L-BFGS, {n} x 64 float32, 10 classes, (128,) relu ({size} parameters), "
          f"{iterations} iterations")
    print(f"  in memory (fit, default threads): {statistics.median(took) / iterations * 1e3:.1f} ms per iteration")
    for chunks in (2, 8):
        Xd, yd = darrays(X, y, chunks)
        reference = quiet_fit(fastmlp.dask.fit, fastmlp.MLPClassifier(**params), Xd, yd,
                              client=False)
        for workers in (1, 2):
            with cluster(workers) as client:
                Xp, yp = darrays(X, y, chunks, client)
                rows = []
                for _ in range(repeats):
                    model = fastmlp.MLPClassifier(**params)
                    with PassTimer() as passes, distributed.get_task_stream(client) as stream:
                        started = time.time()
                        quiet_fit(fastmlp.dask.fit, model, Xp, yp, client=client)
                        total = time.time() - started
                    in_passes, computing = split_time(passes.windows, stream.data)
                    rows.append((total, in_passes, computing, len(passes.windows)))
                total, in_passes, computing, n_passes = (statistics.median(r[i] for r in rows)
                                                         for i in range(4))
                per = 1e3 / iterations
                print(f"  {chunks} chunks, {workers} worker(s): {total * per:.1f} ms per iteration "
                      f"({n_passes / iterations:.2f} passes): workers computing {computing * per:.1f} ms, "
                      f"communication and scheduling {(in_passes - computing) * per:.1f} ms "
                      f"({(in_passes - computing) / total:.0%}), client {(total - in_passes) * per:.1f} ms; "
                      f"identical to client=False: {same_weights(model, reference)}; "
                      f"largest difference from the in-memory fit {largest_difference(model, in_memory):.1e}")


def epoch_times(batch, epochs, X, y, client=None):
    """(seconds of each epoch, seconds of the whole fit) of an Adam fit in
    memory (client None) or on the client's cluster, the epochs timed by
    the fit loop itself (EpochRecord.seconds)."""
    seconds = []

    def record(model, epoch):
        seconds.append(epoch.seconds)

    model = fastmlp.MLPClassifier(hidden_layer_sizes=(128,), solver="adam", max_iter=epochs,
                                  tol=0, random_state=0, batch_size=batch, callbacks=[record])
    started = time.perf_counter()
    if client is None:
        quiet_fit(model.fit, X, y)
    else:
        quiet_fit(fastmlp.dask.fit, model, X, y, client=client)
    return seconds, time.perf_counter() - started


def mini_batch(n, repeats, batch_sizes, epochs=3):
    X, y = data(n, 64, 10)
    print(f"Adam, {n} x 64 float32, 10 classes, (128,) relu, 2 chunks; median epoch of "
          f"{epochs}, and what the fit takes besides its epochs (checking, persisting and "
          f"preparing the chunks)")
    for batch in batch_sizes:
        steps = -(-n // batch)
        times = [epoch_times(batch, epochs, X, y)[0] for _ in range(repeats)]
        line = [f"  batch {batch} ({steps} steps): in memory "
                f"{statistics.median(t for run in times for t in run):.3f} s"]
        for workers in (1, 2):
            with cluster(workers) as client:
                Xd, yd = darrays(X, y, 2, client)
                runs = [epoch_times(batch, epochs, Xd, yd, client) for _ in range(repeats)]
                epoch = statistics.median(t for run, _ in runs for t in run)
                setup = statistics.median(total - sum(run) for run, total in runs)
                line.append(f"{workers} worker(s) {epoch:.3f} s ({epoch / steps * 1e3:.2f} ms a "
                            f"step; set-up {setup * 1e3:.0f} ms)")
        print(", ".join(line))


def accuracy(n, epochs, batch):
    from sklearn.model_selection import train_test_split

    X, y = data(n, 64, 10, seed=1)
    X_train, X_test, y_train, y_test = train_test_split(X, y, random_state=0)
    params = dict(hidden_layer_sizes=(128,), solver="adam", max_iter=epochs, random_state=0,
                  batch_size=batch)
    in_memory = quiet_fit(fastmlp.MLPClassifier(**params).fit, X_train, y_train)
    with cluster(2) as client:
        model = quiet_fit(fastmlp.dask.fit, fastmlp.MLPClassifier(**params),
                          *darrays(X_train, y_train, 2, client), client=client)
    print(f"Adam accuracy on held-out data after {epochs} epochs of batch {batch}: "
          f"in memory {in_memory.score(X_test, y_test):.4f}, "
          f"2 chunks on 2 workers {model.score(X_test, y_test):.4f}")


def _labels(block, w):
    return (block @ w > 0).astype(np.int8)


def out_of_core(gib, memory_limit, iterations, chunk_mib=64, d=64):
    import dask.array as da

    rows = chunk_mib * 2**20 // (4 * d)
    n = int(gib * 2**30) // (4 * d) // rows * rows
    w = np.random.RandomState(0).standard_normal(d).astype(np.float32)
    X = da.random.default_rng(0).standard_normal((n, d), dtype=np.float32, chunks=(rows, d))
    y = X.map_blocks(_labels, w, drop_axis=1, dtype=np.int8)
    print(f"out of core: {X.nbytes / 2**30:.2f} GiB of X ({n} x {d} float32) generated lazily in "
          f"{X.numblocks[0]} chunks of {chunk_mib} MiB; 2 workers limited to {memory_limit} each")
    import distributed

    with cluster(2, memory_limit=memory_limit) as client:
        model = fastmlp.MLPClassifier(hidden_layer_sizes=(32,), solver="lbfgs",
                                      max_iter=iterations, random_state=0)
        peak, done = {}, threading.Event()

        def watch():  # the workers' memory as the scheduler hears of it
            while not done.wait(0.2):
                for address, worker in client.scheduler_info()["workers"].items():
                    peak[address] = max(peak.get(address, 0), worker["metrics"]["memory"])

        watcher = threading.Thread(target=watch)
        watcher.start()
        try:
            with PassTimer() as passes, distributed.get_task_stream(client) as stream:
                started = time.perf_counter()
                quiet_fit(fastmlp.dask.fit, model, X, y, client=client)
                took = time.perf_counter() - started
        finally:
            done.set()
            watcher.join()
        spent = {}
        for task in stream.data:
            kind = "generating" if "standard_normal" in str(task["key"]) else "the rest"
            for span in task["startstops"]:
                if span["action"] == "compute":
                    spent[kind] = spent.get(kind, 0.0) + span["stop"] - span["start"]
        sample = X[:200_000].compute()
        print(f"  {took:.0f} s: {model.n_iter_} L-BFGS iterations, {len(passes.windows)} passes "
              f"over the data after the check; {took / (len(passes.windows) + 1):.1f} s a pass; "
              f"loss {model.loss_:.4f}, accuracy on 200,000 rows "
              f"{model.score(sample, _labels(sample, w)):.4f}")
        print("  worker time computing: " + ", ".join(f"{kind} {seconds:.0f} s"
                                                       for kind, seconds in spent.items()))
        print("  workers' peak memory: " + ", ".join(f"{m / 2**20:.0f} MiB"
                                                   for m in peak.values()))


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="smaller sizes, about a minute")
    parser.add_argument("--repeats", type=int, default=3, help="runs per measurement (median)")
    parser.add_argument("--out-of-core", type=float, metavar="GIB",
                        help="only the out-of-core run over this many GiB")
    parser.add_argument("--memory-limit", default="1GiB", help="of each worker, out of core")
    parser.add_argument("--iterations", type=int, default=5, help="of L-BFGS, out of core")
    args = parser.parse_args()
    if args.out_of_core:
        out_of_core(args.out_of_core, args.memory_limit, args.iterations)
        return
    n = 20_000 if args.quick else 100_000
    full_batch(n, args.repeats)
    mini_batch(n, args.repeats, [256, 2048, 16384])
    accuracy(n // 2, 5 if args.quick else 10, 256)


if __name__ == "__main__":
    main()

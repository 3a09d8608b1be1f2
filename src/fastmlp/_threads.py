"""How many threads the engine uses for a given n_threads parameter."""

from functools import lru_cache

import joblib

from fastmlp import _engine


@lru_cache(maxsize=1)
def _usable_cpus():
    return joblib.cpu_count(only_physical_cores=False)


def effective_n_threads(n_threads):
    """Resolve the estimators' n_threads parameter to a thread count.

    None: OpenMP's default (OMP_NUM_THREADS, or a threadpoolctl limit, when
    set), never more than the CPUs this process may use. -1: every such CPU.
    k > 0: exactly k (at most _engine.MAX_THREADS). k < -1: all CPUs but
    (-k - 1), at least 1.
    """
    if n_threads == 0:
        raise ValueError("n_threads == 0 is invalid")
    if not _engine.HAVE_OPENMP:
        return 1
    cpus = min(_usable_cpus(), _engine.MAX_THREADS)
    if n_threads is None:
        return max(1, min(_engine.default_threads(), cpus))
    if n_threads < 0:
        return max(1, cpus + 1 + n_threads)
    return min(int(n_threads), _engine.MAX_THREADS)

"""How many threads the engine uses for a given n_threads parameter, and the
engine's threads as threadpoolctl sees them.

The engine runs on its own worker threads (csrc/threads.c). With the
default n_threads=None it uses at most as many as the process may: the
usable CPUs (affinity and cgroup quotas), lowered by OMP_NUM_THREADS when set
(as joblib's workers, Dask's nannies and job schedulers set it) and by a
threadpoolctl limit; within that, it picks the count batch by batch by
timing, so a busy machine never makes a fit slower than one thread would.
An explicit n_threads is used as given.
"""

import os
import threading

import joblib

from fastmlp import _engine

_cpus: dict[int, int] = {}


def _usable_cpus():
    """The CPUs this process may use (affinity, cgroup quotas), looked up
    once per process."""
    pid = os.getpid()
    if pid not in _cpus:
        _cpus[pid] = joblib.cpu_count(only_physical_cores=False)
    return _cpus[pid]


def _omp_num_threads():
    """The first count in OMP_NUM_THREADS (it may list one per nesting
    level), or None when unset or not a positive integer."""
    value = os.environ.get("OMP_NUM_THREADS", "").split(",")[0].strip()
    try:
        count = int(value) if value.isascii() and value.isdecimal() else 0
    except ValueError:
        count = 0
    return count if count > 0 else None


class _Limit(threading.local):
    """A limit threadpoolctl set on the default thread count, one per Python
    thread as OpenMP's are (threadpool_limits in one thread leaves fits in
    others alone); 0 for none."""

    value = 0


_limits = _Limit()


def thread_limit():
    return _limits.value


def _unlimited_default():
    count = min(_usable_cpus(), _engine.MAX_THREADS)
    omp = _omp_num_threads()
    return max(1, min(count, omp) if omp else count)


def default_n_threads():
    """The most threads a fit with n_threads=None may use."""
    if not _engine.HAVE_THREADS:
        return 1
    count = _unlimited_default()
    limit = thread_limit()
    return min(count, limit) if limit else count


def effective_n_threads(n_threads):
    """Resolve the estimators' n_threads parameter to a thread count.

    None: default_n_threads(), the most the engine may use (adaptive_threads
    is then true). -1: every usable CPU. k > 0: exactly k (at most
    _engine.MAX_THREADS). k < -1: all usable CPUs but (-k - 1), at least 1.
    """
    if n_threads == 0:
        raise ValueError("n_threads == 0 is invalid")
    if not _engine.HAVE_THREADS:
        return 1
    if n_threads is None:
        return default_n_threads()
    cpus = min(_usable_cpus(), _engine.MAX_THREADS)
    if n_threads < 0:
        return max(1, cpus + 1 + n_threads)
    return min(int(n_threads), _engine.MAX_THREADS)


def adaptive_threads(n_threads):
    """True when the engine picks the count itself (n_threads=None)."""
    return n_threads is None and _engine.HAVE_THREADS


def _register_with_threadpoolctl():
    """Make the engine's threads visible to threadpoolctl: threadpool_info()
    lists them (user_api 'openmp', internal_api 'fastmlp', as they follow
    the OpenMP conventions) and threadpool_limits() limits the default
    thread count. Nothing happens when threadpoolctl is missing or older."""
    try:
        import threadpoolctl
    except ImportError:
        return
    if not hasattr(threadpoolctl, "register") or not hasattr(threadpoolctl, "LibController"):
        return

    class FastmlpController(threadpoolctl.LibController):
        user_api = "openmp"
        internal_api = "fastmlp"
        # the extension's file name, which no other library's starts with
        filename_prefixes = ("_fastmlp_engine",)

        def get_num_threads(self):
            return default_n_threads()

        def set_num_threads(self, num_threads):
            # threadpoolctl restores a limit by setting the count it read,
            # which is the default without a limit when there was none
            _limits.value = 0 if num_threads >= _unlimited_default() else max(1, num_threads)

        def get_version(self):
            from fastmlp import __version__

            return __version__

    threadpoolctl.register(FastmlpController)

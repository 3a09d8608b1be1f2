# cython: language_level=3, boundscheck=False, wraparound=False
"""Binding between the estimators and the C engine (csrc/fastmlp.h).

Design: the estimators own every buffer as a numpy array and hand it over
per call. This module checks each array (dtype, size, C order, writeable
when C writes into it) and each size and thread count, takes the pointers,
releases the GIL around each C call and turns C status codes into
exceptions. It does no arithmetic of its own. In the docstrings, arrays are
marked IN (read), OUT (written) or INOUT.
"""
import signal
import threading

import numpy as np

cimport numpy as cnp
from libc.stdint cimport int32_t, int64_t, uint64_t
from libc.string cimport memcpy, memset

from fastmlp._fastmlp cimport *

cnp.import_array()

ACTIVATIONS = {
    "identity": FM_IDENTITY,
    "logistic": FM_LOGISTIC,
    "tanh": FM_TANH,
    "relu": FM_RELU,
    "exp": FM_EXP,
    "softmax": FM_SOFTMAX,
    "leaky_relu": FM_LEAKY_RELU,
    "elu": FM_ELU,
    "gelu": FM_GELU,
    "softplus": FM_SOFTPLUS,
    "silu": FM_SILU,
}
LOSSES = {
    "squared_error": FM_SQUARED_ERROR,
    "log_loss": FM_LOG_LOSS,
    "binary_log_loss": FM_BINARY_LOG_LOSS,
    "poisson": FM_POISSON,
}
SOLVERS = {"sgd": FM_SGD, "adam": FM_ADAM, "adamw": FM_ADAMW, "rprop": FM_RPROP}
SCHEDULES = {"constant": FM_CONSTANT, "invscaling": FM_INVSCALING, "adaptive": FM_ADAPTIVE}

LEAKY_SLOPE = FM_LEAKY_SLOPE
# Each thread packs its own GEMM panels (under 1.3 MB); beyond this many,
# threads only cost memory.
MAX_THREADS = FM_MAX_THREADS
THREADS_BACKEND = fm_threads_backend().decode()
# False in a build without threads (FASTMLP_THREADS=OFF)
HAVE_THREADS = THREADS_BACKEND != "none"


def isa():
    """The instruction set the kernels run with now (fm_isa)."""
    return fm_isa().decode()


def isa_built():
    """The instruction sets this build has, the widest first."""
    return fm_isa_built().decode().split()


def isa_supported(str name):
    """Whether this build has the instruction set `name` and the CPU runs it."""
    return bool(fm_isa_supported(name.encode()))


def set_isa(str name):
    """Run the kernels with the instruction set `name` from now on (for tests
    and measurements; call it while no fit or prediction runs)."""
    if fm_set_isa(name.encode()) != FM_OK:
        raise ValueError(
            f"instruction set {name!r} is not available: this build has {isa_built()}, "
            f"of which this CPU runs {[i for i in isa_built() if isa_supported(i)]}"
        )


def kernel(dtype):
    """The GEMM micro-kernel used for dtype, e.g. 'avx512 12x32/8x32' (the
    second shape for products with few rows)."""
    return fm_kernel(dtype_code(np.dtype(dtype))).decode()


def workers_alive():
    """The engine's worker threads alive now (idle ones end after a while)."""
    return fm_workers_alive()


cdef class Tuner:
    """The engine's running choice of thread count (fm_tuner): pass the same
    Tuner to every call of a fit (or of a series of partial_fit calls), from
    one Python thread at a time. `threads` is the count in use (0 before
    the first call)."""
    cdef fm_tuner state

    def __cinit__(self):
        memset(&self.state, 0, sizeof(self.state))

    @property
    def threads(self):
        return self.state.threads


cdef fm_tuner *tuner_of(Tuner tuner):
    return NULL if tuner is None else &tuner.state


cdef fm_dtype dtype_code(dtype) except *:
    if dtype == np.float32:
        return FM_FLOAT32
    if dtype == np.float64:
        return FM_FLOAT64
    raise TypeError(f"the engine computes in float32 or float64, not {dtype}")


cdef int thread_count(int n_threads) except -1:
    if not 1 <= n_threads <= MAX_THREADS:
        raise ValueError(f"n_threads must be between 1 and {MAX_THREADS}, got {n_threads}")
    return n_threads


cdef int64_t checked_bytes(int64_t n) except -1:
    """A byte count from the engine; -1 means it would not fit in int64."""
    if n < 0:
        raise MemoryError("the workspace this would need exceeds the address space")
    return n


cdef void *pointer(object a, str name, object dtype, int64_t size, bint writes,
                   bint at_least=False) except NULL:
    """The data pointer of `a` once it is a C-contiguous `dtype` array of
    `size` elements (at least `size` when at_least)."""
    if not isinstance(a, np.ndarray):
        raise TypeError(f"{name} must be a numpy array, got {type(a).__name__}")
    cdef cnp.ndarray arr = <cnp.ndarray>a
    if arr.dtype != dtype:
        raise TypeError(f"{name} must have dtype {np.dtype(dtype)}, got {arr.dtype}")
    if not arr.flags.c_contiguous:
        raise ValueError(f"{name} must be C-contiguous")
    if writes and not arr.flags.writeable:
        raise ValueError(f"{name} must be writeable")
    if size < 0:
        raise ValueError(f"{name}: size out of range")
    if at_least and arr.size < size:
        raise ValueError(f"{name} must have at least {size} elements, got {arr.size}")
    if not at_least and arr.size != size:
        raise ValueError(f"{name} must have {size} elements, got {arr.size}")
    return cnp.PyArray_DATA(arr)


cdef check_status(fm_status status):
    if status == FM_ERR_INTERRUPTED:
        raise KeyboardInterrupt
    if status != FM_OK:
        raise ValueError(f"the C engine rejected its arguments (status {status})")


cdef check_csr(indptr, indices, int64_t n_features):
    """Refuse CSR arrays whose row pointers or column indices would let C read
    out of bounds."""
    if not isinstance(indptr, np.ndarray) or not isinstance(indices, np.ndarray):
        raise TypeError("CSR indptr and indices must be numpy arrays")
    n = indptr.size - 1
    if n < 0:
        raise ValueError("malformed CSR matrix: indptr is empty")
    if indptr[0] != 0 or indptr[n] != indices.size or np.any(np.diff(indptr) < 0):
        raise ValueError("malformed CSR matrix: indptr is not a valid row index")
    if indices.size and (indices.min() < 0 or indices.max() >= n_features):
        raise ValueError("malformed CSR matrix: column index out of range")


cdef const int64_t *optional_rows(rows, int64_t n, int64_t n_rows) except? NULL:
    """Pointer to `rows` (n indices below n_rows), NULL when rows is None."""
    if rows is None:
        return NULL
    cdef const int64_t *r = <const int64_t *>pointer(rows, "rows", np.int64, n, False)
    if n and (rows.min() < 0 or rows.max() >= n_rows):
        raise ValueError("rows holds an index out of range")
    return r


cdef fm_net describe(units, int32_t *activation) except *:
    """An fm_net over `units` (an int64 array) checked by the engine."""
    cdef fm_net net
    net.n_layers = units.size - 1
    net.units = <const int64_t *>cnp.PyArray_DATA(units)
    net.activation = activation
    net.loss = FM_SQUARED_ERROR
    net.alpha = 0
    net.dropout = NULL
    net.dropout_seed = 0
    if fm_check_net(&net) != FM_OK:
        raise ValueError(f"the layer widths {list(units)} are out of the engine's range")
    return net


cdef object widths(units):
    u = np.array(units, dtype=np.int64)
    if u.ndim != 1 or u.size < 2 or np.any(u < 1):
        raise ValueError(f"layer widths must be at least 1, got {list(units)}")
    u.setflags(write=False)
    return u


# aligned_empty starts an array at a multiple of LINE bytes (a cache line).
LINE = FM_LINE


def aligned_empty(int64_t n, dtype):
    """An uninitialised array of n elements of dtype whose data starts at a
    multiple of LINE (64) bytes, for the optimizer's state. numpy often starts an
    array 16 bytes past a 32-byte boundary; with the state there, on an AMD
    EPYC (Zen 4), the Adam step took 2.2 times as long (14,849 float32
    parameters, as W3) to 2.5 times (235,146 float32 parameters, as W2),
    wherever the parameters and gradients lay, and the second moments
    (n elements on) needed no boundary of their own."""
    if n < 0:
        raise ValueError(f"n must be at least 0, got {n}")
    dt = np.dtype(dtype)
    buf = np.empty(n * dt.itemsize + LINE, dtype=np.uint8)
    skip = (-buf.ctypes.data) % LINE
    return buf[skip : skip + n * dt.itemsize].view(dt)


def param_layout(units):
    """Where each layer's weights and biases sit in the flat parameter buffer.

    Returns (n_params, offsets) with offsets[l] = (start of W_l, start of b_l)
    for widths `units`, as the engine lays them out.
    """
    u = widths(units)
    identity = np.zeros(u.size - 1, dtype=np.int32)
    cdef fm_net net = describe(u, <int32_t *>cnp.PyArray_DATA(identity))
    offsets = [(fm_weight_offset(&net, l), fm_bias_offset(&net, l))
               for l in range(net.n_layers)]
    return fm_n_params(&net), offsets


cdef class Network:
    """The network as the engine sees it.

    Parameters
    ----------
    units : sequence of int, length n_layers + 1
        Widths: inputs, each hidden layer, outputs.
    activations : sequence of str, length n_layers
        Activation after each layer; the last one is the output activation.
    loss : str
        One of LOSSES.
    alpha : float
        L2 strength.
    dtype : numpy dtype
        float32 or float64: the precision of every array passed with it.
    dropout : sequence of float, length n_layers - 1, optional
        Dropout rate of each hidden layer, in [0, 1), applied in training.
    dropout_seed : int, optional
        Seeds the dropout masks.
    """
    cdef fm_net net
    cdef fm_dtype code
    cdef readonly object units
    cdef readonly int64_t n_outputs
    cdef readonly object activations
    cdef readonly object dtype
    cdef readonly object dropout

    def __init__(self, units, activations, loss, double alpha, dtype, dropout=None,
                 uint64_t dropout_seed=0):
        self.units = widths(units)
        self.n_outputs = self.units[self.units.size - 1]
        if len(activations) != self.units.size - 1:
            raise ValueError("one activation per layer is needed")
        unknown = [a for a in activations if a not in ACTIVATIONS]
        if unknown:
            raise ValueError(f"unknown activation {unknown[0]!r}")
        if loss not in LOSSES:
            raise ValueError(f"unknown loss {loss!r}")
        self.activations = np.array([ACTIVATIONS[a] for a in activations], dtype=np.int32)
        self.activations.setflags(write=False)
        self.dtype = np.dtype(dtype)
        self.code = dtype_code(self.dtype)
        self.net = describe(self.units, <int32_t *>cnp.PyArray_DATA(self.activations))
        self.net.loss = LOSSES[loss]
        self.net.alpha = alpha
        if dropout is not None:
            rates = np.zeros(self.units.size - 1, dtype=np.float64)
            rates[:rates.size - 1] = dropout
            if rates.size != len(dropout) + 1:
                raise ValueError("one dropout rate per hidden layer is needed")
            rates.setflags(write=False)
            self.dropout = rates
            self.net.dropout = <const double *>cnp.PyArray_DATA(rates)
            self.net.dropout_seed = dropout_seed
        if fm_check_net(&self.net) != FM_OK:
            raise ValueError(
                "invalid network: softmax is allowed on the output layer only, and dropout "
                "rates must lie in [0, 1)"
            )

    @property
    def n_params(self):
        return fm_n_params(&self.net)

    def workspace_bytes(self, int64_t rows, int n_threads):
        """Bytes of a workspace for `rows` samples at a time on n_threads threads."""
        thread_count(n_threads)
        return checked_bytes(fm_workspace_bytes(&self.net, rows, self.code, n_threads))

    def workspace(self, int64_t rows, int n_threads):
        """A workspace for passing `rows` samples at a time on n_threads threads."""
        return np.empty(self.workspace_bytes(rows, n_threads), dtype=np.uint8)


cdef class Dataset:
    """Samples for the engine: X dense or CSR, optional targets and weights.

    Parameters
    ----------
    net : Network
        The network the data is for; the engine only accepts the dataset
        together with a network of the same input and output widths and dtype.
    X : ndarray of shape (n_samples, n_features), or a tuple
        (indptr, indices, values) of CSR arrays (int64, int64, dtype), IN.
    y : ndarray of shape (n_samples, n_outputs), optional, IN
    sample_weight : ndarray of shape (n_samples,), optional, IN
    """
    cdef fm_data data
    cdef readonly int64_t n_samples
    cdef int64_t n_features
    cdef int64_t n_outputs
    cdef fm_dtype code
    cdef object arrays

    def __init__(self, Network net, X, y=None, sample_weight=None):
        cdef int64_t n
        self.n_features = net.units[0]
        self.n_outputs = net.n_outputs
        self.code = net.code
        self.arrays = [X, y, sample_weight]
        if isinstance(X, tuple):
            indptr, indices, values = X
            check_csr(indptr, indices, self.n_features)
            n = indptr.size - 1
            self.data.indptr = <const int64_t *>pointer(indptr, "indptr", np.int64, n + 1, False)
            self.data.indices = <const int64_t *>pointer(indices, "indices", np.int64,
                                                         indices.size, False)
            self.data.values = pointer(values, "values", net.dtype, indices.size, False)
            self.data.x = NULL
        else:
            if not isinstance(X, np.ndarray) or X.ndim != 2 or X.shape[1] != self.n_features:
                raise ValueError(f"X must be a 2-D array with {self.n_features} columns")
            n = X.shape[0]
            self.data.x = pointer(X, "X", net.dtype, X.size, False)
            self.data.indptr = NULL
            self.data.indices = NULL
            self.data.values = NULL
        self.n_samples = n
        self.data.n_samples = n
        self.data.y = NULL
        self.data.sample_weight = NULL
        if y is not None:
            if not isinstance(y, np.ndarray) or y.shape != (n, self.n_outputs):
                raise ValueError(f"y must be an array of shape ({n}, {self.n_outputs})")
            self.data.y = pointer(y, "y", net.dtype, y.size, False)
        if sample_weight is not None:
            self.data.sample_weight = pointer(sample_weight, "sample_weight", net.dtype,
                                              n, False)

    cdef check_for(self, Network net, bint targets):
        if (net.code != self.code or net.units[0] != self.n_features
                or (targets and net.n_outputs != self.n_outputs)):
            raise ValueError("the dataset was built for a network of other widths or dtype")
        if targets and self.data.y == NULL:
            raise ValueError("training needs targets")


STOP = "stop"
STOP_LR_TOO_SMALL = "stop: learning rate too small"
LR_REDUCED = "learning rate reduced"
DIVERGED = "diverged"
EVENTS = {
    FM_EVENT_NONE: None,
    FM_EVENT_STOP: STOP,
    FM_EVENT_STOP_LR_TOO_SMALL: STOP_LR_TOO_SMALL,
    FM_EVENT_LR_REDUCED: LR_REDUCED,
    FM_EVENT_DIVERGED: DIVERGED,
}

cdef fm_mt19937 *load_mt19937(fm_mt19937 *rng, random_state) except NULL:
    """Copy a RandomState's MT19937 state into rng."""
    if not isinstance(random_state, np.random.RandomState):
        raise TypeError("shuffling needs a numpy RandomState")
    state = random_state.get_state(legacy=False)["state"]
    key = np.ascontiguousarray(state["key"], dtype=np.uint32)
    if key.size != 624:
        raise ValueError("the RandomState does not hold an MT19937 state")
    for i in range(624):
        rng.key[i] = key[i]
    rng.pos = state["pos"]
    return rng


cdef store_mt19937(const fm_mt19937 *rng, random_state):
    """Set a RandomState to the MT19937 state in rng."""
    full = random_state.get_state(legacy=False)
    full["state"]["key"] = np.array([rng.key[i] for i in range(624)], dtype=np.uint32)
    full["state"]["pos"] = rng.pos
    random_state.set_state(full)


def shuffle(random_state, order):
    """Shuffle the int64 array order in place as random_state.shuffle(order)
    would, advancing random_state the same way (fm_shuffle)."""
    cdef fm_mt19937 rng
    cdef int64_t n = len(order)
    cdef int64_t *x = <int64_t *>pointer(order, "order", np.int64, n, True)
    load_mt19937(&rng, random_state)
    check_status(fm_shuffle(&rng, x, n))
    store_mt19937(&rng, random_state)


cdef class Trainer:
    """Mini-batch training for one fit: every buffer is checked once here,
    then `run` trains for a number of epochs in one call into C.

    Parameters
    ----------
    net : Network
    data : Dataset
        With targets (and sample weights, if any), built for net.
    params : ndarray of shape (n_params,), INOUT
    state : ndarray of shape (n_params,) for sgd or (2 n_params,) for adam, INOUT
    order : int64 ndarray of shape (n_rows,), INOUT
        The rows to train on; shuffled in place before each epoch when
        `shuffle`.
    random_state : numpy RandomState
        Drawn from, and advanced, exactly as RandomState.shuffle would.
    n_threads : int
        Threads to train on; with `tuner`, the most the engine may use.
    tuner : Tuner or None
        Lets the engine pick the thread count per batch by timing.
    chunk : int
        The most rows that go through the network at once: larger batches
        pass in pieces whose gradients add up (the workspace is sized for
        min(chunk, batch_size) rows).
    The keyword arguments are the optimizer's and the epoch rules' settings
    and starting state (see fm_optimizer and fm_run in fastmlp.h).
    """
    cdef Network net
    cdef Dataset data
    cdef object arrays
    cdef void *params
    cdef void *grads
    cdef void *state
    cdef void *snapshot
    cdef void *work
    cdef int64_t *order
    cdef int64_t n_rows
    cdef int64_t batch_size
    cdef int64_t chunk
    cdef int n_threads
    cdef fm_optimizer opt
    cdef fm_run settings
    cdef object random_state
    cdef Tuner tuner
    # SIGINTs that the last run held back for a handler of the user's
    cdef readonly int signals_held

    def __init__(self, Network net, Dataset data, params, state, order, *,
                 solver, double learning_rate, double momentum, bint nesterov,
                 double beta_1, double beta_2, double epsilon, int64_t adam_t,
                 schedule, double learning_rate_init, double power_t, double tol,
                 double n_iter_no_change, bint watch_loss, int64_t t, double best_loss,
                 int64_t no_improvement, bint shuffle, random_state, int64_t batch_size,
                 int64_t chunk, int n_threads, Tuner tuner=None, double weight_decay=0.0,
                 double clip_norm=0.0, int64_t step=0):
        data.check_for(net, True)
        if solver not in SOLVERS:
            raise ValueError(f"unknown solver {solver!r}")
        if schedule not in SCHEDULES:
            raise ValueError(f"unknown learning-rate schedule {schedule!r}")
        if batch_size < 1:
            raise ValueError(f"batch_size must be at least 1, got {batch_size}")
        if chunk < 1:
            raise ValueError(f"chunk must be at least 1, got {chunk}")
        if shuffle and not isinstance(random_state, np.random.RandomState):
            raise TypeError("shuffling needs a numpy RandomState")
        self.net, self.data, self.random_state = net, data, random_state
        self.n_threads = thread_count(n_threads)
        self.tuner = tuner
        cdef int64_t n_params = net.n_params
        self.opt.solver = SOLVERS[solver]
        cdef int64_t n_state = n_params * (1 if self.opt.solver == FM_SGD else 2)
        grads = np.empty_like(params)
        snapshot = np.empty(n_params + n_state, dtype=net.dtype)
        self.chunk = min(chunk, batch_size)
        work = net.workspace(self.chunk, n_threads)
        self.arrays = (params, grads, state, snapshot, work, order)
        self.params = pointer(params, "params", net.dtype, n_params, True)
        self.grads = pointer(grads, "grads", net.dtype, n_params, True)
        self.state = pointer(state, "state", net.dtype, n_state, True)
        self.snapshot = pointer(snapshot, "snapshot", net.dtype, n_params + n_state, True)
        self.work = pointer(work, "work", np.uint8, work.size, True)
        if order is None or len(order) < 1:
            raise ValueError("order must name at least one row")
        self.n_rows = len(order)
        optional_rows(order, self.n_rows, data.n_samples)
        self.order = <int64_t *>pointer(order, "order", np.int64, self.n_rows, True)
        self.batch_size = batch_size
        self.opt.learning_rate = learning_rate
        self.opt.momentum = momentum
        self.opt.nesterov = nesterov
        self.opt.beta_1 = beta_1
        self.opt.beta_2 = beta_2
        self.opt.epsilon = epsilon
        self.opt.t = adam_t
        self.opt.weight_decay = weight_decay
        self.opt.clip_norm = clip_norm
        self.settings.step = step
        self.settings.shuffle = shuffle
        self.settings.watch_loss = watch_loss
        self.settings.schedule = SCHEDULES[schedule]
        self.settings.tol = tol
        self.settings.n_iter_no_change = n_iter_no_change
        self.settings.learning_rate_init = learning_rate_init
        self.settings.power_t = power_t
        self.settings.t = t
        self.settings.best_loss = best_loss
        self.settings.no_improvement = no_improvement

    @property
    def learning_rate(self):
        return self.opt.learning_rate

    @learning_rate.setter
    def learning_rate(self, double value):
        self.opt.learning_rate = value

    @property
    def adam_t(self):
        return self.opt.t

    @property
    def t(self):
        return self.settings.t

    @property
    def best_loss(self):
        return self.settings.best_loss

    @property
    def no_improvement(self):
        return self.settings.no_improvement

    @property
    def step(self):
        """Batches trained so far (what the dropout masks are drawn for)."""
        return self.settings.step

    def run(self, int64_t max_epochs):
        """Train for up to max_epochs epochs.

        Returns (losses, event, interrupted): the loss of each completed
        epoch (ndarray), what the last one decided (None, STOP,
        STOP_LR_TOO_SMALL, LR_REDUCED, or DIVERGED when an epoch's loss or
        weights were not finite), and whether SIGINT arrived: inside an
        epoch, which is then undone, or after the last piece of work. After
        DIVERGED or SIGINT, parameters and optimizer state are those of the
        last complete, finite epoch. Under a Python SIGINT handler of the
        user's (ctrl_c_taker() == "user"), the epoch under way completes
        first and the call ends after it, not interrupted: `signals_held`
        then counts the signals, for the caller to pass on to the handler
        (signal.raise_signal) once it has counted the epochs.
        """
        if max_epochs < 1:
            raise ValueError("max_epochs must be at least 1")
        cdef fm_mt19937 rng
        cdef fm_mt19937 *rng_ptr = NULL
        if self.settings.shuffle:
            rng_ptr = load_mt19937(&rng, self.random_state)
        curve = np.empty(max_epochs, dtype=np.float64)
        cdef double *c = <double *>cnp.PyArray_DATA(curve)
        self.settings.max_epochs = max_epochs
        cdef fm_tuner *tuner = tuner_of(self.tuner)
        taker = ctrl_c_taker()
        # under a handler of the user's the engine only notes Ctrl-C: the
        # epoch under way completes and the call returns after it, for the
        # caller to pass the signal on to that handler
        self.settings.finish_epoch = taker == "user"
        cdef bint caught = taker is not None and fm_interrupt_catch()
        cdef fm_status status
        try:
            with nogil:
                status = fm_train(self.net.code, self.params, self.grads, self.state,
                                  self.snapshot, self.work, c, self.order, self.n_rows,
                                  &self.settings, rng_ptr, &self.data.data, &self.net.net,
                                  &self.opt, self.batch_size, self.chunk, self.n_threads,
                                  tuner, fm_interrupt_flag() if caught else NULL)
        finally:
            if caught:
                fm_interrupt_release()
        if rng_ptr != NULL:
            store_mt19937(rng_ptr, self.random_state)
        # a signal after the engine's last look still counts
        presses = fm_interrupt_flag()[0] if caught else 0
        self.signals_held = presses if taker == "user" else 0
        interrupted = status == FM_ERR_INTERRUPTED or (taker == "engine" and presses > 0)
        if status != FM_ERR_INTERRUPTED:
            check_status(status)
        return curve[:self.settings.epochs], EVENTS[self.settings.event], interrupted


def ctrl_c_taker():
    """Who takes Ctrl-C (SIGINT) during a fit or a long pass (see
    catch_ctrl_c) on the calling thread: "engine" on Python's main thread
    while the interpreter's own handler (the one that raises
    KeyboardInterrupt) is in place, and the engine then stops the fit
    between pieces of work; "user" on the main thread under a Python
    handler of the user's, and the engine then only counts the signals,
    completes the epoch under way and returns, for the caller to pass them
    on (Trainer.run); None elsewhere: other threads never see SIGINT, and
    SIG_IGN or SIG_DFL (ignore, or end the process) act as they are set."""
    if threading.current_thread() is not threading.main_thread():
        return None
    handler = signal.getsignal(signal.SIGINT)
    if handler is signal.default_int_handler:
        return "engine"
    return "user" if callable(handler) else None


def loss_grad(Network net, Dataset data, params, grads, work, int64_t chunk,
              int n_threads, Tuner tuner=None):
    """Loss and gradient over every sample (fm_loss_grad).

    params (IN) : ndarray of shape (n_params,)
    grads (OUT) : ndarray of shape (n_params,), or None for the loss alone
    work (scratch) : uint8 workspace from net.workspace(chunk, n_threads)
    tuner : Tuner, optional; lets the engine pick the thread count by timing

    Returns the loss. Raises KeyboardInterrupt on Ctrl-C during a call of
    several chunks (see catch_ctrl_c).
    """
    data.check_for(net, True)
    thread_count(n_threads)
    cdef int64_t n_params = net.n_params
    cdef const void *p = pointer(params, "params", net.dtype, n_params, False)
    cdef void *g = NULL
    if grads is not None:
        g = pointer(grads, "grads", net.dtype, n_params, True)
    cdef void *w = pointer(work, "work", np.uint8,
                           checked_bytes(fm_workspace_bytes(&net.net, chunk, net.code, n_threads)),
                           True, True)
    cdef double loss = 0
    cdef fm_status status
    cdef fm_tuner *t = tuner_of(tuner)
    cdef bint caught = catch_ctrl_c(data.n_samples, chunk)
    try:
        with nogil:
            status = fm_loss_grad(net.code, g, &loss, w, &data.data, p, &net.net, chunk,
                                  n_threads, t, fm_interrupt_flag() if caught else NULL)
    finally:
        if caught:
            fm_interrupt_release()
    raise_if_ctrl_c(caught)
    check_status(status)
    return loss


def loss_grad_sums(Network net, Dataset data, params, grads, work, int64_t chunk,
                   int n_threads, rows=None, Tuner tuner=None):
    """Raw sums of the loss and gradient over every sample, or over the rows
    `rows`, before loss_grad divides them (fm_loss_grad_sums).

    params (IN) : ndarray of shape (n_params,)
    grads (OUT) : ndarray of shape (n_params,): d wloss / d params without
        the L2 term, or None for the sums of the loss alone
    work (scratch) : uint8 workspace from net.workspace(chunk, n_threads)
    rows (IN) : int64 ndarray of row indices, optional
    tuner : Tuner, optional; lets the engine pick the thread count by timing

    Returns (wloss, wsum): the sample-weighted loss and the weight total.
    Raises KeyboardInterrupt as loss_grad does.
    """
    data.check_for(net, True)
    thread_count(n_threads)
    cdef int64_t n = data.n_samples if rows is None else len(rows)
    cdef const int64_t *r = optional_rows(rows, n, data.n_samples)
    cdef const void *p = pointer(params, "params", net.dtype, net.n_params, False)
    cdef void *g = NULL
    if grads is not None:
        g = pointer(grads, "grads", net.dtype, net.n_params, True)
    cdef void *w = pointer(work, "work", np.uint8,
                           checked_bytes(fm_workspace_bytes(&net.net, chunk, net.code, n_threads)),
                           True, True)
    cdef double wloss = 0, wsum = 0
    cdef fm_status status
    cdef fm_tuner *t = tuner_of(tuner)
    cdef bint caught = catch_ctrl_c(n, chunk)
    try:
        with nogil:
            status = fm_loss_grad_sums(net.code, g, &wloss, &wsum, w, &data.data, r, n, p,
                                       &net.net, chunk, n_threads, t,
                                       fm_interrupt_flag() if caught else NULL)
    finally:
        if caught:
            fm_interrupt_release()
    raise_if_ctrl_c(caught)
    check_status(status)
    return wloss, wsum


def loss_grad_finish(Network net, params, grads, double wloss, double wsum):
    """The loss (returned) and, unless grads is None, the gradient in grads
    (INOUT: raw sums in, finished gradient out) from raw sums, added up
    over any pieces of the data, exactly as loss_grad finishes its own
    (fm_loss_grad_finish)."""
    cdef const void *p = pointer(params, "params", net.dtype, net.n_params, False)
    cdef void *g = NULL
    if grads is not None:
        g = pointer(grads, "grads", net.dtype, net.n_params, True)
    cdef double loss = 0
    cdef fm_status status
    with nogil:
        status = fm_loss_grad_finish(net.code, g, &loss, wloss, wsum, p, &net.net)
    check_status(status)
    return loss


def predict(Network net, Dataset data, params, out, work, int64_t chunk, int n_threads,
            rows=None, Tuner tuner=None):
    """Network outputs (fm_predict) for every row, or for the rows `rows`.

    params (IN) : ndarray of shape (n_params,)
    out (OUT) : ndarray of shape (n_rows, n_outputs)
    work (scratch) : uint8 workspace from net.workspace(chunk, n_threads)
    rows (IN) : int64 ndarray of row indices, optional
    tuner : Tuner, optional; lets the engine pick the thread count by timing

    Raises KeyboardInterrupt on Ctrl-C during a call of several chunks (see
    catch_ctrl_c), with `out` then partly written.
    """
    data.check_for(net, False)
    thread_count(n_threads)
    cdef int64_t n = data.n_samples if rows is None else len(rows)
    cdef const int64_t *r = optional_rows(rows, n, data.n_samples)
    cdef const void *p = pointer(params, "params", net.dtype, net.n_params, False)
    cdef void *o = pointer(out, "out", net.dtype, n * net.n_outputs, True)
    cdef void *w = pointer(work, "work", np.uint8,
                           checked_bytes(fm_workspace_bytes(&net.net, chunk, net.code, n_threads)),
                           True, True)
    cdef fm_status status
    cdef fm_tuner *t = tuner_of(tuner)
    cdef bint caught = catch_ctrl_c(n, chunk)
    try:
        with nogil:
            status = fm_predict(net.code, o, w, &data.data, r, n, p, &net.net, chunk,
                                n_threads, t, 0, fm_interrupt_flag() if caught else NULL)
    finally:
        if caught:
            fm_interrupt_release()
    raise_if_ctrl_c(caught)
    check_status(status)


# Passes over at least this many chunks (predictions, L-BFGS's loss and
# gradient) take Ctrl-C between chunks (a single chunk ends as soon without
# the system calls that cost about 3 us).
cdef int64_t CTRL_C_CHUNKS = 2


cdef bint catch_ctrl_c(int64_t n_rows, int64_t chunk):
    """Whether the engine takes Ctrl-C during a pass over n_rows rows,
    `chunk` at a time: a long one, where ctrl_c_taker() gives "engine".
    Under a handler of the user's, or SIG_IGN or SIG_DFL, the signal acts
    as it is set once the call returns (a handler) or at once."""
    return n_rows >= CTRL_C_CHUNKS * chunk and ctrl_c_taker() == "engine" and fm_interrupt_catch()


cdef raise_if_ctrl_c(bint caught):
    """KeyboardInterrupt when Ctrl-C came during a pass the engine took it
    for: it stopped between chunks, or the signal came after the
    last one (and the interpreter would have raised it then)."""
    if caught and fm_interrupt_flag()[0] > 0:
        raise KeyboardInterrupt


cdef bint same_items(object seq, tuple items):
    """True when seq holds exactly the objects of items, in order."""
    if len(seq) != len(items):
        return False
    cdef Py_ssize_t i
    for i in range(len(items)):
        if seq[i] is not items[i]:
            return False
    return True


cdef class Predictor:
    """Prediction with everything but X checked once: the network, its
    parameters and a workspace for `chunk` rows on n_threads threads (at
    most n_threads, picked by timing, when `adaptive`).

    params (IN) : ndarray of shape (n_params,), kept by reference: writes
    into it show in later predictions.
    """
    cdef Network net
    cdef object params
    cdef object work
    cdef const void *p
    cdef void *w
    cdef int64_t chunk, n_in, n_out
    cdef int n_threads, typenum
    cdef bint busy
    cdef Tuner tuner
    # what the parameters were read from, compared by identity in built_from
    cdef object coefs, intercepts
    cdef tuple coef_items, intercept_items, settings

    def __init__(self, Network net, params, int64_t chunk, int n_threads, bint adaptive=False):
        self.net = net
        self.n_threads = thread_count(n_threads)
        self.tuner = Tuner() if adaptive else None
        self.chunk = chunk
        self.n_in = net.units[0]
        self.n_out = net.n_outputs
        self.typenum = net.dtype.num
        self.params = params
        self.p = pointer(params, "params", net.dtype, net.n_params, False)
        self.work = net.workspace(chunk, n_threads)
        self.w = pointer(self.work, "work", np.uint8, self.work.size, True)

    def watch(self, coefs, intercepts, *settings):
        """Remember the sequences of weight and bias arrays the parameters
        were read from, and any settings they depend on."""
        self.coefs, self.intercepts = coefs, intercepts
        self.coef_items, self.intercept_items = tuple(coefs), tuple(intercepts)
        self.settings = settings

    def built_from(self, coefs, intercepts, *settings):
        """True when coefs, intercepts, their items and the settings are the
        very objects given to watch: nothing was assigned since."""
        return (coefs is self.coefs and intercepts is self.intercepts
                and same_items(coefs, self.coef_items)
                and same_items(intercepts, self.intercept_items)
                and same_items(settings, self.settings))

    def outputs(self, X, bint two_class=False):
        """Network outputs for X, of shape (n_samples, n_outputs), or with
        two_class and a single output, the rows (1 - p, p) of shape
        (n_samples, 2); None when X is not a non-empty, finite, C-contiguous,
        aligned, native-byte-order 2-D array of the network's dtype and width
        (the caller then takes the general path)."""
        if type(X) is not np.ndarray:
            return None
        cdef cnp.ndarray x = <cnp.ndarray>X
        if (cnp.PyArray_NDIM(x) != 2 or x.shape[0] == 0 or x.shape[1] != self.n_in
                or cnp.PyArray_TYPE(x) != self.typenum or not cnp.PyArray_IS_C_CONTIGUOUS(x)
                or not cnp.PyArray_ISNOTSWAPPED(x) or not cnp.PyArray_ISALIGNED(x)):
            return None
        two_class = two_class and self.n_out == 1
        cdef fm_data data
        data.n_samples = x.shape[0]
        data.x = cnp.PyArray_DATA(x)
        data.indptr = NULL
        data.indices = NULL
        data.values = NULL
        data.y = NULL
        data.sample_weight = NULL
        out = np.empty((data.n_samples, 2 if two_class else self.n_out), dtype=self.net.dtype)
        cdef void *o = cnp.PyArray_DATA(out)
        # two classes: p goes to the last n elements, then spreads in place
        cdef void *dest = o
        if two_class:
            dest = (<char *>o) + data.n_samples * cnp.PyArray_ITEMSIZE(x)
        # The workspace serves one call at a time: a call that finds it in use
        # by another Python thread (the GIL is released while C runs) gets
        # its own. The flag is read and set under the GIL.
        cdef void *w = self.w
        cdef bint mine = not self.busy
        if mine:
            self.busy = True
        else:
            spare = self.net.workspace(self.chunk, self.n_threads)
            w = cnp.PyArray_DATA(spare)
        cdef fm_status status
        # the tuner, like the workspace, serves one call at a time
        cdef fm_tuner *t = tuner_of(self.tuner) if mine else NULL
        cdef bint caught = False
        try:
            # inside the try: a KeyboardInterrupt pending from before the
            # call surfaces in ctrl_c_taker, and `busy` must still be cleared
            caught = catch_ctrl_c(data.n_samples, self.chunk)
            with nogil:
                status = fm_predict(self.net.code, dest, w, &data, NULL, data.n_samples,
                                    self.p, &self.net.net, self.chunk, self.n_threads, t, 1,
                                    fm_interrupt_flag() if caught else NULL)
                if status == FM_OK and two_class:
                    fm_two_class(self.net.code, o, data.n_samples)
        finally:
            if caught:
                fm_interrupt_release()
            if mine:
                self.busy = False
        raise_if_ctrl_c(caught)
        if status == FM_ERR_NONFINITE:
            return None
        check_status(status)
        return out


# ---- single kernels, for the tests ------------------------------------------

cdef tuple shape2(a, str name):
    if not isinstance(a, np.ndarray) or a.ndim != 2:
        raise ValueError(f"{name} must be a 2-D numpy array")
    return a.shape


cdef object pack_for(dt, int n_threads):
    thread_count(n_threads)
    return np.empty(checked_bytes(fm_pack_bytes(dtype_code(dt), n_threads)), dtype=np.uint8)


cdef const int64_t *x_rows(rows, int64_t n, X) except? NULL:
    """rows selecting n rows of X (NULL: X's first n rows)."""
    if rows is None and X.shape[0] < n:
        raise ValueError("X has fewer rows than the output")
    return optional_rows(rows, n, X.shape[0])


def dense_forward(Y, X, W, b, activation="identity", rows=None, int n_threads=1,
                  bint naive=False):
    """Y (OUT) = f(X[rows] W + b); naive: the direct loops, without f."""
    cdef int64_t n, n_in, n_out
    n, n_out = shape2(Y, "Y")
    n_in = shape2(W, "W")[0]
    if shape2(X, "X")[1] != n_in or W.shape[1] != n_out:
        raise ValueError("X, W and Y do not chain")
    dt = W.dtype
    cdef fm_dtype code = dtype_code(dt)
    cdef const int64_t *r = x_rows(rows, n, X)
    cdef void *y = pointer(Y, "Y", dt, n * n_out, True)
    cdef const void *x = pointer(X, "X", dt, X.size, False)
    cdef const void *w = pointer(W, "W", dt, n_in * n_out, False)
    cdef const void *bb = pointer(b, "b", dt, n_out, False)
    cdef int32_t act = ACTIVATIONS[activation]
    pack = pack_for(dt, n_threads)
    cdef void *pk = cnp.PyArray_DATA(pack)
    with nogil:
        if naive:
            fm_dense_forward_naive(code, y, x, r, w, bb, n, n_in, n_out)
        else:
            fm_dense_forward(code, y, x, r, w, bb, act, n, n_in, n_out, pk, n_threads)


def csr_dense_forward(Y, indptr, indices, values, rows, W, b, activation="identity",
                      int n_threads=1):
    """Y (OUT) = f(X W + b) with X given as CSR arrays; row i is X row rows[i]."""
    thread_count(n_threads)
    cdef int64_t n, n_in, n_out
    n_in, n_out = shape2(W, "W")
    n = shape2(Y, "Y")[0]
    dt = W.dtype
    cdef fm_dtype code = dtype_code(dt)
    check_csr(indptr, indices, n_in)
    cdef const int64_t *r = optional_rows(rows, n, indptr.size - 1)
    if rows is None and n > indptr.size - 1:
        raise ValueError("Y has more rows than X")
    cdef void *y = pointer(Y, "Y", dt, n * n_out, True)
    cdef const int64_t *ip = <const int64_t *>pointer(indptr, "indptr", np.int64, indptr.size,
                                                       False)
    cdef const int64_t *ix = <const int64_t *>pointer(indices, "indices", np.int64,
                                                       indices.size, False)
    cdef const void *v = pointer(values, "values", dt, indices.size, False)
    cdef const void *w = pointer(W, "W", dt, n_in * n_out, False)
    cdef const void *bb = pointer(b, "b", dt, n_out, False)
    cdef int32_t act = ACTIVATIONS[activation]
    with nogil:
        fm_csr_dense_forward(code, y, ip, ix, v, r, w, bb, act, n, n_in, n_out, n_threads)


def dense_backward_data(dX, dY, W, A=None, activation="identity", int n_threads=1,
                        bint naive=False):
    """dX (OUT) = (dY W^T) * f'(A) (no derivative without A); naive: the direct
    loops, without the derivative. f' must follow from f's outputs alone
    and act elementwise: not GELU or SiLU (which need their inputs) nor
    softmax (whose derivative mixes a row)."""
    if A is not None and activation in ("gelu", "silu", "softmax"):
        raise ValueError(
            f"dense_backward_data cannot take the derivative of {activation!r} from its "
            "outputs; use activation_backward"
        )
    cdef int64_t n, n_in, n_out
    n, n_out = shape2(dY, "dY")
    n_in = shape2(W, "W")[0]
    dt = dY.dtype
    cdef fm_dtype code = dtype_code(dt)
    cdef void *dx = pointer(dX, "dX", dt, n * n_in, True)
    cdef const void *dy = pointer(dY, "dY", dt, n * n_out, False)
    cdef const void *w = pointer(W, "W", dt, n_in * n_out, False)
    cdef const void *a = NULL
    if A is not None:
        a = pointer(A, "A", dt, n * n_in, False)
    cdef int32_t act = ACTIVATIONS[activation]
    pack = pack_for(dt, n_threads)
    cdef void *pk = cnp.PyArray_DATA(pack)
    with nogil:
        if naive:
            fm_dense_backward_data_naive(code, dx, dy, w, n, n_in, n_out)
        else:
            fm_dense_backward_data(code, dx, dy, w, a, act, n, n_in, n_out, pk, n_threads)


def dense_backward_params(dW, db, X, dY, rows=None, int n_threads=1, bint naive=False):
    """dW (INOUT) += X[rows]^T dY, db (INOUT) += column sums of dY."""
    cdef int64_t n, n_in, n_out
    n, n_out = shape2(dY, "dY")
    n_in = shape2(X, "X")[1]
    dt = dY.dtype
    cdef fm_dtype code = dtype_code(dt)
    cdef const int64_t *r = x_rows(rows, n, X)
    cdef void *dw = pointer(dW, "dW", dt, n_in * n_out, True)
    cdef void *dbb = pointer(db, "db", dt, n_out, True)
    cdef const void *x = pointer(X, "X", dt, X.size, False)
    cdef const void *dy = pointer(dY, "dY", dt, n * n_out, False)
    pack = pack_for(dt, n_threads)
    cdef void *pk = cnp.PyArray_DATA(pack)
    with nogil:
        if naive:
            fm_dense_backward_params_naive(code, dw, dbb, x, r, dy, n, n_in, n_out)
        else:
            fm_dense_backward_params(code, dw, dbb, x, r, dy, n, n_in, n_out, pk, n_threads)


def csr_backward_params(dW, db, indptr, indices, values, rows, dY, int n_threads=1):
    """dW (INOUT) += X^T dY, db (INOUT) += column sums of dY, X as CSR arrays."""
    thread_count(n_threads)
    cdef int64_t n, n_in, n_out
    n_in, n_out = shape2(dW, "dW")
    n = shape2(dY, "dY")[0]
    dt = dW.dtype
    cdef fm_dtype code = dtype_code(dt)
    check_csr(indptr, indices, n_in)
    cdef const int64_t *r = optional_rows(rows, n, indptr.size - 1)
    if rows is None and n > indptr.size - 1:
        raise ValueError("dY has more rows than X")
    cdef void *dw = pointer(dW, "dW", dt, n_in * n_out, True)
    cdef void *dbb = pointer(db, "db", dt, n_out, True)
    cdef const int64_t *ip = <const int64_t *>pointer(indptr, "indptr", np.int64, indptr.size,
                                                       False)
    cdef const int64_t *ix = <const int64_t *>pointer(indices, "indices", np.int64,
                                                       indices.size, False)
    cdef const void *v = pointer(values, "values", dt, indices.size, False)
    cdef const void *dy = pointer(dY, "dY", dt, n * n_out, False)
    with nogil:
        fm_csr_backward_params(code, dw, dbb, ip, ix, v, r, dy, n, n_in, n_out, n_threads)


def activation_forward(A, activation):
    """A (INOUT) = f(A)."""
    cdef int64_t n, m
    n, m = shape2(A, "A")
    cdef fm_dtype code = dtype_code(A.dtype)
    cdef void *a = pointer(A, "A", A.dtype, n * m, True)
    cdef int32_t act = ACTIVATIONS[activation]
    with nogil:
        fm_activation_forward(code, a, n, m, act)


def activation_backward(dZ, A, activation, Z=None):
    """dZ (INOUT) = dZ * f'(.), given the activation outputs A and, for GELU
    and SiLU (required), the inputs Z."""
    cdef int64_t n, m
    n, m = shape2(A, "A")
    cdef fm_dtype code = dtype_code(A.dtype)
    cdef void *dz = pointer(dZ, "dZ", A.dtype, n * m, True)
    cdef const void *a = pointer(A, "A", A.dtype, n * m, False)
    cdef int32_t act = ACTIVATIONS[activation]
    cdef const void *z = NULL
    if activation in ("gelu", "silu"):
        if Z is None:
            raise ValueError(f"the derivative of {activation} needs the pre-activation Z")
        z = pointer(Z, "Z", A.dtype, n * m, False)
    with nogil:
        fm_activation_backward(code, dz, a, z, n, m, act)


def loss_forward(P, Y, rows, loss):
    """Per-sample losses (float64 array of shape (n,)) of P against Y; row i
    of P is scored against Y row rows[i] (i when rows is None)."""
    cdef int64_t n, K
    n, K = shape2(P, "P")
    if shape2(Y, "Y")[1] != K:
        raise ValueError("P and Y must have the same number of columns")
    cdef fm_dtype code = dtype_code(P.dtype)
    out = np.empty(n, dtype=np.float64)
    cdef double *l = <double *>pointer(out, "l", np.float64, n, True)
    cdef const void *p = pointer(P, "P", P.dtype, n * K, False)
    cdef const int64_t *r = optional_rows(rows, n, Y.shape[0])
    if rows is None and Y.shape[0] != n:
        raise ValueError("P and Y must have the same number of rows")
    cdef const void *y = pointer(Y, "Y", P.dtype, Y.size, False)
    cdef int32_t which = LOSSES[loss]
    with nogil:
        fm_loss_forward(code, l, p, y, r, n, K, which)
    return out


def loss_backward(dZ, P, Y, sample_weight=None):
    """dZ (OUT) = (P - Y) * sample_weight."""
    cdef int64_t n, K
    n, K = shape2(P, "P")
    dt = P.dtype
    cdef fm_dtype code = dtype_code(dt)
    cdef void *dz = pointer(dZ, "dZ", dt, n * K, True)
    cdef const void *p = pointer(P, "P", dt, n * K, False)
    cdef const void *y = pointer(Y, "Y", dt, n * K, False)
    cdef const void *sw = NULL
    if sample_weight is not None:
        sw = pointer(sample_weight, "sample_weight", dt, n, False)
    with nogil:
        fm_loss_backward(code, dz, p, y, sw, NULL, n, K)


def optimizer_step(params, state, grads, solver, double learning_rate, int64_t n_weights=0,
                   double alpha=0.0, double S=1.0, double momentum=0.9, bint nesterov=True,
                   double beta_1=0.9, double beta_2=0.999, double epsilon=1e-8,
                   int64_t t=0, double weight_decay=0.0, double clip_norm=0.0,
                   int n_threads=1):
    """params, state (INOUT): one step of `solver` (fm_optimizer_step) on the
    gradient (grads + alpha params) / S (alpha only on the first n_weights).

    Returns (sum of the squared n_weights parameters before the step, the
    step count t after it).
    """
    thread_count(n_threads)
    cdef int64_t n = params.size
    if not 0 <= n_weights <= n:
        raise ValueError("n_weights out of range")
    if solver not in SOLVERS:
        raise ValueError(f"unknown solver {solver!r}")
    dt = params.dtype
    cdef fm_dtype code = dtype_code(dt)
    cdef fm_optimizer opt
    opt.solver = SOLVERS[solver]
    opt.learning_rate = learning_rate
    opt.momentum = momentum
    opt.nesterov = nesterov
    opt.beta_1 = beta_1
    opt.beta_2 = beta_2
    opt.epsilon = epsilon
    opt.t = t
    opt.weight_decay = weight_decay
    opt.clip_norm = clip_norm
    cdef void *p = pointer(params, "params", dt, n, True)
    cdef void *st = pointer(state, "state", dt, n * (1 if opt.solver == FM_SGD else 2), True)
    cdef const void *g = pointer(grads, "grads", dt, n, False)
    partials = np.empty(n // FM_STEP_CHUNK + 1, dtype=np.float64)
    cdef double *parts = <double *>cnp.PyArray_DATA(partials)
    cdef double sumsq
    with nogil:
        sumsq = fm_optimizer_step(code, p, st, g, n, n_weights, alpha, S, &opt, parts,
                                  n_threads)
    return sumsq, opt.t

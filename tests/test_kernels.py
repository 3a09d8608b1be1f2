"""Each C kernel against the float64 numpy reference, in both precisions,
over shapes that straddle the kernels' blocking, with one to three threads,
under every instruction set this build has and this CPU runs."""

import math

import numpy as np
import pytest
import scipy.sparse as sp

import reference as ref
from fastmlp import _engine

DTYPES = [np.float32, np.float64]
ACTIVATIONS = [
    "identity", "logistic", "tanh", "relu", "exp", "softmax",
    "leaky_relu", "elu", "gelu", "softplus", "silu",
]
# the activations whose slope follows from their outputs alone
FROM_OUTPUTS = [a for a in ACTIVATIONS if a not in ("softmax", "gelu", "silu")]
# rows x inputs x outputs: single rows and columns, odd sizes around the
# micro-kernel tiles, and sizes past every cache block (K > 256 inputs,
# M > 96 rows, N > 512 outputs) that run threaded
SHAPES = [
    (1, 1, 1),
    (37, 70, 1),  # one output: the narrow loops' stride-one forms
    (3, 5, 2),
    (4, 8, 16),
    (7, 13, 9),
    (33, 17, 65),
    (130, 70, 90),
    (300, 600, 70),
    (50, 40, 1100),
    (1030, 100, 12),  # small weights, many rows: threads split the rows
    (64, 50, 128),  # AVX-512 floats: eight panels of 8 rows; AVX2: ten of 6, one of 4
    (128, 30, 64),  # AVX-512 floats: ten panels of 12 rows and one of 8; AVX2: 21 of 6, one of 4
    (32, 40, 48),  # AVX2: forward and backward data in eight panels of 4 rows
    (31, 32, 300),  # AVX2: 4-row panels and a last of 3, split by rows
    (97, 31, 100),  # a last panel of one row, alone in its MC block; parameters in 4-row panels
    (128, 128, 10),  # a 10-class output layer: packed products on threads from half the usual work
    (128, 301, 256),  # split by columns: the threads pack A once, together; K blocks 151, 150
    (301, 264, 512),  # as above, and for the parameters' product, A transposed
]
TOL = {np.float32: dict(rtol=2e-5, atol=2e-5), np.float64: dict(rtol=1e-12, atol=1e-12)}


def rand(rng, shape, dtype):
    return rng.standard_normal(shape).astype(dtype)


@pytest.fixture(autouse=True,
                params=[isa for isa in _engine.isa_built() if _engine.isa_supported(isa)])
def isa(request):
    before = _engine.isa()
    _engine.set_isa(request.param)
    yield request.param
    _engine.set_isa(before)


@pytest.fixture
def rng():
    return np.random.default_rng(42)


def scaled_tol(dtype, k):
    """Rounding of a k-term sum in dtype, relative to the terms' scale."""
    eps = np.finfo(dtype).eps
    return dict(rtol=50 * eps * np.sqrt(k), atol=50 * eps * np.sqrt(k))


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("n,n_in,n_out", SHAPES)
def test_dense_forward(rng, dtype, n, n_in, n_out):
    X, W, b = rand(rng, (n + 3, n_in), dtype), rand(rng, (n_in, n_out), dtype), rand(rng, n_out, dtype)
    rows = rng.permutation(n + 3)[:n].astype(np.int64)
    for r, Xs in ((None, X[:n]), (rows, X[rows])):
        expected = Xs.astype(np.float64) @ W + b
        results = []
        for threads in (1, 2, 3):
            Y = np.full((n, n_out), np.nan, dtype)
            _engine.dense_forward(Y, X, W, b, rows=r, n_threads=threads)
            np.testing.assert_allclose(Y, expected, **scaled_tol(dtype, n_in))
            results.append(Y)
        assert all(np.array_equal(results[0], other) for other in results[1:])
        naive = np.empty((n, n_out), dtype)
        _engine.dense_forward(naive, X, W, b, rows=r, naive=True)
        np.testing.assert_allclose(results[0], naive, **scaled_tol(dtype, n_in))


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("activation", ACTIVATIONS)
def test_dense_forward_applies_the_activation(rng, dtype, activation):
    """The packed product adds the bias and applies the activation tile by
    tile (50 outputs: full tiles and a partial one)."""
    X, W, b = rand(rng, (40, 30), dtype) / 4, rand(rng, (30, 50), dtype) / 4, rand(rng, 50, dtype)
    Y = np.empty((40, 50), dtype)
    _engine.dense_forward(Y, X, W, b, activation, n_threads=2)
    expected = ref.activation(activation, X.astype(np.float64) @ W + b)
    np.testing.assert_allclose(Y, expected, **scaled_tol(dtype, 30))


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("activation", FROM_OUTPUTS)
def test_dense_backward_data_applies_the_slope(rng, dtype, activation):
    """The packed product multiplies by the slope tile by tile (45 inputs:
    full tiles and a partial one)."""
    dY, W = rand(rng, (40, 30), dtype), rand(rng, (45, 30), dtype) / 4
    A = ref.activation(activation, rand(rng, (40, 45), np.float64)).astype(dtype)
    dX = np.empty((40, 45), dtype)
    _engine.dense_backward_data(dX, dY, W, A, activation, n_threads=2)
    expected = ref.activation_backward(activation, dY.astype(np.float64) @ W.T, A)
    np.testing.assert_allclose(dX, expected, **scaled_tol(dtype, 30))


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("n,n_in,n_out", SHAPES)
def test_dense_backward_data(rng, dtype, n, n_in, n_out):
    dY, W = rand(rng, (n, n_out), dtype), rand(rng, (n_in, n_out), dtype)
    A = np.tanh(rand(rng, (n, n_in), dtype))
    results = []
    for threads in (1, 2, 3):
        dX = np.full((n, n_in), np.nan, dtype)
        _engine.dense_backward_data(dX, dY, W, A, "tanh", n_threads=threads)
        results.append(dX)
    assert all(np.array_equal(results[0], other) for other in results[1:])
    expected = ref.activation_backward("tanh", dY.astype(np.float64) @ W.T, A)
    np.testing.assert_allclose(results[0], expected, **scaled_tol(dtype, n_out))
    plain, naive = np.empty((n, n_in), dtype), np.empty((n, n_in), dtype)
    _engine.dense_backward_data(plain, dY, W, n_threads=2)
    _engine.dense_backward_data(naive, dY, W, naive=True)
    np.testing.assert_allclose(plain, dY.astype(np.float64) @ W.T, **scaled_tol(dtype, n_out))
    np.testing.assert_allclose(naive, plain, **scaled_tol(dtype, n_out))


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("n,n_in,n_out", SHAPES)
def test_dense_backward_params_adds_into_gradients(rng, dtype, n, n_in, n_out):
    X, dY = rand(rng, (n + 2, n_in), dtype), rand(rng, (n, n_out), dtype)
    rows = rng.permutation(n + 2)[:n].astype(np.int64)
    dW0, db0 = rand(rng, (n_in, n_out), dtype), rand(rng, n_out, dtype)
    results = []
    for threads in (1, 2, 3):
        dW, db = dW0.copy(), db0.copy()
        _engine.dense_backward_params(dW, db, X, dY, rows=rows, n_threads=threads)
        results.append(dW)
        np.testing.assert_allclose(db, db0 + dY.astype(np.float64).sum(axis=0), **scaled_tol(dtype, n))
    assert all(np.array_equal(results[0], other) for other in results[1:])
    expected = dW0 + X[rows].T.astype(np.float64) @ dY
    np.testing.assert_allclose(results[0], expected, **scaled_tol(dtype, n))
    naive, nb = dW0.copy(), db0.copy()
    _engine.dense_backward_params(naive, nb, X, dY, rows=rows, naive=True)
    np.testing.assert_allclose(naive, results[0], **scaled_tol(dtype, n))


def random_csr(rng, n, n_in, dtype):
    dense = rand(rng, (n, n_in), dtype) * (rng.random((n, n_in)) < 0.3)
    X = sp.csr_matrix(dense)
    return dense, X.indptr.astype(np.int64), X.indices.astype(np.int64), X.data.astype(dtype)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("n,n_in,n_out", SHAPES)
def test_csr_forward_with_and_without_row_order(rng, dtype, n, n_in, n_out):
    dense, indptr, indices, values = random_csr(rng, n, n_in, dtype)
    W, b = rand(rng, (n_in, n_out), dtype), rand(rng, n_out, dtype)
    Y = np.empty((n, n_out), dtype)
    _engine.csr_dense_forward(Y, indptr, indices, values, None, W, b, n_threads=2)
    np.testing.assert_allclose(Y, dense.astype(np.float64) @ W + b, **scaled_tol(dtype, n_in))
    rows = rng.permutation(n).astype(np.int64)
    _engine.csr_dense_forward(Y, indptr, indices, values, rows, W, b, "relu", n_threads=2)
    expected = np.maximum(dense[rows].astype(np.float64) @ W + b, 0)
    np.testing.assert_allclose(Y, expected, **scaled_tol(dtype, n_in))


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("n,n_in,n_out", SHAPES)
def test_csr_backward_params(rng, dtype, n, n_in, n_out):
    dense, indptr, indices, values = random_csr(rng, n, n_in, dtype)
    dY = rand(rng, (n, n_out), dtype)
    rows = rng.permutation(n).astype(np.int64)
    dW, db = np.zeros((n_in, n_out), dtype), np.zeros(n_out, dtype)
    _engine.csr_backward_params(dW, db, indptr, indices, values, rows, dY, 2)
    np.testing.assert_allclose(dW, dense[rows].T.astype(np.float64) @ dY, **scaled_tol(dtype, n))
    np.testing.assert_allclose(db, dY.astype(np.float64).sum(axis=0), **scaled_tol(dtype, n))


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("name", ACTIVATIONS)
def test_activation_forward_and_backward(rng, dtype, name):
    Z = rand(rng, (9, 7), dtype) * 3
    Z[0, :3] = [0.0, -0.0, 40.0]  # relu's kink and a saturating input
    A = Z.copy()
    _engine.activation_forward(A, name)
    expected = ref.activation(name, Z)
    np.testing.assert_allclose(A, expected, rtol=5e-6 if dtype == np.float32 else 1e-14, atol=1e-7)
    dA = rand(rng, Z.shape, dtype)
    dZ = dA.copy()
    _engine.activation_backward(dZ, A, name, Z)
    np.testing.assert_allclose(
        dZ,
        ref.activation_backward(name, dA, A, Z),
        rtol=1e-5 if dtype == np.float32 else 1e-13,
        atol=1e-6 if dtype == np.float32 else 1e-14,
    )


def test_relu_keeps_nan_so_divergence_stays_visible():
    A = np.array([[np.nan, -1.0, 2.0]])
    _engine.activation_forward(A, "relu")
    assert np.isnan(A[0, 0]) and A[0, 1] == 0 and A[0, 2] == 2


def targets(rng, name, n, K, dtype):
    if name == "log_loss":
        return np.eye(K, dtype=dtype)[rng.integers(0, K, n)]
    if name == "binary_log_loss":
        return (rng.random((n, K)) < 0.5).astype(dtype)
    if name == "poisson":
        return rng.poisson(2.0, (n, K)).astype(dtype)
    return rand(rng, (n, K), dtype)


def predictions(rng, name, n, K, dtype):
    act = ref.CANONICAL[name]
    P = ref.activation(act, rng.standard_normal((n, K)))
    P[0, 0] = 0.0 if name in ("log_loss", "binary_log_loss") else P[0, 0]  # exercises clipping
    return P.astype(dtype)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("name", ["squared_error", "log_loss", "binary_log_loss", "poisson"])
@pytest.mark.parametrize("K", [1, 4])
def test_losses(rng, dtype, name, K):
    n = 11
    Y, P = targets(rng, name, n, K, dtype), predictions(rng, name, n, K, dtype)
    losses = _engine.loss_forward(P, Y, None, name)
    eps = ref.EPS[np.dtype(dtype)]
    np.testing.assert_allclose(losses, ref.per_sample_loss(name, P, Y, eps), rtol=1e-6)
    rows = rng.permutation(n).astype(np.int64)
    np.testing.assert_allclose(
        _engine.loss_forward(P, Y, rows, name), ref.per_sample_loss(name, P, Y[rows], eps), rtol=1e-6
    )


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("name", ["log_loss", "binary_log_loss"])
def test_log_of_the_losses_within_an_ulp(rng, dtype, name):
    """The log losses take their logs in plain arithmetic (losses.c), in
    double for either precision: over probabilities from eps to 1 - eps, on
    a log scale near both ends, each -log q (label 1) and -log(1 - q)
    (label 0) is within an ulp of the C library's log, give or take its own
    rounding."""
    eps = np.finfo(dtype).eps
    tail = np.exp(rng.uniform(np.log(eps), 0.0, 20_000))
    q = np.concatenate([tail, 1.0 - tail, rng.random(20_000), [eps, 1 - eps, 0.5, np.sqrt(0.5)]])
    q = np.clip(q.astype(dtype), eps, 1 - eps)
    for label in (1.0, 0.0) if name == "binary_log_loss" else (1.0,):
        got = _engine.loss_forward(q[:, None], np.full((q.size, 1), label, dtype), None, name)
        want = np.array([-math.log(v if label else 1.0 - v) for v in q.astype(np.float64)])
        ulps = np.abs(got - want) / np.spacing(np.abs(want))
        assert ulps.max() <= 2, (label, q[ulps.argmax()], ulps.max())


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("name", ["squared_error", "log_loss", "binary_log_loss", "poisson"])
@pytest.mark.parametrize("K", [1, 4])
def test_a_nan_prediction_gives_a_nan_loss(rng, dtype, name, K):
    """Clipping lets NaN through, and the loss must carry it: it is how a
    diverged fit shows."""
    Y, P = targets(rng, name, 5, K, dtype), predictions(rng, name, 5, K, dtype)
    Y[2] = 1  # a label the log losses take the log of
    P[2, K - 1] = np.nan
    losses = _engine.loss_forward(P, Y, None, name)
    assert np.isnan(losses[2]) and np.isfinite(np.delete(losses, 2)).all()


@pytest.mark.parametrize("dtype", DTYPES)
def test_output_delta_with_and_without_weights(rng, dtype):
    P, Y = rand(rng, (6, 3), dtype), rand(rng, (6, 3), dtype)
    sw = rng.random(6).astype(dtype)
    dZ = np.empty_like(P)
    _engine.loss_backward(dZ, P, Y)
    np.testing.assert_allclose(dZ, P.astype(np.float64) - Y, **TOL[dtype])
    _engine.loss_backward(dZ, P, Y, sw)
    np.testing.assert_allclose(dZ, (P.astype(np.float64) - Y) * sw[:, None], **TOL[dtype])


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("nesterov", [False, True])
def test_sgd_step(rng, dtype, nesterov):
    n, n_weights, alpha, S = 40000, 30000, 0.01, 7.0  # spans several chunks and threads
    p, v, g = rand(rng, n, dtype), rand(rng, n, dtype), rand(rng, n, dtype)
    grad = g.astype(np.float64) / S
    grad[:n_weights] += alpha * p[:n_weights].astype(np.float64) / S
    expected_p, expected_v = ref.sgd_step(
        p.astype(np.float64), v.astype(np.float64), grad, 0.1, 0.9, nesterov
    )
    sumsq = (p[:n_weights].astype(np.float64) ** 2).sum()
    got, _ = _engine.optimizer_step(
        p, v, g, "sgd", 0.1, n_weights, alpha, S, momentum=0.9, nesterov=nesterov, n_threads=2
    )
    assert got == pytest.approx(sumsq, rel=1e-12)
    np.testing.assert_allclose(p, expected_p, **TOL[dtype])
    np.testing.assert_allclose(v, expected_v, **TOL[dtype])


@pytest.mark.parametrize("dtype", DTYPES)
def test_adam_step(rng, dtype):
    n, n_weights, alpha, S = 40000, 12345, 0.1, 3.0
    p, m, g = rand(rng, n, dtype), rand(rng, n, dtype), rand(rng, n, dtype)
    v = rng.random(n).astype(dtype)
    grad = g.astype(np.float64) / S
    grad[:n_weights] += alpha * p[:n_weights].astype(np.float64) / S
    # the first step: t = 1, lr_t = lr sqrt(1 - b2) / (1 - b1)
    lr_t = 0.01 * np.sqrt(1 - 0.999) / (1 - 0.9)
    expected = ref.adam_step(*(a.astype(np.float64) for a in (p, m, v)), grad, lr_t, 0.9, 0.999, 1e-8)
    sumsq = (p[:n_weights].astype(np.float64) ** 2).sum()
    state = np.concatenate([m, v])
    got, t = _engine.optimizer_step(p, state, g, "adam", 0.01, n_weights, alpha, S, n_threads=2)
    assert got == pytest.approx(sumsq, rel=1e-12) and t == 1
    for got, want in zip((p, state[:n], state[n:]), expected):
        np.testing.assert_allclose(got, want, **TOL[dtype])


def gradient_in_dtype(g, p, n_weights, alpha, S):
    """(g + alpha p) / S on the first n_weights, g / S after them, in numpy's
    arithmetic of g's dtype (as scikit-learn computes it)."""
    d = g.dtype.type
    return np.concatenate([(g[:n_weights] + d(alpha) * p[:n_weights]) / d(S), g[n_weights:] / d(S)])


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("S", [128.0, 3.0, 1.0, 0.125])
def test_adam_step_is_numpys_arithmetic_in_the_working_dtype(rng, dtype, S):
    """Bit for bit what numpy computes in dtype, as scikit-learn's Adam does,
    whether S is a power of two (a division the engine does as a product)
    or not."""
    d, n, n_weights, alpha = dtype, 5000, 3000, 1e-4
    p, g = rng.standard_normal(n).astype(d), rng.standard_normal(n).astype(d)
    m, v = (rng.standard_normal(n) * 0.1).astype(d), (rng.random(n) * 0.01).astype(d)
    grad = gradient_in_dtype(g, p, n_weights, alpha, S)
    m_want = d(0.9) * m + d(1 - 0.9) * grad
    v_want = d(0.999) * v + d(1 - 0.999) * (grad * grad)
    p_want = p - d(0.001 * np.sqrt(1 - 0.999) / (1 - 0.9)) * m_want / (np.sqrt(v_want) + d(1e-8))
    state = np.concatenate([m, v])
    _engine.optimizer_step(p, state, g, "adam", 0.001, n_weights, alpha, S, n_threads=2)
    assert np.array_equal(state[:n], m_want) and np.array_equal(state[n:], v_want)
    assert np.array_equal(p, p_want)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("S", [128.0, 3.0, 2.0**127, 2.0**-130])
def test_sgd_step_divides_by_the_batch_weight_exactly(rng, dtype, S):
    """With momentum 0 and rate 1, the velocity SGD leaves is -(g + alpha p) / S
    rounded once in dtype: bit for bit numpy's quotient, subnormal quotients
    included, whether the engine divides or multiplies by the reciprocal (2^127:
    a subnormal float reciprocal, still exact; 2^-130: a float reciprocal out of
    range, so a division)."""
    d, n, n_weights, alpha = dtype, 5000, 3000, 1e-4
    scale = np.where(rng.random(n) < 0.3, np.finfo(dtype).smallest_subnormal * 1000, 1)
    g, p = (rng.standard_normal(n) * scale).astype(d), rng.standard_normal(n).astype(d)
    v = np.zeros(n, d)
    with np.errstate(over="ignore"):  # 2^-130: the large quotients overflow to inf
        want = -gradient_in_dtype(g, p, n_weights, alpha, S)
        _engine.optimizer_step(p, v, g, "sgd", 1.0, n_weights, alpha, S, momentum=0.0,
                               n_threads=2)
    assert np.array_equal(v, want)


def line_aligned(n, dtype, offset):
    """A zeroed array of n elements starting `offset` bytes past a 64-byte boundary."""
    itemsize = np.dtype(dtype).itemsize
    raw = np.zeros(n + 128 // itemsize, dtype)
    start = (-raw.ctypes.data % 64 + offset) // itemsize
    return raw[start : start + n]


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("solver", ["adam", "sgd", "rprop"])
@pytest.mark.parametrize("n", [70000, 20480, 20001])
@pytest.mark.parametrize("offset", [0, 8])
def test_optimizer_steps_are_the_same_for_any_thread_count(rng, dtype, solver, n, offset):
    """Bit-identical for 1, 2 and 3 threads. p, g and the state lie in one
    buffer, n elements apart, p `offset` bytes past a cache-line boundary
    (with 8, lines straddle two threads' chunks). With 20,480 parameters the
    arrays start at the same place modulo 4 KiB, so steps on more than one
    thread ask for their chunks' lines to write first, which must change
    nothing; 20,001 does not alias, and 70,000 is above the size that asks."""
    base = [rand(rng, n, dtype) for _ in range(4)]
    n_state = n if solver == "sgd" else 2 * n
    results = []
    for threads in (1, 2, 3):
        buf = line_aligned(2 * n + n_state, dtype, offset)
        p, g, state = buf[:n], buf[n : 2 * n], buf[2 * n :]
        p[:], g[:], state[:n] = base[0], base[1], base[2]
        state[n:] = np.abs(base[3][: n_state - n])
        s, _ = _engine.optimizer_step(p, state, g, solver, 0.01, n - 123, 0.5, 2.0,
                                      clip_norm=1.0, n_threads=threads)
        results.append((s, p.copy(), state.copy()))
    for s, p, state in results[1:]:
        assert s == results[0][0]
        assert np.array_equal(p, results[0][1]) and np.array_equal(state, results[0][2])


def test_kernels_refuse_bad_buffers():
    X = np.ones((3, 2))
    W = np.ones((2, 4))
    with pytest.raises(ValueError, match="do not chain"):
        _engine.dense_forward(np.empty((3, 3)), X, W, np.ones(4))
    with pytest.raises(TypeError, match="dtype"):
        _engine.dense_forward(np.empty((3, 4), np.float32), X, W, np.ones(4))
    with pytest.raises(ValueError, match="C-contiguous"):
        _engine.dense_forward(np.empty((4, 3)).T, X, W, np.ones(4))
    with pytest.raises(ValueError, match="out of range"):
        _engine.dense_forward(np.empty((2, 4)), X, W, np.ones(4), rows=np.array([0, 3]))
    with pytest.raises(ValueError, match="fewer rows"):
        _engine.dense_forward(np.empty((5, 4)), X, W, np.ones(4))
    indptr = np.array([0, 1, 2], np.int64)
    with pytest.raises(ValueError, match="column index out of range"):
        _engine.csr_dense_forward(
            np.empty((2, 4)), indptr, np.array([0, 7], np.int64), np.ones(2), None, W, np.ones(4)
        )
    with pytest.raises(ValueError, match="out of range"):
        _engine.csr_dense_forward(
            np.empty((2, 4)), indptr, np.array([0, 1], np.int64), np.ones(2),
            np.array([0, 5], np.int64), W, np.ones(4),
        )


def test_param_layout_puts_all_weights_before_all_biases():
    n_params, offsets = _engine.param_layout([3, 4, 2])
    assert n_params == 3 * 4 + 4 * 2 + 4 + 2
    assert offsets == [(0, 20), (12, 24)]


@pytest.mark.parametrize("n", [1, 2, 5, 1000, 70000])
def test_engine_shuffle_draws_what_numpy_draws(n):
    ours, theirs = np.random.RandomState(n), np.random.RandomState(n)
    ours.uniform(size=3), theirs.uniform(size=3)  # start mid-stream
    a, b = np.arange(n, dtype=np.int64), np.arange(n, dtype=np.int64)
    for _ in range(3):
        _engine.shuffle(ours, a)
        theirs.shuffle(b)
        np.testing.assert_array_equal(a, b)
    assert ours.randint(1 << 30) == theirs.randint(1 << 30)


@pytest.mark.parametrize("activation", ["gelu", "silu", "softmax"])
def test_backward_data_refuses_derivatives_its_outputs_do_not_give(activation):
    dY, W, A = np.ones((3, 4)), np.ones((2, 4)), np.full((3, 2), 0.5)
    dX = np.zeros((3, 2))
    with pytest.raises(ValueError, match="activation_backward"):
        _engine.dense_backward_data(dX, dY, W, A, activation)
    assert not dX.any()

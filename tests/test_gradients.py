"""The engine's loss and gradient against finite differences and against
the numpy reference backpropagation, for every hidden activation, every
loss with its output activations, with and without sample weights and L2,
dense and sparse input, in both precisions."""

import numpy as np
import pytest
import scipy.sparse as sp

import reference as ref
from fastmlp import _engine

# (loss, output activation): the canonical links, and squared error through
# the output activations a regressor may choose
LOSS_OUTPUTS = [
    ("squared_error", "identity"),
    ("squared_error", "logistic"),
    ("squared_error", "tanh"),
    ("squared_error", "relu"),
    ("squared_error", "exp"),
    ("log_loss", "softmax"),
    ("binary_log_loss", "logistic"),
    ("poisson", "exp"),
]
UNITS = [5, 6, 4, 3]


def problem(loss, dtype, seed=0, n=23):
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((n, UNITS[0]))
    K = UNITS[-1]
    if loss == "log_loss":
        Y = np.eye(K)[rng.integers(0, K, n)]
    elif loss == "binary_log_loss":
        Y = (rng.random((n, K)) < 0.5).astype(float)
    elif loss == "poisson":
        Y = rng.poisson(1.5, (n, K)).astype(float)
    else:
        Y = rng.standard_normal((n, K))
    params = rng.uniform(-0.7, 0.7, _engine.param_layout(UNITS)[0])
    sw = rng.uniform(0.2, 2.0, n)
    return X.astype(dtype), Y.astype(dtype), params.astype(dtype), sw.astype(dtype)


def unpack(params):
    _, offsets = _engine.param_layout(UNITS)
    coefs = [params[w : w + a * b].reshape(a, b) for (w, _), a, b in zip(offsets, UNITS, UNITS[1:])]
    intercepts = [params[o : o + b] for (_, o), b in zip(offsets, UNITS[1:])]
    return coefs, intercepts


def engine_loss_grad(net, X, Y, params, sw, chunk=7, n_threads=1):
    data = _engine.Dataset(net, X, Y, sw)
    grads = np.empty_like(params)
    loss = _engine.loss_grad(net, data, params, grads, net.workspace(chunk, n_threads), chunk, n_threads)
    return loss, grads


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("hidden", ref.HIDDEN)
@pytest.mark.parametrize("loss,out", LOSS_OUTPUTS)
def test_gradient_matches_finite_differences(dtype, hidden, loss, out):
    """Central differences of the float64 loss; a float32 gradient is
    checked against them at the same (float32) point."""
    X, Y, params, sw = problem(loss, dtype)
    acts = [hidden, hidden, out]
    net = _engine.Network(UNITS, acts, loss, 0.3, dtype)
    _, grads = engine_loss_grad(net, X, Y, params, sw)

    net64 = _engine.Network(UNITS, acts, loss, 0.3, np.float64)
    X64, Y64, p64, sw64 = (a.astype(np.float64) for a in (X, Y, params, sw))
    h = 1e-6
    numeric = np.empty(p64.size)
    for i in range(p64.size):
        up, down = p64.copy(), p64.copy()
        up[i] += h
        down[i] -= h
        numeric[i] = (
            engine_loss_grad(net64, X64, Y64, up, sw64)[0]
            - engine_loss_grad(net64, X64, Y64, down, sw64)[0]
        ) / (2 * h)
    if loss == "squared_error":
        # The reported squared error averages over the K outputs while its
        # gradient (scikit-learn's convention) is that of the sum: scale the
        # data part of the numeric gradient by K.
        l2 = np.zeros_like(numeric)
        coefs, _ = unpack(p64)
        for (w, _), c in zip(_engine.param_layout(UNITS)[1], coefs):
            l2[w : w + c.size] = 0.3 * c.ravel() / sw64.sum()
        numeric = (numeric - l2) * UNITS[-1] + l2
    tol = dict(rtol=1e-3, atol=1e-4) if dtype == np.float32 else dict(rtol=1e-5, atol=1e-7)
    np.testing.assert_allclose(grads, numeric, **tol)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("hidden", ref.HIDDEN)
@pytest.mark.parametrize("loss,out", LOSS_OUTPUTS)
@pytest.mark.parametrize("weighted", [False, True])
def test_loss_and_gradient_match_reference(dtype, hidden, loss, out, weighted):
    X, Y, params, sw = problem(loss, dtype, seed=1)
    sw = sw if weighted else None
    acts = [hidden, hidden, out]
    net = _engine.Network(UNITS, acts, loss, 0.05, dtype)
    value, grads = engine_loss_grad(net, X, Y, params, sw)
    coefs, intercepts = unpack(params.astype(np.float64))
    want_value, gW, gb = ref.loss_and_grad(X, Y, coefs, intercepts, acts, loss, 0.05, sw)
    want = np.empty(params.size)
    for (w, b), W_grad, b_grad in zip(_engine.param_layout(UNITS)[1], gW, gb):
        want[w : w + W_grad.size] = W_grad.ravel()
        want[b : b + b_grad.size] = b_grad
    tol = dict(rtol=2e-4, atol=2e-5) if dtype == np.float32 else dict(rtol=1e-10, atol=1e-12)
    assert value == pytest.approx(want_value, rel=tol["rtol"])
    np.testing.assert_allclose(grads, want, **tol)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_sparse_input_gives_the_dense_gradient(dtype):
    X, Y, params, sw = problem("log_loss", dtype, seed=2)
    X[np.abs(X) < 0.7] = 0
    net = _engine.Network(UNITS, ["tanh", "relu", "softmax"], "log_loss", 0.1, dtype)
    csr = sp.csr_matrix(X)
    sparse = (csr.indptr.astype(np.int64), csr.indices.astype(np.int64), csr.data)
    dense_value, dense_grads = engine_loss_grad(net, X, Y, params, sw)
    data = _engine.Dataset(net, sparse, Y, sw)
    grads = np.empty_like(params)
    value = _engine.loss_grad(net, data, params, grads, net.workspace(5, 2), 5, 2)
    tol = 1e-5 if dtype == np.float32 else 1e-12
    assert value == pytest.approx(dense_value, rel=tol)
    np.testing.assert_allclose(grads, dense_grads, rtol=tol, atol=tol)


def test_chunk_size_changes_nothing_but_summation_order():
    X, Y, params, sw = problem("binary_log_loss", np.float64, seed=3, n=50)
    net = _engine.Network(UNITS, ["logistic", "tanh", "logistic"], "binary_log_loss", 0.0, np.float64)
    base = engine_loss_grad(net, X, Y, params, sw, chunk=50)
    for chunk in (1, 4, 17):
        value, grads = engine_loss_grad(net, X, Y, params, sw, chunk=chunk)
        assert value == pytest.approx(base[0], rel=1e-13)
        np.testing.assert_allclose(grads, base[1], rtol=1e-12, atol=1e-15)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("n_threads", [1, 2])
def test_predict_every_row_or_chosen_rows(dtype, n_threads):
    """The engine's prediction pass against the reference forward pass,
    over chunks smaller than the data, for all rows and for a reordered
    subset with repeats."""
    X, _, params, _ = problem("log_loss", dtype, n=41)
    acts = ["tanh", "relu", "softmax"]
    net = _engine.Network(UNITS, acts, "log_loss", 0.0, dtype)
    data = _engine.Dataset(net, X)
    coefs, intercepts = unpack(params)
    expected = ref.forward(X, coefs, intercepts, acts)[0][-1]
    tol = dict(rtol=1e-5, atol=1e-6) if dtype == np.float32 else dict(rtol=1e-12, atol=1e-14)
    chunk = 8
    work = net.workspace(chunk, n_threads)
    out = np.empty((41, UNITS[-1]), dtype)
    _engine.predict(net, data, params, out, work, chunk, n_threads)
    np.testing.assert_allclose(out, expected, **tol)

    rows = np.array([40, 3, 3, 0, 17, 22, 9, 31, 12, 5, 8], np.int64)
    sub = np.empty((rows.size, UNITS[-1]), dtype)
    _engine.predict(net, data, params, sub, work, chunk, n_threads, rows)
    np.testing.assert_allclose(sub, expected[rows], **tol)
    with pytest.raises(ValueError, match="out of range"):
        _engine.predict(net, data, params, sub, work, chunk, n_threads, rows + 1)


def trainer_for(net, X, Y, params, state, *, solver, learning_rate, batch_size, chunk,
                n_threads=1, **settings):
    """The engine's Trainer over X's rows in order, unshuffled, at constant
    rate; the other settings scikit-learn's defaults unless given."""
    rest = dict(momentum=0.9, nesterov=True, beta_1=0.9, beta_2=0.999, epsilon=1e-8, adam_t=0,
                power_t=0.5, tol=1e-4, n_iter_no_change=10.0, watch_loss=True, t=0,
                best_loss=np.inf, no_improvement=0)
    rest.update(settings)
    return _engine.Trainer(
        net, _engine.Dataset(net, X, Y), params, state, np.arange(len(X), dtype=np.int64),
        solver=solver, learning_rate=learning_rate, schedule="constant",
        learning_rate_init=learning_rate, shuffle=False, random_state=None,
        batch_size=batch_size, chunk=chunk, n_threads=n_threads, **rest,
    )


def train_one_epoch(dtype, chunk, solver):
    """One epoch of batches of 16 rows, dropout on both hidden layers,
    through the engine's Trainer with batches passed `chunk` rows at a time."""
    X, Y, params, _ = problem("log_loss", dtype, n=40)
    net = _engine.Network(UNITS, ["tanh", "relu", "softmax"], "log_loss", 1e-3, dtype,
                          [0.3, 0.5], 12345)
    params = params.copy()
    state = np.zeros(params.size * (1 if solver == "sgd" else 2), dtype)
    if solver == "rprop":
        state[params.size:] = 0.01
    trainer = trainer_for(net, X, Y, params, state, solver=solver, learning_rate=0.1,
                          batch_size=16, chunk=chunk)
    losses, _, _ = trainer.run(1)
    return params, losses[0]


@pytest.mark.parametrize("solver", ["sgd", "rprop"])
def test_batches_larger_than_the_workspace_train_the_same(solver):
    """A batch passed in pieces (3 or 7 rows at a time) sums the same
    gradient, with the same dropout masks, as the batch passed whole."""
    whole, loss = train_one_epoch(np.float64, 16, solver)
    for chunk in (3, 7):
        pieces, piece_loss = train_one_epoch(np.float64, chunk, solver)
        np.testing.assert_allclose(pieces, whole, rtol=1e-12, atol=1e-13)
        assert piece_loss == pytest.approx(loss, rel=1e-12)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("clip", [0.0, 0.05])
@pytest.mark.parametrize("n_threads", [1, 2])
def test_a_training_step_is_the_gradient_sums_then_the_optimizer_step(dtype, clip, n_threads):
    """One Adam step of the Trainer, on a batch of 150 rows that passes in
    pieces of 100 and 50, each in blocks of up to 32 rows whose sums the
    step adds in itself for the last piece, is to the bit loss_grad_sums
    over the same rows (which adds every block's sums in a loop of its own)
    then optimizer_step, with and without clipping."""
    X, Y, params, _ = problem("log_loss", dtype, seed=5, n=150)
    net = _engine.Network(UNITS, ["tanh", "relu", "softmax"], "log_loss", 1e-2, dtype)
    n_weights = min(o for _, o in _engine.param_layout(UNITS)[1])
    adam = dict(beta_1=0.9, beta_2=0.999, epsilon=1e-8)
    trained, state = params.copy(), np.zeros(2 * params.size, dtype)
    trainer = trainer_for(net, X, Y, trained, state, solver="adam", learning_rate=0.01,
                          batch_size=150, chunk=100, n_threads=n_threads, clip_norm=clip, **adam)
    trainer.run(1)

    sums = np.empty_like(params)
    _, wsum = _engine.loss_grad_sums(net, _engine.Dataset(net, X, Y), params, sums,
                                     net.workspace(100, n_threads), 100, n_threads)
    stepped, ref_state = params.copy(), np.zeros(2 * params.size, dtype)
    _engine.optimizer_step(stepped, ref_state, sums, "adam", 0.01, n_weights, 1e-2, wsum,
                           clip_norm=clip, n_threads=n_threads, **adam)
    assert not np.array_equal(stepped, params)
    np.testing.assert_array_equal(trained, stepped)
    np.testing.assert_array_equal(state, ref_state)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("weighted", [False, True])
def test_raw_sums_of_pieces_finish_into_the_loss_and_gradient(dtype, weighted):
    """loss_grad is loss_grad_sums then loss_grad_finish, to the bit; the
    sums of pieces of the data (rows chosen by index, in any order) add up
    to the sums of the whole, and finish into its loss and gradient."""
    X, Y, params, sw = problem("log_loss", dtype, seed=4, n=41)
    sw = sw if weighted else None
    net = _engine.Network(UNITS, ["tanh", "relu", "softmax"], "log_loss", 0.2, dtype)
    data = _engine.Dataset(net, X, Y, sw)
    work = net.workspace(6, 2)
    value, grads = engine_loss_grad(net, X, Y, params, sw, chunk=6, n_threads=2)

    whole = np.empty_like(params)
    wloss, wsum = _engine.loss_grad_sums(net, data, params, whole, work, 6, 2)
    assert wsum == pytest.approx(41 if sw is None else sw.astype(np.float64).sum(), rel=1e-12)
    assert _engine.loss_grad_finish(net, params, whole, wloss, wsum) == value
    np.testing.assert_array_equal(whole, grads)

    order = np.random.default_rng(0).permutation(41)
    total, total_loss, total_weight = np.zeros_like(params), 0.0, 0.0
    for rows in np.array_split(order, 3):
        piece = np.empty_like(params)
        piece_loss, piece_weight = _engine.loss_grad_sums(net, data, params, piece, work, 6, 2,
                                                          rows.astype(np.int64))
        total += piece
        total_loss += piece_loss
        total_weight += piece_weight
    assert total_weight == pytest.approx(wsum, rel=1e-12)
    assert _engine.loss_grad_finish(net, params, total, total_loss, total_weight) == (
        pytest.approx(value, rel=1e-5 if dtype == np.float32 else 1e-12))
    tol = 1e-4 if dtype == np.float32 else 1e-11
    np.testing.assert_allclose(total, grads, rtol=tol, atol=tol)


def test_raw_sums_read_chosen_rows_as_a_copy_of_them():
    X, Y, params, sw = problem("squared_error", np.float64, seed=5, n=30)
    net = _engine.Network(UNITS, ["relu", "tanh", "identity"], "squared_error", 0.0, np.float64)
    rows = np.array([29, 4, 4, 11, 0, 7, 19], np.int64)
    work = net.workspace(4, 1)
    picked, copied = np.empty_like(params), np.empty_like(params)
    sums = _engine.loss_grad_sums(net, _engine.Dataset(net, X, Y, sw), params, picked, work, 4, 1,
                                  rows)
    copy_sums = _engine.loss_grad_sums(net, _engine.Dataset(net, X[rows], Y[rows], sw[rows]),
                                       params, copied, work, 4, 1)
    assert sums == copy_sums
    np.testing.assert_array_equal(picked, copied)


def test_raw_sums_of_no_rows_are_zero_and_bad_rows_are_refused():
    X, Y, params, _ = problem("poisson", np.float32, seed=6, n=10)
    net = _engine.Network(UNITS, ["tanh", "tanh", "exp"], "poisson", 0.0, np.float32)
    data = _engine.Dataset(net, X, Y)
    grads = np.full_like(params, np.nan)
    work = net.workspace(4, 1)
    assert _engine.loss_grad_sums(net, data, params, grads, work, 4, 1,
                                  np.empty(0, np.int64)) == (0.0, 0.0)
    assert not grads.any()
    with pytest.raises(ValueError, match="out of range"):
        _engine.loss_grad_sums(net, data, params, grads, work, 4, 1, np.array([10], np.int64))
    with pytest.raises(ValueError, match="grads must have"):
        _engine.loss_grad_finish(net, params, grads[1:], 1.0, 1.0)

"""The engine's kernels on the reference workloads' shapes."""

import numpy as np
import pytest

from fastmlp import _engine

# (batch, inputs, outputs) of W2's first layer, W3's first layer and W1's
SHAPES = {"W2-layer1": (128, 784, 256), "W3-layer1": (64, 50, 128), "W1-layer1": (32, 20, 64)}


@pytest.fixture(params=sorted(SHAPES))
def shape(request):
    return request.param, SHAPES[request.param]


def arrays(n, n_in, n_out, dtype):
    rng = np.random.default_rng(0)
    return (
        rng.standard_normal((n, n_in)).astype(dtype),
        (rng.standard_normal((n_in, n_out)) / np.sqrt(n_in)).astype(dtype),
        np.zeros(n_out, dtype),
        rng.standard_normal((n, n_out)).astype(dtype),
    )


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("threads", [1, 2])
def bench_dense_forward(benchmark, shape, dtype, threads):
    name, (n, n_in, n_out) = shape
    X, W, b, _ = arrays(n, n_in, n_out, dtype)
    Y = np.empty((n, n_out), dtype)
    benchmark(_engine.dense_forward, Y, X, W, b, "relu", None, threads)


@pytest.mark.parametrize("threads", [1, 2])
def bench_dense_backward(benchmark, shape, threads):
    name, (n, n_in, n_out) = shape
    X, W, _, dY = arrays(n, n_in, n_out, np.float32)
    dX, dW, db = np.empty_like(X), np.zeros_like(W), np.zeros(n_out, np.float32)

    def backward():
        _engine.dense_backward_params(dW, db, X, dY, n_threads=threads)
        _engine.dense_backward_data(dX, dY, W, X, "relu", n_threads=threads)

    benchmark(backward)


@pytest.mark.parametrize("solver", ["sgd", "adam"])
def bench_optimizer_step(benchmark, solver):
    """One step over W2's 235,146 parameters, L2 term included."""
    rng = np.random.default_rng(0)
    p, g = (rng.standard_normal(235_146).astype(np.float32) for _ in range(2))
    state = np.zeros(p.size * (1 if solver == "sgd" else 2), np.float32)
    n_weights = 784 * 256 + 256 * 128 + 128 * 10
    benchmark(_engine.optimizer_step, p, state, g, solver, 1e-6, n_weights, 1e-4, 128.0,
              n_threads=2)

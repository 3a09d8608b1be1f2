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
        rng.standard_normal((n_in, n_out)).astype(dtype) / np.sqrt(n_in),
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


def bench_adam_step(benchmark):
    rng = np.random.default_rng(0)
    p, m, v, g = (rng.standard_normal(235_146).astype(np.float32) for _ in range(4))
    v = np.abs(v)
    benchmark(_engine.adam_step, p, m, v, g, 1e-3, 0.9, 0.999, 1e-8, 2)

"""Whole fits and predictions of the reference workloads (reduced sizes),
through the public estimators."""

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))
import compare  # noqa: E402

WORKLOADS = {w.id: compare.scaled(w, quick=True) for w in compare.WORKLOADS}


@pytest.mark.parametrize("workload", ["W1", "W2", "W3", "W4", "W2-f64"])
def bench_fit(benchmark, workload):
    w = WORKLOADS[workload]
    X, y = compare.make_data(w)
    benchmark.pedantic(compare.fastmlp_fit, args=(w, X, y), rounds=3, iterations=1)


@pytest.fixture(scope="module")
def w2_model():
    w = WORKLOADS["W2"]
    X, y = compare.make_data(w)
    return compare.fastmlp_fit(w, X, y), X


def bench_predict_one_row(benchmark, w2_model):
    model, X = w2_model
    benchmark(model.predict_proba, X[:1])


def bench_predict_many_rows(benchmark, w2_model):
    model, X = w2_model
    benchmark(model.predict_proba, X[:5000])

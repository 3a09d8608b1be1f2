"""Training one model on a Dask cluster: data-parallel fits of fastmlp's
estimators on dask arrays (extra fastmlp[dask]).

    import fastmlp.dask
    model = fastmlp.MLPClassifier(solver="lbfgs")
    fastmlp.dask.fit(model, X, y)        # X, y: dask arrays, chunked by rows

The data stays on the workers, chunk by chunk, where it was loaded or is
generated; only parameters and gradients travel. Each worker computes the
raw loss and gradient sums of its chunks in the C engine; the client adds
them up in the order of the chunks and finishes them as the in-memory fit
does (see fastmlp._chunks for the arithmetic). The fitted model is the
ordinary estimator, with every attribute an in-memory fit sets.

- lbfgs and rprop: the exact fit over these chunks, the same bit for bit on
  any number of workers and wherever the chunks lie; client=False computes
  it in this process. Chunks that are not persisted are computed afresh on
  every pass (data larger than the cluster's memory); persisted ones stay.
- sgd, adam, adamw: synchronous data parallelism. Each step's batch takes
  its rows from every chunk in proportion to the chunk's size (batch_size /
  k from each of k equal chunks), so the fit does not depend on the number
  of workers. The data is persisted on the workers for the fit.
- Early stopping holds out validation_fraction of every chunk; X_val and
  y_val may be dask arrays too. sample_weight, class_weight, warm starts,
  float32 and float64 work as in memory; dropout does not.
- A worker lost during the fit is made up for by Dask, which computes its
  chunks again; a fit the cluster cannot finish raises RuntimeError and
  leaves the model as it was. Ctrl-C stops the fit with the weights of the
  last completed epoch (or L-BFGS iteration) and a warning.
"""

import copy
import dataclasses
import time
from typing import Any

import numpy as np
from sklearn.base import is_classifier
from sklearn.utils import check_random_state
from sklearn.utils.class_weight import compute_class_weight

try:
    import dask
    import dask.array as da
    from dask import delayed
except ImportError as error:
    raise ImportError("fastmlp.dask needs dask: pip install fastmlp[dask]") from error

from fastmlp import _chunks
from fastmlp._base import _NON_FINITE, BaseMultilayerPerceptron, _put_back, _Undo, _Validation
from fastmlp._optim import StochasticOptimizer
from fastmlp._threads import effective_n_threads

__all__ = ["fit"]

_MINI_BATCH = ("sgd", "adam", "adamw")


class _ClusterError(Exception):
    """A pass over the chunks that the cluster could not complete."""


def fit(model: Any, X: Any, y: Any, sample_weight: Any = None, *, X_val: Any = None,
        y_val: Any = None, client: Any = None) -> Any:
    """Fit a fastmlp estimator to dask arrays on the workers of a Dask cluster.

    Each worker computes the raw loss and gradient sums of the chunks it
    holds; the client adds them up in chunk order and finishes them as the
    in-memory fit does. lbfgs and rprop give the same weights, bit for bit,
    on any number of workers; sgd, adam and adamw take one step per batch,
    its rows drawn from every chunk in proportion to the chunk's size. See
    the module's description for the rest.

    Parameters
    ----------
    model : fastmlp.MLPClassifier or fastmlp.MLPRegressor
        Trained in place, with its own parameters (dropout must be 0).
    X : dask array of shape (n_samples, n_features)
        Chunked by rows: each chunk of rows is a piece of work (chunks
        across columns are joined). float32 data trains in float32. Other
        array-likes are taken as one chunk.
    y : dask array of shape (n_samples,) or (n_samples, n_outputs)
        Targets, rechunked to the rows of X.
    sample_weight : dask array of shape (n_samples,), default=None
        Weight of each sample in the loss (multiplied by class_weight's).
    X_val, y_val : dask arrays or array-likes, default=None
        A validation set, as for the estimator's fit (stochastic solvers).
    client : distributed.Client, None or False, default=None
        The cluster; None takes the current client. False computes the
        chunks and trains in this process, in the same order and with the
        same arithmetic: the reference a cluster's fit equals bit for bit.

    Returns
    -------
    model : fastmlp.MLPClassifier or fastmlp.MLPRegressor
        The model, fitted.
    """
    if not isinstance(model, BaseMultilayerPerceptron):
        raise TypeError(f"fastmlp.dask.fit trains fastmlp's estimators, not {type(model).__name__}")
    client = _resolve(client)
    before = _copied_state(model)
    with _Undo(model) as undo:
        hidden = model._checked_settings(X_val, y_val)
        if model._dropout_rates(len(hidden)):
            raise ValueError("dropout is not available to distributed fits; set dropout=0.")
        X, y, sample_weight = _inputs(X, y, sample_weight, model)
        hold = model.solver in _MINI_BATCH or _persisted(client, X, y, sample_weight)
        runners = [_runner(client, X, y, sample_weight, hold)]
        try:
            if X_val is not None:
                X_val, y_val, _ = _inputs(X_val, y_val, None, model, "X_val", "y_val")
                runners.append(_runner(client, X_val, y_val, None,
                                       hold or _persisted(client, X_val, y_val, None)))
            _train(model, hidden, X, y, X_val, y_val, runners, undo)
        except _ClusterError as failure:
            _put_back(model, before)
            if "coefs_" in before:
                # copies of the weights: views of one buffer again, for the
                # fast prediction path
                model._load_params(model._stored_dtype())
            raise RuntimeError(
                f"Training on the cluster failed ({failure}); the model is left as it was "
                "before this fit."
            ) from failure.__cause__
        finally:
            for runner in runners:
                runner.release()
    return model


def _resolve(client):
    """The Client to train with, or None to train in this process."""
    if client is False:
        return None
    try:
        from distributed import Client, default_client
    except ImportError:
        Client = default_client = None
    if client is not None:
        if Client is None or not isinstance(client, Client):
            raise TypeError(f"client must be a distributed.Client, None or False, not "
                            f"{type(client).__name__}")
        return client
    try:
        return default_client()
    except (TypeError, ValueError):
        raise ValueError(
            "fastmlp.dask.fit trains on a Dask cluster and found no distributed Client: start "
            "one (distributed.Client(...)), pass client=, or pass client=False to train in this "
            "process."
        ) from None


def _copied_state(model):
    """The estimator's attributes, with copies of everything a fit changes
    in place (arrays, lists, optimizer state)."""
    return {
        name: copy.deepcopy(value)
        if isinstance(value, (np.ndarray, list, StochasticOptimizer)) else value
        for name, value in model.__dict__.items()
    }


# ---- inputs ------------------------------------------------------------------


def _as_dask(a, name):
    if isinstance(a, da.Array):
        return a
    if hasattr(a, "to_dask_array"):
        raise TypeError(f"{name}: pass a dask array, e.g. {name}.to_dask_array(lengths=True)")
    return da.from_array(np.asarray(a), chunks=-1)  # in memory already: one chunk


def _inputs(X, y, sample_weight, model, x_name="X", y_name="y"):
    """X, y and sample_weight as dask arrays with the same chunks of rows
    (and X in one chunk of columns), checked as far as their shapes go."""
    name = type(model).__name__
    X, y = _as_dask(X, x_name), _as_dask(y, y_name)
    if X.ndim > 2:
        raise ValueError(f"Found array with dim {X.ndim}. {name} expected <= 2.")
    if X.ndim != 2:
        raise ValueError(f"Expected 2D array, got {X.ndim}D array instead for {x_name}.")
    if y.ndim not in (1, 2):
        raise ValueError(f"{y_name} must be 1-D or 2-D, got shape {y.shape}.")
    for a, label in ((X, x_name), (y, y_name)):
        if any(np.isnan(c) for c in a.chunks[0]):
            raise ValueError(f"{label} has chunks of unknown size: call "
                             f"{label}.compute_chunk_sizes() first.")
    if not isinstance(X._meta, np.ndarray):
        raise TypeError(f"fastmlp.dask trains on dense numpy chunks, not {type(X._meta).__name__}.")
    if X.dtype.kind == "c":
        raise ValueError(f"Complex data not supported ({x_name} has dtype {X.dtype}).")
    if X.dtype.kind in "SU":
        raise ValueError(f"{x_name} holds strings (dtype {X.dtype}): convert them to numbers.")
    if X.dtype.kind not in "biuf":
        raise ValueError(f"{x_name} must hold numbers that convert to float, got dtype "
                         f"{X.dtype}.")
    n, d = X.shape
    if y.shape[0] != n:
        if x_name == "X_val":
            raise ValueError(f"X_val has {n} samples but y_val has {y.shape[0]}.")
        raise ValueError(f"Found input variables with inconsistent numbers of samples: "
                         f"[{n}, {y.shape[0]}]")
    for size, what in ((n, "sample(s)"), (d, "feature(s)")):
        if size == 0:
            raise ValueError(f"Found array with 0 {what} (shape={X.shape}) while a minimum "
                             f"of 1 is required by {name}.")
    X = X.rechunk({1: -1})
    rows = X.chunks[0]
    y = y.rechunk({0: rows, 1: -1} if y.ndim == 2 else {0: rows})
    if sample_weight is not None:
        sample_weight = _as_dask(sample_weight, "sample_weight")
        if sample_weight.shape != (n,):
            raise ValueError(f"sample_weight.shape == {sample_weight.shape}, expected ({n},)!")
        sample_weight = sample_weight.rechunk({0: rows})
    return X, y, sample_weight


def _persisted(client, *arrays):
    """Whether every chunk of the arrays is held by the cluster already."""
    if client is None:
        return False
    from distributed import futures_of

    for a in arrays:
        if a is not None:
            held = {f.key for f in futures_of(a)}
            if not all(key in held for key in dask.core.flatten(a.__dask_keys__())):
                return False
    return True


def _runner(client, X, y, sw, hold):
    arrays = [a for a in (X, y, sw) if a is not None]
    if client is None:
        blocks = dask.compute(*[a.to_delayed(optimize_graph=False).ravel().tolist()
                                for a in arrays], optimize_graph=False)
        return _chunks.InProcess(_blocks(blocks, sw is not None))
    return _Cluster(client, arrays, sw is not None, hold)


def _blocks(per_array, weighted):
    """[(x, y, sw)] per chunk from one list of chunks per array."""
    if weighted:
        return list(zip(*per_array))
    return [(x, y, None) for x, y in zip(*per_array)]


class _Cluster:
    """Chunks on the workers of a distributed Client, in chunk order. With
    `hold`, the arrays are persisted and each chunk is prepared once, where
    it lies, and a pass over them is one task per worker thread, which
    works on the chunks held there (one round trip for the step, whatever
    the number of chunks); otherwise every pass computes the chunks afresh
    from their graph, one task each, so that no more of them than the
    workers are working on need be in memory at once."""

    def __init__(self, client, arrays, weighted, hold):
        self.client, self.hold = client, hold
        # Graphs go as they are (culled, not fused): fusing y = f(X) into one
        # task would compute each chunk of X twice.
        self.kept = None
        if hold:
            from distributed import futures_of

            self.kept = client.persist(list(arrays), optimize_graph=False)
            per_array = []
            for a in self.kept:
                futures = {f.key: f for f in futures_of(a)}
                per_array.append([futures[key] for key in dask.core.flatten(a.__dask_keys__())])
        else:
            per_array = [a.to_delayed(optimize_graph=False).ravel().tolist() for a in arrays]
        self.blocks = _blocks(per_array, weighted)
        self.chunks = None
        self.placed = -np.inf

    def _run(self, fn, calls, wrap=True):
        """fn(*args) for each (args, worker) in calls, as tasks on the
        cluster (on the worker given, where it can); the results in order.
        Failures raise _ClusterError when wrap, else as they came."""
        if self.hold:
            futures = [self.client.submit(fn, *args, workers=worker,
                                          allow_other_workers=worker is not None, pure=False)
                       for args, worker in calls]
        else:
            futures = self.client.compute([delayed(fn, pure=False)(*args) for args, _ in calls])
        try:
            return self.client.gather(futures)
        except KeyboardInterrupt:
            self.client.cancel(futures)
            raise
        except Exception as error:
            self.client.cancel(futures)
            if not wrap:
                raise
            raise _ClusterError(f"{type(error).__name__}: {error}") from error

    def describe(self, *settings):
        return self._run(_chunks.describe,
                         [((*block, *settings, c), None) for c, block in enumerate(self.blocks)],
                         wrap=False)

    def prepare(self, job, seeds):
        self.job, self.seeds = job, seeds
        if self.hold:
            from distributed import wait

            self.chunks = [self.client.submit(_chunks.prepare, *block, job, seed, pure=False)
                           for block, seed in zip(self.blocks, seeds)]
            wait(self.chunks)  # where they lie decides where the work goes

    def _groups(self, wanted):
        """The chunks `wanted` in groups, one per thread of the worker that
        holds them (by where they were at most a second ago); a chunk held
        nowhere (being computed again) is a group of its own."""
        now = time.monotonic()
        if now - self.placed > 1.0:
            held = self.client.who_has(self.chunks)
            self.where = [(held.get(f.key) or [None])[0] for f in self.chunks]
            self.threads = self.client.nthreads()
            self.placed = now if None not in self.where else -np.inf
        by_worker = {}
        for c in wanted:
            by_worker.setdefault(self.where[c] or c, []).append(c)
        groups = []
        for worker, chunks in by_worker.items():
            if worker not in self.threads:
                groups.append((None, chunks))
                continue
            n = min(len(chunks), self.threads[worker])
            groups += [(worker, list(part)) for part in np.array_split(chunks, n)]
        return groups

    def map(self, fn, per_chunk, *shared):
        out = [None] * len(per_chunk)
        wanted = [c for c, args in enumerate(per_chunk) if args is not None]
        if not self.hold:
            calls = [((*self.blocks[c], self.job, self.seeds[c], fn, *per_chunk[c], *shared), None)
                     for c in wanted]
            for c, result in zip(wanted, self._run(_chunks.streamed, calls)):
                out[c] = result
            return out
        groups = self._groups(wanted)
        calls = [((fn, [self.chunks[c] for c in part], self.job, [per_chunk[c] for c in part],
                   shared), None if worker is None else [worker]) for worker, part in groups]
        for (_, part), results in zip(groups, self._run(_chunks.each, calls)):
            for c, result in zip(part, results):
                out[c] = result
        return out

    def release(self):
        self.chunks = self.kept = self.blocks = None


# ---- the fit -------------------------------------------------------------------


def _train(model, hidden, X, y, X_val, y_val, runners, undo):
    """Check the chunks, set the model up as an in-memory fit does, and
    train."""
    runner = runners[0]
    classifier = is_classifier(model)
    poisson = not classifier and model.loss == "poisson"
    facts = runner.describe(type(model).__name__, "y", classifier, poisson)
    first_pass = not hasattr(model, "coefs_") or not model.warm_start
    dtype = model._training_dtype(X.dtype, first_pass)
    multilabel = classifier and y.ndim == 2 and y.shape[1] > 1
    classes, counts, values = _targets(facts, classifier, multilabel)

    # The labels (classifiers) and the number of features are checked and
    # set by the estimator's own validation, run on a stand-in for the data
    # with its columns and its set of target values.
    if not classifier:
        stand_in = np.zeros((1,) + y.shape[1:])
    elif multilabel:
        stand_in = np.resize(values, (max(values.size, 2), y.shape[1]))
    else:
        stand_in = classes.reshape(-1, 1) if y.ndim == 2 else classes
    _, encoded = model._validate_input(np.zeros((stand_in.shape[0], X.shape[1]), dtype),
                                       stand_in, False, reset=first_pass)
    n_outputs = 1 if encoded.ndim == 1 else encoded.shape[1]
    class_weights = _class_weights(model, classes, counts, multilabel)

    model.n_outputs_ = n_outputs
    layer_units = [X.shape[1]] + hidden + [n_outputs]
    model._hidden_activations(len(hidden))
    model._random_state = check_random_state(model.random_state)
    if first_pass:
        model._initialize(np.empty((0, n_outputs)), layer_units, dtype)
    elif not hasattr(model, "n_layers_"):
        model._initialize(np.empty((0, n_outputs)), layer_units, dtype, draw_weights=False)
    params = model._load_params(dtype, layer_units)
    n_threads = effective_n_threads(model.n_threads)

    stochastic = model.solver != "lbfgs"
    holdout = stochastic and model.early_stopping and len(runners) == 1
    k = len(runner.blocks)
    # one seed for each chunk's split, chunks without rows aside
    seeds = [model._random_state.randint(np.iinfo(np.int32).max) if holdout and rows else None
             for rows in X.chunks[0]]
    job = _chunks.Job(
        units=tuple(layer_units),
        activations=tuple(model._activations(len(layer_units) - 1)),
        loss=model._engine_loss(),
        dtype=dtype.name,
        n_threads=model.n_threads,
        classifier=classifier,
        classes=None if multilabel else classes,
        multilabel=multilabel,
        class_weights=class_weights,
        holdout=model.validation_fraction if holdout else None,
        stratify=classifier and n_outputs == 1,
    )
    runner.prepare(job, seeds)
    net = model._network(layer_units, dtype)
    if not stochastic:
        undo.training_begins()
        # warnings at the caller of fit: _fit_lbfgs < _train < fit < caller
        model._fit_lbfgs(params, _chunks.objective(runner, net, k), interruptible=True,
                         stacklevel=4)
    else:
        optimizer = model._stochastic_optimizer(params, False)
        sizes = runner.map(_chunks.counts, [()] * k)
        n_samples = sum(s[0] for s in sizes)
        if holdout and sum(s[1] for s in sizes) < 2:
            raise ValueError("The validation set is too small. Increase 'validation_fraction' "
                             "or the size of your dataset.")
        model._samples_per_epoch = n_samples
        model.__dict__.pop("_dropout_seed", None)
        validation = None
        if model.early_stopping or len(runners) > 1:
            scored = runner if holdout else _validation_runner(model, runners[1], job, X_val,
                                                               y_val)
            validation = _Validation(model, params, _chunks.validation_measure(
                scored, model, model._network(layer_units, dtype, penalty=False),
                len(scored.blocks), params))
        trainer = _chunks.ChunkTrainer(runner, model, params, optimizer, [s[0] for s in sizes],
                                       model._batch_rows(n_samples), model.early_stopping,
                                       n_threads)
        model._train_epochs(trainer, optimizer, validation, params, False, False, undo)
    if not np.isfinite(model._params).all():
        raise ValueError(_NON_FINITE)


def _targets(facts, classifier, multilabel):
    """(classes, their counts, None) of 1-D classification targets, (None,
    None, the values) of a label indicator matrix, else (None, None, None)."""
    if not classifier:
        return None, None, None
    if multilabel:
        return None, None, np.unique(np.concatenate(facts))
    labels = np.concatenate([f[0] for f in facts])
    classes, where = np.unique(labels, return_inverse=True)
    counts = np.bincount(where, weights=np.concatenate([f[1] for f in facts]))
    return classes, counts.astype(np.int64), None


def _class_weights(model, classes, counts, multilabel):
    """The weight of each class (float64), as scikit-learn's
    compute_sample_weight gives it to the samples of that class."""
    class_weight = getattr(model, "class_weight", None)
    if class_weight is None:
        return None
    if multilabel:
        raise ValueError("class_weight with multilabel targets is not available to distributed "
                         "fits; fold the weights into sample_weight.")
    if isinstance(class_weight, str):  # 'balanced': n / (n_classes * count)
        return counts.sum() / (len(classes) * counts.astype(np.float64))
    return compute_class_weight(class_weight, classes=classes, y=classes)


def _validation_runner(model, runner, job, X_val, y_val):
    """The runner of a validation set (X_val, y_val): checked and prepared
    as scikit-learn's fit checks and encodes y_val, without weights."""
    classifier = job.classifier
    if X_val.shape[1] != model.n_features_in_:
        raise ValueError(f"X has {X_val.shape[1]} features, but {type(model).__name__} is "
                         f"expecting {model.n_features_in_} features as input.")
    outputs = 1 if y_val.ndim == 1 else y_val.shape[1]
    if (not classifier or job.multilabel) and outputs != model.n_outputs_:
        raise ValueError(f"y_val has {outputs} targets, the model is fitted on "
                         f"{model.n_outputs_}.")
    facts = runner.describe(type(model).__name__, "y_val", classifier, job.loss == "poisson")
    if classifier and not job.multilabel:
        found = np.unique(np.concatenate([f[0] for f in facts]))
        if len(np.setdiff1d(found, model.classes_)):
            raise ValueError(
                f"y_val has classes not in `self.classes_`. `self.classes_` has "
                f"{model.classes_}. 'y_val' has {found}."
            )
    runner.prepare(dataclasses.replace(job, class_weights=None, holdout=None),
                   [None] * len(runner.blocks))
    return runner

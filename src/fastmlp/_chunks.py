"""Training over a data set cut into chunks of rows, each of which can be
worked on anywhere: fastmlp.dask runs them on the workers of a Dask
cluster, InProcess runs them here, one after another (the reference the
cluster's fit equals bit for bit).

Design: a chunk is prepared once where it lies (`prepare`: X in the working
dtype, the targets encoded as the network is trained on, sample weights with
the class weights folded in, and the rows early stopping holds out). Chunk
tasks (`sums`, `validation_sums`) compute with the C engine and hand back
raw sums: loss and gradient summed over their rows before any division
(fm_loss_grad_sums), or the counts a score is made of. The client adds them
up in the order of the chunks, whichever worker computed them, and finishes
the sum as the in-memory fit does (fm_loss_grad_finish for L-BFGS,
fm_optimizer_step for the stochastic solvers). So the result depends on the
chunking, never on the number of workers or on where a chunk lies.

A mini-batch step takes its rows from every chunk: step j of an epoch over
n training rows in batches of B takes, from chunk c of n_c rows (in the
order of its shuffle), the rows [a_c(j), a_c(j + 1)) with
a_c(j) = min(n_c, floor(j B n_c / n)). Every step is about B rows, shared
out in proportion to the chunks' sizes (exactly B / k from each of k equal
chunks when k divides B), and with one chunk the batches are those of the
in-memory fit.

A runner holds the chunks: describe(...) checks the raw ones, prepare(job,
seeds) makes them ready, map(fn, per_chunk, *shared) calls fn(chunk, job,
*per_chunk[c], *shared) for every chunk c whose per_chunk[c] is not None
and returns the results in chunk order (None where skipped), and release()
lets them go.
"""

import threading
from dataclasses import dataclass
from functools import lru_cache
from typing import Optional

import numpy as np
from sklearn.base import is_classifier
from sklearn.model_selection import train_test_split
from sklearn.utils import assert_all_finite

from fastmlp import _engine
from fastmlp._base import _CHUNK_ROWS, _TRAIN_CHUNK_ROWS
from fastmlp._engine import LR_REDUCED
from fastmlp._params import count_as_float
from fastmlp._threads import adaptive_threads, effective_n_threads


@dataclass(frozen=True)
class Job:
    """What a chunk task needs to know of the fit (small, pickled with every
    task).

    units, activations, loss, dtype : the network (as _engine.Network takes
        them); the L2 term is the client's business.
    n_threads : the estimator's n_threads, resolved where the task runs.
    classifier : whether the estimator is a classifier.
    classes : the labels of a classifier with 1-D targets, else None.
    multilabel : a classifier's targets are a label indicator matrix.
    class_weights : weight of each of `classes` (float64), or None.
    holdout : share of every chunk's rows held out for validation, or None.
    stratify : hold out in proportion to the classes (binary targets).
    """

    units: tuple
    activations: tuple
    loss: str
    dtype: str
    n_threads: Optional[int]
    classifier: bool
    classes: Optional[np.ndarray] = None
    multilabel: bool = False
    class_weights: Optional[np.ndarray] = None
    holdout: Optional[float] = None
    stratify: bool = False

    def network(self):
        return _network(self.units, self.activations, self.loss, self.dtype)

    def threads(self):
        """(thread count, tuner) for an engine call in this process."""
        n_threads = effective_n_threads(self.n_threads)
        if not adaptive_threads(self.n_threads):
            return n_threads, None
        if not hasattr(_local, "tuner"):
            _local.tuner = _engine.Tuner()
        return n_threads, _local.tuner


@lru_cache(maxsize=16)
def _network(units, activations, loss, dtype):
    return _engine.Network(units, activations, loss, 0.0, dtype)


# each thread's timing of thread counts (a tuner serves one call at a time)
_local = threading.local()


@dataclass
class Chunk:
    """A chunk made ready for the engine: x [n, n_features] and y [n,
    n_outputs] C-ordered in the working dtype, sw [n] or None, and the rows
    it trains on (train, None for all) and holds out for validation (held,
    None for none)."""

    x: np.ndarray
    y: np.ndarray
    sw: Optional[np.ndarray]
    train: Optional[np.ndarray] = None
    held: Optional[np.ndarray] = None

    def n_train(self):
        return self.x.shape[0] if self.train is None else self.train.shape[0]

    def rows(self, positions):
        """Row indices of the training rows at `positions` (all of them in
        their order when None; then None when that is every row)."""
        if positions is None:
            return self.train
        return positions if self.train is None else self.train[positions]


# ---- chunk tasks ------------------------------------------------------------


def describe(x, y, sw, estimator, y_name, classifier, poisson, index):
    """Check raw blocks of chunk `index` as scikit-learn checks the whole
    data for `estimator` (a class name; targets called y_name; a classifier
    or not; poisson: targets may not be negative), with its messages naming
    the chunk; returns what the client needs to know of the targets: for a
    classifier, (labels, counts) of 1-D targets or the values of a label
    indicator matrix, else None."""
    where = f" (in chunk {index})"
    y = np.asarray(y)
    try:
        assert_all_finite(x, estimator_name=estimator, input_name="X")
        if sw is not None:
            assert_all_finite(sw, input_name="sample_weight")
        if not classifier:
            y = np.asarray(y, dtype=np.float64)
        if y.dtype.kind in "fc":
            assert_all_finite(y, input_name=y_name)
    except ValueError as error:
        raise ValueError(f"{error}{where}") from None
    if not classifier:
        if poisson and np.any(y < 0):
            raise ValueError(f"loss='poisson' needs non-negative targets {y_name}.{where}")
        return None
    if y.ndim == 2 and y.shape[1] > 1:
        return np.unique(y)
    return np.unique(y.ravel(), return_counts=True)


def prepare(x, y, sw, job, seed):
    """The Chunk of raw blocks x, y, sw, holding out job.holdout of its rows
    with the RandomState seeded by `seed` when early stopping asks for it."""
    dtype = np.dtype(job.dtype)
    x = np.ascontiguousarray(x, dtype=dtype)
    y = np.asarray(y)
    codes = None
    if job.multilabel:
        targets = y != 0
    elif job.classes is not None:
        codes = np.searchsorted(job.classes, y.ravel())
        if len(job.classes) <= 2:
            targets = (codes == 1)[:, None]
        else:
            targets = np.arange(len(job.classes)) == codes[:, None]
    else:
        targets = y.reshape(-1, 1) if y.ndim == 1 else y.reshape(y.shape[0], -1)
    weights = None
    if job.class_weights is not None:
        weights = job.class_weights[codes]
        if sw is not None:
            weights = weights * np.asarray(sw)
    elif sw is not None:
        weights = np.asarray(sw)
    chunk = Chunk(
        x,
        np.ascontiguousarray(targets, dtype=dtype),
        None if weights is None else np.ascontiguousarray(weights, dtype=dtype),
    )
    if job.holdout:
        chunk.train, chunk.held = _split(x.shape[0], job.holdout, seed,
                                         targets if job.stratify else None)
    return chunk


def _split(n, holdout, seed, stratify):
    """(train rows, held-out rows) of n rows, as scikit-learn's early
    stopping splits them: stratified when asked and the chunk's classes
    allow it, else at random; a chunk too small to split trains on all."""
    for by in ((stratify, None) if stratify is not None else (None,)):
        try:
            train, held = train_test_split(np.arange(n), random_state=np.random.RandomState(seed),
                                           test_size=holdout, stratify=by)
            return train.astype(np.int64), held.astype(np.int64)
        except ValueError:
            continue
    return np.arange(n, dtype=np.int64), np.empty(0, dtype=np.int64)


def counts(chunk, job):
    """(training rows, held-out rows) of a prepared chunk."""
    return chunk.n_train(), 0 if chunk.held is None else chunk.held.shape[0]


def sums(chunk, job, positions, piece, params):
    """Raw sums (grads, wloss, wsum) over the chunk's training rows at
    `positions` (all when None), passed `piece` rows at a time."""
    net = job.network()
    n_threads, tuner = job.threads()
    rows = chunk.rows(positions)
    data = _engine.Dataset(net, chunk.x, chunk.y, chunk.sw)
    grads = np.empty(net.n_params, dtype=net.dtype)
    wloss, wsum = _engine.loss_grad_sums(net, data, params, grads, net.workspace(piece, n_threads),
                                         piece, n_threads, rows, tuner)
    return grads, wloss, wsum


def validation_sums(chunk, job, params):
    """What the validation score and loss are made of, over the chunk's
    held-out rows (every row of a validation chunk): (wloss, wsum, score
    parts), the score parts being (weighted count of right predictions,
    weight total) for a classifier, and per output (weight total, mean,
    sum of squared deviations, sum of squared errors) for a regressor, or
    None when a prediction is not finite. None for no rows."""
    rows = chunk.held
    n = chunk.x.shape[0] if rows is None else rows.shape[0]
    if n == 0:
        return None
    net = job.network()
    n_threads, tuner = job.threads()
    data = _engine.Dataset(net, chunk.x, chunk.y, chunk.sw)
    work = net.workspace(_CHUNK_ROWS, n_threads)
    outputs = np.empty((n, net.n_outputs), dtype=net.dtype)
    _engine.predict(net, data, params, outputs, work, _CHUNK_ROWS, n_threads, rows, tuner)
    wloss, wsum = _engine.loss_grad_sums(net, data, params, None, work, _CHUNK_ROWS, n_threads,
                                         rows, tuner)
    y = chunk.y if rows is None else chunk.y[rows]
    w = None if chunk.sw is None else (chunk.sw if rows is None else chunk.sw[rows])
    w = np.ones(n) if w is None else w.astype(np.float64)
    if job.classifier:
        if job.multilabel or y.shape[1] == 1:
            right = ((outputs > 0.5) == (y > 0.5)).all(axis=1)
        else:
            right = outputs.argmax(axis=1) == y.argmax(axis=1)
        return wloss, wsum, (float(w[right].sum()), float(w.sum()))
    if not np.isfinite(outputs).all():
        return wloss, wsum, None
    y, p = y.astype(np.float64), outputs.astype(np.float64)
    total = w.sum()
    mean = (w @ y) / total
    deviations = w @ (y - mean) ** 2
    errors = w @ (y - p) ** 2
    return wloss, wsum, (total, mean, deviations, errors)


def each(fn, chunks, job, per_chunk, shared):
    """[fn(chunk, job, *args, *shared)] for the chunks and their args, in
    order (the chunks of one worker in one task)."""
    return [fn(chunk, job, *args, *shared) for chunk, args in zip(chunks, per_chunk)]


def streamed(x, y, sw, job, seed, fn, *args):
    """fn on the chunk of raw blocks prepared on the spot (a chunk that is
    computed afresh for every pass over the data)."""
    return fn(prepare(x, y, sw, job, seed), job, *args)


# ---- on the client ------------------------------------------------------------


class InProcess:
    """Chunks held and worked on in this process, in chunk order: the
    reference of a fit on a cluster over the same chunks."""

    def __init__(self, blocks):
        self.blocks = blocks  # [(x, y, sw)] numpy blocks, in chunk order
        self.chunks = None

    def describe(self, *settings):
        return [describe(x, y, sw, *settings, c)
                for c, (x, y, sw) in enumerate(self.blocks)]

    def prepare(self, job, seeds):
        self.job = job
        self.chunks = [prepare(x, y, sw, job, seed) for (x, y, sw), seed in zip(self.blocks, seeds)]

    def map(self, fn, per_chunk, *shared):
        return [None if args is None else fn(chunk, self.job, *args, *shared)
                for chunk, args in zip(self.chunks, per_chunk)]

    def release(self):
        self.chunks = None


def added_up(parts):
    """(grads, wloss, wsum) of raw sums added in chunk order; parts holds
    one (grads, wloss, wsum) or None per chunk."""
    grads = wloss = wsum = None
    for part in parts:
        if part is None:
            continue
        if grads is None:
            grads, wloss, wsum = part[0].copy(), part[1], part[2]
        else:
            grads += part[0]
            wloss += part[1]
            wsum += part[2]
    return grads, wloss, wsum


def objective(runner, net, n_chunks):
    """The L-BFGS objective over every row of every chunk:
    objective(params, grads) returns the loss and writes the gradient."""

    def loss_grad(params, grads):
        parts = runner.map(sums, [(None, _CHUNK_ROWS)] * n_chunks, params)
        total, wloss, wsum = added_up(parts)
        grads[:] = total
        return _engine.loss_grad_finish(net, params, grads, wloss, wsum)

    return loss_grad


def validation_measure(runner, model, net, n_chunks, params):
    """measure() for fastmlp._base._Validation: the score and loss of the
    current weights over the held-out rows of every chunk."""

    def measure():
        parts = [p for p in runner.map(validation_sums, [()] * n_chunks, params) if p is not None]
        wloss = wsum = 0.0
        for part in parts:
            wloss += part[0]
            wsum += part[1]
        loss = float(_engine.loss_grad_finish(net, params, None, wloss, wsum))
        scores = [p[2] for p in parts]
        if is_classifier(model):
            right = sum(s[0] for s in scores)
            return float(right / sum(s[1] for s in scores)), loss
        if any(s is None for s in scores):
            return float("nan"), loss
        return _r2(scores), loss

    return measure


def _r2(parts):
    """scikit-learn's r2_score (outputs averaged alike) from each chunk's
    (weight, mean, squared deviations, squared errors), merged in chunk
    order by the pairwise update of Chan, Golub and LeVeque."""
    total, mean, deviations, errors = parts[0]
    for w, m, d, e in parts[1:]:
        delta = m - mean
        merged = total + w
        mean = mean + delta * (w / merged)
        deviations = deviations + d + delta**2 * (total * w / merged)
        errors = errors + e
        total = merged
    r2 = np.ones_like(errors)
    spread = deviations != 0
    r2[spread] = 1 - errors[spread] / deviations[spread]
    r2[~spread & (errors != 0)] = 0.0
    return float(np.mean(r2))


class ChunkTrainer:
    """Epochs of a stochastic solver over the training rows of chunks, with
    the interface of fastmlp._engine.Trainer (run, and the state the fit
    loop reads and sets between calls).

    Each step adds the chunks' raw sums in chunk order and takes one
    optimizer step on them in C (fm_optimizer_step); the loss, the rules at
    the end of an epoch and the undoing of an interrupted or diverged epoch
    are the engine's (fm_train), step for step.

    Parameters
    ----------
    runner : InProcess or a cluster runner, with the chunks prepared
    model : the estimator (its settings)
    params : ndarray of shape (n_params,), INOUT
    optimizer : fastmlp._optim.StochasticOptimizer, INOUT
    sizes : training rows of each chunk
    batch_size : rows per step
    early_stopping, n_threads : as in the in-memory fit
    """

    def __init__(self, runner, model, params, optimizer, sizes, batch_size, early_stopping,
                 n_threads):
        self.runner, self.params, self.optimizer = runner, params, optimizer
        self.sizes = [int(n) for n in sizes]
        self.n = sum(self.sizes)
        self.batch_size = batch_size
        self.piece = min(_TRAIN_CHUNK_ROWS, batch_size)
        self.alpha = 0.0 if model.solver == "adamw" else float(model.alpha)
        self.weight_decay = float(model.alpha) if model.solver == "adamw" else 0.0
        self.clip_norm = float(model.clip_grad_norm or 0.0)
        self.n_weights = _engine.param_layout(model._units_from_coefs())[1][0][1]
        self.n_threads = n_threads
        self.shuffle = model.shuffle and model.solver != "rprop"
        self.random_state = model._random_state
        self.orders = [np.arange(n, dtype=np.int64) for n in self.sizes]
        self.tol, self.n_iter_no_change = model.tol, count_as_float(model.n_iter_no_change)
        self.watch_loss = not early_stopping
        self.t = model.t_
        self.best_loss = np.inf if early_stopping else model.best_loss_
        self.no_improvement = model._no_improvement_count
        self.step = 0

    @property
    def learning_rate(self):
        return self.optimizer.learning_rate

    @learning_rate.setter
    def learning_rate(self, value):
        self.optimizer.learning_rate = value

    @property
    def adam_t(self):
        return self.optimizer.t

    def _bound(self, c, j):
        return min(self.sizes[c], j * self.batch_size * self.sizes[c] // self.n)

    def _epoch(self):
        """One epoch; returns its loss."""
        if self.shuffle:
            for order in self.orders:
                _engine.shuffle(self.random_state, order)
        opt = self.optimizer
        total = 0.0
        for j in range(-(-self.n // self.batch_size)):
            requests, rows = [], 0
            for c, order in enumerate(self.orders):
                lo, hi = self._bound(c, j), self._bound(c, j + 1)
                rows += hi - lo
                whole = lo == 0 and hi == self.sizes[c] and not self.shuffle
                requests.append(None if hi == lo else (None if whole else order[lo:hi],
                                                       self.piece))
            if rows == 0:  # batches smaller than the number of chunks leave gaps
                continue
            grads, wloss, wsum = added_up(self.runner.map(sums, requests, self.params))
            sumsq, opt.t = _engine.optimizer_step(
                self.params, opt.state, grads, opt.solver, opt.learning_rate,
                n_weights=self.n_weights, alpha=self.alpha, S=wsum, momentum=opt.momentum,
                nesterov=opt.nesterov, beta_1=opt.beta_1, beta_2=opt.beta_2,
                epsilon=opt.epsilon, t=opt.t, weight_decay=self.weight_decay,
                clip_norm=self.clip_norm, n_threads=self.n_threads)
            self.step += 1
            total += (wloss / wsum + 0.5 * self.alpha * sumsq / wsum) * rows
        return total / self.n

    def _end_of_epoch(self, loss):
        """scikit-learn's rules after an epoch (fm_run in fastmlp.h)."""
        self.t += self.n
        opt = self.optimizer
        if self.watch_loss:
            self.no_improvement = self.no_improvement + 1 if loss > self.best_loss - self.tol else 0
            self.best_loss = min(self.best_loss, loss)
        if opt.solver == "sgd" and opt.lr_schedule == "invscaling":
            opt.learning_rate = opt.learning_rate_init / (self.t + 1) ** opt.power_t
        if self.watch_loss and self.no_improvement > self.n_iter_no_change:
            event = opt.trigger_stopping()
            if event == LR_REDUCED:
                self.no_improvement = 0
            return event
        return None

    # Python runs any SIGINT handler where the signal arrives: none held back
    signals_held = 0

    def run(self, max_epochs):
        """Train for up to max_epochs epochs; returns (losses, event,
        interrupted) as _engine.Trainer.run does."""
        losses, event = [], None
        opt = self.optimizer
        for _ in range(max_epochs):
            kept = (self.params.copy(), opt.state.copy(), opt.t, self.step)
            try:
                loss = self._epoch()
            except KeyboardInterrupt:
                self.params[:], opt.state[:], opt.t, self.step = kept
                return np.array(losses), event, True
            if not (np.isfinite(loss) and np.isfinite(self.params).all()):
                self.params[:], opt.state[:], opt.t, self.step = kept
                return np.array(losses), _engine.DIVERGED, False
            losses.append(loss)
            event = self._end_of_epoch(loss)
            if event is not None and event != LR_REDUCED:
                break
        return np.array(losses), event, False

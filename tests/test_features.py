"""fastmlp's additions to scikit-learn's MLP: each changes what it should,
and with its default changes nothing (test_parity.py holds the defaults to
scikit-learn)."""

import warnings

import numpy as np
import pytest
from sklearn.datasets import make_classification, make_regression
from sklearn.exceptions import ConvergenceWarning
from sklearn.model_selection import train_test_split

from fastmlp import MLPClassifier, MLPRegressor
from fastmlp.callbacks import Checkpoint, EpochRecord

import fastmlp


def quiet(model, *args, **kwargs):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        return model.fit(*args, **kwargs)


# ---- class_weight ---------------------------------------------------------


def imbalanced():
    X, y = make_classification(
        2000, 4, n_informative=2, n_redundant=0, weights=[0.95, 0.05], class_sep=0.3,
        flip_y=0.02, random_state=0,
    )
    return X, y


def test_class_weight_moves_the_boundary_toward_the_rare_class():
    X, y = imbalanced()
    params = dict(hidden_layer_sizes=(8,), max_iter=100, random_state=0)
    plain = quiet(MLPClassifier(**params), X, y)
    balanced = quiet(MLPClassifier(class_weight="balanced", **params), X, y)
    # more of the rare class is found, at the price of more false alarms
    assert (balanced.predict(X) == 1).sum() > 3 * (plain.predict(X) == 1).sum()
    recall = lambda m: ((m.predict(X) == 1) & (y == 1)).sum() / (y == 1).sum()  # noqa: E731
    assert recall(balanced) > recall(plain) + 0.25


def test_class_weight_is_sample_weight_by_class():
    X, y = imbalanced()
    params = dict(hidden_layer_sizes=(5,), max_iter=5, random_state=0)
    by_class = quiet(MLPClassifier(class_weight={0: 1.0, 1: 4.0}, **params), X, y)
    by_sample = quiet(MLPClassifier(**params), X, y, sample_weight=np.where(y == 1, 4.0, 1.0))
    for a, b in zip(by_class.coefs_, by_sample.coefs_):
        np.testing.assert_array_equal(a, b)
    both = quiet(
        MLPClassifier(class_weight={0: 1.0, 1: 2.0}, **params), X, y,
        sample_weight=np.full(len(y), 2.0),
    )
    by_product = quiet(MLPClassifier(**params), X, y, sample_weight=np.where(y == 1, 4.0, 2.0))
    for a, b in zip(both.coefs_, by_product.coefs_):
        np.testing.assert_array_equal(a, b)
    with pytest.raises(ValueError, match="not available to partial_fit"):
        MLPClassifier(class_weight="balanced").partial_fit(X, y, classes=[0, 1])


# ---- dropout ----------------------------------------------------------------


def test_dropout_narrows_the_train_validation_gap_on_small_noisy_data():
    X, y = make_classification(300, 20, n_informative=4, flip_y=0.3, random_state=3, class_sep=0.8)
    X_tr, X_va, y_tr, y_va = train_test_split(X, y, test_size=0.5, random_state=0)
    gaps = {}
    for rate in (0.0, 0.5):
        model = quiet(
            MLPClassifier(hidden_layer_sizes=(128, 128), dropout=rate, max_iter=100,
                          batch_size=32, random_state=0),
            X_tr, y_tr,
        )
        gaps[rate] = model.score(X_tr, y_tr) - model.score(X_va, y_va)
    assert gaps[0.0] > 0.3  # the plain network memorises the noise
    assert gaps[0.5] < gaps[0.0] - 0.1


def test_dropout_is_reproducible_thread_independent_and_off_at_prediction():
    X, y = make_classification(600, 100, random_state=0)
    params = dict(hidden_layer_sizes=(256, 128), dropout=[0.3, 0.1], max_iter=3,
                  batch_size=512, random_state=0)
    models = [quiet(MLPClassifier(n_threads=k, **params), X, y) for k in (1, 2, 3)]
    for other in models[1:]:
        for a, b in zip(models[0].coefs_, other.coefs_):
            np.testing.assert_array_equal(a, b)
    plain = quiet(MLPClassifier(**dict(params, dropout=0.0)), X, y)
    assert not np.array_equal(plain.coefs_[0], models[0].coefs_[0])
    # prediction is deterministic: no masks
    np.testing.assert_array_equal(models[0].predict_proba(X), models[0].predict_proba(X))
    with pytest.raises(ValueError, match="dropout needs a stochastic solver"):
        MLPClassifier(solver="lbfgs", dropout=0.2).fit(X, y)
    with pytest.raises(ValueError, match="2 rates for 1 hidden layers"):
        MLPClassifier(hidden_layer_sizes=(5,), dropout=[0.1, 0.2]).fit(X, y)


# ---- activations -------------------------------------------------------------


@pytest.mark.parametrize("activation", ["leaky_relu", "elu", "gelu", "softplus", "silu"])
def test_new_activations_learn(activation):
    X, y = make_regression(400, 5, noise=1.0, random_state=0)
    model = quiet(
        MLPRegressor(hidden_layer_sizes=(32,), activation=activation, solver="lbfgs",
                     max_iter=300, random_state=0),
        X, y / y.std(),
    )
    assert model.score(X, y / y.std()) > 0.95


def test_one_activation_per_layer():
    X, y = make_classification(300, 6, random_state=0)
    mixed = quiet(MLPClassifier(hidden_layer_sizes=(7, 5), activation=("tanh", "relu"),
                                max_iter=5, random_state=0), X, y)
    same = quiet(MLPClassifier(hidden_layer_sizes=(7, 5), activation=["tanh", "tanh"],
                               max_iter=5, random_state=0), X, y)
    as_string = quiet(MLPClassifier(hidden_layer_sizes=(7, 5), activation="tanh",
                                    max_iter=5, random_state=0), X, y)
    for a, b in zip(same.coefs_, as_string.coefs_):
        np.testing.assert_array_equal(a, b)
    assert not np.array_equal(mixed.coefs_[0], same.coefs_[0])
    with pytest.raises(ValueError, match="lists 1 activations for 2 hidden layers"):
        MLPClassifier(hidden_layer_sizes=(7, 5), activation=["tanh"]).fit(X, y)


# ---- validation sets, early stopping on loss ------------------------------------


def test_validation_set_is_watched_and_recorded():
    X, y = make_classification(600, 8, random_state=0)
    X_tr, X_va, y_tr, y_va = train_test_split(X, y, random_state=1)
    model = quiet(MLPClassifier(hidden_layer_sizes=(16,), max_iter=15, random_state=0),
                  X_tr, y_tr, X_val=X_va, y_val=y_va)
    assert len(model.validation_loss_curve_) == model.n_iter_ == 15
    assert model.validation_scores_ is None  # not early stopping
    stopped = quiet(MLPClassifier(hidden_layer_sizes=(16,), max_iter=200, early_stopping=True,
                                  random_state=0), X_tr, y_tr, X_val=X_va, y_val=y_va)
    assert len(stopped.validation_scores_) == stopped.n_iter_
    assert stopped.best_validation_score_ == max(stopped.validation_scores_)
    assert stopped.score(X_va, y_va) == pytest.approx(stopped.best_validation_score_)
    with pytest.raises(ValueError, match="give both or neither"):
        MLPClassifier().fit(X_tr, y_tr, X_val=X_va)


def test_early_stopping_on_loss_restores_the_best_weights():
    X, y = make_regression(300, 10, noise=20.0, random_state=0)
    X_tr, X_va, y_tr, y_va = train_test_split(X / 3, y / 100, random_state=0)
    model = quiet(
        MLPRegressor(hidden_layer_sizes=(128,), early_stopping=True, early_stopping_metric="loss",
                     learning_rate_init=0.01, max_iter=400, n_iter_no_change=20, random_state=0),
        X_tr, y_tr, X_val=X_va, y_val=y_va,
    )
    curve = model.validation_loss_curve_
    best = int(np.argmin(curve))
    assert best < len(curve) - 1  # it overfitted after its best epoch
    assert model.best_validation_loss_ == curve[best]
    # the model holds the weights of the best epoch: its validation loss (the
    # data's loss, without the L2 term) is that one
    residual = model.predict(X_va) - y_va
    assert 0.5 * np.mean(residual**2) == pytest.approx(curve[best], rel=1e-9)


# ---- callbacks ---------------------------------------------------------------------


def test_callbacks_see_every_epoch_and_can_stop(tmp_path):
    X, y = make_classification(400, 6, random_state=0)
    seen = []

    def watch(model, record):
        seen.append(record)
        return record.epoch == 7

    checkpoint = Checkpoint(tmp_path / "best.npz", monitor="loss")
    with warnings.catch_warnings():
        # a callback's stop is clean, and the checkpoint's saves do not warn
        # that its model's callbacks stay behind
        warnings.simplefilter("error")
        model = MLPClassifier(hidden_layer_sizes=(8,), max_iter=50, random_state=0,
                              callbacks=[watch, checkpoint]).fit(X, y)
    assert model.n_iter_ == 7 and [r.epoch for r in seen] == list(range(1, 8))
    assert all(isinstance(r, EpochRecord) and r.seconds >= 0 for r in seen)
    assert [r.loss for r in seen] == pytest.approx(model.loss_curve_)
    assert checkpoint.best_epoch == int(np.argmin(model.loss_curve_)) + 1
    saved = fastmlp.load(tmp_path / "best.npz")
    assert saved.n_iter_ == checkpoint.best_epoch


@pytest.mark.parametrize("call", ["fit", "partial_fit"])
def test_a_callback_cannot_train_its_own_model_but_may_train_another(call):
    X, y = make_classification(200, 6, random_state=0)
    other = MLPClassifier(hidden_layer_sizes=(3,), max_iter=2, random_state=0)

    def train(model, record):
        quiet(other, X, y)  # another model: allowed
        getattr(model, call)(X, y)

    model = MLPClassifier(hidden_layer_sizes=(8,), max_iter=50, random_state=0,
                          callbacks=[train])
    with pytest.raises(RuntimeError, match="cannot train its own model"):
        model.fit(X, y)
    # the first epoch stays trained, and nothing of the refused call happened
    assert model.n_iter_ == 1 and len(model.loss_curve_) == 1
    assert hasattr(other, "coefs_") and model.predict(X).shape == (200,)
    model.callbacks = None
    assert quiet(model, X, y).n_iter_ > 1  # the refusal left nothing behind


@pytest.mark.parametrize("new_max_iter", [2, 100])
def test_max_iter_set_by_a_callback_does_not_change_the_fit_under_way(new_max_iter):
    """As scikit-learn's loop over range(max_iter), fixed when it starts."""
    X, y = make_classification(200, 6, random_state=0)

    seen = []

    def change(model, record):
        seen.append(record.max_iter)
        model.set_params(max_iter=new_max_iter)

    model = MLPClassifier(hidden_layer_sizes=(8,), max_iter=5, tol=0, n_iter_no_change=1000,
                          random_state=0, callbacks=[change])
    with pytest.warns(ConvergenceWarning, match=r"Maximum iterations \(5\)"):
        model.fit(X, y)
    assert model.n_iter_ == 5 and model.max_iter == new_max_iter and seen == [5] * 5


# ---- starting weights ----------------------------------------------------------------


def test_starting_weights_are_used_exactly():
    X, y = make_regression(50, 3, random_state=0)
    rng = np.random.default_rng(0)
    coefs = [rng.standard_normal((3, 4)), rng.standard_normal((4, 1))]
    intercepts = [rng.standard_normal(4), rng.standard_normal(1)]
    model = quiet(MLPRegressor(hidden_layer_sizes=(4,), solver="sgd", learning_rate_init=1e-9,
                               max_iter=1, coefs_init=coefs, intercepts_init=intercepts,
                               momentum=0.0), X, y / 100)
    for got, given in zip(model.coefs_ + model.intercepts_, coefs + intercepts):
        np.testing.assert_allclose(got, given, atol=1e-7)
    with pytest.raises(ValueError, match=r"coefs_init\[0\] has shape \(3, 4\), the network needs \(3, 5\)"):
        MLPRegressor(hidden_layer_sizes=(5,), coefs_init=coefs).fit(X, y)


@pytest.mark.parametrize(
    "scheme,check",
    [
        ("glorot_uniform", lambda c, fi, fo: np.abs(c).max() <= np.sqrt(6 / (fi + fo))),
        ("he_uniform", lambda c, fi, fo: np.abs(c).max() <= np.sqrt(6 / fi)),
        ("he_normal", lambda c, fi, fo: abs(c.std() / np.sqrt(2 / fi) - 1) < 0.05),
        ("lecun_normal", lambda c, fi, fo: abs(c.std() / np.sqrt(1 / fi) - 1) < 0.05),
    ],
)
def test_weight_init_schemes(scheme, check):
    X, y = make_classification(50, 400, random_state=0)
    model = MLPClassifier(hidden_layer_sizes=(300,), weight_init=scheme, random_state=0)
    model.set_params(max_iter=1, learning_rate_init=1e-12)
    quiet(model, X, y)
    c = model.coefs_[0]
    assert check(c, 400, 300)
    assert np.allclose(model.intercepts_[0], 0, atol=1e-9)


# ---- optimizers and clipping ------------------------------------------------------------


def test_adamw_decays_weights_rather_than_penalising_the_loss():
    X, y = make_regression(300, 8, random_state=0)
    y = y / y.std()
    fit = lambda **kw: quiet(  # noqa: E731
        MLPRegressor(hidden_layer_sizes=(32,), max_iter=60, random_state=0, **kw), X, y
    )
    adamw, adam = fit(solver="adamw", alpha=0.5), fit(solver="adam", alpha=0.5)
    no_decay = fit(solver="adamw", alpha=0.0)
    plain_adam = fit(solver="adam", alpha=0.0)
    # without decay AdamW is Adam; with it, it shrinks the weights differently
    for a, b in zip(no_decay.coefs_, plain_adam.coefs_):
        np.testing.assert_array_equal(a, b)
    norm = lambda m: sum((c**2).sum() for c in m.coefs_)  # noqa: E731
    assert norm(adamw) < norm(no_decay)
    assert not np.allclose(adamw.coefs_[0], adam.coefs_[0])
    # its reported loss has no L2 term
    assert adamw.loss_ == pytest.approx(0.5 * np.mean((adamw.predict(X) - y) ** 2), rel=0.5)


def test_rprop_trains_full_batch():
    X, y = make_classification(400, 8, random_state=0)
    model = quiet(MLPClassifier(hidden_layer_sizes=(16,), solver="rprop",
                                learning_rate_init=0.01, max_iter=100, random_state=0), X, y)
    assert model.loss_curve_[-1] < 0.5 * model.loss_curve_[0]
    assert model.score(X, y) > 0.9
    assert model.t_ == 400 * model.n_iter_


def test_clip_grad_norm_limits_each_step():
    X, y = make_regression(200, 5, random_state=0)
    params = dict(hidden_layer_sizes=(8,), solver="sgd", momentum=0.0, max_iter=1,
                  batch_size=200, random_state=0, learning_rate_init=0.1, shuffle=False)
    free = quiet(MLPRegressor(**params), X, y)
    clipped = quiet(MLPRegressor(clip_grad_norm=1e-3, **params), X, y)
    start = quiet(MLPRegressor(**dict(params, learning_rate_init=1e-300)), X, y)
    step = lambda m: np.sqrt(sum(((a - b) ** 2).sum() for a, b in zip(  # noqa: E731
        m.coefs_ + m.intercepts_, start.coefs_ + start.intercepts_)))
    # one SGD step moves the weights by learning_rate x gradient norm
    assert step(clipped) == pytest.approx(0.1 * 1e-3, rel=1e-6)
    assert step(free) > 100 * step(clipped)
    # an infinite bound clips nothing
    unbounded = quiet(MLPRegressor(clip_grad_norm=np.inf, **params), X, y)
    for a, b in zip(unbounded.coefs_ + unbounded.intercepts_, free.coefs_ + free.intercepts_):
        np.testing.assert_array_equal(a, b)

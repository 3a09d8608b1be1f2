"""Converting fitted models between fastmlp and scikit-learn.

Both directions copy the weights and every fitted attribute, and the
stochastic solvers' state, so that predictions agree (to rounding: the two
libraries sum matrix products in different orders) and partial_fit carries
on as it would have in the original library.
"""

import copy
from typing import Any

import numpy as np
import sklearn.neural_network as sk

from fastmlp._optim import StochasticOptimizer

_FITTED = (
    "n_features_in_", "feature_names_in_", "n_outputs_", "n_layers_", "out_activation_",
    "n_iter_", "t_", "loss_", "best_loss_", "loss_curve_", "validation_scores_",
    "best_validation_score_", "classes_", "_label_binarizer", "_no_improvement_count",
)
SKLEARN_ACTIVATIONS = ("identity", "logistic", "tanh", "relu")


def qualified_name(obj):
    """The public dotted name of obj's class, private modules left out
    (fastmlp.MLPClassifier, sklearn.neural_network.MLPClassifier); builtins
    by their bare name."""
    cls = type(obj)
    parts = [p for p in cls.__module__.split(".") if not p.startswith("_") and p != "builtins"]
    return ".".join(parts + [cls.__qualname__])


def check_fastmlp_model(model, action):
    """TypeError unless model is a fastmlp estimator; a scikit-learn MLP is
    pointed to from_sklearn."""
    from fastmlp._mlp import MLPClassifier, MLPRegressor

    if not isinstance(model, (MLPClassifier, MLPRegressor)):
        hint = (", scikit-learn's: convert it with fastmlp.from_sklearn first"
                if isinstance(model, (sk.MLPClassifier, sk.MLPRegressor)) else "")
        raise TypeError(
            f"{action} takes a fastmlp MLPClassifier or MLPRegressor, got "
            f"{qualified_name(model)}{hint}"
        )


def _copy_fitted(source, target):
    for name in _FITTED:
        if hasattr(source, name):
            setattr(target, name, copy.deepcopy(getattr(source, name)))
    target.coefs_ = [np.array(c) for c in source.coefs_]
    target.intercepts_ = [np.array(b) for b in source.intercepts_]


def from_sklearn(model: Any) -> Any:
    """A fastmlp estimator equal to a fitted scikit-learn MLPClassifier or
    MLPRegressor: the same parameters, weights and fitted attributes.

    Parameters
    ----------
    model : sklearn.neural_network.MLPClassifier or MLPRegressor
        A fitted model; its optimizer state comes along, so partial_fit
        carries on as it would have.

    Returns
    -------
    fastmlp.MLPClassifier or fastmlp.MLPRegressor
    """
    from fastmlp._mlp import MLPClassifier, MLPRegressor

    kinds = {sk.MLPClassifier: MLPClassifier, sk.MLPRegressor: MLPRegressor}
    if type(model) not in kinds:
        ours = isinstance(model, (MLPClassifier, MLPRegressor))
        raise TypeError(
            f"from_sklearn takes scikit-learn's MLPClassifier or MLPRegressor, got "
            f"{qualified_name(model)}"
            + (", which is a fastmlp model already" if ours else "")
        )
    if not hasattr(model, "coefs_"):
        raise ValueError("from_sklearn needs a fitted model")
    ours = kinds[type(model)](**model.get_params(deep=False))
    _copy_fitted(model, ours)
    if hasattr(model, "_best_coefs"):
        ours._best_params = np.concatenate(
            [np.ravel(a) for a in model._best_coefs + model._best_intercepts]
        ).astype(ours.coefs_[0].dtype)
    theirs = getattr(model, "_optimizer", None)
    if theirs is not None:
        ours._optimizer = _optimizer_from_sklearn(theirs, ours.coefs_ + ours.intercepts_)
    # one buffer behind the weights, as after a fit: predictions take the
    # fast path
    ours._load_params(ours._stored_dtype())
    return ours


def _flat(arrays, dtype):
    return np.concatenate([np.ravel(a) for a in arrays]).astype(dtype)


def _optimizer_from_sklearn(theirs, params):
    dtype = params[0].dtype
    n = sum(p.size for p in params)
    adam = hasattr(theirs, "ms")
    ours = StochasticOptimizer(
        "adam" if adam else "sgd",
        n,
        dtype,
        learning_rate_init=theirs.learning_rate_init,
        lr_schedule=getattr(theirs, "lr_schedule", "constant"),
        momentum=getattr(theirs, "momentum", 0.9),
        nesterov=getattr(theirs, "nesterov", True),
        power_t=getattr(theirs, "power_t", 0.5),
        beta_1=getattr(theirs, "beta_1", 0.9),
        beta_2=getattr(theirs, "beta_2", 0.999),
        epsilon=getattr(theirs, "epsilon", 1e-8),
    )
    if adam:
        ours.t = theirs.t
        ours.state[:] = np.concatenate([_flat(theirs.ms, dtype), _flat(theirs.vs, dtype)])
    else:
        ours.learning_rate = float(theirs.learning_rate)
        ours.state[:] = _flat(theirs.velocities, dtype)
    return ours


def to_sklearn(model: Any) -> Any:
    """The scikit-learn MLPClassifier or MLPRegressor equal to a fitted
    fastmlp model. Raises ValueError naming what scikit-learn cannot express
    (activations it lacks, an output activation other than its own, dropout,
    class weights, gradient clipping, early stopping on the loss, the AdamW
    and iRprop- solvers). What only shapes a fresh fit's start or its side
    effects (weight_init, coefs_init, intercepts_init, callbacks, n_threads)
    is left behind."""
    from fastmlp._mlp import MLPClassifier

    model._check_fitted()
    params = model.get_params(deep=False)
    problems = []
    activation = params["activation"]
    if not isinstance(activation, str):
        names = set(activation)
        if len(names) > 1:
            problems.append(f"activation={activation!r} (one per layer)")
        activation = names.pop() if names else "relu"
    if activation not in SKLEARN_ACTIVATIONS:
        problems.append(f"activation={activation!r}")
    if params["solver"] not in ("lbfgs", "sgd", "adam"):
        problems.append(f"solver={params['solver']!r}")
    if params["dropout"] and any(np.atleast_1d(params["dropout"])):
        problems.append(f"dropout={params['dropout']!r}")
    if params.get("class_weight") is not None:
        problems.append(f"class_weight={params['class_weight']!r}")
    if params["clip_grad_norm"] is not None:
        problems.append(f"clip_grad_norm={params['clip_grad_norm']!r}")
    if params["early_stopping"] and params["early_stopping_metric"] != "score":
        problems.append(f"early_stopping_metric={params['early_stopping_metric']!r}")
    if params.get("out_activation") is not None and params["out_activation"] != {
        "squared_error": "identity", "poisson": "exp"
    }[params["loss"]]:
        problems.append(f"out_activation={params['out_activation']!r}")
    if problems:
        raise ValueError("scikit-learn's MLP cannot express " + ", ".join(problems))
    cls = sk.MLPClassifier if isinstance(model, MLPClassifier) else sk.MLPRegressor
    kept = cls().get_params()
    theirs = cls(**{k: v for k, v in params.items() if k in kept})
    theirs.set_params(activation=activation)
    _copy_fitted(model, theirs)
    for name in ("validation_loss_curve_", "best_validation_loss_"):
        theirs.__dict__.pop(name, None)
    theirs._best_coefs = [c.copy() for c in theirs.coefs_]
    theirs._best_intercepts = [b.copy() for b in theirs.intercepts_]
    ours_opt = getattr(model, "_optimizer", None)
    if ours_opt is not None and ours_opt.solver in ("sgd", "adam"):
        converted = _optimizer_to_sklearn(ours_opt, theirs.coefs_ + theirs.intercepts_)
        if converted is not None:
            theirs._optimizer = converted
    return theirs


def _unflat(flat, like):
    out, start = [], 0
    for a in like:
        out.append(flat[start : start + a.size].reshape(a.shape).copy())
        start += a.size
    return out


def _optimizer_to_sklearn(ours, params):
    """scikit-learn's optimizer object holding our state, or None when its
    (private) optimizer classes are not where they were: its partial_fit
    then starts a new optimizer."""
    try:
        from sklearn.neural_network._stochastic_optimizers import AdamOptimizer, SGDOptimizer
    except ImportError:
        return None
    n = sum(p.size for p in params)
    if ours.solver == "adam":
        theirs = AdamOptimizer(params, ours.learning_rate_init, ours.beta_1, ours.beta_2,
                               ours.epsilon)
        theirs.t = ours.t
        theirs.ms = _unflat(ours.state[:n], params)
        theirs.vs = _unflat(ours.state[n:], params)
    else:
        theirs = SGDOptimizer(params, ours.learning_rate_init, ours.lr_schedule, ours.momentum,
                              ours.nesterov, ours.power_t)
        theirs.learning_rate = ours.learning_rate
        theirs.velocities = _unflat(ours.state, params)
    return theirs

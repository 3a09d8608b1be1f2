"""Saving and loading models in a format that cannot run code.

A saved model is a numpy .npz archive (a zip of .npy arrays) read back with
allow_pickle=False, so loading never executes anything from the file:

- "metadata": a JSON document, stored as a unicode array, with the format
  name and version, the estimator class, its constructor parameters (a
  class_weight dict as a list of (label, weight) pairs, since JSON keys are
  strings), the scalar fitted attributes, and a SHA-256 digest of every
  array;
- "coef_0" ... "coef_{L-1}", "intercept_0" ... : the weights and biases;
- "classes" (classifiers), "feature_names_in" (when fitted with names),
  "loss_curve" and "validation_scores" (stochastic solvers), and
  "optimizer_state" (so that partial_fit continues where it stopped).

Loading checks the format and version, the digest of every array, every
shape and dtype against the metadata and against each other, the
parameters with the estimator's own validation and the optimizer's
settings against their ranges, and refuses anything else with a ValueError
that says what was wrong. The digests detect damage, not deliberate
forgery (anyone can recompute them); what a forged file can do is bounded
by these checks, and never includes running code.
"""

import hashlib
import json
from typing import Any, BinaryIO, NoReturn, Union
import math
import os
import warnings
import zipfile

import numpy as np
from sklearn.preprocessing import LabelBinarizer

FORMAT = "fastmlp-model"
FORMAT_VERSION = 1

_SCALARS = ("n_features_in_", "n_outputs_", "n_layers_", "out_activation_", "n_iter_", "t_")
# fitted attributes a model may or may not have, depending on its solver
_FLOATS = ("loss_", "best_loss_", "best_validation_score_", "best_validation_loss_")
_LISTS = ("loss_curve_", "validation_scores_", "validation_loss_curve_")


def _to_json(value):
    """JSON-ready parameter values (sequences as lists, numpy arrays and
    scalars as Python's)."""
    if isinstance(value, (tuple, list)):
        return [_to_json(v) for v in value]
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, np.generic):
        return value.item()
    return value


def _float_or_none(value):
    return None if value is None else float(value)


def _digest(array):
    h = hashlib.sha256()
    h.update(str(array.dtype).encode())
    h.update(str(array.shape).encode())
    h.update(np.ascontiguousarray(array).tobytes())
    return h.hexdigest()


def save(model: Any, file: Union[str, "os.PathLike[str]", BinaryIO]) -> None:
    """Write a fitted fastmlp model to a file, for fastmlp.load.

    The file is an .npz archive of the arrays with JSON metadata, from which
    loading never runs code. (``model.save(file)`` does the same.)
    Callbacks, being code, are not saved: the loaded model has
    callbacks=None, and saving a model that has callbacks warns so.

    Parameters
    ----------
    model : fastmlp.MLPClassifier or fastmlp.MLPRegressor
        A fitted model.
    file : str, os.PathLike or binary file object
        Where to write; a path's file is created or replaced.

    Raises
    ------
    TypeError
        For anything but a fastmlp estimator.
    ValueError
        For a model that is not fitted, that holds classes of an object
        dtype, or whose random_state is a RandomState instance (which the
        format cannot hold; pickle can).
    """
    write(model, file)
    warn_if_callbacks(model, stacklevel=3)


def warn_if_callbacks(model, stacklevel):
    """Warn, at the caller `stacklevel` frames up, that a saved model's
    callbacks stayed behind."""
    if model.callbacks:
        warnings.warn(
            "callbacks are code, which fastmlp's format does not hold: they were not saved, "
            "and the loaded model has callbacks=None (set them again with set_params)",
            UserWarning,
            stacklevel=stacklevel,
        )


def write(model, file):
    """save() without its warning about callbacks (Checkpoint saves the
    model it is a callback of)."""
    from fastmlp._interop import check_fastmlp_model

    check_fastmlp_model(model, "save")
    model._check_fitted()
    params = model.get_params(deep=False)
    if isinstance(params["random_state"], np.random.RandomState):
        raise ValueError(
            "random_state is a RandomState instance, which this format cannot hold; set an "
            "int or None, or use pickle"
        )
    # callbacks are code, which the format does not hold: the file has none
    params["callbacks"] = None
    class_weight = params.get("class_weight")
    class_weight_pairs = None
    if isinstance(class_weight, dict):
        class_weight_pairs = [[_to_json(k), float(w)] for k, w in class_weight.items()]
        if any(not isinstance(k, (bool, int, float, str)) for k, _ in class_weight_pairs):
            raise ValueError(
                "class_weight has labels other than numbers and strings, which this format "
                "cannot hold; use pickle"
            )
        params["class_weight"] = None
    dtype = np.asarray(model.coefs_[0]).dtype
    arrays = {}
    for i, (c, b) in enumerate(zip(model.coefs_, model.intercepts_)):
        arrays[f"coef_{i}"] = np.ascontiguousarray(c, dtype=dtype)
        arrays[f"intercept_{i}"] = np.ascontiguousarray(b, dtype=dtype)
    if hasattr(model, "classes_"):
        classes = np.asarray(model.classes_)
        if classes.dtype.kind not in "biufU":
            raise ValueError(
                f"classes_ of dtype {classes.dtype} cannot be saved in this format (it holds "
                "numbers and strings only); use pickle"
            )
        if np.unique(classes).size != classes.size:
            # labels that differ only in trailing NUL characters, which
            # numpy's strings drop: load could not rebuild the encoding
            raise ValueError(
                f"classes_ names a class twice ({classes.tolist()}), which this format "
                "cannot hold; use pickle"
            )
        arrays["classes"] = classes
    if hasattr(model, "feature_names_in_"):
        arrays["feature_names_in"] = np.asarray(model.feature_names_in_, dtype=str)
    lists = {}
    for key in _LISTS:
        if hasattr(model, key):
            value = getattr(model, key)
            lists[key] = None if value is None else "array"
            if value is not None:
                arrays[key] = np.asarray(value, dtype=np.float64)
    optimizer = getattr(model, "_optimizer", None)
    if optimizer is not None:
        arrays["optimizer_state"] = np.ascontiguousarray(optimizer.state)

    meta = {
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        "estimator": type(model).__name__,
        "dtype": str(dtype),
        "params": {k: _to_json(v) for k, v in params.items()},
        "class_weight_pairs": class_weight_pairs,
        "fitted": {k: _to_json(getattr(model, k)) for k in _SCALARS},
        "floats": {k: _float_or_none(getattr(model, k)) for k in _FLOATS if hasattr(model, k)},
        "lists": lists,
        "no_improvement_count": int(getattr(model, "_no_improvement_count", 0)),
        "dropout_state": [int(model._dropout_seed), int(model._dropout_step)]
        if hasattr(model, "_dropout_seed")
        else None,
        "label_type": getattr(getattr(model, "_label_binarizer", None), "y_type_", None),
        "optimizer": None
        if optimizer is None
        else {
            "solver": optimizer.solver,
            "learning_rate_init": float(optimizer.learning_rate_init),
            "learning_rate": float(optimizer.learning_rate),
            "lr_schedule": optimizer.lr_schedule,
            "momentum": float(optimizer.momentum),
            "nesterov": bool(optimizer.nesterov),
            "power_t": float(optimizer.power_t),
            "beta_1": float(optimizer.beta_1),
            "beta_2": float(optimizer.beta_2),
            "epsilon": float(optimizer.epsilon),
            "t": int(optimizer.t),
        },
        "digests": {name: _digest(a) for name, a in arrays.items()},
    }
    members: dict[str, Any] = {"metadata": np.array(json.dumps(meta, allow_nan=True,
                                                                sort_keys=True)), **arrays}
    if isinstance(file, (str, os.PathLike)):
        with open(file, "wb") as f:
            np.savez(f, **members)
    else:
        np.savez(file, **members)


# How files that are not .npz archives begin, and what to call them.
_FOREIGN_KINDS = (
    (b"\x93NUMPY", "a single numpy array (.npy), not the .npz archive fastmlp.save writes"),
    (b"\x80", "a pickle; fastmlp.load reads only what fastmlp.save writes (a model pickled "
     "with pickle or joblib loads with those)"),
)


def _first_bytes(file, name):
    """The first bytes of a path or a binary file object, which is left
    where it was; OSError (a missing file, a directory) passes through."""
    if isinstance(file, (str, os.PathLike)):
        with open(file, "rb") as f:
            return f.read(8)
    position = file.tell()
    head = file.read(8)
    file.seek(position)
    if not isinstance(head, bytes):
        raise ValueError(f"{name} is open in text mode; open it in binary mode ('rb')")
    return head


class _Reader:
    """The arrays and metadata of a saved model, checked as they are read."""

    def __init__(self, file):
        self.name = os.fspath(file) if isinstance(file, (str, os.PathLike)) else "the file"
        head = _first_bytes(file, self.name)
        if not head.startswith(b"PK"):  # every zip archive, .npz included
            kind = next((kind for magic, kind in _FOREIGN_KINDS if head.startswith(magic)),
                        "an empty file" if not head else "not an .npz archive")
            raise ValueError(f"{self.name} is not a fastmlp model: it is {kind}")
        try:
            with np.load(file, allow_pickle=False) as archive:
                # save() stores members uncompressed, so that reading one
                # can never take more memory than the file's size
                if any(info.compress_type != zipfile.ZIP_STORED
                       for info in archive.zip.infolist()):
                    raise ValueError("it has compressed members, which fastmlp never writes")
                self.arrays = {name: archive[name] for name in archive.files}
        except Exception as exc:  # numpy and zipfile raise many kinds for a damaged file
            # numpy's advice to load pickled members with allow_pickle does
            # not apply: fastmlp never writes any, and load has no such option
            reason = ("a member holds pickled objects, which fastmlp never writes"
                      if "allow_pickle" in str(exc) else str(exc))
            raise ValueError(
                f"{self.name} is not a readable fastmlp model (truncated or damaged): {reason}"
            ) from None
        if "metadata" not in self.arrays:
            raise ValueError(
                f"{self.name} is not a fastmlp model: an .npz archive with no fastmlp metadata"
            )
        try:
            self.meta = json.loads(str(self.arrays.pop("metadata")))
        except (ValueError, TypeError) as exc:
            raise ValueError(f"{self.name}: unreadable metadata ({exc})") from None
        if not isinstance(self.meta, dict) or self.meta.get("format") != FORMAT:
            raise ValueError(f"{self.name} is not a fastmlp model file")
        version = self.meta.get("format_version")
        if not isinstance(version, int) or version < 1:
            raise ValueError(f"{self.name}: invalid format version {version!r}")
        if version > FORMAT_VERSION:
            raise ValueError(
                f"{self.name} was written in format {version} by a newer fastmlp; this version "
                f"reads format {FORMAT_VERSION} and older. Upgrade fastmlp to load it."
            )
        digests = self.meta.get("digests")
        if not isinstance(digests, dict) or set(digests) != set(self.arrays):
            raise ValueError(f"{self.name}: the arrays do not match the metadata's list")
        for name, array in self.arrays.items():
            if array.dtype.kind not in "biufU" or _digest(array) != digests[name]:
                raise ValueError(f"{self.name}: array {name!r} was altered or damaged")

    def fail(self, what: str) -> NoReturn:
        raise ValueError(f"{self.name}: {what}")

    def fitted(self, key, kind):
        section = self.meta.get("fitted")
        value = section.get(key) if isinstance(section, dict) else None
        if type(value) is not kind:
            self.fail(f"fitted attribute {key} is missing or not of type {kind.__name__}")
        return value


def load(file: Union[str, "os.PathLike[str]", BinaryIO]) -> Any:
    """Read a model written by fastmlp.save (or ``model.save``).

    Nothing in the file is run: every array is read without pickle and
    checked against the metadata's shapes, dtypes and digests.

    Parameters
    ----------
    file : str, os.PathLike or binary file object
        The saved model.

    Returns
    -------
    fastmlp.MLPClassifier or fastmlp.MLPRegressor
        The fitted model, as it was saved (with callbacks=None).

    Raises
    ------
    OSError
        When the file cannot be opened (FileNotFoundError for a missing one).
    ValueError
        For a file that is not a fastmlp model (a pickle, a text file,
        another archive) or one that is truncated, tampered with,
        inconsistent, or written by a newer format version.
    """
    from fastmlp._mlp import MLPClassifier, MLPRegressor

    r = _Reader(file)
    cls = {"MLPClassifier": MLPClassifier, "MLPRegressor": MLPRegressor}.get(
        r.meta.get("estimator")
    )
    if cls is None:
        r.fail(f"unknown estimator {r.meta.get('estimator')!r}")
    params = r.meta.get("params")
    if not isinstance(params, dict) or set(params) != set(cls().get_params()):
        r.fail("the parameters do not match the estimator's")
    if isinstance(params.get("hidden_layer_sizes"), list):
        params["hidden_layer_sizes"] = tuple(params["hidden_layer_sizes"])
    pairs = r.meta.get("class_weight_pairs")
    if pairs is not None:
        if cls is not MLPClassifier or not (
            isinstance(pairs, list)
            and all(isinstance(p, list) and len(p) == 2 and type(p[1]) in (int, float)
                    for p in pairs)
        ):
            r.fail("invalid class weights")
        try:
            params["class_weight"] = {label: weight for label, weight in pairs}
        except TypeError:
            r.fail("invalid class weights")
    model = cls(**params)
    from fastmlp._params import validate_parameters

    validate_parameters(model, model._parameter_constraints)

    dtype_name = r.meta.get("dtype")
    if dtype_name not in ("float32", "float64"):
        r.fail(f"weights of dtype {dtype_name!r}")
    dtype = np.dtype(dtype_name)
    n_layers = r.fitted("n_layers_", int)
    if not 2 <= n_layers <= len(r.arrays):
        r.fail(f"{n_layers} layers")
    coefs: list[np.ndarray] = []
    intercepts: list[np.ndarray] = []
    for i in range(n_layers - 1):
        c, b = r.arrays.get(f"coef_{i}"), r.arrays.get(f"intercept_{i}")
        if c is None or b is None:
            r.fail(f"layer {i}'s weights are missing")
        if c.dtype != dtype or b.dtype != dtype or c.ndim != 2 or b.shape != (c.shape[1],):
            r.fail(f"layer {i}'s weights have the wrong shape or dtype")
        if coefs and coefs[-1].shape[1] != c.shape[0]:
            r.fail(f"layer {i}'s weights do not follow layer {i - 1}'s")
        if not (np.isfinite(c).all() and np.isfinite(b).all()):
            r.fail(f"layer {i}'s weights are not finite")
        coefs.append(c)
        intercepts.append(b)
    n_features = r.fitted("n_features_in_", int)
    n_outputs = r.fitted("n_outputs_", int)
    if coefs[0].shape[0] != n_features or coefs[-1].shape[1] != n_outputs:
        r.fail("the weights do not match n_features_in_ and n_outputs_")
    out_activation = r.fitted("out_activation_", str)
    if out_activation not in ("identity", "logistic", "tanh", "relu", "exp", "softmax"):
        r.fail(f"unknown output activation {out_activation!r}")

    model.coefs_, model.intercepts_ = coefs, intercepts
    model.n_features_in_, model.n_outputs_, model.n_layers_ = n_features, n_outputs, n_layers
    model.out_activation_ = out_activation
    model.n_iter_ = r.fitted("n_iter_", int)
    model.t_ = r.fitted("t_", int)
    if model.n_iter_ < 0 or model.t_ < 0:
        r.fail("negative n_iter_ or t_")
    floats, lists = r.meta.get("floats"), r.meta.get("lists")
    if not isinstance(floats, dict) or not set(floats) <= set(_FLOATS):
        r.fail("invalid fitted numbers")
    for key, value in floats.items():
        if value is not None and type(value) not in (int, float):
            r.fail(f"{key} is not a number")
        setattr(model, key, None if value is None else np.float64(value))
    if not isinstance(lists, dict) or not set(lists) <= set(_LISTS):
        r.fail("invalid fitted lists")
    for key, kind in lists.items():
        if kind is None:
            setattr(model, key, None)
        elif kind == "array" and key in r.arrays and r.arrays[key].ndim == 1:
            setattr(model, key, [np.float64(v) for v in r.arrays[key]])
        else:
            r.fail(f"{key} is missing")
    count = r.meta.get("no_improvement_count")
    if type(count) is not int or count < 0:
        r.fail("invalid no-improvement count")
    model._no_improvement_count = count
    dropout_state = r.meta.get("dropout_state")
    if dropout_state is not None:
        if not (isinstance(dropout_state, list) and len(dropout_state) == 2
                and all(type(v) is int and 0 <= v < 2**63 for v in dropout_state)):
            r.fail("invalid dropout state")
        model._dropout_seed, model._dropout_step = dropout_state
    if "feature_names_in" in r.arrays:
        names = r.arrays["feature_names_in"]
        if names.shape != (n_features,):
            r.fail("feature_names_in has the wrong length")
        model.feature_names_in_ = names.astype(object)

    if cls is MLPClassifier:
        _restore_labels(r, model, n_outputs)
    _restore_optimizer(r, model)
    # As after a fit with early stopping, the best weights are the weights.
    model._best_params = model._load_params(dtype)
    return model


def _restore_labels(r, model, n_outputs):
    classes = r.arrays.get("classes")
    label_type = r.meta.get("label_type")
    if classes is None or classes.ndim != 1 or label_type not in (
        "binary",
        "multiclass",
        "multilabel-indicator",
    ):
        r.fail("the classifier's classes are missing or invalid")
    expected = 1 if label_type == "binary" else len(classes)
    if n_outputs != expected or (label_type == "binary" and len(classes) > 2):
        r.fail(f"{len(classes)} classes ({label_type}) do not fit {n_outputs} outputs")
    if label_type == "multilabel-indicator" and not np.array_equal(classes, np.arange(n_outputs)):
        r.fail("multilabel classes must be 0 .. n_outputs - 1")
    binarizer = LabelBinarizer()
    if label_type == "multilabel-indicator":
        binarizer.fit(np.vstack([np.zeros(n_outputs, int), np.ones(n_outputs, int)]))
    else:
        binarizer.fit(classes)
    if binarizer.y_type_ != label_type or not np.array_equal(binarizer.classes_, classes):
        r.fail("the classes do not rebuild their label encoding")
    model._label_binarizer = binarizer
    model.classes_ = binarizer.classes_


def _restore_optimizer(r, model):
    from fastmlp._optim import StochasticOptimizer

    settings = r.meta.get("optimizer")
    state = r.arrays.get("optimizer_state")
    if settings is None:
        if state is not None:
            r.fail("optimizer state without its settings")
        return
    if not isinstance(settings, dict) or state is None:
        r.fail("optimizer settings without their state")
    n_params = sum(c.size + b.size for c, b in zip(model.coefs_, model.intercepts_))
    solver = settings.get("solver")
    if solver not in ("sgd", "adam", "adamw", "rprop") or state.dtype != model.coefs_[0].dtype:
        r.fail("invalid optimizer state")
    if state.shape != ((1 if solver == "sgd" else 2) * n_params,) or not np.isfinite(state).all():
        r.fail("the optimizer state does not fit the weights")
    try:
        optimizer = StochasticOptimizer(
            solver,
            n_params,
            state.dtype,
            learning_rate_init=float(settings["learning_rate_init"]),
            lr_schedule=str(settings["lr_schedule"]),
            momentum=float(settings["momentum"]),
            nesterov=bool(settings["nesterov"]),
            power_t=float(settings["power_t"]),
            beta_1=float(settings["beta_1"]),
            beta_2=float(settings["beta_2"]),
            epsilon=float(settings["epsilon"]),
        )
        optimizer.learning_rate = float(settings["learning_rate"])
        optimizer.t = int(settings["t"])
    except (KeyError, TypeError, ValueError) as exc:
        r.fail(f"invalid optimizer settings ({exc})")
    in_range = (
        optimizer.lr_schedule in ("constant", "invscaling", "adaptive")
        and all(
            math.isfinite(v)
            for v in (optimizer.learning_rate, optimizer.learning_rate_init, optimizer.epsilon,
                      optimizer.power_t)
        )
        and optimizer.learning_rate >= 0
        and optimizer.learning_rate_init > 0
        and optimizer.epsilon > 0
        and optimizer.power_t >= 0
        and 0 <= optimizer.momentum <= 1
        and 0 <= optimizer.beta_1 < 1
        and 0 <= optimizer.beta_2 < 1
        and 0 <= optimizer.t < 2**63
    )
    if not in_range:
        r.fail("optimizer settings out of range")
    optimizer.state[:] = state
    model._optimizer = optimizer

"""Checks of constructor parameters, run at the start of fit and partial_fit.

Each estimator declares a table mapping a parameter name to the constraints
its value may satisfy; a value that satisfies none raises
InvalidParameterError naming the parameter, the accepted values and the value
received, before any data is looked at.
"""

from numbers import Integral, Real

import numpy as np

__all__ = [
    "InvalidParameterError",
    "Interval",
    "Options",
    "count_as_float",
    "validate_parameters",
]


def count_as_float(n):
    """A count (an int, or inf) as a float: one too large for a float, which
    no loop reaches, is inf."""
    return float(n) if n < 2**53 else float("inf")


class InvalidParameterError(ValueError, TypeError):
    """A constructor parameter has a value of the wrong type or out of range.

    It derives from both ValueError and TypeError, so code written for
    scikit-learn's estimators catches it the same way.
    """


class Interval:
    """Numbers of `kind` (Integral or Real) between `low` and `high`.

    closed is one of "left", "right", "both", "neither"; None bounds are
    unbounded.
    """

    def __init__(self, kind, low, high, closed):
        self.kind, self.low, self.high, self.closed = kind, low, high, closed

    def accepts(self, value):
        if isinstance(value, (bool, np.bool_)) or not isinstance(value, self.kind):
            return False
        if value != value:  # NaN (without asking numpy, which overflows on huge ints)
            return False
        if self.kind is Real and not isinstance(value, float):
            try:
                float(value)
            except OverflowError:  # an int beyond any float: no float in range
                return False
        # a missing bound is an infinite one, open unless `closed` says not
        low = -np.inf if self.low is None else self.low
        high = np.inf if self.high is None else self.high
        if value < low or (value == low and self.closed not in ("left", "both")):
            return False
        if value > high or (value == high and self.closed not in ("right", "both")):
            return False
        return True

    def __str__(self):
        noun = "an int" if self.kind is Integral else "a float"
        # bounds written in the kind of number asked for: [0.0, 1.0) for floats
        bound = int if self.kind is Integral else float
        lo = "-inf" if self.low is None else bound(self.low)
        hi = "inf" if self.high is None else bound(self.high)
        lb = "[" if self.closed in ("left", "both") and self.low is not None else "("
        rb = "]" if self.closed in ("right", "both") and self.high is not None else ")"
        return f"{noun} in the range {lb}{lo}, {hi}{rb}"


class Options:
    """One of a fixed set of values: strings, or special numbers such as inf."""

    def __init__(self, *values):
        self.values = values

    def accepts(self, value):
        if isinstance(value, (bool, np.bool_)) or not isinstance(value, (str, Real)):
            return False
        return any(
            isinstance(value, str) == isinstance(v, str) and value == v for v in self.values
        )

    def __str__(self):
        return "one of {" + ", ".join(repr(v) for v in self.values) + "}"


class _Kind:
    """A named family of values checked by a predicate."""

    def __init__(self, name, predicate):
        self.name, self.predicate = name, predicate

    def accepts(self, value):
        return self.predicate(value)

    def __str__(self):
        return self.name


BOOLEAN = _Kind("a bool", lambda v: isinstance(v, (bool, np.bool_)))
NONE = _Kind("None", lambda v: v is None)
RANDOM_STATE = _Kind(
    "an int, a numpy RandomState or None",
    lambda v: v is None
    or isinstance(v, np.random.RandomState)
    or (isinstance(v, Integral) and not isinstance(v, bool) and 0 <= int(v) < 2**32),
)
VERBOSE = _Kind(
    "a bool or an int >= 0",
    lambda v: isinstance(v, (bool, np.bool_)) or (isinstance(v, Integral) and int(v) >= 0),
)


def _sequence_of(predicate):
    return lambda v: (
        isinstance(v, (list, tuple)) and all(predicate(x) for x in v)
    )


ACTIVATION_NAMES = (
    "identity", "logistic", "tanh", "relu", "leaky_relu", "elu", "gelu", "softplus", "silu",
)
ACTIVATION_SEQUENCE = _Kind(
    "a list or tuple of those names (one per hidden layer)",
    _sequence_of(lambda x: isinstance(x, str) and x in ACTIVATION_NAMES),
)
RATE_SEQUENCE = _Kind(
    "a list or tuple of rates in [0, 1) (one per hidden layer)",
    _sequence_of(lambda x: isinstance(x, Real) and not isinstance(x, bool) and 0 <= float(x) < 1),
)
ARRAY_LIST = _Kind(
    "a list of arrays (one per layer)",
    lambda v: isinstance(v, (list, tuple)) and all(
        hasattr(x, "__len__") and hasattr(x, "__getitem__")
        and not isinstance(x, (str, bytes, dict))
        for x in v
    ),
)
CALLABLE_LIST = _Kind(
    "a list of callables", lambda v: isinstance(v, (list, tuple)) and all(callable(x) for x in v)
)
DICT = _Kind("a dict", lambda v: isinstance(v, dict))

LAYER_SIZES = _Kind(
    "an int >= 1 or a sequence of ints",
    lambda v: (isinstance(v, Integral) and not isinstance(v, bool) and int(v) >= 1)
    or (hasattr(v, "__len__") and hasattr(v, "__getitem__") and not isinstance(v, str)),
)


def validate_parameters(estimator, table):
    """Raise InvalidParameterError for the first parameter of `estimator`
    whose value satisfies none of its constraints in `table`."""
    params = estimator.get_params(deep=False)
    for name, constraints in table.items():
        value = params[name]
        if any(c.accepts(value) for c in constraints):
            continue
        kinds = [str(c) for c in constraints]
        accepted = kinds[0] if len(kinds) == 1 else ", ".join(kinds[:-1]) + " or " + kinds[-1]
        raise InvalidParameterError(
            f"The {name!r} parameter of {type(estimator).__name__} must be "
            f"{accepted}. Got {value!r} instead."
        )

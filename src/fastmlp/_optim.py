"""State of the stochastic solvers between epochs.

The updates, the learning-rate schedules and the loss-based stopping rule
run in C (fm_train). What lives here is the state a fit hands to the engine
and keeps between calls (current rate, Adam's step count, the SGD velocity
or Adam moments, flat in the parameter layout), and the stopping decision
when early stopping watches the validation score instead of the loss.
"""

import numpy as np

from fastmlp._engine import LINE, LR_REDUCED, STOP, STOP_LR_TOO_SMALL, aligned_empty


def _aligned_copy(a, dtype):
    """a in dtype, in an array that starts on a cache line (aligned_empty)."""
    out = aligned_empty(a.size, dtype)
    out[...] = a
    return out


class StochasticOptimizer:
    """What SGD or Adam carries from one engine call to the next.

    The settings are fixed when the optimizer is created (at fit, or the
    first partial_fit), as scikit-learn's optimizers keep the values they
    were built with across partial_fit calls.

    Parameters
    ----------
    solver : {"sgd", "adam", "adamw", "rprop"}
    n_params : int
        Size of the flat parameter buffer.
    dtype : numpy dtype
        Working precision of the parameters.
    learning_rate_init, lr_schedule, momentum, nesterov, power_t : SGD settings
        (learning_rate_init is also Adam's rate).
    beta_1, beta_2, epsilon : Adam settings.

    Attributes
    ----------
    learning_rate : float
        SGD's current rate (Adam's base rate for Adam).
    t : int
        Adam steps taken.
    state : ndarray of shape (n_params,) for SGD, (2 * n_params,) otherwise
        Velocity; the first then second moments (Adam, AdamW); the previous
        gradient then the step sizes (iRprop-).
    """

    def __init__(
        self,
        solver,
        n_params,
        dtype,
        *,
        learning_rate_init,
        lr_schedule,
        momentum,
        nesterov,
        power_t,
        beta_1,
        beta_2,
        epsilon,
    ):
        self.solver = solver
        self.learning_rate_init = learning_rate_init
        self.learning_rate = float(learning_rate_init)
        self.lr_schedule = lr_schedule
        self.momentum = momentum
        self.nesterov = nesterov
        self.power_t = power_t
        self.beta_1 = beta_1
        self.beta_2 = beta_2
        self.epsilon = epsilon
        self.t = 0
        self.state = aligned_empty((1 if solver == "sgd" else 2) * n_params, dtype)
        self.state[...] = 0
        if solver == "rprop":
            self.state[n_params:] = learning_rate_init  # every weight's first step

    def astype(self, dtype):
        """Keep the state in the parameters' precision."""
        if self.state.dtype != dtype:
            self.state = _aligned_copy(self.state, dtype)

    def __setstate__(self, attributes):
        # an unpickled state starts wherever numpy put it; a copy.copy
        # shares the original's
        self.__dict__.update(attributes)
        if self.state.ctypes.data % LINE:
            self.state = _aligned_copy(self.state, self.state.dtype)

    def trigger_stopping(self):
        """Progress stalled: return the decision, one of the engine's events
        (STOP, STOP_LR_TOO_SMALL, or LR_REDUCED after dividing the adaptive
        SGD rate by 5)."""
        if self.solver != "sgd" or self.lr_schedule != "adaptive":
            return STOP
        if self.learning_rate <= 1e-6:
            return STOP_LR_TOO_SMALL
        self.learning_rate /= 5.0
        return LR_REDUCED


def stall_ending(event, learning_rate):
    """How the verbose message on stalled progress ends, for an event."""
    if event == LR_REDUCED:
        return " Setting learning rate to %f" % learning_rate
    if event == STOP_LR_TOO_SMALL:
        return " Learning rate too small. Stopping."
    return " Stopping."

"""State of the stochastic solvers between epochs.

The per-step update runs in C (fm_sgd_step, fm_adam_step inside
fm_train_epoch); what lives here is what changes between epochs: the
learning-rate schedule, the stopping decision, and the buffers the C step
reads and writes (SGD velocity, Adam first and second moments), kept flat in
the parameter layout.
"""

import numpy as np


class StochasticOptimizer:
    """SGD (with momentum, Nesterov and a learning-rate schedule) or Adam.

    Parameters
    ----------
    solver : {"sgd", "adam"}
    n_params : int
        Size of the flat parameter buffer.
    dtype : numpy dtype
        Working precision of the parameters.
    learning_rate_init : float
    lr_schedule : {"constant", "invscaling", "adaptive"}
        SGD only.
    momentum, nesterov, power_t : SGD settings.
    beta_1, beta_2, epsilon : Adam settings.

    Attributes
    ----------
    learning_rate : float
        The current learning rate of SGD (Adam's base rate for Adam).
    t : int
        Adam steps taken.
    state : ndarray of shape (n_params,) for SGD, (2 * n_params,) for Adam
        Velocity, or the first then second moments.
    """

    def __init__(
        self,
        solver,
        n_params,
        dtype,
        learning_rate_init,
        lr_schedule="constant",
        momentum=0.9,
        nesterov=True,
        power_t=0.5,
        beta_1=0.9,
        beta_2=0.999,
        epsilon=1e-8,
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
        width = 2 if solver == "adam" else 1
        self.state = np.zeros(width * n_params, dtype=dtype)

    def astype(self, dtype):
        """Keep the state in the parameters' precision."""
        self.state = self.state.astype(dtype, copy=False)

    def iteration_ends(self, time_step):
        """Update the schedule after an epoch; time_step = samples seen."""
        if self.solver == "sgd" and self.lr_schedule == "invscaling":
            self.learning_rate = float(self.learning_rate_init) / (time_step + 1) ** self.power_t

    def trigger_stopping(self, msg, verbose):
        """Called when progress stalled: returns True to stop training, or
        lowers the learning rate (SGD, adaptive schedule) and returns False."""
        if self.solver == "adam" or self.lr_schedule != "adaptive":
            if verbose:
                print(msg + " Stopping.")
            return True
        if self.learning_rate <= 1e-6:
            if verbose:
                print(msg + " Learning rate too small. Stopping.")
            return True
        self.learning_rate /= 5.0
        if verbose:
            print(msg + " Setting learning rate to %f" % self.learning_rate)
        return False

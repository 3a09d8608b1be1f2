"""Callbacks: functions called after every epoch of a stochastic fit.

A callback is any callable taking ``(estimator, record)``, ``record`` an
:class:`EpochRecord`; returning True stops training after that epoch, as
convergence would (no ConvergenceWarning). Pass them as
``MLPClassifier(callbacks=[...])``. Two are ready-made: :class:`Checkpoint`
saves the best model seen so far, :class:`ProgressBar` shows a live
progress bar.
"""

import math
import sys
from dataclasses import dataclass
from typing import Optional

from fastmlp._persist import write

__all__ = ["EpochRecord", "Checkpoint", "ProgressBar"]


@dataclass(frozen=True)
class EpochRecord:
    """What happened in one epoch.

    Attributes
    ----------
    epoch : int
        1 for the first epoch of the fit (``n_iter_`` after it).
    loss : float
        The training loss of the epoch (``loss_curve_[-1]``).
    learning_rate : float
        SGD's current learning rate (the base rate of the Adam family, the
        initial step of iRprop-).
    seconds : float
        Wall time of the epoch.
    validation_loss, validation_score : float or None
        On the validation set, when there is one (early stopping's split, or
        X_val / y_val given to fit).
    max_iter : int or None
        The fit's max_iter, as it was when the fit started (a callback that
        sets another changes the next fit, not this one).
    """

    epoch: int
    loss: float
    learning_rate: float
    seconds: float
    validation_loss: Optional[float] = None
    validation_score: Optional[float] = None
    max_iter: Optional[int] = None


class Checkpoint:
    """Save the model (as ``estimator.save(path)``, which leaves the
    callbacks out without warning about it) whenever the monitored quantity
    reaches its best value so far.

    Parameters
    ----------
    path : str or os.PathLike
        Where to write the model; each save replaces the last.
    monitor : {"validation_loss", "validation_score", "loss"}, default="validation_loss"
        The quantity to watch; losses are better lower, scores higher. A
        quantity that an epoch does not have (no validation set) is skipped.

    Attributes
    ----------
    best : float
        The best value seen.
    best_epoch : int or None
        The epoch it was seen at (the epoch the saved model comes from).
    """

    _HIGHER_IS_BETTER = {"validation_loss": False, "validation_score": True, "loss": False}

    def __init__(self, path, monitor="validation_loss"):
        if monitor not in self._HIGHER_IS_BETTER:
            raise ValueError(
                f"monitor must be one of {sorted(self._HIGHER_IS_BETTER)}, got {monitor!r}"
            )
        self.path = path
        self.monitor = monitor
        self.best = -math.inf if self._HIGHER_IS_BETTER[monitor] else math.inf
        self.best_epoch = None

    def __call__(self, estimator, record):
        value = getattr(record, self.monitor)
        if value is None:
            return False
        higher = self._HIGHER_IS_BETTER[self.monitor]
        if (value > self.best) if higher else (value < self.best):
            self.best, self.best_epoch = value, record.epoch
            write(estimator, self.path)
        return False


class ProgressBar:
    """A live tqdm progress bar, one step per epoch, showing the loss, the
    validation score when there is one, and samples per second.

    Needs the ``tqdm`` package (``pip install fastmlp[progress]``).

    Parameters
    ----------
    total : int or None
        Bar length in epochs; None takes the estimator's max_iter.
    file : file object, default=None
        Where the bar is drawn; None is sys.stderr.
    disable : bool or None, default=None
        None shows the bar only when `file` is a terminal.
    """

    def __init__(self, total=None, file=None, disable=None):
        try:
            import tqdm  # noqa: F401
        except ImportError as exc:
            raise ImportError(
                "ProgressBar needs tqdm: pip install tqdm (or fastmlp[progress])"
            ) from exc
        self.total = total
        self.file = file
        self.disable = disable
        self._bar = None
        self._length = None

    def __call__(self, estimator, record):
        from tqdm.auto import tqdm

        if self._bar is None or record.epoch == 1:
            if self._bar is not None:
                self._bar.close()
            out = self.file or sys.stderr
            disable = self.disable
            if disable is None:
                disable = not (hasattr(out, "isatty") and out.isatty())
            self._length = self.total or record.max_iter or estimator.max_iter
            self._bar = tqdm(total=self._length, file=out, disable=disable, unit="epoch")
        postfix = {"loss": f"{record.loss:.4g}"}
        if record.validation_score is not None:
            postfix["val_score"] = f"{record.validation_score:.4g}"
        seen = getattr(estimator, "_samples_per_epoch", None)
        if seen and record.seconds > 0:
            postfix["samples/s"] = f"{seen / record.seconds:.3g}"
        self._bar.set_postfix(postfix, refresh=False)
        self._bar.update(1)
        if record.epoch >= self._length:
            self._bar.close()
        return False

"""
Callbacks
=========

Watch every epoch, stop when you like, and checkpoint the best model to a
file.
"""

import warnings

from sklearn.exceptions import ConvergenceWarning
import tempfile
from pathlib import Path

from sklearn.datasets import make_classification

import fastmlp
from fastmlp.callbacks import Checkpoint

warnings.filterwarnings("ignore", category=ConvergenceWarning)  # short runs, on purpose

X, y = make_classification(2000, 10, random_state=0)


def stop_at_low_loss(model, record):
    print(f"epoch {record.epoch:3d}  loss {record.loss:.4f}  {record.seconds * 1e3:.1f} ms")
    return record.loss < 0.2  # True stops training, as convergence would


with tempfile.TemporaryDirectory() as folder:  # removed, with the checkpoint, at the end
    path = Path(folder) / "best.npz"
    checkpoint = Checkpoint(path, monitor="loss")
    model = fastmlp.MLPClassifier(hidden_layer_sizes=(32,), max_iter=200, random_state=0,
                                  callbacks=[stop_at_low_loss, checkpoint]).fit(X, y)
    print(f"stopped after {model.n_iter_} epochs; best epoch {checkpoint.best_epoch} saved to {path.name}")
    print(f"reloaded checkpoint has n_iter_ = {fastmlp.load(path).n_iter_}")

"""Pictures of fitted models, drawn with matplotlib (``pip install
fastmlp[plot]``)."""

import numpy as np

__all__ = ["loss_curve", "decision_boundary"]


def _axes(ax):
    if ax is not None:
        return ax
    import matplotlib.pyplot as plt

    return plt.figure(figsize=(5, 3.5)).add_subplot()


def loss_curve(model, ax=None):
    """Plot the training loss of every epoch (``loss_curve_``), and the
    validation loss (``validation_loss_curve_``) when there is one.

    Parameters
    ----------
    model : fastmlp.MLPClassifier or fastmlp.MLPRegressor
        A model fitted by a stochastic solver.
    ax : matplotlib Axes, optional
        Drawn into a new figure when None.

    Returns
    -------
    matplotlib Axes
    """
    curve = getattr(model, "loss_curve_", None)
    if not curve:
        raise ValueError("loss_curve needs a model fitted by a stochastic solver (loss_curve_)")
    ax = _axes(ax)
    epochs = np.arange(1, len(curve) + 1)
    ax.plot(epochs, curve, label="training loss (L2 term included)")
    validation = getattr(model, "validation_loss_curve_", None)
    if validation:
        ax.plot(epochs[-len(validation):], validation, label="validation loss (data alone)")
    ax.set_xlabel("epoch")
    ax.set_ylabel("loss")
    ax.set_title(f"{type(model).__name__} {tuple(c.shape[1] for c in model.coefs_[:-1])}")
    ax.legend()
    return ax


def decision_boundary(model, X, y, ax=None, resolution=200):
    """Plot a classifier's predicted class over the plane of two features,
    with the samples on top.

    Parameters
    ----------
    model : fastmlp.MLPClassifier
        A classifier fitted on two features.
    X : array-like of shape (n_samples, 2)
        The samples to draw.
    y : array-like of shape (n_samples,)
        Their classes, which colour them.
    ax : matplotlib Axes, optional
        Drawn into a new figure when None.
    resolution : int, default=200
        Grid points along each axis.

    Returns
    -------
    matplotlib Axes
    """
    X = np.asarray(X, dtype=float)
    if X.ndim != 2 or X.shape[1] != 2:
        raise ValueError(f"decision_boundary draws two features; X has shape {X.shape}")
    ax = _axes(ax)
    span = X.max(axis=0) - X.min(axis=0)
    low, high = X.min(axis=0) - 0.1 * span - 0.1, X.max(axis=0) + 0.1 * span + 0.1
    g0, g1 = np.meshgrid(
        np.linspace(low[0], high[0], resolution), np.linspace(low[1], high[1], resolution)
    )
    labels = model.predict(np.column_stack([g0.ravel(), g1.ravel()]))
    codes = np.searchsorted(model.classes_, labels).reshape(g0.shape)
    ax.contourf(g0, g1, codes, alpha=0.3, levels=np.arange(len(model.classes_) + 1) - 0.5)
    ax.scatter(X[:, 0], X[:, 1], c=np.searchsorted(model.classes_, y), edgecolors="k")
    ax.set_xlabel("feature 0")
    ax.set_ylabel("feature 1")
    ax.set_title("decision boundary")
    return ax

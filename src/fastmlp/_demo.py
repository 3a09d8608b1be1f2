"""`fastmlp demo` (or `python -m fastmlp demo`): the worked backpropagation example, XOR,
and a side-by-side fit of scikit-learn's digits data with scikit-learn's MLP.

Everything goes through the public estimators; the walk-through's
intermediate values are read back from them (hidden activations from a
one-layer model sharing the first layer's weights, deltas from how much one
plain gradient step moved the biases).
"""

import copy
import time
import warnings

import numpy as np
from sklearn.exceptions import ConvergenceWarning

from fastmlp import MLPClassifier, MLPRegressor

# The teaching network: 2 inputs -> 2 logistic hidden -> 2 logistic outputs.
WORKED_X = np.array([[0.5, -0.5], [0.3, 0.4], [0.7, 0.9]])
WORKED_Y = np.array([[0.9, 0.1], [0.9, 0.9], [0.1, 0.1]])
WORKED_COEFS = [np.array([[0.1, 0.3], [-0.2, 0.55]]), np.array([[0.37, -0.22], [0.9, -0.12]])]
WORKED_INTERCEPTS = [np.array([0.01, -0.02]), np.array([0.31, 0.27])]
WORKED_LEARNING_RATE = 1.2

XOR_X = np.array([[0.0, 0.0], [0.0, 1.0], [1.0, 0.0], [1.0, 1.0]])
XOR_Y = np.array([0, 1, 1, 0])


def worked_example_model(max_iter, coefs=None, intercepts=None):
    """The walk-through's network as an MLPRegressor: logistic hidden and
    output units, plain gradient descent (no momentum, no L2), one sample per
    step in the given order, starting from the walk-through's weights.

    Its gradient is that of E = 1/2 sum over outputs of (y - p)^2; the
    reported loss_ is scikit-learn's squared error, the mean over outputs,
    so E summed over the samples of an epoch is loss_ * n_samples * n_outputs.
    """
    model = MLPRegressor(
        hidden_layer_sizes=(2,),
        activation="logistic",
        out_activation="logistic",
        solver="sgd",
        learning_rate_init=WORKED_LEARNING_RATE,
        momentum=0.0,
        alpha=0.0,
        batch_size=1,
        shuffle=False,
        max_iter=max_iter,
        tol=0.0,
        n_iter_no_change=np.inf,
        warm_start=True,
    )
    model.coefs_ = [c.copy() for c in (coefs or WORKED_COEFS)]
    model.intercepts_ = [b.copy() for b in (intercepts or WORKED_INTERCEPTS)]
    return model


def fit_quietly(model, X, y):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        return model.fit(X, y)


def with_weights(model, coefs, intercepts):
    """`model` (fitted) with its weights replaced by copies of these."""
    model.coefs_ = [c.copy() for c in coefs]
    model.intercepts_ = [b.copy() for b in intercepts]
    return model


def _fmt(values):
    """Numbers as the demo prints them, with one rounding (6 decimals)
    throughout: a flat list, or a list of lists for a matrix."""
    values = np.asarray(values)
    if values.ndim > 1:
        return "[" + ", ".join(_fmt(row) for row in values) + "]"
    return "[" + ", ".join(f"{v:.6f}" for v in np.ravel(values)) + "]"


def run_worked_example(out=print):
    """Print the walk-through's rules, each above its numbers as the engine
    computes them.

    Returns the model after one step, E summed over one epoch, and the model
    after 1000 epochs.
    """
    x, y = WORKED_X[:1], WORKED_Y[:1]
    lr = WORKED_LEARNING_RATE
    out("1. The worked example: 2 inputs -> 2 logistic hidden -> 2 logistic outputs")
    out("   A row a passes each layer through its weights W (coefs_) and biases b (intercepts_):")
    out("   W_h, b_h into the hidden units h1, h2, then W_o, b_o into the outputs o1, o2.")
    out(f"   first sample x = {_fmt(x[0])}, target y = {_fmt(y[0])}")

    stepped = fit_quietly(worked_example_model(1), x, y)
    # Forward values of the starting weights: a fitted copy with them put
    # back, and a network without hidden layer whose only layer is the first.
    start = with_weights(copy.deepcopy(stepped), WORKED_COEFS, WORKED_INTERCEPTS)
    first = worked_example_model(1, WORKED_COEFS[:1], WORKED_INTERCEPTS[:1])
    first.set_params(hidden_layer_sizes=())
    first = with_weights(fit_quietly(first, x, y), WORKED_COEFS[:1], WORKED_INTERCEPTS[:1])
    a_h, a_o = first.predict(x)[0], start.predict(x)[0]
    z_h, z_o = np.log(a_h / (1 - a_h)), np.log(a_o / (1 - a_o))
    E = stepped.loss_ * y.shape[1]
    out("   forward     z = a W + b, then a = 1 / (1 + exp(-z)), layer by layer")
    out(f"               z_h = {_fmt(z_h)}   a_h = {_fmt(a_h)}")
    out(f"               z_o = {_fmt(z_o)}   a_o = {_fmt(a_o)}")
    out("   error       E = 1/2 sum_k (y_k - a_k)^2 over the outputs k")
    out(f"               E = {E:.6f}")

    # One plain gradient step moves each bias by -learning_rate * delta.
    d_o = (WORKED_INTERCEPTS[1] - stepped.intercepts_[1]) / lr
    d_h = (WORKED_INTERCEPTS[0] - stepped.intercepts_[0]) / lr
    out("   backward    d_o = dE/dz_o = (a_o - y) a_o (1 - a_o), elementwise")
    out(f"               d_o = {_fmt(d_o)}")
    out("               d_h = dE/dz_h = (d_o W_o^T) a_h (1 - a_h)")
    out(f"               d_h = {_fmt(d_h)}")
    out(f"   update      w(i->j) <- w(i->j) - {lr} * d_j * a_i, and b_j <- b_j - {lr} * d_j")
    out(
        f"               w(h1->o1) = 0.37 - {lr} * ({d_o[0]:.6f}) * {a_h[0]:.6f}: "
        f"0.37 -> {stepped.coefs_[1][0, 0]:.6f}"
    )
    out(
        f"               w(x1->h1) = 0.1 - {lr} * ({d_h[0]:.6f}) * {x[0, 0]:.6f}: "
        f"0.1 -> {stepped.coefs_[0][0, 0]:.6f}"
    )
    out(f"               coefs_ = [{', '.join(_fmt(c) for c in stepped.coefs_)}]")
    out(f"               intercepts_ = [{', '.join(_fmt(b) for b in stepped.intercepts_)}]")

    epoch = fit_quietly(worked_example_model(1), WORKED_X, WORKED_Y)
    E_epoch = epoch.loss_ * WORKED_X.shape[0] * WORKED_Y.shape[1]
    out(f"   one epoch (3 steps, one per sample in order): summed E = {E_epoch:.6f}")
    trained = fit_quietly(worked_example_model(1000), WORKED_X, WORKED_Y)
    out("   after 1000 epochs:")
    for k, (target, output) in enumerate(zip(WORKED_Y, trained.predict(WORKED_X)), 1):
        out(f"               sample {k}: target {_fmt(target)}, output {_fmt(output)}")
    return stepped, E_epoch, trained


def run_xor(out=print):
    """Fit XOR without and with a hidden layer and print each point's
    probability of class 1 under both; returns the second model."""
    out("2. XOR: no hidden layer cannot separate it; two logistic hidden units can")
    out("   (L-BFGS fits; P(1) is the predicted probability of class 1)")
    models = {}
    for hidden in [(), (2,)]:
        models[hidden] = fit_quietly(
            MLPClassifier(
                hidden_layer_sizes=hidden, activation="logistic", solver="lbfgs", random_state=0
            ),
            XOR_X,
            XOR_Y,
        )
    p_none = models[()].predict_proba(XOR_X)[:, 1]
    p_two = models[(2,)].predict_proba(XOR_X)[:, 1]
    out("   x1 x2  target   P(1), no hidden layer   P(1), hidden layer (2,)")
    for (x1, x2), target, p, q in zip(XOR_X, XOR_Y, p_none, p_two):
        out(f"   {x1:.0f}  {x2:.0f}   {target}        {p:.6f}                {q:.6f}")
    spread = np.abs(p_none - 0.5).max()
    for hidden, label in [((), "no hidden layer"), ((2,), "hidden layer (2,)")]:
        right = int((models[hidden].predict(XOR_X) == XOR_Y).sum())
        note = (
            f", every P(1) is 0.500000 +- {spread:.6f}: a coin flip, as no line separates XOR"
            if not hidden else ""
        )
        out(f"   {label}: {right}/4 points right{note}")
    return models[(2,)]


def time_in_turns(fits, rounds=3, clock=time.perf_counter):
    """Run each fit (name -> function) once per round, taking turns, so that
    a burst of load on a shared machine slows them alike; returns name ->
    (what its last run returned, median seconds)."""
    seconds = {name: [] for name in fits}
    results = {}
    for _ in range(rounds):
        for name, fit in fits.items():
            started = clock()
            results[name] = fit()
            seconds[name].append(clock() - started)
    return {name: (results[name], float(np.median(seconds[name]))) for name in fits}


def run_digits(out=print, rounds=3):
    from sklearn.datasets import load_digits
    from sklearn.model_selection import train_test_split
    from sklearn.neural_network import MLPClassifier as SklearnMLPClassifier

    X, y = load_digits(return_X_y=True)
    X_train, X_test, y_train, y_test = train_test_split(X / 16.0, y, random_state=0)
    params = dict(hidden_layer_sizes=(128,), max_iter=100, random_state=0)
    out(
        f"3. digits ({X_train.shape[0]} train / {X_test.shape[0]} test images), "
        f"MLPClassifier(hidden_layer_sizes=(128,), max_iter=100, random_state=0)"
    )
    out(f"   each library fits {rounds} times, in turns; the times are medians")
    timed = time_in_turns(
        {
            name: lambda cls=cls: fit_quietly(cls(**params), X_train, y_train)
            for name, cls in [("fastmlp", MLPClassifier), ("scikit-learn", SklearnMLPClassifier)]
        },
        rounds,
    )
    for name, (model, seconds) in timed.items():
        out(
            f"   {name:12s}: test accuracy {model.score(X_test, y_test):.6f}, "
            f"{model.n_iter_} epochs, fit {seconds:.3f} s"
        )
    (fast, fast_s), (slow, slow_s) = timed["fastmlp"], timed["scikit-learn"]
    diff = max(np.abs(a - b).max() for a, b in zip(fast.coefs_, slow.coefs_))
    out(
        f"   fastmlp fits {slow_s / fast_s:.1f}x faster (median {slow_s:.3f} s / {fast_s:.3f} s); "
        f"largest weight difference {diff:.1e}"
    )


def write_plots(directory, trained, xor_model, out=print):
    """The worked example's loss curve and XOR's decision boundary as PNGs."""
    import matplotlib

    matplotlib.use("Agg")
    from pathlib import Path

    import matplotlib.pyplot as plt

    from fastmlp import plot

    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    for name, draw in [
        ("worked_example_loss.png", lambda ax: plot.loss_curve(trained, ax)),
        ("xor_boundary.png", lambda ax: plot.decision_boundary(xor_model, XOR_X, XOR_Y, ax)),
    ]:
        fig, ax = plt.subplots(figsize=(5, 3.5))
        draw(ax)
        fig.tight_layout()
        fig.savefig(directory / name, dpi=100)
        plt.close(fig)
        out(f"   wrote {directory / name}")


def main(out=print, plot_dir=None):
    _, _, trained = run_worked_example(out)
    out("")
    xor_model = run_xor(out)
    out("")
    run_digits(out)
    if plot_dir:
        out("")
        out("4. pictures")
        write_plots(plot_dir, trained, xor_model, out)

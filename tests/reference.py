"""Float64 numpy reference of every engine kernel and of a whole
forward/backward pass, written from the formulas in fastmlp.h and
DESIGN.md, independently of the C code."""

import numpy as np

EPS = {np.dtype(np.float32): np.finfo(np.float32).eps, np.dtype(np.float64): np.finfo(np.float64).eps}

from scipy.special import erf

HIDDEN = ("identity", "logistic", "tanh", "relu", "leaky_relu", "elu", "gelu", "softplus", "silu")
LEAKY_SLOPE = 0.01


def activation(name, z):
    z = np.asarray(z, dtype=np.float64)
    if name == "identity":
        return z.copy()
    if name == "logistic":
        return 1.0 / (1.0 + np.exp(-z))
    if name == "tanh":
        return np.tanh(z)
    if name == "relu":
        return np.maximum(z, 0.0)
    if name == "exp":
        return np.exp(z)
    if name == "leaky_relu":
        return np.where(z > 0, z, LEAKY_SLOPE * z)
    if name == "elu":
        return np.where(z > 0, z, np.expm1(np.minimum(z, 0)))
    if name == "gelu":
        return 0.5 * z * (1 + erf(z / np.sqrt(2)))
    if name == "softplus":
        return np.where(z > 20, z, np.log1p(np.exp(np.minimum(z, 20))))
    if name == "silu":
        return z / (1 + np.exp(-z))
    if name == "softmax":
        e = np.exp(z - z.max(axis=1, keepdims=True))
        return e / e.sum(axis=1, keepdims=True)
    raise ValueError(name)


def activation_backward(name, dA, A, Z=None):
    """dL/dz given dL/da, the outputs a and (GELU, SiLU) the inputs z."""
    dA, A = np.asarray(dA, np.float64), np.asarray(A, np.float64)
    if name == "gelu":
        z = np.asarray(Z, np.float64)
        return dA * (0.5 * (1 + erf(z / np.sqrt(2))) + z * np.exp(-0.5 * z**2) / np.sqrt(2 * np.pi))
    if name == "silu":
        z = np.asarray(Z, np.float64)
        s = 1 / (1 + np.exp(-z))
        return dA * s * (1 + z * (1 - s))
    if name == "leaky_relu":
        return dA * np.where(A > 0, 1.0, LEAKY_SLOPE)
    if name == "elu":
        return dA * np.where(A > 0, 1.0, A + 1)
    if name == "softplus":
        return dA * -np.expm1(-A)
    if name == "identity":
        return dA.copy()
    if name == "logistic":
        return dA * A * (1 - A)
    if name == "tanh":
        return dA * (1 - A**2)
    if name == "relu":
        return np.where(A == 0, 0.0, dA)
    if name == "exp":
        return dA * A
    if name == "softmax":
        inner = (dA * A).sum(axis=1, keepdims=True)
        return A * (dA - inner)
    raise ValueError(name)


def per_sample_loss(name, P, Y, eps=np.finfo(np.float64).eps):
    P, Y = np.asarray(P, np.float64), np.asarray(Y, np.float64)
    if name == "squared_error":
        return 0.5 * ((Y - P) ** 2).mean(axis=1)
    if name == "log_loss":
        q = np.clip(P, eps, 1 - eps)
        return -np.where(Y == 0, 0.0, Y * np.log(q)).sum(axis=1)
    if name == "binary_log_loss":
        q = np.clip(P, eps, 1 - eps)
        pos = np.where(Y == 0, 0.0, Y * np.log(q))
        neg = np.where(1 - Y == 0, 0.0, (1 - Y) * np.log(1 - q))
        return -(pos + neg).sum(axis=1)
    if name == "poisson":
        ratio = np.where(Y == 0, 1.0, Y / P)
        return (np.where(Y == 0, 0.0, Y * np.log(ratio)) - Y + P).sum(axis=1)
    raise ValueError(name)


CANONICAL = {
    "squared_error": "identity",
    "log_loss": "softmax",
    "binary_log_loss": "logistic",
    "poisson": "exp",
}


def forward(X, coefs, intercepts, activations):
    """Every layer's outputs, input first, and every layer's pre-activations."""
    A, Z = [np.asarray(X, np.float64)], [None]
    for W, b, act in zip(coefs, intercepts, activations):
        Z.append(A[-1] @ np.asarray(W, np.float64) + np.asarray(b, np.float64))
        A.append(activation(act, Z[-1]))
    return A, Z


def loss_and_grad(X, Y, coefs, intercepts, activations, loss, alpha, sample_weight=None):
    """Loss (weighted mean of per-sample losses plus the L2 term) and its
    gradient with respect to every weight and bias, by backpropagation."""
    n = X.shape[0]
    sw = np.ones(n) if sample_weight is None else np.asarray(sample_weight, np.float64)
    S = sw.sum()
    A, Z = forward(X, coefs, intercepts, activations)
    P = A[-1]
    value = (sw * per_sample_loss(loss, P, Y)).sum() / S
    value += 0.5 * alpha * sum((np.asarray(W, np.float64) ** 2).sum() for W in coefs) / S
    D = (P - np.asarray(Y, np.float64)) * sw[:, None]
    if CANONICAL[loss] != activations[-1]:
        D = activation_backward(activations[-1], D, P, Z[-1])
    gW, gb = [None] * len(coefs), [None] * len(coefs)
    for layer in range(len(coefs) - 1, -1, -1):
        W = np.asarray(coefs[layer], np.float64)
        gW[layer] = (A[layer].T @ D + alpha * W) / S
        gb[layer] = D.sum(axis=0) / S
        if layer:
            D = activation_backward(activations[layer - 1], D @ W.T, A[layer], Z[layer])
    return value, gW, gb


def sgd_step(params, velocity, grads, lr, momentum, nesterov):
    velocity = momentum * velocity - lr * grads
    update = momentum * velocity - lr * grads if nesterov else velocity
    return params + update, velocity


def adam_step(params, m, v, grads, lr_t, beta_1, beta_2, epsilon):
    m = beta_1 * m + (1 - beta_1) * grads
    v = beta_2 * v + (1 - beta_2) * grads**2
    return params - lr_t * m / (np.sqrt(v) + epsilon), m, v

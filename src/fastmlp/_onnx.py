"""Export fitted models to ONNX (needs the ``onnx`` package:
``pip install fastmlp[onnx]``).

The graph takes ``X`` (n x n_features) and gives what predict and
predict_proba give: classifiers output ``label`` and ``probabilities``,
regressors ``variable``. Each layer is a MatMul and an Add followed by its
activation, built from standard ONNX operators (opset 17).
"""

from typing import Any

import numpy as np

__all__ = ["to_onnx"]

OPSET = 17


def to_onnx(model: Any, X_sample: Any = None) -> Any:
    """The fitted `model` as an onnx.ModelProto.

    Parameters
    ----------
    model : fastmlp.MLPClassifier or fastmlp.MLPRegressor
        A fitted model.
    X_sample : array-like of shape (n_samples, n_features), optional
        Only its dtype is used: float64 data gives a float64 graph; the
        default is float32.

    Returns
    -------
    onnx.ModelProto
    """
    from fastmlp._interop import check_fastmlp_model
    from fastmlp._mlp import MLPClassifier

    check_fastmlp_model(model, "to_onnx")
    try:
        import onnx
        from onnx import TensorProto, helper, numpy_helper
    except ImportError as exc:
        raise ImportError("to_onnx needs the onnx package: pip install fastmlp[onnx]") from exc

    model._check_fitted()
    dtype = np.float64 if np.asarray(X_sample).dtype == np.float64 else np.float32
    elem = TensorProto.DOUBLE if dtype == np.float64 else TensorProto.FLOAT
    graph = _Graph(helper, numpy_helper, dtype)

    current = "X"
    activations = model._activations(len(model.coefs_))
    for i, (W, b, act) in enumerate(zip(model.coefs_, model.intercepts_, activations)):
        current = graph.node("MatMul", [current, graph.const(f"W{i}", W)])
        current = graph.node("Add", [current, graph.const(f"b{i}", b)])
        current = graph.activation(act, current)

    outputs = []
    if isinstance(model, MLPClassifier):
        if model.n_outputs_ == 1:  # binary: [1 - p, p]
            one = graph.const("one", np.ones(1))
            current = graph.node("Concat", [graph.node("Sub", [one, current]), current], axis=1)
        graph.node("Identity", [current], out="probabilities")
        if model._label_binarizer.y_type_ == "multilabel-indicator":
            half = graph.const("half", np.full(1, 0.5))
            graph.node("Cast", [graph.node("Greater", [current, half])], out="label",
                       to=TensorProto.INT64)
            label_type = TensorProto.INT64
        else:
            index = graph.node("ArgMax", [current], axis=1, keepdims=0)
            classes = np.asarray(model.classes_)
            if classes.size == 1:  # fitted on one class: both columns name it
                classes = np.repeat(classes, 2)
            if classes.dtype.kind == "U":
                label_type, table = TensorProto.STRING, classes.astype(object)
            elif classes.dtype == np.uint64:  # as predict gives them, past int64 too
                label_type, table = TensorProto.UINT64, classes
            else:
                label_type, table = TensorProto.INT64, classes.astype(np.int64)
            table = numpy_helper.from_array(table, "classes")
            graph.initializers.append(table)
            graph.node("Gather", ["classes", index], out="label", axis=0)
        label_shape = [None, model.n_outputs_] if label_type == TensorProto.INT64 and (
            model._label_binarizer.y_type_ == "multilabel-indicator"
        ) else [None]
        outputs.append(helper.make_tensor_value_info("label", label_type, label_shape))
        width = 2 if model.n_outputs_ == 1 else model.n_outputs_
        outputs.append(helper.make_tensor_value_info("probabilities", elem, [None, width]))
    else:
        graph.node("Identity", [current], out="variable")
        outputs.append(helper.make_tensor_value_info("variable", elem, [None, model.n_outputs_]))

    inputs = [helper.make_tensor_value_info("X", elem, [None, model.n_features_in_])]
    onnx_graph = helper.make_graph(graph.nodes, type(model).__name__, inputs, outputs,
                                   graph.initializers)
    # The oldest IR version that opset 17 allows, not the installed onnx's
    # newest: an onnxruntime older than that onnx still loads the model.
    opset = helper.make_opsetid("", OPSET)
    proto = helper.make_model(
        onnx_graph, opset_imports=[opset], producer_name="fastmlp",
        ir_version=helper.find_min_ir_version_for([opset]),
    )
    onnx.checker.check_model(proto)
    return proto


class _Graph:
    """Nodes and constants of the graph being built, with fresh names."""

    def __init__(self, helper, numpy_helper, dtype):
        self.helper, self.numpy_helper, self.dtype = helper, numpy_helper, dtype
        self.nodes, self.initializers, self.count = [], [], 0

    def const(self, name, value):
        self.initializers.append(
            self.numpy_helper.from_array(np.asarray(value, dtype=self.dtype), name)
        )
        return name

    def node(self, op, inputs, out=None, **attributes):
        self.count += 1
        out = out or f"{op.lower()}_{self.count}"
        self.nodes.append(self.helper.make_node(op, inputs, [out], **attributes))
        return out

    def activation(self, name, x):
        """The activation `name` applied to x, in standard operators."""
        simple = {"logistic": "Sigmoid", "tanh": "Tanh", "relu": "Relu", "exp": "Exp",
                  "softplus": "Softplus"}
        if name == "identity":
            return x
        if name in simple:
            return self.node(simple[name], [x])
        if name == "softmax":
            return self.node("Softmax", [x], axis=1)
        if name == "leaky_relu":
            from fastmlp._engine import LEAKY_SLOPE

            return self.node("LeakyRelu", [x], alpha=LEAKY_SLOPE)
        if name == "elu":
            return self.node("Elu", [x], alpha=1.0)
        if name == "silu":
            return self.node("Mul", [x, self.node("Sigmoid", [x])])
        if name == "gelu":  # z Phi(z) = 0.5 z (1 + erf(z / sqrt 2))
            scaled = self.node("Mul", [x, self.const(f"c{self.count}", [1 / np.sqrt(2.0)])])
            one = self.const(f"d{self.count}", [1.0])
            one_plus = self.node("Add", [self.node("Erf", [scaled]), one])
            half_x = self.node("Mul", [x, self.const(f"e{self.count}", [0.5])])
            return self.node("Mul", [half_x, one_plus])
        raise ValueError(f"no ONNX form for activation {name!r}")

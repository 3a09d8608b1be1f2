"""The `fastmlp` command: the demo, and training, prediction and a summary
of saved models from the shell.

Data are numeric tables: CSV with a header row (columns named by it), .npy
(a 2-D array, columns numbered from 0), or .npz (arrays X and, for training,
y; or a single 2-D array). A problem with the user's files or arguments is
reported in one line, never as a traceback.
"""

import argparse
import ast
import csv
import sys
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Optional

import numpy as np

EXAMPLES = """\
examples:
  fastmlp demo
  fastmlp train iris.csv --target species --param hidden_layer_sizes=16 max_iter=500 -o iris.npz
  fastmlp predict iris.npz new_flowers.csv -o predictions.csv
  fastmlp info iris.npz
"""


class CommandError(Exception):
    """A problem with the user's files or arguments."""


@dataclass
class Table:
    """Data read from a file: features, their names (None when the file has
    none) and, when known, the target."""

    features: np.ndarray
    names: Optional[list]
    target: Optional[np.ndarray] = None


# ---- reading data ------------------------------------------------------------------


def read_csv(path):
    """(values, names) of a numeric CSV file with a header row."""
    try:
        with open(path, newline="", encoding="utf-8-sig") as f:
            reader = csv.reader(f)
            rows = [(reader.line_num, row) for row in reader if any(c.strip() for c in row)]
    except UnicodeDecodeError:
        raise CommandError(f"{path} is not a text (UTF-8) CSV file") from None
    except csv.Error as error:
        raise CommandError(f"{path} is not a text CSV file ({error})") from None
    if not rows:
        raise CommandError(f"{path} is empty")
    names = [name.strip() for name in rows[0][1]]
    if "" in names or len(set(names)) != len(names):
        raise CommandError(f"{path}: the header row needs a distinct name for every column")
    if len(rows) == 1:
        raise CommandError(f"{path} has a header row but no data")
    values = np.empty((len(rows) - 1, len(names)))
    for i, (line, row) in enumerate(rows[1:]):
        if len(row) != len(names):
            raise CommandError(
                f"{path}, line {line} has {len(row)} values, the header {len(names)}"
            )
        for j, cell in enumerate(row):
            try:
                values[i, j] = float(cell)
            except ValueError:
                what = "is empty" if not cell.strip() else f"{cell.strip()!r} is not a number"
                raise CommandError(
                    f"{path}, line {line}, column {names[j]!r}: {what} (fastmlp reads numeric "
                    "CSV only)"
                ) from None
    return values, names


def numeric(array, path, what):
    if array.ndim != 2:
        raise CommandError(f"{path}: {what} must be a 2-D array (rows x columns), not "
                           f"{array.ndim}-D")
    if array.dtype.kind not in "biuf":
        raise CommandError(f"{path}: {what} holds {array.dtype} values, not numbers")
    return array


def load_numpy(path):
    """What np.load gives for an .npy or .npz path, refusing pickled data."""
    try:
        return np.load(path, allow_pickle=False)
    except ValueError as error:
        reason = ("it holds Python objects, or is not a numpy file" if "allow_pickle" in
                  str(error) else str(error))
        raise CommandError(f"{path} cannot be read as numeric numpy data: {reason}") from None


def read_table(path, target=None, training=False):
    """The Table in the file at `path`; `target` names the column to predict
    (a header name for CSV, a column number for a numpy array)."""
    if Path(path).suffix.lower() not in (".npy", ".npz"):
        values, names = read_csv(path)
        return split_target(values, names, target, training, path)
    loaded = load_numpy(path)  # numpy tells the two kinds apart by their content
    if isinstance(loaded, np.ndarray):
        return split_target(numeric(loaded, path, "the table"), None, target, training, path)
    with loaded as archive:
        arrays = {name: archive[name] for name in archive.files}
    if "metadata" in arrays:
        raise CommandError(f"{path} is a fastmlp model, not data")
    if "X" in arrays:
        if target is not None:
            raise CommandError(f"{path} holds X and y: --target is for tables of columns")
        y = arrays.get("y")
        if training and y is None:
            raise CommandError(f"{path} holds X but no y to train on")
        return Table(numeric(arrays["X"], path, "X"), None, y)
    if len(arrays) != 1:
        found = ", ".join(repr(name) for name in arrays) or "no arrays"
        raise CommandError(
            f"{path} holds {found}; fastmlp reads arrays X (and y to train), or one 2-D table"
        )
    table = numeric(next(iter(arrays.values())), path, "the table")
    return split_target(table, None, target, training, path)


def split_target(values, names, target, training, path):
    """The Table of a file's columns, the target column apart when named."""
    if target is None:
        if training:
            raise CommandError(f"train needs --target COLUMN, the column of {path} to predict")
        return Table(values, names)
    column = target_column(target, names, values.shape[1], path)
    rest = [j for j in range(values.shape[1]) if j != column]
    return Table(values[:, rest], None if names is None else [names[j] for j in rest],
                 values[:, column])


def target_column(target, names, n_columns, path):
    if names is not None:
        if target not in names:
            raise CommandError(f"{path} has no column {target!r} (its columns: "
                               f"{', '.join(names)})")
        return names.index(target)
    try:
        column = int(target)
    except ValueError:
        column = n_columns  # out of range
    if not -n_columns <= column < n_columns:
        raise CommandError(f"--target for {path} is a column number from 0 to {n_columns - 1} "
                           f"(or -1 for the last), got {target!r}")
    return column % n_columns


# ---- the commands ------------------------------------------------------------------------


def parse_params(items, cls):
    """Constructor parameters from name=value strings; values are Python
    literals (numbers, tuples, True, None, ...) or else plain strings."""
    known = cls().get_params()
    params = {}
    for item in items:
        name, sep, text = item.partition("=")
        name = name.strip()
        if not sep or not name:
            raise CommandError(f"--param takes name=value, got {item!r}")
        if name not in known:
            raise CommandError(f"unknown parameter {name!r} of {cls.__name__}; it takes "
                               f"{', '.join(sorted(known))}")
        text = text.strip()
        try:
            params[name] = float(text) if text == "inf" else ast.literal_eval(text)
        except (ValueError, SyntaxError, TypeError, MemoryError, RecursionError):
            params[name] = text
    return params


def one_line(message):
    return " ".join(str(message).split())


def train(args):
    import fastmlp

    output = Path(args.output)
    if not output.parent.is_dir():
        raise CommandError(f"cannot write {output}: there is no folder {output.parent}")
    cls = fastmlp.MLPRegressor if args.regressor else fastmlp.MLPClassifier
    params = parse_params(args.param, cls)
    data = read_table(args.data, args.target, training=True)
    y = data.target
    if not args.regressor and y.dtype.kind == "f" and np.isfinite(y).all() and (
        y == np.round(y)
    ).all():
        y = y.astype(np.int64)  # whole-number labels are classes 0, 1, ..., not 0.0, 1.0
    model = cls(**params)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        model.fit(data.features, y)
    for message in dict.fromkeys(one_line(w.message) for w in caught):
        print(f"{args.prog}: warning: {message}", file=sys.stderr)
    if data.names is not None:
        # as a fit on a DataFrame records them; predict picks columns by them
        model.feature_names_in_ = np.array(data.names, dtype=object)
    fastmlp.save(model, output)
    n_rows, n_features = data.features.shape
    target = f", target {args.target!r}" if args.target is not None else ""
    classes = f" ({len(model.classes_)} classes)" if hasattr(model, "classes_") else ""
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="X does not have valid feature names")
        score = model.score(data.features, y)
    print(f"{cls.__name__} trained on {n_rows} rows x {n_features} features{target}{classes}: "
          f"{model.n_iter_} iterations, loss {model.loss_:.6g}, "
          f"{'R^2' if args.regressor else 'accuracy'} on the training data {score:.4f}")
    print(f"wrote {output}")
    return 0


def features_for(model, data, path):
    """The columns of `data` the model was trained on: by name when both have
    names, else all of them in order."""
    names = getattr(model, "feature_names_in_", None)
    if names is None or data.names is None:
        return data.features
    missing = [name for name in names if name not in data.names]
    if missing:
        raise CommandError(
            f"{path} lacks the model's feature column{'s' if len(missing) > 1 else ''} "
            f"{', '.join(repr(name) for name in missing)}"
        )
    return data.features[:, [data.names.index(name) for name in names]]


def predict(args):
    import fastmlp

    model = fastmlp.load(args.model)
    data = read_table(args.data)
    X = features_for(model, data, args.data)
    with warnings.catch_warnings():
        # columns were matched by name above; the array itself has none
        warnings.filterwarnings("ignore", message="X does not have valid feature names")
        predictions = model.predict(X)
    if args.output and Path(args.output).suffix.lower() == ".npy":
        np.save(args.output, predictions)
        return 0
    rows = predictions.reshape(len(predictions), -1)
    header = (["prediction"] if rows.shape[1] == 1 else
              [f"prediction_{k}" for k in range(rows.shape[1])])
    # str of a numpy number is the shortest text that reads back as it
    lines = [",".join(header)] + [",".join(str(v) for v in row) for row in rows]
    text = "\n".join(lines) + "\n"
    if args.output:
        Path(args.output).write_text(text)
    else:
        sys.stdout.write(text)
    return 0


def info(args):
    import fastmlp

    model = fastmlp.load(args.model)
    widths = [model.coefs_[0].shape[0]] + [c.shape[1] for c in model.coefs_]
    hidden = model._hidden_activations(len(widths) - 2)
    layers = f"{widths[0]}" + "".join(
        f" -> {width} ({activation})"
        for width, activation in zip(widths[1:], hidden + [model.out_activation_])
    )
    names = getattr(model, "feature_names_in_", None)
    features = ", ".join(names) if names is not None else f"{model.n_features_in_}, unnamed"
    defaults = type(model)().get_params()
    changed = [f"{name}={value!r}" for name, value in model.get_params().items()
               if repr(value) != repr(defaults[name])]
    rows = [
        ("layers", layers),
        ("weights", str(model.coefs_[0].dtype)),
        ("features", features),
    ]
    if hasattr(model, "classes_"):
        rows.append(("classes", ", ".join(str(c) for c in model.classes_)))
    trained = f"{model.n_iter_} iterations, loss {model.loss_:.6g}"
    if getattr(model, "best_validation_score_", None) is not None:
        trained += f", best validation score {model.best_validation_score_:.6g}"
    rows.append(("trained", trained))
    rows.append(("parameters", ", ".join(changed) or "the defaults"))
    print(f"{args.model}: fastmlp {type(model).__name__}")
    for label, text in rows:
        print(f"  {label:11s}{text}")
    return 0


def demo(args):
    from fastmlp._demo import main as run_demo

    run_demo(plot_dir=args.plot)
    return 0


# ---- the parser ----------------------------------------------------------------------


def build_parser(prog):
    parser = argparse.ArgumentParser(
        prog=prog,
        description="fastmlp: multilayer perceptrons trained in C, behind scikit-learn's "
        "MLPClassifier and MLPRegressor.",
        epilog=EXAMPLES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    from fastmlp import __version__

    parser.add_argument("--version", action="version", version=f"fastmlp {__version__}")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND")

    p = commands.add_parser(
        "demo", help="the worked backpropagation example, XOR, and digits next to scikit-learn"
    )
    p.add_argument("--plot", metavar="DIR", help="also write the worked example's loss curve "
                   "and XOR's decision boundary as PNGs into DIR (needs matplotlib)")
    p.set_defaults(run=demo)

    data_help = "a numeric CSV file with a header row, an .npy table, or an .npz with X and y"
    p = commands.add_parser("train", help="train a model on a data file and save it")
    p.add_argument("data", metavar="DATA", help=data_help)
    p.add_argument("--target", metavar="COLUMN", help="the column to predict: its header name "
                   "in a CSV file, its number (from 0; -1 the last) in a numpy table")
    p.add_argument("--regressor", action="store_true",
                   help="train an MLPRegressor (default: MLPClassifier)")
    p.add_argument("--param", metavar="NAME=VALUE", nargs="+", action="extend", default=[],
                   help="a constructor parameter, as in Python: hidden_layer_sizes=64,32 "
                   "solver=sgd alpha=1e-3 (repeatable)")
    p.add_argument("-o", "--output", metavar="MODEL", required=True,
                   help="where to save the model (.npz, for fastmlp.load)")
    p.set_defaults(run=train)

    p = commands.add_parser("predict", help="predict with a saved model")
    p.add_argument("model", metavar="MODEL", help="a model saved by fastmlp")
    p.add_argument("data", metavar="DATA", help=data_help + " (y unused); a CSV file's "
                   "columns are matched to the model's features by name")
    p.add_argument("-o", "--output", metavar="OUT", help="write the predictions here (.npy, "
                   "or CSV for any other name) instead of printing them")
    p.set_defaults(run=predict)

    p = commands.add_parser("info", help="describe a saved model")
    p.add_argument("model", metavar="MODEL", help="a model saved by fastmlp")
    p.set_defaults(run=info)
    return parser


def main(argv=None, prog="fastmlp"):
    """Run the command line; returns the exit status."""
    parser = build_parser(prog)
    args = parser.parse_args(argv)
    if args.command is None:
        parser.print_help()
        return 0
    args.prog = prog
    if args.command == "demo":
        if args.plot is not None:
            try:
                import matplotlib  # noqa: F401
            except ImportError:
                parser.error("demo --plot needs matplotlib: pip install 'fastmlp[plot]'")
        return args.run(args)
    try:
        return args.run(args)
    except OSError as error:
        where = f"{error.filename}: " if error.filename else ""
        message = f"{where}{error.strerror or error}"
    except (CommandError, ValueError, TypeError, OverflowError, MemoryError) as error:
        # bad data or parameters reach scikit-learn's checks and numpy as
        # any of these
        message = one_line(error)
    except KeyboardInterrupt:
        return 130
    print(f"{prog}: error: {message}", file=sys.stderr)
    return 1

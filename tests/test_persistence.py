"""model.save / fastmlp.load: a round trip predicts bit for bit the same and
keeps training the same; damaged, tampered or newer files are refused."""

import io
import json
import pickle
import warnings
import zipfile

import numpy as np
import pytest
from sklearn.datasets import make_classification, make_multilabel_classification, make_regression
from sklearn.exceptions import ConvergenceWarning

import fastmlp
from fastmlp import MLPClassifier, MLPRegressor


def quiet_fit(model, X, y):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        return model.fit(X, y)


def round_trip(model):
    buffer = io.BytesIO()
    model.save(buffer)
    buffer.seek(0)
    return fastmlp.load(buffer)


Xc, yc = make_classification(150, 6, n_informative=4, n_classes=3, random_state=0)
Xr, yr = make_regression(150, 6, n_targets=2, random_state=0)
Xm, ym = make_multilabel_classification(150, 6, n_classes=3, random_state=0)

CASES = {
    "multiclass-adam": (MLPClassifier(hidden_layer_sizes=(7,), max_iter=5), Xc, yc),
    "binary-strings-sgd": (
        MLPClassifier(hidden_layer_sizes=(5,), solver="sgd", max_iter=5),
        Xc,
        np.where(yc == 0, "cat", "dog"),
    ),
    "multilabel-lbfgs": (MLPClassifier(hidden_layer_sizes=(5, 4), solver="lbfgs", max_iter=5), Xm, ym),
    "regression-early-stopping": (
        MLPRegressor(hidden_layer_sizes=(6,), early_stopping=True, max_iter=5),
        Xr,
        yr / 100,
    ),
    "poisson-float32": (
        MLPRegressor(loss="poisson", hidden_layer_sizes=(4,), max_iter=5),
        Xr.astype(np.float32),
        np.abs(yr[:, 0]) / 50,
    ),
    "tanh-out-activation": (
        MLPRegressor(hidden_layer_sizes=(3,), out_activation="tanh", max_iter=5, n_iter_no_change=np.inf),
        Xr,
        np.tanh(yr[:, 0] / 100),
    ),
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_round_trip_predicts_bit_identically(case):
    model, X, y = CASES[case]
    model = quiet_fit(model.set_params(random_state=0), X, y)
    loaded = round_trip(model)
    assert type(loaded) is type(model)
    assert loaded.get_params() == model.get_params()
    methods = ["predict"] + (["predict_proba"] if hasattr(model, "predict_proba") else [])
    for method in methods:
        np.testing.assert_array_equal(getattr(loaded, method)(X), getattr(model, method)(X))
    fitted = sorted(k for k in vars(model) if k.endswith("_") and not k.startswith("_"))
    assert fitted == sorted(k for k in vars(loaded) if k.endswith("_") and not k.startswith("_"))
    for name in fitted:
        if name not in ("coefs_", "intercepts_"):
            np.testing.assert_array_equal(np.asarray(getattr(loaded, name)), np.asarray(getattr(model, name)))


def test_save_is_a_function_too_and_says_when_it_drops_callbacks(tmp_path):
    assert "save" in fastmlp.__all__
    model = quiet_fit(MLPClassifier(hidden_layer_sizes=(3,), max_iter=2, random_state=0), Xc, yc)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # nothing to drop, nothing to say
        fastmlp.save(model, tmp_path / "plain.npz")
        model.save(tmp_path / "method.npz")
    for name in ("plain.npz", "method.npz"):
        np.testing.assert_array_equal(fastmlp.load(tmp_path / name).predict_proba(Xc),
                                      model.predict_proba(Xc))
    model.set_params(callbacks=[lambda model, record: False])
    for save in (lambda path: fastmlp.save(model, path), model.save):
        with pytest.warns(UserWarning, match="callbacks.*not saved") as record:
            save(tmp_path / "dropped.npz")
        assert record[0].filename == __file__  # the warning points at the caller's line
        assert fastmlp.load(tmp_path / "dropped.npz").callbacks is None
    assert "callbacks" in fastmlp.save.__doc__ and "callbacks" in model.save.__doc__


def test_training_continues_identically_after_loading(tmp_path):
    model = MLPClassifier(hidden_layer_sizes=(7,), random_state=0)
    model.partial_fit(Xc, yc, classes=[0, 1, 2])
    path = tmp_path / "model.npz"
    model.save(path)
    loaded = fastmlp.load(path)
    for m in (model, loaded):
        m.partial_fit(Xc, yc)
        m.partial_fit(Xc, yc)
    for a, b in zip(model.coefs_, loaded.coefs_):
        np.testing.assert_array_equal(a, b)


def test_feature_names_survive():
    pd = pytest.importorskip("pandas")
    frame = pd.DataFrame(Xc, columns=[f"f{i}" for i in range(6)])
    model = quiet_fit(MLPClassifier(hidden_layer_sizes=(3,), max_iter=2), frame, yc)
    loaded = round_trip(model)
    assert list(loaded.feature_names_in_) == list(frame.columns)
    np.testing.assert_array_equal(loaded.predict(frame), model.predict(frame))


@pytest.fixture
def saved():
    model = quiet_fit(MLPClassifier(hidden_layer_sizes=(5,), max_iter=3, random_state=0), Xc, yc)
    buffer = io.BytesIO()
    model.save(buffer)
    return buffer.getvalue()


def rewrite(data, change):
    """The archive `data` with its members passed through change(name, bytes)."""
    source = zipfile.ZipFile(io.BytesIO(data))
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w") as target:
        for name in source.namelist():
            target.writestr(name, change(name, source.read(name)))
    return out.getvalue()


def load_bytes(data):
    return fastmlp.load(io.BytesIO(data))


def with_metadata(data, edit):
    def change(name, raw):
        if name != "metadata.npy":
            return raw
        meta = json.loads(str(np.load(io.BytesIO(raw))))
        edit(meta)
        out = io.BytesIO()
        np.save(out, np.array(json.dumps(meta)))
        return out.getvalue()

    return rewrite(data, change)


def test_truncated_file_is_refused(saved):
    with pytest.raises(ValueError, match="not a readable fastmlp model"):
        load_bytes(saved[: len(saved) // 2])


def test_other_files_are_refused(tmp_path):
    path = tmp_path / "x.npz"
    np.savez(path, a=np.ones(3))
    with pytest.raises(ValueError, match="no fastmlp metadata"):
        fastmlp.load(path)
    with pytest.raises(ValueError, match="not a fastmlp model: it is not an .npz archive"):
        load_bytes(b"not a zip file at all")


def test_a_missing_file_is_an_os_error_and_a_foreign_one_is_named_as_such(tmp_path):
    with pytest.raises(FileNotFoundError):
        fastmlp.load(tmp_path / "missing.npz")
    with pytest.raises(IsADirectoryError):
        fastmlp.load(tmp_path)
    model = quiet_fit(MLPClassifier(hidden_layer_sizes=(3,), max_iter=2), Xc, yc)
    files = {
        "model.pkl": pickle.dumps(model),
        "notes.txt": b"hidden_layer_sizes = 3\n",
        "empty.npz": b"",
    }
    for name, content in files.items():
        (tmp_path / name).write_bytes(content)
    np.save(tmp_path / "array.npy", np.ones(3))
    np.save(tmp_path / "objects.npy", np.array([{}], dtype=object), allow_pickle=True)
    for name in sorted(files) + ["array.npy", "objects.npy"]:
        with pytest.raises(ValueError, match="is not a fastmlp model") as error:
            fastmlp.load(tmp_path / name)
        # load has no allow_pickle option: numpy's advice about it does not apply
        assert "allow_pickle" not in str(error.value) and "pickle.load" not in str(error.value)
    with pytest.raises(ValueError, match="is not a fastmlp model") as error:
        fastmlp.load(io.BytesIO(pickle.dumps(model)))
    assert "allow_pickle" not in str(error.value)


def test_altered_weights_are_refused(saved):
    def change(name, raw):
        if name != "coef_0.npy":
            return raw
        array = np.load(io.BytesIO(raw))
        array[0, 0] += 1.0
        out = io.BytesIO()
        np.save(out, array)
        return out.getvalue()

    with pytest.raises(ValueError, match="'coef_0' was altered or damaged"):
        load_bytes(rewrite(saved, change))


def test_a_pickled_array_cannot_get_in(saved):
    def change(name, raw):
        if name != "coef_0.npy":
            return raw
        out = io.BytesIO()
        np.save(out, np.array([object()], dtype=object), allow_pickle=True)
        return out.getvalue()

    with pytest.raises(ValueError, match="not a readable.*holds pickled objects") as error:
        load_bytes(rewrite(saved, change))
    assert "allow_pickle" not in str(error.value)


def test_newer_format_versions_are_refused(saved):
    newer = with_metadata(saved, lambda meta: meta.update(format_version=99))
    with pytest.raises(ValueError, match="format 99 by a newer fastmlp"):
        load_bytes(newer)


@pytest.mark.parametrize(
    "edit,message",
    [
        (lambda m: m["fitted"].update(n_features_in_=7), "do not match n_features_in_"),
        (lambda m: m["fitted"].update(n_layers_=5), "weights are missing"),
        (lambda m: m["fitted"].update(out_activation_="gelu"), "unknown output activation"),
        (lambda m: m["params"].update(alpha=-1.0), "'alpha' parameter"),
        (lambda m: m.update(estimator="SVC"), "unknown estimator"),
        (lambda m: m.update(label_type="binary"), "classes"),
        (lambda m: m["digests"].pop("coef_0"), "do not match the metadata"),
        (lambda m: m["optimizer"].update(beta_1=2.0), "optimizer settings out of range"),
        (lambda m: m["optimizer"].update(epsilon=0.0), "optimizer settings out of range"),
        (lambda m: m["optimizer"].update(t=-1), "optimizer settings out of range"),
        (lambda m: m.update(dropout_state=[2**70, 0]), "invalid dropout state"),
        (lambda m: m.update(no_improvement_count=-3), "no-improvement count"),
        (lambda m: m["fitted"].update(t_=-1), "negative"),
        (lambda m: m.update(class_weight_pairs=[[0, "heavy"]]), "invalid class weights"),
        (lambda m: m.update(class_weight_pairs=[[[0], 1.0]]), "invalid class weights"),
    ],
)
def test_inconsistent_metadata_is_refused(saved, edit, message):
    with pytest.raises(ValueError, match=message):
        load_bytes(with_metadata(saved, edit))


def test_what_the_format_cannot_hold_is_refused_at_save():
    with pytest.raises(ValueError, match="RandomState"):
        quiet_fit(MLPClassifier(max_iter=1, random_state=np.random.RandomState(0)), Xc, yc).save(io.BytesIO())
    with pytest.raises(Exception, match="not fitted"):
        MLPClassifier().save(io.BytesIO())
    # labels that differ only in a trailing NUL, which numpy's strings drop:
    # classes_ names "a" twice, and no file could rebuild the encoding
    labels = np.array(["a", "a\x00", "b"], dtype=object)[np.arange(len(yc)) % 3]
    with pytest.raises(ValueError, match="names a class twice"):
        quiet_fit(MLPClassifier(hidden_layer_sizes=(3,), max_iter=1), Xc, labels).save(io.BytesIO())


def test_a_pickled_model_warm_starts_as_the_original_after_early_stopping():
    """Early stopping ends on the best weights, which are then the weights
    themselves; a pickled copy keeps them one array, so a warm start that
    never beats the best score ends where the original's does."""
    model = quiet_fit(MLPClassifier(hidden_layer_sizes=(5,), max_iter=50, early_stopping=True,
                                    warm_start=True, random_state=0), Xc, yc)
    twin = pickle.loads(pickle.dumps(model))
    assert twin._best_params is twin._params
    for m in (model, twin):
        quiet_fit(m.set_params(max_iter=3, learning_rate_init=50.0), Xc, yc)
    for a, b in zip(model.coefs_ + model.intercepts_, twin.coefs_ + twin.intercepts_):
        np.testing.assert_array_equal(a, b)


def test_a_pickle_with_broken_weights_loads_and_reports_them_when_used():
    model = quiet_fit(MLPClassifier(hidden_layer_sizes=(5,), max_iter=5, random_state=0), Xc, yc)
    for broken in ({"intercepts_": None}, {"coefs_": {}}, {"coefs_": [np.ones(3)]}):
        state = {**model.__getstate__(), **broken}
        twin = MLPClassifier.__new__(MLPClassifier)
        twin.__setstate__(state)
        with pytest.raises(Exception):
            twin.predict(Xc)


@pytest.mark.parametrize("how", ["pickle", "deepcopy"])
def test_a_copied_model_sees_edits_to_the_weight_arrays_it_hands_out(how):
    """Weights taken from an unpickled or deep-copied model are the model's
    own, as they are in the fitted one: zeroing them in place changes what
    it predicts, before and after its first prediction."""
    import copy

    model = quiet_fit(MLPClassifier(hidden_layer_sizes=(5,), max_iter=5, random_state=0), Xc, yc)
    twin = pickle.loads(pickle.dumps(model)) if how == "pickle" else copy.deepcopy(model)
    first, last = twin.coefs_[0], twin.intercepts_[-1]
    np.testing.assert_array_equal(twin.predict_proba(Xc), model.predict_proba(Xc))
    first[:] = 0
    last[:] = [0, 5, 0]
    assert first is twin.coefs_[0] and last is twin.intercepts_[-1]
    np.testing.assert_array_equal(twin.predict(Xc), np.ones(len(Xc)))
    model.coefs_[0][:] = 0
    model.intercepts_[-1][:] = [0, 5, 0]
    np.testing.assert_array_equal(twin.predict_proba(Xc), model.predict_proba(Xc))


def test_every_damaged_byte_gives_a_value_error_or_a_clean_load(saved):
    """Flip each byte of the archive's headers, and a sample of the rest:
    loading either refuses with ValueError or yields a working model."""
    offsets = set(range(0, 200)) | set(range(0, len(saved), 13)) | set(
        range(len(saved) - 200, len(saved))
    )
    for offset in sorted(offsets):
        damaged = bytearray(saved)
        damaged[offset] ^= 0xFF
        try:
            model = load_bytes(bytes(damaged))
        except ValueError:
            continue
        assert model.predict(Xc[:2]).shape == (2,)


def test_initial_weights_given_as_arrays_are_saved():
    coefs = [np.full((6, 3), 0.1), np.full((3, 3), -0.2)]
    intercepts = [np.zeros(3), np.ones(3)]
    model = quiet_fit(MLPClassifier(hidden_layer_sizes=(3,), coefs_init=coefs,
                                    intercepts_init=intercepts, max_iter=2, random_state=0),
                       Xc, yc)
    loaded = round_trip(model)
    for given, back in zip(coefs + intercepts, loaded.coefs_init + loaded.intercepts_init):
        np.testing.assert_array_equal(np.asarray(back), given)
    refit = quiet_fit(loaded, Xc, yc)  # the loaded parameters start a fit as the saved did
    for a, b in zip(refit.coefs_, quiet_fit(model, Xc, yc).coefs_):
        np.testing.assert_array_equal(a, b)


@pytest.mark.parametrize("labels", [np.array([0, 1, 2]), np.array(["a", "b", "c"])])
@pytest.mark.parametrize("numpy_keys", [False, True])
def test_class_weight_dicts_keep_their_labels(labels, numpy_keys):
    keys = list(labels) if numpy_keys else labels.tolist()
    weights = dict(zip(keys, [2.0, 1.0, 0.5]))
    model = quiet_fit(MLPClassifier(hidden_layer_sizes=(4,), class_weight=weights, max_iter=2,
                                    random_state=0), Xc, labels[yc])
    loaded = round_trip(model)
    assert loaded.class_weight == {k.item() if numpy_keys else k: w for k, w in weights.items()}
    refit = quiet_fit(loaded, Xc, labels[yc])
    np.testing.assert_array_equal(refit.coefs_[0], quiet_fit(model, Xc, labels[yc]).coefs_[0])


def test_warm_start_with_early_stopping_after_loading():
    """A loaded model's best weights are its weights, as after the fit that
    saved it: a warm start that never improves on the saved score ends with
    its last epoch, as the unsaved model does."""
    params = dict(hidden_layer_sizes=(5,), early_stopping=True, max_iter=30, random_state=0)
    model = quiet_fit(MLPClassifier(**params), Xc, yc)
    loaded = round_trip(model)
    model.set_params(warm_start=True, max_iter=3, learning_rate_init=1e-9)
    loaded.set_params(warm_start=True, max_iter=3, learning_rate_init=1e-9)
    quiet_fit(model, Xc, yc)
    quiet_fit(loaded, Xc, yc)
    for a, b in zip(model.coefs_, loaded.coefs_):
        np.testing.assert_array_equal(a, b)


def test_compressed_members_are_refused_before_reading(saved):
    """A member that inflates to far more than the file (a decompression
    bomb) is refused from the archive's directory, before it is read."""
    source = zipfile.ZipFile(io.BytesIO(saved))
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w") as target:
        for name in source.namelist():
            target.writestr(name, source.read(name))
        target.writestr("junk.npy", b"\0" * 50_000_000, compress_type=zipfile.ZIP_DEFLATED)
    assert len(out.getvalue()) < 1_000_000
    with pytest.raises(ValueError, match="compressed members"):
        load_bytes(out.getvalue())

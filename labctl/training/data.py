"""Datasets for in-situ training: scikit-learn's digits, synthetic sets, a user's file.

Every dataset comes as a :class:`Dataset` with a stratified train/test split (70/30 unless
told otherwise) drawn with a seed, so a seed names the split exactly. Nothing is downloaded:
the digits (8×8 images, 16 grey levels, 1,797 samples, 10 classes) ship with scikit-learn.

- ``digits``: pixels binarized at half scale (value ≥ 8 of 16 → 1, else 0);
- ``digits-scaled``: pixels scaled to [0, 1];
- ``moons``, ``circles``, ``xor``: two classes that no straight line separates (scikit-learn's
  ``make_moons``/``make_circles``; XOR of the signs of two uniform coordinates), two features;
- a path to a ``.npz`` (arrays ``x`` and ``y``, or ``x_train``, ``y_train``, ``x_test``,
  ``y_test``) or a ``.csv`` (numbers, one sample per line, the class label in the last column,
  an optional header line). A file that is not that fails with one line naming it.

:func:`logistic_baseline` is the float reference reported beside every training run.
"""

from __future__ import annotations

import csv
import zipfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from labctl.errors import ConfigError

BUILTIN = ("digits", "digits-scaled", "moons", "circles", "xor")


@dataclass(frozen=True)
class Dataset:
    """Features (samples, features) as floats and integer labels 0..n_classes−1."""

    name: str
    x_train: np.ndarray
    y_train: np.ndarray
    x_test: np.ndarray
    y_test: np.ndarray

    @property
    def n_features(self) -> int:
        return self.x_train.shape[1]

    @property
    def n_classes(self) -> int:
        return int(max(self.y_train.max(), self.y_test.max())) + 1

    def describe(self) -> str:
        return (f"{self.name}: {len(self.y_train)} train / {len(self.y_test)} test samples, "
                f"{self.n_features} features, {self.n_classes} classes")


def split(name: str, x, y, test_fraction: float = 0.3, seed: int = 0) -> Dataset:
    """A stratified split of (x, y): ``test_fraction`` of every class goes to the test set."""
    from sklearn.model_selection import train_test_split

    x = np.asarray(x, dtype=float)
    y = _labels(y, name)
    if not 0 < test_fraction < 1:
        raise ConfigError(name, f"test fraction {test_fraction!r} must be between 0 and 1")
    try:
        xa, xb, ya, yb = train_test_split(x, y, test_size=test_fraction, random_state=seed,
                                          stratify=y)
    except ValueError as exc:
        raise ConfigError(name, f"cannot split stratified ({exc})") from None
    return Dataset(name, xa, ya, xb, yb)


def digits(binarize: bool = True, test_fraction: float = 0.3, seed: int = 0) -> Dataset:
    """scikit-learn's 8×8 digits, binarized at half scale or scaled to [0, 1]."""
    from sklearn.datasets import load_digits

    d = load_digits()
    x = (d.data >= 8).astype(float) if binarize else d.data / 16.0
    return split("digits" if binarize else "digits-scaled", x, d.target, test_fraction, seed)


def synthetic(kind: str, n_samples: int = 600, noise: float = 0.1, test_fraction: float = 0.3,
              seed: int = 0) -> Dataset:
    """Two classes that are not linearly separable, two features: ``moons``, ``circles`` or
    ``xor``; ``noise`` is the standard deviation of Gaussian jitter added to the points."""
    from sklearn.datasets import make_circles, make_moons

    rng = np.random.default_rng(seed)
    if kind == "moons":
        x, y = make_moons(n_samples, noise=noise, random_state=seed)
    elif kind == "circles":
        x, y = make_circles(n_samples, noise=noise, factor=0.5, random_state=seed)
    elif kind == "xor":
        x = rng.uniform(-1, 1, (n_samples, 2))
        y = (np.sign(x[:, 0]) != np.sign(x[:, 1])).astype(int)
        x = x + rng.normal(0, noise, x.shape)
    else:
        raise ConfigError("dataset", f"unknown synthetic set {kind!r} (known: moons, circles, "
                          "xor)")
    return split(kind, x, y, test_fraction, seed)


def load_file(path: str | Path, test_fraction: float = 0.3, seed: int = 0) -> Dataset:
    """A user's ``.npz`` or ``.csv`` (module docstring)."""
    path = Path(path)
    where = str(path)
    if not path.is_file():
        raise ConfigError(where, "dataset file not found")
    suffix = path.suffix.lower()
    if suffix == ".npz":
        try:
            with np.load(path, allow_pickle=False) as f:
                arrays = {k: f[k] for k in f.files}
        except (OSError, ValueError, zipfile.BadZipFile) as exc:
            raise ConfigError(where, f"not a readable .npz file ({exc})".split("\n")[0]) from None
        if {"x_train", "y_train", "x_test", "y_test"} <= set(arrays):
            ds = Dataset(path.stem, _features(arrays["x_train"], where, "x_train"),
                         _labels(arrays["y_train"], where), _features(arrays["x_test"], where,
                                                                      "x_test"),
                         _labels(arrays["y_test"], where))
            for part in ("train", "test"):
                if len(getattr(ds, f"x_{part}")) != len(getattr(ds, f"y_{part}")):
                    raise ConfigError(where, f"x_{part} and y_{part} differ in length")
            if ds.x_train.shape[1] != ds.x_test.shape[1]:
                raise ConfigError(where, "x_train and x_test differ in number of features")
            return ds
        if not {"x", "y"} <= set(arrays):
            raise ConfigError(where, "expected arrays 'x' and 'y' (or x_train, y_train, x_test, "
                              f"y_test); found {', '.join(sorted(arrays)) or 'none'}")
        x = _features(arrays["x"], where, "x")
        y = arrays["y"]
    elif suffix == ".csv":
        x, y = _read_csv(path)
    else:
        raise ConfigError(where, "dataset files are .npz or .csv")
    if len(x) != len(y):
        raise ConfigError(where, f"{len(x)} samples but {len(y)} labels")
    return split(str(path), x, y, test_fraction, seed)


def _read_csv(path: Path) -> tuple[np.ndarray, np.ndarray]:
    try:
        with path.open(newline="") as f:
            lines = [row for row in csv.reader(f) if row and any(c.strip() for c in row)]
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(str(path), f"cannot read ({exc})".split("\n")[0]) from None
    if lines and not _numeric(lines[0]):
        lines = lines[1:]  # a header
    if not lines:
        raise ConfigError(str(path), "no samples")
    width = len(lines[0])
    for k, row in enumerate(lines):
        if len(row) != width or not _numeric(row):
            raise ConfigError(f"{path}, sample {k + 1}", f"expected {width} numbers, got "
                              f"{','.join(row)[:60]!r}")
    if width < 2:
        raise ConfigError(str(path), "need at least one feature column and a label column")
    data = np.array(lines, dtype=float)
    return _features(data[:, :-1], str(path), "features"), data[:, -1]


def _numeric(row: list[str]) -> bool:
    try:
        [float(c) for c in row]
    except ValueError:
        return False
    return True


def _features(x, where: str, what: str) -> np.ndarray:
    x = np.asarray(x)
    if x.ndim != 2 or x.dtype.kind not in "biuf" or not np.all(np.isfinite(x)):
        raise ConfigError(where, f"{what} must be a 2-D array of finite numbers "
                          f"(got shape {x.shape}, dtype {x.dtype})")
    return x.astype(float)


def _labels(y, where: str) -> np.ndarray:
    y = np.asarray(y)
    if y.ndim != 1 or y.dtype.kind not in "biuf" or not np.all(np.isfinite(y)) or \
            not np.all(y == np.round(y)) or (y.size and y.min() < 0):
        raise ConfigError(where, "labels must be integers 0, 1, 2, ... (one per sample)")
    if np.unique(y).size < 2:
        raise ConfigError(where, "need at least two classes")
    return y.astype(np.int64)


def load(spec: str, test_fraction: float = 0.3, seed: int = 0) -> Dataset:
    """A dataset by name (:data:`BUILTIN`) or by file path."""
    if spec == "digits":
        return digits(True, test_fraction, seed)
    if spec == "digits-scaled":
        return digits(False, test_fraction, seed)
    if spec in ("moons", "circles", "xor"):
        return synthetic(spec, test_fraction=test_fraction, seed=seed)
    if spec.lower().endswith((".npz", ".csv")) or Path(spec).exists():
        return load_file(spec, test_fraction, seed)
    raise ConfigError("dataset", f"unknown dataset {spec!r} (known: {', '.join(BUILTIN)}, or "
                      "a .npz / .csv file)")


def logistic_baseline(ds: Dataset, seed: int = 0) -> float:
    """Test accuracy of a float multinomial logistic regression (scikit-learn) on ``ds``."""
    from sklearn.linear_model import LogisticRegression

    model = LogisticRegression(max_iter=2000, random_state=seed)
    model.fit(ds.x_train, ds.y_train)
    return float(model.score(ds.x_test, ds.y_test))

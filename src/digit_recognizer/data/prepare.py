"""Validate the raw competition CSVs and turn them into compact arrays plus stratified CV folds."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from digit_recognizer import paths
from digit_recognizer.atomic import atomic_dir
from digit_recognizer.data.csv_io import SUBMISSION_COLUMNS, TEST_COLUMNS, TRAIN_COLUMNS, data_line, read_int_csv
from digit_recognizer.data.origin import read_origin
from digit_recognizer.errors import CsvError, UserError


@dataclass
class Competition:
    train_images: np.ndarray  # (N, 28, 28) uint8
    train_labels: np.ndarray  # (N,) int64
    test_images: np.ndarray  # (M, 28, 28) uint8
    test_labels: np.ndarray | None  # (M,) int64, only where an answer key exists (the embedded sample)


def load_competition(raw_dir: str | Path) -> Competition:
    """Read and validate train.csv, test.csv, sample_submission.csv (and answers.csv when present)."""
    raw_dir = Path(raw_dir)
    train_path, test_path = raw_dir / paths.TRAIN_CSV, raw_dir / paths.TEST_CSV
    train = read_int_csv(train_path, TRAIN_COLUMNS, [(0, 9)] + [(0, 255)] * 784, np.uint8)
    test = read_int_csv(test_path, TEST_COLUMNS, [(0, 255)] * 784, np.uint8)
    read_submission(raw_dir / paths.SAMPLE_SUBMISSION_CSV, n_rows=len(test))
    answers_path = raw_dir / paths.ANSWERS_CSV
    test_labels = read_submission(answers_path, n_rows=len(test)) if answers_path.exists() else None
    return Competition(
        train_images=_to_images(train[:, 1:]),
        train_labels=train[:, 0].astype(np.int64),
        test_images=_to_images(test),
        test_labels=test_labels,
    )


def read_submission(path: str | Path, n_rows: int | None = None) -> np.ndarray:
    """Validate an `ImageId,Label` file (against a test set of `n_rows` images, if given); return its labels."""
    int32 = np.iinfo(np.int32)
    values = read_int_csv(path, SUBMISSION_COLUMNS, [(int32.min, int32.max), (0, 9)])  # ids: checked below
    n_rows = n_rows or len(values)
    if len(values) != n_rows:
        raise CsvError(
            str(path),
            f"has {len(values)} rows, expected {n_rows}: the test set (test.csv) has {n_rows} images, and the "
            "two files disagree in length (one row per test image)",
        )
    ids = values[:, 0]
    wrong = np.flatnonzero(ids != np.arange(1, n_rows + 1))
    if wrong.size:
        row = int(wrong[0]) + 1
        message = f"ImageId {ids[row - 1]} should be {row} (ids run 1..{n_rows})"
        raise CsvError(str(path), message, data_line(path, row), "ImageId")
    return values[:, 1].astype(np.int64)


def make_folds(labels: np.ndarray, n_folds: int, seed: int, source: str = "train.csv") -> np.ndarray:
    """Stratified fold index (0..n_folds-1) for every training row; the same seed gives the same folds."""
    if n_folds < 2:
        raise UserError(f"cv.folds is {n_folds}: cross-validation needs at least 2 folds")
    counts = np.bincount(labels, minlength=10)
    scarce = [f"{digit} ({count})" for digit, count in enumerate(counts) if count < n_folds]
    if scarce:
        raise UserError(
            f"{source}: too few rows of digit {', '.join(scarce)}; cv.folds={n_folds} needs {n_folds} of every digit"
        )
    from sklearn.model_selection import StratifiedKFold  # a 1 s import that only this stage needs

    folds = np.empty(len(labels), dtype=np.int8)
    splitter = StratifiedKFold(n_splits=n_folds, shuffle=True, random_state=seed)
    for fold, (_, held_out) in enumerate(splitter.split(np.zeros(len(labels)), labels)):
        folds[held_out] = fold
    return folds


def prepare(raw_dir: str | Path, out_dir: str | Path, n_folds: int, seed: int) -> dict:
    """Validate the raw CSVs and write the arrays and folds into `out_dir` atomically; return a summary."""
    try:
        competition = load_competition(raw_dir)
        folds = make_folds(competition.train_labels, n_folds, seed, str(Path(raw_dir) / paths.TRAIN_CSV))
    except UserError as error:
        origin = read_origin(Path(raw_dir))
        if origin is None or origin["kind"] == "sample":
            raise
        raise UserError(f"{error} ({raw_dir} is a copy of {origin['description']})") from None
    with atomic_dir(out_dir) as tmp:
        np.save(tmp / "train_images.npy", competition.train_images)
        np.save(tmp / "train_labels.npy", competition.train_labels)
        np.save(tmp / "test_images.npy", competition.test_images)
        np.save(tmp / "folds.npy", folds)
        if competition.test_labels is not None:
            np.save(tmp / "test_labels.npy", competition.test_labels)
    return {
        "train_rows": len(competition.train_labels),
        "test_rows": len(competition.test_images),
        "folds": n_folds,
        "answer_key": competition.test_labels is not None,
    }


def _to_images(pixels: np.ndarray) -> np.ndarray:
    return np.ascontiguousarray(pixels).reshape(-1, 28, 28)

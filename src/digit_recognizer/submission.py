"""Kaggle's submission file: `ImageId,Label`, ImageId 1..N in test.csv order, labels 0..9."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from digit_recognizer.csv_io import SUBMISSION_COLUMNS, write_int_csv
from digit_recognizer.errors import UserError
from digit_recognizer.prepare import read_submission


def write_submission(labels: np.ndarray, path: str | Path, sample_submission: str | Path) -> None:
    """Check `labels` against sample_submission.csv (row count), then write the file atomically."""
    expected = len(read_submission(sample_submission))
    labels = np.asarray(labels)
    if labels.shape != (expected,):
        raise UserError(f"submission has {len(labels)} labels, {sample_submission} has {expected} rows")
    if labels.min() < 0 or labels.max() > 9:
        raise UserError("submission labels must be digits 0..9")
    ids = np.arange(1, expected + 1)
    write_int_csv(path, SUBMISSION_COLUMNS, np.column_stack([ids, labels]).astype(np.int32))
    read_submission(path, n_rows=expected)  # read back what was written, as Kaggle will

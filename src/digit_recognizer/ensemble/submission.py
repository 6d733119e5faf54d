"""Kaggle's submission file: `ImageId,Label`, ImageId 1..N in test.csv order, labels 0..9."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from digit_recognizer.atomic import atomic_path
from digit_recognizer.data.csv_io import SUBMISSION_COLUMNS, write_int_csv
from digit_recognizer.data.prepare import read_submission
from digit_recognizer.errors import UserError


def write_submission(labels: np.ndarray, path: str | Path, sample_submission: str | Path) -> None:
    """Check `labels` against sample_submission.csv (row count), then write the file atomically: it is read
    back as Kaggle will read it before it replaces the old one."""
    expected = len(read_submission(sample_submission))
    labels = np.asarray(labels)
    if labels.shape != (expected,):
        raise UserError(f"submission has {len(labels)} labels, {sample_submission} has {expected} rows")
    if labels.min() < 0 or labels.max() > 9:
        raise UserError("submission labels must be digits 0..9")
    ids = np.arange(1, expected + 1)
    with atomic_path(path) as tmp:
        write_int_csv(tmp, SUBMISSION_COLUMNS, np.column_stack([ids, labels]).astype(np.int32))
        read_submission(tmp, n_rows=expected)

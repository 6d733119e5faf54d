"""The arrays `prepare` writes to data/prepared/ and every later stage reads: images, labels and CV folds.

Apart from prepare.py so that the train stages load them without importing the CSV checks (pyarrow).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from digit_recognizer import paths
from digit_recognizer.errors import UserError


@dataclass
class Prepared:
    train_images: np.ndarray
    train_labels: np.ndarray
    test_images: np.ndarray
    folds: np.ndarray
    test_labels: np.ndarray | None

    @property
    def n_folds(self) -> int:
        return int(self.folds.max()) + 1


def load_prepared(prepared_dir: str | Path = paths.PREPARED) -> Prepared:
    """Load the arrays written by `prepare` (well under a second for Kaggle's 42,000 + 28,000 rows)."""
    prepared_dir = Path(prepared_dir)
    if not (prepared_dir / "folds.npy").exists():
        raise UserError(f"{prepared_dir} has no prepared arrays: run `dvc repro prepare` first")
    labels_path = prepared_dir / "test_labels.npy"
    return Prepared(
        train_images=np.load(prepared_dir / "train_images.npy"),
        train_labels=np.load(prepared_dir / "train_labels.npy"),
        test_images=np.load(prepared_dir / "test_images.npy"),
        folds=np.load(prepared_dir / "folds.npy"),
        test_labels=np.load(labels_path) if labels_path.exists() else None,
    )

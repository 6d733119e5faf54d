"""One architecture's predictions assembled from its fold runs: every training row's out-of-fold probabilities
and the fold models' mean test probabilities. Read by the ensemble, the report, `compare` and the benchmarks."""

from __future__ import annotations

import io
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from digit_recognizer import paths
from digit_recognizer.errors import UserError
from digit_recognizer.metrics import accuracy, log_loss


@dataclass
class ArchitecturePredictions:
    name: str
    oof: np.ndarray  # (N, 10): each training row predicted by the fold model that did not see it
    test: np.ndarray  # (M, 10): the fold models' test probabilities, averaged
    fold_accuracy: list[float]
    fold_log_loss: list[float]


def read_local(path: Path) -> bytes:
    if not path.exists():
        raise UserError(f"{path} is missing: run `dvc repro train` first")
    return path.read_bytes()


def load_architecture(
    name: str,
    folds: np.ndarray,
    labels: np.ndarray,
    train_dir: Path = paths.TRAIN,
    read: Callable[[Path], bytes] = read_local,
) -> ArchitecturePredictions:
    """Assemble one architecture's OOF and mean test probabilities from its fold runs.

    read: how to get a file's bytes (this checkout's files by default; `compare` reads other revisions).
    """
    n_folds = int(folds.max()) + 1
    oof = np.full((len(folds), 10), np.nan, dtype=np.float32)
    tests, fold_acc, fold_loss = [], [], []
    for fold in range(n_folds):
        run = paths.train_run_dir(name, fold, train_dir) / "predictions.npz"
        with np.load(io.BytesIO(read(run))) as saved:
            index, fold_oof = saved["oof_index"], saved["oof"]
            if not np.array_equal(index, np.flatnonzero(folds == fold)):
                raise UserError(f"{run} was trained on other folds than data/prepared/folds.npy: re-run train")
            oof[index] = fold_oof
            tests.append(saved["test"])
        fold_acc.append(accuracy(fold_oof, labels[index]))
        fold_loss.append(log_loss(fold_oof, labels[index]))
    return ArchitecturePredictions(name, oof, np.mean(tests, axis=0), fold_acc, fold_loss)

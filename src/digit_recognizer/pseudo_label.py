"""Pseudo-labels for a second training round, kept fold-clean.

The first round's fold-k models trained on every fold but k. Averaged over the teacher architectures, their
test probabilities label the test digits they are confident about, and only fold k's second-round model
learns from those labels. So no label it learns, given or guessed, came from a model that saw fold k's
labels, and its score on fold k stays an honest CV figure. The teachers are averaged with equal weights:
the ensemble's fitted weights read the other folds' OOF predictions, which come from models that did train
on fold k.

labels.npz holds, for each fold k: fold<k>_index (test rows), fold<k>_label, fold<k>_confidence.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from digit_recognizer import paths
from digit_recognizer.atomic import atomic_path, write_json


@dataclass
class FoldPseudoLabels:
    index: np.ndarray  # test rows picked
    label: np.ndarray  # their pseudo-labels
    confidence: np.ndarray  # the teachers' mean probability of that label


def teachers_test_probabilities(teachers: list[str], fold: int, train_dir: Path = paths.TRAIN) -> np.ndarray:
    """(M, 10): the mean test probabilities of the teachers' first-round models for `fold` (and no other)."""
    probabilities = []
    for teacher in teachers:
        with np.load(paths.train_run_dir(teacher, fold, train_dir) / "predictions.npz") as saved:
            probabilities.append(saved["test"].astype(np.float64))
    return np.mean(probabilities, axis=0)


def pick_confident(probabilities: np.ndarray, threshold: float) -> FoldPseudoLabels:
    confidence = probabilities.max(1)
    index = np.flatnonzero(confidence >= threshold)
    return FoldPseudoLabels(index, probabilities[index].argmax(1), confidence[index].astype(np.float32))


def make_pseudo_labels(
    teachers: list[str], n_folds: int, threshold: float, train_dir: Path = paths.TRAIN
) -> list[FoldPseudoLabels]:
    return [pick_confident(teachers_test_probabilities(teachers, k, train_dir), threshold) for k in range(n_folds)]


def save_pseudo_labels(per_fold: list[FoldPseudoLabels], path: Path = paths.PSEUDO_LABELS) -> None:
    arrays = {}
    for fold, picked in enumerate(per_fold):
        arrays |= {f"fold{fold}_{key}": value for key, value in vars(picked).items()}
    with atomic_path(path) as tmp, open(tmp, "wb") as f:
        np.savez(f, **arrays)


def load_fold_pseudo_labels(fold: int, path: Path = paths.PSEUDO_LABELS) -> FoldPseudoLabels:
    with np.load(path) as saved:
        return FoldPseudoLabels(*(saved[f"fold{fold}_{key}"] for key in ("index", "label", "confidence")))


def summarize(per_fold: list[FoldPseudoLabels], n_test: int, test_labels: np.ndarray | None) -> dict:
    """How many test digits each fold gets, and (where an answer key exists: the sample) how many are right."""
    summary: dict = {"test_rows": n_test, "folds": {}}
    for fold, picked in enumerate(per_fold):
        entry = {"rows": len(picked.index), "share": round(len(picked.index) / max(n_test, 1), 4)}
        if test_labels is not None and len(picked.index):
            entry["accuracy"] = round(float((test_labels[picked.index] == picked.label).mean()), 6)
        summary["folds"][str(fold)] = entry
    return summary


def write_summary(summary: dict, path: Path = paths.PSEUDO_SUMMARY) -> None:
    write_json(path, summary)

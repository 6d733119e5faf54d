"""Pseudo-labels for a second training round, kept fold-clean.

The first round's fold-k models trained on every fold but k. Averaged over the teacher architectures, their
test probabilities label the test digits they are confident about, and only fold k's second-round model
learns from those labels. So no label it learns, given or guessed, came from a model that saw fold k's
labels, and its score on fold k stays an honest CV figure. The teachers are averaged with equal weights:
the ensemble's fitted weights read the other folds' OOF predictions, which come from models that did train
on fold k. Each `train_pseudo@<arch>-<k>` stage picks its own fold's labels: a few milliseconds, and no
stage of its own to re-run while the second round is off.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from digit_recognizer import paths


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


def fold_pseudo_labels(
    teachers: list[str], fold: int, threshold: float, train_dir: Path = paths.TRAIN
) -> FoldPseudoLabels:
    """The test digits that fold `fold`'s teachers agree on with at least `threshold` mean probability."""
    return pick_confident(teachers_test_probabilities(teachers, fold, train_dir), threshold)


def describe(picked: FoldPseudoLabels, n_test: int, test_labels: np.ndarray | None) -> str:
    """'1,930 of 2,000 test digits pseudo-labelled', and how many are right where an answer key exists (the sample)."""
    line = f"{len(picked.index):,} of {n_test:,} test digits pseudo-labelled"
    if test_labels is not None and len(picked.index):
        line += f", {(test_labels[picked.index] == picked.label).mean():.2%} right (the sample's answer key)"
    return line

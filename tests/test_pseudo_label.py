"""Pseudo-labelling stays fold-clean: fold k's second-round model never learns from fold k's labels."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
import torch

from digit_recognizer import paths
from digit_recognizer.params import FitConfig
from digit_recognizer.training.fold_run import train_fold
from digit_recognizer.training.pseudo_label import (
    describe,
    fold_pseudo_labels,
    pick_confident,
    teachers_test_probabilities,
)

from .conftest import TINY_NETS, subset

TEACHERS = ["cnn", "mlp"]
CONFIG = FitConfig(epochs=2, batch_size=64, lr=3e-3, rotate=10)


def first_and_second_round(data, root):
    """Round 1 for both teachers on folds 0 and 1, pseudo-labels for each, round 2 of cnn on fold 0."""
    train_dir = root / "train"
    for teacher in TEACHERS:
        for fold in (0, 1):
            out = paths.train_run_dir(teacher, fold, train_dir)
            train_fold(teacher, fold, TINY_NETS[teacher], CONFIG, data, out, 0, torch.device("cpu"))
    probabilities = {fold: teachers_test_probabilities(TEACHERS, fold, train_dir) for fold in (0, 1)}
    picked = pick_confident(probabilities[0], threshold=0.6)
    second = paths.train_run_dir("cnn" + paths.PSEUDO_SUFFIX, 0, train_dir)
    metrics, _ = train_fold(
        "cnn", 0, TINY_NETS["cnn"], CONFIG, data, second, 0, torch.device("cpu"), pseudo=(picked.index, picked.label)
    )
    return probabilities, picked, second, metrics


@pytest.mark.slow
def test_second_round_on_a_fold_never_learns_that_folds_labels(sample_prepared, tmp_path):
    """Shuffle fold 0's labels: fold 0's pseudo-labels and second-round model must not change at all."""
    data = subset(sample_prepared, np.arange(1500))
    shuffled_labels = data.train_labels.copy()
    fold0 = np.flatnonzero(data.folds == 0)
    shuffled_labels[fold0] = np.random.default_rng(0).permutation(shuffled_labels[fold0])
    shuffled = dataclasses.replace(data, train_labels=shuffled_labels)

    true_run = first_and_second_round(data, tmp_path / "true")
    shuffled_run = first_and_second_round(shuffled, tmp_path / "shuffled")

    (true_probs, true_picked, true_dir, true_metrics) = true_run
    (shuffled_probs, shuffled_picked, shuffled_dir, shuffled_metrics) = shuffled_run
    np.testing.assert_array_equal(true_probs[0], shuffled_probs[0])
    np.testing.assert_array_equal(true_picked.index, shuffled_picked.index)
    np.testing.assert_array_equal(true_picked.label, shuffled_picked.label)
    assert 0 < true_metrics["pseudo_rows"] == len(true_picked.index) < len(data.test_images)
    assert true_metrics["train_rows"] == np.sum(data.folds != 0)
    assert true_dir.parent.name == "pseudo"  # beside data/train, where the ensemble finds "cnn+pseudo"
    weights = {name: torch.load(d / "model.pt")["state_dict"] for name, d in (("t", true_dir), ("s", shuffled_dir))}
    assert all(torch.equal(weights["t"][k], weights["s"][k]) for k in weights["t"])
    predictions = [np.load(d / "predictions.npz") for d in (true_dir, shuffled_dir)]
    np.testing.assert_array_equal(predictions[0]["test"], predictions[1]["test"])
    assert true_metrics["accuracy"] > shuffled_metrics["accuracy"] + 0.3  # scored on the (shuffled) fold 0
    # fold 1's teachers did learn fold 0's labels, so its pseudo-labels are another fold's business
    assert not np.array_equal(true_probs[1], shuffled_probs[1])


def test_confident_digits_are_picked_with_their_teachers_label(tmp_path):
    probabilities = np.full((4, 10), 0.01)
    probabilities[[0, 1, 2, 3], [3, 5, 7, 9]] = [0.91, 0.5, 0.99, 0.2]
    picked = pick_confident(probabilities, threshold=0.9)
    np.testing.assert_array_equal(picked.index, [0, 2])
    np.testing.assert_array_equal(picked.label, [3, 7])
    assert (
        describe(picked, 4, np.array([3, 5, 1, 9]))
        == "2 of 4 test digits pseudo-labelled, 50.00% right (the sample's answer key)"
    )
    assert describe(picked, 4, None) == "2 of 4 test digits pseudo-labelled"


def test_each_fold_is_labelled_by_its_own_teachers(tmp_path):
    train_dir = tmp_path / "train"
    for fold in (0, 1):
        for teacher, sure in (("cnn", 0.98), ("cnn3", 0.96)):
            test = np.full((3, 10), (1 - sure) / 9, dtype=np.float32)
            test[:, fold] = sure  # fold 0's teachers say "0" for every digit, fold 1's say "1"
            run = paths.train_run_dir(teacher, fold, train_dir)
            run.mkdir(parents=True)
            np.savez(run / "predictions.npz", oof_index=np.arange(1), oof=np.zeros((1, 10)), test=test)
    per_fold = [fold_pseudo_labels(["cnn", "cnn3"], fold, 0.965, train_dir) for fold in (0, 1)]
    assert [list(p.label) for p in per_fold] == [[0, 0, 0], [1, 1, 1]]
    np.testing.assert_allclose(per_fold[0].confidence, 0.97, rtol=1e-6)  # the teachers' mean
    assert len(fold_pseudo_labels(["cnn", "cnn3"], 0, 0.975, train_dir).index) == 0

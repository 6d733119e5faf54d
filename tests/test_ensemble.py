"""Ensemble methods, each fitted on out-of-fold rows and scored on rows it was not fitted on."""

from __future__ import annotations

import numpy as np
import pytest

from digit_recognizer.ensemble.combine import Combiner, fit_log_linear_weights, fit_weights, log_linear_pool, nested_oof
from digit_recognizer.errors import UserError
from digit_recognizer.metrics import log_loss


def noisy_predictions(labels: np.ndarray, noise: float, rng: np.random.Generator) -> np.ndarray:
    """Probabilities that favour the true label, blurred by `noise` (0: perfect, large: random)."""
    logits = np.eye(10)[labels] * 3 + rng.normal(0, noise, (len(labels), 10))
    exp = np.exp(logits - logits.max(1, keepdims=True))
    return (exp / exp.sum(1, keepdims=True)).astype(np.float32)


@pytest.fixture
def three_models():
    rng = np.random.default_rng(0)
    labels = rng.integers(0, 10, 2000)
    folds = np.arange(2000) % 5
    oofs = np.stack([noisy_predictions(labels, noise, rng) for noise in (1.0, 1.5, 50.0)])  # the last is junk
    return oofs, labels, folds


def test_weighted_ensemble_gives_a_useless_model_zero_weight(three_models):
    oofs, labels, _ = three_models
    weights = fit_weights(oofs, labels)
    assert weights.sum() == pytest.approx(1) and weights.min() >= 0
    assert weights[0] > weights[1] > weights[2] and weights[2] == 0


@pytest.mark.parametrize(
    "method", ["mean", "weighted", "loglinear", pytest.param("stacking", marks=pytest.mark.slow)]
)  # stacking fits a logistic regression per fold: 12 s on 2 cores
def test_nested_oof_never_scores_rows_it_was_fitted_on(three_models, method, monkeypatch):
    oofs, labels, folds = three_models
    fitted_on: list[np.ndarray] = []
    original_fit = Combiner.fit

    def spy(self, oof, fit_labels):
        fitted_on.append(fit_labels.shape[0])
        return original_fit(self, oof, fit_labels)

    monkeypatch.setattr(Combiner, "fit", spy)
    honest = nested_oof({"method": method, "stacking_c": 1.0}, oofs, labels, folds)
    assert fitted_on == [1600] * 5  # each fold's combiner saw the other 4 folds only
    assert honest.shape == (2000, 10)
    np.testing.assert_allclose(honest.sum(1), 1, rtol=1e-4)
    if method != "mean":  # a fitted combiner learns to ignore the junk model; the plain mean cannot
        assert (honest.argmax(1) == labels).mean() >= (oofs[1].argmax(1) == labels).mean()


def test_log_linear_weights_are_the_log_loss_minimum_and_ignore_junk(three_models):
    oofs, labels, _ = three_models
    weights = fit_log_linear_weights(oofs, labels)
    assert weights.min() >= 0 and weights[0] > weights[1] > 20 * weights[2]

    def loss(w: np.ndarray) -> float:
        return log_loss(log_linear_pool(w, oofs), labels)

    best = loss(weights)
    assert best < loss(np.full(3, 1 / 3)) and best < loss(np.array([1.0, 0.0, 0.0]))
    for a in range(3):  # no small step along any weight (that stays >= 0) lowers the loss: the gradient is right
        for step in (-1e-2, 1e-2):
            moved = weights.copy()
            moved[a] = max(moved[a] + step, 0)
            assert loss(moved) >= best - 1e-9


def test_log_linear_pool_lets_a_confident_no_outvote_an_average():
    # model 0 leans to 1 over 7; model 1 is sure it is no 1 and leans to 7. The average says 1, the pool says 7.
    oofs = np.full((2, 1, 10), 1e-3)
    oofs[0, 0, [1, 7]] = 0.9, 0.1
    oofs[1, 0, [1, 7, 4]] = 0.02, 0.6, 0.38
    assert oofs.mean(0).argmax(1)[0] == 1
    pooled = log_linear_pool(np.array([1.0, 1.0]), oofs)
    np.testing.assert_allclose(pooled.sum(1), 1, rtol=1e-6)
    assert pooled.argmax(1)[0] == 7


@pytest.mark.slow  # 13 s on 2 cores
def test_stacking_outscores_the_mean_when_one_model_is_junk(three_models):
    oofs, labels, folds = three_models
    args = {"stacking_c": 1.0}
    mean = nested_oof({**args, "method": "mean"}, oofs, labels, folds)
    stacked = nested_oof({**args, "method": "stacking"}, oofs, labels, folds)
    assert (stacked.argmax(1) == labels).mean() > (mean.argmax(1) == labels).mean()


def test_unknown_method_fails_loudly():
    with pytest.raises(UserError, match=r"ensemble\.method"):
        Combiner("median")

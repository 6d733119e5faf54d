"""Combine architectures from their out-of-fold (OOF) probabilities only, and score the result honestly.

Methods (params.yaml `ensemble.method`):
    mean      the plain average of every architecture's probabilities
    weighted  each architecture calibrated by one temperature, then a weighted average with weights on the
              simplex minimising OOF log-loss (a weak model may get 0). Calibrating first matters: a model
              trained with label smoothing is under-confident, and log-loss would otherwise undervalue it.
    loglinear a logarithmic opinion pool: softmax of sum_a w_a * log p_a, with weights w_a >= 0 minimising OOF
              log-loss (their sum is also the pool's temperature). A digit that any strong model finds
              unlikely stays unlikely, where an average would let another model's confidence outvote it.
    stacking  multinomial logistic regression on the architectures' OOF log-probabilities

Whatever is fitted (weights, meta-model) is scored out of sample: for each CV fold it is fitted on the
other folds' OOF rows and applied to this fold's rows, so the reported CV accuracy never sees its own rows.
The test-set model is then fitted once on all OOF rows.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from scipy.optimize import minimize, minimize_scalar
from scipy.special import log_softmax, softmax

from digit_recognizer import paths
from digit_recognizer.atomic import atomic_dir, atomic_path, write_json
from digit_recognizer.data.prepared import load_prepared
from digit_recognizer.ensemble.fold_predictions import load_architecture
from digit_recognizer.ensemble.submission import write_submission
from digit_recognizer.errors import UserError
from digit_recognizer.metrics import (
    PROBABILITY_FLOOR,
    accuracy,
    accuracy_standard_error,
    log_loss,
    log_probabilities,
    mean_standard_error,
    row_log_losses,
)
from digit_recognizer.params import ENSEMBLE_METHODS


def fit_temperature(probabilities: np.ndarray, labels: np.ndarray) -> float:
    """The temperature T minimising the log-loss of softmax(log(p) / T): T < 1 sharpens, T > 1 softens."""
    logits = log_probabilities(probabilities)
    result = minimize_scalar(
        lambda t: log_loss(softmax(logits / t, axis=-1), labels), bounds=(0.05, 20), method="bounded"
    )
    return float(result.x)


def log_linear_pool(weights: np.ndarray, probabilities: np.ndarray) -> np.ndarray:
    """softmax(sum_a weights[a] * log probabilities[a]): (A,) weights, (A, N, 10) -> (N, 10) probabilities."""
    return softmax(np.tensordot(weights, log_probabilities(probabilities), axes=1), axis=-1)


def fit_log_linear_weights(oofs: np.ndarray, labels: np.ndarray) -> np.ndarray:
    """Weights (A,) >= 0 minimising the log-loss of `log_linear_pool(weights, oofs)`; oofs is (A, N, 10)."""
    log_probs = log_probabilities(oofs)
    true_class = np.eye(oofs.shape[-1])[labels]  # (N, 10) one-hot

    def loss_and_grad(w: np.ndarray) -> tuple[float, np.ndarray]:
        pooled = log_softmax(np.tensordot(w, log_probs, axes=1), axis=-1)  # (N, 10)
        loss = -(pooled * true_class).sum(1).mean()
        # d loss / d w_a = -mean over rows of sum_k (onehot - p)_k * log_probs[a]_k
        grad = -np.einsum("nk,ank->a", true_class - np.exp(pooled), log_probs) / len(labels)
        return float(loss), grad

    n_models = len(oofs)
    bounds = [(0, None)] * n_models
    result = minimize(loss_and_grad, np.full(n_models, 1 / n_models), jac=True, method="L-BFGS-B", bounds=bounds)
    weights = np.clip(result.x, 0, None)
    weights[weights < 1e-4] = 0  # as in fit_weights: a weight this small changes no prediction
    return weights


def fit_weights(oofs: np.ndarray, labels: np.ndarray) -> np.ndarray:
    """Simplex weights (A,) minimising the log-loss of sum_a w_a * oofs[a]; oofs is (A, N, 10)."""
    n_models = len(oofs)
    picked = oofs[:, np.arange(len(labels)), labels].T.astype(np.float64)  # (N, A): prob of the true class

    def loss_and_grad(w: np.ndarray) -> tuple[float, np.ndarray]:
        p = np.clip(picked @ w, PROBABILITY_FLOOR, None)
        return -np.log(p).mean(), -(picked / p[:, None]).mean(0)

    result = minimize(
        loss_and_grad,
        np.full(n_models, 1 / n_models),
        jac=True,
        method="SLSQP",
        bounds=[(0, 1)] * n_models,
        constraints=[{"type": "eq", "fun": lambda w: w.sum() - 1, "jac": lambda w: np.ones_like(w)}],
    )
    weights = np.clip(result.x, 0, None)
    weights[weights < 1e-4] = 0  # SLSQP leaves crumbs; a weight this small changes no prediction
    return weights / weights.sum()


class Combiner:
    """Fits on (A, N, 10) OOF probabilities and labels; combines (A, M, 10) probabilities into (M, 10).

    What it learns is a few numbers (weights, temperatures, the stacking model's coefficients), saved as
    JSON with `to_json` and read back with `from_json`: no pickle to trust from a shared cache.
    """

    def __init__(self, method: str, stacking_c: float = 1.0, architectures: list[str] | None = None):
        if method not in ENSEMBLE_METHODS:
            raise UserError(f"ensemble.method {method!r} is not one of {', '.join(ENSEMBLE_METHODS)}")
        self.method, self.stacking_c = method, stacking_c
        self.architectures = architectures or []  # the order of the (A, ...) inputs
        self.weights: np.ndarray | None = None
        self.temperatures: np.ndarray | None = None
        self.meta_coef: np.ndarray | None = None  # stacking: (10, A*10) multinomial logistic regression
        self.meta_intercept: np.ndarray | None = None  # (10,)

    def fit(self, oofs: np.ndarray, labels: np.ndarray) -> Combiner:
        if self.method == "mean":
            self.weights = np.full(len(oofs), 1 / len(oofs))
        elif self.method == "weighted":
            self.temperatures = np.array([fit_temperature(oof, labels) for oof in oofs])
            self.weights = fit_weights(self.calibrated(oofs), labels)
        elif self.method == "loglinear":
            self.weights = fit_log_linear_weights(oofs, labels)
        else:
            from sklearn.linear_model import LogisticRegression  # stacking alone: its import costs about 1 s

            meta = LogisticRegression(C=self.stacking_c, max_iter=1000).fit(_stack_features(oofs), labels)
            if list(meta.classes_) != list(range(10)):
                raise UserError("stacking needs every digit among the training labels")
            self.meta_coef, self.meta_intercept = meta.coef_, meta.intercept_
        return self

    def combine(self, probabilities: np.ndarray) -> np.ndarray:
        if self.meta_coef is not None:  # what LogisticRegression.predict_proba computes for a multinomial model
            scores = _stack_features(probabilities) @ self.meta_coef.T + self.meta_intercept
            return softmax(scores, axis=1).astype(np.float32)
        if self.method == "loglinear":
            return log_linear_pool(self.weights, probabilities).astype(np.float32)
        return np.tensordot(self.weights, self.calibrated(probabilities), axes=1).astype(np.float32)

    def to_json(self) -> dict:
        def listed(array: np.ndarray | None) -> list | None:
            return None if array is None else array.tolist()

        return {
            "method": self.method,
            "stacking_c": self.stacking_c,
            "architectures": self.architectures,
            "weights": listed(self.weights),
            "temperatures": listed(self.temperatures),
            "meta_coef": listed(self.meta_coef),
            "meta_intercept": listed(self.meta_intercept),
        }

    @classmethod
    def from_json(cls, saved: dict) -> Combiner:
        combiner = cls(saved["method"], saved["stacking_c"], saved["architectures"])
        for name in ("weights", "temperatures", "meta_coef", "meta_intercept"):
            if saved[name] is not None:
                setattr(combiner, name, np.asarray(saved[name], dtype=np.float64))
        return combiner

    def calibrated(self, probabilities: np.ndarray) -> np.ndarray:
        """(A, N, 10) -> what `weighted` averages: each architecture at its fitted temperature; other methods
        fit none and get `probabilities` as given."""
        if self.temperatures is None:
            return probabilities
        logits = log_probabilities(probabilities)  # (A, N, 10), one temperature per architecture
        return softmax(logits / self.temperatures[:, None, None], axis=-1)


def _stack_features(probabilities: np.ndarray) -> np.ndarray:
    """(A, N, 10) -> (N, A*10) log-probabilities, the meta-model's inputs."""
    return log_probabilities(probabilities).transpose(1, 0, 2).reshape(probabilities.shape[1], -1)


def nested_oof(combiner_args: dict, oofs: np.ndarray, labels: np.ndarray, folds: np.ndarray) -> np.ndarray:
    """Honest ensemble OOF: each fold's rows combined by a combiner fitted on the other folds' rows only."""
    out = np.empty(oofs.shape[1:], dtype=np.float32)
    for fold in np.unique(folds):
        inside, outside = folds == fold, folds != fold
        combiner = Combiner(**combiner_args).fit(oofs[:, outside], labels[outside])
        out[inside] = combiner.combine(oofs[:, inside])
    return out


def run_ensemble(
    architectures: list[str],
    method: str,
    stacking_c: float,
    prepared_dir: Path = paths.PREPARED,
    train_dir: Path = paths.TRAIN,
    out_dir: Path = paths.ENSEMBLE,
    submission: Path = paths.SUBMISSION,
    sample_submission: Path = paths.RAW / paths.SAMPLE_SUBMISSION_CSV,
    metrics_path: Path = paths.METRICS,
) -> dict:
    """Combine the architectures, write the ensemble's probabilities, submission.csv and the metrics file."""
    data = load_prepared(prepared_dir)
    labels, folds = data.train_labels, data.folds
    per_arch = [load_architecture(name, folds, labels, train_dir) for name in architectures]
    n_folds = data.n_folds
    oofs = np.stack([a.oof for a in per_arch])  # (A, N, 10)
    tests = np.stack([a.test for a in per_arch])  # (A, M, 10)

    args = {"method": method, "stacking_c": stacking_c}
    honest_oof = nested_oof(args, oofs, labels, folds)
    combiner = Combiner(**args, architectures=architectures).fit(oofs, labels)
    test_probs = combiner.combine(tests)
    weights = combiner.weights if combiner.weights is not None else np.full(len(per_arch), np.nan)

    metrics: dict = {"ensemble": _scores(honest_oof, labels, folds, test_probs, data.test_labels)}
    for arch, weight in zip(per_arch, weights, strict=True):
        scores = _scores(arch.oof, labels, folds, arch.test, data.test_labels)
        metrics[arch.name] = {**scores, "weight": None if np.isnan(weight) else round(float(weight), 4)}
    best_single = max(metrics[a]["cv_accuracy"] for a in architectures)
    metrics["ensemble"]["gain_over_best_single"] = round(metrics["ensemble"]["cv_accuracy"] - best_single, 6)

    # Everything is written to temporaries first and moved into place together at the end (metrics, then the
    # submission, then data/ensemble), so a crash never leaves a submission that disagrees with the metrics.
    with (
        atomic_dir(out_dir) as tmp,
        atomic_path(submission) as submission_tmp,
        atomic_path(metrics_path) as metrics_tmp,
    ):
        np.save(tmp / "oof.npy", honest_oof)
        np.save(tmp / "test.npy", test_probs)
        write_json(tmp / "weights.json", {a.name: metrics[a.name]["weight"] for a in per_arch})
        # what `predict` and `serve` load: the combiner, and exactly the fold models it combined
        models = {a.name: [str(paths.train_run_dir(a.name, f) / "model.pt") for f in range(n_folds)] for a in per_arch}
        write_json(tmp / paths.COMBINER_JSON, {**combiner.to_json(), "models": models})
        write_submission(test_probs.argmax(1), submission_tmp, sample_submission)
        write_json(metrics_tmp, metrics)
    return metrics


def _scores(oof, labels, folds, test_probs, test_labels) -> dict:
    """CV accuracy and log-loss with their standard errors over rows (the noise band `dvc exp show` shows)."""
    fold_acc = {str(f): round(accuracy(oof[folds == f], labels[folds == f]), 6) for f in np.unique(folds)}
    row_losses = row_log_losses(oof, labels)
    scores = {
        "cv_accuracy": round(accuracy(oof, labels), 6),
        "cv_accuracy_se": round(accuracy_standard_error(oof, labels), 6),
        "cv_accuracy_std": round(float(np.std(list(fold_acc.values()))), 6),
        "cv_log_loss": round(float(row_losses.mean()), 6),
        "cv_log_loss_se": round(mean_standard_error(row_losses), 6),
        "fold_accuracy": fold_acc,
    }
    if test_labels is not None:  # the embedded sample keeps its answer key: score as the leaderboard would
        scores["sample_leaderboard_accuracy"] = round(accuracy(test_probs, test_labels), 6)
        scores["sample_leaderboard_accuracy_se"] = round(accuracy_standard_error(test_probs, test_labels), 6)
    return scores

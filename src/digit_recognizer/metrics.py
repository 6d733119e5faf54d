"""Scores of (N, 10) class probabilities against (N,) labels, torch-free: accuracy, log-loss, their standard
errors, and McNemar's test for two predictors on the same rows."""

from __future__ import annotations

import numpy as np

# Every logarithm of a probability in the project clips at this floor: a float32 softmax can round a
# confident model's other classes to 0, and log(0) would make one row's loss infinite.
PROBABILITY_FLOOR = 1e-12


def log_probabilities(probabilities: np.ndarray) -> np.ndarray:
    """log(p) in float64, p clipped at PROBABILITY_FLOOR."""
    return np.log(np.clip(probabilities.astype(np.float64), PROBABILITY_FLOOR, 1))


def accuracy(probabilities: np.ndarray, labels: np.ndarray) -> float:
    return float((probabilities.argmax(1) == labels).mean())


def row_log_losses(probabilities: np.ndarray, labels: np.ndarray) -> np.ndarray:
    """(N,): each row's negative log-likelihood of its true label."""
    return -log_probabilities(probabilities[np.arange(len(labels)), labels])


def log_loss(probabilities: np.ndarray, labels: np.ndarray) -> float:
    """Mean negative log-likelihood of the true labels."""
    return float(row_log_losses(probabilities, labels).mean())


def accuracy_standard_error(probabilities: np.ndarray, labels: np.ndarray) -> float:
    """sqrt(p (1 - p) / N): the binomial standard error of an accuracy p measured on N rows."""
    p = accuracy(probabilities, labels)
    return float(np.sqrt(p * (1 - p) / len(labels)))


def mean_standard_error(values: np.ndarray) -> float:
    """The standard error of the mean of `values` (e.g. per-row log-losses)."""
    return float(values.std(ddof=1) / np.sqrt(len(values)))


def mcnemar_exact(fixes: int, breaks: int) -> float:
    """McNemar's exact test: two-sided binomial test of the discordant rows (B right and A wrong, and the
    reverse) against p = 1/2. This is what statsmodels' `mcnemar(table, exact=True)` computes."""
    from scipy.stats import binomtest  # here: scipy.stats takes ~0.9 s to import, and only `compare` needs it

    if fixes + breaks == 0:
        return 1.0
    return float(binomtest(fixes, fixes + breaks, 0.5).pvalue)

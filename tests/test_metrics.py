"""The torch-free scores: McNemar's exact test, and `compare`'s row-by-row verdict built on it."""

from __future__ import annotations

import numpy as np
import pytest

from digit_recognizer.metrics import mcnemar_exact
from digit_recognizer.report.compare import compare_rows


def test_mcnemar_exact_matches_the_binomial_tail():
    assert mcnemar_exact(10, 0) == pytest.approx(2 * 0.5**10)  # all ten discordant rows on one side
    assert mcnemar_exact(5, 5) == pytest.approx(1.0)
    assert mcnemar_exact(0, 0) == 1.0
    a = np.array([True] * 90 + [False] * 10)
    b = np.array([True] * 88 + [False] * 2 + [True] * 10)  # fixes the last 10 rows, breaks 2
    row = compare_rows("cnn", a, b)
    assert (row.fixes, row.breaks) == (10, 2) and row.accuracy_b - row.accuracy_a == pytest.approx(0.08)
    assert row.p_value == pytest.approx(mcnemar_exact(10, 2)) and row.verdict(0.05) == "B better"
    assert compare_rows("cnn", b, a).verdict(0.05) == "B worse" and row.verdict(0.01) == "noise"

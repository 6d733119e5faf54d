"""Ensemble methods scored out of sample, the submission file, and `digit-recognizer submit` via a stand-in."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest

from digit_recognizer import paths
from digit_recognizer.cli import main as cli_main
from digit_recognizer.csv_io import SUBMISSION_COLUMNS, write_int_csv
from digit_recognizer.download import download
from digit_recognizer.ensemble import Combiner, fit_log_linear_weights, fit_weights, log_linear_pool, nested_oof
from digit_recognizer.errors import CsvError, UserError
from digit_recognizer.metrics import log_loss
from digit_recognizer.submission import write_submission
from digit_recognizer.submit import default_message, submit

from .kaggle_standin import KaggleStandIn, point_kaggle_client_at


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


@pytest.mark.parametrize("method", ["mean", "weighted", "loglinear", "stacking"])
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


def test_stacking_outscores_the_mean_when_one_model_is_junk(three_models):
    oofs, labels, folds = three_models
    args = {"stacking_c": 1.0}
    mean = nested_oof({**args, "method": "mean"}, oofs, labels, folds)
    stacked = nested_oof({**args, "method": "stacking"}, oofs, labels, folds)
    assert (stacked.argmax(1) == labels).mean() > (mean.argmax(1) == labels).mean()


def test_unknown_method_fails_loudly():
    with pytest.raises(UserError, match=r"ensemble\.method"):
        Combiner("median")


def test_write_submission_checks_against_sample_submission(sample_raw, tmp_path):
    out = tmp_path / "submission.csv"
    labels = np.arange(1000) % 10
    write_submission(labels, out, sample_raw / "sample_submission.csv")
    lines = out.read_text().splitlines()
    assert lines[:3] == ["ImageId,Label", "1,0", "2,1"] and len(lines) == 1001
    with pytest.raises(UserError, match="999 labels"):
        write_submission(labels[:999], tmp_path / "short.csv", sample_raw / "sample_submission.csv")
    assert not (tmp_path / "short.csv").exists()


@pytest.fixture
def submission_file(tmp_path, monkeypatch):
    """A valid 28,000-row submission (the size of Kaggle's test set) in a project folder."""
    monkeypatch.chdir(tmp_path)
    out = tmp_path / "submissions" / "submission.csv"
    ids = np.arange(1, 28_001)
    write_int_csv(out, SUBMISSION_COLUMNS, np.column_stack([ids, ids % 10]).astype(np.int32))
    return out


def test_submit_through_the_real_kaggle_client(submission_file, kaggle_env, monkeypatch, capsys):
    monkeypatch.setenv("KAGGLE_USERNAME", "someone")
    monkeypatch.setenv("KAGGLE_KEY", "secret-key")
    with KaggleStandIn() as server:
        point_kaggle_client_at(server.url, monkeypatch)
        assert cli_main(["submit", str(submission_file), "-m", "first try"]) == 0
    assert server.uploaded == submission_file.read_bytes()
    assert server.submission["submissionDescription"] == "first try"
    assert server.submission["competitionName"] == "digit-recognizer"
    out = capsys.readouterr().out
    assert "Successfully submitted" in out and "secret-key" not in out


def test_submit_403_is_one_clear_line(submission_file, kaggle_env, monkeypatch, capsys):
    monkeypatch.setenv("KAGGLE_USERNAME", "someone")
    monkeypatch.setenv("KAGGLE_KEY", "secret-key")
    with KaggleStandIn(status=403) as server:
        point_kaggle_client_at(server.url, monkeypatch)
        assert cli_main(["submit", str(submission_file)]) == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "accept the competition rules" in err and "secret-key" not in err


def test_submit_refuses_an_invalid_file_before_contacting_kaggle(submission_file, kaggle_env):
    lines = submission_file.read_text().splitlines()
    submission_file.write_text("\n".join(lines[:-5]) + "\n")

    class NeverCalled:
        def submit(self, *args):
            raise AssertionError("an invalid file must not be sent")

    with pytest.raises(UserError, match="has 27,995 rows but Kaggle's digit-recognizer test set has 28,000"):
        submit(submission_file, "m", client=NeverCalled())
    lines[8] = "7,3"  # ImageId 7 twice, no 8
    submission_file.write_text("\n".join(lines) + "\n")
    with pytest.raises(CsvError, match="ImageId 7 should be 8"):
        submit(submission_file, "m", client=NeverCalled())


def test_submit_refuses_what_the_embedded_sample_produced(sample_raw, tmp_path, monkeypatch, kaggle_env):
    """The pipeline's own file, made from the sample, must never reach the real competition."""
    monkeypatch.chdir(tmp_path)
    download("sample", paths.RAW, sample_test_rows=1000)
    write_submission(np.arange(1000) % 10, paths.SUBMISSION, paths.RAW / "sample_submission.csv")
    result = subprocess.run(
        [sys.executable, "-m", "digit_recognizer.cli", "submit"], capture_output=True, text=True, cwd=tmp_path
    )
    assert result.returncode == 1 and result.stderr.count("\n") == 1
    assert (
        "submissions/submission.csv has 1,000 rows but Kaggle's digit-recognizer test set has 28,000" in result.stderr
    )
    assert "data came from the embedded sample" in result.stderr and "data.source: kaggle" in result.stderr


def test_submit_without_network_says_how_to_submit_by_hand(submission_file, kaggle_env, monkeypatch):
    monkeypatch.setenv("KAGGLE_USERNAME", "someone")
    monkeypatch.setenv("KAGGLE_KEY", "secret-key")
    with KaggleStandIn() as server:
        closed_url = server.url  # nothing listens there once the block ends
    point_kaggle_client_at(closed_url, monkeypatch)
    with pytest.raises(UserError, match=r"could not reach Kaggle to submit .*Submit Predictions") as raised:
        submit(submission_file, "m")
    assert "by hand and set data.source" not in str(raised.value)


def test_submit_without_credentials_from_the_command_line(submission_file, kaggle_env):
    result = subprocess.run(
        [sys.executable, "-m", "digit_recognizer.cli", "submit", str(submission_file)],
        capture_output=True,
        text=True,
    )
    assert result.returncode == 1
    assert result.stderr.startswith("error: no Kaggle credentials found") and "Traceback" not in result.stderr


def test_default_message_names_commit_and_cv(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("DVC_EXP_NAME", raising=False)
    (tmp_path / "data").mkdir()
    (tmp_path / "data" / "metrics.json").write_text('{"ensemble": {"cv_accuracy": 0.99612}}')
    assert default_message(tmp_path / "data" / "metrics.json").endswith("ensemble CV 99.612%")
    monkeypatch.setenv("DVC_EXP_NAME", "wider-cnn")
    assert default_message(tmp_path / "data" / "metrics.json").startswith("exp wider-cnn")


def test_mcnemar_exact_matches_the_binomial_tail():
    from digit_recognizer.compare import compare_rows, mcnemar_exact

    assert mcnemar_exact(10, 0) == pytest.approx(2 * 0.5**10)  # all ten discordant rows on one side
    assert mcnemar_exact(5, 5) == pytest.approx(1.0)
    assert mcnemar_exact(0, 0) == 1.0
    a = np.array([True] * 90 + [False] * 10)
    b = np.array([True] * 88 + [False] * 2 + [True] * 10)  # fixes the last 10 rows, breaks 2
    row = compare_rows("cnn", a, b)
    assert (row.fixes, row.breaks) == (10, 2) and row.accuracy_b - row.accuracy_a == pytest.approx(0.08)
    assert row.p_value == pytest.approx(mcnemar_exact(10, 2)) and row.verdict(0.05) == "B better"
    assert compare_rows("cnn", b, a).verdict(0.05) == "B worse" and row.verdict(0.01) == "noise"

"""Ensemble methods scored out of sample, the submission file, and `digit-recognizer submit` via a stand-in."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest

from digit_recognizer.cli import main as cli_main
from digit_recognizer.ensemble import Combiner, fit_weights, nested_oof
from digit_recognizer.errors import CsvError, UserError
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


@pytest.mark.parametrize("method", ["mean", "weighted", "stacking"])
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
def submission_file(sample_raw, tmp_path, monkeypatch):
    """A valid submission in a project folder whose data/raw holds the sample's sample_submission.csv."""
    monkeypatch.chdir(tmp_path)
    (tmp_path / "data" / "raw").mkdir(parents=True)
    (tmp_path / "data" / "raw" / "sample_submission.csv").write_bytes(
        (sample_raw / "sample_submission.csv").read_bytes()
    )
    out = tmp_path / "submissions" / "submission.csv"
    write_submission(np.arange(1000) % 10, out, sample_raw / "sample_submission.csv")
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

    with pytest.raises(CsvError, match="995 rows, expected 1000"):
        submit(submission_file, "m", client=NeverCalled())


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
    (tmp_path / "data").mkdir()
    (tmp_path / "data" / "metrics.json").write_text('{"ensemble": {"cv_accuracy": 0.99612}}')
    assert default_message(tmp_path / "data" / "metrics.json").endswith("ensemble CV 99.612%")

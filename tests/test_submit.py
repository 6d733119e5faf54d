"""The submission file, and `digit-recognizer submit` through the real Kaggle client against a stand-in."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest

from digit_recognizer import paths
from digit_recognizer.cli import main as cli_main
from digit_recognizer.data.csv_io import SUBMISSION_COLUMNS, write_int_csv
from digit_recognizer.data.download import download
from digit_recognizer.ensemble.submission import write_submission
from digit_recognizer.errors import CsvError, UserError
from digit_recognizer.kaggle.submit import default_message, submit

from .kaggle_standin import KaggleStandIn, point_kaggle_client_at


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

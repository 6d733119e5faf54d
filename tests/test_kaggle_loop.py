"""The Kaggle loop: submit --wait, the submissions record, leaderboard and scores, through the real `kaggle` client
against the local stand-in over HTTP (KAGGLE_API_ENVIRONMENT=TEST), including every fault the record must survive."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from dvc.repo import Repo  # imported here, not first inside a test: `import dvc` binds its log handler to stderr

from digit_recognizer.cli import main as cli_main
from digit_recognizer.data.csv_io import SUBMISSION_COLUMNS, write_int_csv
from digit_recognizer.kaggle.record import file_md5
from digit_recognizer.report.scores import side_by_side

from .kaggle_standin import KaggleStandIn, point_kaggle_client_at

RECORD = Path("submissions/submissions.json")
SECRET = "secret-key-0123"
CV = 0.99612


def write_submission(root: Path, shift: int = 0) -> Path:
    """A valid 28,000-row submission (Kaggle's test set size); `shift` makes other labels, so another md5."""
    out = root / "submissions" / "submission.csv"
    ids = np.arange(1, 28_001)
    write_int_csv(out, SUBMISSION_COLUMNS, np.column_stack([ids, (ids + shift) % 10]).astype(np.int32))
    return out


def write_metrics(root: Path, cv: float = CV, sample: bool = False) -> None:
    scores = {"cv_accuracy": cv, "fold_accuracy": {"0": cv, "1": cv}}
    lenet = {"cv_accuracy": cv - 0.01, "fold_accuracy": {"0": cv, "1": cv}}
    if sample:
        scores["sample_leaderboard_accuracy"], lenet["sample_leaderboard_accuracy"] = 0.99, 0.9805
    (root / "data").mkdir(exist_ok=True)
    (root / "data" / "metrics.json").write_text(json.dumps({"ensemble": scores, "lenet": lenet}))


@pytest.fixture
def project(tmp_path, kaggle_env, monkeypatch) -> Path:
    """A project folder (dvc.yaml, metrics, a 28,000-row submission), credentials set, short polls."""
    monkeypatch.chdir(tmp_path)
    (tmp_path / "dvc.yaml").write_text("stages: {}\n")
    write_submission(tmp_path)
    write_metrics(tmp_path)
    monkeypatch.setenv("KAGGLE_USERNAME", "someone")
    monkeypatch.setenv("KAGGLE_KEY", SECRET)
    monkeypatch.setenv("DIGIT_RECOGNIZER_POLL_SECONDS", "0.02")
    monkeypatch.delenv("DVC_EXP_NAME", raising=False)
    return tmp_path


def records() -> list[dict]:
    return json.loads(RECORD.read_text())


def no_secret_anywhere(root: Path, *texts: str) -> None:
    for text in texts:
        assert SECRET not in text
    for file in root.rglob("*"):
        if file.is_file() and file.suffix in (".json", ".csv", ".txt", ".log"):
            assert SECRET not in file.read_text(errors="replace"), file


def test_submit_wait_prints_the_score_and_records_the_submission(project, monkeypatch, capsys):
    with KaggleStandIn(public_score=0.98765, pending_polls=2) as server:
        point_kaggle_client_at(server.url, monkeypatch)
        assert cli_main(["submit", "--wait", "60"]) == 0
    out, err = capsys.readouterr()
    assert "waiting for Kaggle to score submission 40000001" in err
    assert "scored in" in out and "public score: 0.98765 (ensemble CV 99.612%)" in out
    (record,) = records()
    assert record["ref"] == 40000001 and record["status"] == "complete" and record["public_score"] == 0.98765
    assert record["md5"] == file_md5(project / "submissions" / "submission.csv")
    assert record["cv_accuracy"] == CV and record["message"].endswith("ensemble CV 99.612%")
    assert record["submitted_from"] == "this project" and record["date"].endswith("Z")
    # polled through the real client, on KAGGLE_API_ENVIRONMENT=TEST's paths, and pending twice first
    polls = [path for method, path, _ in server.requests if path.endswith("/GetSubmission")]
    assert len(polls) == 3 and all(path.startswith("/api/v1/") for path in polls)
    assert server.uploaded == (project / "submissions" / "submission.csv").read_bytes()
    no_secret_anywhere(project, out, err)

    # scores shows it beside the CV
    columns, rows, notes = side_by_side(project)
    assert columns == ["", "lenet", "ensemble"]
    assert rows[0] == ("2-fold CV accuracy", "98.612%", "99.612%")
    assert rows[-1] == ("Kaggle public score", "", "98.765%")
    assert notes == [f"public score: Kaggle submission 40000001 of {record['date'][:10]}; CV - public: +0.847 points"]


def test_without_wait_the_record_says_pending_and_leaderboard_completes_it(project, monkeypatch, capsys):
    with KaggleStandIn(pending_polls=1) as server:
        point_kaggle_client_at(server.url, monkeypatch)
        assert cli_main(["submit", "-m", "first try"]) == 0
        assert "recorded in submissions/submissions.json as submission 40000001, pending" in capsys.readouterr().out
        assert records()[0]["status"] == "pending" and records()[0]["message"] == "first try"
        assert side_by_side(project)[1][-1] == ("Kaggle public score", "", "pending")
        assert cli_main(["leaderboard"]) == 0  # the one poll it was pending for
        assert records()[0]["status"] == "pending"
        assert cli_main(["leaderboard"]) == 0
    out = capsys.readouterr().out
    assert "1 pending submission(s) completed" in out
    assert records()[0]["status"] == "complete" and records()[0]["public_score"] == 0.98765
    line = [row for row in out.splitlines() if row.startswith("40000001")][-1]  # the second leaderboard's
    assert line.split()[-5:] == ["?", "99.612%", "98.765%", "+0.847", "pts"]  # no DVC repo here: no experiment


def test_a_scoring_error_is_one_line_and_recorded(project, monkeypatch, capsys):
    with KaggleStandIn(error="Submission has 27999 rows\nexpected 28000", pending_polls=1) as server:
        point_kaggle_client_at(server.url, monkeypatch)
        assert cli_main(["submit", "--wait", "60"]) == 1
    err = capsys.readouterr().err
    error_lines = [line for line in err.splitlines() if line.startswith("error:")]
    assert error_lines == [
        "error: Kaggle could not score submission 40000001: Submission has 27999 rows expected 28000 "
        "(recorded as error in submissions/submissions.json)"
    ]
    (record,) = records()
    assert record["status"] == "error" and record["error"] == "Submission has 27999 rows expected 28000"
    assert side_by_side(project)[1][-1] == ("Kaggle public score", "", "error")


def test_a_wait_that_times_out_keeps_it_pending_for_leaderboard(project, monkeypatch, capsys):
    with KaggleStandIn(pending_polls=10**6) as server:
        point_kaggle_client_at(server.url, monkeypatch)
        assert cli_main(["submit", "--wait", "0.2"]) == 1
        err = capsys.readouterr().err
        assert err.splitlines()[-1] == (
            "error: Kaggle had not scored submission 40000001 after 0.2 s: it stays pending in the record; "
            "`digit-recognizer leaderboard` fills in its score later"
        )
        assert records()[0]["status"] == "pending"
        server.submissions[0]["pollsLeft"] = 0  # Kaggle scores it later
        assert cli_main(["leaderboard"]) == 0
    assert records()[0]["status"] == "complete" and records()[0]["public_score"] == 0.98765


def test_without_credentials_nothing_is_sent_or_recorded(project, monkeypatch, capsys):
    monkeypatch.delenv("KAGGLE_USERNAME")
    monkeypatch.delenv("KAGGLE_KEY")
    assert cli_main(["submit", "--wait"]) == 1
    assert capsys.readouterr().err.startswith("error: no Kaggle credentials found")
    assert not RECORD.exists()
    assert cli_main(["leaderboard"]) == 1
    assert capsys.readouterr().err.count("\n") == 1


def test_any_api_token_works_against_the_standin(project, monkeypatch, capsys):
    monkeypatch.delenv("KAGGLE_USERNAME")
    monkeypatch.delenv("KAGGLE_KEY")
    monkeypatch.setenv("KAGGLE_API_TOKEN", SECRET)
    with KaggleStandIn(pending_polls=0) as server:
        point_kaggle_client_at(server.url, monkeypatch)
        assert cli_main(["submit", "--wait", "60"]) == 0
    out, err = capsys.readouterr()
    assert records()[0]["public_score"] == 0.98765
    no_secret_anywhere(project, out, err)


def test_without_network_leaderboard_fails_in_one_line_and_keeps_the_record(project, monkeypatch, capsys):
    with KaggleStandIn(pending_polls=5) as server:
        point_kaggle_client_at(server.url, monkeypatch)
        assert cli_main(["submit"]) == 0
    before = RECORD.read_text()
    capsys.readouterr()
    assert cli_main(["leaderboard"]) == 1  # the stand-in is gone: nothing listens there
    err = capsys.readouterr().err
    assert (
        err.startswith("error: could not reach Kaggle to list the submissions (no network?)") and err.count("\n") == 1
    )
    assert RECORD.read_text() == before


def test_a_submission_made_elsewhere_is_added_with_an_unknown_experiment(project, monkeypatch, capsys):
    with KaggleStandIn(pending_polls=0) as server:
        point_kaggle_client_at(server.url, monkeypatch)
        server.add_submission("from my laptop")
        assert cli_main(["submit", "--wait", "60"]) == 0
        assert cli_main(["leaderboard"]) == 0
    out = capsys.readouterr().out
    mine, elsewhere = records()
    assert mine["ref"] == 40000002 and mine["submitted_from"] == "this project"
    assert elsewhere["ref"] == 40000001 and elsewhere["submitted_from"] == "elsewhere"
    assert elsewhere["message"] == "from my laptop" and elsewhere["md5"] is None and elsewhere["experiment"] is None
    assert elsewhere["status"] == "complete"
    row = next(row for row in out.splitlines() if row.startswith("40000001"))
    assert row.split()[4:7] == ["?", "(elsewhere)", "—"]
    assert "? (elsewhere): submitted from another clone" in out


def test_the_submissions_file_of_another_run_shows_no_stale_score(project, monkeypatch):
    with KaggleStandIn(pending_polls=0) as server:
        point_kaggle_client_at(server.url, monkeypatch)
        assert cli_main(["submit", "--wait", "60"]) == 0
    write_submission(project, shift=1)  # another experiment's predictions now in the workspace
    _, rows, notes = side_by_side(project)
    assert all(row[0] != "Kaggle public score" for row in rows)
    assert notes == [
        "submissions/submission.csv is not a submitted file (no submission in submissions/submissions.json has its "
        "md5): no public score for this run"
    ]


def test_sample_leaderboard_is_a_row_and_markdown_has_the_readme_layout(project):
    write_metrics(project, sample=True)
    _, rows, notes = side_by_side(project, markdown=True)
    assert rows == [
        ("2-fold CV accuracy", "98.612%", "**99.612%**"),
        ("sample leaderboard (withheld answers)", "98.050%", "**99.000%**"),
    ]
    assert notes == []  # nothing submitted: no record, no note


KILLABLE = (
    "import sys; from kagglesdk import kaggle_env as e; "
    "e._env_to_endpoint[e.KaggleEnv.TEST] = e._env_to_endpoint[e.KaggleEnv.PROD] = sys.argv[1]; "
    "from digit_recognizer.cli import main; sys.exit(main(sys.argv[2:]))"
)


def test_killed_while_waiting_the_pending_record_is_already_written(project):
    env = {**os.environ, "KAGGLE_API_ENVIRONMENT": "TEST"}
    with KaggleStandIn(pending_polls=10**6) as server:
        process = subprocess.Popen(
            [sys.executable, "-c", KILLABLE, server.url, "submit", "--wait", "600"],
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
        )
        try:
            for _ in range(600):  # at most a minute for the process to start, submit and poll once
                if any(path.endswith("/GetSubmission") for _, path, _ in server.requests) or process.poll() is not None:
                    break
                time.sleep(0.1)
            assert process.poll() is None, process.communicate()
        finally:
            process.kill()
            process.wait()
    (record,) = records()
    assert record["status"] == "pending" and record["ref"] == 40000001 and record["md5"]
    assert not list((project / "submissions").glob(".*.tmp"))


def run_git(*args: str, cwd: Path) -> None:
    subprocess.run(["git", "-c", "user.name=test", "-c", "user.email=test@example.com", *args], cwd=cwd, check=True)


def test_leaderboard_matches_each_submission_to_its_experiment(project, monkeypatch, capsys):
    """Two runs, committed to dvc.lock without running anything (`dvc commit`): the baseline commit and an
    experiment saved with `dvc exp save`. Each is submitted; leaderboard names each one's run and CV."""
    (project / "dvc.yaml").write_text(
        "stages:\n  ensemble:\n    cmd: python -c pass\n    outs: [submissions/submission.csv]\n"
        "    metrics: [data/metrics.json: {cache: false}]\n"
    )
    subprocess.run(["git", "init", "-q", "-b", "main"], cwd=project, check=True)
    Repo.init(str(project))
    with Repo(str(project)) as repo:
        repo.commit(force=True)
    run_git("add", "-A", cwd=project)
    run_git("commit", "-qm", "baseline", cwd=project)
    with KaggleStandIn(pending_polls=0) as server:
        point_kaggle_client_at(server.url, monkeypatch)
        assert cli_main(["submit", "--wait", "60"]) == 0  # the baseline's file, CV 99.612%
        write_submission(project, shift=1)
        write_metrics(project, cv=0.9925)
        with Repo(str(project)) as repo:
            repo.commit(force=True)
            repo.experiments.save(name="wider-cnn")
        server.public_score = 0.99
        assert cli_main(["submit", "--wait", "60"]) == 0
        capsys.readouterr()
        assert cli_main(["leaderboard"]) == 0
    out = capsys.readouterr().out
    rows = {line.split()[0]: line.split()[3:] for line in out.splitlines() if line.startswith("4000")}
    assert rows["40000002"] == ["complete", "wider-cnn", "99.250%", "99.000%", "+0.250", "pts"]
    assert rows["40000001"] == ["complete", "main", "(commit)", "99.612%", "98.765%", "+0.847", "pts"]
    base, exp = records()
    assert exp["experiment"] == "wider-cnn" and exp["message"].startswith("exp wider-cnn @ ")
    assert base["experiment"] is None and base["commit"]
    assert (project / "submissions" / "leaderboard.csv").read_text().splitlines()[1:] == [
        f"40000001,{base['date']},main (commit),0.99612,0.98765,0.00847",
        f"40000002,{exp['date']},wider-cnn,0.9925,0.99,0.0025",
    ]
    no_secret_anywhere(project, out)

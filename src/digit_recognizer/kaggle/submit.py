"""`digit-recognizer submit`: validate a submission file, send it to Kaggle with an informative message, record
it in submissions/submissions.json (pending), and with `--wait` wait for its public score and record that too."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Callable
from datetime import datetime, timezone
from pathlib import Path

from digit_recognizer import paths
from digit_recognizer.data.origin import read_origin
from digit_recognizer.data.prepare import read_submission
from digit_recognizer.errors import UserError
from digit_recognizer.kaggle.client import KaggleApiClient, KaggleClient
from digit_recognizer.kaggle.record import SubmissionRecord, file_md5, upsert
from digit_recognizer.kaggle.wait import wait_for_score

COMPETITION_TEST_ROWS = {"digit-recognizer": 28_000}  # the size of the competition's test.csv


def check_for_competition(file: Path, competition: str, raw_dir: Path = paths.RAW) -> None:
    """Refuse a file that cannot be a submission to `competition`, saying in one sentence why."""
    if competition not in COMPETITION_TEST_ROWS:
        raise UserError(f"submit checks files for {', '.join(COMPETITION_TEST_ROWS)} only, not {competition!r}")
    expected = COMPETITION_TEST_ROWS[competition]
    rows = len(read_submission(file))
    if rows != expected:
        origin = read_origin(raw_dir)
        made_here = Path(file).resolve() == paths.SUBMISSION.resolve() and origin is not None
        source = f"; this project's data came from {origin['description']}" if made_here else ""
        raise UserError(
            f"{file} has {rows:,} rows but Kaggle's {competition} test set has {expected:,} images, so it was not "
            f"predicted from the competition's test.csv{source}: run the pipeline with data.source: kaggle "
            "(or Kaggle's zip) before submitting"
        )
    read_submission(file, n_rows=expected)


def experiment_name() -> str | None:
    """The `dvc exp` experiment whose results the workspace holds (its dvc.lock is the workspace's), if any."""
    try:
        from dvc.repo import Repo
        from dvc.repo.experiments.utils import exp_refs_by_baseline

        lock = Path("dvc.lock").read_bytes()
        with Repo() as repo:
            baseline = repo.scm.get_rev()
            for ref in exp_refs_by_baseline(repo.scm, {baseline}).get(baseline, []):
                with repo.scm.get_fs(repo.scm.get_ref(str(ref))).open("dvc.lock", "rb") as f:
                    if f.read() == lock:
                        return ref.name
    except Exception:  # no DVC repo, no git, no dvc.lock: the message just names no experiment
        return None
    return None


_LOOK_UP = "look up"


def ensemble_cv(metrics_path: Path = paths.METRICS) -> float | None:
    if not metrics_path.exists():
        return None
    return json.loads(metrics_path.read_text()).get("ensemble", {}).get("cv_accuracy")


def default_message(metrics_path: Path = paths.METRICS, experiment: str | None = _LOOK_UP) -> str:
    """E.g. 'exp lenet-2 @ 1a2b3c4: ensemble CV 99.612%': where the file came from and how good CV says it is.

    experiment: the workspace's `dvc exp` experiment, or None for none (default: look it up).
    """
    parts = []
    name = (os.environ.get("DVC_EXP_NAME") or experiment_name()) if experiment == _LOOK_UP else experiment
    if name:
        parts.append(f"exp {name}")
    commit = _git("rev-parse", "--short", "HEAD")
    if commit:
        dirty = " (uncommitted changes)" if not name and _git("status", "--porcelain", "--untracked-files=no") else ""
        parts.append(f"@ {commit}{dirty}")
    message = " ".join(parts) or "digit-recognizer"
    cv = ensemble_cv(metrics_path)
    if cv is not None:
        message += f": ensemble CV {cv:.3%}"
    return message


def submit(
    file: Path = paths.SUBMISSION,
    message: str | None = None,
    competition: str = "digit-recognizer",
    client: KaggleClient | None = None,
    wait: float | None = None,
    record_path: Path = paths.SUBMISSIONS_RECORD,
    say: Callable[[str], None] = print,
) -> str:
    """Check that `file` is a whole submission to `competition`, submit it and record it as pending; with `wait`
    (seconds), wait for its public score and record that. Returns the last line to show; says the others first.

    The pending record is written before waiting, so a killed wait loses nothing: `leaderboard` completes it.
    """
    file = Path(file)
    check_for_competition(file, competition)
    workspace_file = file.resolve() == paths.SUBMISSION.resolve()  # the pipeline's own: its experiment and CV
    experiment = (os.environ.get("DVC_EXP_NAME") or experiment_name()) if workspace_file else None
    cv = ensemble_cv() if workspace_file else None
    message = message or default_message(experiment=experiment)
    client = client or KaggleApiClient()
    submitted = client.submit(competition, file, message)
    record = SubmissionRecord(
        ref=submitted.ref,
        competition=competition,
        date=datetime.now(timezone.utc).isoformat(timespec="seconds").replace("+00:00", "Z"),
        message=message,
        status="pending",
        file=file.as_posix(),
        md5=file_md5(file),
        commit=_git("rev-parse", "HEAD") or None,
        experiment=experiment,
        cv_accuracy=cv,
    )
    upsert(record, record_path)
    done = f"submitted {file} to {competition} ({message!r}): {submitted.reply}"
    if submitted.ref is None:
        return f"{done}; Kaggle gave no submission number, so `digit-recognizer leaderboard` will find its score"
    pending = f"{done}\nrecorded in {record_path} as submission {submitted.ref}, pending"
    if wait is None:
        return f"{pending}: `digit-recognizer leaderboard` fills in its score once Kaggle has scored it"
    say(pending)
    sys.stdout.flush()  # before the status line on stderr
    try:
        state, seconds = wait_for_score(client, competition, submitted.ref, wait)
    except KeyboardInterrupt:
        raise UserError(
            f"stopped waiting: submission {submitted.ref} stays pending in {record_path}; "
            "`digit-recognizer leaderboard` fills in its score"
        ) from None
    record.update_from(state)
    upsert(record, record_path)
    if state.status == "error":
        raise UserError(
            f"Kaggle could not score submission {submitted.ref}: {state.error or 'it gave no reason'} "
            f"(recorded as error in {record_path})"
        )
    score = "not published" if state.public_score is None else f"{state.public_score:g}"
    gap = "" if cv is None or state.public_score is None else f" (ensemble CV {cv:.3%})"
    return f"scored in {seconds:.0f} s\npublic score: {score}{gap}"


def _git(*args: str) -> str:
    try:
        return subprocess.run(["git", *args], capture_output=True, text=True, check=True).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return ""

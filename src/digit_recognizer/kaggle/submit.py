"""`digit-recognizer submit`: validate a submission file, then send it to Kaggle with an informative message."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

from digit_recognizer import paths
from digit_recognizer.data.origin import read_origin
from digit_recognizer.data.prepare import read_submission
from digit_recognizer.errors import UserError
from digit_recognizer.kaggle.client import KaggleApiClient, KaggleClient

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


def default_message(metrics_path: Path = paths.METRICS) -> str:
    """E.g. 'exp lenet-2 @ 1a2b3c4: ensemble CV 99.612%': where the file came from and how good CV says it is."""
    parts = []
    name = os.environ.get("DVC_EXP_NAME") or experiment_name()
    if name:
        parts.append(f"exp {name}")
    commit = _git("rev-parse", "--short", "HEAD")
    if commit:
        dirty = " (uncommitted changes)" if not name and _git("status", "--porcelain", "--untracked-files=no") else ""
        parts.append(f"@ {commit}{dirty}")
    message = " ".join(parts) or "digit-recognizer"
    if metrics_path.exists():
        cv = json.loads(metrics_path.read_text()).get("ensemble", {}).get("cv_accuracy")
        if cv is not None:
            message += f": ensemble CV {cv:.3%}"
    return message


def submit(
    file: Path = paths.SUBMISSION,
    message: str | None = None,
    competition: str = "digit-recognizer",
    client: KaggleClient | None = None,
) -> str:
    """Check that `file` is a whole submission to `competition`, then submit it; return Kaggle's reply."""
    check_for_competition(Path(file), competition)
    message = message or default_message()
    reply = (client or KaggleApiClient()).submit(competition, Path(file), message)
    return f"submitted {file} to {competition} ({message!r}): {reply}"


def _git(*args: str) -> str:
    try:
        return subprocess.run(["git", *args], capture_output=True, text=True, check=True).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return ""

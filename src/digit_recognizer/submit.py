"""`digit-recognizer submit`: validate a submission file, then send it to Kaggle with an informative message."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import numpy as np

from digit_recognizer import paths
from digit_recognizer.kaggle_client import KaggleApiClient, KaggleClient
from digit_recognizer.prepare import read_submission

KAGGLE_TEST_ROWS = 28_000  # Kaggle's digit-recognizer test.csv, used when no local data says otherwise


def expected_test_rows(prepared_dir: Path = paths.PREPARED, raw_dir: Path = paths.RAW) -> int:
    """Rows the submission must have: from the prepared test set, else sample_submission.csv, else Kaggle's."""
    if (prepared_dir / "test_images.npy").exists():
        return int(np.load(prepared_dir / "test_images.npy", mmap_mode="r").shape[0])
    if (raw_dir / paths.SAMPLE_SUBMISSION_CSV).exists():
        return len(read_submission(raw_dir / paths.SAMPLE_SUBMISSION_CSV))
    return KAGGLE_TEST_ROWS


def default_message(metrics_path: Path = paths.METRICS) -> str:
    """E.g. 'exp-3f2a1 @ 1a2b3c4: ensemble CV 99.612%': where the file came from and how good CV says it is."""
    parts = []
    if os.environ.get("DVC_EXP_NAME"):
        parts.append(os.environ["DVC_EXP_NAME"])
    commit = _git("rev-parse", "--short", "HEAD")
    if commit:
        dirty = " (uncommitted changes)" if _git("status", "--porcelain", "--untracked-files=no") else ""
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
    """Validate `file` against the test set's row count, then submit it; return Kaggle's reply."""
    read_submission(file, n_rows=expected_test_rows())
    message = message or default_message()
    reply = (client or KaggleApiClient()).submit(competition, Path(file), message)
    return f"submitted {file} to {competition} ({message!r}): {reply}"


def _git(*args: str) -> str:
    try:
        return subprocess.run(["git", *args], capture_output=True, text=True, check=True).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return ""

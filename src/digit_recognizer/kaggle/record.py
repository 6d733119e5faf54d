"""The submissions record, submissions/submissions.json: every Kaggle submission with where it came from.

A git-tracked JSON list, one object per submission, oldest first, so that it travels with `git log` and
teammates' clones. `submit` writes a submission as "pending" before it waits for the score; `leaderboard`
completes what Kaggle knows later (status, public score, error) and adds submissions made elsewhere.
Written atomically: a killed command leaves the old file or the new one, never half of one.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass, fields
from pathlib import Path

from digit_recognizer import paths
from digit_recognizer.atomic import write_json
from digit_recognizer.errors import UserError, os_reason
from digit_recognizer.kaggle.client import KaggleSubmission, Status


@dataclass
class SubmissionRecord:
    ref: int | None  # Kaggle's number for the submission
    competition: str
    date: str  # ISO 8601, UTC: when it was submitted
    message: str
    status: Status
    public_score: float | None = None
    error: str | None = None  # Kaggle's scoring error (status "error")
    file: str | None = None  # the path submitted, relative to the project
    md5: str | None = None  # of the file's bytes, as dvc.lock names it: what ties it to an experiment
    commit: str | None = None  # the git commit the project was at
    experiment: str | None = None  # the `dvc exp` experiment whose outputs the workspace held, if any
    cv_accuracy: float | None = None  # the ensemble's CV accuracy from data/metrics.json
    submitted_from: str = "this project"  # or "elsewhere": found in Kaggle's list by `leaderboard`

    def update_from(self, kaggle: KaggleSubmission) -> None:
        """Take what Kaggle says now: status, public score, error (and the date and message, if unknown)."""
        self.status, self.public_score, self.error = kaggle.status, kaggle.public_score, kaggle.error
        self.date = self.date or kaggle.date
        self.message = self.message or kaggle.description


def file_md5(file: Path) -> str:
    return hashlib.md5(Path(file).read_bytes()).hexdigest()


def load_records(path: Path = paths.SUBMISSIONS_RECORD) -> list[SubmissionRecord]:
    """The record's submissions, oldest first (none when the file does not exist yet)."""
    if not path.exists():
        return []
    try:
        items = json.loads(path.read_text())
        known = {f.name for f in fields(SubmissionRecord)}
        records = [SubmissionRecord(**{k: v for k, v in item.items() if k in known}) for item in items]
    except OSError as error:
        raise UserError(f"{path} cannot be read ({os_reason(error)})") from None
    except (ValueError, TypeError, AttributeError):
        raise UserError(
            f"{path} is not a submissions record (a JSON list of submissions): restore it with "
            f"`git checkout {path}`; `digit-recognizer leaderboard` can then add what Kaggle knows"
        ) from None
    return _one_per_ref(records)


def _one_per_ref(records: list[SubmissionRecord]) -> list[SubmissionRecord]:
    """A submission recorded twice (two clones' records merged by git) once: this project's record first, with
    the later one's status and score where it is further along."""
    kept: dict[int, SubmissionRecord] = {}
    out = []
    for record in records:
        if record.ref is None or record.ref not in kept:
            out.append(record)
            if record.ref is not None:
                kept[record.ref] = record
            continue
        first = kept[record.ref]
        if first.submitted_from == "elsewhere" and record.submitted_from != "elsewhere":
            first, record = record, first
            out[out.index(kept[record.ref])] = first
            kept[first.ref] = first
        if first.status == "pending" and record.status != "pending":
            first.status, first.public_score, first.error = record.status, record.public_score, record.error
    return out


def save_records(records: list[SubmissionRecord], path: Path = paths.SUBMISSIONS_RECORD) -> None:
    write_json(path, [asdict(r) for r in records])


def upsert(record: SubmissionRecord, path: Path = paths.SUBMISSIONS_RECORD) -> None:
    """Add `record`, or replace the one with its ref, and write the file at once."""
    records = [r for r in load_records(path) if record.ref is None or r.ref != record.ref]
    save_records([*records, record], path)


def record_for_md5(records: list[SubmissionRecord], md5: str) -> SubmissionRecord | None:
    """The latest submission of the file with this md5 (a file submitted twice: its last score)."""
    matches = [r for r in records if r.md5 == md5]
    return matches[-1] if matches else None

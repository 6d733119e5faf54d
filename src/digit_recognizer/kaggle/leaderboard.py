"""`digit-recognizer leaderboard`: this competition's submissions from Kaggle, each beside its experiment and CV.

Lists the submissions through the client, fills what Kaggle now knows (status, public score, error) into
submissions/submissions.json, adds those made elsewhere, and matches each by its file's md5 to the experiment
whose dvc.lock names that md5 as submissions/submission.csv (DVC's `Repo.experiments.show`, the data behind
`dvc exp show --json`, over HEAD and every commit a submission was made at). Also writes
submissions/leaderboard.csv for `dvc plots show` (docs/kaggle.md).
"""

from __future__ import annotations

import contextlib
import csv
import io
from dataclasses import dataclass
from pathlib import Path

from digit_recognizer import paths
from digit_recognizer.atomic import write_text
from digit_recognizer.kaggle.client import KaggleApiClient, KaggleClient
from digit_recognizer.kaggle.record import SubmissionRecord, load_records, save_records
from digit_recognizer.report.table import format_table

COLUMNS = ("submission", "date", "status", "experiment", "CV accuracy", "public score", "CV - public")
UNKNOWN = "?"
ELSEWHERE = "? (elsewhere)"
UNKNOWN_NOTE = f"{UNKNOWN}: no experiment of HEAD or of the submission's commit made this file (by its md5)"
ELSEWHERE_NOTE = (
    f"{ELSEWHERE}: submitted from another clone or by hand; Kaggle's list does not say which file, so its "
    "experiment is unknown here (the clone that submitted it has it in its submissions/submissions.json)"
)


@dataclass(frozen=True)
class Run:
    """An experiment (or a commit) whose dvc.lock names a submission.csv."""

    label: str  # the experiment's name, or "<branch or sha> (commit)"
    experiment: str | None
    cv_accuracy: float | None


def merge(records: list[SubmissionRecord], listed, competition: str) -> list[SubmissionRecord]:
    """The record with Kaggle's current view of every listed submission; those it lacked are added (elsewhere)."""
    by_ref = {r.ref: r for r in records if r.ref is not None}
    for kaggle in listed:
        record = by_ref.get(kaggle.ref)
        if record is None:  # a ref-less record of ours (Kaggle gave none on submitting): found by its message
            record = next((r for r in records if r.ref is None and r.message == kaggle.description), None)
            if record is not None:
                record.ref = kaggle.ref
        if record is None:
            record = SubmissionRecord(
                ref=kaggle.ref,
                competition=competition,
                date=kaggle.date,
                message=kaggle.description,
                status=kaggle.status,
                submitted_from="elsewhere",
            )
            records.append(record)
        record.update_from(kaggle)
        by_ref[kaggle.ref] = record
    return sorted(records, key=lambda r: r.date)


def runs_by_md5(root: Path, commits: set[str]) -> dict[str, list[Run]]:
    """md5 of submissions/submission.csv -> the experiments (first) and commits whose dvc.lock names it."""
    from dvc.exceptions import NotDvcRepoError
    from dvc.repo import Repo
    from dvc.scm import NoSCMError, RevError, resolve_rev

    out = paths.SUBMISSION.as_posix()
    found: dict[str, list[Run]] = {}
    try:
        repo = Repo(str(root))
    except (NotDvcRepoError, NoSCMError):  # not a DVC repository in git: no experiment to match
        return found
    with repo:
        revs = ["HEAD"]
        for commit in commits:
            with contextlib.suppress(RevError):  # a commit this clone lacks (rebased away, not fetched): skipped
                revs.append(resolve_rev(repo.scm, commit))
        for baseline in repo.experiments.show(revs=sorted(set(revs)), num=1):
            if baseline.rev == "workspace":
                continue
            states = [(e, e.name) for r in baseline.experiments or [] for e in r.revs]
            states.append((baseline, None))
            for state, experiment in states:
                data = state.data
                if data is None or out not in data.outs or not data.outs[out].hash:
                    continue
                label = experiment or f"{baseline.name or baseline.rev[:7]} (commit)"
                cv = data.metrics.get(paths.METRICS.as_posix(), {}).get("data", {}).get("ensemble", {})
                found.setdefault(data.outs[out].hash, []).append(Run(label, experiment, cv.get("cv_accuracy")))
    return found


def match(records: list[SubmissionRecord], runs: dict[str, list[Run]]) -> dict[int, str]:
    """Each record's experiment label (keyed by id(record)); fills a record's experiment and CV where unknown."""
    labels = {}
    for record in records:
        candidates = runs.get(record.md5 or "", [])
        named = [run for run in candidates if record.experiment and run.experiment == record.experiment]
        run = (named or candidates or [None])[0]
        if run is None:
            labels[id(record)] = record.experiment or (ELSEWHERE if record.md5 is None else UNKNOWN)
            continue
        record.experiment = record.experiment or run.experiment
        if record.cv_accuracy is None:
            record.cv_accuracy = run.cv_accuracy
        labels[id(record)] = run.label
    return labels


def _gap(record: SubmissionRecord) -> float | None:
    if record.cv_accuracy is None or record.public_score is None:
        return None
    return (record.cv_accuracy - record.public_score) * 100  # percentage points


def table_rows(records: list[SubmissionRecord], labels: dict[int, str]) -> list[tuple[str, ...]]:
    rows = []
    for r in reversed(records):  # newest first, as Kaggle lists them
        gap = _gap(r)
        rows.append(
            (
                str(r.ref or "—"),
                r.date[:16].replace("T", " "),
                r.status,
                labels[id(r)],
                "—" if r.cv_accuracy is None else f"{r.cv_accuracy:.3%}",
                "—" if r.public_score is None else f"{r.public_score:.3%}",
                "—" if gap is None else f"{gap:+.3f} pts",
            )
        )
    return rows


def leaderboard_csv(records: list[SubmissionRecord], labels: dict[int, str]) -> str:
    """One row per scored submission, for `dvc plots show submissions/leaderboard.csv -x cv_accuracy ...`."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(["submission", "date", "experiment", "cv_accuracy", "public_score", "cv_minus_public"])
    for r in records:
        if r.public_score is not None and r.cv_accuracy is not None:
            gap = _gap(r)
            writer.writerow([r.ref, r.date, labels[id(r)], r.cv_accuracy, r.public_score, round(gap / 100, 6)])
    return buffer.getvalue()


def leaderboard(
    project: Path | None = None,
    competition: str = "digit-recognizer",
    client: KaggleClient | None = None,
    markdown: bool = False,
) -> str:
    """Update the record from Kaggle's list, match each submission to its experiment; return the table."""
    root = project or paths.find_project_root()
    record_path = root / paths.SUBMISSIONS_RECORD
    records = load_records(record_path)
    listed = (client or KaggleApiClient()).submissions(competition)
    pending_before = {r.ref for r in records if r.status == "pending"}
    records = merge(records, listed, competition)
    mine = [r for r in records if r.competition == competition]
    labels = match(mine, runs_by_md5(root, {r.commit for r in mine if r.commit}))
    save_records(records, record_path)
    write_text(root / paths.LEADERBOARD_CSV, leaderboard_csv(mine, labels))
    if not mine:
        return f"no submissions to {competition} yet: `digit-recognizer submit --wait` sends one"
    filled = sum(1 for r in mine if r.ref in pending_before and r.status != "pending")
    notes = [f"{record_path.relative_to(root)}: {filled} pending submission(s) completed"] if filled else []
    if any(labels[id(r)] == UNKNOWN for r in mine):
        notes.append(UNKNOWN_NOTE)
    if any(labels[id(r)] == ELSEWHERE for r in mine):
        notes.append(ELSEWHERE_NOTE)
    notes += [f"submission {r.ref} failed to score: {r.error}" for r in reversed(mine) if r.status == "error"]
    table = format_table(COLUMNS, table_rows(mine, labels), markdown, align="llllrrr")
    return table + ("\n\n" if markdown else "\n") + "\n".join(notes) if notes else table

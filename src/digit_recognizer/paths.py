"""Every file the pipeline reads or writes, declared once (dvc.yaml repeats them as stage outputs)."""

from __future__ import annotations

from pathlib import Path

DATA = Path("data")
RAW = DATA / "raw"
PREPARED = DATA / "prepared"
TRAIN = DATA / "train"
PSEUDO = DATA / "pseudo"  # the second round: the models that also learn pseudo-labelled test digits
PSEUDO_SUFFIX = "+pseudo"  # "cnn+pseudo": cnn's second round, an ensemble member beside cnn
TIMINGS = DATA / "timings"  # how long each fold took to train: a log, not a DVC output (it would change hashes)
ENSEMBLE = DATA / "ensemble"
COMBINER_JSON = "combiner.json"  # in ENSEMBLE: the fitted combiner and the fold models it combines
REPORT = DATA / "report"
METRICS = DATA / "metrics.json"
SUBMISSIONS = Path("submissions")
SUBMISSION = SUBMISSIONS / "submission.csv"
SUBMISSIONS_RECORD = SUBMISSIONS / "submissions.json"  # git-tracked: every Kaggle submission and its score
LEADERBOARD_CSV = SUBMISSIONS / "leaderboard.csv"  # `leaderboard`'s table, for `dvc plots show` (not tracked)

TRAIN_CSV = "train.csv"
TEST_CSV = "test.csv"
SAMPLE_SUBMISSION_CSV = "sample_submission.csv"
ANSWERS_CSV = "answers.csv"  # test labels; only the embedded sample has them
ORIGIN_JSON = "origin.json"  # where data/raw came from: {"kind": "sample" | "kaggle" | "local", "description": ...}
COMPETITION_FILES = (TRAIN_CSV, TEST_CSV, SAMPLE_SUBMISSION_CSV)

# Set by `digit-recognizer repro` in the checkouts it runs stages in: the project's folder, from which a
# relative data.source path is read
WORKSPACE_VARIABLE = "DIGIT_RECOGNIZER_WORKSPACE"


def train_run_dir(model: str, fold: int, root: Path = TRAIN) -> Path:
    """Folder of one (model, fold) training run: weights, OOF/test probabilities, metrics, curves.

    model: an architecture (first round, under `root`) or "<architecture>+pseudo" (its second round, under
    the `pseudo` folder beside `root`).
    """
    if model.endswith(PSEUDO_SUFFIX):
        return root.parent / PSEUDO.name / f"{model.removesuffix(PSEUDO_SUFFIX)}-{fold}"
    return root / f"{model}-{fold}"


def ensemble_members(architectures: list[str], second_round: list[str]) -> list[str]:
    """What the ensemble combines: every architecture, then each second-round (pseudo-labelled) one."""
    return [*architectures, *(a + PSEUDO_SUFFIX for a in second_round)]


def timing_file(model: str, fold: int, root: Path = TIMINGS) -> Path:
    """Seconds, images/s, device and threads of the last time this (architecture, fold) trained here."""
    return root / f"{model}-{fold}.json"


def find_project_root(start: Path | None = None) -> Path:
    """The nearest folder at or above `start` (default: the current one) that holds dvc.yaml."""
    from digit_recognizer.errors import UserError

    start = (start or Path.cwd()).resolve()
    for folder in (start, *start.parents):
        if (folder / "dvc.yaml").is_file():
            return folder
    raise UserError(f"{start} is not inside the project (no dvc.yaml here or above): cd into it or pass --project")

"""`digit-recognizer compare A B`: is B better than A on the same rows, or is the difference noise?

Both sides' out-of-fold predictions are read through DVC (the workspace, a commit, a branch or a `dvc exp`
experiment; files come from the DVC cache). Every training row was predicted once on each side by a
model that never saw it, so the two are a paired comparison: what counts is the rows one side gets right
and the other wrong. McNemar's exact test asks whether that split is more lopsided than a fair coin
would make it.
"""

from __future__ import annotations

import io
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import yaml

from digit_recognizer import paths
from digit_recognizer.errors import UserError
from digit_recognizer.metrics import mcnemar_exact

WORKSPACE = "workspace"


@dataclass
class Side:
    label: str  # what the user named: "HEAD", "workspace", an experiment name
    revision: str | None  # the commit it resolved to; None for the workspace
    labels: np.ndarray  # (N,) the training labels
    folds: np.ndarray  # (N,) the CV fold of each row
    correct: dict[str, np.ndarray]  # architecture or "ensemble" -> (N,) bool, out of fold


@dataclass
class RowComparison:
    name: str
    accuracy_a: float
    accuracy_b: float
    fixes: int  # rows B gets right and A wrong
    breaks: int  # rows A gets right and B wrong
    p_value: float

    def verdict(self, alpha: float) -> str:
        if self.fixes == self.breaks == 0:
            return "identical"
        if self.p_value >= alpha:
            return "noise"
        return "B better" if self.fixes > self.breaks else "B worse"


def compare_rows(name: str, a: np.ndarray, b: np.ndarray) -> RowComparison:
    """a, b: (N,) bool, whether each side got each row right."""
    return RowComparison(
        name,
        float(a.mean()),
        float(b.mean()),
        fixes := int((b & ~a).sum()),
        breaks := int((a & ~b).sum()),
        mcnemar_exact(fixes, breaks),
    )


def load_side(root: Path, name: str) -> Side:
    """Read one side's labels, folds and out-of-fold predictions at revision `name` ("workspace": as it is)."""
    from dvc.api import DVCFileSystem
    from dvc.repo import Repo
    from dvc.scm import RevError, resolve_rev

    revision = None
    if name != WORKSPACE:
        with Repo(str(root)) as repo:
            try:
                revision = resolve_rev(repo.scm, name)
            except RevError:
                raise UserError(f"{name!r} is neither a git revision nor a `dvc exp` experiment here") from None
    fs = DVCFileSystem(str(root), rev=revision)

    def read(path: Path) -> bytes:
        try:
            with fs.open(path.as_posix(), "rb") as f:
                return f.read()
        except Exception:  # DVC raises several kinds for a file whose data is not in the cache
            raise UserError(missing_output(name, path)) from None

    def load_npy(path: Path) -> np.ndarray:
        return np.load(io.BytesIO(read(path)))

    from digit_recognizer.ensemble.fold_predictions import load_architecture

    params = yaml.safe_load(read(Path("params.yaml")))
    labels = load_npy(paths.PREPARED / "train_labels.npy")
    folds = load_npy(paths.PREPARED / "folds.npy")
    correct = {
        arch: load_architecture(arch, folds, labels, paths.TRAIN, read).oof.argmax(1) == labels
        for arch in paths.ensemble_members(
            params["architectures"],
            params.get("pseudo_label", {}).get("architectures", []),  # older revisions have no such key
        )
    }
    correct["ensemble"] = load_npy(paths.ENSEMBLE / "oof.npy").argmax(1) == labels
    return Side(name, revision, labels, folds, correct)


def missing_output(name: str, path: Path) -> str:
    """What to run when side `name` lacks `path`: one line, no exception names."""
    if name == WORKSPACE:
        return f"workspace: {path.as_posix()} is missing: run `dvc repro` first"
    return (
        f"{name}: {path.as_posix()} is not in this machine's DVC cache: {name}'s dvc.lock names outputs made "
        "elsewhere, which a run here does not reproduce byte for byte. Compare against this machine's own run: "
        "`dvc repro`, `dvc exp save -n baseline`, then `digit-recognizer compare baseline <experiment>` "
        "(or `dvc pull` the outputs, where a DVC remote has them)"
    )


def compare(a: Side, b: Side) -> list[RowComparison]:
    """One RowComparison per architecture both sides trained, then the ensemble."""
    if not np.array_equal(a.labels, b.labels):
        raise UserError(
            f"{a.label} and {b.label} were trained on different rows (data.source or the data changed): "
            "a paired comparison needs the same training rows"
        )
    names = [n for n in a.correct if n in b.correct and n != "ensemble"] + ["ensemble"]
    return [compare_rows(n, a.correct[n], b.correct[n]) for n in names]


def format_comparison(a: Side, b: Side, rows: list[RowComparison], alpha: float) -> str:
    def describe(side: Side) -> str:
        return side.label if side.revision is None else f"{side.label} ({side.revision[:7]})"

    lines = [f"A = {describe(a)}, B = {describe(b)}: {len(a.labels):,} training rows, each predicted out of fold"]
    if not np.array_equal(a.folds, b.folds):
        lines.append("note: the two sides split the rows into different CV folds")
    only = sorted(set(a.correct) ^ set(b.correct))
    if only:
        lines.append(f"note: only one side has {', '.join(only)}")
    lines.append("")
    lines.append(f"{'':10s} {'A':>8s} {'B':>8s} {'B fixes':>8s} {'B breaks':>9s} {'McNemar p':>10s}  verdict")
    for r in rows:
        lines.append(
            f"{r.name:10s} {r.accuracy_a:8.3%} {r.accuracy_b:8.3%} {r.fixes:8d} {r.breaks:9d} "
            f"{r.p_value:10.3g}  {r.verdict(alpha)}"
        )
    ensemble = rows[-1]
    net = ensemble.fixes - ensemble.breaks
    verdicts = {
        "identical": "B and A get the same rows right",
        "noise": f"the difference ({net:+d} rows) is within noise (p = {ensemble.p_value:.3g} >= {alpha})",
        "B better": f"B is better by {net} rows (p = {ensemble.p_value:.3g} < {alpha})",
        "B worse": f"B is worse by {-net} rows (p = {ensemble.p_value:.3g} < {alpha})",
    }
    lines.append("")
    lines.append(f"ensemble: {verdicts[ensemble.verdict(alpha)]}")
    return "\n".join(lines)


BASELINE = "baseline"  # the name the README's loop saves this machine's run under


def run_compare(a: str | None, b: str, alpha: float = 0.05, root: Path | None = None) -> str:
    """The printed comparison of revision `a` (default: the `baseline` experiment if there is one, else HEAD)
    against `b` ("workspace" for the working tree)."""
    from dvc.repo import Repo
    from dvc.scm import RevError, resolve_rev

    root = Path(Repo.find_root(str(root) if root else None))
    if a is None:
        with Repo(str(root)) as repo:
            try:
                resolve_rev(repo.scm, BASELINE)
                a = BASELINE
            except RevError:
                a = "HEAD"
    side_a, side_b = load_side(root, a), load_side(root, b)
    return format_comparison(side_a, side_b, compare(side_a, side_b), alpha)

"""Train one architecture's recipe variant (or another seed) on some folds of a finished run, without DVC,
and compare it row by row with that run's own fold models: a quick screen before a `dvc exp run`.

    python benchmarks/fold_screen.py --project RUN --arch cnn --folds 0 1 --set epochs=25
    python benchmarks/fold_screen.py --project RUN --arch cnn --seed 1 --out /tmp/cnn-seed1   # every fold

Per fold: held-out accuracy, rows fixed and broken against the run's model of that fold. With every fold,
also the ensemble (nested, as the pipeline scores it) for each method with the variant in place of the
run's members (`replaced`), and with the two averaged (`averaged`: e.g. two seeds of the same recipe).
The run's folds, data and params are read from RUN; predictions go to --out (a scratch folder).
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

import numpy as np
import torch
import yaml

from digit_recognizer import paths
from digit_recognizer.data.prepared import load_prepared
from digit_recognizer.ensemble.combine import nested_oof
from digit_recognizer.ensemble.fold_predictions import load_architecture
from digit_recognizer.params import recipe_from_params
from digit_recognizer.report.compare import RowComparison, compare_rows
from digit_recognizer.training.device import configure_threads, keep_freed_memory
from digit_recognizer.training.fold_run import train_fold


def set_key(section: dict, dotted: str, value: str) -> None:
    *head, last = dotted.split(".")
    for key in head:
        section = section.setdefault(key, {})
    section[last] = yaml.safe_load(value)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--project", type=Path, required=True, help="a project where `dvc repro` has finished")
    parser.add_argument("--arch", required=True)
    parser.add_argument("--folds", type=int, nargs="+", help="default: every fold")
    parser.add_argument("--seed", type=int, help="default: the run's train.seed")
    parser.add_argument(
        "--set", nargs="*", default=[], metavar="KEY=VALUE", help="in models.<arch>, e.g. net.deskew=true"
    )
    parser.add_argument("--out", type=Path, default=None)
    args = parser.parse_args()

    params = yaml.safe_load((args.project / "params.yaml").read_text())
    section = params["models"][args.arch]
    for assignment in args.set:
        set_key(section, *assignment.split("=", 1))
    recipe = recipe_from_params(args.arch, section)
    net, config = recipe.net, recipe.fit
    seed = params["train"]["seed"] if args.seed is None else args.seed
    data = load_prepared(args.project / paths.PREPARED)
    labels, folds = data.train_labels, data.folds
    fold_ids = args.folds if args.folds is not None else list(range(data.n_folds))
    out = args.out or Path(tempfile.mkdtemp(prefix="fold_screen-"))
    keep_freed_memory()
    configure_threads(params["train"]["num_threads"])
    print(f"{args.arch} with {args.set or 'the same recipe'}, seed {seed}, folds {fold_ids}, into {out}")

    run = load_architecture(args.arch, folds, labels, args.project / paths.TRAIN)
    variant = np.full_like(run.oof, np.nan)
    for fold in fold_ids:
        _, timing = train_fold(
            args.arch, fold, net, config, data, out / f"{args.arch}-{fold}", seed, torch.device("cpu"),
            held_out_curve_every=0,
        )  # fmt: skip
        rows = folds == fold
        variant[rows] = np.load(out / f"{args.arch}-{fold}" / "predictions.npz")["oof"]
        row = compare_rows(args.arch, run.oof[rows].argmax(1) == labels[rows], variant[rows].argmax(1) == labels[rows])
        print(
            f"fold {fold}: {describe(row)}, "
            f"{timing['train_seconds']:.0f} s at {timing['images_per_second']:,.0f} img/s",
            flush=True,
        )
    if len(fold_ids) < data.n_folds:
        return
    row = compare_rows(args.arch, run.oof.argmax(1) == labels, variant.argmax(1) == labels)
    print(f"all folds: {describe(row)}, p {row.p_value:.3g}")

    members = {
        name: run.oof if name == args.arch else load_architecture(name, folds, labels, args.project / paths.TRAIN).oof
        for name in params["architectures"]
    }
    for method in ("weighted", "loglinear"):
        base = ensemble_correct(method, members, labels, folds)
        for mode, oof in (("replaced", variant), ("averaged", (variant + run.oof) / 2)):
            row = compare_rows(mode, base, ensemble_correct(method, {**members, args.arch: oof}, labels, folds))
            print(f"ensemble ({method}), {args.arch} {mode}: {describe(row)}, p {row.p_value:.3g}")


def describe(row: RowComparison) -> str:
    return f"{row.accuracy_a:.3%} -> {row.accuracy_b:.3%}, fixes {row.fixes}, breaks {row.breaks}"


def ensemble_correct(method: str, members: dict[str, np.ndarray], labels: np.ndarray, folds: np.ndarray) -> np.ndarray:
    """(N,) bool: the rows the nested ensemble of these members' OOF probabilities gets right."""
    honest = nested_oof({"method": method, "stacking_c": 1.0}, np.stack(list(members.values())), labels, folds)
    return honest.argmax(1) == labels


if __name__ == "__main__":
    main()

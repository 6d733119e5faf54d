"""How much of a finished run's ensemble CV is its seeds: the nested ensemble (weighted and loglinear) with
each of some architectures' members taken from the run's seed, from another seed, or the two averaged; and
how many of those models get each row wrong (a row most of them miss, no combination of them wins).

    python benchmarks/fold_screen.py --project RUN --arch cnn --seed 1 --out /tmp/cnn-seed1    # every fold
    python benchmarks/fold_screen.py --project RUN --arch cnn3 --seed 1 --out /tmp/cnn3-seed1
    python benchmarks/seed_combos.py --project RUN --other cnn=/tmp/cnn-seed1 cnn3=/tmp/cnn3-seed1

Every line is compared row by row with the run's own ensemble as its params define it (McNemar's exact test).
"""

from __future__ import annotations

import argparse
from itertools import product
from pathlib import Path

import numpy as np
import yaml

from digit_recognizer import paths
from digit_recognizer.data.prepared import load_prepared
from digit_recognizer.ensemble.combine import nested_oof
from digit_recognizer.ensemble.fold_predictions import load_architecture
from digit_recognizer.report.compare import compare_rows

CHOICES = ("run", "other", "averaged")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--project", type=Path, required=True, help="a project where `dvc repro` has finished")
    parser.add_argument("--other", nargs="+", required=True, metavar="ARCH=DIR", help="fold_screen.py's --out")
    args = parser.parse_args()
    params = yaml.safe_load((args.project / "params.yaml").read_text())
    data = load_prepared(args.project / paths.PREPARED)
    labels, folds = data.train_labels, data.folds
    run = {
        name: load_architecture(name, folds, labels, args.project / paths.TRAIN).oof for name in params["architectures"]
    }
    other = {}
    for assignment in args.other:
        name, folder = assignment.split("=", 1)
        other[name] = load_architecture(name, folds, labels, Path(folder)).oof
    pick = {"run": lambda a: run[a], "other": lambda a: other[a], "averaged": lambda a: (run[a] + other[a]) / 2}

    def correct(method: str, members: dict[str, np.ndarray]) -> np.ndarray:  # the rows the nested ensemble gets right
        oofs = np.stack(list(members.values()))
        return nested_oof({"method": method, "stacking_c": 1.0}, oofs, labels, folds).argmax(1) == labels

    default = correct(params["ensemble"]["method"], run)
    print(f"against the run's own ensemble ({params['ensemble']['method']}): {default.mean():.3%}\n")
    print(f"| {' | '.join(other)} | method | CV accuracy | rows wrong | fixes | breaks | McNemar p |")
    print(f"| {' | '.join('---' for _ in other)} | --- | ---: | ---: | ---: | ---: | ---: |")
    for choice in product(CHOICES, repeat=len(other)):
        members = run | {name: pick[how](name) for name, how in zip(other, choice, strict=True)}
        for method in ("weighted", "loglinear"):
            row = compare_rows(method, default, correct(method, members))
            print(
                f"| {' | '.join(choice)} | {method} | {row.accuracy_b:.3%} | {round((1 - row.accuracy_b) * len(labels))} "
                f"| {row.fixes} | {row.breaks} | {row.p_value:.3g} |",
                flush=True,
            )

    wrong = np.stack([oof.argmax(1) != labels for name in other for oof in (run[name], other[name])])
    counts = wrong.sum(0)
    print(
        f"\nrows wrong by k of the {len(wrong)} models of {', '.join(other)} (both seeds): "
        + ", ".join(f"{k}: {(counts == k).sum()}" for k in range(1, len(wrong) + 1))
    )


if __name__ == "__main__":
    main()

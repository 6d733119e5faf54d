"""Where a finished run's out-of-fold errors lie: how many rows each architecture gets wrong, how many
every architecture gets wrong (mostly mislabelled or unreadable digits, the floor any ensemble of these
models stands on), and how many the strongest two disagree on (the rows an ensemble can still win).

    python benchmarks/error_overlap.py [--project .] [--strong cnn cnn3]
"""

from __future__ import annotations

import argparse
from itertools import combinations
from pathlib import Path

import numpy as np
import yaml

from digit_recognizer import paths
from digit_recognizer.data.prepared import load_prepared
from digit_recognizer.ensemble.fold_predictions import load_architecture


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--project", type=Path, default=Path("."))
    parser.add_argument("--strong", nargs=2, default=["cnn", "cnn3"], help="the two architectures to pair")
    args = parser.parse_args()
    root = args.project
    architectures = yaml.safe_load((root / "params.yaml").read_text())["architectures"]
    data = load_prepared(root / paths.PREPARED)
    labels, folds = data.train_labels, data.folds
    wrong = {
        name: load_architecture(name, folds, labels, root / paths.TRAIN).oof.argmax(1) != labels
        for name in architectures
    }
    ensemble_wrong = np.load(root / paths.ENSEMBLE / "oof.npy").argmax(1) != labels

    print(f"{len(labels):,} training rows, out of fold\n")
    print("| rows wrong | count |\n| --- | ---: |")
    for name in architectures:
        print(f"| {name} | {wrong[name].sum()} |")
    print(f"| the ensemble | {ensemble_wrong.sum()} |")
    print(f"| by every architecture | {np.all(list(wrong.values()), axis=0).sum()} |")
    a, b = args.strong
    print(f"| by both {a} and {b} | {(wrong[a] & wrong[b]).sum()} |")
    print(f"| by exactly one of {a} and {b} | {(wrong[a] ^ wrong[b]).sum()} |")
    print(f"| by the ensemble, right by {a} or {b} | {(ensemble_wrong & ~(wrong[a] & wrong[b])).sum()} |")
    pairs = sorted(combinations(architectures, 2), key=lambda p: (wrong[p[0]] & wrong[p[1]]).sum())
    print("\nrows both of a pair get wrong, fewest first: " + ", ".join(
        f"{x}+{y} {(wrong[x] & wrong[y]).sum()}" for x, y in pairs
    ))  # fmt: skip


if __name__ == "__main__":
    main()

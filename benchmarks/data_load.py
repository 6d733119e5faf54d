"""Time download, prepare and loading on a competition zip, against pandas.read_csv without validation.

python benchmarks/data_load.py                                  # the mini competition in ../shared
python benchmarks/data_load.py --zip path/to/digit-recognizer.zip --kaggle-size
--kaggle-size also times the validated read of a synthetic Kaggle-sized train.csv (42,000 x 785 random pixels).
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd
from machine_speed import describe

from digit_recognizer.csv_io import TRAIN_COLUMNS, read_int_csv, write_int_csv
from digit_recognizer.download import download
from digit_recognizer.prepare import load_prepared, prepare


def seconds(work) -> float:
    start = time.perf_counter()
    work()
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument(
        "--zip", default=str(Path(__file__).resolve().parents[2] / "shared/data/digit-recognizer-mini.zip")
    )
    parser.add_argument("--kaggle-size", action="store_true")
    args = parser.parse_args()
    print(describe())
    with tempfile.TemporaryDirectory() as scratch:
        raw, prepared = Path(scratch) / "raw", Path(scratch) / "prepared"
        rows = [
            ("download (extract the zip into data/raw/)", seconds(lambda: download(args.zip, raw))),
            (
                "prepare (validate the CSVs, write arrays, stratified folds)",
                seconds(lambda: prepare(raw, prepared, 5, 42)),
            ),
            ("load the prepared arrays (load_prepared)", seconds(lambda: load_prepared(prepared))),
            (
                "for scale: pandas.read_csv of train.csv + test.csv, no validation",
                seconds(lambda: [pd.read_csv(raw / name) for name in ("train.csv", "test.csv")]),
            ),
        ]
        if args.kaggle_size:
            big = Path(scratch) / "train.csv"
            rng = np.random.default_rng(0)
            pixels = np.column_stack([rng.integers(0, 10, 42_000), rng.integers(0, 256, (42_000, 784))])
            write_int_csv(big, TRAIN_COLUMNS, pixels.astype(np.int32))
            bounds = [(0, 9)] + [(0, 255)] * 784
            rows += [
                (
                    "synthetic 42,000-row train.csv: validated read",
                    seconds(lambda: read_int_csv(big, TRAIN_COLUMNS, bounds)),
                ),
                ("synthetic 42,000-row train.csv: pandas.read_csv", seconds(lambda: pd.read_csv(big))),
            ]
    print("\n| step | time |\n| --- | ---: |")
    for name, value in rows:
        print(f"| {name} | {value:.2f} s |")


if __name__ == "__main__":
    main()

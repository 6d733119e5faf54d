"""`digit-recognizer predict`: read handwritten digits from image files with the trained ensemble."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np

from digit_recognizer.errors import UserError, os_reason
from digit_recognizer.serving.preprocess import NoInk, load_image, picture_warnings, to_mnist


def predict_files(images: list[Path], show_all: bool, project: Path | None = None) -> bool:
    """Print each picture's reading (and why it may not be a digit); a picture that cannot be read is named on
    stderr and the others are still read. Returns whether every picture was read."""
    from digit_recognizer.serving.inference import EnsemblePredictor

    predictor = EnsemblePredictor.load(project)
    prepared = []
    for path in images:
        try:
            prepared.append((path, *prepare_picture(path)))
        except UserError as error:
            print(f"error: {error}", file=sys.stderr, flush=True)
    if prepared:
        _print_readings(predictor, prepared, show_all)
    return len(prepared) == len(images)


def prepare_picture(path: Path) -> tuple[np.ndarray, list[str]]:
    """The picture at `path` as an MNIST-style digit, and what makes it unlike one; a UserError names the file."""
    try:
        data = path.read_bytes()
    except OSError as error:
        raise UserError(f"{path}: cannot be read ({os_reason(error)})") from None
    grey = load_image(data, str(path))
    try:
        return to_mnist(grey), picture_warnings(grey)
    except NoInk as error:
        raise UserError(f"{path}: {error}") from None


def _print_readings(predictor, prepared: list[tuple[Path, np.ndarray, list[str]]], show_all: bool) -> None:
    from digit_recognizer.serving.inference import ensemble_weights

    result = predictor.predict(np.stack([digit for _, digit, _ in prepared]))
    combiner = predictor.combiner
    # --all shows each architecture as the ensemble combines it: `weighted` first calibrates each by a
    # temperature, so its raw probabilities would not add up to the ensemble's
    calibrated = " calibrated" if combiner.temperatures is not None else ""
    weights = ensemble_weights(combiner)
    for i, (path, _, warnings) in enumerate(prepared):
        probabilities = result.ensemble[i]
        line = f"{path}: {probabilities.argmax()} ({probabilities.max():.1%})"
        if show_all:
            for name, p in result.calibrated.items():
                weight = "" if weights[name] is None else f", weight {weights[name]:.2g}"
                line += f"  {name} {p[i].argmax()} ({p[i].max():.0%}{calibrated}{weight})"
        for warning in warnings:
            line += f"  [warning: {warning}]"
        print(line)

"""Test-time augmentation, measured on a finished run: does averaging a fold model's predictions over
shifted, rotated or zoomed copies of each held-out digit fix out-of-fold rows?

For every architecture and fold it re-predicts the held-out fold with each fixed warp below, then prints
the CV accuracy of each warp alone, of two averages (the identity with the four one-pixel shifts; with
rotations and zooms), and of the weighted ensemble (nested, as the pipeline scores it) with and without
the shift average. Run it in a project where `dvc repro` has finished:

    python benchmarks/tta.py [--project .] [--architectures cnn cnn3 ...]
"""

from __future__ import annotations

import argparse
import math
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
import yaml

from digit_recognizer import paths
from digit_recognizer.augment import affine_grid
from digit_recognizer.ensemble import nested_oof
from digit_recognizer.fold_run import load_fold_model
from digit_recognizer.predict import normalize, to_model_input
from digit_recognizer.prepare import load_prepared

PIXEL = 2 / 28  # one pixel in grid_sample's normalised coordinates


def warp(angle: float = 0.0, scale: float = 1.0, dx: float = 0.0, dy: float = 0.0) -> torch.Tensor:
    """The (2, 3) affine that samples each output pixel from the input (as random_affine builds them)."""
    a = math.radians(angle)
    cos, sin = math.cos(a) / scale, math.sin(a) / scale
    return torch.tensor([[cos, -sin, dx * PIXEL], [sin, cos, dy * PIXEL]])


WARPS = {
    "identity": warp(),
    "left 1px": warp(dx=1), "right 1px": warp(dx=-1), "up 1px": warp(dy=1), "down 1px": warp(dy=-1),
    "rotate +6": warp(angle=6), "rotate -6": warp(angle=-6), "zoom 1.06": warp(scale=1.06), "zoom 0.94": warp(scale=0.94),
}  # fmt: skip
AVERAGES = {
    "shifts (5)": ["identity", "left 1px", "right 1px", "up 1px", "down 1px"],
    "rotations and zooms (5)": ["identity", "rotate +6", "rotate -6", "zoom 1.06", "zoom 0.94"],
}


@torch.inference_mode()
def warped_probabilities(model: torch.nn.Module, images: np.ndarray, theta: torch.Tensor) -> np.ndarray:
    chunks = []
    for start in range(0, len(images), 1024):
        x = to_model_input(torch.from_numpy(images[start : start + 1024]))
        grid = affine_grid(theta.expand(len(x), 2, 3).contiguous(), 28, 28)
        x = F.grid_sample(x, grid, mode="bilinear", padding_mode="zeros", align_corners=False)
        chunks.append(torch.softmax(model(normalize(x)).float(), 1))
    return torch.cat(chunks).numpy()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--project", type=Path, default=Path("."))
    parser.add_argument("--architectures", nargs="*")
    args = parser.parse_args()
    params = yaml.safe_load((args.project / "params.yaml").read_text())
    architectures = args.architectures or params["architectures"]
    data = load_prepared(args.project / paths.PREPARED)
    labels, folds = data.train_labels, data.folds

    oofs = {}  # architecture -> warp -> (N, 10)
    for arch in architectures:
        oofs[arch] = {name: np.zeros((len(labels), 10), np.float32) for name in WARPS}
        for fold in range(data.n_folds):
            model = load_fold_model(args.project / paths.train_run_dir(arch, fold) / "model.pt")
            rows = folds == fold
            for name, theta in WARPS.items():
                oofs[arch][name][rows] = warped_probabilities(model, data.train_images[rows], theta)

    def accuracy(probabilities: np.ndarray) -> str:
        return f"{(probabilities.argmax(1) == labels).mean():.3%}"

    print("| | " + " | ".join([*WARPS, *AVERAGES]) + " |")
    print("| --- |" + " ---: |" * (len(WARPS) + len(AVERAGES)))
    for arch, by_warp in oofs.items():
        averaged = [np.mean([by_warp[w] for w in members], 0) for members in AVERAGES.values()]
        print(f"| {arch} | " + " | ".join(accuracy(p) for p in [*by_warp.values(), *averaged]) + " |")
    combiner = {"method": params["ensemble"]["method"], "stacking_c": params["ensemble"]["stacking_c"]}
    for label, members in (("no TTA", ["identity"]), ("shifts (5)", AVERAGES["shifts (5)"])):
        stacked = np.stack([np.mean([oofs[a][w] for w in members], 0) for a in architectures])
        ensemble = nested_oof(combiner, stacked, labels, folds)
        print(f"ensemble ({combiner['method']}, nested), {label}: {accuracy(ensemble)}")


if __name__ == "__main__":
    main()

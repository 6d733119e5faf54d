"""The trained pipeline as one predictor: every fold model of every architecture plus the ensemble combiner.

Used by `digit-recognizer predict` and `serve`; it calls the same `predict` as the training stages.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from digit_recognizer import paths
from digit_recognizer.ensemble.combine import Combiner
from digit_recognizer.errors import UserError
from digit_recognizer.training.fold_run import load_fold_model
from digit_recognizer.training.predict import predict


@dataclass
class Prediction:
    ensemble: np.ndarray  # (N, 10)
    architectures: dict[str, np.ndarray]  # name -> (N, 10), the mean of its fold models
    calibrated: dict[str, np.ndarray]  # name -> (N, 10), as the combiner weighs it (at its temperature, if any)


class EnsemblePredictor:
    def __init__(self, models: dict[str, list[torch.nn.Module]], combiner: Combiner):
        self.models, self.combiner = models, combiner

    @classmethod
    def load(cls, root: Path | None = None) -> EnsemblePredictor:
        """The last `dvc repro`'s ensemble in the project at `root` (default: the one around the current folder).

        Exactly the fold models the ensemble combined are loaded, as its combiner.json lists them.
        """
        root = Path(root) if root is not None else paths.find_project_root()
        combiner_path = root / paths.ENSEMBLE / paths.COMBINER_JSON
        if not combiner_path.exists():
            raise UserError(
                f"no trained ensemble in {root / paths.ENSEMBLE}: run `dvc repro` first (it trains the models)"
            )
        saved = json.loads(combiner_path.read_text())
        models: dict[str, list[torch.nn.Module]] = {}
        for arch, runs in saved["models"].items():
            missing = [run for run in runs if not (root / run).is_file()]
            if missing:
                raise UserError(f"{root / missing[0]} is missing: run `dvc repro` (or `dvc checkout`) first")
            models[arch] = [load_fold_model(root / run) for run in runs]
        return cls(models, Combiner.from_json(saved))

    def predict(self, images: np.ndarray) -> Prediction:
        """(N, 28, 28) uint8 digits -> probabilities of the ensemble and of each architecture."""
        per_arch = {
            name: np.mean([predict(m, images) for m in fold_models], axis=0)
            for name, fold_models in self.models.items()
        }
        stacked = np.stack([per_arch[name] for name in self.combiner.architectures])
        calibrated = dict(zip(self.combiner.architectures, self.combiner.calibrated(stacked), strict=True))
        return Prediction(self.combiner.combine(stacked), per_arch, calibrated)


def ensemble_weights(combiner: Combiner) -> dict[str, float | None]:
    """Each architecture's weight in the ensemble (None for `stacking`, whose meta-model has no one weight)."""
    if combiner.weights is None:
        return dict.fromkeys(combiner.architectures)
    return {name: float(weight) for name, weight in zip(combiner.architectures, combiner.weights, strict=True)}

"""The trained pipeline as one predictor: every fold model of every architecture plus the ensemble combiner.

Used by `digit-recognizer predict` and `serve`; it calls the same `predict` as the training stages.
"""

from __future__ import annotations

import pickle
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from digit_recognizer import paths
from digit_recognizer.errors import UserError
from digit_recognizer.fold_run import load_fold_model
from digit_recognizer.predict import predict


@dataclass
class Prediction:
    ensemble: np.ndarray  # (N, 10)
    architectures: dict[str, np.ndarray]  # name -> (N, 10), the mean of its fold models


class EnsemblePredictor:
    def __init__(self, models: dict[str, list[torch.nn.Module]], combiner):
        self.models, self.combiner = models, combiner

    @classmethod
    def load(cls, train_dir: Path = paths.TRAIN, ensemble_dir: Path = paths.ENSEMBLE) -> EnsemblePredictor:
        combiner_path = Path(ensemble_dir) / "combiner.pkl"
        if not combiner_path.exists():
            raise UserError(f"no trained ensemble in {ensemble_dir}: run `dvc repro` first (it trains the models)")
        with open(combiner_path, "rb") as f:
            combiner = pickle.load(f)
        models: dict[str, list[torch.nn.Module]] = {}
        for arch in combiner.architectures:
            runs = sorted(Path(train_dir).glob(f"{arch}-*/model.pt"))
            if not runs:
                raise UserError(f"no trained {arch} models in {train_dir}: run `dvc repro` first")
            models[arch] = [load_fold_model(run) for run in runs]
        return cls(models, combiner)

    def predict(self, images: np.ndarray) -> Prediction:
        """(N, 28, 28) uint8 digits -> probabilities of the ensemble and of each architecture."""
        per_arch = {
            name: np.mean([predict(m, images) for m in fold_models], axis=0)
            for name, fold_models in self.models.items()
        }
        stacked = np.stack([per_arch[name] for name in self.combiner.architectures])
        return Prediction(self.combiner.combine(stacked), per_arch)

"""Train one architecture on one CV fold and write everything the later stages read, atomically:

model.pt         weights + architecture name + net kwargs + training config and precision (enough to rebuild it)
predictions.npz  oof_index (held-out row numbers), oof (their probabilities), test (test probabilities)
metrics.json     held-out accuracy and log-loss, epochs run and kept, rows used, parameter count
live/            per-epoch curves in dvclive's layout: training, inner validation (when the recipe has one) and
                 held-out loss and accuracy, lr

Everything in the folder is a function of the data, params and seed, so a re-run that reproduces the
predictions reproduces the folder's hash and nothing downstream re-runs. How long training took is
returned separately (the stage logs it outside the folder).

The held-out fold is predicted once, after training; its labels only feed the learning curves.
"""

from __future__ import annotations

import copy
import dataclasses
import json
from pathlib import Path
from typing import Any

import numpy as np
import torch

from digit_recognizer.atomic import atomic_dir
from digit_recognizer.data.prepared import Prepared
from digit_recognizer.errors import UserError
from digit_recognizer.metrics import accuracy, log_loss
from digit_recognizer.models import build_model
from digit_recognizer.params import FitConfig
from digit_recognizer.training.curves import Curves
from digit_recognizer.training.device import FLOAT32, Precision, cpu_capability
from digit_recognizer.training.loop import count_parameters, fit, seed_everything, stratified_holdout
from digit_recognizer.training.predict import autocast, predict


def train_fold(
    arch: str,
    fold: int,
    net_kwargs: dict[str, Any],
    config: FitConfig,
    data: Prepared,
    out_dir: str | Path,
    seed: int,
    device: torch.device,
    pseudo: tuple[np.ndarray, np.ndarray] | None = None,
    held_out_curve_every: int = 1,
    precision: Precision = FLOAT32,
) -> tuple[dict[str, Any], dict[str, Any]]:
    """Train `arch` on every fold but `fold`, predict the held-out fold and the test set.

    pseudo: (test rows, their labels) to train on as well: the second round (pseudo_label.py says which
    labels are fold-clean). held_out_curve_every: score the held-out fold for the learning curves after
    every Nth epoch and the last (0: never); nothing reads those scores. precision: device.choose_precision's
    answer. Returns (metrics, timing): metrics as written to metrics.json; timing (seconds, images/s, device,
    precision) apart.
    """
    if not 0 <= fold < data.n_folds:
        raise ValueError(f"fold {fold} is outside 0..{data.n_folds - 1}")
    held_out = np.flatnonzero(data.folds == fold)
    train_rows = np.flatnonzero(data.folds != fold)
    val_rows = np.empty(0, dtype=train_rows.dtype)
    if config.val_fraction:
        inner = stratified_holdout(data.train_labels[train_rows], config.val_fraction, seed * 1000 + fold)
        train_rows, val_rows = train_rows[~inner], train_rows[inner]
    generator = seed_everything(seed * 1000 + fold)
    model = build_model(arch, net_kwargs)
    if device.type != "mps":
        model = model.to(memory_format=torch.channels_last)  # faster convs on CPU (oneDNN) and CUDA
    check_precision_runs(model, arch, precision, device)

    with atomic_dir(out_dir) as tmp:
        curves = Curves(tmp / "live")

        def rows(index: np.ndarray) -> tuple[torch.Tensor, torch.Tensor]:
            return torch.from_numpy(data.train_images[index]), torch.from_numpy(data.train_labels[index])

        images, labels = rows(train_rows)
        if pseudo is not None:
            images = torch.cat([images, torch.from_numpy(data.test_images[pseudo[0]])])
            labels = torch.cat([labels, torch.from_numpy(pseudo[1].astype(np.int64))])
        result = fit(
            model,
            images,
            labels,
            config,
            generator,
            device,
            val=rows(val_rows) if len(val_rows) else None,
            held_out=rows(held_out),
            held_out_curve_every=held_out_curve_every,
            log=curves.log,
            desc=f"{arch}-{fold}",
            bfloat16=precision.bfloat16,
        )
        curves.write()
        oof = predict(model, data.train_images[held_out])
        test = predict(model, data.test_images)
        held_out_labels = data.train_labels[held_out]
        metrics = {
            "architecture": arch,
            "fold": fold,
            "accuracy": accuracy(oof, held_out_labels),
            "log_loss": log_loss(oof, held_out_labels),
            "epochs_run": len(result.history),
            "kept_epoch": result.kept_epoch,
            "train_rows": len(train_rows),
            "inner_val_rows": len(val_rows),
            "pseudo_rows": 0 if pseudo is None else len(pseudo[0]),
            "parameters": count_parameters(model),
        }
        timing = {
            "train_seconds": round(result.seconds, 2),
            "images_per_second": round(result.images_per_second, 1),
            "device": str(device),
            "threads": torch.get_num_threads(),
            "precision": precision.name,
        }
        torch.save(
            {
                "architecture": arch,
                "net": net_kwargs,
                "fit": dataclasses.asdict(config),
                "precision": precision.name,
                "seed": seed,
                "fold": fold,
                "state_dict": {k: v.contiguous().cpu() for k, v in model.state_dict().items()},
            },
            tmp / "model.pt",
        )
        np.savez(tmp / "predictions.npz", oof_index=held_out, oof=oof, test=test)
        (tmp / "metrics.json").write_text(json.dumps(metrics, indent=2) + "\n")
    return metrics, timing


def check_precision_runs(model: torch.nn.Module, arch: str, precision: Precision, device: torch.device) -> None:
    """One forward and backward pass of two blank digits through a copy of `model` in `precision`, so that an
    op with no kernel for it stops the stage here, in one line, rather than as a oneDNN traceback mid-training
    (oneDNN has no bfloat16 LSTM on a CPU without native bfloat16). The copy runs in eval mode: no dropout
    draw, no BatchNorm statistics, nothing that would change the training that follows."""
    if not precision.bfloat16:
        return
    probe = copy.deepcopy(model).to(device).eval()
    try:
        with autocast(device, bfloat16=True):
            probe(torch.zeros(2, 1, 28, 28, device=device)).float().sum().backward()
    except RuntimeError as error:
        where = f"this CPU ({cpu_capability()})" if device.type == "cpu" else str(device)
        raise UserError(
            f"{arch}: no {precision.name} kernel for this network on {where} ({str(error).splitlines()[0][:80]}); "
            "set train.precision to auto or float32"
        ) from None


def load_fold_model(path: str | Path, device: torch.device | str = "cpu") -> torch.nn.Module:
    """Rebuild a trained model from its model.pt (architecture and kwargs travel with the weights)."""
    checkpoint = torch.load(path, map_location=device, weights_only=True)
    model = build_model(checkpoint["architecture"], checkpoint["net"])
    model.load_state_dict(checkpoint["state_dict"])
    return model.to(device).eval()

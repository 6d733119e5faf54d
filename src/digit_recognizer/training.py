"""Train one model on one fold: `fit` is a plain loop over in-memory uint8 tensors (no DataLoader).

Batches are sliced from the whole fold held as uint8 on the device, converted to float on the fly and
augmented as a batch. Early stopping watches the held-out fold and restores the best weights.
"""

from __future__ import annotations

import copy
import time
from collections.abc import Callable
from dataclasses import dataclass, field, fields
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn
from tqdm.auto import tqdm

from digit_recognizer.augment import random_affine
from digit_recognizer.errors import UserError
from digit_recognizer.predict import autocast, normalize, predict_logits, to_model_input


@dataclass(frozen=True)
class FitConfig:
    """Training hyperparameters of one architecture (params.yaml: models.<name>, less `net`)."""

    epochs: int = 10
    batch_size: int = 128
    optimizer: str = "adamw"  # sgd | adam | adamw
    lr: float = 1e-3  # the peak lr for onecycle, the starting lr otherwise
    momentum: float = 0.9  # sgd only
    weight_decay: float = 0.0
    schedule: str = "onecycle"  # onecycle | exponential | plateau | constant
    gamma: float = 0.95  # exponential: lr *= gamma after each epoch
    plateau_factor: float = 0.5  # plateau: lr *= factor after `plateau_patience` epochs without a better val loss
    plateau_patience: int = 2
    label_smoothing: float = 0.0
    rotate: float = 0.0  # augmentation: max degrees either way
    zoom: float = 0.0  # max relative scale change
    shift: float = 0.0  # max shift, as a fraction of the image side
    patience: int = 0  # early stopping: epochs without a better val accuracy before stopping; 0 = never
    cpu_bf16: bool = False  # train and validate in bfloat16 autocast on the CPU too (CUDA always does)

    @classmethod
    def from_params(cls, name: str, params: dict[str, Any]) -> FitConfig:
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(params) - known)
        if unknown:
            raise UserError(f"models.{name} in params.yaml: unknown keys {unknown}; known: {sorted(known)}")
        config = cls(**params)
        if config.optimizer not in OPTIMIZERS:
            raise UserError(f"models.{name}.optimizer: {config.optimizer!r} is not one of {sorted(OPTIMIZERS)}")
        if config.schedule not in SCHEDULES:
            raise UserError(f"models.{name}.schedule: {config.schedule!r} is not one of {sorted(SCHEDULES)}")
        return config


def recipe_from_params(name: str, section: dict[str, Any]) -> tuple[dict[str, Any], FitConfig]:
    """params.yaml's `models.<name>` -> (the net's constructor kwargs, the training recipe)."""
    recipe = dict(section)
    return recipe.pop("net", {}), FitConfig.from_params(name, recipe)


@dataclass
class FitResult:
    history: list[dict[str, float]] = field(default_factory=list)  # one record per epoch
    best_epoch: int = 0  # 1-based; its weights are the ones left in the model
    seconds: float = 0.0
    images_per_second: float = 0.0  # training images (forward + backward + augmentation) per second


OPTIMIZERS = {
    "sgd": lambda p, c, **kw: torch.optim.SGD(
        p, lr=c.lr, momentum=c.momentum, nesterov=True, weight_decay=c.weight_decay, **kw
    ),
    "adam": lambda p, c, **kw: torch.optim.Adam(p, lr=c.lr, weight_decay=c.weight_decay, **kw),
    "adamw": lambda p, c, **kw: torch.optim.AdamW(p, lr=c.lr, weight_decay=c.weight_decay, **kw),
}
SCHEDULES = {"onecycle", "exponential", "plateau", "constant"}


def make_optimizer(model: nn.Module, config: FitConfig, device: torch.device) -> torch.optim.Optimizer:
    """The configured optimizer; fused (one kernel for all parameters) on CPU and CUDA, which support it.

    Fusing matters for the small models, whose optimizer step costs as much as their forward pass.
    """
    fused = {"fused": True} if device.type in ("cpu", "cuda") else {}
    return OPTIMIZERS[config.optimizer](model.parameters(), config, **fused)


def seed_everything(seed: int) -> torch.Generator:
    """Seed torch's global RNG (weight init, dropout) and return a CPU generator for shuffling and augmentation."""
    torch.manual_seed(seed)
    return torch.Generator().manual_seed(seed)


def fit(
    model: nn.Module,
    train_images: torch.Tensor,
    train_labels: torch.Tensor,
    val_images: torch.Tensor,
    val_labels: torch.Tensor,
    config: FitConfig,
    generator: torch.Generator,
    device: torch.device,
    log: Callable[[dict[str, float]], None] | None = None,
    desc: str = "train",
) -> FitResult:
    """Train `model` on (N, 28, 28) uint8 images; leave the best epoch's weights (by val accuracy) in it.

    With config.cpu_bf16 the CPU trains and validates in bfloat16 autocast (about 2x faster convolutions
    where the CPU has AVX512-BF16 or AMX); the predictions written afterwards stay float32.
    """
    model.to(device)
    x, y = train_images.to(device), train_labels.to(device)
    val_x, val_y = val_images.to(device), val_labels.to(device)
    batch_size = min(config.batch_size, len(x))
    steps = len(x) // batch_size  # the last partial batch is dropped; shuffling covers it in other epochs
    optimizer = make_optimizer(model, config, device)
    scheduler = _make_schedule(optimizer, config, steps)
    augment = config.rotate or config.zoom or config.shift

    result, best_state, best_key, stale = FitResult(), None, (-1.0, 0.0), 0
    start = time.perf_counter()
    train_time = 0.0
    for epoch in range(1, config.epochs + 1):
        model.train()
        epoch_start = time.perf_counter()
        order = torch.randperm(len(x), generator=generator).to(device)
        loss_sum = torch.zeros((), device=device)
        correct = torch.zeros((), device=device, dtype=torch.long)
        bar = tqdm(range(steps), desc=f"{desc} epoch {epoch}/{config.epochs}", leave=False, mininterval=1.0)
        for step in bar:
            idx = order[step * batch_size : (step + 1) * batch_size]
            xb, yb = to_model_input(x[idx]), y[idx]
            if augment:
                xb = random_affine(xb, config.rotate, config.zoom, config.shift, generator)
            with autocast(device, config.cpu_bf16):
                logits = model(normalize(xb))
                loss = F.cross_entropy(logits.float(), yb, label_smoothing=config.label_smoothing)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            if config.schedule == "onecycle":
                scheduler.step()
            loss_sum += loss.detach()
            correct += (logits.argmax(1) == yb).sum()
            if step % 20 == 19:
                bar.set_postfix(loss=f"{loss_sum.item() / (step + 1):.4f}")
        train_time += time.perf_counter() - epoch_start

        val_logits = predict_logits(model, val_x, cpu_bf16=config.cpu_bf16)
        val_loss = F.cross_entropy(val_logits, val_y).item()
        val_acc = (val_logits.argmax(1) == val_y).float().mean().item()
        record = {
            "epoch": epoch,
            "lr": optimizer.param_groups[0]["lr"],
            "train_loss": loss_sum.item() / max(steps, 1),
            "train_accuracy": correct.item() / max(steps * batch_size, 1),
            "val_loss": val_loss,
            "val_accuracy": val_acc,
        }
        result.history.append(record)
        if log:
            log(record)
        tqdm.write(
            f"{desc} epoch {epoch}/{config.epochs}: train loss {record['train_loss']:.4f}, "
            f"val loss {val_loss:.4f}, val acc {val_acc:.4%}"
        )
        if config.schedule == "exponential":
            scheduler.step()
        elif config.schedule == "plateau":
            scheduler.step(val_loss)

        if (val_acc, -val_loss) > best_key:
            best_key, best_state, result.best_epoch, stale = (val_acc, -val_loss), _copy_state(model), epoch, 0
        else:
            stale += 1
            if config.patience and stale >= config.patience:
                tqdm.write(f"{desc}: early stop after epoch {epoch}, best was epoch {result.best_epoch}")
                break

    if best_state is not None:
        model.load_state_dict(best_state)
    result.seconds = time.perf_counter() - start
    result.images_per_second = len(result.history) * steps * batch_size / max(train_time, 1e-9)
    return result


def _make_schedule(optimizer: torch.optim.Optimizer, config: FitConfig, steps_per_epoch: int):
    if config.schedule == "onecycle":
        return torch.optim.lr_scheduler.OneCycleLR(
            optimizer, max_lr=config.lr, total_steps=max(config.epochs * steps_per_epoch, 1), pct_start=0.25
        )
    if config.schedule == "exponential":
        return torch.optim.lr_scheduler.ExponentialLR(optimizer, gamma=config.gamma)
    if config.schedule == "plateau":
        return torch.optim.lr_scheduler.ReduceLROnPlateau(
            optimizer, factor=config.plateau_factor, patience=config.plateau_patience
        )
    return None


def _copy_state(model: nn.Module) -> dict[str, torch.Tensor]:
    return copy.deepcopy(model.state_dict())


def accuracy(probabilities: np.ndarray, labels: np.ndarray) -> float:
    return float((probabilities.argmax(1) == labels).mean())


def log_loss(probabilities: np.ndarray, labels: np.ndarray) -> float:
    """Mean negative log-likelihood of the true labels, with probabilities clipped at 1e-15 as sklearn does."""
    picked = probabilities[np.arange(len(labels)), labels]
    return float(-np.log(np.clip(picked, 1e-15, 1.0)).mean())


def count_parameters(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())

"""One `predict` under every evaluation (validation, OOF, test, ensemble, web app): uint8 digits -> probabilities."""

from __future__ import annotations

import contextlib

import numpy as np
import torch
from torch import nn

from digit_recognizer.models.pixels import MNIST_MEAN, MNIST_STD


def to_model_input(images: torch.Tensor) -> torch.Tensor:
    """(N, 28, 28) uint8 0..255 -> (N, 1, 28, 28) float in [0, 1] (augmentation happens on this scale)."""
    return images.unsqueeze(1).float().div_(255)


def normalize(x: torch.Tensor) -> torch.Tensor:
    return (x - MNIST_MEAN) / MNIST_STD


def to_device(tensor: torch.Tensor, device: torch.device) -> torch.Tensor:
    """The tensor on `device`; to CUDA through pinned memory, in one asynchronous copy."""
    if device.type == "cuda" and tensor.device.type == "cpu":
        return tensor.pin_memory().to(device, non_blocking=True)
    return tensor.to(device)


def autocast(device: torch.device, bfloat16: bool) -> contextlib.AbstractContextManager:
    """bfloat16 mixed precision on CUDA or the CPU when `bfloat16` (device.choose_precision decides), else none."""
    if bfloat16 and device.type in ("cuda", "cpu"):
        return torch.autocast(device.type, dtype=torch.bfloat16)
    return contextlib.nullcontext()


@torch.inference_mode()
def predict_logits(
    model: nn.Module, images: torch.Tensor, batch_size: int = 1024, bfloat16: bool = False
) -> torch.Tensor:
    """(N, 28, 28) uint8 tensor on the model's device -> (N, 10) float32 logits, in eval mode.

    bfloat16: compute in bfloat16 autocast (the trainer's per-epoch scoring of a model that trains that way);
    final predictions, on every device, are float32.
    """
    device = next(model.parameters()).device
    was_training = model.training
    model.eval()
    chunks = []
    images = to_device(images, device)  # 28 x 28 bytes a digit: the whole set fits wherever the model does
    for start in range(0, len(images), batch_size):
        x = normalize(to_model_input(images[start : start + batch_size]))
        with autocast(device, bfloat16):
            chunks.append(model(x).float())
    model.train(was_training)
    return torch.cat(chunks) if chunks else torch.empty(0, 10, device=device)


def predict(model: nn.Module, images: np.ndarray | torch.Tensor, batch_size: int = 1024) -> np.ndarray:
    """(N, 28, 28) uint8 digits -> (N, 10) float32 class probabilities."""
    images = torch.as_tensor(images)
    if images.dtype != torch.uint8 or images.shape[1:] != (28, 28):
        raise ValueError(f"predict expects (N, 28, 28) uint8 images, got {tuple(images.shape)} {images.dtype}")
    return torch.softmax(predict_logits(model, images, batch_size), dim=1).cpu().numpy()

"""`cnn3`: 3 conv layers, each followed by ReLU and 2x2 max-pooling, then 2 fully connected layers.

The pooling runs before the ReLU: they commute, and the ReLU then touches a quarter of the pixels.
"""

from __future__ import annotations

import torch
from torch import nn


def conv_relu_pool(c_in: int, c_out: int, batch_norm: bool) -> nn.Sequential:
    norm = nn.BatchNorm2d(c_out) if batch_norm else nn.Identity()
    return nn.Sequential(nn.Conv2d(c_in, c_out, 3, padding=1, bias=not batch_norm), norm, nn.MaxPool2d(2), nn.ReLU())


class CNN3(nn.Module):
    def __init__(
        self,
        channels: tuple[int, int, int] = (32, 64, 128),
        hidden: int = 128,
        dropout: float = 0.3,
        batch_norm: bool = True,
    ):
        super().__init__()
        c1, c2, c3 = channels
        self.features = nn.Sequential(
            conv_relu_pool(1, c1, batch_norm),  # (c1, 14, 14)
            conv_relu_pool(c1, c2, batch_norm),  # (c2, 7, 7)
            conv_relu_pool(c2, c3, batch_norm),  # (c3, 3, 3)
        )
        self.classifier = nn.Sequential(
            nn.Flatten(), nn.Linear(c3 * 9, hidden), nn.ReLU(), nn.Dropout(dropout), nn.Linear(hidden, 10)
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # (N, 1, 28, 28) -> (N, 10) logits
        return self.classifier(self.features(x))

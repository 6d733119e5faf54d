"""`lenet`: LeNet-5 style: 2 conv + 2 pooling layers, then 3 fully connected layers."""

from __future__ import annotations

import torch
from torch import nn


class LeNet(nn.Module):
    def __init__(self, channels: tuple[int, int] = (6, 16), hidden: tuple[int, int] = (120, 84), dropout: float = 0.0):
        super().__init__()
        c1, c2 = channels
        self.features = nn.Sequential(
            # pooling before ReLU computes the same (they commute) with ReLU on a quarter of the pixels
            nn.Conv2d(1, c1, 5, padding=2), nn.MaxPool2d(2), nn.ReLU(),  # (c1, 14, 14)
            nn.Conv2d(c1, c2, 5), nn.MaxPool2d(2), nn.ReLU(),  # (c2, 5, 5)
        )  # fmt: skip
        self.classifier = nn.Sequential(
            nn.Flatten(),
            nn.Linear(c2 * 25, hidden[0]), nn.ReLU(), nn.Dropout(dropout),
            nn.Linear(hidden[0], hidden[1]), nn.ReLU(), nn.Dropout(dropout),
            nn.Linear(hidden[1], 10),
        )  # fmt: skip

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # (N, 1, 28, 28) -> (N, 10) logits
        return self.classifier(self.features(x))

"""`mlp`: 5 linear layers with ReLU between them, on the flattened 784 pixels."""

from __future__ import annotations

import torch
from torch import nn


class MLP(nn.Module):
    def __init__(self, hidden: tuple[int, int, int, int] = (512, 256, 128, 64), dropout: float = 0.0):
        super().__init__()
        if len(hidden) != 4:
            raise ValueError(f"mlp needs 4 hidden widths (5 linear layers), got {list(hidden)}")
        layers: list[nn.Module] = [nn.Flatten()]
        for width_in, width_out in zip((784, *hidden), hidden, strict=False):
            layers += [nn.Linear(width_in, width_out), nn.ReLU(), nn.Dropout(dropout)]
        layers.append(nn.Linear(hidden[-1], 10))
        self.net = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # (N, 1, 28, 28) -> (N, 10) logits
        return self.net(x)

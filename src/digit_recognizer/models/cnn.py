"""`cnn`: the regularised CNN of the 0.99757 Kaggle recipe, [C3-C3-C5S2] blocks with BatchNorm and dropout.

Each block is two unpadded 3x3 convs (each trims a pixel off every side) and a padded 5x5 conv of stride 2
that halves what is left, as in the recipe: 28 -> 26 -> 24 -> 12, then 12 -> 10 -> 8 -> 4. Unpadded, the
3x3 convs cost half the multiply-adds of padded ones at the same accuracy.
Widths, dense size and dropout come from params.yaml (the recipe: channels [32, 64], dense 128, dropout 0.4).
Dropout is `ByteDropout`: on the CPU, nn.Dropout's random draws cost 10% of this network's training step.
"""

from __future__ import annotations

import itertools

import torch
from torch import nn

from digit_recognizer.models.dropout import ByteDropout


def conv_bn(c_in: int, c_out: int, kernel: int, stride: int = 1, padding: int = 0) -> nn.Sequential:
    return nn.Sequential(
        nn.Conv2d(c_in, c_out, kernel, stride=stride, padding=padding, bias=False),
        nn.BatchNorm2d(c_out),
        nn.ReLU(inplace=True),
    )


def block(c_in: int, c_out: int, dropout: float) -> nn.Sequential:
    return nn.Sequential(
        conv_bn(c_in, c_out, 3), conv_bn(c_out, c_out, 3), conv_bn(c_out, c_out, 5, 2, padding=2), ByteDropout(dropout)
    )


class RegularisedCNN(nn.Module):
    def __init__(self, channels: tuple[int, ...] = (32, 64), dense: int = 128, dropout: float = 0.4):
        super().__init__()
        widths = (1, *channels)
        self.features = nn.Sequential(*(block(a, b, dropout) for a, b in itertools.pairwise(widths)))
        side = 28
        for _ in channels:
            side = (side - 4 + 1) // 2  # two unpadded 3x3 convs, then the stride-2 5x5
        if side < 1:
            raise ValueError(f"{len(channels)} blocks shrink a 28x28 digit to nothing; use at most 2")
        self.classifier = nn.Sequential(
            nn.Flatten(),
            nn.Linear(channels[-1] * side * side, dense, bias=False), nn.BatchNorm1d(dense), nn.ReLU(inplace=True),
            ByteDropout(dropout),
            nn.Linear(dense, 10),
        )  # fmt: skip

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # (N, 1, 28, 28) -> (N, 10) logits
        return self.classifier(self.features(x))

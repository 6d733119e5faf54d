"""`lstm`: an LSTM that reads the 28 pixel rows top to bottom as a sequence of 28-vectors; linear head."""

from __future__ import annotations

import torch
from torch import nn


class RowLSTM(nn.Module):
    def __init__(self, hidden: int = 100, layers: int = 1, bidirectional: bool = False):
        super().__init__()
        self.lstm = nn.LSTM(28, hidden, num_layers=layers, batch_first=True, bidirectional=bidirectional)
        self.head = nn.Linear(hidden * (2 if bidirectional else 1), 10)

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # (N, 1, 28, 28) -> (N, 10) logits
        rows, _ = self.lstm(x.flatten(0, 1))  # (N, 28 rows, hidden)
        return self.head(rows[:, -1])

"""Dropout whose mask costs one random byte per element on the CPU.

`nn.Dropout` on the CPU draws a float per element with `bernoulli_`, one at a time from the Mersenne
Twister: ~7 ns per element, 10% of `cnn`'s training step for its first block's 590k activations. Here one
64-bit draw yields eight mask bytes (about 20x cheaper), so the drop rate is rounded to 1/256
(0.25 exactly, 0.3 -> 0.3008). Elsewhere (CUDA, MPS) it is `F.dropout`, which is fast there.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


class ByteDropout(nn.Module):
    def __init__(self, p: float = 0.5):
        super().__init__()
        if not 0 <= p < 1:
            raise ValueError(f"dropout must be in [0, 1), got {p}")
        self.p = p
        self.keep_below = max(1, round(256 * (1 - p)))  # a byte below this keeps its element

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not self.training or self.p == 0:
            return x
        if x.device.type != "cpu":
            return F.dropout(x, self.p, training=True)
        n = x.numel()
        words = torch.randint(-(2**63), 2**63 - 1, ((n + 7) // 8,), dtype=torch.int64)
        keep = words.view(torch.uint8)[:n] < self.keep_below
        if x.dim() == 4 and x.is_contiguous(memory_format=torch.channels_last):
            n_, c, h, w = x.shape
            keep = keep.view(n_, h, w, c).permute(0, 3, 1, 2)  # the mask in x's memory order: a faster multiply
        else:
            keep = keep.view(x.shape)
        return x * keep * (256 / self.keep_below)

    def extra_repr(self) -> str:
        return f"p={self.p}"

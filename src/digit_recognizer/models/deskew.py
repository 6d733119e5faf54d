"""Deskewing as a layer: shear each digit upright and move its centre of ink to the image centre.

The classic MNIST normalisation (a digit's slant is the covariance of its ink's row and column
positions over the variance of the rows). As the first layer of a model it travels with the weights,
so training, evaluation, `predict` and `serve` all see the same input. Any architecture takes it with
`deskew: true` in its `net` params (see build_model): a different view of the digits than augmentation
gives, and other mistakes.
"""

from __future__ import annotations

import functools

import torch
import torch.nn.functional as F
from torch import nn

from digit_recognizer.models.pixels import MNIST_MEAN, MNIST_STD, affine_grid


class Deskew(nn.Module):
    def forward(self, x: torch.Tensor) -> torch.Tensor:  # (N, 1, H, W) normalised -> the same, deskewed
        # always in float32: under bfloat16 autocast the moments lose the digits that the variance
        # (a difference of two near-equal sums) needs, and training would see other digits than predict
        with torch.autocast(x.device.type, enabled=False):
            return self._deskew(x)

    def _deskew(self, x: torch.Tensor) -> torch.Tensor:
        height, width = x.shape[2:]
        ink = (x.float() * MNIST_STD + MNIST_MEAN).clamp_(min=0)
        # the ink's moments in one product: total, sum of rows, of columns, of rows^2, of rows*columns
        moments = ink.flatten(1) @ _moment_basis(height, width, x.device)
        total = moments[:, 0].clamp(min=1e-6)
        row, col = moments[:, 1] / total, moments[:, 2] / total
        variance = (moments[:, 3] / total - row * row).clamp(min=1e-6)
        slant = (moments[:, 4] / total - row * col) / variance
        # output pixel (r, c) reads input (r + dr, c + slant * (r - centre) + dc): in grid_sample's
        # normalised coordinates (one unit = half the image side) the shear keeps its factor
        zero, one = torch.zeros_like(slant), torch.ones_like(slant)
        shift_x = (col - (width - 1) / 2) * 2 / width
        shift_y = (row - (height - 1) / 2) * 2 / height
        theta = torch.stack(
            [torch.stack([one, slant * height / width, shift_x], 1), torch.stack([zero, one, shift_y], 1)], 1
        )
        upright = F.grid_sample(ink, affine_grid(theta, height, width), align_corners=False)
        return ((upright - MNIST_MEAN) / MNIST_STD).to(x.dtype)


@functools.cache
def _moment_basis(height: int, width: int, device: torch.device) -> torch.Tensor:
    """(H*W, 5): 1, row, column, row^2, row*column of every pixel, row-major."""
    rows = torch.arange(height, dtype=torch.float32, device=device).repeat_interleave(width)
    cols = torch.arange(width, dtype=torch.float32, device=device).repeat(height)
    return torch.stack([torch.ones_like(rows), rows, cols, rows * rows, rows * cols], 1)

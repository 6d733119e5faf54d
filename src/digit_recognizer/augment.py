"""Random rotation, zoom and shift for a whole batch at once: one affine_grid + grid_sample call."""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F


def random_affine(
    images: torch.Tensor, rotate: float, zoom: float, shift: float, generator: torch.Generator
) -> torch.Tensor:
    """Warp (N, 1, 28, 28) float images by per-image random affines.

    rotate: max degrees either way; zoom: max relative scale change (0.1 -> 0.9..1.1);
    shift: max translation as a fraction of the image side. Random numbers come from `generator`
    (on the CPU, so runs are reproducible whatever the device), then move to the images' device.
    """
    n = images.shape[0]
    if n == 0 or not (rotate or zoom or shift):
        return images
    u = torch.rand(n, 4, generator=generator, dtype=torch.float32) * 2 - 1  # uniform in [-1, 1]
    angle = u[:, 0] * math.radians(rotate)
    scale = 1 + u[:, 1] * zoom
    # affine_grid maps output coords to input coords, so sampling at coords / scale zooms in by `scale`
    cos, sin = torch.cos(angle) / scale, torch.sin(angle) / scale
    tx, ty = u[:, 2] * shift * 2, u[:, 3] * shift * 2  # normalised coords span 2 units per image side
    theta = torch.stack([torch.stack([cos, -sin, tx], 1), torch.stack([sin, cos, ty], 1)], 1)
    grid = F.affine_grid(theta.to(images.device, images.dtype), list(images.shape), align_corners=False)
    return F.grid_sample(images, grid, mode="bilinear", padding_mode="zeros", align_corners=False)

"""Random rotation, zoom and shift for a whole batch at once: one matrix product for the sampling grid,
one grid_sample call."""

from __future__ import annotations

import functools
import math

import torch
import torch.nn.functional as F


def random_affine(
    images: torch.Tensor,
    rotate: float,
    zoom: float,
    shift: float,
    generator: torch.Generator | None = None,
    noise: torch.Tensor | None = None,
) -> torch.Tensor:
    """Warp (N, 1, 28, 28) float images by per-image random affines.

    rotate: max degrees either way; zoom: max relative scale change (0.1 -> 0.9..1.1);
    shift: max translation as a fraction of the image side. The randomness is `noise`, (N, 4) uniform in
    [0, 1) on the images' device (see `affine_noise`), or else drawn here from `generator`.
    """
    n = images.shape[0]
    if n == 0 or not (rotate or zoom or shift):
        return images
    if noise is None:
        noise = affine_noise(n, generator, images.device)
    u = noise * 2 - 1  # uniform in [-1, 1]
    angle = u[:, 0] * math.radians(rotate)
    scale = 1 + u[:, 1] * zoom
    # affine_grid maps output coords to input coords, so sampling at coords / scale zooms in by `scale`
    cos, sin = torch.cos(angle) / scale, torch.sin(angle) / scale
    tx, ty = u[:, 2] * shift * 2, u[:, 3] * shift * 2  # normalised coords span 2 units per image side
    theta = torch.stack([torch.stack([cos, -sin, tx], 1), torch.stack([sin, cos, ty], 1)], 1)
    grid = affine_grid(theta.to(images.dtype), *images.shape[2:])
    return F.grid_sample(images, grid, mode="bilinear", padding_mode="zeros", align_corners=False)


def affine_noise(rows: int, generator: torch.Generator | None, device: torch.device, steps: int = 0) -> torch.Tensor:
    """Uniform [0, 1) noise for `random_affine`: (rows, 4), or (steps, rows, 4) for a whole epoch at once.

    Drawn from a CPU `generator`, so a run is the same whatever the device, then moved in one pinned,
    asynchronous copy: a trainer on CUDA draws an epoch's noise up front instead of a copy every step.
    """
    shape = (steps, rows, 4) if steps else (rows, 4)
    noise = torch.rand(shape, generator=generator, dtype=torch.float32)
    if device.type == "cuda":
        return noise.pin_memory().to(device, non_blocking=True)
    return noise.to(device)


def affine_grid(theta: torch.Tensor, height: int, width: int) -> torch.Tensor:
    """F.affine_grid(theta, (N, C, H, W), align_corners=False) as one (N*2, 3) x (3, H*W) product.

    Same grid (to float rounding), several times faster on the CPU, where F.affine_grid took three
    quarters of the augmentation's time. The grid is returned contiguous: grid_sample reads a strided
    one at half speed.
    """
    n = len(theta)
    grid = theta.reshape(n * 2, 3) @ _base_grid(height, width, theta.device, theta.dtype).T  # (N*2, H*W)
    return grid.view(n, 2, height * width).transpose(1, 2).contiguous().view(n, height, width, 2)


@functools.cache
def _base_grid(height: int, width: int, device: torch.device, dtype: torch.dtype) -> torch.Tensor:
    """(H*W, 3): each output pixel's normalised (x, y, 1), as affine_grid lays them out (align_corners=False)."""
    identity = torch.eye(2, 3, dtype=dtype, device=device).unsqueeze(0)
    xy = F.affine_grid(identity, [1, 1, height, width], align_corners=False).reshape(height * width, 2)
    return torch.cat([xy, torch.ones(height * width, 1, dtype=dtype, device=device)], 1)

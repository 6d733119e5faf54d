"""Random rotation, zoom, shift and elastic distortion for a whole batch at once: one matrix product for
the affine sampling grid, one small upsampling for the elastic displacement, one grid_sample call."""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

from digit_recognizer.models.pixels import affine_grid

ELASTIC_POINTS = 5  # the elastic displacement's control points per side: about 7 pixels apart on a 28x28 digit


def random_affine(
    images: torch.Tensor,
    rotate: float,
    zoom: float,
    shift: float,
    generator: torch.Generator | None = None,
    noise: torch.Tensor | None = None,
    elastic: float = 0.0,
) -> torch.Tensor:
    """Warp (N, 1, 28, 28) float images by per-image random affines, and elastic distortions if asked.

    rotate: max degrees either way; zoom: max relative scale change (0.1 -> 0.9..1.1);
    shift: max translation as a fraction of the image side; elastic: max pixels that each control point of a
    smooth random displacement field moves (Simard et al. 2003's elastic distortion, with the field drawn on a
    5x5 grid and interpolated bicubically instead of Gaussian-smoothed per pixel). The randomness is `noise`,
    uniform in [0, 1) on the images' device, as `affine_noise(n, ..., elastic=elastic)` draws it, or else
    drawn here from `generator`.
    """
    n = images.shape[0]
    if n == 0 or not (rotate or zoom or shift or elastic):
        return images
    if noise is None:
        noise = affine_noise(n, generator, images.device, elastic=elastic)
    u = noise * 2 - 1  # uniform in [-1, 1]
    angle = u[:, 0] * math.radians(rotate)
    scale = 1 + u[:, 1] * zoom
    # affine_grid maps output coords to input coords, so sampling at coords / scale zooms in by `scale`
    cos, sin = torch.cos(angle) / scale, torch.sin(angle) / scale
    tx, ty = u[:, 2] * shift * 2, u[:, 3] * shift * 2  # normalised coords span 2 units per image side
    theta = torch.stack([torch.stack([cos, -sin, tx], 1), torch.stack([sin, cos, ty], 1)], 1)
    grid = affine_grid(theta.to(images.dtype), *images.shape[2:])
    if elastic:
        grid = grid + elastic_displacement(u[:, 4:], elastic, *images.shape[2:]).to(images.dtype)
    return F.grid_sample(images, grid, mode="bilinear", padding_mode="zeros", align_corners=False)


def affine_noise(
    rows: int, generator: torch.Generator | None, device: torch.device, steps: int = 0, elastic: float = 0.0
) -> torch.Tensor:
    """Uniform [0, 1) noise for `random_affine`: (rows, width), or (steps, rows, width) for a whole epoch.

    width is 4 (angle, scale, x and y shift), plus the elastic field's control points when `elastic` is on.
    Drawn from a CPU `generator`, so a run is the same whatever the device, then moved in one pinned,
    asynchronous copy: a trainer on CUDA draws an epoch's noise up front instead of a copy every step.
    """
    width = 4 + (2 * ELASTIC_POINTS**2 if elastic else 0)
    shape = (steps, rows, width) if steps else (rows, width)
    noise = torch.rand(shape, generator=generator, dtype=torch.float32)
    if device.type == "cuda":
        return noise.pin_memory().to(device, non_blocking=True)
    return noise.to(device)


def elastic_displacement(u: torch.Tensor, pixels: float, height: int, width: int) -> torch.Tensor:
    """(N, H, W, 2) offsets for a sampling grid, in its normalised units, from (N, 2 * ELASTIC_POINTS**2)
    uniform [-1, 1] control-point moves of up to `pixels`, interpolated bicubically over the image (between
    control points a move can overshoot `pixels` by up to a third)."""
    points = u.reshape(len(u), 2, ELASTIC_POINTS, ELASTIC_POINTS)
    field = F.interpolate(points, size=(height, width), mode="bicubic", align_corners=True)
    to_normalised = torch.tensor([2 * pixels / width, 2 * pixels / height], dtype=u.dtype, device=u.device)
    return field.permute(0, 2, 3, 1) * to_normalised

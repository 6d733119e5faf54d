"""Turn any picture of one handwritten digit into a 28x28 MNIST-style image, the way MNIST was made:
crop to the ink, scale into a 20x20 box keeping the aspect ratio, centre by centre of mass in 28x28,
light ink on a dark background, grey levels 0..255.
"""

from __future__ import annotations

import io

import numpy as np
from PIL import Image, UnidentifiedImageError
from scipy import ndimage

from digit_recognizer.errors import UserError

MAX_SIDE = 4096  # refuse bigger pictures (a digit needs no more, and decoding them costs memory)
WORKING_SIDE = 512  # larger pictures are shrunk to this while decoding: the digit ends up 20x20 anyway
FORMATS = {"image/png": "PNG", "image/jpeg": "JPEG", "image/gif": "GIF", "image/bmp": "BMP", "image/webp": "WEBP"}


class ImageTooLarge(UserError):
    """A picture wider or taller than MAX_SIDE (or a decompression bomb)."""


class NoInk(UserError):
    """A blank picture: nothing to read."""


MIN_INK_CONTRAST = 16  # grey levels between paper and ink below which a picture counts as blank
# Checks on the picture itself (picture_warnings), each far outside what real digits show (BENCHMARKS.md):
MIN_INK_SIDE = 6  # pixels: the strong ink (at least half the strongest) of a legible digit spans more
MAX_PAPER_NOISE = 0.1  # the border's median deviation from plain paper, as a share of the ink's contrast
MAX_SOLID_FILL = 0.9  # share of its bounding box that strong ink fills (a box not thinner than 2:5, unlike a 1)


def load_image(data: bytes, name: str = "image", content_type: str | None = None) -> np.ndarray:
    """Decode image bytes into a (H, W) float grey image in 0..255 (transparent parts become white).

    content_type (e.g. "image/png"): decode that format only; None: any of FORMATS.
    """
    formats = [FORMATS[content_type]] if content_type in FORMATS else list(FORMATS.values())
    try:
        with Image.open(io.BytesIO(data), formats=formats) as image:
            if max(image.size) > MAX_SIDE:
                raise ImageTooLarge(f"{name}: {image.size[0]}x{image.size[1]} is larger than {MAX_SIDE}x{MAX_SIDE}")
            image.draft("RGB", (WORKING_SIDE, WORKING_SIDE))  # JPEG decodes at a fraction of its size
            if image.mode in ("RGBA", "LA", "PA") or "transparency" in image.info:
                rgba = image.convert("RGBA")
                background = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
                image = Image.alpha_composite(background, rgba)
            grey = image.convert("L")
            grey.thumbnail((WORKING_SIDE, WORKING_SIDE))
            return np.asarray(grey, dtype=np.float32)
    except Image.DecompressionBombError:
        raise ImageTooLarge(f"{name}: too many pixels (over {MAX_SIDE}x{MAX_SIDE})") from None
    except UnidentifiedImageError:
        raise UserError(f"{name}: not a {' or '.join(formats)} image") from None
    except OSError:
        raise UserError(f"{name}: a damaged or truncated {' or '.join(formats)} image") from None


def ink_image(grey: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(H, W) grey picture -> (ink, border): bright ink on paper at 0 (clipped at 0), and the border's pixels on
    the same scale before clipping (plain paper: all near 0). Dark-on-light pictures are inverted first."""
    grey = np.asarray(grey, dtype=np.float32)
    ink = 255 - grey if np.median(_border(grey)) > 127 else grey.copy()
    border = _border(ink)
    paper = np.median(border)
    return np.clip(ink - paper, 0, None), border - paper


def _border(image: np.ndarray) -> np.ndarray:
    return np.concatenate([image[0], image[-1], image[:, 0], image[:, -1]])


def to_mnist(grey: np.ndarray) -> np.ndarray:
    """(H, W) grey picture of one digit, dark-on-light or light-on-dark -> (28, 28) uint8 MNIST-style digit."""
    ink, _ = ink_image(grey)
    if ink.max() < MIN_INK_CONTRAST:
        raise NoInk("no ink found: the picture is blank (one grey level)")
    ink *= 255 / ink.max()
    rows, cols = np.nonzero(ink > 0.1 * 255)
    crop = ink[rows.min() : rows.max() + 1, cols.min() : cols.max() + 1]
    height, width = crop.shape
    scale = 20 / max(height, width)
    size = (max(1, round(width * scale)), max(1, round(height * scale)))
    box = np.asarray(Image.fromarray(crop).resize(size, Image.Resampling.LANCZOS), dtype=np.float32)
    box = np.clip(box, 0, 255)
    out = np.zeros((28, 28), dtype=np.float32)
    top, left = (28 - box.shape[0]) // 2, (28 - box.shape[1]) // 2
    out[top : top + box.shape[0], left : left + box.shape[1]] = box
    centre_row, centre_col = ndimage.center_of_mass(out)
    out = ndimage.shift(out, (14 - centre_row, 14 - centre_col), order=1, mode="constant", cval=0)
    return np.clip(np.rint(out), 0, 255).astype(np.uint8)


def picture_warnings(grey: np.ndarray) -> list[str]:
    """Why a picture (one that has ink: see to_mnist) is unlike a pen-drawn digit on plain paper, if it is."""
    ink, border = ink_image(grey)
    contrast = float(ink.max())
    if contrast < MIN_INK_CONTRAST:  # blank (to_mnist refuses it), or pixels scaled to 0..1 (the API warns)
        return []
    warnings = []
    noise = float(np.median(np.abs(border))) / contrast
    if noise > MAX_PAPER_NOISE:
        warnings.append(
            f"the background is not plain (its edges vary by {noise:.0%} of the ink's contrast): noise, a texture "
            "or a photo of no digit? The reading is likely meaningless"
        )
    rows, cols = np.nonzero(ink >= contrast / 2)
    strong = ink[rows.min() : rows.max() + 1, cols.min() : cols.max() + 1] >= contrast / 2
    side = max(strong.shape)
    if side < MIN_INK_SIDE:
        warnings.append(f"the ink spans only {side} pixel{'s' * (side > 1)}: too small to be a digit")
    elif min(strong.shape) >= 0.4 * side and strong.mean() > MAX_SOLID_FILL:
        warnings.append(f"the ink is one solid block ({strong.mean():.0%} of its box), not pen strokes")
    return warnings

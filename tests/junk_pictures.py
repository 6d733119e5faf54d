"""A corpus of pictures that are not one handwritten digit, as users send them to `predict` and `serve`, and real
digits photographed the ways test_serve does; shared by the tests and benchmarks/ood.py."""

from __future__ import annotations

import io
from collections.abc import Callable

import numpy as np
from PIL import Image, ImageDraw, ImageFont

from digit_recognizer.serving.preprocess import NoInk, load_image, picture_warnings, to_mnist

SIDE = 200


def _page(value: int = 255) -> np.ndarray:
    return np.full((SIDE, SIDE), value, dtype=np.uint8)


def _grey_pixel(row: int, col: int, level: int) -> np.ndarray:
    page = _page()
    page[row, col] = level
    return page


def _noise(seed: int, mean: float, std: float) -> np.ndarray:
    return np.clip(np.random.default_rng(seed).normal(mean, std, (SIDE, SIDE)), 0, 255).astype(np.uint8)


def _gradient_photo(seed: int, angle: float) -> np.ndarray:
    """A badly lit, grainy photo of nothing: a smooth gradient under sensor noise."""
    rows, cols = np.mgrid[0:SIDE, 0:SIDE] / SIDE
    ramp = np.cos(angle) * cols + np.sin(angle) * rows
    light = 60 + 160 * (ramp - ramp.min()) / (ramp.max() - ramp.min())
    return np.clip(light + np.random.default_rng(seed).normal(0, 18, light.shape), 0, 255).astype(np.uint8)


def _drawn(draw_on: Callable[[ImageDraw.ImageDraw], None]) -> np.ndarray:
    image = Image.new("L", (SIDE, SIDE), 255)
    draw_on(ImageDraw.Draw(image))
    return np.asarray(image)


def _text(text: str, size: int) -> np.ndarray:
    font = ImageFont.load_default(size=size)
    return _drawn(lambda d: d.text((SIDE // 2, SIDE // 2), text, fill=0, font=font, anchor="mm"))


def _checkerboard(square: int) -> np.ndarray:
    rows, cols = np.mgrid[0:SIDE, 0:SIDE] // square
    return np.where((rows + cols) % 2, 255, 0).astype(np.uint8)


def junk_corpus() -> dict[str, np.ndarray]:
    """name -> (H, W) uint8 grey picture that holds no digit (dark ink on white unless noted)."""
    corpus = {
        "one grey pixel": _grey_pixel(100, 100, 128),
        "one dark pixel in a corner": _grey_pixel(3, 190, 0),
        "one light-grey pixel": _grey_pixel(60, 140, 200),
        "gaussian noise": _noise(0, 128, 50),
        "light gaussian noise": _noise(1, 200, 25),
        "dark gaussian noise": _noise(2, 50, 30),
        "noisy gradient photo": _gradient_photo(3, 0.0),
        "noisy diagonal gradient photo": _gradient_photo(4, 0.8),
        "noisy vertical gradient photo": _gradient_photo(5, np.pi / 2),
        "filled disk": _drawn(lambda d: d.ellipse((50, 50, 150, 150), fill=0)),
        "filled rectangle": _drawn(lambda d: d.rectangle((30, 70, 170, 130), fill=0)),
        "checkerboard": _checkerboard(25),
        "stripes": np.where((np.arange(SIDE) // 12) % 2, 255, 0).astype(np.uint8)[:, None].repeat(SIDE, 1),
        "a word": _text("hello", 60),
    }
    for letter in "AKMWX#@":
        corpus[f"letter {letter}"] = _text(letter, 150)
    return corpus


def as_photo(digit: np.ndarray, scale: int, offset: tuple[int, int], dark_on_light: bool) -> np.ndarray:
    """A digit as a person might photograph it: bigger, off-centre on a larger page, either polarity."""
    big = np.asarray(Image.fromarray(digit).resize((28 * scale, 28 * scale), Image.Resampling.BILINEAR))
    page = np.zeros((400, 500), dtype=np.uint8)
    page[offset[0] : offset[0] + big.shape[0], offset[1] : offset[1] + big.shape[1]] = big
    return 255 - page if dark_on_light else page


def photographed(digits: np.ndarray, seed: int = 0) -> list[np.ndarray]:
    """Each real digit photographed at one of several scales, places and polarities, on grainy paper under
    uneven light."""
    rng = np.random.default_rng(seed)
    photos = []
    for i, digit in enumerate(digits):
        page = as_photo(digit, scale=3 + i % 6, offset=(20 * (i % 4), 40 * (i % 5)), dark_on_light=i % 2 == 0)
        light = np.linspace(-12, 12, page.shape[1])[None, :] * rng.choice([-1, 1])
        grain = rng.normal(0, 5, page.shape)
        photos.append(np.clip(page + light + grain, 0, 255).astype(np.uint8))
    return photos


def as_saved(picture: np.ndarray, format: str) -> np.ndarray:
    """The picture as `predict` reads it back from a PNG or JPEG file."""
    buffer = io.BytesIO()
    Image.fromarray(picture).save(buffer, format=format)
    return load_image(buffer.getvalue())


def flag_pictures(pictures: list[np.ndarray]) -> list[list[str] | None]:
    """What `predict` warns about each picture (None: refused, no ink)."""
    flags = []
    for picture in pictures:
        try:
            to_mnist(picture)
        except NoInk:
            flags.append(None)
            continue
        flags.append(picture_warnings(picture))
    return flags


def real_photos(digits: np.ndarray) -> list[np.ndarray]:
    """Real digits photographed, every third one saved as a JPEG."""
    return [as_saved(p, "JPEG" if i % 3 == 0 else "PNG") for i, p in enumerate(photographed(digits))]

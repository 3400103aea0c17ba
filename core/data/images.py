"""Image input sanitising: any readable image in, a bounded RGB ``PIL.Image`` out.

Handles RGBA / LA / palette-with-transparency (composited on white), greyscale, 16-bit and 32-bit
integer or float images (rescaled to 8 bits), CMYK, EXIF orientation; caps file bytes and pixel
counts (Pillow's ``DecompressionBombWarning`` is raised as an error); verifies uploaded bytes, then
re-opens them (``verify()`` leaves the image unusable); truncated or non-image bytes give a clear
:class:`ImageInputError`.
"""

from __future__ import annotations

import io
import warnings

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

#: Largest accepted upload, in bytes.
MAX_BYTES = 20 * 1024 * 1024
#: Largest accepted image, in pixels (width x height).
MAX_PIXELS = 40_000_000
#: Longest side after :func:`sanitize_image` (larger images are downscaled, aspect kept).
MAX_SIDE = 2048
#: Largest aspect ratio (long side / short side) :func:`pad_to_aspect` lets through; a strip of
#: thousands of pixels by a few would make model processors (which resize the short side up)
#: build images of hundreds of millions of pixels, and a preview scaled to a fixed width 0 px tall.
MAX_ASPECT = 4.0

#: EXIF orientation values that swap width and height (rotations by 90 or 270 degrees).
_SWAPPING_ORIENTATIONS = {5, 6, 7, 8}


class ImageInputError(ValueError):
    """An image could not be read or is not acceptable (too large, truncated, not an image)."""


def _to_8bit(img: Image.Image) -> Image.Image:
    """Rescale a high-bit-depth single-channel image (I;16, I, F) to 8-bit greyscale."""
    arr = np.asarray(img).astype(np.float64)
    if img.mode.startswith("I;16") or (img.mode == "I" and arr.max(initial=0) <= 65535):
        top = 65535.0 if arr.max(initial=0) > 255 else 255.0
        arr = arr / top * 255.0
    else:
        lo, hi = float(np.nanmin(arr)), float(np.nanmax(arr))
        arr = (arr - lo) / (hi - lo) * 255.0 if hi > lo else np.zeros_like(arr)
    return Image.fromarray(np.clip(np.rint(arr), 0, 255).astype(np.uint8), mode="L")


def sanitize_image(img: Image.Image, max_side: int | None = MAX_SIDE) -> Image.Image:
    """Return ``img`` as an upright RGB image with its longest side at most ``max_side``.

    Parameters
    ----------
    img : PIL.Image.Image
        Any mode: RGB, RGBA, LA, L, 1, P (with or without transparency), I;16, I, F, CMYK, YCbCr.
    max_side : int or None
        Downscale (Lanczos, aspect kept) so that no side exceeds this; None keeps the size.

    Returns
    -------
    rgb : PIL.Image.Image
        Mode ``"RGB"``; transparent areas composited on white.
    """
    if not isinstance(img, Image.Image):
        raise ImageInputError(f"expected a PIL image, got {type(img).__name__}")
    if img.width * img.height > MAX_PIXELS:
        raise ImageInputError(
            f"image has {img.width}x{img.height} pixels, more than the {MAX_PIXELS:,} allowed"
        )
    img = ImageOps.exif_transpose(img) or img
    if img.mode in ("I;16", "I;16B", "I;16L", "I;16N", "I", "F"):
        img = _to_8bit(img)
    if img.mode == "P":
        img = img.convert("RGBA") if "transparency" in img.info else img.convert("RGB")
    if img.mode in ("RGBA", "LA", "PA", "RGBa", "La"):
        rgba = img.convert("RGBA")
        background = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        img = Image.alpha_composite(background, rgba)
    if img.mode != "RGB":
        img = img.convert("RGB")
    if max_side is not None and max(img.size) > max_side:
        img = img.copy()
        img.thumbnail((max_side, max_side), Image.Resampling.LANCZOS)
    return img


def exif_orientation(img: Image.Image) -> int:
    """The image's EXIF orientation tag (1 = upright, 2-8 = mirrored and/or rotated; 1 when
    absent or unreadable)."""
    try:
        value = int(img.getexif().get(0x0112, 1) or 1)
    except Exception:  # a broken EXIF block is not an error: the image is used as stored
        return 1
    return value if 1 <= value <= 8 else 1


def upright_size(img: Image.Image) -> tuple[int, int]:
    """(width, height) of ``img`` once turned upright by its EXIF orientation (what
    :func:`sanitize_image` returns before any downscaling)."""
    w, h = img.size
    return (h, w) if exif_orientation(img) in _SWAPPING_ORIENTATIONS else (w, h)


def pad_to_aspect(
    img: Image.Image, max_aspect: float = MAX_ASPECT, fill=(255, 255, 255)
) -> Image.Image:
    """Pad ``img`` (centred on an RGB canvas of ``fill``) so that its long side is at most ``max_aspect`` times
    its short side; an image within the ratio is returned unchanged.

    The whole picture is kept (no crop, no stretch): a 2048 x 1 strip becomes 2048 x 512.
    """
    if max_aspect < 1:
        raise ValueError(f"max_aspect must be >= 1, got {max_aspect}")
    w, h = img.size
    if w <= 0 or h <= 0:
        raise ImageInputError(f"image has {w}x{h} pixels; nothing to show")
    if max(w, h) <= max_aspect * min(w, h):
        return img
    new_w = max(w, int(np.ceil(h / max_aspect))) if w < h else w
    new_h = max(h, int(np.ceil(w / max_aspect))) if h < w else h
    canvas = Image.new("RGB", (new_w, new_h), tuple(fill))
    canvas.paste(img.convert("RGB"), ((new_w - w) // 2, (new_h - h) // 2))
    return canvas


def load_image_bytes(
    data: bytes,
    max_bytes: int = MAX_BYTES,
    max_pixels: int = MAX_PIXELS,
    max_side: int | None = MAX_SIDE,
) -> Image.Image:
    """Decode uploaded image bytes safely into an RGB image.

    Parameters
    ----------
    data : bytes
        The raw file content.
    max_bytes : int
        Reject larger inputs before decoding.
    max_pixels : int
        Reject images with more pixels (decompression bombs); Pillow's
        ``DecompressionBombWarning`` is also turned into an error.
    max_side : int or None
        See :func:`sanitize_image`.

    Returns
    -------
    rgb : PIL.Image.Image

    Raises
    ------
    ImageInputError
        Empty, too large, truncated, corrupt or not an image.
    """
    if not isinstance(data, (bytes, bytearray, memoryview)):
        raise ImageInputError(f"expected bytes, got {type(data).__name__}")
    data = bytes(data)
    if not data:
        raise ImageInputError("the image file is empty")
    if len(data) > max_bytes:
        raise ImageInputError(
            f"the image file is {len(data):,} bytes, more than the {max_bytes:,} allowed"
        )
    with warnings.catch_warnings():
        warnings.simplefilter("error", Image.DecompressionBombWarning)
        try:
            with Image.open(io.BytesIO(data)) as probe:
                if probe.width * probe.height > max_pixels:
                    raise ImageInputError(
                        f"image has {probe.width}x{probe.height} pixels, more than the "
                        f"{max_pixels:,} allowed"
                    )
                probe.verify()
            img = Image.open(io.BytesIO(data))
            img.load()
        except ImageInputError:
            raise
        except (Image.DecompressionBombWarning, Image.DecompressionBombError) as exc:
            raise ImageInputError(
                f"the image is too large to open safely (more than {max_pixels:,} pixels once "
                "decoded); resize it below that and upload again"
            ) from exc
        except UnidentifiedImageError as exc:
            raise ImageInputError("the file is not a recognised image format") from exc
        except (OSError, SyntaxError, ValueError, EOFError) as exc:
            raise ImageInputError(f"the image is truncated or corrupt: {exc}") from exc
        return sanitize_image(img, max_side=max_side)

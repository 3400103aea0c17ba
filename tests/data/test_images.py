"""Image input sanitising: odd modes become RGB, bad bytes give clear errors."""

import io

import numpy as np
import pytest
from PIL import Image

from core.data.images import ImageInputError, load_image_bytes, sanitize_image


def _png(img: Image.Image, fmt: str = "PNG", **kw) -> bytes:
    buf = io.BytesIO()
    img.save(buf, format=fmt, **kw)
    return buf.getvalue()


@pytest.mark.parametrize(
    "mode,maker",
    [
        ("RGBA", lambda: Image.new("RGBA", (8, 6), (255, 0, 0, 0))),
        ("LA", lambda: Image.new("LA", (8, 6), (10, 255))),
        ("L", lambda: Image.new("L", (8, 6), 128)),
        ("1", lambda: Image.new("1", (8, 6), 1)),
        ("P", lambda: Image.new("RGB", (8, 6), (0, 0, 255)).convert("P")),
        ("I;16", lambda: Image.fromarray(np.full((6, 8), 65535, np.uint16))),
        ("F", lambda: Image.fromarray(np.linspace(0, 1, 48, dtype=np.float32).reshape(6, 8))),
        ("CMYK", lambda: Image.new("CMYK", (8, 6), (0, 0, 0, 0))),
    ],
)
def test_odd_modes_become_rgb(mode, maker):
    img = maker()
    assert img.mode == mode
    out = sanitize_image(img)
    assert out.mode == "RGB" and out.size == (8, 6)


def test_transparency_composited_on_white_and_16bit_rescaled():
    out = sanitize_image(Image.new("RGBA", (4, 4), (255, 0, 0, 0)))
    assert out.getpixel((0, 0)) == (255, 255, 255)
    out16 = sanitize_image(Image.fromarray(np.full((4, 4), 65535, np.uint16)))
    assert out16.getpixel((0, 0)) == (255, 255, 255)
    via_bytes = load_image_bytes(_png(Image.fromarray(np.full((4, 4), 32768, np.uint16))))
    assert via_bytes.mode == "RGB" and 120 < via_bytes.getpixel((0, 0))[0] < 135


def test_exif_orientation_is_applied():
    img = Image.new("RGB", (20, 10), (0, 255, 0))
    exif = Image.Exif()
    exif[0x0112] = 6  # rotate 90 degrees
    out = load_image_bytes(_png(img, "JPEG", exif=exif.tobytes()))
    assert out.size == (10, 20)


def test_large_images_are_bounded():
    out = sanitize_image(Image.new("RGB", (3000, 1000)), max_side=512)
    assert max(out.size) == 512


def test_upload_round_trip_and_bad_bytes():
    ok = load_image_bytes(_png(Image.new("RGBA", (5, 5), (0, 0, 0, 255))))
    assert ok.mode == "RGB" and ok.size == (5, 5)
    good = _png(Image.new("RGB", (64, 64), (1, 2, 3)), "JPEG")
    with pytest.raises(ImageInputError, match="empty"):
        load_image_bytes(b"")
    with pytest.raises(ImageInputError, match="not a recognised image"):
        load_image_bytes(b"this is not an image at all")
    with pytest.raises(ImageInputError, match="truncated or corrupt"):
        load_image_bytes(_png(Image.new("RGB", (64, 64)))[:60])
    with pytest.raises(ImageInputError, match="bytes, more than"):
        load_image_bytes(good, max_bytes=10)
    with pytest.raises(ImageInputError, match="pixels"):
        load_image_bytes(good, max_pixels=100)
    with pytest.raises(ImageInputError, match="expected bytes"):
        load_image_bytes("a string")  # type: ignore[arg-type]


def test_decompression_bomb_warning_is_an_error(monkeypatch):
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 1000)
    with pytest.raises(ImageInputError, match="decompression bomb|pixels"):
        load_image_bytes(_png(Image.new("RGB", (40, 40))), max_pixels=10**9)

"""Upload fuzzing: every malformed or unusual file gives a clear message and the app keeps
serving."""

from __future__ import annotations

import io
import struct
import zlib

import numpy as np
import pytest
from PIL import Image

from tests.app.apptools import page, texts
from tests.app.conftest import PAGES


def _png(img: Image.Image) -> bytes:
    buf = io.BytesIO()
    img.save(buf, format="PNG")
    return buf.getvalue()


def _chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))


def huge_dimensions_png(width: int = 60_000, height: int = 60_000) -> bytes:
    """A tiny file whose header claims a 3.6-gigapixel image (never decoded)."""
    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    idat = zlib.compress(b"\x00" * 16)
    return b"\x89PNG\r\n\x1a\n" + _chunk(b"IHDR", ihdr) + _chunk(b"IDAT", idat) + _chunk(b"IEND", b"")


def animated_gif() -> bytes:
    frames = [Image.new("RGB", (40, 30), c) for c in ("red", "green", "blue")]
    buf = io.BytesIO()
    frames[0].save(buf, format="GIF", save_all=True, append_images=frames[1:], duration=100)
    return buf.getvalue()


def png16() -> bytes:
    arr = (np.arange(64 * 48, dtype=np.uint16).reshape(48, 64) * 21).astype(np.uint16)
    img = Image.fromarray(arr)
    assert img.mode.startswith("I;16")
    return _png(img)


GOOD = _png(Image.new("RGB", (64, 48), (200, 40, 40)))

# name, bytes, expected kind ("error" refuses the file; "warning" uses it with a note), text
CASES = [
    ("huge.png", huge_dimensions_png(), "error", "pixels"),
    ("cut.png", _png(Image.new("RGB", (200, 200), "blue"))[:300], "error", "truncated"),
    ("notes.png", b"hello, this is not an image\n" * 10, "error", "not a recognised image"),
    ("empty.png", b"", "error", "empty"),
    ("photo.txt", GOOD, "warning", "named '.txt'"),
    ("anim.gif", animated_gif(), "warning", "Animated image (3 frames)"),
    ("deep.png", png16(), "warning", "High bit depth"),
]


def exif_rotated_jpeg(size=(400, 300), orientation: int = 6) -> bytes:
    img = Image.new("RGB", size, (30, 120, 200))
    exif = img.getexif()
    exif[0x0112] = orientation
    buf = io.BytesIO()
    img.save(buf, format="JPEG", exif=exif.tobytes())
    return buf.getvalue()


# odd geometries: every one is used (with a note where something was done to it)
GEOMETRY = [
    ("wide.png", _png(Image.new("RGB", (5000, 3), "red")), "padded with white to 2048×512"),
    ("tall.png", _png(Image.new("RGB", (2, 4000), "red")), "padded with white to 512×2048"),
    ("strip.png", _png(Image.new("RGB", (2048, 1), "red")), "Very wide image (2048×1)"),
    ("dot.png", _png(Image.new("RGB", (1, 1), "red")), "Very small image (1×1 pixels)"),
    ("rotated.jpg", exif_rotated_jpeg(), "Turned upright following its EXIF orientation"),
]

CASES += [(name, data, "warning", needle) for name, data, needle in GEOMETRY if needle]


@pytest.mark.parametrize(("name", "data", "kind", "needle"), CASES, ids=[c[0] for c in CASES])
def test_upload_gives_clear_message_and_app_keeps_serving(app, name, data, kind, needle):
    at = page(app, PAGES[0])
    at.radio(key="ex_source").set_value("Upload").run()
    at.file_uploader(key="ex_upload").set_value((name, data, "application/octet-stream")).run()
    assert not at.exception, [e.value for e in at.exception]
    messages = [e.value for e in (at.error if kind == "error" else at.warning)]
    assert any(needle in m for m in messages), (messages, texts(at))
    run = at.button(key="ex_run")
    assert run.disabled == (kind == "error")
    # the app keeps serving: a good upload right after works and runs
    at.file_uploader(key="ex_upload").set_value(("ok.png", GOOD, "image/png")).run()
    assert not at.error and not at.exception
    at.selectbox(key="ex_model").set_value("tiny-llava").run()
    at.button(key="ex_run").click().run()
    assert not at.exception
    assert {m.label for m in at.metric} >= {"Inference time", "From cache"}


@pytest.mark.parametrize(("name", "data", "needle"), GEOMETRY, ids=[g[0] for g in GEOMETRY])
def test_odd_geometry_is_used_and_reported(name, data, needle):
    from core.dashboard.gallery import read_upload

    up = read_upload(name, data)
    w, h = up.image.size
    assert max(w, h) <= 4 * min(w, h)  # a shape every model processor and preview accepts
    if needle is None:
        assert up.notes == []
    else:
        assert any(needle in n for n in up.notes), up.notes
    assert not any("Downscaled" in n for n in up.notes) or max(Image.open(io.BytesIO(data)).size) > 2048


def test_exif_rotation_is_not_called_downscaling():
    from core.dashboard.gallery import read_upload

    small = read_upload("r.jpg", exif_rotated_jpeg((400, 300), 6))
    assert small.image.size == (300, 400)
    assert not any("Downscaled" in n for n in small.notes)
    big = read_upload("r.jpg", exif_rotated_jpeg((4000, 3000), 8))
    assert big.image.size == (1536, 2048)
    notes = " ".join(big.notes)
    assert "rotated 270°" in notes and "Downscaled from 3000×4000 to 1536×2048" in notes
    upright = read_upload("u.jpg", exif_rotated_jpeg((400, 300), 1))
    assert upright.notes == []

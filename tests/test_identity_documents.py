"""Identity document files: type by content, sizes, dimensions, and re-encoding for YouSign's limits."""

import io
import os
import struct
import subprocess
import sys
import zlib
from pathlib import Path

import pytest
from PIL import Image
from pypdf import PdfWriter

from domain.errors import RuleViolation, TooLarge
from domain.identity_documents import YOUSIGN_MAX_BYTES, YOUSIGN_MAX_PIXELS, CheckedFile, check_identity_file

ROOT = Path(__file__).resolve().parent.parent


def pdf(pages: int = 1, password: str | None = None, owner_password: str | None = None) -> bytes:
    writer = PdfWriter()
    for _ in range(pages):
        writer.add_blank_page(595, 842)
    if password is not None:
        writer.encrypt(user_password=password, owner_password=owner_password)
    buffer = io.BytesIO()
    writer.write(buffer)
    return buffer.getvalue()


def png(image: Image.Image) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    return buffer.getvalue()


def test_an_image_over_yousigns_10_mb_is_re_encoded_to_fit():
    noisy = png(Image.frombytes("RGB", (2000, 2000), os.urandom(2000 * 2000 * 3)))
    assert YOUSIGN_MAX_BYTES < len(noisy) < 20 * 1024 * 1024
    checked = check_identity_file("front", noisy)
    assert checked.content_type == "image/jpeg" and len(checked.content) <= YOUSIGN_MAX_BYTES
    assert Image.open(io.BytesIO(checked.content)).size == (2000, 2000)


def test_an_image_over_20_megapixels_is_scaled_down():
    huge = png(Image.new("RGB", (6000, 4000), "white"))
    checked = check_identity_file("front", huge)
    width, height = Image.open(io.BytesIO(checked.content)).size
    assert width * height <= YOUSIGN_MAX_PIXELS and abs(width / height - 1.5) < 0.01
    assert width * height > 0.99 * YOUSIGN_MAX_PIXELS  # as much detail as YouSign takes


@pytest.fixture
def re_encoded_above_100_kpx(monkeypatch):
    """Small images take the re-encoding path (as 20+ megapixel ones do) without their cost."""
    monkeypatch.setattr("domain.identity_documents.YOUSIGN_MAX_PIXELS", 100_000)


def re_encoded(content: bytes) -> Image.Image:
    checked = check_identity_file("front", content)
    assert checked.content_type == "image/jpeg"
    return Image.open(io.BytesIO(checked.content))


def middle(image: Image.Image):
    return image.getpixel((image.width // 2, image.height // 2))


def test_re_encoding_keeps_16_bit_grey_grey(re_encoded_above_100_kpx):
    grey = Image.new("I;16", (640, 480), 0x8000)  # mid-grey on 16 bits
    assert abs(middle(re_encoded(png(grey)).convert("L")) - 128) <= 2


def test_re_encoding_puts_transparent_parts_on_white(re_encoded_above_100_kpx):
    clear = Image.new("RGBA", (640, 480), (0, 0, 0, 0))
    assert min(middle(re_encoded(png(clear)))) >= 250


def test_re_encoding_applies_the_cameras_rotation(re_encoded_above_100_kpx):
    exif = Image.Exif()
    exif[0x0112] = 6  # Orientation: the photo is shown turned 90 degrees clockwise
    buffer = io.BytesIO()
    Image.new("RGB", (640, 400), "white").save(buffer, format="JPEG", exif=exif)
    width, height = re_encoded(buffer.getvalue()).size
    assert height > width  # upright as the camera meant it, now that the EXIF tag is gone


def checked_apart(path: Path) -> tuple[int, int, tuple[int, int]]:
    """The file checked in a process of its own, so that its peak memory is the check's: that peak
    (KiB), and the size (bytes) and dimensions of what the check gives."""
    script = (
        "import io, re, sys; from PIL import Image; from domain import identity_documents as documents;"
        "checked = documents.check_identity_file('front', open(sys.argv[1], 'rb').read());"
        # VmHWM, not ru_maxrss: Linux carries the latter over from the forking (pytest) process.
        "peak = re.search(r'VmHWM:\\s+(\\d+)', open('/proc/self/status').read()).group(1);"
        "print(peak, len(checked.content), *Image.open(io.BytesIO(checked.content)).size)"
    )
    done = subprocess.run(
        [sys.executable, "-c", script, str(path)], capture_output=True, text=True, check=True, cwd=ROOT
    )
    peak_kib, size, width, height = map(int, done.stdout.split())
    return peak_kib, size, (width, height)


def test_a_60_megapixel_image_is_fitted_within_a_third_of_a_gigabyte(tmp_path):
    # This 250 KB PNG with transparency took 1.4 GB when converted whole before being shrunk.
    bomb = tmp_path / "bomb.png"
    Image.new("RGBA", (7745, 7745), (9, 9, 9, 128)).save(bomb)
    peak_kib, size, _ = checked_apart(bomb)
    assert peak_kib < 350 * 1024 and size > 0


def test_a_48_megapixel_photo_is_decoded_at_half_size_within_150_mb(tmp_path):
    # Decoded whole, then scaled to 20 megapixels, it took 430 MB.
    photo = tmp_path / "photo.jpg"
    Image.new("RGB", (8000, 6000), "white").save(photo, quality=90)
    peak_kib, _, dimensions = checked_apart(photo)
    assert dimensions == (4000, 3000)  # 12 megapixels: detail enough, within YouSign's 20
    assert peak_kib < 150 * 1024


def test_a_decompression_bomb_is_refused_from_its_header():
    # 9000 x 9000 px of one colour: a few KB on disk, 243 MB once decoded. Refused before decoding.
    bomb = png(Image.new("L", (9000, 9000), 255))
    assert len(bomb) < 200_000
    with pytest.raises(TooLarge, match="9000 x 9000 px; at most 60 megapixels"):
        check_identity_file("front", bomb)


def test_an_image_over_pillows_own_limit_is_refused_as_too_large():
    # 20000 x 20000 declared: Pillow refuses it on opening (over ~179 megapixels), before our check.
    header = png_chunk(b"IHDR", struct.pack(">IIBBBBB", 20000, 20000, 8, 0, 0, 0, 0))
    bomb = b"\x89PNG\r\n\x1a\n" + header + png_chunk(b"IEND", b"")
    with pytest.raises(TooLarge, match="over 60 megapixels"):
        check_identity_file("front", bomb)


def test_a_fitting_file_is_kept_as_it_is():
    small = png(Image.new("RGB", (400, 300), "white"))
    assert check_identity_file("front", small).content == small
    scan = pdf()
    assert check_identity_file("back", scan) == CheckedFile("application/pdf", scan)
    # Restricted by an owner password, but opening without one: a PDF as any viewer shows it.
    restricted = pdf(password="", owner_password="owner")
    assert check_identity_file("back", restricted) == CheckedFile("application/pdf", restricted)


def test_a_portrait_photo_of_the_minimum_size_is_accepted():
    assert (
        check_identity_file("front", png(Image.new("RGB", (256, 320), "white"))).content_type == "image/png"
    )


@pytest.mark.parametrize(
    ("content", "error", "reason"),
    [
        (b"", RuleViolation, "empty"),
        (b"GIF89a...", RuleViolation, "JPEG, PNG or PDF"),
        (b"%PDF-" + b"0" * (11 * 1024 * 1024), TooLarge, "10 MB"),
        # "%PDF-" alone is not a PDF: YouSign would fail it later, once the firm is told "pending".
        (b"%PDF-1.4\n garbage", RuleViolation, "the PDF cannot be read"),
        (pdf()[:-200], RuleViolation, "the PDF cannot be read"),
        (pdf(password="secret"), RuleViolation, "password-protected"),
        (pdf(pages=0), RuleViolation, "has no page"),
    ],
)
def test_refusals_name_the_field(content, error, reason):
    with pytest.raises(error) as refused:
        check_identity_file("back", content)
    assert refused.value.field == "back" and reason in refused.value.message


def png_chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))


def damaged_pngs() -> dict[str, bytes]:
    """A valid 400 x 300 PNG's header, then damage Pillow reports as SyntaxError, ValueError..."""
    header = b"\x89PNG\r\n\x1a\n" + png_chunk(b"IHDR", struct.pack(">IIBBBBB", 400, 300, 8, 2, 0, 0, 0))
    pixels = zlib.compress(b"".join(b"\x00" + b"\x10" * 1200 for _ in range(300)))
    return {
        "broken chunk after the pixels": header + png_chunk(b"IDAT", pixels[:50]) + b"\0\0\0\x05\xff\xfe",
        "text chunk inflating past 1 MB": header
        + png_chunk(b"zTXt", b"Comment\0\0" + zlib.compress(b"a" * 2_000_000))
        + png_chunk(b"IDAT", pixels)
        + png_chunk(b"IEND", b""),
        "pixels that are not zlib": header + png_chunk(b"IDAT", b"not zlib" * 10) + png_chunk(b"IEND", b""),
        "cut short": header + png_chunk(b"IDAT", pixels)[:60],
    }


@pytest.mark.parametrize("name", damaged_pngs())
def test_a_damaged_image_is_refused_naming_the_field(name):
    with pytest.raises(RuleViolation) as refused:
        check_identity_file("front", damaged_pngs()[name])
    assert refused.value.field == "front" and "cannot be read" in refused.value.message

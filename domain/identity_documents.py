"""Checks on the firm representative's identity document files, before anything is stored."""

from __future__ import annotations

import io
import math
from dataclasses import dataclass

from PIL import ExifTags, Image
from pypdf import PdfReader

from domain.errors import RuleViolation, TooLarge

MAX_UPLOAD_BYTES = 20 * 1024 * 1024  # what we accept from the firm
YOUSIGN_MAX_BYTES = 10 * 1024 * 1024  # what YouSign's verification API takes per file
YOUSIGN_MAX_PIXELS = 20_000_000
# Read from the header, before decoding: a small file can declare a huge image (a decompression
# bomb: 10 KB for 9000 x 9000 px took 712 MB). Phone photos stay well below.
MAX_DECLARED_PIXELS = 60_000_000
MIN_WIDTH, MIN_HEIGHT = 320, 256
HALF_SCALE_DECODE_FROM = 2 * YOUSIGN_MAX_PIXELS  # a JPEG above 40 megapixels: see _checked_image

DOCUMENT_TYPES = ("identity_card", "passport", "residence_permit", "driving_licence")
TWO_SIDED = frozenset({"identity_card"})

_SIGNATURES = (
    (b"\xff\xd8\xff", "image/jpeg"),
    (b"\x89PNG\r\n\x1a\n", "image/png"),
    (b"%PDF-", "application/pdf"),
)


@dataclass(frozen=True)
class CheckedFile:
    content_type: str
    content: bytes  # ready for YouSign: re-encoded when the original was too big for it


def sniff_content_type(content: bytes) -> str | None:
    """The type from the bytes themselves, never from the file name."""
    return next((kind for magic, kind in _SIGNATURES if content.startswith(magic)), None)


def check_identity_file(field: str, content: bytes) -> CheckedFile:
    if not content:
        raise RuleViolation(field, "the file is empty")
    if len(content) > MAX_UPLOAD_BYTES:
        raise TooLarge(field, "the file is larger than 20 MB")
    content_type = sniff_content_type(content)
    if content_type is None:
        raise RuleViolation(field, "the file must be a JPEG, PNG or PDF")
    if content_type == "application/pdf":
        if len(content) > YOUSIGN_MAX_BYTES:
            raise TooLarge(field, "YouSign verifies PDF files up to 10 MB: send a smaller PDF or a photo")
        _check_pdf(field, content)
        return CheckedFile(content_type, content)
    return _checked_image(field, content, content_type)


def _check_pdf(field: str, content: bytes) -> None:
    """A PDF that opens and has a page: "%PDF-" alone would pass anything on to YouSign, whose
    verdict would come later, after the firm was told the check is under way."""
    try:
        reader = PdfReader(io.BytesIO(content))
        # Encrypted with an owner password alone (restrictions on printing, say), it opens as is.
        if reader.is_encrypted and not reader.decrypt(""):
            raise RuleViolation(field, "the PDF is password-protected: send it without a password")
        pages = len(reader.pages)
    except RuleViolation:
        raise
    except Exception as error:  # pypdf reports a damaged file in many ways, as Pillow does
        raise RuleViolation(field, f"the PDF cannot be read ({type(error).__name__})") from None
    if pages == 0:
        raise RuleViolation(field, "the PDF has no page")


def _checked_image(field: str, content: bytes, content_type: str) -> CheckedFile:
    try:
        with Image.open(io.BytesIO(content)) as image:
            width, height = image.size
            if width * height > MAX_DECLARED_PIXELS:
                raise TooLarge(field, f"the image is {width} x {height} px; at most 60 megapixels")
            fits = len(content) <= YOUSIGN_MAX_BYTES and width * height <= YOUSIGN_MAX_PIXELS
            if image.format == "JPEG" and width * height > HALF_SCALE_DECODE_FROM:
                # Decoded at half size by the JPEG decoder itself: 10 to 15 megapixels, all YouSign
                # needs, for a quarter of the memory (a 59-megapixel CMYK photo took 730 MB in full).
                image.draft(image.mode, (width // 2, height // 2))
            image.load()
            if min(width, height) < MIN_HEIGHT or max(width, height) < MIN_WIDTH:
                needed = f"at least {MIN_WIDTH} x {MIN_HEIGHT} px needed"
                raise RuleViolation(field, f"the image is {width} x {height} px; {needed}")
            if fits:
                return CheckedFile(content_type, content)
            return CheckedFile("image/jpeg", _fit_for_yousign(image))
    except RuleViolation:
        raise
    except Image.DecompressionBombError:  # Pillow's own limit (~179 megapixels), met before ours
        raise TooLarge(field, "the image is over 60 megapixels") from None
    except Exception as error:
        # Pillow reports a damaged file in many ways (OSError, SyntaxError, ValueError, struct.error,
        # EOFError...): whatever it is, the firm sent a file that cannot be read.
        raise RuleViolation(field, f"the image cannot be read ({type(error).__name__})") from None


def _reduction(width: int, height: int) -> int:
    """The whole factor that brings an image within YouSign's 20 megapixels (2 up to 80)."""
    return math.ceil(math.sqrt(width * height / YOUSIGN_MAX_PIXELS))


def _fit_for_yousign(image: Image.Image) -> bytes:
    """Re-encode as JPEG within YouSign's 20 megapixels and 10 MB, keeping as much detail as fits.

    A photo (RGB, grey) is resized to 20 megapixels. One with transparency or a palette is first
    shrunk by a whole factor, dropping pixels: Pillow's filters would premultiply its alpha in a
    full-size copy (a 60-megapixel PNG with transparency took 1.4 GB so, and 0.3 GB this way).
    """
    orientation = image.getexif().get(ExifTags.Base.Orientation)
    factor = _reduction(image.width, image.height)
    if factor > 1 and _alpha_or_palette(image):
        reduced = image.resize((image.width // factor, image.height // factor), Image.Resampling.NEAREST)
        image.close()  # its full-size pixels go now, not when the caller is done with it
        image = reduced
    rgb = _as_rgb(image)
    if rgb is not image:
        image.close()
    pixels = rgb.width * rgb.height
    if pixels > YOUSIGN_MAX_PIXELS:
        scale = (YOUSIGN_MAX_PIXELS / pixels) ** 0.5
        rgb = rgb.resize((int(rgb.width * scale), int(rgb.height * scale)), Image.Resampling.LANCZOS)
    if orientation in _UPRIGHT:  # the camera's rotation, as EXIF says (what ImageOps.exif_transpose does)
        rgb = rgb.transpose(_UPRIGHT[orientation])
    while True:
        for quality in (90, 80, 70, 60, 50):
            buffer = io.BytesIO()
            rgb.save(buffer, format="JPEG", quality=quality)
            if buffer.tell() <= YOUSIGN_MAX_BYTES:
                return buffer.getvalue()
        rgb = rgb.resize((rgb.width // 2, rgb.height // 2), Image.Resampling.LANCZOS)


def _alpha_or_palette(image: Image.Image) -> bool:
    return image.mode in ("RGBA", "LA", "PA", "P")


_UPRIGHT = {
    2: Image.Transpose.FLIP_LEFT_RIGHT,
    3: Image.Transpose.ROTATE_180,
    4: Image.Transpose.FLIP_TOP_BOTTOM,
    5: Image.Transpose.TRANSPOSE,
    6: Image.Transpose.ROTATE_270,
    7: Image.Transpose.TRANSVERSE,
    8: Image.Transpose.ROTATE_90,
}


def _as_rgb(image: Image.Image) -> Image.Image:
    """What the photo shows, as 8-bit RGB: 16-bit grey scaled down (not clipped to white),
    transparent parts on white (JPEG has no alpha; black would hide text)."""
    if image.mode == "I" or image.mode.startswith("I;16"):
        image = image.convert("I").point(lambda value: value * (1 / 256)).convert("L")
    if image.mode in ("RGBA", "LA", "PA") or (image.mode == "P" and "transparency" in image.info):
        rgba = image.convert("RGBA")
        white = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        return Image.alpha_composite(white, rgba).convert("RGB")
    return image if image.mode == "RGB" else image.convert("RGB")  # no copy of what is RGB already

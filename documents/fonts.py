"""The mandate's two typefaces, and what each can print.

Helvetica, a PDF core font, draws Windows-1252 (Latin-1 plus œ, Š, Ž, Ÿ, €, curly quotes and
dashes): nothing to embed, and the cheapest to render, for nearly every mandate. A mandate naming
someone it cannot print (Łukasz, Nguyễn, Ștefan...) is set in Roboto instead (font-roboto's files,
embedded as a subset): Latin with every accent, Greek and Cyrillic, at ~18x the rendering time
(~75 ms against ~4 ms, loading and subsetting the font: `python bench/mandate_pdf.py`).
"""

from __future__ import annotations

import functools
import unicodedata
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

import font_roboto
from fpdf.fonts import CORE_FONTS_CHARWIDTHS

# Typographic spaces a word processor pastes, printed as plain spaces.
_SPACES = str.maketrans({"\u2009": " ", "\u202f": " "})
_ROBOTO_FILES = {"": font_roboto.Roboto, "B": font_roboto.RobotoBold}


@dataclass(frozen=True, eq=False)  # two instances, compared (and cached on) by identity
class Face:
    """A typeface as the renderer uses it: its fpdf2 family and its glyph widths."""

    family: str
    core: bool  # a core font: text as Windows-1252 bytes, the PDF's word spacing applies

    def prepare(self, text: str) -> str:
        """`text` as this face's fpdf2 calls and width tables take it."""
        text = text.translate(_SPACES)
        return to_winansi(text) if self.core else text

    def widths(self, bold: bool) -> Mapping[str, float]:
        """Advance widths in thousandths of the font size, by character (as `prepare` gives them)."""
        if self.core:
            return CORE_FONTS_CHARWIDTHS["helveticaB" if bold else "helvetica"]
        return _roboto_widths("B" if bold else "")

    def files(self) -> Mapping[str, str]:
        """The TrueType files to embed, by fpdf2 style (none for a core font; no italic: each
        file is parsed for every document, and a note in upright type reads as well)."""
        return {} if self.core else _ROBOTO_FILES


HELVETICA = Face("Helvetica", core=True)
ROBOTO = Face("Roboto", core=False)


def to_winansi(text: str) -> str:
    """`text` as the core fonts' code points: each character is the Windows-1252 byte that draws it
    (what fpdf2 writes for a core font, and what their width tables are indexed by)."""
    return text.encode("cp1252").decode("latin-1")


def in_helvetica(char: str) -> bool:
    try:
        char.translate(_SPACES).encode("cp1252")
    except UnicodeEncodeError:
        return False
    return True


# Controls, invisible formatting (zero-width spaces, soft hyphens...), private-use glyphs and marks
# left uncombined by NFC: nothing a name should carry, and nothing drawn right without shaping.
_NEVER_PRINTED = frozenset({"Cc", "Cf", "Co", "Cs", "Mn", "Me", "Zl", "Zp"})


def printable(char: str) -> bool:
    """Whether a mandate can print `char` (of a text in NFC), in one face or the other."""
    if unicodedata.category(char) in _NEVER_PRINTED:
        return False
    return in_helvetica(char) or char in _roboto_widths("")


def face_for(texts: Iterable[str]) -> Face:
    """Helvetica if it prints every text, else Roboto (whose coverage the API has checked)."""
    try:
        "".join(texts).translate(_SPACES).encode("cp1252")
    except UnicodeEncodeError:
        return ROBOTO
    return HELVETICA


@functools.cache
def _roboto_widths(style: str) -> dict[str, float]:
    from fontTools.ttLib import TTFont

    with TTFont(_ROBOTO_FILES[style], lazy=True) as font:
        per_em = 1000 / font["head"].unitsPerEm
        metrics = font["hmtx"].metrics
        return {chr(code): metrics[glyph][0] * per_em for code, glyph in font.getBestCmap().items()}

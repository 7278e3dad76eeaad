"""What the mandate PDF can print: what one of its typefaces draws (documents/fonts.py), that is
Windows-1252 in Helvetica, else Latin with every accent, Greek and Cyrillic in Roboto.

The API refuses any other character in a name that the mandate prints, so a stored dossier can
always be rendered.
"""

from __future__ import annotations

import unicodedata

from documents.fonts import printable


def unprintable_characters(text: str) -> str:
    """The distinct characters of `text` the mandate PDF cannot draw, in order of appearance."""
    return "".join(dict.fromkeys(c for c in text if not printable(c)))


def check_printable(text: str) -> str:
    """`text` composed (NFC: "e" + a combining accent becomes "é"), or a ValueError naming the
    characters the mandate PDF cannot print."""
    text = unicodedata.normalize("NFC", text)
    if bad := unprintable_characters(text):
        raise ValueError(f"contains characters the mandate PDF cannot print: {bad!r}")
    return text

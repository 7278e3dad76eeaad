"""What the mandate PDF can print: its core fonts' WinAnsi (Windows-1252) characters, that is
Latin-1 plus the oe ligature, Š, Ž, Ÿ, the euro sign and the typography word processors paste
(curly quotes, dashes, ellipsis). Thin spaces become spaces.

The API refuses any other character in a name that the mandate prints, so a stored dossier can
always be rendered.
"""

from __future__ import annotations

REPLACEMENTS = str.maketrans({"\u2009": " ", "\u202f": " "})


def _encodable(char: str) -> bool:
    try:
        char.encode("cp1252")
    except UnicodeEncodeError:
        return False
    return True


def to_winansi(text: str) -> str:
    """`text` as the core fonts' code points: each character is the Windows-1252 byte that draws it
    (what fpdf2 writes for a core font, and what their width tables are indexed by)."""
    return text.translate(REPLACEMENTS).encode("cp1252").decode("latin-1")


def unprintable_characters(text: str) -> str:
    """The distinct characters of `text` the mandate PDF cannot draw, in order of appearance."""
    return "".join(dict.fromkeys(c for c in text.translate(REPLACEMENTS) if not _encodable(c)))


def check_printable(text: str) -> str:
    """`text` unchanged, or a ValueError naming the characters the mandate PDF cannot print."""
    if bad := unprintable_characters(text):
        raise ValueError(f"contains characters the mandate PDF cannot print: {bad!r}")
    return text

"""What the mandate PDF can print: Latin-1 (its core fonts), once the typography that word processors
paste (curly quotes, dashes, oe ligatures...) is mapped to Latin-1 equivalents.

The API refuses any other character in a name that the mandate prints, so a stored dossier can
always be rendered.
"""

from __future__ import annotations

LATIN1_REPLACEMENTS: dict[str, str] = {
    "\u2018": "'",
    "\u2019": "'",
    "\u201a": ",",
    "\u201c": '"',
    "\u201d": '"',
    "\u201e": '"',
    "\u2013": "-",
    "\u2014": "-",
    "\u2026": "...",
    "\u0152": "OE",
    "\u0153": "oe",
    "\u20ac": "EUR",
    "\u2009": " ",
    "\u202f": " ",
}

_LATIN1_TABLE = str.maketrans(LATIN1_REPLACEMENTS)


def to_latin1(text: str) -> str:
    """Return `text` with typographic characters replaced by Latin-1 ones."""
    return text.translate(_LATIN1_TABLE)


def unprintable_characters(text: str) -> str:
    """The distinct characters of `text` the mandate PDF cannot draw, in order of appearance."""
    return "".join(dict.fromkeys(c for c in to_latin1(text) if ord(c) > 0xFF))


def check_printable(text: str) -> str:
    """`text` unchanged, or a ValueError naming the characters the mandate PDF cannot print."""
    if bad := unprintable_characters(text):
        raise ValueError(f"contains characters the mandate PDF cannot print: {bad!r}")
    return text

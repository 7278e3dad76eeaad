"""Line breaking measured with the typeface's own width tables (documents/fonts.py).

fpdf2's line breaker re-measures the whole line for every character it adds (it was ~85% of a
mandate's rendering time); measuring each word once gives the same greedy breaks for a fraction
of the cost. A line is a tuple of runs: (text, bold), the text as `Face.prepare` gives it.
Neither face is kerned here (core fonts have no kerning; fpdf2 does not apply Roboto's).
"""

from __future__ import annotations

import functools
import re
from collections.abc import Sequence

from documents.fonts import HELVETICA, Face

Run = tuple[str, bool]
Line = tuple[Run, ...]


@functools.lru_cache(maxsize=8192)  # most words of a mandate are the same in every mandate
def text_width(text: str, bold: bool, size: float, face: Face = HELVETICA) -> float:
    """Width in points of `text` at `size` points."""
    widths = face.widths(bold)
    return sum(widths[char] for char in text) * size / 1000


def ink_width(pieces: Sequence[Run], size: float, face: Face = HELVETICA) -> float:
    """Width of a line or word without its trailing spaces, which never show at a line's end."""
    total = sum(text_width(text, bold, size, face) for text, bold in pieces)
    if pieces:
        text, bold = pieces[-1]
        total -= text_width(" ", bold, size, face) * (len(text) - len(text.rstrip(" ")))
    return total


def words(runs: Sequence[Run]) -> list[list[Run]]:
    """Unbreakable words, each the pieces (possibly of several runs) up to and including its spaces."""
    found: list[list[Run]] = []
    word: list[Run] = []
    for text, bold in runs:
        for piece in re.findall(r" +|[^ ]+ *", text):
            word.append((piece, bold))
            if piece.endswith(" "):
                found.append(word)
                word = []
    if word:
        found.append(word)
    return found


def merged(pieces: Sequence[Run]) -> list[Run]:
    """Neighbouring pieces of the same style as one (fewer text objects in the PDF)."""
    joined: list[Run] = []
    for text, bold in pieces:
        if joined and joined[-1][1] == bold:
            joined[-1] = (joined[-1][0] + text, bold)
        else:
            joined.append((text, bold))
    return joined


def wrap(runs: Sequence[Run], width: float, size: float, face: Face = HELVETICA) -> tuple[Line, ...]:
    """Greedy breaking at spaces; a word wider than the line is cut where it overflows."""
    return _wrap(tuple(runs), width, size, face)


@functools.lru_cache(maxsize=1024)  # most paragraphs of a mandate are the same in every mandate
def _wrap(runs: tuple[Run, ...], width: float, size: float, face: Face) -> tuple[Line, ...]:
    lines: list[Line] = []
    line: list[Run] = []
    used = 0.0  # the line's width, trailing spaces included
    for word in words(runs):
        ink = ink_width(word, size, face)
        if line and used + ink > width:
            lines.append(tuple(line))
            line, used = [], 0.0
        if not line and ink > width:
            *whole, last = _cut(word, width, size, face)
            lines.extend(tuple(cut) for cut in whole)
            line = list(last)
            used = sum(text_width(text, bold, size, face) for text, bold in line)
            continue
        line.extend(word)
        used += sum(text_width(text, bold, size, face) for text, bold in word)
    lines.append(tuple(line))
    return tuple(lines)


def _cut(word: list[Run], width: float, size: float, face: Face) -> list[list[Run]]:
    lines: list[list[Run]] = [[]]
    used = 0.0
    for text, bold in word:
        for char in text:
            char_width = text_width(char, bold, size, face)
            if lines[-1] and used + char_width > width and char != " ":
                lines.append([])
                used = 0.0
            lines[-1].append((char, bold))
            used += char_width
    return [merged(line) for line in lines]

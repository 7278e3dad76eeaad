"""Line breaking of the mandate PDF's text: pure functions over the core fonts' width tables."""

from __future__ import annotations

import itertools

import pytest
from fpdf import FPDF

from documents.text_lines import ink_width, merged, text_width, words, wrap

SIZE = 9.5


def joined(line: list[tuple[str, bool]]) -> str:
    return "".join(text for text, _ in line)


@pytest.mark.parametrize("bold", [False, True])
def test_widths_match_fpdf2(bold: bool) -> None:
    pdf = FPDF(unit="pt")
    pdf.set_font("Helvetica", "B" if bold else "", SIZE)
    text = "Mandat de délégation « PA Exemple » n° 732829320_987654325"
    assert text_width(text, bold, SIZE) == pytest.approx(pdf.get_string_width(text))


def test_words_keep_their_spaces_and_join_runs_without_a_space_between() -> None:
    runs = [("(", False), ("Dupré", True), (") est ", False), ("client", True)]
    assert [joined(word) for word in words(runs)] == ["(Dupré) ", "est ", "client"]


def test_wrap_fills_each_line_greedily_without_overflowing() -> None:
    text = "le Client donne mandat au Cabinet, qui l'accepte, de désigner en son nom " * 6
    width = 200.0
    lines = wrap([(text, False)], width, SIZE)
    assert len(lines) > 3
    assert "".join(joined(line) for line in lines) == text  # nothing lost or added
    for line, following in itertools.pairwise(lines):
        assert ink_width(line, SIZE) <= width
        # The next line's first word would not have fitted.
        assert ink_width([*line, *words(following)[0]], SIZE) > width


def test_a_word_longer_than_the_line_is_cut() -> None:
    email = "tres.long.prenom.compose.avec.des.points@sous-domaine.exemple-de-cabinet.fr"
    lines = wrap([(email, True)], 80.0, SIZE)
    assert len(lines) > 2
    assert "".join(joined(line) for line in lines) == email
    assert all(ink_width(line, SIZE) <= 80.0 for line in lines)


def test_merged_joins_neighbours_of_the_same_style() -> None:
    assert merged([("a ", False), ("b ", False), ("c", True), (" d", False)]) == [
        ("a b ", False),
        ("c", True),
        (" d", False),
    ]

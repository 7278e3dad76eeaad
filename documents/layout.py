"""Low-level drawing helpers on top of fpdf2, in PDF points with the origin at the top-left.

fpdf2 already uses a top-left origin with y growing downward, which is also YouSign's
convention for signature fields, so coordinates drawn here are reported unchanged.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from datetime import datetime

from fpdf import FPDF

from documents.fonts import Face
from documents.text_lines import Line, Run, ink_width, merged, text_width, wrap

BODY_SIZE = 9.5
LINE_H = 13.0  # points, for BODY_SIZE
MARGIN_X = 56.0
MARGIN_TOP = 52.0
MARGIN_BOTTOM = 56.0
GREY_FILL = (232, 236, 241)
INK = (20, 24, 31)
MUTED = (90, 96, 106)


class MandateCanvas(FPDF):
    """An A4 page set-up with the few text blocks the mandate needs."""

    def __init__(
        self, *, face: Face, file_id: str, created: datetime, footer_text: str, total_pages: int | None
    ) -> None:
        super().__init__(orientation="P", unit="pt", format="A4")
        self.face = face
        for style, path in face.files().items():
            self.add_font(face.family, style, path)
        self._fixed_file_id = file_id
        self._footer_text = footer_text
        self._total_pages = total_pages
        self.set_margins(MARGIN_X, MARGIN_TOP, MARGIN_X)
        self.set_auto_page_break(True, MARGIN_BOTTOM)
        # No "{nb}" alias (a name containing "{nb}" must print as typed): the page total
        # comes from a first rendering pass instead.
        self.str_alias_nb_pages = ""
        self.set_creation_date(created)
        self.set_lang("fr-FR")
        self.set_text_color(*INK)
        self.set_draw_color(*INK)
        self.set_font(self.face.family, size=BODY_SIZE)

    def file_id(self) -> str:
        # fpdf2's default /ID hashes the output; we pin it to the input so it is explicit and stable.
        return f"<{self._fixed_file_id}><{self._fixed_file_id}>"

    @property
    def content_width(self) -> float:
        return self.w - self.l_margin - self.r_margin

    @property
    def bottom_limit(self) -> float:
        return self.page_break_trigger

    def ensure_space(self, height: float) -> None:
        """Start a new page unless `height` points still fit above the bottom margin."""
        if self.get_y() + height > self.bottom_limit:
            self.add_page()

    def centered(self, text: str, size: float, bold: bool = False, line_h: float | None = None) -> None:
        lines = self._wrap([(text, bold)], self.content_width, size)
        self.draw_lines(
            lines, self.l_margin, self.content_width, align="C", size=size, line_h=line_h or size * 1.3
        )

    def heading(self, text: str, space_before: float = 8.0) -> None:
        # Keep a heading with at least two lines of what follows.
        self.ensure_space(space_before + LINE_H * 3)
        self.set_y(self.get_y() + space_before)
        size = BODY_SIZE + 0.5
        lines = self._wrap([(text, True)], self.content_width, size)
        self.draw_lines(lines, self.l_margin, self.content_width, size=size, line_h=LINE_H + 1)
        self.set_y(self.get_y() + 2)

    def paragraph(self, runs: list[Run], align: str = "J", space_after: float = 5.0) -> None:
        """A paragraph mixing regular and bold runs (no markdown, so names print verbatim)."""
        self.draw_lines(self._wrap(runs, self.content_width), self.l_margin, self.content_width, align=align)
        self.set_y(self.get_y() + space_after)

    def _wrap(self, runs: list[Run], width: float, size: float = BODY_SIZE) -> tuple[Line, ...]:
        """`text_lines.wrap` in this document's face."""
        return wrap([(self.face.prepare(text), bold) for text, bold in runs], width, size, self.face)

    def draw_lines(
        self,
        lines: Sequence[Line],
        x: float,
        width: float,
        *,
        align: str = "L",
        size: float = BODY_SIZE,
        line_h: float = LINE_H,
        italic: bool = False,
    ) -> None:
        """Draw wrapped lines (`text_lines.wrap`) from the current y at `x`, breaking pages between lines.

        Justified lines spread their spare width over their spaces with the PDF's word spacing
        (one text object per run of a style, not per word); the last line of a paragraph stays
        ragged, as usual.
        """
        for number, line in enumerate(lines):
            if self.get_y() + line_h > self.bottom_limit:
                self.add_page()
            top = self.get_y()
            spare = width - ink_width(line, size, self.face)
            gaps = "".join(text for text, _ in line).rstrip(" ").count(" ")
            stretch = spare / gaps if align == "J" and gaps and number < len(lines) - 1 else 0.0
            left = x + (spare / 2 if align == "C" else 0.0)
            baseline = top + line_h / 2 + 0.3 * size  # where fpdf2's cells put it
            # A core font's spaces take the PDF's word spacing; an embedded font's glyphs are
            # two-byte codes it does not apply to, so there each word is placed on its own.
            spacing = stretch and self.face.core
            if spacing:
                self._out(f"{stretch * self.k:.3f} Tw")  # applies to each space (code 32) drawn
            for text, bold in merged(line):
                style = ("B" if bold else "") + ("I" if italic and self.face.core else "")
                if (self.font_style, self.font_size_pt) != (style, size):
                    self.set_font(self.face.family, style, size)
                for piece in [text] if spacing or not stretch else re.findall(r" +|[^ ]+", text):
                    if piece.strip():
                        self.text(left, baseline, piece)
                    left += text_width(piece, bold, size, self.face) + stretch * piece.count(" ")
            if spacing:
                self._out("0 Tw")
            self.set_y(top + line_h)
        self.set_font(self.face.family, "", BODY_SIZE)

    def _lines(self, width: float, text: str, bold: bool) -> int:
        return len(self._wrap([(text, bold)], width))

    def note(self, text: str) -> None:
        """Small muted explanatory line under a form row."""
        self.set_text_color(*MUTED)
        size = BODY_SIZE - 1.5  # Helvetica-Oblique has Helvetica's widths
        lines = self._wrap([(text, False)], self.content_width, size)
        self.draw_lines(lines, self.l_margin, self.content_width, size=size, line_h=LINE_H - 2, italic=True)
        self.set_text_color(*INK)

    def block_title(self, number: int, title: str) -> None:
        """Numbered title bar of an accord formel block."""
        self.ensure_space(LINE_H * 4)
        self.set_y(self.get_y() + 6)
        size, line_h, pad_y, pad_x = BODY_SIZE + 0.5, LINE_H + 3, 1.0, 4.0
        lines = self._wrap([(f"{number}. {title}", True)], self.content_width - 2 * pad_x, size)
        top = self.get_y()
        self.set_fill_color(*GREY_FILL)
        self.rect(self.l_margin, top, self.content_width, len(lines) * line_h + 2 * pad_y, style="F")
        self.set_y(top + pad_y)
        self.draw_lines(
            lines, self.l_margin + pad_x, self.content_width - 2 * pad_x, size=size, line_h=line_h
        )
        self.set_y(self.get_y() + pad_y + 4)

    def rows_height(self, rows: list[tuple[str, str]], width: float, label_w: float) -> float:
        return (
            sum(
                max(self._lines(label_w, label, False), self._lines(width - label_w, value, True))
                for label, value in rows
            )
            * LINE_H
        )

    def key_values(
        self,
        rows: list[tuple[str, str]],
        x: float | None = None,
        width: float | None = None,
        label_w: float = 130,
    ) -> None:
        """Form rows: muted label on the left, bold value on the right; a row never splits across pages."""
        x = self.l_margin if x is None else x
        width = self.content_width if width is None else width
        for label, value in rows:
            height = self.rows_height([(label, value)], width, label_w)
            self.ensure_space(height)
            top = self.get_y()
            self.set_text_color(*MUTED)
            self.set_y(top)
            self.draw_lines(self._wrap([(label + " :", False)], label_w), x, label_w)
            self.set_text_color(*INK)
            self.set_y(top)
            value_lines = self._wrap([(value, True)], width - label_w)
            self.draw_lines(value_lines, x + label_w, width - label_w)
            self.set_y(top + height)

    def checkbox_line(self, checked: bool, label: str, detail: str) -> None:
        """A drawn tick box followed by a bold label and its explanation."""
        box, gap = 8.0, 8.0
        text_x = self.l_margin + box + gap
        width = self.content_width - box - gap
        height = self._lines(width, f"{label} : {detail}", False) * LINE_H
        self.ensure_space(height + 3)
        top = self.get_y()
        self.set_line_width(0.7)
        self.rect(self.l_margin, top + 2.5, box, box)
        if checked:
            self.line(self.l_margin + 1.5, top + 4, self.l_margin + box - 1.5, top + 2.5 + box - 1.5)
            self.line(self.l_margin + box - 1.5, top + 4, self.l_margin + 1.5, top + 2.5 + box - 1.5)
        self.set_xy(text_x, top)
        self.paragraph_at(width, [(label + " : ", True), (detail, False)])
        self.set_y(max(self.get_y(), top + height) + 3)

    def paragraph_at(self, width: float, runs: list[Run]) -> None:
        """Left-aligned mixed runs in a column starting at the current x."""
        self.draw_lines(self._wrap(runs, width), self.get_x(), width)

    def signature_box(self, x: int, y: int, width: int, height: int, label: str) -> None:
        """Label just above the box (never inside it, where the signature image will go)."""
        self.set_font(self.face.family, "B", BODY_SIZE)
        self.set_xy(x, y - LINE_H - 2)
        self.cell(width, LINE_H, self.face.prepare(label), align="C")
        self.set_line_width(1.0)
        self.set_draw_color(*INK)
        self.rect(x, y, width, height)
        self.set_font(self.face.family, "", BODY_SIZE)

    def footer(self) -> None:
        # Called by fpdf2 as each page closes; the total is known from a first rendering pass.
        self.set_draw_color(*MUTED)
        self.set_line_width(0.4)
        self.line(self.l_margin, self.h - 40, self.w - self.r_margin, self.h - 40)
        self.set_text_color(*MUTED)
        self.set_font(self.face.family, "", 7.5)
        self.set_xy(self.l_margin, self.h - 36)
        self.cell(self.content_width * 0.75, 10, self.face.prepare(self._footer_text))
        self.set_xy(self.l_margin, self.h - 36)
        total = f" / {self._total_pages}" if self._total_pages else ""
        self.cell(0, 10, f"Page {self.page_no()}{total}", align="R")
        self.set_text_color(*INK)
        self.set_draw_color(*INK)

"""Low-level drawing helpers on top of fpdf2, in PDF points with the origin at the top-left.

fpdf2 already uses a top-left origin with y growing downward, which is also YouSign's
convention for signature fields, so coordinates drawn here are reported unchanged.
"""

from __future__ import annotations

from datetime import datetime

from fpdf import FPDF
from fpdf.enums import MethodReturnValue, XPos, YPos

from documents.models import to_latin1

FONT = "Helvetica"  # core font: Latin-1 only, nothing to embed
BODY_SIZE = 9.5
LINE_H = 13.0  # points, for BODY_SIZE
MARGIN_X = 56.0
MARGIN_TOP = 52.0
MARGIN_BOTTOM = 56.0
GREY_FILL = (232, 236, 241)
INK = (20, 24, 31)
MUTED = (90, 96, 106)

Run = tuple[str, bool]


class MandateCanvas(FPDF):
    """An A4 page set-up with the few text blocks the mandate needs."""

    def __init__(self, *, file_id: str, created: datetime, footer_text: str, total_pages: int | None) -> None:
        super().__init__(orientation="P", unit="pt", format="A4")
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
        self.set_font(FONT, size=BODY_SIZE)

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
        self.set_font(FONT, "B" if bold else "", size)
        self.multi_cell(
            0, line_h or size * 1.3, to_latin1(text), align="C", new_x=XPos.LMARGIN, new_y=YPos.NEXT
        )
        self.set_font(FONT, "", BODY_SIZE)

    def heading(self, text: str, space_before: float = 8.0) -> None:
        # Keep a heading with at least two lines of what follows.
        self.ensure_space(space_before + LINE_H * 3)
        self.set_y(self.get_y() + space_before)
        self.set_font(FONT, "B", BODY_SIZE + 0.5)
        self.multi_cell(0, LINE_H + 1, to_latin1(text), new_x=XPos.LMARGIN, new_y=YPos.NEXT)
        self.set_font(FONT, "", BODY_SIZE)
        self.set_y(self.get_y() + 2)

    def paragraph(self, runs: list[Run], align: str = "J", space_after: float = 5.0) -> None:
        """A justified paragraph mixing regular and bold runs (no markdown, so names print verbatim)."""
        with self.text_columns(text_align=align, line_height=LINE_H / BODY_SIZE) as columns:
            with columns.paragraph() as para:
                for text, bold in runs:
                    self.set_font(FONT, "B" if bold else "", BODY_SIZE)
                    para.write(to_latin1(text))
        self.set_font(FONT, "", BODY_SIZE)
        self.set_y(self.get_y() + space_after)

    def note(self, text: str) -> None:
        """Small muted explanatory line under a form row."""
        self.set_text_color(*MUTED)
        self.set_font(FONT, "I", BODY_SIZE - 1.5)
        self.multi_cell(0, LINE_H - 2, to_latin1(text), new_x=XPos.LMARGIN, new_y=YPos.NEXT)
        self.set_text_color(*INK)
        self.set_font(FONT, "", BODY_SIZE)

    def block_title(self, number: int, title: str) -> None:
        """Numbered title bar of an accord formel block."""
        self.ensure_space(LINE_H * 4)
        self.set_y(self.get_y() + 6)
        self.set_fill_color(*GREY_FILL)
        self.set_font(FONT, "B", BODY_SIZE + 0.5)
        self.multi_cell(
            0,
            LINE_H + 3,
            to_latin1(f"{number}. {title}"),
            fill=True,
            padding=(1, 4),
            new_x=XPos.LMARGIN,
            new_y=YPos.NEXT,
        )
        self.set_font(FONT, "", BODY_SIZE)
        self.set_y(self.get_y() + 4)

    def _lines(self, width: float, text: str, bold: bool) -> int:
        self.set_font(FONT, "B" if bold else "", BODY_SIZE)
        lines = self.multi_cell(width, LINE_H, to_latin1(text), dry_run=True, output=MethodReturnValue.LINES)
        return max(1, len(lines))

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
            self.set_font(FONT, "", BODY_SIZE)
            self.set_xy(x, top)
            self.multi_cell(label_w, LINE_H, to_latin1(label + " :"), align="L")
            self.set_text_color(*INK)
            self.set_font(FONT, "B", BODY_SIZE)
            self.set_xy(x + label_w, top)
            self.multi_cell(width - label_w, LINE_H, to_latin1(value), align="L")
            self.set_font(FONT, "", BODY_SIZE)
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
        left = self.get_x()
        with self.text_columns(
            text_align="L", line_height=LINE_H / BODY_SIZE, l_margin=left, r_margin=self.w - left - width
        ) as columns:
            with columns.paragraph() as para:
                for text, bold in runs:
                    self.set_font(FONT, "B" if bold else "", BODY_SIZE)
                    para.write(to_latin1(text))
        self.set_font(FONT, "", BODY_SIZE)

    def signature_box(self, x: int, y: int, width: int, height: int, label: str) -> None:
        """Label just above the box (never inside it, where the signature image will go)."""
        self.set_font(FONT, "B", BODY_SIZE)
        self.set_xy(x, y - LINE_H - 2)
        self.cell(width, LINE_H, to_latin1(label), align="C")
        self.set_line_width(1.0)
        self.set_draw_color(*INK)
        self.rect(x, y, width, height)
        self.set_font(FONT, "", BODY_SIZE)

    def footer(self) -> None:
        # Called by fpdf2 as each page closes; the total is known from a first rendering pass.
        self.set_draw_color(*MUTED)
        self.set_line_width(0.4)
        self.line(self.l_margin, self.h - 40, self.w - self.r_margin, self.h - 40)
        self.set_text_color(*MUTED)
        self.set_font(FONT, "", 7.5)
        self.set_xy(self.l_margin, self.h - 36)
        self.cell(self.content_width * 0.75, 10, to_latin1(self._footer_text))
        self.set_xy(self.l_margin, self.h - 36)
        total = f" / {self._total_pages}" if self._total_pages else ""
        self.cell(0, 10, f"Page {self.page_no()}{total}", align="R")
        self.set_text_color(*INK)
        self.set_draw_color(*INK)

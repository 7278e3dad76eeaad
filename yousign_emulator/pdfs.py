"""PDF work: page geometry of uploads, the "signed" copy (stamps + certificate page), audit trails."""

from __future__ import annotations

import io
from dataclasses import dataclass
from datetime import datetime

import font_roboto
from fpdf import FPDF
from pypdf import PdfReader, PdfWriter

A4 = (595.28, 841.89)


def _use_font(pdf: FPDF, text: str, size: float, style: str = "") -> str:
    """Set a font that draws `text` (YouSign prints any signer's name) and return it to draw:
    Helvetica for Windows-1252, else Roboto (fpdf2 leaves out a glyph Roboto lacks, no error)."""
    try:
        text.encode("cp1252")
    except UnicodeEncodeError:
        if "roboto" not in pdf.fonts:
            pdf.add_font("Roboto", "", font_roboto.Roboto)
            pdf.add_font("Roboto", "B", font_roboto.RobotoBold)
        pdf.set_font("Roboto", style, size)
        return text
    pdf.set_font("Helvetica", style, size)
    return text.encode("cp1252").decode("latin-1")


def page_sizes(content: bytes) -> list[tuple[float, float]]:
    """Width/height (pt) of every page; ValueError when the bytes are not a readable, unlocked PDF."""
    try:
        reader = PdfReader(io.BytesIO(content))
        if reader.is_encrypted:
            raise ValueError("password-protected PDF")
        sizes = [(float(p.mediabox.width), float(p.mediabox.height)) for p in reader.pages]
    except ValueError:
        raise
    except Exception as exc:  # pypdf raises many exception types on garbage input
        raise ValueError(f"unreadable PDF: {exc}") from exc
    if not sizes:
        raise ValueError("PDF without pages")
    return sizes


@dataclass
class Stamp:
    """A signature drawn at a field position (YouSign coordinates: origin top-left, y downwards, in pt)."""

    page: int
    x: float
    y: float
    width: float
    height: float
    text: str
    framed: bool = True  # a signature is framed; a mention is plain text


def _overlay(size: tuple[float, float], stamps: list[Stamp]) -> PdfReader:
    pdf = FPDF(unit="pt", format=size)
    pdf.set_auto_page_break(False)
    pdf.add_page()
    pdf.set_draw_color(20, 60, 160)
    pdf.set_text_color(20, 60, 160)
    for stamp in stamps:
        if stamp.framed:
            pdf.rect(stamp.x, stamp.y, stamp.width, stamp.height)
        # A mention's text fills its line (line height 1.5, as YouSign's height rule says).
        size = max(5.0, min(9.0, stamp.height / 4)) if stamp.framed else min(12.0, stamp.height / 1.5)
        text = _use_font(pdf, stamp.text, size)
        pdf.set_xy(stamp.x + 2, stamp.y + 2)
        pdf.multi_cell(stamp.width - 4, max(6.0, min(10.0, stamp.height / 4)), text)
    return PdfReader(io.BytesIO(bytes(pdf.output())))


def signed_pdf(original: bytes, stamps: list[Stamp], certificate: list[str]) -> bytes:
    """Original pages with the signature stamps drawn on them, plus one certificate page at the end."""
    writer = PdfWriter(clone_from=PdfReader(io.BytesIO(original)))
    for number, page in enumerate(writer.pages, start=1):
        on_page = [s for s in stamps if s.page == number]
        if on_page:
            box = page.mediabox
            overlay = _overlay((float(box.width), float(box.height)), on_page).pages[0]
            page.merge_translated_page(overlay, float(box.left), float(box.bottom))
    for page in PdfReader(io.BytesIO(text_pdf("Certificat de signature électronique", certificate))).pages:
        writer.add_page(page)
    out = io.BytesIO()
    writer.write(out)
    return out.getvalue()


def text_pdf(title: str, lines: list[str]) -> bytes:
    """A plain A4 document: a title and one paragraph per line (used for certificates and audit trails)."""
    pdf = FPDF(unit="pt", format="A4")
    pdf.set_margins(50, 50, 50)
    pdf.add_page()
    pdf.multi_cell(0, 20, _use_font(pdf, title, 15, "B"), new_x="LMARGIN", new_y="NEXT")
    pdf.ln(8)
    for line in lines:
        pdf.multi_cell(0, 14, _use_font(pdf, line, 10), new_x="LMARGIN", new_y="NEXT")
    return bytes(pdf.output())


def sample_pdf(pages: int = 1, title: str = "Mandat de facturation électronique") -> bytes:
    """A small A4 PDF for demos and tests of code that talks to the emulator."""
    pdf = FPDF(unit="pt", format="A4")
    for number in range(1, pages + 1):
        pdf.add_page()
        pdf.text(60, 80, _use_font(pdf, f"{title} - page {number}/{pages}", 14))
    return bytes(pdf.output())


def audit_trail_pdf(title: str, header: list[str], events: list[tuple[datetime, str]]) -> bytes:
    lines = [*header, "", "Événements :"]
    lines += [f"{at.strftime('%Y-%m-%d %H:%M:%S UTC')}  {text}" for at, text in events]
    return text_pdf(title, lines)

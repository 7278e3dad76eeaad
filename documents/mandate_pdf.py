"""Render the client's signable mandate: delegation mandate (part A) + DGFiP accord formel (part B).

Pure function of its input: the creation date comes from `issued_on` and the file /ID from a
hash of the input, so the same data always gives the same bytes.
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Iterator
from datetime import UTC, datetime, time

from documents import mandate_text as txt
from documents.fonts import Face, face_for
from documents.layout import LINE_H, MandateCanvas
from documents.models import FieldBox, MandateDocumentData, RenderedMandate, SignatureField

SIGNATURE_W = 200
SIGNATURE_H = 80
# Left blank under the box: the signature date goes there (YouSign's minimum mention height is 24).
DATE_LINE_GAP, DATE_LINE_H = 4, 24
COLUMN_GAP = 24
USUAL_PAGES = 2


def render_mandate_pdf(data: MandateDocumentData) -> RenderedMandate:
    """Build the PDF and report where the signer's signature field must be placed."""
    # Footers say "Page n / total": render for the usual page count, and again only when the
    # document came out longer (rendering is most of a mandate's CPU in bulk sends).
    face = face_of(data)
    pdf, field = _build(data, face, total_pages=USUAL_PAGES)
    if pdf.pages_count != USUAL_PAGES:
        pdf, field = _build(data, face, total_pages=pdf.pages_count)
    return RenderedMandate(pdf=bytes(pdf.output()), page_count=pdf.pages_count, signature_field=field)


def _build(
    data: MandateDocumentData, face: Face, total_pages: int | None
) -> tuple[MandateCanvas, SignatureField]:
    pdf = MandateCanvas(
        face=face,
        file_id=_file_id(data),
        created=datetime.combine(data.issued_on, time(), UTC),
        footer_text=f"Mandat n° {data.mandate_number} - SIREN {data.client.siren}",
        total_pages=total_pages,
    )
    _set_metadata(pdf, data)
    pdf.add_page()
    _delegation_mandate(pdf, data)
    # The accord formel starts on its own page: the PA may need to file it on its own.
    pdf.add_page()
    _accord_formel(pdf, data)
    field = _signature_block(pdf, data)
    return pdf, field


def face_of(data: MandateDocumentData) -> Face:
    """Helvetica when it prints every name of the mandate, else Roboto (embedded: ~18x slower)."""
    # The e-mail addresses are data, not print: an internationalised one must not change the face.
    unprinted = {"client_representative": {"email"}, "firm_representative": {"email"}}
    return face_for(_texts(data.model_dump(exclude=unprinted)))


def _texts(value: object) -> Iterator[str]:
    """Every string in the mandate's data (names, addresses...): what decides its typeface."""
    if isinstance(value, str):
        yield value
    elif isinstance(value, dict):
        for item in value.values():
            yield from _texts(item)
    elif isinstance(value, list):
        for item in value:
            yield from _texts(item)


def _file_id(data: MandateDocumentData) -> str:
    return hashlib.sha256(data.model_dump_json().encode()).hexdigest()[:32].upper()


def _set_metadata(pdf: MandateCanvas, data: MandateDocumentData) -> None:
    title = "Mandat de délégation et accord formel de désignation de la plateforme agréée"
    pdf.set_title(f"{title} - {data.mandate_number}")
    client = f"{data.client.name} (SIREN {data.client.siren})"
    pdf.set_subject(f"Désignation de la plateforme agréée {data.platform.name} pour {client}")
    pdf.set_author(data.firm.name)
    pdf.set_creator("einvoicing-mandates")
    pdf.set_keywords(f"mandat; accord formel; facturation électronique; {data.mandate_number}")


def _delegation_mandate(pdf: MandateCanvas, data: MandateDocumentData) -> None:
    pdf.centered(txt.DELEGATION_TITLE, 16, bold=True)
    pdf.centered(txt.DELEGATION_SUBTITLE, 10, line_h=13)
    pdf.set_y(pdf.get_y() + 4)
    pdf.centered(f"Mandat n° {data.mandate_number}", 9.5, bold=True)
    _rule(pdf)
    pdf.heading("ENTRE LES SOUSSIGNÉS :", space_before=2)
    for runs in txt.parties(data):
        pdf.paragraph(runs)
    pdf.heading("IL A ÉTÉ CONVENU CE QUI SUIT :", space_before=2)
    for article in txt.delegation_articles(data):
        pdf.heading(article.title, space_before=4)
        pdf.paragraph(article.runs)


def _accord_formel(pdf: MandateCanvas, data: MandateDocumentData) -> None:
    pdf.centered(txt.ACCORD_TITLE, 12, bold=True, line_h=15)
    pdf.centered(txt.ACCORD_SUBTITLE, 9, line_h=12)
    _rule(pdf)
    titles = txt.BLOCK_TITLES
    pdf.block_title(1, titles[0])
    pdf.key_values([("Raison sociale", data.client.name), ("SIREN", data.client.siren)])
    pdf.block_title(2, titles[1])
    pdf.key_values(txt.platform_rows(data.platform))
    pdf.block_title(3, titles[2])
    effective = (
        txt.fr_date(data.effective_from) if data.effective_from else f"{txt.SIGNATURE_DATE} (bloc\u00a07)"
    )
    pdf.key_values([("Date de prise d'effet", effective)])
    pdf.block_title(4, titles[3])
    for checked, label, detail in txt.scope_lines(data.client.siren, data.address_scope):
        pdf.checkbox_line(checked, label, detail)
    pdf.block_title(5, titles[4])
    if data.previous_platform is None:
        pdf.key_values([("Plateforme précédente", "Aucune")])
    else:
        pdf.key_values(txt.platform_rows(data.previous_platform))
    pdf.block_title(6, titles[5])
    pdf.key_values([("Numéro du mandat", data.mandate_number)])
    pdf.note(txt.MANDATE_NUMBER_FORMAT)
    pdf.set_y(pdf.get_y() + 8)
    pdf.paragraph([(txt.ACCORD_CONSENT, False)])


def _signature_block(pdf: MandateCanvas, data: MandateDocumentData) -> SignatureField:
    """Block 7: signatory details on the left, signature box on the right, kept on one page."""
    rows = txt.signatory_rows(data)
    box_x = int(pdf.w - pdf.r_margin - SIGNATURE_W)
    left_w = box_x - COLUMN_GAP - pdf.l_margin
    label_w = 95
    body_h = max(
        pdf.rows_height(rows, left_w, label_w), LINE_H + 2 + SIGNATURE_H + DATE_LINE_GAP + DATE_LINE_H
    )
    # Block title (~4 lines reserved by block_title) plus the body must share the last page.
    pdf.ensure_space(LINE_H * 4 + body_h + 8)
    pdf.block_title(7, txt.BLOCK_TITLES[6])
    top = pdf.get_y()
    box_y = math.ceil(top + LINE_H + 2)
    pdf.signature_box(box_x, box_y, SIGNATURE_W, SIGNATURE_H, txt.SIGNATURE_LABEL)
    page = pdf.page
    pdf.set_y(top)
    pdf.key_values(rows, x=pdf.l_margin, width=left_w, label_w=label_w)
    if pdf.page != page:  # the field must sit on the last page; the space check above guarantees it
        raise RuntimeError("signature block overflowed its page")
    field = SignatureField(page=page, x=box_x, y=box_y, width=SIGNATURE_W, height=SIGNATURE_H)
    date_line = date_line_under(field)
    pdf.set_y(max(pdf.get_y(), date_line.y + date_line.height))
    return field


def date_line_under(field: SignatureField) -> FieldBox:
    """Where the signature date is written when the client signs: the blank line under the box."""
    return FieldBox(
        page=field.page,
        x=field.x,
        y=field.y + field.height + DATE_LINE_GAP,
        width=field.width,
        height=DATE_LINE_H,
    )


def _rule(pdf: MandateCanvas) -> None:
    y = pdf.get_y() + 6
    pdf.set_line_width(0.6)
    pdf.line(pdf.l_margin, y, pdf.w - pdf.r_margin, y)
    pdf.set_y(y + 8)

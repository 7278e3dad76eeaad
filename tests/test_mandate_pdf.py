"""Mandate PDF: content, determinism and signature-field geometry, read back with pypdf."""

from __future__ import annotations

import hashlib
import io
import os
import re
import subprocess
import sys
from dataclasses import dataclass
from datetime import date
from typing import Any

import font_roboto
import pytest
from fpdf import FPDF
from pydantic import ValidationError
from pypdf import PdfReader
from pypdf.generic import ContentStream

from documents.fonts import HELVETICA
from documents.layout import MARGIN_X
from documents.mandate_pdf import date_line_under, face_of, render_mandate_pdf
from documents.mandate_text import BLOCK_TITLES
from documents.models import (
    AddressScope,
    CompanyParty,
    MandateDocumentData,
    Person,
    PlatformParty,
    RenderedMandate,
)

NUMBER = "732829320_987654325_20261204_01"


def make_data(**overrides: Any) -> MandateDocumentData:
    values: dict[str, Any] = {
        "mandate_number": NUMBER,
        "issued_on": date(2026, 12, 4),
        "effective_from": date(2027, 1, 1),
        "client": CompanyParty(
            name="Boulangerie Dupré & Fils",
            siren="732829320",
            siret="73282932000074",
            address="12 rue de la Paix, 75002 Paris",
        ),
        "client_representative": Person(
            first_name="Hélène", last_name="Dupré", birth_name="Lefèvre", email="helene@example.fr"
        ),
        "firm": CompanyParty(name="Cabinet Martin Expertise", siren="552081317"),
        "firm_representative": Person(first_name="Paul", last_name="Martin", email="paul@cabinet.fr"),
        "platform": PlatformParty(name="PA Exemple SAS", siren="987654325", matricule="0042"),
        "place": "Paris",
    }
    values.update(overrides)
    return MandateDocumentData(**values)


def flat_text(rendered: RenderedMandate) -> str:
    reader = PdfReader(io.BytesIO(rendered.pdf))
    return " ".join(" ".join(page.extract_text() or "" for page in reader.pages).split())


def strokes(rendered: RenderedMandate) -> int:
    """Straight strokes drawn on the pages (`x y m x y l S`): rules, and the crosses of ticked boxes."""
    content = b"".join(page.get_contents().get_data() for page in PdfReader(io.BytesIO(rendered.pdf)).pages)
    return len(re.findall(rb"m [-\d.]+ [-\d.]+ l S", content))


def between(text: str, start: str, end: str) -> str:
    return text[text.index(start) : text.index(end, text.index(start))]


@dataclass(frozen=True)
class TextBox:
    text: str
    left: float
    top: float
    right: float
    bottom: float


def measuring_fpdf() -> FPDF:
    """fpdf2 measuring text in the mandate's two faces (independently of our own width tables)."""
    meter = FPDF(unit="pt")
    meter.add_font("Roboto", "", font_roboto.Roboto)
    meter.add_font("Roboto", "B", font_roboto.RobotoBold)
    return meter


def text_boxes(rendered: RenderedMandate, page_index: int) -> list[TextBox]:
    """Approximate boxes (top-left origin) of each text run, widths measured with the same core font."""
    page = PdfReader(io.BytesIO(rendered.pdf)).pages[page_index]
    height = float(page.mediabox.height)
    meter = measuring_fpdf()
    boxes: list[TextBox] = []

    def visit(text: str, cm: list[float], tm: list[float], font: Any, size: float) -> None:
        if not text.strip() or font is None:
            return
        x = tm[4] * cm[0] + tm[5] * cm[2] + cm[4]
        y = tm[4] * cm[1] + tm[5] * cm[3] + cm[5]
        name = str(font.get("/BaseFont"))
        meter.set_font("Roboto" if "Roboto" in name else "Helvetica", "B" if "Bold" in name else "", size)
        width = meter.get_string_width(text)
        # Ascender above the baseline, descender below it.
        boxes.append(TextBox(text, x, height - y - size, x + width, height - y + size * 0.25))

    page.extract_text(visitor_text=visit)
    return boxes


@pytest.fixture(scope="module")
def rendered() -> RenderedMandate:
    return render_mandate_pdf(make_data())


@pytest.fixture(scope="module")
def text(rendered: RenderedMandate) -> str:
    return flat_text(rendered)


@pytest.mark.parametrize(
    "expected",
    [
        "MANDAT DE DÉLÉGATION",
        "ACCORD FORMEL DE DÉSIGNATION DE LA PLATEFORME DE RÉCEPTION DES FACTURES",
        "MISE À JOUR DES ADRESSES DE FACTURATION ÉLECTRONIQUE DE RÉCEPTION DE FACTURES",
        "Boulangerie Dupré & Fils",
        "entreprise identifiée sous le numéro SIREN 732829320",
        "SIRET 73282932000074",
        "12 rue de la Paix, 75002 Paris",
        "représentée par Hélène Dupré (nom de naissance : Lefèvre), en sa qualité de représentant légal",
        "Cabinet Martin Expertise",
        "SIREN 552081317",
        "représentée par Paul Martin",
        "PA Exemple SAS (SIREN 987654325, matricule 0042)",
        "Mandat n° 732829320_987654325_20261204_01",
        "prend effet le 01/01/2027",
        "Date de prise d'effet : 01/01/2027",
        "durée indéterminée",
        "révoquer le présent mandat à tout moment",
        "article 2004 du Code civil",
        "notification écrite adressée au Cabinet",
        "strictement limité à l'objet défini à l'article 1",
        "aucune clause commerciale",
        "annuaire central de la facturation électronique",
        "mise à jour de ses adresses de réception",
        "articles 1366 et 1367 du Code civil",
        "conserve l'exemplaire signé",
        # Revoking the firm's mandate is not undoing the designation; who sees the names; what signing does.
        "sans retirer par elle-même la désignation inscrite dans l'annuaire",
        "l'accès à ces données et leur rectification se demandent au Cabinet",
        "le représentant légal de l'entreprise désigne la plateforme agréée du bloc 2",
        "Adresse principale : 732829320",
        "732829320_XXX (format SIREN_SUFFIXE",
        "732829320_XXX (format SIREN_SIRET ; XXX : tous les SIRET existants et futurs)",
        "732829320_SIRET_XXX (format SIREN_SIRET_CODEROUTAGE",
        "tous les codes routage existants et futurs",
        "Prénom : Hélène",
        "Nom : Dupré",
        "Nom de naissance : Lefèvre",
        "Qualité : Représentant légal",
        "Fait à : Paris",
        "04/12/2026",
        "Signature du représentant légal",
        "Page 1 / 2",
        "Page 2 / 2",
    ],
)
def test_text_carries_required_content(text: str, expected: str) -> None:
    assert expected in text


def test_seven_numbered_blocks_in_order(text: str) -> None:
    positions = [text.index(f"{number}. {title}") for number, title in enumerate(BLOCK_TITLES, start=1)]
    assert positions == sorted(positions)
    assert "Raison sociale : Boulangerie Dupré & Fils SIREN : 732829320" in between(
        text, "1. ", "2. Plateforme"
    )
    block2 = between(text, "2. Plateforme agréée désignée", "3. Date")
    assert "PA Exemple SAS" in block2 and "987654325" in block2 and "0042" in block2
    assert "Aucune" in between(text, "5. Plateforme agréée précédemment", "6. Numéro")
    assert NUMBER in between(text, "6. Numéro du mandat", "7. Signature")


def test_same_input_gives_identical_bytes_and_fixed_metadata(rendered: RenderedMandate) -> None:
    assert render_mandate_pdf(make_data()).pdf == rendered.pdf
    reader = PdfReader(io.BytesIO(rendered.pdf))
    meta = reader.metadata
    assert meta is not None
    assert meta["/CreationDate"] == "D:20261204000000Z"
    assert NUMBER in (meta.title or "") and "Mandat de délégation" in (meta.title or "")
    assert meta.author == "Cabinet Martin Expertise"
    assert "732829320" in (meta.subject or "")
    other = render_mandate_pdf(make_data(issued_on=date(2026, 12, 5)))
    assert other.pdf != rendered.pdf
    assert b"/ID [<" in rendered.pdf


def test_identical_bytes_in_a_fresh_interpreter_with_another_hash_seed(rendered: RenderedMandate) -> None:
    # Guards against output depending on set/dict iteration order or process state.
    script = (
        "import hashlib, sys; sys.path.insert(0, 'tests'); import test_mandate_pdf as t; "
        "print(hashlib.sha256(t.render_mandate_pdf(t.make_data()).pdf).hexdigest())"
    )
    env = {**os.environ, "PYTHONHASHSEED": "12345"}
    out = subprocess.run([sys.executable, "-c", script], env=env, capture_output=True, text=True, check=True)
    assert out.stdout.strip() == hashlib.sha256(rendered.pdf).hexdigest()


def test_signature_field_on_last_page_within_bounds(rendered: RenderedMandate) -> None:
    field = rendered.signature_field
    page = PdfReader(io.BytesIO(rendered.pdf)).pages[-1]
    width, height = float(page.mediabox.width), float(page.mediabox.height)
    assert rendered.page_count == 2
    assert field.page == rendered.page_count
    assert 85 <= field.width <= 2000 and 37 <= field.height <= 1000
    assert 0 <= field.x and field.x + field.width <= width
    assert 0 <= field.y and field.y + field.height <= height


def test_long_production_names_still_fit_two_pages() -> None:
    # What a send prints (no client address, no fixed date or duration), every name long: the
    # mandate on page 1, the accord formel on page 2.
    long = make_data(
        effective_from=None,
        place=None,
        client=CompanyParty(
            name="Société Coopérative Agricole des Producteurs de Lait de la Vallée de la Dordogne",
            siren="732829320",
            siret="73282932000074",
        ),
        client_representative=Person(
            first_name="Marie-Françoise",
            last_name="de La Rochefoucauld-Montmorency",
            birth_name="Duchêne-Villeneuve",
            email="marie-francoise@cooperative-dordogne.fr",
        ),
        firm=CompanyParty(
            name="Cabinet Martin Expertise Comptable et Associés",
            siren="552081317",
            address="145 avenue des Champs-Élysées, Bâtiment B, 75008 Paris",
        ),
        platform=PlatformParty(
            name="Plateforme Agréée Exemple Services Numériques SAS", siren="987654325", matricule="0042"
        ),
        previous_platform=PlatformParty(
            name="Ancienne Plateforme de Dématérialisation SAS", siren="356000000", matricule="0815"
        ),
    )
    assert render_mandate_pdf(long).page_count == 2


def test_signature_box_drawn_exactly_at_the_field(rendered: RenderedMandate) -> None:
    reader = PdfReader(io.BytesIO(rendered.pdf))
    page = reader.pages[rendered.signature_field.page - 1]
    height = float(page.mediabox.height)
    rects = []
    for operands, operator in ContentStream(page.get_contents(), reader).operations:
        if operator == b"re":
            x, y, w, h = (float(value) for value in operands)
            top = height - max(y, y + h)  # back to a top-left origin
            rects.append((round(x), round(top), round(abs(w)), round(abs(h))))
    field = rendered.signature_field
    assert (field.x, field.y, field.width, field.height) in rects


def line_ends(rendered: RenderedMandate, page_index: int) -> dict[float, tuple[float, float]]:
    """Per baseline: where its last run's ink ends, and the word spacing it was drawn with."""
    reader = PdfReader(io.BytesIO(rendered.pdf))
    page = reader.pages[page_index]
    meter = FPDF(unit="pt")
    fonts = {name: str(font.get_object()["/BaseFont"]) for name, font in page["/Resources"]["/Font"].items()}
    word_spacing, font, size, x, y = 0.0, "", 0.0, 0.0, 0.0
    ends: dict[float, tuple[float, float]] = {}
    for operands, operator in ContentStream(page.get_contents(), reader).operations:
        if operator == b"Tw":
            word_spacing = float(operands[0])
        elif operator == b"Tf":
            font, size = fonts[operands[0]], float(operands[1])
        elif operator == b"Td":
            x, y = float(operands[0]), float(operands[1])
        elif operator == b"Tj":
            # The string's own bytes (WinAnsi, as Helvetica is set): pypdf would read a no-break space
            # in PDFDocEncoding, as a euro sign.
            ink = operands[0].get_original_bytes().decode("cp1252").rstrip(" ")
            meter.set_font("Helvetica", "B" if "Bold" in font else "", size)
            ends[y] = (x + meter.get_string_width(ink) + word_spacing * ink.count(" "), word_spacing)
    return ends


def test_justified_lines_end_exactly_at_the_right_margin(rendered: RenderedMandate) -> None:
    right_margin = float(PdfReader(io.BytesIO(rendered.pdf)).pages[0].mediabox.width) - MARGIN_X
    ends = line_ends(rendered, 0).values()
    justified = [end for end, spacing in ends if spacing > 0]
    assert len(justified) >= 15  # the articles' lines, drawn with word spacing
    assert all(end == pytest.approx(right_margin, abs=0.05) for end in justified)
    assert all(end <= right_margin + 0.05 for end, _ in ends)


def assert_no_text_inside_field(rendered: RenderedMandate) -> None:
    """Nothing printed where YouSign draws the signature, nor on the line where it writes its date."""
    field = rendered.signature_field
    boxes = text_boxes(rendered, field.page - 1)
    assert any(box.text.strip() == "Signature du représentant légal" for box in boxes)
    for name, area in (("signature field", field), ("date line", date_line_under(field))):
        for box in boxes:
            overlaps = (
                box.left < area.x + area.width
                and box.right > area.x
                and box.top < area.y + area.height
                and box.bottom > area.y
            )
            assert not overlaps, f"text {box.text!r} overlaps the {name}"


def test_signature_field_does_not_overlap_text(rendered: RenderedMandate) -> None:
    assert_no_text_inside_field(rendered)
    label = next(b for b in text_boxes(rendered, -1) if b.text.strip() == "Signature du représentant légal")
    assert 0 <= rendered.signature_field.y - label.bottom < 12  # label sits right above the box
    # The check is meaningful: signatory rows share the field's vertical band, to its left.
    field = rendered.signature_field
    beside = [b for b in text_boxes(rendered, -1) if b.top < field.y + field.height and b.bottom > field.y]
    assert any("Représentant légal" in b.text and b.right < field.x for b in beside)


def test_without_an_effective_date_the_mandate_takes_effect_when_signed() -> None:
    rendered = render_mandate_pdf(make_data(effective_from=None))
    text = flat_text(rendered)
    assert "Le présent mandat prend effet à la date de sa signature électronique (bloc 7)" in text
    assert "Date de prise d'effet : Date de la signature électronique (bloc 7)" in text
    assert "inscrite sous la signature" in text
    line = date_line_under(rendered.signature_field)
    page_height = float(PdfReader(io.BytesIO(rendered.pdf)).pages[line.page - 1].mediabox.height)
    assert line.y + line.height <= page_height - 40  # on the page, above the footer
    assert_no_text_inside_field(rendered)


def test_previous_platform_in_block_5() -> None:
    previous = PlatformParty(name="Ancienne Plateforme SA", matricule="0815")
    text = flat_text(render_mandate_pdf(make_data(previous_platform=previous)))
    block5 = between(text, "5. Plateforme agréée précédemment", "6. Numéro")
    assert "Ancienne Plateforme SA" in block5
    assert "0815" in block5 and "Non renseigné" in block5  # no SIREN given for it
    assert "Aucune" not in block5


def test_fixed_duration_and_matricule_only_platform() -> None:
    data = make_data(duration_months=12, platform=PlatformParty(name="PA Sans Siren", matricule="0007"))
    text = flat_text(render_mandate_pdf(data))
    assert "durée de 12 mois" in text and "prend fin de plein droit" in text
    assert "PA Sans Siren (matricule 0007)" in text
    assert "SIREN : Non renseigné Matricule : 0007" in between(text, "2. Plateforme", "3. Date")


def test_the_signatory_position_is_printed_with_their_capacity() -> None:
    rep = Person(first_name="Hélène", last_name="Dupré", email="h@acme.fr", position="Présidente")
    text = flat_text(render_mandate_pdf(make_data(client_representative=rep)))
    assert "représentée par Hélène Dupré, en sa qualité de représentant légal (Présidente)" in text
    assert "Qualité : Représentant légal (Présidente)" in text.split("7. Signature")[-1]


def test_long_company_name_still_lays_out() -> None:
    long_name = "Société Coopérative Agricole " + "des Producteurs Réunis de la Vallée " * 6 + "SAS"
    client = CompanyParty(name=long_name, siren="732829320", address="Zone artisanale des Près " * 4)
    rendered = render_mandate_pdf(
        make_data(client=client, platform=PlatformParty(name="Plateforme " * 12, siren="987654325"))
    )
    assert 1 <= rendered.page_count <= 3
    assert rendered.signature_field.page == rendered.page_count
    assert "Producteurs Réunis de la Vallée SAS" in flat_text(rendered)
    assert_no_text_inside_field(rendered)


def longest(word: str) -> str:
    """A value at the model's 300-character limit."""
    return (word * 300)[:300].strip()


def test_every_field_at_max_length_keeps_signature_on_last_page() -> None:
    data = make_data(
        client=CompanyParty(name=longest("Coopérative "), siren="732829320", address=longest("Zone ")),
        client_representative=Person(
            first_name=longest("Marie-Françoise "),
            last_name=longest("Rochefoucauld-Montmorency "),
            birth_name=longest("Duchêne "),
            email="mf@example.fr",
            position=("Présidente-directrice générale " * 2)[:60],
        ),
        firm=CompanyParty(name=longest("Cabinet "), siren="552081317", address=longest("Rue ")),
        firm_representative=Person(first_name=longest("Jean "), last_name=longest("Martin "), email="j@c.fr"),
        platform=PlatformParty(name=longest("Plateforme "), siren="987654325"),
        previous_platform=PlatformParty(name=longest("Ancienne "), siren="356000000"),
        place=longest("Saint-Rémy-de-Provence "),
        mandate_number="7" * 64,
    )
    rendered = render_mandate_pdf(data)
    assert rendered.signature_field.page == rendered.page_count <= 5
    assert "Rochefoucauld-Montmorency" in flat_text(rendered)
    assert_no_text_inside_field(rendered)


def test_names_print_verbatim_with_their_typography() -> None:
    client = CompanyParty(name="L’Atelier **{nb}** __Cœur__ -- Dupont – Šimon", siren="732829320")
    text = flat_text(render_mandate_pdf(make_data(client=client)))
    assert "L’Atelier **{nb}** __Cœur__ -- Dupont – Šimon" in text


def page_fonts(rendered: RenderedMandate) -> set[str]:
    reader = PdfReader(io.BytesIO(rendered.pdf))
    return {
        str(font.get_object()["/BaseFont"]).lstrip("/").split("+")[-1]
        for page in reader.pages
        for font in page["/Resources"]["/Font"].values()
    }


def test_names_beyond_windows_1252_are_set_in_roboto_justified_as_usual() -> None:
    client = CompanyParty(name="Łódź Import – Nguyễn & Ștefan", siren="732829320")
    rep = Person(first_name="Łukasz", last_name="Nguyễn", birth_name="Ştefănescu", email="l@example.com")
    rendered = render_mandate_pdf(make_data(client=client, client_representative=rep))
    text = flat_text(rendered)
    assert "Łódź Import – Nguyễn & Ștefan" in text and "Łukasz Nguyễn" in text and "Ştefănescu" in text
    assert page_fonts(rendered) == {"Roboto", "RobotoBold"}  # embedded subsets, all of the document
    plain = page_fonts(render_mandate_pdf(make_data()))
    assert plain == {"Helvetica", "Helvetica-Bold", "Helvetica-Oblique"}  # core fonts, as before
    # E-mail addresses are not printed: an internationalised one leaves the mandate in Helvetica.
    unprinted = Person(first_name="Jean", last_name="Dupont", email="łukasz@exemple.fr")
    assert face_of(make_data(client_representative=unprinted)) is HELVETICA

    # Each word placed on its own (no word spacing with an embedded font): justified lines still
    # end at the right margin, measured by fpdf2 with the font itself.
    meter = measuring_fpdf()
    page = PdfReader(io.BytesIO(rendered.pdf)).pages[0]
    ends: dict[float, float] = {}

    def visit(piece: str, cm: list[float], tm: list[float], font: Any, size: float) -> None:
        if piece.strip() and font is not None:
            meter.set_font("Roboto", "B" if "Bold" in str(font.get("/BaseFont")) else "", size)
            y = round(tm[5], 1)
            ends[y] = max(ends.get(y, 0.0), tm[4] + meter.get_string_width(piece.strip()))

    page.extract_text(visitor_text=visit)
    right_margin = float(page.mediabox.width) - MARGIN_X
    assert len([end for end in ends.values() if end == pytest.approx(right_margin, abs=0.05)]) >= 15
    assert all(end <= right_margin + 0.05 for end in ends.values())
    assert_no_text_inside_field(rendered)


def test_partial_address_scope_is_rendered() -> None:
    scope = AddressScope(routing_code_addresses=False, functional_addresses=False)
    full = render_mandate_pdf(make_data())
    partial = render_mandate_pdf(make_data(address_scope=scope))
    assert "Adresses par code routage" in flat_text(partial)  # still listed, left unticked
    # A ticked box is a cross of two strokes: the two scopes left out take four away.
    assert strokes(full) - strokes(partial) == 4


@pytest.mark.parametrize(
    ("builder", "message"),
    [
        (lambda: Person(first_name="  ", last_name="Dupont", email="a@b.fr"), "must not be empty"),
        (lambda: CompanyParty(name="", siren="732829320"), "must not be empty"),
        (lambda: CompanyParty(name="ACME", siren="73282932"), "pattern"),
        (lambda: CompanyParty(name="ACME", siren="732829320", siret="55208131766522"), "siret must start"),
        (lambda: PlatformParty(name="PA"), "siren or a matricule"),
        (lambda: PlatformParty(name="PA", matricule="42"), "pattern"),
        (lambda: CompanyParty(name="株式会社", siren="732829320"), "PDF cannot print"),
        (
            lambda: AddressScope(
                main_address=False,
                functional_addresses=False,
                establishment_addresses=False,
                routing_code_addresses=False,
            ),
            "at least one",
        ),
        (lambda: make_data(duration_months=0), "greater than or equal to 1"),
        (lambda: CompanyParty(name="A" * 301, siren="732829320"), "at most 300"),
    ],
)
def test_models_refuse_bad_input(builder: Any, message: str) -> None:
    with pytest.raises(ValidationError, match=message):
        builder()


def test_rendered_mandate_round_trips_through_json(rendered: RenderedMandate) -> None:
    assert RenderedMandate.model_validate_json(rendered.model_dump_json()) == rendered


def test_models_are_frozen(rendered: RenderedMandate) -> None:
    data = make_data()
    with pytest.raises(ValidationError):
        data.mandate_number = "other"  # type: ignore[misc]
    with pytest.raises(ValidationError):
        rendered.signature_field.x = 0  # type: ignore[misc]

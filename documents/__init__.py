"""Signable documents: the client's mandate PDF (delegation mandate + DGFiP accord formel)."""

from documents.mandate_pdf import render_mandate_pdf
from documents.models import (
    AddressScope,
    CompanyParty,
    MandateDocumentData,
    Person,
    PlatformParty,
    RenderedMandate,
    SignatureField,
)

__all__ = [
    "AddressScope",
    "CompanyParty",
    "MandateDocumentData",
    "Person",
    "PlatformParty",
    "RenderedMandate",
    "SignatureField",
    "render_mandate_pdf",
]

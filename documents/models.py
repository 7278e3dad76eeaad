"""Input and output models of the mandate PDF renderer.

Identifier checksums (Luhn, La Poste exception) are the caller's job; these models only
refuse what would make the document unreadable or unprintable: empty names, wrongly shaped
identifiers, characters the PDF core fonts (Latin-1) cannot draw.
"""

from __future__ import annotations

from datetime import date
from typing import Annotated, Self

from pydantic import AfterValidator, BaseModel, ConfigDict, EmailStr, Field, model_validator

# The same rule as the API's: a name accepted here is one of the mandate's typefaces can print.
from domain.printable import check_printable


def _clean_text(value: str) -> str:
    # Collapse whitespace (including newlines) so a name always prints as one phrase.
    cleaned = " ".join(value.split())
    if not cleaned:
        raise ValueError("must not be empty")
    return check_printable(cleaned)


# 300 characters bound every printed value, so block 7 always fits on one page.
Text = Annotated[str, Field(max_length=300), AfterValidator(_clean_text)]
Siren = Annotated[str, Field(pattern=r"^\d{9}$")]
Siret = Annotated[str, Field(pattern=r"^\d{14}$")]
Matricule = Annotated[str, Field(pattern=r"^\d{4}$")]

_FROZEN = ConfigDict(frozen=True, extra="forbid")


class Person(BaseModel):
    """A natural person signing or representing a company."""

    model_config = _FROZEN

    first_name: Text
    last_name: Text
    birth_name: Text | None = None  # printed only when given (nom de naissance)
    # Their position (Gérant, Président...), printed with their capacity; 60 as the API allows, so
    # block 7 still fits on one page with every other value at its limit.
    position: Annotated[Text, Field(max_length=60)] | None = None
    email: EmailStr


class CompanyParty(BaseModel):
    """The client company or the accounting firm."""

    model_config = _FROZEN

    name: Text
    siren: Siren
    siret: Siret | None = None
    address: Text | None = None

    @model_validator(mode="after")
    def _siret_extends_siren(self) -> Self:
        if self.siret is not None and not self.siret.startswith(self.siren):
            raise ValueError("siret must start with the company's siren")
        return self


class PlatformParty(BaseModel):
    """A Plateforme Agréée, identified by SIREN and/or its 4-digit DGFiP matricule."""

    model_config = _FROZEN

    name: Text
    siren: Siren | None = None
    matricule: Matricule | None = None

    @model_validator(mode="after")
    def _has_identifier(self) -> Self:
        # Accord formel block 2: SIREN required if the PA has one, matricule otherwise.
        if self.siren is None and self.matricule is None:
            raise ValueError("a platform needs a siren or a matricule")
        return self


class AddressScope(BaseModel):
    """Accord formel block 4: which reception addresses the PA receives. Default: all."""

    model_config = _FROZEN

    main_address: bool = True  # SIREN
    functional_addresses: bool = True  # SIREN_SUFFIXE, all of them
    establishment_addresses: bool = True  # SIREN_SIRET, all existing and future SIRETs
    routing_code_addresses: bool = True  # SIREN_SIRET_CODEROUTAGE, all existing and future

    @model_validator(mode="after")
    def _not_empty(self) -> Self:
        if not any(self.model_dump().values()):
            raise ValueError("the address scope must include at least one kind of address")
        return self


class MandateDocumentData(BaseModel):
    """Everything printed in the mandate PDF (delegation mandate + DGFiP accord formel)."""

    model_config = _FROZEN

    mandate_number: Annotated[str, Field(pattern=r"^\S+$", max_length=64)]
    issued_on: date  # generation date; also the PDF creation date, for byte-identical output
    effective_from: date | None = None  # None: on the date of the signature
    duration_months: Annotated[int, Field(ge=1, le=1200)] | None = None  # None: indefinite
    client: CompanyParty
    client_representative: Person
    firm: CompanyParty
    firm_representative: Person
    platform: PlatformParty
    previous_platform: PlatformParty | None = None
    address_scope: AddressScope = AddressScope()
    place: Text | None = None  # "Fait à ..."


class FieldBox(BaseModel):
    """A rectangle of the page where YouSign writes something, in its convention (as SignatureField)."""

    model_config = _FROZEN

    page: Annotated[int, Field(ge=1)]
    x: Annotated[int, Field(ge=0)]
    y: Annotated[int, Field(ge=0)]
    width: Annotated[int, Field(ge=24)]
    height: Annotated[int, Field(ge=24)]


class SignatureField(BaseModel):
    """Where the signer signs, in YouSign's convention: 1-based page, PDF points, origin top-left."""

    model_config = _FROZEN

    page: Annotated[int, Field(ge=1)]
    x: Annotated[int, Field(ge=0)]
    y: Annotated[int, Field(ge=0)]
    width: Annotated[int, Field(ge=85, le=2000)]
    height: Annotated[int, Field(ge=37, le=1000)]


class RenderedMandate(BaseModel):
    """The signable PDF and where its signature field is."""

    # Base64 in JSON: PDF bytes are not UTF-8, and this model may cross a JSON boundary (Temporal).
    model_config = ConfigDict(frozen=True, extra="forbid", ser_json_bytes="base64", val_json_bytes="base64")

    pdf: bytes
    page_count: int
    signature_field: SignatureField

"""Domain values shared by the API, the store and the workflows (pydantic, validated at the edges)."""

from __future__ import annotations

import unicodedata
from typing import Annotated, Any

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    EmailStr,
    Field,
    ValidationInfo,
    field_validator,
)
from pydantic_core import PydanticCustomError

from domain.errors import RuleViolation
from domain.identifiers import normalize_siren, normalize_siret
from domain.mandate_number import platform_identifier
from domain.printable import check_printable
from domain.signer_names import check_signer_name

_NAME_PUNCTUATION = frozenset(" '-()`")


def _human_name(value: str) -> str:
    # YouSign's HumanName: letters (accents included), digits and ' ( ) - ` and spaces, trimmed.
    # Composed first: "e" + a combining accent is the letter "é", not a letter and a mark.
    cleaned = " ".join(unicodedata.normalize("NFC", value).replace("\u2019", "'").split())
    if not cleaned:
        raise ValueError("must not be empty")
    if len(cleaned) > 255:
        raise ValueError("must have at most 255 characters")
    bad = sorted({c for c in cleaned if not (c.isalnum() or c in _NAME_PUNCTUATION)})
    if bad:
        raise ValueError(f"contains characters a signature provider refuses: {''.join(bad)!r}")
    return check_printable(cleaned)


def _rule(check):
    # Turn a RuleViolation into the ValueError pydantic reports against the field being validated.
    def validate(value: str) -> str:
        try:
            return check(value)
        except RuleViolation as violation:
            raise ValueError(violation.message) from None

    return validate


HumanName = Annotated[str, AfterValidator(_human_name)]
# PostgreSQL text cannot hold NUL, and no name or reference needs control characters; a pattern
# (rather than code) so that the API's OpenAPI document states the rule too.
_NO_CONTROL_CHARACTERS = r"^[^\x00-\x1f\x7f]*$"
PlainText = Annotated[str, Field(pattern=_NO_CONTROL_CHARACTERS)]


def printed_text(max_length: int) -> Any:
    """Text the mandate prints (1 to `max_length` characters, within what its PDF can draw); the
    lengths are checked first, so that errors count characters even where the field is optional."""
    return Annotated[
        str,
        Field(min_length=1, max_length=max_length, pattern=_NO_CONTROL_CHARACTERS),
        AfterValidator(check_printable),
    ]


CompanyName = printed_text(200)  # a company's, a platform's
# A representative's position, in block 7 of the mandate: 60 characters keep that block on one page
# with every other value at its limit.
Position = printed_text(60)
Siren = Annotated[str, AfterValidator(_rule(normalize_siren))]
Siret = Annotated[str, AfterValidator(_rule(normalize_siret))]

EMAIL_MAX_LENGTH = 100


def _email_length(value: object) -> object:
    # Checked before the address is parsed, so the error counts characters (pydantic's length check
    # of an EmailStr runs after it, and speaks of "items").
    if isinstance(value, str) and len(value.strip()) > EMAIL_MAX_LENGTH:
        raise PydanticCustomError(
            "string_too_long",
            "String should have at most {max_length} characters",
            {"max_length": EMAIL_MAX_LENGTH},
        )
    return value


Email = Annotated[EmailStr, BeforeValidator(_email_length), Field(max_length=EMAIL_MAX_LENGTH)]


class LegalRepresentative(BaseModel):
    """A company's legal representative (client or firm)."""

    # A misspelt field ("birthname") is refused, not dropped: the mandate would print without it.
    model_config = ConfigDict(frozen=True, str_strip_whitespace=True, extra="forbid")

    first_name: HumanName = Field(description="First name(s), as on the identity document")
    last_name: HumanName = Field(description="Last name (usage name)")
    birth_name: HumanName | None = Field(default=None, description="Birth name, when it differs")
    email: Email = Field(description="Where YouSign sends what there is to sign (at most 100 characters)")

    @property
    def full_name(self) -> str:
        return f"{self.first_name} {self.last_name}"


# A client representative signs at YouSign, whose rule for a signer's names is narrower.
SignerName = Annotated[HumanName, AfterValidator(check_signer_name)]


class ClientRepresentative(LegalRepresentative):
    """A client company's legal representative: the mandate's signer at YouSign. The birth name,
    printed only, may have any character the mandate prints."""

    first_name: SignerName = Field(
        description="First name(s), in the letters YouSign accepts for a signer (Latin, with accents)"
    )
    last_name: SignerName = Field(description="Last name, in the letters YouSign accepts for a signer")
    # The signatory's capacity in the accord formel's block 7 ("Qualité"), next to "représentant légal".
    position: Position | None = Field(
        default=None,
        description="Their position in the company (Gérant, Président...), printed as their capacity",
    )


class Platform(BaseModel):
    """The Plateforme Agréée a firm designates for its clients (a SIREN, a 4-digit matricule, or both)."""

    model_config = ConfigDict(frozen=True, str_strip_whitespace=True)

    name: CompanyName = Field(description="The platform's name")
    siren: Siren | None = Field(default=None, description="The platform's SIREN (9 digits)")
    # Checked even when absent, so that "neither" is reported against a field the firm can fill.
    matricule: str | None = Field(
        default=None,
        pattern=r"^[0-9]{4}$",
        validate_default=True,
        description="Its 4-digit matricule in the directory (annuaire)",
    )

    @field_validator("matricule")
    @classmethod
    def _identified(cls, matricule: str | None, info: ValidationInfo) -> str | None:
        # A siren given but invalid is missing from info.data: its own error says enough.
        if matricule is None and info.data.get("siren", "invalid") is None:
            raise ValueError("a Plateforme Agréée needs a siren or a matricule")
        return matricule

    def identifier(self) -> str:
        return platform_identifier(self.siren, self.matricule)


__all__ = [
    "CompanyName",
    "HumanName",
    "LegalRepresentative",
    "PlainText",
    "Platform",
    "RuleViolation",
    "Siren",
    "Siret",
]

"""The mandate number of the DGFiP model (block 6): SIREN_<PA SIREN or matricule>_YYYYMMDD_NN."""

import re
from datetime import date, datetime

from domain.errors import RuleViolation
from domain.identifiers import normalize_siren

_MATRICULE = re.compile(r"^[0-9]{4}$")


def platform_identifier(siren: str | None, matricule: str | None) -> str:
    """The PA's SIREN when it has one, else its 4-digit matricule (as the DGFiP model asks)."""
    if siren:
        return normalize_siren(siren, "platform.siren")
    if matricule and _MATRICULE.match(matricule):
        return matricule
    if matricule:
        raise RuleViolation("platform.matricule", "matricule must have 4 digits")
    raise RuleViolation("platform", "a Plateforme Agréée needs a SIREN or a matricule")


def mandate_number(client_siren: str, platform_id: str, issued_on: date, counter: int) -> str:
    if counter < 1:
        raise RuleViolation("counter", "the mandate counter starts at 01")
    siren = normalize_siren(client_siren, "siren")
    return f"{siren}_{platform_id}_{issued_on:%Y%m%d}_{counter:02d}"


def issued_on_of(number: str) -> date:
    """The day a mandate number was issued on (its third part): the date the mandate says it was drawn up."""
    return datetime.strptime(number.split("_")[2], "%Y%m%d").date()


def platform_of(number: str) -> str:
    """The PA's SIREN or matricule a mandate number was issued for (its second part)."""
    return number.split("_")[1]


def numbered_for_another_platform(number: str, siren: str | None, matricule: str | None) -> str | None:
    """Why a mandate cannot go out now that the firm's PA is this one, or None: its number and its
    text must name the same PA (a bulk mandate is numbered hours before it is rendered)."""
    numbered_for = platform_of(number)
    if numbered_for == platform_identifier(siren, matricule):
        return None
    return (
        f"the firm's Plateforme Agréée changed after this mandate was numbered for {numbered_for}:"
        " delete it and generate a new one"
    )

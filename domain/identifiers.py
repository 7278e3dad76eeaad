"""SIREN and SIRET checks (INSEE rules, with La Poste's exception for SIRETs)."""

from domain.errors import RuleViolation

LA_POSTE_SIREN = "356000000"
# Passes Luhn as any string of zeros does, but INSEE assigns no such number: a placeholder typed in.
NO_SIREN = "000000000"


def luhn_valid(digits: str) -> bool:
    total = 0
    for position, char in enumerate(reversed(digits)):
        value = int(char)
        if position % 2 == 1:
            value *= 2
            if value > 9:
                value -= 9
        total += value
    return total % 10 == 0


def luhn_complete(prefix: str) -> str:
    """`prefix` followed by the one digit that makes it pass Luhn (how sample SIRENs and SIRETs are made)."""
    return next(prefix + d for d in "0123456789" if luhn_valid(prefix + d))


def _digits(value: str, field: str, length: int, name: str) -> str:
    # Spaces of any kind group digits ("732 829 320", or the narrow no-break space of French typography).
    cleaned = "".join(value.split())
    if not cleaned:
        raise RuleViolation(field, f"{name} is empty")
    if not cleaned.isascii() or not cleaned.isdigit():
        raise RuleViolation(field, f"{name} must contain only digits")
    if len(cleaned) != length:
        raise RuleViolation(field, f"{name} must have {length} digits, got {len(cleaned)}")
    return cleaned


def normalize_siren(value: str, field: str = "siren") -> str:
    """Return the SIREN without spaces, or raise naming the field and the reason."""
    siren = _digits(value, field, 9, "SIREN")
    if siren == NO_SIREN:
        raise RuleViolation(field, "000000000 is no company's SIREN (INSEE assigns none of zeros)")
    if not luhn_valid(siren):
        raise RuleViolation(field, "SIREN checksum (Luhn) is invalid")
    return siren


def siret_checksum_valid(siret: str) -> bool:
    # Luhn over the 14 digits, OR (La Poste, whose establishments outnumber Luhn-valid NICs)
    # a digit sum that is a multiple of 5. The head office 35600000000048 passes Luhn only.
    if luhn_valid(siret):
        return True
    return siret.startswith(LA_POSTE_SIREN) and sum(int(c) for c in siret) % 5 == 0


def normalize_siret(value: str, field: str = "siret") -> str:
    """Return the SIRET without spaces, or raise naming the field and the reason."""
    siret = _digits(value, field, 14, "SIRET")
    # The establishment's company comes first: its SIREN must be valid on its own (La Poste's is).
    if siren_of(siret) == NO_SIREN:
        raise RuleViolation(field, "the SIRET's first 9 digits are zeros: no company's SIREN")
    if not luhn_valid(siren_of(siret)):
        raise RuleViolation(field, "the SIRET's first 9 digits are not a valid SIREN (Luhn checksum)")
    if not siret_checksum_valid(siret):
        raise RuleViolation(field, "SIRET checksum is invalid")
    return siret


def siren_of(siret: str) -> str:
    return siret[:9]


def spaced_siret(siret: str) -> str:
    """As INSEE prints it, SIREN in threes then the establishment's five digits: a spreadsheet keeps
    `732 829 320 00074` as text, where 14 bare digits become 7.32829E+13."""
    return f"{siret[:3]} {siret[3:6]} {siret[6:9]} {siret[9:]}"

"""ISO 8601 durations such as P1M or PT30S, split into calendar months and a fixed delta."""

import re
from datetime import timedelta

from domain.errors import RuleViolation

_DURATION = re.compile(
    r"^P(?!$)(?:(?P<years>\d+)Y)?(?:(?P<months>\d+)M)?(?:(?P<weeks>\d+)W)?(?:(?P<days>\d+)D)?"
    r"(?:T(?=\d)(?:(?P<hours>\d+)H)?(?:(?P<minutes>\d+)M)?(?:(?P<seconds>\d+(?:\.\d+)?)S)?)?$",
    re.ASCII,  # only 0-9 are digits here: int() would accept others
)


def parse_iso_duration(value: str, field: str = "duration") -> tuple[int, timedelta]:
    """Return (months, rest): months are calendar months, applied before the rest."""
    match = _DURATION.match(value.strip().upper())
    if not match:
        raise RuleViolation(field, f"'{value}' is not an ISO 8601 duration such as P1M or PT30S")
    parts = {k: float(v) if v else 0.0 for k, v in match.groupdict().items()}
    months = int(parts["years"]) * 12 + int(parts["months"])
    delta = timedelta(
        weeks=parts["weeks"],
        days=parts["days"],
        hours=parts["hours"],
        minutes=parts["minutes"],
        seconds=parts["seconds"],
    )
    if months == 0 and delta <= timedelta(0):
        raise RuleViolation(field, "duration must be positive")
    return months, delta

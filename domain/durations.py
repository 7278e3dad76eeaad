"""ISO 8601 durations such as P1M or PT30S, split into calendar months and a fixed delta."""

import re
from datetime import timedelta

from domain.errors import RuleViolation

_DURATION = re.compile(
    r"^P(?!$)(?:(?P<years>\d+)Y)?(?:(?P<months>\d+)M)?(?:(?P<weeks>\d+)W)?(?:(?P<days>\d+)D)?"
    r"(?:T(?=\d)(?:(?P<hours>\d+)H)?(?:(?P<minutes>\d+)M)?(?:(?P<seconds>\d+(?:\.\d+)?)S)?)?$",
    re.ASCII,  # only 0-9 are digits here: int() would accept others
)


class DurationTooLong(RuleViolation):
    """Beyond what any duration setting may be (a setting with a lower limit says its own)."""


# Far beyond any setting's use, and within what dates and Temporal's timers can hold.
LONGEST_MONTHS = 1200
LONGEST_DELTA = timedelta(days=36525)


def parse_iso_duration(value: str, field: str = "duration") -> tuple[int, timedelta]:
    """Return (months, rest): months are calendar months, applied before the rest."""
    match = _DURATION.match(value.strip().upper())
    if not match:
        raise RuleViolation(field, f"'{value}' is not an ISO 8601 duration such as P1M or PT30S")
    parts = {k: float(v) if v else 0.0 for k, v in match.groupdict().items()}
    months = int(parts["years"]) * 12 + int(parts["months"])
    too_long = DurationTooLong(field, f"'{value}' is too long: at most a hundred years")
    try:
        delta = timedelta(
            weeks=parts["weeks"],
            days=parts["days"],
            hours=parts["hours"],
            minutes=parts["minutes"],
            seconds=parts["seconds"],
        )
    except OverflowError:  # beyond what a timedelta holds (999,999,999 days)
        raise too_long from None
    if months > LONGEST_MONTHS or delta > LONGEST_DELTA:
        raise too_long
    if months == 0 and delta <= timedelta(0):
        raise RuleViolation(field, "duration must be positive")
    return months, delta

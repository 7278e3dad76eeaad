"""What YouSign accepts as a signer's first or last name: its OpenAPI's `HumanName` pattern.

The mandate can print more (Greek, Cyrillic, Vietnamese accents); YouSign refuses a signer named so
(a 400 after the request is created), so a client's representative is held to this from the start.
"""

from __future__ import annotations

import string
import unicodedata

# The pattern's letters besides A-Z and a-z, in its order (tests check this against the OpenAPI).
YOUSIGN_ACCENTED_LETTERS = (
    "ĄÀÁÂÃÄÅÇĆÈÉÊËĘÌÍÎÏŁÑŃÒÓÔÕÖŚÙÚÛÜÝŹŻąàáâãäåæçćèéêëęìíîïłñńòóôõ"
    "öśùúûüýÿźżßĀāĂăĈĉĊċČčĎďĐđĒēĔĕĖėĚěĜĝĞğĠġĢģĤĥĦħĨĩĪīĬĭĮįİıĲĳĴĵĶ"
    "ķĸĹĺĻļĽľĿŀŅņŇňŉŊŋŌōŎŏŐőŒœŔŕŖŗŘřŜŝŞşŠšŢţŤťŦŧŨũŪūŬŭŮůŰűŲųŴŵŶŷŸ"
    "ŽžſøØÆȘșȚț"
)
ALLOWED = frozenset(string.ascii_letters + string.digits + "`'() -" + YOUSIGN_ACCENTED_LETTERS)


def refused_characters(name: str) -> str:
    return "".join(dict.fromkeys(c for c in name if c not in ALLOWED))


def closest_accepted_spelling(name: str) -> str | None:
    """The name with each refused letter written as its base letter (ễ -> e), if that is enough."""
    letters = []
    for c in name:
        if c not in ALLOWED:
            c = unicodedata.normalize("NFD", c)[0]
            if c not in ALLOWED:
                return None
        letters.append(c)
    return "".join(letters)


def check_signer_name(name: str) -> str:
    if refused := refused_characters(name):
        suggestion = closest_accepted_spelling(name)
        hint = f"; it could be written {suggestion!r}" if suggestion else ""
        raise ValueError(f"has characters YouSign refuses in a signer's name: {refused!r}{hint}")
    return name

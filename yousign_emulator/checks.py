"""Small field checkers that collect YouSign-style `invalid_params` instead of failing on the first one."""

from __future__ import annotations

import re
import uuid
from collections.abc import Iterable
from typing import Any

from .errors import validation_error

MISSING = object()

# YouSign's "HumanName", as its OpenAPI states it: ASCII letters and digits, the accented letters
# it lists (not every letter: no Greek, Cyrillic or Vietnamese), `'() -, no surrounding spaces.
HUMAN_NAME_PATTERN = (
    "^(?!\\s)[0-9A-Za-z"
    "ĄÀÁÂÃÄÅÇĆÈÉÊËĘÌÍÎÏŁÑŃÒÓÔÕÖŚÙÚÛÜÝŹŻąàáâãäåæçćèéêëęìíîïłñńòóôõ"
    "öśùúûüýÿźżßĀāĂăĈĉĊċČčĎďĐđĒēĔĕĖėĚěĜĝĞğĠġĢģĤĥĦħĨĩĪīĬĭĮįİıĲĳĴĵĶ"
    "ķĸĹĺĻļĽľĿŀŅņŇňŉŊŋŌōŎŏŐőŒœŔŕŖŗŘřŜŝŞşŠšŢţŤťŦŧŨũŪūŬŭŮůŰűŲųŴŵŶŷŸ"
    "ŽžſøØÆȘșȚț"
    "`'() -]+(?<!\\s)$"
)
_HUMAN_NAME = re.compile(HUMAN_NAME_PATTERN)
_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")
_E164 = re.compile(r"^\+[1-9]\d{1,14}$")


class Checker:
    """Accumulates problems; `raise_if_any()` turns them into one 400 validation.error."""

    def __init__(self) -> None:
        self.problems: list[dict[str, str]] = []

    def add(self, name: str, reason: str) -> None:
        self.problems.append({"name": name, "reason": reason})

    def raise_if_any(self) -> None:
        if self.problems:
            raise validation_error(self.problems)

    def unknown_keys(self, data: dict[str, Any], allowed: Iterable[str], prefix: str = "") -> None:
        allowed_set = set(allowed)
        for key in data:
            if key not in allowed_set:
                self.add(prefix + key, "This field was not expected.")

    def required(self, data: dict[str, Any], name: str, prefix: str = "") -> Any:
        value = data.get(name, MISSING)
        if value is MISSING:
            self.add(prefix + name, "This field is missing.")
        elif value is None:
            self.add(prefix + name, "This value should not be null.")
            return MISSING
        return value

    def string(
        self,
        name: str,
        value: Any,
        *,
        min_len: int = 0,
        max_len: int | None = None,
        pattern: re.Pattern[str] | None = None,
        nullable: bool = False,
    ) -> str | None:
        if value is MISSING:
            return None
        if value is None:
            if not nullable:
                self.add(name, "This value should not be null.")
            return None
        if not isinstance(value, str):
            self.add(name, "This value should be of type string.")
            return None
        if len(value) < min_len:
            self.add(
                name, "This value should not be blank." if min_len == 1 else f"Minimum length {min_len}."
            )
            return None
        if max_len is not None and len(value) > max_len:
            self.add(name, f"This value is too long. It should have {max_len} characters or less.")
            return None
        if pattern is not None and not pattern.search(value):
            self.add(name, "This value is not valid.")
            return None
        return value

    def enum(self, name: str, value: Any, choices: Iterable[Any], *, nullable: bool = False) -> Any:
        if value is MISSING:
            return None
        if value is None and nullable:
            return None
        options = list(choices)
        if value not in options or isinstance(value, bool) != any(isinstance(c, bool) for c in options):
            shown = ", ".join(f'"{c}"' if isinstance(c, str) else str(c) for c in options)
            self.add(name, f"Value must be in [{shown}].")
            return None
        return value

    def boolean(self, name: str, value: Any) -> bool | None:
        if value is MISSING:
            return None
        if not isinstance(value, bool):
            self.add(name, "This value should be of type bool.")
            return None
        return value

    def integer(
        self, name: str, value: Any, *, minimum: int | None = None, maximum: int | None = None
    ) -> int | None:
        if value is MISSING:
            return None
        if isinstance(value, bool) or not isinstance(value, int):
            self.add(name, "This value should be of type int.")
            return None
        if minimum is not None and value < minimum:
            self.add(name, f"This value should be greater than or equal to {minimum}.")
            return None
        if maximum is not None and value > maximum:
            self.add(name, f"This value should be less than or equal to {maximum}.")
            return None
        return value

    def uuid(self, name: str, value: Any, *, nullable: bool = True) -> str | None:
        text = self.string(name, value, nullable=nullable)
        if text is None:
            return None
        try:
            uuid.UUID(text)
        except ValueError:
            self.add(name, "This is not a valid UUID.")
            return None
        return text

    def obj(self, name: str, value: Any, *, nullable: bool = True) -> dict[str, Any] | None:
        if value is MISSING or (value is None and nullable):
            return None
        if not isinstance(value, dict):
            self.add(name, "This value should be of type object.")
            return None
        return value

    def array(self, name: str, value: Any, *, max_items: int | None = None) -> list[Any] | None:
        if value is MISSING:
            return None
        if not isinstance(value, list):
            self.add(name, "This value should be of type array.")
            return None
        if max_items is not None and len(value) > max_items:
            self.add(name, f"This collection should contain {max_items} elements or less.")
            return None
        return value

    def human_name(self, name: str, value: Any) -> str | None:
        return self.string(name, value, min_len=1, max_len=255, pattern=_HUMAN_NAME)

    def email(self, name: str, value: Any) -> str | None:
        return self.string(name, value, min_len=1, max_len=100, pattern=_EMAIL)

    def phone(self, name: str, value: Any) -> str | None:
        return self.string(name, value, min_len=1, pattern=_E164, nullable=True)


def require_object(body: Any) -> dict[str, Any]:
    if not isinstance(body, dict):
        raise validation_error([{"name": "body", "reason": "The request body must be a JSON object."}])
    return body

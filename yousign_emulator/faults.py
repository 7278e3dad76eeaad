"""Fault injection: a script of faults matched on method + path, plus seeded random 5xx/429."""

from __future__ import annotations

import random
import re
from dataclasses import dataclass, field
from typing import Any

TIMEOUT_KIND = "timeout_after_processing"
DEFAULT_TIMEOUT_DELAY = 10.0


@dataclass
class Fault:
    """`kind`: an HTTP status "400".."599" answered before processing (after `delay_seconds`; for
    "429", `delay_seconds` is the Retry-After it announces, 1 s by default), or
    "timeout_after_processing" (the request is processed, then the answer waits `delay_seconds`).
    `times` left (None = forever)."""

    id: int
    method: str
    path_regex: str
    kind: str
    times: int | None
    delay_seconds: float
    fired: int = 0
    _pattern: re.Pattern[str] = field(init=False, repr=False)

    def __post_init__(self) -> None:
        self._pattern = re.compile(self.path_regex)

    def matches(self, method: str, path: str) -> bool:
        live = self.times is None or self.times > 0
        return live and self.method in ("*", method.upper()) and self._pattern.search(path) is not None

    def to_json(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "method": self.method,
            "path_regex": self.path_regex,
            "kind": self.kind,
            "times": self.times,
            "delay_seconds": self.delay_seconds,
            "fired": self.fired,
        }


class FaultInjector:
    def __init__(self, rate_5xx: float = 0.0, rate_429: float = 0.0, seed: int = 0) -> None:
        self.rate_5xx = rate_5xx
        self.rate_429 = rate_429
        self._random = random.Random(seed)
        self.faults: list[Fault] = []
        self._next_id = 1

    def add(
        self,
        method: str = "POST",
        path_regex: str = r"^/v3/signature_requests$",
        kind: str = "500",
        times: int | None = 1,
        delay_seconds: float | None = None,
    ) -> Fault:
        kind = str(kind)
        if kind != TIMEOUT_KIND and not (kind.isdigit() and 400 <= int(kind) <= 599):
            raise ValueError(f'fault kind must be an HTTP status "400".."599" or "{TIMEOUT_KIND}"')
        if delay_seconds is None:
            delay_seconds = DEFAULT_TIMEOUT_DELAY if kind == TIMEOUT_KIND else 0.0
        fault = Fault(self._next_id, method.upper(), path_regex, kind, times, float(delay_seconds))
        self._next_id += 1
        self.faults.append(fault)
        return fault

    def clear(self) -> None:
        self.faults.clear()

    def find(self, method: str, path: str) -> Fault | None:
        """First live scripted fault for this request, without using it up."""
        return next((f for f in self.faults if f.matches(method, path)), None)

    @staticmethod
    def consume(fault: Fault) -> None:
        fault.fired += 1
        if fault.times is not None:
            fault.times -= 1

    def roll_429(self) -> bool:
        return self.rate_429 > 0 and self._random.random() < self.rate_429

    def roll_5xx(self) -> bool:
        return self.rate_5xx > 0 and self._random.random() < self.rate_5xx

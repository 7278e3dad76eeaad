"""YouSign errors, typed by what the caller should do: retry later, or give up with YouSign's reason."""

from __future__ import annotations

from typing import Any


class YouSignError(Exception):
    def __init__(
        self,
        message: str,
        *,
        status: int | None = None,
        error_type: str | None = None,
        detail: str | None = None,
        invalid_params: list[dict[str, Any]] | None = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.error_type = error_type
        self.detail = detail
        self.invalid_params = invalid_params or []


class YouSignRetryableError(YouSignError):
    """429, 5xx, timeouts and connection errors: the same call may succeed later.

    `maybe_done`: YouSign may have acted on the request all the same (its answer was lost, or a 5xx
    came after the work). False only when it certainly did not: a 429, or no connection made.
    """

    def __init__(
        self, message: str, *, retry_after: float | None = None, maybe_done: bool = True, **kwargs: Any
    ) -> None:
        super().__init__(message, **kwargs)
        self.retry_after = retry_after
        self.maybe_done = maybe_done


class YouSignFinalError(YouSignError):
    """Any other 4xx: repeating the call cannot help; YouSign's `type`, `detail` and params say why."""

    def describe(self) -> str:
        params = "; ".join(f"{p.get('name')}: {p.get('reason')}" for p in self.invalid_params)
        parts = [f"YouSign {self.status} {self.error_type or ''}".strip(), self.detail or "", params]
        return " - ".join(p for p in parts if p)

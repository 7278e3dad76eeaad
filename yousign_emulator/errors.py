"""The error shapes of YouSign v3: `{type, detail}`, plus `invalid_params` for validation errors."""

from __future__ import annotations

from typing import Any

VALIDATION_DETAIL = "You have some invalid params in your payload."


class ApiError(Exception):
    """Raised anywhere in the emulator; the /v3 app turns it into YouSign's JSON error body."""

    def __init__(
        self,
        status_code: int,
        error_type: str,
        detail: str,
        invalid_params: list[dict[str, str]] | None = None,
    ) -> None:
        super().__init__(f"{status_code} {error_type}: {detail}")
        self.status_code = status_code
        self.error_type = error_type
        self.detail = detail
        self.invalid_params = invalid_params

    def body(self) -> dict[str, Any]:
        body: dict[str, Any] = {"type": self.error_type, "detail": self.detail}
        if self.invalid_params is not None:
            body["invalid_params"] = self.invalid_params
        return body


def not_found(kind: str, resource_id: str) -> ApiError:
    return ApiError(404, "resource.not_found", f'The {kind} "{resource_id}" was not found.')


def validation_error(invalid_params: list[dict[str, str]]) -> ApiError:
    return ApiError(400, "validation.error", VALIDATION_DETAIL, invalid_params)


def invalid(name: str, reason: str) -> ApiError:
    return validation_error([{"name": name, "reason": reason}])


def status_not_compatible(kind: str, resource_id: str, status: str, action: str) -> ApiError:
    # YouSign's list of error types has `approver.status_not_compatible`; we use the same naming scheme.
    return ApiError(
        400,
        f"{kind}.status_not_compatible",
        f'The {kind.replace("_", " ")} "{resource_id}" is in status "{status}": cannot {action}.',
    )


def unsupported_media_type(expected: str) -> ApiError:
    return ApiError(415, "unsupported_media_type", f"The request content type must be {expected}.")

"""Empty query values read as absent: `?status=&limit=` (a form submitted with blank fields, or
api.md's own template filled in partly) lists as if they were not given, instead of a 422."""

from __future__ import annotations

from starlette.types import ASGIApp, Receive, Scope, Send


def without_empty_values(query_string: bytes) -> bytes:
    # On the raw bytes: the values that stay are passed on exactly as they came.
    return b"&".join(pair for pair in query_string.split(b"&") if pair.partition(b"=")[2])


class EmptyQueryValuesAbsent:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope.get("query_string"):
            scope = {**scope, "query_string": without_empty_values(scope["query_string"])}
        await self.app(scope, receive, send)

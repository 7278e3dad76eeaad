"""The firm's API as the CLI's commands reach it: its address and key, its refusals, its absence."""

from __future__ import annotations

import os
from typing import Annotated, Any

import httpx
import typer
from rich.console import Console
from rich.markup import escape

console = Console(soft_wrap=True)  # commands and ids stay on one line, to copy
errors = Console(stderr=True, soft_wrap=True)

KEY_VARIABLE = "MANDATES_API_KEY"
SHOWN_PROBLEMS = 50


def default_api_url() -> str:
    return f"http://127.0.0.1:{os.environ.get('API_PORT', '8000')}"


ApiUrl = Annotated[
    str, typer.Option(envvar="MANDATES_API_URL", help="The API's base URL (default: this machine, API_PORT)")
]
ApiKey = Annotated[str, typer.Option(envvar=KEY_VARIABLE, help="The firm's API key (required)")]


LIST_PAGE = 500  # the dossier list's largest page


def all_dossiers(
    http: httpx.Client, api_url: str, params: dict[str, Any], at_most: int | None = None
) -> list[dict[str, Any]]:
    """The dossiers the filters select, oldest first, page after page (stopping past `at_most`)."""
    found: list[dict[str, Any]] = []
    cursor = None
    while at_most is None or len(found) <= at_most:
        try:
            answer = http.get(
                "/v1/dossiers",
                params={**params, "limit": LIST_PAGE, **({"cursor": cursor} if cursor else {})},
            )
        except httpx.TransportError as error:  # a read only: nothing was started, whatever happened
            raise unreachable(api_url, error) from None
        refused_by_api(answer)
        page = answer.json()
        found += page["items"]
        if not (cursor := page["next_cursor"]):
            break
    return found


def api_base(url: str) -> str:
    """The API's root: the `/v1` that `make run` prints after it is not part of it."""
    url = url.rstrip("/")
    return url.removesuffix("/v1")


def api_client(api_url: str, api_key: str) -> httpx.Client:
    if not api_key:
        raise typer.BadParameter(
            f"give the firm's API key: --api-key or {KEY_VARIABLE}", param_hint="--api-key"
        )
    # A URL without http:// (or with a typo in it) would fail every request alike: refused at once.
    try:
        url = httpx.URL(api_base(api_url))
    except httpx.InvalidURL as error:
        url, problem = None, str(error)
    else:
        problem = "" if url.scheme in ("http", "https") and url.host else "it needs http:// and a host"
    if url is None or problem:
        raise typer.BadParameter(
            f"{api_url!r} is no API address ({problem}): e.g. {default_api_url()}", param_hint="--api-url"
        )
    return httpx.Client(base_url=url, headers={"Authorization": f"Bearer {api_key}"}, timeout=30)


def refused_by_api(answer: httpx.Response) -> None:
    """Print the API's refusal (its problem details) and exit 1."""
    if not answer.is_error:
        return
    body: dict[str, Any] = {}
    if "json" in answer.headers.get("content-type", ""):
        body = answer.json()
    fields = [f"  {e['field']}: {e['message']}" for e in body.get("errors", [])]
    detail = body.get("title") if fields else body.get("detail", answer.text[:300])
    errors.print(f"[red]{answer.status_code} {escape(str(detail))}[/red]")
    for line in fields[:SHOWN_PROBLEMS]:
        errors.print(escape(line))
    if len(fields) > SHOWN_PROBLEMS:
        errors.print(f"  ... and {len(fields) - SHOWN_PROBLEMS} more")
    raise typer.Exit(1)


def unreachable(api_url: str, error: httpx.TransportError) -> typer.Exit:
    errors.print(
        f"[red]cannot reach the API at {escape(api_base(api_url))}[/red] ({type(error).__name__}: {error})"
    )
    errors.print("Is it running? Its address: --api-url or MANDATES_API_URL.")
    return typer.Exit(2)

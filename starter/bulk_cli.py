"""`bulk send` and `bulk watch`: start a bulk send through the API and follow it with a progress bar.

Ctrl-C only detaches: the batch runs on in Temporal, and `bulk watch <id>` re-attaches. At the end the
skipped and failed dossiers are listed with their reasons; the exit code is 1 when any failed.
"""

from __future__ import annotations

import os
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated, Any
from zoneinfo import ZoneInfo

import httpx
import typer
from rich.console import Console
from rich.markup import escape
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn

from starter.dossier_csv import DossierCsvError, not_ids, read_dossier_ids

bulk_app = typer.Typer(help="Send many mandates at once and follow their progress.", no_args_is_help=True)
console = Console(soft_wrap=True)  # commands and ids stay on one line, to copy
errors = Console(stderr=True, soft_wrap=True)

MAX_DOSSIERS = 10_000  # per bulk send (api.md)
WATCH_COMMAND = "python -m starter.cli bulk watch"
PARIS = ZoneInfo("Europe/Paris")
SHOWN_PROBLEMS = 50


def default_api_url() -> str:
    return f"http://127.0.0.1:{os.environ.get('API_PORT', '8000')}"


ApiUrl = Annotated[
    str, typer.Option(envvar="MANDATES_API_URL", help="The API's base URL (default: this machine, API_PORT)")
]
ApiKey = Annotated[str, typer.Option(envvar="MANDATES_API_KEY", help="The firm's API key (required)")]


def api_base(url: str) -> str:
    """The API's root: the `/v1` that `make run` prints after it is not part of it."""
    url = url.rstrip("/")
    return url.removesuffix("/v1")


def _client(api_url: str, api_key: str) -> httpx.Client:
    if not api_key:
        raise typer.BadParameter(
            "give the firm's API key: --api-key or MANDATES_API_KEY", param_hint="--api-key"
        )
    return httpx.Client(
        base_url=api_base(api_url), headers={"Authorization": f"Bearer {api_key}"}, timeout=30
    )


def _fail(answer: httpx.Response) -> None:
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


def _unreachable(api_url: str, error: httpx.TransportError) -> typer.Exit:
    errors.print(f"[red]cannot reach the API at {api_base(api_url)}[/red] ({type(error).__name__}: {error})")
    errors.print("Is it running? Its address: --api-url or MANDATES_API_URL.")
    return typer.Exit(2)


def _ids(csv_path: Path | None, dossier_ids: list[str] | None) -> list[str]:
    try:
        from_csv = read_dossier_ids(csv_path.read_bytes()) if csv_path else []
    except DossierCsvError as error:
        raise typer.BadParameter(str(error), param_hint="--csv") from None
    if problem := not_ids([(f"argument {i}", value) for i, value in enumerate(dossier_ids or [], start=1)]):
        raise typer.BadParameter(problem, param_hint="DOSSIER_IDS")
    given = [*from_csv, *(dossier_ids or [])]
    ids = list(dict.fromkeys(given))
    if not ids:
        raise typer.BadParameter("give dossier ids or --csv")
    if len(ids) > MAX_DOSSIERS:
        raise typer.BadParameter(f"{len(ids)} dossiers: at most {MAX_DOSSIERS} per bulk send, split the list")
    if len(ids) < len(given):
        console.print(f"{len(given) - len(ids)} repeated id(s) counted once")
    return ids


@bulk_app.command("send")
def send(
    api_url: ApiUrl = default_api_url(),
    api_key: ApiKey = "",
    csv_path: Annotated[
        Path | None,
        typer.Option(
            "--csv",
            exists=True,
            dir_okay=False,
            help="Client list with a dossier_id (or id) column; comma, semicolon or tab separated",
        ),
    ] = None,
    dossier_ids: Annotated[list[str] | None, typer.Argument(help="Dossier ids (or use --csv)")] = None,
    detach: Annotated[bool, typer.Option(help="Start the batch and return at once")] = False,
) -> None:
    """Generate and send the mandates of the given dossiers; the ineligible are skipped with a reason."""
    ids = _ids(csv_path, dossier_ids)
    with _client(api_url, api_key) as http:
        try:
            answer = http.post("/v1/bulk-sends", json={"dossier_ids": ids})
        except httpx.TransportError as error:
            raise _unreachable(api_url, error) from None
        except KeyboardInterrupt:
            errors.print(
                "Interrupted before the API answered: the batch may have started (its id is unknown)."
            )
            raise typer.Exit(130) from None
        _fail(answer)
        batch = answer.json()
        console.print(f"Bulk send [bold]{batch['id']}[/bold]: {batch['total']} dossiers")
        if detach:
            console.print(f"Follow it with: {WATCH_COMMAND} {batch['id']}")
        else:
            _watch(http, batch["id"])


@bulk_app.command("watch")
def watch(
    bulk_send_id: Annotated[str, typer.Argument(help="The bulk send's id")],
    api_url: ApiUrl = default_api_url(),
    api_key: ApiKey = "",
) -> None:
    """Re-attach to a running (or finished) bulk send."""
    with _client(api_url, api_key) as http:
        _watch(http, bulk_send_id)


def describe_eta(eta: str | None, now: datetime) -> str:
    """` · ETA in 2 h 05 min (14:03 Paris)`, or nothing when nothing is left."""
    if not eta:
        return ""
    at = datetime.fromisoformat(eta)
    minutes = max(0, round((at - now).total_seconds() / 60))
    left = f"{minutes // 60} h {minutes % 60:02d} min" if minutes >= 60 else f"{minutes} min"
    return f" · ETA in {left} ({at.astimezone(PARIS):%H:%M} Paris)"


def _describe(progress: dict) -> str:
    counts = f"sent {progress['sent']} · skipped {progress['skipped']} · failed {progress['failed']}"
    return counts + describe_eta(progress.get("eta"), datetime.now(UTC))


def _watch(http: httpx.Client, bulk_send_id: str, interval: float = 1.0) -> None:
    columns = (
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("{task.fields[counts]}"),
    )
    try:
        with Progress(*columns, console=console) as bar:
            task = bar.add_task("Mandates", total=None, counts="")
            progress = _follow(http, bulk_send_id, interval, lambda **fields: bar.update(task, **fields))
    except KeyboardInterrupt:
        console.print(f"Detached; the batch goes on. Re-attach with: {WATCH_COMMAND} {bulk_send_id}")
        raise typer.Exit(0) from None
    console.print(f"Done: {_describe(progress)}")
    _list_problems(http, bulk_send_id)
    if progress["failed"]:
        raise typer.Exit(1)


def _follow(http: httpx.Client, bulk_send_id: str, interval: float, show) -> dict:
    """Poll until the batch is done; an unreachable API (a restart, a long batch) is waited for."""
    outage = 0
    while True:
        try:
            answer = http.get(f"/v1/bulk-sends/{bulk_send_id}", params={"limit": 1})
            trouble = f"API answered {answer.status_code}" if answer.status_code >= 500 else None
        except httpx.TransportError as error:
            trouble = f"API unreachable ({type(error).__name__})"
        if trouble:
            outage = min(outage + 1, 10)
            show(counts=f"{trouble}, trying again")
            time.sleep(min(30.0, interval * 2**outage))
            continue
        _fail(answer)
        outage = 0
        progress = answer.json()
        handled = progress["sent"] + progress["skipped"] + progress["failed"]
        show(total=progress["total"], completed=handled, counts=_describe(progress))
        if progress["done"]:
            return progress
        time.sleep(interval)


def _list_problems(http: httpx.Client, bulk_send_id: str) -> None:
    """The skipped and failed dossiers with their reasons (the first SHOWN_PROBLEMS of them)."""
    shown, more, cursor = 0, 0, None
    while True:
        params = {"limit": 500, **({"cursor": cursor} if cursor else {})}
        try:
            answer = http.get(f"/v1/bulk-sends/{bulk_send_id}", params=params)
        except httpx.TransportError:
            console.print(f"  (the API went away: the list is at GET /v1/bulk-sends/{bulk_send_id})")
            return
        _fail(answer)
        page = answer.json()
        for item in page["items"]:
            if item["outcome"] not in ("skipped", "failed"):
                continue
            if shown < SHOWN_PROBLEMS:
                console.print(
                    f"  {item['outcome']:8} {item['dossier_id']}  {escape(item.get('reason') or '')}"
                )
                shown += 1
            else:
                more += 1
        cursor = page.get("next_cursor")
        if not cursor:
            break
    if more:
        console.print(f"  ... and {more} more: GET /v1/bulk-sends/{bulk_send_id}")
